//! `GET /api/quota/usage.csv`: a workspace's usage as a CSV download (see
//! `service::export` for where the rows come from).

use super::doc_text as text;
use super::error::ApiError;
use super::extract::{target_workspace, ApiQuery, Auth};
use crate::service::export::{day_period, local_midnight_ms, ExportError, Granularity};
use crate::service::QuotaService;
use crate::store::Dimension;
use crate::wire::ErrorBody;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Query of `GET /api/quota/usage.csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `minute` or `day` (the default).
    #[serde(default)]
    pub granularity: Option<String>,
    /// Per-day rows: the first local day (`YYYY-MM-DD`).
    #[serde(default)]
    pub from: Option<String>,
    /// Per-day rows: the last local day (`YYYY-MM-DD`), today by default.
    #[serde(default)]
    pub to: Option<String>,
    /// Per-day rows by `model` or by `user`.
    #[serde(default)]
    pub by: Option<String>,
    /// Per-minute rows: how many minutes back (1 to 1440, default 1440).
    #[serde(default)]
    pub minutes: Option<u64>,
    /// Accepted (and ignored) as for the other quota reads.
    #[serde(default)]
    pub token: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message.into())
}

/// Usage as CSV, per minute or per local day.
///
/// Per minute (`granularity=minute`): the last `minutes` (1 to 1440; with
/// `from`/`to`, only the minutes of those local days), columns
/// `minute,requests,tokens`; per-minute counts are kept for the last 24
/// hours. Per day (the default): local days of
/// the workspace's time zone from `from` to `to` (at most 400, by default
/// the 30 to today), columns `day,requests,tokens,cost_usd`, or with
/// `by=model` / `by=user` one row per day and name. Without a SQLite store
/// (memory, Redis) per-day rows hold each day's spend and today's counts.
#[utoipa::path(
    get,
    path = "/api/quota/usage.csv",
    tag = "quota",
    params(("workspace_id" = Option<String>, Query, description = text::WORKSPACE_ID_QUERY),
        ("granularity" = Option<String>, Query, description = "`minute` or `day` (default)."),
        ("from" = Option<String>, Query, description = "Per-day rows: first local day, YYYY-MM-DD (default: 29 days before `to`)."),
        ("to" = Option<String>, Query, description = "Per-day rows: last local day, YYYY-MM-DD (default: today)."),
        ("by" = Option<String>, Query, description = "Per-day rows: `model` or `user`, one row per day and name."),
        ("minutes" = Option<u64>, Query, minimum = 1, maximum = 1440, description = "Per-minute rows: minutes back, 1 to 1440 (default 1440); with `from`/`to` only those days' minutes.")),
    responses(
        (status = 200, description = "The rows, as `text/csv` (a download).", content_type = "text/csv", body = String),
        (status = 400, description = "`invalid_query`: the parameter named is not valid (a date, a period over 400 days, `from` after `to`, `by` with per-minute rows, `minutes` with per-day rows, an unknown parameter).", body = ErrorBody),
        (status = 401, description = text::UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = text::OTHER_WORKSPACE, body = ErrorBody),
        (status = 404, description = text::NO_SUCH_WORKSPACE, body = ErrorBody),
        (status = 429, description = text::API_RATE_LIMITED, body = ErrorBody,
            headers(("retry-after" = u64, description = "Whole seconds to wait before retrying."))),
        (status = 503, description = text::STORE_UNAVAILABLE, body = ErrorBody),
    ),
    security(("workspace_key" = []), ("admin_key" = []), ("session_cookie" = [])),
)]
pub async fn usage_csv(
    State(service): State<QuotaService>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = target_workspace(&service, &caller, query.workspace_id.as_deref())?;
    let (zone, today) = service
        .engine()
        .zone_and_today(&id)
        .ok_or_else(|| ApiError::from(crate::engine::EngineError::NotFound(id.clone())))?;
    let by = match query.by.as_deref() {
        None => None,
        Some("model") => Some(Dimension::Model),
        Some("user") => Some(Dimension::User),
        Some(other) => {
            return Err(invalid(format!(
                "by must be `model` or `user`, not {other:?}"
            )))
        }
    };
    let (what, name) = match query.granularity.as_deref().unwrap_or("day") {
        "minute" => {
            if by.is_some() {
                return Err(invalid(
                    "by is for per-day rows; per-minute rows are the workspace's totals",
                ));
            }
            let minutes = query.minutes.unwrap_or(1440);
            if !(1..=1440).contains(&minutes) {
                return Err(invalid("minutes must be from 1 to 1440"));
            }
            // With a period, the minutes of those local days that the last
            // 24 hours (what per-minute counts are kept for) hold.
            let period_ms = if query.from.is_some() || query.to.is_some() {
                let (first, last) = day_period(today, query.from.as_deref(), query.to.as_deref())
                    .map_err(|e| invalid(e.to_string()))?;
                Some((
                    local_midnight_ms(zone, first),
                    local_midnight_ms(zone, last + chrono::Duration::days(1)),
                ))
            } else {
                None
            };
            (
                Granularity::Minute { minutes, period_ms },
                format!("{id}-minutes-{today}"),
            )
        }
        "day" => {
            if query.minutes.is_some() {
                return Err(invalid(
                    "minutes is for per-minute rows (granularity=minute)",
                ));
            }
            let (first, last) = day_period(today, query.from.as_deref(), query.to.as_deref())
                .map_err(|e| invalid(e.to_string()))?;
            let suffix = by
                .map(|b| format!("-by-{}", b.as_str()))
                .unwrap_or_default();
            (
                Granularity::Day { first, last, by },
                format!("{id}-days-{first}-{last}{suffix}"),
            )
        }
        other => {
            return Err(invalid(format!(
                "granularity must be `minute` or `day`, not {other:?}"
            )))
        }
    };
    let csv = service.usage_csv(&id, what).await.map_err(|e| match e {
        ExportError::Invalid(message) => invalid(message),
        ExportError::Service(e) => ApiError::from(e),
    })?;
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // Only plain characters in the file name, whatever an id may hold.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"quota-{name}.csv\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
