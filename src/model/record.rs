use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Body of `POST /api/quota/record`: the outcome of one call an app made to OpenAI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    pub success: bool,
    #[serde(default)]
    pub tokens_used: u64,
    #[serde(default)]
    pub error: Option<UpstreamErrorReport>,
    /// The upstream's `retry-after`, in seconds, when it sent one.
    #[serde(default)]
    pub retry_after_s: Option<f64>,
    /// The upstream's raw response headers (`x-ratelimit-*`, `retry-after`,
    /// ...), forwarded as received; names are matched case-insensitively.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// The upstream's HTTP status and raw error body, forwarded as received,
    /// instead of a parsed `error`.
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub error_body: Option<serde_json::Value>,
}

/// Body of `POST /api/quota/record/batch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordBatch {
    pub records: Vec<RecordRequest>,
}

/// An upstream error as the app saw it. `http_status` is absent for failures that
/// never got an HTTP answer (then `code` is e.g. `timeout` or `connection_error`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamErrorReport {
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
