//! Changing a workspace's limits and settings after it was created.

use super::settings::WorkspaceSettings;
use super::{Effect, Engine, EngineError};
use crate::wire::Limits;

impl Engine {
    /// A workspace's limits and settings.
    pub fn settings(&self, id: &str) -> Result<(Limits, WorkspaceSettings), EngineError> {
        let ws = self
            .workspaces
            .get(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        Ok((
            ws.limits,
            ws.settings.as_deref().cloned().unwrap_or_default(),
        ))
    }

    /// Sets the workspace's limits and settings; its status is evaluated
    /// again at once (a lower limit can rate-limit it, a higher one end
    /// that).
    pub fn configure(
        &self,
        id: &str,
        limits: Limits,
        settings: WorkspaceSettings,
    ) -> Result<Effect, EngineError> {
        self.with_workspace(id, |ws, now, engine| {
            ws.limits = limits;
            ws.settings = (settings != WorkspaceSettings::default()).then(|| Box::new(settings));
            ws.version += 1;
            engine.refresh(ws, now);
            ((), engine.transition_if_changed(id, ws, now))
        })
        .map(|(_, effect)| effect)
    }

    /// Today in the workspace's time zone: the day spend is added to now.
    pub fn local_day_now(&self, id: &str) -> Option<chrono::NaiveDate> {
        let ws = self.workspaces.get(id)?;
        let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
        Some(super::periods::local_day(zone, self.clock.now_ms()))
    }

    /// Puts back a day's usage of one model (`user` false) or user kept by
    /// the store (at start): the day's breakdown, and the money that
    /// model's or user's daily budget has spent. Days other than the
    /// workspace's today are ignored.
    pub fn restore_breakdown(
        &self,
        id: &str,
        day: chrono::NaiveDate,
        user: bool,
        name: &str,
        tally: super::scopes::Tally,
    ) -> Result<(), EngineError> {
        self.with_workspace(id, |ws, now, _| {
            let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
            if super::periods::local_day(zone, now) != day {
                return ((), None);
            }
            let scope = super::CallScope {
                model: (!user).then(|| name.to_string()),
                user: user.then(|| name.to_string()),
            };
            let keys = ws.scopes.keys_for(ws.settings.as_deref(), &scope);
            ws.scopes.restore_spent(day, &keys, tally.cost_nano);
            ws.scopes.restore_tally(day, user, name, tally);
            ((), None)
        })
        .map(|_| ())
    }

    /// Puts back spend kept by the store (at start); no status change is
    /// published (`settle` after restoring everything).
    pub fn restore_spend(
        &self,
        id: &str,
        day: chrono::NaiveDate,
        nano: u64,
    ) -> Result<(), EngineError> {
        self.with_workspace(id, |ws, _, _| {
            ws.spend.add(day, nano);
            ((), None)
        })
        .map(|_| ())
    }
}

impl Engine {
    /// What the engine itself knows of a workspace's days `[first, last]`
    /// for an export without a store: each day's spend (the ledger keeps
    /// 400 days) and, for today, the breakdown by model and by user.
    pub fn days_known(
        &self,
        id: &str,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
    ) -> Result<KnownDays, EngineError> {
        self.with_workspace(id, |ws, now, _| {
            let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
            let today = super::periods::local_day(zone, now);
            let spend = ws
                .spend
                .days()
                .filter(|(day, _)| *day >= first && *day <= last)
                .collect();
            let (by_model, by_user) = if (first..=last).contains(&today) {
                ws.scopes
                    .breakdown(today, super::scopes::MAX_BREAKDOWN_KEYS + 1)
            } else {
                (Vec::new(), Vec::new())
            };
            (
                KnownDays {
                    zone,
                    today,
                    spend,
                    by_model,
                    by_user,
                },
                None,
            )
        })
        .map(|(known, _)| known)
    }

    /// A workspace's time zone and today there.
    pub fn zone_and_today(&self, id: &str) -> Option<(chrono_tz::Tz, chrono::NaiveDate)> {
        let ws = self.workspaces.get(id)?;
        let zone = ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone);
        Some((zone, super::periods::local_day(zone, self.clock.now_ms())))
    }
}

/// See [`Engine::days_known`].
pub struct KnownDays {
    pub zone: chrono_tz::Tz,
    pub today: chrono::NaiveDate,
    pub spend: Vec<(chrono::NaiveDate, u64)>,
    pub by_model: Vec<super::scopes::Named>,
    pub by_user: Vec<super::scopes::Named>,
}
