//! `Leaderboard`: one SQLite-backed Durable Object per category (named by it, `api_usage`, …)
//! holding every board of that category, one per period (`daily:2026-11-25`, `weekly:2026-W48`,
//! `monthly:2026-11`, `all_time:all_time`).
//!
//! Sharding by category keeps each event's four boards in one object, so a batch updates all its
//! periods in one transaction, and keeps every board whole, so the top N is one index scan.
//! Writes arrive pre-batched (one call per ingest request and category, up to 1,000 events),
//! which is what keeps one object per category far below its ~1,000 requests/s.
//!
//! Order within a board: score descending, then `reached_at` ascending (the event time at which
//! the member's score was complete: who got there first), then user id. The index
//! `(board, score DESC, reached_at, user_id)` serves the top N directly. A member's rank comes from
//! the `buckets` table (members per score bucket, `domain::rewards::bucket`): the sum over the
//! buckets above plus two short index ranges, instead of counting every member ahead.
//!
//! Each batch has an id that the object remembers for `BATCH_RETENTION_SECONDS`, so a re-sent
//! batch (the cron re-publishes batches D1 has not seen confirmed) counts once.

use crate::domain::rewards::{self, Category, Entry};
use crate::timing::Meter;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::HashMap;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, State};

pub const BINDING: &str = "LEADERBOARDS";
/// Longer than the cron re-publishes a batch (`rewards::REPUBLISH_WITHIN_SECONDS`).
const BATCH_RETENTION_SECONDS: i64 = 8 * 86_400;

#[derive(Serialize, Deserialize)]
struct Batch {
    id: String,
    entries: Vec<Entry>,
    /// The oldest boards still kept (`domain::rewards::oldest_kept`): older ones are not written.
    oldest_kept: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StandingQuery {
    board: String,
    limit: u32,
    user_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    pub rank: i64,
    pub user_id: String,
    pub score: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mine {
    pub rank: i64,
    pub score: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub entries: Vec<Ranked>,
    pub me: Option<Mine>,
}

#[durable_object(fetch)]
pub struct Leaderboard {
    state: State,
    ready: Cell<bool>,
    faults: super::Faults,
}

impl DurableObject for Leaderboard {
    fn new(state: State, env: Env) -> Self {
        Leaderboard { state, ready: Cell::new(false), faults: super::Faults::from_env(&env) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            sql.exec(
                "CREATE TABLE IF NOT EXISTS scores (board TEXT NOT NULL, user_id TEXT NOT NULL, score INTEGER NOT NULL,
                 reached_at INTEGER NOT NULL, PRIMARY KEY (board, user_id)) WITHOUT ROWID",
                None,
            )?;
            sql.exec("CREATE INDEX IF NOT EXISTS scores_by_rank ON scores (board, score DESC, reached_at, user_id)", None)?;
            sql.exec(
                "CREATE TABLE IF NOT EXISTS buckets (board TEXT NOT NULL, bucket INTEGER NOT NULL, members INTEGER NOT NULL,
                 PRIMARY KEY (board, bucket)) WITHOUT ROWID",
                None,
            )?;
            sql.exec("CREATE TABLE IF NOT EXISTS boards (board TEXT PRIMARY KEY) WITHOUT ROWID", None)?;
            super::create_batch_log(&sql)?;
            self.ready.set(true);
        }
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/apply") => {
                let batch: Batch = req.json().await?;
                let now = worker::Date::now().as_millis() as i64 / 1000;
                let fresh = self.apply(sql, batch, now)?;
                Response::ok(if fresh { "applied" } else { "duplicate" })
            }
            (Method::Post, "/prune") => {
                let prune: Prune = req.json().await?;
                Response::ok(prune_boards(&sql, &prune)?.to_string())
            }
            (Method::Post, "/standing") => {
                let query: StandingQuery = req.json().await?;
                Response::from_json(&read_standing(&sql, &query)?)
            }
            _ => Response::error("not found", 404),
        }
    }
}

impl Leaderboard {
    /// Applies a batch in one transaction; `false` when the batch was applied before.
    fn apply(&self, sql: SqlStorage, batch: Batch, now: i64) -> worker::Result<bool> {
        super::write_transaction(&self.state, &self.faults, move || {
            if !super::first_delivery(&sql, &batch.id, now, BATCH_RETENTION_SECONDS)? {
                return Ok(false);
            }
            let updates = rewards::updates(&batch.entries, &batch.oldest_kept);
            // The members' current scores, then their new ones and the bucket moves (a handful of
            // statements per batch, each over a JSON array, whatever the batch's size).
            let keys: Vec<(&str, &str)> = updates.iter().map(|u| (u.board.as_str(), u.user_id.as_str())).collect();
            let current: Vec<Current> = sql
                .exec(
                    "SELECT s.board, s.user_id, s.score FROM json_each(?) AS j
                     JOIN scores AS s ON s.board = j.value ->> 0 AND s.user_id = j.value ->> 1",
                    vec![to_json(&keys)?.into()],
                )?
                .to_array()?;
            let current: HashMap<(String, String), i64> = current.into_iter().map(|c| ((c.board, c.user_id), c.score)).collect();
            let (standings, moves) =
                rewards::apply(updates, |board, user| current.get(&(board.to_owned(), user.to_owned())).copied());
            let standings = to_json(&standings)?;
            sql.exec(
                "INSERT INTO scores (board, user_id, score, reached_at)
                 SELECT value ->> 'board', value ->> 'user_id', value ->> 'score', value ->> 'reached_at' FROM json_each(?) WHERE true
                 ON CONFLICT (board, user_id) DO UPDATE SET score = excluded.score, reached_at = max(reached_at, excluded.reached_at)",
                vec![standings.clone().into()],
            )?;
            sql.exec(
                "INSERT INTO boards (board) SELECT DISTINCT value ->> 'board' FROM json_each(?) WHERE true ON CONFLICT DO NOTHING",
                vec![standings.into()],
            )?;
            let moves = to_json(&moves)?;
            sql.exec(
                "INSERT INTO buckets (board, bucket, members)
                 SELECT value ->> 'board', value ->> 'bucket', value ->> 'members' FROM json_each(?) WHERE true
                 ON CONFLICT (board, bucket) DO UPDATE SET members = members + excluded.members",
                vec![moves.clone().into()],
            )?;
            sql.exec(
                "DELETE FROM buckets WHERE members = 0 AND (board, bucket) IN (SELECT value ->> 'board', value ->> 'bucket' FROM json_each(?))",
                vec![moves.into()],
            )?;
            Ok(true)
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Prune {
    /// Per expiring window, its oldest board still kept (`domain::rewards::oldest_kept`).
    oldest_kept: Vec<String>,
    limit: u32,
}

/// Deletes expired boards, at most `limit` score rows per call: a board's buckets and name go
/// first, so a board being deleted is never half-counted by a rank (its scores are already
/// outside any period a client is told is kept). Returns the rows deleted.
fn prune_boards(sql: &SqlStorage, prune: &Prune) -> worker::Result<usize> {
    #[derive(Deserialize)]
    struct Name {
        board: String,
    }
    let mut deleted = 0usize;
    for kept in &prune.oldest_kept {
        let Some((window, _)) = kept.split_once(':') else { continue };
        let expired: Vec<Name> = sql
            .exec("SELECT board FROM boards WHERE board > ? AND board < ?", vec![format!("{window}:").into(), kept.clone().into()])?
            .to_array()?;
        for Name { board } in expired {
            sql.exec("DELETE FROM buckets WHERE board = ?", vec![board.clone().into()])?;
            let budget = i64::from(prune.limit).saturating_sub(deleted as i64);
            if budget <= 0 {
                return Ok(deleted);
            }
            let rows = sql
                .exec(
                    "DELETE FROM scores WHERE board = ? AND user_id IN (SELECT user_id FROM scores WHERE board = ? LIMIT ?)",
                    vec![board.clone().into(), board.clone().into(), budget.into()],
                )?
                .rows_written();
            deleted += rows;
            if (rows as i64) < budget {
                sql.exec("DELETE FROM boards WHERE board = ?", vec![board.into()])?;
            }
        }
    }
    Ok(deleted)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> worker::Result<String> {
    serde_json::to_string(value).map_err(|e| worker::Error::RustError(e.to_string()))
}

#[derive(Deserialize)]
struct Current {
    board: String,
    user_id: String,
    score: i64,
}

#[derive(Deserialize)]
struct Row {
    user_id: String,
    score: i64,
}

#[derive(Deserialize)]
struct Position {
    score: i64,
    reached_at: i64,
}

#[derive(Deserialize)]
struct Count {
    ahead: i64,
}

fn read_standing(sql: &SqlStorage, q: &StandingQuery) -> worker::Result<Standing> {
    let top: Vec<Row> = sql
        .exec(
            "SELECT user_id, score FROM scores WHERE board = ? ORDER BY score DESC, reached_at, user_id LIMIT ?",
            vec![q.board.clone().into(), i64::from(q.limit).into()],
        )?
        .to_array()?;
    let entries = top.into_iter().zip(1..).map(|(r, rank)| Ranked { rank, user_id: r.user_id, score: r.score }).collect();
    let mine: Vec<Position> = sql
        .exec("SELECT score, reached_at FROM scores WHERE board = ? AND user_id = ?", vec![q.board.clone().into(), q.user_id.clone().into()])?
        .to_array()?;
    let Some(p) = mine.first() else {
        return Ok(Standing { entries, me: None });
    };
    // Ahead: every member of a higher bucket, the higher scores of the member's own bucket, and
    // the ties that reached the score first (or, at the same instant, have a smaller user id).
    let board = || q.board.clone().into();
    let ahead: Vec<Count> = sql
        .exec(
            "SELECT (SELECT COALESCE(SUM(members), 0) FROM buckets WHERE board = ? AND bucket > ?)
                  + (SELECT COUNT(*) FROM scores WHERE board = ? AND score > ? AND score <= ?)
                  + (SELECT COUNT(*) FROM scores WHERE board = ? AND score = ? AND (reached_at, user_id) < (?, ?)) AS ahead",
            vec![
                board(),
                rewards::bucket(p.score).into(),
                board(),
                p.score.into(),
                rewards::bucket_ceiling(p.score).into(),
                board(),
                p.score.into(),
                p.reached_at.into(),
                q.user_id.clone().into(),
            ],
        )?
        .to_array()?;
    let rank = ahead.first().map_or(0, |c| c.ahead) + 1;
    Ok(Standing { entries, me: Some(Mine { rank, score: p.score }) })
}

// --- client ------------------------------------------------------------------------------------

/// Adds a batch's entries to the category's boards; a batch id seen before changes nothing.
pub async fn apply(env: &Env, category: Category, batch_id: &str, entries: Vec<Entry>, oldest_kept: &[String]) -> super::Result<()> {
    let batch = Batch { id: batch_id.to_owned(), entries, oldest_kept: oldest_kept.to_vec() };
    let body = serde_json::to_string(&batch)?;
    super::call(env, &Meter::default(), BINDING, category.as_str(), Method::Post, "/apply", Some(body)).await.map(|_| ())
}

/// Deletes up to `limit` rows of the category's boards older than `oldest_kept`; the rows deleted.
pub async fn prune(env: &Env, category: Category, oldest_kept: &[String], limit: u32) -> super::Result<usize> {
    let body = serde_json::to_string(&Prune { oldest_kept: oldest_kept.to_vec(), limit })?;
    let mut response = super::call(env, &Meter::default(), BINDING, category.as_str(), Method::Post, "/prune", Some(body)).await?;
    let text = response.text().await?;
    text.parse().map_err(|_| super::Error(format!("Leaderboard /prune answered {text:?}")))
}

/// The top `limit` of a board and `user_id`'s place on it (one call, counted on `meter`).
pub async fn standing(env: &Env, meter: &Meter, category: Category, board: &str, limit: u32, user_id: &str) -> super::Result<Standing> {
    let query = StandingQuery { board: board.to_owned(), limit, user_id: user_id.to_owned() };
    let body = serde_json::to_string(&query)?;
    let mut response = super::call(env, meter, BINDING, category.as_str(), Method::Post, "/standing", Some(body)).await?;
    Ok(response.json::<Standing>().await?)
}
