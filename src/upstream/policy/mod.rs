//! What the `/v1` proxy lets through to the upstream, decided before anything
//! is counted or forwarded. Every workspace shares one upstream key and so one
//! OpenAI organisation: whatever a request can reach there, every tenant can.
//!
//! - [`path`]: the request path is split and checked before anything else;
//!   traversal, encoded separators and other tricks are refused, never passed on.
//! - [`endpoints`]: only the endpoints whose usage the proxy meters (plus any
//!   the operator adds) are forwarded, and the upstream URL is built from the
//!   matched rule, not from the request.
//! - [`stored`]: request bodies that would store an object in the shared
//!   organisation, or read one by id, are refused.
//!
//! Which request headers may pass is in `client.rs`, next to where they are sent.

pub mod endpoints;
pub mod path;
pub mod stored;

pub use endpoints::{Allowlist, BodyPolicy, Decision, EndpointRule, Matched};
pub use path::{request_segments, PathError};
pub use stored::{check_body, Refusal};
