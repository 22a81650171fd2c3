//! Attacks: credentials (see main.rs).
