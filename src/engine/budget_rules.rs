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

/// Least time into a period a projection extrapolates from.
const PROJECTION_MIN_ELAPSED_MS: u64 = 3_600_000;

/// What `standing` will have spent by its period's end at its average rate
/// so far (from at least [`PROJECTION_MIN_ELAPSED_MS`] in).
pub(super) fn projected_nano(standing: &BudgetStanding, now_ms: u64) -> u64 {
    let bounds = standing.bounds;
    let length = bounds.end_ms.saturating_sub(bounds.start_ms).max(1);
    let elapsed = now_ms
        .saturating_sub(bounds.start_ms)
        .clamp(PROJECTION_MIN_ELAPSED_MS.min(length), length);
    let projected = u128::from(standing.spent_nano) * u128::from(length) / u128::from(elapsed);
    u64::try_from(projected).unwrap_or(u64::MAX)
}

/// The budgets as the snapshot shows them.
pub(super) fn usage(ws: &WorkspaceState, now_ms: u64) -> Vec<BudgetUsage> {
    use super::periods::Period;
    let held = ws.reservations.total_cost();
    let zone = zone(ws);
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
            held_usd: crate::pricing::nano_to_usd(held),
            starts_at: super::rfc3339(s.bounds.start_ms),
            days: ws
                .spend
                .days()
                .filter(|(day, _)| *day >= s.bounds.first_day && *day < s.bounds.end_day)
                .map(|(day, nano)| crate::wire::DaySpend {
                    day: day.format("%Y-%m-%d").to_string(),
                    spent_usd: crate::pricing::nano_to_usd(nano),
                })
                .collect(),
            projected_usd: crate::pricing::nano_to_usd(projected_nano(&s, now_ms)),
            first_day: s.bounds.first_day.format("%Y-%m-%d").to_string(),
            last_day: s
                .bounds
                .end_day
                .pred_opt()
                .unwrap_or(s.bounds.first_day)
                .format("%Y-%m-%d")
                .to_string(),
            time_zone: zone.name().to_string(),
        })
        .collect()
}

/// The refusal of a call whose model the price table does not price
/// ([`Hold::unpriced`](super::Hold)) when a money limit covers it (a hard
/// budget of the workspace, or a daily budget of its model's or user's
/// rule): its cost is unknown, so it would be held at nothing and settled
/// for nothing, and the budget would never see it. Fail closed; the
/// operator prices the model (`QUOTA_PRICES_FILE`) to let it through.
pub(super) fn unpriced_refusal(
    ws: &WorkspaceState,
    keys: &super::scopes::ScopeKeys,
    scope: &super::CallScope,
) -> Option<super::scopes::Limited> {
    let limit = money_limit(ws, keys)?;
    Some(super::scopes::Limited {
        kind: super::scopes::LimitKind::Unpriced,
        wait_ms: None,
        reason: format!(
            "Model {} has no price in quota-alert's price table, so {limit} cannot hold what its calls cost: they are refused while a budget applies.",
            scope.model.as_deref().unwrap_or_default()
        ),
    })
}

/// The money limit that covers a call under `keys`, described (a hard
/// budget of the workspace, else a daily budget of its model's or user's
/// rule); `None` if no budget can refuse it.
pub(super) fn money_limit(ws: &WorkspaceState, keys: &super::scopes::ScopeKeys) -> Option<String> {
    let settings = ws.settings.as_ref()?;
    let hard = settings
        .budgets
        .iter()
        .find(|b| b.kind == BudgetKind::Hard)
        .map(|b| {
            let name = match b.period {
                super::periods::Period::Day => "daily",
                super::periods::Period::Week => "weekly",
                super::periods::Period::Month => "monthly",
                super::periods::Period::Custom { .. } => "custom-period",
            };
            format!(
                "the workspace's {name} budget of {}",
                format_usd(b.amount_nano)
            )
        });
    let model_rule = keys.model.as_deref().and_then(|key| {
        let budget = settings.model_limits.get(key)?.budget_nano_per_day?;
        Some(format!(
            "model {key}'s daily budget of {}",
            format_usd(budget)
        ))
    });
    let user_rule = keys.user.as_deref().and_then(|key| {
        let budget = super::scopes::rule_for_user(settings, key)?.budget_nano_per_day?;
        Some(format!(
            "the daily budget of user {key} of {}",
            format_usd(budget)
        ))
    });
    hard.or(model_rule).or(user_rule)
}

/// Whether a call that may cost `need_nano` fits every hard budget beside
/// what is spent and held for calls in flight; the refusal that waits
/// longest if not (the call would take a budget over: it is refused before
/// it reaches OpenAI, not after). A call priced at nothing always fits.
pub(super) fn budget_room(
    ws: &WorkspaceState,
    now_ms: u64,
    need_nano: u64,
) -> Option<super::scopes::Limited> {
    use super::scopes::{LimitKind, Limited};
    if need_nano == 0 {
        return None;
    }
    let settings = ws.settings.as_ref()?;
    let held = ws.reservations.total_cost();
    let mut refusal = None;
    for budget in settings
        .budgets
        .iter()
        .filter(|b| b.kind == BudgetKind::Hard)
    {
        let standing = ws.spend.standing(budget, settings.time_zone, now_ms, held);
        if standing.fits(need_nano) {
            continue;
        }
        let wait_ms = if need_nano > budget.amount_nano {
            None
        } else if standing.spent_nano.saturating_add(need_nano) <= budget.amount_nano {
            // Only calls in flight are in the way; they settle soon, most
            // for less than their worst case.
            Some(super::IN_FLIGHT_RETRY_MS)
        } else {
            Some(standing.bounds.end_ms.saturating_sub(now_ms).max(1))
        };
        let (name, amount, spent, resets) = (
            period_name(&standing),
            format_usd(budget.amount_nano),
            format_usd(standing.spent_nano),
            local_time(settings.time_zone, standing.bounds.end_ms),
        );
        let reason = format!(
            "{name} budget of {amount}: {spent} spent and {} held for calls in flight; this call may cost up to {} (its prompt plus max_tokens at the model's price). The budget resets at {resets}.",
            format_usd(held),
            format_usd(need_nano)
        );
        refusal = Limited::longest(
            refusal,
            Limited {
                kind: LimitKind::Spend,
                wait_ms,
                reason,
            },
        );
    }
    refusal
}
