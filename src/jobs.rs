//! Periodic jobs, run by the cron trigger (`[triggers] crons` in wrangler.toml). Each job is
//! independent: one failing is logged and does not stop the others.

use crate::config::{Config, ConfigError};
use crate::domain::time::Timestamp;
use crate::log::log;
use crate::store::{campaigns, idempotency, referrals, Db};
use crate::{objects, store};
use serde_json::json;
use worker::{Date, Env};

pub async fn run(cron: &str, env: &Env) {
    let now = Timestamp::from_unix_millis(Date::now().as_millis());
    report(cron, "purge_idempotency_keys", purge_idempotency_keys(env, now).await);
    report(cron, "expire_referrals", expire_referrals(env, now).await);
    report(cron, "grant_referral_bonuses", grant_referral_bonuses(env, now).await);
    report(cron, "advance_campaigns", advance_campaigns(env, now).await);
    report(cron, "advance_resellers", advance_resellers(env, now).await);
    report(cron, "sync_reseller_usage", sync_reseller_usage(env, now).await);
    report(cron, "publish_activity", publish_activity(env, now).await);
    report(cron, "resend_clicks", resend_clicks(env, now).await);
    report(cron, "expire_boards", expire_boards(env, now).await);
}

/// Why a job failed; its detail goes to the job's log line.
#[derive(Debug)]
enum Error {
    Store(store::Error),
    Object(objects::Error),
    Config(ConfigError),
    /// A program's job failed (its error, as the API would describe it).
    Job(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::Object(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
            Error::Job(e) => f.write_str(e),
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        Error::Store(e)
    }
}

impl From<objects::Error> for Error {
    fn from(e: objects::Error) -> Self {
        Error::Object(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// Rows (or batches, boards' rows) a job affected.
type Outcome = Result<usize, Error>;

/// Re-sends activity batches the leaderboards have not confirmed; forgets events too old to be
/// re-sent.
async fn publish_activity(env: &Env, now: Timestamp) -> Outcome {
    Ok(crate::rewards::republish(env, now, &Config::from_env(env)?).await?)
}

/// Sends again the click batches their link objects did not confirm.
async fn resend_clicks(env: &Env, now: Timestamp) -> Outcome {
    Ok(crate::links::resend(env, now).await?)
}

/// Deletes daily and weekly leaderboards past their retention, a chunk a minute.
async fn expire_boards(env: &Env, now: Timestamp) -> Outcome {
    Ok(crate::rewards::expire_boards(env, now, Config::from_env(env)?.board_retention).await?)
}

/// Transitions the cron makes per run at most; the rest are picked up a minute later.
const CAMPAIGN_CHUNK: u32 = 500;

/// Starts scheduled campaigns and completes ended or used-up ones (rules:
/// domain::campaigns::due), up to `CAMPAIGN_CHUNK` per run, all in one D1 statement.
async fn advance_campaigns(env: &Env, now: Timestamp) -> Outcome {
    let db = Db::from_env(env)?;
    let moves: Vec<_> = campaigns::due(&db, now, CAMPAIGN_CHUNK)
        .await?
        .into_iter()
        .filter_map(|(code, state)| crate::domain::campaigns::due(&state, now).map(|to| (code, state.status, to)))
        .collect();
    Ok(campaigns::advance(&db, &moves, now).await?)
}

/// Activates resellers' contracts at their start and expires them at their end.
async fn advance_resellers(env: &Env, now: Timestamp) -> Outcome {
    Ok(crate::resellers::advance(&Db::from_env(env)?, now).await?)
}

/// Copies resellers' monthly API-call totals from their quota objects to D1, for reports.
async fn sync_reseller_usage(env: &Env, now: Timestamp) -> Outcome {
    crate::resellers::sync_usage(env, &Db::from_env(env)?, now).await.map_err(|e| Error::Job(e.detail.unwrap_or(e.message)))
}

/// Grants the referral bonuses whose hold is over (rules: domain::referrals).
async fn grant_referral_bonuses(env: &Env, now: Timestamp) -> Outcome {
    Ok(crate::referrals::grant_due_bonuses(env, now, &Config::from_env(env)?).await?)
}

async fn expire_referrals(env: &Env, now: Timestamp) -> Outcome {
    Ok(referrals::expire_due(&Db::from_env(env)?, now).await?)
}

async fn purge_idempotency_keys(env: &Env, now: Timestamp) -> Outcome {
    Ok(idempotency::purge_expired(&Db::from_env(env)?, now).await?)
}

fn report(cron: &str, job: &str, outcome: Outcome) {
    match outcome {
        Ok(affected) => log("info", &json!({"cron": cron, "job": job, "affected": affected})),
        Err(e) => log("error", &json!({"cron": cron, "job": job, "error": e.to_string()})),
    }
}
