//! Tokens held for calls in flight: the *reserve* half of reserve-and-settle.
//!
//! Admission used to count a request but not its tokens, which arrive only
//! with the answer; N requests sent at once against a tokens-per-minute
//! limit were all admitted while the window still looked empty. Now a call
//! reserves its worst case (prompt plus output cap) when it is admitted, the
//! hold counts against every token window until the call settles to its real
//! usage, and so `used + reserved` never passes a limit at admission.
//!
//! A hold is released when its call settles (success, failure, the client
//! going away) or, for a caller that never settles (it crashed), when it
//! expires: [`Hold::expires_at_ms`], set from
//! [`EngineConfig::reservation_ttl_ms`](super::EngineConfig). Holds are per
//! workspace and bounded in number ([`MAX_HOLDS_PER_WORKSPACE`]).

use std::collections::HashMap;

/// Holds one workspace may have open at once. Each already needs a request
/// and at least one token of room, so the window limits bound them first;
/// this caps the map for a workspace with very large limits.
pub const MAX_HOLDS_PER_WORKSPACE: usize = 10_000;

/// Tokens reserved for one call, until it settles or `expires_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    /// Chosen by the caller (the service makes them random and unguessable);
    /// unique within the workspace.
    pub reservation_id: String,
    pub tokens: u64,
    pub expires_at_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Reservations {
    held: HashMap<String, (u64, u64)>,
    total: u64,
}

impl Reservations {
    /// Tokens held now (call [`expire`](Self::expire) first).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Holds `hold`; replaces a hold of the same id (a replayed event).
    pub fn hold(&mut self, hold: &Hold) {
        let previous = self.held.insert(
            hold.reservation_id.clone(),
            (hold.tokens, hold.expires_at_ms),
        );
        if let Some((tokens, _)) = previous {
            self.total -= tokens;
        }
        self.total = self.total.saturating_add(hold.tokens);
    }

    /// Releases a hold; the tokens it held, or `None` if there was none
    /// (already settled, expired, or never made here).
    pub fn release(&mut self, reservation_id: &str) -> Option<u64> {
        let (tokens, _) = self.held.remove(reservation_id)?;
        self.total -= tokens;
        Some(tokens)
    }

    /// Drops the holds whose time is up; how many went.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        if self.held.is_empty() {
            return 0;
        }
        let before = self.held.len();
        let mut freed = 0u64;
        self.held.retain(|_, (tokens, expires)| {
            let keep = *expires > now_ms;
            if !keep {
                freed += *tokens;
            }
            keep
        });
        self.total -= freed;
        before - self.held.len()
    }

    /// The ids held now.
    pub fn ids(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// The earliest instant a hold expires, if any is held.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.held.values().map(|(_, expires)| *expires).min()
    }

    pub fn clear(&mut self) {
        self.held = HashMap::new();
        self.total = 0;
    }

    pub fn heap_bytes(&self) -> usize {
        self.held.capacity() * (std::mem::size_of::<(String, (u64, u64))>() + 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(id: &str, tokens: u64, expires_at_ms: u64) -> Hold {
        Hold {
            reservation_id: id.into(),
            tokens,
            expires_at_ms,
        }
    }

    #[test]
    fn holds_add_up_and_release_once() {
        let mut r = Reservations::default();
        r.hold(&hold("a", 100, 10_000));
        r.hold(&hold("b", 50, 20_000));
        assert_eq!(r.total(), 150);
        assert_eq!(r.release("a"), Some(100));
        assert_eq!(r.release("a"), None, "a second settle releases nothing");
        assert_eq!(r.total(), 50);
    }

    #[test]
    fn the_same_id_held_twice_is_one_hold() {
        let mut r = Reservations::default();
        r.hold(&hold("a", 100, 10_000));
        r.hold(&hold("a", 100, 10_000));
        assert_eq!((r.total(), r.len()), (100, 1));
    }

    #[test]
    fn holds_expire_at_their_time() {
        let mut r = Reservations::default();
        r.hold(&hold("a", 100, 10_000));
        r.hold(&hold("b", 50, 20_000));
        assert_eq!(r.next_expiry_ms(), Some(10_000));
        assert_eq!(r.expire(9_999), 0);
        assert_eq!(r.expire(10_000), 1);
        assert_eq!(r.total(), 50);
        assert_eq!(r.expire(20_000), 1);
        assert!(r.is_empty());
        assert_eq!(r.total(), 0);
    }
}
