//! Periodic jobs, run by the cron trigger (`[triggers] crons` in wrangler.toml). Each job is
//! independent: one failing is logged and does not stop the others.

use crate::domain::time::Timestamp;
use crate::http::ApiError;
use crate::log::log;
use crate::store::{campaigns, idempotency, referrals, Db};
use serde_json::json;
use worker::{Date, Env};

pub async fn run(cron: &str, env: &Env) {
    let now = Timestamp::from_unix_millis(Date::now().as_millis());
    report(cron, "purge_idempotency_keys", purge_idempotency_keys(env, now).await);
    report(cron, "expire_referrals", expire_referrals(env, now).await);
    report(cron, "advance_campaigns", advance_campaigns(env, now).await);
    report(cron, "publish_activity", publish_activity(env, now).await);
    report(cron, "expire_boards", expire_boards(env, now).await);
}

/// Re-sends activity batches the leaderboards have not confirmed; forgets events too old to be
/// re-sent.
async fn publish_activity(env: &Env, now: Timestamp) -> Result<usize, ApiError> {
    crate::rewards::republish(env, now, &config(env)?).await
}

/// Deletes daily and weekly leaderboards past their retention, a chunk a minute.
async fn expire_boards(env: &Env, now: Timestamp) -> Result<usize, ApiError> {
    crate::rewards::expire_boards(env, now, config(env)?.board_retention).await
}

fn config(env: &Env) -> Result<crate::config::Config, ApiError> {
    crate::config::Config::from_env(env).map_err(ApiError::internal)
}

/// Starts scheduled campaigns and completes ended or used-up ones (rules: domain::campaigns::due).
async fn advance_campaigns(env: &Env, now: Timestamp) -> Result<usize, ApiError> {
    let db = Db::from_env(env)?;
    let mut moved = 0;
    for campaign in campaigns::in_flight(&db).await? {
        if let Some(to) = crate::domain::campaigns::due(&campaign.state(), now) {
            moved += usize::from(campaigns::advance(&db, &campaign.code, campaign.status, to, now).await?);
        }
    }
    Ok(moved)
}

async fn expire_referrals(env: &Env, now: Timestamp) -> Result<usize, ApiError> {
    Ok(referrals::expire_due(&Db::from_env(env)?, now).await?)
}

async fn purge_idempotency_keys(env: &Env, now: Timestamp) -> Result<usize, ApiError> {
    Ok(idempotency::purge_expired(&Db::from_env(env)?, now).await?)
}

fn report(cron: &str, job: &str, outcome: Result<usize, ApiError>) {
    match outcome {
        Ok(affected) => log("info", &json!({"cron": cron, "job": job, "affected": affected})),
        Err(e) => log("error", &json!({"cron": cron, "job": job, "error": e.detail.unwrap_or(e.message)})),
    }
}
