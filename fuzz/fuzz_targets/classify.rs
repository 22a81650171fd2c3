//! `classify` on arbitrary status / type / code / message: never panics, never
//! reads the message, and files the documented cases as documented.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use quota_alert::engine::{classify, ErrorClass};
use quota_alert::wire::UpstreamErrorReport;

/// Values the classifier looks for, so that the fuzzer reaches every branch
/// without having to guess them byte by byte.
const KNOWN: &[&str] = &[
    "insufficient_quota",
    "rate_limit_exceeded",
    "request_too_large",
    "context_length_exceeded",
    "timeout",
    "connection_error",
    "connection_refused",
    "connection_reset",
    "server_error",
    "invalid_request_error",
    "requests",
    "tokens",
    "",
];

#[derive(Arbitrary, Debug)]
enum Field {
    Known(u8),
    Other(String),
}

impl Field {
    fn text(&self) -> String {
        match self {
            Field::Known(i) => KNOWN[*i as usize % KNOWN.len()].to_string(),
            Field::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    http_status: Option<u16>,
    error_type: Option<Field>,
    code: Option<Field>,
    message: Option<String>,
}

fuzz_target!(|input: Input| {
    let report = UpstreamErrorReport {
        http_status: input.http_status,
        error_type: input.error_type.as_ref().map(Field::text),
        code: input.code.as_ref().map(Field::text),
        message: input.message.clone(),
    };
    let class = classify(&report);
    assert!(matches!(
        class.as_str(),
        "rate_limited" | "quota_exhausted" | "upstream_failure" | "client_error"
    ));

    // The message is never read.
    let silent = UpstreamErrorReport {
        message: None,
        ..report.clone()
    };
    assert_eq!(classify(&silent), class, "the message changed the class");

    // insufficient_quota wins over everything, whatever the status.
    let code = report.code.as_deref();
    let kind = report.error_type.as_deref();
    if code == Some("insufficient_quota") || kind == Some("insufficient_quota") {
        assert_eq!(class, ErrorClass::QuotaExhausted);
    }
    // With neither type nor code, the status alone decides.
    if code.is_none() && kind.is_none() {
        let expected = match report.http_status {
            Some(429) => ErrorClass::RateLimited,
            Some(408) | Some(500..=599) | None => ErrorClass::UpstreamFailure,
            Some(_) => ErrorClass::ClientError,
        };
        assert_eq!(class, expected, "{report:?}");
    }
});
