//! Rate limits on the API, the proxy and server functions, with `governor`
//! (GCRA): per caller for authenticated requests, per client address for the
//! rest. Applied by [`super::guard`]; over the limit is a 429 with
//! `retry-after`.
//!
//! The bucket is the *resolved* caller (a workspace, or the admin), never the
//! header as sent: every spelling of a key, every browser session of a
//! workspace and the key itself share one bucket, so a tenant cannot multiply
//! its budget by spelling its header differently or opening sessions.
//! Requests with no valid credential (a wrong key, an expired session, none)
//! are limited by client address only ([`super::client_addr`]), so guessing
//! keys costs the guesser's address its budget and nobody else's.

use super::client_addr;
use crate::wire::Caller;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct ApiRateLimits {
    per_caller: Option<Arc<DefaultKeyedRateLimiter<Caller>>>,
    per_address: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

/// Whose budget a request spends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bucket {
    Caller(Caller),
    Address(IpAddr),
}

impl Bucket {
    /// For the 429's message.
    pub fn describe(&self) -> &'static str {
        match self {
            Bucket::Caller(Caller::Admin) => "the admin",
            Bucket::Caller(Caller::Workspace(_)) => "this workspace",
            Bucket::Address(_) => "this address",
        }
    }
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
    /// `per_caller` and `per_address` requests per second (0: no limit),
    /// bursts of twice that.
    pub fn new(per_caller: u32, per_address: u32) -> Self {
        let limits = Self {
            per_caller: limiter(per_caller),
            per_address: limiter(per_address),
        };
        // Forget idle buckets now and then so the maps do not grow without bound.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak_caller = limits.per_caller.as_ref().map(Arc::downgrade);
            let weak_address = limits.per_address.as_ref().map(Arc::downgrade);
            handle.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    let caller = weak_caller.as_ref().and_then(|w| w.upgrade());
                    let address = weak_address.as_ref().and_then(|w| w.upgrade());
                    if caller.is_none() && address.is_none() {
                        break;
                    }
                    if let Some(l) = caller {
                        l.retain_recent();
                    }
                    if let Some(l) = address {
                        l.retain_recent();
                    }
                }
            });
        }
        limits
    }

    /// Spends one request of `bucket`'s budget; `Err` with the time to wait
    /// when there is none left.
    pub fn check(&self, bucket: &Bucket) -> Result<(), Duration> {
        let result = match bucket {
            Bucket::Caller(caller) => self.per_caller.as_ref().map(|l| l.check_key(caller)),
            Bucket::Address(address) => self
                .per_address
                .as_ref()
                .map(|l| l.check_key(&client_addr::bucket(*address))),
        };
        match result {
            Some(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            Some(Ok(())) | None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_caller_and_per_address_and_zero_is_off() {
        let limits = ApiRateLimits::new(1, 1);
        let acme = Bucket::Caller(Caller::Workspace("acme".into()));
        let other = Bucket::Caller(Caller::Workspace("other".into()));
        // Bursts of twice the rate.
        assert!(limits.check(&acme).is_ok());
        assert!(limits.check(&acme).is_ok());
        assert!(limits.check(&acme).is_err());
        assert!(limits.check(&other).is_ok());
        let here = Bucket::Address("192.0.2.1".parse().unwrap());
        assert!(limits.check(&here).is_ok());
        assert!(limits.check(&here).is_ok());
        assert!(limits.check(&here).is_err());
        let off = ApiRateLimits::new(0, 0);
        for _ in 0..10 {
            assert!(off.check(&acme).is_ok());
            assert!(off.check(&here).is_ok());
        }
    }
}
