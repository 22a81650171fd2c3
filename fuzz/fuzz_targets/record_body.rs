//! The body of `POST /api/quota/record`: `serde_json::from_slice::<RecordRequest>`
//! then `outcome_from_record` never panic; an accepted outcome is within the
//! documented bounds and can be recorded by the engine without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quota_alert::api::quota::{outcome_from_record, MAX_TOKENS_PER_CALL};
use quota_alert::engine::{Engine, EngineConfig, ManualClock};
use quota_alert::wire::{LimitOverrides, RecordRequest};
use std::sync::Arc;

const DAY_MS: u64 = 86_400_000;
const START_MS: u64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<RecordRequest>(data) else {
        return;
    };
    let success = body.success;
    let Ok(outcome) = outcome_from_record(body) else {
        return;
    };
    assert!(outcome.tokens <= MAX_TOKENS_PER_CALL);
    assert_eq!(outcome.error.is_none(), success, "success iff no error");
    for ms in [
        outcome.retry_after_ms,
        outcome.headers.retry_after_ms,
        outcome.headers.reset_requests_ms,
        outcome.headers.reset_tokens_ms,
    ]
    .into_iter()
    .flatten()
    {
        assert!(ms <= DAY_MS, "{ms} ms");
    }

    // Whatever was accepted, the engine takes it.
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = Engine::new(EngineConfig::default(), clock.clone());
    engine
        .create_workspace("fuzz", &LimitOverrides::default())
        .unwrap();
    engine.record("fuzz", &outcome).unwrap();
    engine.complete("fuzz", &outcome).unwrap();
    let snapshot = engine.snapshot("fuzz").unwrap();
    assert_eq!(snapshot.requests_per_day.current, 1);
    assert_eq!(snapshot.tokens_per_day.current, 2 * outcome.tokens);
    let check = engine.check("fuzz").unwrap();
    assert_eq!(check.status, snapshot.status);
    assert_eq!(check.retry_after_s.is_some(), !check.allowed);
    clock.advance_ms(DAY_MS + 1);
    engine.tick();
    let later = engine.snapshot("fuzz").unwrap();
    assert_eq!(later.requests_per_day.current, 0);
    assert!(
        later.retry_after_s.is_none(),
        "every block ends within a day: {later:?}"
    );
});
