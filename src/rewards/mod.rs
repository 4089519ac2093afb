//! Gamification: activity ingest (from the main SoundHash API, and referral conversions), badges
//! awarded in D1 in the same transaction that counts the activity, and leaderboards in the
//! `Leaderboard` Durable Objects, fed from the D1 outbox `activity_batches`.

use crate::config::Config;
use crate::domain::rewards::{self as rules, Category, Event, Window};
use crate::domain::time::Timestamp;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::log::log;
use crate::objects::{self, leaderboard};
use crate::store::rewards::{self as store, Counted};
use crate::store::Db;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use worker::Env;

pub use rules::referral_event;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityBody {
    events: Vec<Event>,
}

/// `POST /admin/activity`: counts each event id once, awards the badges the new totals reach and
/// updates the leaderboards (after the response).
pub async fn ingest(ctx: &Ctx) -> ApiResult {
    let body: ActivityBody = ctx.json()?;
    if body.events.is_empty() || body.events.len() > rules::MAX_EVENTS {
        return Err(ApiError::validation("events", format!("events must hold 1–{} events", rules::MAX_EVENTS)));
    }
    let max_age_days = ctx.config()?.activity_max_age_days;
    for (i, event) in body.events.iter().enumerate() {
        rules::check_event(event, ctx.now, max_age_days)
            .map_err(|(field, why)| ApiError::validation(format!("events[{i}].{field}"), format!("{field} {why}")))?;
    }
    let db = ctx.db()?;
    let batch = new_id();
    let ingested = store::ingest(&db, &batch, &body.events, ctx.now).await?;
    let accepted = ingested.counted.len();
    if accepted > 0 {
        publish_later(ctx, batch, ingested.counted)?;
    }
    Reply::ok(&json!({
        "accepted": accepted,
        "duplicates": body.events.len() - accepted,
        "badges_awarded": ingested.badges_awarded,
    }))
}

/// Sends a counted batch to the leaderboards of its categories and marks it published. A failure
/// is logged and left to the cron (`republish`), which sends the batch again.
async fn publish(env: &Env, db: &Db, batch: &str, counted: &[Counted], now: Timestamp, retention: rules::Retention) {
    let oldest_kept = rules::oldest_kept(now, retention);
    let mut by_category: BTreeMap<&'static str, (Category, Vec<rules::Entry>)> = BTreeMap::new();
    for row in counted {
        if let Some(category) = row.metric().and_then(|m| m.category()) {
            let entry = rules::Entry { user_id: row.user_id.clone(), amount: row.amount, occurred_at: row.occurred_at };
            by_category.entry(category.as_str()).or_insert_with(|| (category, Vec::new())).1.push(entry);
        }
    }
    let sends =
        by_category.into_values().map(|(category, entries)| leaderboard::apply(env, category, batch, entries, &oldest_kept));
    let sent: objects::Result<Vec<()>> = futures_util::future::join_all(sends).await.into_iter().collect();
    let outcome = match sent {
        Ok(_) => store::mark_published(db, batch, now).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = outcome {
        log("error", &json!({"activity_batch": batch, "error": error, "retry": "cron"}));
    }
}

/// Publishes a counted batch after the response (`wait_until`). The D1 outbox and the cron
/// already guarantee delivery (`republish`), so the request that wrote the batch does not wait
/// for the leaderboards: a slow or failing Durable Object never slows an ingest or a webhook.
fn publish_later(ctx: &Ctx, batch: String, counted: Vec<Counted>) -> ApiResult<()> {
    let (env, now, retention) = (ctx.env.clone(), ctx.now, ctx.config()?.board_retention);
    ctx.background.wait_until(async move {
        match Db::from_env(&env) {
            Ok(db) => publish(&env, &db, &batch, &counted, now, retention).await,
            Err(e) => log("error", &json!({"activity_batch": batch, "error": e.to_string(), "retry": "cron"})),
        }
    });
    Ok(())
}

/// As `publish_later`, for a batch another program wrote (a referral conversion): its events are
/// read back from D1 first.
pub fn publish_batch_later(ctx: &Ctx, batch: String) -> ApiResult<()> {
    let (env, now, retention) = (ctx.env.clone(), ctx.now, ctx.config()?.board_retention);
    ctx.background.wait_until(async move {
        match Db::from_env(&env) {
            Ok(db) => publish_batch(&env, &db, &batch, now, retention).await,
            Err(e) => log("error", &json!({"activity_batch": batch, "error": e.to_string(), "retry": "cron"})),
        }
    });
    Ok(())
}

/// Publishes a batch written by another program (a referral conversion).
pub async fn publish_batch(env: &Env, db: &Db, batch: &str, now: Timestamp, retention: rules::Retention) {
    match store::batch_events(db, batch).await {
        Ok(counted) if !counted.is_empty() => publish(env, db, batch, &counted, now, retention).await,
        Ok(_) => {}
        Err(e) => log("error", &json!({"activity_batch": batch, "error": e.to_string(), "retry": "cron"})),
    }
}

/// How long the cron keeps re-sending a batch no leaderboard confirmed (the objects remember
/// batch ids for longer, so a late re-send still counts once).
pub const REPUBLISH_WITHIN_SECONDS: i64 = 7 * 86_400;
/// A batch younger than this is still being published by the request that wrote it.
const REPUBLISH_AFTER_SECONDS: i64 = 30;

/// Cron: re-sends unconfirmed batches (giving up, loudly, on those a week old), then forgets
/// events too old to be re-sent.
pub async fn republish(env: &Env, now: Timestamp, cfg: &Config) -> crate::store::Result<usize> {
    let db = Db::from_env(env)?;
    let abandoned = store::abandon(&db, now.plus_seconds(-REPUBLISH_WITHIN_SECONDS), now).await?;
    if abandoned > 0 {
        log("error", &json!({"abandoned_activity_batches": abandoned, "effect": "their events are missing from the leaderboards"}));
    }
    let pending = store::to_republish(&db, now.plus_seconds(-REPUBLISH_AFTER_SECONDS), 50).await?;
    for batch in &pending {
        publish_batch(env, &db, batch, now, cfg.board_retention).await;
    }
    // A day of slack past the age limit: an event is kept while a re-send could be accepted.
    let horizon = cfg.activity_max_age_days.saturating_add(1).saturating_mul(86_400);
    let pruned = store::prune(&db, now.plus_seconds(-horizon)).await?;
    Ok(pending.len() + pruned)
}

/// Cron: deletes expired daily and weekly boards of every category, up to `PRUNE_ROWS` rows per
/// category and run.
pub async fn expire_boards(env: &Env, now: Timestamp, retention: rules::Retention) -> objects::Result<usize> {
    let kept = rules::oldest_kept(now, retention);
    let prunes = Category::ALL.iter().map(|&c| leaderboard::prune(env, c, &kept, PRUNE_ROWS));
    let deleted: Vec<usize> = futures_util::future::try_join_all(prunes).await?;
    Ok(deleted.into_iter().sum())
}

/// Rows an expiring category deletes per cron run (a minute): far more than a day's new boards.
const PRUNE_ROWS: u32 = 10_000;

// --- badges ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct BadgeView {
    id: &'static str,
    name: &'static str,
    category: Category,
    tier: rules::Tier,
    awarded_at: Timestamp,
}

fn badge_view(held: &store::Held) -> Option<BadgeView> {
    rules::find_badge(&held.badge_id).map(|b| BadgeView {
        id: b.id,
        name: b.name,
        category: b.category,
        tier: b.tier,
        awarded_at: Timestamp::from_unix(held.awarded_at),
    })
}

#[derive(Serialize)]
struct MyBadges {
    badges: Vec<BadgeView>,
    progress: Vec<rules::Progress>,
    /// All-time totals per metric (also those no ladder measures).
    metrics: BTreeMap<&'static str, i64>,
}

/// `GET /rewards/badges`: the caller's badges, and progress along every ladder.
pub async fn my_badges(ctx: &Ctx) -> ApiResult {
    let user = ctx.user()?;
    let db = ctx.db()?;
    let (held, totals) = store::badges_and_totals(&db, &user.id).await?;
    let ids: Vec<&str> = held.iter().map(|h| h.badge_id.as_str()).collect();
    let total = |metric: rules::Metric| totals.iter().find(|t| t.metric == metric.as_str()).map_or(0, |t| t.value);
    Reply::ok(&MyBadges {
        badges: held.iter().filter_map(badge_view).collect(),
        progress: Category::ALL.iter().map(|&c| rules::progress(c, total(c.metric()), &ids)).collect(),
        metrics: rules::Metric::ALL.iter().map(|&m| (m.as_str(), total(m))).collect(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwardBody {
    user_id: String,
    /// Read as a badge of the rule table, so an unknown id is refused where it stands.
    #[serde(rename = "badge_id", deserialize_with = "badge")]
    badge: &'static rules::Badge,
}

fn badge<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static rules::Badge, D::Error> {
    // A visitor, so that an unknown id is reported where it stands (the 422 names its field).
    struct BadgeId;
    impl serde::de::Visitor<'_> for BadgeId {
        type Value = &'static rules::Badge;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Self::Value, E> {
            rules::find_badge(id).ok_or_else(|| E::custom("must be the id of a badge (see GET /rewards/badges)"))
        }
    }
    deserializer.deserialize_str(BadgeId)
}

/// `POST /admin/rewards/badges`: awards a badge by hand; awarding it again changes nothing (200
/// with the first award instead of 201).
pub async fn admin_award(ctx: &Ctx) -> ApiResult {
    let body: AwardBody = ctx.json()?;
    if !crate::http::auth::valid_user_id(&body.user_id) {
        return Err(ApiError::validation("user_id", "user_id must be 1–128 visible ASCII characters"));
    }
    let (held, fresh) = store::award(&ctx.db()?, &body.user_id, body.badge.id, &ctx.user()?.id, ctx.now).await?;
    let view = badge_view(&held).ok_or_else(|| ApiError::internal("awarded badge unknown"))?;
    Reply::json(if fresh { 201 } else { 200 }, &json!({ "user_id": body.user_id, "badge": view }))
}

// --- leaderboards ------------------------------------------------------------------------------

/// A place on a board as the API shows it. `score` is `None` (null) where the caller may not see
/// it: another member's revenue.
#[derive(Serialize)]
struct RankedView<'a> {
    rank: i64,
    user_id: &'a str,
    score: Option<i64>,
}

/// The caller's own place.
#[derive(Serialize)]
struct MineView {
    rank: i64,
    score: i64,
}

/// `GET /rewards/leaderboard?category=&period=&limit=&at=`.
pub async fn leaderboard(ctx: &Ctx) -> ApiResult {
    let required = |name: &str| ApiError::validation(name, format!("{name} is required"));
    let category: Category = ctx.query_named("category")?.ok_or_else(|| required("category"))?;
    let window: Window = ctx.query_named("period")?.ok_or_else(|| required("period"))?;
    let limit = match ctx.query("limit") {
        None => rules::DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=rules::MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::validation("limit", format!("limit must be an integer from 1 to {}", rules::MAX_LIMIT)))?,
    };
    let at = match ctx.query("at") {
        None => ctx.now,
        // Any date: a period that has not begun shows an empty board.
        Some(text) => Timestamp::parse_bound(text)
            .ok_or_else(|| ApiError::validation("at", "at must be a YYYY-MM-DD date or an RFC 3339 date-time"))?,
    };
    let user = ctx.user()?;
    let board = rules::board(window, at);
    // A period past its retention shows nothing (its board may be half deleted).
    let standing = if rules::expired(&board, &rules::oldest_kept(ctx.now, ctx.config()?.board_retention)) {
        leaderboard::Standing { entries: Vec::new(), me: None }
    } else {
        leaderboard::standing(&ctx.env, ctx.object_meter(), category, &board, limit, &user.id).await?
    };
    Reply::ok(&json!({
        "category": category,
        "period": window,
        "period_key": rules::period_key(window, at),
        "entries": standing
            .entries
            .iter()
            .map(|r| RankedView {
                rank: r.rank,
                user_id: &r.user_id,
                score: (r.user_id == user.id || category.scores_public()).then_some(r.score),
            })
            .collect::<Vec<_>>(),
        "me": standing.me.map(|m| MineView { rank: m.rank, score: m.score }),
    }))
}
