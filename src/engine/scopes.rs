//! Per-model and per-user limits inside a workspace, and the breakdown of a
//! day's usage by model and by end user (issue "Money, models and people").
//!
//! A model rule (`gpt-4o`, which covers its dated versions) or a user rule
//! (the default every user gets, or an override) has windows of its own
//! beside the workspace's: requests and tokens per minute and per day, and
//! money per local day. A call counts against the workspace and against
//! each rule that covers it; a model without a rule shares the workspace's
//! limits only, as OpenAI limits per model.
//!
//! Memory stays bounded against a tenant sending endless user labels: at
//! most [`MAX_USER_SCOPES`] users get windows of their own under the
//! default rule (overrides always do); later users share one scope,
//! [`OTHER_USERS`], held to the default rule together — stricter, never
//! looser. Per-scope day windows use five-minute buckets (at most 288,
//! some 7 KiB), so usage leaves them at most five minutes early. The
//! breakdown keeps at most [`MAX_BREAKDOWN_KEYS`] names per dimension and
//! sums the rest under [`OTHER`].

use super::reservations::CallScope;
use super::rules::{window_wait, IN_FLIGHT_RETRY_MS};
use super::settings::{ScopedRule, WorkspaceSettings};
use super::window::{Metric, SlidingWindow};
use super::workspace::WorkspaceState;
use crate::pricing::format_usd;
use chrono::NaiveDate;
use std::collections::HashMap;

/// Users with windows of their own under the default user rule.
pub const MAX_USER_SCOPES: usize = 1_000;
/// Names kept per dimension in the day's breakdown.
pub const MAX_BREAKDOWN_KEYS: usize = 1_000;
/// The scope users beyond [`MAX_USER_SCOPES`] share.
pub const OTHER_USERS: &str = "(other users)";
/// The breakdown row of names beyond [`MAX_BREAKDOWN_KEYS`].
pub const OTHER: &str = "(other)";
/// The breakdown row of calls that named no model or no user.
pub const UNNAMED: &str = "(none)";
/// Width of a scope's day-window buckets.
const SCOPE_DAY_BUCKET_MS: u64 = 300_000;

/// The rules a call was admitted under: the name of the model rule that
/// covers it and its user's scope, if any rule does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeKeys {
    pub model: Option<Box<str>>,
    pub user: Option<Box<str>>,
}

/// One rule's counts.
#[derive(Clone, Debug)]
pub struct ScopeCounts {
    pub minute: SlidingWindow,
    pub day: SlidingWindow,
    /// Spent on one local day (the current one, once anything was).
    spent: Option<(NaiveDate, u64)>,
}

impl Default for ScopeCounts {
    fn default() -> Self {
        Self {
            minute: SlidingWindow::minute(),
            day: SlidingWindow::new(SCOPE_DAY_BUCKET_MS, 86_400_000 / SCOPE_DAY_BUCKET_MS),
            spent: None,
        }
    }
}

impl ScopeCounts {
    fn evict(&mut self, now_ms: u64) {
        self.minute.evict(now_ms);
        self.day.evict(now_ms);
    }

    pub fn spent_on(&self, day: NaiveDate) -> u64 {
        match self.spent {
            Some((d, nano)) if d == day => nano,
            _ => 0,
        }
    }

    fn spend(&mut self, day: NaiveDate, nano: u64) {
        let now = self.spent_on(day).saturating_add(nano);
        self.spent = Some((day, now));
    }

    fn is_idle(&self, day: NaiveDate) -> bool {
        self.minute.total(Metric::Requests) == 0
            && self.day.total(Metric::Requests) == 0
            && self.day.total(Metric::Tokens) == 0
            && self.spent_on(day) == 0
    }

    fn heap_bytes(&self) -> usize {
        self.minute.heap_bytes() + self.day.heap_bytes()
    }
}

/// A day's usage of one model or one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    pub tokens: u64,
    pub cost_nano: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests = self.requests.saturating_add(other.requests);
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.cost_nano = self.cost_nano.saturating_add(other.cost_nano);
    }
}

/// A breakdown row: a model's or a user's name and its day's tally.
pub type Named = (String, Tally);

/// What a workspace keeps per rule and per name.
#[derive(Clone, Debug, Default)]
pub struct Scopes {
    models: HashMap<Box<str>, ScopeCounts>,
    users: HashMap<Box<str>, ScopeCounts>,
    /// The local day the breakdown is of.
    day: Option<NaiveDate>,
    by_model: HashMap<Box<str>, Tally>,
    by_user: HashMap<Box<str>, Tally>,
}

/// Which limit refused a call, for the error's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    Spend,
    /// A money limit covers the call and its model has no price.
    Unpriced,
}

/// A call refused by a per-model or per-user limit, or by a hard budget:
/// when it may pass (`None`: never as asked), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    pub kind: LimitKind,
    pub wait_ms: Option<u64>,
    pub reason: String,
}

impl Limited {
    /// Keeps the refusal that waits longest (never beats any wait): a retry
    /// at a shorter wait would be refused by the longer one.
    pub fn longest(a: Option<Limited>, b: Limited) -> Option<Limited> {
        match a {
            None => Some(b),
            Some(a) => match (a.wait_ms, b.wait_ms) {
                (None, _) => Some(a),
                (_, None) => Some(b),
                (Some(x), Some(y)) if y > x => Some(b),
                _ => Some(a),
            },
        }
    }
}

fn user_rule<'a>(settings: &'a WorkspaceSettings, key: &str) -> Option<&'a ScopedRule> {
    settings
        .user_limits
        .overrides
        .get(key)
        .or(settings.user_limits.default.as_ref())
}

impl Scopes {
    /// The rules that cover a call of `scope`.
    pub fn keys_for(&self, settings: Option<&WorkspaceSettings>, scope: &CallScope) -> ScopeKeys {
        let Some(settings) = settings else {
            return ScopeKeys::default();
        };
        let model = scope
            .model
            .as_deref()
            .and_then(|m| settings.model_rule(m))
            .map(|(name, _)| Box::from(name));
        let user = scope.user.as_deref().and_then(|user| {
            if settings.user_limits.overrides.contains_key(user) {
                Some(Box::from(user))
            } else if settings.user_limits.default.is_some() {
                let own = self.users.contains_key(user) || self.users.len() < MAX_USER_SCOPES;
                Some(Box::from(if own { user } else { OTHER_USERS }))
            } else {
                None
            }
        });
        ScopeKeys { model, user }
    }

    /// Slides the windows of the rules `keys` names (before they are read).
    pub fn advance(&mut self, now_ms: u64, keys: &ScopeKeys) {
        if let Some(counts) = keys.model.as_deref().and_then(|k| self.models.get_mut(k)) {
            counts.evict(now_ms);
        }
        if let Some(counts) = keys.user.as_deref().and_then(|k| self.users.get_mut(k)) {
            counts.evict(now_ms);
        }
    }

    /// Counts an admitted request against its rules.
    pub fn count_request(&mut self, now_ms: u64, keys: &ScopeKeys) {
        self.each_counts(now_ms, keys, |counts| {
            counts.minute.add(now_ms, 1, 0);
            counts.day.add(now_ms, 1, 0);
        });
    }

    /// Counts a settled call: its tokens (and its request, for a call
    /// recorded after the fact) against its rules, its cost against their
    /// day's money, and all of it in the day's breakdown.
    pub fn settle(&mut self, now_ms: u64, today: NaiveDate, call: Settled<'_>) -> Tallied {
        let Settled {
            keys,
            scope,
            tally,
            count_request,
        } = call;
        let requests = u64::from(count_request);
        self.each_counts(now_ms, keys, |counts| {
            if requests > 0 || tally.tokens > 0 {
                counts.minute.add(now_ms, requests, tally.tokens);
                counts.day.add(now_ms, requests, tally.tokens);
            }
            if tally.cost_nano > 0 {
                counts.spend(today, tally.cost_nano);
            }
        });
        self.tally(today, scope.model.as_deref(), scope.user.as_deref(), tally)
    }

    /// Adds to the day's breakdown (also from the store, at start); the
    /// names it was counted under (capped as the breakdown caps them: what
    /// the store keeps, so that it stays as bounded).
    pub fn tally(
        &mut self,
        today: NaiveDate,
        model: Option<&str>,
        user: Option<&str>,
        tally: Tally,
    ) -> Tallied {
        if self.day != Some(today) {
            self.day = Some(today);
            self.by_model.clear();
            self.by_user.clear();
        }
        let mut names = [Box::<str>::from(""), Box::<str>::from("")];
        for (slot, (map, name)) in [(&mut self.by_model, model), (&mut self.by_user, user)]
            .into_iter()
            .enumerate()
        {
            let name = name.unwrap_or(UNNAMED);
            let key = if map.contains_key(name) || map.len() < MAX_BREAKDOWN_KEYS {
                name
            } else {
                OTHER
            };
            map.entry(Box::from(key)).or_default().add(tally);
            names[slot] = Box::from(key);
        }
        let [model, user] = names;
        Tallied {
            day: today,
            model,
            user,
            tally,
        }
    }

    /// Puts back one row of the day's breakdown (at start), under the
    /// name the store kept.
    pub fn restore_tally(&mut self, today: NaiveDate, user: bool, name: &str, tally: Tally) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.by_model.clear();
            self.by_user.clear();
        }
        let map = if user {
            &mut self.by_user
        } else {
            &mut self.by_model
        };
        map.entry(Box::from(name)).or_default().add(tally);
    }

    /// Puts back a rule's money spent today (at start).
    pub fn restore_spent(&mut self, today: NaiveDate, keys: &ScopeKeys, nano: u64) {
        self.each_counts(0, keys, |counts| counts.spend(today, nano));
    }

    fn each_counts(&mut self, now_ms: u64, keys: &ScopeKeys, mut f: impl FnMut(&mut ScopeCounts)) {
        for (map, key) in [
            (&mut self.models, &keys.model),
            (&mut self.users, &keys.user),
        ] {
            if let Some(key) = key {
                let counts = map.entry(key.clone()).or_default();
                counts.evict(now_ms);
                f(counts);
            }
        }
    }

    /// Forgets the counts of rules with nothing left in any window (so
    /// users seen once do not hold a place for ever).
    pub fn forget_idle(&mut self, now_ms: u64, today: NaiveDate) {
        for map in [&mut self.models, &mut self.users] {
            map.retain(|_, counts| {
                counts.evict(now_ms);
                !counts.is_idle(today)
            });
        }
    }

    /// The day's breakdown, largest first (by cost, then tokens, then
    /// requests), at most `top` rows per dimension; empty for another day.
    pub fn breakdown(&self, today: NaiveDate, top: usize) -> (Vec<Named>, Vec<Named>) {
        if self.day != Some(today) {
            return (Vec::new(), Vec::new());
        }
        // Every snapshot (one per proxied answer) builds this: the top
        // rows are selected first, so only they are sorted and copied.
        let rows = |map: &HashMap<Box<str>, Tally>| {
            let order = |(an, a): &(&str, &Tally), (bn, b): &(&str, &Tally)| {
                (b.cost_nano, b.tokens, b.requests)
                    .cmp(&(a.cost_nano, a.tokens, a.requests))
                    .then_with(|| an.cmp(bn))
            };
            let mut rows: Vec<(&str, &Tally)> = map.iter().map(|(k, t)| (&**k, t)).collect();
            if top == 0 {
                return Vec::new();
            }
            if rows.len() > top {
                rows.select_nth_unstable_by(top - 1, order);
                rows.truncate(top);
            }
            rows.sort_by(order);
            rows.into_iter()
                .map(|(k, t)| (k.to_string(), *t))
                .collect::<Vec<Named>>()
        };
        (rows(&self.by_model), rows(&self.by_user))
    }

    pub fn model_counts(&self, key: &str) -> Option<&ScopeCounts> {
        self.models.get(key)
    }

    pub fn user_counts(&self, key: &str) -> Option<&ScopeCounts> {
        self.users.get(key)
    }

    pub fn clear(&mut self) {
        *self = Scopes::default();
    }

    pub fn heap_bytes(&self) -> usize {
        let per_key = std::mem::size_of::<Box<str>>() + 16;
        self.models
            .iter()
            .chain(self.users.iter())
            .map(|(k, c)| per_key + k.len() + std::mem::size_of::<ScopeCounts>() + c.heap_bytes())
            .sum::<usize>()
            + (self.by_model.capacity() + self.by_user.capacity())
                * (per_key + std::mem::size_of::<Tally>())
    }
}

/// A call as the day's breakdown counted it: for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tallied {
    pub day: NaiveDate,
    pub model: Box<str>,
    pub user: Box<str>,
    pub tally: Tally,
}

/// A settled call, as [`Scopes::settle`] counts it.
pub struct Settled<'a> {
    pub keys: &'a ScopeKeys,
    pub scope: &'a CallScope,
    pub tally: Tally,
    pub count_request: bool,
}

/// What a call needs of its rules.
pub(super) struct Need {
    pub tokens: u64,
    pub cost_nano: u64,
    pub today: NaiveDate,
    /// When the local day ends (a rule's money resets then).
    pub day_end_ms: u64,
}

/// Whether a call under `keys` fits every per-model and per-user limit,
/// beside what is used and held for calls in flight; the refusal that
/// waits longest if not. `ws` and the scopes of `keys` must be advanced.
pub(super) fn scoped_room(
    ws: &WorkspaceState,
    now_ms: u64,
    keys: &ScopeKeys,
    need: &Need,
) -> Option<Limited> {
    let settings = ws.settings.as_deref()?;
    let empty = ScopeCounts::default();
    let mut refusal = None;
    let scopes = [
        keys.model.as_deref().and_then(|key| {
            let rule = settings.model_limits.get(key)?;
            let counts = ws.scopes.model_counts(key).unwrap_or(&empty);
            let held = ws.reservations.held_by(|k| k.model.as_deref() == Some(key));
            Some((format!("Model {key}"), rule, counts, held))
        }),
        keys.user.as_deref().and_then(|key| {
            let rule = user_rule(settings, key)?;
            let counts = ws.scopes.user_counts(key).unwrap_or(&empty);
            let held = ws.reservations.held_by(|k| k.user.as_deref() == Some(key));
            let label = if key == OTHER_USERS {
                format!("Users beyond the first {MAX_USER_SCOPES} (together)")
            } else {
                format!("User {key}")
            };
            Some((label, rule, counts, held))
        }),
    ];
    for (label, rule, counts, (held_tokens, held_cost)) in scopes.into_iter().flatten() {
        for refused in rule_refusals(&label, rule, counts, now_ms, need, held_tokens, held_cost) {
            refusal = Limited::longest(refusal, refused);
        }
    }
    refusal
}

fn rule_refusals(
    label: &str,
    rule: &ScopedRule,
    counts: &ScopeCounts,
    now_ms: u64,
    need: &Need,
    held_tokens: u64,
    held_cost: u64,
) -> Vec<Limited> {
    // `counts` was advanced to `now_ms` ([`Scopes::advance`]).
    let (minute, day) = (&counts.minute, &counts.day);
    let windows = [
        (
            "requests per minute",
            minute,
            Metric::Requests,
            rule.requests_per_minute,
            0,
            1,
        ),
        (
            "requests per day",
            day,
            Metric::Requests,
            rule.requests_per_day,
            0,
            1,
        ),
        (
            "tokens per minute",
            minute,
            Metric::Tokens,
            rule.tokens_per_minute,
            held_tokens,
            need.tokens,
        ),
        (
            "tokens per day",
            day,
            Metric::Tokens,
            rule.tokens_per_day,
            held_tokens,
            need.tokens,
        ),
    ];
    let mut refusals = Vec::new();
    for (name, window, metric, limit, held, wanted) in windows {
        let Some(limit) = limit else { continue };
        let wait = window_wait(window, metric, limit, held, now_ms, wanted);
        if wait == Some(0) {
            continue;
        }
        let kind = match metric {
            Metric::Requests => LimitKind::Requests,
            Metric::Tokens => LimitKind::Tokens,
        };
        let used = window.total(metric);
        let reason = match metric {
            Metric::Requests => format!("{label} {name} limit: {used} of {limit} used."),
            Metric::Tokens => format!(
                "{label} {name} limit: {used} used and {held} held for calls in flight of {limit}; this request needs {wanted}."
            ),
        };
        refusals.push(Limited {
            kind,
            wait_ms: wait,
            reason,
        });
    }
    if let Some(budget) = rule.budget_nano_per_day {
        let spent = counts.spent_on(need.today);
        if spent
            .saturating_add(held_cost)
            .saturating_add(need.cost_nano)
            > budget
        {
            let wait_ms = if need.cost_nano > budget {
                None
            } else if spent.saturating_add(need.cost_nano) <= budget {
                // Only calls in flight are in the way; they settle soon,
                // most for less than their worst case.
                Some(IN_FLIGHT_RETRY_MS)
            } else {
                Some(need.day_end_ms.saturating_sub(now_ms).max(1))
            };
            refusals.push(Limited {
                kind: LimitKind::Spend,
                wait_ms,
                reason: format!(
                    "{label} daily budget of {}: {} spent and {} held for calls in flight; this call may cost up to {}.",
                    format_usd(budget),
                    format_usd(spent),
                    format_usd(held_cost),
                    format_usd(need.cost_nano)
                ),
            });
        }
    }
    refusals
}

/// The fullest of a rule's windows, in percent of its limit (for the
/// breakdown's rows).
pub(super) fn rule_percentage(rule: &ScopedRule, counts: &ScopeCounts, today: NaiveDate) -> f64 {
    let share = |used: u64, limit: Option<u64>| match limit {
        Some(0) => 100.0,
        Some(limit) => used as f64 * 100.0 / limit as f64,
        None => 0.0,
    };
    [
        share(
            counts.minute.total(Metric::Requests),
            rule.requests_per_minute,
        ),
        share(counts.day.total(Metric::Requests), rule.requests_per_day),
        share(counts.minute.total(Metric::Tokens), rule.tokens_per_minute),
        share(counts.day.total(Metric::Tokens), rule.tokens_per_day),
        share(counts.spent_on(today), rule.budget_nano_per_day),
    ]
    .into_iter()
    .fold(0.0f64, f64::max)
    .min(100.0)
}

/// The user rule that governs `key` (for the breakdown).
pub(super) fn rule_for_user<'a>(
    settings: &'a WorkspaceSettings,
    key: &str,
) -> Option<&'a ScopedRule> {
    user_rule(settings, key)
}

/// Longest end-user label accepted (`X-Quota-User`, a body's `user`, the
/// record API's `user`).
pub const MAX_USER_LABEL_LEN: usize = 200;

/// Longest model name accepted (a proxied body's `model`, the reserve and
/// record APIs' `model`): far above any real one (a fine-tune's is under
/// 100), and what keeps the day's breakdown, its rows in the store and
/// every snapshot bounded; unchecked, a proxied body of 32 MiB could name
/// a model of as much, a thousand times a day.
pub const MAX_MODEL_NAME_LEN: usize = 200;

/// Whether `label` may name an end user: 1 to [`MAX_USER_LABEL_LEN`]
/// characters, none of them control characters, not a name the breakdown
/// uses for its own rows; the problem if not.
pub fn check_user_label(label: &str) -> Result<(), String> {
    check_name(label, MAX_USER_LABEL_LEN)
}

/// Whether `name` may name a call's model: as a user label, within
/// [`MAX_MODEL_NAME_LEN`]; the problem if not.
pub fn check_model_name(name: &str) -> Result<(), String> {
    check_name(name, MAX_MODEL_NAME_LEN)
}

fn check_name(name: &str, max_len: usize) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > max_len {
        return Err(format!("must be 1 to {max_len} characters"));
    }
    // The breakdown's own rows: a label of one would be summed with the
    // calls that named nobody or with the names past the cap (in the
    // snapshot, the export and the store), and `OTHER_USERS` would put
    // its calls in the scope users past the cap share.
    if [UNNAMED, OTHER, OTHER_USERS].contains(&name) {
        return Err(format!("must not be {name:?} (a row of the breakdown)"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}
