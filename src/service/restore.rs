//! Rebuilding the service from SQLite at start: workspaces and keys,
//! both windows (from per-second usage rows), upstream blocks, the alert
//! history and browser sessions. (Redis: `replication::load_from_redis`.)

use super::{QuotaService, USAGE_HORIZON_MS};
use crate::engine::{DurableUpstreamState, Transition};
use crate::store::{SqliteStore, StoreError};
use crate::wire::{LimitOverrides, QuotaStatus};
use std::collections::HashSet;

impl QuotaService {
    /// Rebuilds workspaces, keys, windows, upstream blocks, history and browser
    /// sessions from the store, then settles every status silently ("as
    /// before", not a change).
    pub(super) async fn restore(&self, store: &SqliteStore) -> Result<usize, StoreError> {
        let engine = self.engine();
        let now = engine.now_ms();
        let workspaces = store.load_workspaces().await?;
        for w in &workspaces {
            let exact = LimitOverrides::exactly(w.limits);
            // Already present only if restored twice; either way the stored
            // limits are the truth.
            let _ = engine.create_workspace(&w.id, &exact);
            if w.settings.is_some() {
                let settings = super::settings::parse_stored(&w.id, w.settings.as_deref());
                let _ = engine.configure(&w.id, w.limits, settings);
            }
            if w.key_digest != [0; 32] {
                self.inner.registry.restore(w.key_digest, &w.id);
            }
        }

        for row in store
            .load_usage(now.saturating_sub(USAGE_HORIZON_MS))
            .await?
        {
            let _ = engine.restore_usage(
                &row.workspace_id,
                row.second * 1000,
                row.requests,
                row.tokens,
            );
        }

        for (id, day, nano) in store.load_spend().await? {
            match chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
                Ok(day) => {
                    let _ = engine.restore_spend(&id, day, nano);
                }
                Err(_) => {
                    tracing::error!(workspace_id = %id, %day, "stored spend day unreadable; skipped")
                }
            }
        }

        // Today's breakdown by model and user (and what each user's or
        // model's daily budget has spent): the last two UTC days cover
        // every zone's today; the engine keeps only its workspace's.
        let today = chrono::DateTime::from_timestamp_millis(now.min(i64::MAX as u64) as i64)
            .unwrap_or_default()
            .date_naive();
        let (first, last) = (
            (today - chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string(),
            (today + chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string(),
        );
        for row in store.load_detail(None, &first, &last).await? {
            if let Ok(day) = chrono::NaiveDate::parse_from_str(&row.day, "%Y-%m-%d") {
                let _ = engine.restore_breakdown(
                    &row.workspace_id,
                    day,
                    row.dimension == crate::store::Dimension::User,
                    &row.name,
                    crate::engine::scopes::Tally {
                        requests: row.requests,
                        tokens: row.tokens,
                        cost_nano: row.nano_usd,
                    },
                );
            }
        }

        for (id, json) in store.load_upstream_states().await? {
            if let Ok(state) = serde_json::from_str::<DurableUpstreamState>(&json) {
                let _ = engine.restore_upstream(&id, &state);
            }
        }

        let history_len = engine.config().history_len;
        for w in &workspaces {
            let history = store
                .load_transitions(&w.id, history_len)
                .await?
                .into_iter()
                .filter_map(|t| {
                    Some(Transition {
                        workspace_id: t.workspace_id,
                        from: parse_status(&t.from)?,
                        to: parse_status(&t.to)?,
                        at_ms: t.at_ms,
                        reason: t.reason,
                    })
                })
                .collect();
            let _ = engine.restore_history(&w.id, history);
            let _ = engine.settle(&w.id);
        }

        let keyed: HashSet<&str> = workspaces
            .iter()
            .filter(|w| w.key_digest != [0; 32])
            .map(|w| w.id.as_str())
            .collect();
        for session in store.load_sessions(now).await? {
            self.restore_session(session, now, &keyed);
        }
        Ok(workspaces.len())
    }
}

fn parse_status(text: &str) -> Option<QuotaStatus> {
    QuotaStatus::ALL.into_iter().find(|s| s.as_str() == text)
}
