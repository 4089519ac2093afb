//! The money out: one payout however many ask at once, the review transitions, and failed
//! payouts returning their earnings.

use crate::affiliates::dashboard;
use crate::support::{instant, parallel, unique, API};
use crate::trials;
use serde_json::json;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(payouts:
        parallel_payout_requests_make_one_payout,
        payouts_move_only_forward_and_failures_return_the_money,
        only_active_affiliates_are_paid,
    )
}

fn parallel_payout_requests_make_one_payout() {
    let s = instant();
    // Several rounds: locally the window between reading the balance and moving it is short, so
    // one round does not always make requests overlap.
    for _ in 0..8 {
        let (_, token, _, code) = s.active_affiliate();
        for _ in 0..3 {
            let (buyer, _) = s.referred_user(&code);
            s.convert(&buyer, 10_000);
        }
        let results = parallel(30, |i| {
            let mut call = s.post(&format!("{API}/affiliates/payouts")).token(&token);
            if i % 2 == 0 {
                call = call.header("Idempotency-Key", &unique("payout"));
            }
            call.send()
        });
        let created: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
        assert_eq!(created.len(), 1, "{results:?}");
        assert_eq!(created[0].json()["amount_cents"], 6_000);
        let refused = |r: &&crate::support::Resp| matches!(r.code().as_str(), "below_minimum" | "concurrent_update");
        assert!(results.iter().filter(|r| r.status != 201).all(|r| refused(&r)), "{results:?}");
        let d = dashboard(s, &token);
        assert_eq!((d["earnings"]["available_cents"].clone(), d["earnings"]["in_payout_cents"].clone()), (json!(0), json!(6_000)));
        let payouts = s.get(&format!("{API}/affiliates/payouts")).token(&token).send().json();
        assert_eq!(payouts["items"].as_array().unwrap().len(), 1);
    }
    s.assert_ledgers_consistent();
}

fn payouts_move_only_forward_and_failures_return_the_money() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    s.convert(&buyer, 40_000);
    let payout = s.post(&format!("{API}/affiliates/payouts")).token(&token).send().json();
    let id = payout["id"].as_str().unwrap().to_owned();
    let change = |body: serde_json::Value| s.patch(&format!("{API}/admin/payouts/{id}")).token(s.admin()).json(&body).send();
    change(json!({"status": "paid"})).expect_error(409, "invalid_transition");
    change(json!({"status": "processing"})).expect_error(409, "invalid_transition");
    change(json!({"status": "failed", "failure_reason": "bank said no"})).expect_error(409, "invalid_transition");
    change(json!({"status": "approved", "failure_reason": "x"})).expect_error(422, "validation_failed");
    // The field goes with `failed` only, as the document says: present and blank is no exception.
    change(json!({"status": "approved", "failure_reason": "  "})).expect_error(422, "validation_failed");
    change(json!({"status": "sent"})).expect_error(422, "validation_failed");
    assert_eq!(change(json!({"status": "approved"})).json()["status"], "approved");
    change(json!({"status": "approved"})).expect_error(409, "invalid_transition");
    assert_eq!(change(json!({"status": "processing"})).json()["status"], "processing");
    let failed = change(json!({"status": "failed", "failure_reason": "account closed"})).json();
    assert_eq!((failed["status"].clone(), failed["failure_reason"].clone()), (json!("failed"), json!("account closed")));
    change(json!({"status": "paid"})).expect_error(409, "invalid_transition");
    // The money is available again, and a new payout takes exactly it.
    assert_eq!(dashboard(s, &token)["earnings"]["available_cents"], 8_000);
    let again = s.post(&format!("{API}/affiliates/payouts")).token(&token).send();
    assert_eq!((again.status, again.json()["amount_cents"].clone()), (201, json!(8_000)));
    // The admin listing filters by status.
    let failed_list = s.get(&format!("{API}/admin/payouts?status=failed&limit=100")).token(s.admin()).send().json();
    assert!(failed_list["items"].as_array().unwrap().iter().any(|p| p["id"] == id.as_str()));
    assert!(failed_list["items"].as_array().unwrap().iter().all(|p| p["status"] == "failed"));
    s.get(&format!("{API}/admin/payouts?status=lost")).token(s.admin()).send().expect_error(422, "validation_failed");
    s.patch(&format!("{API}/admin/payouts/{}", unique("nope"))).token(s.admin()).json(&json!({"status": "approved"})).send().expect_error(404, "not_found");
    s.get(&format!("{API}/admin/payouts")).token(&token).send().expect_error(403, "forbidden");
    s.assert_ledgers_consistent();
}

fn only_active_affiliates_are_paid() {
    let s = instant();
    let (_, token, id, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    s.convert(&buyer, 40_000);
    s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&json!({"status": "suspended"})).send();
    s.post(&format!("{API}/affiliates/payouts")).token(&token).send().expect_error(409, "affiliate_not_active");
    s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&json!({"status": "active"})).send();
    assert_eq!(s.post(&format!("{API}/affiliates/payouts")).token(&token).send().status, 201);
}
