//! What one request may take from the token windows: its prompt, counted
//! with the model's tokenizer, plus the most it may generate.
//!
//! The count is what admission reserves, so it errs on the side of too much
//! where the API's own accounting is not public (tool schemas, images): a
//! hold that is a little large is settled to the real usage moments later,
//! one that is too small lets concurrent calls overshoot the limit.

use serde_json::Value;

use super::{count, encoding_for_model, Encoding};

/// Tokens every chat message costs beyond its text (role and separators),
/// and the tokens that prime the reply: OpenAI's published counting rule
/// for the chat format.
const PER_MESSAGE_TOKENS: u64 = 3;
const PER_NAME_TOKENS: u64 = 1;
const REPLY_PRIMING_TOKENS: u64 = 3;

/// An image part is held at the most an image can cost in high detail
/// (OpenAI's published rule: fitted into 2048×2048, shortest side 768, so
/// at most 768×2048 = 8 tiles of 512): 85 base + 8 × 170 for the gpt-4o
/// family; `detail: "low"` is the base alone. Settled to the real count when
/// the answer comes. (A 1024×1024 image, 765, was held before: a tenant's
/// tall images, many to a request, overshot the limit by the difference.)
pub const IMAGE_PART_TOKENS: u64 = 85 + 8 * 170;
const LOW_DETAIL_IMAGE_TOKENS: u64 = 85;
/// gpt-4o-mini counts images at 2 833 base + 5 667 a tile (its usage says
/// so), some 33 times gpt-4o's.
const MINI_IMAGE_TOKENS: u64 = 2_833 + 8 * 5_667;
const MINI_LOW_DETAIL_IMAGE_TOKENS: u64 = 2_833;
/// The models that count images in 32-pixel patches (at most 1 536) times a
/// multiplier of up to 2.46, whatever the detail.
const PATCH_MODEL_PREFIXES: &[&str] = &[
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
    "gpt-5-mini",
    "gpt-5-nano",
];
const PATCH_IMAGE_TOKENS: u64 = 3_779;

/// What one image part is held at for `model`: (high or auto detail, low).
fn image_costs(model: Option<&str>) -> (u64, u64) {
    let model = model.unwrap_or_default().to_ascii_lowercase();
    let base = model.strip_prefix("ft:").unwrap_or(&model);
    if base.starts_with("gpt-4o-mini") {
        (MINI_IMAGE_TOKENS, MINI_LOW_DETAIL_IMAGE_TOKENS)
    } else if PATCH_MODEL_PREFIXES.iter().any(|p| base.starts_with(p)) {
        (PATCH_IMAGE_TOKENS, PATCH_IMAGE_TOKENS)
    } else {
        (IMAGE_PART_TOKENS, LOW_DETAIL_IMAGE_TOKENS)
    }
}

/// How a request's text and images are counted: the model's encoding and
/// its image costs.
#[derive(Clone, Copy)]
struct Counting {
    encoding: Encoding,
    /// (high or auto detail, low detail), see [`image_costs`].
    images: (u64, u64),
}

/// The legacy Completions endpoint's own default `max_tokens`.
pub const COMPLETIONS_DEFAULT_MAX_TOKENS: u64 = 16;

/// What a call is held for at admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenNeed {
    /// The prompt, as the model's tokenizer counts it.
    pub prompt: u64,
    /// The most the call may generate: its own cap times its choices.
    pub max_output: u64,
    /// The request named no output cap and the configured default was used.
    pub default_cap_used: bool,
}

impl TokenNeed {
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.max_output)
    }
}

/// The token need of a JSON request to `endpoint` (the path after `/v1`,
/// e.g. `/chat/completions`). Endpoints that take no tokens (models,
/// moderations, files) need nothing; `default_output_cap` stands in for an
/// output cap the request does not give.
pub fn request_need(endpoint: &str, body: &Value, default_output_cap: u64) -> TokenNeed {
    let model = body.get("model").and_then(Value::as_str);
    let counting = Counting {
        encoding: model.map(encoding_for_model).unwrap_or(Encoding::O200k),
        images: image_costs(model),
    };
    let encoding = counting.encoding;
    let endpoint = endpoint.trim_end_matches('/');
    match endpoint {
        "/chat/completions" => chat_need(counting, body, default_output_cap),
        "/responses" => responses_need(counting, body, default_output_cap),
        "/completions" => completions_need(encoding, body),
        "/embeddings" => TokenNeed {
            prompt: prompt_tokens(encoding, body.get("input")),
            ..TokenNeed::default()
        },
        _ => TokenNeed::default(),
    }
}

fn chat_need(counting: Counting, body: &Value, default_cap: u64) -> TokenNeed {
    let encoding = counting.encoding;
    let mut prompt = REPLY_PRIMING_TOKENS;
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for message in messages {
            prompt = prompt.saturating_add(message_tokens(counting, message));
        }
    }
    prompt = prompt
        .saturating_add(json_tokens(encoding, body.get("tools")))
        .saturating_add(json_tokens(encoding, body.get("functions")))
        .saturating_add(json_tokens(encoding, body.get("response_format")));
    let (cap, default_cap_used) =
        output_cap(body, &["max_completion_tokens", "max_tokens"], default_cap);
    TokenNeed {
        prompt,
        max_output: cap.saturating_mul(choices(body, &["n"])),
        default_cap_used,
    }
}

fn responses_need(counting: Counting, body: &Value, default_cap: u64) -> TokenNeed {
    let encoding = counting.encoding;
    let mut prompt = text_tokens(encoding, body.get("instructions"));
    match body.get("input") {
        Some(Value::Array(items)) => {
            for item in items {
                prompt = prompt.saturating_add(message_tokens(counting, item));
            }
        }
        other => prompt = prompt.saturating_add(text_tokens(encoding, other)),
    }
    prompt = prompt
        .saturating_add(json_tokens(encoding, body.get("tools")))
        .saturating_add(json_tokens(encoding, body.get("text")));
    let (max_output, default_cap_used) = output_cap(body, &["max_output_tokens"], default_cap);
    TokenNeed {
        prompt,
        max_output,
        default_cap_used,
    }
}

fn completions_need(encoding: Encoding, body: &Value) -> TokenNeed {
    // Completions has a documented default of its own, so the configured
    // cap never applies.
    let (cap, _) = output_cap(body, &["max_tokens"], COMPLETIONS_DEFAULT_MAX_TOKENS);
    TokenNeed {
        prompt: prompt_tokens(encoding, body.get("prompt")),
        // `best_of` candidates are generated (and billed) server-side.
        max_output: cap.saturating_mul(choices(body, &["n", "best_of"])),
        default_cap_used: false,
    }
}

/// The first of `fields` that holds a number; `default` when none does.
fn output_cap(body: &Value, fields: &[&str], default: u64) -> (u64, bool) {
    fields
        .iter()
        .find_map(|field| body.get(*field).and_then(count_of))
        .map_or((default, true), |cap| (cap, false))
}

/// A count as a tenant may write it: `100`, or `100.0` / `1e5`, which JSON
/// parsers upstream may read as the same integer (read as "no cap", a
/// tenant's `"max_tokens": 100000.0` would be held at the default cap and
/// overshoot). Fractions round up; negative numbers are not counts.
fn count_of(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

fn choices(body: &Value, fields: &[&str]) -> u64 {
    fields
        .iter()
        .filter_map(|field| body.get(*field).and_then(count_of))
        .max()
        .unwrap_or(1)
        .max(1)
}

/// One chat message or Responses input item: its framing, role, name,
/// content (a string or a list of parts) and any tool calls it carries.
fn message_tokens(counting: Counting, message: &Value) -> u64 {
    let encoding = counting.encoding;
    let Some(fields) = message.as_object() else {
        return text_tokens(encoding, Some(message));
    };
    let mut tokens = PER_MESSAGE_TOKENS;
    for (key, value) in fields {
        let add = match key.as_str() {
            "content" => content_tokens(counting, value),
            "name" => PER_NAME_TOKENS.saturating_add(text_tokens(encoding, Some(value))),
            "role" | "tool_call_id" | "call_id" | "output" | "arguments" | "text" => {
                text_tokens(encoding, Some(value))
            }
            "tool_calls" | "function_call" => json_tokens(encoding, Some(value)),
            _ => 0,
        };
        tokens = tokens.saturating_add(add);
    }
    tokens
}

fn content_tokens(counting: Counting, content: &Value) -> u64 {
    match content {
        Value::Array(parts) => parts
            .iter()
            .map(|part| part_tokens(counting, part))
            .fold(0, u64::saturating_add),
        other => text_tokens(counting.encoding, Some(other)),
    }
}

fn part_tokens(counting: Counting, part: &Value) -> u64 {
    let encoding = counting.encoding;
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind.contains("image") || part.get("image_url").is_some() {
        let detail = part
            .get("detail")
            .or_else(|| part.get("image_url").and_then(|i| i.get("detail")))
            .and_then(Value::as_str);
        let (high, low) = counting.images;
        return if detail == Some("low") { low } else { high };
    }
    match part.get("text") {
        Some(text) => text_tokens(encoding, Some(text)),
        None => text_tokens(encoding, Some(part)),
    }
}

/// A `prompt` or `input`: a string, a list of strings, a list of token ids
/// (already tokens: counted one each) or a list of such lists.
fn prompt_tokens(encoding: Encoding, value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Number(_) => 1,
                other => prompt_tokens(encoding, Some(other)),
            })
            .fold(0, u64::saturating_add),
        other => text_tokens(encoding, other),
    }
}

/// Text the model reads: a string as it is; anything else by its JSON.
fn text_tokens(encoding: Encoding, value: Option<&Value>) -> u64 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::String(text)) => count(encoding, text),
        Some(other) => json_tokens(encoding, Some(other)),
    }
}

/// Schemas and tool definitions: the API renders them in a format of its
/// own; their JSON is a slight over-count of it, on the safe side.
fn json_tokens(encoding: Encoding, value: Option<&Value>) -> u64 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::String(text)) => count(encoding, text),
        Some(other) => count(encoding, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn need(endpoint: &str, body: Value) -> TokenNeed {
        request_need(endpoint, &body, 4096)
    }

    #[test]
    fn chat_prompt_follows_the_published_counting_rule() {
        // "hello world" is 2 tokens, "user" 1: 3 + 1 + 2, plus 3 priming.
        let n = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world"}],
                   "max_tokens": 100}),
        );
        assert_eq!(n.prompt, 9);
        assert_eq!(n.max_output, 100);
        assert!(!n.default_cap_used);
        assert_eq!(n.total(), 109);
    }

    #[test]
    fn the_newer_cap_wins_and_choices_multiply_it() {
        let n = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "messages": [], "max_completion_tokens": 50,
                   "max_tokens": 9999, "n": 3}),
        );
        assert_eq!(n.max_output, 150);
    }

    #[test]
    fn no_cap_takes_the_configured_default() {
        let n = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(n.max_output, 4096);
        assert!(n.default_cap_used);
    }

    #[test]
    fn parts_images_names_and_tool_calls_all_count() {
        let plain = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "describe"}],
                   "max_tokens": 1}),
        );
        let rich = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "max_tokens": 1, "messages": [
                {"role": "user", "name": "ann", "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"q\":\"weather\"}"}}]}],
                "tools": [{"type": "function", "function": {"name": "lookup",
                    "parameters": {"type": "object"}}}]}),
        );
        assert!(
            rich.prompt > plain.prompt + IMAGE_PART_TOKENS + 10,
            "{rich:?} vs {plain:?}"
        );
        let low = need(
            "/chat/completions",
            json!({"model": "gpt-4o", "max_tokens": 1, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "x", "detail": "low"}}]}]}),
        );
        assert_eq!(low.prompt, 3 + 1 + LOW_DETAIL_IMAGE_TOKENS + 3);
    }

    #[test]
    fn an_image_is_held_at_the_most_it_can_cost_on_its_model() {
        let image = |model: &str, detail: &str| {
            need(
                "/chat/completions",
                json!({"model": model, "max_tokens": 0, "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "x", "detail": detail}}]}]}),
            )
            .prompt
                - (3 + 1 + 3)
        };
        // A 768×2048 image in high detail: 8 tiles.
        assert_eq!(image("gpt-4o", "high"), 85 + 8 * 170);
        assert_eq!(image("gpt-4o", "low"), 85);
        // gpt-4o-mini's usage counts images 33 times as many tokens.
        assert_eq!(image("gpt-4o-mini", "high"), 2_833 + 8 * 5_667);
        assert_eq!(image("gpt-4o-mini-2024-07-18", "low"), 2_833);
        // Patch-counted models ignore `detail`.
        assert_eq!(image("gpt-4.1-nano", "low"), 3_779);
        assert_eq!(image("o4-mini", "high"), 3_779);
    }

    #[test]
    fn responses_count_input_and_instructions() {
        let n = need(
            "/responses",
            json!({"model": "gpt-5", "instructions": "hello world", "input": "hello world",
                   "max_output_tokens": 10}),
        );
        assert_eq!(n.prompt, 4);
        assert_eq!(n.max_output, 10);
        let items = need(
            "/responses",
            json!({"model": "gpt-5", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "hello world"}]}]}),
        );
        assert_eq!(items.prompt, 3 + 1 + 2);
        assert!(items.default_cap_used);
    }

    #[test]
    fn completions_use_their_own_default_and_best_of() {
        let n = need(
            "/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": ["hello world", "hello"],
                   "best_of": 3}),
        );
        assert_eq!(n.prompt, 3);
        assert_eq!(n.max_output, COMPLETIONS_DEFAULT_MAX_TOKENS * 3);
        let ids = need(
            "/completions",
            json!({"prompt": [1, 2, 3, 4], "max_tokens": 0}),
        );
        assert_eq!(ids.total(), 4);
    }

    #[test]
    fn embeddings_have_no_output_and_other_endpoints_need_nothing() {
        let n = need(
            "/embeddings",
            json!({"model": "text-embedding-3-small", "input": ["hello world", [1, 2]]}),
        );
        assert_eq!(
            n,
            TokenNeed {
                prompt: 4,
                max_output: 0,
                default_cap_used: false
            }
        );
        assert_eq!(need("/moderations", json!({"input": "hello"})).total(), 0);
        assert_eq!(need("/models", json!({})).total(), 0);
    }

    #[test]
    fn caps_and_choices_written_as_floats_still_count() {
        let n = need(
            "/chat/completions",
            json!({"messages": [], "max_tokens": 100000.0, "n": 2.0}),
        );
        assert_eq!(n.max_output, 200_000);
        assert!(!n.default_cap_used);
        let n = need(
            "/responses",
            json!({"input": "hi", "max_output_tokens": 1e5}),
        );
        assert_eq!(n.max_output, 100_000);
        // Not a count: the default cap stands in, as for a missing one.
        let n = need(
            "/chat/completions",
            json!({"messages": [], "max_tokens": -5}),
        );
        assert!(n.default_cap_used);
    }

    #[test]
    fn hostile_numbers_saturate_instead_of_wrapping() {
        let n = need(
            "/chat/completions",
            json!({"messages": [], "max_tokens": u64::MAX, "n": 128}),
        );
        assert_eq!(n.total(), u64::MAX);
    }
}
