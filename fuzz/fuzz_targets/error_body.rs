//! `parse_error_body` on an arbitrary status and body, then `classify`: never
//! panics, keeps the status, clips every field to 2 000 bytes on a char boundary.
//!
//! Input layout: two bytes of HTTP status (big-endian; 0 means "no status"),
//! then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quota_alert::engine::classify;
use quota_alert::upstream::error_body::parse_error_body;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let status = (status != 0).then_some(status);
    let body = &data[2..];

    let report = parse_error_body(status, body);
    assert_eq!(report.http_status, status, "the status is kept as given");
    for field in [&report.error_type, &report.code, &report.message]
        .into_iter()
        .flatten()
    {
        // A `String`, so on a char boundary by construction; the clip must hold.
        assert!(field.len() <= 2_000, "field of {} bytes", field.len());
    }
    // Not JSON at all: nothing but the status. (Judged with `IgnoredAny`, which
    // skips as the parser does: serde_json does not check UTF-8 inside strings it
    // skips, so a body that is not valid JSON text can still yield fields from
    // its valid parts; that is harmless, the fields kept are valid strings.)
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        assert!(report.error_type.is_none() && report.code.is_none() && report.message.is_none());
    }
    let _ = classify(&report);
});
