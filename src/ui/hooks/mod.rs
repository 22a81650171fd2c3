//! State that outlives one component: the WebSocket quota monitor and the
//! clock that drives countdowns.

pub mod use_quota_monitor;
pub mod use_ticker;
