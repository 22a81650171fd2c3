//! A session's handle: the public name the admin lists and ends it by.

use super::SessionDigest;
use sha2::{Digest, Sha256};

/// The public name of a session, for the admin to list and end it: the first
/// 16 hex characters of the SHA-256 of its digest. Neither the cookie nor
/// its digest (which could be replayed against a store) can be had from it.
pub fn session_handle(digest: &SessionDigest) -> String {
    let hash: [u8; 32] = Sha256::digest(digest).into();
    hex::encode(&hash[..8])
}

/// Whether `text` has the shape of a [`session_handle`].
pub fn is_session_handle(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser_session::test_support::{acme, index, open, T0};

    #[test]
    fn handles_name_sessions_without_revealing_them() {
        let store = index();
        let digest = open(&store, acme(), T0);
        let handle = session_handle(&digest);
        assert!(is_session_handle(&handle), "{handle}");
        assert!(!hex::encode(digest).contains(&handle));
        assert_eq!(store.find_handle(&handle), Some(digest));
        assert_eq!(store.find_handle("0000000000000000"), None);
        assert!(!is_session_handle("ABCDEF0123456789"));
        assert!(!is_session_handle("abc"));
    }
}
