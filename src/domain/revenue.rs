//! Creator revenue sharing: which reported records are valid, the creator's terms in force for a
//! month, the split of a record's gross between the platform and its creators (collaborators
//! by largest remainder), the allocation of a pool by usage, and when a period may close.
//!
//! Every split goes through `money::split` (platform share rounded half-up, symmetric about
//! zero) and every division through `money::allocate` (largest remainder), so the parts of a
//! record always sum to its gross, to the cent.

use super::earnings::{available_at, EarningKind};
use super::keys::{client_key, plain_id, INTERNAL_PREFIX};
use super::money::{allocate, split, FULL_BPS, MAX_CENTS};
use super::rewards::{Event, Metric};
use super::time::{Month, Timestamp};
use super::{status_enum, Rejection};
use serde::{Deserialize, Serialize};

/// Records per `POST /admin/revenue`.
pub const MAX_RECORDS: usize = 1_000;
/// The largest usage count of one record (views, API calls, matches).
pub const MAX_COUNT: i64 = 1_000_000_000_000;
/// Owners of one channel.
pub const MAX_OWNERS: usize = 20;
/// Channels and videos one pool is allocated over (each becomes a record; their JSON, bound as one
/// D1 value, stays well within its 2 MB).
pub const MAX_POOL_GROUPS: usize = 2_000;

status_enum!(Basis { Matches = "matches", Views = "views", ApiCalls = "api_calls" });

/// A revenue record as reported (and as a pool's allocation is recorded).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub id: String,
    pub creator_id: String,
    pub channel_id: String,
    #[serde(default)]
    pub video_id: Option<String>,
    pub period: Month,
    pub gross_cents: i64,
    pub currency: String,
    pub views: i64,
    pub api_calls: i64,
    pub matches: i64,
}

/// Checks one reported record (the field and why, on failure). `now` is the current month: usage
/// of a month that has not begun cannot have been measured.
pub fn check_record(r: &Record, now: Month, currency: &str) -> Result<(), (&'static str, String)> {
    if client_key(&r.id).is_none() {
        return Err(("id", "must be 1–255 visible ASCII characters".into()));
    }
    if r.id.starts_with(INTERNAL_PREFIX) {
        return Err(("id", format!("must not start with {INTERNAL_PREFIX} (reserved)")));
    }
    for (field, id) in [("creator_id", Some(&r.creator_id)), ("channel_id", Some(&r.channel_id)), ("video_id", r.video_id.as_ref())] {
        if id.is_some_and(|id| !plain_id(id)) {
            return Err((field, "must be 1–128 visible ASCII characters".into()));
        }
    }
    if r.period > now {
        return Err(("period", "must not be a month that has not begun".into()));
    }
    if !(-MAX_CENTS..=MAX_CENTS).contains(&r.gross_cents) {
        return Err(("gross_cents", format!("must be between -{MAX_CENTS} and {MAX_CENTS}")));
    }
    if !r.currency.eq_ignore_ascii_case(currency) {
        return Err(("currency", format!("must be {currency}, the billing currency")));
    }
    for (field, count) in [("views", r.views), ("api_calls", r.api_calls), ("matches", r.matches)] {
        if !(0..=MAX_COUNT).contains(&count) {
            return Err((field, format!("must be between 0 and {MAX_COUNT}")));
        }
    }
    Ok(())
}

/// Whether two reports of one id say the same (a re-send, skipped) or not (a conflict). The
/// currency is compared as the service stores it, in lower case.
pub fn same_content(a: &Record, b: &Record) -> bool {
    let lower = |r: &Record| Record { currency: r.currency.to_ascii_lowercase(), ..r.clone() };
    lower(a) == lower(b)
}

/// A creator's share in basis points, 0–10000.
pub fn share_bps(value: i64) -> Result<u32, &'static str> {
    u32::try_from(value).ok().filter(|&v| v <= FULL_BPS).ok_or("must be between 0 and 10000")
}

/// A creator's share from a month on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub effective_from: Month,
    pub share_bps: u32,
}

/// The creator's share in force in `month`: the terms with the latest start on or before it,
/// else the default.
pub fn share_in(month: Month, terms: &[Terms], default_bps: u32) -> u32 {
    terms.iter().filter(|t| t.effective_from <= month).max_by_key(|t| t.effective_from).map_or(default_bps, |t| t.share_bps)
}

/// New terms starting in a month the creator already has records of (or before it).
pub const TERMS_IN_USE: Rejection = Rejection::conflict(
    "terms_in_use",
    "The creator has records of this month or later, split under the terms in force; new terms can start only after the latest month with records.",
);

/// New terms may start only after the latest month the creator has records of: records are split
/// when they arrive, and a change never rewrites a month already split.
pub fn check_terms(effective_from: Month, latest_record: Option<Month>) -> Result<(), Rejection> {
    match latest_record {
        Some(latest) if latest >= effective_from => Err(TERMS_IN_USE),
        _ => Ok(()),
    }
}

/// One owner of a channel and their part of its creator share.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub creator_id: String,
    pub share_bps: u32,
}

/// A channel's owners: none (the reporting creator keeps the whole creator part), or 1–20
/// distinct creators whose shares (1–10000 each) sum to 10000. Returned in creator id order,
/// the order the largest-remainder division breaks ties by. Errors name the field as the body
/// (a JSON array) holds it: `[1].share_bps`, or `body` for the list as a whole.
pub fn check_owners(mut owners: Vec<Owner>) -> Result<Vec<Owner>, (String, String)> {
    if owners.len() > MAX_OWNERS {
        return Err(("body".into(), format!("at most {MAX_OWNERS} owners")));
    }
    for (i, o) in owners.iter().enumerate() {
        if !plain_id(&o.creator_id) {
            return Err((format!("[{i}].creator_id"), "must be 1–128 visible ASCII characters".into()));
        }
        if !(1..=FULL_BPS).contains(&o.share_bps) {
            return Err((format!("[{i}].share_bps"), "must be between 1 and 10000".into()));
        }
    }
    owners.sort_by(|a, b| a.creator_id.cmp(&b.creator_id));
    if owners.windows(2).any(|w| w[0].creator_id == w[1].creator_id) {
        return Err(("body".into(), "each creator may be named once".into()));
    }
    let total: u32 = owners.iter().map(|o| o.share_bps).sum();
    if !owners.is_empty() && total != FULL_BPS {
        return Err(("body".into(), format!("shares must sum to 10000, not {total}")));
    }
    Ok(owners)
}

/// One creator's part of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub creator_id: String,
    /// Their part of the creator share (10000 when they hold it alone).
    pub share_bps: u32,
    pub cents: i64,
}

/// A record split: the platform's part, the creators' part and how that divides among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSplit {
    pub share_bps: u32,
    pub platform_cents: i64,
    pub creator_cents: i64,
    pub lines: Vec<Line>,
}

/// The split of a record of `gross` cents under the creator share `share_bps`: the platform
/// keeps `round_half_up(gross × (10000 − share) / 10000)` (symmetric about zero), the creators
/// the rest, divided among the channel's `owners` by largest remainder (in the order given), or
/// all to `creator_id` when the channel has none.
pub fn split_record(gross: i64, share_bps: u32, creator_id: &str, owners: &[Owner]) -> RecordSplit {
    let share_bps = share_bps.min(FULL_BPS);
    let parts = split(gross, FULL_BPS - share_bps);
    let weights: Vec<u64> = owners.iter().map(|o| u64::from(o.share_bps)).collect();
    let lines = match allocate(parts.other, &weights) {
        Some(cents) => owners
            .iter()
            .zip(cents)
            .map(|(o, cents)| Line { creator_id: o.creator_id.clone(), share_bps: o.share_bps, cents })
            .collect(),
        None => vec![Line { creator_id: creator_id.to_owned(), share_bps: FULL_BPS, cents: parts.other }],
    };
    RecordSplit { share_bps, platform_cents: parts.platform, creator_cents: parts.other, lines }
}

/// A pool: an amount allocated across every channel and video by their share of a usage metric.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: String,
    pub period: Month,
    pub gross_cents: i64,
    pub basis: Basis,
}

pub fn check_pool(p: &Pool, now: Month) -> Result<(), (&'static str, String)> {
    if client_key(&p.id).is_none() || p.id.len() > 128 {
        return Err(("id", "must be 1–128 visible ASCII characters".into()));
    }
    if p.period > now {
        return Err(("period", "must not be a month that has not begun".into()));
    }
    if !(1..=MAX_CENTS).contains(&p.gross_cents) {
        return Err(("gross_cents", format!("must be between 1 and {MAX_CENTS}")));
    }
    Ok(())
}

/// One channel or video's usage in a month, by the pool's basis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub creator_id: String,
    pub channel_id: String,
    pub video_id: Option<String>,
    pub weight: u64,
}

/// The pool's allocations, as records (ids `soundhash:pool:{pool}:{n}`, no usage of their own, so
/// a second pool of the month is allocated by the reported usage alone). `usage` comes in a fixed
/// order (creator, channel, video), by which ties are broken. Allocations of 0 cents are left out.
pub fn allocate_pool(pool: &Pool, usage: &[Usage], currency: &str) -> Result<Vec<Record>, Rejection> {
    if usage.len() > MAX_POOL_GROUPS {
        return Err(Rejection::unprocessable("pool_too_wide", "A pool can be allocated over at most 2000 channels and videos."));
    }
    let weights: Vec<u64> = usage.iter().map(|u| u.weight).collect();
    let cents = allocate(pool.gross_cents, &weights)
        .ok_or(Rejection::conflict("no_usage", "No usage of this basis is reported for the period: there is nothing to allocate by."))?;
    Ok(usage
        .iter()
        .zip(cents)
        .enumerate()
        .filter(|(_, (_, cents))| *cents != 0)
        .map(|(n, (u, cents))| Record {
            id: format!("{INTERNAL_PREFIX}pool:{}:{n}", pool.id),
            creator_id: u.creator_id.clone(),
            channel_id: u.channel_id.clone(),
            video_id: u.video_id.clone(),
            period: pool.period,
            gross_cents: cents,
            currency: currency.to_owned(),
            views: 0,
            api_calls: 0,
            matches: 0,
        })
        .collect())
}

/// The statement a record lands in: its own month while that is open, else (a late record) the
/// month after the last closed one, as an adjustment that keeps its usage month.
pub fn statement_period(usage: Month, last_closed: Option<Month>) -> Month {
    match last_closed {
        Some(last) if usage <= last => last.next().unwrap_or(last),
        _ => usage,
    }
}

/// Whether `period` may close now: it has ended, it is after the last closed one, and no earlier
/// statement with records is still open (`earliest_open`), so statements close in order.
pub fn check_close(period: Month, now: Month, last_closed: Option<Month>, earliest_open: Option<Month>) -> Result<(), Rejection> {
    if last_closed.is_some_and(|last| period <= last) {
        return Err(Rejection::conflict("period_closed", "This period is already closed."));
    }
    if period >= now {
        return Err(Rejection::conflict("period_not_ended", "A period can close only once it has ended."));
    }
    if earliest_open.is_some_and(|open| open < period) {
        return Err(Rejection::conflict("earlier_period_open", "An earlier period with records is still open: close it first."));
    }
    Ok(())
}

/// The earnings row a closed statement gives a creator, from its net (the sum of their lines in
/// it): a positive net is held for `hold_days` like a commission; a negative one is a debt,
/// netted at once against what is available (and paid down by later statements). Nothing for 0.
pub fn statement_earning(net: i64, closed_at: Timestamp, hold_days: i64) -> Option<(EarningKind, Timestamp)> {
    match net {
        0 => None,
        n if n > 0 => Some((EarningKind::Commission, available_at(closed_at, hold_days))),
        _ => Some((EarningKind::Adjustment, closed_at)),
    }
}

/// The source of a statement's earnings row (one per creator and statement).
pub fn statement_source(period: Month) -> String {
    format!("statement:{period}")
}

/// The `revenue_cents` activity of a closed statement: the creator's positive net, counted once
/// (the id names the statement and the creator), so revenue badges and the revenue ladder follow.
pub fn revenue_event(period: Month, creator_id: &str, net: i64, closed_at: Timestamp) -> Option<Event> {
    (net > 0).then(|| Event {
        id: format!("{INTERNAL_PREFIX}revenue:{period}:{creator_id}"),
        user_id: creator_id.to_owned(),
        metric: Metric::RevenueCents,
        amount: net,
        occurred_at: closed_at,
    })
}

// --- statements ---------------------------------------------------------------------------

status_enum!(LineKind { Revenue = "revenue", Adjustment = "adjustment", Clawback = "clawback" });

/// One of a creator's lines in a statement, with its record (as stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementInput {
    pub record_id: String,
    pub channel_id: String,
    pub video_id: Option<String>,
    pub period: Month,
    pub gross_cents: i64,
    pub platform_cents: i64,
    pub creator_cents: i64,
    pub cents: i64,
    pub views: i64,
    pub api_calls: i64,
    pub matches: i64,
}

/// A line of a statement: the revenue of one channel and video in the statement's month, or one
/// record of its own: a chargeback (negative gross: a clawback, of whichever month) or a late
/// record of an earlier month (an adjustment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub kind: LineKind,
    pub channel_id: String,
    pub video_id: Option<String>,
    /// The usage month.
    pub period: Month,
    /// The record of an adjustment or clawback line.
    pub record_id: Option<String>,
    pub records: i64,
    pub gross_cents: i64,
    pub platform_cents: i64,
    pub creator_cents: i64,
    /// The creator's own cents.
    pub cents: i64,
    pub views: i64,
    pub api_calls: i64,
    pub matches: i64,
}

impl LineKind {
    /// A record's kind in the statement of `period`.
    pub fn of(input: &StatementInput, period: Month) -> LineKind {
        if input.gross_cents < 0 {
            LineKind::Clawback
        } else if input.period < period {
            LineKind::Adjustment
        } else {
            LineKind::Revenue
        }
    }
}

/// The lines of a creator's statement of `period`: revenue summed per channel and video,
/// clawbacks and adjustments one per record; revenue first, then adjustments, then clawbacks,
/// each in channel, video, month and record order. The lines' cents sum to the inputs' cents.
pub fn statement_lines(period: Month, inputs: &[StatementInput]) -> Vec<StatementLine> {
    let mut lines: Vec<StatementLine> = Vec::new();
    let mut sorted: Vec<&StatementInput> = inputs.iter().collect();
    let key = |i: &StatementInput| (LineKind::of(i, period) as u8, i.channel_id.clone(), i.video_id.clone(), i.period, i.record_id.clone());
    sorted.sort_by_key(|i| key(i));
    for input in sorted {
        let kind = LineKind::of(input, period);
        if kind == LineKind::Revenue {
            if let Some(last) = lines.last_mut().filter(|l| l.kind == kind && l.channel_id == input.channel_id && l.video_id == input.video_id) {
                last.records += 1;
                last.gross_cents += input.gross_cents;
                last.platform_cents += input.platform_cents;
                last.creator_cents += input.creator_cents;
                last.cents += input.cents;
                last.views += input.views;
                last.api_calls += input.api_calls;
                last.matches += input.matches;
                continue;
            }
        }
        lines.push(StatementLine {
            kind,
            channel_id: input.channel_id.clone(),
            video_id: input.video_id.clone(),
            period: input.period,
            record_id: (kind != LineKind::Revenue).then(|| input.record_id.clone()),
            records: 1,
            gross_cents: input.gross_cents,
            platform_cents: input.platform_cents,
            creator_cents: input.creator_cents,
            cents: input.cents,
            views: input.views,
            api_calls: input.api_calls,
            matches: input.matches,
        });
    }
    lines
}

/// A statement's balance: what was owed to the creator when the previous statement closed
/// (earnings of earlier statements less payouts requested by then), this statement's net, the
/// payouts requested since, and what is owed after it. Failed payouts count as never made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StatementBalance {
    pub opening_balance_cents: i64,
    pub net_cents: i64,
    pub payouts_cents: i64,
    pub closing_balance_cents: i64,
}

pub fn statement_balance(earned_before: i64, paid_before: i64, net: i64, paid_during: i64) -> StatementBalance {
    let opening = earned_before - paid_before;
    StatementBalance { opening_balance_cents: opening, net_cents: net, payouts_cents: paid_during, closing_balance_cents: opening + net - paid_during }
}

/// A closed statement's creator nets are at most this much either way: the earnings row of a
/// larger one could not be stored exactly (a correction record brings it back in range).
pub fn check_net(net: i64) -> Result<(), Rejection> {
    if net.unsigned_abs() <= MAX_CENTS.unsigned_abs() {
        Ok(())
    } else {
        Err(Rejection::conflict("statement_out_of_range", "A creator's net in this statement is beyond 10^12 cents; correct its records first."))
    }
}

/// The statement as CSV (RFC 4180, a header row): its lines, then a `total` row and the balance
/// (`opening_balance`, `payouts`, `closing_balance`, in the `cents` column). A text field holding
/// a comma, a quote or a line break is quoted, and one a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@`, a tab or carriage return first) is prefixed with `'` (OWASP's CSV
/// injection rule).
pub fn statement_csv(lines: &[StatementLine], balance: &StatementBalance) -> String {
    fn text(field: &str) -> String {
        let guarded = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{field}") } else { field.to_owned() };
        if guarded.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", guarded.replace('"', "\"\""))
        } else {
            guarded
        }
    }
    let mut csv = String::from("kind,channel_id,video_id,period,record_id,records,gross_cents,platform_cents,creator_cents,cents,views,api_calls,matches\r\n");
    for l in lines {
        let row = [
            l.kind.as_str().to_owned(),
            text(&l.channel_id),
            text(l.video_id.as_deref().unwrap_or("")),
            l.period.to_string(),
            text(l.record_id.as_deref().unwrap_or("")),
            l.records.to_string(),
            l.gross_cents.to_string(),
            l.platform_cents.to_string(),
            l.creator_cents.to_string(),
            l.cents.to_string(),
            l.views.to_string(),
            l.api_calls.to_string(),
            l.matches.to_string(),
        ];
        csv += &row.join(",");
        csv += "\r\n";
    }
    let sum = |f: fn(&StatementLine) -> i64| lines.iter().map(f).sum::<i64>().to_string();
    let total = [
        "total".to_owned(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        sum(|l| l.records),
        sum(|l| l.gross_cents),
        sum(|l| l.platform_cents),
        sum(|l| l.creator_cents),
        sum(|l| l.cents),
        sum(|l| l.views),
        sum(|l| l.api_calls),
        sum(|l| l.matches),
    ];
    csv += &total.join(",");
    csv += "\r\n";
    for (kind, cents) in [
        ("opening_balance", balance.opening_balance_cents),
        ("payouts", balance.payouts_cents),
        ("closing_balance", balance.closing_balance_cents),
    ] {
        csv += &format!("{kind},,,,,,,,,{cents},,,\r\n");
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn month(text: &str) -> Month {
        Month::parse(text).unwrap()
    }

    fn record() -> Record {
        Record {
            id: "rev-1".into(),
            creator_id: "creator-1".into(),
            channel_id: "UC123".into(),
            video_id: Some("vid-9".into()),
            period: month("2026-11"),
            gross_cents: 10_000,
            currency: "USD".into(),
            views: 10,
            api_calls: 20,
            matches: 30,
        }
    }

    #[test]
    fn records_are_checked_field_by_field() {
        let now = month("2026-12");
        assert_eq!(check_record(&record(), now, "usd"), Ok(()));
        assert_eq!(check_record(&Record { period: now, gross_cents: -MAX_CENTS, video_id: None, ..record() }, now, "usd"), Ok(()));
        let field = |r: Record| check_record(&r, now, "usd").unwrap_err().0;
        assert_eq!(field(Record { id: "".into(), ..record() }), "id");
        assert_eq!(field(Record { id: "soundhash:pool:x:1".into(), ..record() }), "id");
        assert_eq!(field(Record { creator_id: "a b".into(), ..record() }), "creator_id");
        assert_eq!(field(Record { channel_id: "c".repeat(129), ..record() }), "channel_id");
        assert_eq!(field(Record { video_id: Some("".into()), ..record() }), "video_id");
        assert_eq!(field(Record { period: month("2027-01"), ..record() }), "period");
        assert_eq!(field(Record { gross_cents: MAX_CENTS + 1, ..record() }), "gross_cents");
        assert_eq!(field(Record { gross_cents: -MAX_CENTS - 1, ..record() }), "gross_cents");
        assert_eq!(field(Record { currency: "eur".into(), ..record() }), "currency");
        assert_eq!(field(Record { views: -1, ..record() }), "views");
        assert_eq!(field(Record { api_calls: MAX_COUNT + 1, ..record() }), "api_calls");
        assert_eq!(field(Record { matches: -5, ..record() }), "matches");
    }

    #[test]
    fn a_resend_is_the_same_content_in_any_case_of_currency() {
        assert!(same_content(&record(), &Record { currency: "usd".into(), ..record() }));
        assert!(!same_content(&record(), &Record { gross_cents: 10_001, ..record() }));
        assert!(!same_content(&record(), &Record { video_id: None, ..record() }));
    }

    #[test]
    fn the_terms_in_force_are_the_latest_started() {
        let terms = [
            Terms { effective_from: month("2027-03"), share_bps: 8_000 },
            Terms { effective_from: month("2026-06"), share_bps: 7_500 },
        ];
        assert_eq!(share_in(month("2026-05"), &terms, 7_000), 7_000);
        assert_eq!(share_in(month("2026-06"), &terms, 7_000), 7_500);
        assert_eq!(share_in(month("2027-02"), &terms, 7_000), 7_500);
        assert_eq!(share_in(month("2027-03"), &terms, 7_000), 8_000);
        assert_eq!(share_in(month("2030-01"), &[], 6_000), 6_000);
        assert!(check_terms(month("2027-01"), Some(month("2026-12"))).is_ok());
        assert!(check_terms(month("2027-01"), None).is_ok());
        assert_eq!(check_terms(month("2026-12"), Some(month("2026-12"))).unwrap_err().code, "terms_in_use");
        assert_eq!(share_bps(10_000), Ok(10_000));
        assert!(share_bps(10_001).is_err() && share_bps(-1).is_err());
    }

    #[test]
    fn owners_sum_to_the_whole_and_are_named_once() {
        let o = |id: &str, bps| Owner { creator_id: id.into(), share_bps: bps };
        assert_eq!(check_owners(vec![o("b", 4_000), o("a", 6_000)]).unwrap(), vec![o("a", 6_000), o("b", 4_000)]);
        assert_eq!(check_owners(vec![]).unwrap(), vec![]);
        assert_eq!(check_owners(vec![o("a", 5_000), o("b", 4_999)]).unwrap_err().0, "body");
        assert_eq!(check_owners(vec![o("a", 5_000), o("a", 5_000)]).unwrap_err().0, "body");
        assert_eq!(check_owners(vec![o("a", 0), o("b", 10_000)]).unwrap_err().0, "[0].share_bps");
        assert_eq!(check_owners(vec![o("", 10_000)]).unwrap_err().0, "[0].creator_id");
        assert_eq!(check_owners((0..21).map(|i| o(&format!("c{i}"), 1)).collect()).unwrap_err().0, "body");
    }

    #[test]
    fn the_design_examples() {
        let s = split_record(10_000, 7_000, "c", &[]);
        assert_eq!((s.platform_cents, s.creator_cents), (3_000, 7_000));
        assert_eq!(s.lines, vec![Line { creator_id: "c".into(), share_bps: 10_000, cents: 7_000 }]);
        // 999 × 30 % = 299.7 → 300 to the platform.
        let s = split_record(999, 7_000, "c", &[]);
        assert_eq!((s.platform_cents, s.creator_cents), (300, 699));
        // A chargeback is the mirror image.
        let s = split_record(-999, 7_000, "c", &[]);
        assert_eq!((s.platform_cents, s.creator_cents), (-300, -699));
        // 0.5 cent rounds up to the platform; −0.5 cent down.
        assert_eq!(split_record(5, 9_000, "c", &[]).platform_cents, 1);
        assert_eq!(split_record(-5, 9_000, "c", &[]).platform_cents, -1);
        // Collaborators: 7000 among 1/3 each, the extra cent to the first in order.
        let owners = [Owner { creator_id: "a".into(), share_bps: 3_334 }, Owner { creator_id: "b".into(), share_bps: 3_333 }, Owner { creator_id: "c".into(), share_bps: 3_333 }];
        let s = split_record(10_001, 7_000, "x", &owners);
        assert_eq!(s.creator_cents, 7_001);
        let cents: Vec<i64> = s.lines.iter().map(|l| l.cents).collect();
        assert_eq!(cents, vec![2_334, 2_334, 2_333]);
    }

    #[test]
    fn pools_allocate_by_usage_exactly() {
        let pool = Pool { id: "api-2026-11".into(), period: month("2026-11"), gross_cents: 1_000_003, basis: Basis::Matches };
        let usage: Vec<Usage> = (0..7)
            .map(|i| Usage { creator_id: format!("c{i}"), channel_id: format!("ch{i}"), video_id: None, weight: 10 })
            .collect();
        let records = allocate_pool(&pool, &usage, "usd").unwrap();
        assert_eq!(records.iter().map(|r| r.gross_cents).sum::<i64>(), 1_000_003);
        assert_eq!(records.iter().map(|r| r.gross_cents).collect::<Vec<_>>(), [142_858, 142_858, 142_858, 142_858, 142_857, 142_857, 142_857]);
        assert_eq!(records[0].id, "soundhash:pool:api-2026-11:0");
        assert!(records.iter().all(|r| r.matches == 0 && r.period == pool.period));
        // A channel with no usage gets nothing, and no record.
        let mut sparse = usage.clone();
        sparse[0].weight = 0;
        assert_eq!(allocate_pool(&pool, &sparse, "usd").unwrap().len(), 6);
        let none: Vec<Usage> = usage.iter().map(|u| Usage { weight: 0, ..u.clone() }).collect();
        assert_eq!(allocate_pool(&pool, &none, "usd").unwrap_err().code, "no_usage");
        assert_eq!(allocate_pool(&pool, &[], "usd").unwrap_err().code, "no_usage");
    }

    #[test]
    fn late_records_land_in_the_next_open_statement() {
        let (oct, nov, dec) = (month("2026-10"), month("2026-11"), month("2026-12"));
        assert_eq!(statement_period(nov, None), nov);
        assert_eq!(statement_period(nov, Some(oct)), nov);
        assert_eq!(statement_period(oct, Some(oct)), nov);
        assert_eq!(statement_period(month("2026-01"), Some(nov)), dec);
    }

    #[test]
    fn periods_close_once_in_order_after_they_end() {
        let (oct, nov, dec) = (month("2026-10"), month("2026-11"), month("2026-12"));
        assert_eq!(check_close(nov, dec, Some(oct), Some(nov)), Ok(()));
        assert_eq!(check_close(nov, dec, None, None), Ok(()));
        assert_eq!(check_close(dec, dec, Some(nov), None).unwrap_err().code, "period_not_ended");
        assert_eq!(check_close(oct, dec, Some(oct), None).unwrap_err().code, "period_closed");
        assert_eq!(check_close(nov, dec, None, Some(oct)).unwrap_err().code, "earlier_period_open");
    }

    #[test]
    fn a_closed_statement_earns_its_net() {
        let t = Timestamp::from_unix(1_800_000_000);
        assert_eq!(statement_earning(7_000, t, 30), Some((EarningKind::Commission, t.plus_seconds(30 * 86_400))));
        assert_eq!(statement_earning(-699, t, 30), Some((EarningKind::Adjustment, t)), "a debt counts at once");
        assert_eq!(statement_earning(0, t, 30), None);
        assert_eq!(statement_source(month("2026-11")), "statement:2026-11");
        let event = revenue_event(month("2026-11"), "c1", 7_000, t).unwrap();
        assert_eq!((event.id.as_str(), event.amount, event.metric), ("soundhash:revenue:2026-11:c1", 7_000, Metric::RevenueCents));
        assert_eq!(revenue_event(month("2026-11"), "c1", -5, t), None);
    }

    fn input(id: &str, channel: &str, video: Option<&str>, period: &str, gross: i64) -> StatementInput {
        let s = split_record(gross, 7_000, "c", &[]);
        StatementInput {
            record_id: id.into(),
            channel_id: channel.into(),
            video_id: video.map(Into::into),
            period: month(period),
            gross_cents: gross,
            platform_cents: s.platform_cents,
            creator_cents: s.creator_cents,
            cents: s.creator_cents,
            views: 1,
            api_calls: 2,
            matches: 3,
        }
    }

    #[test]
    fn statements_sum_revenue_per_channel_and_video_and_show_the_rest_per_record() {
        let nov = month("2026-11");
        let inputs = [
            input("r3", "chB", None, "2026-11", 100),
            input("r1", "chA", Some("v1"), "2026-11", 1_000),
            input("r2", "chA", Some("v1"), "2026-11", 2_000),
            input("late", "chA", None, "2026-09", 500),
            input("back", "chA", Some("v1"), "2026-11", -1_000),
            input("r4", "chA", Some("v2"), "2026-11", 10),
        ];
        let lines = statement_lines(nov, &inputs);
        let shape: Vec<(LineKind, &str, Option<&str>, i64, i64)> =
            lines.iter().map(|l| (l.kind, l.channel_id.as_str(), l.video_id.as_deref(), l.records, l.gross_cents)).collect();
        assert_eq!(
            shape,
            vec![
                (LineKind::Revenue, "chA", Some("v1"), 2, 3_000),
                (LineKind::Revenue, "chA", Some("v2"), 1, 10),
                (LineKind::Revenue, "chB", None, 1, 100),
                (LineKind::Adjustment, "chA", None, 1, 500),
                (LineKind::Clawback, "chA", Some("v1"), 1, -1_000),
            ]
        );
        // A chargeback of an earlier month is a clawback too.
        let late_back = input("lb", "chA", None, "2026-09", -200);
        assert_eq!(LineKind::of(&late_back, nov), LineKind::Clawback);
        assert_eq!(lines[3].record_id.as_deref(), Some("late"));
        assert_eq!(lines[3].period, month("2026-09"), "an adjustment keeps its usage month");
        assert_eq!(lines[0].matches, 6);
        assert_eq!(lines.iter().map(|l| l.cents).sum::<i64>(), inputs.iter().map(|i| i.cents).sum::<i64>());
        assert!(statement_lines(nov, &[]).is_empty());
    }

    #[test]
    fn statement_balances_carry_over() {
        let b = statement_balance(10_000, 6_000, 2_500, 4_000);
        assert_eq!(b, StatementBalance { opening_balance_cents: 4_000, net_cents: 2_500, payouts_cents: 4_000, closing_balance_cents: 2_500 });
        // A clawback after a payout leaves a debt, carried as a negative balance.
        assert_eq!(statement_balance(7_000, 7_000, -699, 0).closing_balance_cents, -699);
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut line = statement_lines(month("2026-11"), &[input("r1", "=HYPERLINK(\"x\")", Some("a,b"), "2026-11", 100)]).remove(0);
        let balance = statement_balance(500, 100, 70, 0);
        let csv = statement_csv(std::slice::from_ref(&line), &balance);
        let rows: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(rows[0], "kind,channel_id,video_id,period,record_id,records,gross_cents,platform_cents,creator_cents,cents,views,api_calls,matches");
        assert_eq!(rows[1], "revenue,\"'=HYPERLINK(\"\"x\"\")\",\"a,b\",2026-11,,1,100,30,70,70,1,2,3");
        assert_eq!(rows[2], "total,,,,,1,100,30,70,70,1,2,3");
        assert_eq!(rows[3..], ["opening_balance,,,,,,,,,400,,,", "payouts,,,,,,,,,0,,,", "closing_balance,,,,,,,,,470,,,", ""]);
        line.gross_cents = -5;
        line.channel_id = "-1".into();
        let csv = statement_csv(&[line], &balance);
        assert!(csv.contains("\r\nrevenue,'-1,\"a,b\",2026-11,,1,-5,"), "numbers stay numbers: {csv}");
    }

    #[test]
    fn nets_beyond_what_is_stored_exactly_are_refused() {
        assert!(check_net(MAX_CENTS).is_ok() && check_net(-MAX_CENTS).is_ok());
        assert_eq!(check_net(MAX_CENTS + 1).unwrap_err().code, "statement_out_of_range");
        assert_eq!(check_net(i64::MIN).unwrap_err().code, "statement_out_of_range");
    }

    fn owners_strategy() -> impl Strategy<Value = Vec<Owner>> {
        proptest::collection::vec(1..1_000u32, 1..8).prop_map(|raw| {
            // Scale arbitrary weights to shares summing to 10000 (the last takes the rest).
            let total: u32 = raw.iter().sum();
            let mut shares: Vec<u32> = raw.iter().map(|w| (w * 10_000 / total).max(1)).collect();
            let rest = 10_000i64 - i64::from(shares.iter().sum::<u32>());
            let last = shares.len() - 1;
            shares[last] = (i64::from(shares[last]) + rest).max(1) as u32;
            shares.iter().enumerate().map(|(i, &s)| Owner { creator_id: format!("c{i}"), share_bps: s }).collect()
        })
    }

    proptest! {
        /// Platform + creators = gross, always; no part negative when the gross is not; a
        /// chargeback mirrors its payment.
        #[test]
        fn parts_sum_to_the_whole(gross in -MAX_CENTS..=MAX_CENTS, share in 0..=FULL_BPS, owners in owners_strategy()) {
            let owners = match check_owners(owners) { Ok(o) => o, Err(_) => return Ok(()) };
            let s = split_record(gross, share, "x", &owners);
            prop_assert_eq!(s.platform_cents + s.creator_cents, gross);
            prop_assert_eq!(s.lines.iter().map(|l| l.cents).sum::<i64>(), s.creator_cents);
            if gross >= 0 {
                prop_assert!(s.platform_cents >= 0 && s.lines.iter().all(|l| l.cents >= 0));
            }
            let mirror = split_record(-gross, share, "x", &owners);
            prop_assert_eq!(mirror.platform_cents, -s.platform_cents);
            prop_assert_eq!(mirror.lines.iter().map(|l| -l.cents).collect::<Vec<_>>(), s.lines.iter().map(|l| l.cents).collect::<Vec<_>>());
        }

        /// Splitting in one step or per collaborator gives the same totals: the lines of a
        /// record equal the creator part alone, and over many records each owner's total is
        /// within a cent per record of their share of the creators' total.
        #[test]
        fn one_step_and_per_collaborator_agree(grosses in proptest::collection::vec(-1_000_000i64..1_000_000, 1..30), share in 0..=FULL_BPS, owners in owners_strategy()) {
            let owners = match check_owners(owners) { Ok(o) => o, Err(_) => return Ok(()) };
            let mut creators_total = 0i64;
            let mut per_owner = vec![0i64; owners.len()];
            for &gross in &grosses {
                let alone = split_record(gross, share, "x", &[]);
                let shared = split_record(gross, share, "x", &owners);
                prop_assert_eq!(alone.platform_cents, shared.platform_cents);
                prop_assert_eq!(alone.creator_cents, shared.creator_cents);
                creators_total += shared.creator_cents;
                for (total, line) in per_owner.iter_mut().zip(&shared.lines) {
                    *total += line.cents;
                }
            }
            prop_assert_eq!(per_owner.iter().sum::<i64>(), creators_total);
            for (total, o) in per_owner.iter().zip(&owners) {
                let exact = i128::from(creators_total) * i128::from(o.share_bps);
                let diff = (i128::from(*total) * 10_000 - exact).abs();
                prop_assert!(diff <= 10_000 * grosses.len() as i128, "{} vs {}/10000", total, exact);
            }
        }
    }
}
