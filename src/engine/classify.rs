//! Classifies an upstream error from its structured fields only: HTTP status,
//! `error.type` and `error.code`. The seed matched words in exception names and
//! filed quota exhaustion as a rate limit; message text is never read here.

use crate::wire::UpstreamErrorReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429 `rate_limit_exceeded` (or a 429 that says nothing else): back off briefly.
    RateLimited,
    /// `insufficient_quota`: billing quota gone; retrying will not help.
    QuotaExhausted,
    /// 5xx, timeouts, connection failures: counts towards DEGRADED.
    UpstreamFailure,
    /// Anything else (400, 401, 404, a request too large, ...): the caller's
    /// problem; counted as a request, no effect on the status.
    ClientError,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::UpstreamFailure => "upstream_failure",
            ErrorClass::ClientError => "client_error",
        }
    }
}

/// Codes OpenAI and compatible servers use for network-level failures that never
/// produced an HTTP status.
const NETWORK_FAILURE_CODES: &[&str] = &[
    "timeout",
    "connection_error",
    "connection_refused",
    "connection_reset",
];

/// Codes that arrive with a 429 but mean "this one request can never fit", not
/// "slow down": retrying the same request will fail again, so they must not put
/// the workspace into RATE_LIMITED.
const NOT_RETRYABLE_429_CODES: &[&str] = &["request_too_large", "context_length_exceeded"];

pub fn classify(error: &UpstreamErrorReport) -> ErrorClass {
    let code = error.code.as_deref().unwrap_or("");
    let kind = error.error_type.as_deref().unwrap_or("");
    if code == "insufficient_quota" || kind == "insufficient_quota" {
        return ErrorClass::QuotaExhausted;
    }
    if NOT_RETRYABLE_429_CODES.contains(&code) {
        return ErrorClass::ClientError;
    }
    if code == "rate_limit_exceeded" || kind == "rate_limit_exceeded" {
        return ErrorClass::RateLimited;
    }
    match error.http_status {
        Some(429) => ErrorClass::RateLimited,
        Some(408) | Some(500..=599) => ErrorClass::UpstreamFailure,
        Some(_) => ErrorClass::ClientError,
        None if NETWORK_FAILURE_CODES.contains(&code) || kind == "timeout" => {
            ErrorClass::UpstreamFailure
        }
        // No status and no recognised code: we cannot tell, and an unknown failure
        // is more likely the network than the caller.
        None => ErrorClass::UpstreamFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: Option<u16>, kind: &str, code: &str, message: &str) -> UpstreamErrorReport {
        UpstreamErrorReport {
            http_status: status,
            error_type: (!kind.is_empty()).then(|| kind.to_string()),
            code: (!code.is_empty()).then(|| code.to_string()),
            message: Some(message.to_string()),
        }
    }

    #[test]
    fn quota_is_not_filed_as_a_rate_limit() {
        let e = err(
            Some(429),
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota",
        );
        assert_eq!(classify(&e), ErrorClass::QuotaExhausted);
    }

    #[test]
    fn message_text_is_never_read() {
        let e = err(
            Some(400),
            "invalid_request_error",
            "",
            "rate limit quota exceeded timeout",
        );
        assert_eq!(classify(&e), ErrorClass::ClientError);
        let e = err(Some(429), "requests", "rate_limit_exceeded", "");
        assert_eq!(classify(&e), ErrorClass::RateLimited);
    }

    #[test]
    fn server_errors_and_timeouts_count_towards_degraded() {
        assert_eq!(
            classify(&err(Some(503), "", "", "")),
            ErrorClass::UpstreamFailure
        );
        assert_eq!(
            classify(&err(None, "", "timeout", "")),
            ErrorClass::UpstreamFailure
        );
        assert_eq!(
            classify(&err(Some(408), "", "", "")),
            ErrorClass::UpstreamFailure
        );
    }

    #[test]
    fn a_request_too_large_is_not_a_rate_limit() {
        let e = err(Some(429), "tokens", "request_too_large", "");
        assert_eq!(classify(&e), ErrorClass::ClientError);
    }
}
