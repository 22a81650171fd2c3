use super::QuotaStatus;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    /// RFC 3339.
    pub at: String,
}

/// What became of one message sent through `send_message`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChatOutcome {
    /// The model answered; both messages are now in the transcript.
    Replied {
        user: ChatMessage,
        reply: ChatMessage,
    },
    /// Refused before reaching OpenAI: the workspace is over quota.
    Blocked {
        status: QuotaStatus,
        retry_after_s: Option<f64>,
        message: String,
    },
    /// OpenAI (or the network) failed; `message` says how, for people.
    Failed { message: String },
}
