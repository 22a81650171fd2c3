//! Relays an OpenAI server-sent-event stream event by event while reading the
//! usage from it.
//!
//! Bytes are passed on as soon as an event is complete (an event is never held
//! back waiting for the next one). When the proxy itself asked for
//! `stream_options.include_usage`, the extra usage-only event is removed so the
//! client sees exactly what it asked for.
//!
//! The bytes held back waiting for an event's end are capped
//! ([`MAX_PENDING_BYTES`]): an upstream that never sends an event separator
//! would otherwise grow the buffer for as long as it streams. Past the cap the
//! tap gives up reading: everything held and everything after is passed on as
//! it comes (the client loses nothing), and the stream's tokens are estimated.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// Most bytes held waiting for the end of one event. OpenAI's events are a few
/// hundred bytes to a few KiB; a whole final response in one Responses API
/// event is the largest, far below this.
pub const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// Most generated text kept to tokenize when a stream ends without usage;
/// past it the rest is counted by bytes. Far above any model's output cap.
pub const MAX_CONTENT_KEPT: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseUsageTap {
    pending: BytesMut,
    /// How far `pending` is known to hold no event separator, so each chunk is
    /// searched once instead of the whole buffer again.
    searched: usize,
    strip_usage_event: bool,
    /// The cap was passed: bytes now go through unread.
    pub overflowed: bool,
    /// Bytes passed on without being read (after an overflow), for the estimate.
    pub unparsed_bytes: usize,
    /// Tokens from the usage event, once seen.
    pub usage_tokens: Option<u64>,
    /// The usage event's parts (cached, reasoning), to price the call.
    pub usage: Option<crate::pricing::TokenUsage>,
    /// Bytes of generated text seen, for an estimate when usage never comes.
    pub content_bytes: usize,
    /// The generated text itself (up to [`MAX_CONTENT_KEPT`]), tokenized
    /// when usage never comes.
    pub content: String,
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
        if self.overflowed {
            self.unparsed_bytes += chunk.len();
            return Bytes::copy_from_slice(chunk);
        }
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        // A separator may straddle the previous chunk's end: look back 3 bytes.
        let mut from = self.searched.saturating_sub(3);
        while let Some((event_len, separator_len)) = find_event_end(&self.pending[from..]) {
            let event = self.pending.split_to(from + event_len + separator_len);
            if self.inspect(&event[..from + event_len]) {
                out.extend_from_slice(&event);
            }
            from = 0;
        }
        self.searched = self.pending.len();
        if self.pending.len() > MAX_PENDING_BYTES {
            tracing::warn!(
                held_bytes = self.pending.len(),
                "upstream event stream sent no event separator within the parse cap; \
                 relaying the rest unread and estimating its tokens"
            );
            self.overflowed = true;
            self.unparsed_bytes += self.pending.len();
            self.searched = 0;
            out.extend_from_slice(&self.pending.split());
        }
        out.freeze()
    }

    /// Bytes of generated text to estimate tokens from when no usage came:
    /// the text read, plus everything relayed unread.
    pub fn estimated_output_bytes(&self) -> usize {
        self.content_bytes.saturating_add(self.unparsed_bytes)
    }

    /// Whatever is left when upstream ends (an unterminated last event).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split();
        self.searched = 0;
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
            self.usage = crate::pricing::usage_from_response(&json);
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
                let text = match delta {
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(d) => d.get("content").and_then(Value::as_str),
                    None => None,
                };
                if let Some(text) = text {
                    self.keep_content(text);
                }
                // Tool calls are generated tokens too.
                let calls = delta
                    .and_then(|d| d.get("tool_calls"))
                    .and_then(Value::as_array);
                for call in calls.into_iter().flatten() {
                    if let Some(args) = call
                        .get("function")
                        .and_then(|f| f.get("arguments"))
                        .and_then(Value::as_str)
                    {
                        self.keep_content(args);
                    }
                }
            }
        } else if let (Some(kind), Some(Value::String(delta))) =
            (json.get("type").and_then(Value::as_str), json.get("delta"))
        {
            // The Responses API: `response.output_text.delta`,
            // `response.function_call_arguments.delta`, ...
            if kind.ends_with(".delta") {
                self.keep_content(delta);
            }
        }
        true
    }

    fn keep_content(&mut self, text: &str) {
        self.content_bytes += text.len();
        if self.content.len() + text.len() <= MAX_CONTENT_KEPT {
            self.content.push_str(text);
        }
    }

    /// Bytes of generated text seen but not kept in [`content`](Self::content)
    /// (past its cap, or relayed unread): estimated at 4 bytes a token.
    pub fn uncounted_bytes(&self) -> usize {
        (self.content_bytes - self.content.len()).saturating_add(self.unparsed_bytes)
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
            // The upstream's numbers: summed without overflow (a panic on
            // the response path otherwise).
            Some(input.saturating_add(output))
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
    fn a_separator_split_across_chunks_is_found() {
        let mut tap = SseUsageTap::new(false);
        let whole = format!("{CHUNK}{CHUNK}");
        let mut out = Vec::new();
        for byte in whole.as_bytes() {
            out.extend_from_slice(&tap.push(std::slice::from_ref(byte)));
        }
        assert_eq!(out, whole.as_bytes());
        assert_eq!(tap.content_bytes, 10);
        let mut tap = SseUsageTap::new(false);
        let crlf = CHUNK.replace("\n\n", "\r\n\r\n");
        let (a, b) = crlf.as_bytes().split_at(crlf.len() - 2);
        assert!(tap.push(a).is_empty());
        assert_eq!(tap.push(b), crlf.as_bytes());
    }

    #[test]
    fn an_event_that_never_ends_is_passed_on_unread_past_the_cap() {
        let mut tap = SseUsageTap::new(true);
        assert_eq!(tap.push(CHUNK.as_bytes()), CHUNK.as_bytes());
        let junk = vec![b'x'; 64 * 1024];
        let mut relayed = 0;
        let mut pushed = 0;
        while !tap.overflowed {
            relayed += tap.push(&junk).len();
            pushed += junk.len();
            assert!(
                pushed <= MAX_PENDING_BYTES + junk.len(),
                "held past the cap"
            );
        }
        assert_eq!(
            relayed, pushed,
            "everything held is passed on at the overflow"
        );
        assert!(tap.pending.is_empty(), "nothing is held any more");
        // After the cap: passed through as it comes, even events (not read, so
        // the usage event asked for is not stripped: no client data is lost).
        assert_eq!(tap.push(USAGE.as_bytes()), USAGE.as_bytes());
        assert_eq!(tap.push(b"more"), &b"more"[..]);
        assert_eq!(tap.usage_tokens, None, "tokens are estimated instead");
        assert_eq!(tap.estimated_output_bytes(), 5 + pushed + USAGE.len() + 4);
        assert!(tap.finish().is_empty());
    }

    #[test]
    fn usage_of_chat_and_responses_bodies() {
        let chat: Value = serde_json::from_str(r#"{"usage":{"total_tokens":12}}"#).unwrap();
        assert_eq!(usage_total(&chat), Some(12));
        let responses: Value =
            serde_json::from_str(r#"{"usage":{"input_tokens":3,"output_tokens":4}}"#).unwrap();
        assert_eq!(usage_total(&responses), Some(7));
        assert_eq!(usage_total(&serde_json::json!({"usage": null})), None);
        let huge = serde_json::json!({"usage": {"input_tokens": u64::MAX, "output_tokens": 1}});
        assert_eq!(usage_total(&huge), Some(u64::MAX));
    }
}
