//! Text for numbers, durations and times. Pure, so the server and the browser
//! render the same characters (no local time zone: times are UTC).

/// "1h 02m", "3m 05s", "12s", "0.4s".
pub fn format_seconds(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 10.0 && seconds.fract() != 0.0 {
        return format!("{seconds:.1}s");
    }
    whole(seconds.ceil() as u64)
}

/// A countdown in whole seconds, rounded up: "4s", "1m 05s", "2h 03m".
pub fn countdown(seconds: f64) -> String {
    whole(seconds.max(0.0).ceil() as u64)
}

fn whole(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        (total % 86_400) / 3600,
        (total % 3600) / 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// 1234567 → "1,234,567".
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per minute: "0.4", "12", "1,250".
pub fn rate(per_minute: f64) -> String {
    if per_minute < 10.0 {
        let text = format!("{per_minute:.1}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    } else {
        count(per_minute.round() as u64)
    }
}

/// "16:05" (UTC) for a Unix time in seconds.
pub fn utc_hm(unix_s: u64) -> String {
    format!("{:02}:{:02}", (unix_s / 3600) % 24, (unix_s / 60) % 60)
}

/// "2026-11-28 16:05:12 UTC" from an RFC 3339 UTC time.
pub fn utc_datetime(rfc3339: &str) -> String {
    let trimmed = rfc3339.trim_end_matches('Z');
    let trimmed = trimmed.split('.').next().unwrap_or(trimmed);
    format!("{} UTC", trimmed.replacen('T', " ", 1))
}

/// "just now", "42s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    match s {
        0..=4 => "just now".to_string(),
        5..=59 => format!("{s}s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Dollars: "$12.40", "$1,234.50"; amounts under a cent keep four places
/// ("$0.0003") so a cheap model's cost does not read as nothing.
pub fn usd(value: f64) -> String {
    let value = if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    };
    if value > 0.0 && value < 0.01 {
        let text = format!("{value:.4}");
        return format!("${}", text.trim_end_matches('0'));
    }
    let cents = (value * 100.0).round() as u64;
    format!("${}.{:02}", count(cents / 100), cents % 100)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || d < 1 || d > month_length(y, m) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn month_length(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) of a day number from [`parse_day`].
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// "2026-12-31" for a day number.
pub fn day_text(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// "Dec 31" for a day number.
pub fn month_day(days: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, m, d) = civil(days);
    format!("{} {d}", MONTHS[(m as usize).saturating_sub(1) % 12])
}

/// Unix milliseconds of an RFC 3339 time (`2026-12-31T23:00:00.000Z`, or
/// with a `+01:00` offset).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let days = parse_day(date)?;
    let (clock, offset_s) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        (clock, sign * secs)
    };
    let mut parts = clock.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next().unwrap_or("0").parse().ok()?;
    let secs = days * 86_400 + h * 3600 + m * 60 - offset_s;
    Some(secs * 1000 + (seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_seconds(0.4), "0.4s");
        assert_eq!(format_seconds(12.0), "12s");
        assert_eq!(format_seconds(185.0), "3m 05s");
        assert_eq!(format_seconds(3720.0), "1h 02m");
        assert_eq!(countdown(3.2), "4s");
        assert_eq!(countdown(-1.0), "0s");
        assert_eq!(countdown(90_000.0), "1d 01h");
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(150_000), "150,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(rate(0.45), "0.5");
        assert_eq!(rate(3.0), "3");
        assert_eq!(rate(1250.2), "1,250");
        assert_eq!(utc_hm(1_700_000_000), "22:13");
        assert_eq!(
            utc_datetime("2026-11-28T16:05:12.345Z"),
            "2026-11-28 16:05:12 UTC"
        );
        assert_eq!(ago(100_000, 99_000), "just now");
        assert_eq!(ago(400_000, 100_000), "5 min ago");
    }

    #[test]
    fn dollars() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.25), "$0.25");
        assert_eq!(usd(12.4), "$12.40");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(usd(0.0003), "$0.0003");
        assert_eq!(usd(-1.0), "$0.00");
        assert_eq!(usd(f64::NAN), "$0.00");
    }

    #[test]
    fn calendar_days() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(
            parse_day("2026-12-31").map(day_text).as_deref(),
            Some("2026-12-31")
        );
        assert_eq!(
            parse_day("2024-02-29").map(|d| day_text(d + 1)).as_deref(),
            Some("2024-03-01")
        );
        assert_eq!(
            parse_day("2026-12-31").map(|d| day_text(d + 1)).as_deref(),
            Some("2027-01-01")
        );
        assert_eq!(parse_day("2025-02-29"), None);
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("soon"), None);
        assert_eq!(
            parse_day("2026-12-31").map(month_day).as_deref(),
            Some("Dec 31")
        );
        assert_eq!(
            parse_day("2027-01-01").map(month_day).as_deref(),
            Some("Jan 1")
        );
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.500Z"), Some(1_500));
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_rfc3339_ms("2023-11-14"), None);
        assert_eq!(parse_rfc3339_ms(""), None);
    }
}
