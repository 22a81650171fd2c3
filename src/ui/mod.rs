//! Components of the browser client.

pub mod live_status;
pub mod status_view;
