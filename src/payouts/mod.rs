//! Payouts, shared by every earning program: administrators move them through
//! pending → approved → processing → paid | failed; a failed payout returns its earnings.

use crate::domain::payouts::{self as rules, PayoutStatus};
use crate::domain::time::Timestamp;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::store::payouts as store;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Payout {
    pub id: String,
    pub program: String,
    pub payee_id: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub status: PayoutStatus,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// `GET /admin/payouts?status=&limit=&cursor=`, newest first.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let status = ctx.query_named::<PayoutStatus>("status")?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, None, status, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |p| (p.created_at.unix(), p.id.clone())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    status: PayoutStatus,
    failure_reason: Option<String>,
}

/// `PATCH /admin/payouts/{id}` with `{"status", "failure_reason"?}`.
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    let body: Change = ctx.json()?;
    let reason = body.failure_reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::validation("failure_reason", "failure_reason must be at most 500 characters"));
    }
    if reason.is_some() && body.status != PayoutStatus::Failed {
        return Err(ApiError::validation("failure_reason", "failure_reason goes with status failed"));
    }
    let db = ctx.db()?;
    let id = ctx.param("id")?;
    let current = store::find(&db, id).await?.ok_or_else(|| ApiError::not_found("No such payout."))?;
    rules::transition(current.status, body.status)?;
    match store::transition(&db, id, current.status, body.status, reason.as_deref(), ctx.now).await? {
        Some(payout) => Reply::ok(&payout),
        // Someone else moved it first; whatever they did, this change no longer applies.
        None => Err(crate::domain::INVALID_TRANSITION.into()),
    }
}

/// `GET /admin/ledger-audit`: the violations the ledger audit finds (none when consistent).
pub async fn ledger_audit(ctx: &Ctx) -> ApiResult {
    let violations = crate::store::audit::ledgers(&ctx.db()?).await?;
    Reply::ok(&serde_json::json!({ "violations": violations }))
}
