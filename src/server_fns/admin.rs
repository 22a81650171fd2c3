//! The admin page's server functions (`/api/fn/admin_*`). Each one is the
//! REST endpoint's twin: it authorizes with the same check
//! (`api::extract::AdminAuth::check`: the admin, never a workspace) and calls
//! the same function the handler calls (`api::admin::create`,
//! `api::settings::update`, …), so nothing is checked twice or differently.
//! A refusal is an answer ([`AdminResult`]'s `Err`), not a server-function
//! error: the page shows it beside the field, and the browser logs nothing.
//!
//! They take JSON (`input = Json`): a settings patch is nested maps and
//! lists, which a URL-encoded form does not carry faithfully.

use super::whoami::Session;
use crate::wire::{
    AdminResult, AuditTrail, Caller, CreatedWorkspace, LimitOverrides, RotatedKey, SettingsPatch,
    WorkspaceList, WorkspaceSettingsView,
};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// Audit entries the page shows at first and after each change.
pub const PAGE_AUDIT_ENTRIES: u64 = 50;

/// What the admin page renders first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminOverview {
    pub workspaces: WorkspaceList,
    /// Of every workspace, newest first; an unreadable trail (the store
    /// failing) does not keep the workspaces from being shown.
    pub audit: AdminResult<AuditTrail>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum AdminPageAnswer {
    /// Not signed in (or the session ended): the page redirects to sign-in.
    SignedOut {
        session: Session,
    },
    /// Signed in with a workspace key: the page says it needs the admin.
    NotAdmin {
        viewer: Caller,
    },
    Ready(Box<AdminOverview>),
}

#[server(prefix = "/api/fn", endpoint = "admin_page")]
pub async fn admin_page() -> Result<AdminPageAnswer, ServerFnError> {
    use crate::api::extract::AdminAuth;
    use crate::service::AuthError;
    let (state, resolved) = super::whoami::server::caller().await?;
    if AdminAuth::check(resolved.clone()).is_err() {
        return Ok(match resolved {
            Err(AuthError::Missing) => AdminPageAnswer::SignedOut {
                session: Session::SignedOut,
            },
            Err(_) => AdminPageAnswer::SignedOut {
                session: Session::Expired,
            },
            Ok(resolved) => AdminPageAnswer::NotAdmin {
                viewer: resolved.caller,
            },
        });
    }
    let audit = crate::api::admin_reads::audit(&state.service, server::audit_query(None))
        .await
        .map_err(server::refusal);
    Ok(AdminPageAnswer::Ready(Box::new(AdminOverview {
        workspaces: crate::api::admin_reads::workspaces(&state.service),
        audit,
    })))
}

#[server(prefix = "/api/fn", endpoint = "admin_workspaces", input = Json)]
pub async fn admin_workspaces() -> Result<AdminResult<WorkspaceList>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(Ok(crate::api::admin_reads::workspaces(&state.service)))
}

#[server(prefix = "/api/fn", endpoint = "admin_create_workspace", input = Json)]
pub async fn admin_create_workspace(
    id: String,
    limits: LimitOverrides,
) -> Result<AdminResult<CreatedWorkspace>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    let body = crate::api::admin::CreateWorkspace { id, limits };
    Ok(crate::api::admin::create(&state.service, body)
        .await
        .map_err(server::refusal))
}

#[server(prefix = "/api/fn", endpoint = "admin_rotate_key", input = Json)]
pub async fn admin_rotate_key(id: String) -> Result<AdminResult<RotatedKey>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(crate::api::admin::rotate(&state.service, id)
        .await
        .map_err(server::refusal))
}

#[server(prefix = "/api/fn", endpoint = "admin_revoke_keys", input = Json)]
pub async fn admin_revoke_keys(id: String) -> Result<AdminResult<()>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(crate::api::admin::revoke(&state.service, &id)
        .await
        .map_err(server::refusal))
}

#[server(prefix = "/api/fn", endpoint = "admin_settings", input = Json)]
pub async fn admin_settings(
    id: String,
) -> Result<AdminResult<WorkspaceSettingsView>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(crate::api::settings::read(&state.service, id).map_err(server::refusal))
}

#[server(prefix = "/api/fn", endpoint = "admin_update_settings", input = Json)]
pub async fn admin_update_settings(
    id: String,
    patch: SettingsPatch,
) -> Result<AdminResult<WorkspaceSettingsView>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(crate::api::settings::update(&state.service, id, &patch)
        .await
        .map_err(server::refusal))
}

/// The newest audit entries, of `workspace` only when it is given.
#[server(prefix = "/api/fn", endpoint = "admin_audit", input = Json)]
pub async fn admin_audit(
    workspace: Option<String>,
) -> Result<AdminResult<AuditTrail>, ServerFnError> {
    let state = match server::admin().await? {
        Ok(state) => state,
        Err(refused) => return Ok(Err(refused)),
    };
    Ok(
        crate::api::admin_reads::audit(&state.service, server::audit_query(workspace))
            .await
            .map_err(server::refusal),
    )
}

#[cfg(feature = "ssr")]
mod server {
    use super::PAGE_AUDIT_ENTRIES;
    use crate::api::admin_reads::AuditQuery;
    use crate::api::error::ApiError;
    use crate::api::extract::AdminAuth;
    use crate::api::AppState;
    use crate::wire::AdminRefusal;
    use leptos::prelude::*;

    /// The app state when the request's caller is the admin (the REST
    /// endpoints' check, over the same resolved credential); else what REST
    /// would have refused with.
    pub async fn admin() -> Result<Result<AppState, AdminRefusal>, ServerFnError> {
        let (state, resolved) = crate::server_fns::whoami::server::caller().await?;
        Ok(AdminAuth::check(resolved).map(|_| state).map_err(refusal))
    }

    /// A REST refusal, as the page gets it.
    pub fn refusal(e: ApiError) -> AdminRefusal {
        AdminRefusal {
            status: e.status.as_u16(),
            code: e.code.to_string(),
            message: e.message,
            field: e.field,
        }
    }

    pub fn audit_query(workspace_id: Option<String>) -> AuditQuery {
        AuditQuery {
            workspace_id,
            limit: Some(PAGE_AUDIT_ENTRIES),
        }
    }
}
