//! The ledger audit (sql/ledger_audit.sql): one row per violated ledger invariant.

use super::{Db, Result};
use serde::Deserialize;

pub const LEDGER_AUDIT: &str = include_str!("../../sql/ledger_audit.sql");

#[derive(Debug, Deserialize)]
pub struct Violation {
    pub check_name: String,
    pub subject: String,
    pub detail: String,
}

pub async fn ledgers(db: &Db) -> Result<Vec<Violation>> {
    db.all(LEDGER_AUDIT, &[]).await
}
