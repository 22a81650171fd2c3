//! `GET /api/quota/usage.csv`: a workspace's usage as CSV rows, per minute
//! (the last day, from the engine's day window, on every backend) or per
//! local day of its time zone for a period (from the store's `usage_by`
//! under SQLite; from what the engine keeps — each day's spend and today's
//! breakdown — otherwise), in total or by model or by user.
//!
//! Written with the `csv` crate (quoting of names with commas, quotes or
//! line breaks). Names an app chose (models, user labels) that a
//! spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) are
//! prefixed with `'` (the OWASP advice against CSV injection).

use super::backend::Kind;
use super::{QuotaService, ServiceError};
use crate::pricing::nano_to_usd;
use crate::store::Dimension;
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Longest period of per-day rows (the spend ledger's reach).
pub const MAX_EXPORT_DAYS: i64 = 400;
/// Per-day rows when no period is given.
pub const DEFAULT_EXPORT_DAYS: i64 = 30;

/// What an export is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// The last `minutes` (at most a day, what the day window keeps), one
    /// row a minute; only those in `[from_ms, to_ms)` when a period is set.
    Minute {
        minutes: u64,
        period_ms: Option<(u64, u64)>,
    },
    /// Local days `[first, last]`, one row a day (and name, with `by`).
    Day {
        first: NaiveDate,
        last: NaiveDate,
        by: Option<Dimension>,
    },
}

/// Why an export cannot be made as asked, naming the parameter.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The rows' period from the query's `from`/`to` (local dates, both
/// optional): by default the 30 days to today; at most 400 days.
pub fn day_period(
    today: NaiveDate,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(NaiveDate, NaiveDate), ExportError> {
    let date = |name: &str, text: &str| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ExportError::Invalid(format!("{name} must be a date (YYYY-MM-DD), not {text:?}"))
        })
    };
    let last = match to {
        Some(to) => date("to", to)?,
        None => today,
    };
    let first = match from {
        Some(from) => date("from", from)?,
        None => last - chrono::Duration::days(DEFAULT_EXPORT_DAYS - 1),
    };
    if first > last {
        return Err(ExportError::Invalid("from must not be after to".into()));
    }
    if (last - first).num_days() >= MAX_EXPORT_DAYS {
        return Err(ExportError::Invalid(format!(
            "a period is at most {MAX_EXPORT_DAYS} days"
        )));
    }
    Ok((first, last))
}

/// Unix ms of local midnight starting `day` in `zone` (the first instant
/// of the day where a DST change skips midnight).
pub fn local_midnight_ms(zone: chrono_tz::Tz, day: NaiveDate) -> u64 {
    use chrono::TimeZone;
    let start = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    let instant = zone
        .from_local_datetime(&start)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(start + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    instant.max(0) as u64
}

/// A name an app chose, made safe to open in a spreadsheet.
fn cell(name: &str) -> String {
    if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{name}")
    } else {
        name.to_string()
    }
}

#[derive(Default, Clone, Copy)]
struct DayRow {
    requests: Option<u64>,
    tokens: Option<u64>,
    nano: u64,
}

impl QuotaService {
    /// The export of `id`, as CSV text.
    pub async fn usage_csv(&self, id: &str, what: Granularity) -> Result<String, ExportError> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut write = |record: &[String]| {
            out.write_record(record)
                .map_err(|e| ExportError::Invalid(format!("cannot write the export: {e}")))
        };
        match what {
            Granularity::Minute { minutes, period_ms } => {
                let report = self.usage(id, minutes).map_err(ServiceError::from)?;
                write(&["minute".into(), "requests".into(), "tokens".into()])?;
                let within = |start_s: u64| {
                    period_ms.is_none_or(|(from, to)| (from..to).contains(&(start_s * 1000)))
                };
                for minute in report
                    .history
                    .into_iter()
                    .filter(|m| within(m.minute_start))
                {
                    write(&[
                        crate::engine::rfc3339(minute.minute_start * 1000),
                        minute.requests.to_string(),
                        minute.tokens.to_string(),
                    ])?;
                }
            }
            Granularity::Day { first, last, by } => {
                let header = match by {
                    None => vec!["day", "requests", "tokens", "cost_usd"],
                    Some(Dimension::Model) => {
                        vec!["day", "model", "requests", "tokens", "cost_usd"]
                    }
                    Some(Dimension::User) => vec!["day", "user", "requests", "tokens", "cost_usd"],
                };
                write(&header.into_iter().map(String::from).collect::<Vec<_>>())?;
                for row in self.day_rows(id, first, last, by).await? {
                    write(&row)?;
                }
            }
        }
        let bytes = out
            .into_inner()
            .map_err(|e| ExportError::Invalid(format!("cannot write the export: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn day_rows(
        &self,
        id: &str,
        first: NaiveDate,
        last: NaiveDate,
        by: Option<Dimension>,
    ) -> Result<Vec<Vec<String>>, ExportError> {
        let known = self
            .inner
            .engine
            .days_known(id, first, last)
            .map_err(ServiceError::from)?;
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let money = |nano: u64| format!("{:.9}", nano_to_usd(nano));
        let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        if let Kind::Sqlite(store) = self.backend().kind() {
            // What the store kept, with what is still waiting to be written
            // behind flushed first (so the export includes the last calls).
            self.backend().flush_now().await;
            let rows = store
                .load_detail(Some(id), &day(first), &day(last))
                .await
                .map_err(ServiceError::Store)?;
            return Ok(match by {
                Some(dimension) => rows
                    .into_iter()
                    .filter(|r| r.dimension == dimension)
                    .map(|r| {
                        vec![
                            r.day,
                            cell(&r.name),
                            r.requests.to_string(),
                            r.tokens.to_string(),
                            money(r.nano_usd),
                        ]
                    })
                    .collect(),
                None => {
                    // Every call has one model row ("(none)" if it named
                    // none), so the model rows sum to the day.
                    let mut days: BTreeMap<String, DayRow> = BTreeMap::new();
                    for r in rows.iter().filter(|r| r.dimension == Dimension::Model) {
                        let d = days.entry(r.day.clone()).or_default();
                        d.requests = Some(d.requests.unwrap_or(0).saturating_add(r.requests));
                        d.tokens = Some(d.tokens.unwrap_or(0).saturating_add(r.tokens));
                        d.nano = d.nano.saturating_add(r.nano_usd);
                    }
                    days.into_iter()
                        .map(|(d, r)| vec![d, count(r.requests), count(r.tokens), money(r.nano)])
                        .collect()
                }
            });
        }
        // Without a store: each day's spend, and today's breakdown.
        let today = day(known.today);
        Ok(match by {
            Some(dimension) => {
                let rows = match dimension {
                    Dimension::Model => known.by_model,
                    Dimension::User => known.by_user,
                };
                rows.into_iter()
                    .map(|(name, t)| {
                        vec![
                            today.clone(),
                            cell(&name),
                            t.requests.to_string(),
                            t.tokens.to_string(),
                            money(t.cost_nano),
                        ]
                    })
                    .collect()
            }
            None => {
                let mut days: BTreeMap<NaiveDate, DayRow> = known
                    .spend
                    .iter()
                    .map(|(d, nano)| {
                        (
                            *d,
                            DayRow {
                                nano: *nano,
                                ..DayRow::default()
                            },
                        )
                    })
                    .collect();
                if !known.by_model.is_empty() {
                    let d = days.entry(known.today).or_default();
                    d.requests = Some(known.by_model.iter().map(|(_, t)| t.requests).sum());
                    d.tokens = Some(known.by_model.iter().map(|(_, t)| t.tokens).sum());
                }
                days.into_iter()
                    .map(|(d, r)| vec![day(d), count(r.requests), count(r.tokens), money(r.nano)])
                    .collect()
            }
        })
    }
}
