//! Attribution: a signed-up user records which affiliate and/or referrer brought them. First
//! touch wins; nobody attributes themselves; a deactivated user's codes bring nobody.

use crate::domain::{affiliates as affiliate_rules, codes, referrals};
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::store::attributions::{self as store, Created, NewAttribution};
use crate::ids::new_id;
use crate::store::{affiliates, referrals as referral_store};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    affiliate_code: Option<String>,
    referral_code: Option<String>,
}

/// `POST /attributions` with `{"affiliate_code"?, "referral_code"?}`.
pub async fn create(ctx: &Ctx) -> ApiResult {
    let body: Body = ctx.json()?;
    if body.affiliate_code.is_none() && body.referral_code.is_none() {
        return Err(ApiError::validation("body", "Give affiliate_code and/or referral_code."));
    }
    let user = &ctx.user()?.id;
    let db = ctx.db()?;
    if store::exists(&db, user).await? {
        return Err(already());
    }
    let unknown = |what: &str| ApiError::not_found(format!("No such {what} code."));
    let affiliate = match &body.affiliate_code {
        None => None,
        Some(text) => {
            let code = codes::parse(codes::AFFILIATE, text).ok_or_else(|| unknown("affiliate"))?;
            let a = affiliates::find_by_code(&db, &code).await?.ok_or_else(|| unknown("affiliate"))?;
            referrals::not_self(&a.user_id, user)?;
            let user_active = crate::store::users::find(&db, &a.user_id).await?.is_none_or(|u| u.is_active);
            if !affiliate_rules::is_live(a.status, user_active) {
                return Err(ApiError::conflict("affiliate_inactive", "This affiliate is not active."));
            }
            Some(a)
        }
    };
    let referral = match &body.referral_code {
        None => None,
        Some(text) => {
            let code = codes::parse(codes::REFERRAL, text).ok_or_else(|| unknown("referral"))?;
            let owner = referral_store::owner_of(&db, &code).await?.filter(|o| o.active).ok_or_else(|| unknown("referral"))?;
            referrals::not_self(&owner.user_id, user)?;
            Some((code, owner.user_id))
        }
    };
    let cfg = ctx.config()?;
    let referral_id = new_id();
    let expires_at = referrals::expires_at(ctx.now, cfg.referral_expiry_days);
    let attribution = NewAttribution {
        user_id: user,
        affiliate_id: affiliate.as_ref().map(|a| a.id.as_str()),
        referral_code: referral.as_ref().map(|(code, _)| code.as_str()),
        referral: referral.as_ref().map(|(_, referrer)| (referral_id.as_str(), referrer.as_str(), expires_at)),
        now: ctx.now,
    };
    match store::create(&db, &attribution).await? {
        Created::AlreadyAttributed => Err(already()),
        Created::Created => Reply::created(&json!({
            "user_id": user,
            "affiliate_code": affiliate.map(|a| a.code),
            "referral_code": referral.as_ref().map(|(code, _)| code),
            "referral": referral.map(|_| json!({ "status": "pending", "expires_at": expires_at })),
            "created_at": ctx.now,
        })),
    }
}

fn already() -> ApiError {
    ApiError::conflict("already_attributed", "You are attributed already; the first attribution stands.")
}
