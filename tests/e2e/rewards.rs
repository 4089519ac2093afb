//! Gamification: activity ingest → badges and leaderboards of all four periods, each event id
//! counted once (also re-sent and concurrently), thresholds crossed concurrently award once,
//! ranks and ties, past periods, and referral conversions feeding the referrals ladder.

use crate::referrals::{referred, referrer};
use crate::support::{instant, iso, now, parallel, shared, unique, wait_for, Server, API};
use crate::trials;
use chrono::Datelike;
use serde_json::{json, Value};
use std::time::Duration;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(rewards:
        ingest_awards_badges_and_updates_every_period,
        a_re_sent_event_counts_once,
        concurrent_events_crossing_a_threshold_award_once,
        ranks_order_by_score_then_who_got_there_first,
        past_periods_are_read_with_at,
        bad_input_is_refused_whole_and_changes_nothing,
        a_thousand_events_fit_in_one_request,
        manual_awards_are_idempotent_and_never_doubled,
        referral_conversions_feed_the_referrals_ladder,
        the_cron_publishes_unconfirmed_batches_once_and_forgets_old_events,
        revenue_boards_show_others_ranks_but_not_amounts,
        periods_not_begun_or_ending_before_they_start_are_empty_not_errors,
        the_leaderboards_are_updated_after_the_response,
    )
}

fn periods_not_begun_or_ending_before_they_start_are_empty_not_errors() {
    let s = shared();
    let (user, token) = s.user();
    let r = report(s, &[event(&unique("evt"), &user, "content_items", 3, now())]);
    assert_eq!(r["accepted"], 1, "{r}");
    let board = |query: &str| {
        let r = s.get(&format!("{API}/rewards/leaderboard?category=content&{query}")).token(&token).send();
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.json()
    };
    let now_board = crate::support::wait_for(std::time::Duration::from_secs(10), || {
        let b = board("period=all_time");
        (b["me"]["score"] == 3).then_some(b)
    });
    assert!(now_board.is_some(), "the event reached the all-time board");
    let future = board("period=daily&at=2999-01-01");
    assert_eq!((future["period_key"].clone(), future["entries"].clone(), future["me"].clone()), (json!("2999-01-01"), json!([]), Value::Null));
    // A dashboard period that ends before it starts holds nothing, also within the hour its
    // clicks are counted by (a click now; the period from just after now to just before).
    let (_, affiliate_token, _, code) = s.active_affiliate();
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    assert_eq!(s.get(&format!("/a/{code}")).header("User-Agent", browser).send().status, 302);
    let dashboard = |query: &str| {
        let r = s.get(&format!("{API}/affiliates/dashboard{query}")).token(&affiliate_token).send();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let counted = crate::support::wait_for(std::time::Duration::from_secs(10), || (dashboard("")["clicks"] == 1).then_some(()));
    assert!(counted.is_some(), "the click is counted");
    let backwards = dashboard(&format!("?from={}&to={}", iso(now() + 30), iso(now() - 30)));
    assert_eq!((backwards["clicks"].clone(), backwards["conversions"].clone()), (json!(0), json!(0)), "{backwards}");
}

fn event(id: &str, user: &str, metric: &str, amount: i64, at: i64) -> Value {
    json!({"id": id, "user_id": user, "metric": metric, "amount": amount, "occurred_at": iso(at)})
}

fn report(s: &Server, events: &[Value]) -> Value {
    let r = s.post(&format!("{API}/admin/activity")).token(s.admin()).json(&json!({ "events": events })).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn badges(s: &Server, token: &str) -> Value {
    let r = s.get(&format!("{API}/rewards/badges")).token(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn badge_ids(s: &Server, token: &str) -> Vec<String> {
    badges(s, token)["badges"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect()
}

fn board(s: &Server, token: &str, query: &str) -> Value {
    let r = s.get(&format!("{API}/rewards/leaderboard?{query}")).token(token).send();
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()
}

/// The board once it is `ready` (the leaderboards are updated after the ingest's response), or
/// as it is after 10 s: the caller's assertions then tell what is missing.
fn board_when(s: &Server, token: &str, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for(Duration::from_secs(10), || Some(board(s, token, query)).filter(|b| ready(b))).unwrap_or_else(|| board(s, token, query))
}

fn scored(n: i64) -> impl Fn(&Value) -> bool {
    move |b| b["me"]["score"] == n
}

/// The four period keys of a Unix time, computed with chrono (independently of the worker).
fn keys(t: i64) -> [String; 4] {
    let week = chrono::DateTime::from_timestamp(t, 0).unwrap().iso_week();
    let day = iso(t);
    [day[..10].to_owned(), format!("{}-W{:02}", week.year(), week.week()), day[..7].to_owned(), "all_time".to_owned()]
}

const PERIODS: [&str; 4] = ["daily", "weekly", "monthly", "all_time"];

fn ingest_awards_badges_and_updates_every_period() {
    let s = shared();
    let (user, token) = s.user();
    let t = now();
    let result = report(s, &[
        event(&unique("ev"), &user, "api_calls", 600, t),
        event(&unique("ev"), &user, "api_calls", 400, t),
        event(&unique("ev"), &user, "matches", 7, t),
        event(&unique("ev"), &user, "content_items", 1, t),
    ]);
    assert_eq!(result, json!({"accepted": 4, "duplicates": 0, "badges_awarded": 2}));
    let mine = badges(s, &token);
    let names: Vec<(&str, &str, &str)> = mine["badges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["category"].as_str().unwrap(), b["tier"].as_str().unwrap()))
        .collect();
    assert_eq!(names.len(), 2, "{mine}");
    assert!(names.contains(&("API Explorer", "api_usage", "bronze")) && names.contains(&("First Upload", "content", "bronze")), "{mine}");
    let progress = |category: &str| mine["progress"].as_array().unwrap().iter().find(|p| p["category"] == category).cloned().unwrap();
    assert_eq!(progress("api_usage"), json!({"category": "api_usage", "value": 1000, "next_badge": "API Builder", "next_threshold": 10000}));
    assert_eq!(progress("referrals"), json!({"category": "referrals", "value": 0, "next_badge": "First Referral", "next_threshold": 1}));
    assert_eq!(mine["metrics"]["matches"], 7);
    for (period, key) in PERIODS.iter().zip(keys(t)) {
        let b = board_when(s, &token, &format!("category=api_usage&period={period}&limit=100"), scored(1000));
        assert_eq!((b["category"].as_str(), b["period"].as_str(), b["period_key"].as_str()), (Some("api_usage"), Some(*period), Some(key.as_str())));
        assert_eq!(b["me"]["score"], 1000, "{period}: {b}");
        // The board is shared with other tests: the caller is listed exactly when in the top 100.
        let rank = b["me"]["rank"].as_i64().unwrap();
        let listed = b["entries"].as_array().unwrap().iter().find(|e| e["user_id"] == user.as_str());
        match listed {
            Some(entry) => assert_eq!((entry["rank"].as_i64(), entry["score"].as_i64()), (Some(rank), Some(1000))),
            None => assert!(rank > 100, "rank {rank} but not listed: {b}"),
        }
        let c = board_when(s, &token, &format!("category=content&period={period}"), scored(1));
        assert_eq!(c["me"]["score"], 1, "{period}: {c}");
    }
}

fn a_re_sent_event_counts_once() {
    let s = shared();
    let (user, token) = s.user();
    let t = now();
    let (a, b) = (unique("ev"), unique("ev"));
    let batch = [event(&a, &user, "revenue_cents", 150, t), event(&b, &user, "revenue_cents", 50, t), event(&a, &user, "revenue_cents", 150, t)];
    assert_eq!(report(s, &batch), json!({"accepted": 2, "duplicates": 1, "badges_awarded": 1}));
    assert_eq!(report(s, &batch), json!({"accepted": 0, "duplicates": 3, "badges_awarded": 0}));
    // A re-sent id counts once even with another amount.
    assert_eq!(report(s, &[event(&b, &user, "revenue_cents", 999, t)])["accepted"], 0);
    assert_eq!(badges(s, &token)["metrics"]["revenue_cents"], 200);
    assert_eq!(badge_ids(s, &token), ["first_dollar"]);
    for period in PERIODS {
        assert_eq!(board_when(s, &token, &format!("category=revenue&period={period}"), scored(200))["me"]["score"], 200, "{period}");
    }
}

fn concurrent_events_crossing_a_threshold_award_once() {
    let s = shared();
    let (user, token) = s.user();
    let t = now();
    // 20 requests at once, each carrying its own event and its neighbour's: every id is sent
    // twice, concurrently. 20 × 50 = 1,000 calls cross API Explorer exactly once.
    let ids: Vec<String> = (0..20).map(|_| unique("ev")).collect();
    let results = parallel(20, |i| {
        let pair = [event(&ids[i], &user, "api_calls", 50, t), event(&ids[(i + 1) % 20], &user, "api_calls", 50, t)];
        report(s, &pair)
    });
    let sum = |field: &str| results.iter().map(|r| r[field].as_i64().unwrap()).sum::<i64>();
    assert_eq!((sum("accepted"), sum("duplicates"), sum("badges_awarded")), (20, 20, 1), "{results:?}");
    assert_eq!(badge_ids(s, &token), ["api_explorer"]);
    assert_eq!(badges(s, &token)["metrics"]["api_calls"], 1000);
    for period in PERIODS {
        assert_eq!(board_when(s, &token, &format!("category=api_usage&period={period}"), scored(1000))["me"]["score"], 1000, "{period}");
    }
}

fn ranks_order_by_score_then_who_got_there_first() {
    let s = shared();
    // A day of its own (no other test writes content on it): 20 days ago at noon UTC.
    let day = (now() / 86_400 - 20) * 86_400 + 12 * 3_600;
    let users: Vec<(String, String)> = (0..5).map(|_| s.user()).collect();
    let id = |i: usize| users[i].0.as_str();
    let ev = |user: usize, amount, at| event(&unique("ev"), id(user), "content_items", amount, at);
    report(s, &[
        ev(0, 30, day),
        ev(0, 20, day + 100), // 50, complete at +100
        ev(1, 50, day + 50),  // 50, complete at +50: ahead of user 0
        ev(2, 70, day + 500), // 70: first
        ev(3, 10, day),
        ev(4, 50, day + 50), // ties user 1 on score and time: user id decides
    ]);
    let date = &iso(day)[..10];
    let (first_tie, second_tie) = if id(1) < id(4) { (id(1), id(4)) } else { (id(4), id(1)) };
    let expected: Vec<Value> = [(id(2), 70), (first_tie, 50), (second_tie, 50), (id(0), 50), (id(3), 10)]
        .iter()
        .zip(1..)
        .map(|(&(user, score), rank)| json!({"rank": rank, "user_id": user, "score": score}))
        .collect();
    let b = board_when(s, &users[0].1, &format!("category=content&period=daily&at={date}"), |b| b["entries"] == json!(expected));
    assert_eq!(b["period_key"], date);
    assert_eq!(b["entries"], json!(expected), "{b}");
    assert_eq!(b["me"], json!({"rank": 4, "score": 50}));
    let top2 = board(s, &users[3].1, &format!("category=content&period=daily&at={date}&limit=2"));
    assert_eq!(top2["entries"], json!(expected[..2]));
    assert_eq!(top2["me"], json!({"rank": 5, "score": 10}), "the caller's rank beyond the limit");
    // Someone with no score that day.
    let (_, outsider) = s.user();
    assert_eq!(board(s, &outsider, &format!("category=content&period=daily&at={date}"))["me"], Value::Null);

    // Large scores, where ranks are counted through score buckets: 300 and 301 share a bucket
    // (scores above 256 are bucketed by their top 8 bits), 1,000 and 5,000 sit in buckets above.
    let users: Vec<(String, String)> = (0..5).map(|_| s.user()).collect();
    let id = |i: usize| users[i].0.as_str();
    let ev = |user: usize, amount, at| event(&unique("ev"), id(user), "revenue_cents", amount, at);
    report(s, &[ev(0, 1_000, day), ev(1, 301, day + 10), ev(2, 300, day + 30), ev(3, 300, day + 20), ev(4, 4_999, day), ev(4, 1, day + 1)]);
    let check = |expected: &[(usize, i64)]| {
        // (Other members' revenue is not shown: only user 0's own.)
        let listed: Vec<Value> = expected
            .iter()
            .zip(1..)
            .map(|(&(u, score), rank)| json!({"rank": rank, "user_id": id(u), "score": if u == 0 { json!(score) } else { Value::Null }}))
            .collect();
        let b = board_when(s, &users[0].1, &format!("category=revenue&period=daily&at={date}"), |b| b["entries"] == json!(listed));
        assert_eq!(b["entries"], json!(listed), "{b}");
        for (rank, &(u, score)) in (1..).zip(expected) {
            let mine = board(s, &users[u].1, &format!("category=revenue&period=daily&at={date}&limit=1"))["me"].clone();
            assert_eq!(mine, json!({"rank": rank, "score": score}), "user {u}");
        }
    };
    check(&[(4, 5_000), (0, 1_000), (1, 301), (3, 300), (2, 300)]);
    // A later batch moves user 2 from 300 to 600: to a higher bucket, past users 1 and 3.
    report(s, &[ev(2, 300, day + 40)]);
    check(&[(4, 5_000), (0, 1_000), (2, 600), (1, 301), (3, 300)]);
}

fn past_periods_are_read_with_at() {
    let s = shared();
    let (user, token) = s.user();
    let then = now() - 10 * 86_400;
    report(s, &[event(&unique("ev"), &user, "matches", 1, then), event(&unique("ev"), &user, "content_items", 3, then)]);
    let [day, week, month, _] = keys(then);
    let date = &iso(then)[..10];
    for (period, key) in [("daily", &day), ("weekly", &week), ("monthly", &month)] {
        let b = board_when(s, &token, &format!("category=content&period={period}&at={date}"), scored(3));
        assert_eq!((b["period_key"].as_str(), b["me"]["score"].as_i64()), (Some(key.as_str()), Some(3)), "{period}");
        // An instant within the period names it too.
        let b = board(s, &token, &format!("category=content&period={period}&at={}", iso(then)));
        assert_eq!(b["period_key"].as_str(), Some(key.as_str()));
    }
    assert_eq!(board(s, &token, "category=content&period=daily")["me"], Value::Null, "not today");
    assert_eq!(board(s, &token, "category=content&period=all_time")["me"]["score"], 3);
}

fn bad_input_is_refused_whole_and_changes_nothing() {
    let s = shared();
    let (user, token) = s.user();
    let t = now();
    let post = |body: Value| s.post(&format!("{API}/admin/activity")).token(s.admin()).json(&body).send();
    let good = event(&unique("ev"), &user, "api_calls", 5, t);
    let refused = |bad: Value, field: &str| {
        let r = post(json!({"events": [good.clone(), bad]}));
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{}", r.body);
    };
    refused(event(&unique("ev"), &user, "referrals", 1, t), "events[1].metric");
    refused(event(&unique("ev"), &user, "followers", 1, t), "events[1].metric");
    refused(event(&unique("ev"), &user, "api_calls", 0, t), "events[1].amount");
    refused(event(&unique("ev"), &user, "api_calls", 1, t + 3_600), "events[1].occurred_at");
    refused(event(&unique("ev"), &user, "api_calls", 1, t - 40 * 86_400), "events[1].occurred_at");
    refused(event("soundhash:referral:x", &user, "api_calls", 1, t), "events[1].id");
    refused(event("", &user, "api_calls", 1, t), "events[1].id");
    refused(json!({"id": unique("ev"), "user_id": user, "metric": "api_calls", "amount": 1, "occurred_at": iso(t), "extra": 1}), "events[1].extra");
    post(json!({"events": []})).expect_error(422, "validation_failed");
    post(json!({})).expect_error(422, "validation_failed");
    let (_, not_admin) = s.user();
    s.post(&format!("{API}/admin/activity")).token(&not_admin).json(&json!({"events": [good.clone()]})).send().expect_error(403, "forbidden");
    assert_eq!(badges(s, &token)["metrics"]["api_calls"], 0, "nothing was counted");
    assert_eq!(report(s, &[good])["accepted"], 1, "the good event was not used up by the refused requests");
    // Leaderboard queries.
    for (query, field) in [
        ("period=daily", "category"),
        ("category=fame&period=daily", "category"),
        ("category=content", "period"),
        ("category=content&period=yearly", "period"),
        ("category=content&period=daily&limit=0", "limit"),
        ("category=content&period=daily&limit=101", "limit"),
        ("category=content&period=daily&limit=ten", "limit"),
        ("category=content&period=daily&at=yesterday", "at"),
        ("category=content&period=daily&at=2026-02-30", "at"),
    ] {
        let r = s.get(&format!("{API}/rewards/leaderboard?{query}")).token(&token).send();
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{query}");
    }
    s.get(&format!("{API}/rewards/leaderboard?category=content&period=daily")).send().expect_error(401, "unauthorized");
}

fn a_thousand_events_fit_in_one_request() {
    let s = shared();
    let t = now();
    let users: Vec<String> = (0..100).map(|_| unique("member")).collect();
    let events: Vec<Value> = (0..1_000).map(|i| event(&unique("bulk-event"), &users[i % 100], "content_items", 1, t)).collect();
    let size = json!({ "events": events }).to_string().len();
    assert!(size > 64 * 1024, "the body ({size} bytes) is above the default limit");
    assert_eq!(report(s, &events), json!({"accepted": 1000, "duplicates": 0, "badges_awarded": 100}));
    let token = s.token(&users[7]);
    let b = board_when(s, &token, "category=content&period=all_time", scored(10));
    assert_eq!(b["me"]["score"], 10);
    let mut too_many = events.clone();
    too_many.push(event(&unique("ev"), &users[0], "content_items", 1, t));
    let r = s.post(&format!("{API}/admin/activity")).token(s.admin()).json(&json!({ "events": too_many })).send();
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "events");
}

fn manual_awards_are_idempotent_and_never_doubled() {
    let s = shared();
    let (user, token) = s.user();
    let award = |badge: &str| {
        s.post(&format!("{API}/admin/rewards/badges")).token(s.admin()).json(&json!({"user_id": user, "badge_id": badge})).send()
    };
    let first = award("api_explorer");
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.json()["badge"]["name"], "API Explorer");
    let again = award("api_explorer");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), first.json(), "the first award stands");
    award("api_wizard").expect_error(422, "validation_failed");
    // Crossing the threshold later does not award it a second time.
    let r = report(s, &[event(&unique("ev"), &user, "api_calls", 2_000, now())]);
    assert_eq!(r["badges_awarded"], 0);
    let mine = badges(s, &token);
    assert_eq!(mine["badges"], json!([first.json()["badge"]]));
    let progress = mine["progress"].as_array().unwrap().iter().find(|p| p["category"] == "api_usage").cloned().unwrap();
    assert_eq!(progress["next_badge"], "API Builder");
    let (_, other) = s.user();
    s.post(&format!("{API}/admin/rewards/badges")).token(&other).json(&json!({"user_id": user, "badge_id": "api_master"})).send().expect_error(403, "forbidden");
}

fn referral_conversions_feed_the_referrals_ladder() {
    let s = instant(); // bonuses granted at once: the ladder counts a referral at the grant
    let (referrer_id, token, code) = referrer(s);
    let converted: Vec<String> = (0..2).map(|_| referred(s, &code).0).collect();
    for user in &converted {
        s.convert(user, 2_000);
    }
    // A second payment of the same user converts nothing more.
    s.convert(&converted[0], 2_000);
    let mine = badges(s, &token);
    assert_eq!(mine["metrics"]["referrals"], 2, "{mine}");
    assert_eq!(badge_ids(s, &token), ["first_referral"]);
    for period in PERIODS {
        assert_eq!(board_when(s, &token, &format!("category=referrals&period={period}"), scored(2))["me"]["score"], 2, "{period}");
    }
    assert_eq!(mine["progress"][0], json!({"category": "referrals", "value": 2, "next_badge": "Referral Builder", "next_threshold": 5}));
    let _ = referrer_id;
}

fn the_cron_publishes_unconfirmed_batches_once_and_forgets_old_events() {
    // An instance of its own: the test writes its D1 from outside.
    let s = Server::start(&[]);
    let (user, token) = s.user();
    let t = now();
    let score = |s: &Server| board(s, &token, "category=api_usage&period=all_time")["me"]["score"].as_i64();
    report(&s, &[event(&unique("ev"), &user, "api_calls", 5, t)]);
    assert_eq!(board_when(&s, &token, "category=api_usage&period=all_time", scored(5))["me"]["score"], 5);
    let then = t - 10 * 86_400;
    report(&s, &[event(&unique("ev"), &user, "content_items", 4, then)]);
    let query = |period: &str| format!("category=content&period={period}&at={}", &iso(then)[..10]);
    let old = |s: &Server, period: &str| board(s, &token, &query(period));
    let weekly = board_when(&s, &token, &query("weekly"), scored(4));
    assert_eq!((old(&s, "daily")["me"]["score"].as_i64(), weekly["me"]["score"].as_i64()), (Some(4), Some(4)));
    // Both batches confirmed (the leaderboards are called after the responses): nothing in flight
    // while the test writes D1 from outside.
    let pending = || s.d1("SELECT COUNT(*) AS n FROM activity_batches WHERE state = 'pending'")[0]["n"].as_i64();
    assert_eq!(wait_for(Duration::from_secs(10), || pending().filter(|&n| n == 0)), Some(0));
    // As if the confirmation had been lost: the batch is sent again and must count once. As if a
    // request had died between its D1 transaction and its leaderboard call: a batch the
    // leaderboards never saw. And a batch pending for over a week, and an old settled one.
    s.d1(&format!(
        "UPDATE activity_batches SET state = 'pending', settled_at = NULL, created_at = created_at - 120;
         INSERT INTO activity_events (id, batch_id, user_id, metric, amount, occurred_at, received_at)
           VALUES ('lost-1', 'lost-batch', '{user}', 'api_calls', 7, {t}, {t});
         INSERT INTO activity_batches (id, created_at) VALUES ('lost-batch', {old});
         INSERT INTO activity_events (id, batch_id, user_id, metric, amount, occurred_at, received_at)
           VALUES ('ancient-1', 'ancient-batch', '{user}', 'matches', 1, {ancient}, {ancient});
         INSERT INTO activity_batches (id, created_at, state, settled_at) VALUES ('ancient-batch', {ancient}, 'published', {ancient});
         INSERT INTO activity_events (id, batch_id, user_id, metric, amount, occurred_at, received_at)
           VALUES ('stale-1', 'stale-batch', '{user}', 'api_calls', 1000, {stale}, {stale});
         INSERT INTO activity_batches (id, created_at) VALUES ('stale-batch', {stale});",
        old = t - 120,
        ancient = t - 40 * 86_400,
        stale = t - 8 * 86_400,
    ));
    // Now daily and weekly boards are kept for the current day and week only.
    let s = s.restart(&[("DAILY_BOARD_RETENTION_DAYS", "1"), ("WEEKLY_BOARD_RETENTION_WEEKS", "1")]);
    s.run_cron("* * * * *");
    assert_eq!(score(&s), Some(12), "the re-sent batch counted once, the lost one now");
    s.run_cron("* * * * *");
    assert_eq!(score(&s), Some(12), "nothing counts twice on later runs");
    // A batch pending for over a week is given up (and logged), not re-sent forever.
    let left = s.d1(
        "SELECT (SELECT COUNT(*) FROM activity_batches WHERE state = 'pending') AS pending,
                (SELECT state FROM activity_batches WHERE id = 'stale-batch') AS stale,
                (SELECT COUNT(*) FROM activity_events WHERE id = 'ancient-1') AS ancient,
                (SELECT COUNT(*) FROM activity_events WHERE id = 'lost-1') AS lost",
    );
    assert_eq!(left, [json!({"pending": 0, "stale": "abandoned", "ancient": 0, "lost": 1})]);
    assert!(s.log_lines().iter().any(|l| l["abandoned_activity_batches"] == 1), "the abandoned batch is logged as an error");
    // The boards of ten days ago are past their retention: deleted from the object, and shown
    // empty; longer periods keep them, and a new event of that day counts there and in all time,
    // but brings no board back.
    let [day, week, month, _] = keys(then);
    let stored = |board: &str| {
        // (Rows of every category's object: only the content event happened at `then`.)
        let sql = format!("SELECT COUNT(*) FROM scores WHERE board = '{board}' AND reached_at = {then}");
        s.object_rows("Leaderboard", &sql).iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>()
    };
    assert_eq!((stored(&format!("daily:{day}")), stored(&format!("weekly:{week}"))), (0, 0), "deleted");
    assert_eq!(stored(&format!("monthly:{month}")), 1, "the month is kept");
    for period in ["daily", "weekly"] {
        let b = old(&s, period);
        assert_eq!((b["me"].clone(), b["entries"].clone()), (Value::Null, json!([])), "{period}: {b}");
    }
    report(&s, &[event(&unique("ev"), &user, "content_items", 1, then)]);
    assert_eq!(board_when(&s, &token, &query("monthly"), scored(5))["me"]["score"], 5);
    assert_eq!(stored(&format!("daily:{day}")), 0, "no board comes back");
    assert_eq!(board(&s, &token, "category=content&period=all_time")["me"]["score"], 5);
    assert_eq!(board(&s, &token, "category=api_usage&period=daily")["me"]["score"], 12, "today's board is kept");
}

fn revenue_boards_show_others_ranks_but_not_amounts() {
    let s = shared();
    // A day of its own: 23 days ago at noon UTC.
    let day = (now() / 86_400 - 23) * 86_400 + 12 * 3_600;
    let users: Vec<(String, String)> = (0..3).map(|_| s.user()).collect();
    let id = |i: usize| users[i].0.as_str();
    report(s, &[
        event(&unique("ev"), id(0), "revenue_cents", 9_000, day),
        event(&unique("ev"), id(1), "revenue_cents", 5_000, day),
        event(&unique("ev"), id(2), "revenue_cents", 1_000, day),
        event(&unique("ev"), id(0), "api_calls", 30, day),
        event(&unique("ev"), id(1), "api_calls", 20, day),
    ]);
    let date = &iso(day)[..10];
    let b = board_when(s, &users[1].1, &format!("category=revenue&period=daily&at={date}"), |b| b["entries"].as_array().is_some_and(|e| e.len() == 3));
    assert_eq!(
        b["entries"],
        json!([
            {"rank": 1, "user_id": id(0), "score": null},
            {"rank": 2, "user_id": id(1), "score": 5_000},
            {"rank": 3, "user_id": id(2), "score": null},
        ]),
        "{b}"
    );
    assert_eq!(b["me"], json!({"rank": 2, "score": 5_000}));
    // A member below the limit still sees their own amount; an administrator sees no more.
    assert_eq!(board(s, &users[2].1, &format!("category=revenue&period=daily&at={date}&limit=1"))["me"], json!({"rank": 3, "score": 1_000}));
    let by_admin = board(s, s.admin(), &format!("category=revenue&period=daily&at={date}"));
    assert!(by_admin["entries"].as_array().unwrap().iter().all(|e| e["score"].is_null()), "{by_admin}");
    // Other categories show every score.
    let a = board_when(s, &users[1].1, &format!("category=api_usage&period=daily&at={date}"), |a| a["entries"].as_array().is_some_and(|e| e.len() == 2));
    assert_eq!(a["entries"], json!([{"rank": 1, "user_id": id(0), "score": 30}, {"rank": 2, "user_id": id(1), "score": 20}]), "{a}");
}

fn the_leaderboards_are_updated_after_the_response() {
    // An instance of its own: the test changes a Durable Object's SQLite file from outside.
    let own = Server::start(&[]);
    let s = &own;
    let (user, token) = s.user();
    let score = || board(s, &token, "category=api_usage&period=all_time")["me"]["score"].as_i64();
    report(s, &[event(&unique("ev"), &user, "api_calls", 5, now())]);
    assert_eq!(board_when(s, &token, "category=api_usage&period=all_time", scored(5))["me"]["score"], 5);
    // The api_usage leaderboard now fails every write.
    s.object_exec("Leaderboard", "CREATE TRIGGER injected_failure BEFORE INSERT ON scores BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    let r = s.post(&format!("{API}/admin/activity")).token(s.admin()).json(&json!({"events": [event(&unique("ev"), &user, "api_calls", 7, now())]})).send();
    assert_eq!((r.status, r.json()["accepted"].clone()), (200, json!(1)), "{}", r.body);
    let request_id = r.header("x-request-id").unwrap().to_owned();
    // The request was answered before the leaderboard was called: its failure is logged after
    // the request's own line.
    assert!(!s.wait_log(|l| l["activity_batch"].is_string() && l["retry"] == "cron").is_empty(), "the failed publish is logged");
    let lines = s.log_lines();
    let answered = lines.iter().position(|l| l["request_id"] == request_id.as_str() && l["status"] == 200);
    let failed = lines.iter().position(|l| l["activity_batch"].is_string());
    assert!(answered.is_some() && answered < failed, "answered at line {answered:?}, leaderboard failed at line {failed:?}");
    assert_eq!(score(), Some(5));
    // The cron re-sends the batch once the object works again (the batch is old enough to be
    // left to it), and it counts once.
    s.object_exec("Leaderboard", "DROP TRIGGER injected_failure;");
    s.d1("UPDATE activity_batches SET created_at = created_at - 60 WHERE state = 'pending'");
    s.run_cron("* * * * *");
    assert_eq!(score(), Some(12));
    s.run_cron("* * * * *");
    assert_eq!(score(), Some(12));
}
