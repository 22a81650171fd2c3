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
