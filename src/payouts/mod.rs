//! Payouts, shared by every earning program: administrators move them through
//! pending → approved → processing → paid | failed; a failed payout returns its earnings.

use crate::domain::payouts::{self as rules, Payout, PayoutStatus};
use crate::domain::time::Timestamp;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::earnings as ledger;
use crate::store::payouts as store;
use serde::{Deserialize, Serialize};

/// A payout as the API shows it (here and to the affiliate who requested it).
#[derive(Serialize)]
pub struct PayoutView {
    id: String,
    program: String,
    payee_id: String,
    user_id: String,
    amount_cents: i64,
    status: PayoutStatus,
    failure_reason: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Payout> for PayoutView {
    fn from(p: Payout) -> Self {
        PayoutView {
            id: p.id,
            program: p.program,
            payee_id: p.payee_id,
            user_id: p.user_id,
            amount_cents: p.amount_cents,
            status: p.status,
            failure_reason: p.failure_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A payee's request for a payout of everything available (at least `MIN_PAYOUT_CENTS`, net of
/// adjustments): 201 with the payout. The amount is read, checked against the minimum, then
/// moved only if it still is what was read, so two concurrent requests never take the same rows.
pub async fn request(ctx: &Ctx, program: &str, payee_id: &str) -> ApiResult {
    let minimum = ctx.config()?.min_payout_cents;
    let db = ctx.db()?;
    let user_id = &ctx.user()?.id;
    for _ in 0..3 {
        let available = ledger::payable_cents(&db, program, payee_id, ctx.now).await?;
        rules::check_amount(available, minimum)?;
        if let Some(payout) = ledger::gather_payout(&db, &new_id(), program, payee_id, user_id, available, ctx.now).await? {
            return Reply::created(&PayoutView::from(payout));
        }
    }
    Err(ApiError::contention("concurrent_update", "Your balance changed meanwhile; retry."))
}

/// A payee's payouts, newest first (`?limit=&cursor=`).
pub async fn list_of(ctx: &Ctx, program: &str, payee_id: &str) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, Some((program, payee_id)), None, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |p| (p.created_at.unix(), p.id.clone())).map(PayoutView::from))
}

/// `GET /admin/payouts?status=&limit=&cursor=`, newest first.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let status = ctx.query_named::<PayoutStatus>("status")?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, None, status, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |p| (p.created_at.unix(), p.id.clone())).map(PayoutView::from))
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
    if body.failure_reason.is_some() && body.status != PayoutStatus::Failed {
        return Err(ApiError::validation("failure_reason", "failure_reason goes with status failed"));
    }
    if body.failure_reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::validation("failure_reason", "failure_reason must be at most 500 characters"));
    }
    let reason = body.failure_reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let db = ctx.db()?;
    let id = ctx.param("id")?;
    let current = store::find(&db, id).await?.ok_or_else(|| ApiError::not_found("No such payout."))?;
    rules::transition(current.status, body.status)?;
    match store::transition(&db, id, current.status, body.status, reason.as_deref(), ctx.now).await? {
        Some(payout) => Reply::ok(&PayoutView::from(payout)),
        // Someone else moved it first; whatever they did, this change no longer applies.
        None => Err(crate::domain::INVALID_TRANSITION.into()),
    }
}

/// A violated ledger invariant as the API shows it.
#[derive(Serialize)]
struct ViolationView {
    check_name: String,
    subject: String,
    detail: String,
}

/// `GET /admin/ledger-audit`: the violations the ledger audit finds (none when consistent).
pub async fn ledger_audit(ctx: &Ctx) -> ApiResult {
    let violations: Vec<ViolationView> = crate::store::audit::ledgers(&ctx.db()?)
        .await?
        .into_iter()
        .map(|v| ViolationView { check_name: v.check_name, subject: v.subject, detail: v.detail })
        .collect();
    Reply::ok(&serde_json::json!({ "violations": violations }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_is_the_api_shape() {
        let t = Timestamp::from_unix(1_800_000_000);
        let payout = Payout {
            id: "p1".into(),
            program: "affiliate".into(),
            payee_id: "a1".into(),
            user_id: "u1".into(),
            amount_cents: 5000,
            status: PayoutStatus::Pending,
            failure_reason: None,
            created_at: t,
            updated_at: t,
        };
        assert_eq!(
            serde_json::to_string(&PayoutView::from(payout)).unwrap(),
            r#"{"id":"p1","program":"affiliate","payee_id":"a1","user_id":"u1","amount_cents":5000,"status":"pending","failure_reason":null,"created_at":"2027-01-15T08:00:00Z","updated_at":"2027-01-15T08:00:00Z"}"#
        );
    }
}
