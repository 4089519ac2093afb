//! SQL of `conversions` and `refunds`, and the batches that apply a conversion's or a refund's
//! effects (commission, referral bonus, reversal, bonus cancellation) atomically.

use super::referrals::{Grant, NewBonus};
use super::{args, Db, Error, Result};
use crate::domain::affiliates::{self as affiliate_rules, AffiliateStatus, Referrer};
use crate::domain::conversions::Conversion;
use crate::domain::earnings::{CommissionFacts, RefundEffect, StoredStatus};
use crate::domain::referrals::{PaidBefore, Referral, ReferralStatus};
use crate::domain::rewards::Event;
use crate::domain::time::Timestamp;
use serde::Deserialize;
use worker::D1PreparedStatement;

const COLUMNS: &str = "c.id, c.external_id, c.source, c.user_id, c.amount_cents, c.currency, c.occurred_at, c.created_at,
    COALESCE((SELECT MAX(r.refunded_total) FROM refunds r WHERE r.conversion_id = c.id), 0) AS refunded_cents,
    (SELECT COUNT(*) FROM refunds r WHERE r.conversion_id = c.id) AS refunds";

#[derive(Deserialize)]
struct Row {
    id: String,
    external_id: String,
    source: String,
    user_id: String,
    amount_cents: i64,
    currency: String,
    occurred_at: i64,
    created_at: i64,
    refunded_cents: i64,
    refunds: i64,
}

impl From<Row> for Conversion {
    fn from(r: Row) -> Self {
        Conversion {
            id: r.id,
            external_id: r.external_id,
            source: r.source,
            user_id: r.user_id,
            amount_cents: r.amount_cents,
            currency: r.currency,
            occurred_at: Timestamp::from_unix(r.occurred_at),
            created_at: Timestamp::from_unix(r.created_at),
            refunded_cents: r.refunded_cents,
            refund_count: r.refunds,
        }
    }
}

pub async fn find_by_external(db: &Db, external_id: &str) -> Result<Option<Conversion>> {
    let sql = format!("SELECT {COLUMNS} FROM conversions c WHERE c.external_id = ?1");
    Ok(db.first::<Row>(&sql, &args![external_id]).await?.map(Conversion::from))
}

/// What the rules need to know about a user's payment made at a given time.
pub struct Context {
    /// The affiliate the user is attributed to: (affiliate id, terms).
    pub referrer: Option<(String, Referrer)>,
    /// The user's referral: (id, referrer user, the rule's view of it).
    pub referral: Option<(String, String, Referral)>,
    /// The user's recorded payments (made no later than this one, for the largest).
    pub paid_before: PaidBefore,
}

#[derive(Deserialize)]
struct ContextRow {
    attributed_at: Option<i64>,
    affiliate_id: Option<String>,
    affiliate_status: Option<String>,
    affiliate_user_active: i64,
    rate_bps: Option<i64>,
    months: Option<i64>,
    referral_id: Option<String>,
    referrer_id: Option<String>,
    referral_status: Option<String>,
    referral_created_at: Option<i64>,
    expires_at: Option<i64>,
    referrer_active: i64,
    first_paid_at: Option<i64>,
    largest_paid_cents: i64,
}

/// The context of a payment of `user_id` made at `occurred_at`. (Users not provisioned yet count
/// as active.)
pub async fn context(db: &Db, user_id: &str, occurred_at: Timestamp) -> Result<Context> {
    let sql = "SELECT a.created_at AS attributed_at, f.id AS affiliate_id, f.status AS affiliate_status,
            COALESCE(fu.is_active, 1) AS affiliate_user_active, f.commission_rate_bps AS rate_bps, f.commission_months AS months,
            r.id AS referral_id, r.referrer_id, r.status AS referral_status, r.created_at AS referral_created_at, r.expires_at,
            COALESCE(ru.is_active, 1) AS referrer_active,
            (SELECT MIN(occurred_at) FROM conversions WHERE user_id = ?1) AS first_paid_at,
            (SELECT COALESCE(MAX(amount_cents), 0) FROM conversions WHERE user_id = ?1 AND occurred_at <= ?2) AS largest_paid_cents
        FROM (SELECT ?1 AS user_id) u
        LEFT JOIN attributions a ON a.user_id = u.user_id
        LEFT JOIN affiliates f ON f.id = a.affiliate_id
        LEFT JOIN users fu ON fu.id = f.user_id
        LEFT JOIN referrals r ON r.referred_id = u.user_id
        LEFT JOIN users ru ON ru.id = r.referrer_id";
    let row = db
        .first::<ContextRow>(sql, &args![user_id, occurred_at.unix()])
        .await?
        .ok_or_else(|| Error::D1("no context row".into()))?;
    let referrer = match (row.affiliate_id, row.affiliate_status, row.rate_bps, row.months, row.attributed_at) {
        (Some(id), Some(status), Some(rate), Some(months), Some(at)) => {
            let status = AffiliateStatus::parse(&status).ok_or_else(|| Error::corrupt("affiliates", &id, "status", &status))?;
            let terms = Referrer {
                status,
                user_active: row.affiliate_user_active != 0,
                rate_bps: Error::checked("affiliates", &id, "commission_rate_bps", rate, affiliate_rules::commission_rate)?,
                months: Error::checked("affiliates", &id, "commission_months", months, affiliate_rules::commission_months)?,
                attributed_at: Timestamp::from_unix(at),
            };
            Some((id, terms))
        }
        _ => None,
    };
    let referral = match (row.referral_id, row.referrer_id, row.referral_status, row.referral_created_at, row.expires_at) {
        (Some(id), Some(referrer), Some(status), Some(created), Some(expires)) => {
            let status = ReferralStatus::parse(&status).ok_or_else(|| Error::corrupt("referrals", &id, "status", &status))?;
            let referral = Referral {
                status,
                created_at: Timestamp::from_unix(created),
                expires_at: Timestamp::from_unix(expires),
                referrer_active: row.referrer_active != 0,
            };
            Some((id, referrer, referral))
        }
        _ => None,
    };
    let paid_before = PaidBefore { first_at: row.first_paid_at.map(Timestamp::from_unix), largest_cents: row.largest_paid_cents };
    Ok(Context { referrer, referral, paid_before })
}

pub struct CommissionPlan<'a> {
    pub id: &'a str,
    pub affiliate_id: &'a str,
    pub cents: i64,
    pub rate_bps: u32,
    pub available_at: Timestamp,
}

pub struct ReferralPlan<'a> {
    pub bonus: NewBonus<'a>,
    /// Set when the bonus is granted at once (no hold): the referrer's `referrals` activity
    /// event and its batch (counted once: its id is the referral's).
    pub grant: Option<(&'a str, Event)>,
}

/// A conversion with its effects, written in one batch.
pub struct Plan<'a> {
    /// The Stripe event that carried it: `(id, type)`; a redelivery fails the batch as a whole.
    pub event: Option<(&'a str, &'a str)>,
    pub conversion: &'a Conversion,
    pub commission: Option<CommissionPlan<'a>>,
    pub referral: Option<ReferralPlan<'a>>,
    pub now: Timestamp,
}

pub enum Recorded {
    /// With what landed: the commission and the referral bonus planned land unless, between
    /// reading the context and this batch, the payee was deactivated (or the affiliate left
    /// `active`), or a concurrent payment converted the referral first.
    Recorded { commission: bool, bonus: bool },
    /// The event or the conversion (`external_id`) was recorded before: nothing happened.
    Duplicate,
}

fn event_statement(db: &Db, event: Option<(&str, &str)>, now: Timestamp) -> Result<Option<D1PreparedStatement>> {
    event
        .map(|(id, kind)| {
            db.statement("INSERT INTO stripe_events (id, type, received_at) VALUES (?1, ?2, ?3)", &args![id, kind, now.unix()])
        })
        .transpose()
}

fn is_duplicate(e: &Error) -> bool {
    matches!(e, Error::Constraint(v) if v.is_unique("stripe_events.id") || v.is_unique("conversions.external_id"))
}

pub async fn record(db: &Db, plan: &Plan<'_>) -> Result<Recorded> {
    let c = plan.conversion;
    let now = plan.now.unix();
    let mut statements: Vec<D1PreparedStatement> = event_statement(db, plan.event, plan.now)?.into_iter().collect();
    statements.push(db.statement(
        "INSERT INTO conversions (id, external_id, source, user_id, amount_cents, currency, occurred_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &args![&c.id, &c.external_id, &c.source, &c.user_id, c.amount_cents, &c.currency, c.occurred_at.unix(), now],
    )?);
    let mut commission_at = None;
    if let Some(k) = &plan.commission {
        commission_at = Some(statements.len());
        statements.push(db.statement(
            "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, conversion_id, rate_bps, status, available_at, created_at, updated_at)
             SELECT ?1, 'affiliate', ?2, 'commission', ?3, ?4, ?5, 'open', ?6, ?7, ?7
             WHERE EXISTS (SELECT 1 FROM affiliates f LEFT JOIN users u ON u.id = f.user_id
                           WHERE f.id = ?2 AND f.status = 'active' AND COALESCE(u.is_active, 1) = 1)",
            &args![k.id, k.affiliate_id, k.cents, &c.id, k.rate_bps, k.available_at.unix(), now],
        )?);
    }
    let mut bonus_at = None;
    if let Some(r) = &plan.referral {
        // The bonus, pending, and the referral converted (neither if a concurrent conversion
        // converted it first, nor if the referrer was deactivated meanwhile); then, without a
        // hold, the grant of that same bonus.
        bonus_at = Some(statements.len());
        statements.extend(super::referrals::convert(db, &r.bonus, plan.now)?);
        if let Some((batch, event)) = &r.grant {
            let b = &r.bonus;
            let grant = Grant {
                referral_id: b.referral_id.to_owned(),
                referrer_id: b.referrer_id.to_owned(),
                conversion_id: b.conversion_id.to_owned(),
                credits: b.credits,
            };
            statements.extend(super::referrals::grant(db, &grant, (batch, event), plan.now)?);
        }
    }
    match db.batch(statements).await {
        Ok(results) => {
            let landed = |at: Option<usize>| at.and_then(|i| results.get(i)).is_some_and(|r| super::changes(r) == 1);
            Ok(Recorded::Recorded { commission: landed(commission_at), bonus: landed(bonus_at) })
        }
        Err(e) if is_duplicate(&e) => Ok(Recorded::Duplicate),
        Err(e) => Err(e),
    }
}

/// The commission of a conversion as it stands.
pub async fn commission_of(db: &Db, conversion_id: &str) -> Result<Option<CommissionFacts>> {
    #[derive(Deserialize)]
    struct Row {
        amount_cents: i64,
        status: String,
    }
    let sql = "SELECT amount_cents, status FROM earnings WHERE program = 'affiliate' AND conversion_id = ?1 AND kind = 'commission'";
    match db.first::<Row>(sql, &args![conversion_id]).await? {
        None => Ok(None),
        Some(r) => Ok(Some(CommissionFacts {
            cents: r.amount_cents,
            status: StoredStatus::parse(&r.status)
                .ok_or_else(|| Error::corrupt("earnings", format!("commission of conversion {conversion_id}"), "status", &r.status))?,
        })),
    }
}

pub struct RefundPlan<'a> {
    pub event: Option<(&'a str, &'a str)>,
    pub conversion_id: &'a str,
    /// 1 + the refunds recorded when the plan was made.
    pub seq: i64,
    pub amount_cents: i64,
    pub refunded_total: i64,
    pub effect: RefundEffect,
    pub adjustment_id: &'a str,
    /// Whether the refund cancels the conversion's referral bonus (if it is still pending).
    pub cancels_bonus: bool,
    pub now: Timestamp,
}

pub enum RefundRecorded {
    Recorded,
    /// The event was delivered before.
    Duplicate,
    /// Another refund of this conversion landed since the plan was read: read again.
    Stale,
}

pub async fn record_refund(db: &Db, plan: &RefundPlan<'_>) -> Result<RefundRecorded> {
    let now = plan.now.unix();
    let mut statements: Vec<D1PreparedStatement> = event_statement(db, plan.event, plan.now)?.into_iter().collect();
    statements.push(db.statement(
        "INSERT INTO refunds (conversion_id, seq, amount_cents, refunded_total, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &args![plan.conversion_id, plan.seq, plan.amount_cents, plan.refunded_total, now],
    )?);
    let cents = match plan.effect {
        RefundEffect::None => None,
        RefundEffect::Reverse { cents } => {
            statements.push(db.statement(
                "UPDATE earnings SET status = 'reversed', updated_at = ?2
                 WHERE program = 'affiliate' AND conversion_id = ?1 AND kind = 'commission' AND status = 'open'",
                &args![plan.conversion_id, now],
            )?);
            Some(cents)
        }
        RefundEffect::Adjust { cents } => Some(cents),
    };
    if let Some(cents) = cents {
        // The adjustment lands unless the commission is reversed (by the statement above, when
        // no payout took it in between); it is held as long as its commission.
        statements.push(db.statement(
            "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, conversion_id, refund_seq, status, available_at, created_at, updated_at)
             SELECT ?1, program, payee_id, 'adjustment', ?2, conversion_id, ?3, 'open', MAX(?4, available_at), ?4, ?4
             FROM earnings WHERE program = 'affiliate' AND conversion_id = ?5 AND kind = 'commission' AND status <> 'reversed'",
            &args![plan.adjustment_id, -cents, plan.seq, now, plan.conversion_id],
        )?);
    }
    if plan.cancels_bonus {
        statements.push(super::referrals::cancel(db, plan.conversion_id, plan.now)?);
    }
    match db.batch(statements).await {
        Ok(_) => Ok(RefundRecorded::Recorded),
        Err(Error::Constraint(v)) if v.is_unique("stripe_events.id") => Ok(RefundRecorded::Duplicate),
        Err(Error::Constraint(v)) if v.is_unique("refunds.conversion_id, refunds.seq") => Ok(RefundRecorded::Stale),
        Err(e) => Err(e),
    }
}
