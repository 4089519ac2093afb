//! The referral program: codes and links, conversion on the first payment, credits, and a
//! credit ledger that never overdraws.

use crate::affiliates::{click, BROWSER};
use crate::support::{parallel, shared, unique, wait_for, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::time::Duration;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(referrals:
        the_referral_story_ends_in_credits,
        only_a_first_payment_converts,
        concurrent_first_payments_pay_one_bonus,
        deductions_never_overdraw_under_concurrency,
        deductions_need_an_idempotency_key_and_replay,
    )
}

fn get(s: &Server, token: &str, path: &str) -> Value {
    let r = s.get(&format!("{API}{path}")).token(token).send();
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

/// A referrer and their code: `(id, token, code)`.
pub fn referrer(s: &Server) -> (String, String, String) {
    let (id, token) = s.user();
    let code = get(s, &token, "/referrals/code")["referral_code"].as_str().unwrap().to_owned();
    (id, token, code)
}

pub fn referred(s: &Server, code: &str) -> (String, String) {
    let (id, token) = s.user();
    let r = s.post(&format!("{API}/attributions")).token(&token).json(&json!({"referral_code": code})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    (id, token)
}

fn the_referral_story_ends_in_credits() {
    let s = shared();
    let (_, carol) = s.user();
    let first = get(s, &carol, "/referrals/code");
    let code = first["referral_code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("REF") && code.len() == 11, "{code}");
    assert_eq!(first["referral_url"], format!("https://links.soundhash.test/r/{code}"));
    assert_eq!(get(s, &carol, "/referrals/code"), first, "stable");
    // A visitor follows the link.
    let r = click(s, &format!("/r/{code}"), "198.51.100.30");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(format!("https://soundhash.test/signup?ref={code}").as_str()));
    s.get("/r/REF22222222").header("User-Agent", BROWSER).send().expect_error(404, "not_found");
    // Dave signs up with the code.
    let (dave, dave_token) = s.user();
    s.post(&format!("{API}/attributions")).token(&carol).json(&json!({"referral_code": code})).send().expect_error(422, "self_referral");
    let r = s.post(&format!("{API}/attributions")).token(&dave_token).json(&json!({"referral_code": code.to_lowercase()})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["referral"]["status"], "pending");
    let stats = wait_for(Duration::from_secs(10), || {
        let st = get(s, &carol, "/referrals/stats");
        (st["clicks"] == 1).then_some(st)
    })
    .expect("the click is counted");
    assert_eq!((stats["total"].clone(), stats["pending"].clone(), stats["converted"].clone()), (json!(1), json!(1), json!(0)));
    assert_eq!(get(s, &carol, "/referrals/balance"), json!({"balance_credits": 0, "lifetime_earned": 0, "lifetime_spent": 0}));
    // Dave pays: the referral converts and Carol earns 1,000 credits.
    assert_eq!(s.convert(&dave, 1_999)["effects"]["referral_bonus_credits"], 1_000);
    let stats = get(s, &carol, "/referrals/stats");
    assert_eq!((stats["pending"].clone(), stats["converted"].clone(), stats["credits_earned"].clone()), (json!(0), json!(1), json!(1_000)));
    assert_eq!(get(s, &carol, "/referrals/balance")["balance_credits"], 1_000);
    // Dave pays again: no second bonus.
    assert_eq!(s.convert(&dave, 1_999)["effects"]["referral_bonus_credits"], Value::Null);
    assert_eq!(get(s, &carol, "/referrals/balance")["balance_credits"], 1_000);
    let txs = get(s, &carol, "/referrals/credits");
    let items = txs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0]["kind"].clone(), items[0]["amount"].clone(), items[0]["balance_after"].clone()), (json!("bonus"), json!(1_000), json!(1_000)));
    // Dave's own credits are untouched.
    assert_eq!(get(s, &dave_token, "/referrals/balance")["balance_credits"], 0);
}

fn only_a_first_payment_converts() {
    let s = shared();
    let (_, token, code) = referrer(s);
    // Erin paid before she used the code: her next payment is not a first one.
    let (erin, erin_token) = s.user();
    s.convert(&erin, 5_000);
    s.post(&format!("{API}/attributions")).token(&erin_token).json(&json!({"referral_code": code})).send();
    assert_eq!(s.convert(&erin, 5_000)["effects"]["referral_bonus_credits"], Value::Null);
    let stats = get(s, &token, "/referrals/stats");
    assert_eq!((stats["pending"].clone(), stats["converted"].clone(), stats["credits_earned"].clone()), (json!(1), json!(0), json!(0)));
}

fn concurrent_first_payments_pay_one_bonus() {
    let s = shared();
    for _ in 0..5 {
        let (_, token, code) = referrer(s);
        let (frank, _) = referred(s, &code);
        let results = parallel(30, |_| {
            s.post(&format!("{API}/admin/conversions"))
                .token(s.admin())
                .json(&json!({"external_id": unique("inv"), "user_id": frank, "amount_cents": 2_500, "currency": "usd"}))
                .send()
        });
        assert!(results.iter().all(|r| r.status == 201), "{results:?}");
        let bonuses = results.iter().filter(|r| r.json()["effects"]["referral_bonus_credits"] == 1_000).count();
        assert!(bonuses >= 1, "{results:?}");
        assert_eq!(get(s, &token, "/referrals/balance")["balance_credits"], 1_000, "exactly one bonus");
        assert_eq!(get(s, &token, "/referrals/stats")["converted"], 1);
    }
    s.assert_ledgers_consistent();
}

fn deductions_never_overdraw_under_concurrency() {
    let s = shared();
    let (_, token, code) = referrer(s);
    let (george, _) = referred(s, &code);
    s.convert(&george, 1_000);
    assert_eq!(get(s, &token, "/referrals/balance")["balance_credits"], 1_000);
    // 20 parallel deductions of 140 against 1,000 credits: exactly 7 fit.
    let results = parallel(20, |_| {
        s.post(&format!("{API}/referrals/credits/deduct"))
            .token(&token)
            .header("Idempotency-Key", &unique("deduct"))
            .json(&json!({"amount": 140, "reason": "fingerprint lookups"}))
            .send()
    });
    let ok = results.iter().filter(|r| r.status == 200).count();
    let refused = results.iter().filter(|r| r.status == 409 && r.code() == "insufficient_credits").count();
    assert_eq!((ok, refused), (7, 13), "{results:?}");
    let balance = get(s, &token, "/referrals/balance");
    assert_eq!(balance, json!({"balance_credits": 20, "lifetime_earned": 1_000, "lifetime_spent": 980}));
    let mut balances: Vec<i64> = results.iter().filter(|r| r.status == 200).map(|r| r.json()["balance_credits"].as_i64().unwrap()).collect();
    balances.sort();
    assert_eq!(balances, vec![20, 160, 300, 440, 580, 720, 860], "each success saw its own balance");
    s.assert_ledgers_consistent();
}

fn deductions_need_an_idempotency_key_and_replay() {
    let s = shared();
    let (_, token, code) = referrer(s);
    let (harry, _) = referred(s, &code);
    s.convert(&harry, 1_000);
    let deduct = |key: Option<&str>, body: Value| {
        let mut call = s.post(&format!("{API}/referrals/credits/deduct")).token(&token);
        if let Some(key) = key {
            call = call.header("Idempotency-Key", key);
        }
        call.json(&body).send()
    };
    let r = deduct(None, json!({"amount": 100, "reason": "x"}));
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "Idempotency-Key");
    for (body, field) in [(json!({"amount": 0, "reason": "x"}), "amount"), (json!({"amount": -5, "reason": "x"}), "amount"), (json!({"amount": 5, "reason": ""}), "reason"), (json!({"amount": 5}), "reason")] {
        let r = deduct(Some(&unique("k")), body.clone());
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{body}");
    }
    let key = unique("k");
    let first = deduct(Some(&key), json!({"amount": 250, "reason": "batch job"}));
    assert_eq!(first.json()["balance_credits"], 750);
    let again = deduct(Some(&key), json!({"amount": 250, "reason": "batch job"}));
    assert_eq!((again.json()["balance_credits"].clone(), again.header("idempotent-replayed")), (json!(750), Some("true")));
    deduct(Some(&key), json!({"amount": 999, "reason": "batch job"})).expect_error(409, "idempotency_conflict");
    assert_eq!(get(s, &token, "/referrals/balance")["balance_credits"], 750);
    // Too much is refused and changes nothing; the refusal replays too.
    let big = unique("k");
    deduct(Some(&big), json!({"amount": 751, "reason": "too much"})).expect_error(409, "insufficient_credits");
    deduct(Some(&big), json!({"amount": 751, "reason": "too much"})).expect_error(409, "insufficient_credits");
    assert_eq!(get(s, &token, "/referrals/balance")["balance_credits"], 750);
}
