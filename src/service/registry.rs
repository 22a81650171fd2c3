//! Who holds which key. Workspace keys are stored as SHA-256 digests only; the
//! clear key is returned once, at creation.
//!
//! A workspace has at most one key at a time. Besides digest → workspace,
//! the registry keeps workspace → digest (what this instance believes the
//! current key is: Redis compares it with its own copy on every admission and
//! record, see `service::replication`) and a per-workspace change counter that a
//! sign-in reads before and after writing its session (see `open_session`).

use crate::auth::{generate_secret, key_digest, key_matches};
use crate::wire::Caller;
use dashmap::DashMap;

pub struct Registry {
    admin_digest: [u8; 32],
    /// Key digest → workspace id. Looking a random 256-bit key up by its digest
    /// reveals nothing useful through timing; the admin key, a single value, is
    /// compared in constant time instead.
    workspace_keys: DashMap<[u8; 32], String>,
    /// Workspace id → its current key digest.
    current: DashMap<String, [u8; 32]>,
    /// Workspace id → how many key changes began here (rotation, revocation,
    /// or one learned from another instance).
    changes: DashMap<String, u64>,
}

impl Registry {
    pub fn new(admin_key: &str) -> Self {
        Self {
            admin_digest: key_digest(admin_key),
            workspace_keys: DashMap::new(),
            current: DashMap::new(),
            changes: DashMap::new(),
        }
    }

    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        if key_matches(key, &self.admin_digest) {
            return Some(Caller::Admin);
        }
        self.workspace_keys
            .get(&key_digest(key))
            .map(|id| Caller::Workspace(id.clone()))
    }

    /// Whether `key` is the admin key or a workspace key known here.
    pub fn knows(&self, key: &str) -> bool {
        self.authenticate(key).is_some()
    }

    /// A new key for `workspace_id`, registered at once (creation: nobody
    /// holds it before it is returned).
    pub fn issue_key(&self, workspace_id: &str) -> (String, [u8; 32]) {
        let (key, digest) = Self::new_key();
        self.restore(digest, workspace_id);
        (key, digest)
    }

    /// A new key and its digest, not yet registered (rotation registers it
    /// once it is stored).
    pub fn new_key() -> (String, [u8; 32]) {
        let key = generate_secret("qa_");
        let digest = key_digest(&key);
        (key, digest)
    }

    /// Registers a stored key digest as the workspace's only key (restart,
    /// rotation, another instance's change).
    pub fn restore(&self, digest: [u8; 32], workspace_id: &str) {
        // The workspace's `current` entry is held until the new digest is
        // in: two concurrent restores (a local rotation and another
        // instance's change) then leave one key, not both.
        let mut current = self
            .current
            .entry(workspace_id.to_string())
            .or_insert(digest);
        let old = std::mem::replace(&mut *current, digest);
        if old != digest {
            self.workspace_keys.remove(&old);
        }
        self.workspace_keys.insert(digest, workspace_id.to_string());
    }

    /// Whether `digest` is a current key of `workspace_id`.
    pub fn holds(&self, digest: &[u8; 32], workspace_id: &str) -> bool {
        self.workspace_keys
            .get(digest)
            .is_some_and(|id| id.as_str() == workspace_id)
    }

    /// The digest this instance takes for the workspace's current key, if it
    /// has one.
    pub fn current_digest(&self, workspace_id: &str) -> Option<[u8; 32]> {
        self.current.get(workspace_id).map(|d| *d)
    }

    /// Forgets every key of a workspace.
    pub fn revoke_workspace(&self, workspace_id: &str) {
        if let Some((_, digest)) = self.current.remove(workspace_id) {
            self.workspace_keys.remove(&digest);
        }
        // Belt and braces for digests registered some other way.
        self.workspace_keys.retain(|_, id| id != workspace_id);
    }

    /// Marks the start of a key change of `workspace_id`.
    pub fn begin_change(&self, workspace_id: &str) {
        *self.changes.entry(workspace_id.to_string()).or_insert(0) += 1;
    }

    /// How many key changes of `workspace_id` began so far.
    pub fn changes(&self, workspace_id: &str) -> u64 {
        self.changes.get(workspace_id).map(|c| *c).unwrap_or(0)
    }
}
