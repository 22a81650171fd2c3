//! Benchmarks of the pure quota engine (`quota_alert::engine`).
//!
//! Run with `cargo bench --features ssr --bench engine`. Results and method are
//! written up in `docs/BENCHMARKS.md`.
//!
//! Every timed operation first moves a [`ManualClock`] forward by 1 ms, so the
//! sliding windows evict and open buckets as they would in production (the cost
//! of that atomic add is part of each figure). Limits are set so high that no
//! request is ever refused and no workspace leaves NORMAL, and unusual traffic
//! is evaluated but never flagged: these figures are the engine's fast path.
//!
//! Before criterion runs, `main` measures the memory held by idle workspaces
//! (not a timing, so not a criterion benchmark) and prints it.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use quota_alert::engine::{CallOutcome, Engine, EngineConfig, ManualClock};
use quota_alert::wire::{LimitOverrides, Limits};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Workspace counts every timing is run at.
const SIZES: [usize; 2] = [1, 100_000];
/// Workspaces created for the memory measurement.
const MEMORY_WORKSPACES: usize = 100_000;
/// Start of the simulated time: 2024-01-01T00:00:00Z.
const START_MS: u64 = 1_704_067_200_000;
/// Tokens per recorded call.
const TOKENS: u64 = 250;
/// Checks timed per block in the `check` benchmarks (see [`bench_check`]).
const CHECK_BLOCK: u64 = 64;
/// Linux page size, for `/proc/self/statm`.
const PAGE_BYTES: usize = 4096;

/// Limits no benchmark gets near: 2^50 of everything. The unusual-traffic
/// check still runs on every call (a busy workspace walks its recent day
/// buckets), but its factor is so high that it never raises a flag: a flag
/// would silence the check for its cooldown and make the figures cheaper.
fn unlimited_config() -> EngineConfig {
    let high = 1u64 << 50;
    EngineConfig {
        default_limits: Limits {
            requests_per_minute: high,
            requests_per_day: high,
            tokens_per_minute: high,
            tokens_per_day: high,
        },
        anomaly_factor: 1e12,
        ..EngineConfig::default()
    }
}

fn workspace_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ws-{i:06}")).collect()
}

/// An engine on a manual clock holding `n` workspaces, and their ids.
fn engine_with(n: usize) -> (Engine, Arc<ManualClock>, Vec<String>) {
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = Engine::new(unlimited_config(), clock.clone());
    let ids = workspace_ids(n);
    for id in &ids {
        engine
            .create_workspace(id, &LimitOverrides::default())
            .expect("fresh id");
    }
    (engine, clock, ids)
}

/// xorshift64: a cheap, deterministic pseudo-random workspace picker, so that
/// consecutive operations on 100 000 workspaces hit unrelated map entries.
struct Picker {
    state: u64,
    n: u64,
}

impl Picker {
    fn new(seed: u64, n: usize) -> Self {
        Self {
            state: seed,
            n: n as u64,
        }
    }

    fn next(&mut self) -> usize {
        if self.n == 1 {
            return 0;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % self.n) as usize
    }
}

/// Gives every workspace usage spread over the last minute (and so over the
/// day), as a running system would have: 4 calls each, 15 s apart.
fn populate(engine: &Engine, clock: &ManualClock, ids: &[String]) {
    let outcome = CallOutcome::success(TOKENS);
    for _ in 0..4 {
        for id in ids {
            engine.record(id, &outcome).expect("workspace exists");
        }
        clock.advance_s(15);
    }
}

fn bench_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/record");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let outcome = CallOutcome::success(TOKENS);
    for n in SIZES {
        let (engine, clock, ids) = engine_with(n);
        let mut picker = Picker::new(0x9E37_79B9_7F4A_7C15, n);
        group.bench_function(BenchmarkId::from_parameter(workspaces_label(n)), |b| {
            b.iter(|| {
                clock.advance_ms(1);
                let id = &ids[picker.next()];
                black_box(engine.record(id, &outcome).expect("workspace exists"))
            })
        });
    }
    group.finish();
}

/// `check` on workspaces with live usage. Timed in blocks of [`CHECK_BLOCK`]
/// checks; before each block, untimed, as many calls are recorded on other
/// randomly picked workspaces (one record per check, as a proxy does), so the
/// windows keep filling while time moves on. With 1 workspace that keeps about
/// 60 000 requests in its minute window; with 100 000 the checked workspaces are
/// not the ones just recorded, so they are not hot in the cache.
fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/check");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let outcome = CallOutcome::success(TOKENS);
    for n in SIZES {
        let (engine, clock, ids) = engine_with(n);
        populate(&engine, &clock, &ids);
        let mut check_picker = Picker::new(0x2545_F491_4F6C_DD1D, n);
        let mut record_picker = Picker::new(0x9E37_79B9_7F4A_7C15, n);
        group.bench_function(BenchmarkId::from_parameter(workspaces_label(n)), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let block = CHECK_BLOCK.min(iters - done);
                    for _ in 0..block {
                        let id = &ids[record_picker.next()];
                        engine.record(id, &outcome).expect("workspace exists");
                    }
                    let started = Instant::now();
                    for _ in 0..block {
                        clock.advance_ms(1);
                        let id = &ids[check_picker.next()];
                        black_box(engine.check(id).expect("workspace exists"));
                    }
                    timed += started.elapsed();
                    done += block;
                }
                timed
            })
        });
    }
    group.finish();
}

fn bench_try_admit(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/try_admit");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let (engine, clock, ids) = engine_with(1);
    populate(&engine, &clock, &ids);
    let id = &ids[0];
    group.bench_function(BenchmarkId::from_parameter(workspaces_label(1)), |b| {
        b.iter(|| {
            clock.advance_ms(1);
            black_box(engine.try_admit(id).expect("workspace exists"))
        })
    });
    group.finish();
}

/// One call's admission and settle (hold, then settle to its usage with
/// its cost) in a workspace with a hard monthly budget, a per-model rule
/// and a per-user default, its calls spread over 1 000 users and 4 models:
/// what the rules of issue "Money, models and people" cost per call, next
/// to `try_admit` of a workspace with none.
fn bench_admit_settle_scoped(c: &mut Criterion) {
    use quota_alert::engine::settings::WorkspaceSettings;
    use quota_alert::engine::{CallScope, Hold};
    let mut group = c.benchmark_group("engine/admit_settle_scoped");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let (engine, clock, ids) = engine_with(1);
    let id = &ids[0];
    let patch: quota_alert::wire::SettingsPatch = serde_json::from_value(serde_json::json!({
        "time_zone": "Europe/Berlin",
        "budgets": [{"period": "month", "amount_usd": 1e9, "kind": "hard"}],
        "model_limits": {"gpt-4o": {"requests_per_minute": 100000000u64, "budget_usd": 1e9}},
        "user_limits": {"default": {"tokens_per_minute": 100000000000u64}}
    }))
    .expect("settings");
    let settings = WorkspaceSettings::default()
        .patched(&patch)
        .expect("valid settings");
    let limits = engine.limits(id).expect("workspace exists");
    engine.configure(id, limits, settings).expect("configure");
    let models = ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "o3"];
    let users: Vec<String> = (0..1_000).map(|i| format!("user-{i}")).collect();
    let mut n = 0usize;
    group.bench_function(BenchmarkId::from_parameter("1000_users_4_models"), |b| {
        b.iter(|| {
            n += 1;
            clock.advance_ms(1);
            let hold = Hold {
                reservation_id: format!("rsv_{n}"),
                tokens: 500,
                expires_at_ms: u64::MAX / 2,
                cost_nano: 5_000_000,
                unpriced: false,
                scope: CallScope {
                    model: Some(models[n % models.len()].to_string()),
                    user: Some(users[n % users.len()].clone()),
                },
            };
            let admission = engine.admit(id, Some(&hold)).expect("workspace exists");
            let outcome = CallOutcome {
                cost_nano: Some(1_000_000),
                ..CallOutcome::success(TOKENS)
            }
            .settling(Some(hold.reservation_id));
            black_box((admission, engine.complete(id, &outcome).expect("settled")))
        })
    });
    group.finish();
}

/// `record` from two threads at once on 100 000 workspaces (the machine has two
/// cores). The figure is wall time per operation over both threads, so ops/s is
/// the combined throughput.
fn bench_record_parallel(c: &mut Criterion) {
    const THREADS: u64 = 2;
    let mut group = c.benchmark_group("engine/record_2_threads");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let n = 100_000;
    let (engine, clock, ids) = engine_with(n);
    let outcome = CallOutcome::success(TOKENS);
    let mut round = 0u64;
    group.bench_function(BenchmarkId::from_parameter(workspaces_label(n)), |b| {
        b.iter_custom(|iters| {
            round += 1;
            let per_thread = iters.div_ceil(THREADS);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for t in 0..THREADS {
                    let (engine, clock, ids, outcome) = (&engine, &clock, &ids, &outcome);
                    scope.spawn(move || {
                        let mut picker = Picker::new(round * 1_000 + t + 1, n);
                        for _ in 0..per_thread {
                            clock.advance_ms(1);
                            let id = &ids[picker.next()];
                            black_box(engine.record(id, outcome).expect("workspace exists"));
                        }
                    });
                }
            });
            // Rescale to exactly `iters` operations when `iters` was odd.
            started
                .elapsed()
                .mul_f64(iters as f64 / (per_thread * THREADS) as f64)
        })
    });
    group.finish();
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
}

fn workspaces_label(n: usize) -> String {
    if n == 1 {
        "1_workspace".to_string()
    } else {
        format!("{n}_workspaces")
    }
}

/// Resident set size of this process, from `/proc/self/statm` (Linux).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * PAGE_BYTES)
}

/// Memory held per workspace: the engine's own estimate of its heap buffers
/// (sliding-window buckets, failure queue, history) and the growth of the
/// process's resident set, which also counts the map entry, the id `String` and
/// the map's spare capacity. Measured for idle workspaces, then again after one
/// recorded call each.
fn measure_memory() {
    let n = MEMORY_WORKSPACES;
    // The ids handed to the engine are built before the baseline; the engine's
    // own copies of them (the map keys) count toward the growth.
    let ids = workspace_ids(n);
    let clock = Arc::new(ManualClock::new(START_MS));
    let engine = Engine::new(unlimited_config(), clock.clone());
    let before = rss_bytes();
    for id in &ids {
        engine
            .create_workspace(id, &LimitOverrides::default())
            .expect("fresh id");
    }
    let after_idle = rss_bytes();
    let heap_idle = total_heap_bytes(&engine, &ids);
    let rss_text = |after: Option<usize>| match (before, after) {
        (Some(b), Some(a)) => format!("{} bytes/workspace (RSS)", a.saturating_sub(b) / n),
        _ => "RSS unavailable (no /proc/self/statm)".to_string(),
    };
    println!(
        "idle workspace memory: {}, {} heap bytes (engine estimate) [{n} workspaces]",
        rss_text(after_idle),
        heap_idle / n,
    );

    let outcome = CallOutcome::success(TOKENS);
    for id in &ids {
        engine.record(id, &outcome).expect("workspace exists");
    }
    let after_one = rss_bytes();
    let heap_one = total_heap_bytes(&engine, &ids);
    println!(
        "workspace memory after one recorded call each: {}, {} heap bytes (engine estimate) [{n} workspaces]",
        rss_text(after_one),
        heap_one / n,
    );
    black_box(&engine);
}

fn total_heap_bytes(engine: &Engine, ids: &[String]) -> usize {
    ids.iter()
        .map(|id| engine.workspace_heap_bytes(id).expect("workspace exists"))
        .sum()
}

criterion_group!(
    benches,
    bench_record,
    bench_check,
    bench_try_admit,
    bench_admit_settle_scoped,
    bench_record_parallel
);

fn main() {
    measure_memory();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
