//! The workspace page's data and the status the browser polls while its
//! WebSocket is down.

use super::whoami::Session;
use crate::wire::{Caller, ChatMessage, QuotaSnapshot};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything the conversation workspace needs for its first render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceData {
    pub viewer: Caller,
    pub workspace_id: String,
    pub snapshot: QuotaSnapshot,
    pub conversation: String,
    pub transcript: Vec<ChatMessage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum WorkspacePageAnswer {
    /// Not signed in: the page redirects to the sign-in form.
    SignedOut {
        session: Session,
    },
    /// The admin has no workspace of its own: the page redirects to the dashboard.
    ChooseWorkspace,
    Ready(Box<WorkspaceData>),
}

/// The workspace page for the signed-in browser. `workspace` names one for the
/// admin; a workspace session may only name its own.
#[server(prefix = "/api/fn", endpoint = "workspace_page")]
pub async fn workspace_page(
    workspace: Option<String>,
) -> Result<WorkspacePageAnswer, ServerFnError> {
    use super::chat::CONVERSATION;
    let (state, session) = super::whoami::server::session().await?;
    let Session::SignedIn(viewer) = session else {
        return Ok(WorkspacePageAnswer::SignedOut { session });
    };
    let workspace = workspace.filter(|w| !w.is_empty());
    if viewer.is_admin() && workspace.is_none() {
        return Ok(WorkspacePageAnswer::ChooseWorkspace);
    }
    // The same rule as the REST API's: its own workspace, or (admin) the one named.
    let workspace_id =
        crate::api::extract::target_workspace(&state.service, &viewer, workspace.as_deref())
            .map_err(|e| ServerFnError::new(e.message))?;
    let snapshot = state
        .service
        .snapshot(&workspace_id)
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    let transcript = state.chat.transcript(&workspace_id, CONVERSATION);
    Ok(WorkspacePageAnswer::Ready(Box::new(WorkspaceData {
        viewer,
        workspace_id,
        snapshot,
        conversation: CONVERSATION.to_string(),
        transcript,
    })))
}

/// The current snapshot of `workspace` (a workspace session's own by default);
/// `None` when the browser is not (or no longer) signed in.
#[server(prefix = "/api/fn", endpoint = "status")]
pub async fn get_status(workspace: Option<String>) -> Result<Option<QuotaSnapshot>, ServerFnError> {
    let (state, session) = super::whoami::server::session().await?;
    let Session::SignedIn(viewer) = session else {
        return Ok(None);
    };
    // The same rule as the REST API's: its own workspace, or (admin) the one named.
    let id = crate::api::extract::target_workspace(&state.service, &viewer, workspace.as_deref())
        .map_err(|e| ServerFnError::new(e.message))?;
    state
        .service
        .snapshot(&id)
        .map(Some)
        .map_err(|e| ServerFnError::new(e.to_string()))
}
