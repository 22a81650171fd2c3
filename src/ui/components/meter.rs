//! Quota meters: used / limit for each window, how full, and when the oldest
//! usage leaves (ticking down in the browser).

use crate::ui::components::icon::{Icon, IconName};
use crate::ui::components::windows::WindowKind;
use crate::ui::format::{count, countdown};
use crate::ui::hooks::use_ticker::use_ticker;
use crate::wire::{QuotaSnapshot, WindowUsage};
use leptos::prelude::*;

/// `ok`, `high` (at the warning share) or `full`.
pub fn fill_level(usage: &WindowUsage) -> &'static str {
    if usage.percentage >= 100.0 {
        "full"
    } else if usage.percentage >= 80.0 {
        "high"
    } else {
        "ok"
    }
}

/// The share of the limit held by reservations, in percent, drawn after
/// the used share and never past the end of the bar.
pub fn reserved_share(usage: &WindowUsage) -> f64 {
    if usage.limit == 0 || usage.reserved == 0 {
        return 0.0;
    }
    let used = usage.percentage.clamp(0.0, 100.0);
    let held = usage.reserved as f64 * 100.0 / usage.limit as f64;
    held.min(100.0 - used).max(0.0)
}

fn level_text(level: &str) -> &'static str {
    match level {
        "full" => "at the limit",
        "high" => "high",
        _ => "",
    }
}

/// The four meters of a snapshot that may change (live page).
#[component]
pub fn Meters(
    #[prop(into)] snapshot: Signal<QuotaSnapshot>,
    /// Browser time the snapshot arrived; with the page's clock, resets tick down.
    #[prop(into)]
    received_at: Signal<Option<f64>>,
) -> impl IntoView {
    view! {
        <div class="meters">
            {WindowKind::ALL
                .into_iter()
                .map(|kind| {
                    let usage = Signal::derive(move || snapshot.with(|s| kind.of(s)));
                    view! { <Meter kind usage received_at/> }
                })
                .collect_view()}
        </div>
    }
}

/// One window's meter; its reset counts down by the page's clock (context).
#[component]
pub fn Meter(
    kind: WindowKind,
    #[prop(into)] usage: Signal<WindowUsage>,
    #[prop(into)] received_at: Signal<Option<f64>>,
) -> impl IntoView {
    let clock = use_ticker();
    let level = move || usage.with(fill_level);
    let label_id = format!("meter-{}", kind.slug());
    let resets = move || {
        let u = usage.get();
        if u.current == 0 {
            "empty".to_string()
        } else {
            let left = clock.left(received_at.get(), u.resets_in_s);
            if left > 0.0 {
                format!("oldest leaves in {}", countdown(left))
            } else {
                "easing now".to_string()
            }
        }
    };
    view! {
        <div class=move || format!("meter meter-{}", level()) data-testid="meter" data-window=kind.slug()>
            <div class="meter-label">
                <span id=label_id.clone()>{kind.label()}</span>
                <span class="meter-figures" data-testid="meter-figures">
                    {move || format!("{} / {}", count(usage.get().current), count(usage.get().limit))}
                </span>
            </div>
            // Tokens held for calls still in flight: they count against the
            // limit (a call that would not fit is refused) but are not used yet.
            <div class="meter-reserved-note" data-testid="meter-reserved" hidden=move || usage.get().reserved == 0>
                {move || format!("+ {} reserved for calls in flight", count(usage.get().reserved))}
            </div>
            <div
                class="meter-track"
                role="meter"
                aria-labelledby=label_id
                aria-valuemin="0"
                aria-valuemax=move || usage.get().limit.to_string()
                aria-valuenow=move || usage.get().current.min(usage.get().limit).to_string()
                aria-valuetext=move || {
                    let u = usage.get();
                    let held = if u.reserved > 0 {
                        format!(", {} more reserved", count(u.reserved))
                    } else {
                        String::new()
                    };
                    format!("{} of {} {} ({:.0}%){held}", count(u.current), count(u.limit), kind.unit(), u.percentage)
                }
            >
                // An SVG width attribute rather than a `style`: the page's CSP
                // forbids inline styles, and attributes are not styles.
                <svg class="meter-bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                    <rect
                        class="meter-fill"
                        x="0"
                        y="0"
                        height="1"
                        width=move || format!("{:.1}", usage.get().percentage.clamp(0.0, 100.0))
                    ></rect>
                    <rect
                        class="meter-held"
                        data-testid="meter-held"
                        y="0"
                        height="1"
                        x=move || format!("{:.1}", usage.get().percentage.clamp(0.0, 100.0))
                        width=move || format!("{:.1}", reserved_share(&usage.get()))
                    ></rect>
                </svg>
            </div>
            <div class="meter-note">
                <span>{move || format!("{:.0}%", usage.get().percentage)}</span>
                <span class="meter-level">
                    {move || match level() {
                        "full" => Some(view! { <Icon name=IconName::Blocked/> }),
                        "high" => Some(view! { <Icon name=IconName::Warning/> }),
                        _ => None,
                    }}
                    {move || level_text(level())}
                </span>
                <span class="meter-reset">{resets}</span>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(current: u64, reserved: u64, limit: u64) -> WindowUsage {
        WindowUsage {
            current,
            reserved,
            limit,
            percentage: current as f64 * 100.0 / limit as f64,
            resets_in_s: 0.0,
        }
    }

    #[test]
    fn the_reserved_share_follows_the_used_one_and_stops_at_the_end() {
        assert_eq!(reserved_share(&usage(200, 300, 1000)), 30.0);
        assert_eq!(reserved_share(&usage(800, 500, 1000)), 20.0);
        assert_eq!(reserved_share(&usage(1200, 500, 1000)), 0.0);
        assert_eq!(reserved_share(&usage(0, 0, 1000)), 0.0);
        assert_eq!(reserved_share(&usage(0, 10, 0)), 0.0);
    }
}
