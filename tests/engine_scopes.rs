//! Per-model and per-user limits and budget holds in the engine, with a
//! fake clock: a model's daily budget refuses the call whose worst case
//! would cross it until local midnight; holds count against a hard budget
//! until they settle; users past the tracked cap share one scope (stricter,
//! never looser); the day's breakdown starts afresh at local midnight.

use chrono::TimeZone;
use quota_alert::engine::scopes::{MAX_USER_SCOPES, OTHER_USERS};
use quota_alert::engine::settings::WorkspaceSettings;
use quota_alert::engine::{
    CallOutcome, CallScope, Engine, EngineConfig, Hold, LimitKind, ManualClock, TokenRoom,
};
use quota_alert::wire::{LimitOverrides, Limits, SettingsPatch};
use serde_json::json;
use std::sync::Arc;

const CENT: u64 = 10_000_000;

fn engine_with(start_ms: u64, settings: serde_json::Value) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start_ms));
    let config = EngineConfig {
        default_limits: Limits {
            requests_per_minute: 100_000,
            requests_per_day: 1_000_000,
            tokens_per_minute: 10_000_000,
            tokens_per_day: 100_000_000,
        },
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, clock.clone());
    let limits = engine
        .create_workspace("acme", &LimitOverrides::default())
        .unwrap();
    let patch: SettingsPatch = serde_json::from_value(settings).unwrap();
    let settings = WorkspaceSettings::default().patched(&patch).unwrap();
    engine.configure("acme", limits, settings).unwrap();
    (engine, clock)
}

fn hold(id: &str, cost_nano: u64, model: Option<&str>, user: Option<&str>) -> Hold {
    Hold {
        reservation_id: id.into(),
        tokens: 100,
        expires_at_ms: u64::MAX / 2,
        cost_nano,
        unpriced: false,
        scope: CallScope {
            model: model.map(str::to_string),
            user: user.map(str::to_string),
        },
    }
}

fn settle(engine: &Engine, id: &str, cost_nano: u64) {
    let outcome = CallOutcome {
        cost_nano: Some(cost_nano),
        ..CallOutcome::success(30)
    }
    .settling(Some(id.to_string()));
    engine.complete("acme", &outcome).unwrap();
}

fn limited(admission: &quota_alert::engine::Admission) -> &quota_alert::engine::Limited {
    match &admission.token_refusal {
        Some(TokenRoom::Limited(limited)) => limited,
        other => panic!("not refused by a rule: {other:?} ({:?})", admission.check),
    }
}

#[test]
fn holds_count_against_a_hard_budget_until_they_settle_for_less() {
    let (engine, _clock) = engine_with(
        1_800_000_000_000,
        json!({"budgets": [{"period": "day", "amount_usd": 0.10, "kind": "hard"}]}),
    );
    for i in 0..4 {
        let admission = engine
            .admit(
                "acme",
                Some(&hold(&format!("r{i}"), 2 * CENT + CENT / 2, None, None)),
            )
            .unwrap();
        assert!(admission.check.allowed, "{i}: {:?}", admission.check);
    }
    let refused = engine
        .admit("acme", Some(&hold("r4", 2 * CENT + CENT / 2, None, None)))
        .unwrap();
    assert!(!refused.check.allowed);
    let why = limited(&refused);
    assert_eq!(why.kind, LimitKind::Spend);
    assert_eq!(
        why.wait_ms,
        Some(1_000),
        "only holds in the way: retry soon"
    );
    assert!(
        why.reason.contains("Daily budget of $0.10"),
        "{}",
        why.reason
    );
    // Settled for a tenth of their worst case: room again.
    for i in 0..4 {
        settle(&engine, &format!("r{i}"), CENT / 4);
    }
    assert!(
        engine
            .admit("acme", Some(&hold("r5", 2 * CENT, None, None)))
            .unwrap()
            .check
            .allowed
    );
    // A call that alone costs more than the budget can never pass.
    let never = engine
        .admit("acme", Some(&hold("r6", 11 * CENT, None, None)))
        .unwrap();
    assert_eq!(limited(&never).wait_ms, None);
}

#[test]
fn a_models_daily_budget_refuses_until_local_midnight_and_spares_other_models() {
    let tokyo = chrono_tz::Asia::Tokyo;
    let start = tokyo
        .with_ymd_and_hms(2026, 12, 3, 22, 0, 0)
        .unwrap()
        .timestamp_millis() as u64;
    let (engine, clock) = engine_with(
        start,
        json!({"time_zone": "Asia/Tokyo", "model_limits": {"o3": {"budget_usd": 0.05}}}),
    );
    assert!(
        engine
            .admit(
                "acme",
                Some(&hold("a", 4 * CENT, Some("o3-2025-04-16"), None))
            )
            .unwrap()
            .check
            .allowed
    );
    settle(&engine, "a", 4 * CENT);
    let refused = engine
        .admit("acme", Some(&hold("b", 2 * CENT, Some("o3"), None)))
        .unwrap();
    let why = limited(&refused);
    assert_eq!(why.kind, LimitKind::Spend);
    assert_eq!(why.wait_ms, Some(2 * 3_600_000), "until midnight in Tokyo");
    assert!(
        why.reason.starts_with("Model o3 daily budget of $0.05"),
        "{}",
        why.reason
    );
    assert!(
        engine
            .admit("acme", Some(&hold("c", 2 * CENT, Some("o4-mini"), None)))
            .unwrap()
            .check
            .allowed,
        "another model has no rule"
    );
    clock.advance_ms(2 * 3_600_000);
    assert!(
        engine
            .admit("acme", Some(&hold("d", 2 * CENT, Some("o3"), None)))
            .unwrap()
            .check
            .allowed
    );
    // The breakdown is of the new day only.
    let snapshot = engine.snapshot("acme").unwrap();
    assert!(snapshot.by_model.is_empty(), "{:?}", snapshot.by_model);
}

#[test]
fn users_past_the_cap_share_one_scope_held_to_the_default() {
    let (engine, _clock) = engine_with(
        1_800_000_000_000,
        json!({"user_limits": {"default": {"requests_per_minute": 1}}}),
    );
    for i in 0..MAX_USER_SCOPES {
        let user = format!("user-{i}");
        assert!(
            engine
                .admit("acme", Some(&hold(&format!("h{i}"), 0, None, Some(&user))))
                .unwrap()
                .check
                .allowed
        );
    }
    // Two new users after the cap: the first passes, the second shares its
    // minute and is refused, naming the shared scope.
    assert!(
        engine
            .admit("acme", Some(&hold("x1", 0, None, Some("late-1"))))
            .unwrap()
            .check
            .allowed
    );
    let refused = engine
        .admit("acme", Some(&hold("x2", 0, None, Some("late-2"))))
        .unwrap();
    let why = limited(&refused);
    assert_eq!(why.kind, LimitKind::Requests);
    assert!(why.reason.contains("beyond the first"), "{}", why.reason);
    assert!(!OTHER_USERS.is_empty());
    // A user with a scope of their own is still judged alone.
    let again = engine
        .admit("acme", Some(&hold("y", 0, None, Some("user-0"))))
        .unwrap();
    assert!(limited(&again).reason.contains("User user-0"));
}

#[test]
fn token_limits_per_model_count_holds_in_flight() {
    let (engine, _clock) = engine_with(
        1_800_000_000_000,
        json!({"model_limits": {"gpt-4o": {"tokens_per_minute": 250}}}),
    );
    assert!(
        engine
            .admit("acme", Some(&hold("a", 0, Some("gpt-4o"), None)))
            .unwrap()
            .check
            .allowed
    );
    assert!(
        engine
            .admit("acme", Some(&hold("b", 0, Some("gpt-4o"), None)))
            .unwrap()
            .check
            .allowed
    );
    let refused = engine
        .admit("acme", Some(&hold("c", 0, Some("gpt-4o"), None)))
        .unwrap();
    let why = limited(&refused);
    assert_eq!(why.kind, LimitKind::Tokens);
    assert!(why.reason.contains("200 held"), "{}", why.reason);
    engine.release("acme", "a").unwrap();
    assert!(
        engine
            .admit("acme", Some(&hold("c", 0, Some("gpt-4o"), None)))
            .unwrap()
            .check
            .allowed
    );
}
