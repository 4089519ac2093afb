//! SQL of the `affiliates` table and the affiliate dashboard's aggregates.

use super::{args, Arg, Db, Error, Result};
use crate::domain::affiliates::{self as rules, Affiliate, AffiliateStatus};
use crate::domain::time::Timestamp;
use serde::Deserialize;

const COLUMNS: &str =
    "id, user_id, code, status, commission_rate_bps, commission_months, website, payout_email, created_at, updated_at";

#[derive(Deserialize)]
struct Row {
    id: String,
    user_id: String,
    code: String,
    status: String,
    commission_rate_bps: i64,
    commission_months: i64,
    website: Option<String>,
    payout_email: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Affiliate {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Affiliate {
            status: AffiliateStatus::parse(&r.status)
                .ok_or_else(|| Error::corrupt("affiliates", &r.id, "status", &r.status))?,
            commission_rate_bps: Error::checked("affiliates", &r.id, "commission_rate_bps", r.commission_rate_bps, rules::commission_rate)?,
            commission_months: Error::checked("affiliates", &r.id, "commission_months", r.commission_months, rules::commission_months)?,
            id: r.id,
            user_id: r.user_id,
            code: r.code,
            website: r.website,
            payout_email: r.payout_email,
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        })
    }
}

fn one(row: Option<Row>) -> Result<Option<Affiliate>> {
    row.map(Affiliate::try_from).transpose()
}

fn all(rows: Vec<Row>) -> Result<Vec<Affiliate>> {
    rows.into_iter().map(Affiliate::try_from).collect()
}

pub enum Inserted {
    Created(Affiliate),
    /// The user already is an affiliate.
    UserTaken,
    /// The generated code collided with another one (draw again).
    CodeTaken,
}

pub async fn insert(db: &Db, a: &Affiliate) -> Result<Inserted> {
    let sql = format!(
        "INSERT INTO affiliates ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING {COLUMNS}"
    );
    let args = args![
        &a.id,
        &a.user_id,
        &a.code,
        a.status.as_str(),
        a.commission_rate_bps,
        a.commission_months,
        a.website.clone(),
        a.payout_email.clone(),
        a.created_at.unix(),
        a.updated_at.unix()
    ];
    match db.write::<Row>(&sql, &args).await {
        Ok(row) => Ok(Inserted::Created(one(row)?.ok_or_else(|| Error::D1("insert returned nothing".into()))?)),
        Err(Error::Constraint(v)) if v.is_unique("affiliates.user_id") => Ok(Inserted::UserTaken),
        Err(Error::Constraint(v)) if v.is_unique("affiliates.code") => Ok(Inserted::CodeTaken),
        Err(e) => Err(e),
    }
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Affiliate>> {
    one(db.first(&format!("SELECT {COLUMNS} FROM affiliates WHERE id = ?1"), &args![id]).await?)
}

pub async fn find_by_user(db: &Db, user_id: &str) -> Result<Option<Affiliate>> {
    one(db.first(&format!("SELECT {COLUMNS} FROM affiliates WHERE user_id = ?1"), &args![user_id]).await?)
}

pub async fn find_by_code(db: &Db, code: &str) -> Result<Option<Affiliate>> {
    one(db.first(&format!("SELECT {COLUMNS} FROM affiliates WHERE code = ?1"), &args![code]).await?)
}

/// What the `/a/` link needs to know about a code: the affiliate's status and whether its user
/// is active (a user not provisioned yet counts as active).
pub async fn link_state(db: &Db, code: &str) -> Result<Option<(AffiliateStatus, bool)>> {
    #[derive(Deserialize)]
    struct State {
        id: String,
        status: String,
        user_active: i64,
    }
    let sql = "SELECT f.id, f.status, COALESCE(u.is_active, 1) AS user_active
               FROM affiliates f LEFT JOIN users u ON u.id = f.user_id WHERE f.code = ?1";
    match db.first::<State>(sql, &args![code]).await? {
        None => Ok(None),
        Some(s) => {
            let status = AffiliateStatus::parse(&s.status).ok_or_else(|| Error::corrupt("affiliates", &s.id, "status", &s.status))?;
            Ok(Some((status, s.user_active != 0)))
        }
    }
}

/// Applies a change if the affiliate is still as read (`expected`: status and terms; else
/// `None`: re-read and retry), so concurrent reviews never undo each other.
pub async fn update(db: &Db, expected: &Affiliate, status: AffiliateStatus, rate_bps: u32, months: u32, now: Timestamp) -> Result<Option<Affiliate>> {
    let sql = format!(
        "UPDATE affiliates SET status = ?3, commission_rate_bps = ?4, commission_months = ?5, updated_at = ?6
         WHERE id = ?1 AND status = ?2 AND commission_rate_bps = ?7 AND commission_months = ?8 RETURNING {COLUMNS}"
    );
    let e = expected;
    let args = args![&e.id, e.status.as_str(), status.as_str(), rate_bps, months, now.unix(), e.commission_rate_bps, e.commission_months];
    one(db.first(&sql, &args).await?)
}

/// Affiliates in creation order, optionally of one status, after the cursor `(created_at, id)`.
pub async fn list(
    db: &Db,
    status: Option<AffiliateStatus>,
    after: Option<&(i64, String)>,
    limit: u32,
) -> Result<Vec<Affiliate>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM affiliates
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR (created_at, id) > (?2, ?3))
         ORDER BY created_at, id LIMIT ?4"
    );
    let args = args![status.map(|s| s.as_str()), after.map(|a| a.0), after.map(|a| &a.1), limit];
    all(db.all(&sql, &args).await?)
}

/// Activity of an affiliate's referred users within `[from, to)`.
#[derive(Debug, Default, Deserialize)]
pub struct Activity {
    pub referred_users: i64,
    pub conversions: i64,
    /// Commissioned conversions' amounts net of their refunds.
    pub revenue_cents: i64,
}

pub async fn activity(db: &Db, affiliate_id: &str, from: Timestamp, to: Timestamp) -> Result<Activity> {
    let sql = "SELECT
        (SELECT COUNT(*) FROM attributions WHERE affiliate_id = ?1 AND created_at >= ?2 AND created_at < ?3) AS referred_users,
        (SELECT COUNT(*) FROM earnings e JOIN conversions c ON c.id = e.conversion_id
           WHERE e.program = 'affiliate' AND e.payee_id = ?1 AND e.kind = 'commission'
             AND c.occurred_at >= ?2 AND c.occurred_at < ?3) AS conversions,
        (SELECT COALESCE(SUM(c.amount_cents - COALESCE((SELECT MAX(r.refunded_total) FROM refunds r WHERE r.conversion_id = c.id), 0)), 0)
           FROM earnings e JOIN conversions c ON c.id = e.conversion_id
           WHERE e.program = 'affiliate' AND e.payee_id = ?1 AND e.kind = 'commission'
             AND c.occurred_at >= ?2 AND c.occurred_at < ?3) AS revenue_cents";
    let args: [Arg; 3] = args![affiliate_id, from.unix(), to.unix()];
    Ok(db.first::<Activity>(sql, &args).await?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rate: i64, months: i64) -> Row {
        Row {
            id: "a1".into(),
            user_id: "u1".into(),
            code: "AFF23456789".into(),
            status: "active".into(),
            commission_rate_bps: rate,
            commission_months: months,
            website: None,
            payout_email: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn terms_out_of_range_are_corrupt_not_cast_into_range() {
        let read = Affiliate::try_from(row(2_000, 3)).unwrap();
        assert_eq!((read.commission_rate_bps, read.commission_months), (2_000, 3));
        for (rate, months, column, value) in [
            (-1, 3, "commission_rate_bps", "-1"),
            (10_001, 3, "commission_rate_bps", "10001"),
            ((1 << 32) + 2_000, 3, "commission_rate_bps", "4294969296"),
            (2_000, 0, "commission_months", "0"),
            (2_000, -1, "commission_months", "-1"),
        ] {
            match Affiliate::try_from(row(rate, months)) {
                Err(Error::Corrupt { table: "affiliates", id, column: c, value: v }) => {
                    assert_eq!((id.as_str(), c, v.as_str()), ("a1", column, value));
                }
                other => panic!("{rate} bps, {months} months: {:?}", other.map(|a| (a.commission_rate_bps, a.commission_months))),
            }
        }
    }
}
