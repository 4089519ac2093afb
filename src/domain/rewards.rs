//! Gamification rules: activity metrics, the badge ladders, and leaderboard periods.
//!
//! Activity arrives as events (`user, metric, amount, occurred_at`), each counted once. A user's
//! all-time total of a metric decides their badges; the events of each leaderboard period decide
//! their score there. Every category has one metric and one ladder of four tiers.

use super::status_enum;
use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

status_enum!(
    /// What an activity event counts.
    Metric {
        ApiCalls = "api_calls",
        Matches = "matches",
        ContentItems = "content_items",
        RevenueCents = "revenue_cents",
        Referrals = "referrals",
    }
);

status_enum!(
    /// A badge ladder and a family of leaderboards.
    Category { Referrals = "referrals", ApiUsage = "api_usage", Content = "content", Revenue = "revenue" }
);

status_enum!(Tier { Bronze = "bronze", Silver = "silver", Gold = "gold", Platinum = "platinum" });

status_enum!(
    /// The window a leaderboard covers: a UTC day, an ISO week, a calendar month, or all time.
    Window { Daily = "daily", Weekly = "weekly", Monthly = "monthly", AllTime = "all_time" }
);

impl Metric {
    /// The category the metric counts towards. `matches` is recorded per user but ranks and
    /// awards nothing: no ladder measures it.
    pub fn category(self) -> Option<Category> {
        match self {
            Metric::Referrals => Some(Category::Referrals),
            Metric::ApiCalls => Some(Category::ApiUsage),
            Metric::ContentItems => Some(Category::Content),
            Metric::RevenueCents => Some(Category::Revenue),
            Metric::Matches => None,
        }
    }

    /// Whether clients may report it; referrals are counted here, from referral conversions.
    pub fn reportable(self) -> bool {
        self != Metric::Referrals
    }
}

impl Category {
    /// Whether a board shows every member's score. A revenue board shows others' ranks only:
    /// what someone earns is theirs to see (each member sees their own amount).
    pub fn scores_public(self) -> bool {
        self != Category::Revenue
    }

    pub fn metric(self) -> Metric {
        match self {
            Category::Referrals => Metric::Referrals,
            Category::ApiUsage => Metric::ApiCalls,
            Category::Content => Metric::ContentItems,
            Category::Revenue => Metric::RevenueCents,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Badge {
    pub id: &'static str,
    pub name: &'static str,
    pub category: Category,
    pub tier: Tier,
    /// The all-time total of the category's metric that earns the badge.
    pub threshold: i64,
}

const fn badge(id: &'static str, name: &'static str, category: Category, tier: Tier, threshold: i64) -> Badge {
    Badge { id, name, category, tier, threshold }
}

/// Every badge: per category, bronze to platinum with rising thresholds (a test keeps it so).
pub const BADGES: &[Badge] = {
    use Category::*;
    use Tier::*;
    &[
        badge("first_referral", "First Referral", Referrals, Bronze, 1),
        badge("referral_builder", "Referral Builder", Referrals, Silver, 5),
        badge("referral_champion", "Referral Champion", Referrals, Gold, 10),
        badge("referral_legend", "Referral Legend", Referrals, Platinum, 50),
        badge("api_explorer", "API Explorer", ApiUsage, Bronze, 1_000),
        badge("api_builder", "API Builder", ApiUsage, Silver, 10_000),
        badge("api_master", "API Master", ApiUsage, Gold, 100_000),
        badge("api_titan", "API Titan", ApiUsage, Platinum, 1_000_000),
        badge("first_upload", "First Upload", Content, Bronze, 1),
        badge("content_creator", "Content Creator", Content, Silver, 100),
        badge("content_curator", "Content Curator", Content, Gold, 1_000),
        badge("content_archivist", "Content Archivist", Content, Platinum, 10_000),
        badge("first_dollar", "First Dollar", Revenue, Bronze, 100),
        badge("rising_earner", "Rising Earner", Revenue, Silver, 10_000),
        badge("top_earner", "Top Earner", Revenue, Gold, 100_000),
        badge("revenue_legend", "Revenue Legend", Revenue, Platinum, 1_000_000),
    ]
};

pub fn find_badge(id: &str) -> Option<&'static Badge> {
    BADGES.iter().find(|b| b.id == id)
}

/// The badges a total of `value` in `category` has earned.
pub fn earned(category: Category, value: i64) -> impl Iterator<Item = &'static Badge> {
    BADGES.iter().filter(move |b| b.category == category && value >= b.threshold)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub category: Category,
    pub value: i64,
    /// The cheapest badge of the category not held yet (its name), if any.
    pub next_badge: Option<&'static str>,
    pub next_threshold: Option<i64>,
}

/// How far a user with total `value` and badges `held` is along a category's ladder.
pub fn progress(category: Category, value: i64, held: &[&str]) -> Progress {
    let next = BADGES.iter().find(|b| b.category == category && !held.contains(&b.id));
    Progress { category, value, next_badge: next.map(|b| b.name), next_threshold: next.map(|b| b.threshold) }
}

// --- activity events -----------------------------------------------------------------------

/// Events per ingest request.
pub const MAX_EVENTS: usize = 1_000;
/// The largest amount of one event (totals stay exact far beyond any real usage).
pub const MAX_AMOUNT: i64 = 1_000_000_000;
/// How far ahead of our clock an event may be stamped (clock skew of the reporter).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
/// Event ids and user ids: 1–128 visible ASCII characters (`keys::plain_id`).
pub use super::keys::INTERNAL_PREFIX as INTERNAL_ID_PREFIX;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    pub user_id: String,
    pub metric: Metric,
    pub amount: i64,
    pub occurred_at: Timestamp,
}

use super::keys::plain_id as valid_id;

/// Checks one reported event: the error names the offending field and says why. Events older
/// than `max_age_days` are refused, because their ids are forgotten after that: a re-sent event
/// must never count twice.
pub fn check_event(event: &Event, now: Timestamp, max_age_days: i64) -> Result<(), (&'static str, String)> {
    if !valid_id(&event.id) {
        return Err(("id", "must be 1–128 visible ASCII characters".into()));
    }
    if event.id.starts_with(INTERNAL_ID_PREFIX) {
        return Err(("id", format!("must not start with {INTERNAL_ID_PREFIX} (reserved)")));
    }
    if !valid_id(&event.user_id) {
        return Err(("user_id", "must be 1–128 visible ASCII characters".into()));
    }
    if !event.metric.reportable() {
        return Err(("metric", "referrals are counted from referral conversions and cannot be reported".into()));
    }
    if !(1..=MAX_AMOUNT).contains(&event.amount) {
        return Err(("amount", format!("must be between 1 and {MAX_AMOUNT}")));
    }
    if event.occurred_at > now.plus_seconds(MAX_CLOCK_SKEW_SECONDS) {
        return Err(("occurred_at", "must not be in the future".into()));
    }
    if event.occurred_at < now.plus_seconds(-max_age_days.saturating_mul(86_400)) {
        return Err(("occurred_at", format!("must be within the last {max_age_days} days")));
    }
    Ok(())
}

/// The `referrals` event of a converted referral, credited to its referrer when its bonus is
/// granted (so a bonus cancelled by a refund never counts).
pub fn referral_event(referral_id: &str, referrer_id: &str, granted_at: Timestamp) -> Event {
    Event {
        id: format!("{INTERNAL_ID_PREFIX}referral:{referral_id}"),
        user_id: referrer_id.to_owned(),
        metric: Metric::Referrals,
        amount: 1,
        occurred_at: granted_at,
    }
}

// --- leaderboards --------------------------------------------------------------------------

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;

/// The key of the period of `window` holding `at`: `2026-11-25`, `2026-W48`, `2026-11`, `all_time`.
pub fn period_key(window: Window, at: Timestamp) -> String {
    let (year, month, day) = at.civil();
    match window {
        Window::Daily => format!("{year:04}-{month:02}-{day:02}"),
        Window::Weekly => {
            let (year, week) = at.iso_week();
            format!("{year:04}-W{week:02}")
        }
        Window::Monthly => format!("{year:04}-{month:02}"),
        Window::AllTime => "all_time".to_owned(),
    }
}

/// A leaderboard's storage name: `daily:2026-11-25`, …, `all_time:all_time`.
pub fn board(window: Window, at: Timestamp) -> String {
    format!("{}:{}", window.as_str(), period_key(window, at))
}

/// How long the boards of short periods are kept (monthly and all-time boards are kept for good).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Daily boards, today included.
    pub daily_days: i64,
    /// Weekly boards, this week included.
    pub weekly_weeks: i64,
}

/// For each window whose boards expire: the name of its oldest board still kept at `now`. Board
/// names sort by time within a window (`daily:2026-11-25`), so every name of the window below it
/// has expired.
pub fn oldest_kept(now: Timestamp, retention: Retention) -> Vec<String> {
    // The period `n - 1` periods back is the oldest of `n` kept periods (this one included).
    let back = |periods: i64, seconds: i64| now.plus_seconds(-(periods.max(1) - 1).saturating_mul(seconds));
    vec![board(Window::Daily, back(retention.daily_days, 86_400)), board(Window::Weekly, back(retention.weekly_weeks, 7 * 86_400))]
}

/// Whether `board` is older than its window's oldest kept board (see `oldest_kept`).
pub fn expired(board: &str, oldest_kept: &[String]) -> bool {
    let window = |name: &str| name.split(':').next().map(str::to_owned);
    oldest_kept.iter().any(|kept| window(kept) == window(board) && board < kept.as_str())
}

/// One counted event as a leaderboard sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub user_id: String,
    pub amount: i64,
    /// Unix seconds.
    pub occurred_at: i64,
}

/// What a batch of entries adds to one member of one board. `reached_at` is the latest event
/// time: the moment, in event time, the member's new score was complete. Ties in score are
/// ordered by it (earlier first), then by user id, so the order does not depend on the order
/// the events arrived in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub board: String,
    pub user_id: String,
    pub amount: i64,
    pub reached_at: i64,
}

/// The updates of a batch: every entry counts in each of the four periods it falls in, summed
/// per board and member, except on boards already expired (`oldest_kept`): an old event must not
/// bring back a board the cron deleted.
pub fn updates(entries: &[Entry], oldest_kept: &[String]) -> Vec<Update> {
    let mut merged: BTreeMap<(String, &str), (i64, i64)> = BTreeMap::new();
    for entry in entries {
        for &window in Window::ALL {
            let board = board(window, Timestamp::from_unix(entry.occurred_at));
            if expired(&board, oldest_kept) {
                continue;
            }
            let key = (board, entry.user_id.as_str());
            let slot = merged.entry(key).or_insert((0, i64::MIN));
            slot.0 += entry.amount;
            slot.1 = slot.1.max(entry.occurred_at);
        }
    }
    merged
        .into_iter()
        .map(|((board, user_id), (amount, reached_at))| Update { board, user_id: user_id.to_owned(), amount, reached_at })
        .collect()
}

// --- ranks ---------------------------------------------------------------------------------
//
// A member's rank is 1 + the members ahead of them. Counting those one by one over the board's
// index costs as many steps as the rank (100,000 at the bottom of a 100,000-member board), so the
// board also keeps how many members each score bucket holds: the members ahead are the sum over
// the buckets above the member's (a few thousand rows at most), plus the few in the member's own
// bucket with a higher score, plus the ties that got there first.

/// A score's bucket: the score itself below 256, above that its top 8 significant bits and their
/// position, so that a bucket spans under 1/128 of its scores' size. Monotone: a higher score
/// never has a lower bucket. Scores up to 2^53 use fewer than 6,200 buckets.
pub fn bucket(score: i64) -> i64 {
    if score < 256 {
        return score;
    }
    let shift = i64::from(63 - score.leading_zeros()) - 7;
    256 + (shift - 1) * 128 + ((score >> shift) - 128)
}

/// The highest score in `score`'s bucket.
pub fn bucket_ceiling(score: i64) -> i64 {
    if score < 256 {
        return score;
    }
    let shift = 63 - score.leading_zeros() - 7;
    ((score >> shift) << shift) + (1i64 << shift) - 1
}

/// A member's new standing on a board (`reached_at` as in `Update`: the store keeps the later one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberScore {
    pub board: String,
    pub user_id: String,
    pub score: i64,
    pub reached_at: i64,
}

/// How many members a bucket of a board gains (or loses, when negative).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketChange {
    pub board: String,
    pub bucket: i64,
    pub members: i64,
}

/// What a batch's updates do to the boards, given the members' current scores (`None`: not on
/// the board yet): their new scores, and the bucket counts that move.
pub fn apply(updates: Vec<Update>, current: impl Fn(&str, &str) -> Option<i64>) -> (Vec<MemberScore>, Vec<BucketChange>) {
    let mut moves: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut standings = Vec::with_capacity(updates.len());
    for u in updates {
        let old = current(&u.board, &u.user_id);
        let score = old.unwrap_or(0) + u.amount;
        if old.map(bucket) != Some(bucket(score)) {
            if let Some(old) = old {
                *moves.entry((u.board.clone(), bucket(old))).or_default() -= 1;
            }
            *moves.entry((u.board.clone(), bucket(score))).or_default() += 1;
        }
        standings.push(MemberScore { board: u.board, user_id: u.user_id, score, reached_at: u.reached_at });
    }
    let changes = moves
        .into_iter()
        .filter(|(_, members)| *members != 0)
        .map(|((board, bucket), members)| BucketChange { board, bucket, members })
        .collect();
    (standings, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Named;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn only_revenue_boards_hide_other_members_scores() {
        let public: Vec<bool> = Category::ALL.iter().map(|c| c.scores_public()).collect();
        assert_eq!(Category::ALL, &[Category::Referrals, Category::ApiUsage, Category::Content, Category::Revenue]);
        assert_eq!(public, [true, true, true, false]);
    }

    #[test]
    fn the_specified_badges_are_in_the_table() {
        let find = |name: &str| BADGES.iter().find(|b| b.name == name).copied().unwrap();
        assert_eq!((find("First Referral").category, find("First Referral").threshold), (Category::Referrals, 1));
        assert_eq!((find("Referral Champion").category, find("Referral Champion").threshold), (Category::Referrals, 10));
        assert_eq!((find("API Explorer").category, find("API Explorer").threshold), (Category::ApiUsage, 1_000));
        assert_eq!((find("API Master").category, find("API Master").threshold), (Category::ApiUsage, 100_000));
    }

    #[test]
    fn every_category_has_one_badge_per_tier_with_rising_thresholds() {
        for &category in Category::ALL {
            let ladder: Vec<&Badge> = BADGES.iter().filter(|b| b.category == category).collect();
            let tiers: Vec<Tier> = ladder.iter().map(|b| b.tier).collect();
            assert_eq!(tiers, Tier::ALL, "{category:?}");
            assert!(ladder.windows(2).all(|w| w[0].threshold < w[1].threshold), "{category:?}");
            assert!(ladder[0].threshold > 0);
            assert_eq!(category.metric().category(), Some(category));
        }
        let mut ids: Vec<&str> = BADGES.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), BADGES.len(), "badge ids are unique");
        assert!(BADGES.iter().all(|b| valid_id(b.id) && find_badge(b.id) == Some(b)));
    }

    #[test]
    fn thresholds_are_inclusive() {
        let names = |value| earned(Category::ApiUsage, value).map(|b| b.name).collect::<Vec<_>>();
        assert!(names(999).is_empty());
        assert_eq!(names(1_000), ["API Explorer"]);
        assert_eq!(names(100_000), ["API Explorer", "API Builder", "API Master"]);
        assert_eq!(earned(Category::Referrals, 1).map(|b| b.id).collect::<Vec<_>>(), ["first_referral"]);
    }

    #[test]
    fn progress_points_at_the_cheapest_badge_not_held() {
        let p = progress(Category::Referrals, 3, &["first_referral"]);
        assert_eq!((p.next_badge, p.next_threshold), (Some("Referral Builder"), Some(5)));
        // A badge awarded by hand is skipped; with the whole ladder held there is no next badge.
        let p = progress(Category::Referrals, 0, &["first_referral", "referral_builder"]);
        assert_eq!(p.next_badge, Some("Referral Champion"));
        let all: Vec<&str> = BADGES.iter().filter(|b| b.category == Category::Content).map(|b| b.id).collect();
        let p = progress(Category::Content, 20_000, &all);
        assert_eq!((p.next_badge, p.next_threshold, p.value), (None, None, 20_000));
    }

    #[test]
    fn only_matches_has_no_category_and_only_referrals_is_internal() {
        let uncategorised: Vec<Metric> = Metric::ALL.iter().copied().filter(|m| m.category().is_none()).collect();
        assert_eq!(uncategorised, [Metric::Matches]);
        let internal: Vec<Metric> = Metric::ALL.iter().copied().filter(|m| !m.reportable()).collect();
        assert_eq!(internal, [Metric::Referrals]);
        assert_eq!(Window::choices(), "daily, weekly, monthly or all_time");
    }

    #[test]
    fn events_are_checked_field_by_field() {
        let now = at("2026-11-25T12:00:00Z");
        let good = Event { id: "e1".into(), user_id: "u1".into(), metric: Metric::ApiCalls, amount: 5, occurred_at: now };
        assert_eq!(check_event(&good, now, 35), Ok(()));
        let field = |e: Event| check_event(&e, now, 35).unwrap_err().0;
        assert_eq!(field(Event { id: String::new(), ..good.clone() }), "id");
        assert_eq!(field(Event { id: "a b".into(), ..good.clone() }), "id");
        assert_eq!(field(Event { id: "x".repeat(129), ..good.clone() }), "id");
        assert_eq!(field(Event { id: "soundhash:referral:1".into(), ..good.clone() }), "id");
        assert_eq!(field(Event { user_id: "é".into(), ..good.clone() }), "user_id");
        assert_eq!(field(Event { metric: Metric::Referrals, ..good.clone() }), "metric");
        assert_eq!(field(Event { amount: 0, ..good.clone() }), "amount");
        assert_eq!(field(Event { amount: MAX_AMOUNT + 1, ..good.clone() }), "amount");
        assert_eq!(check_event(&Event { amount: MAX_AMOUNT, ..good.clone() }, now, 35), Ok(()));
        assert_eq!(field(Event { occurred_at: now.plus_seconds(301), ..good.clone() }), "occurred_at");
        assert_eq!(check_event(&Event { occurred_at: now.plus_seconds(300), ..good.clone() }, now, 35), Ok(()));
        assert_eq!(field(Event { occurred_at: now.plus_seconds(-35 * 86_400 - 1), ..good.clone() }), "occurred_at");
        assert_eq!(check_event(&Event { occurred_at: now.plus_seconds(-35 * 86_400), ..good }, now, 35), Ok(()));
    }

    #[test]
    fn period_keys_are_utc_and_iso() {
        let keys = |text| Window::ALL.iter().map(|&w| period_key(w, at(text))).collect::<Vec<_>>();
        assert_eq!(keys("2026-11-25T12:00:00Z"), ["2026-11-25", "2026-W48", "2026-11", "all_time"]);
        // UTC, not the reporter's zone: 23:30 at -02:00 is the next day.
        assert_eq!(keys("2026-11-30T23:30:00-02:00"), ["2026-12-01", "2026-W49", "2026-12", "all_time"]);
        // Month ends: the last second of the month and the first of the next.
        assert_eq!(period_key(Window::Monthly, at("2028-02-29T23:59:59Z")), "2028-02");
        assert_eq!(period_key(Window::Monthly, at("2028-03-01T00:00:00Z")), "2028-03");
        assert_eq!(period_key(Window::Daily, at("2026-12-31T23:59:59Z")), "2026-12-31");
        // Week 1 across a year boundary: 2024-12-30 (Monday) is in 2025-W01; 2027-01-03 (Sunday)
        // still in 2026-W53; 2027-01-04 (Monday) starts 2027-W01.
        assert_eq!(period_key(Window::Weekly, at("2024-12-30T00:00:00Z")), "2025-W01");
        assert_eq!(period_key(Window::Weekly, at("2024-12-29T23:59:59Z")), "2024-W52");
        assert_eq!(period_key(Window::Weekly, at("2027-01-01T10:00:00Z")), "2026-W53");
        assert_eq!(period_key(Window::Weekly, at("2027-01-03T23:59:59Z")), "2026-W53");
        assert_eq!(period_key(Window::Weekly, at("2027-01-04T00:00:00Z")), "2027-W01");
        assert_eq!(board(Window::AllTime, at("2027-01-04T00:00:00Z")), "all_time:all_time");
        assert_eq!(board(Window::Weekly, at("2027-01-04T00:00:00Z")), "weekly:2027-W01");
    }

    #[test]
    fn updates_sum_per_board_and_member_with_the_latest_time() {
        let e = |user: &str, amount, time: &str| Entry { user_id: user.into(), amount, occurred_at: at(time).unix() };
        let entries = [
            e("a", 2, "2026-11-30T10:00:00Z"), // Monday of W49, still November
            e("a", 3, "2026-12-01T09:00:00Z"),
            e("b", 1, "2026-11-29T08:00:00Z"), // Sunday of W48
        ];
        let got: Vec<(String, String, i64, String)> = updates(&entries, &[])
            .into_iter()
            .map(|u| (u.board, u.user_id, u.amount, Timestamp::from_unix(u.reached_at).to_rfc3339()))
            .collect();
        let row = |board: &str, user: &str, amount, time: &str| (board.to_owned(), user.to_owned(), amount, time.to_owned());
        assert_eq!(got, [
            row("all_time:all_time", "a", 5, "2026-12-01T09:00:00Z"),
            row("all_time:all_time", "b", 1, "2026-11-29T08:00:00Z"),
            row("daily:2026-11-29", "b", 1, "2026-11-29T08:00:00Z"),
            row("daily:2026-11-30", "a", 2, "2026-11-30T10:00:00Z"),
            row("daily:2026-12-01", "a", 3, "2026-12-01T09:00:00Z"),
            row("monthly:2026-11", "a", 2, "2026-11-30T10:00:00Z"),
            row("monthly:2026-11", "b", 1, "2026-11-29T08:00:00Z"),
            row("monthly:2026-12", "a", 3, "2026-12-01T09:00:00Z"),
            row("weekly:2026-W48", "b", 1, "2026-11-29T08:00:00Z"),
            row("weekly:2026-W49", "a", 5, "2026-12-01T09:00:00Z"),
        ]);
    }

    #[test]
    fn short_boards_expire_after_their_retention() {
        let now = at("2026-11-25T12:00:00Z"); // a Wednesday of 2026-W48
        let kept = oldest_kept(now, Retention { daily_days: 90, weekly_weeks: 104 });
        assert_eq!(kept, ["daily:2026-08-28", "weekly:2024-W49"]);
        // One day: today only; one week: this week only (the Monday before is this week too).
        let kept = oldest_kept(now, Retention { daily_days: 1, weekly_weeks: 1 });
        assert_eq!(kept, ["daily:2026-11-25", "weekly:2026-W48"]);
        let expired = |name: &str| expired(name, &kept);
        assert!(expired("daily:2026-11-24") && !expired("daily:2026-11-25"));
        assert!(expired("weekly:2026-W47") && expired("weekly:2025-W52") && !expired("weekly:2026-W48"));
        assert!(!expired("monthly:1999-01") && !expired("all_time:all_time"));
        // An event of an expired day still counts on its month and all time.
        let entry = Entry { user_id: "u".into(), amount: 1, occurred_at: at("2026-11-20T10:00:00Z").unix() };
        let boards: Vec<String> = updates(&[entry], &kept).into_iter().map(|u| u.board).collect();
        assert_eq!(boards, ["all_time:all_time", "monthly:2026-11"]);
    }

    #[test]
    fn buckets_are_exact_below_256_and_narrow_above() {
        assert_eq!((bucket(0), bucket(1), bucket(255)), (0, 1, 255));
        assert_eq!((bucket(256), bucket(257), bucket(258), bucket(511), bucket(512)), (256, 256, 257, 383, 384));
        assert_eq!((bucket_ceiling(7), bucket_ceiling(256), bucket_ceiling(512), bucket_ceiling(1_000_000)), (7, 257, 515, 1_003_519));
        assert!(bucket(1 << 53) < 6_200);
    }

    #[test]
    fn applying_moves_members_between_buckets() {
        let u = |user: &str, amount| Update { board: "b".into(), user_id: user.into(), amount, reached_at: 9 };
        let current = |_: &str, user: &str| match user {
            "old" => Some(300), // bucket 278
            "same" => Some(10),
            _ => None,
        };
        let (standings, changes) = apply(vec![u("old", 300), u("new", 5), u("same", 0)], current);
        let scores: Vec<(&str, i64)> = standings.iter().map(|s| (s.user_id.as_str(), s.score)).collect();
        assert_eq!(scores, [("old", 600), ("new", 5), ("same", 10)]);
        let moved: Vec<(i64, i64)> = changes.iter().map(|c| (c.bucket, c.members)).collect();
        assert_eq!(moved, [(5, 1), (278, -1), (bucket(600), 1)]);
    }

    proptest::proptest! {
        #[test]
        fn buckets_are_monotone_and_ceilings_close_them(a in 0i64..1 << 53, b in 0i64..1 << 53) {
            let (low, high) = (a.min(b), a.max(b));
            proptest::prop_assert!(bucket(low) <= bucket(high));
            let ceiling = bucket_ceiling(a);
            proptest::prop_assert!(ceiling >= a && bucket(ceiling) == bucket(a) && bucket(ceiling + 1) == bucket(a) + 1);
            // A bucket spans less than 1/128 of its scores.
            proptest::prop_assert!(a < 256 || (ceiling - a) * 128 < a);
        }

        /// Bucket counts kept by `apply` over any sequence of batches equal a recount.
        #[test]
        fn bucket_counts_match_a_recount(batches in proptest::collection::vec(
            proptest::collection::vec((0usize..6, 1i64..400), 1..8), 1..12)
        ) {
            let mut scores: BTreeMap<String, i64> = BTreeMap::new();
            let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
            for batch in batches {
                let mut merged: BTreeMap<String, i64> = BTreeMap::new();
                for (user, amount) in batch {
                    *merged.entry(format!("u{user}")).or_default() += amount;
                }
                let updates = merged.into_iter().map(|(user_id, amount)| Update { board: "b".into(), user_id, amount, reached_at: 0 }).collect();
                let (standings, changes) = apply(updates, |_, user| scores.get(user).copied());
                for s in standings {
                    scores.insert(s.user_id, s.score);
                }
                for c in changes {
                    *counts.entry(c.bucket).or_default() += c.members;
                }
            }
            let mut recount: BTreeMap<i64, i64> = BTreeMap::new();
            for score in scores.values() {
                *recount.entry(bucket(*score)).or_default() += 1;
            }
            counts.retain(|_, n| *n != 0);
            proptest::prop_assert_eq!(counts, recount);
        }

        /// However a batch is split, the boards end with the same totals and times.
        #[test]
        fn updates_of_parts_add_up_to_the_whole(
            raw in proptest::collection::vec((0usize..4, 1i64..1_000, 1_700_000_000i64..1_800_000_000), 0..40),
            cut in 0usize..40,
        ) {
            let entries: Vec<Entry> = raw.iter().map(|&(u, amount, t)| Entry { user_id: format!("u{u}"), amount, occurred_at: t }).collect();
            let cut = cut.min(entries.len());
            let mut combined: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
            for part in [&entries[..cut], &entries[cut..]] {
                for u in updates(part, &[]) {
                    let slot = combined.entry((u.board, u.user_id)).or_insert((0, i64::MIN));
                    slot.0 += u.amount;
                    slot.1 = slot.1.max(u.reached_at);
                }
            }
            let whole: BTreeMap<(String, String), (i64, i64)> =
                updates(&entries, &[]).into_iter().map(|u| ((u.board, u.user_id), (u.amount, u.reached_at))).collect();
            proptest::prop_assert_eq!(combined, whole);
            let all_time: i64 = updates(&entries, &[]).iter().filter(|u| u.board == "all_time:all_time").map(|u| u.amount).sum();
            proptest::prop_assert_eq!(all_time, entries.iter().map(|e| e.amount).sum::<i64>());
        }
    }
}
