//! Attacks: proxy (see main.rs).
