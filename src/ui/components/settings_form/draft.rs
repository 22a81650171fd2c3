//! The settings form's content as text, the way the inputs hold it, and the
//! two conversions: from the settings the server answered, and into the one
//! patch that Save sends. Pure, so it is unit-tested without a browser.
//!
//! Only what text cannot be sent as is refused here ("abc" where a number
//! goes, a model named twice); everything else (ranges, dates, time zones)
//! is the server's to check, and its refusal names the same field paths as
//! these (`budgets[1].amount_usd`, `model_limits.gpt-4o.tokens_per_day`).
//!
//! A little over 400 lines: a quarter is the tests of the round trip and of
//! each refusal's field name, kept beside the conversions they pin down.

use crate::wire::{
    BudgetKindSpec, BudgetPeriod, BudgetSpec, LimitOverrides, ScopedLimits, SettingsPatch,
    UserLimitsSpec, WorkspaceSettingsView,
};
use std::collections::BTreeMap;

/// A field the form refused before sending, by the API's name for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftError {
    pub field: String,
    pub message: String,
}

fn refuse(field: String, message: &str) -> DraftError {
    DraftError {
        field,
        message: message.to_string(),
    }
}

/// The four windows of a limit, as text ("" for none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowsDraft {
    pub requests_per_minute: String,
    pub requests_per_day: String,
    pub tokens_per_minute: String,
    pub tokens_per_day: String,
}

/// The four windows' API names, in the order the form shows them.
pub const WINDOWS: [&str; 4] = [
    "requests_per_minute",
    "requests_per_day",
    "tokens_per_minute",
    "tokens_per_day",
];

impl WindowsDraft {
    fn from_values(values: [Option<u64>; 4]) -> Self {
        let text = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        Self {
            requests_per_minute: text(values[0]),
            requests_per_day: text(values[1]),
            tokens_per_minute: text(values[2]),
            tokens_per_day: text(values[3]),
        }
    }

    /// The windows as overrides of a workspace's limits (`None` where empty:
    /// kept as it is, or the server's default for a new workspace).
    pub fn overrides(&self, prefix: &str) -> Result<LimitOverrides, DraftError> {
        let [rpm, rpd, tpm, tpd] = self.values(prefix)?;
        Ok(LimitOverrides {
            requests_per_minute: rpm,
            requests_per_day: rpd,
            tokens_per_minute: tpm,
            tokens_per_day: tpd,
        })
    }

    /// Each window parsed (`None` where empty), named `{prefix}.{window}`.
    fn values(&self, prefix: &str) -> Result<[Option<u64>; 4], DraftError> {
        let texts = [
            &self.requests_per_minute,
            &self.requests_per_day,
            &self.tokens_per_minute,
            &self.tokens_per_day,
        ];
        let mut out = [None; 4];
        for (i, text) in texts.into_iter().enumerate() {
            out[i] = whole(text, format!("{prefix}.{}", WINDOWS[i]))?;
        }
        Ok(out)
    }
}

/// Per-model or per-user limits: the windows and a daily spend cap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopedDraft {
    pub windows: WindowsDraft,
    pub budget_usd: String,
}

impl ScopedDraft {
    fn from_limits(l: &ScopedLimits) -> Self {
        Self {
            windows: WindowsDraft::from_values([
                l.requests_per_minute,
                l.requests_per_day,
                l.tokens_per_minute,
                l.tokens_per_day,
            ]),
            budget_usd: l.budget_usd.map(dollars).unwrap_or_default(),
        }
    }

    fn to_limits(&self, prefix: &str) -> Result<ScopedLimits, DraftError> {
        let [rpm, rpd, tpm, tpd] = self.windows.values(prefix)?;
        Ok(ScopedLimits {
            requests_per_minute: rpm,
            requests_per_day: rpd,
            tokens_per_minute: tpm,
            tokens_per_day: tpd,
            budget_usd: amount(&self.budget_usd, format!("{prefix}.budget_usd"))?,
        })
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One spend budget. `period` and `kind` hold the API's words (`day`,
/// `hard`), as the selects do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetDraft {
    pub period: String,
    pub amount_usd: String,
    pub kind: String,
    pub anchor: String,
    pub length_days: String,
}

impl Default for BudgetDraft {
    fn default() -> Self {
        Self {
            period: "month".into(),
            amount_usd: String::new(),
            kind: "hard".into(),
            anchor: String::new(),
            length_days: String::new(),
        }
    }
}

/// The whole form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettingsDraft {
    pub limits: WindowsDraft,
    pub time_zone: String,
    pub budgets: Vec<BudgetDraft>,
    /// Model (family) name and its limits, in the order shown.
    pub models: Vec<(String, ScopedDraft)>,
    pub user_default: ScopedDraft,
    /// User id and its limits.
    pub users: Vec<(String, ScopedDraft)>,
}

impl SettingsDraft {
    pub fn from_view(view: &WorkspaceSettingsView) -> Self {
        let s = &view.settings;
        let l = view.limits;
        Self {
            limits: WindowsDraft::from_values([
                Some(l.requests_per_minute),
                Some(l.requests_per_day),
                Some(l.tokens_per_minute),
                Some(l.tokens_per_day),
            ]),
            time_zone: s.time_zone.clone().unwrap_or_else(|| "UTC".into()),
            budgets: s
                .budgets
                .iter()
                .flatten()
                .map(|b| BudgetDraft {
                    period: period_word(b.period).into(),
                    amount_usd: dollars(b.amount_usd),
                    kind: match b.kind {
                        BudgetKindSpec::Hard => "hard".into(),
                        BudgetKindSpec::Soft => "soft".into(),
                    },
                    anchor: b.anchor.clone().unwrap_or_default(),
                    length_days: b.length_days.map(|d| d.to_string()).unwrap_or_default(),
                })
                .collect(),
            models: s
                .model_limits
                .iter()
                .flatten()
                .map(|(name, l)| (name.clone(), ScopedDraft::from_limits(l)))
                .collect(),
            user_default: s
                .user_limits
                .as_ref()
                .and_then(|u| u.default.as_ref())
                .map(ScopedDraft::from_limits)
                .unwrap_or_default(),
            users: s
                .user_limits
                .iter()
                .flat_map(|u| &u.overrides)
                .map(|(user, l)| (user.clone(), ScopedDraft::from_limits(l)))
                .collect(),
        }
    }

    /// The patch Save sends: every setting, so the server keeps exactly
    /// what the form shows (lists and maps replace the stored ones whole).
    pub fn to_patch(&self) -> Result<SettingsPatch, DraftError> {
        let limits = self.limits.overrides("limits")?;
        let budgets = self
            .budgets
            .iter()
            .enumerate()
            .map(|(i, b)| budget(b, &format!("budgets[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let model_limits = named(&self.models, "model_limits")?;
        let overrides = named(&self.users, "user_limits.overrides")?;
        Ok(SettingsPatch {
            limits: Some(limits),
            time_zone: Some(self.time_zone.trim().to_string()),
            budgets: Some(budgets),
            model_limits: Some(model_limits),
            user_limits: Some(UserLimitsSpec {
                // A default row left empty is no default at all.
                default: (!self.user_default.is_empty())
                    .then(|| self.user_default.to_limits("user_limits.default"))
                    .transpose()?,
                overrides,
            }),
        })
    }
}

fn budget(b: &BudgetDraft, field: &str) -> Result<BudgetSpec, DraftError> {
    let period = match b.period.as_str() {
        "day" => BudgetPeriod::Day,
        "week" => BudgetPeriod::Week,
        "month" => BudgetPeriod::Month,
        "custom" => BudgetPeriod::Custom,
        _ => return Err(refuse(format!("{field}.period"), "choose a period")),
    };
    let kind = match b.kind.as_str() {
        "soft" => BudgetKindSpec::Soft,
        _ => BudgetKindSpec::Hard,
    };
    let amount_field = format!("{field}.amount_usd");
    let Some(amount_usd) = amount(&b.amount_usd, amount_field.clone())? else {
        return Err(refuse(amount_field, "enter an amount in US dollars"));
    };
    // Anchor and length belong to a custom period only; the inputs stay
    // filled in while another period is chosen, but are not sent.
    let custom = period == BudgetPeriod::Custom;
    let anchor = b.anchor.trim();
    Ok(BudgetSpec {
        period,
        amount_usd,
        kind,
        anchor: (custom && !anchor.is_empty()).then(|| anchor.to_string()),
        length_days: if custom {
            whole(&b.length_days, format!("{field}.length_days"))?
                .map(|d| u32::try_from(d).unwrap_or(u32::MAX))
        } else {
            None
        },
    })
}

fn named(
    rows: &[(String, ScopedDraft)],
    prefix: &str,
) -> Result<BTreeMap<String, ScopedLimits>, DraftError> {
    let mut out = BTreeMap::new();
    for (name, limits) in rows {
        let name = name.trim();
        let field = format!("{prefix}.{name}");
        let limits = limits.to_limits(&field)?;
        if out.insert(name.to_string(), limits).is_some() {
            return Err(refuse(field, "named twice: keep one row per name"));
        }
    }
    Ok(out)
}

/// A whole number, `None` when empty.
fn whole(text: &str, field: String) -> Result<Option<u64>, DraftError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| refuse(field, "must be a whole number"))
}

/// A dollar amount, `None` when empty (its range is the server's to check).
fn amount(text: &str, field: String) -> Result<Option<f64>, DraftError> {
    let text = text.trim().trim_start_matches('$');
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(refuse(field, "must be a dollar amount like 12.50")),
    }
}

/// "12.5" as the input shows it (no trailing zeros, no exponent).
fn dollars(usd: f64) -> String {
    let text = format!("{usd:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn period_word(p: BudgetPeriod) -> &'static str {
    match p {
        BudgetPeriod::Day => "day",
        BudgetPeriod::Week => "week",
        BudgetPeriod::Month => "month",
        BudgetPeriod::Custom => "custom",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Limits;
    use serde_json::json;

    fn view(settings: serde_json::Value) -> WorkspaceSettingsView {
        WorkspaceSettingsView {
            id: "acme".into(),
            limits: Limits {
                requests_per_minute: 10,
                requests_per_day: 1000,
                tokens_per_minute: 10_000,
                tokens_per_day: 100_000,
            },
            settings: serde_json::from_value(settings).expect("settings"),
        }
    }

    #[test]
    fn what_the_server_answered_is_sent_back_unchanged() {
        let settings = json!({
            "time_zone": "Europe/Berlin",
            "budgets": [
                {"period": "day", "amount_usd": 5.0, "kind": "hard"},
                {"period": "custom", "amount_usd": 0.000001, "kind": "soft", "anchor": "2026-01-05", "length_days": 14}
            ],
            "model_limits": {"gpt-4o": {"tokens_per_minute": 1000, "budget_usd": 2.5}},
            "user_limits": {"default": {"requests_per_minute": 3}, "overrides": {"alice": {"requests_per_day": 30}}}
        });
        let v = view(settings.clone());
        let patch = SettingsDraft::from_view(&v).to_patch().expect("a patch");
        let mut expected: SettingsPatch = serde_json::from_value(settings).unwrap();
        expected.limits = Some(LimitOverrides::exactly(v.limits));
        assert_eq!(patch, expected);
    }

    #[test]
    fn empty_rows_and_fields_mean_no_limit() {
        let mut draft = SettingsDraft::from_view(&view(json!({"time_zone": "UTC"})));
        draft.models.push(("o3".into(), ScopedDraft::default()));
        draft.limits.tokens_per_day.clear();
        let patch = draft.to_patch().unwrap();
        assert_eq!(patch.limits.unwrap().tokens_per_day, None, "kept as is");
        assert_eq!(patch.model_limits.unwrap()["o3"], ScopedLimits::default());
        assert_eq!(patch.user_limits.unwrap().default, None);
    }

    #[test]
    fn a_custom_period_sends_its_anchor_others_do_not() {
        let mut draft = SettingsDraft {
            time_zone: "UTC".into(),
            ..Default::default()
        };
        draft.budgets.push(BudgetDraft {
            period: "week".into(),
            amount_usd: "$20".into(),
            kind: "soft".into(),
            anchor: "2026-01-01".into(),
            length_days: "7".into(),
        });
        let b = &draft.to_patch().unwrap().budgets.unwrap()[0];
        assert_eq!((b.amount_usd, b.anchor.as_deref()), (20.0, None));
        draft.budgets[0].period = "custom".into();
        let b = &draft.to_patch().unwrap().budgets.unwrap()[0];
        assert_eq!(b.anchor.as_deref(), Some("2026-01-01"));
        assert_eq!(b.length_days, Some(7));
    }

    #[test]
    fn text_that_is_no_number_is_refused_naming_the_field() {
        let base = SettingsDraft {
            time_zone: "UTC".into(),
            ..Default::default()
        };
        let mut d = base.clone();
        d.limits.requests_per_minute = "ten".into();
        assert_eq!(
            d.to_patch().unwrap_err().field,
            "limits.requests_per_minute"
        );
        let mut d = base.clone();
        d.budgets.push(BudgetDraft::default());
        d.budgets.push(BudgetDraft::default());
        d.budgets[0].amount_usd = "1".into();
        assert_eq!(d.to_patch().unwrap_err().field, "budgets[1].amount_usd");
        let mut d = base.clone();
        let mut bad = ScopedDraft::default();
        bad.windows.tokens_per_day = "1.5".into();
        d.models.push(("gpt-4.1".into(), bad));
        assert_eq!(
            d.to_patch().unwrap_err().field,
            "model_limits.gpt-4.1.tokens_per_day"
        );
        let mut d = base;
        d.users.push(("bob".into(), ScopedDraft::default()));
        d.users.push((" bob ".into(), ScopedDraft::default()));
        assert_eq!(d.to_patch().unwrap_err().field, "user_limits.overrides.bob");
    }
}
