//! Property tests for the quota engine: random sequences of operations (records,
//! admissions, completions, clock moves, resets, ticks) against small random
//! limits, with the invariants checked after every step.
//!
//! Two kinds of check run side by side:
//! - rules read off the snapshot alone (precedence of the statuses, `retry_after_s`
//!   against `allowed`, `check` agreeing with `snapshot`, counts bounded);
//! - a small reference model, written from the documented rules and not from the
//!   engine's code, that predicts the exact counts, status and admission.
//!
//! `PROPTEST_CASES` overrides the number of cases (256 by default).

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use quota_alert::engine::{CallOutcome, Effect, Engine, EngineConfig, ManualClock};
use quota_alert::wire::{
    LimitOverrides, Limits, QuotaSnapshot, QuotaStatus, UpstreamErrorReport, WindowUsage,
};
use std::sync::Arc;

/// Midnight-aligned start, as in `engine_rules.rs`.
const START_MS: u64 = 1_800_000_000_000 - (1_800_000_000_000 % 86_400_000);
const WS: &str = "acme";
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
const MAX_OPS: usize = 60;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Failures are reported with the shrunk case; pinned as plain tests, not
        // as a regressions file next to this one.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// --- Operations ---------------------------------------------------------------

/// An upstream failure, as an app or the proxy would report it.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// 429 `rate_limit_exceeded`, with the upstream's `retry-after` (seconds) if any.
    RateLimit { retry_after_s: Option<u64> },
    /// 429 `insufficient_quota`.
    InsufficientQuota,
    /// 500 `server_error`.
    Server,
    /// No HTTP answer: `code: timeout`.
    Timeout,
    /// 400 `invalid_request_error`.
    BadRequest,
}

/// What the model expects the engine to make of a failure (the documented
/// classification, restated here rather than calling `classify`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Class {
    RateLimited,
    QuotaExhausted,
    UpstreamFailure,
    ClientError,
}

impl Failure {
    fn report(self) -> UpstreamErrorReport {
        let (status, kind, code) = match self {
            Failure::RateLimit { .. } => (Some(429), "requests", Some("rate_limit_exceeded")),
            Failure::InsufficientQuota => {
                (Some(429), "insufficient_quota", Some("insufficient_quota"))
            }
            Failure::Server => (Some(500), "server_error", None),
            Failure::Timeout => (None, "timeout", Some("timeout")),
            Failure::BadRequest => (Some(400), "invalid_request_error", None),
        };
        UpstreamErrorReport {
            http_status: status,
            error_type: Some(kind.to_string()),
            code: code.map(str::to_string),
            message: Some("rate limit quota exceeded (never read)".to_string()),
        }
    }

    fn outcome(self) -> CallOutcome {
        let retry_after_ms = match self {
            Failure::RateLimit { retry_after_s } => retry_after_s.map(|s| s * 1000),
            _ => None,
        };
        CallOutcome::failure(self.report(), retry_after_ms)
    }

    fn class(self) -> Class {
        match self {
            Failure::RateLimit { .. } => Class::RateLimited,
            Failure::InsufficientQuota => Class::QuotaExhausted,
            Failure::Server | Failure::Timeout => Class::UpstreamFailure,
            Failure::BadRequest => Class::ClientError,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Success { tokens: u64 },
    Failure(Failure),
}

impl Outcome {
    fn call_outcome(self) -> CallOutcome {
        match self {
            Outcome::Success { tokens } => CallOutcome::success(tokens),
            Outcome::Failure(f) => f.outcome(),
        }
    }

    fn tokens(self) -> u64 {
        match self {
            Outcome::Success { tokens } => tokens,
            Outcome::Failure(_) => 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// `record`: a call made without admission.
    Record(Outcome),
    TryAdmit,
    /// `complete`: the outcome of an admitted call (tokens only, no request).
    Complete(Outcome),
    AdvanceMs(u64),
    /// A rarer long jump, so that day windows roll and quota blocks expire.
    AdvanceLongMs(u64),
    Reset,
    Tick,
}

fn failure() -> impl Strategy<Value = Failure> {
    prop_oneof![
        3 => proptest::option::of(0u64..=90)
            .prop_map(|retry_after_s| Failure::RateLimit { retry_after_s }),
        2 => Just(Failure::InsufficientQuota),
        2 => Just(Failure::Server),
        1 => Just(Failure::Timeout),
        1 => Just(Failure::BadRequest),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => (0u64..5_000).prop_map(|tokens| Outcome::Success { tokens }),
        2 => failure().prop_map(Outcome::Failure),
    ]
}

fn advance() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u64..=120_000).prop_map(Op::AdvanceMs),
        1 => (3_600_000u64..=26 * 3_600_000).prop_map(Op::AdvanceLongMs),
    ]
}

/// Any operation, including records that bypass admission.
fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..5_000).prop_map(|tokens| Op::Record(Outcome::Success { tokens })),
        3 => failure().prop_map(|f| Op::Record(Outcome::Failure(f))),
        4 => Just(Op::TryAdmit),
        2 => outcome().prop_map(Op::Complete),
        4 => advance(),
        1 => Just(Op::Reset),
        1 => Just(Op::Tick),
    ]
}

/// Only traffic that went through `try_admit` (and its completions).
fn admitted_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::TryAdmit),
        3 => outcome().prop_map(Op::Complete),
        4 => advance(),
        1 => Just(Op::Reset),
        1 => Just(Op::Tick),
    ]
}

fn limit(max: u64) -> impl Strategy<Value = u64> {
    // From 1: the configuration and the admin API refuse a limit of 0, and the
    // engine trusts them (a workspace created with a 0 limit is stored NORMAL
    // while its verdict is QUOTA_EXCEEDED, which no real workspace can be).
    1..=max
}

fn limits() -> impl Strategy<Value = Limits> {
    (limit(15), limit(120), limit(40_000), limit(400_000)).prop_map(
        |(requests_per_minute, requests_per_day, tokens_per_minute, tokens_per_day)| Limits {
            requests_per_minute,
            requests_per_day,
            tokens_per_minute,
            tokens_per_day,
        },
    )
}

// --- The reference model ------------------------------------------------------

/// What the engine should know, restated from the documented rules.
struct Model {
    config: EngineConfig,
    limits: Limits,
    now: u64,
    /// (instant, requests, tokens) counted since the last reset.
    events: Vec<(u64, u64, u64)>,
    requests_ever: u64,
    tokens_ever: u64,
    rate_limited_until: Option<u64>,
    quota_exhausted_at: Option<u64>,
    next_probe_at: u64,
    failures: Vec<u64>,
}

#[derive(Debug, PartialEq)]
struct Expected {
    requests_per_minute: u64,
    tokens_per_minute: u64,
    requests_per_day: u64,
    tokens_per_day: u64,
    status: QuotaStatus,
    allowed: bool,
}

impl Model {
    fn new(config: EngineConfig) -> Self {
        Self {
            limits: config.default_limits,
            config,
            now: START_MS,
            events: Vec::new(),
            requests_ever: 0,
            tokens_ever: 0,
            rate_limited_until: None,
            quota_exhausted_at: None,
            next_probe_at: 0,
            failures: Vec::new(),
        }
    }

    /// Forgets what has expired at `self.now`.
    fn expire(&mut self) {
        let now = self.now;
        if self.rate_limited_until.is_some_and(|u| u <= now) {
            self.rate_limited_until = None;
        }
        if self.quota_exhausted_at.is_some_and(|at| now >= at + DAY_MS) {
            self.quota_exhausted_at = None;
        }
        let window = self.config.degraded_window_ms;
        self.failures.retain(|&t| t + window > now);
    }

    /// Window totals: a minute window is 60 one-second buckets, a day window
    /// 1 440 one-minute buckets; usage leaves at the end of its bucket's life.
    fn totals(&self) -> (u64, u64, u64, u64) {
        let now = self.now;
        let in_window =
            |t: u64, bucket_ms: u64, count: u64| t / bucket_ms + count > now / bucket_ms;
        let (mut mr, mut mt, mut dr, mut dt) = (0, 0, 0, 0);
        for &(t, r, k) in &self.events {
            if in_window(t, 1_000, 60) {
                mr += r;
                mt += k;
            }
            if in_window(t, MINUTE_MS, 1_440) {
                dr += r;
                dt += k;
            }
        }
        (mr, mt, dr, dt)
    }

    fn expected(&mut self) -> Expected {
        self.expire();
        let (mr, mt, dr, dt) = self.totals();
        let l = self.limits;
        // "Room for one more" fails once the count reaches the limit.
        let full = |current: u64, limit: u64| current >= limit;
        let day_full = full(dr, l.requests_per_day) || full(dt, l.tokens_per_day);
        let minute_full = full(mr, l.requests_per_minute) || full(mt, l.tokens_per_minute);
        let upstream_rate_limited = self.rate_limited_until.is_some_and(|u| u > self.now);
        let quota_exhausted = self.quota_exhausted_at.is_some();
        let probe_due = quota_exhausted && self.now >= self.next_probe_at;
        let rate_blocks = minute_full || upstream_rate_limited;
        let allowed = !day_full && !rate_blocks && (!quota_exhausted || probe_due);
        let near = |current: u64, limit: u64| limit > 0 && 5 * current >= 4 * limit;
        let warning = near(mr, l.requests_per_minute)
            || near(mt, l.tokens_per_minute)
            || near(dr, l.requests_per_day)
            || near(dt, l.tokens_per_day);
        let status = if day_full || quota_exhausted {
            QuotaStatus::QuotaExceeded
        } else if rate_blocks {
            QuotaStatus::RateLimited
        } else if self.failures.len() as u32 >= self.config.degraded_failure_threshold {
            QuotaStatus::Degraded
        } else if warning {
            QuotaStatus::Warning
        } else {
            QuotaStatus::Normal
        };
        Expected {
            requests_per_minute: mr,
            tokens_per_minute: mt,
            requests_per_day: dr,
            tokens_per_day: dt,
            status,
            allowed,
        }
    }

    fn count(&mut self, requests: u64, tokens: u64) {
        self.events.push((self.now, requests, tokens));
        self.requests_ever += requests;
        self.tokens_ever += tokens;
    }

    fn outcome(&mut self, outcome: Outcome) {
        let now = self.now;
        match outcome {
            Outcome::Success { .. } => {
                self.failures.clear();
                self.quota_exhausted_at = None;
            }
            Outcome::Failure(f) => match f.class() {
                Class::RateLimited => {
                    let wait = match f {
                        Failure::RateLimit {
                            retry_after_s: Some(s),
                        } => s * 1000,
                        _ => self.config.default_rate_limit_backoff_ms,
                    };
                    let until = now + wait;
                    self.rate_limited_until =
                        Some(self.rate_limited_until.map_or(until, |u| u.max(until)));
                }
                Class::QuotaExhausted => {
                    self.quota_exhausted_at = Some(now);
                    self.next_probe_at = now + self.config.quota_probe_interval_ms;
                }
                Class::UpstreamFailure => self.failures.push(now),
                Class::ClientError => {}
            },
        }
    }

    fn reset(&mut self) {
        self.events.clear();
        self.rate_limited_until = None;
        self.quota_exhausted_at = None;
        self.next_probe_at = 0;
        self.failures.clear();
    }
}

// --- The harness ----------------------------------------------------------------

struct Harness {
    engine: Engine,
    clock: Arc<ManualClock>,
    model: Model,
    last_version: u64,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        let config = EngineConfig {
            default_limits: limits,
            ..EngineConfig::default()
        };
        let clock = Arc::new(ManualClock::new(START_MS));
        let engine = Engine::new(config.clone(), clock.clone());
        engine
            .create_workspace(WS, &LimitOverrides::default())
            .unwrap();
        Self {
            engine,
            clock,
            model: Model::new(config),
            last_version: 0,
        }
    }

    /// Applies one operation to the engine and the model; checks what the
    /// operation itself returned.
    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        self.model.expire();
        let effects: Vec<Effect> = match op {
            Op::Record(outcome) => {
                self.model.count(1, outcome.tokens());
                self.model.outcome(outcome);
                vec![self.engine.record(WS, &outcome.call_outcome()).unwrap()]
            }
            Op::Complete(outcome) => {
                self.model.count(0, outcome.tokens());
                self.model.outcome(outcome);
                vec![self.engine.complete(WS, &outcome.call_outcome()).unwrap()]
            }
            Op::TryAdmit => {
                let before = self.model.expected();
                let admission = self.engine.try_admit(WS).unwrap();
                prop_assert_eq!(
                    admission.check.allowed,
                    before.allowed,
                    "try_admit disagrees with the model"
                );
                if admission.check.allowed {
                    prop_assert_eq!(admission.check.retry_after_s, None);
                    if self.model.quota_exhausted_at.is_some() {
                        // This one is the probe; the next waits a full interval.
                        self.model.next_probe_at =
                            self.model.now + self.model.config.quota_probe_interval_ms;
                    }
                    self.model.count(1, 0);
                } else {
                    prop_assert!(
                        admission.check.retry_after_s.is_some(),
                        "a refused admission says when to retry"
                    );
                    prop_assert!(admission.check.status.blocks_requests());
                    prop_assert!(admission.effect.transition.is_none());
                }
                vec![admission.effect]
            }
            Op::AdvanceMs(ms) | Op::AdvanceLongMs(ms) => {
                self.clock.advance_ms(ms);
                self.model.now += ms;
                Vec::new()
            }
            Op::Reset => {
                self.model.reset();
                vec![self.engine.reset(WS).unwrap()]
            }
            Op::Tick => {
                let transitions = self.engine.tick();
                let status = self.engine.snapshot(WS).unwrap().status;
                for t in &transitions {
                    prop_assert_eq!(&t.workspace_id, WS);
                    prop_assert_ne!(t.from, t.to);
                    prop_assert_eq!(t.to, status, "tick published a stale status");
                }
                // After a tick the stored status (what subscribers were told) is
                // the current one: time alone never moves a NORMAL workspace.
                let history = self.engine.history(WS).unwrap();
                let stored = history.last().map_or(QuotaStatus::Normal, |t| t.to);
                prop_assert_eq!(stored, status, "stored status is stale after a tick");
                Vec::new()
            }
        };
        if !effects.is_empty() {
            let snapshot = self.engine.snapshot(WS).unwrap();
            for effect in effects {
                if let Some(t) = &effect.transition {
                    prop_assert_ne!(t.from, t.to);
                    prop_assert_eq!(t.to, snapshot.status, "transition to a stale status");
                }
                prop_assert!(effect.version <= snapshot.version);
            }
        }
        Ok(())
    }

    /// Every invariant, read at the current instant.
    fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let snapshot = self.engine.snapshot(WS).unwrap();
        let check = self.engine.check(WS).unwrap();
        let again = self.engine.snapshot(WS).unwrap();

        // check() and snapshot() agree, and reading changes nothing.
        prop_assert_eq!(check.status, snapshot.status, "check vs snapshot status");
        prop_assert_eq!(check.retry_after_s, snapshot.retry_after_s);
        prop_assert_eq!(&again, &snapshot, "reading twice gives the same snapshot");

        // Versions never go back.
        prop_assert!(snapshot.version >= self.last_version, "version went back");
        self.last_version = snapshot.version;

        // Counts: bounded by what was ever counted (never negative, never wrapped),
        // the minute window within the day window, limits as configured.
        let w = windows(&snapshot);
        let limits = self.model.limits;
        prop_assert_eq!(
            [w[0].limit, w[1].limit, w[2].limit, w[3].limit],
            [
                limits.requests_per_minute,
                limits.tokens_per_minute,
                limits.requests_per_day,
                limits.tokens_per_day
            ]
        );
        prop_assert!(snapshot.requests_per_minute.current <= self.model.requests_ever);
        prop_assert!(snapshot.requests_per_day.current <= self.model.requests_ever);
        prop_assert!(snapshot.tokens_per_minute.current <= self.model.tokens_ever);
        prop_assert!(snapshot.tokens_per_day.current <= self.model.tokens_ever);
        prop_assert!(snapshot.requests_per_minute.current <= snapshot.requests_per_day.current);
        prop_assert!(snapshot.tokens_per_minute.current <= snapshot.tokens_per_day.current);
        for usage in w {
            prop_assert!(usage.percentage.is_finite() && usage.percentage >= 0.0);
            prop_assert!(usage.resets_in_s >= 0.0);
            prop_assert_eq!(usage.current == 0, usage.resets_in_s == 0.0);
        }

        // retry_after_s is set exactly when a request would be refused. The quota
        // probe is the one case of an allowed request in a blocking status.
        prop_assert_eq!(
            check.retry_after_s.is_some(),
            !check.allowed,
            "retry_after_s {:?} vs allowed {}",
            check.retry_after_s,
            check.allowed
        );
        if let Some(s) = check.retry_after_s {
            prop_assert!(s > 0.0 && s <= 86_400.0, "retry_after_s = {}", s);
        }
        if check.allowed && check.status.blocks_requests() {
            prop_assert_eq!(check.status, QuotaStatus::QuotaExceeded, "only the probe");
            prop_assert!(
                self.model.quota_exhausted_at.is_some(),
                "a probe needs a quota block"
            );
        }

        precedence(&snapshot, check.allowed)?;

        // The exact prediction.
        let expected = self.model.expected();
        let actual = Expected {
            requests_per_minute: snapshot.requests_per_minute.current,
            tokens_per_minute: snapshot.tokens_per_minute.current,
            requests_per_day: snapshot.requests_per_day.current,
            tokens_per_day: snapshot.tokens_per_day.current,
            status: snapshot.status,
            allowed: check.allowed,
        };
        prop_assert_eq!(actual, expected, "engine vs model");

        // The alert history is a chain: each entry starts where the last ended.
        let history = self.engine.history(WS).unwrap();
        let mut previous = QuotaStatus::Normal;
        for t in &history {
            prop_assert_eq!(t.from, previous, "history chain broken: {:?}", history);
            previous = t.to;
        }
        Ok(())
    }
}

/// [rpm, tpm, rpd, tpd].
fn windows(s: &QuotaSnapshot) -> [WindowUsage; 4] {
    [
        s.requests_per_minute,
        s.tokens_per_minute,
        s.requests_per_day,
        s.tokens_per_day,
    ]
}

/// The precedence rules, judged from the snapshot alone.
fn precedence(s: &QuotaSnapshot, allowed: bool) -> Result<(), TestCaseError> {
    let full = |w: &WindowUsage| w.current >= w.limit;
    let near = |w: &WindowUsage| w.limit > 0 && 5 * w.current >= 4 * w.limit;
    let day_full = full(&s.requests_per_day) || full(&s.tokens_per_day);
    let minute_full = full(&s.requests_per_minute) || full(&s.tokens_per_minute);
    let any_near = windows(s).iter().any(near);
    let status = s.status;

    if day_full {
        prop_assert_eq!(status, QuotaStatus::QuotaExceeded, "a full day window");
        prop_assert!(!allowed);
    }
    if minute_full {
        prop_assert!(
            matches!(
                status,
                QuotaStatus::RateLimited | QuotaStatus::QuotaExceeded
            ),
            "a full minute window gave {:?}",
            status
        );
        prop_assert!(!allowed);
    }
    match status {
        QuotaStatus::Normal => {
            prop_assert!(!any_near, "NORMAL with a window at 80 %");
            prop_assert!(allowed && s.retry_after_s.is_none());
        }
        QuotaStatus::Warning => {
            prop_assert!(!day_full && !minute_full);
            prop_assert!(any_near, "WARNING without a window at 80 %");
            prop_assert!(allowed && s.retry_after_s.is_none());
        }
        QuotaStatus::Degraded => {
            prop_assert!(!day_full && !minute_full);
            prop_assert!(allowed && s.retry_after_s.is_none());
        }
        QuotaStatus::RateLimited => {
            prop_assert!(!day_full);
            prop_assert!(!allowed && s.retry_after_s.is_some());
        }
        QuotaStatus::QuotaExceeded => {}
    }
    if !day_full && !minute_full && any_near {
        prop_assert_ne!(status, QuotaStatus::Normal);
    }
    Ok(())
}

fn run(limits: Limits, ops: &[Op], admitted_only: bool) -> Result<(), TestCaseError> {
    let mut h = Harness::new(limits);
    h.check_invariants()?;
    for (i, &op) in ops.iter().enumerate() {
        h.step(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} ({op:?}): {e}")))?;
        h.check_invariants()
            .map_err(|e| TestCaseError::fail(format!("after step {i} ({op:?}): {e}")))?;
        if admitted_only {
            // With every request admitted first, the request windows never pass
            // their limits (tokens can: they are known only afterwards).
            let s = h.engine.snapshot(WS).unwrap();
            prop_assert!(
                s.requests_per_minute.current <= limits.requests_per_minute,
                "after step {}: {} requests in the minute window, limit {}",
                i,
                s.requests_per_minute.current,
                limits.requests_per_minute
            );
            prop_assert!(
                s.requests_per_day.current <= limits.requests_per_day,
                "after step {}: {} requests in the day window, limit {}",
                i,
                s.requests_per_day.current,
                limits.requests_per_day
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Any mix of traffic: counts, precedence, retry hints and the model hold
    /// after every step.
    #[test]
    fn any_traffic_keeps_the_invariants(
        limits in limits(),
        ops in proptest::collection::vec(any_op(), 0..=MAX_OPS),
    ) {
        run(limits, &ops, false)?;
    }

    /// All traffic through `try_admit`: the request windows never exceed their
    /// limits, on top of every other invariant.
    #[test]
    fn admitted_traffic_never_exceeds_request_limits(
        limits in limits(),
        ops in proptest::collection::vec(admitted_op(), 0..=MAX_OPS),
    ) {
        run(limits, &ops, true)?;
    }
}

/// Guards the generators: over a fixed set of random sequences every status,
/// the quota probe and full request windows are actually reached, so the
/// properties above are not passing on easy cases only.
#[test]
fn the_generators_reach_every_status() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let (mut probes, mut full_minute, mut full_day) = (0, 0, 0);
    for admitted_only in [false, true] {
        let ops = if admitted_only {
            admitted_op().boxed()
        } else {
            any_op().boxed()
        };
        let case = (limits(), proptest::collection::vec(ops, 0..=MAX_OPS));
        for _ in 0..256 {
            let (limits, ops) = case.new_tree(&mut runner).unwrap().current();
            let mut h = Harness::new(limits);
            for op in ops {
                h.step(op).unwrap();
                let s = h.engine.snapshot(WS).unwrap();
                let check = h.engine.check(WS).unwrap();
                seen.insert(s.status);
                probes += usize::from(check.allowed && s.status == QuotaStatus::QuotaExceeded);
                if admitted_only {
                    full_minute +=
                        usize::from(s.requests_per_minute.current == limits.requests_per_minute);
                    full_day += usize::from(s.requests_per_day.current == limits.requests_per_day);
                }
            }
        }
    }
    assert_eq!(
        seen.len(),
        QuotaStatus::ALL.len(),
        "statuses reached: {seen:?}"
    );
    assert!(probes > 0, "the quota probe was never reached");
    assert!(
        full_minute > 0 && full_day > 0,
        "admitted traffic never filled a request window"
    );
    eprintln!(
        "statuses {seen:?}; probe states {probes}; full minute {full_minute}; full day {full_day}"
    );
}
