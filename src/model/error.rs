use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ApiErrorBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable, machine-readable: `unauthorized`, `invalid_body`, `not_found`, ...
    pub code: String,
    /// For people: says what was wrong and, where it helps, what to do.
    pub message: String,
}
