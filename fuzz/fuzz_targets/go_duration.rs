//! `parse_go_duration_ms` on arbitrary text: never panics, and any value it
//! returns is at most a day (86 400 000 ms). Surrounding whitespace is ignored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quota_alert::upstream::headers::parse_go_duration_ms;

const DAY_MS: u64 = 86_400_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_go_duration_ms(&text);
    if let Some(ms) = parsed {
        assert!(ms <= DAY_MS, "{text:?} parsed to {ms} ms");
    }
    assert_eq!(parse_go_duration_ms(text.trim()), parsed, "{text:?}");
});
