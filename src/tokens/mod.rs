//! Token counts for admission: what a request may take from the token
//! windows before it is sent, and what a stream that ended without a usage
//! event produced.
//!
//! Counted with `tiktoken-rs`, OpenAI's own BPE ranks embedded in the crate
//! (no download at run time), not "4 bytes a token": a reservation that is
//! too small lets concurrent calls overshoot a limit, one that is too large
//! refuses calls that would have fitted.

mod need;

pub use need::{request_need, TokenNeed, COMPLETIONS_DEFAULT_MAX_TOKENS, IMAGE_PART_TOKENS};

use tiktoken_rs::CoreBPE;

/// The BPE a model's text is counted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series, gpt-oss and whatever
    /// is newer than this table (new models have all used it).
    O200k,
    /// gpt-4, gpt-3.5-turbo, the text-embedding-3/ada-002 models and the
    /// other older ones.
    Cl100k,
}

/// Model-name prefixes of the cl100k generation. Everything else is o200k:
/// an unknown name is far more likely a model newer than this table.
const CL100K_PREFIXES: &[&str] = &[
    "gpt-4-",
    "gpt-3.5",
    "gpt-35",
    "text-embedding-",
    "text-davinci",
    "davinci",
    "babbage",
    "code-",
];

/// The encoding a model's prompt and output are counted in. Fine-tuned
/// names (`ft:gpt-4o-mini:org::id`) count as their base model.
pub fn encoding_for_model(model: &str) -> Encoding {
    let base = model.strip_prefix("ft:").unwrap_or(model);
    let base = base.to_ascii_lowercase();
    if base == "gpt-4" || CL100K_PREFIXES.iter().any(|p| base.starts_with(p)) {
        // gpt-4-turbo and gpt-4-0613 are cl100k; gpt-4o and gpt-4.1 are
        // caught by neither rule (no hyphen straight after "gpt-4").
        Encoding::Cl100k
    } else {
        Encoding::O200k
    }
}

fn bpe(encoding: Encoding) -> &'static CoreBPE {
    // The singletons build each table once per process (a few tens of ms)
    // and share it between threads.
    match encoding {
        Encoding::O200k => tiktoken_rs::o200k_base_singleton(),
        Encoding::Cl100k => tiktoken_rs::cl100k_base_singleton(),
    }
}

/// Tokens `text` encodes to. Special-token markers (`<|endoftext|>`) in a
/// tenant's text are counted as the plain text they are, which is how the
/// API treats them in a prompt.
pub fn count(encoding: Encoding, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    bpe(encoding).count_ordinary(text) as u64
}

/// Builds both tables now, so the first proxied call does not pay for it.
pub fn warm_up() {
    let _ = count(Encoding::O200k, "warm");
    let _ = count(Encoding::Cl100k, "warm");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_families_map_to_their_encoding() {
        for model in [
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "chatgpt-4o-latest",
            "gpt-4.1-nano",
            "gpt-5",
            "o1-preview",
            "o3-mini",
            "o4-mini",
            "ft:gpt-4o-mini:acme::abc123",
            "some-future-model",
        ] {
            assert_eq!(encoding_for_model(model), Encoding::O200k, "{model}");
        }
        for model in [
            "gpt-4",
            "gpt-4-turbo",
            "gpt-4-0613",
            "gpt-3.5-turbo",
            "GPT-3.5-TURBO-16K",
            "text-embedding-3-small",
            "text-embedding-ada-002",
            "ft:gpt-3.5-turbo:acme::x",
        ] {
            assert_eq!(encoding_for_model(model), Encoding::Cl100k, "{model}");
        }
    }

    #[test]
    fn counts_match_the_reference_tokenizer() {
        // Reference counts from OpenAI's tiktoken (Python) for these strings.
        assert_eq!(count(Encoding::Cl100k, "hello world"), 2);
        assert_eq!(count(Encoding::O200k, "hello world"), 2);
        assert_eq!(count(Encoding::Cl100k, "tiktoken is great!"), 6);
        assert_eq!(count(Encoding::O200k, ""), 0);
        // A real tokenizer, not bytes/4: 239 bytes, one token a word.
        let repeated = format!("hello{}", " hello".repeat(39));
        assert_eq!(count(Encoding::O200k, &repeated), 40);
    }

    #[test]
    fn special_token_text_is_counted_as_text() {
        let n = count(Encoding::Cl100k, "<|endoftext|>");
        assert!(n > 1, "counted as ordinary text, got {n}");
    }
}
