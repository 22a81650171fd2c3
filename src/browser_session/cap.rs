//! The cap on sessions per owner (`QUOTA_MAX_SESSIONS_PER_WORKSPACE`, and
//! as many for the admin): one sign-in too many ends that owner's oldest
//! session, so a sign-in loop holds at most the cap and pushes out only its
//! own workspace's sessions.

use super::SessionDigest;
use dashmap::DashMap;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whose sessions are counted together: a workspace's id, or `None` for the
/// admin.
pub(super) type Owner = Option<String>;

/// Each owner's sessions, oldest first.
pub(super) struct OwnerCap {
    /// Keyed by creation time, then (ties in one millisecond) by arrival.
    /// Changed under the owner's entry, see [`OwnerCap::file`].
    by_owner: DashMap<Owner, BTreeSet<(u64, u64, SessionDigest)>>,
    /// Counts sessions in, to order those created in the same millisecond.
    arrivals: AtomicU64,
    max_per_owner: usize,
}

impl OwnerCap {
    /// At most `max_per_owner` sessions per owner (at least one).
    pub(super) fn new(max_per_owner: usize) -> Self {
        Self {
            by_owner: DashMap::new(),
            arrivals: AtomicU64::new(0),
            max_per_owner: max_per_owner.max(1),
        }
    }

    /// Files the session `digest`, created at `created_ms`, under `owner`,
    /// and returns the owner's sessions now past the cap (the oldest first),
    /// already taken out of the set: the caller ends them.
    ///
    /// `add` puts the session into the index and says whether it replaced
    /// one of the same digest. It runs while the owner's entry is held, so a
    /// concurrent [`unfile`](Self::unfile) (which takes the entry after the
    /// session is gone from the index) always finds it in the set, and the
    /// set's size is the owner's session count.
    pub(super) fn file(
        &self,
        owner: Owner,
        created_ms: u64,
        digest: SessionDigest,
        add: impl FnOnce() -> bool,
    ) -> Vec<SessionDigest> {
        let mut set = self.by_owner.entry(owner).or_default();
        if add() {
            set.retain(|(_, _, d)| *d != digest);
        }
        // Ties in the same millisecond go by arrival, so the cap ends
        // the first one signed in, not the one with the lower digest.
        let arrival = self.arrivals.fetch_add(1, Ordering::Relaxed);
        set.insert((created_ms, arrival, digest));
        let mut over = Vec::new();
        while set.len() > self.max_per_owner {
            match set.pop_first() {
                Some((_, _, oldest)) => over.push(oldest),
                None => break,
            }
        }
        over
    }

    /// Takes `digest` out of its owner's set (a scan of at most the cap: the
    /// arrival it was filed under is not kept with the session).
    pub(super) fn unfile(&self, owner: &Owner, digest: &SessionDigest) {
        if let Some(mut set) = self.by_owner.get_mut(owner) {
            set.retain(|(_, _, d)| d != digest);
        }
        self.by_owner.remove_if(owner, |_, set| set.is_empty());
    }

    /// The digests filed under `owner`, oldest first.
    pub(super) fn digests_of(&self, owner: &Owner) -> Vec<SessionDigest> {
        self.by_owner
            .get(owner)
            .map(|set| set.iter().map(|(_, _, d)| *d).collect())
            .unwrap_or_default()
    }

    /// How many sessions `owner` has.
    pub(super) fn count_of(&self, owner: &Owner) -> usize {
        self.by_owner.get(owner).map_or(0, |set| set.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::browser_session::test_support::{acme, open, ADMIN_KEY, T0};
    use crate::browser_session::{new_session_id, SessionIndex, SessionInfo};
    use crate::wire::Caller;

    #[test]
    fn past_the_cap_the_oldest_session_of_that_owner_ends() {
        let store = SessionIndex::new(ADMIN_KEY, 3);
        let mut closures = store.closures();
        let first = open(&store, acme(), T0);
        let others: Vec<_> = (1..3).map(|i| open(&store, acme(), T0 + i)).collect();
        let elsewhere = open(&store, Caller::Workspace("beta".into()), T0);
        let (_, newest) = new_session_id();
        let evicted = store
            .insert(
                newest,
                SessionInfo::fresh(acme(), T0 + 10, ADMIN_KEY),
                T0 + 10,
            )
            .expect("accepted");
        assert_eq!(evicted, vec![first]);
        assert_eq!(closures.try_recv().ok(), Some(first));
        assert_eq!(store.resolve(&first, T0 + 10), None);
        for digest in others.iter().chain([&newest, &elsewhere]) {
            assert!(store.resolve(digest, T0 + 10).is_some());
        }
        assert_eq!(store.count_of(Some("acme")), 3);
        assert_eq!(store.list(Some("acme"), T0 + 10).len(), 3);
    }

    #[test]
    fn sessions_opened_in_the_same_millisecond_end_in_the_order_they_came() {
        let store = SessionIndex::new(ADMIN_KEY, 3);
        let opened: Vec<_> = (0..8).map(|_| open(&store, acme(), T0)).collect();
        for (i, digest) in opened.iter().enumerate() {
            assert_eq!(
                store.resolve(digest, T0).is_some(),
                i >= 5,
                "session {i}: only the last three stay"
            );
        }
    }
}
