//! The request path, checked before anything else looks at it.
//!
//! The upstream URL is never built from the request's path text: the path is
//! split into segments here, each must decode to plain characters, and only a
//! rule's literals plus checked placeholder segments make up the URL
//! (`endpoints.rs`). Anything that could mean something else to another URL
//! parser on the way (traversal, encoded separators, backslashes, `@`, control
//! characters, empty segments) is refused rather than cleaned up, so there is
//! no second interpretation to disagree with.

/// Why a path was refused (the message is for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest path looked at: far above any OpenAI path.
const MAX_PATH_LEN: usize = 1024;

/// The segments after `/v1/`, percent-decoded, each made only of
/// `A-Z a-z 0-9 . _ ~ : -` and not only dots.
pub fn request_segments(path: &str) -> Result<Vec<String>, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError(format!(
            "The path is longer than {MAX_PATH_LEN} characters."
        )));
    }
    let rest = path
        .strip_prefix("/v1/")
        .ok_or_else(|| PathError("The path must start with /v1/.".into()))?;
    rest.split('/')
        .map(|raw| {
            if raw.is_empty() {
                return Err(PathError(
                    "The path has an empty segment (`//` or a trailing `/`).".into(),
                ));
            }
            let decoded = percent_decode(raw).ok_or_else(|| {
                PathError(format!("The path segment {raw:?} has a broken %-escape."))
            })?;
            if !is_safe_segment(&decoded) {
                return Err(PathError(format!(
                    "The path segment {raw:?} is not allowed: segments are letters, digits, \
                     `.`, `_`, `~`, `:` and `-` (no `..`, `/`, `\\`, `@` or control characters, \
                     encoded or not)."
                )));
            }
            Ok(decoded)
        })
        .collect()
}

/// One segment that means the same to every URL parser: plain characters and
/// not `.`/`..` (nor any other run of dots).
pub fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 256
        && !segment.bytes().all(|b| b == b'.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-'))
}

/// `%XX` decoded; `None` for a `%` not followed by two hex digits or a result
/// that is not UTF-8. A decoded `%` is not decoded again (and is then refused
/// by [`is_safe_segment`]), so double encoding gets nowhere.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_split_and_encoded_plain_characters_decode() {
        assert_eq!(
            request_segments("/v1/chat/completions").unwrap(),
            ["chat", "completions"]
        );
        assert_eq!(
            request_segments("/v1/models/ft%3Agpt-4o-mini%3Aacme%3A1").unwrap(),
            ["models", "ft:gpt-4o-mini:acme:1"]
        );
        assert_eq!(
            request_segments("/v1/models/gpt-4.1").unwrap(),
            ["models", "gpt-4.1"]
        );
    }

    #[test]
    fn every_trick_is_refused() {
        for path in [
            "/v1/../admin",
            "/v1/models/..",
            "/v1/./models",
            "/v1/models/...",
            "/v1/%2e%2e/files",
            "/v1/%2E%2e/files",
            "/v1/models/%2E",
            "/v1//files",
            "/v1/chat/completions/",
            "/v1/",
            "/v1/models%2f..%2ffiles",
            "/v1/models%2F..%2Ffiles",
            "/v1/models%5c..%5cfiles",
            "/v1/models\\..\\files",
            "/v1/models/x@evil.example",
            "/v1/models/%40evil",
            "/v1/models/%00",
            "/v1/models/a%0d%0aHost:evil",
            "/v1/models/%252e%252e",
            "/v1/models/%zz",
            "/v1/models/%2",
            "/v1/models/%c3%28",
            "/v1/models/caf%C3%A9",
            "/v1/models/a;b",
            "/v1/models/a?b",
            "/v1/models/a#b",
            "/v2/models",
            "/v1",
        ] {
            assert!(request_segments(path).is_err(), "{path}");
        }
        assert!(request_segments(&format!("/v1/{}", "a".repeat(2000))).is_err());
    }
}
