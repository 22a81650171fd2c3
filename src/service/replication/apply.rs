//! Applying what another instance did (an event on `qa:events`) to this
//! instance's engine, keys and sessions, so its WebSockets see it too.

use super::decode_digest;
use crate::service::backend::events::{EventKind, SharedEvent};
use crate::service::QuotaService;
use crate::store::redis::REVOKED_DIGEST_HEX;
use crate::wire::{LimitOverrides, Limits};

impl QuotaService {
    pub(in crate::service) fn apply_key_change(&self, id: &str, digest_hex: Option<&str>) {
        // Already applied (learned by a lookup or a reload first): closing
        // the sessions again would end ones opened with the new key.
        if self.expected_key(id) == digest_hex.unwrap_or(REVOKED_DIGEST_HEX) {
            return;
        }
        self.inner.registry.begin_change(id);
        self.revoke_locally(id);
        let mut digest = [0u8; 32];
        if let Some(hex_digest) = digest_hex {
            if hex::decode_to_slice(hex_digest, &mut digest).is_ok() {
                self.inner.registry.restore(digest, id);
            }
        }
    }

    pub(in crate::service) fn apply_created(&self, id: &str, digest_hex: &str, limits: Limits) {
        let exact = LimitOverrides::exactly(limits);
        let _ = self.engine().create_workspace(id, &exact);
        let mut digest = [0u8; 32];
        if digest_hex != REVOKED_DIGEST_HEX && hex::decode_to_slice(digest_hex, &mut digest).is_ok()
        {
            self.inner.registry.restore(digest, id);
        }
    }

    pub(super) fn apply_event(&self, own_instance: &str, event: SharedEvent) {
        if event.origin == own_instance {
            return;
        }
        let id = event.workspace_id.as_str();
        let effect = match event.kind {
            EventKind::Created { key_digest, limits } => {
                self.apply_created(id, &key_digest, limits);
                return;
            }
            EventKind::KeyChanged { key_digest } => {
                self.apply_key_change(id, key_digest.as_deref());
                return;
            }
            EventKind::SettingsChanged { limits, settings } => {
                self.apply_settings(id, limits, settings.as_deref());
                return;
            }
            EventKind::SessionOpened {
                session_digest,
                expires_at_ms,
                created_at_ms,
                absolute_expires_at_ms,
                owner,
            } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    let times = crate::service::session_lifecycle::SharedSessionTimes {
                        created_at_ms,
                        expires_at_ms,
                        absolute_expires_at_ms,
                    };
                    self.apply_session_opened(digest, owner, times);
                }
                return;
            }
            EventKind::SessionExtended {
                session_digest,
                expires_at_ms,
            } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    self.apply_session_extended(digest, expires_at_ms);
                }
                return;
            }
            EventKind::SessionClosed { session_digest } => {
                if let Some(digest) = decode_digest(&session_digest) {
                    self.apply_session_closed(digest);
                }
                return;
            }
            EventKind::Admitted { hold } => self.engine().count_admitted(id, hold.as_ref()),
            EventKind::Released { reservation_id } => self.engine().release(id, &reservation_id),
            EventKind::Completed { outcome } => self.engine().complete(id, &outcome),
            EventKind::Recorded { outcome } => self.engine().record(id, &outcome),
            EventKind::RecordedBatch { outcomes } => {
                let mut last = Err(crate::engine::EngineError::NotFound(id.to_string()));
                for outcome in &outcomes {
                    last = self.engine().record(id, outcome);
                }
                last
            }
            EventKind::Reset => self.engine().reset(id),
        };
        if effect.is_ok() {
            // The originating instance logged and alerted this change.
            self.publish_quiet(id);
        }
    }
}
