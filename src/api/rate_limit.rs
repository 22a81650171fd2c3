//! Rate limits on the API itself (not the proxy, whose traffic the quota
//! engine governs): per key or session, and per client address, with `governor`
//! (GCRA). Over the limit: 429 with `retry-after` and our JSON error.

use super::error::ApiError;
use crate::auth::key_digest;
use crate::session::session_id_from_headers;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct ApiRateLimits {
    per_key: Option<Arc<DefaultKeyedRateLimiter<[u8; 32]>>>,
    per_ip: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_second: u32,
) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

impl ApiRateLimits {
    pub fn new(per_key: u32, per_ip: u32) -> Self {
        let limits = Self {
            per_key: limiter(per_key),
            per_ip: limiter(per_ip),
        };
        // Forget idle keys now and then so the maps do not grow without bound.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak_key = limits.per_key.as_ref().map(Arc::downgrade);
            let weak_ip = limits.per_ip.as_ref().map(Arc::downgrade);
            handle.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    let key = weak_key.as_ref().and_then(|w| w.upgrade());
                    let ip = weak_ip.as_ref().and_then(|w| w.upgrade());
                    if key.is_none() && ip.is_none() {
                        break;
                    }
                    if let Some(l) = key {
                        l.retain_recent();
                    }
                    if let Some(l) = ip {
                        l.retain_recent();
                    }
                }
            });
        }
        limits
    }
}

pub async fn enforce(
    State(limits): State<ApiRateLimits>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(per_ip) = &limits.per_ip {
        if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            if let Err(not_until) = per_ip.check_key(&addr.ip()) {
                return too_many(
                    not_until.wait_time_from(DefaultClock::default().now()),
                    "this address",
                );
            }
        }
    }
    if let Some(per_key) = &limits.per_key {
        let headers = request.headers();
        let credential = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| session_id_from_headers(headers));
        if let Some(credential) = credential {
            if let Err(not_until) = per_key.check_key(&key_digest(&credential)) {
                return too_many(
                    not_until.wait_time_from(DefaultClock::default().now()),
                    "this key",
                );
            }
        }
    }
    next.run(request).await
}

fn too_many(wait: Duration, whom: &str) -> Response {
    let seconds = wait.as_secs_f64().max(0.001);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!("Too many API requests from {whom}; retry in {seconds:.2}s."),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&(seconds.ceil() as u64).max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
