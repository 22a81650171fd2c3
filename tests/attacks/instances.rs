//! Attacks: instances (see main.rs).
