//! The pieces pages are built from: banner, meters (windows and spend),
//! toasts, charts, the conversation panel, status icons and badges, the
//! spend section (breakdowns, export), the layout, and the admin page's
//! forms (workspace creation, key reveal, settings editor, audit trail).

pub mod alert_history;
pub mod audit_log;
pub mod banner;
pub mod breakdown;
pub mod chart;
pub mod connection;
pub mod conversation;
pub mod create_workspace;
pub mod export;
pub mod form_field;
pub mod icon;
pub mod key_reveal;
pub mod layout;
pub mod meter;
pub mod prediction;
pub mod settings_form;
pub mod spend;
pub mod spend_chart;
pub mod spend_panel;
pub mod status_view;
pub mod toast;
pub mod windows;
pub mod workspace_panel;
