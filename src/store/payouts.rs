//! SQL of `payouts` (shared by every earning program) and of their effect on the earnings ledger.

use super::{args, rows, Db, Error, Result};
use crate::domain::payouts::{Payout, PayoutStatus};
use crate::domain::time::Timestamp;
use serde::Deserialize;

pub const COLUMNS: &str = "id, program, payee_id, user_id, amount_cents, status, failure_reason, created_at, updated_at";

#[derive(Deserialize)]
pub struct Row {
    id: String,
    program: String,
    payee_id: String,
    user_id: String,
    amount_cents: i64,
    status: String,
    failure_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Payout {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Payout {
            status: PayoutStatus::parse(&r.status)
                .ok_or_else(|| Error::corrupt("payouts", &r.id, "status", &r.status))?,
            id: r.id,
            program: r.program,
            payee_id: r.payee_id,
            user_id: r.user_id,
            amount_cents: r.amount_cents,
            failure_reason: r.failure_reason,
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        })
    }
}

pub fn first(rows: Vec<Row>) -> Result<Option<Payout>> {
    rows.into_iter().next().map(Payout::try_from).transpose()
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Payout>> {
    let row = db.first::<Row>(&format!("SELECT {COLUMNS} FROM payouts WHERE id = ?1"), &args![id]).await?;
    row.map(Payout::try_from).transpose()
}

/// Payouts newest first before the cursor, optionally of one payee and/or one status.
pub async fn list(
    db: &Db,
    payee: Option<(&str, &str)>,
    status: Option<PayoutStatus>,
    before: Option<&(i64, String)>,
    limit: u32,
) -> Result<Vec<Payout>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM payouts
         WHERE (?1 IS NULL OR (program = ?1 AND payee_id = ?2)) AND (?3 IS NULL OR status = ?3)
           AND (?4 IS NULL OR (created_at, id) < (?4, ?5))
         ORDER BY created_at DESC, id DESC LIMIT ?6"
    );
    let args = args![
        payee.map(|p| p.0),
        payee.map(|p| p.1),
        status.map(|s| s.as_str()),
        before.map(|b| b.0),
        before.map(|b| &b.1),
        limit
    ];
    db.all::<Row>(&sql, &args).await?.into_iter().map(Payout::try_from).collect()
}

/// Moves a payout from `from` to `to` (if it still is in `from`; else `None`) and carries its
/// earnings along: `paid` marks them paid, `failed` returns them to the open ledger.
pub async fn transition(
    db: &Db,
    id: &str,
    from: PayoutStatus,
    to: PayoutStatus,
    failure_reason: Option<&str>,
    now: Timestamp,
) -> Result<Option<Payout>> {
    let update = format!(
        "UPDATE payouts SET status = ?3, failure_reason = COALESCE(?4, failure_reason), updated_at = ?5
         WHERE id = ?1 AND status = ?2 RETURNING {COLUMNS}"
    );
    let args = args![id, from.as_str(), to.as_str(), failure_reason, now.unix()];
    let mut statements = vec![db.statement(&update, &args)?];
    let carry = match to {
        PayoutStatus::Paid => Some(
            "UPDATE earnings SET status = 'paid', updated_at = ?2
             WHERE payout_id = ?1 AND status = 'in_payout' AND EXISTS (SELECT 1 FROM payouts WHERE id = ?1 AND status = 'paid')",
        ),
        PayoutStatus::Failed => Some(
            "UPDATE earnings SET status = 'open', payout_id = NULL, updated_at = ?2
             WHERE payout_id = ?1 AND status = 'in_payout' AND EXISTS (SELECT 1 FROM payouts WHERE id = ?1 AND status = 'failed')",
        ),
        _ => None,
    };
    if let Some(sql) = carry {
        statements.push(db.statement(sql, &args![id, now.unix()])?);
    }
    let results = db.batch(statements).await?;
    first(rows(&results, 0)?)
}
