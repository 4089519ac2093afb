//! The referral program: a user's `REF` code and link, their referrals' outcomes, and the
//! API-credit ledger the bonuses go to.

use crate::domain::codes;
use crate::domain::links::referral_link;
use crate::domain::referrals::{self as rules, ReferralStatus};
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::objects::link_clicks;
use crate::store::credits::{self, Appended};
use crate::store::referrals::{self as store, Created};
use crate::config::Config;
use crate::domain::time::{Period, Timestamp};
use crate::log::log;
use crate::store::Db;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::Env;

async fn code_of(ctx: &Ctx) -> ApiResult<String> {
    let db = ctx.db()?;
    let user = &ctx.user()?.id;
    if let Some(code) = store::code_of(&db, user).await? {
        return Ok(code);
    }
    for _ in 0..5 {
        match store::create_code(&db, user, &crate::ids::new_code(codes::REFERRAL)?, ctx.now).await? {
            Created::Code(code) => return Ok(code),
            Created::CodeTaken => continue,
        }
    }
    Err(ApiError::internal("could not draw a free referral code in 5 attempts"))
}

/// `GET /referrals/code`: created on first call, stable afterwards.
pub async fn code(ctx: &Ctx) -> ApiResult {
    let code = code_of(ctx).await?;
    let url = format!("{}/r/{code}", ctx.config()?.public_base_url);
    Reply::ok(&json!({ "referral_code": code, "referral_url": url }))
}

/// `GET /referrals/stats`
pub async fn stats(ctx: &Ctx) -> ApiResult {
    let code = code_of(ctx).await?;
    let db = ctx.db()?;
    let user = &ctx.user()?.id;
    let (mut pending, mut converted, mut expired) = (0, 0, 0);
    for (status, lapsed, n) in store::counts(&db, user, ctx.now).await? {
        match rules::shown(status, lapsed) {
            ReferralStatus::Pending => pending += n,
            ReferralStatus::Converted => converted += n,
            ReferralStatus::Expired => expired += n,
        }
    }
    let clicks = link_clicks::stats(&ctx.env, ctx.object_meter(), &referral_link(&code), Period::ALL).await?;
    let bonuses = store::bonus_credits(&db, user).await?;
    Reply::ok(&json!({
        "referral_code": code,
        "clicks": clicks.clicks,
        "unique_visitors": clicks.unique_visitors,
        "total": pending + converted + expired,
        "pending": pending,
        "converted": converted,
        "expired": expired,
        "credits_earned": bonuses.granted,
        "credits_pending": bonuses.pending,
        "credits_cancelled": bonuses.cancelled,
    }))
}

/// A credit balance as the API shows it: the spendable balance of the ledger, and the referral
/// bonuses still held (`pending_credits`, not spendable until granted).
#[derive(Serialize)]
struct BalanceView {
    balance_credits: i64,
    pending_credits: i64,
    lifetime_earned: i64,
    lifetime_spent: i64,
}

impl From<credits::Balance> for BalanceView {
    fn from(b: credits::Balance) -> Self {
        BalanceView {
            balance_credits: b.balance_credits,
            pending_credits: b.pending_credits,
            lifetime_earned: b.lifetime_earned,
            lifetime_spent: b.lifetime_spent,
        }
    }
}

/// `GET /referrals/balance`
pub async fn balance(ctx: &Ctx) -> ApiResult {
    Reply::ok(&BalanceView::from(credits::balance(&ctx.db()?, &ctx.user()?.id).await?))
}

/// `GET /referrals/credits`: the caller's credit transactions, newest first.
pub async fn transactions(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<i64>()?;
    let rows = credits::list(&ctx.db()?, &ctx.user()?.id, page.after, page.fetch_limit()).await?;
    let page = Page::from_rows(rows, page.limit, |t| t.seq);
    Reply::ok(&page.map(|t| {
        json!({
            "seq": t.seq,
            "kind": t.kind,
            "amount": t.amount,
            "balance_after": t.balance_after,
            "reason": t.reason,
            "created_at": crate::domain::time::Timestamp::from_unix(t.created_at),
        })
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Deduction {
    amount: i64,
    reason: String,
}

/// `POST /referrals/credits/deduct` with a required `Idempotency-Key`: never overdraws.
pub async fn deduct(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Required, || async {
        let body: Deduction = ctx.json()?;
        let amount = rules::deduction(body.amount).map_err(|e| ApiError::validation("amount", e))?;
        let reason = body.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(ApiError::validation("reason", "reason must be 1–200 characters"));
        }
        match credits::deduct(&ctx.db()?, &ctx.user()?.id, amount, reason, ctx.now).await? {
            Appended::Balance(balance) => Reply::ok(&json!({ "balance_credits": balance })),
            Appended::Insufficient => {
                Err(ApiError::conflict("insufficient_credits", "The credit balance does not cover this deduction."))
            }
        }
    })
    .await
}

/// How many due bonuses one cron run grants (each is one D1 batch and a leaderboard publish);
/// the rest wait for the next run.
const GRANTS_PER_RUN: u32 = 100;

/// Cron: grants the referral bonuses whose hold is over. Each grant is one D1 batch guarded by
/// the bonus still being pending (so concurrent runs, or a refund that cancels it meanwhile,
/// leave one outcome), which appends the credits to the ledger and counts the referrer's
/// `referrals` activity event (at the grant's time), then published to the leaderboards. A grant
/// that fails is logged and retried by the next run. Returns how many this run granted.
pub async fn grant_due_bonuses(env: &Env, now: Timestamp, cfg: &Config) -> crate::store::Result<usize> {
    let db = Db::from_env(env)?;
    let mut granted = 0;
    for bonus in store::due(&db, now, GRANTS_PER_RUN).await? {
        let batch = crate::ids::new_id();
        let event = crate::rewards::referral_event(&bonus.referral_id, &bonus.referrer_id, now);
        match store::grant_due(&db, &bonus, (&batch, &event), now).await {
            Ok(true) => {
                granted += 1;
                crate::rewards::publish_batch(env, &db, &batch, now, cfg.board_retention).await;
            }
            Ok(false) => {}
            Err(e) => log("error", &json!({"referral_bonus": bonus.referral_id, "error": e.to_string(), "retry": "cron"})),
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balance_view_is_the_api_shape() {
        let balance = credits::Balance { balance_credits: 700, pending_credits: 2000, lifetime_earned: 1000, lifetime_spent: 300 };
        assert_eq!(
            serde_json::to_string(&BalanceView::from(balance)).unwrap(),
            r#"{"balance_credits":700,"pending_credits":2000,"lifetime_earned":1000,"lifetime_spent":300}"#
        );
    }
}
