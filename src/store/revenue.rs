//! SQL of creator revenue: records and their lines, pools, terms, channel owners and periods.
//!
//! A write of records depends on terms, owners and the last closed period, read beforehand
//! (`inputs`). Every change of those bumps `revenue_state.version` in its own batch, and a
//! write of records lands only if the version is still the one it read (else it changes nothing
//! and the caller reads again): no record is ever split by inputs that changed in between.

use super::{args, changes, json_chunks, rows, Db, Error, Result};
use crate::domain::earnings::EarningKind;
use crate::domain::revenue::{Basis, Line, Owner, Record, StatementInput, Terms, Usage, MAX_POOL_GROUPS};
use crate::domain::rewards::Event;
use crate::domain::time::{Month, Timestamp};
use serde::{Deserialize, Serialize};

const VERSION: &str = "(SELECT version FROM revenue_state WHERE id = 1)";
const BUMP: &str = "UPDATE revenue_state SET version = version + 1 WHERE id = 1";

/// What the split of arriving records depends on.
#[derive(Debug, Default)]
pub struct Inputs {
    pub version: i64,
    pub last_closed: Option<Month>,
    /// (creator id, terms) of the creators asked for.
    pub terms: Vec<(String, Terms)>,
    /// (channel id, owner) of the channels asked for, in creator id order per channel.
    pub owners: Vec<(String, Owner)>,
}

#[derive(Deserialize)]
struct VersionRow {
    version: i64,
}

#[derive(Deserialize)]
struct PeriodRow {
    period: Option<String>,
}

#[derive(Deserialize)]
struct TermsRow {
    creator_id: String,
    effective_from: String,
    share_bps: i64,
}

impl TermsRow {
    fn read(self) -> Result<(String, Terms)> {
        let effective_from = month("creator_terms", &self.creator_id, "effective_from", &self.effective_from)?;
        let share_bps = Error::checked("creator_terms", &self.creator_id, "share_bps", self.share_bps, crate::domain::revenue::share_bps)?;
        Ok((self.creator_id, Terms { effective_from, share_bps }))
    }
}

#[derive(Deserialize)]
struct OwnerRow {
    channel_id: String,
    creator_id: String,
    share_bps: i64,
}

fn month(table: &'static str, id: &str, column: &'static str, text: &str) -> Result<Month> {
    Month::parse(text).ok_or_else(|| Error::corrupt(table, id, column, text))
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::D1(e.to_string()))
}

/// The inputs of splitting records of these creators and channels, in one round trip.
pub async fn inputs(db: &Db, creators: &[&str], channels: &[&str]) -> Result<Inputs> {
    let statements = vec![
        db.statement(&format!("SELECT {VERSION} AS version"), &[])?,
        db.statement("SELECT MAX(period) AS period FROM revenue_periods", &[])?,
        db.statement(
            "SELECT creator_id, effective_from, share_bps FROM creator_terms
             WHERE creator_id IN (SELECT value FROM json_each(?1))",
            &args![json(creators)?],
        )?,
        db.statement(
            "SELECT channel_id, creator_id, share_bps FROM channel_owners
             WHERE channel_id IN (SELECT value FROM json_each(?1)) ORDER BY channel_id, creator_id",
            &args![json(channels)?],
        )?,
    ];
    let results = db.batch(statements).await?;
    let version = rows::<VersionRow>(&results, 0)?.first().map(|r| r.version).ok_or_else(|| Error::D1("revenue_state has no row".into()))?;
    let last_closed = match rows::<PeriodRow>(&results, 1)?.into_iter().next().and_then(|r| r.period) {
        Some(text) => Some(month("revenue_periods", "MAX", "period", &text)?),
        None => None,
    };
    let terms = rows::<TermsRow>(&results, 2)?.into_iter().map(TermsRow::read).collect::<Result<_>>()?;
    let mut owners = Vec::new();
    for r in rows::<OwnerRow>(&results, 3)? {
        let share_bps = Error::checked("channel_owners", &r.channel_id, "share_bps", r.share_bps, crate::domain::revenue::share_bps)?;
        owners.push((r.channel_id, Owner { creator_id: r.creator_id, share_bps }));
    }
    Ok(Inputs { version, last_closed, terms, owners })
}

/// A record with its split and its statement, ready to store.
pub struct Prepared<'a> {
    pub record: &'a Record,
    pub statement_period: Month,
    pub share_bps: u32,
    pub platform_cents: i64,
    pub creator_cents: i64,
    pub lines: Vec<Line>,
}

#[derive(Serialize)]
struct RecordJson<'a> {
    id: &'a str,
    creator_id: &'a str,
    channel_id: &'a str,
    video_id: Option<&'a str>,
    period: String,
    statement_period: String,
    gross_cents: i64,
    currency: String,
    views: i64,
    api_calls: i64,
    matches: i64,
    share_bps: u32,
    platform_cents: i64,
    creator_cents: i64,
}

#[derive(Serialize)]
struct LineJson<'a> {
    record_id: &'a str,
    creator_id: &'a str,
    share_bps: u32,
    cents: i64,
    statement_period: String,
}

/// A record as stored, read back after a write to tell accepted, re-sent and conflicting ids
/// apart.
#[derive(Debug, Deserialize)]
pub struct StoredRow {
    pub batch_id: String,
    pub id: String,
    pub creator_id: String,
    pub channel_id: String,
    pub video_id: Option<String>,
    pub period: String,
    pub statement_period: String,
    pub gross_cents: i64,
    pub currency: String,
    pub views: i64,
    pub api_calls: i64,
    pub matches: i64,
}

impl StoredRow {
    pub fn record(&self) -> Result<Record> {
        Ok(Record {
            id: self.id.clone(),
            creator_id: self.creator_id.clone(),
            channel_id: self.channel_id.clone(),
            video_id: self.video_id.clone(),
            period: month("revenue_records", &self.id, "period", &self.period)?,
            gross_cents: self.gross_cents,
            currency: self.currency.clone(),
            views: self.views,
            api_calls: self.api_calls,
            matches: self.matches,
        })
    }
}

/// A pool to store with its allocations.
pub struct NewPool<'a> {
    pub id: &'a str,
    pub period: Month,
    pub gross_cents: i64,
    pub basis: Basis,
}

/// What a write stored: the stored rows of every id asked for, and whether the pool (if any)
/// is this write's.
pub struct Written {
    pub rows: Vec<StoredRow>,
    pub pool_stored: bool,
}

/// Stores records (skipping ids stored before) with their lines, and a pool with them when its
/// allocations are these records, as batch `batch_id`, if the inputs are still at `version`.
/// `None` when they changed (nothing was written).
pub async fn write(
    db: &Db,
    batch_id: &str,
    prepared: &[Prepared<'_>],
    pool: Option<&NewPool<'_>>,
    version: i64,
    now: Timestamp,
) -> Result<Option<Written>> {
    let records: Vec<RecordJson> = prepared
        .iter()
        .map(|p| RecordJson {
            id: &p.record.id,
            creator_id: &p.record.creator_id,
            channel_id: &p.record.channel_id,
            video_id: p.record.video_id.as_deref(),
            period: p.record.period.to_string(),
            statement_period: p.statement_period.to_string(),
            gross_cents: p.record.gross_cents,
            currency: p.record.currency.to_ascii_lowercase(),
            views: p.record.views,
            api_calls: p.record.api_calls,
            matches: p.record.matches,
            share_bps: p.share_bps,
            platform_cents: p.platform_cents,
            creator_cents: p.creator_cents,
        })
        .collect();
    let lines: Vec<LineJson> = prepared
        .iter()
        .flat_map(|p| {
            p.lines.iter().map(|l| LineJson {
                record_id: &p.record.id,
                creator_id: &l.creator_id,
                share_bps: l.share_bps,
                cents: l.cents,
                statement_period: p.statement_period.to_string(),
            })
        })
        .collect();
    // Each id once, to read back every record asked for (at most 2,000 ids of 128 bytes: one
    // value); records and lines are bound in chunks (20 owners × 1,000 records exceed D1's limit).
    let ids = json(&records.iter().map(|r| r.id).collect::<Vec<_>>())?;
    let now = now.unix();
    let mut statements = Vec::new();
    // Records of a pool land only with their pool, so of two identical pools sent at once one
    // allocates and the other finds it allocated.
    let pool_guard = match pool {
        Some(p) => {
            statements.push(db.statement(
                &format!(
                    "INSERT INTO revenue_pools (id, batch_id, period, gross_cents, basis, created_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE {VERSION} = ?7 ON CONFLICT (id) DO NOTHING"
                ),
                &args![p.id, batch_id, p.period.to_string(), p.gross_cents, p.basis.as_str(), now, version],
            )?);
            "EXISTS (SELECT 1 FROM revenue_pools WHERE id = ?5 AND batch_id = ?2)"
        }
        None => "?5 IS NULL",
    };
    let insert_records = format!(
            "INSERT INTO revenue_records (id, batch_id, creator_id, channel_id, video_id, period, statement_period, gross_cents,
                 currency, views, api_calls, matches, share_bps, platform_cents, creator_cents, pool_id, received_at)
             SELECT r.value ->> 'id', ?2, r.value ->> 'creator_id', r.value ->> 'channel_id', r.value ->> 'video_id',
                 r.value ->> 'period', r.value ->> 'statement_period', r.value ->> 'gross_cents', r.value ->> 'currency',
                 r.value ->> 'views', r.value ->> 'api_calls', r.value ->> 'matches', r.value ->> 'share_bps',
                 r.value ->> 'platform_cents', r.value ->> 'creator_cents', ?5, ?3
             FROM json_each(?1) AS r WHERE {VERSION} = ?4 AND {pool_guard}
             ON CONFLICT (id) DO NOTHING"
    );
    for chunk in json_chunks(&records)? {
        statements.push(db.statement(&insert_records, &args![chunk, batch_id, now, version, pool.map(|p| p.id)])?);
    }
    for chunk in json_chunks(&lines)? {
        statements.push(db.statement(
            "INSERT INTO revenue_lines (record_id, creator_id, share_bps, cents, statement_period, received_at)
             SELECT l.value ->> 'record_id', l.value ->> 'creator_id', l.value ->> 'share_bps', l.value ->> 'cents',
                 l.value ->> 'statement_period', ?3
             FROM json_each(?1) AS l
             WHERE EXISTS (SELECT 1 FROM revenue_records r WHERE r.id = l.value ->> 'record_id' AND r.batch_id = ?2)",
            &args![chunk, batch_id, now],
        )?);
    }
    statements.push(db.statement("SELECT COUNT(*) AS n FROM revenue_pools WHERE batch_id = ?1", &args![batch_id])?);
    statements.push(db.statement(&format!("SELECT {VERSION} AS version"), &[])?);
    statements.push(db.statement(
        "SELECT batch_id, id, creator_id, channel_id, video_id, period, statement_period, gross_cents, currency, views,
             api_calls, matches
         FROM revenue_records WHERE id IN (SELECT value FROM json_each(?1))",
        &args![&ids],
    )?);
    let n = statements.len();
    let results = db.batch(statements).await?;
    let now_version = rows::<VersionRow>(&results, n - 2)?.first().map(|r| r.version);
    if now_version != Some(version) {
        return Ok(None);
    }
    let pool_stored = rows::<CountRow>(&results, n - 3)?.first().is_some_and(|r| r.n == 1);
    Ok(Some(Written { rows: rows(&results, n - 1)?, pool_stored }))
}

/// A stored pool with its allocations (how many, their sum, and how many landed in a later
/// statement).
#[derive(Deserialize)]
struct PoolRow {
    period: String,
    gross_cents: i64,
    basis: String,
    records: i64,
    allocated_cents: i64,
    adjustments: i64,
}

pub struct StoredPool {
    pub period: Month,
    pub gross_cents: i64,
    pub basis: Basis,
    pub records: i64,
    pub allocated_cents: i64,
    pub adjustments: i64,
}

pub async fn find_pool(db: &Db, id: &str) -> Result<Option<StoredPool>> {
    let sql = "SELECT p.period, p.gross_cents, p.basis, COUNT(r.id) AS records, COALESCE(SUM(r.gross_cents), 0) AS allocated_cents,
                   COALESCE(SUM(r.statement_period <> r.period), 0) AS adjustments
               FROM revenue_pools p LEFT JOIN revenue_records r ON r.pool_id = p.id WHERE p.id = ?1 GROUP BY p.id";
    let Some(r) = db.first::<PoolRow>(sql, &args![id]).await? else { return Ok(None) };
    let basis = Basis::parse(&r.basis).ok_or_else(|| Error::corrupt("revenue_pools", id, "basis", &r.basis))?;
    Ok(Some(StoredPool {
        period: month("revenue_pools", id, "period", &r.period)?,
        gross_cents: r.gross_cents,
        basis,
        records: r.records,
        allocated_cents: r.allocated_cents,
        adjustments: r.adjustments,
    }))
}

#[derive(Deserialize)]
struct UsageRow {
    creator_id: String,
    channel_id: String,
    video_id: Option<String>,
    #[serde(deserialize_with = "super::exact")]
    weight: i64,
}

/// Every channel and video's reported usage of `period` by `basis` (pools' own records carry
/// none), in the order ties are broken by; at most one more than a pool may hold.
pub async fn usage(db: &Db, period: Month, basis: Basis) -> Result<Vec<Usage>> {
    // The column is one of the basis' fixed names.
    let sql = format!(
        "SELECT creator_id, channel_id, video_id, CAST(SUM({column}) AS TEXT) AS weight FROM revenue_records
         WHERE period = ?1 AND pool_id IS NULL
         GROUP BY creator_id, channel_id, video_id HAVING SUM({column}) > 0
         ORDER BY creator_id, channel_id, video_id IS NOT NULL, video_id LIMIT ?2",
        column = basis.as_str()
    );
    let rows = db.all::<UsageRow>(&sql, &args![period.to_string(), (MAX_POOL_GROUPS + 1) as u32]).await?;
    rows.into_iter()
        .map(|r| {
            let weight = u64::try_from(r.weight).map_err(|_| Error::corrupt("revenue_records", &r.channel_id, "usage", &r.weight.to_string()))?;
            Ok(Usage { creator_id: r.creator_id, channel_id: r.channel_id, video_id: r.video_id, weight })
        })
        .collect()
}

#[derive(Deserialize)]
struct LatestRow {
    period: Option<String>,
}

/// The latest usage month of the creator's records.
pub async fn latest_record_month(db: &Db, creator_id: &str) -> Result<Option<Month>> {
    let row = db.first::<LatestRow>("SELECT MAX(period) AS period FROM revenue_records WHERE creator_id = ?1", &args![creator_id]).await?;
    match row.and_then(|r| r.period) {
        Some(text) => Ok(Some(month("revenue_records", creator_id, "period", &text)?)),
        None => Ok(None),
    }
}

/// Sets the creator's terms from `terms.effective_from` on, unless records of that month or later
/// arrived meanwhile (`false`: nothing changed). Returns the creator's terms after it, earliest
/// first.
pub async fn set_terms(db: &Db, creator_id: &str, terms: Terms, set_by: &str, now: Timestamp) -> Result<(bool, Vec<Terms>)> {
    let from = terms.effective_from.to_string();
    let statements = vec![
        db.statement(
            "INSERT INTO creator_terms (creator_id, effective_from, share_bps, set_by, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5
             WHERE NOT EXISTS (SELECT 1 FROM revenue_records WHERE creator_id = ?1 AND period >= ?2)
             ON CONFLICT (creator_id, effective_from) DO UPDATE SET share_bps = excluded.share_bps, set_by = excluded.set_by,
                 created_at = excluded.created_at",
            &args![creator_id, &from, terms.share_bps, set_by, now.unix()],
        )?,
        db.statement(BUMP, &[])?,
        db.statement(
            "SELECT creator_id, effective_from, share_bps FROM creator_terms WHERE creator_id = ?1 ORDER BY effective_from",
            &args![creator_id],
        )?,
    ];
    let results = db.batch(statements).await?;
    let set = results.first().map_or(0, changes) > 0;
    let schedule = rows::<TermsRow>(&results, 2)?.into_iter().map(|r| Ok(r.read()?.1)).collect::<Result<_>>()?;
    Ok((set, schedule))
}

/// Replaces the channel's owners (none: the reporting creator keeps the creator part).
pub async fn set_owners(db: &Db, channel_id: &str, owners: &[Owner], now: Timestamp) -> Result<()> {
    let statements = vec![
        db.statement("DELETE FROM channel_owners WHERE channel_id = ?1", &args![channel_id])?,
        db.statement(
            "INSERT INTO channel_owners (channel_id, creator_id, share_bps, updated_at)
             SELECT ?1, o.value ->> 'creator_id', o.value ->> 'share_bps', ?3 FROM json_each(?2) AS o",
            &args![channel_id, json(owners)?, now.unix()],
        )?,
        db.statement(BUMP, &[])?,
    ];
    db.batch(statements).await?;
    Ok(())
}

/// One of a creator's lines with its record, as the creator sees it.
#[derive(Debug, Deserialize)]
pub struct MyLine {
    pub record_id: String,
    pub channel_id: String,
    pub video_id: Option<String>,
    pub period: String,
    pub statement_period: String,
    pub gross_cents: i64,
    pub currency: String,
    pub views: i64,
    pub api_calls: i64,
    pub matches: i64,
    pub share_bps: i64,
    pub platform_cents: i64,
    pub creator_cents: i64,
    pub owner_share_bps: i64,
    pub cents: i64,
    pub pool_id: Option<String>,
    pub received_at: i64,
    /// 1 once its statement is closed.
    pub closed: i64,
}

/// Filters of a creator's records.
#[derive(Default)]
pub struct LineFilter<'a> {
    pub channel_id: Option<&'a str>,
    pub video_id: Option<&'a str>,
    pub period: Option<Month>,
}

/// A creator's lines, newest first, before the cursor `(received_at, record_id)`.
pub async fn my_lines(db: &Db, creator_id: &str, filter: &LineFilter<'_>, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<MyLine>> {
    let sql = "SELECT l.record_id, r.channel_id, r.video_id, r.period, l.statement_period, r.gross_cents, r.currency, r.views,
                   r.api_calls, r.matches, r.share_bps, r.platform_cents, r.creator_cents, l.share_bps AS owner_share_bps, l.cents,
                   r.pool_id, l.received_at,
                   COALESCE(l.statement_period <= (SELECT MAX(period) FROM revenue_periods), 0) AS closed
               FROM revenue_lines l JOIN revenue_records r ON r.id = l.record_id
               WHERE l.creator_id = ?1 AND (?2 IS NULL OR r.channel_id = ?2) AND (?3 IS NULL OR r.video_id = ?3)
                 AND (?4 IS NULL OR r.period = ?4) AND (?5 IS NULL OR (l.received_at, l.record_id) < (?5, ?6))
               ORDER BY l.received_at DESC, l.record_id DESC LIMIT ?7";
    let args = args![
        creator_id,
        filter.channel_id,
        filter.video_id,
        filter.period.map(|p| p.to_string()),
        before.map(|b| b.0),
        before.map(|b| &b.1),
        limit
    ];
    db.all(sql, &args).await
}

// --- closing a period -------------------------------------------------------------------------

/// What closing a period depends on, read in one round trip.
#[derive(Debug)]
pub struct ClosingState {
    pub version: i64,
    pub last_closed: Option<Month>,
    /// The earliest statement with records that is still open.
    pub earliest_open: Option<Month>,
    /// Lines in the period's statement (lines are only ever added: an unchanged count is an
    /// unchanged statement).
    pub lines: i64,
    /// Each creator's net in the statement, in creator id order.
    pub nets: Vec<(String, i64)>,
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

#[derive(Deserialize)]
struct NetRow {
    creator_id: String,
    #[serde(deserialize_with = "super::exact")]
    cents: i64,
}

fn optional_month(table: &'static str, text: Option<String>) -> Result<Option<Month>> {
    text.map(|t| month(table, "MAX", "period", &t)).transpose()
}

pub async fn closing_state(db: &Db, period: Month) -> Result<ClosingState> {
    let p = period.to_string();
    let statements = vec![
        db.statement(&format!("SELECT {VERSION} AS version"), &[])?,
        db.statement("SELECT MAX(period) AS period FROM revenue_periods", &[])?,
        db.statement(
            "SELECT MIN(statement_period) AS period FROM revenue_records
             WHERE statement_period > COALESCE((SELECT MAX(period) FROM revenue_periods), '')",
            &[],
        )?,
        db.statement("SELECT COUNT(*) AS n FROM revenue_lines WHERE statement_period = ?1", &args![&p])?,
        db.statement(
            "SELECT creator_id, CAST(SUM(cents) AS TEXT) AS cents FROM revenue_lines WHERE statement_period = ?1
             GROUP BY creator_id ORDER BY creator_id",
            &args![&p],
        )?,
    ];
    let results = db.batch(statements).await?;
    let version = rows::<VersionRow>(&results, 0)?.first().map(|r| r.version).ok_or_else(|| Error::D1("revenue_state has no row".into()))?;
    let last_closed = optional_month("revenue_periods", rows::<PeriodRow>(&results, 1)?.into_iter().next().and_then(|r| r.period))?;
    let earliest_open = optional_month("revenue_records", rows::<PeriodRow>(&results, 2)?.into_iter().next().and_then(|r| r.period))?;
    let lines = rows::<CountRow>(&results, 3)?.first().map_or(0, |r| r.n);
    let nets = rows::<NetRow>(&results, 4)?.into_iter().map(|r| (r.creator_id, r.cents)).collect();
    Ok(ClosingState { version, last_closed, earliest_open, lines, nets })
}

/// A creator's earnings row of a closed statement.
pub struct StatementEarning<'a> {
    pub creator_id: &'a str,
    pub kind: EarningKind,
    pub cents: i64,
    pub available_at: Timestamp,
}

#[derive(Serialize)]
struct EarningJson<'a> {
    id: String,
    payee_id: &'a str,
    kind: &'static str,
    amount_cents: i64,
    available_at: i64,
}

/// The closing row of period ?1 (batch ?2, at ?3, by ?4), written only if the version is still
/// ?5, the statement still has ?6 lines, and no earlier statement with records is open.
fn close_period_sql() -> String {
    format!(
        "INSERT INTO revenue_periods (period, batch_id, closed_at, closed_by, records_seq, payouts_seq)
         SELECT ?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) FROM revenue_records), (SELECT COALESCE(MAX(seq), 0) FROM payouts)
         WHERE {VERSION} = ?5 AND (SELECT COUNT(*) FROM revenue_lines WHERE statement_period = ?1) = ?6
           AND NOT EXISTS (SELECT 1 FROM revenue_records WHERE statement_period < ?1
                           AND statement_period > COALESCE((SELECT MAX(period) FROM revenue_periods), ''))"
    )
}

/// Who closes which period, as which batch, when.
pub struct Closing<'a> {
    pub period: Month,
    pub batch_id: &'a str,
    pub closed_by: &'a str,
    pub now: Timestamp,
}

/// Closes the period with the creators' earnings and their activity events, if nothing it was
/// decided on changed (`state`: the version and the statement's lines, and still no earlier
/// statement with records open: a record of an earlier month may have landed since the read);
/// `false` when something did (nothing was written).
pub async fn close(db: &Db, c: &Closing<'_>, state: &ClosingState, earnings: &[StatementEarning<'_>], events: &[Event]) -> Result<bool> {
    let Closing { period, batch_id, closed_by, now } = *c;
    let p = period.to_string();
    let source = crate::domain::revenue::statement_source(period);
    let rows_json: Vec<EarningJson> = earnings
        .iter()
        .map(|e| EarningJson {
            id: format!("{source}:{}", e.creator_id),
            payee_id: e.creator_id,
            kind: e.kind.as_str(),
            amount_cents: e.cents,
            available_at: e.available_at.unix(),
        })
        .collect();
    let closed = "EXISTS (SELECT 1 FROM revenue_periods WHERE batch_id = ?2)";
    let mut statements = vec![
        db.statement(&close_period_sql(), &args![&p, batch_id, now.unix(), closed_by, state.version, state.lines])?,
        db.statement(&format!("{BUMP} AND {closed}"), &args![&p, batch_id])?,
    ];
    let insert_earnings = format!(
        "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, status, available_at, source, created_at, updated_at)
         SELECT e.value ->> 'id', ?3, e.value ->> 'payee_id', e.value ->> 'kind', e.value ->> 'amount_cents', 'open',
             e.value ->> 'available_at', ?4, ?5, ?5
         FROM json_each(?1) AS e WHERE {closed}"
    );
    for chunk in json_chunks(&rows_json)? {
        statements.push(db.statement(&insert_earnings, &args![chunk, batch_id, super::earnings::CREATOR, &source, now.unix()])?);
    }
    let guard = "EXISTS (SELECT 1 FROM revenue_periods WHERE batch_id = ?4)";
    statements.extend(super::rewards::count_if(db, batch_id, events, now, Some((guard, batch_id)))?);
    statements.push(db.statement("SELECT COUNT(*) AS n FROM revenue_periods WHERE batch_id = ?1", &args![batch_id])?);
    let n = statements.len();
    let results = db.batch(statements).await?;
    Ok(rows::<CountRow>(&results, n - 1)?.first().is_some_and(|r| r.n == 1))
}

// --- what a creator reads ----------------------------------------------------------------------

/// How a creator's lines are grouped in the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Period,
    Channel,
    Video,
}

/// One group of a creator's lines: the records' totals and the creator's own cents.
#[derive(Debug, Deserialize)]
pub struct GroupRow {
    pub period: Option<String>,
    pub channel_id: Option<String>,
    pub video_id: Option<String>,
    pub records: i64,
    #[serde(deserialize_with = "super::exact")]
    pub gross_cents: i64,
    #[serde(deserialize_with = "super::exact")]
    pub platform_cents: i64,
    #[serde(deserialize_with = "super::exact")]
    pub creator_cents: i64,
    #[serde(deserialize_with = "super::exact")]
    pub cents: i64,
    #[serde(deserialize_with = "super::exact")]
    pub views: i64,
    #[serde(deserialize_with = "super::exact")]
    pub api_calls: i64,
    #[serde(deserialize_with = "super::exact")]
    pub matches: i64,
}

/// Groups this many at most.
pub const MAX_GROUPS: u32 = 1_000;

/// The creator's lines of usage months `from..=to`, grouped; and their cents in open statements
/// (the estimate).
pub async fn summary(db: &Db, creator_id: &str, from: Month, to: Month, by: GroupBy) -> Result<(Vec<GroupRow>, i64)> {
    let (select, group) = match by {
        GroupBy::Period => ("r.period AS period, NULL AS channel_id, NULL AS video_id", "r.period"),
        GroupBy::Channel => ("NULL AS period, r.channel_id AS channel_id, NULL AS video_id", "r.channel_id"),
        GroupBy::Video => ("NULL AS period, r.channel_id AS channel_id, r.video_id AS video_id", "r.channel_id, r.video_id"),
    };
    let sql = format!(
        "SELECT {select}, COUNT(*) AS records, CAST(SUM(r.gross_cents) AS TEXT) AS gross_cents,
             CAST(SUM(r.platform_cents) AS TEXT) AS platform_cents, CAST(SUM(r.creator_cents) AS TEXT) AS creator_cents,
             CAST(SUM(l.cents) AS TEXT) AS cents, CAST(SUM(r.views) AS TEXT) AS views, CAST(SUM(r.api_calls) AS TEXT) AS api_calls,
             CAST(SUM(r.matches) AS TEXT) AS matches
         FROM revenue_lines l JOIN revenue_records r ON r.id = l.record_id
         WHERE l.creator_id = ?1 AND r.period BETWEEN ?2 AND ?3
         GROUP BY {group} ORDER BY {group} LIMIT ?4"
    );
    #[derive(Deserialize)]
    struct Estimate {
        #[serde(deserialize_with = "super::exact")]
        cents: i64,
    }
    let statements = vec![
        db.statement(&sql, &args![creator_id, from.to_string(), to.to_string(), MAX_GROUPS])?,
        db.statement(
            "SELECT CAST(COALESCE(SUM(cents), 0) AS TEXT) AS cents FROM revenue_lines
             WHERE creator_id = ?1 AND statement_period > COALESCE((SELECT MAX(period) FROM revenue_periods), '')",
            &args![creator_id],
        )?,
    ];
    let results = db.batch(statements).await?;
    let estimated = rows::<Estimate>(&results, 1)?.first().map_or(0, |e| e.cents);
    Ok((rows(&results, 0)?, estimated))
}

#[derive(Deserialize)]
struct StatementRow {
    record_id: String,
    channel_id: String,
    video_id: Option<String>,
    period: String,
    gross_cents: i64,
    platform_cents: i64,
    creator_cents: i64,
    cents: i64,
    views: i64,
    api_calls: i64,
    matches: i64,
}

/// What a creator's statement of a month is made of.
#[derive(Debug)]
pub struct StatementData {
    /// Whether it is closed (a month at or before the last closed one; one without records may
    /// have been passed over), and when it was closed.
    pub closed: bool,
    pub closed_at: Option<Timestamp>,
    pub inputs: Vec<StatementInput>,
    /// The creator's earnings of earlier statements.
    pub earned_before: i64,
    /// Their payouts (not failed) made before the previous statement closed, and since then
    /// until this one closed (in the order D1 applied them: `payouts.seq` against
    /// `revenue_periods.payouts_seq`); for an open statement, until now.
    pub paid_before: i64,
    pub paid_during: i64,
}

#[derive(Deserialize)]
struct BalanceRow {
    closed: i64,
    closed_at: Option<i64>,
    #[serde(deserialize_with = "super::exact")]
    earned_before: i64,
    #[serde(deserialize_with = "super::exact")]
    paid_before: i64,
    #[serde(deserialize_with = "super::exact")]
    paid_during: i64,
}

pub async fn statement(db: &Db, creator_id: &str, period: Month) -> Result<StatementData> {
    let p = period.to_string();
    let statements = vec![
        db.statement(
            "SELECT l.record_id, r.channel_id, r.video_id, r.period, r.gross_cents, r.platform_cents, r.creator_cents, l.cents,
                 r.views, r.api_calls, r.matches
             FROM revenue_lines l JOIN revenue_records r ON r.id = l.record_id
             WHERE l.creator_id = ?1 AND l.statement_period = ?2",
            &args![creator_id, &p],
        )?,
        db.statement(
            "WITH bounds AS (
                 SELECT (SELECT closed_at FROM revenue_periods WHERE period = ?2) AS closed_at,
                        ?2 <= COALESCE((SELECT MAX(period) FROM revenue_periods), '') AS closed,
                        COALESCE((SELECT MAX(payouts_seq) FROM revenue_periods WHERE period < ?2), 0) AS previous,
                        COALESCE((SELECT MAX(payouts_seq) FROM revenue_periods WHERE period <= ?2), 0) AS until
             )
             SELECT b.closed, b.closed_at,
                 (SELECT CAST(COALESCE(SUM(amount_cents), 0) AS TEXT) FROM earnings
                  WHERE program = ?3 AND payee_id = ?1 AND source LIKE 'statement:%' AND source < 'statement:' || ?2) AS earned_before,
                 (SELECT CAST(COALESCE(SUM(amount_cents), 0) AS TEXT) FROM payouts
                  WHERE program = ?3 AND payee_id = ?1 AND status <> 'failed' AND seq <= b.previous) AS paid_before,
                 (SELECT CAST(COALESCE(SUM(amount_cents), 0) AS TEXT) FROM payouts
                  WHERE program = ?3 AND payee_id = ?1 AND status <> 'failed' AND seq > b.previous
                    AND (NOT b.closed OR seq <= b.until)) AS paid_during
             FROM bounds b",
            &args![creator_id, &p, super::earnings::CREATOR],
        )?,
    ];
    let results = db.batch(statements).await?;
    let inputs = rows::<StatementRow>(&results, 0)?
        .into_iter()
        .map(|r| {
            Ok(StatementInput {
                period: month("revenue_records", &r.record_id, "period", &r.period)?,
                record_id: r.record_id,
                channel_id: r.channel_id,
                video_id: r.video_id,
                gross_cents: r.gross_cents,
                platform_cents: r.platform_cents,
                creator_cents: r.creator_cents,
                cents: r.cents,
                views: r.views,
                api_calls: r.api_calls,
                matches: r.matches,
            })
        })
        .collect::<Result<_>>()?;
    let b = rows::<BalanceRow>(&results, 1)?.into_iter().next().ok_or_else(|| Error::D1("statement balance has no row".into()))?;
    Ok(StatementData {
        closed: b.closed != 0,
        closed_at: b.closed_at.map(Timestamp::from_unix),
        inputs,
        earned_before: b.earned_before,
        paid_before: b.paid_before,
        paid_during: b.paid_during,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the closing row's SQL in SQLite (python3's sqlite3, the engine D1 runs) on the
    /// migrated schema, in the states a closing can meet when it writes: how many rows it writes.
    fn closing_writes(setup: &str, version: i64, lines: i64) -> i64 {
        let migrations: Vec<String> = {
            let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .expect("migrations")
                .map(|e| e.expect("entry").path())
                .collect();
            files.sort();
            files.iter().map(|f| std::fs::read_to_string(f).expect("migration")).collect()
        };
        let script = r#"
import json, sqlite3, sys
data = json.load(sys.stdin)
con = sqlite3.connect(":memory:")
for m in data["migrations"]:
    con.executescript(m)
con.executescript(data["setup"])
cur = con.execute(data["sql"], ["2026-11", "batch", 1, "admin", data["version"], data["lines"]])
print(cur.rowcount)
"#;
        let input = serde_json::json!({"migrations": migrations, "setup": setup, "sql": close_period_sql(), "version": version, "lines": lines});
        String::from_utf8_lossy(&crate::store::run_in_sqlite(script, &input)).trim().parse().expect("a row count")
    }

    const RECORD: &str = "INSERT INTO revenue_records (id, batch_id, creator_id, channel_id, period, statement_period, gross_cents,
        currency, views, api_calls, matches, share_bps, platform_cents, creator_cents, received_at)
        VALUES ('r', 'b', 'c', 'ch', 'PERIOD', 'PERIOD', 100, 'usd', 0, 0, 0, 7000, 30, 70, 1);
        INSERT INTO revenue_lines (record_id, creator_id, share_bps, cents, statement_period, received_at)
        VALUES ('r', 'c', 10000, 70, 'PERIOD', 1);";

    #[test]
    fn a_closing_writes_only_in_the_state_it_was_decided_on() {
        assert_eq!(closing_writes("", 0, 0), 1, "an empty month closes");
        assert_eq!(closing_writes(&RECORD.replace("PERIOD", "2026-11"), 0, 1), 1, "its own records, as counted");
        assert_eq!(closing_writes(&RECORD.replace("PERIOD", "2026-11"), 0, 0), 0, "a record of the month landed since the read");
        assert_eq!(closing_writes("UPDATE revenue_state SET version = 1", 0, 0), 0, "terms, owners or a closing changed since");
        // A record of an earlier month that landed since the read: closing now would pass its
        // statement over, and its cents would never be earned.
        assert_eq!(closing_writes(&RECORD.replace("PERIOD", "2026-10"), 0, 0), 0);
        let earlier_closed = format!("{} INSERT INTO revenue_periods VALUES ('2026-10', 'b0', 1, 'admin', 1, 0);", RECORD.replace("PERIOD", "2026-10"));
        assert_eq!(closing_writes(&earlier_closed, 0, 0), 1, "an earlier statement already closed is no obstacle");
    }
}
