//! Conversions: the money in. A payment of a user, from Stripe or another billing system, with
//! the refunds recorded against it. (What a conversion earns: `affiliates`, `referrals`,
//! `earnings`.)

use super::time::Timestamp;

#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    pub id: String,
    /// The billing system's id (a Stripe invoice id): a conversion is recorded once per id.
    pub external_id: String,
    /// `stripe` or `admin`.
    pub source: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub occurred_at: Timestamp,
    pub created_at: Timestamp,
    /// The refunds so far: their cumulative amount and how many.
    pub refunded_cents: i64,
    pub refund_count: i64,
}
