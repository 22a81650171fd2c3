//! The status rules, driven by a fake clock: every status entered and left,
//! precedence, windows sliding, exact admission under concurrency.

use quota_alert::engine::{CallOutcome, Engine, EngineConfig, ManualClock};
use quota_alert::wire::{LimitOverrides, Limits, QuotaStatus, UpstreamErrorReport};
use std::sync::Arc;

/// Midnight-aligned start so bucket maths is easy to follow.
const START_MS: u64 = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000);

fn engine_with(limits: Limits) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let config = EngineConfig {
        default_limits: limits,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, clock.clone());
    engine
        .create_workspace("acme", &LimitOverrides::default())
        .unwrap();
    (engine, clock)
}

fn small() -> (Engine, Arc<ManualClock>) {
    engine_with(Limits {
        requests_per_minute: 10,
        requests_per_day: 100,
        tokens_per_minute: 1_000,
        tokens_per_day: 10_000,
    })
}

fn error(status: Option<u16>, kind: &str, code: &str) -> UpstreamErrorReport {
    UpstreamErrorReport {
        http_status: status,
        error_type: Some(kind.to_string()),
        code: Some(code.to_string()),
        message: Some("words here are never read".to_string()),
    }
}

fn status(engine: &Engine) -> QuotaStatus {
    engine.snapshot("acme").unwrap().status
}

fn record_n(engine: &Engine, n: u64, tokens: u64) {
    for _ in 0..n {
        engine
            .record("acme", &CallOutcome::success(tokens))
            .unwrap();
    }
}

#[test]
fn warning_enters_at_the_share_and_leaves_as_the_window_slides() {
    let (engine, clock) = small();
    record_n(&engine, 7, 0);
    assert_eq!(status(&engine), QuotaStatus::Normal);
    record_n(&engine, 1, 0); // 8 of 10 = 80 %
    assert_eq!(status(&engine), QuotaStatus::Warning);
    let snapshot = engine.snapshot("acme").unwrap();
    assert!(
        snapshot.message.contains("Requests per minute"),
        "{}",
        snapshot.message
    );
    assert_eq!(snapshot.retry_after_s, None, "WARNING does not block");

    clock.advance_s(60);
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn local_minute_limit_rate_limits_until_the_window_slides() {
    let (engine, clock) = small();
    record_n(&engine, 10, 0);
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.status, QuotaStatus::RateLimited);
    assert_eq!(snapshot.retry_after_s, Some(60.0));
    let check = engine.check("acme").unwrap();
    assert!(!check.allowed);

    clock.advance_s(59);
    assert_eq!(status(&engine), QuotaStatus::RateLimited);
    assert_eq!(engine.check("acme").unwrap().retry_after_s, Some(1.0));
    clock.advance_s(1);
    assert!(engine.check("acme").unwrap().allowed);
    assert_ne!(status(&engine), QuotaStatus::RateLimited);
}

#[test]
fn token_minute_limit_also_rate_limits() {
    let (engine, clock) = small();
    engine.record("acme", &CallOutcome::success(1_000)).unwrap();
    assert_eq!(status(&engine), QuotaStatus::RateLimited);
    assert!(!engine.check("acme").unwrap().allowed);
    clock.advance_s(60);
    assert!(engine.check("acme").unwrap().allowed);
}

#[test]
fn upstream_429_rate_limits_for_its_retry_after_then_recovers() {
    let (engine, clock) = small();
    let outcome = CallOutcome::failure(
        error(Some(429), "requests", "rate_limit_exceeded"),
        Some(1_500),
    );
    let effect = engine.record("acme", &outcome).unwrap();
    let transition = effect.transition.expect("status changed");
    assert_eq!(
        (transition.from, transition.to),
        (QuotaStatus::Normal, QuotaStatus::RateLimited)
    );
    assert_eq!(engine.check("acme").unwrap().retry_after_s, Some(1.5));

    clock.advance_ms(1_499);
    assert_eq!(status(&engine), QuotaStatus::RateLimited);
    clock.advance_ms(1);
    let transitions = engine.tick();
    assert_eq!(
        transitions.len(),
        1,
        "the ticker sees recovery without a new record"
    );
    assert_eq!(transitions[0].to, QuotaStatus::Normal);
    assert!(engine.check("acme").unwrap().allowed);
}

#[test]
fn upstream_429_without_retry_after_uses_the_default_backoff() {
    let (engine, clock) = small();
    let backoff = engine.config().default_rate_limit_backoff_ms;
    engine
        .record(
            "acme",
            &CallOutcome::failure(error(Some(429), "", ""), None),
        )
        .unwrap();
    assert_eq!(status(&engine), QuotaStatus::RateLimited);
    clock.advance_ms(backoff);
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn failed_requests_count_toward_request_windows() {
    let (engine, _clock) = small();
    engine
        .record(
            "acme",
            &CallOutcome::failure(error(Some(400), "invalid_request_error", ""), None),
        )
        .unwrap();
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.requests_per_minute.current, 1);
    assert_eq!(snapshot.tokens_per_minute.current, 0);
    assert_eq!(
        snapshot.status,
        QuotaStatus::Normal,
        "a client error does not change the status"
    );
    assert_eq!(snapshot.last_error.unwrap().class, "client_error");
}

#[test]
fn insufficient_quota_is_quota_exceeded_not_rate_limited_and_a_success_clears_it() {
    let (engine, clock) = small();
    let outcome = CallOutcome::failure(
        error(Some(429), "insufficient_quota", "insufficient_quota"),
        None,
    );
    engine.record("acme", &outcome).unwrap();
    assert_eq!(status(&engine), QuotaStatus::QuotaExceeded);
    assert!(!engine.check("acme").unwrap().allowed);

    // After the probe interval one request is let through to find out whether
    // the quota is back; only one.
    clock.advance_ms(engine.config().quota_probe_interval_ms);
    assert!(engine.try_admit("acme").unwrap().check.allowed);
    assert!(!engine.try_admit("acme").unwrap().check.allowed);
    engine.complete("acme", &CallOutcome::success(10)).unwrap();
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn insufficient_quota_ends_on_day_roll_over_and_on_admin_reset() {
    let (engine, clock) = small();
    let outcome = CallOutcome::failure(
        error(Some(429), "insufficient_quota", "insufficient_quota"),
        None,
    );
    engine.record("acme", &outcome).unwrap();
    clock.advance_s(86_400);
    assert_eq!(status(&engine), QuotaStatus::Normal);

    engine.record("acme", &outcome).unwrap();
    assert_eq!(status(&engine), QuotaStatus::QuotaExceeded);
    let effect = engine.reset("acme").unwrap();
    assert_eq!(effect.transition.unwrap().to, QuotaStatus::Normal);
}

#[test]
fn local_day_limit_is_quota_exceeded_until_the_day_window_slides() {
    let (engine, clock) = small();
    // 100 requests spread over 10 minutes: no minute window fills.
    for _ in 0..10 {
        record_n(&engine, 10, 0);
        clock.advance_s(60);
    }
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.status, QuotaStatus::QuotaExceeded);
    assert!(
        snapshot.message.contains("Requests per day"),
        "{}",
        snapshot.message
    );
    // The first ten leave the day window 24 h after their minute began.
    let retry = snapshot.retry_after_s.unwrap();
    assert_eq!(retry, (86_400 - 600) as f64);

    clock.advance_ms((retry * 1000.0) as u64);
    assert!(engine.check("acme").unwrap().allowed);
    assert_ne!(status(&engine), QuotaStatus::QuotaExceeded);
}

#[test]
fn degraded_after_repeated_upstream_failures_and_clears_on_success() {
    let (engine, _clock) = small();
    let fail = CallOutcome::failure(error(Some(503), "server_error", ""), None);
    engine.record("acme", &fail).unwrap();
    engine.record("acme", &fail).unwrap();
    assert_eq!(
        status(&engine),
        QuotaStatus::Normal,
        "two failures are noise"
    );
    engine
        .record(
            "acme",
            &CallOutcome::failure(error(None, "", "timeout"), None),
        )
        .unwrap();
    assert_eq!(status(&engine), QuotaStatus::Degraded);
    assert!(
        engine.check("acme").unwrap().allowed,
        "DEGRADED does not block"
    );

    engine.record("acme", &CallOutcome::success(5)).unwrap();
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn degraded_clears_when_failures_age_out() {
    let (engine, clock) = small();
    let fail = CallOutcome::failure(error(Some(500), "", ""), None);
    for _ in 0..3 {
        engine.record("acme", &fail).unwrap();
    }
    assert_eq!(status(&engine), QuotaStatus::Degraded);
    clock.advance_s(60);
    assert_eq!(engine.tick().len(), 1);
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn store_unreachable_degrades_every_workspace_until_it_returns() {
    let (engine, _clock) = small();
    engine
        .create_workspace("beta", &LimitOverrides::default())
        .unwrap();
    assert_eq!(engine.set_store_healthy(false).len(), 2);
    assert_eq!(status(&engine), QuotaStatus::Degraded);
    assert_eq!(engine.set_store_healthy(true).len(), 2);
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn precedence_quota_exceeded_over_rate_limited_over_degraded_over_warning() {
    let (engine, _clock) = small();
    record_n(&engine, 8, 0);
    assert_eq!(status(&engine), QuotaStatus::Warning);

    let fail = CallOutcome::failure(error(Some(502), "", ""), None);
    // Three failures (each also a request): 11 of 10 → over the minute limit.
    for _ in 0..3 {
        engine.record("acme", &fail).unwrap();
    }
    assert_eq!(
        status(&engine),
        QuotaStatus::RateLimited,
        "RATE_LIMITED beats DEGRADED"
    );

    engine
        .record(
            "acme",
            &CallOutcome::failure(
                error(Some(429), "insufficient_quota", "insufficient_quota"),
                None,
            ),
        )
        .unwrap();
    assert_eq!(
        status(&engine),
        QuotaStatus::QuotaExceeded,
        "QUOTA_EXCEEDED beats everything"
    );

    engine.reset("acme").unwrap();
    for _ in 0..3 {
        engine.record("acme", &fail).unwrap();
    }
    engine
        .record(
            "acme",
            &CallOutcome {
                tokens: 850,
                ..CallOutcome::failure(error(Some(500), "", ""), None)
            },
        )
        .unwrap();
    assert_eq!(
        status(&engine),
        QuotaStatus::Degraded,
        "DEGRADED beats WARNING (tokens at 85 %)"
    );
}

#[test]
fn statuses_are_ordered_by_precedence() {
    use QuotaStatus::*;
    assert!(
        QuotaExceeded > RateLimited
            && RateLimited > Degraded
            && Degraded > Warning
            && Warning > Normal
    );
}

#[test]
fn windows_slide_rather_than_reset_at_fixed_boundaries() {
    let (engine, clock) = small();
    record_n(&engine, 5, 0);
    clock.advance_s(30);
    record_n(&engine, 5, 0);
    assert_eq!(status(&engine), QuotaStatus::RateLimited);
    // 30 s later the first five have left; the last five are still counted.
    clock.advance_s(30);
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.requests_per_minute.current, 5);
    assert_eq!(snapshot.requests_per_day.current, 10);
    assert_eq!(snapshot.requests_per_minute.resets_in_s, 30.0);
}

#[test]
fn per_workspace_overrides_apply() {
    let (engine, _clock) = small();
    let overrides = LimitOverrides {
        requests_per_minute: Some(2),
        ..LimitOverrides::default()
    };
    engine.create_workspace("tiny", &overrides).unwrap();
    assert_eq!(engine.limits("tiny").unwrap().requests_per_minute, 2);
    assert_eq!(engine.limits("tiny").unwrap().requests_per_day, 100);
    engine.record("tiny", &CallOutcome::success(0)).unwrap();
    engine.record("tiny", &CallOutcome::success(0)).unwrap();
    assert_eq!(
        engine.snapshot("tiny").unwrap().status,
        QuotaStatus::RateLimited
    );
    assert_eq!(
        status(&engine),
        QuotaStatus::Normal,
        "other workspaces are untouched"
    );
}

#[test]
fn concurrent_reserves_admit_exactly_the_limit() {
    let (engine, _clock) = engine_with(Limits {
        requests_per_minute: 250,
        requests_per_day: 10_000,
        tokens_per_minute: 1_000_000,
        tokens_per_day: 10_000_000,
    });
    let engine = Arc::new(engine);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                (0..100)
                    .filter(|_| engine.try_admit("acme").unwrap().check.allowed)
                    .count()
            })
        })
        .collect();
    let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(admitted, 250);
    assert_eq!(
        engine.snapshot("acme").unwrap().requests_per_minute.current,
        250
    );
}

#[test]
fn every_change_is_kept_in_the_history() {
    let (engine, clock) = small();
    record_n(&engine, 10, 0);
    clock.advance_s(60);
    engine.tick();
    let history = engine.history("acme").unwrap();
    let path: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        path,
        vec![
            (QuotaStatus::Normal, QuotaStatus::Warning),
            (QuotaStatus::Warning, QuotaStatus::RateLimited),
            (QuotaStatus::RateLimited, QuotaStatus::Normal),
        ]
    );
}

#[test]
fn unknown_workspaces_are_an_error_not_a_panic() {
    let (engine, _clock) = small();
    assert!(engine.record("nobody", &CallOutcome::success(1)).is_err());
    assert!(engine.check("nobody").is_err());
    assert!(engine
        .create_workspace("acme", &LimitOverrides::default())
        .is_err());
}

#[test]
fn usage_history_has_one_entry_per_minute() {
    let (engine, clock) = small();
    record_n(&engine, 2, 30);
    clock.advance_s(120);
    record_n(&engine, 1, 5);
    let usage = engine.usage("acme", 60).unwrap();
    assert_eq!(usage.history.len(), 60);
    let last = usage.history[59];
    let two_ago = usage.history[57];
    assert_eq!((last.requests, last.tokens), (1, 5));
    assert_eq!((two_ago.requests, two_ago.tokens), (2, 60));
    assert_eq!(last.minute_start - two_ago.minute_start, 120);
}

#[test]
fn rate_limit_headers_saying_nothing_is_left_block_until_their_reset() {
    use quota_alert::upstream::headers::RateLimitHeaders;
    let (engine, clock) = small();
    let headers = RateLimitHeaders {
        remaining_requests: Some(0),
        reset_requests_ms: Some(6_000),
        limit_requests: Some(60),
        ..RateLimitHeaders::default()
    };
    engine
        .record("acme", &CallOutcome::success(1).with_headers(headers))
        .unwrap();
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.status, QuotaStatus::RateLimited);
    assert_eq!(snapshot.retry_after_s, Some(6.0));
    assert_eq!(snapshot.upstream_limits.unwrap().requests_limit, Some(60));
    clock.advance_s(6);
    assert_eq!(status(&engine), QuotaStatus::Normal);
}

#[test]
fn a_jump_far_above_the_recent_norm_is_flagged_once_per_cooldown() {
    let (engine, clock) = engine_with(Limits {
        requests_per_minute: 10_000,
        requests_per_day: 1_000_000,
        tokens_per_minute: 10_000_000,
        tokens_per_day: 100_000_000,
    });
    // A norm: 10 requests a minute for 15 minutes.
    for _ in 0..15 {
        record_n(&engine, 10, 0);
        clock.advance_s(60);
    }
    clock.advance_s(60);
    let mut flagged = Vec::new();
    for _ in 0..100 {
        let effect = engine.record("acme", &CallOutcome::success(0)).unwrap();
        flagged.extend(effect.anomaly);
    }
    assert_eq!(flagged.len(), 1, "one flag, not one per request");
    assert!(
        flagged[0].reason.contains("Unusual traffic"),
        "{}",
        flagged[0].reason
    );
    let snapshot = engine.snapshot("acme").unwrap();
    assert!(
        snapshot.message.contains("Unusual traffic"),
        "{}",
        snapshot.message
    );
    assert!(engine
        .history("acme")
        .unwrap()
        .iter()
        .any(|t| t.reason.contains("Unusual traffic")));

    // Steady traffic at the norm is not unusual.
    let (steady, clock) = small_steady();
    for _ in 0..20 {
        for _ in 0..10 {
            assert!(steady
                .record("acme", &CallOutcome::success(0))
                .unwrap()
                .anomaly
                .is_none());
        }
        clock.advance_s(60);
    }
}

fn small_steady() -> (Engine, Arc<ManualClock>) {
    engine_with(Limits {
        requests_per_minute: 10_000,
        requests_per_day: 1_000_000,
        tokens_per_minute: 10_000_000,
        tokens_per_day: 100_000_000,
    })
}
