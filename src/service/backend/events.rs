//! What instances sharing one Redis tell each other on `qa:events`: every
//! change one of them made, so the others apply it to their own engine and
//! their WebSockets see it. Sent here; received by `service::replication`.
//! Without Redis there is no one to tell, and announcing does nothing.

use super::{Backend, Kind};
use crate::engine::{CallOutcome, Hold};
use crate::wire::Limits;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub(in crate::service) struct SharedEvent {
    pub origin: String,
    /// Empty for session events: they are about a browser, not one
    /// workspace's quota (their owner is in the event).
    #[serde(default)]
    pub workspace_id: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Who a shared session acts for. A workspace session names the digest of
/// the key it was opened with, so an instance that has already applied a
/// later key change refuses it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "caller", rename_all = "snake_case")]
pub(in crate::service) enum SessionOwner {
    /// With the hex of `browser_session::admin_key_binding` of the admin key that
    /// opened it: an instance running another admin key refuses it.
    Admin {
        #[serde(default)]
        admin_key_binding: Option<String>,
    },
    Workspace {
        id: String,
        key_digest: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(in crate::service) enum EventKind {
    Created {
        key_digest: String,
        limits: Limits,
    },
    /// The workspace's limits and settings (`wire::SettingsPatch` JSON,
    /// `None` for the defaults) were changed.
    SettingsChanged {
        limits: Limits,
        #[serde(default)]
        settings: Option<String>,
    },
    /// The workspace's keys were replaced (`Some`) or revoked (`None`).
    KeyChanged {
        key_digest: Option<String>,
    },
    /// A request admitted, with the tokens it holds (absent from older
    /// instances, and for a request that reserves none).
    Admitted {
        #[serde(default)]
        hold: Option<Hold>,
    },
    /// Settles the hold the outcome names, if any.
    Completed {
        outcome: CallOutcome,
    },
    /// A hold released without an outcome (the caller went away).
    Released {
        reservation_id: String,
    },
    Recorded {
        outcome: CallOutcome,
    },
    /// A batch, counted all at once.
    RecordedBatch {
        outcomes: Vec<CallOutcome>,
    },
    Reset,
    /// Digests (hex) only: the session id never leaves the browser and us.
    SessionOpened {
        session_digest: String,
        expires_at_ms: u64,
        /// Absent (0) from older instances.
        #[serde(default)]
        created_at_ms: u64,
        #[serde(default)]
        absolute_expires_at_ms: u64,
        owner: SessionOwner,
    },
    SessionExtended {
        session_digest: String,
        expires_at_ms: u64,
    },
    SessionClosed {
        session_digest: String,
    },
}

impl Backend {
    /// Tells the other instances, in the background (the caller does not
    /// wait for Redis).
    pub(in crate::service) fn announce(&self, id: &str, kind: EventKind) {
        let Some((redis, payload)) = self.event_payload(id, kind) else {
            return;
        };
        self.behind(async move { redis.publish(&payload).await });
    }

    /// A proxied call's outcome, for the others' engines. Built only under
    /// Redis: this runs once per proxied call, and the outcome is cloned.
    pub(in crate::service) fn announce_completed(&self, id: &str, outcome: &CallOutcome) {
        if matches!(self.kind, Kind::Redis(_)) {
            let outcome = outcome.clone();
            self.announce(id, EventKind::Completed { outcome });
        }
    }

    /// A hold released here, for the others' engines (Redis only).
    pub(in crate::service) fn announce_released(&self, id: &str, reservation_id: &str) {
        if matches!(self.kind, Kind::Redis(_)) {
            let reservation_id = reservation_id.to_string();
            self.announce(id, EventKind::Released { reservation_id });
        }
    }

    /// A record (or batch) counted here, for the others' engines; built only
    /// under Redis, like [`announce_completed`](Self::announce_completed).
    pub(in crate::service) fn announce_recorded(&self, id: &str, outcomes: &[CallOutcome]) {
        if !matches!(self.kind, Kind::Redis(_)) {
            return;
        }
        let told = match outcomes {
            [outcome] => EventKind::Recorded {
                outcome: outcome.clone(),
            },
            _ => EventKind::RecordedBatch {
                outcomes: outcomes.to_vec(),
            },
        };
        self.announce(id, told);
    }

    /// Tells the other instances before returning, so that two events of one
    /// caller reach the channel in order. A failure is reported (the store
    /// marked unhealthy) but not returned: the change itself stands (it is
    /// in Redis; the others load it when they resubscribe).
    pub(in crate::service) async fn announce_now(&self, id: &str, kind: EventKind) {
        let Some((redis, payload)) = self.event_payload(id, kind) else {
            return;
        };
        if let Err(e) = redis.publish(&payload).await {
            self.report(&e);
        }
    }

    fn event_payload(
        &self,
        id: &str,
        kind: EventKind,
    ) -> Option<(crate::store::RedisShared, String)> {
        let Kind::Redis(shared) = &self.kind else {
            return None;
        };
        let event = SharedEvent {
            origin: shared.instance.clone(),
            workspace_id: id.to_string(),
            kind,
        };
        let payload = serde_json::to_string(&event).ok()?;
        Some((shared.redis.clone(), payload))
    }
}
