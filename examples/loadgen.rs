//! An open-loop, fixed-rate HTTP load generator for measuring the `/v1` proxy's
//! added latency: the fake upstream called directly and through the proxy, side
//! by side in one run.
//!
//! ```text
//! cargo run --release --features ssr --example loadgen -- \
//!     --direct http://127.0.0.1:9000/v1/chat/completions \
//!     --proxy  http://127.0.0.1:3000/v1/chat/completions --key qa_... \
//!     [--rate 1000] [--duration 20] [--warmup 3] [--threads 1] [--markdown]
//! ```
//!
//! Method:
//! - Open loop: request `i` is *scheduled* at `start + i / total_rate`, whatever
//!   happened to earlier requests; a dedicated thread dispatches each one at its
//!   time (`std::thread::sleep`, so no 1 ms timer granularity) onto a tokio
//!   runtime, without waiting for answers.
//! - Latency is measured from the scheduled time to the end of the response
//!   body, so a stall delays every request scheduled behind it and is counted
//!   in full (no coordinated omission).
//! - With both targets, requests alternate direct/proxy: each target gets
//!   `--rate` requests per second, the two streams half a period apart, so
//!   both see the same machine at the same moments.
//! - Requests in the first `--warmup` seconds are sent but not recorded.
//!
//! Prints, per target: count, errors, achieved rate, p50/p90/p99/p99.9/max in
//! ms, and then the proxy-minus-direct difference at each percentile (the
//! added latency). Exit status 0 whether or not the 1 ms target is met; 2 on
//! bad arguments or when a target does not answer 200 to a first probe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_BODY: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}"#;

struct Target {
    label: &'static str,
    url: String,
    key: String,
}

struct Options {
    targets: Vec<Target>,
    rate: f64,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    timeout: Duration,
    body: String,
    markdown: bool,
    target_p99_ms: f64,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--direct URL] [--direct-key KEY] [--proxy URL] [--key KEY]\n\
         \x20              [--rate PER_TARGET_PER_S=1000] [--duration S=20] [--warmup S=3]\n\
         \x20              [--threads N=1] [--timeout-ms MS=10000] [--body JSON] [--markdown]\n\
         \x20              [--target-p99-ms MS=1]\n\
         At least one of --direct/--proxy. URLs are full (…/v1/chat/completions)."
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut direct: Option<String> = None;
    let mut proxy: Option<String> = None;
    let mut direct_key = "sk-bench-direct".to_string();
    let mut key: Option<String> = std::env::var("LOADGEN_KEY").ok();
    let mut rate = 1000.0;
    let mut duration = 20.0;
    let mut warmup = 3.0;
    let mut threads = 1usize;
    let mut timeout_ms = 10_000u64;
    let mut body = DEFAULT_BODY.to_string();
    let mut markdown = false;
    let mut target_p99_ms = 1.0;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--direct" => direct = Some(value()),
            "--proxy" => proxy = Some(value()),
            "--direct-key" => direct_key = value(),
            "--key" => key = Some(value()),
            "--rate" => rate = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => duration = value().parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = value().parse().unwrap_or_else(|_| usage()),
            "--threads" => threads = value().parse().unwrap_or_else(|_| usage()),
            "--timeout-ms" => timeout_ms = value().parse().unwrap_or_else(|_| usage()),
            "--body" => body = value(),
            "--target-p99-ms" => target_p99_ms = value().parse().unwrap_or_else(|_| usage()),
            "--markdown" => markdown = true,
            _ => usage(),
        }
    }
    let mut targets = Vec::new();
    if let Some(url) = direct {
        targets.push(Target {
            label: "direct",
            url,
            key: direct_key,
        });
    }
    if let Some(url) = proxy {
        let Some(key) = key else {
            eprintln!("loadgen: --proxy needs --key (or LOADGEN_KEY)");
            usage()
        };
        targets.push(Target {
            label: "proxy",
            url,
            key,
        });
    }
    // NaN is neither: it must be refused too.
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let non_negative = |x: f64| x.is_finite() && x >= 0.0;
    if targets.is_empty() || !positive(rate) || !positive(duration) || !non_negative(warmup) {
        usage();
    }
    Options {
        targets,
        rate,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        threads: threads.max(1),
        timeout: Duration::from_millis(timeout_ms),
        body,
        markdown,
        target_p99_ms,
    }
}

/// What happened to the recorded requests of one target.
#[derive(Default)]
struct Stats {
    /// Scheduled time to end of body, in microseconds, successful requests only.
    latencies_us: Vec<u64>,
    /// Scheduled time to the moment the request's task began, in microseconds:
    /// how far behind its schedule the generator itself was.
    dispatch_lag_us: Vec<u64>,
    sent: u64,
    errors: u64,
    error_kinds: std::collections::BTreeMap<String, u64>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("max", 100.0),
];

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn one_request(
    client: reqwest::Client,
    url: Arc<str>,
    key: Arc<str>,
    body: bytes::Bytes,
    scheduled: Instant,
    stats: Option<Arc<Mutex<Stats>>>,
) {
    let began = Instant::now();
    let result = async {
        let response = client
            .post(&*url)
            .bearer_auth(&*key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| classify(&e))?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("http {}", status.as_u16()));
        }
        if bytes.is_empty() {
            return Err("empty body".to_string());
        }
        Ok(())
    }
    .await;
    let done = Instant::now();
    let Some(stats) = stats else { return };
    let mut stats = stats.lock().unwrap();
    stats.sent += 1;
    stats
        .dispatch_lag_us
        .push(began.saturating_duration_since(scheduled).as_micros() as u64);
    match result {
        Ok(()) => stats
            .latencies_us
            .push(done.saturating_duration_since(scheduled).as_micros() as u64),
        Err(kind) => {
            stats.errors += 1;
            *stats.error_kinds.entry(kind).or_default() += 1;
        }
    }
}

fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

fn build_client(options: &Options) -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(options.timeout)
        .build()
        .expect("reqwest client")
}

struct Report {
    label: &'static str,
    count: usize,
    sent: u64,
    errors: u64,
    error_kinds: String,
    rate: f64,
    values_us: Vec<u64>,
    lag_p99_us: u64,
    lag_max_us: u64,
}

fn report(label: &'static str, stats: &mut Stats, window: Duration) -> Report {
    stats.latencies_us.sort_unstable();
    stats.dispatch_lag_us.sort_unstable();
    Report {
        label,
        count: stats.latencies_us.len(),
        sent: stats.sent,
        errors: stats.errors,
        error_kinds: stats
            .error_kinds
            .iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect::<Vec<_>>()
            .join(" "),
        rate: stats.sent as f64 / window.as_secs_f64(),
        values_us: PERCENTILES
            .iter()
            .map(|(_, p)| percentile(&stats.latencies_us, *p))
            .collect(),
        lag_p99_us: percentile(&stats.dispatch_lag_us, 99.0),
        lag_max_us: percentile(&stats.dispatch_lag_us, 100.0),
    }
}

fn main() {
    let options = parse_options();
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");

    // One pooled client per target, so the two never share connections.
    let clients: Vec<reqwest::Client> = options
        .targets
        .iter()
        .map(|_| build_client(&options))
        .collect();
    let urls: Vec<Arc<str>> = options
        .targets
        .iter()
        .map(|t| Arc::from(t.url.as_str()))
        .collect();
    let keys: Vec<Arc<str>> = options
        .targets
        .iter()
        .map(|t| Arc::from(t.key.as_str()))
        .collect();
    let body = bytes::Bytes::from(options.body.clone());

    // A first probe per target: fail fast on a wrong key or URL.
    runtime.block_on(async {
        for (i, target) in options.targets.iter().enumerate() {
            let probe = clients[i]
                .post(&target.url)
                .bearer_auth(&target.key)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match probe {
                Ok(r) if r.status() == reqwest::StatusCode::OK => {}
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    eprintln!("loadgen: {} probe: HTTP {status}: {text}", target.label);
                    std::process::exit(2);
                }
                Err(e) => {
                    eprintln!("loadgen: {} probe failed: {e}", target.label);
                    std::process::exit(2);
                }
            }
        }
    });

    let n_targets = options.targets.len();
    let total_rate = options.rate * n_targets as f64;
    let period_ns = 1e9 / total_rate;
    let stats: Vec<Arc<Mutex<Stats>>> = (0..n_targets)
        .map(|_| {
            Arc::new(Mutex::new(Stats {
                latencies_us: Vec::with_capacity(
                    (options.rate * options.duration.as_secs_f64()) as usize + 16,
                ),
                dispatch_lag_us: Vec::with_capacity(
                    (options.rate * options.duration.as_secs_f64()) as usize + 16,
                ),
                ..Stats::default()
            }))
        })
        .collect();

    println!(
        "loadgen: {} target(s) at {} req/s each ({} req/s in all, open loop), {:.0}s warm-up + {:.0}s recorded, {} runtime thread(s)",
        n_targets,
        options.rate,
        total_rate,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
        options.threads
    );
    for t in &options.targets {
        println!("  {:<6} {}", t.label, t.url);
    }

    let handle = runtime.handle().clone();
    let start = Instant::now() + Duration::from_millis(50);
    let record_from = start + options.warmup;
    let end = record_from + options.duration;
    let scheduler = {
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("loadgen-scheduler".into())
            .spawn(move || {
                let mut handles = Vec::new();
                let mut i: u64 = 0;
                loop {
                    let scheduled = start + Duration::from_nanos((i as f64 * period_ns) as u64);
                    if scheduled >= end {
                        break;
                    }
                    let now = Instant::now();
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    let t = (i % n_targets as u64) as usize;
                    let record = (scheduled >= record_from).then(|| stats[t].clone());
                    handles.push(handle.spawn(one_request(
                        clients[t].clone(),
                        urls[t].clone(),
                        keys[t].clone(),
                        body.clone(),
                        scheduled,
                        record,
                    )));
                    i += 1;
                }
                handles
            })
            .expect("scheduler thread")
    };
    let handles = runtime.block_on(async move {
        // Drive the runtime until the scheduler has dispatched everything.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(scheduler.join().expect("scheduler panicked"));
        });
        rx.await.expect("scheduler result")
    });
    runtime.block_on(async move {
        for h in handles {
            let _ = h.await;
        }
    });

    let reports: Vec<Report> = options
        .targets
        .iter()
        .zip(&stats)
        .map(|(t, s)| report(t.label, &mut s.lock().unwrap(), options.duration))
        .collect();

    println!();
    println!(
        "{:<8} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   (latency in ms, from scheduled send time)",
        "target", "ok", "errors", "rate/s", "p50", "p90", "p99", "p99.9", "max"
    );
    for r in &reports {
        print!(
            "{:<8} {:>7} {:>6} {:>8.1}",
            r.label, r.count, r.errors, r.rate
        );
        for v in &r.values_us {
            print!(" {:>8.3}", ms(*v));
        }
        println!();
    }
    for r in &reports {
        if !r.error_kinds.is_empty() {
            println!("  {} errors: {}", r.label, r.error_kinds);
        }
        println!(
            "  {} generator dispatch lag: p99 {:.3} ms, max {:.3} ms ({} sent)",
            r.label,
            ms(r.lag_p99_us),
            ms(r.lag_max_us),
            r.sent
        );
    }
    // The generator shares the machine with what it measures: when it cannot
    // keep to its own schedule, something else had the CPU and the run says
    // more about the machine than about the proxy.
    let worst_lag_p99 = reports.iter().map(|r| r.lag_p99_us).max().unwrap_or(0);
    if worst_lag_p99 > 500 {
        println!(
            "  WARNING: the generator itself ran {:.3} ms behind schedule at p99: the machine was busy; do not trust this run's tail",
            ms(worst_lag_p99)
        );
    }
    let added: Option<Vec<f64>> = match reports.as_slice() {
        [direct, proxy] => Some(
            direct
                .values_us
                .iter()
                .zip(&proxy.values_us)
                .map(|(d, p)| ms(*p) - ms(*d))
                .collect(),
        ),
        _ => None,
    };
    if let Some(added) = &added {
        print!("{:<8} {:>7} {:>6} {:>8}", "added", "", "", "");
        for v in added {
            print!(" {:>+8.3}", v);
        }
        println!();
        let p99 = added[2];
        println!(
            "\nadded p99 latency (proxy p99 - direct p99): {:.3} ms; target <= {} ms: {}",
            p99,
            options.target_p99_ms,
            if p99 <= options.target_p99_ms {
                "MET"
            } else {
                "NOT MET"
            }
        );
    }

    if options.markdown {
        println!();
        println!("| target | ok | errors | achieved rate (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) | max (ms) |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for r in &reports {
            print!(
                "| {} | {} | {} | {:.1} |",
                r.label, r.count, r.errors, r.rate
            );
            for v in &r.values_us {
                print!(" {:.3} |", ms(*v));
            }
            println!();
        }
        if let Some(added) = &added {
            print!("| **added (proxy − direct)** | | | |");
            for v in added {
                print!(" **{:+.3}** |", v);
            }
            println!();
        }
    }
}
