//! Reserve and settle in the engine, with a fake clock: a call's tokens are
//! held at admission, count against every token window until it settles,
//! and settle to the real usage; a hold never settled expires. And the
//! property the whole feature exists for: with reservations, no token
//! window's used + reserved ever passes its limit.

use proptest::prelude::*;
use quota_alert::engine::{
    CallOutcome, Engine, EngineConfig, Hold, ManualClock, TokenRoom, IN_FLIGHT_RETRY_MS,
};
use quota_alert::wire::{LimitOverrides, Limits, QuotaStatus};
use std::sync::Arc;

const START_MS: u64 = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000);
const TTL_MS: u64 = 600_000;

fn engine(limits: Limits) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let config = EngineConfig {
        default_limits: limits,
        reservation_ttl_ms: TTL_MS,
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, clock.clone());
    engine
        .create_workspace("acme", &LimitOverrides::default())
        .expect("new workspace");
    (engine, clock)
}

fn tpm(tokens_per_minute: u64) -> Limits {
    Limits {
        requests_per_minute: 1_000,
        requests_per_day: 100_000,
        tokens_per_minute,
        tokens_per_day: 10_000_000,
    }
}

fn hold(clock: &ManualClock, id: &str, tokens: u64) -> Hold {
    use quota_alert::engine::Clock;
    Hold {
        reservation_id: id.into(),
        tokens,
        expires_at_ms: clock.now_ms() + TTL_MS,
        cost_nano: 0,
        unpriced: false,
        scope: Default::default(),
    }
}

fn admit(engine: &Engine, hold: &Hold) -> quota_alert::engine::Admission {
    engine.admit("acme", Some(hold)).expect("workspace exists")
}

#[test]
fn held_tokens_refuse_what_would_overshoot_and_show_in_the_snapshot() {
    let (engine, clock) = engine(tpm(1_000));
    // The case: 40 calls of up to 150 tokens against 1 000 TPM.
    let admitted = (0..40)
        .filter(|i| {
            admit(&engine, &hold(&clock, &format!("r{i}"), 150))
                .check
                .allowed
        })
        .count();
    assert_eq!(admitted, 6, "6 × 150 = 900 fit in 1 000; a 7th would not");
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.tokens_per_minute.reserved, 900);
    assert_eq!(snapshot.tokens_per_day.reserved, 900);
    assert_eq!(snapshot.tokens_per_minute.current, 0, "nothing used yet");
    assert_eq!(
        snapshot.requests_per_minute.current, 6,
        "refused ones not counted"
    );
    assert_eq!(snapshot.requests_per_minute.reserved, 0);
}

#[test]
fn a_refusal_says_when_enough_frees_up_and_settling_frees_it_at_once() {
    let (engine, clock) = engine(tpm(1_000));
    // 700 used at t=0 (settled), 200 held for a call in flight.
    assert!(admit(&engine, &hold(&clock, "a", 800)).check.allowed);
    engine
        .complete(
            "acme",
            &CallOutcome::success(700).settling(Some("a".into())),
        )
        .unwrap();
    clock.advance_s(10);
    assert!(admit(&engine, &hold(&clock, "b", 200)).check.allowed);

    // 150 more: 700 + 200 + 150 > 1 000, and it fits once the 700 slide
    // out, 50 s from now.
    let refused = admit(&engine, &hold(&clock, "c", 150));
    assert!(!refused.check.allowed);
    assert_eq!(refused.check.retry_after_s, Some(50.0));
    assert!(
        matches!(&refused.token_refusal, Some(TokenRoom::Wait { wait_ms: 50_000, reason }) if reason.contains("200 held")),
        "{:?}",
        refused.token_refusal
    );

    // 400: even with the 700 gone, 200 held + 400 fits; but while the hold
    // stays it needs both. Settling "b" to 20 frees 180 at once.
    engine
        .complete("acme", &CallOutcome::success(20).settling(Some("b".into())))
        .unwrap();
    assert!(
        admit(&engine, &hold(&clock, "c", 150)).check.allowed,
        "720 + 150 fits"
    );
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.tokens_per_minute.current, 720);
    assert_eq!(snapshot.tokens_per_minute.reserved, 150);
}

#[test]
fn a_window_full_only_of_holds_retries_after_the_in_flight_hint() {
    let (engine, clock) = engine(tpm(1_000));
    assert!(admit(&engine, &hold(&clock, "a", 900)).check.allowed);
    let refused = admit(&engine, &hold(&clock, "b", 200));
    assert_eq!(
        refused.check.retry_after_s,
        Some(IN_FLIGHT_RETRY_MS as f64 / 1000.0),
        "nothing used: only the call in flight is in the way"
    );
}

#[test]
fn a_call_larger_than_the_whole_limit_is_too_large_not_a_wait() {
    let (engine, clock) = engine(tpm(1_000));
    let refused = admit(&engine, &hold(&clock, "a", 1_001));
    assert!(!refused.check.allowed);
    assert_eq!(refused.check.retry_after_s, None, "waiting cannot help");
    assert_eq!(
        refused.token_refusal,
        Some(TokenRoom::TooLarge {
            need: 1_001,
            limit: 1_000,
            label: "Tokens per minute"
        })
    );
    assert_eq!(
        engine.snapshot("acme").unwrap().requests_per_minute.current,
        0,
        "a refused call counts nothing"
    );
}

#[test]
fn a_rate_limited_refusal_waits_for_the_calls_tokens_not_one() {
    let (engine, clock) = engine(tpm(1_000));
    // 10 used at t=0, 990 at t=30 s: the window is full (RATE_LIMITED).
    assert!(admit(&engine, &hold(&clock, "a", 10)).check.allowed);
    engine
        .complete("acme", &CallOutcome::success(10).settling(Some("a".into())))
        .unwrap();
    clock.advance_s(30);
    assert!(admit(&engine, &hold(&clock, "b", 990)).check.allowed);
    engine
        .complete(
            "acme",
            &CallOutcome::success(990).settling(Some("b".into())),
        )
        .unwrap();
    clock.advance_s(10);
    // One token frees up in 20 s (the 10 slide out), but 500 fit only
    // once the 990 slide out too, 50 s from now: retrying at 20 s would
    // only be refused again.
    let refused = admit(&engine, &hold(&clock, "c", 500));
    assert!(!refused.check.allowed);
    assert_eq!(refused.check.status, QuotaStatus::RateLimited);
    assert!(
        matches!(
            &refused.token_refusal,
            Some(TokenRoom::Wait {
                wait_ms: 50_000,
                ..
            })
        ),
        "{:?}",
        refused.token_refusal
    );
    assert_eq!(refused.check.retry_after_s, Some(50.0));
    // A call that can never fit is not told to wait either.
    let too_large = admit(&engine, &hold(&clock, "d", 1_001));
    assert!(matches!(
        too_large.token_refusal,
        Some(TokenRoom::TooLarge { .. })
    ));
    assert_eq!(too_large.check.retry_after_s, None, "waiting cannot help");
}

#[test]
fn holds_admitted_elsewhere_are_capped_at_the_next_check_too() {
    use quota_alert::engine::MAX_HOLDS_PER_WORKSPACE;
    // Under Redis the shared store admits and the engine only checks first
    // (`check_call`) and counts after (`count_admitted`): the cap on holds,
    // which bounds a workspace's memory on every instance, must hold there
    // as it does in `admit`.
    let (engine, clock) = engine(Limits {
        requests_per_minute: 1_000_000,
        requests_per_day: 10_000_000,
        tokens_per_minute: 1_000_000,
        tokens_per_day: 10_000_000,
    });
    for i in 0..MAX_HOLDS_PER_WORKSPACE {
        engine
            .count_admitted("acme", Some(&hold(&clock, &format!("r{i}"), 1)))
            .unwrap();
    }
    let (check, room) = engine
        .check_call("acme", Some(&hold(&clock, "next", 1)))
        .unwrap();
    assert!(!check.allowed, "{check:?}");
    assert!(
        matches!(&room, Some(TokenRoom::Wait { reason, .. }) if reason.contains("in flight")),
        "{room:?}"
    );
    assert!(check.retry_after_s.is_some());
    // A call that holds nothing is not held back by them.
    assert!(engine.check_call("acme", None).unwrap().0.allowed);
}

#[test]
fn settling_more_than_held_counts_the_real_usage() {
    let (engine, clock) = engine(tpm(1_000));
    assert!(admit(&engine, &hold(&clock, "a", 100)).check.allowed);
    engine
        .complete(
            "acme",
            &CallOutcome::success(400).settling(Some("a".into())),
        )
        .unwrap();
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.tokens_per_minute.current, 400);
    assert_eq!(snapshot.tokens_per_minute.reserved, 0);
}

#[test]
fn settling_twice_or_an_unknown_hold_still_counts_tokens_once_each() {
    let (engine, clock) = engine(tpm(10_000));
    assert!(admit(&engine, &hold(&clock, "a", 100)).check.allowed);
    let settle = CallOutcome::success(50).settling(Some("a".into()));
    engine.complete("acme", &settle).unwrap();
    // A second settle (a replayed event) releases nothing more; its tokens
    // are a second answer, and count.
    engine.complete("acme", &settle).unwrap();
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.tokens_per_minute.reserved, 0);
    assert_eq!(snapshot.tokens_per_minute.current, 100);
}

#[test]
fn a_released_hold_counts_nothing_but_its_request() {
    let (engine, clock) = engine(tpm(1_000));
    assert!(admit(&engine, &hold(&clock, "a", 900)).check.allowed);
    assert!(!admit(&engine, &hold(&clock, "b", 900)).check.allowed);
    engine.release("acme", "a").unwrap();
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(
        (
            snapshot.tokens_per_minute.current,
            snapshot.tokens_per_minute.reserved
        ),
        (0, 0)
    );
    assert_eq!(snapshot.requests_per_minute.current, 1);
    assert!(admit(&engine, &hold(&clock, "b", 900)).check.allowed);
}

#[test]
fn a_hold_never_settled_expires_after_its_bound() {
    let (engine, clock) = engine(Limits {
        tokens_per_day: 1_000,
        ..tpm(1_000)
    });
    assert!(
        admit(&engine, &hold(&clock, "crashed", 1_000))
            .check
            .allowed
    );
    assert_eq!(
        engine.snapshot("acme").unwrap().status,
        QuotaStatus::QuotaExceeded,
        "the day's tokens are all held: nothing else can pass"
    );
    clock.advance_ms(TTL_MS - 1);
    assert!(
        !admit(&engine, &hold(&clock, "b", 1)).check.allowed,
        "still held"
    );
    clock.advance_ms(1);
    let snapshot = engine.snapshot("acme").unwrap();
    assert_eq!(snapshot.tokens_per_day.reserved, 0, "expired");
    assert!(admit(&engine, &hold(&clock, "b", 1)).check.allowed);
}

#[test]
fn the_status_counts_held_tokens_as_used() {
    let (engine, clock) = engine(tpm(1_000));
    assert!(admit(&engine, &hold(&clock, "a", 850)).check.allowed);
    assert_eq!(
        engine.snapshot("acme").unwrap().status,
        QuotaStatus::Warning
    );
    engine
        .complete("acme", &CallOutcome::success(10).settling(Some("a".into())))
        .unwrap();
    assert_eq!(engine.snapshot("acme").unwrap().status, QuotaStatus::Normal);
}

#[test]
fn a_reset_drops_every_hold() {
    let (engine, clock) = engine(tpm(1_000));
    assert!(admit(&engine, &hold(&clock, "a", 900)).check.allowed);
    engine.reset("acme").unwrap();
    assert_eq!(
        engine.snapshot("acme").unwrap().tokens_per_minute.reserved,
        0
    );
}

// --- The property ----------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Admit a call needing this many tokens.
    Admit(u64),
    /// Settle the n-th open hold (modulo) to this share (per mille) of what it
    /// held: real usage never above what was reserved for it.
    Settle(usize, u64),
    /// Release the n-th open hold.
    Release(usize),
    AdvanceMs(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..400).prop_map(Op::Admit),
        3 => (any::<usize>(), 0u64..=1000).prop_map(|(i, share)| Op::Settle(i, share)),
        1 => any::<usize>().prop_map(Op::Release),
        2 => prop_oneof![0u64..2_000, 50_000u64..700_000].prop_map(Op::AdvanceMs),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn used_plus_reserved_never_passes_a_token_limit(
        minute in 200u64..3_000,
        day in 500u64..20_000,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let (engine, clock) = engine(Limits {
            requests_per_minute: 1_000,
            requests_per_day: 100_000,
            tokens_per_minute: minute,
            tokens_per_day: day,
        });
        let mut open: Vec<Hold> = Vec::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Admit(tokens) => {
                    next += 1;
                    let h = hold(&clock, &format!("r{next}"), tokens);
                    let before = engine.snapshot("acme").unwrap();
                    let fits = |w: &quota_alert::wire::WindowUsage| w.current + w.reserved + tokens <= w.limit;
                    let admitted = admit(&engine, &h);
                    // Exact: admitted if and only if it fits both windows.
                    prop_assert_eq!(
                        admitted.check.allowed,
                        fits(&before.tokens_per_minute) && fits(&before.tokens_per_day),
                        "before: {:?}", before
                    );
                    if admitted.check.allowed {
                        open.push(h);
                    }
                }
                Op::Settle(i, share) if !open.is_empty() => {
                    let h = open.remove(i % open.len());
                    let used = h.tokens * share / 1000;
                    engine
                        .complete("acme", &CallOutcome::success(used).settling(Some(h.reservation_id)))
                        .unwrap();
                }
                Op::Release(i) if !open.is_empty() => {
                    let h = open.remove(i % open.len());
                    engine.release("acme", &h.reservation_id).unwrap();
                }
                Op::AdvanceMs(ms) => {
                    clock.advance_ms(ms);
                    use quota_alert::engine::Clock;
                    let now = clock.now_ms();
                    open.retain(|h| h.expires_at_ms > now);
                }
                _ => {}
            }
            let s = engine.snapshot("acme").unwrap();
            for w in [&s.tokens_per_minute, &s.tokens_per_day] {
                prop_assert!(w.current + w.reserved <= w.limit, "{:?}", w);
            }
            let held: u64 = open.iter().map(|h| h.tokens).sum();
            prop_assert_eq!(s.tokens_per_minute.reserved, held, "holds the model still has open");
        }
    }
}
