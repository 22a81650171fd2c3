//! Relays an OpenAI server-sent-event stream event by event while reading the
//! usage from it.
//!
//! Bytes are passed on as soon as an event is complete (an event is never held
//! back waiting for the next one). When the proxy itself asked for
//! `stream_options.include_usage`, the extra usage-only event is removed so the
//! client sees exactly what it asked for.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct SseUsageTap {
    pending: BytesMut,
    strip_usage_event: bool,
    /// Tokens from the usage event, once seen.
    pub usage_tokens: Option<u64>,
    /// Bytes of generated text seen, for an estimate when usage never comes.
    pub content_bytes: usize,
    /// The stream reached `data: [DONE]`.
    pub done: bool,
}

impl SseUsageTap {
    pub fn new(strip_usage_event: bool) -> Self {
        Self {
            strip_usage_event,
            ..Self::default()
        }
    }

    /// Takes a chunk from upstream; returns what to send to the client now.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some((event_len, separator_len)) = find_event_end(&self.pending) {
            let event = self.pending.split_to(event_len + separator_len);
            if self.inspect(&event[..event_len]) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is left when upstream ends (an unterminated last event).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split();
        if !rest.is_empty() && self.inspect(&rest) {
            return rest.freeze();
        }
        Bytes::new()
    }

    /// Reads one event; returns whether the client should see it.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(event) else {
            return true;
        };
        let data: String = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect::<Vec<_>>()
            .join("\n");
        if data.trim() == "[DONE]" {
            self.done = true;
            return true;
        }
        let Ok(json) = serde_json::from_str::<Value>(&data) else {
            return true;
        };
        if let Some(total) = usage_total(&json) {
            self.usage_tokens = Some(total);
            let no_choices = json
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| c.is_empty());
            if self.strip_usage_event && no_choices {
                return false;
            }
        }
        if let Some(choices) = json.get("choices").and_then(Value::as_array) {
            for choice in choices {
                let delta = choice.get("delta").or_else(|| choice.get("text"));
                self.content_bytes += match delta {
                    Some(Value::String(s)) => s.len(),
                    Some(d) => d.get("content").and_then(Value::as_str).map_or(0, str::len),
                    None => 0,
                };
            }
        }
        true
    }
}

/// `usage.total_tokens` (or input + output for the Responses API) of a body.
pub fn usage_total(json: &Value) -> Option<u64> {
    let usage = json
        .get("usage")
        .or_else(|| json.get("response").and_then(|r| r.get("usage")))?;
    if usage.is_null() {
        return None;
    }
    usage
        .get("total_tokens")
        .and_then(Value::as_u64)
        .or_else(|| {
            let input = usage
                .get("input_tokens")
                .or_else(|| usage.get("prompt_tokens"))?
                .as_u64()?;
            let output = usage
                .get("output_tokens")
                .or_else(|| usage.get("completion_tokens"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Some(input + output)
        })
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn relays_events_as_they_complete_and_reads_usage() {
        let mut tap = SseUsageTap::new(false);
        let whole = format!("{CHUNK}{USAGE}{DONE}");
        let (a, b) = whole.as_bytes().split_at(10);
        assert!(tap.push(a).is_empty(), "half an event is held");
        let out = tap.push(b);
        assert_eq!(out, whole.as_bytes());
        assert_eq!(tap.usage_tokens, Some(7));
        assert_eq!(tap.content_bytes, 5);
        assert!(tap.done);
    }

    #[test]
    fn strips_the_usage_event_it_asked_for() {
        let mut tap = SseUsageTap::new(true);
        let out = tap.push(format!("{CHUNK}{USAGE}{DONE}").as_bytes());
        assert_eq!(out, format!("{CHUNK}{DONE}").as_bytes());
        assert_eq!(tap.usage_tokens, Some(7));
    }

    #[test]
    fn usage_of_chat_and_responses_bodies() {
        let chat: Value = serde_json::from_str(r#"{"usage":{"total_tokens":12}}"#).unwrap();
        assert_eq!(usage_total(&chat), Some(12));
        let responses: Value =
            serde_json::from_str(r#"{"usage":{"input_tokens":3,"output_tokens":4}}"#).unwrap();
        assert_eq!(usage_total(&responses), Some(7));
        assert_eq!(usage_total(&serde_json::json!({"usage": null})), None);
    }
}
