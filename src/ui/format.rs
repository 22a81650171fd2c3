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
}
