//! OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.

use crate::wire::UpstreamErrorReport;
use serde::Deserialize;

#[derive(Deserialize)]
struct Envelope {
    error: Inner,
}

#[derive(Deserialize)]
struct Inner {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    error_type: Option<String>,
    /// Usually a string, but some compatible servers send a number.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Longest text kept from an upstream error field.
const MAX_FIELD_LEN: usize = 2_000;

/// Reads an error body as far as it goes; a body that is not OpenAI-shaped still
/// yields a report with the HTTP status, which is what classification needs most.
pub fn parse_error_body(http_status: Option<u16>, body: &[u8]) -> UpstreamErrorReport {
    let parsed = serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.error);
    let clip = |s: String| -> String {
        if s.len() <= MAX_FIELD_LEN {
            s
        } else {
            let mut end = MAX_FIELD_LEN;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        }
    };
    match parsed {
        Some(inner) => UpstreamErrorReport {
            http_status,
            error_type: inner.error_type.map(clip),
            code: inner.code.and_then(|c| match c {
                serde_json::Value::String(s) => Some(clip(s)),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            message: inner.message.map(clip),
        },
        None => UpstreamErrorReport {
            http_status,
            ..UpstreamErrorReport::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_errors_and_tolerates_others() {
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let e = parse_error_body(Some(429), body);
        assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
        assert_eq!(e.error_type.as_deref(), Some("insufficient_quota"));
        let e = parse_error_body(Some(502), b"<html>Bad gateway</html>");
        assert_eq!(e.http_status, Some(502));
        assert_eq!(e.code, None);
        let e = parse_error_body(Some(400), br#"{"error":{"code":400,"message":"x"}}"#);
        assert_eq!(e.code.as_deref(), Some("400"));
    }
}
