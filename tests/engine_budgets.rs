//! Spend budgets in the engine, with a fake clock: a hard budget spent is
//! QUOTA_EXCEEDED naming the budget and its reset, until midnight of the
//! workspace's time zone (DST and month ends included); a soft one crossed
//! is a WARNING; the snapshot shows each budget's standing.

use chrono::TimeZone;
use quota_alert::engine::settings::WorkspaceSettings;
use quota_alert::engine::{CallOutcome, Engine, EngineConfig, ManualClock};
use quota_alert::wire::{LimitOverrides, Limits, QuotaStatus, SettingsPatch};
use serde_json::json;
use std::sync::Arc;

const DOLLAR: u64 = 1_000_000_000;

fn at(zone: chrono_tz::Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> u64 {
    zone.with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .unwrap()
        .timestamp_millis() as u64
}

fn engine_with(start_ms: u64, settings: serde_json::Value) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start_ms));
    let config = EngineConfig {
        default_limits: Limits {
            requests_per_minute: 1_000,
            requests_per_day: 100_000,
            tokens_per_minute: 1_000_000,
            tokens_per_day: 10_000_000,
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

fn spend(engine: &Engine, nano: u64) {
    let outcome = CallOutcome {
        cost_nano: Some(nano),
        ..CallOutcome::success(10)
    };
    engine.record("acme", &outcome).unwrap();
}

#[test]
fn a_hard_monthly_budget_warns_then_refuses_until_the_first_in_its_zone() {
    let berlin = chrono_tz::Europe::Berlin;
    let (engine, clock) = engine_with(
        at(berlin, 2026, 10, 30, 12, 0),
        json!({"time_zone": "Europe/Berlin", "budgets": [{"period": "month", "amount_usd": 10, "kind": "hard"}]}),
    );
    spend(&engine, 8 * DOLLAR);
    let snap = engine.snapshot("acme").unwrap();
    assert_eq!(snap.status, QuotaStatus::Warning, "{}", snap.message);
    assert!(
        snap.message.contains("Monthly budget at 80%"),
        "{}",
        snap.message
    );
    assert_eq!(snap.budgets.len(), 1);
    assert_eq!(snap.budgets[0].spent_usd, 8.0);
    assert_eq!(snap.budgets[0].percentage, 80.0);
    // Midnight of 1 November in Berlin (CET, after the October change).
    assert_eq!(snap.budgets[0].resets_at, "2026-10-31T23:00:00.000Z");
    // The period's local days and zone, for the browser (it has no zone data).
    assert_eq!(snap.budgets[0].first_day, "2026-10-01");
    assert_eq!(snap.budgets[0].last_day, "2026-10-31");
    assert_eq!(snap.budgets[0].time_zone, "Europe/Berlin");

    spend(&engine, 2 * DOLLAR);
    let snap = engine.snapshot("acme").unwrap();
    assert_eq!(snap.status, QuotaStatus::QuotaExceeded, "{}", snap.message);
    assert!(
        snap.message
            .contains("Monthly budget of $10.00 spent ($10.00)"),
        "{}",
        snap.message
    );
    assert!(
        snap.message.contains("2026-11-01 00:00 CET"),
        "{}",
        snap.message
    );
    assert!(
        !engine.check("acme").unwrap().allowed,
        "refused before OpenAI"
    );
    let reset = at(berlin, 2026, 11, 1, 0, 0);
    let retry = engine.check("acme").unwrap().retry_after_s.unwrap();
    assert!(
        (retry - (reset - engine.now_ms()) as f64 / 1000.0).abs() < 1.0,
        "{retry}"
    );

    // One minute before midnight there: still spent. At midnight: a new month.
    clock.set_ms(reset - 60_000);
    assert_eq!(
        engine.snapshot("acme").unwrap().status,
        QuotaStatus::QuotaExceeded
    );
    clock.set_ms(reset);
    let snap = engine.snapshot("acme").unwrap();
    assert_eq!(snap.status, QuotaStatus::Normal, "{}", snap.message);
    assert_eq!(snap.budgets[0].spent_usd, 0.0);
    assert!(engine.check("acme").unwrap().allowed);
}

#[test]
fn a_daily_budget_resets_at_local_midnight_across_the_spring_change() {
    let ny = chrono_tz::America::New_York;
    // 2026-03-08: New York's clocks go 02:00 → 03:00.
    let (engine, clock) = engine_with(
        at(ny, 2026, 3, 7, 23, 30),
        json!({"time_zone": "America/New_York", "budgets": [{"period": "day", "amount_usd": 1, "kind": "hard"}]}),
    );
    spend(&engine, DOLLAR);
    assert_eq!(
        engine.snapshot("acme").unwrap().status,
        QuotaStatus::QuotaExceeded
    );
    clock.set_ms(at(ny, 2026, 3, 8, 0, 0));
    assert_eq!(engine.snapshot("acme").unwrap().status, QuotaStatus::Normal);
    // The 8th is 23 hours long: its budget ends at the next local midnight.
    spend(&engine, DOLLAR);
    let snap = engine.snapshot("acme").unwrap();
    assert_eq!(snap.status, QuotaStatus::QuotaExceeded);
    let next = at(ny, 2026, 3, 9, 0, 0);
    assert_eq!(next - at(ny, 2026, 3, 8, 0, 0), 23 * 3_600_000);
    clock.set_ms(next - 1);
    assert_eq!(
        engine.snapshot("acme").unwrap().status,
        QuotaStatus::QuotaExceeded
    );
    clock.set_ms(next);
    assert_eq!(engine.snapshot("acme").unwrap().status, QuotaStatus::Normal);
}

#[test]
fn a_soft_budget_crossed_warns_and_refuses_nothing() {
    let utc = chrono_tz::UTC;
    let (engine, _) = engine_with(
        at(utc, 2026, 6, 15, 12, 0),
        json!({"budgets": [{"period": "week", "amount_usd": 5, "kind": "soft"}]}),
    );
    spend(&engine, 6 * DOLLAR);
    let snap = engine.snapshot("acme").unwrap();
    assert_eq!(snap.status, QuotaStatus::Warning);
    assert!(
        snap.message
            .contains("Weekly soft budget of $5.00 crossed ($6.00 spent)"),
        "{}",
        snap.message
    );
    assert!(engine.check("acme").unwrap().allowed);
    // An admin reset clears spend with the rest of the counts.
    engine.reset("acme").unwrap();
    assert_eq!(engine.snapshot("acme").unwrap().budgets[0].spent_usd, 0.0);
}
