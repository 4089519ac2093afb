//! Conversions (the money in): Stripe's `invoice.paid` and `charge.refunded`, and the admin
//! endpoints for other billing systems. A conversion may earn its user's affiliate a commission
//! and convert its user's referral (the referrer earns a bonus of credits, held like the
//! commission); a refund reverses the matching part of the commission and may cancel a held bonus.

pub mod stripe;

use crate::config::Config;
use crate::domain::conversions::Conversion;
use crate::domain::earnings::{self, RefundEffect};
use crate::domain::time::Timestamp;
use crate::domain::{affiliates, keys, money, referrals};
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::log::log;
use crate::store::conversions::{self as store, CommissionPlan, Plan, Recorded, RefundPlan, RefundRecorded, ReferralPlan};
use crate::store::referrals::NewBonus;
use crate::store::Db;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A conversion as the API shows it.
#[derive(Serialize)]
struct ConversionView<'a> {
    id: &'a str,
    external_id: &'a str,
    source: &'a str,
    user_id: &'a str,
    amount_cents: i64,
    currency: &'a str,
    occurred_at: Timestamp,
    refunded_cents: i64,
}

impl<'a> From<&'a Conversion> for ConversionView<'a> {
    fn from(c: &'a Conversion) -> Self {
        ConversionView {
            id: &c.id,
            external_id: &c.external_id,
            source: &c.source,
            user_id: &c.user_id,
            amount_cents: c.amount_cents,
            currency: &c.currency,
            occurred_at: c.occurred_at,
            refunded_cents: c.refunded_cents,
        }
    }
}

/// What a conversion did.
#[derive(Debug, Default, Serialize)]
pub struct Effects {
    pub commission_cents: Option<i64>,
    pub referral_bonus_credits: Option<i64>,
}

/// Records a conversion and its effects. `Ok(None)` when it (or its event) was recorded before.
/// `settle_seconds`: how long its referral bonus stays pending at least, whatever the hold
/// (`referrals::STRIPE_SETTLE_SECONDS` for Stripe's out-of-order events, 0 otherwise).
pub async fn apply(
    ctx: &Ctx,
    db: &Db,
    conversion: &Conversion,
    settle_seconds: i64,
    event: Option<(&str, &str)>,
) -> Result<Option<Effects>, ApiError> {
    let (cfg, now) = (ctx.config()?, ctx.now);
    let activity_batch = new_id();
    let context = store::context(db, &conversion.user_id, conversion.occurred_at).await?;
    let commission_id = new_id();
    let commission = context.referrer.as_ref().and_then(|(affiliate_id, referrer)| {
        affiliates::commission(Some(referrer), conversion.amount_cents, conversion.occurred_at).map(|cents| CommissionPlan {
            id: &commission_id,
            affiliate_id,
            cents,
            rate_bps: referrer.rate_bps,
            available_at: earnings::available_at(conversion.occurred_at, cfg.commission_hold_days),
        })
    });
    let referral = context.referral.as_ref().and_then(|(id, referrer_id, referral)| {
        let (amount, occurred_at) = (conversion.amount_cents, conversion.occurred_at);
        let converts = referrals::converts(referral, amount, occurred_at, &context.paid_before, cfg.referral_min_payment_cents);
        converts.then(|| {
            let held_until = earnings::available_at(occurred_at, cfg.commission_hold_days);
            let (available_at, granted_at_once) = referrals::bonus_due(cfg.commission_hold_days, held_until, now, settle_seconds);
            ReferralPlan {
                bonus: NewBonus {
                    referral_id: id,
                    referrer_id,
                    conversion_id: &conversion.id,
                    credits: cfg.referral_bonus_credits,
                    available_at,
                },
                grant: granted_at_once.then(|| (activity_batch.as_str(), crate::rewards::referral_event(id, referrer_id, now))),
            }
        })
    });
    let (commission_cents, bonus_credits) = (commission.as_ref().map(|c| c.cents), referral.as_ref().map(|r| r.bonus.credits));
    // The referrer's activity event is counted when the bonus is granted: here only without a hold.
    let grants_at_once = referral.as_ref().is_some_and(|r| r.grant.is_some());
    let plan = Plan { event, conversion, commission, referral, now };
    Ok(match store::record(db, &plan).await? {
        // What landed, not what was planned (a payee deactivated meanwhile earns nothing).
        Recorded::Recorded { commission, bonus } => {
            if grants_at_once && bonus {
                crate::rewards::publish_batch_later(ctx, activity_batch)?;
            }
            Some(Effects {
                commission_cents: commission_cents.filter(|_| commission),
                referral_bonus_credits: bonus_credits.filter(|_| bonus),
            })
        }
        Recorded::Duplicate => None,
    })
}

/// What a refund did.
pub enum Refunded {
    Applied(Conversion, RefundEffect),
    /// The event was delivered before, or the total was reached already.
    Nothing,
    /// No conversion has this external id (yet).
    NoConversion,
}

/// Refunds a conversion up to a cumulative `refunded_total`, reversing the matching part of its
/// commission and cancelling its held referral bonus if the payment no longer qualifies.
/// Retries when a concurrent refund of the same conversion lands first.
pub async fn refund(
    db: &Db,
    cfg: &Config,
    external_id: &str,
    total: impl Fn(&Conversion) -> Result<i64, ApiError>,
    event: Option<(&str, &str)>,
    now: Timestamp,
) -> Result<Refunded, ApiError> {
    for _ in 0..5 {
        let Some(conversion) = store::find_by_external(db, external_id).await? else {
            return Ok(Refunded::NoConversion);
        };
        let refunded_total = total(&conversion)?;
        if refunded_total <= conversion.refunded_cents {
            return Ok(Refunded::Nothing);
        }
        let commission = store::commission_of(db, &conversion.id).await?;
        let effect =
            earnings::refund_effect(commission, conversion.amount_cents, conversion.refunded_cents, refunded_total);
        let bonus = crate::store::referrals::bonus_of(db, &conversion.id).await?;
        let cancels_bonus =
            referrals::refund_cancels(bonus, conversion.amount_cents, refunded_total, cfg.referral_min_payment_cents);
        let adjustment_id = new_id();
        let plan = RefundPlan {
            event,
            conversion_id: &conversion.id,
            seq: conversion.refund_count + 1,
            amount_cents: refunded_total - conversion.refunded_cents,
            refunded_total,
            effect,
            adjustment_id: &adjustment_id,
            cancels_bonus,
            now,
        };
        match store::record_refund(db, &plan).await? {
            RefundRecorded::Recorded => {
                let refunded = Conversion { refunded_cents: refunded_total, refund_count: plan.seq, ..conversion };
                return Ok(Refunded::Applied(refunded, effect));
            }
            RefundRecorded::Duplicate => return Ok(Refunded::Nothing),
            RefundRecorded::Stale => continue,
        }
    }
    Err(ApiError::contention("refund_contention", "Too many concurrent refunds of this conversion; retry."))
}

// --- admin endpoints -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversionBody {
    external_id: String,
    user_id: String,
    amount_cents: i64,
    currency: String,
    occurred_at: Option<Timestamp>,
}

fn external_id(text: &str) -> Result<String, ApiError> {
    keys::client_key(text)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::validation("external_id", "external_id must be 1–255 visible ASCII characters"))
}

/// `POST /admin/conversions`: a conversion from a billing system other than Stripe. Idempotent on
/// `external_id`: the same conversion again answers 200 with the stored one.
pub async fn admin_create(ctx: &Ctx) -> ApiResult {
    let body: ConversionBody = ctx.json()?;
    let cfg = ctx.config()?;
    let external_id = external_id(&body.external_id)?;
    if !crate::http::auth::valid_user_id(&body.user_id) {
        return Err(ApiError::validation("user_id", "user_id must be 1–128 visible ASCII characters"));
    }
    money::positive_cents(body.amount_cents).map_err(|e| ApiError::validation("amount_cents", e))?;
    let currency = body.currency.trim().to_ascii_lowercase();
    if currency != cfg.billing_currency {
        return Err(ApiError::unprocessable("unsupported_currency", format!("Only {} is accepted.", cfg.billing_currency))
            .with_field("currency"));
    }
    let occurred_at = body.occurred_at.unwrap_or(ctx.now);
    if occurred_at > ctx.now.plus_seconds(300) {
        return Err(ApiError::validation("occurred_at", "occurred_at must not be in the future"));
    }
    let conversion = Conversion {
        id: new_id(),
        external_id,
        source: "admin".into(),
        user_id: body.user_id,
        amount_cents: body.amount_cents,
        currency,
        occurred_at,
        created_at: ctx.now,
        refunded_cents: 0,
        refund_count: 0,
    };
    let db = ctx.db()?;
    match apply(ctx, &db, &conversion, 0, None).await? {
        Some(effects) => Reply::created(&json!({ "conversion": ConversionView::from(&conversion), "effects": effects })),
        None => {
            let stored = store::find_by_external(&db, &conversion.external_id)
                .await?
                .ok_or_else(|| ApiError::internal("duplicate conversion not found"))?;
            let same = stored.user_id == conversion.user_id
                && stored.amount_cents == conversion.amount_cents
                && stored.currency == conversion.currency
                && (body.occurred_at.is_none() || stored.occurred_at == conversion.occurred_at);
            if !same {
                return Err(ApiError::conflict(
                    "already_exists",
                    "A different conversion with this external_id exists.",
                ));
            }
            Reply::ok(&json!({ "conversion": ConversionView::from(&stored), "effects": null }))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    external_id: String,
    amount_cents: Option<i64>,
}

/// `POST /admin/refunds`: refunds `amount_cents` (default: all that is left) of a conversion.
pub async fn admin_refund(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Optional, || async {
        let body: RefundBody = ctx.json()?;
        let external_id = external_id(&body.external_id)?;
        body.amount_cents.map(money::positive_cents).transpose().map_err(|e| ApiError::validation("amount_cents", e))?;
        let total = |c: &Conversion| {
            let left = c.amount_cents - c.refunded_cents;
            let amount = body.amount_cents.unwrap_or(left);
            if left == 0 || amount > left {
                // What is left depends on the refunds before: a conflict with that state.
                return Err(ApiError::conflict(
                    "refund_exceeds_amount",
                    "The refund exceeds what is left of the conversion.",
                )
                .with_field("amount_cents"));
            }
            Ok(c.refunded_cents + amount)
        };
        match refund(&ctx.db()?, ctx.config()?, &external_id, total, None, ctx.now).await? {
            Refunded::Applied(conversion, effect) => Reply::created(&json!({
                "conversion": ConversionView::from(&conversion),
                "commission_reversed_cents": reversed_cents(effect),
            })),
            Refunded::Nothing => Err(ApiError::conflict("refund_exceeds_amount", "Nothing is left to refund.")),
            Refunded::NoConversion => Err(ApiError::not_found("No conversion with this external_id.")),
        }
    })
    .await
}

fn reversed_cents(effect: RefundEffect) -> i64 {
    match effect {
        RefundEffect::None => 0,
        RefundEffect::Reverse { cents } | RefundEffect::Adjust { cents } => cents,
    }
}

// --- Stripe ----------------------------------------------------------------------------------

/// `POST /webhooks/stripe`.
pub async fn stripe_webhook(ctx: &Ctx) -> ApiResult {
    let cfg = ctx.config()?;
    let Some(secret) = &cfg.stripe_webhook_secret else {
        return Err(ApiError::new(503, "webhooks_disabled", "Stripe webhooks are not configured."));
    };
    let header = ctx.header("Stripe-Signature").unwrap_or_default();
    stripe::verify_signature(&header, &ctx.body, secret, ctx.now.unix())
        .map_err(|reason| ApiError::new(400, "invalid_signature", format!("Stripe signature rejected: {reason}.")))?;
    let event: stripe::Event = serde_json::from_slice(&ctx.body)
        .map_err(|_| ApiError::invalid_json("The body is not a Stripe event."))?;
    let db = ctx.db()?;
    let outcome = match event.created() {
        Err(reason) => reason,
        Ok(created) => handle_event(ctx, &db, cfg, &event, created).await?,
    };
    if outcome.starts_with("ignored") {
        log("info", &json!({"request_id": ctx.request_id, "stripe_event": event.id, "type": event.kind, "outcome": outcome}));
    }
    Reply::ok(&json!({ "received": true, "event_id": event.id, "outcome": outcome }))
}

/// What a verified event (created at `created`) does: its outcome.
async fn handle_event(ctx: &Ctx, db: &Db, cfg: &Config, event: &stripe::Event, created: Timestamp) -> Result<&'static str, ApiError> {
    Ok(match event.kind.as_str() {
        "invoice.paid" => invoice_paid(ctx, db, cfg, event, created).await?,
        "charge.refunded" => charge_refunded(ctx, db, cfg, event).await?,
        "checkout.session.completed" => crate::marketplace::orders::checkout_completed(ctx, db, &event.data.object).await?,
        "invoice_payment.paid" => match stripe::invoice_payment(&event.data.object) {
            Some(payment) => {
                crate::store::stripe::link_payment(db, &payment.payment_intent, &payment.invoice_id, ctx.now).await?;
                settle_held_refund(db, cfg, &payment.invoice_id, ctx.now).await?;
                "payment_linked"
            }
            None => "ignored: invoice payment without invoice or payment intent",
        },
        "customer.created" | "customer.updated" => match stripe::customer_link(&event.data.object) {
            Some(link) => {
                crate::store::stripe::link_customer(db, &link.customer, &link.user_id, ctx.now).await?;
                "customer_linked"
            }
            None => "ignored: customer without metadata.user_id",
        },
        _ => "ignored: event type not handled",
    })
}

async fn invoice_paid(ctx: &Ctx, db: &Db, cfg: &Config, event: &stripe::Event, created: Timestamp) -> Result<&'static str, ApiError> {
    let invoice = match stripe::paid_invoice(&event.data.object) {
        Ok(invoice) => invoice,
        Err(reason) => return Ok(reason),
    };
    if let Some(payment_intent) = &invoice.payment_intent {
        crate::store::stripe::link_payment(db, payment_intent, &invoice.invoice_id, ctx.now).await?;
    }
    if invoice.amount_paid <= 0 {
        return Ok("ignored: nothing was paid");
    }
    if invoice.currency != cfg.billing_currency {
        return Ok("ignored: currency not accepted");
    }
    let user_id = match (&invoice.user_id, &invoice.customer) {
        (Some(user), Some(customer)) => {
            crate::store::stripe::link_customer(db, customer, user, ctx.now).await?;
            Some(user.clone())
        }
        (Some(user), None) => Some(user.clone()),
        (None, Some(customer)) => crate::store::stripe::user_of_customer(db, customer).await?,
        (None, None) => None,
    };
    let Some(user_id) = user_id.filter(|u| crate::http::auth::valid_user_id(u)) else {
        return Ok("ignored: no user for this invoice");
    };
    let conversion = Conversion {
        id: new_id(),
        external_id: invoice.invoice_id.clone(),
        source: "stripe".into(),
        user_id,
        amount_cents: invoice.amount_paid,
        currency: invoice.currency,
        occurred_at: invoice.paid_at.unwrap_or(created),
        created_at: ctx.now,
        refunded_cents: 0,
        refund_count: 0,
    };
    let settle = referrals::STRIPE_SETTLE_SECONDS;
    let recorded = apply(ctx, db, &conversion, settle, Some((&event.id, &event.kind))).await?.is_some();
    // A refund may have come first.
    settle_held_refund(db, cfg, &invoice.invoice_id, ctx.now).await?;
    Ok(if recorded { "conversion_recorded" } else { "duplicate" })
}

async fn charge_refunded(ctx: &Ctx, db: &Db, cfg: &Config, event: &stripe::Event) -> Result<&'static str, ApiError> {
    let charge = match stripe::refunded_charge(&event.data.object) {
        Ok(charge) => charge,
        Err(reason) => return Ok(reason),
    };
    if let Some(payment_intent) = &charge.payment_intent {
        if let Some(outcome) = crate::marketplace::orders::refund_payment(ctx, db, payment_intent, charge.amount_refunded).await? {
            return Ok(outcome);
        }
    }
    if let Some(outcome) = refund_known_charge(ctx, db, cfg, event, &charge).await? {
        return Ok(outcome);
    }
    // No conversion yet (events arrive in any order): hold the total, then look once more in
    // case the conversion or the payment link landed meanwhile; whichever comes second applies it.
    let reference = charge.invoice_id.as_ref().or(charge.payment_intent.as_ref()).cloned().unwrap_or_default();
    crate::store::stripe::hold_refund(db, &reference, charge.amount_refunded, ctx.now).await?;
    if let Some(payment_intent) = &charge.payment_intent {
        if let Some(outcome) = crate::marketplace::orders::refund_payment(ctx, db, payment_intent, charge.amount_refunded).await? {
            return Ok(outcome);
        }
    }
    Ok(refund_known_charge(ctx, db, cfg, event, &charge).await?.unwrap_or("refund_held: no conversion for this charge yet"))
}

/// Refunds the charge's conversion if its invoice and conversion are known (`None` otherwise).
async fn refund_known_charge(
    ctx: &Ctx,
    db: &Db,
    cfg: &Config,
    event: &stripe::Event,
    charge: &stripe::RefundedCharge,
) -> Result<Option<&'static str>, ApiError> {
    let invoice = match (&charge.invoice_id, &charge.payment_intent) {
        (Some(invoice), _) => Some(invoice.clone()),
        (None, Some(pi)) => crate::store::stripe::invoice_of_payment(db, pi).await?,
        (None, None) => None,
    };
    let Some(invoice) = invoice else { return Ok(None) };
    let total = |c: &Conversion| Ok(charge.amount_refunded.clamp(0, c.amount_cents));
    Ok(match refund(db, cfg, &invoice, total, Some((&event.id, &event.kind)), ctx.now).await? {
        Refunded::Applied(..) => Some("refund_recorded"),
        Refunded::Nothing => Some("duplicate"),
        Refunded::NoConversion => None,
    })
}

/// Applies a refund total held for an invoice, once its conversion exists.
async fn settle_held_refund(db: &Db, cfg: &Config, invoice: &str, now: Timestamp) -> Result<(), ApiError> {
    if let Some(total) = crate::store::stripe::held_refund(db, invoice).await? {
        refund(db, cfg, invoice, |c| Ok(total.clamp(0, c.amount_cents)), None, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_is_the_api_shape() {
        let t = Timestamp::from_unix(1_800_000_000);
        let conversion = Conversion {
            id: "c1".into(),
            external_id: "in_1".into(),
            source: "stripe".into(),
            user_id: "u1".into(),
            amount_cents: 2000,
            currency: "usd".into(),
            occurred_at: t,
            created_at: t,
            refunded_cents: 500,
            refund_count: 1,
        };
        assert_eq!(
            serde_json::to_string(&ConversionView::from(&conversion)).unwrap(),
            r#"{"id":"c1","external_id":"in_1","source":"stripe","user_id":"u1","amount_cents":2000,"currency":"usd","occurred_at":"2027-01-15T08:00:00Z","refunded_cents":500}"#
        );
    }
}
