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

/// Tokens (and money) reserved for one call, until it settles or
/// `expires_at_ms`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    /// Chosen by the caller (the service makes them random and unguessable);
    /// unique within the workspace.
    pub reservation_id: String,
    pub tokens: u64,
    pub expires_at_ms: u64,
    /// The call's worst-case cost in nano-dollars (every output token it
    /// may produce at the dearest rate): what hard budgets reserve.
    #[serde(default)]
    pub cost_nano: u64,
    /// The model and end user the call is for: which per-model and
    /// per-user limits it counts against.
    #[serde(default)]
    pub scope: CallScope,
    /// The call names a model the price table does not price: its cost is
    /// unknown, so no budget can hold it (refused where one applies,
    /// `budget_rules::unpriced_refusal`). Left out when false, as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpriced: bool,
}

/// Who and what a call is for inside its workspace. The user is a label an
/// app sends (`X-Quota-User`, a body's `user`), never a credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What one open hold keeps: its amounts, its scope, and the rule keys it
/// was admitted under (so a rule edited mid-call settles the scope it held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub tokens: u64,
    pub expires_at_ms: u64,
    pub cost_nano: u64,
    pub scope: CallScope,
    pub keys: super::scopes::ScopeKeys,
}

#[derive(Clone, Debug, Default)]
pub struct Reservations {
    held: HashMap<String, Held>,
    total: u64,
    total_cost: u64,
}

impl Reservations {
    /// Tokens held now (call [`expire`](Self::expire) first).
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn contains(&self, reservation_id: &str) -> bool {
        self.held.contains_key(reservation_id)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Money held now, in nano-dollars.
    pub fn total_cost(&self) -> u64 {
        self.total_cost
    }

    /// Tokens and money held by the calls `keys` picks out (a per-model or
    /// per-user scope); summed on demand, since holds settle within seconds
    /// and a running total per scope could drift from the map.
    pub fn held_by(&self, picks: impl Fn(&super::scopes::ScopeKeys) -> bool) -> (u64, u64) {
        self.held
            .values()
            .filter(|h| picks(&h.keys))
            .fold((0u64, 0u64), |(tokens, cost), h| {
                (
                    tokens.saturating_add(h.tokens),
                    cost.saturating_add(h.cost_nano),
                )
            })
    }

    /// Holds `hold` under the rule `keys`; replaces a hold of the same id (a
    /// replayed event).
    pub fn hold(&mut self, hold: &Hold, keys: super::scopes::ScopeKeys) {
        let previous = self.held.insert(
            hold.reservation_id.clone(),
            Held {
                tokens: hold.tokens,
                expires_at_ms: hold.expires_at_ms,
                cost_nano: hold.cost_nano,
                scope: hold.scope.clone(),
                keys,
            },
        );
        if let Some(previous) = previous {
            self.total -= previous.tokens;
            self.total_cost -= previous.cost_nano;
        }
        self.total = self.total.saturating_add(hold.tokens);
        self.total_cost = self.total_cost.saturating_add(hold.cost_nano);
    }

    /// Releases a hold; what it held, or `None` if there was none (already
    /// settled, expired, or never made here).
    pub fn release(&mut self, reservation_id: &str) -> Option<Held> {
        let held = self.held.remove(reservation_id)?;
        self.total -= held.tokens;
        self.total_cost -= held.cost_nano;
        Some(held)
    }

    /// Drops the holds whose time is up; how many went.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        if self.held.is_empty() {
            return 0;
        }
        let before = self.held.len();
        let (mut freed, mut freed_cost) = (0u64, 0u64);
        self.held.retain(|_, held| {
            let keep = held.expires_at_ms > now_ms;
            if !keep {
                freed += held.tokens;
                freed_cost += held.cost_nano;
            }
            keep
        });
        self.total -= freed;
        self.total_cost -= freed_cost;
        before - self.held.len()
    }

    /// The ids held now.
    pub fn ids(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// The earliest instant a hold expires, if any is held.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.held.values().map(|h| h.expires_at_ms).min()
    }

    pub fn clear(&mut self) {
        self.held = HashMap::new();
        self.total = 0;
        self.total_cost = 0;
    }

    pub fn heap_bytes(&self) -> usize {
        self.held.capacity() * (std::mem::size_of::<(String, Held)>() + 24)
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
            cost_nano: 0,
            scope: CallScope::default(),
            unpriced: false,
        }
    }

    impl Reservations {
        fn hold_plain(&mut self, hold: &Hold) {
            self.hold(hold, Default::default());
        }
    }

    #[test]
    fn holds_add_up_and_release_once() {
        let mut r = Reservations::default();
        r.hold_plain(&hold("a", 100, 10_000));
        r.hold_plain(&hold("b", 50, 20_000));
        assert_eq!(r.total(), 150);
        assert_eq!(r.release("a").map(|h| h.tokens), Some(100));
        assert_eq!(r.release("a"), None, "a second settle releases nothing");
        assert_eq!(r.total(), 50);
    }

    #[test]
    fn the_same_id_held_twice_is_one_hold() {
        let mut r = Reservations::default();
        r.hold_plain(&hold("a", 100, 10_000));
        r.hold_plain(&hold("a", 100, 10_000));
        assert_eq!((r.total(), r.len()), (100, 1));
    }

    #[test]
    fn holds_expire_at_their_time() {
        let mut r = Reservations::default();
        r.hold_plain(&hold("a", 100, 10_000));
        r.hold_plain(&hold("b", 50, 20_000));
        assert_eq!(r.next_expiry_ms(), Some(10_000));
        assert_eq!(r.expire(9_999), 0);
        assert_eq!(r.expire(10_000), 1);
        assert_eq!(r.total(), 50);
        assert_eq!(r.expire(20_000), 1);
        assert!(r.is_empty());
        assert_eq!(r.total(), 0);
    }
}
