//! Bad input, every endpoint: each case says the status code and error code
//! it gets, and after each the server still answers `/healthz`.
//!
//! Slow clients are here too: a client that stalls in its headers is
//! disconnected, and one that trickles its body gets a 408 in the error shape
//! of the endpoint it called.
//!
//! Over 400 lines: most of it is the case table, one row per bad input.

mod common;

use common::{start_with, Server, ADMIN};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Who a request claims to be.
#[derive(Clone, Copy)]
enum Key {
    Nobody,
    Admin,
    /// The key of workspace `acme`.
    Acme,
    /// A well-formed key nobody issued.
    Unknown,
    /// The `Authorization` header exactly as given.
    Header(&'static str),
}

#[derive(Clone)]
enum Body {
    Empty,
    /// JSON text sent as `application/json`.
    Json(&'static str),
    /// JSON built at run time (big or repetitive bodies).
    Built(String),
    /// Any text with the content type given.
    Typed(&'static str, &'static str),
}

struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    key: Key,
    body: Body,
    status: u16,
    /// `error.code` of the answer (both the API's shape and OpenAI's put it there).
    code: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: &'static str,
    key: Key,
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        what,
        method,
        path,
        key,
        body,
        status,
        code,
    }
}

fn cases() -> Vec<Case> {
    use Body::*;
    use Key::*;
    let get = Method::GET;
    let post = Method::POST;
    let big_object = format!(r#"{{"id":"big","pad":"{}"}}"#, "x".repeat(70 * 1024));
    let many_headers = format!(
        r#"{{"success":true,"headers":{{{}}}}}"#,
        (0..101)
            .map(|i| format!(r#""x-h-{i}":"v""#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let too_many_records = format!(
        r#"{{"records":[{}]}}"#,
        vec![r#"{"success":true}"#; 1001].join(",")
    );
    let long_id = format!(r#"{{"id":"{}"}}"#, "a".repeat(65));
    vec![
        // --- POST /api/admin/workspaces -----------------------------------
        case(
            "create without a key",
            post.clone(),
            "/api/admin/workspaces",
            Nobody,
            Json(r#"{"id":"x"}"#),
            401,
            "unauthorized",
        ),
        case(
            "create with a workspace key",
            post.clone(),
            "/api/admin/workspaces",
            Acme,
            Json(r#"{"id":"x"}"#),
            403,
            "forbidden",
        ),
        case(
            "create with an unknown key",
            post.clone(),
            "/api/admin/workspaces",
            Unknown,
            Json(r#"{"id":"x"}"#),
            401,
            "unauthorized",
        ),
        case(
            "create with Basic auth",
            post.clone(),
            "/api/admin/workspaces",
            Header("Basic YWRtaW46YWRtaW4="),
            Json(r#"{"id":"x"}"#),
            401,
            "unauthorized",
        ),
        case(
            "create with broken JSON",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id": "#),
            400,
            "invalid_json",
        ),
        case(
            "create with a JSON array",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json("[1, 2]"),
            400,
            "invalid_body",
        ),
        case(
            "create without an id",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json("{}"),
            400,
            "invalid_body",
        ),
        case(
            "create with a number for the id",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id": 7}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with spaces in the id",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"has space"}"#),
            400,
            "invalid_workspace_id",
        ),
        case(
            "create with upper case in the id",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"Acme"}"#),
            400,
            "invalid_workspace_id",
        ),
        case(
            "create with a 65-character id",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Built(long_id),
            400,
            "invalid_workspace_id",
        ),
        case(
            "create with a zero limit",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"z","limits":{"requests_per_minute":0}}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with a negative limit",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"z","limits":{"tokens_per_day":-5}}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with a limit past the maximum",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"z","limits":{"tokens_per_day":18446744073709551615}}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with an unknown limit",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"z","limits":{"requests_per_hour":5}}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with an unknown field",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"z","owner":"me"}"#),
            400,
            "invalid_body",
        ),
        case(
            "create with text/plain",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Typed("text/plain", r#"{"id":"z"}"#),
            415,
            "unsupported_media_type",
        ),
        case(
            "create with no body",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Empty,
            415,
            "unsupported_media_type",
        ),
        case(
            "create with 70 KiB",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Built(big_object),
            413,
            "payload_too_large",
        ),
        case(
            "create an existing workspace",
            post.clone(),
            "/api/admin/workspaces",
            Admin,
            Json(r#"{"id":"acme"}"#),
            409,
            "already_exists",
        ),
        // --- rotate-key and revoke ------------------------------------------
        case(
            "rotate an unknown workspace",
            post.clone(),
            "/api/admin/workspaces/nope/rotate-key",
            Admin,
            Empty,
            404,
            "not_found",
        ),
        case(
            "rotate a malformed id",
            post.clone(),
            "/api/admin/workspaces/NOT%20AN%20ID/rotate-key",
            Admin,
            Empty,
            400,
            "invalid_workspace_id",
        ),
        case(
            "rotate with a workspace key",
            post.clone(),
            "/api/admin/workspaces/acme/rotate-key",
            Acme,
            Empty,
            403,
            "forbidden",
        ),
        case(
            "revoke without a key",
            post.clone(),
            "/api/admin/workspaces/acme/revoke",
            Nobody,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "revoke an unknown workspace",
            post.clone(),
            "/api/admin/workspaces/nope/revoke",
            Admin,
            Empty,
            404,
            "not_found",
        ),
        // --- GET /api/quota/{status,check,notifications,usage} -------------
        case(
            "status without a key",
            get.clone(),
            "/api/quota/status",
            Nobody,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "status with an unknown key",
            get.clone(),
            "/api/quota/status",
            Unknown,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "status with an empty bearer",
            get.clone(),
            "/api/quota/status",
            Header("Bearer "),
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "status with a non-ASCII key",
            get.clone(),
            "/api/quota/status",
            Header("Bearer k\u{e9}y"),
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "status as admin without a workspace",
            get.clone(),
            "/api/quota/status",
            Admin,
            Empty,
            400,
            "missing_workspace_id",
        ),
        case(
            "status as admin of an unknown workspace",
            get.clone(),
            "/api/quota/status?workspace_id=nope",
            Admin,
            Empty,
            404,
            "not_found",
        ),
        case(
            "status of a malformed workspace id",
            get.clone(),
            "/api/quota/status?workspace_id=..%2Fetc",
            Admin,
            Empty,
            400,
            "invalid_workspace_id",
        ),
        case(
            "status of another workspace",
            get.clone(),
            "/api/quota/status?workspace_id=other",
            Acme,
            Empty,
            403,
            "forbidden",
        ),
        case(
            "status with an unknown parameter",
            get.clone(),
            "/api/quota/status?verbose=1",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        case(
            "check without a key",
            get.clone(),
            "/api/quota/check",
            Nobody,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "check of another workspace",
            get.clone(),
            "/api/quota/check?workspace_id=other",
            Acme,
            Empty,
            403,
            "forbidden",
        ),
        case(
            "notifications with an unknown key",
            get.clone(),
            "/api/quota/notifications",
            Unknown,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "usage of 0 minutes",
            get.clone(),
            "/api/quota/usage?minutes=0",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        case(
            "usage of 1441 minutes",
            get.clone(),
            "/api/quota/usage?minutes=1441",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        case(
            "usage of -5 minutes",
            get.clone(),
            "/api/quota/usage?minutes=-5",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        case(
            "usage of lots of minutes",
            get.clone(),
            "/api/quota/usage?minutes=lots",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        // --- POST /api/quota/record ----------------------------------------
        case(
            "record without a key",
            post.clone(),
            "/api/quota/record",
            Nobody,
            Json(r#"{"success":true}"#),
            401,
            "unauthorized",
        ),
        case(
            "record without success",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"tokens_used":5}"#),
            400,
            "invalid_body",
        ),
        case(
            "record with negative tokens",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"tokens_used":-1}"#),
            400,
            "invalid_body",
        ),
        case(
            "record with fractional tokens",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"tokens_used":1.5}"#),
            400,
            "invalid_body",
        ),
        case(
            "record with tokens past the maximum",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"tokens_used":100000001}"#),
            400,
            "invalid_body",
        ),
        case(
            "record with a string for tokens",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"tokens_used":"ten"}"#),
            400,
            "invalid_body",
        ),
        case(
            "record a failure without an error",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":false}"#),
            400,
            "invalid_body",
        ),
        case(
            "record a success with an error",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"error":{"http_status":429}}"#),
            400,
            "invalid_body",
        ),
        case(
            "record an HTTP status of 999",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":false,"error":{"http_status":999}}"#),
            400,
            "invalid_body",
        ),
        case(
            "record a negative retry-after",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":false,"error":{"http_status":429},"retry_after_s":-1}"#),
            400,
            "invalid_body",
        ),
        case(
            "record a retry-after over a day",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":false,"error":{"http_status":429},"retry_after_s":90000}"#),
            400,
            "invalid_body",
        ),
        case(
            "record a number too big for JSON doubles",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":false,"retry_after_s":1e400}"#),
            400,
            "invalid_json",
        ),
        case(
            "record 101 headers",
            post.clone(),
            "/api/quota/record",
            Acme,
            Built(many_headers),
            400,
            "invalid_body",
        ),
        case(
            "record an unknown field",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(r#"{"success":true,"cost":3}"#),
            400,
            "invalid_body",
        ),
        case(
            "record with an empty JSON body",
            post.clone(),
            "/api/quota/record",
            Acme,
            Json(""),
            400,
            "invalid_json",
        ),
        case(
            "record as form data",
            post.clone(),
            "/api/quota/record",
            Acme,
            Typed("application/x-www-form-urlencoded", "success=true"),
            415,
            "unsupported_media_type",
        ),
        case(
            "record into another workspace",
            post.clone(),
            "/api/quota/record?workspace_id=other",
            Acme,
            Json(r#"{"success":true}"#),
            403,
            "forbidden",
        ),
        // --- POST /api/quota/record/batch ----------------------------------
        case(
            "batch of nothing",
            post.clone(),
            "/api/quota/record/batch",
            Acme,
            Json(r#"{"records":[]}"#),
            400,
            "invalid_body",
        ),
        case(
            "batch of 1001",
            post.clone(),
            "/api/quota/record/batch",
            Acme,
            Built(too_many_records),
            400,
            "invalid_body",
        ),
        case(
            "batch that is not a list",
            post.clone(),
            "/api/quota/record/batch",
            Acme,
            Json(r#"{"records":{"success":true}}"#),
            400,
            "invalid_body",
        ),
        case(
            "batch with one bad record",
            post.clone(),
            "/api/quota/record/batch",
            Acme,
            Json(r#"{"records":[{"success":true},{"success":true,"tokens_used":-3}]}"#),
            400,
            "invalid_body",
        ),
        // --- POST /api/quota/reset -----------------------------------------
        case(
            "reset with a workspace key",
            post.clone(),
            "/api/quota/reset",
            Acme,
            Json("{}"),
            403,
            "forbidden",
        ),
        case(
            "reset an unknown workspace",
            post.clone(),
            "/api/quota/reset",
            Admin,
            Json(r#"{"workspace_id":"nope"}"#),
            404,
            "not_found",
        ),
        case(
            "reset a malformed workspace id",
            post.clone(),
            "/api/quota/reset",
            Admin,
            Json(r#"{"workspace_id":"a/b"}"#),
            400,
            "invalid_workspace_id",
        ),
        // --- GET /api/quota/ws ---------------------------------------------
        case(
            "websocket without an upgrade",
            get.clone(),
            "/api/quota/ws",
            Acme,
            Empty,
            400,
            "websocket_required",
        ),
        case(
            "websocket with an unknown token",
            get.clone(),
            "/api/quota/ws?token=qa_nobody",
            Nobody,
            Empty,
            401,
            "unauthorized",
        ),
        case(
            "websocket with an unknown parameter",
            get.clone(),
            "/api/quota/ws?room=1",
            Acme,
            Empty,
            400,
            "invalid_query",
        ),
        // --- /api/session --------------------------------------------------
        case(
            "sign in with a wrong key",
            post.clone(),
            "/api/session",
            Nobody,
            Json(r#"{"api_key":"qa_wrong"}"#),
            401,
            "unauthorized",
        ),
        case(
            "sign in without a key",
            post.clone(),
            "/api/session",
            Nobody,
            Json("{}"),
            400,
            "invalid_body",
        ),
        case(
            "sign in with an empty key",
            post.clone(),
            "/api/session",
            Nobody,
            Json(r#"{"api_key":""}"#),
            401,
            "unauthorized",
        ),
        case(
            "sign in by form without a key",
            post.clone(),
            "/api/session",
            Nobody,
            Typed("application/x-www-form-urlencoded", "user=me"),
            400,
            "invalid_body",
        ),
        // --- /v1/* proxy (OpenAI's error shape) ----------------------------
        case(
            "proxy without a key",
            post.clone(),
            "/v1/chat/completions",
            Nobody,
            Json(r#"{"model":"m"}"#),
            401,
            "invalid_api_key",
        ),
        case(
            "proxy with an unknown key",
            post.clone(),
            "/v1/chat/completions",
            Unknown,
            Json(r#"{"model":"m"}"#),
            401,
            "invalid_api_key",
        ),
        case(
            "proxy with the admin key",
            post.clone(),
            "/v1/chat/completions",
            Admin,
            Json(r#"{"model":"m"}"#),
            403,
            "workspace_key_required",
        ),
        // --- anything else -------------------------------------------------
        case(
            "an unknown API path",
            get.clone(),
            "/api/nothing/here",
            Acme,
            Empty,
            404,
            "not_found",
        ),
        case(
            "PUT on status",
            Method::PUT,
            "/api/quota/status",
            Acme,
            Empty,
            405,
            "method_not_allowed",
        ),
        case(
            "DELETE on record",
            Method::DELETE,
            "/api/quota/record",
            Acme,
            Empty,
            405,
            "method_not_allowed",
        ),
    ]
}

async fn send(server: &Server, acme_key: &str, case: &Case) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(case.method.clone(), server.url(case.path));
    request = match case.key {
        Key::Nobody => request,
        Key::Admin => request.bearer_auth(ADMIN),
        Key::Acme => request.bearer_auth(acme_key),
        Key::Unknown => request.bearer_auth("qa_0000000000000000000000000000000000000000"),
        Key::Header(value) => request.header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).expect("header bytes"),
        ),
    };
    request = match &case.body {
        Body::Empty => request,
        Body::Json(text) => request
            .header("content-type", "application/json")
            .body(text.to_string()),
        Body::Built(text) => request
            .header("content-type", "application/json")
            .body(text.clone()),
        Body::Typed(content_type, text) => request
            .header("content-type", *content_type)
            .body(text.to_string()),
    };
    let response = request.send().await.expect("send");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn every_endpoint_answers_bad_input_with_its_status_and_error_code() {
    // Rate limits off: this suite sends many requests with one key.
    let server = start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "0"),
        ("QUOTA_API_RATE_PER_IP", "0"),
    ])
    .await;
    let acme = server.workspace("acme").await;
    server.workspace("other").await;

    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let (status, body) = send(&server, &acme, case).await;
        let code = body["error"]["code"].as_str().unwrap_or("<none>");
        let message = body["error"]["message"].as_str().unwrap_or("");
        if status.as_u16() != case.status || code != case.code || message.is_empty() {
            failures.push(format!(
                "{}: {} {} -> {status} {code} (expected {} {}) {body}",
                case.what, case.method, case.path, case.status, case.code
            ));
        }
        let (health, _) = server.get("/healthz", None).await;
        assert_eq!(health, StatusCode::OK, "unhealthy after: {}", case.what);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases answered differently:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Nothing was counted or created by any of it.
    let (_, snapshot) = server.get("/api/quota/status", Some(&acme)).await;
    assert_eq!(snapshot["status"], "NORMAL", "{snapshot}");
    assert_eq!(snapshot["requests_per_minute"]["current"], 0, "{snapshot}");
    for id in ["x", "z", "big"] {
        let (status, _) = server
            .get(&format!("/api/quota/status?workspace_id={id}"), Some(ADMIN))
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "workspace {id} must not exist"
        );
    }
}

/// Reads from `stream` until it closes or `limit` passes; returns what came.
async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    limit: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "connection still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

fn addr_of(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected() {
    let server = start_with(&[("QUOTA_HTTP_HEADER_TIMEOUT_S", "1")]).await;
    let mut stream = TcpStream::connect(addr_of(&server)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("write");
    let (answer, took) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a stalled request gets no answer but a timeout: {answer:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "not before the timeout: {took:?}"
    );

    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr_of(&server)).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");

    let (health, _) = server.get("/healthz", None).await;
    assert_eq!(health, StatusCode::OK);
}

#[tokio::test]
async fn a_body_trickled_too_slowly_gets_a_408_in_the_endpoints_error_shape() {
    let server = start_with(&[("QUOTA_HTTP_BODY_TIMEOUT_S", "1")]).await;
    let key = server.workspace("slow").await;
    for (path, kind) in [
        ("/api/quota/record", None),
        ("/v1/chat/completions", Some("invalid_request_error")),
    ] {
        let mut stream = TcpStream::connect(addr_of(&server)).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let (mut reader, mut writer) = stream.split();
        // The slow client under test: a byte every 300 ms, each within any
        // per-read timeout, the whole far too slow for the 1 s deadline. It
        // goes on (then holds the connection open) until the server answers.
        let trickle = async {
            for byte in br#"{"success":true}"# {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            std::future::pending::<()>().await
        };
        let answer = tokio::select! {
            (answer, _) = read_until_closed(&mut reader, Duration::from_secs(10)) => answer,
            () = trickle => unreachable!("the trickle never ends on its own"),
        };
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
        let body: Value = answer
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or_else(|| panic!("{path}: a JSON body: {answer:?}"));
        assert_eq!(body["error"]["code"], "request_timeout", "{path}: {body}");
        if let Some(kind) = kind {
            assert_eq!(
                body["error"]["type"], kind,
                "OpenAI's shape on {path}: {body}"
            );
        }
    }
    // Nothing was counted, and the server is fine: the one record sent in
    // time is the only one counted.
    server
        .record(&key, serde_json::json!({"success": true}))
        .await;
    let (_, snapshot) = server.get("/api/quota/status", Some(&key)).await;
    assert_eq!(snapshot["requests_per_minute"]["current"], 1, "{snapshot}");
    let (health, _) = server.get("/healthz", None).await;
    assert_eq!(health, StatusCode::OK);
}
