//! Workspaces and their keys (as SHA-256 digests only).

use super::events::EventKind;
use super::{Backend, Kind};
use crate::engine::EngineError;
use crate::service::ServiceError;
use crate::store::redis::SharedWorkspace;
use crate::wire::Limits;

/// A digest no key hashes to: what a revoked workspace stores.
const REVOKED: [u8; 32] = [0; 32];

impl Backend {
    /// Keeps a new workspace and its key digest; awaited, since the key is
    /// handed out only once it is kept. Under Redis an id another instance
    /// took first is `AlreadyExists`, and the others are told before this
    /// returns (they would also look the key up).
    pub(in crate::service) async fn create_workspace(
        &self,
        id: &str,
        limits: Limits,
        digest: [u8; 32],
        now_ms: u64,
    ) -> Result<(), ServiceError> {
        match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => store
                .save_workspace(id, digest, limits, now_ms)
                .await
                .map_err(|e| ServiceError::Store(self.failed(e))),
            Kind::Redis(shared) => {
                let workspace = SharedWorkspace {
                    id: id.to_string(),
                    key_digest: hex::encode(digest),
                    limits,
                    settings: None,
                };
                let created = shared
                    .redis
                    .save_workspace(&workspace)
                    .await
                    .map_err(|e| ServiceError::Store(self.failed(e)))?;
                if !created {
                    return Err(ServiceError::Engine(EngineError::AlreadyExists(
                        id.to_string(),
                    )));
                }
                let created = EventKind::Created {
                    key_digest: workspace.key_digest,
                    limits,
                };
                self.announce_now(id, created).await;
                Ok(())
            }
        }
    }

    /// Replaces a workspace's key digest (`None`: revoked) and deletes its
    /// stored sessions with it: in the same SQLite transaction; under Redis
    /// right after the key (a sign-in racing with this either wrote its
    /// session before the delete, or reads the new key and removes its own),
    /// then tells the others, in order with the answer to the admin.
    pub(in crate::service) async fn change_key(
        &self,
        id: &str,
        digest: Option<[u8; 32]>,
    ) -> Result<(), ServiceError> {
        let failed = |e| ServiceError::Store(self.failed(e));
        match &self.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Sqlite(store) => store
                .update_workspace_key(id, digest.unwrap_or(REVOKED))
                .await
                // `false`: no such workspace, which the caller checked.
                .map(|_| ())
                .map_err(failed),
            Kind::Redis(shared) => {
                let digest_hex = digest.map(hex::encode);
                shared
                    .redis
                    .set_workspace_key(id, digest_hex.clone())
                    .await
                    .map_err(failed)?;
                shared
                    .redis
                    .delete_workspace_sessions(id)
                    .await
                    .map_err(failed)?;
                let changed = EventKind::KeyChanged {
                    key_digest: digest_hex,
                };
                self.announce_now(id, changed).await;
                Ok(())
            }
        }
    }

    /// Keeps a workspace's new limits and settings (JSON, `None` for the
    /// defaults); awaited, so the admin's answer means they are kept. Under
    /// Redis the other instances are told before this returns.
    pub(in crate::service) async fn save_settings(
        &self,
        id: &str,
        limits: Limits,
        settings: Option<String>,
    ) -> Result<(), ServiceError> {
        let failed = |e| ServiceError::Store(self.failed(e));
        let found = match &self.kind {
            Kind::Memory(_) => true,
            Kind::Sqlite(store) => store
                .update_workspace_settings(id, limits, settings)
                .await
                .map_err(failed)?,
            Kind::Redis(shared) => {
                let found = shared
                    .redis
                    .set_workspace_settings(id, limits, settings.clone())
                    .await
                    .map_err(failed)?;
                if found {
                    self.announce_now(id, EventKind::SettingsChanged { limits, settings })
                        .await;
                }
                found
            }
        };
        if found {
            Ok(())
        } else {
            Err(ServiceError::Engine(EngineError::NotFound(id.to_string())))
        }
    }
}
