//! Faults: Durable Object writes that fail (injected by the test-only var `FAULT_OBJECT_WRITES`,
//! src/objects/mod.rs) delay click counts and leaderboard updates, and never lose or double them.

use crate::affiliates::{click, dashboard};
use crate::support::{iso, now, parallel, unique, wait_for, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::time::Duration;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(faults: failing_object_writes_delay_clicks_and_leaderboards_but_never_lose_or_double_them)
}

/// Each object's first writes: two that fail and roll back, one that is applied but answered as
/// failed (a click batch's three attempts: parked although it counted), three more rolled back;
/// then all succeed.
const PLAN: &str = "before,before,after,before,before,before";

/// Steps of the plan taken by the objects of `class` (each keeps its own count).
fn injected(s: &Server, class: &str) -> Vec<i64> {
    s.object_rows(class, "SELECT COUNT(*) FROM injected_faults").iter().map(|r| r[0].as_i64().unwrap_or(0)).collect()
}

fn failing_object_writes_delay_clicks_and_leaderboards_but_never_lose_or_double_them() {
    let s = &Server::start(&[("FAULT_OBJECT_WRITES", PLAN)]);
    let (_, token, _, code) = s.active_affiliate();
    let link = format!("/a/{code}");
    let clicks = |d: &Value| d["clicks"].as_i64().unwrap_or(-1);

    // Clicks. The first batch's three attempts fail; the third was applied all the same: the
    // batch is counted, and parked.
    assert_eq!(click(s, &link, "192.0.2.1").status, 302);
    let parked = wait_for(Duration::from_secs(10), || s.log_lines().into_iter().find(|l| l["unsent_clicks"] == 1));
    assert!(parked.is_some(), "the batch was given up by its request: {}", s.log_text());
    assert_eq!(clicks(&dashboard(s, &token)), 1, "applied once");
    // The next clicks' batch meets three rolled-back writes (parked, not counted) or, split in
    // several batches, some of them: counted at most once each.
    let sent = parallel(20, |i| click(s, &link, &format!("192.0.2.{}", 10 + i)).status);
    assert!(sent.iter().all(|&st| st == 302), "{sent:?}");
    // (The first click is both counted and parked: 22 when every click is one or the other.)
    let settled = wait_for(Duration::from_secs(10), || {
        let unsent: i64 = s.log_lines().iter().filter_map(|l| l["unsent_clicks"].as_i64()).sum();
        (unsent + clicks(&dashboard(s, &token)) == 22).then_some(unsent)
    });
    assert!(settled.is_some(), "every click is counted or parked: {}", dashboard(s, &token));
    assert!(clicks(&dashboard(s, &token)) <= 21);
    // The cron sends the parked batches: the applied one is a duplicate, the other counts. Every
    // click is counted, once, and stays so.
    s.run_cron("* * * * *");
    assert_eq!(clicks(&dashboard(s, &token)), 21);
    s.run_cron("* * * * *");
    let d = dashboard(s, &token);
    assert_eq!((clicks(&d), d["unique_visitors"].as_i64()), (21, Some(21)), "{d}");
    assert!(s.log_lines().iter().all(|l| l["lost_clicks"].is_null()), "no click was lost");

    // Leaderboards: seven batches of activity; the first six publishes fail (the third applied
    // but answered as failed, the others rolled back), the seventh succeeds.
    let (user, user_token) = s.user();
    let t = now();
    for amount in 1..=7 {
        let event = json!({"id": unique("ev"), "user_id": user, "metric": "api_calls", "amount": amount, "occurred_at": iso(t)});
        let r = s.post(&format!("{API}/admin/activity")).token(s.admin()).json(&json!({"events": [event]})).send();
        assert_eq!((r.status, r.json()["accepted"].as_i64()), (200, Some(1)), "{}", r.body);
    }
    let score = || {
        let r = s.get(&format!("{API}/rewards/leaderboard?category=api_usage&period=all_time")).token(&user_token).send();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["me"]["score"].as_i64().unwrap_or(0)
    };
    let unconfirmed = wait_for(Duration::from_secs(10), || {
        let n = s.log_lines().iter().filter(|l| l["activity_batch"].is_string() && l["retry"] == "cron").count();
        (n >= 6).then_some(n)
    });
    assert_eq!(unconfirmed, Some(6), "six publishes failed: {}", s.log_text());
    assert_eq!(score(), 3 + 7, "only what was applied: the batch answered as failed (3) and the last (7)");
    // The cron re-sends batches unconfirmed for 30 s: all six, the applied one ignored.
    std::thread::sleep(Duration::from_secs(31));
    s.run_cron("* * * * *");
    assert_eq!(score(), 28, "1 + 2 + … + 7, each once");
    s.run_cron("* * * * *");
    assert_eq!(score(), 28);
    // Every planned fault happened, in the link's object and in the api_usage board's.
    assert_eq!((injected(s, "LinkClicks"), injected(s, "Leaderboard")), (vec![6], vec![6]));
    let left = s.d1("SELECT (SELECT COUNT(*) FROM parked_click_batches) AS parked, (SELECT COUNT(*) FROM activity_batches WHERE state = 'pending') AS pending");
    assert_eq!(left, [json!({"parked": 0, "pending": 0})]);
}
