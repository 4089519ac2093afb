//! The affiliate program: apply, admin review, the dashboard, earnings and payouts.

use crate::domain::affiliates::{self as rules, Affiliate, AffiliateStatus};
use crate::domain::earnings::{self, Balances};
use crate::domain::links::affiliate_link;
use crate::domain::time::{Period, Timestamp};
use crate::domain::codes;
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::objects::link_clicks;
use crate::store::affiliates::{self as store, Inserted};
use crate::store::earnings::{self as ledger, AFFILIATE};
use crate::ids::{new_code, new_id};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// An affiliate as the API shows it.
#[derive(Serialize)]
struct AffiliateView {
    id: String,
    user_id: String,
    affiliate_code: String,
    status: AffiliateStatus,
    commission_rate_bps: u32,
    commission_months: u32,
    website: Option<String>,
    payout_email: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Affiliate> for AffiliateView {
    fn from(a: Affiliate) -> Self {
        AffiliateView {
            id: a.id,
            user_id: a.user_id,
            affiliate_code: a.code,
            status: a.status,
            commission_rate_bps: a.commission_rate_bps,
            commission_months: a.commission_months,
            website: a.website,
            payout_email: a.payout_email,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Application {
    website: Option<String>,
    payout_email: Option<String>,
    commission_rate_bps: Option<i64>,
    commission_months: Option<i64>,
}

fn website(text: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else { return Ok(None) };
    match crate::domain::links::web_url(&text) {
        Ok(_) => Ok(Some(text)),
        Err(e) => Err(ApiError::validation("website", format!("website {e}"))),
    }
}

fn email(text: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    crate::domain::payouts::payout_email(&text)
        .map(Some)
        .map_err(|e| ApiError::validation("payout_email", format!("payout_email {e}")))
}

fn field<T>(name: &'static str, value: Option<i64>, check: fn(i64) -> Result<T, &'static str>) -> Result<Option<T>, ApiError> {
    value.map(check).transpose().map_err(|e| ApiError::validation(name, e))
}

/// `POST /affiliates`: any user, once.
pub async fn apply(ctx: &Ctx) -> ApiResult {
    let body: Application = ctx.json()?;
    let user = ctx.user()?;
    let cfg = ctx.config()?;
    let website = website(body.website)?;
    let payout_email = email(body.payout_email)?;
    let rate = field("commission_rate_bps", body.commission_rate_bps, rules::commission_rate)?;
    let months = field("commission_months", body.commission_months, rules::commission_months)?;
    rules::may_set_terms(user.is_admin, rate, cfg.affiliate_commission_bps)?;
    rules::may_set_terms(user.is_admin, months, cfg.affiliate_commission_months)?;
    let db = ctx.db()?;
    for _ in 0..5 {
        let affiliate = Affiliate {
            id: new_id(),
            user_id: user.id.clone(),
            code: new_code(codes::AFFILIATE)?,
            status: AffiliateStatus::Pending,
            commission_rate_bps: rate.unwrap_or(cfg.affiliate_commission_bps),
            commission_months: months.unwrap_or(cfg.affiliate_commission_months),
            website: website.clone(),
            payout_email: payout_email.clone(),
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        match store::insert(&db, &affiliate).await? {
            Inserted::Created(a) => return Reply::created(&AffiliateView::from(a)),
            Inserted::UserTaken => return Err(ApiError::conflict("already_exists", "You are an affiliate already.")),
            Inserted::CodeTaken => continue,
        }
    }
    Err(ApiError::internal("could not draw a free affiliate code in 5 attempts"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    status: Option<AffiliateStatus>,
    commission_rate_bps: Option<i64>,
    commission_months: Option<i64>,
}

/// `PATCH /admin/affiliates/{id}`: status transitions and terms.
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    let body: Review = ctx.json()?;
    if body.status.is_none() && body.commission_rate_bps.is_none() && body.commission_months.is_none() {
        return Err(ApiError::validation("body", "Give status, commission_rate_bps and/or commission_months."));
    }
    let rate = field("commission_rate_bps", body.commission_rate_bps, rules::commission_rate)?;
    let months = field("commission_months", body.commission_months, rules::commission_months)?;
    let db = ctx.db()?;
    let id = ctx.param("id")?;
    // Optimistic: the update applies only if the affiliate is still as read (the rules were
    // checked against it, unchanged fields are written back); a concurrent change makes us check again.
    for _ in 0..3 {
        let current = store::find(&db, id).await?.ok_or_else(|| ApiError::not_found("No such affiliate."))?;
        let status = body.status.unwrap_or(current.status);
        rules::transition(current.status, status)?;
        if rate.is_some() || months.is_some() {
            rules::can_change_terms(current.status)?;
        }
        let rate = rate.unwrap_or(current.commission_rate_bps);
        let months = months.unwrap_or(current.commission_months);
        if let Some(updated) = store::update(&db, &current, status, rate, months, ctx.now).await? {
            crate::links::forget(&affiliate_link(&updated.code));
            return Reply::ok(&AffiliateView::from(updated));
        }
    }
    Err(ApiError::contention("concurrent_update", "The affiliate changed meanwhile; retry."))
}

/// `GET /admin/affiliates?status=&limit=&cursor=`
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let status = ctx.query_named::<AffiliateStatus>("status")?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, status, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |a| (a.created_at.unix(), a.id.clone())).map(AffiliateView::from))
}

async fn mine(ctx: &Ctx) -> ApiResult<Affiliate> {
    store::find_by_user(&ctx.db()?, &ctx.user()?.id)
        .await?
        .ok_or_else(|| ApiError::not_found("You are not an affiliate; apply with POST /affiliates."))
}

fn period(ctx: &Ctx) -> ApiResult<Period> {
    Period::parse(ctx.query("from"), ctx.query("to")).map_err(|(field, msg)| ApiError::validation(field, format!("{field} {msg}")))
}

/// `GET /affiliates/dashboard?from=&to=`
pub async fn dashboard(ctx: &Ctx) -> ApiResult {
    let affiliate = mine(ctx).await?;
    let period = period(ctx)?;
    let db = ctx.db()?;
    let activity = store::activity(&db, &affiliate.id, period.from, period.to).await?;
    let groups = ledger::groups(&db, AFFILIATE, &affiliate.id, ctx.now, period.from, period.to).await?;
    let clicks = link_clicks::stats(&ctx.env, ctx.object_meter(), &affiliate_link(&affiliate.code), period).await?;
    Reply::ok(&json!({
        "affiliate_code": affiliate.code,
        "status": affiliate.status,
        "commission_rate_bps": affiliate.commission_rate_bps,
        "commission_months": affiliate.commission_months,
        "clicks": clicks.clicks,
        "unique_visitors": clicks.unique_visitors,
        "referred_users": activity.referred_users,
        "conversions": activity.conversions,
        "revenue_cents": activity.revenue_cents,
        "earnings": Balances::from_groups(&groups),
    }))
}

/// `GET /affiliates/earnings`: the ledger rows, newest first.
pub async fn list_earnings(ctx: &Ctx) -> ApiResult {
    let affiliate = mine(ctx).await?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = ledger::list(&ctx.db()?, AFFILIATE, &affiliate.id, page.after.as_ref(), page.fetch_limit()).await?;
    let page = Page::from_rows(rows, page.limit, |e| (e.created_at.unix(), e.id.clone()));
    Reply::ok(&page.map(|e| {
        json!({
            "id": e.id,
            "kind": e.kind,
            "amount_cents": e.amount_cents,
            "status": earnings::view_status(e.status, e.available_at, ctx.now),
            "conversion_id": e.conversion_id,
            "commission_rate_bps": e.rate_bps,
            "available_at": e.available_at,
            "payout_id": e.payout_id,
            "created_at": e.created_at,
        })
    }))
}

/// `POST /affiliates/payouts`: gathers everything available into one payout.
pub async fn request_payout(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Optional, || async {
        let affiliate = mine(ctx).await?;
        if affiliate.status != AffiliateStatus::Active {
            return Err(ApiError::conflict("affiliate_not_active", "Only active affiliates can request payouts."));
        }
        crate::payouts::request(ctx, AFFILIATE, &affiliate.id).await
    })
    .await
}

/// `GET /affiliates/payouts`
pub async fn list_payouts(ctx: &Ctx) -> ApiResult {
    let affiliate = mine(ctx).await?;
    crate::payouts::list_of(ctx, AFFILIATE, &affiliate.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_is_the_api_shape() {
        let t = Timestamp::from_unix(1_800_000_000);
        let affiliate = Affiliate {
            id: "a1".into(),
            user_id: "u1".into(),
            code: "AFF23456789".into(),
            status: AffiliateStatus::Active,
            commission_rate_bps: 2000,
            commission_months: 3,
            website: None,
            payout_email: Some("x@example.com".into()),
            created_at: t,
            updated_at: t,
        };
        let page = Page::from_rows(vec![affiliate], 20, |a| (a.created_at.unix(), a.id.clone())).map(AffiliateView::from);
        assert_eq!(
            serde_json::to_string(&page).unwrap(),
            r#"{"items":[{"id":"a1","user_id":"u1","affiliate_code":"AFF23456789","status":"active","commission_rate_bps":2000,"commission_months":3,"website":null,"payout_email":"x@example.com","created_at":"2027-01-15T08:00:00Z","updated_at":"2027-01-15T08:00:00Z"}],"next_cursor":null}"#
        );
    }
}
