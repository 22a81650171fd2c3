use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Body of `POST /api/quota/record`: the outcome of one call an app made to OpenAI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    /// Whether the call succeeded. A failed call needs `error` (or `http_status`
    /// with `error_body`).
    pub success: bool,
    /// Tokens the call used (prompt + completion), at most 100 000 000.
    #[serde(default)]
    pub tokens_used: u64,
    /// The upstream error, parsed, for a failed call.
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
    /// The upstream's error body as received (OpenAI's `{"error": {...}}`).
    #[serde(default)]
    pub error_body: Option<serde_json::Value>,
    /// The reservation this call was made under (`POST /api/quota/reserve`):
    /// its hold is released and this record's tokens counted in its place;
    /// the request itself was counted at the reserve, so it is not again.
    #[serde(default)]
    pub reservation_id: Option<String>,
    /// What the call cost, in US dollars (0 to 1 000 000), added to the
    /// workspace's spend and its budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model called (1 to 200 characters): prices `usage`, and its
    /// per-model limits count the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The end user the call was for (a label, 1 to 200 characters): their
    /// per-user limits count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The call's usage: `prompt_tokens`, `completion_tokens` and, flat,
    /// `cached_tokens` and `reasoning_tokens`; or OpenAI's `usage` object
    /// as the answer carried it (chat, completions, embeddings or responses
    /// shape, with its `*_details`). The call is priced from it at
    /// `model`'s price unless `cost_usd` is given, and `tokens_used`
    /// defaults to its total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub usage: Option<serde_json::Value>,
}

/// Body of `POST /api/quota/record/batch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordBatch {
    /// 1 to 1 000 records, each shaped like `POST /api/quota/record`'s body.
    pub records: Vec<RecordRequest>,
}

/// An upstream error as the app saw it. `http_status` is absent for failures that
/// never got an HTTP answer (then `code` is e.g. `timeout` or `connection_error`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpstreamErrorReport {
    /// The HTTP status the upstream answered with (100 to 599).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// OpenAI's `error.type`, e.g. `requests` or `insufficient_quota`.
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
    /// OpenAI's `error.code`, e.g. `rate_limit_exceeded`.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
