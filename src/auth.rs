//! Keys: generated with the OS's CSPRNG, stored only as SHA-256 digests, compared
//! in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh 256-bit secret, hex encoded, with a recognisable prefix (so a leaked
/// key can be spotted by secret scanners).
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The digest a key is stored and looked up by. Keys are random 256-bit values,
/// so a fast unsalted hash is enough: there is no dictionary to attack.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time comparison of a presented key against a stored digest.
pub fn key_matches(presented: &str, digest: &[u8; 32]) -> bool {
    key_digest(presented).ct_eq(digest).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_256_bit_values_with_their_prefix() {
        let a = generate_secret("qa_");
        let b = generate_secret("qa_");
        assert_ne!(a, b);
        assert!(a.starts_with("qa_"));
        assert_eq!(a.len(), 3 + 64);
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_the_key_itself_matches_its_digest() {
        let key = generate_secret("qa_");
        let digest = key_digest(&key);
        assert!(key_matches(&key, &digest));
        assert!(!key_matches(&generate_secret("qa_"), &digest));
        assert!(!key_matches("", &digest));
        assert!(!key_matches(&key[..key.len() - 1], &digest));
        assert!(
            !hex::encode(digest).contains(&key[3..]),
            "the digest is not the key"
        );
    }
}
