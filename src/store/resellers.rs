//! SQL of the resellers: `resellers` (written at the version read), `reseller_events`,
//! `reseller_end_users` and `reseller_usage` (migration 0012).

use super::{args, Db, Error, Result};
use crate::domain::resellers::{Branding, Contract, Reseller, ResellerStatus};
use crate::domain::time::Timestamp;
use serde::Deserialize;

const COLUMNS: &str = "id, user_id, company_name, contact_email, requested_domain, expected_monthly_api_calls, status, version,
    contract, branding, domain_verified_at, created_at, updated_at";

#[derive(Deserialize)]
struct Row {
    id: String,
    user_id: String,
    company_name: String,
    contact_email: String,
    requested_domain: Option<String>,
    expected_monthly_api_calls: i64,
    status: String,
    version: i64,
    contract: Option<String>,
    branding: Option<String>,
    domain_verified_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Reseller {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let bad = |column, value: &str| Error::corrupt("resellers", &r.id, column, value);
        let contract = match &r.contract {
            Some(json) => Some(serde_json::from_str::<Contract>(json).map_err(|_| bad("contract", json))?),
            None => None,
        };
        let branding = match &r.branding {
            Some(json) => Some(serde_json::from_str::<Branding>(json).map_err(|_| bad("branding", json))?),
            None => None,
        };
        Ok(Reseller {
            status: ResellerStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            contract,
            branding,
            id: r.id,
            user_id: r.user_id,
            company_name: r.company_name,
            contact_email: r.contact_email,
            requested_domain: r.requested_domain,
            expected_monthly_api_calls: r.expected_monthly_api_calls,
            version: r.version,
            domain_verified_at: r.domain_verified_at.map(Timestamp::from_unix),
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        })
    }
}

fn json<T: serde::Serialize>(value: &Option<T>) -> Result<Option<String>> {
    value.as_ref().map(|v| serde_json::to_string(v).map_err(|e| Error::D1(format!("encoding: {e}")))).transpose()
}

/// Stores a new reseller; `false` when the user has one already.
pub async fn insert(db: &Db, r: &Reseller) -> Result<bool> {
    let sql = "INSERT INTO resellers (id, user_id, company_name, contact_email, requested_domain, expected_monthly_api_calls,
                   status, version, created_at, updated_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
               ON CONFLICT (user_id) DO NOTHING";
    let args = args![&r.id, &r.user_id, &r.company_name, &r.contact_email, r.requested_domain.as_deref(), r.expected_monthly_api_calls,
        r.status.as_str(), r.version, r.created_at.unix()];
    Ok(db.run(sql, &args).await? == 1)
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Reseller>> {
    let sql = format!("SELECT {COLUMNS} FROM resellers WHERE id = ?1");
    db.first::<Row>(&sql, &args![id]).await?.map(Reseller::try_from).transpose()
}

pub async fn find_by_user(db: &Db, user_id: &str) -> Result<Option<Reseller>> {
    let sql = format!("SELECT {COLUMNS} FROM resellers WHERE user_id = ?1");
    db.first::<Row>(&sql, &args![user_id]).await?.map(Reseller::try_from).transpose()
}

/// What an update of a reseller came to.
pub enum Updated {
    Done(Box<Reseller>),
    /// The reseller changed since it was read: read it again.
    Stale,
    /// Another reseller has this custom domain.
    DomainTaken,
}

/// Writes `next` if the reseller is still at the version `next` was made from (`next.version - 1`),
/// with an event recording the change, in one batch.
pub async fn update(db: &Db, next: &Reseller, event: &Event<'_>) -> Result<Updated> {
    let contract = next.contract.as_ref();
    let domain = next.branding.as_ref().map(|b| b.custom_domain.as_str());
    let write = crate::ids::new_id();
    let statements = vec![
        db.statement(
            "UPDATE resellers SET status = ?3, version = ?4, contract = ?5, starts_at = ?6, ends_at = ?7, max_end_users = ?8,
                 max_api_calls_per_month = ?9, branding = ?10, custom_domain = ?11, domain_verified_at = ?12, updated_at = ?13,
                 write_id = ?14
             WHERE id = ?1 AND version = ?2",
            &args![
                &next.id,
                next.version - 1,
                next.status.as_str(),
                next.version,
                json(&next.contract)?,
                contract.map(|c| c.starts_at.unix()),
                contract.map(|c| c.ends_at.unix()),
                contract.map(|c| c.max_end_users),
                contract.map(|c| c.max_api_calls_per_month),
                json(&next.branding)?,
                domain,
                next.domain_verified_at.map(Timestamp::unix),
                next.updated_at.unix(),
                &write
            ],
        )?,
        db.statement(
            "INSERT INTO reseller_events (id, reseller_id, kind, detail, actor_id, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM resellers WHERE id = ?2 AND write_id = ?7)",
            &args![crate::ids::new_id(), &next.id, event.kind, event.detail.to_string(), event.actor, next.updated_at.unix(), &write],
        )?,
        db.statement(&format!("SELECT {COLUMNS} FROM resellers WHERE id = ?1 AND write_id = ?2"), &args![&next.id, &write])?,
    ];
    match db.batch(statements).await {
        Ok(results) => match super::rows::<Row>(&results, 2)?.pop() {
            Some(row) => Ok(Updated::Done(Box::new(Reseller::try_from(row)?))),
            None => Ok(Updated::Stale),
        },
        Err(Error::Constraint(v)) if v.is_unique("resellers.custom_domain") => Ok(Updated::DomainTaken),
        Err(Error::Constraint(v)) if v.is_unique("resellers_verified_domain") => Ok(Updated::DomainTaken),
        Err(e) => Err(e),
    }
}

/// What an update records in `reseller_events`.
pub struct Event<'a> {
    pub kind: &'a str,
    pub detail: serde_json::Value,
    /// The admin or user who made it; `None` for the cron.
    pub actor: Option<&'a str>,
}

/// Resellers newest first, of one status or all, before the cursor (creation time, id).
pub async fn list(db: &Db, status: Option<ResellerStatus>, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<Reseller>> {
    let (at, id) = before.map_or((None, None), |(t, i)| (Some(*t), Some(i.as_str())));
    let sql = format!(
        "SELECT {COLUMNS} FROM resellers
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    let rows = db.all::<Row>(&sql, &args![status.map(ResellerStatus::as_str), at, id, limit]).await?;
    rows.into_iter().map(Reseller::try_from).collect()
}

/// Resellers the cron may have to move at `now`: approved ones whose contract has started,
/// approved or active ones whose contract has ended.
pub async fn due(db: &Db, now: Timestamp, limit: u32) -> Result<Vec<Reseller>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM resellers WHERE status = 'approved' AND starts_at <= ?1
         UNION
         SELECT {COLUMNS} FROM resellers WHERE status IN ('approved', 'active') AND ends_at <= ?1
         LIMIT ?2"
    );
    let rows = db.all::<Row>(&sql, &args![now.unix(), limit]).await?;
    rows.into_iter().map(Reseller::try_from).collect()
}

// --- end users ---------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct EndUserRow {
    pub id: String,
    pub external_id: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub deactivated_at: Option<i64>,
}

const END_USER_COLUMNS: &str = "id, external_id, email, created_at, deactivated_at";

/// What adding an end user came to.
pub enum Added {
    /// The end user, and whether this call created it (`false`: the active one of this
    /// external id).
    Done(EndUserRow, bool),
    /// Every seat of the contract is taken.
    Full,
}

/// Adds an active end user within the contract's `max_end_users`, in one statement (so parallel
/// additions never pass it); an active end user of the same external id is returned as it is.
pub async fn add_end_user(db: &Db, reseller_id: &str, id: &str, external_id: &str, email: Option<&str>, now: Timestamp) -> Result<Added> {
    let statements = vec![
        db.statement(
            "INSERT INTO reseller_end_users (id, reseller_id, external_id, email, created_at)
             SELECT ?1, r.id, ?3, ?4, ?5 FROM resellers r
             WHERE r.id = ?2 AND r.max_end_users IS NOT NULL
               AND (SELECT COUNT(*) FROM reseller_end_users u WHERE u.reseller_id = r.id AND u.deactivated_at IS NULL) < r.max_end_users
             ON CONFLICT DO NOTHING",
            &args![id, reseller_id, external_id, email, now.unix()],
        )?,
        db.statement(
            &format!("SELECT {END_USER_COLUMNS} FROM reseller_end_users WHERE reseller_id = ?1 AND external_id = ?2 AND deactivated_at IS NULL"),
            &args![reseller_id, external_id],
        )?,
    ];
    let results = db.batch(statements).await?;
    Ok(match super::rows::<EndUserRow>(&results, 1)?.pop() {
        Some(row) => {
            let created = row.id == id;
            Added::Done(row, created)
        }
        None => Added::Full,
    })
}

/// A reseller's end users, newest first, before the cursor (creation time, id).
pub async fn end_users(db: &Db, reseller_id: &str, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<EndUserRow>> {
    let (at, id) = before.map_or((None, None), |(t, i)| (Some(*t), Some(i.as_str())));
    let sql = format!(
        "SELECT {END_USER_COLUMNS} FROM reseller_end_users
         WHERE reseller_id = ?1 AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
         ORDER BY created_at DESC, id DESC LIMIT ?4"
    );
    db.all(&sql, &args![reseller_id, at, id, limit]).await
}

/// Frees an end user's seat; the end user as it is now (`None`: not this reseller's).
pub async fn deactivate_end_user(db: &Db, reseller_id: &str, id: &str, now: Timestamp) -> Result<Option<EndUserRow>> {
    let statements = vec![
        db.statement(
            "UPDATE reseller_end_users SET deactivated_at = ?3 WHERE id = ?1 AND reseller_id = ?2 AND deactivated_at IS NULL",
            &args![id, reseller_id, now.unix()],
        )?,
        db.statement(&format!("SELECT {END_USER_COLUMNS} FROM reseller_end_users WHERE id = ?1 AND reseller_id = ?2"), &args![id, reseller_id])?,
    ];
    let results = db.batch(statements).await?;
    Ok(super::rows::<EndUserRow>(&results, 1)?.pop())
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// Active end users of a reseller.
pub async fn seats_taken(db: &Db, reseller_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) AS n FROM reseller_end_users WHERE reseller_id = ?1 AND deactivated_at IS NULL";
    Ok(db.first::<CountRow>(sql, &args![reseller_id]).await?.map_or(0, |r| r.n))
}

// --- usage -------------------------------------------------------------------------------------

/// What the quota check needs of a reseller and one of its end users, in one round trip.
#[derive(Deserialize)]
pub struct Metering {
    pub status: String,
    pub max_api_calls_per_month: Option<i64>,
    /// Whether the end user is an active one of this reseller.
    pub end_user_active: i64,
}

pub async fn metering(db: &Db, reseller_id: &str, end_user_id: &str) -> Result<Option<Metering>> {
    let sql = "SELECT r.status, r.max_api_calls_per_month,
                   EXISTS (SELECT 1 FROM reseller_end_users u WHERE u.id = ?2 AND u.reseller_id = r.id AND u.deactivated_at IS NULL) AS end_user_active
               FROM resellers r WHERE r.id = ?1";
    db.first(sql, &args![reseller_id, end_user_id]).await
}

/// Records a change that is no field of the reseller (a quota reset) in `reseller_events`.
pub async fn record_event(db: &Db, reseller_id: &str, event: &Event<'_>, now: Timestamp) -> Result<()> {
    let sql = "INSERT INTO reseller_events (id, reseller_id, kind, detail, actor_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    db.run(sql, &args![crate::ids::new_id(), reseller_id, event.kind, event.detail.to_string(), event.actor, now.unix()]).await?;
    Ok(())
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// Resellers whose usage may still change: active or suspended ones, and those expired or
/// terminated in the last `recent_seconds` (calls of their last days may not be copied yet),
/// the least recently copied first.
pub async fn metered(db: &Db, now: Timestamp, recent_seconds: i64, limit: u32) -> Result<Vec<String>> {
    let sql = "SELECT id FROM resellers
               WHERE status IN ('active', 'suspended') OR (status IN ('expired', 'terminated') AND updated_at >= ?1 - ?2)
               ORDER BY COALESCE(usage_synced_at, 0), id LIMIT ?3";
    Ok(db.all::<IdRow>(sql, &args![now.unix(), recent_seconds, limit]).await?.into_iter().map(|r| r.id).collect())
}

/// Copies monthly totals `(reseller, month, calls)` to `reseller_usage` in one batch: totals only
/// ever rise, so a repeated or late copy changes nothing.
/// `synced` are the resellers whose totals these are (all their months read): marked copied now.
pub async fn record_usage(db: &Db, totals: &[(String, String, i64)], synced: &[String], now: Timestamp) -> Result<()> {
    if synced.is_empty() {
        return Ok(());
    }
    let mut statements = totals
        .iter()
        .map(|(reseller, month, calls)| {
            db.statement(
                "INSERT INTO reseller_usage (reseller_id, month, calls, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (reseller_id, month) DO UPDATE SET calls = MAX(calls, excluded.calls), updated_at = excluded.updated_at
                 WHERE excluded.calls > calls",
                &args![reseller, month, *calls, now.unix()],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let ids = serde_json::to_string(synced).map_err(|e| Error::D1(format!("encoding: {e}")))?;
    statements.push(db.statement(
        "UPDATE resellers SET usage_synced_at = ?2 WHERE id IN (SELECT value FROM json_each(?1))",
        &args![ids, now.unix()],
    )?);
    db.batch(statements).await?;
    Ok(())
}

// --- branding ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct BrandingRow {
    id: String,
    status: String,
    branding: Option<String>,
    domain_verified_at: Option<i64>,
}

/// The branding served at `domain` (normalized): the reseller's if the domain is verified and
/// the reseller active; `None` for anything else.
pub async fn branding_at(db: &Db, domain: &str) -> Result<Option<Branding>> {
    let sql = "SELECT id, status, branding, domain_verified_at FROM resellers WHERE custom_domain = ?1 AND domain_verified_at IS NOT NULL";
    let Some(row) = db.first::<BrandingRow>(sql, &args![domain]).await? else { return Ok(None) };
    if row.status != ResellerStatus::Active.as_str() || row.domain_verified_at.is_none() {
        return Ok(None);
    }
    let Some(json) = row.branding else { return Ok(None) };
    serde_json::from_str(&json).map(Some).map_err(|_| Error::corrupt("resellers", &row.id, "branding", &json))
}

/// Whether another reseller has `domain` verified.
pub async fn domain_taken(db: &Db, domain: &str, reseller_id: &str) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM resellers WHERE custom_domain = ?1 AND domain_verified_at IS NOT NULL AND id <> ?2";
    Ok(db.first::<CountRow>(sql, &args![domain, reseller_id]).await?.is_some_and(|r| r.n > 0))
}
