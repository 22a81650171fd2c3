//! Closed-loop streaming load for the `/v1` proxy: `--concurrency` workers,
//! each sending one streamed chat completion after another for
//! `--duration` seconds, alternating between the upstream directly and the
//! proxy, so both see the same load, machine and moment. Reports, per target,
//! streams per second and the time to the first body byte and to the end of
//! the stream (p50, p90, p99, max). `--concurrency 1` is the serial case
//! (one client, one stream after another: what Nagle's algorithm meeting
//! delayed ACKs would turn into ~40 ms a stream); 50 is saturation on two
//! cores. Used by `scripts/bench-proxy.sh`; method and figures in
//! docs/BENCHMARKS.md.
//!
//! ```text
//! cargo run --release --features ssr --example streamgen -- \
//!     --direct http://127.0.0.1:9000/v1/chat/completions \
//!     --proxy  http://127.0.0.1:3000/v1/chat/completions --key qa_... \
//!     [--concurrency 1] [--duration 10] [--warmup 2] [--markdown]
//! ```
//!
//! A load generator of our own: wrk and oha report whole-response latency
//! only, not the first byte of a stream, and not both targets interleaved.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BODY: &str =
    r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}"#;

struct Options {
    direct: String,
    proxy: String,
    key: String,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    markdown: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: streamgen --direct URL --proxy URL --key KEY [--concurrency N=1] \
         [--duration S=10] [--warmup S=2] [--markdown]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut args = std::env::args().skip(1);
    let (mut direct, mut proxy, mut key) = (None, None, std::env::var("LOADGEN_KEY").ok());
    let (mut concurrency, mut duration, mut warmup, mut markdown) = (1usize, 10u64, 2u64, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--direct" => direct = Some(value()),
            "--proxy" => proxy = Some(value()),
            "--key" => key = Some(value()),
            "--concurrency" => concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => duration = value().parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = value().parse().unwrap_or_else(|_| usage()),
            "--markdown" => markdown = true,
            _ => usage(),
        }
    }
    let (Some(direct), Some(proxy), Some(key)) = (direct, proxy, key) else {
        usage()
    };
    Options {
        direct,
        proxy,
        key,
        concurrency: concurrency.max(1),
        duration: Duration::from_secs(duration.max(1)),
        warmup: Duration::from_secs(warmup),
        markdown,
    }
}

#[derive(Default)]
struct Stats {
    first_byte_us: Vec<u64>,
    complete_us: Vec<u64>,
    errors: u64,
    /// The first error seen, to say what went wrong.
    first_error: Option<String>,
}

/// One streamed call: (time to the first body byte, time to the end), µs.
async fn one_stream(client: &reqwest::Client, url: &str, key: &str) -> Result<(u64, u64), String> {
    let began = Instant::now();
    let mut response = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("http {}", response.status().as_u16()));
    }
    let mut first = None;
    let mut seen_done = false;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        first.get_or_insert_with(|| began.elapsed());
        if chunk.windows(6).any(|w| w == b"[DONE]") {
            seen_done = true;
        }
    }
    let done = began.elapsed();
    if !seen_done {
        return Err("stream ended without [DONE]".into());
    }
    let first = first.unwrap_or(done);
    Ok((first.as_micros() as u64, done.as_micros() as u64))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() {
    let options = parse_options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.concurrency * 2)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let targets = [
        ("direct", options.direct.clone()),
        ("proxy", options.proxy.clone()),
    ];
    let stats: Arc<[Mutex<Stats>; 2]> = Arc::new(Default::default());
    let began = Instant::now();
    let record_from = began + options.warmup;
    let end = record_from + options.duration;
    let workers: Vec<_> = (0..options.concurrency)
        .map(|worker| {
            let (client, targets, stats, key) = (
                client.clone(),
                targets.clone(),
                stats.clone(),
                options.key.clone(),
            );
            tokio::spawn(async move {
                // Odd workers start on the proxy, so both targets are busy at once.
                let mut turn = worker % 2;
                while Instant::now() < end {
                    let started = Instant::now();
                    let outcome = one_stream(&client, &targets[turn].1, &key).await;
                    if started >= record_from {
                        let mut s = stats[turn].lock().unwrap_or_else(|p| p.into_inner());
                        match outcome {
                            Ok((first, done)) => {
                                s.first_byte_us.push(first);
                                s.complete_us.push(done);
                            }
                            Err(e) => {
                                s.errors += 1;
                                s.first_error.get_or_insert(e);
                            }
                        }
                    }
                    turn = 1 - turn;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let seconds = options.duration.as_secs_f64();
    let mut p50 = [0.0f64; 2];
    let mut first_p50 = [0.0f64; 2];
    if options.markdown {
        println!("| target | streams/s | errors | first byte p50 | p90 | p99 | complete p50 | p90 | p99 | max |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    for (i, (label, _)) in targets.iter().enumerate() {
        let mut s = stats[i].lock().unwrap_or_else(|p| p.into_inner());
        s.first_byte_us.sort_unstable();
        s.complete_us.sort_unstable();
        let (f, c) = (&s.first_byte_us, &s.complete_us);
        p50[i] = percentile(c, 50.0);
        first_p50[i] = percentile(f, 50.0);
        let rate = c.len() as f64 / seconds;
        if let Some(e) = &s.first_error {
            eprintln!("[streamgen] {label}: {} errors, the first: {e}", s.errors);
        }
        if options.markdown {
            println!(
                "| {label} | {rate:.0} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
                s.errors,
                percentile(f, 50.0),
                percentile(f, 90.0),
                percentile(f, 99.0),
                percentile(c, 50.0),
                percentile(c, 90.0),
                percentile(c, 99.0),
                percentile(c, 100.0),
            );
        } else {
            println!(
                "{label}: {rate:.0} streams/s, {} errors; first byte p50 {:.2} ms p99 {:.2} ms; complete p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                s.errors,
                percentile(f, 50.0),
                percentile(f, 99.0),
                percentile(c, 50.0),
                percentile(c, 99.0),
                percentile(c, 100.0),
            );
        }
    }
    println!(
        "[streamgen] concurrency {}: the proxy adds {:.2} ms to a complete stream at p50 (goal ≤ 1 ms) and {:.2} ms to the first byte (goal ≤ 0.5 ms)",
        options.concurrency,
        p50[1] - p50[0],
        first_p50[1] - first_p50[0],
    );
}
