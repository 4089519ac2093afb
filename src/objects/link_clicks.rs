//! `LinkClicks`: one SQLite-backed Durable Object per edge link (named `aff:CODE`, `ref:CODE`,
//! `cmp:CODE`) counting clicks and unique visitors per hour.
//!
//! Clicks reach it in batches: `track` adds the click to the isolate's pending batch for that
//! link; the click that starts a batch flushes it after `FLUSH_AFTER` (or the click that fills
//! it, at `MAX_BATCH`) from its own `wait_until` (the others need none), which
//! keeps the isolate alive until the batch is stored: a click waits in memory only while the
//! request that will send it is still running. (Requests do not wait for each other: the
//! runtime forbids one request's promises from being resolved by another's I/O.) A hot link
//! costs one Durable Object round trip per batch, not per click. Each batch has an id that the
//! object remembers for a day, so a retried batch counts once. A batch the object still has not
//! confirmed after three attempts is parked in D1 and sent again by the cron (`links::resend`).
//! A batch is applied in one transaction with the record of its id: it counts entirely or not at
//! all, and a batch that failed part-way leaves no id behind, so its retry counts it.
//! Visitor ids are kept 48 hours (long enough to dedupe within an hour) and then deleted.

use crate::domain::clicks;
use crate::domain::time::{Period, Timestamp};
use crate::timing::Meter;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;
use worker::{durable_object, Delay, DurableObject, Env, Method, Request, Response, SqlStorage, State};

pub const BINDING: &str = "LINK_CLICKS";
const VISITOR_RETENTION_HOURS: i64 = 48;
/// How long the object remembers a batch id: a batch re-sent within it counts once
/// (`links::PARK_HOURS` stays below it).
pub const BATCH_RETENTION_SECONDS: i64 = 86_400;
/// How long the first click of a batch waits for others before the batch is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// A batch this large is sent at once.
pub const MAX_BATCH: usize = 500;
const SEND_ATTEMPTS: usize = 3;
/// An attempt the object has not answered within this is given up (and the batch retried, then
/// parked), well inside the time the runtime keeps a request's `wait_until` work alive.
const SEND_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Click {
    /// Unix seconds.
    pub at: i64,
    /// Day-scoped visitor pseudonym (`domain::clicks::visitor_id`).
    pub visitor: String,
}

#[derive(Serialize, Deserialize)]
struct Batch {
    id: String,
    clicks: Vec<Click>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DayStats {
    pub date: String,
    pub clicks: i64,
    pub unique_visitors: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub clicks: i64,
    pub unique_visitors: i64,
    pub by_day: Vec<DayStats>,
}

#[durable_object(fetch)]
pub struct LinkClicks {
    state: State,
    ready: Cell<bool>,
    pruned_before: Cell<i64>,
    faults: super::Faults,
}

impl DurableObject for LinkClicks {
    fn new(state: State, env: Env) -> Self {
        LinkClicks { state, ready: Cell::new(false), pruned_before: Cell::new(0), faults: super::Faults::from_env(&env) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS hourly (hour INTEGER PRIMARY KEY, clicks INTEGER NOT NULL, uniques INTEGER NOT NULL)",
                None,
            )?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS visitors (hour INTEGER NOT NULL, visitor TEXT NOT NULL, PRIMARY KEY (hour, visitor)) WITHOUT ROWID",
                None,
            )?;
            super::create_batch_log(&sql)?;
            self.ready.set(true);
        }
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/record") => {
                let batch: Batch = req.json().await?;
                let now = worker::Date::now().as_millis() as i64 / 1000;
                let pruned_before = self.pruned_before.get();
                let applied = super::write_transaction(&self.state, &self.faults, move || {
                    if !super::first_delivery(&sql, &batch.id, now, BATCH_RETENTION_SECONDS)? {
                        return Ok(None);
                    }
                    record(&sql, &batch.clicks, pruned_before).map(Some)
                })?;
                match applied {
                    None => Response::ok("duplicate"),
                    Some(pruned_before) => {
                        self.pruned_before.set(pruned_before);
                        Response::ok("recorded")
                    }
                }
            }
            (Method::Get, "/stats") => {
                let query = crate::domain::links::query_pairs(&req.inner().url());
                let bound = |name: &str, default: i64| {
                    query.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
                };
                Response::from_json(&read_stats(&sql, bound("from", 0), bound("to", i64::from(i32::MAX)))?)
            }
            _ => Response::error("not found", 404),
        }
    }
}

/// Counts a batch's clicks (inside the transaction of `fetch`); returns the hour before which
/// visitor ids are now deleted.
fn record(sql: &SqlStorage, batch: &[Click], mut pruned_before: i64) -> worker::Result<i64> {
    // Two statements per hour a batch spans (almost always one), not per click: the visitors as
    // one JSON array (a visitor seen before that hour, or twice in the batch, is not new), then
    // the hour's counts.
    let mut hours: Vec<(i64, Vec<&str>)> = Vec::new();
    for click in batch {
        let hour = clicks::hour(Timestamp::from_unix(click.at));
        match hours.iter_mut().find(|(h, _)| *h == hour) {
            Some((_, visitors)) => visitors.push(&click.visitor),
            None => hours.push((hour, vec![&click.visitor])),
        }
    }
    for (hour, visitors) in hours {
        let list = serde_json::to_string(&visitors).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let fresh = sql
            .exec(
                "INSERT INTO visitors (hour, visitor) SELECT ?, value FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
                vec![hour.into(), list.into()],
            )?
            .rows_written();
        sql.exec(
            "INSERT INTO hourly (hour, clicks, uniques) VALUES (?, ?, ?)
             ON CONFLICT (hour) DO UPDATE SET clicks = clicks + excluded.clicks, uniques = uniques + excluded.uniques",
            vec![hour.into(), (visitors.len() as i64).into(), (fresh as i64).into()],
        )?;
        let horizon = hour - VISITOR_RETENTION_HOURS;
        if horizon > pruned_before {
            sql.exec("DELETE FROM visitors WHERE hour < ?", vec![horizon.into()])?;
            pruned_before = horizon;
        }
    }
    Ok(pruned_before)
}

#[derive(Deserialize)]
struct HourRow {
    hour: i64,
    clicks: i64,
    uniques: i64,
}

fn read_stats(sql: &SqlStorage, from_hour: i64, to_hour: i64) -> worker::Result<Stats> {
    let rows: Vec<HourRow> = sql
        .exec("SELECT hour, clicks, uniques FROM hourly WHERE hour >= ? AND hour < ? ORDER BY hour", vec![from_hour.into(), to_hour.into()])?
        .to_array()?;
    let mut stats = Stats::default();
    for row in rows {
        stats.clicks += row.clicks;
        stats.unique_visitors += row.uniques;
        let date = Timestamp::from_unix(row.hour * 3_600).date();
        match stats.by_day.last_mut() {
            Some(day) if day.date == date => {
                day.clicks += row.clicks;
                day.unique_visitors += row.uniques;
            }
            _ => stats.by_day.push(DayStats { date, clicks: row.clicks, unique_visitors: row.uniques }),
        }
    }
    Ok(stats)
}

// --- client ------------------------------------------------------------------------------------

/// Sends a batch (as JSON: an `Unsent` body when the cron sends a parked one again), giving up
/// after `SEND_TIMEOUT`; the object ignores a batch id it has seen, so retries cannot double
/// count.
pub async fn send(env: &Env, link: &str, body: String) -> super::Result<()> {
    use futures_util::future::{select, Either};
    let sent = std::pin::pin!(post(env, link, body));
    let timeout = std::pin::pin!(Delay::from(SEND_TIMEOUT));
    match select(sent, timeout).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(super::Error(format!("{BINDING} {link}: no answer within {SEND_TIMEOUT:?}"))),
    }
}

thread_local! {
    /// Each link's batch waiting to be sent.
    static PENDING: RefCell<HashMap<String, Batch>> = RefCell::new(HashMap::new());
}

enum Role {
    /// Started a batch: flush it after `FLUSH_AFTER` unless someone else did.
    Leader(String),
    /// Filled a batch: flush it now.
    Filler(Batch),
    Follower,
}

fn enqueue(link: &str, click: Click) -> Role {
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        if let Some(batch) = pending.get_mut(link) {
            batch.clicks.push(click);
            if batch.clicks.len() < MAX_BATCH {
                return Role::Follower;
            }
            return pending.remove(link).map_or(Role::Follower, Role::Filler);
        }
        let id = crate::ids::new_id();
        pending.insert(link.to_owned(), Batch { id: id.clone(), clicks: vec![click] });
        Role::Leader(id)
    })
}

/// A batch the object did not confirm after `SEND_ATTEMPTS`: the caller parks it (in D1) for the
/// cron to send again (`links::resend`). The object may have applied it; it counts the batch's id once.
pub struct Unsent {
    pub link: String,
    pub batch_id: String,
    /// The batch as the object reads it.
    pub body: String,
    pub clicks: usize,
}

async fn flush(env: &Env, link: &str, batch: Batch) -> Option<Unsent> {
    let clicks = batch.clicks.len();
    let body = match serde_json::to_string(&batch) {
        Ok(body) => body,
        Err(e) => {
            crate::log::log("error", &serde_json::json!({"link": link, "lost_clicks": clicks, "batch": batch.id, "error": e.to_string()}));
            return None;
        }
    };
    let mut outcome = Ok(());
    for attempt in 0..SEND_ATTEMPTS {
        outcome = send(env, link, body.clone()).await;
        if outcome.is_ok() {
            return None;
        }
        if attempt + 1 < SEND_ATTEMPTS {
            Delay::from(Duration::from_millis(50 << attempt)).await;
        }
    }
    let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    crate::log::log("warn", &serde_json::json!({"link": link, "unsent_clicks": clicks, "batch": batch.id, "error": error, "retry": "cron"}));
    Some(Unsent { link: link.to_owned(), batch_id: batch.id, body, clicks })
}

async fn post(env: &Env, link: &str, body: String) -> super::Result<()> {
    super::call(env, &Meter::default(), BINDING, link, Method::Post, "/record", Some(body)).await.map(|_| ())
}

/// Counts one click: adds it to the isolate's pending batch for `link`. The click that starts a
/// batch (or fills it) gets back the work that sends it, for the request's `wait_until`, which
/// keeps the isolate alive until the batch is stored (or handed back unsent, to be parked);
/// every other click is done at once.
pub fn track(env: &Env, link: String, click: Click) -> Option<impl std::future::Future<Output = Option<Unsent>> + 'static> {
    let role = enqueue(&link, click);
    if matches!(role, Role::Follower) {
        return None;
    }
    let env = env.clone();
    Some(async move {
        match role {
            Role::Leader(id) => {
                Delay::from(FLUSH_AFTER).await;
                let mine = PENDING.with(|p| {
                    let mut p = p.borrow_mut();
                    if p.get(&link).is_some_and(|batch| batch.id == id) { p.remove(&link) } else { None }
                });
                match mine {
                    Some(pending) => flush(&env, &link, pending).await,
                    None => None,
                }
            }
            Role::Filler(pending) => flush(&env, &link, pending).await,
            Role::Follower => None,
        }
    })
}

/// A link's counts within a period (whole hours): one call, counted on `meter`.
pub async fn stats(env: &Env, meter: &Meter, link: &str, period: Period) -> super::Result<Stats> {
    if period.is_empty() {
        return Ok(Stats::default()); // (counts are kept by the hour: an empty period would round up to one)
    }
    let from = clicks::hour(period.from);
    let to = clicks::hour(period.to.plus_seconds(3_599));
    let mut response = super::call(env, meter, BINDING, link, Method::Get, &format!("/stats?from={from}&to={to}"), None).await?;
    Ok(response.json::<Stats>().await?)
}
