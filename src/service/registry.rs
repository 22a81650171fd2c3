//! Who holds which key. Workspace keys are stored as SHA-256 digests only; the
//! clear key is returned once, at creation.

use super::Caller;
use crate::auth::{generate_secret, key_digest, key_matches};
use dashmap::DashMap;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("workspace `{0}` already exists")]
    AlreadyExists(String),
}

pub struct Registry {
    admin_digest: [u8; 32],
    /// Key digest → workspace id. Looking a random 256-bit key up by its digest
    /// reveals nothing useful through timing; the admin key, a single value, is
    /// compared in constant time instead.
    workspace_keys: DashMap<[u8; 32], String>,
}

impl Registry {
    pub fn new(admin_key: &str) -> Self {
        Self {
            admin_digest: key_digest(admin_key),
            workspace_keys: DashMap::new(),
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

    /// A new key for `workspace_id`, and its digest (what gets stored).
    pub fn issue_key(&self, workspace_id: &str) -> (String, [u8; 32]) {
        let key = generate_secret("qa_");
        let digest = key_digest(&key);
        self.workspace_keys.insert(digest, workspace_id.to_string());
        (key, digest)
    }

    /// Re-registers a stored key digest (restart).
    pub fn restore(&self, digest: [u8; 32], workspace_id: &str) {
        self.workspace_keys.insert(digest, workspace_id.to_string());
    }

    /// Whether `digest` is a current key of `workspace_id`.
    pub fn holds(&self, digest: &[u8; 32], workspace_id: &str) -> bool {
        self.workspace_keys
            .get(digest)
            .is_some_and(|id| id.as_str() == workspace_id)
    }

    /// Forgets every key of a workspace.
    pub fn revoke_workspace(&self, workspace_id: &str) {
        self.workspace_keys.retain(|_, id| id != workspace_id);
    }
}
