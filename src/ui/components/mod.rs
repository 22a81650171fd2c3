//! The pieces pages are built from: banner, meters (windows and spend),
//! toasts, charts, the conversation panel, status icons and badges, the
//! spend section (breakdowns, export), the layout.

pub mod alert_history;
pub mod banner;
pub mod breakdown;
pub mod chart;
pub mod connection;
pub mod conversation;
pub mod export;
pub mod icon;
pub mod layout;
pub mod meter;
pub mod prediction;
pub mod spend;
pub mod spend_chart;
pub mod spend_panel;
pub mod status_view;
pub mod toast;
pub mod windows;
