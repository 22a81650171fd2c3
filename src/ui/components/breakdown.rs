//! Today's usage and spend by model or by end user: the snapshot's top rows
//! as a table (name, requests, tokens, cost, and how full its own limit is
//! when one covers it).

use crate::ui::format::{count, usd};
use crate::wire::{QuotaSnapshot, UsageBreakdown, BREAKDOWN_TOP};
use leptos::prelude::*;

/// Which breakdown of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Model,
    User,
}

impl Dimension {
    pub fn title(self) -> &'static str {
        match self {
            Dimension::Model => "By model",
            Dimension::User => "By user",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Dimension::Model => "Model",
            Dimension::User => "User",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::User => "user",
        }
    }

    fn rows(self, snapshot: &QuotaSnapshot) -> Vec<UsageBreakdown> {
        let rows = match self {
            Dimension::Model => &snapshot.by_model,
            Dimension::User => &snapshot.by_user,
        };
        rows.iter().take(BREAKDOWN_TOP).cloned().collect()
    }
}

/// "42%" for a row's fullest limit, "—" when no rule covers it.
pub fn limit_text(row: &UsageBreakdown) -> String {
    row.limit_percentage
        .map_or_else(|| "—".to_string(), |p| format!("{p:.0}%"))
}

/// The table of one dimension of a live snapshot.
#[component]
pub fn BreakdownTable(
    #[prop(into)] snapshot: Signal<QuotaSnapshot>,
    dimension: Dimension,
) -> impl IntoView {
    let rows = Memo::new(move |_| snapshot.with(|s| dimension.rows(s)));
    let caption_id =
        snapshot.with_untracked(|s| format!("by-{}-{}", dimension.slug(), s.workspace_id));
    view! {
        <div class="breakdown" data-testid="breakdown" data-dimension=dimension.slug()>
            <h3 id=caption_id.clone()>
                {dimension.title()}
                <span class="muted breakdown-when">" · today, top "{BREAKDOWN_TOP}</span>
            </h3>
            <div class="table-wrap">
                <table class="data-table" aria-labelledby=caption_id>
                    <thead>
                        <tr>
                            <th scope="col">{dimension.column()}</th>
                            <th scope="col" class="num">"Requests"</th>
                            <th scope="col" class="num">"Tokens"</th>
                            <th scope="col" class="num">"Cost"</th>
                            <th scope="col" class="num">"Of its limit"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            let rows = rows.get();
                            if rows.is_empty() {
                                return view! {
                                    <tr><td colspan="5" class="muted">"No calls today."</td></tr>
                                }
                                .into_any();
                            }
                            rows.into_iter()
                                .map(|row| {
                                    let high = row.limit_percentage.is_some_and(|p| p >= 80.0);
                                    view! {
                                        <tr data-testid="breakdown-row" data-name=row.name.clone()>
                                            <th scope="row" class="breakdown-name">{row.name.clone()}</th>
                                            <td class="num">{count(row.requests)}</td>
                                            <td class="num">{count(row.tokens)}</td>
                                            <td class="num">{usd(row.spent_usd)}</td>
                                            <td class=if high { "num limit-high" } else { "num" }>{limit_text(&row)}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                                .into_any()
                        }}
                    </tbody>
                </table>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_share_only_where_a_rule_covers_the_row() {
        let mut row = UsageBreakdown {
            name: "gpt-4o".into(),
            requests: 2,
            tokens: 200,
            spent_usd: 0.5,
            limit_percentage: None,
        };
        assert_eq!(limit_text(&row), "—");
        row.limit_percentage = Some(42.4);
        assert_eq!(limit_text(&row), "42%");
    }
}
