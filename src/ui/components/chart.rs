//! Per-minute usage over the last hour as an SVG bar chart, drawn by the app:
//! one bar per minute, the per-minute limit as a dashed line when it is on the
//! scale, and a text summary for screen readers.

use crate::ui::components::windows::WindowKind;
use crate::ui::format::{count, utc_hm};
use crate::wire::MinuteUsage;
use leptos::prelude::*;

// The drawing's own units; it is stretched to the figure's width (text stays
// in HTML around it, so it reads at any size).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const TOP: f64 = 4.0;

/// A round number ≥ `value` for the top of the scale: 1, 2, 5 × 10ⁿ.
pub fn nice_ceiling(value: u64) -> u64 {
    let value = value.max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= value {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
        if step == u64::MAX {
            return u64::MAX;
        }
    }
}

#[component]
pub fn UsageChart(
    /// `RequestsPerMinute` or `TokensPerMinute`: what each bar counts.
    kind: WindowKind,
    history: Vec<MinuteUsage>,
    /// The per-minute limit, drawn when on the scale.
    limit: u64,
    /// Unique on the page (for `aria-labelledby`).
    id: String,
) -> impl IntoView {
    let values: Vec<u64> = history.iter().map(|m| kind.in_minute(m)).collect();
    let peak = values.iter().copied().max().unwrap_or(0);
    let peak_at = history
        .iter()
        .zip(&values)
        .filter(|(_, v)| **v == peak && peak > 0)
        .map(|(m, _)| utc_hm(m.minute_start))
        .next_back();
    let latest = values.last().copied().unwrap_or(0);
    // Show the limit when it is within reach of the data (otherwise it would
    // flatten every bar to nothing).
    let limit_on_scale = limit > 0 && limit <= peak.saturating_mul(2).max(4);
    let top = nice_ceiling(if limit_on_scale {
        peak.max(limit)
    } else {
        peak
    });
    let plot_w = WIDTH;
    let plot_h = HEIGHT - TOP;
    let y = move |v: u64| TOP + plot_h - (v as f64 / top as f64) * plot_h;
    let n = values.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot - 1.0).max(1.0);

    let unit = kind.unit();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    let title = format!("{} per minute, last hour (UTC)", capitalise(unit));
    let desc = match peak_at {
        Some(at) => format!(
            "Peak {} {unit} in the minute of {at}; {} in the current minute. Limit {} per minute.",
            count(peak),
            count(latest),
            count(limit)
        ),
        None => format!(
            "No {unit} in the last hour. Limit {} per minute.",
            count(limit)
        ),
    };
    let bars = history
        .iter()
        .zip(values.iter().copied())
        .enumerate()
        .filter(|(_, (_, v))| *v > 0)
        .map(|(i, (minute, v))| {
            let x = i as f64 * slot;
            let top_y = y(v);
            let over = limit > 0 && v >= limit;
            view! {
                <rect
                    class=if over { "bar bar-over" } else { "bar" }
                    x=format!("{x:.1}")
                    y=format!("{top_y:.1}")
                    width=format!("{bar_w:.1}")
                    height=format!("{:.1}", (TOP + plot_h - top_y).max(1.0))
                >
                    <title>{format!("{} UTC — {} {unit}", utc_hm(minute.minute_start), count(v))}</title>
                </rect>
            }
        })
        .collect_view();
    let first = history
        .first()
        .map(|m| utc_hm(m.minute_start))
        .unwrap_or_default();
    let last = history
        .last()
        .map(|m| utc_hm(m.minute_start))
        .unwrap_or_default();
    let limit_line = limit_on_scale.then(|| {
        let ly = format!("{:.1}", y(limit));
        view! {
            <line class="limit-line" x1="0" x2=WIDTH.to_string() y1=ly.clone() y2=ly vector-effect="non-scaling-stroke"/>
        }
    });
    let limit_legend = if limit_on_scale {
        format!("dashed line: limit {} per minute", count(limit))
    } else {
        format!("limit {} per minute (off this scale)", count(limit))
    };
    let labelled_by = format!("{title_id} {desc_id}");
    view! {
        <figure class="chart" data-testid="usage-chart" data-kind=kind.slug()>
            <figcaption>
                <strong>{title.clone()}</strong>
                <span class="muted chart-legend">{limit_legend}</span>
            </figcaption>
            <div class="chart-body">
                <div class="chart-y" aria-hidden="true">
                    <span>{count(top)}</span>
                    <span>"0"</span>
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
                    {limit_line}
                </svg>
            </div>
            <div class="chart-x" aria-hidden="true">
                <span>{first}</span>
                <span>{last}" now"</span>
            </div>
            <p class="chart-summary">{desc}</p>
        </figure>
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::nice_ceiling;

    #[test]
    fn scale_tops_are_round() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(150_000), 200_000);
        assert_eq!(nice_ceiling(500), 500);
    }
}
