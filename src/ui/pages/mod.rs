//! One component per route: sign-in, the conversation workspace, the dashboard.

pub mod dashboard;
pub mod signin;
pub mod workspace;
