//! Conversations of the workspace UI. Messages go to OpenAI through the
//! tracked client, so the conversation is accounted like every other call.
//! Transcripts are kept in memory per workspace and conversation (bounded).

use crate::engine::rfc3339;
use crate::model::{ChatMessage, ChatOutcome, ChatRole};
use crate::upstream::{ChatError, ForwardError, TrackedClient};
use dashmap::DashMap;
use serde_json::json;
use std::collections::VecDeque;

/// Messages kept per conversation.
const MAX_TRANSCRIPT: usize = 200;
/// Messages sent to the model as context.
const CONTEXT_MESSAGES: usize = 20;
pub const MAX_MESSAGE_CHARS: usize = 8_000;

#[derive(Default)]
pub struct ConversationStore {
    transcripts: DashMap<(String, String), VecDeque<ChatMessage>>,
}

impl ConversationStore {
    pub fn transcript(&self, workspace: &str, conversation: &str) -> Vec<ChatMessage> {
        self.transcripts
            .get(&(workspace.to_string(), conversation.to_string()))
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends `text` as the user and returns what happened. Only a successful
    /// exchange enters the transcript; a refusal or failure is reported instead.
    pub async fn send(
        &self,
        client: &TrackedClient,
        model: &str,
        workspace: &str,
        conversation: &str,
        text: &str,
    ) -> ChatOutcome {
        let now = || rfc3339(client.service().engine().now_ms());
        let user = ChatMessage {
            role: ChatRole::User,
            content: text.to_string(),
            at: now(),
        };
        let key = (workspace.to_string(), conversation.to_string());
        let mut messages: Vec<serde_json::Value> = self
            .transcripts
            .get(&key)
            .map(|t| {
                t.iter()
                    .rev()
                    .take(CONTEXT_MESSAGES)
                    .rev()
                    .map(|m| json!({"role": m.role, "content": m.content}))
                    .collect()
            })
            .unwrap_or_default();
        messages.push(json!({"role": "user", "content": text}));
        let request = json!({"model": model, "messages": messages});

        match client.chat_completion(workspace, &request).await {
            Ok(reply) => {
                let content = reply["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let reply = ChatMessage {
                    role: ChatRole::Assistant,
                    content,
                    at: now(),
                };
                let mut transcript = self.transcripts.entry(key).or_default();
                transcript.push_back(user.clone());
                transcript.push_back(reply.clone());
                while transcript.len() > MAX_TRANSCRIPT {
                    transcript.pop_front();
                }
                ChatOutcome::Replied { user, reply }
            }
            Err(ChatError::Forward(ForwardError::Denied {
                status,
                retry_after_s,
            })) => ChatOutcome::Blocked {
                status,
                retry_after_s,
                message: format!(
                    "Not sent: the workspace is {}.{}",
                    status.title().to_lowercase(),
                    retry_after_s
                        .map(|s| format!(" Requests are allowed again in {s:.0}s."))
                        .unwrap_or_default()
                ),
            },
            Err(ChatError::Forward(ForwardError::Timeout)) => ChatOutcome::Failed {
                message: "OpenAI did not answer in time; try again.".into(),
            },
            Err(ChatError::Forward(ForwardError::Unreachable(detail))) => ChatOutcome::Failed {
                message: format!("OpenAI could not be reached ({detail})."),
            },
            Err(ChatError::Forward(ForwardError::UnknownWorkspace)) => ChatOutcome::Failed {
                message: "This workspace no longer exists.".into(),
            },
            Err(ChatError::Upstream(error)) => ChatOutcome::Failed {
                message: format!(
                    "OpenAI refused the message ({}{}){}",
                    error.http_status.map(|s| s.to_string()).unwrap_or_default(),
                    error.code.map(|c| format!(" {c}")).unwrap_or_default(),
                    error.message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
            },
            Err(ChatError::Invalid(detail)) => ChatOutcome::Failed {
                message: format!("OpenAI's answer could not be read ({detail})."),
            },
        }
    }
}
