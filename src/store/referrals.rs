//! SQL of `referral_codes` and `referrals`.

use super::{args, Db, Error, Result};
use crate::domain::referrals::ReferralStatus;
use crate::domain::time::Timestamp;
use serde::Deserialize;

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

pub async fn owner_of(db: &Db, code: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Owner {
        user_id: String,
    }
    Ok(db.first::<Owner>("SELECT user_id FROM referral_codes WHERE code = ?1", &args![code]).await?.map(|o| o.user_id))
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
