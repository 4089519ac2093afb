//! Creator revenue sharing: records split by the creator's terms when they arrive (also negative
//! ones), each id once (re-sent, in parallel), a bad record refusing the whole request,
//! collaborators dividing the creator part exactly, scheduled terms that never rewrite a month
//! already split (also racing the records of that month), pools allocated by usage exactly.
//!
//! Pools allocate over every channel of a month, whoever reported it: each test that allocates
//! one uses a month of its own (`month_of`), no other test's.

use crate::support::{parallel, shared, unique, wait_for, Resp, Server, API};
use std::time::Duration;
use crate::trials;
use serde_json::{json, Value};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(revenue:
        records_are_split_by_terms_and_shown_to_their_creators_only,
        a_re_sent_record_is_skipped_and_other_content_is_a_conflict,
        a_bad_record_refuses_the_whole_request_naming_it,
        collaborators_divide_the_creator_part_exactly,
        scheduled_terms_apply_from_their_month_and_never_rewrite_one,
        terms_racing_records_of_their_month_never_split_one_twice_ways,
        a_pool_is_allocated_by_usage_to_the_cent,
        the_same_thousand_records_sent_five_times_at_once_have_one_effect,
        a_request_of_twenty_thousand_lines_lands_whole,
        only_admins_write_revenue,
        sums_beyond_two_to_the_53_are_read_exactly,
        a_month_closes_into_earnings_payouts_statements_and_debt,
        closings_racing_each_other_and_records_count_everything_once,
        a_closing_racing_records_of_an_earlier_month_never_passes_them_over,
    )
}

/// A record of `creator` on `channel` (no video), in `period`, with `gross` cents and usage.
pub fn record(id: &str, creator: &str, channel: &str, period: &str, gross: i64) -> Value {
    json!({"id": id, "creator_id": creator, "channel_id": channel, "period": period, "gross_cents": gross,
           "currency": "usd", "views": 100, "api_calls": 10, "matches": 1})
}

pub fn report(s: &Server, records: &[Value]) -> Resp {
    s.post(&format!("{API}/admin/revenue")).token(s.admin()).json(&json!({ "records": records })).send()
}

fn reported(s: &Server, records: &[Value]) -> Value {
    let r = report(s, records);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Every line of the caller (walks the pages).
pub fn lines(s: &Server, token: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = s.get(&format!("{API}/revenue/creator/records?limit=100{query}{cursor}")).token(token).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        all.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

fn put(s: &Server, path: &str, token: &str, body: &Value) -> Resp {
    s.request("PUT", &format!("{API}{path}")).token(token).json(body).send()
}

/// The month before this one (records of it are never of a month that has not begun).
pub fn last_month() -> String {
    use chrono::Datelike;
    let now = chrono::DateTime::from_timestamp(crate::support::now(), 0).expect("now");
    let (year, month) = if now.month() == 1 { (now.year() - 1, 12) } else { (now.year(), now.month() - 1) };
    format!("{year:04}-{month:02}")
}

fn records_are_split_by_terms_and_shown_to_their_creators_only() {
    let s = shared();
    let (creator, token) = s.user();
    let (_, other_token) = s.user();
    let channel = unique("chan");
    let month = last_month();
    let (a, b, c) = (unique("rev"), unique("rev"), unique("rev"));
    let mut with_video = record(&c, &creator, &channel, &month, 10_001);
    with_video["video_id"] = json!("vid-1");
    let r = reported(s, &[record(&a, &creator, &channel, &month, 10_000), record(&b, &creator, &channel, &month, -999), with_video]);
    assert_eq!(r, json!({"accepted": 3, "duplicates": 0, "conflicts": [], "adjustments": 0}));
    let mine = lines(s, &token, "");
    let by_id = |id: &str| mine.iter().find(|l| l["record_id"] == id).cloned().unwrap_or_else(|| panic!("{id} missing: {mine:?}"));
    let line = by_id(&a);
    assert_eq!((line["share_bps"].clone(), line["platform_cents"].clone(), line["creator_cents"].clone(), line["cents"].clone()), (json!(7000), json!(3000), json!(7000), json!(7000)));
    assert_eq!((line["status"].clone(), line["adjustment"].clone(), line["statement_period"].clone()), (json!("estimated"), json!(false), json!(month)));
    // A chargeback is the mirror image of its payment: 999 × 30 % = 299.7 → 300.
    let line = by_id(&b);
    assert_eq!((line["platform_cents"].clone(), line["cents"].clone()), (json!(-300), json!(-699)));
    // 10001 × 30 % = 3000.3 → 3000.
    let line = by_id(&c);
    assert_eq!((line["platform_cents"].clone(), line["cents"].clone(), line["video_id"].clone()), (json!(3000), json!(7001), json!("vid-1")));
    assert_eq!(lines(s, &token, &format!("&channel_id={channel}&video_id=vid-1")).len(), 1);
    assert_eq!(lines(s, &token, "&period=1999-01").len(), 0);
    assert!(lines(s, &other_token, &format!("&channel_id={channel}")).is_empty(), "another creator sees nothing of it");
    for bad in ["period=2026-13", "channel_id=a%20b", "video_id=%C3%97"] {
        s.get(&format!("{API}/revenue/creator/records?{bad}")).token(&token).send().expect_error(422, "validation_failed");
    }
    s.assert_ledgers_consistent();
}

fn a_re_sent_record_is_skipped_and_other_content_is_a_conflict() {
    let s = shared();
    let (creator, token) = s.user();
    let channel = unique("chan");
    let month = last_month();
    let (a, b) = (unique("rev"), unique("rev"));
    let batch = [record(&a, &creator, &channel, &month, 500), record(&b, &creator, &channel, &month, 700)];
    assert_eq!(reported(s, &batch)["accepted"], 2);
    // The same records again (the currency in another case is the same content).
    let mut resent = batch.clone();
    resent[0]["currency"] = json!("USD");
    assert_eq!(reported(s, &resent), json!({"accepted": 0, "duplicates": 2, "conflicts": [], "adjustments": 0}));
    // b with another amount, a new record, and the new record repeated within the request.
    let c = unique("rev");
    let changed = [record(&b, &creator, &channel, &month, 701), record(&c, &creator, &channel, &month, 1), record(&c, &creator, &channel, &month, 1)];
    assert_eq!(reported(s, &changed), json!({"accepted": 1, "duplicates": 1, "conflicts": [{"index": 0, "id": b}], "adjustments": 0}));
    let mine = lines(s, &token, "");
    assert_eq!(mine.len(), 3);
    let b_line = mine.iter().find(|l| l["record_id"] == b.as_str()).unwrap();
    assert_eq!(b_line["gross_cents"], 700, "the stored record is never rewritten");
}

fn a_bad_record_refuses_the_whole_request_naming_it() {
    let s = shared();
    let (creator, token) = s.user();
    let channel = unique("chan");
    let month = last_month();
    let good = record(&unique("rev"), &creator, &channel, &month, 100);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"period": "2999-01"}), "records[1].period"),
        (json!({"period": "2026-13"}), "records[1].period"),
        (json!({"currency": "eur"}), "records[1].currency"),
        (json!({"gross_cents": 1_000_000_000_001i64}), "records[1].gross_cents"),
        (json!({"views": -1}), "records[1].views"),
        (json!({"id": "soundhash:pool:x:0"}), "records[1].id"),
        (json!({"creator_id": ""}), "records[1].creator_id"),
        (json!({"video_id": null}), "records[1].video_id"),
        (json!({"extra": 1}), "records[1]"),
    ];
    for (change, field) in cases {
        let mut bad = record(&unique("rev"), &creator, &channel, &month, 100);
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let r = report(s, &[good.clone(), bad]);
        r.expect_error(422, "validation_failed");
        let named = r.json()["error"]["field"].as_str().unwrap_or_default().to_owned();
        assert!(named.starts_with(field), "{change}: {} names {named}", r.body);
    }
    let mut missing = record(&unique("rev"), &creator, &channel, &month, 100);
    missing.as_object_mut().unwrap().remove("matches");
    report(s, &[good.clone(), missing]).expect_error(422, "validation_failed");
    report(s, &[]).expect_error(422, "validation_failed");
    let too_many: Vec<Value> = (0..1001).map(|i| record(&format!("{}-{i}", unique("rev")), &creator, &channel, &month, 1)).collect();
    report(s, &too_many).expect_error(422, "validation_failed");
    assert!(lines(s, &token, "").is_empty(), "nothing of a refused request was stored");
}

fn collaborators_divide_the_creator_part_exactly() {
    let s = shared();
    let (reporter, reporter_token) = s.user();
    let owners: Vec<(String, String)> = (0..3).map(|_| s.user()).collect();
    let channel = unique("chan");
    let body = json!([
        {"creator_id": owners[2].0, "share_bps": 3333},
        {"creator_id": owners[0].0, "share_bps": 3334},
        {"creator_id": owners[1].0, "share_bps": 3333},
    ]);
    let r = put(s, &format!("/admin/channels/{channel}/owners"), s.admin(), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["owners"].as_array().unwrap().len(), 3);
    let id = unique("rev");
    reported(s, &[record(&id, &reporter, &channel, &last_month(), 10_001)]);
    // 7001 creator cents by 3334/3333/3333: 2334.1334, 2333.4333, 2333.4333 → floors 2334 + 2333 +
    // 2333 = 7000; the cent left over goes to the largest remainder, where the two 3333 owners
    // tie: the one first in creator id order gets it.
    let mut cents: Vec<(String, i64)> = Vec::new();
    for (owner, token) in &owners {
        let mine = lines(s, token, &format!("&channel_id={channel}"));
        assert_eq!(mine.len(), 1, "{owner} sees their line");
        assert_eq!(mine[0]["creator_cents"], 7001);
        cents.push((owner.clone(), mine[0]["cents"].as_i64().unwrap()));
    }
    let first_of_the_tie = owners[1].0.clone().min(owners[2].0.clone());
    let expected: Vec<(String, i64)> = owners
        .iter()
        .map(|(o, _)| (o.clone(), if *o == owners[0].0 || *o == first_of_the_tie { 2334 } else { 2333 }))
        .collect();
    assert_eq!(cents, expected);
    assert!(lines(s, &reporter_token, &format!("&channel_id={channel}")).is_empty(), "the reporter is not an owner");
    // Shares that do not sum to 10000, a creator twice, and a share of 0 are refused.
    let bad = |body: Value, field: &str| {
        let r = put(s, &format!("/admin/channels/{channel}/owners"), s.admin(), &body);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{}", r.body);
    };
    bad(json!([{"creator_id": "a", "share_bps": 5000}, {"creator_id": "b", "share_bps": 4999}]), "body");
    bad(json!([{"creator_id": "a", "share_bps": 5000}, {"creator_id": "a", "share_bps": 5000}]), "body");
    bad(json!([{"creator_id": "a", "share_bps": 0}, {"creator_id": "b", "share_bps": 10000}]), "[0].share_bps");
    // No owners: the reporting creator keeps the part again, from now on.
    assert_eq!(put(s, &format!("/admin/channels/{channel}/owners"), s.admin(), &json!([])).status, 200);
    reported(s, &[record(&unique("rev"), &reporter, &channel, &last_month(), 100)]);
    assert_eq!(lines(s, &reporter_token, &format!("&channel_id={channel}"))[0]["cents"], 70);
    assert_eq!(lines(s, &owners[0].1, &format!("&channel_id={channel}")).len(), 1, "the stored record keeps its lines");
    s.assert_ledgers_consistent();
}

fn scheduled_terms_apply_from_their_month_and_never_rewrite_one() {
    let s = shared();
    let (creator, token) = s.user();
    let channel = unique("chan");
    let terms = |body: Value| put(s, &format!("/admin/creators/{creator}/terms"), s.admin(), &body);
    let r = terms(json!({"share_bps": 8000, "effective_from": "2026-06"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"creator_id": creator, "default_share_bps": 7000, "terms": [{"effective_from": "2026-06", "share_bps": 8000}]}));
    let (may, june, july) = (unique("rev"), unique("rev"), unique("rev"));
    reported(s, &[
        record(&may, &creator, &channel, "2026-05", 10_000),
        record(&june, &creator, &channel, "2026-06", 10_000),
        record(&july, &creator, &channel, "2026-07", 10_000),
    ]);
    let mine = lines(s, &token, "");
    let cents = |id: &str| mine.iter().find(|l| l["record_id"] == id).map(|l| (l["share_bps"].as_i64().unwrap(), l["cents"].as_i64().unwrap()));
    assert_eq!(cents(&may), Some((7000, 7000)), "before the terms: the default");
    assert_eq!(cents(&june), Some((8000, 8000)));
    assert_eq!(cents(&july), Some((8000, 8000)));
    // A month already split is never rewritten: a start on or before July is refused.
    terms(json!({"share_bps": 9000, "effective_from": "2026-07"})).expect_error(409, "terms_in_use");
    terms(json!({"share_bps": 9000, "effective_from": "2026-01"})).expect_error(409, "terms_in_use");
    let r = terms(json!({"share_bps": 9000, "effective_from": "2026-08"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["terms"].as_array().unwrap().len(), 2);
    assert_eq!(lines(s, &token, "").iter().filter(|l| l["share_bps"] == 9000).count(), 0);
    terms(json!({"share_bps": 10001, "effective_from": "2027-01"})).expect_error(422, "validation_failed");
    terms(json!({"share_bps": 5000, "effective_from": "2027-1"})).expect_error(422, "validation_failed");
    put(s, "/admin/creators/a%20b/terms", s.admin(), &json!({"share_bps": 5000, "effective_from": "2027-01"})).expect_error(404, "not_found");
}

/// Terms for a month set while records of that month arrive: either the terms land first and
/// every record of the month is split by them, or a record lands first and the terms are
/// refused; never some records under each.
fn terms_racing_records_of_their_month_never_split_one_twice_ways() {
    let s = shared();
    for round in 0..3 {
        let (creator, token) = s.user();
        let channel = unique("chan");
        let month = "2026-04";
        let outcomes = parallel(6, |i| {
            if i == 0 {
                put(s, &format!("/admin/creators/{creator}/terms"), s.admin(), &json!({"share_bps": 9000, "effective_from": month})).status
            } else {
                let batch: Vec<Value> = (0..20).map(|j| record(&format!("{}-{i}-{j}", unique("race")), &creator, &channel, month, 1_000)).collect();
                report(s, &batch).status
            }
        });
        assert!(outcomes[1..].iter().all(|&st| st == 200), "round {round}: {outcomes:?}");
        let shares: std::collections::BTreeSet<i64> = lines(s, &token, "").iter().map(|l| l["share_bps"].as_i64().unwrap()).collect();
        match outcomes[0] {
            200 => assert_eq!(shares, [9000].into(), "round {round}: the terms landed first"),
            409 => assert_eq!(shares, [7000].into(), "round {round}: the records landed first"),
            other => panic!("round {round}: terms answered {other}"),
        }
    }
}

fn a_pool_is_allocated_by_usage_to_the_cent() {
    let s = shared();
    let month = "1987-03"; // this test's own month
    let creators: Vec<(String, String)> = (0..7).map(|_| s.user()).collect();
    let batch: Vec<Value> = creators
        .iter()
        .map(|(c, _)| {
            let mut r = record(&unique("use"), c, &unique("chan"), month, 0);
            r["matches"] = json!(10);
            r
        })
        .collect();
    reported(s, &batch);
    let pool = json!({"id": unique("pool"), "period": month, "gross_cents": 1_000_003, "basis": "matches"});
    let send = |body: &Value| s.post(&format!("{API}/admin/revenue/pools")).token(s.admin()).json(body).send();
    let r = send(&pool);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.json()["records"].clone(), r.json()["allocated_cents"].clone()), (json!(7), json!(1_000_003)));
    // Each creator got 1,000,003 / 7 = 142,857.57…: four get 142,858 and three 142,857.
    let mut grosses: Vec<i64> = creators
        .iter()
        .map(|(_, token)| {
            let pooled: Vec<Value> = lines(s, token, &format!("&period={month}")).into_iter().filter(|l| !l["pool_id"].is_null()).collect();
            assert_eq!(pooled.len(), 1);
            assert_eq!(pooled[0]["cents"].as_i64().unwrap() + pooled[0]["platform_cents"].as_i64().unwrap(), pooled[0]["gross_cents"].as_i64().unwrap());
            pooled[0]["gross_cents"].as_i64().unwrap()
        })
        .collect();
    grosses.sort();
    assert_eq!(grosses, [142_857, 142_857, 142_857, 142_858, 142_858, 142_858, 142_858]);
    // Re-sent: answered as stored; other content under the id: a conflict.
    let again = send(&pool);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["allocated_cents"], 1_000_003);
    let mut other = pool.clone();
    other["gross_cents"] = json!(5);
    send(&other).expect_error(409, "pool_conflict");
    // A second pool by the same basis is allocated by the reported usage alone (the first
    // pool's records carry none): again seven allocations.
    let second = send(&json!({"id": unique("pool"), "period": month, "gross_cents": 7, "basis": "matches"}));
    assert_eq!(second.json()["records"], 7, "{}", second.body);
    send(&json!({"id": unique("pool"), "period": "1987-04", "gross_cents": 100, "basis": "views"})).expect_error(409, "no_usage");
    send(&json!({"id": unique("pool"), "period": month, "gross_cents": 0, "basis": "views"})).expect_error(422, "validation_failed");
    send(&json!({"id": unique("pool"), "period": month, "gross_cents": 10, "basis": "likes"})).expect_error(422, "validation_failed");
    s.assert_ledgers_consistent();
}

fn the_same_thousand_records_sent_five_times_at_once_have_one_effect() {
    let s = shared();
    let (creator, token) = s.user();
    let channel = unique("chan");
    let prefix = unique("bulk");
    let batch: Vec<Value> = (0..1000).map(|i| record(&format!("{prefix}-{i}"), &creator, &channel, &last_month(), 1_000 + i)).collect();
    let results: Vec<Value> = parallel(5, |_| reported(s, &batch));
    let accepted: i64 = results.iter().map(|r| r["accepted"].as_i64().unwrap()).sum();
    let duplicates: i64 = results.iter().map(|r| r["duplicates"].as_i64().unwrap()).sum();
    assert_eq!((accepted, duplicates), (1000, 4000), "{results:?}");
    assert!(results.iter().all(|r| r["conflicts"] == json!([])), "{results:?}");
    let mine = lines(s, &token, "");
    assert_eq!(mine.len(), 1000);
    let total: i64 = mine.iter().map(|l| l["gross_cents"].as_i64().unwrap()).sum();
    assert_eq!(total, (0..1000).map(|i| 1_000 + i).sum::<i64>());
    s.assert_ledgers_consistent();
}

/// The largest request: 1,000 records of 128-byte ids on a channel of 20 owners with 128-byte ids
/// (escaped quotes in them) make 20,000 lines, about 7 MB of JSON: more than D1 binds as one value
/// (2,000,000 bytes), so they are bound in chunks in one batch, and all of them land, once.
fn a_request_of_twenty_thousand_lines_lands_whole() {
    let s = shared();
    let (creator, token) = s.user();
    let channel = unique("chan");
    let long = |prefix: &str, i: usize| {
        let head = format!("{prefix}\"{i}-");
        format!("{head}{}", "x".repeat(128 - head.len()))
    };
    let owners_prefix = unique("owner");
    let mut owners: Vec<Value> = (0..19).map(|i| json!({"creator_id": long(&owners_prefix, i), "share_bps": 500})).collect();
    owners.push(json!({"creator_id": creator, "share_bps": 500}));
    let r = put(s, &format!("/admin/channels/{channel}/owners"), s.admin(), &Value::Array(owners));
    assert_eq!(r.status, 200, "{}", r.body);
    let prefix = unique("wide");
    let batch: Vec<Value> = (0..1000).map(|i| record(&long(&prefix, i), &creator, &channel, &last_month(), 2_000)).collect();
    let results: Vec<Value> = parallel(2, |_| reported(s, &batch));
    let accepted: i64 = results.iter().map(|r| r["accepted"].as_i64().unwrap()).sum();
    assert_eq!(accepted, 1000, "{results:?}");
    // 2,000 gross: 1,400 to the creators, 70 to each of the 20 owners.
    let mine = lines(s, &token, &format!("&channel_id={channel}"));
    assert_eq!(mine.len(), 1000);
    assert!(mine.iter().all(|l| l["cents"] == 70 && l["creator_cents"] == 1400), "{:?}", mine.first());
    // Every record's lines sum to its creator part (audit check revenue_lines_sum): all 20,000 landed.
    s.assert_ledgers_consistent();
}

fn only_admins_write_revenue() {
    let s = shared();
    let (creator, token) = s.user();
    let r = s.post(&format!("{API}/admin/revenue")).token(&token).json(&json!({"records": [record(&unique("rev"), &creator, "c", &last_month(), 1)]})).send();
    r.expect_error(403, "forbidden");
    put(s, &format!("/admin/creators/{creator}/terms"), &token, &json!({"share_bps": 10000, "effective_from": "2030-01"})).expect_error(403, "forbidden");
    put(s, "/admin/channels/c/owners", &token, &json!([{"creator_id": creator, "share_bps": 10000}])).expect_error(403, "forbidden");
    s.post(&format!("{API}/admin/revenue/pools")).token(&token).json(&json!({"id": "p", "period": "2026-01", "gross_cents": 1, "basis": "views"})).send().expect_error(403, "forbidden");
    s.post(&format!("{API}/admin/revenue/periods/2026-01/close")).token(&token).send().expect_error(403, "forbidden");
    assert!(lines(s, &token, "").is_empty());
}

fn close(s: &Server, period: &str) -> Resp {
    s.post(&format!("{API}/admin/revenue/periods/{period}/close")).token(s.admin()).send()
}

fn summary(s: &Server, token: &str, query: &str) -> Value {
    let r = s.get(&format!("{API}/revenue/creator{query}")).token(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn statement(s: &Server, token: &str, period: &str) -> Value {
    let r = s.get(&format!("{API}/revenue/creator/statements/{period}")).token(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn pay_out(s: &Server, token: &str) -> Resp {
    s.post(&format!("{API}/revenue/creator/payouts")).token(token).json(&json!({})).send()
}

fn settle(s: &Server, payout: &str) {
    for status in ["approved", "processing", "paid"] {
        let r = s.patch(&format!("{API}/admin/payouts/{payout}")).token(s.admin()).json(&json!({"status": status})).send();
        assert_eq!(r.status, 200, "{status}: {}", r.body);
    }
}

/// The whole story of a creator over three months, on an instance of its own (closing a month
/// is global): estimates, closing in order, earnings, the statement as JSON and CSV, a late
/// record as an adjustment, a payout, a chargeback after it carried as debt and paid down.
fn a_month_closes_into_earnings_payouts_statements_and_debt() {
    let s = &Server::start(&[("COMMISSION_HOLD_DAYS", "0")]);
    let (creator, token) = s.user();
    let channel = unique("chan");
    let mut with_video = record("r2", &creator, &channel, "2026-08", 5_000);
    with_video["video_id"] = json!("v1");
    reported(s, &[record("r1", &creator, &channel, "2026-08", 10_000), with_video, record("r3", &creator, &channel, "2026-09", 20_000)]);
    let open = summary(s, &token, "");
    assert_eq!(open["balances"], json!({"estimated_cents": 24_500, "pending_cents": 0, "available_cents": 0, "in_payout_cents": 0, "paid_cents": 0, "debt_cents": 0}));
    let by_period: Vec<(Value, Value)> = open["groups"].as_array().unwrap().iter().map(|g| (g["period"].clone(), g["cents"].clone())).collect();
    assert_eq!(by_period, vec![(json!("2026-08"), json!(10_500)), (json!("2026-09"), json!(14_000))]);
    let by_video = summary(s, &token, "?group_by=video&from=2026-08&to=2026-08");
    assert_eq!(by_video["groups"].as_array().unwrap().len(), 2, "{by_video}");

    // Statements close in order, once each, and only once their month has ended.
    close(s, "2026-09").expect_error(409, "earlier_period_open");
    close(s, "2999-01").expect_error(409, "period_not_ended");
    close(s, "2026-13").expect_error(422, "validation_failed");
    let closed = close(s, "2026-08");
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!((closed.json()["earnings"].clone(), closed.json()["creator_cents"].clone()), (json!(1), json!(10_500)));
    close(s, "2026-08").expect_error(409, "period_closed");
    let after = summary(s, &token, "")["balances"].clone();
    assert_eq!((after["estimated_cents"].clone(), after["available_cents"].clone()), (json!(14_000), json!(10_500)));

    let august = statement(s, &token, "2026-08");
    assert_eq!((august["status"].clone(), august["lines"].as_array().unwrap().len()), (json!("closed"), 2), "{august}");
    assert_eq!(august["totals"], json!({"gross_cents": 15_000, "platform_cents": 4_500, "creator_cents": 10_500, "cents": 10_500}));
    assert_eq!(august["balance"], json!({"opening_balance_cents": 0, "net_cents": 10_500, "payouts_cents": 0, "closing_balance_cents": 10_500}));
    // The CSV has the same lines, totals and balance: its lines' cents sum to the JSON total.
    let csv = s.get(&format!("{API}/revenue/creator/statements/2026-08")).token(&token).header("Accept", "text/csv").send();
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap_or_default().starts_with("text/csv"), "{:?}", csv.headers);
    let rows: Vec<Vec<&str>> = csv.body.lines().map(|l| l.split(',').collect()).collect();
    let cents_col = rows[0].iter().position(|h| *h == "cents").expect("a cents column");
    let cents_of = |kind: &str| rows.iter().filter(|r| r[0] == kind).map(|r| r[cents_col].parse::<i64>().unwrap()).collect::<Vec<_>>();
    assert_eq!(cents_of("revenue").iter().sum::<i64>(), 10_500, "{}", csv.body);
    assert_eq!(cents_of("revenue").len(), 2);
    assert_eq!((cents_of("total"), cents_of("opening_balance"), cents_of("closing_balance")), (vec![10_500], vec![0], vec![10_500]), "{}", csv.body);

    // A late record of August lands in September's statement as an adjustment.
    let late = reported(s, &[record("r4", &creator, &channel, "2026-08", 1_000)]);
    assert_eq!(late["adjustments"], 1, "{late}");
    let r4 = lines(s, &token, "").into_iter().find(|l| l["record_id"] == "r4").unwrap();
    assert_eq!((r4["statement_period"].clone(), r4["adjustment"].clone(), r4["period"].clone()), (json!("2026-09"), json!(true), json!("2026-08")));
    assert_eq!(statement(s, &token, "2026-08")["totals"]["cents"], 10_500, "a closed statement is never rewritten");

    // Paid out, then a chargeback in September: the statement nets it, the balance carries debt.
    let payout = pay_out(s, &token);
    assert_eq!(payout.status, 201, "{}", payout.body);
    assert_eq!(payout.json()["amount_cents"], 10_500);
    pay_out(s, &token).expect_error(409, "below_minimum");
    settle(s, payout.json()["id"].as_str().unwrap());
    reported(s, &[record("r5", &creator, &channel, "2026-09", -30_000)]);
    let september = statement(s, &token, "2026-09");
    let kinds: Vec<(Value, Value)> = september["lines"].as_array().unwrap().iter().map(|l| (l["kind"].clone(), l["cents"].clone())).collect();
    assert_eq!(kinds, vec![(json!("revenue"), json!(14_000)), (json!("adjustment"), json!(700)), (json!("clawback"), json!(-21_000))]);
    assert_eq!(september["status"], "open");
    assert_eq!(close(s, "2026-09").status, 200);
    let owed = summary(s, &token, "")["balances"].clone();
    assert_eq!(owed, json!({"estimated_cents": 0, "pending_cents": 0, "available_cents": 0, "in_payout_cents": 0, "paid_cents": 10_500, "debt_cents": 6_300}));
    assert_eq!(statement(s, &token, "2026-09")["balance"], json!({"opening_balance_cents": 10_500, "net_cents": -6_300, "payouts_cents": 10_500, "closing_balance_cents": -6_300}));
    pay_out(s, &token).expect_error(409, "below_minimum");
    // October pays the debt down first.
    reported(s, &[record("r6", &creator, &channel, "2026-10", 20_000)]);
    assert_eq!(close(s, "2026-10").status, 200);
    let payout = pay_out(s, &token);
    assert_eq!(payout.json()["amount_cents"], 14_000 - 6_300, "{}", payout.body);
    let listed = s.get(&format!("{API}/revenue/creator/payouts")).token(&token).send().json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    s.assert_ledgers_consistent();

    // Positive nets count towards the revenue ladder and its badges (after the response).
    let board = wait_for(Duration::from_secs(15), || {
        let b = s.get(&format!("{API}/rewards/leaderboard?category=revenue&period=all_time")).token(&token).send().json();
        (b["me"]["score"] == 10_500 + 14_000).then_some(b)
    });
    assert!(board.is_some(), "the revenue ladder counts each closed statement's positive net once");
    let badges = s.get(&format!("{API}/rewards/badges")).token(&token).send().json().to_string();
    assert!(badges.contains("first_dollar") && badges.contains("rising_earner"), "{badges}");
}

/// Closings of one month sent at once close it once; records of that month sent meanwhile land
/// either in it (before it closed) or in the next statement, never in a closed one, and every
/// creator cent is either an earning of the closed month or an estimate of the next.
fn closings_racing_each_other_and_records_count_everything_once() {
    let s = &Server::start(&[("COMMISSION_HOLD_DAYS", "0")]);
    let creators: Vec<(String, String)> = (0..4).map(|_| s.user()).collect();
    let first: Vec<Value> = creators.iter().map(|(c, _)| record(&unique("rev"), c, "chan", "2026-09", 10_000)).collect();
    reported(s, &first);
    let outcome = |r: Resp| (r.status, if r.status < 300 { "ok".to_owned() } else { r.code() });
    let outcomes = parallel(8, |i| {
        if i < 3 {
            outcome(close(s, "2026-09"))
        } else {
            let batch: Vec<Value> = creators.iter().map(|(c, _)| record(&unique("rev"), c, "chan", "2026-09", 1_000)).collect();
            outcome(report(s, &batch))
        }
    });
    let closes: Vec<&(u16, String)> = outcomes[..3].iter().collect();
    match closes.iter().filter(|o| o.0 == 200).count() {
        1 => {}
        // Every closing met records landing in the month on each try (409 with Retry-After):
        // closing once they are in succeeds.
        0 => assert_eq!(close(s, "2026-09").status, 200, "{outcomes:?}"),
        _ => panic!("closed more than once: {outcomes:?}"),
    }
    assert!(closes.iter().all(|o| o.0 == 200 || (o.0 == 409 && (o.1 == "period_closed" || o.1 == "concurrent_update"))), "{outcomes:?}");
    assert!(outcomes[3..].iter().all(|o| o.0 == 200), "{outcomes:?}");
    for (_, token) in &creators {
        let b = summary(s, token, "")["balances"].clone();
        let total = b["available_cents"].as_i64().unwrap() + b["estimated_cents"].as_i64().unwrap();
        assert_eq!(total, 7_000 + 5 * 700, "earned or estimated, each record once: {b}");
        assert!(b["available_cents"].as_i64().unwrap() >= 7_000, "{b}");
    }
    // Payout requests of one creator sent at once make one payout of everything available.
    let (_, token) = &creators[0];
    let available = summary(s, token, "")["balances"]["available_cents"].as_i64().unwrap();
    let requests = parallel(5, |_| pay_out(s, token));
    let made: Vec<&Resp> = requests.iter().filter(|r| r.status == 201).collect();
    assert_eq!(made.len(), 1, "{:?}", requests.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>());
    assert_eq!(made[0].json()["amount_cents"], available);
    assert!(requests.iter().all(|r| r.status == 201 || r.status == 409), "{requests:?}");
    let b = summary(s, token, "")["balances"].clone();
    assert_eq!((b["available_cents"].clone(), b["in_payout_cents"].clone()), (json!(0), json!(available)));
    s.assert_ledgers_consistent();
}

/// Records of an earlier, open month arriving while a later month closes: either they land
/// before the closing, which then sees an earlier statement open and refuses, or after it, and
/// they land in the statement after the closed one. Never in a statement passed over, whose
/// cents would never be earned (the ledger audit's `revenue_statement_passed_over`).
fn a_closing_racing_records_of_an_earlier_month_never_passes_them_over() {
    let s = &Server::start(&[("COMMISSION_HOLD_DAYS", "0")]);
    let (creator, token) = s.user();
    let mut sent = 0;
    let mut raced = 0;
    for year in 2011..2025 {
        let (early, late, next) = (format!("{year}-01"), format!("{year}-02"), format!("{year}-03"));
        reported(s, &[record(&unique("rev"), &creator, "chan", &late, 1_000)]);
        sent += 1;
        // The early records set off over the closing's first milliseconds (it reads, then writes).
        let outcomes = parallel(9, |i| {
            if i == 0 {
                let r = close(s, &late);
                (r.status, if r.status == 200 { "ok".to_owned() } else { r.code() })
            } else {
                std::thread::sleep(Duration::from_millis(2 * i as u64));
                (report(s, &[record(&unique("rev"), &creator, "chan", &early, 1_000)]).status, "ok".to_owned())
            }
        });
        sent += 8;
        assert!(outcomes[1..].iter().all(|o| o.0 == 200), "{year}: {outcomes:?}");
        assert!(outcomes[0].0 == 200 || outcomes[0].1 == "earlier_period_open", "{year}: {outcomes:?}");
        let adjustments = lines(s, &token, &format!("&period={early}")).iter().filter(|l| l["statement_period"] == next.as_str()).count();
        if outcomes[0].0 == 200 && adjustments > 0 && adjustments < 8 {
            raced += 1; // the closing landed between early records
        }
        s.assert_ledgers_consistent();
        for month in [&early, &late, &next] {
            let r = close(s, month);
            assert!(r.status == 200 || r.code() == "period_closed", "{month}: {}", r.body);
        }
        s.assert_ledgers_consistent();
    }
    eprintln!("revenue: a closing landed between records of an earlier month in {raced} of 14 rounds");
    // Every record is earned once: 700 cents each, all statements closed.
    let b = summary(s, &token, "")["balances"].clone();
    assert_eq!((b["available_cents"].clone(), b["estimated_cents"].clone()), (json!(sent * 700), json!(0)), "{b}");
}

/// Ten thousand records of the largest gross: their sums pass 2^53, which D1 hands the worker
/// as inexact JavaScript numbers; they are read as text and shown exactly.
///
/// On an instance of its own: its month can never close (its net is beyond what a statement
/// holds), and every later month closes only after it.
fn sums_beyond_two_to_the_53_are_read_exactly() {
    let s = &Server::start(&[]);
    let (creator, token) = s.user();
    let channel = unique("chan");
    let prefix = unique("big");
    for request in 0..10 {
        let batch: Vec<Value> = (0..1000)
            .map(|i| {
                let mut r = record(&format!("{prefix}-{request}-{i}"), &creator, &channel, "1999-12", 1_000_000_000_000);
                r["views"] = json!(1_000_000_000_000i64);
                r
            })
            .collect();
        assert_eq!(reported(s, &batch)["accepted"], 1000);
    }
    let r = s.get(&format!("{API}/revenue/creator?from=1999-12&to=1999-12")).token(&token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    // 10^16 and 7 × 10^15 (beyond 2^53 ≈ 9.007 × 10^15), in the body as written.
    assert!(r.body.contains(r#""gross_cents":10000000000000000"#) && r.body.contains(r#""views":10000000000000000"#), "{}", r.body);
    assert!(r.body.contains(r#""platform_cents":3000000000000000"#) && r.body.contains(r#""cents":7000000000000000"#), "{}", r.body);
}
