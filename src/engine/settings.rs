//! A workspace's settings beyond its four limits, checked: its time zone,
//! budgets, and per-model and per-user limits (`wire::SettingsPatch` is
//! what an admin sends; this is what the engine keeps). Every refusal names
//! the field at fault, the way the API reports it (`budgets[1].anchor`).

use super::periods::Period;
use super::spend::{Budget, BudgetKind};
use crate::pricing::{nano_to_usd, usd_to_nano};
use crate::wire::{
    BudgetKindSpec, BudgetPeriod, BudgetSpec, ScopedLimits, SettingsPatch, UserLimitsSpec,
};
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// Most budgets per workspace.
pub const MAX_BUDGETS: usize = 10;
/// Most per-model rules per workspace.
pub const MAX_MODEL_RULES: usize = 100;
/// Most per-user overrides per workspace.
pub const MAX_USER_OVERRIDES: usize = 10_000;
/// Longest model or user name in a rule.
pub const MAX_NAME_LEN: usize = 200;
/// Highest window limit a rule may set (as for a workspace).
const MAX_LIMIT: u64 = 1_000_000_000_000;

/// A setting refused: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Limits for one model family or end user, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopedRule {
    pub requests_per_minute: Option<u64>,
    pub requests_per_day: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub budget_nano_per_day: Option<u64>,
}

/// Per-user limits, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRules {
    pub default: Option<ScopedRule>,
    pub overrides: BTreeMap<String, ScopedRule>,
}

/// Everything a workspace is configured with besides its four limits.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceSettings {
    pub time_zone: Tz,
    pub budgets: Vec<Budget>,
    /// By model name or family; [`model_rule`](Self::model_rule) finds a
    /// model's.
    pub model_limits: BTreeMap<String, ScopedRule>,
    pub user_limits: UserRules,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            time_zone: chrono_tz::UTC,
            budgets: Vec::new(),
            model_limits: BTreeMap::new(),
            user_limits: UserRules::default(),
        }
    }
}

impl WorkspaceSettings {
    /// The rule for `model`: its own name, or the longest family it extends
    /// at a `-` (`gpt-4o` covers `gpt-4o-2024-08-06` but not
    /// `gpt-4o-mini`, which has a rule of its own or none), in any case;
    /// a fine-tune's is its base model's.
    pub fn model_rule(&self, model: &str) -> Option<(&str, &ScopedRule)> {
        // As the price table finds a model's entry: a fine-tune
        // `ft:<base>:…` is its base's, and case does not matter — the
        // tenant picks the name, and `GPT-4o` or a fine-tune of gpt-4o
        // must not slip past the `gpt-4o` rule.
        let base = match model.strip_prefix("ft:") {
            Some(rest) => rest.split(':').next().unwrap_or(rest),
            None => model,
        };
        let bytes = base.as_bytes();
        self.model_limits
            .iter()
            .filter(|(name, _)| {
                let n = name.len();
                bytes.len() >= n
                    && bytes[..n].eq_ignore_ascii_case(name.as_bytes())
                    && (bytes.len() == n || (bytes[n] == b'-' && !is_other_family(&base[n + 1..])))
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(name, rule)| (name.as_str(), rule))
    }

    /// The settings as an admin writes them (every field set): what the API
    /// answers and the store keeps. [`patched`](Self::patched) of the
    /// defaults with it gives these settings back.
    pub fn to_patch(&self) -> SettingsPatch {
        let scoped = |rule: &ScopedRule| ScopedLimits {
            requests_per_minute: rule.requests_per_minute,
            requests_per_day: rule.requests_per_day,
            tokens_per_minute: rule.tokens_per_minute,
            tokens_per_day: rule.tokens_per_day,
            budget_usd: rule.budget_nano_per_day.map(nano_to_usd),
        };
        SettingsPatch {
            limits: None,
            time_zone: Some(self.time_zone.name().to_string()),
            budgets: Some(
                self.budgets
                    .iter()
                    .map(|b| {
                        let (period, anchor, length_days) = match b.period {
                            Period::Day => (BudgetPeriod::Day, None, None),
                            Period::Week => (BudgetPeriod::Week, None, None),
                            Period::Month => (BudgetPeriod::Month, None, None),
                            Period::Custom {
                                anchor,
                                length_days,
                            } => (
                                BudgetPeriod::Custom,
                                Some(anchor.format("%Y-%m-%d").to_string()),
                                Some(length_days),
                            ),
                        };
                        BudgetSpec {
                            period,
                            amount_usd: nano_to_usd(b.amount_nano),
                            kind: match b.kind {
                                BudgetKind::Hard => BudgetKindSpec::Hard,
                                BudgetKind::Soft => BudgetKindSpec::Soft,
                            },
                            anchor,
                            length_days,
                        }
                    })
                    .collect(),
            ),
            model_limits: Some(
                self.model_limits
                    .iter()
                    .map(|(name, rule)| (name.clone(), scoped(rule)))
                    .collect(),
            ),
            user_limits: Some(UserLimitsSpec {
                default: self.user_limits.default.as_ref().map(scoped),
                overrides: self
                    .user_limits
                    .overrides
                    .iter()
                    .map(|(user, rule)| (user.clone(), scoped(rule)))
                    .collect(),
            }),
        }
    }

    /// These settings with `patch` applied; a field left out stays as is.
    pub fn patched(&self, patch: &SettingsPatch) -> Result<WorkspaceSettings, FieldError> {
        let mut next = self.clone();
        if let Some(zone) = &patch.time_zone {
            next.time_zone = zone.parse::<Tz>().map_err(|_| {
                refuse(
                    "time_zone",
                    format!("{zone:?} is not an IANA time zone name (like \"Europe/Berlin\" or \"UTC\")"),
                )
            })?;
        }
        if let Some(budgets) = &patch.budgets {
            if budgets.len() > MAX_BUDGETS {
                return Err(refuse("budgets", format!("at most {MAX_BUDGETS} budgets")));
            }
            next.budgets = budgets
                .iter()
                .enumerate()
                .map(|(i, b)| budget(b, &format!("budgets[{i}]")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(models) = &patch.model_limits {
            if models.len() > MAX_MODEL_RULES {
                return Err(refuse(
                    "model_limits",
                    format!("at most {MAX_MODEL_RULES} models"),
                ));
            }
            next.model_limits = models
                .iter()
                .map(|(name, limits)| {
                    let field = format!("model_limits.{name}");
                    check_name(name, &field)?;
                    Ok((name.clone(), scoped(limits, &field)?))
                })
                .collect::<Result<_, FieldError>>()?;
        }
        if let Some(users) = &patch.user_limits {
            next.user_limits = user_rules(users)?;
        }
        Ok(next)
    }
}

/// `mini`, `nano`, `turbo`, … after a family name start another family;
/// a date or a version number does not.
fn is_other_family(rest: &str) -> bool {
    !rest.starts_with(|c: char| c.is_ascii_digit())
}

fn check_name(name: &str, field: &str) -> Result<(), FieldError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(refuse(
            field,
            format!("names are 1 to {MAX_NAME_LEN} characters without spaces"),
        ));
    }
    Ok(())
}

fn amount(usd: f64, field: &str) -> Result<u64, FieldError> {
    usd_to_nano(usd).ok_or_else(|| refuse(field, "must be a dollar amount from 0 to 1000000000"))
}

fn budget(spec: &BudgetSpec, field: &str) -> Result<Budget, FieldError> {
    let amount_nano = amount(spec.amount_usd, &format!("{field}.amount_usd"))?;
    // A budget of nothing would be spent before the first call, forever.
    if amount_nano == 0 {
        return Err(refuse(
            format!("{field}.amount_usd"),
            "must be more than 0 (at least $0.000000001); remove the budget instead",
        ));
    }
    let period = match spec.period {
        BudgetPeriod::Day => Period::Day,
        BudgetPeriod::Week => Period::Week,
        BudgetPeriod::Month => Period::Month,
        BudgetPeriod::Custom => {
            let anchor = spec.anchor.as_deref().ok_or_else(|| {
                refuse(
                    format!("{field}.anchor"),
                    "a custom period needs an anchor date (YYYY-MM-DD)",
                )
            })?;
            let anchor = NaiveDate::parse_from_str(anchor, "%Y-%m-%d").map_err(|_| {
                refuse(
                    format!("{field}.anchor"),
                    format!("{anchor:?} is not a date (YYYY-MM-DD)"),
                )
            })?;
            let length_days = spec.length_days.ok_or_else(|| {
                refuse(
                    format!("{field}.length_days"),
                    "a custom period needs length_days (1 to 366)",
                )
            })?;
            if !(1..=366).contains(&length_days) {
                return Err(refuse(
                    format!("{field}.length_days"),
                    "must be 1 to 366 days",
                ));
            }
            Period::Custom {
                anchor,
                length_days,
            }
        }
    };
    if spec.period != BudgetPeriod::Custom && (spec.anchor.is_some() || spec.length_days.is_some())
    {
        return Err(refuse(
            format!("{field}.period"),
            "anchor and length_days are for a custom period only",
        ));
    }
    Ok(Budget {
        period,
        amount_nano,
        kind: match spec.kind {
            BudgetKindSpec::Hard => BudgetKind::Hard,
            BudgetKindSpec::Soft => BudgetKind::Soft,
        },
    })
}

fn scoped(limits: &ScopedLimits, field: &str) -> Result<ScopedRule, FieldError> {
    let window = |value: Option<u64>, name: &str| -> Result<Option<u64>, FieldError> {
        match value {
            Some(v) if v > MAX_LIMIT => Err(refuse(
                format!("{field}.{name}"),
                format!("at most {MAX_LIMIT}"),
            )),
            v => Ok(v),
        }
    };
    Ok(ScopedRule {
        requests_per_minute: window(limits.requests_per_minute, "requests_per_minute")?,
        requests_per_day: window(limits.requests_per_day, "requests_per_day")?,
        tokens_per_minute: window(limits.tokens_per_minute, "tokens_per_minute")?,
        tokens_per_day: window(limits.tokens_per_day, "tokens_per_day")?,
        budget_nano_per_day: limits
            .budget_usd
            .map(|usd| amount(usd, &format!("{field}.budget_usd")))
            .transpose()?,
    })
}

fn user_rules(spec: &UserLimitsSpec) -> Result<UserRules, FieldError> {
    if spec.overrides.len() > MAX_USER_OVERRIDES {
        return Err(refuse(
            "user_limits.overrides",
            format!("at most {MAX_USER_OVERRIDES} users"),
        ));
    }
    Ok(UserRules {
        default: spec
            .default
            .as_ref()
            .map(|d| scoped(d, "user_limits.default"))
            .transpose()?,
        overrides: spec
            .overrides
            .iter()
            .map(|(user, limits)| {
                let field = format!("user_limits.overrides.{user}");
                check_name(user, &field)?;
                Ok((user.clone(), scoped(limits, &field)?))
            })
            .collect::<Result<_, FieldError>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(value: serde_json::Value) -> SettingsPatch {
        serde_json::from_value(value).expect("a patch")
    }

    fn refused(value: serde_json::Value) -> FieldError {
        WorkspaceSettings::default()
            .patched(&patch(value))
            .expect_err("refused")
    }

    #[test]
    fn a_patch_sets_what_it_names_and_keeps_the_rest() {
        let first = WorkspaceSettings::default()
            .patched(&patch(json!({"time_zone": "Europe/Berlin", "budgets": [
                {"period": "month", "amount_usd": 250.5, "kind": "hard"},
                {"period": "custom", "amount_usd": 10, "kind": "soft", "anchor": "2026-01-05", "length_days": 14}
            ]})))
            .unwrap();
        assert_eq!(first.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(first.budgets.len(), 2);
        assert_eq!(first.budgets[0].amount_nano, 250_500_000_000);
        let second = first
            .patched(&patch(
                json!({"model_limits": {"gpt-4o": {"tokens_per_minute": 1000}}}),
            ))
            .unwrap();
        assert_eq!(second.time_zone, chrono_tz::Europe::Berlin, "kept");
        assert_eq!(second.budgets, first.budgets, "kept");
        let cleared = second.patched(&patch(json!({"budgets": []}))).unwrap();
        assert!(cleared.budgets.is_empty());
    }

    #[test]
    fn settings_written_out_read_back_the_same() {
        let settings = WorkspaceSettings::default()
            .patched(&patch(json!({
                "time_zone": "America/New_York",
                "budgets": [
                    {"period": "week", "amount_usd": 0.000001, "kind": "soft"},
                    {"period": "custom", "amount_usd": 99.99, "kind": "hard", "anchor": "2026-03-01", "length_days": 30}
                ],
                "model_limits": {"o3": {"tokens_per_day": 50000, "budget_usd": 12.5}},
                "user_limits": {"default": {"requests_per_minute": 10}, "overrides": {"alice": {"budget_usd": 3}}}
            })))
            .unwrap();
        let written = serde_json::to_value(settings.to_patch()).unwrap();
        let read: SettingsPatch = serde_json::from_value(written).unwrap();
        assert_eq!(
            WorkspaceSettings::default().patched(&read).unwrap(),
            settings
        );
    }

    #[test]
    fn a_model_rule_covers_dated_versions_not_other_families() {
        let settings = WorkspaceSettings::default()
            .patched(&patch(json!({"model_limits": {
                "gpt-4o": {"requests_per_minute": 5},
                "gpt-4o-mini": {"requests_per_minute": 50}
            }})))
            .unwrap();
        let rule = |m: &str| settings.model_rule(m).map(|(name, _)| name.to_string());
        assert_eq!(rule("gpt-4o").as_deref(), Some("gpt-4o"));
        assert_eq!(rule("gpt-4o-2024-08-06").as_deref(), Some("gpt-4o"));
        assert_eq!(
            rule("gpt-4o-mini-2024-07-18").as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            rule("gpt-4o-audio-preview"),
            None,
            "another family: shares the workspace's limits"
        );
        assert_eq!(rule("gpt-4.1"), None);
        // The tenant picks the name: neither case nor a fine-tune of the
        // family slips past its rule.
        assert_eq!(rule("GPT-4o-2024-08-06").as_deref(), Some("gpt-4o"));
        assert_eq!(
            rule("ft:gpt-4o-mini-2024-07-18:org:suffix:Ab12").as_deref(),
            Some("gpt-4o-mini")
        );
        assert_eq!(rule("ft:gpt-4o:org::Ab12").as_deref(), Some("gpt-4o"));
    }

    #[test]
    fn each_bad_setting_is_refused_naming_its_field() {
        for (value, field) in [
            (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
            (
                json!({"budgets": [{"period": "month", "amount_usd": -5, "kind": "hard"}]}),
                "budgets[0].amount_usd",
            ),
            (
                json!({"budgets": [{"period": "day", "amount_usd": 1e12, "kind": "soft"}]}),
                "budgets[0].amount_usd",
            ),
            (
                json!({"budgets": [{"period": "custom", "amount_usd": 5, "kind": "hard", "length_days": 7}]}),
                "budgets[0].anchor",
            ),
            (
                json!({"budgets": [{"period": "custom", "amount_usd": 5, "kind": "hard", "anchor": "2026-02-30", "length_days": 7}]}),
                "budgets[0].anchor",
            ),
            (
                json!({"budgets": [{"period": "custom", "amount_usd": 5, "kind": "hard", "anchor": "2026-02-01"}]}),
                "budgets[0].length_days",
            ),
            (
                json!({"budgets": [{"period": "custom", "amount_usd": 5, "kind": "hard", "anchor": "2026-02-01", "length_days": 0}]}),
                "budgets[0].length_days",
            ),
            (
                json!({"budgets": [{"period": "week", "amount_usd": 5, "kind": "hard", "anchor": "2026-02-01"}]}),
                "budgets[0].period",
            ),
            (
                json!({"model_limits": {"": {"requests_per_minute": 1}}}),
                "model_limits.",
            ),
            (
                json!({"model_limits": {"gpt 4o": {"requests_per_minute": 1}}}),
                "model_limits.gpt 4o",
            ),
            (
                json!({"model_limits": {"gpt-4o": {"tokens_per_day": 2_000_000_000_000u64}}}),
                "model_limits.gpt-4o.tokens_per_day",
            ),
            (
                json!({"user_limits": {"default": {"budget_usd": -1}}}),
                "user_limits.default.budget_usd",
            ),
            (
                json!({"user_limits": {"overrides": {"bob\n": {}}}}),
                "user_limits.overrides.bob\n",
            ),
        ] {
            assert_eq!(refused(value.clone()).field, field, "{value}");
        }
        let eleven: Vec<_> = (0..11)
            .map(|_| json!({"period": "day", "amount_usd": 1, "kind": "soft"}))
            .collect();
        assert_eq!(refused(json!({"budgets": eleven})).field, "budgets");
    }

    #[test]
    fn unknown_fields_and_wrong_types_do_not_parse() {
        for value in [
            json!({"budget": []}),
            json!({"budgets": [{"period": "year", "amount_usd": 1, "kind": "hard"}]}),
            json!({"budgets": [{"period": "day", "amount_usd": 1, "kind": "firm"}]}),
            json!({"model_limits": {"gpt-4o": {"rpm": 1}}}),
            json!({"time_zone": 5}),
        ] {
            assert!(
                serde_json::from_value::<SettingsPatch>(value.clone()).is_err(),
                "{value}"
            );
        }
    }
}
