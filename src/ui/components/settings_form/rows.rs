//! The settings form's reactive state (one signal per input, rows that can
//! be added and removed) and the inputs for the four windows, the budgets,
//! and the per-model and per-user rules. Each input names the field the API
//! would refuse (`budgets[1].amount_usd`), so a refusal lands beside it.

use super::draft::{BudgetDraft, ScopedDraft, SettingsDraft, WindowsDraft, WINDOWS};
use crate::ui::components::form_field::{dom_id, Choice, Field, FormErrors, InputKind};
use leptos::prelude::*;

/// The four windows as the form labels them, in [`WINDOWS`] order.
const WINDOW_LABELS: [&str; 4] = [
    "Requests per minute",
    "Requests per day",
    "Tokens per minute",
    "Tokens per day",
];

const PERIODS: &[(&str, &str)] = &[
    ("day", "Day"),
    ("week", "Week (Mon–Sun)"),
    ("month", "Month"),
    ("custom", "Custom"),
];
const KINDS: &[(&str, &str)] = &[("hard", "Hard: refuse calls"), ("soft", "Soft: warn only")];

#[derive(Clone, Copy)]
pub struct WindowsState([RwSignal<String>; 4]);

impl WindowsState {
    pub fn new(d: &WindowsDraft) -> Self {
        Self([
            RwSignal::new(d.requests_per_minute.clone()),
            RwSignal::new(d.requests_per_day.clone()),
            RwSignal::new(d.tokens_per_minute.clone()),
            RwSignal::new(d.tokens_per_day.clone()),
        ])
    }

    pub fn set(&self, d: &WindowsDraft) {
        let [a, b, c, e] = self.0;
        a.set(d.requests_per_minute.clone());
        b.set(d.requests_per_day.clone());
        c.set(d.tokens_per_minute.clone());
        e.set(d.tokens_per_day.clone());
    }

    pub fn draft(&self) -> WindowsDraft {
        let [a, b, c, e] = self.0.map(|s| s.get_untracked());
        WindowsDraft {
            requests_per_minute: a,
            requests_per_day: b,
            tokens_per_minute: c,
            tokens_per_day: e,
        }
    }
}

#[derive(Clone, Copy)]
pub struct ScopedState {
    windows: WindowsState,
    budget: RwSignal<String>,
}

impl ScopedState {
    fn new(d: &ScopedDraft) -> Self {
        Self {
            windows: WindowsState::new(&d.windows),
            budget: RwSignal::new(d.budget_usd.clone()),
        }
    }

    fn set(&self, d: &ScopedDraft) {
        self.windows.set(&d.windows);
        self.budget.set(d.budget_usd.clone());
    }

    fn draft(&self) -> ScopedDraft {
        ScopedDraft {
            windows: self.windows.draft(),
            budget_usd: self.budget.get_untracked(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct BudgetRow {
    key: u64,
    period: RwSignal<String>,
    amount: RwSignal<String>,
    kind: RwSignal<String>,
    anchor: RwSignal<String>,
    length: RwSignal<String>,
}

#[derive(Clone, Copy)]
pub struct NamedRow {
    key: u64,
    name: RwSignal<String>,
    limits: ScopedState,
}

/// Every input of the form.
#[derive(Clone, Copy)]
pub struct FormState {
    pub limits: WindowsState,
    pub time_zone: RwSignal<String>,
    pub budgets: RwSignal<Vec<BudgetRow>>,
    pub models: RwSignal<Vec<NamedRow>>,
    pub user_default: ScopedState,
    pub users: RwSignal<Vec<NamedRow>>,
    /// Row keys: counted from 0 for the rows first shown, so the server and
    /// the hydrating browser give them the same ids.
    next_key: StoredValue<u64>,
}

impl FormState {
    pub fn new(d: &SettingsDraft) -> Self {
        let state = Self {
            limits: WindowsState::new(&d.limits),
            time_zone: RwSignal::new(d.time_zone.clone()),
            budgets: RwSignal::new(Vec::new()),
            models: RwSignal::new(Vec::new()),
            user_default: ScopedState::new(&d.user_default),
            users: RwSignal::new(Vec::new()),
            next_key: StoredValue::new(0),
        };
        state.set_rows(d);
        state
    }

    /// Shows `d` (the settings just saved or read).
    pub fn load(&self, d: &SettingsDraft) {
        self.limits.set(&d.limits);
        self.time_zone.set(d.time_zone.clone());
        self.user_default.set(&d.user_default);
        self.set_rows(d);
    }

    fn set_rows(&self, d: &SettingsDraft) {
        let budgets = d.budgets.iter().map(|b| self.budget_row(b)).collect();
        let models = d.models.iter().map(|(n, l)| self.named_row(n, l)).collect();
        let users = d.users.iter().map(|(n, l)| self.named_row(n, l)).collect();
        self.budgets.set(budgets);
        self.models.set(models);
        self.users.set(users);
    }

    fn key(&self) -> u64 {
        self.next_key
            .try_update_value(|k| {
                *k += 1;
                *k - 1
            })
            .unwrap_or_default()
    }

    fn budget_row(&self, b: &BudgetDraft) -> BudgetRow {
        BudgetRow {
            key: self.key(),
            period: RwSignal::new(b.period.clone()),
            amount: RwSignal::new(b.amount_usd.clone()),
            kind: RwSignal::new(b.kind.clone()),
            anchor: RwSignal::new(b.anchor.clone()),
            length: RwSignal::new(b.length_days.clone()),
        }
    }

    fn named_row(&self, name: &str, limits: &ScopedDraft) -> NamedRow {
        NamedRow {
            key: self.key(),
            name: RwSignal::new(name.to_string()),
            limits: ScopedState::new(limits),
        }
    }

    /// What the inputs hold now.
    pub fn draft(&self) -> SettingsDraft {
        let named = |rows: &Vec<NamedRow>| {
            rows.iter()
                .map(|r| (r.name.get_untracked(), r.limits.draft()))
                .collect()
        };
        SettingsDraft {
            limits: self.limits.draft(),
            time_zone: self.time_zone.get_untracked(),
            budgets: self.budgets.with_untracked(|rows| {
                rows.iter()
                    .map(|r| BudgetDraft {
                        period: r.period.get_untracked(),
                        amount_usd: r.amount.get_untracked(),
                        kind: r.kind.get_untracked(),
                        anchor: r.anchor.get_untracked(),
                        length_days: r.length.get_untracked(),
                    })
                    .collect()
            }),
            models: self.models.with_untracked(named),
            user_default: self.user_default.draft(),
            users: self.users.with_untracked(named),
        }
    }
}

/// The four window inputs; `prefix` is the API's name of what they limit
/// (`limits`, `model_limits.gpt-4o`).
#[component]
pub fn WindowInputs(
    id: String,
    windows: WindowsState,
    #[prop(into)] prefix: Signal<String>,
    errors: FormErrors,
    #[prop(optional)] placeholder: &'static str,
) -> impl IntoView {
    (0..4)
        .map(|i| {
            view! {
                <Field
                    id=dom_id(&[&id, WINDOWS[i]])
                    label=WINDOW_LABELS[i]
                    value=windows.0[i]
                    field=Signal::derive(move || format!("{}.{}", prefix.get(), WINDOWS[i]))
                    errors
                    kind=InputKind::Whole
                    placeholder
                />
            }
        })
        .collect_view()
}

/// Windows and a daily spend cap, for one model or user.
#[component]
pub fn ScopedInputs(
    id: String,
    limits: ScopedState,
    #[prop(into)] prefix: Signal<String>,
    errors: FormErrors,
) -> impl IntoView {
    view! {
        <WindowInputs id=id.clone() windows=limits.windows prefix errors placeholder="no limit"/>
        <Field
            id=dom_id(&[&id, "budget"])
            label="Daily budget (USD)"
            value=limits.budget
            field=Signal::derive(move || format!("{}.budget_usd", prefix.get()))
            errors
            kind=InputKind::Dollars
            placeholder="no budget"
        />
    }
}

#[component]
pub fn BudgetRows(state: FormState, errors: FormErrors) -> impl IntoView {
    let rows = state.budgets;
    let add = move |_| {
        let row = state.budget_row(&BudgetDraft::default());
        rows.update(|r| r.push(row));
    };
    view! {
        <For each=move || rows.get() key=|r| r.key let:row>
            {
                let index = move || rows.with(|r| r.iter().position(|x| x.key == row.key).unwrap_or(0));
                let at = move |name: &'static str| Signal::derive(move || format!("budgets[{}].{name}", index()));
                let id = format!("budget-{}", row.key);
                let remove = move |_| rows.update(|r| r.retain(|x| x.key != row.key));
                view! {
                    <fieldset class="settings-row">
                        <legend>{move || format!("Budget {}", index() + 1)}</legend>
                        <Choice id=dom_id(&[&id, "period"]) label="Period" value=row.period options=PERIODS field=at("period") errors/>
                        <Field id=dom_id(&[&id, "amount"]) label="Amount (USD)" value=row.amount field=at("amount_usd") errors kind=InputKind::Dollars required=true/>
                        <Choice id=dom_id(&[&id, "kind"]) label="Kind" value=row.kind options=KINDS field=at("kind") errors/>
                        <Show when=move || row.period.get() == "custom">
                            <Field id=dom_id(&[&id, "anchor"]) label="Starts on" value=row.anchor field=at("anchor") errors kind=InputKind::Date/>
                            <Field id=dom_id(&[&id, "length"]) label="Length (days)" value=row.length field=at("length_days") errors kind=InputKind::Whole/>
                        </Show>
                        <button type="button" class="button-small button-quiet row-remove" on:click=remove>
                            "Remove"<span class="visually-hidden">{move || format!(" budget {}", index() + 1)}</span>
                        </button>
                    </fieldset>
                }
            }
        </For>
        <button type="button" class="button-small button-quiet" on:click=add>"Add budget"</button>
    }
}

/// Rows of limits by name: models (`model_limits.<name>`) or users
/// (`user_limits.overrides.<id>`).
#[component]
pub fn NamedRows(
    state: FormState,
    rows: RwSignal<Vec<NamedRow>>,
    /// "Model" or "User": the legend and the buttons say it.
    noun: &'static str,
    name_label: &'static str,
    /// The API's name of the map (`model_limits`).
    map: &'static str,
    errors: FormErrors,
) -> impl IntoView {
    let add = move |_| {
        let row = state.named_row("", &ScopedDraft::default());
        rows.update(|r| r.push(row));
    };
    view! {
        <For each=move || rows.get() key=|r| r.key let:row>
            {
                let index = move || rows.with(|r| r.iter().position(|x| x.key == row.key).unwrap_or(0));
                let prefix = Signal::derive(move || format!("{map}.{}", row.name.get().trim()));
                let id = format!("{}-{}", noun.to_lowercase(), row.key);
                let remove = move |_| rows.update(|r| r.retain(|x| x.key != row.key));
                view! {
                    <fieldset class="settings-row">
                        <legend>{move || format!("{noun} {}", index() + 1)}</legend>
                        <Field id=dom_id(&[&id, "name"]) label=name_label value=row.name field=prefix errors required=true/>
                        <ScopedInputs id=id.clone() limits=row.limits prefix errors/>
                        <button type="button" class="button-small button-quiet row-remove" on:click=remove>
                            "Remove"<span class="visually-hidden">{move || format!(" {} {}", noun.to_lowercase(), index() + 1)}</span>
                        </button>
                    </fieldset>
                }
            }
        </For>
        <button type="button" class="button-small button-quiet" on:click=add>{format!("Add {}", noun.to_lowercase())}</button>
    }
}
