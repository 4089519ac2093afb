//! SQL of the `idempotency_keys` table (see `http::idempotency` for the protocol).

use super::{args, Db, Result};
use crate::domain::time::Timestamp;
use serde::Deserialize;

/// A key already held by an earlier request.
#[derive(Deserialize)]
pub struct Held {
    pub request_hash: String,
    /// `None` while the first request is still running.
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    /// The headers the handler set, as JSON `[[name, value], …]` (`None` while running, and for
    /// keys stored before migration 0005).
    pub response_headers: Option<String>,
}

/// Claims `(user, key)` for this request: true when the key was free (never used, or expired).
pub async fn claim(db: &Db, user: &str, key: &str, hash: &str, now: Timestamp, ttl: i64) -> Result<bool> {
    let sql = "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at, expires_at)
               VALUES (?1, ?2, ?3, ?4, ?5)
               ON CONFLICT (user_id, key) DO UPDATE SET
                 request_hash = excluded.request_hash, status_code = NULL, response_body = NULL, response_headers = NULL,
                 created_at = excluded.created_at, expires_at = excluded.expires_at
               WHERE idempotency_keys.expires_at <= excluded.created_at
               RETURNING 1 AS claimed";
    let row = db
        .first::<serde_json::Value>(sql, &args![user, key, hash, now.unix(), now.plus_seconds(ttl).unix()])
        .await?;
    Ok(row.is_some())
}

pub async fn find(db: &Db, user: &str, key: &str) -> Result<Option<Held>> {
    let sql = "SELECT request_hash, status_code, response_body, response_headers FROM idempotency_keys WHERE user_id = ?1 AND key = ?2";
    db.first::<Held>(sql, &args![user, key]).await
}

/// Stores the response of the request that holds the key (`headers` as JSON, see `Held`).
pub async fn complete(db: &Db, user: &str, key: &str, hash: &str, status: u16, body: &str, headers: &str) -> Result<()> {
    let sql = "UPDATE idempotency_keys SET status_code = ?4, response_body = ?5, response_headers = ?6
               WHERE user_id = ?1 AND key = ?2 AND request_hash = ?3 AND status_code IS NULL";
    db.run(sql, &args![user, key, hash, i64::from(status), body, headers]).await.map(|_| ())
}

/// Frees a key whose request failed with a server error, so the client may retry with it.
pub async fn release(db: &Db, user: &str, key: &str, hash: &str) -> Result<()> {
    let sql = "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND request_hash = ?3 AND status_code IS NULL";
    db.run(sql, &args![user, key, hash]).await.map(|_| ())
}

/// Deletes expired keys (cron); returns how many.
pub async fn purge_expired(db: &Db, now: Timestamp) -> Result<usize> {
    db.run("DELETE FROM idempotency_keys WHERE expires_at <= ?1", &args![now.unix()]).await
}
