//! Price arithmetic against hand-computed cases.

use super::*;
use serde_json::json;

fn at(date: &str) -> u64 {
    date_ms(date, "test").unwrap() + 12 * 3_600_000
}

fn usage(prompt: u64, cached: u64, completion: u64, reasoning: u64) -> TokenUsage {
    TokenUsage {
        prompt,
        cached,
        completion,
        reasoning,
    }
}

#[test]
fn the_shipped_table_parses_and_prices_the_current_families() {
    let table = PriceTable::parse(BUILTIN).expect("config/prices.json parses");
    assert!(!table.taken.is_empty());
    for model in [
        "gpt-5",
        "gpt-4.1-mini",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
        "text-embedding-3-small",
    ] {
        assert!(table.price(model, at("2025-09-01")).is_some(), "{model}");
    }
    assert_eq!(PriceTable::builtin(), &table);
}

#[test]
fn dearer_variants_are_not_priced_as_their_cheaper_family() {
    // The family rule prices `o1-pro` as `o1` unless the table names it:
    // a tenant calling it would spend ten times what a budget saw.
    let table = PriceTable::builtin();
    let now = at("2025-09-01");
    for (variant, family) in [
        ("o1-pro", "o1"),
        ("o3-deep-research", "o3"),
        ("o4-mini-deep-research-2025-06-26", "o4-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o"),
    ] {
        let (v, f) = (table.price(variant, now), table.price(family, now));
        assert!(
            v.zip(f)
                .is_some_and(|(v, f)| v.input > f.input && v.output > f.output),
            "{variant}: {v:?}, {family}: {f:?}"
        );
    }
}

#[test]
fn cached_prompt_tokens_cost_the_cached_price() {
    // gpt-4o: $2.50 input, $1.25 cached, $10 output per 1M.
    // 600 × 2.5 + 400 × 1.25 + 500 × 10 = 1 500 + 500 + 5 000 µ$ = $0.007.
    let table = PriceTable::builtin();
    let cost = table.cost_nano("gpt-4o", at("2025-09-01"), &usage(1000, 400, 500, 0), false);
    assert_eq!(cost, Some(7_000_000));
}

#[test]
fn reasoning_tokens_cost_the_price_in_force_at_the_call() {
    // o3 before 2025-06-10: $10 / $40; 2 000 × 10 + 3 000 × 40 = 140 000 µ$.
    let table = PriceTable::builtin();
    let call = usage(2000, 0, 3000, 2500);
    assert_eq!(
        table.cost_nano("o3", at("2025-05-01"), &call, false),
        Some(140_000_000)
    );
    // From 2025-06-10: $2 / $8; 2 000 × 2 + 3 000 × 8 = 28 000 µ$.
    assert_eq!(
        table.cost_nano("o3", at("2025-07-01"), &call, false),
        Some(28_000_000)
    );
    // A price of its own for reasoning, when a table sets one.
    let custom = PriceTable::parse(
        r#"{"models": {"thinker": [{"from": "2025-01-01", "input": 1, "output": 2, "reasoning": 5}]}}"#,
    )
    .unwrap();
    // $1 / $2 / $5 per 1M: 10 × 1 + 6 × 2 + 4 × 5 = 42 µ$ = 42 000 n$.
    assert_eq!(
        custom.cost_nano("thinker", at("2025-02-01"), &usage(10, 0, 10, 4), false),
        Some(42_000)
    );
}

#[test]
fn tiny_calls_are_exact_to_the_nano_dollar_and_batch_pays_half() {
    let table = PriceTable::builtin();
    // gpt-5-nano: $0.05 / $0.40; 7 × 0.05 + 3 × 0.40 = 1.55 µ$ = 1 550 n$.
    assert_eq!(
        table.cost_nano("gpt-5-nano", at("2025-09-01"), &usage(7, 0, 3, 0), false),
        Some(1550)
    );
    // gpt-4o-mini, 1M in and 1M out: $0.15 + $0.60 = $0.75; batch $0.375.
    let million = usage(1_000_000, 0, 1_000_000, 0);
    assert_eq!(
        table.cost_nano("gpt-4o-mini", at("2025-09-01"), &million, false),
        Some(750_000_000)
    );
    assert_eq!(
        table.cost_nano("gpt-4o-mini", at("2025-09-01"), &million, true),
        Some(375_000_000)
    );
}

#[test]
fn parts_larger_than_their_totals_are_not_priced_twice() {
    let table = PriceTable::builtin();
    // cached 900 of a 100-token prompt: all 100 at the cached price,
    // 100 tokens × $1.25 per 1M = 125 µ$ = 125 000 n$.
    assert_eq!(
        table.cost_nano("gpt-4o", at("2025-09-01"), &usage(100, 900, 0, 0), false),
        Some(125_000)
    );
}

#[test]
fn dated_and_fine_tuned_names_take_their_family_price() {
    let table = PriceTable::builtin();
    for (model, entry) in [
        ("gpt-4o-mini-2024-07-18", Some("gpt-4o-mini")),
        ("gpt-4o-2024-08-06", Some("gpt-4o")),
        (
            "ft:gpt-4o-mini-2024-07-18:acme::abc123",
            Some("gpt-4o-mini"),
        ),
        ("gpt-4.1-nano", Some("gpt-4.1-nano")),
        ("gpt-4-0613", Some("gpt-4")),
        ("gpt-40", None),
        ("llama-3", None),
        ("", None),
    ] {
        assert_eq!(table.entry_for(model), entry, "{model}");
    }
    assert_eq!(
        table.cost_nano("llama-3", 0, &usage(1, 0, 1, 0), false),
        None
    );
}

#[test]
fn a_reserve_prices_every_output_token_at_the_dearest_rate() {
    let table = PriceTable::builtin();
    // gpt-4o: 1 000 × 2.5 + 4 096 × 10 = 2 500 + 40 960 µ$ = $0.04346.
    assert_eq!(
        table.worst_case_nano("gpt-4o", at("2025-09-01"), 1000, 4096),
        Some(43_460_000)
    );
}

#[test]
fn usage_is_read_from_every_answer_shape() {
    let chat = json!({"usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 4}}});
    assert_eq!(usage_from_response(&chat), Some(usage(20, 5, 10, 4)));
    let responses = json!({"usage": {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19,
        "input_tokens_details": {"cached_tokens": 2}, "output_tokens_details": {"reasoning_tokens": 3}}});
    assert_eq!(usage_from_response(&responses), Some(usage(12, 2, 7, 3)));
    let streamed_response = json!({"type": "response.completed", "response": {"usage": {"input_tokens": 1, "output_tokens": 2}}});
    assert_eq!(
        usage_from_response(&streamed_response),
        Some(usage(1, 0, 2, 0))
    );
    let embeddings = json!({"usage": {"prompt_tokens": 8, "total_tokens": 8}});
    assert_eq!(usage_from_response(&embeddings), Some(usage(8, 0, 0, 0)));
    assert_eq!(usage_from_response(&json!({"usage": null})), None);
    assert_eq!(
        usage_from_response(&json!({"usage": {"prompt_tokens": -3, "completion_tokens": "x"}})),
        Some(usage(0, 0, 0, 0))
    );
}

#[test]
fn a_bad_table_is_refused_naming_the_problem() {
    for (json, says) in [
        (
            r#"{"models": {"m": [{"from": "2025-01-01", "input": -1, "output": 1}]}}"#,
            "`input`",
        ),
        (
            r#"{"models": {"m": [{"from": "2025-13-01", "input": 1, "output": 1}]}}"#,
            "not a date",
        ),
        (
            r#"{"models": {"m": [{"from": "2025-02-01", "input": 1, "output": 1}, {"from": "2025-01-01", "input": 1, "output": 1}]}}"#,
            "oldest first",
        ),
        (r#"{"currency": "EUR", "models": {}}"#, "currency"),
        (r#"{"models": {"m": []}}"#, "at least one"),
        (
            r#"{"models": {"a b": [{"from": "2025-01-01", "input": 1, "output": 1}]}}"#,
            "without spaces",
        ),
        (r#"{"models": {}, "batch_discount": 2}"#, "batch_discount"),
        (r#"{"models": {}, "extra": 1}"#, "unknown field"),
        ("[]", "not valid"),
    ] {
        let error = PriceTable::parse(json).expect_err(json).to_string();
        assert!(error.contains(says), "{json}: {error}");
    }
}

#[test]
fn an_operator_table_overrides_and_extends_the_shipped_one() {
    let own = PriceTable::parse(
        r#"{"models": {"gpt-4o": [{"from": "2020-01-01", "input": 1, "output": 1}], "house-model": [{"from": "2020-01-01", "input": 3, "output": 3}]}}"#,
    )
    .unwrap();
    let table = PriceTable::builtin().clone().overridden_by(own);
    assert_eq!(
        table.cost_nano("gpt-4o", at("2025-09-01"), &usage(1000, 0, 0, 0), false),
        Some(1_000_000)
    );
    assert_eq!(
        table.cost_nano(
            "house-model",
            at("2025-09-01"),
            &usage(1000, 0, 0, 0),
            false
        ),
        Some(3_000_000)
    );
    assert!(
        table.price("gpt-4o-mini", at("2025-09-01")).is_some(),
        "the rest kept"
    );
}

#[test]
fn amounts_read_and_show_as_dollars() {
    assert_eq!(format_usd(1_500_000_000), "$1.50");
    assert_eq!(format_usd(0), "$0.00");
    assert_eq!(format_usd(7_000_000), "$0.007000");
    assert_eq!(usd_to_nano(12.5), Some(12_500_000_000));
    assert_eq!(usd_to_nano(-1.0), None);
    assert_eq!(usd_to_nano(f64::NAN), None);
    assert_eq!(nano_to_usd(2_500_000_000), 2.5);
}
