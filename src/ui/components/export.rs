//! "Export CSV": download links to `GET /api/quota/usage.csv` — per minute
//! for the last 24 hours, per day for each budget's current period, and per
//! day for the last 30 days. The admin's links name the workspace.

use crate::ui::components::spend::period_name;
use crate::ui::format::{month_day, parse_day};
use crate::wire::QuotaSnapshot;
use leptos::prelude::*;

pub const EXPORT_PATH: &str = "/api/quota/usage.csv";

#[derive(Clone, Debug, PartialEq)]
pub struct ExportLink {
    pub label: String,
    pub href: String,
    /// The name the browser saves it under.
    pub file: String,
    /// For tests and styling: `minute`, `period` or `days`.
    pub kind: &'static str,
}

/// The links for `snapshot`; `workspace` is set for the admin (a workspace
/// session exports its own).
pub fn export_links(snapshot: &QuotaSnapshot, workspace: Option<&str>) -> Vec<ExportLink> {
    let id = &snapshot.workspace_id;
    let target = workspace
        .map(|w| format!("&workspace_id={}", encode(w)))
        .unwrap_or_default();
    let mut links = vec![ExportLink {
        label: "Per minute, last 24 hours".into(),
        href: format!("{EXPORT_PATH}?granularity=minute{target}"),
        file: format!("{id}-per-minute.csv"),
        kind: "minute",
    }];
    let mut periods: Vec<(String, String)> = Vec::new();
    for budget in &snapshot.budgets {
        let (Some(first), Some(last)) = (parse_day(&budget.first_day), parse_day(&budget.last_day))
        else {
            continue;
        };
        let bounds = (budget.first_day.clone(), budget.last_day.clone());
        // Two budgets of one period (a soft and a hard) share one export.
        if periods.contains(&bounds) {
            continue;
        }
        let range = if first == last {
            month_day(first)
        } else {
            format!("{} – {}", month_day(first), month_day(last))
        };
        links.push(ExportLink {
            label: format!(
                "Per day, the {} budget's period ({range})",
                period_name(budget.period).to_lowercase()
            ),
            href: format!(
                "{EXPORT_PATH}?granularity=day&from={}&to={}{target}",
                bounds.0, bounds.1
            ),
            file: format!("{id}-per-day-{}-to-{}.csv", bounds.0, bounds.1),
            kind: "period",
        });
        periods.push(bounds);
    }
    // No dates: the server's default is the 30 days to today in the
    // workspace's own zone, which the browser does not know without a budget.
    links.push(ExportLink {
        label: "Per day, last 30 days".into(),
        href: format!("{EXPORT_PATH}?granularity=day{target}"),
        file: format!("{id}-per-day-last-30-days.csv"),
        kind: "days",
    });
    links
}

/// Percent-encoding for a query value (workspace ids are plain already;
/// this keeps the link right whatever they hold).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The export control of a live snapshot.
#[component]
pub fn ExportLinks(
    #[prop(into)] snapshot: Signal<QuotaSnapshot>,
    /// The workspace to name in the query (the admin's view).
    workspace: Option<String>,
) -> impl IntoView {
    let links = Memo::new(move |_| snapshot.with(|s| export_links(s, workspace.as_deref())));
    let heading_id = snapshot.with_untracked(|s| format!("export-{}", s.workspace_id));
    view! {
        <div class="export" role="group" aria-labelledby=heading_id.clone() data-testid="export">
            <h3 id=heading_id.clone()>"Export CSV"</h3>
            <ul class="export-links">
                {move || {
                    links
                        .get()
                        .into_iter()
                        .map(|link| view! {
                            <li>
                                <a
                                    class="export-link"
                                    href=link.href
                                    download=link.file
                                    rel="external"
                                    data-testid="export-link"
                                    data-kind=link.kind
                                >
                                    {link.label}
                                </a>
                            </li>
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::components::spend::tests::budget;

    fn snapshot() -> QuotaSnapshot {
        serde_json::from_value(serde_json::json!({
            "workspace_id": "acme",
            "status": "NORMAL",
            "message": "",
            "requests_per_minute": {"current": 0, "limit": 1, "percentage": 0.0, "resets_in_s": 0.0},
            "requests_per_day": {"current": 0, "limit": 1, "percentage": 0.0, "resets_in_s": 0.0},
            "tokens_per_minute": {"current": 0, "limit": 1, "percentage": 0.0, "resets_in_s": 0.0},
            "tokens_per_day": {"current": 0, "limit": 1, "percentage": 0.0, "resets_in_s": 0.0},
            "retry_after_s": null,
            "last_error": null,
            "updated_at": "2026-12-12T10:00:00.000Z",
            "version": 1
        }))
        .expect("a snapshot")
    }

    #[test]
    fn minute_period_and_thirty_day_links() {
        let mut s = snapshot();
        let links = export_links(&s, None);
        let hrefs: Vec<_> = links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "/api/quota/usage.csv?granularity=minute",
                "/api/quota/usage.csv?granularity=day"
            ]
        );
        s.budgets = vec![budget(1.0, 0.0, 10.0), budget(1.0, 0.0, 20.0)];
        let links = export_links(&s, Some("acme"));
        assert_eq!(links.len(), 3, "one link for two budgets of one period");
        assert_eq!(
            links[1].href,
            "/api/quota/usage.csv?granularity=day&from=2026-12-01&to=2026-12-31&workspace_id=acme"
        );
        assert_eq!(
            links[1].label,
            "Per day, the monthly budget's period (Dec 1 – Dec 31)"
        );
        assert_eq!(
            links[0].href,
            "/api/quota/usage.csv?granularity=minute&workspace_id=acme"
        );
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
