//! Workspaces and their keys: the workspace JSON, `qa:{ws}:key` (what
//! admission compares with) and the digest index, changed together by the
//! key script.

use super::{RedisShared, KEYS_INDEX, KEY_EPOCH, REVOKED_DIGEST_HEX, WORKSPACES_KEY};
use crate::store::StoreError;
use crate::wire::Limits;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedWorkspace {
    pub id: String,
    pub key_digest: String,
    pub limits: Limits,
    /// `wire::SettingsPatch` as JSON text (kept as text, so that no Lua
    /// script re-encodes it); absent for the defaults and from older
    /// instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

/// Replaces a workspace's JSON only if it is still what the caller read
/// (compare and set): a key rotated meanwhile is never overwritten.
const REPLACE_IF_SCRIPT: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

impl RedisShared {
    /// Creates the workspace (`false` if the id is taken) with its key, its
    /// digest index entry and the epoch move, in one script.
    pub async fn save_workspace(&self, workspace: &SharedWorkspace) -> Result<bool, StoreError> {
        let json = serde_json::to_string(workspace).unwrap_or_default();
        self.run_key_script(
            "create",
            &workspace.id,
            &workspace.key_digest,
            &json,
            "save workspace",
        )
        .await
    }

    /// Runs [`KEY_SCRIPT`](super::scripts::KEY_SCRIPT); true if it changed something.
    async fn run_key_script(
        &self,
        mode: &str,
        id: &str,
        digest_hex: &str,
        json: &str,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        self.run_key_script_if(mode, id, digest_hex, json, "", op)
            .await
            .map(|changed| changed == 1)
    }

    /// [`run_key_script`](Self::run_key_script) answering the script's
    /// code (1 changed, 0 not, -1 the JSON was no longer `prior`).
    async fn run_key_script_if(
        &self,
        mode: &str,
        id: &str,
        digest_hex: &str,
        json: &str,
        prior: &str,
        op: &'static str,
    ) -> Result<i64, StoreError> {
        let mut con = self.connection.clone();
        let changed: i64 = self
            .key_script
            .key(WORKSPACES_KEY)
            .key(format!("qa:{{{id}}}:key"))
            .key(KEYS_INDEX)
            .key(KEY_EPOCH)
            .arg(mode)
            .arg(id)
            .arg(digest_hex)
            .arg(json)
            .arg(REVOKED_DIGEST_HEX)
            .arg(prior)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.failed(op, e))?;
        Ok(changed)
    }

    /// Start-up backfill of `qa:{ws}:key` and `qa:keys` for workspaces
    /// stored before they existed.
    pub async fn backfill_key(&self, workspace: &SharedWorkspace) -> Result<(), StoreError> {
        self.run_key_script(
            "backfill",
            &workspace.id,
            &workspace.key_digest,
            "",
            "backfill key",
        )
        .await
        .map(|_| ())
    }

    /// The workspace a key digest (hex) belongs to right now, if any.
    pub async fn lookup_key(
        &self,
        digest_hex: &str,
    ) -> Result<Option<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let id: Option<String> = con
            .hget(KEYS_INDEX, digest_hex)
            .await
            .map_err(|e| self.failed("look up key", e))?;
        let Some(id) = id else { return Ok(None) };
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, &id)
            .await
            .map_err(|e| self.failed("look up key", e))?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<SharedWorkspace>(&r).ok())
            .filter(|w| w.key_digest == digest_hex))
    }

    /// One workspace as stored, if it exists.
    pub async fn load_workspace(&self, id: &str) -> Result<Option<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, id)
            .await
            .map_err(|e| self.failed("load workspace", e))?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Replaces a workspace's limits and settings, keeping its key. `false`
    /// if there is no such workspace.
    pub async fn set_workspace_settings(
        &self,
        id: &str,
        limits: Limits,
        settings: Option<String>,
    ) -> Result<bool, StoreError> {
        let mut con = self.connection.clone();
        // A rotation between the read and the write makes the write miss;
        // read again (rotations are rare, a few tries are plenty).
        for _ in 0..8 {
            let raw: Option<String> = con
                .hget(WORKSPACES_KEY, id)
                .await
                .map_err(|e| self.failed("update settings", e))?;
            let Some(raw) = raw else { return Ok(false) };
            let Ok(mut workspace) = serde_json::from_str::<SharedWorkspace>(&raw) else {
                return Ok(false);
            };
            workspace.limits = limits;
            workspace.settings = settings.clone();
            let json = serde_json::to_string(&workspace).unwrap_or_default();
            let replaced: i64 = redis::Script::new(REPLACE_IF_SCRIPT)
                .key(WORKSPACES_KEY)
                .arg(id)
                .arg(&raw)
                .arg(&json)
                .invoke_async(&mut con)
                .await
                .map_err(|e| self.failed("update settings", e))?;
            if replaced == 1 {
                return Ok(true);
            }
        }
        Err(StoreError::Closed {
            path: format!("redis: workspace {id} kept changing").into(),
        })
    }

    /// Replaces a workspace's key digest (rotation) or, with `None`, marks it
    /// revoked (an all-zero digest no key hashes to).
    pub async fn set_workspace_key(
        &self,
        id: &str,
        digest_hex: Option<String>,
    ) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let digest_hex = digest_hex.unwrap_or_else(|| REVOKED_DIGEST_HEX.to_string());
        // Compare-and-set on the workspace's JSON: a settings change
        // (`set_workspace_settings`) landing between this read and the
        // write makes the write miss, and it reads again instead of
        // writing the old settings back.
        for _ in 0..8 {
            let raw: Option<String> = con
                .hget(WORKSPACES_KEY, id)
                .await
                .map_err(|e| self.failed("update key", e))?;
            let Some(raw) = raw else { return Ok(()) };
            let Ok(mut workspace) = serde_json::from_str::<SharedWorkspace>(&raw) else {
                return Ok(());
            };
            workspace.key_digest = digest_hex.clone();
            let json = serde_json::to_string(&workspace).unwrap_or_default();
            let code = self
                .run_key_script_if("change", id, &digest_hex, &json, &raw, "update key")
                .await?;
            if code != -1 {
                return Ok(());
            }
        }
        Err(StoreError::Closed {
            path: format!("redis: workspace {id} kept changing").into(),
        })
    }

    /// The workspace's key digest as the admission script sees it (the
    /// truth when an instance finds out it missed a change), falling back to
    /// the workspace's JSON for data written before that key existed.
    pub async fn current_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut con = self.connection.clone();
        let key: Option<String> = con
            .get(format!("qa:{{{id}}}:key"))
            .await
            .map_err(|e| self.failed("read key", e))?;
        match key {
            Some(key) => Ok(Some(key)),
            None => self.workspace_key_digest(id).await,
        }
    }

    pub async fn load_workspaces(&self) -> Result<Vec<SharedWorkspace>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Vec<(String, String)> = con
            .hgetall(WORKSPACES_KEY)
            .await
            .map_err(|e| self.failed("load workspaces", e))?;
        Ok(raw
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// The workspace's current key digest (hex; all zeroes once revoked),
    /// `None` for an unknown workspace.
    pub async fn workspace_key_digest(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut con = self.connection.clone();
        let raw: Option<String> = con
            .hget(WORKSPACES_KEY, id)
            .await
            .map_err(|e| self.failed("read key", e))?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<SharedWorkspace>(&r).ok())
            .map(|w| w.key_digest))
    }
}
