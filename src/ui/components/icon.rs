//! Small inline SVG icons, drawn by the app so they look the same everywhere
//! (no emoji font needed). Decorative: always `aria-hidden`, next to text.

use crate::wire::QuotaStatus;
use leptos::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IconName {
    Check,
    Warning,
    Bolt,
    Timer,
    Blocked,
    Pause,
    Info,
    Key,
    Workspace,
    Trend,
}

impl IconName {
    pub fn for_status(status: QuotaStatus) -> Self {
        match status {
            QuotaStatus::Normal => IconName::Check,
            QuotaStatus::Warning => IconName::Warning,
            QuotaStatus::Degraded => IconName::Bolt,
            QuotaStatus::RateLimited => IconName::Timer,
            QuotaStatus::QuotaExceeded => IconName::Blocked,
        }
    }

    /// Stroked path data on a 24 × 24 grid.
    fn paths(self) -> &'static [&'static str] {
        match self {
            IconName::Check => &[
                "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18",
                "M8 12.5l2.7 2.7L16.2 9.6",
            ],
            IconName::Warning => &["M12 3.2L2.4 20.2h19.2z", "M12 9.8v4.6", "M12 17.3v.2"],
            IconName::Bolt => &["M13.2 2.5L5 13.6h6.2l-1.4 7.9 8.3-11.2h-6.3z"],
            IconName::Timer => &[
                "M12 6.2a7.6 7.6 0 1 0 0 15.2a7.6 7.6 0 1 0 0-15.2",
                "M12 13.8V10",
                "M9.3 2.6h5.4",
                "M18.2 6.6l1.3-1.3",
            ],
            IconName::Blocked => &["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18", "M5.7 5.7l12.6 12.6"],
            IconName::Pause => &["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18", "M10 9v6", "M14 9v6"],
            IconName::Info => &[
                "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18",
                "M12 11v5.5",
                "M12 7.6v.2",
            ],
            IconName::Key => &[
                "M8 10.5a4.5 4.5 0 1 0 0 9a4.5 4.5 0 1 0 0-9",
                "M11.3 11.8l8.2-8.2",
                "M16.5 6.6l2.5 2.5",
                "M14.4 8.7l1.8 1.8",
            ],
            IconName::Workspace => &["M4 4.5h16v15H4z", "M4 9h16", "M9 9v10.5"],
            IconName::Trend => &["M3.5 17l6-6 4 4 7-7.5", "M15 7.5h5.5V13"],
        }
    }
}

#[component]
pub fn Icon(name: IconName) -> impl IntoView {
    view! {
        <svg
            class="icon"
            viewBox="0 0 24 24"
            width="1em"
            height="1em"
            fill="none"
            stroke="currentColor"
            stroke-width="2.2"
            stroke-linecap="round"
            stroke-linejoin="round"
            aria-hidden="true"
            focusable="false"
        >
            {name.paths().iter().map(|d| view! { <path d=*d/> }).collect_view()}
        </svg>
    }
}

#[component]
pub fn StatusIcon(status: QuotaStatus) -> impl IntoView {
    view! { <Icon name=IconName::for_status(status)/> }
}
