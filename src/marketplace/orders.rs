//! Purchases: an order snapshots the price and fee; completing it creates, in one batch, the
//! buyer's license, the download grant and the seller's held earning. License keys are checked
//! by the seller's software through public endpoints; downloads are signed links the worker
//! checks and streams from R2.

use super::not_found;
use crate::blobs;
use crate::domain::earnings::available_at;
use crate::domain::marketplace::{self as rules, ByteRange, LicenseStatus, Order, OrderStatus, TokenError, ValidationCode};
use crate::domain::rewards::{Event, Metric};
use crate::domain::time::Timestamp;
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::marketplace::{self as store, Completion, Placed, PurchaseRow};
use crate::store::Db;
use serde::{Deserialize, Serialize};

/// A buyer's order as they see it.
#[derive(Serialize)]
struct PurchaseView {
    order_id: String,
    item_id: String,
    status: OrderStatus,
    price_cents: i64,
    platform_fee_cents: i64,
    seller_payout_cents: i64,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkout_url: Option<String>,
    created_at: Timestamp,
    completed_at: Option<Timestamp>,
    refunded_at: Option<Timestamp>,
    /// Once completed.
    license: Option<LicenseView>,
    download_url: Option<String>,
    download_expires_at: Option<Timestamp>,
}

#[derive(Serialize)]
struct LicenseView {
    key: String,
    status: LicenseStatus,
    activation_usage: i64,
    activation_limit: Option<i64>,
}

fn purchase_view(ctx: &Ctx, row: &PurchaseRow) -> ApiResult<PurchaseView> {
    let order = row.order()?;
    let config = ctx.config()?;
    let license = match (&row.license_key, row.license_status()?) {
        (Some(key), Some(status)) => Some(LicenseView {
            key: key.clone(),
            status,
            activation_usage: row.activations.unwrap_or(0),
            activation_limit: row.activation_limit,
        }),
        _ => None,
    };
    // A revoked grant (a refund) shows no link.
    let link = match (&row.grant_id, row.grant_expires_at, row.grant_revoked_at) {
        (Some(grant), Some(expires), None) => {
            let expires = Timestamp::from_unix(expires);
            let token = rules::download_token(&config.download_signing_secret, grant, expires);
            Some((format!("{}/d/{token}", config.public_base_url), expires))
        }
        _ => None,
    };
    Ok(PurchaseView {
        order_id: order.id,
        item_id: order.item_id,
        status: order.status,
        price_cents: order.price_cents,
        platform_fee_cents: order.fee_cents,
        seller_payout_cents: order.seller_cents,
        currency: order.currency,
        checkout_url: order.checkout_url.filter(|_| order.status == OrderStatus::Pending),
        created_at: order.created_at,
        completed_at: order.completed_at,
        refunded_at: order.refunded_at,
        license,
        download_url: link.as_ref().map(|(url, _)| url.clone()),
        download_expires_at: link.map(|(_, at)| at),
    })
}

async fn purchase_reply(ctx: &Ctx, db: &Db, status: u16, order_id: &str) -> ApiResult {
    let row = store::purchase(db, &ctx.user()?.id, order_id).await?.ok_or_else(|| ApiError::internal("order not found after placing it"))?;
    Reply::json(status, &purchase_view(ctx, &row)?)
}

/// `POST /marketplace/items/{id}/purchase` (`Idempotency-Key` required): an order at the item's
/// price and fee. A free item completes at once; a paid one waits for its payment
/// (`POST /admin/marketplace/orders/{id}/complete`, or the Stripe checkout).
pub async fn purchase(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Required, || async {
        let db = ctx.db()?;
        let buyer = ctx.user()?.id.clone();
        for _ in 0..3 {
            let item = store::find(&db, ctx.param("id")?).await?.filter(|i| i.is_public()).ok_or_else(not_found)?;
            rules::may_buy(&item, &buyer)?;
            let order = Order::place(new_id(), &item, &buyer, ctx.config()?.marketplace_fee_bps, ctx.now);
            match store::place(&db, &order, item.version).await? {
                Placed::Placed => {
                    if order.price_cents == 0 {
                        complete(ctx, &db, &order, None).await?;
                    } else {
                        open_checkout(ctx, &db, &order, &item.title).await?;
                    }
                    return purchase_reply(ctx, &db, 201, &order.id).await;
                }
                Placed::Live(live) if live.status == OrderStatus::Completed => {
                    return Err(ApiError::conflict("already_purchased", "You own this item already."));
                }
                Placed::Live(live) => {
                    // The buyer's purchase in progress; a free one whose completion failed
                    // before completes now, a paid one without its checkout gets it now.
                    if live.price_cents == 0 {
                        complete(ctx, &db, &live, None).await?;
                    } else if live.checkout_url.is_none() {
                        open_checkout(ctx, &db, &live, &item.title).await?;
                    }
                    return purchase_reply(ctx, &db, 200, &live.id).await;
                }
                // The item changed (price, fee, status) since it was read: read it again.
                Placed::ItemChanged => {}
            }
        }
        Err(ApiError::contention("concurrent_update", "The item changed meanwhile; retry."))
    })
    .await
}

/// Opens a Stripe Checkout Session for a paid order when `STRIPE_SECRET_KEY` is set (the order
/// id as `client_reference_id` and in the metadata; Stripe's own idempotency key per order, so a
/// retried purchase opens the same session). The order completes on `checkout.session.completed`.
async fn open_checkout(ctx: &Ctx, db: &Db, order: &Order, title: &str) -> ApiResult<()> {
    let config = ctx.config()?;
    let Some(key) = &config.stripe_secret_key else { return Ok(()) };
    let return_url = format!("{}/api/v1/monetization/marketplace/purchases/{}", config.public_base_url, order.id);
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("mode", "payment")
        .append_pair("client_reference_id", &order.id)
        .append_pair("metadata[order_id]", &order.id)
        .append_pair("payment_intent_data[metadata][order_id]", &order.id)
        .append_pair("line_items[0][quantity]", "1")
        .append_pair("line_items[0][price_data][currency]", &order.currency)
        .append_pair("line_items[0][price_data][unit_amount]", &order.price_cents.to_string())
        .append_pair("line_items[0][price_data][product_data][name]", title)
        .append_pair("success_url", &format!("{return_url}?checkout=success"))
        .append_pair("cancel_url", &format!("{return_url}?checkout=cancelled"))
        .finish();
    let headers = worker::Headers::new();
    headers.set("Authorization", &format!("Bearer {key}"))?;
    headers.set("Content-Type", "application/x-www-form-urlencoded")?;
    headers.set("Idempotency-Key", &format!("soundhash-order-{}", order.id))?;
    let init = worker::web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.0);
    init.set_body(&body.into());
    let url = format!("{}/v1/checkout/sessions", config.stripe_api_base);
    let request = worker::web_sys::Request::new_with_str_and_init(&url, &init).map_err(|e| ApiError::internal(format!("{e:?}")))?;
    let unavailable = |detail: String| {
        let mut e = ApiError::new(502, "payment_provider_error", "The payment provider could not open a checkout; retry.");
        e.detail = Some(detail);
        e
    };
    let mut response = worker::Fetch::Request(worker::Request::from(request)).send().await.map_err(|e| unavailable(e.to_string()))?;
    let text = response.text().await.unwrap_or_default();
    if response.status_code() != 200 {
        return Err(unavailable(format!("Stripe answered {}: {text}", response.status_code())));
    }
    let session: serde_json::Value = serde_json::from_str(&text).map_err(|e| unavailable(format!("Stripe's session: {e}")))?;
    match (session["id"].as_str(), session["url"].as_str()) {
        (Some(id), Some(url)) => Ok(store::set_checkout(db, &order.id, id, url, ctx.now).await?),
        _ => Err(unavailable(format!("Stripe's session without id or url: {text}"))),
    }
}

/// `checkout.session.completed`: completes the order the session was opened for, once (also
/// when delivered twice at once), if the session and the amount are the order's. The outcome.
pub async fn checkout_completed(ctx: &Ctx, db: &Db, object: &serde_json::Value) -> ApiResult<&'static str> {
    let Some(order_id) = object["client_reference_id"].as_str().or(object["metadata"]["order_id"].as_str()) else {
        return Ok("ignored: checkout session without an order");
    };
    if object["payment_status"].as_str() != Some("paid") {
        return Ok("ignored: checkout session not paid");
    }
    let Some((order, session)) = store::order_of_checkout(db, order_id).await? else { return Ok("ignored: no such order") };
    if session.as_deref() != object["id"].as_str() {
        return Ok("ignored: not the order's checkout session");
    }
    if object["amount_total"].as_i64() != Some(order.price_cents) || object["currency"].as_str() != Some(order.currency.as_str()) {
        return Ok("ignored: amount or currency is not the order's");
    }
    if order.status != OrderStatus::Pending {
        return Ok("duplicate");
    }
    let payment_ref = object["payment_intent"].as_str().filter(|p| crate::domain::keys::client_key(p).is_some());
    let completed = complete(ctx, db, &order, payment_ref).await?;
    // Its refund may have come first (Stripe's events arrive in any order; the refund was held):
    // applied now. (A refund arriving meanwhile looks for the order again after holding itself.)
    if let Some(payment_ref) = payment_ref {
        if let Some(total) = crate::store::stripe::held_refund(db, payment_ref).await? {
            if refund_payment(ctx, db, payment_ref, total).await? == Some("order_refunded") {
                return Ok("order_completed_and_refunded");
            }
        }
    }
    Ok(if completed { "order_completed" } else { "duplicate" })
}

/// `charge.refunded` of a marketplace order's payment (`None` when the payment is no order's):
/// a refund of the whole price refunds the order; a partial one is left to an admin.
pub async fn refund_payment(ctx: &Ctx, db: &Db, payment_intent: &str, amount_refunded: i64) -> ApiResult<Option<&'static str>> {
    let Some(order) = store::order_of_payment(db, payment_intent).await? else { return Ok(None) };
    Ok(Some(match order.status {
        OrderStatus::Refunded => "duplicate",
        _ if amount_refunded < order.price_cents => "ignored: partial refund of a marketplace order",
        _ => {
            if store::refund_order(db, &order, &new_id(), ctx.now).await? {
                "order_refunded"
            } else {
                "duplicate"
            }
        }
    }))
}

/// `POST /admin/marketplace/orders/{id}/refund`: an order refunded through other billing (or by
/// hand). Its license and download are revoked at once, the seller's earning reversed, or netted
/// against the next payout when paid out already. Once: a refunded order answers as it is.
pub async fn admin_refund(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let order = store::find_order(&db, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    match order.status {
        OrderStatus::Pending => return Err(ApiError::conflict("order_not_completed", "This order was never paid.")),
        OrderStatus::Completed => {
            store::refund_order(&db, &order, &new_id(), ctx.now).await?;
        }
        OrderStatus::Refunded => {}
    }
    let row = store::purchase(&db, &order.buyer_id, &order.id).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    Reply::ok(&purchase_view(ctx, &row)?)
}

/// Completes a pending order (see `store::complete`); whether this call did.
async fn complete(ctx: &Ctx, db: &Db, order: &Order, payment_ref: Option<&str>) -> ApiResult<bool> {
    let config = ctx.config()?;
    let key = rules::license_key(random_16()?);
    let key_hash = rules::key_hash(&key);
    let license_id = new_id();
    let event = (order.seller_cents > 0).then(|| Event {
        id: format!("{}marketplace:{}", crate::domain::keys::INTERNAL_PREFIX, order.id),
        user_id: order.seller_id.clone(),
        metric: Metric::RevenueCents,
        amount: order.seller_cents,
        occurred_at: ctx.now,
    });
    let completion = Completion {
        order,
        license_id: &license_id,
        license_key: &key,
        key_hash: &key_hash,
        grant_id: &new_id(),
        grant_expires: Timestamp::from_unix(ctx.now.unix() + config.download_link_days * 86_400),
        available_at: available_at(ctx.now, config.commission_hold_days),
        payment_ref,
        event: event.as_ref(),
        now: ctx.now,
    };
    let completed = store::complete(db, &completion).await?;
    if completed && event.is_some() {
        crate::rewards::publish_batch_later(ctx, license_id)?;
    }
    Ok(completed)
}

fn random_16() -> ApiResult<[u8; 16]> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("CSPRNG: {e}")))?;
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    /// The payment's reference in the billing system that took it.
    payment_ref: Option<String>,
}

/// `POST /admin/marketplace/orders/{id}/complete`: an order paid through other billing. Once:
/// completing a completed order answers it as it is.
pub async fn admin_complete(ctx: &Ctx) -> ApiResult {
    let body: CompleteBody = if ctx.body.is_empty() { CompleteBody { payment_ref: None } } else { ctx.json()? };
    if body.payment_ref.as_deref().is_some_and(|r| crate::domain::keys::client_key(r).is_none()) {
        return Err(ApiError::validation("payment_ref", "payment_ref must be 1–255 visible ASCII characters"));
    }
    let db = ctx.db()?;
    let order = store::find_order(&db, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    match order.status {
        OrderStatus::Pending => {
            complete(ctx, &db, &order, body.payment_ref.as_deref()).await?;
        }
        OrderStatus::Completed => {}
        OrderStatus::Refunded => return Err(ApiError::conflict("order_refunded", "This order was refunded.")),
    }
    let row = store::purchase(&db, &order.buyer_id, &order.id).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    Reply::ok(&purchase_view(ctx, &row)?)
}

/// `GET /marketplace/purchases`: the caller's orders, newest first.
pub async fn list(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::purchases(&ctx.db()?, &ctx.user()?.id, page.after.as_ref(), page.fetch_limit()).await?;
    let page = Page::from_rows(rows, page.limit, PurchaseRow::cursor);
    let items = page.items.iter().map(|r| purchase_view(ctx, r)).collect::<ApiResult<Vec<_>>>()?;
    Reply::ok(&Page { items, next_cursor: page.next_cursor })
}

/// `GET /marketplace/purchases/{id}`: one of the caller's orders (anyone else's → 404).
pub async fn get(ctx: &Ctx) -> ApiResult {
    let row = store::purchase(&ctx.db()?, &ctx.user()?.id, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    Reply::ok(&purchase_view(ctx, &row)?)
}

/// `POST /marketplace/purchases/{id}/license/rotate`: a new key for the caller's license; the
/// old one stops at once (its activations stay).
pub async fn rotate(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let buyer = ctx.user()?.id.clone();
    let order_id = ctx.param("id")?;
    let row = store::purchase(&db, &buyer, order_id).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    if row.license_key.is_none() {
        return Err(ApiError::conflict("no_license", "This order has no license (yet)."));
    }
    let key = rules::license_key(random_16()?);
    if !store::rotate_key(&db, order_id, &buyer, &key, &rules::key_hash(&key), ctx.now).await? {
        return Err(ApiError::conflict("license_revoked", "This license was revoked."));
    }
    get(ctx).await
}

// --- license endpoints (public: the seller's software calls them) -----------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    license_key: String,
    item_id: String,
    instance_name: String,
}

/// The license a key names, for `item_id` (an unknown key, or a key of another item: 404 alike,
/// so the endpoint tells nothing about other items' keys).
async fn license_for(db: &Db, key: &str, item_id: &str) -> ApiResult<Option<store::LicenseRow>> {
    let Some(canonical) = rules::parse_license_key(key) else { return Ok(None) };
    Ok(store::license_by_hash(db, &rules::key_hash(&canonical)).await?.filter(|l| l.item_id == item_id))
}

/// `POST /licenses/activate`: the instance of this name on the license, created within the
/// license's activation limit (exact under parallel activations); the same name again returns
/// the same instance.
pub async fn activate(ctx: &Ctx) -> ApiResult {
    let body: ActivateBody = ctx.json()?;
    rules::check_instance_name(&body.instance_name).map_err(|why| ApiError::validation("instance_name", format!("instance_name {why}")))?;
    let db = ctx.db()?;
    let license = license_for(&db, &body.license_key, &body.item_id).await?.ok_or_else(license_not_found)?;
    match license.status()? {
        LicenseStatus::Active => {}
        LicenseStatus::Disabled => return Err(ApiError::conflict("license_disabled", "This license is disabled.")),
        LicenseStatus::Revoked => return Err(ApiError::conflict("license_revoked", "This license was revoked.")),
    }
    let mut activated = None;
    for _ in 0..2 {
        activated = store::activate(&db, &license.id, &new_id(), &body.instance_name, ctx.now).await?;
        if activated.is_some() {
            break;
        }
        // At its limit (a seat may have been freed meanwhile: then once more), or no longer active.
        let active = store::active_instances(&db, &license.id).await?;
        rules::may_activate(active, license.activation_limit)?;
    }
    let Some((instance, created)) = activated else {
        return Err(ApiError::conflict("license_not_active", "This license is no longer active."));
    };
    let view = serde_json::json!({
        "instance_id": instance.id,
        "instance_name": instance.instance_name,
        "activated_at": Timestamp::from_unix(instance.created_at),
        "activation_usage": instance.active,
        "activation_limit": license.activation_limit,
    });
    Reply::json(if created { 201 } else { 200 }, &view)
}

fn license_not_found() -> ApiError {
    ApiError::not_found("No license with this key for this item.")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    license_key: String,
    item_id: String,
    instance_id: Option<String>,
}

/// `POST /licenses/validate`: always 200 with `valid` and a `code`; no side effects.
pub async fn validate(ctx: &Ctx) -> ApiResult {
    let body: ValidateBody = ctx.json()?;
    for (field, value, max) in [("license_key", Some(&body.license_key), 80), ("item_id", Some(&body.item_id), 128), ("instance_id", body.instance_id.as_ref(), 128)] {
        if value.is_some_and(|v| v.chars().count() > max) {
            return Err(ApiError::validation(field, format!("{field} must be at most {max} characters")));
        }
    }
    let db = ctx.db()?;
    let license = match rules::parse_license_key(&body.license_key) {
        Some(canonical) => store::license_by_hash(&db, &rules::key_hash(&canonical)).await?,
        None => None,
    };
    let facts = match &license {
        Some(l) => Some((l.item_id.as_str(), l.status()?)),
        None => None,
    };
    let instance_active = match (&license, &body.instance_id) {
        (Some(l), Some(instance)) if l.item_id == body.item_id => Some(store::instance_active(&db, &l.id, instance).await?),
        _ => None,
    };
    let code = rules::validation(facts, &body.item_id, instance_active);
    // Only a key of this item says anything about its license.
    let mine = license.filter(|_| code != ValidationCode::WrongItem && code != ValidationCode::Unknown);
    Reply::ok(&serde_json::json!({
        "valid": code == ValidationCode::Valid,
        "code": code,
        "item_id": body.item_id,
        "item": mine.as_ref().map(|l| serde_json::json!({"id": l.item_id, "title": l.item_title, "status": l.item_status})),
        "activation_usage": mine.as_ref().map(|l| l.active),
        "activation_limit": mine.and_then(|l| l.activation_limit),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeactivateBody {
    license_key: String,
    item_id: String,
    instance_id: String,
}

/// `POST /licenses/deactivate`: frees an instance (its seat counts no more).
pub async fn deactivate(ctx: &Ctx) -> ApiResult {
    let body: DeactivateBody = ctx.json()?;
    let db = ctx.db()?;
    let license = license_for(&db, &body.license_key, &body.item_id).await?.ok_or_else(license_not_found)?;
    if !store::deactivate(&db, &license.id, &body.instance_id, ctx.now).await? {
        return Err(ApiError::not_found("No active instance with this id on this license."));
    }
    let active = store::active_instances(&db, &license.id).await?;
    Reply::ok(&serde_json::json!({"instance_id": body.instance_id, "deactivated": true, "activation_usage": active, "activation_limit": license.activation_limit}))
}

// --- downloads -----------------------------------------------------------------------------------

/// `GET /marketplace/purchases/{id}/download[?version=]`: 302 to the signed link.
pub async fn download_link(ctx: &Ctx) -> ApiResult {
    let row = store::purchase(&ctx.db()?, &ctx.user()?.id, ctx.param("id")?).await?.ok_or_else(|| ApiError::not_found("No such order."))?;
    let view = purchase_view(ctx, &row)?;
    let url = view.download_url.ok_or_else(|| ApiError::forbidden("This order has no download (not completed, or refunded)."))?;
    let url = match ctx.query("version") {
        Some(v) if v.is_empty() || v.chars().count() > 64 => return Err(ApiError::validation("version", "version must be 1–64 characters")),
        Some(v) => crate::domain::links::with_param(&url, "version", v).map_err(ApiError::internal)?,
        None => url,
    };
    Ok(crate::links::redirect(url))
}

/// `GET /d/{token}[?version=]` (public): the file of a purchased item, streamed from R2, whole
/// or by `Range` (206). Tampered → 403; expired → 410; revoked or refunded → 403; never a byte
/// of the file then.
pub async fn download(ctx: &Ctx) -> ApiResult {
    let config = ctx.config()?;
    let grant_id = rules::verify_download_token(&config.download_signing_secret, ctx.param("token")?, ctx.now).map_err(|e| match e {
        TokenError::Invalid => ApiError::new(403, "download_invalid", "This download link is not valid."),
        TokenError::Expired => ApiError::new(410, "download_expired", "This download link has expired."),
    })?;
    let db = ctx.db()?;
    let (grant, versions) = store::grant(&db, grant_id).await?.ok_or_else(|| ApiError::new(403, "download_invalid", "This download link is not valid."))?;
    if grant.revoked_at.is_some() || grant.order_status != OrderStatus::Completed.as_str() {
        return Err(ApiError::new(403, "download_revoked", "This purchase was refunded; its download is revoked."));
    }
    if ctx.now.unix() >= grant.expires_at {
        return Err(ApiError::new(410, "download_expired", "This download link has expired."));
    }
    let version = match ctx.query("version") {
        Some(number) => versions.iter().find(|v| v.version_number == number && v.file.is_some()),
        None => super::latest_of(&versions),
    };
    let version = version.ok_or_else(|| ApiError::not_found("No such version of this item."))?;
    let file = version.file.as_ref().ok_or_else(|| ApiError::not_found("No such version of this item."))?;
    let size = file.size as u64;
    let range = rules::byte_range(ctx.header("Range").as_deref(), size);
    let part = match range {
        ByteRange::Whole => None,
        ByteRange::Part { start, end } => Some((start, end)),
        ByteRange::Unsatisfiable => {
            let mut e = ApiError::new(416, "range_not_satisfiable", "The range is outside the file.");
            e.headers.push(("Content-Range", format!("bytes */{size}")));
            return Err(e);
        }
    };
    let stream = blobs::get(&ctx.env, ctx.object_meter(), &file.key, part).await.map_err(ApiError::internal)?;
    let stream = stream.ok_or_else(|| ApiError::internal(format!("R2 object {} is missing", file.key)))?;
    // A download counts once where it starts (the whole file, or a range from its first byte);
    // a HEAD is no download.
    if ctx.method != worker::Method::Head && part.is_none_or(|(start, _)| start == 0) {
        store::count_download(&db, grant_id).await?;
    }
    let name = rules::file_name(&grant.item_title, &version.version_number);
    let content_type = rules::file_type(&file.content_type).unwrap_or("application/octet-stream");
    let mut reply = Reply::streamed(if part.is_some() { 206 } else { 200 }, content_type, stream)
        .with_header("Content-Disposition", format!("attachment; filename=\"{name}\""))
        .with_header("ETag", format!("\"{}\"", file.sha256))
        .with_header("Accept-Ranges", "bytes")
        .with_header("Cache-Control", "private, no-store");
    if let Some((start, end)) = part {
        reply = reply.with_header("Content-Range", format!("bytes {start}-{end}/{size}"));
    }
    Ok(reply)
}
