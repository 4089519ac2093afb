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

/// Each object's first writes: three that fail and roll back (a click batch's every attempt),
/// one that is applied but answered as failed, one more rolled back; then all succeed.
const PLAN: &str = "before,before,before,after,before";

/// Steps of the plan taken by the objects of `class` (each keeps its own count).
fn injected(s: &Server, class: &str) -> Vec<i64> {
    s.object_rows(class, "SELECT COUNT(*) FROM injected_faults").iter().map(|r| r[0].as_i64().unwrap_or(0)).collect()
}

fn failing_object_writes_delay_clicks_and_leaderboards_but_never_lose_or_double_them() {
    let s = &Server::start(&[("FAULT_OBJECT_WRITES", PLAN)]);
    let (_, token, _, code) = s.active_affiliate();
    let link = format!("/a/{code}");
    let clicks = |d: &Value| d["clicks"].as_i64().unwrap_or(-1);

    // Clicks. The first batch fails all three attempts: it is parked in D1, not counted yet.
    assert_eq!(click(s, &link, "192.0.2.1").status, 302);
    let parked = wait_for(Duration::from_secs(10), || s.log_lines().into_iter().find(|l| l["unsent_clicks"] == 1));
    assert!(parked.is_some(), "the batch was given up by its request: {}", s.log_text());
    // The next clicks' batch is applied, answered as failed, sent again (rolled back), sent a
    // third time (a duplicate, ignored): counted once.
    let sent = parallel(20, |i| click(s, &link, &format!("192.0.2.{}", 10 + i)).status);
    assert!(sent.iter().all(|&st| st == 302), "{sent:?}");
    let d = wait_for(Duration::from_secs(10), || Some(dashboard(s, &token)).filter(|d| clicks(d) >= 20)).unwrap_or_else(|| dashboard(s, &token));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(clicks(&dashboard(s, &token)), 20, "the failed-after-commit batch counted once, the parked one not yet: {d}");
    // The cron sends the parked batch: now every click is counted, once, and stays so.
    s.run_cron("* * * * *");
    assert_eq!(clicks(&dashboard(s, &token)), 21);
    s.run_cron("* * * * *");
    let d = dashboard(s, &token);
    assert_eq!((clicks(&d), d["unique_visitors"].as_i64()), (21, Some(21)), "{d}");
    assert!(s.log_lines().iter().all(|l| l["lost_clicks"].is_null()), "no click was lost");

    // Leaderboards: six batches of activity; the first five publishes fail (three rolled back,
    // one applied but answered as failed, one more rolled back), the sixth succeeds.
    let (user, user_token) = s.user();
    let t = now();
    for amount in 1..=6 {
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
        (n >= 5).then_some(n)
    });
    assert_eq!(unconfirmed, Some(5), "five publishes failed: {}", s.log_text());
    assert_eq!(score(), 4 + 6, "only what was applied: the batch answered as failed (4) and the last (6)");
    // The cron re-sends batches unconfirmed for 30 s: all five, the applied one ignored.
    std::thread::sleep(Duration::from_secs(31));
    s.run_cron("* * * * *");
    assert_eq!(score(), 21, "1 + 2 + … + 6, each once");
    s.run_cron("* * * * *");
    assert_eq!(score(), 21);
    // Every planned fault happened, in the link's object and in the api_usage board's.
    assert_eq!((injected(s, "LinkClicks"), injected(s, "Leaderboard")), (vec![5], vec![5]));
    let left = s.d1("SELECT (SELECT COUNT(*) FROM parked_click_batches) AS parked, (SELECT COUNT(*) FROM activity_batches WHERE state = 'pending') AS pending");
    assert_eq!(left, [json!({"parked": 0, "pending": 0})]);
}
