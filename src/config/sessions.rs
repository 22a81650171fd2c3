//! Browser sessions and WebSockets: what one tenant may hold open, and how
//! often the server speaks on a socket.

use super::file::FileWebsocket;
use super::parse::{check_range, parse_env};
use super::ConfigError;

/// What one tenant's browser sessions and WebSockets may hold, so none grows
/// without bound on a tenant's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCaps {
    /// `QUOTA_MAX_SESSIONS_PER_WORKSPACE` (default 1000, 1 to 1000000):
    /// browser sessions per workspace (and for the admin). Signing in past it
    /// ends that workspace's oldest session rather than refusing the sign-in:
    /// a person signing in always gets in, and whoever filled the cap (a
    /// script signing in in a loop) only pushes out its own old sessions.
    pub max_sessions_per_workspace: usize,
    /// `QUOTA_MAX_WS_PER_WORKSPACE` (default 256, 1 to 100000): open
    /// WebSockets per workspace key (its sessions included) on one instance;
    /// the admin has its own. One more gets 429 `too_many_connections`
    /// before the upgrade.
    pub max_ws_per_caller: usize,
    /// `QUOTA_WS_SEND_TIMEOUT_S` (default 10, 1 to 300): a WebSocket whose
    /// client stops reading is dropped when one frame cannot be sent within
    /// this long, instead of holding its task and buffers forever.
    pub ws_send_timeout_ms: u64,
}

impl Default for SessionCaps {
    fn default() -> Self {
        Self {
            max_sessions_per_workspace: 1000,
            max_ws_per_caller: 256,
            ws_send_timeout_ms: 10_000,
        }
    }
}

pub(super) fn session_caps(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SessionCaps, ConfigError> {
    let defaults = SessionCaps::default();
    let bounded = |name: &str, max: u64, expected: &'static str, default: u64| match env(name) {
        Some(raw) => check_range(name, parse_env(name, &raw, expected)?, 1, max, expected),
        None => Ok(default),
    };
    Ok(SessionCaps {
        max_sessions_per_workspace: bounded(
            "QUOTA_MAX_SESSIONS_PER_WORKSPACE",
            1_000_000,
            "a whole number of sessions from 1 to 1000000",
            defaults.max_sessions_per_workspace as u64,
        )? as usize,
        max_ws_per_caller: bounded(
            "QUOTA_MAX_WS_PER_WORKSPACE",
            100_000,
            "a whole number of connections from 1 to 100000",
            defaults.max_ws_per_caller as u64,
        )? as usize,
        ws_send_timeout_ms: bounded(
            "QUOTA_WS_SEND_TIMEOUT_S",
            300,
            "a whole number of seconds from 1 to 300",
            defaults.ws_send_timeout_ms / 1000,
        )? * 1000,
    })
}

/// `websocket.coalesce_ms` and `websocket.heartbeat_s` (file only), as
/// milliseconds: (coalesce, heartbeat).
pub(super) fn websocket_intervals(file: &FileWebsocket) -> Result<(u64, u64), ConfigError> {
    let coalesce_ms = check_range(
        "websocket.coalesce_ms",
        file.coalesce_ms.unwrap_or(250),
        0,
        10_000,
        "milliseconds from 0 to 10000",
    )?;
    let heartbeat_ms = check_range(
        "websocket.heartbeat_s",
        file.heartbeat_s.unwrap_or(15),
        1,
        300,
        "seconds from 1 to 300",
    )? * 1000;
    Ok((coalesce_ms, heartbeat_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;

    #[test]
    fn session_caps_have_defaults_bounds_and_name_their_setting() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.session_caps, SessionCaps::default());
        let config = load(
            None,
            &[
                ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "3"),
                ("QUOTA_MAX_WS_PER_WORKSPACE", "2"),
                ("QUOTA_WS_SEND_TIMEOUT_S", "1"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.session_caps,
            SessionCaps {
                max_sessions_per_workspace: 3,
                max_ws_per_caller: 2,
                ws_send_timeout_ms: 1000,
            }
        );
        for (name, bad) in [
            ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "0"),
            ("QUOTA_MAX_SESSIONS_PER_WORKSPACE", "many"),
            ("QUOTA_MAX_WS_PER_WORKSPACE", "100001"),
            ("QUOTA_WS_SEND_TIMEOUT_S", "0"),
            ("QUOTA_WS_SEND_TIMEOUT_S", "301"),
        ] {
            let err = load(None, &[(name, bad)]).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={bad}: {err}");
        }
    }
}
