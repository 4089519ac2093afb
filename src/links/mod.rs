//! Public edge links: `/a/{code}` (affiliates), `/r/{code}` (referrals) and `/c/{code}`
//! (campaigns). A known, active code answers 302 to its stored landing page with the code added
//! to its query; anything else is 404, never a redirect. Countable clicks are recorded after the
//! response (`wait_until`), batched per link (objects::link_clicks::track).

use crate::domain::affiliates::AffiliateStatus;
use crate::domain::{clicks, codes, links};
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::objects::link_clicks::{self, Click};
use crate::store::{affiliates, referrals};
use worker::Method;

fn unknown() -> ApiError {
    ApiError::not_found("No such link.")
}

/// `GET /a/{code}`
pub async fn affiliate(ctx: &Ctx) -> ApiResult {
    let code = codes::parse(codes::AFFILIATE, ctx.param("code")?).ok_or_else(unknown)?;
    let affiliate = affiliates::find_by_code(&ctx.db()?, &code).await?.ok_or_else(unknown)?;
    if affiliate.status != AffiliateStatus::Active {
        return Err(unknown());
    }
    let target = links::with_param(&ctx.config()?.affiliate_landing_url, "aff", &code).map_err(ApiError::internal)?;
    count(ctx, crate::affiliates::link_name(&code))?;
    Ok(redirect(target))
}

/// `GET /r/{code}`
pub async fn referral(ctx: &Ctx) -> ApiResult {
    let code = codes::parse(codes::REFERRAL, ctx.param("code")?).ok_or_else(unknown)?;
    referrals::owner_of(&ctx.db()?, &code).await?.ok_or_else(unknown)?;
    let target = links::with_param(&ctx.config()?.referral_landing_url, "ref", &code).map_err(ApiError::internal)?;
    count(ctx, crate::referrals::link_name(&code))?;
    Ok(redirect(target))
}

/// `GET /c/{code}`
pub async fn campaign(ctx: &Ctx) -> ApiResult {
    let code = crate::domain::campaigns::parse_code(ctx.param("code")?).ok_or_else(unknown)?;
    let target = crate::campaigns::live_target(ctx, &code).await?.ok_or_else(unknown)?;
    count(ctx, crate::campaigns::link_name(&code))?;
    Ok(redirect(target))
}

pub fn redirect(location: String) -> Reply {
    Reply { status: 302, content_type: "text/plain", body: Vec::new(), headers: vec![("Location", location), ("Cache-Control", "no-store".into())] }
}

/// Records the click off the response path, if it is one to count.
fn count(ctx: &Ctx, link: String) -> ApiResult<()> {
    let user_agent = ctx.header("User-Agent");
    if !clicks::is_countable(ctx.method == Method::Get, user_agent.as_deref()) {
        return Ok(());
    }
    let visitor = clicks::visitor_id(&ctx.config()?.visitor_hash_secret, ctx.now, &ctx.client_ip(), &user_agent.unwrap_or_default());
    let click = Click { at: ctx.now.unix(), visitor };
    let env = ctx.env.clone();
    ctx.background.wait_until(link_clicks::track(env, link, click));
    Ok(())
}
