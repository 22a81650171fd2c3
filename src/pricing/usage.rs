//! The token counts a price applies to, read from an upstream `usage`.

use super::Price;
use serde_json::Value;

/// Tokens of one call, as the upstream reports them. `cached` is the part
/// of `prompt` read from the prompt cache, `reasoning` the part of
/// `completion` spent thinking (both are *included* in their totals, as in
/// OpenAI's `usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt: u64,
    pub cached: u64,
    pub completion: u64,
    pub reasoning: u64,
}

impl TokenUsage {
    /// Prompt plus completion.
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }

    /// The cost at `price`, in pico-dollars. Parts larger than their
    /// totals (a malformed `usage`) are clamped to them, so no token is
    /// priced twice.
    pub(super) fn cost_pico(&self, price: &Price) -> u128 {
        let cached = self.cached.min(self.prompt);
        let reasoning = self.reasoning.min(self.completion);
        u128::from(self.prompt - cached) * u128::from(price.input)
            + u128::from(cached) * u128::from(price.cached_input)
            + u128::from(self.completion - reasoning) * u128::from(price.output)
            + u128::from(reasoning) * u128::from(price.reasoning)
    }
}

fn count(value: &Value, path: &[&str]) -> u64 {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_u64().unwrap_or(0)
}

/// The usage in an upstream answer (or a streamed usage event): chat
/// completions, completions and embeddings (`prompt_tokens`,
/// `completion_tokens`, `*_tokens_details`) or responses (`input_tokens`,
/// `output_tokens`, `*_tokens_details`); `None` when it has none.
pub fn usage_from_response(body: &Value) -> Option<TokenUsage> {
    // Responses put it on the response object, or on a streamed event's.
    let usage = [&body["usage"], &body["response"]["usage"]]
        .into_iter()
        .find(|u| u.is_object())?;
    if usage.get("input_tokens").is_some() || usage.get("output_tokens").is_some() {
        return Some(TokenUsage {
            prompt: count(usage, &["input_tokens"]),
            cached: count(usage, &["input_tokens_details", "cached_tokens"]),
            completion: count(usage, &["output_tokens"]),
            reasoning: count(usage, &["output_tokens_details", "reasoning_tokens"]),
        });
    }
    let prompt = count(usage, &["prompt_tokens"]);
    let completion = match usage.get("completion_tokens") {
        Some(v) => v.as_u64().unwrap_or(0),
        // Embeddings report only the prompt (and a total equal to it).
        None => count(usage, &["total_tokens"]).saturating_sub(prompt),
    };
    Some(TokenUsage {
        prompt,
        cached: count(usage, &["prompt_tokens_details", "cached_tokens"]),
        completion,
        reasoning: count(usage, &["completion_tokens_details", "reasoning_tokens"]),
    })
}
