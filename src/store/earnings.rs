//! SQL of the `earnings` ledger (commissions, refund adjustments) and of gathering a payout.

use super::{args, rows, Db, Error, Result};
use crate::domain::affiliates::commission_rate;
use crate::domain::earnings::{EarningKind, Group, StoredStatus};
use crate::domain::payouts::Payout;
use crate::domain::time::Timestamp;
use serde::Deserialize;

/// The programs whose payees earn (the `program` column).
pub const AFFILIATE: &str = "affiliate";
/// Creators (payee: the creator's user id).
pub const CREATOR: &str = "creator";
/// Sellers' earnings from marketplace sales (source `order:{id}`).
pub const MARKETPLACE: &str = "marketplace";

#[derive(Clone, Debug)]
pub struct Earning {
    pub id: String,
    pub kind: EarningKind,
    pub amount_cents: i64,
    pub conversion_id: Option<String>,
    pub rate_bps: Option<u32>,
    pub status: StoredStatus,
    pub available_at: Timestamp,
    pub payout_id: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    kind: String,
    amount_cents: i64,
    conversion_id: Option<String>,
    rate_bps: Option<i64>,
    status: String,
    available_at: i64,
    payout_id: Option<String>,
    created_at: i64,
}

impl TryFrom<Row> for Earning {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Earning {
            kind: EarningKind::parse(&r.kind).ok_or_else(|| Error::corrupt("earnings", &r.id, "kind", &r.kind))?,
            status: StoredStatus::parse(&r.status).ok_or_else(|| Error::corrupt("earnings", &r.id, "status", &r.status))?,
            rate_bps: r.rate_bps.map(|v| Error::checked("earnings", &r.id, "rate_bps", v, commission_rate)).transpose()?,
            id: r.id,
            amount_cents: r.amount_cents,
            conversion_id: r.conversion_id,
            available_at: Timestamp::from_unix(r.available_at),
            payout_id: r.payout_id,
            created_at: Timestamp::from_unix(r.created_at),
        })
    }
}

/// A payee's ledger, newest first, before the cursor `(created_at, id)`.
pub async fn list(
    db: &Db,
    program: &str,
    payee_id: &str,
    before: Option<&(i64, String)>,
    limit: u32,
) -> Result<Vec<Earning>> {
    let sql = "SELECT id, kind, amount_cents, conversion_id, rate_bps, status, available_at, payout_id, created_at
               FROM earnings WHERE program = ?1 AND payee_id = ?2 AND (?3 IS NULL OR (created_at, id) < (?3, ?4))
               ORDER BY created_at DESC, id DESC LIMIT ?5";
    let args = args![program, payee_id, before.map(|b| b.0), before.map(|b| &b.1), limit];
    db.all::<Row>(sql, &args).await?.into_iter().map(Earning::try_from).collect()
}

#[derive(Deserialize)]
struct GroupRow {
    kind: String,
    status: String,
    matured: i64,
    cents: i64,
}

/// Sums of a payee's ledger by kind, status and whether the hold has passed at `now`, for rows
/// created within `[from, to)`.
pub async fn groups(
    db: &Db,
    program: &str,
    payee_id: &str,
    now: Timestamp,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Group>> {
    let sql = "SELECT kind, status, available_at <= ?3 AS matured, SUM(amount_cents) AS cents
               FROM earnings WHERE program = ?1 AND payee_id = ?2 AND created_at >= ?4 AND created_at < ?5
               GROUP BY kind, status, matured";
    let args = args![program, payee_id, now.unix(), from.unix(), to.unix()];
    let mut groups = Vec::new();
    for r in db.all::<GroupRow>(sql, &args).await? {
        let bad = |column, value: &str| Error::corrupt("earnings", format!("of {program} {payee_id}"), column, value);
        groups.push(Group {
            kind: EarningKind::parse(&r.kind).ok_or_else(|| bad("kind", &r.kind))?,
            status: StoredStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            matured: r.matured != 0,
            cents: r.cents,
        });
    }
    Ok(groups)
}

/// What a payout would gather now: open rows (commissions and their adjustments) past their hold.
const PAYABLE: &str = "program = ?1 AND payee_id = ?2 AND status = 'open' AND available_at <= ?3";

pub async fn payable_cents(db: &Db, program: &str, payee_id: &str, now: Timestamp) -> Result<i64> {
    let sql = format!("SELECT COALESCE(SUM(amount_cents), 0) AS cents FROM earnings WHERE {PAYABLE}");
    #[derive(Deserialize)]
    struct Sum {
        cents: i64,
    }
    Ok(db.first::<Sum>(&sql, &args![program, payee_id, now.unix()]).await?.map_or(0, |s| s.cents))
}

/// Moves every payable row into a new payout of exactly `expected_cents`, atomically. `None` when
/// the payable rows no longer add up to `expected_cents` (a concurrent payout took them).
pub async fn gather_payout(
    db: &Db,
    payout_id: &str,
    program: &str,
    payee_id: &str,
    user_id: &str,
    expected_cents: i64,
    now: Timestamp,
) -> Result<Option<Payout>> {
    let insert = format!(
        "INSERT INTO payouts (id, program, payee_id, user_id, amount_cents, status, created_at, updated_at, seq)
         SELECT ?4, ?1, ?2, ?5, s.cents, 'pending', ?3, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM payouts)
         FROM (SELECT SUM(amount_cents) AS cents FROM earnings WHERE {PAYABLE}) s
         WHERE s.cents = ?6
         RETURNING {}",
        crate::store::payouts::COLUMNS
    );
    let take = format!(
        "UPDATE earnings SET status = 'in_payout', payout_id = ?4, updated_at = ?3
         WHERE {PAYABLE} AND EXISTS (SELECT 1 FROM payouts WHERE id = ?4)"
    );
    let args = args![program, payee_id, now.unix(), payout_id, user_id, expected_cents];
    let statements = vec![db.statement(&insert, &args)?, db.statement(&take, &args[..4])?];
    let results = db.batch(statements).await?;
    crate::store::payouts::first(rows(&results, 0)?)
}
