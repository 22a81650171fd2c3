//! Calendar periods for budgets: a day, an ISO week (from Monday), a
//! calendar month, or a custom length from an anchor date — each starting
//! at midnight in the workspace's IANA time zone, DST included (a local day
//! is 23 or 25 hours long across a change). Pure: a time zone and an
//! instant in, the period's bounds out.

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;

/// How a budget's period repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    /// Monday to Sunday.
    Week,
    /// The calendar month.
    Month,
    /// `length_days` local days at a time, the first one starting on `anchor`.
    Custom {
        anchor: NaiveDate,
        length_days: u32,
    },
}

/// One occurrence of a period: local days `[first_day, end_day)`, and the
/// same as Unix ms `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub first_day: NaiveDate,
    pub end_day: NaiveDate,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The local calendar day of `ms` in `tz`.
pub fn local_day(tz: Tz, ms: u64) -> NaiveDate {
    let utc =
        chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64).unwrap_or_default();
    utc.with_timezone(&tz).date_naive()
}

/// The instant `day` begins in `tz`: its local midnight, or — where a DST
/// change skips midnight (some zones move their clocks at 00:00) — the
/// first local time that exists that day.
pub fn day_start_ms(tz: Tz, day: NaiveDate) -> u64 {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Gaps are at most a few hours; step a quarter hour at a time.
    for quarter in 0..(4 * 24) {
        let local = midnight + Duration::minutes(15 * quarter);
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.timestamp_millis().max(0) as u64;
        }
    }
    midnight.and_utc().timestamp_millis().max(0) as u64
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(first: NaiveDate) -> NaiveDate {
    let (year, month) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(first)
}

impl Period {
    /// The occurrence of this period that contains `now_ms`, in `tz`.
    pub fn bounds(&self, tz: Tz, now_ms: u64) -> Bounds {
        let today = local_day(tz, now_ms);
        let (first_day, end_day) = match *self {
            Period::Day => (today, today + Duration::days(1)),
            Period::Week => {
                let monday =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Period::Month => {
                let first = first_of_month(today);
                (first, next_month(first))
            }
            Period::Custom {
                anchor,
                length_days,
            } => {
                let length = i64::from(length_days.max(1));
                let since = (today - anchor).num_days();
                let index = since.div_euclid(length);
                let first = anchor + Duration::days(index * length);
                (first, first + Duration::days(length))
            }
        };
        Bounds {
            first_day,
            end_day,
            start_ms: day_start_ms(tz, first_day),
            end_ms: day_start_ms(tz, end_day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> u64 {
        tz.with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .timestamp_millis() as u64
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_day_across_the_spring_change_is_23_hours_and_resets_at_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29: clocks go 02:00 → 03:00.
        let b = Period::Day.bounds(berlin, ms(berlin, 2026, 3, 29, 12, 0));
        assert_eq!(b.end_ms - b.start_ms, 23 * 3_600_000);
        assert_eq!(b.start_ms, ms(berlin, 2026, 3, 29, 0, 0));
        // One millisecond before local midnight is still the old day.
        let before = Period::Day.bounds(berlin, b.end_ms - 1);
        assert_eq!(before.first_day, day(2026, 3, 29));
        assert_eq!(
            Period::Day.bounds(berlin, b.end_ms).first_day,
            day(2026, 3, 30)
        );
        // Autumn: 25 hours.
        let autumn = Period::Day.bounds(berlin, ms(berlin, 2026, 10, 25, 12, 0));
        assert_eq!(autumn.end_ms - autumn.start_ms, 25 * 3_600_000);
    }

    #[test]
    fn a_month_ends_at_midnight_of_the_first_in_the_zone_not_utc() {
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        // 2026-01-31 20:00 in LA is already February in UTC.
        let b = Period::Month.bounds(la, ms(la, 2026, 1, 31, 20, 0));
        assert_eq!((b.first_day, b.end_day), (day(2026, 1, 1), day(2026, 2, 1)));
        assert_eq!(b.end_ms, ms(la, 2026, 2, 1, 0, 0));
        // February in a leap-free year, and December into January.
        let feb = Period::Month.bounds(la, ms(la, 2026, 2, 14, 9, 0));
        assert_eq!(feb.end_day, day(2026, 3, 1));
        let dec = Period::Month.bounds(la, ms(la, 2026, 12, 31, 23, 59));
        assert_eq!(
            (dec.first_day, dec.end_day),
            (day(2026, 12, 1), day(2027, 1, 1))
        );
        // March holds the spring change: 31 days less an hour.
        let march = Period::Month.bounds(la, ms(la, 2026, 3, 20, 0, 0));
        assert_eq!(march.end_ms - march.start_ms, (31 * 24 - 1) * 3_600_000);
    }

    #[test]
    fn a_week_runs_monday_to_sunday_in_half_hour_zones_too() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        // Wednesday 2026-12-02.
        let b = Period::Week.bounds(kolkata, ms(kolkata, 2026, 12, 2, 10, 0));
        assert_eq!(
            (b.first_day, b.end_day),
            (day(2026, 11, 30), day(2026, 12, 7))
        );
        assert_eq!(b.start_ms, ms(kolkata, 2026, 11, 30, 0, 0));
        assert_eq!(b.end_ms - b.start_ms, 7 * 24 * 3_600_000);
    }

    #[test]
    fn a_custom_period_repeats_from_its_anchor_both_ways() {
        let utc: Tz = "UTC".parse().unwrap();
        let every_ten = Period::Custom {
            anchor: day(2026, 1, 5),
            length_days: 10,
        };
        let b = every_ten.bounds(utc, ms(utc, 2026, 1, 20, 0, 0));
        assert_eq!(
            (b.first_day, b.end_day),
            (day(2026, 1, 15), day(2026, 1, 25))
        );
        // Before the anchor: the occurrence that ends on it.
        let early = every_ten.bounds(utc, ms(utc, 2026, 1, 1, 0, 0));
        assert_eq!(
            (early.first_day, early.end_day),
            (day(2025, 12, 26), day(2026, 1, 5))
        );
    }

    #[test]
    fn a_zone_that_skips_midnight_starts_the_day_at_its_first_hour() {
        // America/Santiago moved clocks 00:00 → 01:00 on 2026-09-06.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let start = day_start_ms(santiago, day(2026, 9, 6));
        assert_eq!(local_day(santiago, start), day(2026, 9, 6));
        assert_eq!(local_day(santiago, start - 1), day(2026, 9, 5));
    }
}
