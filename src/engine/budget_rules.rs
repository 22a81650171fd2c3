//! The status rules for spend budgets: a hard budget spent is
//! QUOTA_EXCEEDED until its period resets; a soft one crossed, or a hard
//! one past the warning share, is WARNING. Pure, like `rules.rs`, which
//! folds these in with the windows' verdicts.

use super::spend::{BudgetKind, BudgetStanding};
use super::workspace::WorkspaceState;
use crate::pricing::format_usd;
use crate::wire::{BudgetKindSpec, BudgetPeriod, BudgetUsage};
use chrono_tz::Tz;

/// What the budgets say at one instant.
#[derive(Debug, Default)]
pub(super) struct BudgetVerdict {
    /// A hard budget spent: milliseconds until the latest such one resets,
    /// and why.
    pub block: Option<(u64, String)>,
    /// The fullest budget past the warning share (or a soft one crossed):
    /// its share, and why.
    pub warning: Option<(f64, String)>,
}

fn zone(ws: &WorkspaceState) -> Tz {
    ws.settings.as_ref().map_or(chrono_tz::UTC, |s| s.time_zone)
}

/// Every budget's standing now (none without settings).
pub(super) fn standings(ws: &WorkspaceState, now_ms: u64) -> Vec<BudgetStanding> {
    let Some(settings) = ws.settings.as_ref() else {
        return Vec::new();
    };
    settings
        .budgets
        .iter()
        .map(|b| ws.spend.standing(b, settings.time_zone, now_ms, 0))
        .collect()
}

fn period_name(standing: &BudgetStanding) -> &'static str {
    use super::periods::Period;
    match standing.budget.period {
        Period::Day => "Daily",
        Period::Week => "Weekly",
        Period::Month => "Monthly",
        Period::Custom { .. } => "Custom-period",
    }
}

fn local_time(zone: Tz, ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
        .unwrap_or_default()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

pub(super) fn evaluate(ws: &WorkspaceState, now_ms: u64, warning_share: f64) -> BudgetVerdict {
    // Numbers first; the text only for the budget that decides, since this
    // runs on every evaluation (twice per admission) of a budgeted workspace.
    let mut block: Option<(u64, BudgetStanding)> = None;
    let mut warning: Option<(f64, BudgetStanding)> = None;
    for standing in standings(ws, now_ms) {
        let share = standing.percentage() / 100.0;
        if standing.budget.kind == BudgetKind::Hard && standing.is_spent() {
            let wait = standing.bounds.end_ms.saturating_sub(now_ms);
            if block.as_ref().is_none_or(|(w, _)| wait > *w) {
                block = Some((wait, standing));
            }
        } else if ((standing.budget.kind == BudgetKind::Soft && standing.is_spent())
            || share >= warning_share)
            && warning.as_ref().is_none_or(|(s, _)| share > *s)
        {
            warning = Some((share, standing));
        }
    }
    let zone = zone(ws);
    let text = |standing: &BudgetStanding| {
        (
            period_name(standing),
            format_usd(standing.budget.amount_nano),
            format_usd(standing.spent_nano),
            local_time(zone, standing.bounds.end_ms),
        )
    };
    BudgetVerdict {
        block: block.map(|(wait, standing)| {
            let (name, amount, spent, resets) = text(&standing);
            (
                wait,
                format!("{name} budget of {amount} spent ({spent}); calls are refused until it resets at {resets}."),
            )
        }),
        warning: warning.map(|(share, standing)| {
            let (name, amount, spent, resets) = text(&standing);
            let reason = if standing.budget.kind == BudgetKind::Soft && standing.is_spent() {
                format!("{name} soft budget of {amount} crossed ({spent} spent); it resets at {resets}.")
            } else {
                format!(
                    "{name} budget at {:.0}% ({spent} of {amount}); it resets at {resets}.",
                    share * 100.0
                )
            };
            (share, reason)
        }),
    }
}

/// The budgets as the snapshot shows them.
pub(super) fn usage(ws: &WorkspaceState, now_ms: u64) -> Vec<BudgetUsage> {
    use super::periods::Period;
    standings(ws, now_ms)
        .into_iter()
        .map(|s| BudgetUsage {
            period: match s.budget.period {
                Period::Day => BudgetPeriod::Day,
                Period::Week => BudgetPeriod::Week,
                Period::Month => BudgetPeriod::Month,
                Period::Custom { .. } => BudgetPeriod::Custom,
            },
            kind: match s.budget.kind {
                BudgetKind::Hard => BudgetKindSpec::Hard,
                BudgetKind::Soft => BudgetKindSpec::Soft,
            },
            amount_usd: crate::pricing::nano_to_usd(s.budget.amount_nano),
            spent_usd: crate::pricing::nano_to_usd(s.spent_nano),
            percentage: s.percentage(),
            resets_at: super::rfc3339(s.bounds.end_ms),
        })
        .collect()
}
