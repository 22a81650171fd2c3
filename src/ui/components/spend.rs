//! Spend meters: one per budget, money spent of the amount, what calls in
//! flight hold as a lighter segment (like reserved tokens), coloured by how
//! full, and when the period starts again (in the workspace's zone, and
//! counting down by the page's clock).

use crate::ui::components::icon::{Icon, IconName};
use crate::ui::format::{countdown, month_day, parse_day, parse_rfc3339_ms, usd};
use crate::ui::hooks::use_ticker::use_ticker;
use crate::wire::{BudgetKindSpec, BudgetPeriod, BudgetUsage, QuotaSnapshot};
use leptos::prelude::*;

/// "Monthly budget (hard)", as the server's messages name budgets.
pub fn budget_label(budget: &BudgetUsage) -> String {
    format!(
        "{} budget ({})",
        period_name(budget.period),
        match budget.kind {
            BudgetKindSpec::Hard => "hard",
            BudgetKindSpec::Soft => "soft",
        }
    )
}

/// "Daily", "Weekly", "Monthly", "Custom-period".
pub fn period_name(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Day => "Daily",
        BudgetPeriod::Week => "Weekly",
        BudgetPeriod::Month => "Monthly",
        BudgetPeriod::Custom => "Custom-period",
    }
}

/// `ok`, `high` (80 % and more) or `full`, as the window meters are coloured.
pub fn spend_level(budget: &BudgetUsage) -> &'static str {
    if budget.percentage >= 100.0 {
        "full"
    } else if budget.percentage >= 80.0 {
        "high"
    } else {
        "ok"
    }
}

/// The share of the amount held for calls in flight, in percent, drawn after
/// the spent share and never past the end of the bar.
pub fn held_share(budget: &BudgetUsage) -> f64 {
    if budget.amount_usd <= 0.0 || budget.held_usd <= 0.0 {
        return 0.0;
    }
    let spent = budget.percentage.clamp(0.0, 100.0);
    let held = budget.held_usd * 100.0 / budget.amount_usd;
    held.min(100.0 - spent).max(0.0)
}

/// "Jan 1, 00:00 Europe/Berlin": the local midnight after the period's last
/// day; `None` when the server sent no local days (an older server).
pub fn reset_text(budget: &BudgetUsage) -> Option<String> {
    let next = parse_day(&budget.last_day)? + 1;
    let zone = if budget.time_zone.is_empty() {
        "UTC"
    } else {
        budget.time_zone.as_str()
    };
    Some(format!("{}, 00:00 {zone}", month_day(next)))
}

/// Seconds from the snapshot's time to the period's end.
pub fn resets_in_s(budget: &BudgetUsage, updated_at: &str) -> f64 {
    match (
        parse_rfc3339_ms(&budget.resets_at),
        parse_rfc3339_ms(updated_at),
    ) {
        (Some(end), Some(now)) => (end - now).max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// The budgets' meters of a live snapshot; nothing without budgets.
#[component]
pub fn SpendMeters(
    #[prop(into)] snapshot: Signal<QuotaSnapshot>,
    #[prop(into)] received_at: Signal<Option<f64>>,
) -> impl IntoView {
    // A memo: the meters are rebuilt only when the number of budgets changes,
    // not on every snapshot (each meter follows the snapshot itself).
    let count = Memo::new(move |_| snapshot.with(|s| s.budgets.len()));
    view! {
        <Show when=move || { count.get() > 0 }>
            <div class="meters spend-meters" data-testid="spend-meters">
                {move || {
                    (0..count.get())
                        .map(|index| view! { <BudgetMeter snapshot index received_at/> })
                        .collect_view()
                }}
            </div>
        </Show>
    }
}

/// The meter of budget `index` in `snapshot` (which may change, live).
#[component]
pub fn BudgetMeter(
    #[prop(into)] snapshot: Signal<QuotaSnapshot>,
    index: usize,
    #[prop(into)] received_at: Signal<Option<f64>>,
) -> impl IntoView {
    let clock = use_ticker();
    let budget = Memo::new(move |_| snapshot.with(|s| s.budgets.get(index).cloned()));
    let get = move || budget.get();
    let field =
        move |f: fn(&BudgetUsage) -> String| move || get().as_ref().map(f).unwrap_or_default();
    let level = move || get().as_ref().map_or("ok", spend_level);
    // Unique on a page that shows several workspaces (the dashboard).
    let label_id = snapshot.with_untracked(|s| format!("spend-{}-{index}", s.workspace_id));
    let resets = move || {
        let b = get()?;
        let left = clock.left(
            received_at.get(),
            snapshot.with(|s| resets_in_s(&b, &s.updated_at)),
        );
        let when = reset_text(&b)
            .map(|at| format!("resets {at}"))
            .unwrap_or_default();
        Some(if left > 0.0 {
            format!("{when} (in {})", countdown(left))
        } else {
            when
        })
    };
    view! {
        <div
            class=move || format!("meter meter-{} spend-meter", level())
            data-testid="spend-meter"
            data-period=move || get().map(|b| format!("{:?}", b.period).to_lowercase())
            data-kind=move || get().map(|b| format!("{:?}", b.kind).to_lowercase())
        >
            <div class="meter-label">
                <span id=label_id.clone()>{field(budget_label)}</span>
                <span class="meter-figures" data-testid="spend-figures">
                    {field(|b| format!("{} of {}", usd(b.spent_usd), usd(b.amount_usd)))}
                </span>
            </div>
            // Money held for calls in flight: their worst case counts against
            // a hard budget (a call that would not fit is refused) until they settle.
            <div
                class="meter-reserved-note"
                data-testid="spend-held"
                hidden=move || get().is_none_or(|b| b.held_usd <= 0.0)
            >
                {field(|b| format!("+ {} held for calls in flight", usd(b.held_usd)))}
            </div>
            <div
                class="meter-track"
                role="meter"
                aria-labelledby=label_id
                aria-valuemin="0"
                aria-valuemax=field(|b| format!("{:.2}", b.amount_usd))
                aria-valuenow=field(|b| format!("{:.2}", b.spent_usd.min(b.amount_usd)))
                aria-valuetext=field(|b| {
                    let held = if b.held_usd > 0.0 {
                        format!(", {} more held", usd(b.held_usd))
                    } else {
                        String::new()
                    };
                    format!("{} of {} spent ({:.0}%){held}", usd(b.spent_usd), usd(b.amount_usd), b.percentage)
                })
            >
                // SVG attributes, not styles: the page's CSP forbids inline styles.
                <svg class="meter-bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <rect
                        class="meter-fill"
                        x="0"
                        y="0"
                        height="1"
                        width=field(|b| format!("{:.1}", b.percentage.clamp(0.0, 100.0)))
                    ></rect>
                    <rect
                        class="meter-held"
                        data-testid="spend-held-bar"
                        y="0"
                        height="1"
                        x=field(|b| format!("{:.1}", b.percentage.clamp(0.0, 100.0)))
                        width=field(|b| format!("{:.1}", held_share(b)))
                    ></rect>
                </svg>
            </div>
            <div class="meter-note">
                <span>{field(|b| format!("{:.0}%", b.percentage))}</span>
                <span class="meter-level">
                    {move || match level() {
                        "full" => Some(view! { <Icon name=IconName::Blocked/> }),
                        "high" => Some(view! { <Icon name=IconName::Warning/> }),
                        _ => None,
                    }}
                    {move || match (level(), get().map(|b| b.kind)) {
                        ("full", Some(BudgetKindSpec::Hard)) => "spent: calls refused",
                        ("full", _) => "crossed",
                        ("high", _) => "high",
                        _ => "",
                    }}
                </span>
                <span class="meter-reset" data-testid="spend-reset">{resets}</span>
            </div>
        </div>
    }
    .into_any()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn budget(spent: f64, held: f64, amount: f64) -> BudgetUsage {
        BudgetUsage {
            period: BudgetPeriod::Month,
            kind: BudgetKindSpec::Hard,
            amount_usd: amount,
            spent_usd: spent,
            percentage: spent * 100.0 / amount,
            resets_at: "2026-12-31T23:00:00.000Z".into(),
            held_usd: held,
            starts_at: "2026-11-30T23:00:00.000Z".into(),
            days: Vec::new(),
            projected_usd: 0.0,
            first_day: "2026-12-01".into(),
            last_day: "2026-12-31".into(),
            time_zone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn labels_levels_and_the_held_share() {
        let b = budget(12.4, 5.0, 100.0);
        assert_eq!(budget_label(&b), "Monthly budget (hard)");
        assert_eq!(spend_level(&b), "ok");
        assert_eq!(spend_level(&budget(80.0, 0.0, 100.0)), "high");
        assert_eq!(spend_level(&budget(100.0, 0.0, 100.0)), "full");
        assert!((held_share(&b) - 5.0).abs() < 1e-9);
        assert!((held_share(&budget(90.0, 50.0, 100.0)) - 10.0).abs() < 1e-9);
        assert_eq!(held_share(&budget(120.0, 5.0, 100.0)), 0.0);
        assert_eq!(held_share(&budget(1.0, 0.0, 100.0)), 0.0);
    }

    #[test]
    fn the_reset_is_the_local_midnight_after_the_last_day() {
        let b = budget(1.0, 0.0, 10.0);
        assert_eq!(
            reset_text(&b).as_deref(),
            Some("Jan 1, 00:00 Europe/Berlin")
        );
        assert_eq!(resets_in_s(&b, "2026-12-31T22:00:00.000Z"), 3600.0);
        assert_eq!(resets_in_s(&b, "2027-01-02T00:00:00.000Z"), 0.0);
        let older = BudgetUsage {
            last_day: String::new(),
            ..b
        };
        assert_eq!(reset_text(&older), None);
    }
}
