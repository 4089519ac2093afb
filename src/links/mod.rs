//! Public edge links: `/a/{code}` (affiliates), `/r/{code}` (referrals) and `/c/{code}`
//! (campaigns). A known, active code answers 302 to its stored landing page with the code added
//! to its query; anything else is 404, never a redirect. Countable clicks are recorded after the
//! response (`wait_until`), batched per link (objects::link_clicks::track).
//!
//! What a link needs to know about its code comes from a short-lived per-isolate cache: the click
//! path reads D1 at most once per code and `LINK_CACHE_SECONDS`. A campaign's liveness (status
//! and dates) is judged at every click from the cached state. A change made elsewhere (a
//! suspended affiliate, a deactivated user, an ended campaign) reaches the links after at most
//! the cache lifetime; the isolate that makes it forgets the code at once. Money never depends
//! on the cache: attributions and redemptions read D1.

use crate::domain::affiliates::is_live;
use crate::domain::campaigns::{self as campaign_rules, State};
use crate::domain::{clicks, codes, links};
use crate::http::kept::{self, Kept};
use crate::http::{ratelimit, ApiError, ApiResult, Ctx, Reply};
use crate::domain::time::Timestamp;
use crate::log::log;
use crate::objects::link_clicks::{self, Click, Unsent};
use crate::store::{affiliates, campaigns, clicks as clicks_store, referrals, Db};
use serde_json::json;
use std::cell::RefCell;
use std::future::Future;
use worker::{Env, Method};

/// What the click path knows about a link's code.
#[derive(Clone)]
enum Known {
    /// `/a/`: whether the affiliate is active and its user too.
    Affiliate { active: bool },
    /// `/r/`: whether an active user owns the code.
    Referral { owned: bool },
    /// `/c/`: the redirect URL and the state liveness is judged by; `None` for an unknown code.
    Campaign(Option<(String, State)>),
}

thread_local! {
    /// Link name (`aff:CODE`, …) → what is known, for `LINK_CACHE_SECONDS`.
    static KNOWN: Kept<Known> = Kept::new(10_000);
    /// The visitor key of this isolate's `VISITOR_HASH_SECRET`, prepared once.
    static VISITOR_KEY: RefCell<Option<(Vec<u8>, clicks::VisitorKey)>> = const { RefCell::new(None) };
}

/// What is known about `link`, kept by the isolate or else from `load`. Only a read that
/// reaches D1 is throttled per client IP: an answer the isolate keeps costs nothing to give, so
/// a flood of clicks on a live link is counted (by the batch) rather than refused, while a flood
/// of made-up codes meets the limit.
async fn known<F: Future<Output = ApiResult<Known>>>(ctx: &Ctx, link: &str, load: impl FnOnce() -> F) -> ApiResult<Known> {
    let ttl = ctx.config()?.link_cache_seconds;
    kept::get_or_load(&KNOWN, link, ctx.now, ttl, |_| true, ratelimit::by_ip(ctx), load).await
}

/// Drops what this isolate knows about a link (its code was just changed here).
pub fn forget(link: &str) {
    KNOWN.with(|k| k.forget(link));
}

fn unknown() -> ApiError {
    ApiError::not_found("No such link.")
}

/// `GET /a/{code}`
pub async fn affiliate(ctx: &Ctx) -> ApiResult {
    let code = codes::parse(codes::AFFILIATE, ctx.param("code")?).ok_or_else(unknown)?;
    let link = links::affiliate_link(&code);
    let load = || async {
        let state = affiliates::link_state(&ctx.db()?, &code).await?;
        Ok(Known::Affiliate { active: state.is_some_and(|(status, user_active)| is_live(status, user_active)) })
    };
    if !matches!(known(ctx, &link, load).await?, Known::Affiliate { active: true }) {
        return Err(unknown());
    }
    let target = links::with_param(&ctx.config()?.affiliate_landing_url, "aff", &code).map_err(ApiError::internal)?;
    count(ctx, link)?;
    Ok(redirect(target))
}

/// `GET /r/{code}`
pub async fn referral(ctx: &Ctx) -> ApiResult {
    let code = codes::parse(codes::REFERRAL, ctx.param("code")?).ok_or_else(unknown)?;
    let link = links::referral_link(&code);
    let load = || async { Ok(Known::Referral { owned: referrals::owner_of(&ctx.db()?, &code).await?.is_some_and(|o| o.active) }) };
    if !matches!(known(ctx, &link, load).await?, Known::Referral { owned: true }) {
        return Err(unknown());
    }
    let target = links::with_param(&ctx.config()?.referral_landing_url, "ref", &code).map_err(ApiError::internal)?;
    count(ctx, link)?;
    Ok(redirect(target))
}

/// `GET /c/{code}`
pub async fn campaign(ctx: &Ctx) -> ApiResult {
    let code = campaign_rules::parse_code(ctx.param("code")?).ok_or_else(unknown)?;
    let link = links::campaign_link(&code);
    let load = || async {
        let campaign = campaigns::find(&ctx.db()?, &code).await?;
        let target = match campaign {
            Some(c) => Some((links::with_param(&c.landing_url, "promo", &code).map_err(ApiError::internal)?, c.state())),
            None => None,
        };
        Ok(Known::Campaign(target))
    };
    let Known::Campaign(Some((target, state))) = known(ctx, &link, load).await? else {
        return Err(unknown());
    };
    if !campaign_rules::is_live(&state, ctx.now) {
        return Err(unknown());
    }
    count(ctx, link)?;
    Ok(redirect(target))
}

pub fn redirect(location: String) -> Reply {
    Reply {
        status: 302,
        content_type: "text/plain",
        body: Vec::new(),
        headers: vec![("Location", location), ("Cache-Control", "no-store".into())],
        stream: None,
    }
}

/// Records the click off the response path, if it is one to count.
fn count(ctx: &Ctx, link: String) -> ApiResult<()> {
    let user_agent = ctx.header("User-Agent");
    if !clicks::is_countable(ctx.method == Method::Get, user_agent.as_deref()) {
        return Ok(());
    }
    let secret = &ctx.config()?.visitor_hash_secret;
    let visitor = VISITOR_KEY.with(|kept| {
        let mut kept = kept.borrow_mut();
        let key = match &*kept {
            Some((for_secret, key)) if for_secret == secret => key,
            _ => &kept.insert((secret.clone(), clicks::VisitorKey::new(secret))).1,
        };
        clicks::visitor_id(key, ctx.now, &ctx.client_ip(), &user_agent.unwrap_or_default())
    });
    let click = Click { at: ctx.now.unix(), visitor };
    if let Some(send) = link_clicks::track(&ctx.env, link, click) {
        let env = ctx.env.clone();
        let now = ctx.now;
        ctx.background.wait_until(async move {
            if let Some(unsent) = send.await {
                park(&env, unsent, now).await;
            }
        });
    }
    Ok(())
}

/// Parks a batch its object did not confirm, for the cron to send again (`resend`).
async fn park(env: &Env, unsent: Unsent, now: Timestamp) {
    let parked = match Db::from_env(env) {
        Ok(db) => clicks_store::park(&db, &unsent.batch_id, &unsent.link, &unsent.body, unsent.clicks, now).await,
        Err(e) => Err(e),
    };
    if let Err(e) = parked {
        log("error", &json!({"link": unsent.link, "lost_clicks": unsent.clicks, "batch": unsent.batch_id, "error": e.to_string()}));
    }
}

/// How long a parked batch is sent again: less than the day link objects remember batch ids.
pub const PARK_HOURS: i64 = 20;
const _: () = assert!(PARK_HOURS * 3_600 + 3_600 <= link_clicks::BATCH_RETENTION_SECONDS, "a parked batch must be re-sent while its object remembers its id");
/// Parked batches the cron sends at once (to their objects concurrently).
const RESEND_CHUNK: u32 = 50;
/// How long one cron run keeps sending parked batches.
const RESEND_BUDGET_MS: u64 = 20_000;

/// Cron: sends parked click batches again, removing each its object confirms, chunk after chunk
/// until none is left, a chunk confirms nothing, or `RESEND_BUDGET_MS` is spent; drops (and logs)
/// those parked longer than `PARK_HOURS`. How many were confirmed.
pub async fn resend(env: &Env, now: Timestamp) -> crate::store::Result<usize> {
    let db = Db::from_env(env)?;
    let lost = clicks_store::drop_older(&db, now.plus_seconds(-PARK_HOURS * 3_600)).await?;
    if lost > 0 {
        log("error", &json!({"lost_clicks": lost, "why": "parked longer than PARK_HOURS"}));
    }
    let started = worker::Date::now().as_millis();
    let mut confirmed = 0;
    loop {
        let chunk = clicks_store::take(&db, RESEND_CHUNK).await?;
        let sends = chunk.iter().map(|batch| link_clicks::send(env, &batch.link, batch.body.clone()));
        let outcomes = futures_util::future::join_all(sends).await;
        let mut confirmed_now = 0;
        for (batch, outcome) in chunk.iter().zip(outcomes) {
            match outcome {
                Ok(()) => {
                    clicks_store::unpark(&db, &batch.id).await?;
                    confirmed_now += 1;
                }
                Err(e) => log("warn", &json!({"link": batch.link, "batch": batch.id, "error": e.to_string(), "retry": "cron"})),
            }
        }
        confirmed += confirmed_now;
        let spent = worker::Date::now().as_millis().saturating_sub(started);
        if chunk.len() < RESEND_CHUNK as usize || confirmed_now == 0 || spent > RESEND_BUDGET_MS {
            return Ok(confirmed);
        }
    }
}
