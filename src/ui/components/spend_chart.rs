//! A budget's spend per local day of its period as an SVG bar chart (the look
//! of `chart.rs`: one bar per day, the even pace as a dashed line, a text
//! summary for screen readers), and the projection to the period's end.

use crate::ui::components::chart::nice_ceiling;
use crate::ui::components::icon::{Icon, IconName};
use crate::ui::components::spend::budget_label;
use crate::ui::format::{month_day, parse_day, usd};
use crate::wire::{BudgetKindSpec, BudgetUsage};
use leptos::prelude::*;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const TOP: f64 = 4.0;
/// Widest bar, in drawing units (a one-day period is not one wall of colour).
const MAX_BAR: f64 = 40.0;
/// Most days drawn (a custom period is at most 366).
const MAX_DAYS: i64 = 400;

/// Every day of the period, oldest first, with what was spent on it (0 for
/// days without spend, and the days still to come).
pub fn period_days(budget: &BudgetUsage) -> Vec<(i64, f64)> {
    let spent = |day: i64| {
        budget
            .days
            .iter()
            .filter(|d| parse_day(&d.day) == Some(day))
            .map(|d| d.spent_usd)
            .sum::<f64>()
    };
    match (parse_day(&budget.first_day), parse_day(&budget.last_day)) {
        (Some(first), Some(last)) if first <= last => (first..=last.min(first + MAX_DAYS - 1))
            .map(|day| (day, spent(day)))
            .collect(),
        // An older server sent no bounds: the days it listed.
        _ => budget
            .days
            .iter()
            .filter_map(|d| Some((parse_day(&d.day)?, d.spent_usd)))
            .collect(),
    }
}

/// The projection sentence, and whether it goes past the amount.
pub fn projection(budget: &BudgetUsage) -> (String, bool) {
    if budget.spent_usd <= 0.0 && budget.projected_usd <= 0.0 {
        return ("Nothing spent in this period yet.".to_string(), false);
    }
    let by = parse_day(&budget.last_day)
        .map(|d| format!(" by {}", month_day(d)))
        .unwrap_or_else(|| " by the end of the period".to_string());
    let over = budget.projected_usd > budget.amount_usd;
    let tail = match (over, budget.kind) {
        (false, _) => String::new(),
        // A hard budget cannot be overspent: calls are refused first.
        (true, BudgetKindSpec::Hard) => format!(
            " — more than the {} budget: calls will be refused before then",
            usd(budget.amount_usd)
        ),
        (true, BudgetKindSpec::Soft) => format!(" — over the {} budget", usd(budget.amount_usd)),
    };
    (
        format!(
            "At this rate you will spend {}{by}{tail}.",
            usd(budget.projected_usd)
        ),
        over,
    )
}

/// The projection line of one budget (re-rendered as the budget changes).
#[component]
pub fn ProjectionLine(budget: BudgetUsage) -> impl IntoView {
    let (text, over) = projection(&budget);
    view! {
        <p
            class=if over { "prediction prediction-flagged" } else { "prediction" }
            data-testid="spend-projection"
            data-over=over.to_string()
        >
            <Icon name=if over { IconName::Warning } else { IconName::Trend }/>" "
            {over.then_some(view! { <span class="visually-hidden">"Warning: "</span> })}
            {text}
        </p>
    }
}

/// Spend per day of `budget`'s period; `id` is unique on the page.
#[component]
pub fn DailySpendChart(budget: BudgetUsage, id: String) -> impl IntoView {
    let days = period_days(&budget);
    let peak = days.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let n = days.len().max(1);
    let pace = budget.amount_usd / n as f64;
    let pace_on_scale = pace > 0.0 && pace <= (peak * 2.0).max(0.04);
    let top_cents =
        nice_ceiling((if pace_on_scale { peak.max(pace) } else { peak } * 100.0).ceil() as u64);
    let top = top_cents as f64 / 100.0;
    let plot_h = HEIGHT - TOP;
    let y = move |v: f64| TOP + plot_h - (v / top).min(1.0) * plot_h;
    let slot = WIDTH / n as f64;
    let bar_w = (slot - 1.0).clamp(1.0, MAX_BAR);
    let bars = days
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| *v > 0.0)
        .map(|(i, (day, v))| {
            let top_y = y(*v);
            let x = i as f64 * slot + (slot - bar_w) / 2.0;
            // A day that alone spent the whole amount.
            let class = if *v >= budget.amount_usd {
                "bar bar-over"
            } else {
                "bar"
            };
            view! {
                <rect
                    class=class
                    x=format!("{x:.1}")
                    y=format!("{top_y:.1}")
                    width=format!("{bar_w:.1}")
                    height=format!("{:.1}", (TOP + plot_h - top_y).max(1.0))
                >
                    <title>{format!("{} — {}", month_day(*day), usd(*v))}</title>
                </rect>
            }
        })
        .collect_view();
    let pace_line = pace_on_scale.then(|| {
        let py = format!("{:.1}", y(pace));
        view! {
            <line class="limit-line" x1="0" x2=WIDTH.to_string() y1=py.clone() y2=py vector-effect="non-scaling-stroke"/>
        }
    });
    let legend = if pace_on_scale {
        format!("dashed line: even pace {} a day", usd(pace))
    } else {
        format!("even pace {} a day (off this scale)", usd(pace))
    };
    let busiest = days
        .iter()
        .filter(|(_, v)| *v == peak && peak > 0.0)
        .map(|(d, _)| month_day(*d))
        .next_back();
    let label = budget_label(&budget);
    let desc = match busiest {
        Some(day) => format!(
            "{} spent of {} so far; the most on {day} ({}).",
            usd(budget.spent_usd),
            usd(budget.amount_usd),
            usd(peak)
        ),
        None => format!("Nothing spent of {} so far.", usd(budget.amount_usd)),
    };
    let first = days.first().map(|(d, _)| month_day(*d)).unwrap_or_default();
    // A one-day period names its day once.
    let last = match (days.first(), days.last()) {
        (Some(a), Some(b)) if a.0 != b.0 => month_day(b.0),
        _ => String::new(),
    };
    let (title_id, desc_id) = (format!("{id}-title"), format!("{id}-desc"));
    let title = format!("{label}: spend per day");
    let labelled_by = format!("{title_id} {desc_id}");
    view! {
        <figure class="chart spend-chart" data-testid="spend-chart" data-days=days.len().to_string()>
            <figcaption>
                <strong>{title.clone()}</strong>
                <span class="muted chart-legend">{legend}</span>
            </figcaption>
            <div class="chart-body">
                <div class="chart-y" aria-hidden="true">
                    <span>{usd(top)}</span>
                    <span>"$0"</span>
                </div>
                <svg
                    viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                    preserveAspectRatio="none"
                    role="img"
                    aria-labelledby=labelled_by
                >
                    <title id=title_id>{title}</title>
                    <desc id=desc_id>{desc.clone()}</desc>
                    <line class="grid" x1="0" x2=WIDTH.to_string() y1=TOP.to_string() y2=TOP.to_string() vector-effect="non-scaling-stroke"/>
                    <line class="axis" x1="0" x2=WIDTH.to_string() y1=(TOP + plot_h).to_string() y2=(TOP + plot_h).to_string() vector-effect="non-scaling-stroke"/>
                    {bars}
                    {pace_line}
                </svg>
            </div>
            <div class="chart-x spend-chart-x" aria-hidden="true">
                <span>{first}</span>
                <span>{last}</span>
            </div>
            <p class="chart-summary">{desc}</p>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::components::spend::tests::budget;
    use crate::wire::DaySpend;

    #[test]
    fn every_day_of_the_period_has_a_slot() {
        let mut b = budget(3.0, 0.0, 100.0);
        b.days = vec![
            DaySpend {
                day: "2026-12-02".into(),
                spent_usd: 1.0,
            },
            DaySpend {
                day: "2026-12-05".into(),
                spent_usd: 2.0,
            },
        ];
        let days = period_days(&b);
        assert_eq!(days.len(), 31);
        assert_eq!(days[1].1, 1.0);
        assert_eq!(days[4].1, 2.0);
        assert_eq!(days.iter().map(|d| d.1).sum::<f64>(), 3.0);
        b.first_day.clear();
        assert_eq!(period_days(&b).len(), 2, "without bounds, the listed days");
    }

    #[test]
    fn the_projection_names_the_last_day_and_warns_past_the_amount() {
        let mut b = budget(12.4, 0.0, 100.0);
        b.projected_usd = 80.0;
        assert_eq!(
            projection(&b),
            (
                "At this rate you will spend $80.00 by Dec 31.".into(),
                false
            )
        );
        b.projected_usd = 130.0;
        let (text, over) = projection(&b);
        assert!(over);
        assert!(
            text.starts_with(
                "At this rate you will spend $130.00 by Dec 31 — more than the $100.00 budget"
            ),
            "{text}"
        );
        let idle = budget(0.0, 0.0, 100.0);
        assert_eq!(projection(&idle).0, "Nothing spent in this period yet.");
    }
}
