use serde::{Deserialize, Serialize};

/// Who a request acts as, as proven by the key or session it presented: the
/// admin (every workspace) or one workspace. The server resolves it
/// (`service::credentials`); the browser gets it back as the signed-in viewer.
/// Hashable: API rate limits are kept per caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "workspace_id", rename_all = "snake_case")]
pub enum Caller {
    Admin,
    Workspace(String),
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// The workspace it acts for; `None` for the admin.
    pub fn workspace_id(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Workspace(id) => Some(id.as_str()),
        }
    }

    /// "admin" or the workspace id, for the top bar.
    pub fn label(&self) -> String {
        match self {
            Caller::Admin => "admin".to_string(),
            Caller::Workspace(id) => id.clone(),
        }
    }
}
