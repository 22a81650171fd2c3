//! Attacks: sessions (see main.rs).
