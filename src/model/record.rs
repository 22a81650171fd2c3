use serde::{Deserialize, Serialize};

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
