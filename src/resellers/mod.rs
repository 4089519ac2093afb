//! White-label resellers: any active user applies; an admin approves them under a contract
//! (dates, tiered wholesale pricing, markup, end-user and API-call quotas), amends, suspends or
//! terminates it; the cron activates and expires contracts at their dates. Resellers quote their
//! prices and manage their end users within the contract's seats.
//!
//! The rules are `domain::resellers`; the SQL is `store::resellers`.

use crate::domain::resellers::{self as rules, Actor, Application, Branding, BrandingFields, Contract, Quote, Reseller, ResellerStatus};
use crate::domain::time::Timestamp;
use crate::http::idempotency::parse_key;
use crate::http::kept::{self, Kept};
use crate::http::ratelimit;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::objects::reseller_quota::{self, Report};
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
    if patch.status.is_some_and(|s| !matches!(s, ResellerStatus::Approved | ResellerStatus::Suspended | ResellerStatus::Terminated)) {
        return Err(ApiError::validation("status", "status must be approved, suspended or terminated (active and expired follow the contract's dates)"));
    }
    let expected = ctx.if_match()?;
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
        if expected.is_some_and(|v| v != current.version) {
            return Err(ApiError::precondition_failed("reseller"));
        }
        let mut next = current.clone();
        if let Some(status) = patch.status.filter(|s| *s != current.status) {
            rules::transition(current.status, status, Actor::Admin)?;
            if status == ResellerStatus::Approved && current.contract.is_none() && patch.contract.is_none() {
                return Err(ApiError::validation("contract", "contract: approving needs a contract"));
            }
            next.status = status;
            if status == ResellerStatus::Terminated {
                next.domain_verified_at = None; // (its domain is free for another reseller)
            }
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
        let event = Event {
            kind: if next.status != current.status { "status" } else { "contract" },
            detail: json!({"from": current.status, "to": next.status, "contract": patch.contract, "reason": patch.reason}),
            actor: Some(admin),
        };
        match save(ctx, &db, &current, next, &event).await? {
            Some(updated) => return Reply::ok(&ResellerView::from(updated)),
            None if expected.is_some() => return Err(ApiError::precondition_failed("reseller")),
            None => continue,
        }
    }
    Err(ApiError::contention("concurrent_update", "The reseller changed meanwhile; retry."))
}

/// Writes `next`, made from `current`, as its next version with `event`, and forgets what this
/// isolate keeps of either's domain: the reseller as written, `None` when it changed meanwhile.
async fn save(ctx: &Ctx, db: &Db, current: &Reseller, mut next: Reseller, event: &Event<'_>) -> ApiResult<Option<Reseller>> {
    next.version = current.version + 1;
    next.updated_at = ctx.now;
    match store::update(db, &next, event).await? {
        Updated::Done(updated) => {
            forget_branding(current);
            forget_branding(&updated);
            Ok(Some(*updated))
        }
        Updated::Stale => Ok(None),
        Updated::DomainTaken => Err(domain_taken()),
    }
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
    let external_id = body.external_id.as_str();
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

// --- usage and quotas --------------------------------------------------------------------------

/// Most calls one report counts.
pub const MAX_CALLS_PER_REPORT: i64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageBody {
    reseller_id: String,
    end_user_id: String,
    calls: i64,
}

/// `POST /resellers/usage` (the main SoundHash API's service account, before it serves an end
/// user's calls) `{"reseller_id", "end_user_id", "calls"}`: counts the calls against the
/// reseller's monthly quota (UTC calendar month) in its Durable Object, whole or not at all: 200
/// when counted, 429 `quota_exceeded` with `Retry-After` (seconds to the next month) when they
/// would cross it; `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on both. Only
/// an active reseller's active end users are served (403 otherwise, at once). With
/// `Idempotency-Key`, a retried report is answered as the first time and counted once.
pub async fn usage(ctx: &Ctx) -> ApiResult {
    let body: UsageBody = ctx.json()?;
    if !(1..=MAX_CALLS_PER_REPORT).contains(&body.calls) {
        return Err(ApiError::validation("calls", format!("calls must be 1 to {MAX_CALLS_PER_REPORT}")));
    }
    let key = ctx.header("Idempotency-Key").map(|k| parse_key(&k)).transpose()?;
    let db = ctx.db()?;
    let metering = store::metering(&db, &body.reseller_id, &body.end_user_id).await?.ok_or_else(|| ApiError::not_found("No such reseller."))?;
    let status = ResellerStatus::parse(&metering.status).ok_or_else(|| ApiError::internal(format!("reseller status {}", metering.status)))?;
    if !rules::serves(status) {
        return Err(ApiError::new(403, "reseller_not_active", format!("This reseller is {}: its end users are refused.", status.as_str())));
    }
    if metering.end_user_active == 0 {
        return Err(ApiError::new(403, "end_user_not_active", "No active end user with this id for this reseller."));
    }
    let limit = metering.max_api_calls_per_month.unwrap_or(0);
    if body.calls > limit {
        return Err(ApiError::validation("calls", format!("calls must be at most the monthly quota ({limit})")));
    }
    let (month, reset_seconds) = rules::window(ctx.now);
    let fingerprint = format!("{}:{}", body.end_user_id, body.calls);
    let report = Report { month: month.to_string(), limit, calls: body.calls, key, fingerprint };
    let admission = reseller_quota::report(&ctx.env, ctx.object_meter(), &body.reseller_id, &report).await?;
    if admission.conflict {
        return Err(ApiError::conflict("idempotency_conflict", "This Idempotency-Key was used for another report."));
    }
    let remaining = (admission.limit - admission.used).max(0);
    let headers = [
        ("RateLimit-Limit", admission.limit.to_string()),
        ("RateLimit-Remaining", remaining.to_string()),
        ("RateLimit-Reset", reset_seconds.to_string()),
    ];
    if !admission.accepted {
        let mut e = ApiError::new(429, "quota_exceeded", format!("These {} calls would pass the monthly quota ({remaining} left until the next month).", body.calls));
        e.headers.push(("Retry-After", reset_seconds.to_string()));
        e.headers.extend(headers);
        return Err(e);
    }
    let mut reply = Reply::ok(&json!({
        "accepted": true,
        "calls": body.calls,
        "month": admission.month,
        "used": admission.used,
        "limit": admission.limit,
        "remaining": remaining,
        "reset_seconds": reset_seconds,
        "replayed": admission.replayed,
    }))?;
    for (name, value) in headers {
        reply = reply.with_header(name, value);
    }
    Ok(reply)
}

/// `POST /admin/resellers/{id}/quota/reset` `{"reason"?}`: starts the current month's quota
/// again (the calls so far stay in the month's total for reports); recorded with the admin.
pub async fn reset_quota(ctx: &Ctx) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ResetBody {
        reason: Option<String>,
    }
    let body: ResetBody = ctx.json()?;
    if body.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::validation("reason", "reason must be at most 500 characters"));
    }
    let db = ctx.db()?;
    let reseller = store::find(&db, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such reseller."))?;
    let (month, _) = rules::window(ctx.now);
    // Recorded first: a reset is never without its record (a failed one is recorded, and retried).
    let event = Event { kind: "quota_reset", detail: json!({"month": month, "reason": body.reason}), actor: Some(&ctx.user()?.id) };
    store::record_event(&db, &reseller.id, &event, ctx.now).await?;
    let usage = reseller_quota::reset(&ctx.env, ctx.object_meter(), &reseller.id, &month.to_string()).await?;
    Reply::ok(&json!({"reseller_id": reseller.id, "month": month, "calls": usage.calls, "used": usage.used}))
}

/// Resellers whose totals the cron copies per run at most (the next run goes on after the last).
const SYNC_CHUNK: u32 = 100;
/// How long after expiry or termination a reseller's totals are still copied.
const SYNC_AFTER_END_SECONDS: i64 = 3 * 86_400;

/// The cron: copies the current and the previous month's totals of the metered resellers from
/// their quota objects to D1 (`reseller_usage`), the least recently copied first, up to
/// `SYNC_CHUNK` resellers per run, in one batch. A reseller whose object could not be read is
/// skipped (and comes first next time). Returns how many totals it copied.
pub async fn sync_usage(env: &worker::Env, db: &Db, now: Timestamp) -> Result<usize, ApiError> {
    let ids = store::metered(db, now, SYNC_AFTER_END_SECONDS, SYNC_CHUNK).await?;
    let (month, _) = rules::window(now);
    let previous = rules::window(month.start().plus_seconds(-1)).0;
    let months = [previous.to_string(), month.to_string()];
    let (mut totals, mut synced) = (Vec::new(), Vec::new());
    for id in ids {
        match reseller_quota::usage(env, &crate::timing::Meter::default(), &id, &months).await {
            Ok(usage) => {
                totals.extend(usage.into_iter().filter(|u| u.calls > 0).map(|u| (id.clone(), u.month, u.calls)));
                synced.push(id);
            }
            Err(e) => crate::log::log("error", &json!({"job": "sync_reseller_usage", "reseller_id": id, "error": e.to_string()})),
        }
    }
    store::record_usage(db, &totals, &synced, now).await?;
    Ok(totals.len())
}

// --- branding ----------------------------------------------------------------------------------

thread_local! {
    /// Host → the branding served there (or none), for `LINK_CACHE_SECONDS`, as edge links are.
    static BRANDING: Kept<Option<Branding>> = Kept::new(10_000);
}

/// Drops what this isolate keeps about the reseller's domain (it was just changed here; other
/// isolates within `LINK_CACHE_SECONDS`).
fn forget_branding(r: &Reseller) {
    if let Some(b) = &r.branding {
        BRANDING.with(|k| k.forget(&b.custom_domain));
    }
}

/// Changes the caller's reseller with `change` at the version read (a few attempts), recording
/// `kind`.
async fn change_mine(ctx: &Ctx, kind: &str, change: impl Fn(&mut Reseller) -> ApiResult<()>) -> ApiResult<Reseller> {
    let db = ctx.db()?;
    for _ in 0..ATTEMPTS {
        let current = mine(ctx, &db).await?;
        let mut next = current.clone();
        change(&mut next)?;
        if next == current {
            return Ok(current);
        }
        let event = Event { kind, detail: json!({"branding": next.branding.as_ref().map(|b| &b.custom_domain)}), actor: Some(&ctx.user()?.id) };
        if let Some(updated) = save(ctx, &db, &current, next, &event).await? {
            return Ok(updated);
        }
    }
    Err(ApiError::contention("concurrent_update", "Your reseller account changed meanwhile; retry."))
}

#[derive(Serialize)]
struct BrandingView<'a> {
    #[serde(flatten)]
    branding: &'a Branding,
    /// `pending` until an admin verifies the domain.
    domain_status: &'static str,
}

fn branding_view(r: &Reseller) -> ApiResult<serde_json::Value> {
    let branding = r.branding.as_ref().ok_or_else(|| ApiError::internal("branding missing after its write"))?;
    let status = if r.domain_verified_at.is_some() { "verified" } else { "pending" };
    serde_json::to_value(BrandingView { branding, domain_status: status }).map_err(ApiError::internal)
}

/// `PUT /resellers/me/branding` `{"display_name", "logo_url", "primary_color", "support_email",
/// "custom_domain"}`: the caller's branding. The domain (normalized, unique across resellers:
/// 409 `domain_taken`) is `pending` until an admin verifies it; changing it makes it pending again.
pub async fn put_branding(ctx: &Ctx) -> ApiResult {
    let fields: BrandingFields = ctx.json()?;
    let branding = rules::branding(&fields).map_err(field_error)?;
    let db = ctx.db()?;
    if store::domain_taken(&db, &branding.custom_domain, &mine(ctx, &db).await?.id).await? {
        return Err(domain_taken());
    }
    let updated = change_mine(ctx, "branding", |r| {
        if r.status == ResellerStatus::Terminated {
            return Err(ApiError::conflict("reseller_terminated", "This reseller account is terminated."));
        }
        if r.branding.as_ref().is_none_or(|b| b.custom_domain != branding.custom_domain) {
            r.domain_verified_at = None;
        }
        r.branding = Some(branding.clone());
        Ok(())
    })
    .await?;
    Reply::ok(&branding_view(&updated)?)
}

/// `GET /resellers/me/branding`
pub async fn get_branding(ctx: &Ctx) -> ApiResult {
    let reseller = mine(ctx, &ctx.db()?).await?;
    if reseller.branding.is_none() {
        return Err(ApiError::not_found("No branding yet (PUT /resellers/me/branding)."));
    }
    Reply::ok(&branding_view(&reseller)?)
}

/// `POST /admin/resellers/{id}/domain/verify`: marks the reseller's custom domain verified (in
/// production, once its Cloudflare for SaaS custom hostname is active: see the README).
pub async fn verify_domain(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    for _ in 0..ATTEMPTS {
        let current = store::find(&db, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such reseller."))?;
        let Some(branding) = &current.branding else {
            return Err(ApiError::conflict("no_custom_domain", "This reseller has set no custom domain."));
        };
        if current.domain_verified_at.is_some() {
            return Reply::ok(&branding_view(&current)?);
        }
        let next = Reseller { domain_verified_at: Some(ctx.now), ..current.clone() };
        let event = Event { kind: "domain_verified", detail: json!({"custom_domain": branding.custom_domain}), actor: Some(&ctx.user()?.id) };
        if let Some(updated) = save(ctx, &db, &current, next, &event).await? {
            return Reply::ok(&branding_view(&updated)?);
        }
    }
    Err(ApiError::contention("concurrent_update", "The reseller changed meanwhile; retry."))
}

/// `GET /branding` (public): the theme of the reseller whose verified domain the request's
/// `Host` names, if the reseller is active (404 for any other host). Kept per isolate for
/// `LINK_CACHE_SECONDS`; what reaches D1 is throttled per IP.
pub async fn branding(ctx: &Ctx) -> ApiResult {
    let host = ctx.header("Host").unwrap_or_default();
    let not_found = || ApiError::not_found("No reseller is served at this host.");
    let domain = rules::custom_domain(&host).map_err(|_| not_found())?;
    let ttl = ctx.config()?.link_cache_seconds;
    let db = ctx.db()?;
    let found = kept::get_or_load(&BRANDING, &domain, ctx.now, ttl, |_| true, ratelimit::by_ip(ctx), || async {
        Ok(store::branding_at(&db, &domain).await?)
    })
    .await?;
    let branding = found.ok_or_else(not_found)?;
    Ok(Reply::ok(&json!({
        "display_name": branding.display_name,
        "logo_url": branding.logo_url,
        "primary_color": branding.primary_color,
        "support_email": branding.support_email,
        "domain": branding.custom_domain,
    }))?
    .with_header("Cache-Control", format!("public, max-age={ttl}"))
    .with_header("Vary", "Host"))
}

// --- dashboard ---------------------------------------------------------------------------------

/// Months the dashboard shows.
const DASHBOARD_MONTHS: usize = 12;

/// `GET /resellers/me/dashboard`: end users (active / limit), this month's API calls against
/// the quota and the tier they reach, and for the last 12 months the calls with their wholesale
/// cost, retail price and margin (priced by the contract in force now), all from the reseller's
/// quota object (the source of truth; D1's copies are for reports).
pub async fn dashboard(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let reseller = mine(ctx, &db).await?;
    let contract = reseller.contract.as_ref().ok_or_else(|| ApiError::conflict("not_under_contract", "You have no contract yet."))?;
    let (month, reset_seconds) = rules::window(ctx.now);
    let seats = store::seats_taken(&db, &reseller.id).await?;
    // The last 12 months, this one first.
    let mut keys = vec![month];
    while keys.len() < DASHBOARD_MONTHS {
        let last = keys[keys.len() - 1];
        match rules::window(last.start().plus_seconds(-1)).0 {
            previous if previous < last => keys.push(previous),
            _ => break,
        }
    }
    let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let usage = reseller_quota::usage(&ctx.env, ctx.object_meter(), &reseller.id, &keys).await?;
    let now = usage.first().cloned().unwrap_or_default();
    let months: Vec<serde_json::Value> = usage
        .iter()
        .map(|u| {
            let q = rules::quote(&contract.pricing, contract.markup_bps, u.calls);
            json!({"month": u.month, "calls": u.calls, "wholesale_cents": q.wholesale_cents, "retail_cents": q.retail_cents, "revenue_cents": q.margin_cents})
        })
        .collect();
    let this = rules::quote(&contract.pricing, contract.markup_bps, now.calls);
    Reply::ok(&json!({
        "reseller_id": reseller.id,
        "status": reseller.status,
        "end_users": {"active": seats, "limit": contract.max_end_users},
        "api_calls": {
            "month": month,
            "calls": now.calls,
            "used": now.used,
            "quota": contract.max_api_calls_per_month,
            "remaining": (contract.max_api_calls_per_month - now.used).max(0),
            "reset_seconds": reset_seconds,
        },
        "current_tier": {"index": this.tier, "tier": contract.pricing.tiers.get(this.tier), "mode": contract.pricing.mode},
        "revenue_cents": this.margin_cents,
        "months": months,
    }))
}
