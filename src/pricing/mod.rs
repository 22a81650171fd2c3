//! What a call cost: the price table (shipped in `config/prices.json`, with the
//! date it was taken; an operator's file overrides or extends it) and the
//! arithmetic from an upstream `usage` to money.
//!
//! Money is integer: prices are kept in pico-dollars per token (a price of
//! $0.005 per 1M tokens is 5 000 p$ a token, exact), a call's cost is rounded
//! once to nano-dollars, and spend is summed in nano-dollars (`u64`: up to
//! $18 billion). Floats appear only when reading the table and when showing
//! an amount, never in a sum, so spend adds up exactly however it is split.

mod usage;

pub use usage::{usage_from_response, TokenUsage};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The table shipped with this release.
const BUILTIN: &str = include_str!("../../config/prices.json");

/// Highest price accepted, USD per 1M tokens (far above any model's).
const MAX_PRICE_PER_MILLION: f64 = 100_000.0;
/// Longest model name in a table.
const MAX_MODEL_LEN: usize = 200;

/// One model's prices from a date on, in pico-dollars per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// Unix ms (UTC midnight of the entry's `from` date).
    pub from_ms: u64,
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning: u64,
}

/// Prices per model, each a list ordered by the date it took effect.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    /// When the shipped table was taken (`YYYY-MM-DD`).
    pub taken: String,
    /// Share of the price a batch call pays, in parts per million.
    pub batch_share_ppm: u64,
    models: BTreeMap<String, Vec<Price>>,
}

/// A price table that cannot be used, naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price table: {0}")]
pub struct PriceError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
    #[serde(default)]
    taken: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    batch_discount: Option<f64>,
    models: BTreeMap<String, Vec<RawPrice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    from: String,
    input: f64,
    #[serde(default)]
    cached_input: Option<f64>,
    output: f64,
    #[serde(default)]
    reasoning: Option<f64>,
}

/// Nano-dollars as `$1,234.567890`-style text trimmed to cents when whole.
pub fn format_usd(nano: u64) -> String {
    let dollars = nano / 1_000_000_000;
    let cents = (nano % 1_000_000_000) / 10_000_000;
    let rest = nano % 10_000_000;
    if rest == 0 {
        format!("${dollars}.{cents:02}")
    } else {
        // Below a cent: show enough digits that the amount is not "$0.00".
        let value = nano as f64 / 1e9;
        format!("${value:.6}")
    }
}

/// USD (a float from JSON or a form) to nano-dollars, if it is a sane amount.
pub fn usd_to_nano(usd: f64) -> Option<u64> {
    (usd.is_finite() && (0.0..=1e9).contains(&usd)).then(|| (usd * 1e9).round() as u64)
}

/// Nano-dollars as USD, for JSON answers (exact to the nano-dollar there).
pub fn nano_to_usd(nano: u64) -> f64 {
    nano as f64 / 1e9
}

fn per_token_pico(per_million: f64, field: &str, model: &str) -> Result<u64, PriceError> {
    if !per_million.is_finite() || !(0.0..=MAX_PRICE_PER_MILLION).contains(&per_million) {
        return Err(PriceError(format!(
            "{model}: `{field}` must be USD per 1M tokens from 0 to {MAX_PRICE_PER_MILLION}, not {per_million}"
        )));
    }
    // USD per 1M tokens = micro-dollars per token = 1e6 pico-dollars per token.
    Ok((per_million * 1e6).round() as u64)
}

fn date_ms(date: &str, what: &str) -> Result<u64, PriceError> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| PriceError(format!("{what}: `{date}` is not a date (YYYY-MM-DD)")))?;
    let ms = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    Ok(ms.max(0) as u64)
}

impl PriceTable {
    /// The table shipped in `config/prices.json` (checked by a unit test, so
    /// it always parses).
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            PriceTable::parse(BUILTIN).unwrap_or_else(|_| PriceTable {
                taken: String::new(),
                batch_share_ppm: 500_000,
                models: BTreeMap::new(),
            })
        })
    }

    /// Reads a table in the `config/prices.json` format.
    pub fn parse(json: &str) -> Result<PriceTable, PriceError> {
        let raw: RawTable =
            serde_json::from_str(json).map_err(|e| PriceError(format!("not valid: {e}")))?;
        if let Some(currency) = &raw.currency {
            if currency != "USD" {
                return Err(PriceError(format!(
                    "`currency` must be \"USD\" (prices are in dollars), not {currency:?}"
                )));
            }
        }
        let batch_discount = raw.batch_discount.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&batch_discount) {
            return Err(PriceError(format!(
                "`batch_discount` must be a share from 0 to 1, not {batch_discount}"
            )));
        }
        let taken = match raw.taken {
            Some(taken) => {
                date_ms(&taken, "`taken`")?;
                taken
            }
            None => String::new(),
        };
        let mut models = BTreeMap::new();
        for (model, entries) in raw.models {
            if model.is_empty()
                || model.len() > MAX_MODEL_LEN
                || model.chars().any(char::is_whitespace)
            {
                return Err(PriceError(format!(
                    "model names must be 1 to {MAX_MODEL_LEN} characters without spaces: {model:?}"
                )));
            }
            if entries.is_empty() {
                return Err(PriceError(format!("{model}: needs at least one price")));
            }
            let mut prices: Vec<Price> = Vec::with_capacity(entries.len());
            for entry in entries {
                let from_ms = date_ms(&entry.from, &format!("{model}: `from`"))?;
                if prices.last().is_some_and(|p| p.from_ms >= from_ms) {
                    return Err(PriceError(format!(
                        "{model}: prices must be listed oldest first, each from a later date"
                    )));
                }
                let input = per_token_pico(entry.input, "input", &model)?;
                let output = per_token_pico(entry.output, "output", &model)?;
                prices.push(Price {
                    from_ms,
                    input,
                    cached_input: match entry.cached_input {
                        Some(p) => per_token_pico(p, "cached_input", &model)?,
                        None => input,
                    },
                    output,
                    reasoning: match entry.reasoning {
                        Some(p) => per_token_pico(p, "reasoning", &model)?,
                        None => output,
                    },
                });
            }
            models.insert(model, prices);
        }
        Ok(PriceTable {
            taken,
            batch_share_ppm: (batch_discount * 1e6).round() as u64,
            models,
        })
    }

    /// The table as JSON in its own file format (USD per 1M tokens, each
    /// model's entries oldest first): what `GET /api/admin/prices` shows.
    pub fn to_json(&self) -> serde_json::Value {
        let per_million = |pico: u64| pico as f64 / 1e6;
        let day = |ms: u64| {
            chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
                .unwrap_or_default()
                .format("%Y-%m-%d")
                .to_string()
        };
        let models: serde_json::Map<String, serde_json::Value> = self
            .models
            .iter()
            .map(|(name, prices)| {
                let entries = prices
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "from": day(p.from_ms),
                            "input": per_million(p.input),
                            "cached_input": per_million(p.cached_input),
                            "output": per_million(p.output),
                            "reasoning": per_million(p.reasoning),
                        })
                    })
                    .collect();
                (name.clone(), serde_json::Value::Array(entries))
            })
            .collect();
        serde_json::json!({
            "taken": self.taken,
            "currency": "USD",
            "batch_discount": self.batch_share_ppm as f64 / 1e6,
            "models": models,
        })
    }

    /// This table with `other`'s models on top (a model in both takes
    /// `other`'s prices whole); `other`'s batch discount if it set one.
    pub fn overridden_by(mut self, other: PriceTable) -> PriceTable {
        self.models.extend(other.models);
        self.batch_share_ppm = other.batch_share_ppm;
        if !other.taken.is_empty() {
            self.taken = other.taken;
        }
        self
    }

    /// The table entry that prices `model`: the name itself, or the longest
    /// name it extends at a `-` (`gpt-4o-mini-2024-07-18` is `gpt-4o-mini`,
    /// not `gpt-4o`); a fine-tuned `ft:<base>:…` is priced as its base.
    pub fn entry_for<'a>(&'a self, model: &str) -> Option<&'a str> {
        let base = match model.strip_prefix("ft:") {
            Some(rest) => rest.split(':').next().unwrap_or(rest),
            None => model,
        };
        if let Some((name, _)) = self.models.get_key_value(base) {
            return Some(name);
        }
        self.models
            .keys()
            .filter(|name| {
                base.len() > name.len()
                    && base.starts_with(name.as_str())
                    && base.as_bytes()[name.len()] == b'-'
            })
            .max_by_key(|name| name.len())
            .map(String::as_str)
    }

    /// `model`'s price in force at `at_ms`: the last entry from on or before
    /// it (a call before a model's first entry takes that first price).
    pub fn price(&self, model: &str, at_ms: u64) -> Option<Price> {
        let prices = self.models.get(self.entry_for(model)?)?;
        prices
            .iter()
            .rev()
            .find(|p| p.from_ms <= at_ms)
            .or_else(|| prices.first())
            .copied()
    }

    /// What a call of `model` at `at_ms` that used `usage` cost, in
    /// nano-dollars; `None` for a model the table does not price.
    pub fn cost_nano(
        &self,
        model: &str,
        at_ms: u64,
        usage: &TokenUsage,
        batch: bool,
    ) -> Option<u64> {
        let price = self.price(model, at_ms)?;
        let pico = usage.cost_pico(&price);
        let pico = if batch {
            pico.saturating_mul(u128::from(self.batch_share_ppm)) / 1_000_000
        } else {
            pico
        };
        // Rounded half up, once, to the nano-dollar.
        Some(u64::try_from((pico + 500) / 1000).unwrap_or(u64::MAX))
    }

    /// The most a call can cost before it is made: every prompt token at the
    /// input price and every output token it may produce at the dearer of
    /// the output and reasoning prices (what a budget reserves).
    pub fn worst_case_nano(
        &self,
        model: &str,
        at_ms: u64,
        prompt: u64,
        max_output: u64,
    ) -> Option<u64> {
        let price = self.price(model, at_ms)?;
        let pico = u128::from(prompt) * u128::from(price.input)
            + u128::from(max_output) * u128::from(price.output.max(price.reasoning));
        Some(u64::try_from(pico.div_ceil(1000)).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests;
