//! A minimal, fast fake OpenAI for benchmarking the `/v1` proxy (not a test
//! fixture: see `tests/common/fake_openai.rs` for the behavioural fake).
//!
//! `POST /v1/chat/completions` answers at once with a fixed `chat.completion`
//! (usage `total_tokens: 30`) and OpenAI's `x-ratelimit-*` headers; with
//! `"stream": true` in the body, with a whole SSE answer (role, five content
//! chunks, the usage chunk, `[DONE]`) written at once, as an nginx mock
//! serving a file would (so any delay a client sees is the proxy's). Any
//! other `/v1/*` path gets an empty list. Bodies and headers are built once.
//!
//! ```text
//! cargo run --release --features ssr --example fake_openai -- [PORT] [--threads N]
//! FAKE_OPENAI_PORT=9000 cargo run --release --features ssr --example fake_openai
//! ```
//!
//! Port 0 (the default) picks a free one. Prints `listening on http://ADDR`
//! (and the matching `OPENAI_BASE_URL=http://ADDR/v1`) once bound. Runs on a
//! single-threaded runtime unless `--threads N` (N > 1) is given, to leave the
//! cores of a small machine to the server under test.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::routing::{any, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use std::net::SocketAddr;

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":10,"total_tokens":30},"system_fingerprint":"fp_bench"}"#;

/// A streamed answer, all of it in one write.
const STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\",\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" how\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" can I help?\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":10,\"total_tokens\":30}}\n\n",
    "data: [DONE]\n\n",
);

const LIST: &str = r#"{"object":"list","data":[]}"#;

const RATE_LIMIT_HEADERS: [(&str, &str); 6] = [
    ("x-ratelimit-limit-requests", "10000"),
    ("x-ratelimit-remaining-requests", "9999"),
    ("x-ratelimit-reset-requests", "6ms"),
    ("x-ratelimit-limit-tokens", "10000000"),
    ("x-ratelimit-remaining-tokens", "9999970"),
    ("x-ratelimit-reset-tokens", "0s"),
];

fn chat(request: &[u8]) -> Response<Body> {
    // A byte search, not a JSON parse: the fake must cost the benchmark as
    // little as possible. The load tools send `"stream":true` unspaced.
    let streamed = request.windows(13).any(|w| w == b"\"stream\":true");
    if !streamed {
        return json(COMPLETION, true);
    }
    let mut response = json(STREAM, true);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn json(body: &'static str, rate_limits: bool) -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if rate_limits {
        for (name, value) in RATE_LIMIT_HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
        headers.insert("openai-processing-ms", HeaderValue::from_static("1"));
    }
    response
}

fn settings() -> (u16, usize) {
    let mut port: Option<u16> = None;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--threads takes a number");
            }
            "--port" => {
                port = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--port takes a port number"),
                );
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: fake_openai [PORT] [--port PORT] [--threads N]  (env FAKE_OPENAI_PORT)"
                );
                std::process::exit(0);
            }
            other => port = Some(other.parse().expect("PORT must be a number")),
        }
    }
    let port = port
        .or_else(|| {
            std::env::var("FAKE_OPENAI_PORT")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (port, threads.max(1))
}

fn main() {
    let (port, threads) = settings();
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    runtime.block_on(async move {
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|body: Bytes| async move { chat(&body) }),
            )
            .route("/v1/{*rest}", any(|| async { json(LIST, false) }));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let bound = listener.local_addr().expect("local address");
        println!("listening on http://{bound}");
        println!("OPENAI_BASE_URL=http://{bound}/v1");
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .expect("server error");
    });
}
