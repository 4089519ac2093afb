//! `ResellerQuota`: one SQLite-backed Durable Object per reseller (named by its id) counting the
//! API calls its end users make per UTC calendar month, against the contract's monthly quota. It is
//! the source of truth of the count: a report is admitted whole or refused whole in one
//! transaction (so parallel reports never pass the quota), and a counted report with an
//! idempotency key is counted once, its answer kept for `KEY_RETENTION_SECONDS` and given again to
//! a retry (the same key for another report is a conflict). An
//! admin's reset starts the month's quota again without forgetting the calls (the month's total
//! keeps them, for reports); the cron copies the totals to D1 (`jobs::sync_reseller_usage`).

use crate::domain::resellers::admit;
use crate::timing::Meter;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

pub const BINDING: &str = "RESELLER_QUOTAS";
const KEY_RETENTION_SECONDS: i64 = 2 * 86_400;

/// A report of calls: `month` is the UTC month `YYYY-MM` of the call, `limit` the contract's
/// quota for it (read by the worker with the reseller's status).
#[derive(Serialize, Deserialize)]
pub struct Report {
    pub month: String,
    pub limit: i64,
    pub calls: i64,
    pub key: Option<String>,
    /// What the key stands for (the end user and the calls): a key reused for another report is
    /// a conflict, never that report's answer.
    pub fingerprint: String,
}

/// The answer to a report: whether it was counted, and the month's quota after it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Admission {
    pub accepted: bool,
    /// The month counted.
    pub month: String,
    /// Calls counted against the quota this month.
    pub used: i64,
    pub limit: i64,
    /// An earlier answer to the same idempotency key.
    #[serde(default)]
    pub replayed: bool,
    /// The idempotency key was used for another report: nothing was counted.
    #[serde(default)]
    pub conflict: bool,
}

/// A month's calls: all accepted (`calls`) and those counted against the quota since the last
/// reset (`used`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MonthUsage {
    pub month: String,
    pub calls: i64,
    pub used: i64,
}

#[durable_object(fetch)]
pub struct ResellerQuota {
    state: State,
    ready: Cell<bool>,
}

impl DurableObject for ResellerQuota {
    fn new(state: State, _env: Env) -> Self {
        ResellerQuota { state, ready: Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS months (month TEXT PRIMARY KEY, calls INTEGER NOT NULL, base INTEGER NOT NULL DEFAULT 0)",
                None,
            )?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, answer TEXT NOT NULL, at INTEGER NOT NULL)",
                None,
            )?;
            sql.exec("CREATE INDEX IF NOT EXISTS reports_by_time ON reports (at)", None)?;
            self.ready.set(true);
        }
        let now = worker::Date::now().as_millis() as i64 / 1000;
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/report") => {
                let report: Report = req.json().await?;
                let answer = super::transaction(&self.state, move || apply(&sql, &report, now))?;
                Response::from_json(&answer)
            }
            (Method::Post, "/reset") => {
                let month: MonthUsage = req.json().await?;
                let usage = super::transaction(&self.state, move || {
                    sql.exec(
                        "INSERT INTO months (month, calls, base) VALUES (?, 0, 0) ON CONFLICT (month) DO UPDATE SET base = calls",
                        vec![month.month.clone().into()],
                    )?;
                    read(&sql, &month.month)
                })?;
                Response::from_json(&usage)
            }
            (Method::Get, "/usage") => {
                let query = crate::domain::links::query_pairs(&req.inner().url());
                let months: Vec<&str> = query.iter().filter(|(k, _)| k == "month").map(|(_, v)| v.as_str()).collect();
                let usage = months.iter().map(|m| read(&sql, m)).collect::<worker::Result<Vec<_>>>()?;
                Response::from_json(&usage)
            }
            _ => Response::error("not found", 404),
        }
    }
}

#[derive(Deserialize)]
struct MonthRow {
    calls: i64,
    base: i64,
}

fn read(sql: &SqlStorage, month: &str) -> worker::Result<MonthUsage> {
    let rows: Vec<MonthRow> = sql.exec("SELECT calls, base FROM months WHERE month = ?", vec![month.to_owned().into()])?.to_array()?;
    let (calls, base) = rows.first().map_or((0, 0), |r| (r.calls, r.base));
    Ok(MonthUsage { month: month.to_owned(), calls, used: calls - base })
}

#[derive(Deserialize)]
struct AnswerRow {
    fingerprint: String,
    answer: String,
}

/// Admits a report (inside the transaction of `fetch`): the answer kept for its key, if any. Only
/// a counted report's answer is kept: a refused one may be sent again once the quota allows.
fn apply(sql: &SqlStorage, report: &Report, now: i64) -> worker::Result<Admission> {
    let refused = |used| Admission { accepted: false, month: report.month.clone(), used, limit: report.limit, replayed: false, conflict: false };
    if let Some(key) = &report.key {
        let earlier: Vec<AnswerRow> = sql.exec("SELECT fingerprint, answer FROM reports WHERE key = ?", vec![key.clone().into()])?.to_array()?;
        if let Some(row) = earlier.first() {
            if row.fingerprint != report.fingerprint {
                return Ok(Admission { conflict: true, ..refused(0) });
            }
            let mut answer: Admission = serde_json::from_str(&row.answer).map_err(|e| worker::Error::RustError(e.to_string()))?;
            answer.replayed = true;
            return Ok(answer);
        }
    }
    let usage = read(sql, &report.month)?;
    let Ok(used) = admit(usage.used, report.limit, report.calls) else { return Ok(refused(usage.used)) };
    sql.exec(
        "INSERT INTO months (month, calls, base) VALUES (?, ?, 0) ON CONFLICT (month) DO UPDATE SET calls = calls + excluded.calls",
        vec![report.month.clone().into(), report.calls.into()],
    )?;
    let answer = Admission { accepted: true, used, ..refused(used) };
    if let Some(key) = &report.key {
        let text = serde_json::to_string(&answer).map_err(|e| worker::Error::RustError(e.to_string()))?;
        sql.exec(
            "INSERT INTO reports (key, fingerprint, answer, at) VALUES (?, ?, ?, ?)",
            vec![key.clone().into(), report.fingerprint.clone().into(), text.into(), now.into()],
        )?;
        sql.exec("DELETE FROM reports WHERE at < ?", vec![(now - KEY_RETENTION_SECONDS).into()])?;
    }
    Ok(answer)
}

// --- client ------------------------------------------------------------------------------------

/// Reports calls of a reseller's end user: admitted whole or refused whole.
pub async fn report(env: &Env, meter: &Meter, reseller_id: &str, report: &Report) -> super::Result<Admission> {
    let body = serde_json::to_string(report)?;
    let mut response = super::call(env, meter, BINDING, reseller_id, Method::Post, "/report", Some(body)).await?;
    Ok(response.json().await?)
}

/// Starts the month's quota again (the calls stay in its total).
pub async fn reset(env: &Env, meter: &Meter, reseller_id: &str, month: &str) -> super::Result<MonthUsage> {
    let body = serde_json::to_string(&MonthUsage { month: month.to_owned(), ..MonthUsage::default() })?;
    let mut response = super::call(env, meter, BINDING, reseller_id, Method::Post, "/reset", Some(body)).await?;
    Ok(response.json().await?)
}

/// The reseller's usage of each of `months` (`YYYY-MM`).
pub async fn usage(env: &Env, meter: &Meter, reseller_id: &str, months: &[String]) -> super::Result<Vec<MonthUsage>> {
    let query: Vec<String> = months.iter().map(|m| format!("month={m}")).collect();
    let path = format!("/usage?{}", query.join("&"));
    let mut response = super::call(env, meter, BINDING, reseller_id, Method::Get, &path, None).await?;
    Ok(response.json().await?)
}
