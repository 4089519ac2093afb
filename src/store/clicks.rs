//! SQL of `parked_click_batches`: click batches a link's Durable Object did not confirm, kept
//! for the cron to send again (`links::resend`).

use super::{args, Db, Result};
use crate::domain::time::Timestamp;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Parked {
    pub id: String,
    pub link: String,
    pub body: String,
}

/// Parks a batch (a batch parked twice is kept once).
pub async fn park(db: &Db, id: &str, link: &str, body: &str, clicks: usize, now: Timestamp) -> Result<()> {
    db.run(
        "INSERT INTO parked_click_batches (id, link, body, clicks, parked_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        &args![id, link, body, clicks as i64, now.unix()],
    )
    .await
    .map(|_| ())
}

/// Up to `limit` parked batches, least tried first, each counted as tried once more.
pub async fn take(db: &Db, limit: u32) -> Result<Vec<Parked>> {
    db.all(
        "UPDATE parked_click_batches SET attempts = attempts + 1 WHERE id IN (
           SELECT id FROM parked_click_batches ORDER BY attempts, parked_at LIMIT ?1)
         RETURNING id, link, body",
        &args![limit],
    )
    .await
}

/// The object confirmed the batch.
pub async fn unpark(db: &Db, id: &str) -> Result<()> {
    db.run("DELETE FROM parked_click_batches WHERE id = ?1", &args![id]).await.map(|_| ())
}

/// Drops batches parked before `before` (the object may have forgotten their ids: a re-send
/// could count twice); the clicks dropped.
pub async fn drop_older(db: &Db, before: Timestamp) -> Result<i64> {
    #[derive(Deserialize)]
    struct Dropped {
        clicks: i64,
    }
    let rows: Vec<Dropped> =
        db.all("DELETE FROM parked_click_batches WHERE parked_at < ?1 RETURNING clicks", &args![before.unix()]).await?;
    Ok(rows.iter().map(|r| r.clicks).sum())
}
