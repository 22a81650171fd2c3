//! Components of the browser client, by concern.

pub mod alerts;
pub mod banner;
pub mod chart;
pub mod clock;
pub mod connection;
pub mod conversation;
pub mod dashboard;
pub mod format;
pub mod icon;
pub mod layout;
pub mod meter;
pub mod prediction;
pub mod quota_monitor;
pub mod signin;
pub mod status_view;
pub mod toast;
pub mod windows;
pub mod workspace;
