//! The browser client, by kind: `pages/` (one per route), `components/`
//! (pieces the pages are built from), `hooks/` (state that lives across a
//! page: the quota monitor's WebSocket, the ticking clock), and `format.rs`
//! (how numbers, times and errors are written, in one place).

pub mod components;
pub mod format;
pub mod hooks;
pub mod pages;
