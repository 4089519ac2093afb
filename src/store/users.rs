//! SQL of the `users` table.

use super::{args, Db, Error, Result};
use crate::domain::time::Timestamp;
use crate::domain::users::User;
use serde::Deserialize;

const COLUMNS: &str = "id, is_admin, is_active, created_at";

#[derive(Deserialize)]
struct Row {
    id: String,
    is_admin: i64,
    is_active: i64,
    created_at: i64,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: r.id,
            is_admin: r.is_admin != 0,
            is_active: r.is_active != 0,
            created_at: Timestamp::from_unix(r.created_at),
        }
    }
}

pub async fn find(db: &Db, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    Ok(db.first::<Row>(&sql, &args![id]).await?.map(User::from))
}

/// Returns the user, creating a regular active user on first sight. One read on the common path.
pub async fn find_or_provision(db: &Db, id: &str, now: Timestamp) -> Result<User> {
    if let Some(user) = find(db, id).await? {
        return Ok(user);
    }
    let sql = format!(
        "INSERT INTO users (id, created_at, updated_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET id = excluded.id
         RETURNING {COLUMNS}"
    );
    db.first::<Row>(&sql, &args![id, now.unix()])
        .await?
        .map(User::from)
        .ok_or_else(|| Error::D1("user provisioning returned no row".into()))
}

/// Sets the given flags; `None` when the user does not exist.
pub async fn update_flags(
    db: &Db,
    id: &str,
    is_admin: Option<bool>,
    is_active: Option<bool>,
    now: Timestamp,
) -> Result<Option<User>> {
    let sql = format!(
        "UPDATE users SET is_admin = COALESCE(?2, is_admin), is_active = COALESCE(?3, is_active), updated_at = ?4
         WHERE id = ?1 RETURNING {COLUMNS}"
    );
    Ok(db.first::<Row>(&sql, &args![id, is_admin, is_active, now.unix()]).await?.map(User::from))
}

/// Users in creation order, after the cursor `(created_at, id)`.
pub async fn list(db: &Db, after: Option<&(i64, String)>, limit: u32) -> Result<Vec<User>> {
    let (created_at, id) = (after.map(|a| a.0), after.map(|a| &a.1));
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE ?1 IS NULL OR (created_at, id) > (?1, ?2)
         ORDER BY created_at, id LIMIT ?3"
    );
    Ok(db.all::<Row>(&sql, &args![created_at, id, limit]).await?.into_iter().map(User::from).collect())
}
