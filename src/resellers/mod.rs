//! White-label resellers: any active user applies; an admin approves them under a contract
//! (dates, tiered wholesale pricing, markup, end-user and API-call quotas), amends, suspends or
//! terminates it; the cron activates and expires contracts at their dates. Resellers quote their
//! prices and manage their end users within the contract's seats.
//!
//! The rules are `domain::resellers`; the SQL is `store::resellers`.

use crate::domain::resellers::{self as rules, Actor, Application, Contract, Quote, Reseller, ResellerStatus};
use crate::domain::time::Timestamp;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::resellers::{self as store, Added, EndUserRow, Event, Updated};
use crate::store::Db;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A reseller as they and admins see it.
#[derive(Serialize)]
struct ResellerView {
    id: String,
    user_id: String,
    company_name: String,
    contact_email: String,
    requested_domain: Option<String>,
    expected_monthly_api_calls: i64,
    status: ResellerStatus,
    contract: Option<Contract>,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Reseller> for ResellerView {
    fn from(r: Reseller) -> Self {
        ResellerView {
            id: r.id,
            user_id: r.user_id,
            company_name: r.company_name,
            contact_email: r.contact_email,
            requested_domain: r.requested_domain,
            expected_monthly_api_calls: r.expected_monthly_api_calls,
            status: r.status,
            contract: r.contract,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn field_error((field, why): (&'static str, String)) -> ApiError {
    ApiError::validation(field, format!("{field} {why}"))
}

/// `POST /resellers`: the caller applies (pending until an admin approves a contract); one
/// reseller per user (409 `already_applied`).
pub async fn apply(ctx: &Ctx) -> ApiResult {
    let application: Application = ctx.json()?;
    let reseller = Reseller::apply(new_id(), ctx.user()?.id.clone(), &application, ctx.now).map_err(field_error)?;
    if !store::insert(&ctx.db()?, &reseller).await? {
        return Err(ApiError::conflict("already_applied", "You have applied already (GET /resellers/me)."));
    }
    Reply::created(&ResellerView::from(reseller))
}

/// The caller's reseller account (404 without one).
async fn mine(ctx: &Ctx, db: &Db) -> ApiResult<Reseller> {
    store::find_by_user(db, &ctx.user()?.id).await?.ok_or_else(|| ApiError::not_found("You are not a reseller (POST /resellers)."))
}

/// `GET /resellers/me`
pub async fn me(ctx: &Ctx) -> ApiResult {
    Reply::ok(&ResellerView::from(mine(ctx, &ctx.db()?).await?))
}

/// `GET /admin/resellers?status=&limit=&cursor=`, newest first.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let status = ctx.query_named::<ResellerStatus>("status")?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, status, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |r| (r.created_at.unix(), r.id.clone())).map(ResellerView::from))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminPatch {
    status: Option<ResellerStatus>,
    contract: Option<Contract>,
    /// Why (kept with the change).
    reason: Option<String>,
}

/// Attempts of a change racing others (each round one racer lands).
const ATTEMPTS: usize = 5;

/// `PATCH /admin/resellers/{id}` `{"status"?, "contract"?, "reason"?}`: approve a pending reseller
/// with a contract; amend the contract of an approved or active one from now on; suspend,
/// reinstate (`approved`: the cron activates it again while its contract runs) or terminate.
/// Applied at the version read, so concurrent changes never undo each other.
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    let patch: AdminPatch = ctx.json()?;
    if patch.status.is_none() && patch.contract.is_none() {
        return Err(ApiError::validation("body", "Give status and/or contract."));
    }
    if let Some(contract) = &patch.contract {
        rules::check_contract(contract).map_err(field_error)?;
    }
    if patch.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::validation("reason", "reason must be at most 500 characters"));
    }
    let db = ctx.db()?;
    let admin = &ctx.user()?.id;
    for _ in 0..ATTEMPTS {
        let current = store::find(&db, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such reseller."))?;
        let mut next = current.clone();
        if let Some(status) = patch.status.filter(|s| *s != current.status) {
            rules::transition(current.status, status, Actor::Admin)?;
            if status == ResellerStatus::Approved && current.contract.is_none() && patch.contract.is_none() {
                return Err(ApiError::validation("contract", "contract: approving needs a contract"));
            }
            next.status = status;
        }
        if let Some(contract) = &patch.contract {
            if !matches!(next.status, ResellerStatus::Approved | ResellerStatus::Active) {
                return Err(ApiError::conflict("not_under_contract", "Only an approved or active reseller's contract can be set or amended."));
            }
            next.contract = Some(contract.clone());
        }
        if next == current {
            return Reply::ok(&ResellerView::from(current));
        }
        next.version = current.version + 1;
        next.updated_at = ctx.now;
        let event = Event {
            kind: if next.status != current.status { "status" } else { "contract" },
            detail: json!({"from": current.status, "to": next.status, "contract": patch.contract, "reason": patch.reason}),
            actor: Some(admin),
        };
        match store::update(&db, &next, &event).await? {
            Updated::Done(updated) => return Reply::ok(&ResellerView::from(*updated)),
            Updated::Stale => continue,
            Updated::DomainTaken => return Err(domain_taken()),
        }
    }
    Err(ApiError::contention("concurrent_update", "The reseller changed meanwhile; retry."))
}

fn domain_taken() -> ApiError {
    ApiError::conflict("domain_taken", "Another reseller has this domain.")
}

/// Transitions the cron makes per run at most; the rest are picked up a minute later.
const CRON_CHUNK: u32 = 200;

/// The cron: activates approved contracts that have started and expires ended ones
/// (`rules::due`). Returns how many resellers it moved.
pub async fn advance(db: &Db, now: Timestamp) -> crate::store::Result<usize> {
    let mut moved = 0;
    for current in store::due(db, now, CRON_CHUNK).await? {
        let Some(contract) = &current.contract else { continue };
        let Some(to) = rules::due(current.status, contract, now) else { continue };
        if rules::transition(current.status, to, Actor::Cron).is_err() {
            continue;
        }
        let next = Reseller { status: to, version: current.version + 1, updated_at: now, ..current.clone() };
        let event = Event { kind: "status", detail: json!({"from": current.status, "to": to}), actor: None };
        // (A reseller changed meanwhile is looked at again a minute later.)
        if matches!(store::update(db, &next, &event).await?, Updated::Done(_)) {
            moved += 1;
        }
    }
    Ok(moved)
}

/// The caller's contract (409 while they have none in force).
fn contract_of(r: &Reseller) -> ApiResult<&Contract> {
    r.contract.as_ref().filter(|_| matches!(r.status, ResellerStatus::Approved | ResellerStatus::Active)).ok_or_else(|| {
        ApiError::conflict("not_under_contract", "You have no contract in force.")
    })
}

/// `GET /resellers/me/pricing/quote?calls=`: what `calls` API calls in a month cost the caller
/// wholesale, their retail price with their markup, their margin and the platform's revenue.
pub async fn quote(ctx: &Ctx) -> ApiResult {
    let calls = ctx
        .query("calls")
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|c| (0..=rules::MAX_CALLS).contains(c))
        .ok_or_else(|| ApiError::validation("calls", format!("calls must be 0 to {}", rules::MAX_CALLS)))?;
    let reseller = mine(ctx, &ctx.db()?).await?;
    let contract = contract_of(&reseller)?;
    let q: Quote = rules::quote(&contract.pricing, contract.markup_bps, calls);
    Reply::ok(&json!({
        "calls": q.calls,
        "mode": contract.pricing.mode,
        "tier": q.tier,
        "wholesale_cents": q.wholesale_cents,
        "retail_cents": q.retail_cents,
        "reseller_margin_cents": q.margin_cents,
        "platform_revenue_cents": q.wholesale_cents,
        "markup_bps": contract.markup_bps,
    }))
}

// --- end users ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct EndUserView {
    id: String,
    external_id: String,
    email: Option<String>,
    active: bool,
    created_at: Timestamp,
    deactivated_at: Option<Timestamp>,
}

impl From<EndUserRow> for EndUserView {
    fn from(r: EndUserRow) -> Self {
        EndUserView {
            id: r.id,
            external_id: r.external_id,
            email: r.email,
            active: r.deactivated_at.is_none(),
            created_at: Timestamp::from_unix(r.created_at),
            deactivated_at: r.deactivated_at.map(Timestamp::from_unix),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndUserBody {
    external_id: String,
    email: Option<String>,
}

/// `POST /resellers/me/end-users` `{"external_id", "email"?}`: an end user, within the
/// contract's `max_end_users` (exact under parallel creation: 409 `end_user_limit_reached`); the
/// same external id again is the same end user (200).
pub async fn create_end_user(ctx: &Ctx) -> ApiResult {
    let body: EndUserBody = ctx.json()?;
    let external_id = body.external_id.trim();
    if external_id.is_empty() || external_id.len() > 128 || !external_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation("external_id", "external_id must be 1 to 128 visible ASCII characters"));
    }
    let email = body.email.as_deref().map(|e| rules::email(e, "email")).transpose().map_err(field_error)?;
    let db = ctx.db()?;
    let reseller = mine(ctx, &db).await?;
    contract_of(&reseller)?;
    match store::add_end_user(&db, &reseller.id, &new_id(), external_id, email.as_deref(), ctx.now).await? {
        Added::Done(row, created) => Reply::json(if created { 201 } else { 200 }, &EndUserView::from(row)),
        Added::Full => Err(ApiError::conflict("end_user_limit_reached", "Every end-user seat of your contract is taken; deactivate one first.")),
    }
}

/// `GET /resellers/me/end-users`, newest first.
pub async fn list_end_users(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let reseller = mine(ctx, &db).await?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::end_users(&db, &reseller.id, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |r| (r.created_at, r.id.clone())).map(EndUserView::from))
}

/// `POST /resellers/me/end-users/{id}/deactivate`: frees the end user's seat (their calls are
/// refused from then on).
pub async fn deactivate_end_user(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let reseller = mine(ctx, &db).await?;
    let row = store::deactivate_end_user(&db, &reseller.id, ctx.param("id")?, ctx.now).await?;
    Reply::ok(&EndUserView::from(row.ok_or_else(|| ApiError::not_found("No such end user."))?))
}
