//! When will a window run out at the current rate? From the last few minutes
//! of per-minute usage: the rate, then the time until the window's count
//! reaches its limit; flagged when that comes before the window resets.

use crate::ui::components::icon::{Icon, IconName};
use crate::ui::components::windows::WindowKind;
use crate::ui::format::{countdown, rate};
use crate::wire::{MinuteUsage, WindowUsage};
use leptos::prelude::*;

/// Minutes of history the rate is taken over (the current minute included).
pub const RATE_MINUTES: u64 = 5;

#[derive(Clone, Debug, PartialEq)]
pub enum Outlook {
    /// Nothing used recently.
    Idle,
    /// At this rate the window never fills (a minute window holds about one
    /// minute's worth).
    Holds,
    /// Already at or over the limit.
    AtLimit,
    /// Fills in `in_s` seconds; `before_reset` when that is sooner than the
    /// window's oldest usage leaving.
    RunsOut { in_s: f64, before_reset: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub kind: WindowKind,
    pub rate_per_min: f64,
    pub outlook: Outlook,
}

impl Prediction {
    pub fn flagged(&self) -> bool {
        matches!(
            self.outlook,
            Outlook::AtLimit
                | Outlook::RunsOut {
                    before_reset: true,
                    ..
                }
        )
    }
}

/// The rate per minute over the last [`RATE_MINUTES`] minutes up to `now_ms`.
pub fn recent_rate(kind: WindowKind, history: &[MinuteUsage], now_ms: u64) -> f64 {
    let now_s = now_ms / 1000;
    let current_minute = now_s - now_s % 60;
    let from = current_minute.saturating_sub((RATE_MINUTES - 1) * 60);
    let total: u64 = history
        .iter()
        .filter(|m| m.minute_start >= from && m.minute_start <= current_minute)
        .map(|m| kind.in_minute(m))
        .sum();
    // Four whole minutes plus the elapsed part of this one (at least a second).
    let span_s = ((RATE_MINUTES - 1) * 60 + (now_s % 60).max(1)) as f64;
    total as f64 * 60.0 / span_s
}

pub fn predict(
    kind: WindowKind,
    usage: &WindowUsage,
    history: &[MinuteUsage],
    now_ms: u64,
) -> Prediction {
    let rate_per_min = recent_rate(kind, history, now_ms);
    let outlook = if usage.limit == 0 || usage.current >= usage.limit {
        Outlook::AtLimit
    } else if rate_per_min <= 0.0 {
        Outlook::Idle
    } else if kind.is_minute() && rate_per_min < usage.limit as f64 {
        // A minute window settles at about one minute of traffic.
        Outlook::Holds
    } else {
        let room = (usage.limit - usage.current) as f64;
        let in_s = room / (rate_per_min / 60.0);
        Outlook::RunsOut {
            in_s,
            before_reset: usage.current > 0 && in_s < usage.resets_in_s,
        }
    };
    Prediction {
        kind,
        rate_per_min,
        outlook,
    }
}

/// One window's prediction, as the dashboard writes it under its meter.
#[component]
pub fn PredictionLine(prediction: Prediction, resets_in_s: f64) -> impl IntoView {
    let flagged = prediction.flagged();
    let per_min = format!("{}/min", rate(prediction.rate_per_min));
    let text = match prediction.outlook {
        Outlook::Idle => "Nothing used in the last 5 minutes.".to_string(),
        Outlook::Holds => format!("At {per_min} this window holds under its limit."),
        Outlook::AtLimit => "At the limit now.".to_string(),
        Outlook::RunsOut {
            in_s,
            before_reset: true,
        } => format!(
            "Runs out in ~{} at {per_min} — before it resets (in {}).",
            countdown(in_s),
            countdown(resets_in_s)
        ),
        Outlook::RunsOut { in_s, .. } => format!(
            "Would run out in ~{} at {per_min}, after the window resets.",
            countdown(in_s)
        ),
    };
    view! {
        <p
            class=if flagged { "prediction prediction-flagged" } else { "prediction" }
            data-testid="prediction"
            data-window=prediction.kind.slug()
            data-flagged=flagged.to_string()
        >
            <Icon name=if flagged { IconName::Warning } else { IconName::Trend }/>" "
            {flagged.then_some(view! { <span class="visually-hidden">"Warning: "</span> })}
            {text}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(start: u64, requests: u64, tokens: u64) -> MinuteUsage {
        MinuteUsage {
            minute_start: start,
            requests,
            tokens,
        }
    }

    fn usage(current: u64, limit: u64, resets_in_s: f64) -> WindowUsage {
        WindowUsage {
            current,
            reserved: 0,
            limit,
            percentage: current as f64 * 100.0 / limit as f64,
            resets_in_s,
        }
    }

    // 10:00:30 on some day: the current minute started 30 s ago.
    const NOW_MS: u64 = 1_800_000_030_000;
    const MINUTE: u64 = 1_800_000_000;

    #[test]
    fn rate_covers_four_minutes_and_the_current_part() {
        let history = vec![
            minute(MINUTE - 600, 1000, 0), // too old
            minute(MINUTE - 240, 60, 0),
            minute(MINUTE - 60, 60, 0),
            minute(MINUTE, 150, 0),
        ];
        // 270 requests over 4.5 minutes.
        let rate = recent_rate(WindowKind::RequestsPerDay, &history, NOW_MS);
        assert!((rate - 60.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn day_window_runs_out_before_it_resets() {
        let history = vec![minute(MINUTE, 45, 0)];
        // 45 requests in 4.5 min = 10/min; 900 of 1000 used: 100 left = 10 min.
        let p = predict(
            WindowKind::RequestsPerDay,
            &usage(900, 1000, 3600.0),
            &history,
            NOW_MS,
        );
        match p.outlook {
            Outlook::RunsOut { in_s, before_reset } => {
                assert!((in_s - 600.0).abs() < 1e-6, "{in_s}");
                assert!(before_reset);
            }
            other => panic!("{other:?}"),
        }
        assert!(p.flagged());
        // The same rate with the window resetting sooner is not flagged.
        let p = predict(
            WindowKind::RequestsPerDay,
            &usage(900, 1000, 60.0),
            &history,
            NOW_MS,
        );
        assert!(!p.flagged());
    }

    #[test]
    fn minute_window_under_its_limit_holds_and_idle_is_idle() {
        let history = vec![minute(MINUTE, 9, 900)];
        let p = predict(
            WindowKind::RequestsPerMinute,
            &usage(2, 500, 30.0),
            &history,
            NOW_MS,
        );
        assert_eq!(p.outlook, Outlook::Holds);
        let p = predict(WindowKind::TokensPerDay, &usage(0, 500, 0.0), &[], NOW_MS);
        assert_eq!(p.outlook, Outlook::Idle);
        let p = predict(
            WindowKind::RequestsPerMinute,
            &usage(5, 5, 30.0),
            &history,
            NOW_MS,
        );
        assert_eq!(p.outlook, Outlook::AtLimit);
        assert!(p.flagged());
    }

    #[test]
    fn minute_window_over_its_rate_runs_out() {
        // 4.5 min at 12/min; limit 10/min with 6 used: 4 left at 0.2/s = 20 s.
        let history = vec![minute(MINUTE, 54, 0)];
        let p = predict(
            WindowKind::RequestsPerMinute,
            &usage(6, 10, 45.0),
            &history,
            NOW_MS,
        );
        match p.outlook {
            Outlook::RunsOut { in_s, before_reset } => {
                assert!((in_s - 20.0).abs() < 1e-6);
                assert!(before_reset);
            }
            other => panic!("{other:?}"),
        }
    }
}
