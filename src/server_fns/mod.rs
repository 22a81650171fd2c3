//! `#[server]` functions the UI calls. They run on the server with the same
//! engine and tracked client as the REST API and the proxy; the browser is
//! identified by its session cookie (see `api::sign_in`).

pub mod admin;
pub mod chat;
pub mod dashboard;
pub mod status;
pub mod whoami;
