//! SQL of Stripe plumbing: which customer is which user.

use super::{args, Db, Result};
use crate::domain::time::Timestamp;
use serde::Deserialize;

pub async fn link_customer(db: &Db, customer: &str, user: &str, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO stripe_customers (customer_id, user_id, updated_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at";
    db.run(sql, &args![customer, user, now.unix()]).await.map(|_| ())
}

pub async fn user_of_customer(db: &Db, customer: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct User {
        user_id: String,
    }
    let sql = "SELECT user_id FROM stripe_customers WHERE customer_id = ?1";
    Ok(db.first::<User>(sql, &args![customer]).await?.map(|u| u.user_id))
}

pub async fn link_payment(db: &Db, payment_intent: &str, invoice: &str, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO stripe_payments (payment_intent, invoice_id, updated_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (payment_intent) DO UPDATE SET invoice_id = excluded.invoice_id, updated_at = excluded.updated_at";
    db.run(sql, &args![payment_intent, invoice, now.unix()]).await.map(|_| ())
}

pub async fn invoice_of_payment(db: &Db, payment_intent: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Invoice {
        invoice_id: String,
    }
    let sql = "SELECT invoice_id FROM stripe_payments WHERE payment_intent = ?1";
    Ok(db.first::<Invoice>(sql, &args![payment_intent]).await?.map(|i| i.invoice_id))
}

/// Remembers a refund total whose conversion is not known yet (kept at the highest total seen).
pub async fn hold_refund(db: &Db, reference: &str, amount_refunded: i64, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO stripe_refunds (reference, amount_refunded, updated_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (reference) DO UPDATE SET amount_refunded = MAX(amount_refunded, excluded.amount_refunded), updated_at = excluded.updated_at";
    db.run(sql, &args![reference, amount_refunded, now.unix()]).await.map(|_| ())
}

/// The highest refund total held for an invoice, under its id or any of its payment intents.
pub async fn held_refund(db: &Db, invoice: &str) -> Result<Option<i64>> {
    #[derive(Deserialize)]
    struct Held {
        total: Option<i64>,
    }
    let sql = "SELECT MAX(amount_refunded) AS total FROM stripe_refunds
               WHERE reference = ?1 OR reference IN (SELECT payment_intent FROM stripe_payments WHERE invoice_id = ?1)";
    Ok(db.first::<Held>(sql, &args![invoice]).await?.and_then(|h| h.total))
}
