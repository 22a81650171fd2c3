//! The browser client, by kind: `pages/` (one per route), `components/`
//! (pieces the pages are built from), `hooks/` (state that lives across a
//! page: the quota monitor's WebSocket, the ticking clock), `context.rs` (what
//! a page provides once for all its components: who is signed in, the clock,
//! the monitor), and `format.rs` (how numbers, times and errors are written,
//! in one place).

pub mod components;
pub mod context;
pub mod format;
pub mod hooks;
pub mod pages;
