//! SQL of `referral_codes`, `referrals` and `referral_bonuses`.

use super::{args, changes, credits, Db, Error, Result};
use crate::domain::referrals::{BonusStatus, ReferralStatus};
use crate::domain::rewards::Event;
use crate::domain::time::Timestamp;
use serde::Deserialize;
use worker::D1PreparedStatement;

#[derive(Deserialize)]
struct Code {
    code: String,
}

pub async fn code_of(db: &Db, user: &str) -> Result<Option<String>> {
    Ok(db.first::<Code>("SELECT code FROM referral_codes WHERE user_id = ?1", &args![user]).await?.map(|c| c.code))
}

pub enum Created {
    /// The user's code (new, or the one a concurrent request created first).
    Code(String),
    /// The drawn code belongs to someone else: draw again.
    CodeTaken,
}

pub async fn create_code(db: &Db, user: &str, code: &str, now: Timestamp) -> Result<Created> {
    let sql = "INSERT INTO referral_codes (user_id, code, created_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (user_id) DO NOTHING";
    match db.write::<Code>(sql, &args![user, code, now.unix()]).await {
        Ok(_) => code_of(db, user).await?.map(Created::Code).ok_or_else(|| Error::D1("referral code vanished".into())),
        Err(Error::Constraint(v)) if v.is_unique("referral_codes.code") => Ok(Created::CodeTaken),
        Err(e) => Err(e),
    }
}

/// The owner of a referral code.
pub struct Owner {
    pub user_id: String,
    /// Whether the owner's account is active (a user not provisioned yet counts as active).
    pub active: bool,
}

pub async fn owner_of(db: &Db, code: &str) -> Result<Option<Owner>> {
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
        active: i64,
    }
    let sql = "SELECT c.user_id, COALESCE(u.is_active, 1) AS active
               FROM referral_codes c LEFT JOIN users u ON u.id = c.user_id WHERE c.code = ?1";
    Ok(db.first::<Row>(sql, &args![code]).await?.map(|r| Owner { user_id: r.user_id, active: r.active != 0 }))
}

#[derive(Deserialize)]
pub struct StatusCount {
    pub status: String,
    pub lapsed: i64,
    pub n: i64,
}

/// A referrer's referrals counted by stored status and whether their expiry passed at `now`.
pub async fn counts(db: &Db, referrer: &str, now: Timestamp) -> Result<Vec<(ReferralStatus, bool, i64)>> {
    let sql = "SELECT status, expires_at <= ?2 AS lapsed, COUNT(*) AS n FROM referrals
               WHERE referrer_id = ?1 GROUP BY status, lapsed";
    let mut out = Vec::new();
    for r in db.all::<StatusCount>(sql, &args![referrer, now.unix()]).await? {
        let status = ReferralStatus::parse(&r.status)
            .ok_or_else(|| Error::corrupt("referrals", format!("of referrer {referrer}"), "status", &r.status))?;
        out.push((status, r.lapsed != 0, r.n));
    }
    Ok(out)
}

/// Marks pending referrals past their expiry as expired (cron); returns how many.
pub async fn expire_due(db: &Db, now: Timestamp) -> Result<usize> {
    db.run("UPDATE referrals SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1", &args![now.unix()]).await
}

// --- bonuses -----------------------------------------------------------------------------------

/// The bonus a converting payment earns its referral's referrer.
pub struct NewBonus<'a> {
    pub referral_id: &'a str,
    pub referrer_id: &'a str,
    pub conversion_id: &'a str,
    pub credits: i64,
    pub available_at: Timestamp,
}

/// The statements (for the conversion's batch) that write the referral's bonus, pending, and
/// convert the referral, both only while it is not converted yet: a concurrent conversion of
/// the same referral finds it converted and writes neither. (An `expired` referral still
/// converts when the payment came before its expiry: the cron marks expiry by the clock, a late
/// webhook delivery may arrive after it.)
pub fn convert(db: &Db, bonus: &NewBonus<'_>, now: Timestamp) -> Result<Vec<D1PreparedStatement>> {
    let b = bonus;
    Ok(vec![
        db.statement(
            "INSERT INTO referral_bonuses (referral_id, referrer_id, conversion_id, credits, status, available_at, created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6
             WHERE EXISTS (SELECT 1 FROM referrals WHERE id = ?1 AND status <> 'converted')
               AND NOT EXISTS (SELECT 1 FROM users WHERE id = ?2 AND is_active = 0)",
            &args![b.referral_id, b.referrer_id, b.conversion_id, b.credits, b.available_at.unix(), now.unix()],
        )?,
        db.statement(
            "UPDATE referrals SET status = 'converted', converted_at = ?2, conversion_id = ?3
             WHERE id = ?1 AND status <> 'converted' AND EXISTS (SELECT 1 FROM referral_bonuses WHERE conversion_id = ?3)",
            &args![b.referral_id, now.unix(), b.conversion_id],
        )?,
    ])
}

/// A bonus to grant: the referral, its referrer, the qualifying conversion and the credits.
#[derive(Clone, Debug, Deserialize)]
pub struct Grant {
    pub referral_id: String,
    pub referrer_id: String,
    pub conversion_id: String,
    pub credits: i64,
}

/// The statements that grant bonus `g` if it is still pending when the batch runs: its credits
/// appended to the referrer's ledger, the bonus marked granted with the transaction it
/// produced, and the referrer's `referrals` activity event counted as batch `activity.0`.
/// Each is guarded by the bonus's status, so of concurrent grants (cron runs) and a cancelling
/// refund only the first to run has an effect.
pub fn grant(db: &Db, g: &Grant, activity: (&str, &Event), now: Timestamp) -> Result<Vec<D1PreparedStatement>> {
    let mut statements = Vec::new();
    if g.credits > 0 {
        statements.push(credits::referral_bonus(db, &g.referrer_id, g.credits, &g.referral_id, &g.conversion_id, now)?);
    }
    statements.push(db.statement(
        "UPDATE referral_bonuses SET status = 'granted', granted_at = ?3, updated_at = ?3,
             credit_seq = (SELECT seq FROM credit_transactions WHERE source = 'referral:' || ?1)
         WHERE referral_id = ?1 AND conversion_id = ?2 AND status = 'pending'",
        &args![&g.referral_id, &g.conversion_id, now.unix()],
    )?);
    let guard = "EXISTS (SELECT 1 FROM referral_bonuses WHERE referral_id = ?4 AND status = 'granted')";
    let (batch, event) = activity;
    statements.extend(super::rewards::count_if(db, batch, std::slice::from_ref(event), now, Some((guard, &g.referral_id)))?);
    Ok(statements)
}

/// Pending bonuses whose hold is over at `now`, oldest first, at most `limit`.
pub async fn due(db: &Db, now: Timestamp, limit: u32) -> Result<Vec<Grant>> {
    let sql = "SELECT referral_id, referrer_id, conversion_id, credits FROM referral_bonuses
               WHERE status = 'pending' AND available_at <= ?1 ORDER BY available_at, referral_id LIMIT ?2";
    db.all(sql, &args![now.unix(), limit]).await
}

/// Grants a due bonus in one batch (see `grant`); whether this call granted it (`false`: a
/// concurrent run or a refund got there first).
pub async fn grant_due(db: &Db, g: &Grant, activity: (&str, &Event), now: Timestamp) -> Result<bool> {
    let statements = grant(db, g, activity, now)?;
    // The status change follows the ledger row, if there is one.
    let status_change = usize::from(g.credits > 0);
    let results = db.batch(statements).await?;
    Ok(results.get(status_change).is_some_and(|r| changes(r) > 0))
}

/// The status of the bonus conversion `conversion_id` earned, if any.
pub async fn bonus_of(db: &Db, conversion_id: &str) -> Result<Option<BonusStatus>> {
    #[derive(Deserialize)]
    struct Row {
        referral_id: String,
        status: String,
    }
    let sql = "SELECT referral_id, status FROM referral_bonuses WHERE conversion_id = ?1";
    match db.first::<Row>(sql, &args![conversion_id]).await? {
        None => Ok(None),
        Some(r) => BonusStatus::parse(&r.status)
            .map(Some)
            .ok_or_else(|| Error::corrupt("referral_bonuses", r.referral_id, "status", &r.status)),
    }
}

/// The statement (for a refund's batch) that cancels the bonus of conversion `conversion_id`
/// if it is still pending when the batch runs; a granted bonus stays.
pub fn cancel(db: &Db, conversion_id: &str, now: Timestamp) -> Result<D1PreparedStatement> {
    db.statement(
        "UPDATE referral_bonuses SET status = 'cancelled', cancelled_at = ?2, updated_at = ?2
         WHERE conversion_id = ?1 AND status = 'pending'",
        &args![conversion_id, now.unix()],
    )
}

/// A referrer's bonus credits by status.
#[derive(Debug, Default, Deserialize)]
pub struct BonusCredits {
    pub pending: i64,
    pub granted: i64,
    pub cancelled: i64,
}

pub async fn bonus_credits(db: &Db, referrer: &str) -> Result<BonusCredits> {
    let sql = "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN credits END), 0) AS pending,
                      COALESCE(SUM(CASE WHEN status = 'granted' THEN credits END), 0) AS granted,
                      COALESCE(SUM(CASE WHEN status = 'cancelled' THEN credits END), 0) AS cancelled
               FROM referral_bonuses WHERE referrer_id = ?1";
    Ok(db.first::<BonusCredits>(sql, &args![referrer]).await?.unwrap_or_default())
}
