//! SQL of `attributions` (first touch) and the referral a referral code creates.

use super::{args, Db, Error, Result};
use crate::domain::time::Timestamp;

pub struct NewAttribution<'a> {
    pub user_id: &'a str,
    pub affiliate_id: Option<&'a str>,
    pub referral_code: Option<&'a str>,
    /// The referral to open when a referral code was given: (id, referrer, expires_at).
    pub referral: Option<(&'a str, &'a str, Timestamp)>,
    pub now: Timestamp,
}

pub enum Created {
    Created,
    /// The user is attributed already (first touch wins).
    AlreadyAttributed,
}

/// Writes the attribution and its referral in one batch; the user's primary key makes a second
/// attribution (also a concurrent one) fail as a whole.
pub async fn create(db: &Db, a: &NewAttribution<'_>) -> Result<Created> {
    let mut statements = vec![db.statement(
        "INSERT INTO attributions (user_id, affiliate_id, referral_code, created_at) VALUES (?1, ?2, ?3, ?4)",
        &args![a.user_id, a.affiliate_id, a.referral_code, a.now.unix()],
    )?];
    if let (Some((id, referrer, expires_at)), Some(code)) = (a.referral, a.referral_code) {
        statements.push(db.statement(
            "INSERT INTO referrals (id, referrer_id, referred_id, code, status, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)",
            &args![id, referrer, a.user_id, code, expires_at.unix(), a.now.unix()],
        )?);
    }
    match db.batch(statements).await {
        Ok(_) => Ok(Created::Created),
        Err(Error::Constraint(v)) if v.is_unique("attributions.user_id") || v.is_unique("referrals.referred_id") => {
            Ok(Created::AlreadyAttributed)
        }
        Err(e) => Err(e),
    }
}

pub async fn exists(db: &Db, user_id: &str) -> Result<bool> {
    Ok(db.first::<serde_json::Value>("SELECT 1 AS x FROM attributions WHERE user_id = ?1", &args![user_id]).await?.is_some())
}
