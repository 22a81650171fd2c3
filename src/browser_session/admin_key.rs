//! The admin key binding: an admin session keeps a digest of the admin key
//! that opened it, and only sessions of the running admin key resolve, so
//! changing `QUOTA_ADMIN_RESET_KEY` ends every admin session (here, in the
//! store and on every instance).

use super::SessionInfo;
use crate::wire::Caller;
use sha2::{Digest, Sha256};

/// What an admin session remembers of the admin key that opened it: a
/// digest, domain-separated so it is no other digest of that key kept
/// anywhere (the registry's, for one). A session whose binding is not the
/// running admin key's never resolves, so changing `QUOTA_ADMIN_RESET_KEY`
/// ends every admin session.
pub fn admin_key_binding(admin_key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"quota-alert admin session binding v1\0");
    hasher.update(admin_key.as_bytes());
    hasher.finalize().into()
}

/// Whether `session` may act under the running admin key, whose binding is
/// `running`: a workspace session always; an admin session only if opened
/// with that key (one without a binding, from before sessions had one,
/// never).
pub(super) fn bound_to_running_key(session: &SessionInfo, running: &[u8; 32]) -> bool {
    match session.caller {
        Caller::Admin => session.admin_key.as_ref() == Some(running),
        Caller::Workspace(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::key_digest;
    use crate::browser_session::new_session_id;
    use crate::browser_session::test_support::{index, ADMIN_KEY, T0};

    #[test]
    fn an_admin_session_of_another_admin_key_never_resolves() {
        let store = index();
        let (_, digest) = new_session_id();
        let other_key = SessionInfo::fresh(Caller::Admin, T0, [8; 32]);
        assert_eq!(store.insert(digest, other_key.clone(), T0), None);
        assert_eq!(store.resolve(&digest, T0), None);
        // Restored from a store written under the other key: refused too.
        assert_eq!(store.restore(digest, other_key, T0), None);
        // Without a binding at all (written before sessions had one): refused.
        let mut unbound = SessionInfo::fresh(Caller::Admin, T0, ADMIN_KEY);
        unbound.admin_key = None;
        assert_eq!(store.restore(digest, unbound, T0), None);
        assert!(store.is_empty());
        assert_eq!(admin_key_binding("a"), admin_key_binding("a"));
        assert_ne!(admin_key_binding("a"), admin_key_binding("b"));
        assert_ne!(admin_key_binding("a"), key_digest("a"));
    }
}
