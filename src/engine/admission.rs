//! Admission: a request is checked and counted in one step under the
//! workspace's shard lock (see [`Engine::try_admit`]), or counted as admitted
//! elsewhere.

use super::reads::check_result;
use super::{Admission, Effect, Engine, EngineError};
use crate::wire::CheckResult;

impl Engine {
    /// Admits one request if every window has room, counting it at once so that
    /// concurrent callers cannot overshoot. Follow with [`complete`](Self::complete).
    pub fn try_admit(&self, id: &str) -> Result<Admission, EngineError> {
        let (check, effect) = self.with_workspace(id, |ws, now, engine| {
            let verdict = engine.refresh(ws, now);
            if !verdict.allowed {
                return (check_result(&verdict), None);
            }
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                // This request is the probe; the next one waits a full interval.
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            ws.version += 1;
            engine.flag_unusual_traffic(id, ws, now);
            let transition = engine.transition_if_changed(id, ws, now);
            let check = CheckResult {
                allowed: true,
                status: ws.status,
                retry_after_s: None,
            };
            (check, transition)
        })?;
        Ok(Admission { check, effect })
    }

    /// Counts one request that was admitted elsewhere (by the shared store, or
    /// on another instance), without checking limits.
    pub fn count_admitted(&self, id: &str) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.advance(now, engine.config.degraded_window_ms);
            if ws.upstream.quota_exhausted_at_ms.is_some() {
                ws.upstream.next_probe_at_ms = now + engine.config.quota_probe_interval_ms;
            }
            ws.minute.add(now, 1, 0);
            ws.day.add(now, 1, 0);
            ws.version += 1;
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }
}
