use crate::wire::{ChatMessage, ChatOutcome};
use leptos::prelude::*;

/// The conversation the workspace page shows (one per workspace).
pub const CONVERSATION: &str = "main";

/// Sends one chat message for `workspace` through the tracked upstream client.
/// The caller is the signed-in session (or a bearer key).
#[server(prefix = "/api/fn", endpoint = "send_message")]
pub async fn send_message(
    workspace: String,
    conversation: String,
    text: String,
) -> Result<ChatOutcome, ServerFnError> {
    use crate::chat::MAX_MESSAGE_CHARS;
    let state = server::authorized_state(&workspace).await?;
    server::validate_id("conversation", &conversation)?;
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ServerFnError::new(format!(
            "text must be 1 to {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let model = state.service.config().upstream.chat_model.clone();
    Ok(state
        .chat
        .send(&state.upstream, &model, &workspace, &conversation, text)
        .await)
}

/// The transcript of one conversation, oldest first.
#[server(prefix = "/api/fn", endpoint = "conversation")]
pub async fn load_conversation(
    workspace: String,
    conversation: String,
) -> Result<Vec<ChatMessage>, ServerFnError> {
    let state = server::authorized_state(&workspace).await?;
    server::validate_id("conversation", &conversation)?;
    Ok(state.chat.transcript(&workspace, &conversation))
}

#[cfg(feature = "ssr")]
pub(crate) mod server {
    use crate::api::extract::{target_workspace, validate_workspace_id};
    use crate::api::AppState;
    use leptos::prelude::*;

    /// The app state, once the request's caller (the one resolver, through
    /// `server_fns::whoami::server::caller`) may act for `workspace`.
    pub async fn authorized_state(workspace: &str) -> Result<AppState, ServerFnError> {
        let (state, resolved) = crate::server_fns::whoami::server::caller().await?;
        let caller = resolved
            .map_err(|e| ServerFnError::new(e.to_string()))?
            .caller;
        target_workspace(&state.service, &caller, Some(workspace))
            .map_err(|e| ServerFnError::new(e.message))?;
        Ok(state)
    }

    pub fn validate_id(name: &str, id: &str) -> Result<(), ServerFnError> {
        validate_workspace_id(id)
            .map_err(|_| ServerFnError::new(format!("{name} must be 1 to 64 of [a-z0-9_-]")))
    }
}
