//! Attacks: retries (see main.rs).
