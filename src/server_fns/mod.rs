//! `#[server]` functions the UI calls. They run on the server with the same
//! engine and tracked client as the REST API and the proxy.

pub mod chat;
