//! SQL of Stripe plumbing: which customer is which user.

use super::Db;
use crate::args;
use crate::domain::time::Timestamp;
use crate::http::ApiError;
use serde::Deserialize;

pub async fn link_customer(db: &Db, customer: &str, user: &str, now: Timestamp) -> Result<(), ApiError> {
    let sql = "INSERT INTO stripe_customers (customer_id, user_id, updated_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at";
    db.run(sql, &args![customer, user, now.unix()]).await.map(|_| ())
}

pub async fn user_of_customer(db: &Db, customer: &str) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct User {
        user_id: String,
    }
    let sql = "SELECT user_id FROM stripe_customers WHERE customer_id = ?1";
    Ok(db.first::<User>(sql, &args![customer]).await?.map(|u| u.user_id))
}
