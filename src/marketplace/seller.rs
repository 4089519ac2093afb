//! The seller's side: earnings and analytics of their sales, payouts through the shared engine,
//! and the licenses of their items (list with instances, disable / enable).

use crate::domain::earnings::Balances;
use crate::domain::marketplace::{key_hint, license_transition, LicenseStatus};
use crate::domain::time::{Month, Period, Timestamp, MONTH_FORMAT};
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::store::earnings::{self as ledger, MARKETPLACE};
use crate::store::marketplace::{self as store, SalesBy, SalesRow, SellerLicenseRow};
use serde::{Deserialize, Serialize};

// --- earnings and analytics --------------------------------------------------------------------

/// Sums of sales: `gross_cents = refunded_cents + fee_cents + net_cents`.
#[derive(Serialize)]
struct SalesView {
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    month: Option<String>,
    sales: i64,
    refunds: i64,
    gross_cents: i64,
    refunded_cents: i64,
    fee_cents: i64,
    net_cents: i64,
}

fn sales_view(r: SalesRow, by: SalesBy) -> SalesView {
    let (item_id, month) = match by {
        SalesBy::Item => (r.key, None),
        SalesBy::Month => (None, r.key),
        SalesBy::Total => (None, None),
    };
    SalesView {
        item_id,
        title: r.title,
        month,
        sales: r.sales,
        refunds: r.refunds,
        gross_cents: r.gross_cents,
        refunded_cents: r.refunded_cents,
        fee_cents: r.fee_cents,
        net_cents: r.net_cents,
    }
}

/// Items shown by earnings and analytics at most.
const MAX_ITEMS: u32 = 100;
/// Months shown by earnings at most (ten years).
const MAX_MONTHS: u32 = 120;

async fn sales(ctx: &Ctx, from: Timestamp, to: Timestamp, by: SalesBy, limit: u32) -> ApiResult<Vec<SalesView>> {
    let rows = store::sales(&ctx.db()?, &ctx.user()?.id, from, to, by, limit).await?;
    Ok(rows.into_iter().map(|r| sales_view(r, by)).collect())
}

async fn totals(ctx: &Ctx, from: Timestamp, to: Timestamp) -> ApiResult<SalesView> {
    sales(ctx, from, to, SalesBy::Total, 1).await?.pop().ok_or_else(|| ApiError::internal("no total row"))
}

fn month_param(ctx: &Ctx, name: &'static str) -> ApiResult<Option<Month>> {
    let text = ctx.query(name);
    text.map(|t| Month::parse(t).ok_or_else(|| ApiError::validation(name, format!("{name} {MONTH_FORMAT}")))).transpose()
}

/// `GET /marketplace/seller/earnings?from=YYYY-MM&to=YYYY-MM`: the caller's sales in the months
/// `from..=to` (of the sale; a refund counts in its sale's month): totals, by item (the top
/// 100 by net) and by month, with the balances of their marketplace earnings.
pub async fn earnings(ctx: &Ctx) -> ApiResult {
    let from = month_param(ctx, "from")?.unwrap_or(Month::FIRST);
    let to = month_param(ctx, "to")?.unwrap_or(Month::LAST);
    let (start, end) = (from.start(), to.next().map_or(crate::domain::time::END_OF_TIME, Month::start));
    let db = ctx.db()?;
    // Four independent reads, sent at once.
    let balances = async { Ok::<_, ApiError>(ledger::groups(&db, MARKETPLACE, &ctx.user()?.id, ctx.now, Period::ALL.from, Period::ALL.to).await?) };
    let (groups, totals, by_item, by_month) = futures_util::future::try_join4(
        balances,
        totals(ctx, start, end),
        sales(ctx, start, end, SalesBy::Item, MAX_ITEMS),
        sales(ctx, start, end, SalesBy::Month, MAX_MONTHS),
    )
    .await?;
    Reply::ok(&serde_json::json!({
        "from": from,
        "to": to,
        "currency": ctx.config()?.billing_currency,
        "totals": totals,
        "by_item": by_item,
        "by_month": by_month,
        "balances": Balances::from_groups(&groups),
    }))
}

/// The default window of analytics: the last 30 days.
const DEFAULT_WINDOW_SECONDS: i64 = 30 * 86_400;

/// `GET /marketplace/seller/analytics?from=&to=&top=`: the caller's sales completed in the
/// window (default: the last 30 days), and the `top` (1–100, default 10) items by net revenue.
pub async fn analytics(ctx: &Ctx) -> ApiResult {
    let period = Period::parse(ctx.query("from"), ctx.query("to")).map_err(|(field, why)| ApiError::validation(field, format!("{field} {why}")))?;
    // (`from=` empty: from the start, as everywhere.)
    let from = if ctx.query("from").is_some() { period.from } else { ctx.now.plus_seconds(-DEFAULT_WINDOW_SECONDS) };
    let top = match ctx.query("top") {
        None => 10,
        Some(t) => t.parse::<u32>().ok().filter(|n| (1..=MAX_ITEMS).contains(n)).ok_or_else(|| ApiError::validation("top", format!("top must be 1–{MAX_ITEMS}")))?,
    };
    let (totals, top_items) = futures_util::future::try_join(totals(ctx, from, period.to), sales(ctx, from, period.to, SalesBy::Item, top)).await?;
    Reply::ok(&serde_json::json!({
        "from": from,
        "to": period.to,
        "currency": ctx.config()?.billing_currency,
        "totals": totals,
        "top_items": top_items,
    }))
}

/// `POST /marketplace/seller/payouts`: a payout of the caller's available marketplace earnings
/// (net of refunds netted as debt), through the payout engine every program shares.
pub async fn request_payout(ctx: &Ctx) -> ApiResult {
    let me = &ctx.user()?.id;
    idempotency::run(ctx, KeyPolicy::Optional, || crate::payouts::request(ctx, MARKETPLACE, me)).await
}

/// `GET /marketplace/seller/payouts`
pub async fn list_payouts(ctx: &Ctx) -> ApiResult {
    crate::payouts::list_of(ctx, MARKETPLACE, &ctx.user()?.id).await
}

// --- licenses ----------------------------------------------------------------------------------

#[derive(Serialize)]
struct SellerLicenseView {
    id: String,
    order_id: String,
    buyer_id: String,
    /// The key's last symbols (the buyer's key itself is theirs).
    key_hint: String,
    status: LicenseStatus,
    activation_usage: i64,
    activation_limit: Option<i64>,
    /// Active instances, oldest first (at most 100; `activation_usage` counts them all).
    instances: Vec<InstanceView>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

#[derive(Serialize)]
struct InstanceView {
    id: String,
    instance_name: String,
    created_at: Timestamp,
}

fn license_view(row: SellerLicenseRow) -> ApiResult<SellerLicenseView> {
    let instances = row
        .instances()?
        .into_iter()
        .map(|i| InstanceView { id: i.id, instance_name: i.instance_name, created_at: Timestamp::from_unix(i.created_at) })
        .collect();
    Ok(SellerLicenseView {
        status: row.status()?,
        key_hint: key_hint(&row.license_key),
        instances,
        id: row.id,
        order_id: row.order_id,
        buyer_id: row.buyer_id,
        activation_usage: row.active,
        activation_limit: row.activation_limit,
        created_at: Timestamp::from_unix(row.created_at),
        updated_at: Timestamp::from_unix(row.updated_at),
    })
}

/// `GET /marketplace/items/{id}/licenses` (the seller): the item's licenses, newest first, with
/// their active instances.
pub async fn licenses(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let item = super::own_item(ctx, &db).await?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::item_licenses(&db, &item.id, page.after.as_ref(), page.fetch_limit()).await?;
    let page = Page::from_rows(rows, page.limit, |r| (r.created_at, r.id.clone()));
    let items = page.items.into_iter().map(license_view).collect::<ApiResult<Vec<_>>>()?;
    Reply::ok(&Page { items, next_cursor: page.next_cursor })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LicensePatch {
    status: LicenseStatus,
}

/// `PATCH /marketplace/licenses/{id}` (the seller of its item) `{"status": "disabled" | "active"}`:
/// a disabled license validates as `disabled` and activates nothing until enabled again. A
/// revoked license (a refund) stays revoked.
pub async fn update_license(ctx: &Ctx) -> ApiResult {
    let body: LicensePatch = ctx.json()?;
    if body.status == LicenseStatus::Revoked {
        return Err(ApiError::validation("status", "status must be active or disabled (a refund revokes a license)"));
    }
    let db = ctx.db()?;
    let (me, id) = (&ctx.user()?.id, ctx.param("id")?);
    for _ in 0..3 {
        let row = store::seller_license(&db, me, id).await?.ok_or_else(license_not_found)?;
        let current = row.status()?;
        if current == body.status {
            return Reply::ok(&license_view(row)?);
        }
        license_transition(current, body.status)?;
        if store::set_license_status(&db, id, current, body.status, ctx.now).await? {
            let row = store::seller_license(&db, me, id).await?.ok_or_else(license_not_found)?;
            return Reply::ok(&license_view(row)?);
        }
    }
    Err(ApiError::contention("concurrent_update", "The license changed meanwhile; retry."))
}

fn license_not_found() -> ApiError {
    ApiError::not_found("No such license.")
}
