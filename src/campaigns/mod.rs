//! Promotional campaigns: admins create and schedule them, `/c/{code}` links redirect and count
//! clicks at the edge, users redeem offers within the campaign's limits.

use crate::domain::campaigns::{self as rules, Campaign, CampaignStatus, Offer, OfferType, Redemption};
use crate::domain::time::{Period, Timestamp};
use crate::domain::links;
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::objects::link_clicks;
use crate::store::campaigns::{self as store, Inserted};
use crate::ids::new_id;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A campaign as administrators see it: every field.
#[derive(Serialize)]
struct CampaignView {
    campaign_code: String,
    name: String,
    description: Option<String>,
    offer: Offer,
    landing_url: String,
    status: CampaignStatus,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    max_uses: Option<i64>,
    max_uses_per_user: i64,
    uses: i64,
    tags: Vec<String>,
    created_by: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<Campaign> for CampaignView {
    fn from(c: Campaign) -> Self {
        CampaignView {
            campaign_code: c.code,
            name: c.name,
            description: c.description,
            offer: c.offer,
            landing_url: c.landing_url,
            status: c.status,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            max_uses: c.max_uses,
            max_uses_per_user: c.max_uses_per_user,
            uses: c.uses,
            tags: c.tags,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// What anyone may see of a live campaign.
fn public(c: &Campaign) -> serde_json::Value {
    json!({
        "campaign_code": c.code,
        "name": c.name,
        "description": c.description,
        "offer": c.offer,
        "landing_url": c.landing_url,
        "starts_at": c.starts_at,
        "ends_at": c.ends_at,
        "tags": c.tags,
    })
}

/// A redemption as the API shows it.
#[derive(Serialize)]
struct RedemptionView {
    redemption_id: String,
    campaign_code: String,
    offer: Offer,
    created_at: Timestamp,
}

impl From<Redemption> for RedemptionView {
    fn from(r: Redemption) -> Self {
        RedemptionView { redemption_id: r.id, campaign_code: r.campaign_code, offer: r.offer, created_at: r.created_at }
    }
}

/// Campaign fields a client may set; every one optional so that the same shape serves edits.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    code: Option<String>,
    name: Option<String>,
    description: Option<String>,
    offer: Option<Offer>,
    landing_url: Option<String>,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    max_uses: Option<i64>,
    max_uses_per_user: Option<i64>,
    tags: Option<Vec<String>>,
    status: Option<CampaignStatus>,
}

/// Applies and validates the given fields on `c`.
fn apply_fields(c: &mut Campaign, f: Fields) -> ApiResult<()> {
    if let Some(name) = f.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::validation("name", "name must be 1–200 characters"));
        }
        c.name = name.to_owned();
    }
    if let Some(description) = f.description {
        if description.chars().count() > 2_000 {
            return Err(ApiError::validation("description", "description must be at most 2000 characters"));
        }
        c.description = Some(description);
    }
    if let Some(offer) = f.offer {
        c.offer = offer.validate().map_err(|e| ApiError::validation("offer.value", e))?;
    }
    if let Some(url) = f.landing_url {
        let url = url.trim().to_owned();
        links::landing_url(&url).map_err(|e| ApiError::validation("landing_url", format!("landing_url {e}")))?;
        c.landing_url = url;
    }
    if f.starts_at.is_some() {
        c.starts_at = f.starts_at;
    }
    if f.ends_at.is_some() {
        c.ends_at = f.ends_at;
    }
    rules::window(c.starts_at, c.ends_at).map_err(|e| ApiError::validation("ends_at", e))?;
    if let Some(max) = f.max_uses {
        c.max_uses = Some(rules::uses_limit(max).map_err(|e| ApiError::validation("max_uses", format!("max_uses {e}")))?);
    }
    if let Some(per_user) = f.max_uses_per_user {
        c.max_uses_per_user =
            rules::uses_limit(per_user).map_err(|e| ApiError::validation("max_uses_per_user", format!("max_uses_per_user {e}")))?;
    }
    if let Some(tags) = f.tags {
        let valid = tags.len() <= 20 && tags.iter().all(|t| !t.trim().is_empty() && t.chars().count() <= 40);
        if !valid {
            return Err(ApiError::validation("tags", "up to 20 tags of 1–40 characters"));
        }
        c.tags = tags.into_iter().map(|t| t.trim().to_owned()).collect();
    }
    Ok(())
}

/// Where a campaign is read: `GET /campaigns/{code}` (routes.rs checks the route exists).
pub fn location(code: &str) -> String {
    format!("/api/v1/monetization/campaigns/{code}")
}

/// `POST /campaigns` (admin, optional `Idempotency-Key`): a new draft, answered 201 with its
/// `Location`.
pub async fn create(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Optional, || create_draft(ctx)).await
}

async fn create_draft(ctx: &Ctx) -> ApiResult {
    let mut fields: Fields = ctx.json()?;
    if fields.status.take().is_some() {
        return Err(ApiError::validation("status", "new campaigns start as drafts; change the status with PATCH"));
    }
    let (Some(_), Some(_), Some(_)) = (&fields.name, &fields.offer, &fields.landing_url) else {
        let missing = [("name", fields.name.is_none()), ("offer", fields.offer.is_none()), ("landing_url", fields.landing_url.is_none())]
            .into_iter()
            .find(|(_, m)| *m)
            .map_or("name", |(n, _)| n);
        return Err(ApiError::validation(missing, format!("{missing} is required")));
    };
    let chosen = fields.code.take().map(|c| rules::custom_code(&c).map_err(|e| ApiError::validation("code", e))).transpose()?;
    let mut campaign = Campaign {
        code: String::new(),
        name: String::new(),
        description: None,
        offer: Offer { kind: OfferType::Credits, value: 1 },
        landing_url: String::new(),
        status: CampaignStatus::Draft,
        starts_at: None,
        ends_at: None,
        max_uses: None,
        max_uses_per_user: 1,
        uses: 0,
        tags: Vec::new(),
        created_by: ctx.user()?.id.clone(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply_fields(&mut campaign, fields)?;
    let db = ctx.db()?;
    for _ in 0..5 {
        campaign.code = match &chosen {
            Some(code) => code.clone(),
            None => crate::ids::new_code(rules::PREFIX)?,
        };
        match store::insert(&db, &campaign).await? {
            Inserted::Created(c) => {
                let location = location(&c.code);
                return Ok(Reply::created(&CampaignView::from(*c))?.with_header("Location", location));
            }
            Inserted::CodeTaken if chosen.is_some() => {
                return Err(ApiError::conflict("already_exists", "A campaign with this code exists."))
            }
            Inserted::CodeTaken => continue,
        }
    }
    Err(ApiError::internal("could not draw a free campaign code in 5 attempts"))
}

/// `PATCH /admin/campaigns/{code}`: a status change and/or edits of a draft.
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    let mut fields: Fields = ctx.json()?;
    if fields.code.is_some() {
        return Err(ApiError::validation("code", "the code of a campaign cannot change"));
    }
    let status = fields.status.take();
    let edits = fields.name.is_some()
        || fields.description.is_some()
        || fields.offer.is_some()
        || fields.landing_url.is_some()
        || fields.starts_at.is_some()
        || fields.ends_at.is_some()
        || fields.max_uses.is_some()
        || fields.max_uses_per_user.is_some()
        || fields.tags.is_some();
    if status.is_none() && !edits {
        return Err(ApiError::validation("body", "Give a status and/or fields to edit."));
    }
    let db = ctx.db()?;
    let code = rules::parse_code(ctx.param("code")?).ok_or_else(|| ApiError::not_found("No such campaign."))?;
    // Optimistic: the update applies only if the campaign is still as read (the rules were
    // checked against it, unchanged fields are written back); a concurrent change makes us
    // read and check again.
    for _ in 0..3 {
        let current = store::find(&db, &code).await?.ok_or_else(|| ApiError::not_found("No such campaign."))?;
        let mut next = current.clone();
        if edits {
            rules::editable(current.status)?;
            apply_fields(&mut next, fields.clone())?;
        }
        if let Some(status) = status {
            rules::transition(current.status, status)?;
            next.status = status;
        }
        next.updated_at = ctx.now;
        if let Some(updated) = store::update(&db, &current, &next).await? {
            crate::links::forget(&links::campaign_link(&code));
            return Reply::ok(&CampaignView::from(updated));
        }
    }
    Err(ApiError::contention("concurrent_update", "The campaign changed meanwhile; retry."))
}

/// `GET /campaigns`: live campaigns, public fields.
pub async fn list_public(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list_live(&ctx.db()?, ctx.now, page.after.as_ref(), page.fetch_limit()).await?;
    let page = Page::from_rows(rows, page.limit, |c| (c.created_at.unix(), c.code.clone()));
    Reply::ok(&page.map(|c| public(&c)))
}

/// `GET /admin/campaigns?status=`: every campaign, all fields.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let status = ctx.query_named::<CampaignStatus>("status")?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, status, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |c| (c.created_at.unix(), c.code.clone())).map(CampaignView::from))
}

/// `GET /campaigns/{code}`: the public view of a live campaign; administrators see any campaign
/// with all fields.
pub async fn get(ctx: &Ctx) -> ApiResult {
    let unknown = || ApiError::not_found("No such campaign.");
    let code = rules::parse_code(ctx.param("code")?).ok_or_else(unknown)?;
    let campaign = store::find(&ctx.db()?, &code).await?.ok_or_else(unknown)?;
    let is_admin = ctx.user()?.is_admin;
    if !rules::known_to(&campaign.state(), is_admin, ctx.now) {
        return Err(unknown());
    }
    if is_admin {
        return Reply::ok(&CampaignView::from(campaign));
    }
    Reply::ok(&public(&campaign))
}

/// `POST /campaigns/{code}/redeem` (optional `Idempotency-Key`). A draft, and for anyone but an
/// administrator any campaign that is not live, answers as an unknown code.
pub async fn redeem(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Optional, || async {
        let unknown = || ApiError::not_found("No such campaign.");
        let code = rules::parse_code(ctx.param("code")?).ok_or_else(unknown)?;
        let db = ctx.db()?;
        let user = ctx.user()?;
        let campaign = store::find(&db, &code).await?.ok_or_else(unknown)?;
        if campaign.status == CampaignStatus::Draft || !rules::known_to(&campaign.state(), user.is_admin, ctx.now) {
            return Err(unknown());
        }
        let user = &user.id;
        let credits = (campaign.offer.kind == OfferType::Credits).then_some(campaign.offer.value);
        let id = new_id();
        if store::redeem(&db, &id, &code, user, credits, ctx.now).await?.is_some() {
            let redemption = Redemption { id, campaign_code: code, offer: campaign.offer, created_at: ctx.now };
            return Reply::created(&RedemptionView::from(redemption));
        }
        // Refused: tell which rule, from the state as it is now.
        let now_state = store::find(&db, &code).await?.ok_or_else(unknown)?.state();
        if !rules::known_to(&now_state, ctx.user()?.is_admin, ctx.now) {
            return Err(unknown());
        }
        let used = store::user_uses(&db, &code, user).await?;
        rules::redeemable(&now_state, used, ctx.now)?;
        Err(ApiError::internal("redemption refused although the rules allow it"))
    })
    .await
}

/// `GET /campaigns/redemptions`: the caller's redemptions, newest first.
pub async fn my_redemptions(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::redemptions_of(&ctx.db()?, &ctx.user()?.id, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |r| (r.created_at.unix(), r.id.clone())).map(RedemptionView::from))
}

/// `GET /admin/campaigns/{code}/stats`
pub async fn admin_stats(ctx: &Ctx) -> ApiResult {
    let unknown = || ApiError::not_found("No such campaign.");
    let code = rules::parse_code(ctx.param("code")?).ok_or_else(unknown)?;
    let db = ctx.db()?;
    let campaign = store::find(&db, &code).await?.ok_or_else(unknown)?;
    let clicks = link_clicks::stats(&ctx.env, ctx.object_meter(), &links::campaign_link(&code), Period::ALL).await?;
    let outcomes = store::outcomes(&db, &code).await?;
    // date → (clicks, unique visitors, redemptions), in date order.
    let mut days: std::collections::BTreeMap<String, (i64, i64, i64)> = std::collections::BTreeMap::new();
    for d in &clicks.by_day {
        let day = days.entry(d.date.clone()).or_default();
        (day.0, day.1) = (d.clicks, d.unique_visitors);
    }
    for r in store::redemptions_by_day(&db, &code).await? {
        days.entry(Timestamp::from_unix(r.day * 86_400).date()).or_default().2 = r.n;
    }
    let by_day: Vec<serde_json::Value> = days
        .into_iter()
        .map(|(date, (c, u, r))| json!({"date": date, "clicks": c, "unique_visitors": u, "redemptions": r}))
        .collect();
    let rate = if clicks.clicks > 0 { outcomes.conversions as f64 / clicks.clicks as f64 } else { 0.0 };
    Reply::ok(&json!({
        "campaign_code": code,
        "status": campaign.status,
        "clicks": clicks.clicks,
        "unique_visitors": clicks.unique_visitors,
        "redemptions": campaign.uses,
        "conversions": outcomes.conversions,
        "conversion_rate": (rate * 10_000.0).round() / 10_000.0,
        "revenue_cents": outcomes.revenue_cents,
        "by_day": by_day,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> Campaign {
        let t = Timestamp::from_unix(1_800_000_000);
        Campaign {
            code: "SPRING26".into(),
            name: "Spring".into(),
            description: None,
            offer: Offer { kind: OfferType::Credits, value: 500 },
            landing_url: "https://soundhash.io/spring".into(),
            status: CampaignStatus::Active,
            starts_at: Some(t),
            ends_at: None,
            max_uses: Some(100),
            max_uses_per_user: 1,
            uses: 7,
            tags: vec!["spring".into()],
            created_by: "admin1".into(),
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn the_views_are_the_api_shapes() {
        assert_eq!(
            serde_json::to_string(&CampaignView::from(campaign())).unwrap(),
            r#"{"campaign_code":"SPRING26","name":"Spring","description":null,"offer":{"type":"credits","value":500},"landing_url":"https://soundhash.io/spring","status":"active","starts_at":"2027-01-15T08:00:00Z","ends_at":null,"max_uses":100,"max_uses_per_user":1,"uses":7,"tags":["spring"],"created_by":"admin1","created_at":"2027-01-15T08:00:00Z","updated_at":"2027-01-15T08:00:00Z"}"#
        );
        assert_eq!(
            public(&campaign()).to_string(),
            r#"{"campaign_code":"SPRING26","description":null,"ends_at":null,"landing_url":"https://soundhash.io/spring","name":"Spring","offer":{"type":"credits","value":500},"starts_at":"2027-01-15T08:00:00Z","tags":["spring"]}"#
        );
        let c = campaign();
        let redemption = Redemption { id: "r1".into(), campaign_code: c.code, offer: c.offer, created_at: c.created_at };
        assert_eq!(
            serde_json::to_string(&RedemptionView::from(redemption)).unwrap(),
            r#"{"redemption_id":"r1","campaign_code":"SPRING26","offer":{"type":"credits","value":500},"created_at":"2027-01-15T08:00:00Z"}"#
        );
    }
}
