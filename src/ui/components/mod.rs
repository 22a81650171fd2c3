//! The pieces pages are built from: banner, meters, toasts, charts, the
//! conversation panel, status icons and badges, the layout.

pub mod alert_history;
pub mod banner;
pub mod chart;
pub mod connection;
pub mod conversation;
pub mod icon;
pub mod layout;
pub mod meter;
pub mod prediction;
pub mod status_view;
pub mod toast;
pub mod windows;
