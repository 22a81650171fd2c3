//! Conversations of the workspace UI. Messages go to OpenAI through the
//! tracked client, so the conversation is accounted like every other call.
//! Transcripts are kept in memory per workspace and conversation, bounded:
//! conversation ids are chosen by the client, so a workspace holds at most
//! [`MAX_CONVERSATIONS`] conversations (the least recently used one is
//! forgotten to make room for a new one), each at most [`MAX_TRANSCRIPT`]
//! messages (oldest first out), and at most [`MAX_WORKSPACE_TEXT_BYTES`] of
//! message text in all (least recently used conversations go first, then the
//! oldest messages of the current one).

use crate::engine::rfc3339;
use crate::engine::TokenRoom;
use crate::upstream::{ChatError, ForwardError, TrackedClient};
use crate::wire::{ChatMessage, ChatOutcome, ChatRole};
use dashmap::DashMap;
use serde_json::json;
use std::collections::{HashMap, VecDeque};

/// Messages kept per conversation.
pub const MAX_TRANSCRIPT: usize = 200;
/// Conversations kept per workspace.
pub const MAX_CONVERSATIONS: usize = 100;
/// Message text kept per workspace, all conversations together.
pub const MAX_WORKSPACE_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Messages sent to the model as context.
const CONTEXT_MESSAGES: usize = 20;
pub const MAX_MESSAGE_CHARS: usize = 8_000;

#[derive(Default)]
pub struct ConversationStore {
    workspaces: DashMap<String, Conversations>,
}

#[derive(Default)]
struct Conversations {
    by_id: HashMap<String, Transcript>,
    /// Counts uses, for least-recently-used eviction.
    clock: u64,
    bytes: usize,
}

#[derive(Default)]
struct Transcript {
    messages: VecDeque<ChatMessage>,
    last_used: u64,
}

impl Conversations {
    fn append(&mut self, conversation: &str, new: [ChatMessage; 2]) {
        self.clock += 1;
        if !self.by_id.contains_key(conversation) {
            while self.by_id.len() >= MAX_CONVERSATIONS {
                if !self.evict_least_recent(conversation) {
                    break;
                }
            }
        }
        let clock = self.clock;
        let transcript = self.by_id.entry(conversation.to_string()).or_default();
        transcript.last_used = clock;
        for message in new {
            self.bytes += message.content.len();
            transcript.messages.push_back(message);
        }
        while transcript.messages.len() > MAX_TRANSCRIPT {
            if let Some(old) = transcript.messages.pop_front() {
                self.bytes -= old.content.len();
            }
        }
        while self.bytes > MAX_WORKSPACE_TEXT_BYTES {
            if self.evict_least_recent(conversation) {
                continue;
            }
            // Only this conversation is left: its oldest messages go, the
            // newest exchange stays.
            let Some(transcript) = self.by_id.get_mut(conversation) else {
                break;
            };
            if transcript.messages.len() <= 2 {
                break;
            }
            if let Some(old) = transcript.messages.pop_front() {
                self.bytes -= old.content.len();
            }
        }
    }

    /// Forgets the least recently used conversation other than `keep`.
    fn evict_least_recent(&mut self, keep: &str) -> bool {
        let Some(oldest) = self
            .by_id
            .iter()
            .filter(|(id, _)| id.as_str() != keep)
            .min_by_key(|(_, t)| t.last_used)
            .map(|(id, _)| id.clone())
        else {
            return false;
        };
        if let Some(gone) = self.by_id.remove(&oldest) {
            self.bytes -= gone.messages.iter().map(|m| m.content.len()).sum::<usize>();
        }
        true
    }
}

impl ConversationStore {
    pub fn transcript(&self, workspace: &str, conversation: &str) -> Vec<ChatMessage> {
        self.workspaces
            .get(workspace)
            .and_then(|w| {
                w.by_id
                    .get(conversation)
                    .map(|t| t.messages.iter().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// Conversations kept for `workspace`, and their text in bytes.
    pub fn usage(&self, workspace: &str) -> (usize, usize) {
        self.workspaces
            .get(workspace)
            .map_or((0, 0), |w| (w.by_id.len(), w.bytes))
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
        let mut messages: Vec<serde_json::Value> = self
            .transcript(workspace, conversation)
            .iter()
            .rev()
            .take(CONTEXT_MESSAGES)
            .rev()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
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
                self.workspaces
                    .entry(workspace.to_string())
                    .or_default()
                    .append(conversation, [user.clone(), reply.clone()]);
                ChatOutcome::Replied { user, reply }
            }
            Err(ChatError::Forward(ForwardError::Denied {
                status,
                retry_after_s,
                tokens,
            })) => ChatOutcome::Blocked {
                status,
                retry_after_s,
                message: match tokens {
                    Some(TokenRoom::TooLarge { need, limit, label }) => format!(
                        "Not sent: this message needs up to {need} tokens, more than the workspace's whole {} limit ({limit}).",
                        label.to_lowercase()
                    ),
                    Some(TokenRoom::Limited(limited)) => format!("Not sent: {}", limited.reason),
                    Some(TokenRoom::Wait { .. }) => format!(
                        "Not sent: not enough tokens free for this message right now.{}",
                        retry_after_s
                            .map(|s| format!(" Enough frees up in {s:.0}s."))
                            .unwrap_or_default()
                    ),
                    _ => format!(
                        "Not sent: the workspace is {}.{}",
                        status.title().to_lowercase(),
                        retry_after_s
                            .map(|s| format!(" Requests are allowed again in {s:.0}s."))
                            .unwrap_or_default()
                    ),
                },
            },
            Err(ChatError::Forward(ForwardError::Timeout)) => ChatOutcome::Failed {
                message: "OpenAI did not answer in time; try again.".into(),
            },
            Err(ChatError::Forward(ForwardError::Unreachable(detail))) => ChatOutcome::Failed {
                message: format!("OpenAI could not be reached ({detail})."),
            },
            Err(ChatError::Forward(ForwardError::KeyRevoked)) => ChatOutcome::Failed {
                message: "This workspace's key was rotated or revoked; sign in again.".into(),
            },
            Err(ChatError::Forward(ForwardError::BadUser { param, problem })) => {
                ChatOutcome::Failed {
                    message: format!("Not sent: {param} {problem}."),
                }
            }
            Err(ChatError::Forward(ForwardError::BadModel { problem })) => ChatOutcome::Failed {
                message: format!("Not sent: model {problem}."),
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
