//! Creator revenue sharing: revenue records reported by the main SoundHash API (and pools
//! allocated into records), split when they arrive by the creator's terms in force for their
//! month and divided among the channel's owners; what each creator sees of their part.
//!
//! The rules are `domain::revenue`; the SQL is `store::revenue`.

use crate::domain::earnings::Balances;
use crate::domain::revenue::{self as rules, Owner, Pool, Record, Terms};
use crate::domain::time::{Month, Period, Timestamp, MONTH_FORMAT};
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::earnings::{self as ledger, CREATOR};
use crate::store::revenue::{self as store, GroupBy, Inputs, NewPool, Prepared, StatementEarning, StoredRow};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsBody {
    records: Vec<Record>,
}

/// What a write of records did with each one.
#[derive(Debug, Default, Serialize, PartialEq)]
struct Outcome {
    /// Records stored now.
    accepted: usize,
    /// Ids stored before with the same content (re-sends): skipped.
    duplicates: usize,
    /// Ids stored before with other content: skipped, and named here.
    conflicts: Vec<Conflict>,
    /// Of the accepted, those of a closed period: they land in the next open statement.
    adjustments: usize,
}

#[derive(Debug, Serialize, PartialEq)]
struct Conflict {
    index: usize,
    id: String,
}

/// `POST /admin/revenue` `{"records": [...]}`: up to 1,000 records. Every record is checked
/// before anything is stored: one bad record refuses the request, naming it.
pub async fn admin_records(ctx: &Ctx) -> ApiResult {
    let body: RecordsBody = ctx.json()?;
    if body.records.is_empty() || body.records.len() > rules::MAX_RECORDS {
        return Err(ApiError::validation("records", format!("records must hold 1–{} records", rules::MAX_RECORDS)));
    }
    let currency = &ctx.config()?.billing_currency;
    let now = Month::of(ctx.now);
    for (i, record) in body.records.iter().enumerate() {
        rules::check_record(record, now, currency)
            .map_err(|(field, why)| ApiError::validation(format!("records[{i}].{field}"), format!("records[{i}].{field} {why}")))?;
    }
    Reply::ok(&write(ctx, &body.records, None).await?)
}

/// Splits and stores records (with their pool), reading the inputs of the split again when they
/// changed meanwhile.
async fn write(ctx: &Ctx, records: &[Record], pool: Option<&NewPool<'_>>) -> ApiResult<Outcome> {
    let default_share = ctx.config()?.creator_share_bps;
    let db = ctx.db()?;
    let batch = new_id();
    let creators = distinct(records.iter().map(|r| r.creator_id.as_str()));
    let channels = distinct(records.iter().map(|r| r.channel_id.as_str()));
    // An id repeated within the request is stored as it first stands (the others are re-sends
    // or conflicts of it).
    let mut ids = HashSet::new();
    let firsts: Vec<&Record> = records.iter().filter(|r| ids.insert(r.id.as_str())).collect();
    for _ in 0..3 {
        let inputs = store::inputs(&db, &creators, &channels).await?;
        let prepared: Vec<Prepared> = firsts.iter().map(|r| prepare(r, &inputs, default_share)).collect();
        if let Some(written) = store::write(&db, &batch, &prepared, pool, inputs.version, ctx.now).await? {
            if pool.is_some() && !written.pool_stored {
                // Another request stored the pool meanwhile, with allocations of its own.
                return Ok(Outcome::default());
            }
            return outcome(records, &written.rows, &batch);
        }
    }
    Err(ApiError::contention("concurrent_update", "Terms, owners or periods changed meanwhile; retry."))
}

fn distinct<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

/// A record with its split by the inputs read.
fn prepare<'a>(record: &'a Record, inputs: &Inputs, default_share: u32) -> Prepared<'a> {
    let terms: Vec<Terms> = inputs.terms.iter().filter(|(c, _)| *c == record.creator_id).map(|(_, t)| *t).collect();
    let owners: Vec<Owner> = inputs.owners.iter().filter(|(c, _)| *c == record.channel_id).map(|(_, o)| o.clone()).collect();
    let share = rules::share_in(record.period, &terms, default_share);
    let split = rules::split_record(record.gross_cents, share, &record.creator_id, &owners);
    Prepared {
        record,
        statement_period: rules::statement_period(record.period, inputs.last_closed),
        share_bps: split.share_bps,
        platform_cents: split.platform_cents,
        creator_cents: split.creator_cents,
        lines: split.lines,
    }
}

/// Tells each asked-for record's fate from what is stored under its id: stored by this batch
/// (accepted, once per id), else a re-send with the same content, else a conflict.
fn outcome(records: &[Record], stored: &[StoredRow], batch: &str) -> ApiResult<Outcome> {
    let by_id: std::collections::HashMap<&str, &StoredRow> = stored.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut outcome = Outcome::default();
    let mut counted = HashSet::new();
    for (index, record) in records.iter().enumerate() {
        let row = by_id
            .get(record.id.as_str())
            .ok_or_else(|| ApiError::internal(format!("revenue record {} was neither stored nor found", record.id)))?;
        let same = rules::same_content(record, &row.record()?);
        if row.batch_id == batch && same && counted.insert(record.id.as_str()) {
            outcome.accepted += 1;
            if row.statement_period != row.period {
                outcome.adjustments += 1;
            }
        } else if same {
            outcome.duplicates += 1;
        } else {
            outcome.conflicts.push(Conflict { index, id: record.id.clone() });
        }
    }
    Ok(outcome)
}

/// `POST /admin/revenue/pools` `{"id", "period", "gross_cents", "basis"}`: allocates the pool over
/// every channel and video by their reported usage of the period, each allocation a record.
/// A re-sent pool is answered as it was stored; the same id with other content is a conflict.
pub async fn admin_pool(ctx: &Ctx) -> ApiResult {
    let pool: Pool = ctx.json()?;
    rules::check_pool(&pool, Month::of(ctx.now)).map_err(|(field, why)| ApiError::validation(field, format!("{field} {why}")))?;
    let db = ctx.db()?;
    if let Some(view) = stored_pool(&db, &pool).await? {
        return Reply::ok(&view);
    }
    let usage = store::usage(&db, pool.period, pool.basis).await?;
    let records = rules::allocate_pool(&pool, &usage, &ctx.config()?.billing_currency)?;
    let new = NewPool { id: &pool.id, period: pool.period, gross_cents: pool.gross_cents, basis: pool.basis };
    let outcome = write(ctx, &records, Some(&new)).await?;
    if outcome.accepted == 0 {
        // Another request stored a pool of this id meanwhile.
        let view = stored_pool(&db, &pool).await?.ok_or_else(|| ApiError::internal("revenue pool neither stored nor found"))?;
        return Reply::ok(&view);
    }
    Reply::created(&PoolView {
        id: pool.id.clone(),
        period: pool.period,
        gross_cents: pool.gross_cents,
        basis: pool.basis,
        records: outcome.accepted as i64,
        allocated_cents: records.iter().map(|r| r.gross_cents).sum(),
        adjustments: outcome.adjustments as i64,
    })
}

/// A pool as the API shows it: its allocations, how many and their sum (always its gross).
#[derive(Serialize)]
struct PoolView {
    id: String,
    period: Month,
    gross_cents: i64,
    basis: rules::Basis,
    records: i64,
    allocated_cents: i64,
    /// Allocations that landed in a later statement (the pool's period was closed).
    adjustments: i64,
}

/// The stored pool of this id, if it says what `pool` says (else 409).
async fn stored_pool(db: &crate::store::Db, pool: &Pool) -> ApiResult<Option<PoolView>> {
    let Some(stored) = store::find_pool(db, &pool.id).await? else { return Ok(None) };
    if (stored.period, stored.gross_cents, stored.basis) != (pool.period, pool.gross_cents, pool.basis) {
        return Err(ApiError::conflict("pool_conflict", "A pool with this id and other content exists."));
    }
    Ok(Some(PoolView {
        id: pool.id.clone(),
        period: stored.period,
        gross_cents: stored.gross_cents,
        basis: stored.basis,
        records: stored.records,
        allocated_cents: stored.allocated_cents,
        adjustments: stored.adjustments,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsBody {
    share_bps: i64,
    effective_from: Month,
}

/// A creator's terms as the API shows them.
#[derive(Serialize)]
struct TermsView<'a> {
    creator_id: &'a str,
    /// The share where no terms are in force (`CREATOR_SHARE_BPS`).
    default_share_bps: u32,
    /// Earliest first.
    terms: Vec<TermView>,
}

#[derive(Serialize)]
struct TermView {
    effective_from: Month,
    share_bps: u32,
}

/// An id another SoundHash system gave (a creator, a channel) from the path; anything that
/// cannot be one is unknown.
fn path_id<'a>(ctx: &'a Ctx, what: &str) -> ApiResult<&'a str> {
    let id = ctx.param("id")?;
    if crate::domain::keys::plain_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!("No such {what}.")))
    }
}

/// `PUT /admin/creators/{id}/terms` `{"share_bps", "effective_from": "YYYY-MM"}`: the creator's
/// share from that month on. Months already split (the creator has records of them or later)
/// are never rewritten: such a start is refused.
pub async fn admin_terms(ctx: &Ctx) -> ApiResult {
    let creator = path_id(ctx, "creator")?;
    let body: TermsBody = ctx.json()?;
    let share_bps = rules::share_bps(body.share_bps).map_err(|why| ApiError::validation("share_bps", format!("share_bps {why}")))?;
    let terms = Terms { effective_from: body.effective_from, share_bps };
    let db = ctx.db()?;
    rules::check_terms(terms.effective_from, store::latest_record_month(&db, creator).await?)?;
    let (set, schedule) = store::set_terms(&db, creator, terms, &ctx.user()?.id, ctx.now).await?;
    if !set {
        // Records of the month arrived between the check and the write.
        return Err(rules::TERMS_IN_USE.into());
    }
    Reply::ok(&TermsView {
        creator_id: creator,
        default_share_bps: ctx.config()?.creator_share_bps,
        terms: schedule.into_iter().map(|t| TermView { effective_from: t.effective_from, share_bps: t.share_bps }).collect(),
    })
}

/// `PUT /admin/channels/{id}/owners` `[{"creator_id", "share_bps"}]`: the channel's owners from now
/// on, their shares summing to 10000 (`[]`: the reporting creator keeps the creator part).
/// Records already stored keep the lines they were split into.
pub async fn admin_owners(ctx: &Ctx) -> ApiResult {
    let channel = path_id(ctx, "channel")?;
    let owners: Vec<Owner> = ctx.json()?;
    let owners = rules::check_owners(owners).map_err(|(field, why)| ApiError::validation(field.clone(), format!("{field} {why}")))?;
    store::set_owners(&ctx.db()?, channel, &owners, ctx.now).await?;
    Reply::ok(&serde_json::json!({ "channel_id": channel, "owners": owners }))
}

/// One of the caller's lines with its record.
#[derive(Serialize)]
struct LineView {
    record_id: String,
    channel_id: String,
    video_id: Option<String>,
    /// The usage month.
    period: String,
    /// The statement it is in: its usage month, or a later one for a late record (an adjustment).
    statement_period: String,
    adjustment: bool,
    /// `estimated` while its statement is open, `closed` once it is.
    status: &'static str,
    gross_cents: i64,
    currency: String,
    views: i64,
    api_calls: i64,
    matches: i64,
    /// The creators' share of the record, and the parts.
    share_bps: i64,
    platform_cents: i64,
    creator_cents: i64,
    /// The caller's part of the creators' share, and the caller's cents.
    owner_share_bps: i64,
    cents: i64,
    pool_id: Option<String>,
    received_at: Timestamp,
}

impl From<store::MyLine> for LineView {
    fn from(l: store::MyLine) -> Self {
        LineView {
            adjustment: l.statement_period != l.period,
            status: if l.closed != 0 { "closed" } else { "estimated" },
            record_id: l.record_id,
            channel_id: l.channel_id,
            video_id: l.video_id,
            period: l.period,
            statement_period: l.statement_period,
            gross_cents: l.gross_cents,
            currency: l.currency,
            views: l.views,
            api_calls: l.api_calls,
            matches: l.matches,
            share_bps: l.share_bps,
            platform_cents: l.platform_cents,
            creator_cents: l.creator_cents,
            owner_share_bps: l.owner_share_bps,
            cents: l.cents,
            pool_id: l.pool_id,
            received_at: Timestamp::from_unix(l.received_at),
        }
    }
}

/// `GET /revenue/creator/records?channel_id=&video_id=&period=&limit=&cursor=`: the caller's
/// lines (their part of each record they share in), newest first.
pub async fn my_records(ctx: &Ctx) -> ApiResult {
    let period = match ctx.query("period") {
        Some(text) => Some(month_param("period", text)?),
        None => None,
    };
    let id = |name: &'static str| match ctx.query(name) {
        Some(id) if !crate::domain::keys::plain_id(id) => Err(ApiError::validation(name, format!("{name} must be 1–128 visible ASCII characters"))),
        other => Ok(other),
    };
    let filter = store::LineFilter { channel_id: id("channel_id")?, video_id: id("video_id")?, period };
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::my_lines(&ctx.db()?, &ctx.user()?.id, &filter, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |l| (l.received_at, l.record_id.clone())).map(LineView::from))
}

/// A month from the query or the path (422 naming it when malformed).
fn month_param(name: &'static str, text: &str) -> ApiResult<Month> {
    Month::parse(text).ok_or_else(|| ApiError::validation(name, format!("{name} {MONTH_FORMAT}")))
}

/// What closing a period did.
#[derive(Serialize)]
struct ClosedView {
    period: Month,
    closed_at: Timestamp,
    /// Creators whose net in the statement was not zero: one earnings row each.
    earnings: usize,
    /// The sum of those nets.
    creator_cents: i64,
}

/// `POST /admin/revenue/periods/{period}/close`: closes the month's statement, once it has
/// ended and every earlier statement with records is closed. Each creator's net in it becomes
/// one earnings row (`program = 'creator'`): positive ones held for `COMMISSION_HOLD_DAYS`, a
/// negative one a debt at once; positive nets count as `revenue_cents` activity. Records of the
/// month that arrive later land in the next open statement.
pub async fn admin_close(ctx: &Ctx) -> ApiResult {
    let period = month_param("period", ctx.param("period")?)?;
    let hold_days = ctx.config()?.commission_hold_days;
    let db = ctx.db()?;
    let batch = new_id();
    // Each retry follows records that landed in the statement meanwhile; a steady stream of them
    // is answered 409 with Retry-After.
    for _ in 0..5 {
        let state = store::closing_state(&db, period).await?;
        rules::check_close(period, Month::of(ctx.now), state.last_closed, state.earliest_open)?;
        for (_, net) in &state.nets {
            rules::check_net(*net)?;
        }
        let earnings: Vec<StatementEarning> = state
            .nets
            .iter()
            .filter_map(|(creator, net)| {
                let (kind, available_at) = rules::statement_earning(*net, ctx.now, hold_days)?;
                Some(StatementEarning { creator_id: creator, kind, cents: *net, available_at })
            })
            .collect();
        let events: Vec<_> = state.nets.iter().filter_map(|(creator, net)| rules::revenue_event(period, creator, *net, ctx.now)).collect();
        let closing = store::Closing { period, batch_id: &batch, closed_by: &ctx.user()?.id, now: ctx.now };
        if store::close(&db, &closing, &state, &earnings, &events).await? {
            if !events.is_empty() {
                crate::rewards::publish_batch_later(ctx, batch)?;
            }
            return Reply::ok(&ClosedView {
                period,
                closed_at: ctx.now,
                earnings: earnings.len(),
                creator_cents: earnings.iter().map(|e| e.cents).sum(),
            });
        }
    }
    Err(ApiError::contention("concurrent_update", "Records of the period arrived meanwhile; retry."))
}

/// A creator's balances: the estimate of open statements and the earnings ledger's buckets; a
/// negative available balance is shown as debt (later statements pay it down).
#[derive(Serialize)]
struct BalancesView {
    estimated_cents: i64,
    pending_cents: i64,
    available_cents: i64,
    in_payout_cents: i64,
    paid_cents: i64,
    debt_cents: i64,
}

impl BalancesView {
    fn new(estimated_cents: i64, b: Balances) -> Self {
        BalancesView {
            estimated_cents,
            pending_cents: b.pending_cents,
            available_cents: b.available_cents.max(0),
            in_payout_cents: b.in_payout_cents,
            paid_cents: b.paid_cents,
            debt_cents: (-b.available_cents).max(0),
        }
    }
}

#[derive(Serialize)]
struct GroupView {
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_id: Option<String>,
    /// With `group_by=video` (null: the channel's records without a video).
    #[serde(skip_serializing_if = "Option::is_none")]
    video_id: Option<Option<String>>,
    records: i64,
    gross_cents: i64,
    platform_cents: i64,
    creator_cents: i64,
    /// The caller's part of `creator_cents`.
    cents: i64,
    views: i64,
    api_calls: i64,
    matches: i64,
}

/// `GET /revenue/creator?from=YYYY-MM&to=YYYY-MM&group_by=period|channel|video`: the caller's
/// revenue of the usage months `from..=to` (default: all) in groups, and their balances.
pub async fn summary(ctx: &Ctx) -> ApiResult {
    let from = ctx.query("from").map(|t| month_param("from", t)).transpose()?.unwrap_or(Month::FIRST);
    let to = ctx.query("to").map(|t| month_param("to", t)).transpose()?.unwrap_or(Month::LAST);
    let by = match ctx.query("group_by") {
        None | Some("period") => GroupBy::Period,
        Some("channel") => GroupBy::Channel,
        Some("video") => GroupBy::Video,
        Some(_) => return Err(ApiError::validation("group_by", "group_by must be period, channel or video")),
    };
    let me = &ctx.user()?.id;
    let db = ctx.db()?;
    let (groups, estimated) = store::summary(&db, me, from, to, by).await?;
    let ledger = ledger::groups(&db, CREATOR, me, ctx.now, Period::ALL.from, Period::ALL.to).await?;
    let groups: Vec<GroupView> = groups
        .into_iter()
        .map(|g| GroupView {
            period: g.period,
            video_id: (by == GroupBy::Video).then_some(g.video_id),
            channel_id: g.channel_id,
            records: g.records,
            gross_cents: g.gross_cents,
            platform_cents: g.platform_cents,
            creator_cents: g.creator_cents,
            cents: g.cents,
            views: g.views,
            api_calls: g.api_calls,
            matches: g.matches,
        })
        .collect();
    Reply::ok(&serde_json::json!({
        "from": from,
        "to": to,
        "group_by": match by { GroupBy::Period => "period", GroupBy::Channel => "channel", GroupBy::Video => "video" },
        "groups": groups,
        "balances": BalancesView::new(estimated, Balances::from_groups(&ledger)),
    }))
}

/// `POST /revenue/creator/payouts`: a payout of the caller's available creator earnings (net of
/// debts), through the payout engine every program shares.
pub async fn request_payout(ctx: &Ctx) -> ApiResult {
    let me = &ctx.user()?.id;
    idempotency::run(ctx, KeyPolicy::Optional, || crate::payouts::request(ctx, CREATOR, me)).await
}

/// `GET /revenue/creator/payouts`
pub async fn list_payouts(ctx: &Ctx) -> ApiResult {
    crate::payouts::list_of(ctx, CREATOR, &ctx.user()?.id).await
}

/// `GET /revenue/creator/statements/{period}`: the caller's statement of a month (JSON, or CSV of
/// its lines with `Accept: text/csv`). An open month's statement is an estimate.
pub async fn statement(ctx: &Ctx) -> ApiResult {
    let period = month_param("period", ctx.param("period")?)?;
    let data = store::statement(&ctx.db()?, &ctx.user()?.id, period).await?;
    let lines = rules::statement_lines(period, &data.inputs);
    let net = lines.iter().map(|l| l.cents).sum();
    let balance = rules::statement_balance(data.earned_before, data.paid_before, net, data.paid_during);
    if ctx.header("Accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/csv")) {
        return Ok(Reply::text("text/csv; charset=utf-8", &rules::statement_csv(&lines, &balance)));
    }
    Reply::ok(&serde_json::json!({
        "period": period,
        "status": if data.closed { "closed" } else { "open" },
        "closed_at": data.closed_at,
        "lines": lines,
        "totals": {
            "gross_cents": lines.iter().map(|l| l.gross_cents).sum::<i64>(),
            "platform_cents": lines.iter().map(|l| l.platform_cents).sum::<i64>(),
            "creator_cents": lines.iter().map(|l| l.creator_cents).sum::<i64>(),
            "cents": net,
        },
        "balance": balance,
    }))
}
