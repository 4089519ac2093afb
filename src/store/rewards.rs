//! SQL of activity events, metric totals, badges and the leaderboard outbox (`activity_batches`).

use super::{args, changes, json_chunks, rows, Arg, Db, Error, Result};
use crate::domain::rewards::{Event, Metric, BADGES};
use crate::domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use worker::D1PreparedStatement;

/// An event as stored (and as the leaderboards are sent it).
#[derive(Clone, Debug, Deserialize)]
pub struct Counted {
    pub user_id: String,
    pub metric: String,
    pub amount: i64,
    pub occurred_at: i64,
}

impl Counted {
    /// The row's metric (the table's CHECK allows only known names).
    pub fn metric(&self) -> Option<Metric> {
        Metric::parse(&self.metric)
    }
}

/// The events a batch counted.
const BATCH_EVENTS: &str = "SELECT user_id, metric, amount, occurred_at FROM activity_events WHERE batch_id = ?1";

#[derive(Serialize)]
struct EventJson<'a> {
    id: &'a str,
    user_id: &'a str,
    metric: &'static str,
    amount: i64,
    occurred_at: i64,
}

/// The badge rules as an SQL table `(badge_id, metric, threshold)`, built once from
/// `domain::rewards::BADGES` (ids and metric names are fixed identifiers, tested to be plain).
fn badge_rules() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = BADGES
            .iter()
            .map(|b| format!("('{}', '{}', {})", b.id, b.category.metric().as_str(), b.threshold))
            .collect();
        format!("(SELECT column1 AS badge_id, column2 AS metric, column3 AS threshold FROM (VALUES {}))", rows.join(", "))
    })
}

/// The statements that count `events` as batch `batch_id`, atomically when run in one D1 batch:
/// - insert the events, skipping ids counted before (also within the batch), in one statement
///   per chunk of JSON (`json_chunks`);
/// - open the batch in the outbox if it counted anything;
/// - add the counted amounts to the users' totals;
/// - award every badge a total of this batch's users has reached (a held badge is skipped);
/// - read back what was counted (the last statement).
pub fn count(db: &Db, batch_id: &str, events: &[Event], now: Timestamp) -> Result<Vec<D1PreparedStatement>> {
    count_if(db, batch_id, events, now, None)
}

/// `count`, where the events are inserted (so counted at all) only if `guard` holds when the
/// batch runs: an SQL condition over `?4`, bound to the guard's argument (a referral's event is
/// counted only once its bonus is granted).
pub fn count_if(
    db: &Db,
    batch_id: &str,
    events: &[Event],
    now: Timestamp,
    guard: Option<(&str, &str)>,
) -> Result<Vec<D1PreparedStatement>> {
    let json: Vec<EventJson> = events
        .iter()
        .map(|e| EventJson {
            id: &e.id,
            user_id: &e.user_id,
            metric: e.metric.as_str(),
            amount: e.amount,
            occurred_at: e.occurred_at.unix(),
        })
        .collect();
    let now = now.unix();
    let insert = format!(
        "INSERT INTO activity_events (id, batch_id, user_id, metric, amount, occurred_at, received_at)
         SELECT e.value ->> 'id', ?2, e.value ->> 'user_id', e.value ->> 'metric', e.value ->> 'amount', e.value ->> 'occurred_at', ?3
         FROM json_each(?1) AS e WHERE {}
         ON CONFLICT (id) DO NOTHING",
        guard.map_or("true", |(condition, _)| condition)
    );
    let mut statements = Vec::new();
    for chunk in json_chunks(&json)? {
        let mut insert_args = args![chunk, batch_id, now].to_vec();
        insert_args.extend(guard.map(|(_, arg)| Arg::from(arg)));
        statements.push(db.statement(&insert, &insert_args)?);
    }
    statements.extend([
        db.statement(
            "INSERT INTO activity_batches (id, created_at)
             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM activity_events WHERE batch_id = ?1)",
            &args![batch_id, now],
        )?,
        db.statement(
            "INSERT INTO user_metrics (user_id, metric, value, updated_at)
             SELECT user_id, metric, SUM(amount), ?2 FROM activity_events WHERE batch_id = ?1 GROUP BY user_id, metric
             ON CONFLICT (user_id, metric) DO UPDATE SET value = value + excluded.value, updated_at = excluded.updated_at",
            &args![batch_id, now],
        )?,
        db.statement(
            &format!(
                "INSERT INTO user_badges (user_id, badge_id, awarded_at, source)
                 SELECT m.user_id, r.badge_id, ?2, 'auto' FROM user_metrics m JOIN {} r ON r.metric = m.metric AND m.value >= r.threshold
                 WHERE m.user_id IN (SELECT user_id FROM activity_events WHERE batch_id = ?1)
                 ON CONFLICT DO NOTHING",
                badge_rules()
            ),
            &args![batch_id, now],
        )?,
        db.statement(BATCH_EVENTS, &args![batch_id])?,
    ]);
    Ok(statements)
}

/// Position of the read-back statement from the end of `count`'s statements.
const COUNTED: usize = 1;
/// Position of the badge statement from the end of `count`'s statements.
const AWARDED: usize = 2;

pub struct Ingested {
    pub counted: Vec<Counted>,
    pub badges_awarded: usize,
}

/// Counts a batch of events (see `count`).
pub async fn ingest(db: &Db, batch_id: &str, events: &[Event], now: Timestamp) -> Result<Ingested> {
    let results = db.batch(count(db, batch_id, events, now)?).await?;
    let n = results.len();
    let badges_awarded = results.get(n.wrapping_sub(AWARDED)).map_or(0, changes);
    Ok(Ingested { counted: rows(&results, n.wrapping_sub(COUNTED))?, badges_awarded })
}

/// The events a batch counted.
pub async fn batch_events(db: &Db, batch_id: &str) -> Result<Vec<Counted>> {
    db.all(BATCH_EVENTS, &args![batch_id]).await
}

pub async fn mark_published(db: &Db, batch_id: &str, now: Timestamp) -> Result<()> {
    db.run(
        "UPDATE activity_batches SET state = 'published', settled_at = ?2 WHERE id = ?1 AND state = 'pending'",
        &args![batch_id, now.unix()],
    )
    .await
    .map(|_| ())
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

/// Pending batches created before `until`, least tried first (a batch that keeps failing does not
/// hold up the others), each counted as tried once more.
pub async fn to_republish(db: &Db, until: Timestamp, limit: u32) -> Result<Vec<String>> {
    let ids: Vec<Id> = db
        .all(
            "UPDATE activity_batches SET attempts = attempts + 1 WHERE id IN (
               SELECT id FROM activity_batches WHERE state = 'pending' AND created_at < ?1 ORDER BY attempts, created_at LIMIT ?2)
             RETURNING id",
            &args![until.unix(), limit],
        )
        .await?;
    Ok(ids.into_iter().map(|r| r.id).collect())
}

/// Gives up on pending batches created before `before`; how many.
pub async fn abandon(db: &Db, before: Timestamp, now: Timestamp) -> Result<usize> {
    db.run(
        "UPDATE activity_batches SET state = 'abandoned', settled_at = ?2 WHERE state = 'pending' AND created_at < ?1",
        &args![before.unix(), now.unix()],
    )
    .await
}

/// Forgets events that happened before `before` (a re-send of them is refused as too old) unless
/// their batch is still pending, and settled batches created before `before`.
pub async fn prune(db: &Db, before: Timestamp) -> Result<usize> {
    let events = db
        .run(
            "DELETE FROM activity_events WHERE occurred_at < ?1
             AND batch_id NOT IN (SELECT id FROM activity_batches WHERE state = 'pending')",
            &args![before.unix()],
        )
        .await?;
    let batches = db
        .run("DELETE FROM activity_batches WHERE created_at < ?1 AND state <> 'pending'", &args![before.unix()])
        .await?;
    Ok(events + batches)
}

#[derive(Deserialize)]
pub struct Held {
    pub badge_id: String,
    pub awarded_at: i64,
}

#[derive(Deserialize)]
pub struct Total {
    pub metric: String,
    pub value: i64,
}

/// A user's badges (oldest first) and all-time totals, in one round trip.
pub async fn badges_and_totals(db: &Db, user: &str) -> Result<(Vec<Held>, Vec<Total>)> {
    let results = db
        .batch(vec![
            db.statement("SELECT badge_id, awarded_at FROM user_badges WHERE user_id = ?1 ORDER BY awarded_at, badge_id", &args![user])?,
            db.statement("SELECT metric, value FROM user_metrics WHERE user_id = ?1", &args![user])?,
        ])
        .await?;
    Ok((rows(&results, 0)?, rows(&results, 1)?))
}

/// Awards a badge by hand; the first award stands. Returns it and whether this call awarded it.
pub async fn award(db: &Db, user: &str, badge_id: &str, by: &str, now: Timestamp) -> Result<(Held, bool)> {
    let results = db
        .batch(vec![
            db.statement(
                "INSERT INTO user_badges (user_id, badge_id, awarded_at, source, awarded_by) VALUES (?1, ?2, ?3, 'manual', ?4)
                 ON CONFLICT DO NOTHING",
                &args![user, badge_id, now.unix(), by],
            )?,
            db.statement("SELECT badge_id, awarded_at FROM user_badges WHERE user_id = ?1 AND badge_id = ?2", &args![user, badge_id])?,
        ])
        .await?;
    let fresh = results.first().map_or(0, changes) > 0;
    let held = rows::<Held>(&results, 1)?.pop().ok_or_else(|| Error::D1("awarded badge not found".into()))?;
    Ok((held, fresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rewards::Metric;

    #[test]
    fn badge_rules_are_plain_sql_literals() {
        let sql = badge_rules();
        assert_eq!(sql.matches("('").count(), BADGES.len());
        for b in BADGES {
            assert!(b.id.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'), "{}", b.id);
            assert!(sql.contains(&format!("('{}', '{}', {})", b.id, b.category.metric().as_str(), b.threshold)));
        }
        assert!(Metric::ALL.iter().all(|m| m.as_str().bytes().all(|c| c.is_ascii_lowercase() || c == b'_')));
    }
}
