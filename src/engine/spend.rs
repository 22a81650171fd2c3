//! Money a workspace spent, per local day of its time zone, and the
//! budgets it is held to (issue "Money, models and people"). Every budget
//! period is a run of whole local days (see [`periods`](super::periods)),
//! so a day's total is the finest grain any budget needs: a month costs at
//! most 31 entries to sum, and 400 days of history are at most 400 entries.

use super::periods::{Bounds, Period};
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// Days of spend kept: a year and a custom period of up to a month more.
pub const SPEND_DAYS_KEPT: i64 = 400;

/// Whether crossing a budget refuses calls or only warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetKind {
    /// Calls whose reserved cost would cross it are refused before they
    /// reach OpenAI; spend at or over it is QUOTA_EXCEEDED.
    Hard,
    /// Crossing it is a WARNING (and an alert); nothing is refused.
    Soft,
}

/// A spending limit over a repeating period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub period: Period,
    pub amount_nano: u64,
    pub kind: BudgetKind,
}

/// A budget's standing at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetStanding {
    pub budget: Budget,
    pub bounds: Bounds,
    /// Spent in the current period (settled calls only).
    pub spent_nano: u64,
    /// Held for calls in flight (their worst-case cost).
    pub held_nano: u64,
}

impl BudgetStanding {
    /// Spent as a share of the amount, in percent (held not included).
    pub fn percentage(&self) -> f64 {
        if self.budget.amount_nano == 0 {
            return if self.spent_nano > 0 { 100.0 } else { 0.0 };
        }
        (self.spent_nano as f64 * 1000.0 / self.budget.amount_nano as f64).round() / 10.0
    }

    /// Whether a call that may cost `need_nano` fits beside what is spent
    /// and held (always, for a soft budget).
    pub fn fits(&self, need_nano: u64) -> bool {
        self.budget.kind == BudgetKind::Soft
            || self
                .spent_nano
                .saturating_add(self.held_nano)
                .saturating_add(need_nano)
                <= self.budget.amount_nano
    }

    /// Spent at or past the amount.
    pub fn is_spent(&self) -> bool {
        self.spent_nano >= self.budget.amount_nano
    }
}

/// Nano-dollars spent per local day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendLedger {
    days: BTreeMap<NaiveDate, u64>,
}

impl SpendLedger {
    /// Adds `nano` to `day`, and forgets days older than [`SPEND_DAYS_KEPT`]
    /// before it.
    pub fn add(&mut self, day: NaiveDate, nano: u64) {
        if nano == 0 {
            return;
        }
        let entry = self.days.entry(day).or_default();
        *entry = entry.saturating_add(nano);
        let oldest = day - chrono::Duration::days(SPEND_DAYS_KEPT);
        while self
            .days
            .first_key_value()
            .is_some_and(|(d, _)| *d < oldest)
        {
            self.days.pop_first();
        }
    }

    /// Spent on days `[first, end)`.
    pub fn sum(&self, first: NaiveDate, end: NaiveDate) -> u64 {
        self.days
            .range(first..end)
            .fold(0u64, |sum, (_, nano)| sum.saturating_add(*nano))
    }

    /// Spend per day, oldest first.
    pub fn days(&self) -> impl Iterator<Item = (NaiveDate, u64)> + '_ {
        self.days.iter().map(|(d, n)| (*d, *n))
    }

    pub fn clear(&mut self) {
        self.days.clear();
    }

    pub fn heap_bytes(&self) -> usize {
        self.days.len() * (std::mem::size_of::<NaiveDate>() + 8 + 16)
    }

    /// Where `budget` stands at `now_ms` in `tz`, with `held_nano` in flight.
    pub fn standing(&self, budget: &Budget, tz: Tz, now_ms: u64, held_nano: u64) -> BudgetStanding {
        let bounds = budget.period.bounds(tz, now_ms);
        BudgetStanding {
            budget: *budget,
            bounds,
            spent_nano: self.sum(bounds.first_day, bounds.end_day),
            held_nano,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const DOLLAR: u64 = 1_000_000_000;

    #[test]
    fn a_monthly_budget_sums_its_local_days_and_resets_on_the_first() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let mut ledger = SpendLedger::default();
        ledger.add(day(2026, 11, 30), 7 * DOLLAR);
        ledger.add(day(2026, 12, 1), 2 * DOLLAR);
        ledger.add(day(2026, 12, 1), DOLLAR);
        let budget = Budget {
            period: Period::Month,
            amount_nano: 10 * DOLLAR,
            kind: BudgetKind::Hard,
        };
        let now = tokyo
            .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
            .unwrap()
            .timestamp_millis() as u64;
        let standing = ledger.standing(&budget, tokyo, now, DOLLAR);
        assert_eq!(standing.spent_nano, 3 * DOLLAR, "November is not December");
        assert_eq!(standing.percentage(), 30.0);
        assert!(standing.fits(6 * DOLLAR), "3 spent + 1 held + 6 = 10");
        assert!(!standing.fits(6 * DOLLAR + 1));
        let reset = tokyo
            .with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis() as u64;
        assert_eq!(standing.bounds.end_ms, reset);
    }

    #[test]
    fn a_soft_budget_never_refuses_and_old_days_are_forgotten() {
        let mut ledger = SpendLedger::default();
        ledger.add(day(2025, 1, 1), DOLLAR);
        ledger.add(day(2026, 6, 1), DOLLAR);
        assert_eq!(
            ledger.days().count(),
            1,
            "the 2025 day is over 400 days older"
        );
        let soft = Budget {
            period: Period::Day,
            amount_nano: 0,
            kind: BudgetKind::Soft,
        };
        let standing = ledger.standing(&soft, chrono_tz::UTC, 0, 0);
        assert!(standing.fits(u64::MAX));
    }
}
