//! The cap on open WebSockets per caller (`QUOTA_MAX_WS_PER_WORKSPACE`): a
//! workspace key (or its sessions) can hold at most that many sockets open on
//! one instance, each a task and buffers; the admin has a cap of its own, so
//! no tenant can take the admin's.

use crate::wire::Caller;
use dashmap::DashMap;
use std::sync::Arc;

/// Open WebSockets per caller (`None`: the admin).
pub struct ConnectionSlots {
    counts: Arc<DashMap<Option<String>, usize>>,
    max: usize,
}

/// One open WebSocket's place; given back when dropped, however the socket
/// ends.
pub struct ConnectionSlot {
    counts: Arc<DashMap<Option<String>, usize>>,
    owner: Option<String>,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        Self {
            counts: Arc::default(),
            max: max.max(1),
        }
    }

    /// A place for one more socket of `caller`, or `None` at the cap.
    pub fn try_acquire(&self, caller: &Caller) -> Option<ConnectionSlot> {
        let owner = match caller {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.clone()),
        };
        // Checked and counted under the entry's lock: N concurrent upgrades
        // against a cap of M get exactly M places.
        let mut count = self.counts.entry(owner.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        drop(count);
        Some(ConnectionSlot {
            counts: self.counts.clone(),
            owner,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(mut count) = self.counts.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
        }
        // An owner with no socket costs nothing.
        self.counts.remove_if(&self.owner, |_, count| *count == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_gets_at_most_its_cap_and_places_come_back() {
        let slots = ConnectionSlots::new(2);
        let acme = Caller::Workspace("acme".into());
        let a = slots.try_acquire(&acme).expect("first");
        let _b = slots.try_acquire(&acme).expect("second");
        assert!(slots.try_acquire(&acme).is_none(), "past the cap");
        assert!(
            slots.try_acquire(&Caller::Admin).is_some(),
            "others unaffected"
        );
        drop(a);
        assert!(
            slots.try_acquire(&acme).is_some(),
            "a closed socket frees its place"
        );
    }
}
