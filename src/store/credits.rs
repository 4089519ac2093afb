//! SQL of the API-credit ledger (`credit_transactions`): append-only rows carrying the running
//! balance. A row is computed from the latest one inside a single `INSERT … SELECT` (atomic in
//! D1), and `CHECK (balance_after >= 0)` refuses any overdraft, also under concurrency.

use super::{args, Arg, Db, Error, Result, Violation};
use crate::domain::time::Timestamp;
use serde::Deserialize;
use worker::D1PreparedStatement;

/// Appends `amount` for `user`; `?1` user, `?2` kind, `?3` amount, `?4` reason, `?5` source,
/// `?6` now. Callers add a condition with `AND …` to make the append conditional.
const APPEND: &str = "INSERT INTO credit_transactions (user_id, seq, kind, amount, balance_after, reason, source, created_at)
    SELECT ?1, COALESCE(last.seq, 0) + 1, ?2, ?3, COALESCE(last.balance_after, 0) + ?3, ?4, ?5, ?6
    FROM (SELECT 1) LEFT JOIN (SELECT seq, balance_after FROM credit_transactions WHERE user_id = ?1 ORDER BY seq DESC LIMIT 1) last ON 1
    WHERE 1";

pub enum Appended {
    Balance(i64),
    /// The balance does not cover the deduction.
    Insufficient,
}

/// Deducts `amount` (> 0) credits, or reports that the balance does not cover it.
pub async fn deduct(db: &Db, user: &str, amount: i64, reason: &str, now: Timestamp) -> Result<Appended> {
    let sql = format!("{APPEND} RETURNING balance_after");
    #[derive(Deserialize)]
    struct Balance {
        balance_after: i64,
    }
    let args = args![user, "deduction", -amount, reason, None::<&str>, now.unix()];
    match db.write::<Balance>(&sql, &args).await {
        Ok(Some(b)) => Ok(Appended::Balance(b.balance_after)),
        Ok(None) => Err(Error::D1("credit append returned nothing".into())),
        Err(Error::Constraint(Violation::Check(e))) if e.contains("balance_after") => {
            Ok(Appended::Insufficient)
        }
        Err(e) => Err(e),
    }
}

/// The credits of referral bonus `referral_id` for `referrer`, appended only while that bonus
/// (of conversion `conversion_id`) is pending: the grant's batch marks it granted right after
/// (`store::referrals::grant`); `source` makes it once per referral.
pub fn referral_bonus(
    db: &Db,
    referrer: &str,
    credits: i64,
    referral_id: &str,
    conversion_id: &str,
    now: Timestamp,
) -> Result<D1PreparedStatement> {
    let sql = format!(
        "{APPEND} AND EXISTS (SELECT 1 FROM referral_bonuses WHERE referral_id = ?7 AND conversion_id = ?8 AND status = 'pending')"
    );
    let source = format!("referral:{referral_id}");
    let args: [Arg; 8] = args![referrer, "bonus", credits, "referral converted", source, now.unix(), referral_id, conversion_id];
    db.statement(&sql, &args)
}

/// The credits of a campaign redemption, written only if redemption `redemption_id` was.
pub fn campaign_credit(
    db: &Db,
    user: &str,
    credits: i64,
    campaign: &str,
    redemption_id: &str,
    now: Timestamp,
) -> Result<D1PreparedStatement> {
    let sql = format!("{APPEND} AND EXISTS (SELECT 1 FROM redemptions WHERE id = ?7)");
    let (reason, source) = (format!("campaign {campaign}"), format!("redemption:{redemption_id}"));
    let args: [Arg; 7] = args![user, "bonus", credits, reason, source, now.unix(), redemption_id];
    db.statement(&sql, &args)
}

#[derive(Debug, Default, Deserialize)]
pub struct Balance {
    pub balance_credits: i64,
    /// Referral bonuses still held (not in the ledger, not spendable).
    pub pending_credits: i64,
    pub lifetime_earned: i64,
    pub lifetime_spent: i64,
}

pub async fn balance(db: &Db, user: &str) -> Result<Balance> {
    let sql = "SELECT
        COALESCE((SELECT balance_after FROM credit_transactions WHERE user_id = ?1 ORDER BY seq DESC LIMIT 1), 0) AS balance_credits,
        (SELECT COALESCE(SUM(credits), 0) FROM referral_bonuses WHERE referrer_id = ?1 AND status = 'pending') AS pending_credits,
        COALESCE(SUM(CASE WHEN amount > 0 THEN amount END), 0) AS lifetime_earned,
        COALESCE(-SUM(CASE WHEN amount < 0 THEN amount END), 0) AS lifetime_spent
        FROM credit_transactions WHERE user_id = ?1";
    Ok(db.first::<Balance>(sql, &args![user]).await?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
pub struct Transaction {
    pub seq: i64,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: Option<String>,
    pub created_at: i64,
}

/// A user's transactions, newest first, before sequence number `before`.
pub async fn list(db: &Db, user: &str, before: Option<i64>, limit: u32) -> Result<Vec<Transaction>> {
    let sql = "SELECT seq, kind, amount, balance_after, reason, created_at FROM credit_transactions
               WHERE user_id = ?1 AND (?2 IS NULL OR seq < ?2) ORDER BY seq DESC LIMIT ?3";
    db.all(sql, &args![user, before, limit]).await
}
