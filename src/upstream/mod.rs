//! Talking to OpenAI (or any compatible server) with every call accounted for:
//! admission before sending, the outcome recorded after, rate-limit headers
//! learned. The proxy (`/v1/*`) and the server's own calls share this code.

pub mod client;
pub mod error_body;
mod finish_on_drop;
pub mod headers;
pub mod policy;
pub mod sse;

pub use client::{
    ChatError, ForwardError, ForwardRequest, Forwarded, ForwardedBody, TrackedClient,
};
