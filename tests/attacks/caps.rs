//! Attacks: caps (see main.rs).
