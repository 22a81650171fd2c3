//! One component per route: sign-in, the conversation workspace, the
//! dashboard, the admin's workspaces.

pub mod admin;
pub mod dashboard;
pub mod signin;
pub mod workspace;
