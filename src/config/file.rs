//! The shape of `Leptos.toml`, the middle layer (environment > file > default).
//! Only the engine's numbers and the WebSocket intervals can be set here.

use super::ConfigError;
use serde::Deserialize;
use std::path::Path;

/// Every field optional; unknown keys are an error so that a typo does not
/// silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) limits: FileLimits,
    #[serde(default)]
    pub(super) status: FileStatus,
    #[serde(default)]
    pub(super) websocket: FileWebsocket,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    pub(super) requests_per_minute: Option<u64>,
    pub(super) requests_per_day: Option<u64>,
    pub(super) tokens_per_minute: Option<u64>,
    pub(super) tokens_per_day: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStatus {
    pub(super) warning_threshold: Option<f64>,
    pub(super) degraded_failure_threshold: Option<u32>,
    pub(super) degraded_window_s: Option<u64>,
    pub(super) default_rate_limit_backoff_s: Option<f64>,
    pub(super) quota_probe_interval_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWebsocket {
    pub(super) coalesce_ms: Option<u64>,
    pub(super) heartbeat_s: Option<u64>,
}

impl FileConfig {
    /// The file's settings; no file is all defaults.
    pub(super) fn parse(file_text: Option<&str>, path: &Path) -> Result<Self, ConfigError> {
        match file_text {
            Some(text) => toml::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            None => Ok(Self::default()),
        }
    }
}
