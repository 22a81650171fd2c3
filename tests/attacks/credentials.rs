//! Attacks on how a request's credential is read: bucket multiplication by
//! header spelling, `X-Forwarded-For` spoofing (with and without a trusted
//! proxy), ambiguous credentials (a planted second session cookie), and
//! cross-site requests riding the session cookie (login CSRF, a cross-site
//! `send_message`, sign-out, a REST write). docs/SECURITY.md, "Credentials,
//! rate limits and CSRF", says what each guarantees.

use crate::common::fake_openai;
use crate::common::{sign_in, start_with, Server};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A client whose connections come from `local` (any 127.0.0.0/8 address
/// reaches the server on 127.0.0.1), following no redirects.
fn client_from(local: &str) -> Client {
    Client::builder()
        .local_address(local.parse::<IpAddr>().expect("address"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, String) {
    let res = request.send().await.expect("send");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap_or_default())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The most requests a bucket of `rate`/s (bursts of twice that) can let
/// through in `elapsed`, with one to spare for the refill racing the loop.
fn allowance(rate: u64, elapsed: Duration) -> usize {
    (2 * rate + rate * elapsed.as_secs_f64().ceil() as u64 + 1) as usize
}

/// An API 429 from the rate limiter, with its `retry-after`.
fn assert_api_429(status: StatusCode, headers: &HeaderMap, body: &str) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        json_of(body)["error"]["code"],
        "too_many_requests",
        "{body}"
    );
    assert!(headers.contains_key("retry-after"), "{headers:?}");
}

/// Each spelling of one key, including the session cookie of its workspace.
const SPELLINGS: &[&str] = &[
    "Bearer {}",
    "bearer {}",
    "BEARER {}",
    "Bearer  {}",
    "Bearer\t{}",
    " Bearer {} ",
];

#[tokio::test]
async fn no_spelling_of_a_key_nor_a_session_gets_a_fresh_bucket() {
    // 1 request/s per caller (bursts of 2); nothing per address, so a 429
    // can only come from the caller's own bucket.
    let s = start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "1"),
        ("QUOTA_API_RATE_PER_IP", "0"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
    ])
    .await;
    let acme = s.workspace("acme").await;
    let other = s.workspace("other").await;
    let cookie = sign_in(&s.http, &s.base, &acme).await;

    let started = Instant::now();
    let mut answers = Vec::new();
    for _round in 0..3 {
        for spelling in SPELLINGS {
            let value = spelling.replace("{}", &acme);
            let request = s
                .http
                .get(s.url("/api/quota/status"))
                .header("authorization", value.clone());
            answers.push((value, answer(request).await));
        }
        let request = s
            .http
            .get(s.url("/api/quota/status"))
            .header("cookie", &cookie);
        answers.push(("cookie".to_string(), answer(request).await));
    }
    let elapsed = started.elapsed();

    let ok = answers
        .iter()
        .filter(|(_, (status, _, _))| *status == StatusCode::OK)
        .count();
    for (_, (status, headers, body)) in &answers {
        // Every spelling is the key (never a 401), and none escapes the
        // workspace's one bucket.
        if *status != StatusCode::OK {
            assert_api_429(*status, headers, body);
        }
    }
    assert!(
        ok <= allowance(1, elapsed),
        "{ok} of {} spellings got through in {elapsed:?}: some had a bucket of their own",
        answers.len()
    );
    for spelling in SPELLINGS.iter().map(|s| s.replace("{}", &acme)) {
        assert!(
            answers
                .iter()
                .any(|(v, (status, _, _))| *v == spelling
                    && *status == StatusCode::TOO_MANY_REQUESTS),
            "{spelling:?} was never limited: it is not counted with the others"
        );
    }

    // Another tenant is not touched by acme's flood.
    assert_eq!(
        s.get("/api/quota/status", Some(&other)).await.0,
        StatusCode::OK
    );

    // The proxy and the server functions spend the same bucket, and answer
    // in their own error shapes.
    let mut proxied = None;
    for _ in 0..10 {
        let (status, headers, body) =
            answer(s.http.get(s.url("/v1/models")).bearer_auth(&acme)).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            proxied = Some((headers, body));
            break;
        }
        // Let through by a refill: the (unreachable) upstream answers.
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }
    let (headers, body) = proxied.expect("the proxy is rate limited too");
    let body = json_of(&body);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "requests", "{body}");
    assert!(headers.contains_key("retry-after") && headers.contains_key("retry-after-ms"));

    let mut server_fn = None;
    for _ in 0..10 {
        let request = s.http.post(s.url("/api/fn/whoami")).bearer_auth(&acme);
        let (status, headers, body) = answer(request).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            server_fn = Some((headers, body));
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (headers, body) = server_fn.expect("server functions are rate limited too");
    assert!(
        body.starts_with("MiddlewareError|too_many_requests"),
        "{body}"
    );
    assert!(headers.contains_key("serverfnerror") && headers.contains_key("retry-after"));
}

/// Sends unauthenticated requests from `client` until one is limited (at
/// most 12), each with the forwarding headers `forwarded(i)` returns;
/// whether it was, and how many got through meanwhile.
async fn flood(
    s: &Server,
    client: &Client,
    forwarded: impl Fn(usize) -> String,
) -> (Option<(HeaderMap, String)>, usize, Duration) {
    let started = Instant::now();
    let mut through = 0;
    for i in 0..12 {
        let request = client
            .get(s.url("/api/quota/status"))
            .header("x-forwarded-for", forwarded(i))
            .header("forwarded", format!("for=198.51.100.{i}"));
        let (status, headers, body) = answer(request).await;
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                return (Some((headers, body)), through, started.elapsed())
            }
            // Unauthenticated, not limited (yet).
            StatusCode::UNAUTHORIZED => through += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (None, through, started.elapsed())
}

#[tokio::test]
async fn spoofed_forwarding_headers_do_not_buy_a_fresh_bucket_without_a_trusted_proxy() {
    let s = start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "0"),
        ("QUOTA_API_RATE_PER_IP", "1"),
    ])
    .await;
    let spoofer = client_from("127.0.0.2");
    // A new claimed address every time, the victim's among them.
    let (limited, through, elapsed) = flood(&s, &spoofer, |i| {
        if i % 2 == 0 {
            format!("203.0.113.{i}")
        } else {
            "127.0.0.3".to_string()
        }
    })
    .await;
    let (headers, body) = limited.expect("the spoofer is limited by its own address");
    assert_api_429(StatusCode::TOO_MANY_REQUESTS, &headers, &body);
    assert!(through <= allowance(1, elapsed), "{through} in {elapsed:?}");

    // The address it claimed is not limited: a different peer gets through.
    let victim = client_from("127.0.0.3");
    let (status, _, body) = answer(victim.get(s.url("/api/quota/status"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(json_of(&body)["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket_and_the_left_is_ignored() {
    let s = start_with(&[
        ("QUOTA_API_RATE_PER_KEY", "1"),
        ("QUOTA_API_RATE_PER_IP", "1"),
        ("QUOTA_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    // `s.http` connects from 127.0.0.1: it plays the nginx of
    // docs/DEPLOYMENT.md, which appends the address it saw to whatever
    // X-Forwarded-For the client sent.
    let (limited, through, elapsed) =
        flood(&s, &s.http, |i| format!("10.9.9.{i}, 203.0.113.7")).await;
    let (headers, body) = limited.expect("a changing left-most entry buys nothing");
    assert_api_429(StatusCode::TOO_MANY_REQUESTS, &headers, &body);
    assert!(through <= allowance(1, elapsed), "{through} in {elapsed:?}");

    // Another client behind the same proxy is not limited, even one naming
    // the limited client on its left.
    let request = s
        .http
        .get(s.url("/api/quota/status"))
        .header("x-forwarded-for", "203.0.113.7, 203.0.113.8");
    let (status, _, body) = answer(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // An untrusted peer's X-Forwarded-For is ignored: naming 203.0.113.8
    // does not spend that client's budget, only 127.0.0.2's.
    let outsider = client_from("127.0.0.2");
    let (limited, _, _) = flood(&s, &outsider, |_| "203.0.113.8".to_string()).await;
    assert!(
        limited.is_some(),
        "the outsider is limited by its own address"
    );
    let request = s
        .http
        .get(s.url("/api/quota/status"))
        .header("x-forwarded-for", "203.0.113.8");
    assert_eq!(answer(request).await.0, StatusCode::UNAUTHORIZED);

    // Tenants behind the proxy: one flooding gets a 429 for itself only,
    // though every request arrives from the proxy's address.
    let acme = s.workspace("acme").await;
    let other = s.workspace("other").await;
    let started = Instant::now();
    let mut acme_limited = None;
    for _ in 0..12 {
        let request = s
            .http
            .get(s.url("/api/quota/check"))
            .bearer_auth(&acme)
            .header("x-forwarded-for", "203.0.113.9");
        let (status, headers, body) = answer(request).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            acme_limited = Some((headers, body));
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (headers, body) = acme_limited.expect("acme is limited");
    assert_api_429(StatusCode::TOO_MANY_REQUESTS, &headers, &body);
    assert!(started.elapsed() < Duration::from_secs(10));
    let request = s
        .http
        .get(s.url("/api/quota/check"))
        .bearer_auth(&other)
        .header("x-forwarded-for", "203.0.113.9");
    let (status, _, body) = answer(request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another tenant is not limited: {body}"
    );
}

#[tokio::test]
async fn two_credentials_are_refused_never_one_of_them_picked() {
    let s = start_with(&[]).await;
    let acme = s.workspace("acme").await;
    let other = s.workspace("other").await;
    let mine = sign_in(&s.http, &s.base, &acme).await;
    let planted = sign_in(&s.http, &s.base, &other).await;

    let status_with = |headers: Vec<(&'static str, String)>| {
        let mut request = s.http.get(s.url("/api/quota/status"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        answer(request)
    };
    // Each alone works.
    assert_eq!(
        status_with(vec![("cookie", mine.clone())]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_with(vec![("cookie", planted.clone())]).await.0,
        StatusCode::OK
    );
    // A second session cookie planted by a sibling site (cookie tossing),
    // in one header or two, and two keys: 401, never one of them picked.
    for headers in [
        vec![("cookie", format!("{planted}; {mine}"))],
        vec![("cookie", mine.clone()), ("cookie", planted.clone())],
        vec![
            ("authorization", format!("Bearer {acme}")),
            ("authorization", format!("Bearer {other}")),
        ],
        vec![("authorization", format!("Bearer {acme} {other}"))],
    ] {
        let (status, _, body) = status_with(headers.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(json_of(&body)["error"]["code"], "unauthorized");
    }
    // The WebSocket: a key in the header and another as `?token=`.
    let url = s.url(&format!("/api/quota/ws?token={other}"));
    let (status, _, body) = answer(s.http.get(url).bearer_auth(&acme)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The proxy takes a key, not the browser's cookie.
    let (status, _, body) = answer(s.http.get(s.url("/v1/models")).header("cookie", &mine)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(json_of(&body)["error"]["code"], "invalid_api_key");
}

const EVIL: &str = "https://evil.example";

fn form_sign_in(s: &Server, client: &Client, key: &str) -> reqwest::RequestBuilder {
    client.post(s.url("/api/session")).form(&[("api_key", key)])
}

fn assert_cross_site_refused(status: StatusCode, headers: &HeaderMap, body: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        json_of(body)["error"]["code"],
        "cross_site_request",
        "{body}"
    );
    assert!(!headers.contains_key("set-cookie"), "{headers:?}");
}

#[tokio::test]
async fn a_cross_site_sign_in_is_refused_and_the_app_s_own_works() {
    let s = start_with(&[]).await;
    let key = s.workspace("acme").await;
    let browser = client_from("127.0.0.1");
    let own = s.base.clone();

    // Another site's form or fetch, as each browser generation tells it.
    for headers in [
        vec![("sec-fetch-site", "cross-site"), ("origin", EVIL)],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "http://sub.127.0.0.1.nip.io"),
        ],
        vec![("origin", EVIL)],
        vec![("origin", "null")],
    ] {
        let mut request = form_sign_in(&s, &browser, &key);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let (status, response_headers, body) = answer(request).await;
        assert_cross_site_refused(status, &response_headers, &body);
        let mut json = browser
            .post(s.url("/api/session"))
            .json(&json!({"api_key": key}));
        for (name, value) in &headers {
            json = json.header(*name, *value);
        }
        let (status, response_headers, body) = answer(json).await;
        assert_cross_site_refused(status, &response_headers, &body);
    }

    // The app's own sign-in form: a same-origin POST.
    for headers in [
        vec![("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        vec![("origin", own.as_str())],
    ] {
        let mut request = form_sign_in(&s, &browser, &key);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let (status, response_headers, body) = answer(request).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{headers:?}: {body}");
        assert_eq!(response_headers["location"], "/");
        assert!(response_headers.contains_key("set-cookie"));
    }
    // No browser at all (curl, scripts): nothing to forge, accepted.
    sign_in(&s.http, &s.base, &key).await;
}

#[tokio::test]
async fn cross_site_requests_riding_the_cookie_are_refused() {
    let fake = fake_openai::start().await;
    let s = start_with(&[("OPENAI_BASE_URL", fake.base_url.as_str())]).await;
    let key = s.workspace("acme").await;
    let cookie = sign_in(&s.http, &s.base, &key).await;
    let own = s.base.clone();
    let send_message = |headers: &[(&str, &str)]| {
        let mut request = s
            .http
            .post(s.url("/api/fn/send_message"))
            .header("cookie", &cookie)
            .form(&[
                ("workspace", "acme"),
                ("conversation", "main"),
                ("text", "hello"),
            ]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request)
    };

    for headers in [
        vec![("sec-fetch-site", "cross-site"), ("origin", EVIL)],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", EVIL)],
    ] {
        let (status, response_headers, body) = send_message(&headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
        // The server-function error encoding, which the app's client decodes.
        assert!(
            body.starts_with("MiddlewareError|cross_site_request"),
            "{body}"
        );
        assert!(response_headers.contains_key("serverfnerror"));
    }
    assert_eq!(fake.count(), 0, "nothing reached OpenAI");

    // The app's own page sending the same message.
    let (status, _, body) =
        send_message(&[("sec-fetch-site", "same-origin"), ("origin", &own)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json_of(&body)["outcome"], "replied", "{body}");
    assert_eq!(fake.count(), 1);

    // A REST write with the cookie: refused cross-site; with a key (which
    // no other site can make a browser send), the same headers pass.
    let record = |auth: (&'static str, String)| {
        answer(
            s.http
                .request(Method::POST, s.url("/api/quota/record"))
                .header(auth.0, auth.1)
                .header("origin", EVIL)
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"success": true, "tokens_used": 1})),
        )
    };
    let (status, headers, body) = record(("cookie", cookie.clone())).await;
    assert_cross_site_refused(status, &headers, &body);
    let (status, _, body) = record(("authorization", format!("Bearer {key}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Sign-out from another site: refused, and the session still works.
    let sign_out = |site: &'static str| {
        answer(
            s.http
                .delete(s.url("/api/session"))
                .header("cookie", &cookie)
                .header("sec-fetch-site", site),
        )
    };
    let (status, headers, body) = sign_out("cross-site").await;
    assert_cross_site_refused(status, &headers, &body);
    let whoami = || {
        answer(
            s.http
                .get(s.url("/api/quota/status"))
                .header("cookie", &cookie),
        )
    };
    assert_eq!(whoami().await.0, StatusCode::OK);
    let (status, _, body) = sign_out("same-origin").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(whoami().await.0, StatusCode::UNAUTHORIZED);
}
