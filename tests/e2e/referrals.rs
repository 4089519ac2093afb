//! The referral program: codes and links, conversion on the first payment, credits, and a
//! credit ledger that never overdraws.

use crate::affiliates::{click, dashboard, BROWSER};
use crate::support::{instant, iso, now, parallel, shared, unique, wait_for, Server, API};
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
        a_bonus_is_pending_for_the_hold_and_a_full_refund_cancels_it,
        a_refund_cancels_a_pending_bonus_only_when_the_payment_no_longer_qualifies,
        a_payment_below_the_minimum_converts_nothing,
        a_payment_made_before_the_referral_existed_converts_nothing,
        the_cron_grants_a_due_bonus_exactly_once,
        concurrent_refunds_and_grants_keep_the_ledgers_consistent,
        a_deactivated_user_earns_nothing_new,
        payments_racing_a_deactivation_report_what_landed,
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
    let s = instant(); // no hold: the bonus is granted at once
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
    assert_eq!(get(s, &carol, "/referrals/balance"), json!({"balance_credits": 0, "pending_credits": 0, "lifetime_earned": 0, "lifetime_spent": 0}));
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
    // Held for 30 days (shared) and granted at once (instant): one bonus either way.
    for (s, expected) in [(shared(), (0, 1_000)), (instant(), (1_000, 0)), (shared(), (0, 1_000)), (instant(), (1_000, 0))] {
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
        assert_eq!(credits(s, &token), expected, "exactly one bonus");
        assert_eq!(get(s, &token, "/referrals/stats")["converted"], 1);
        s.assert_ledgers_consistent();
    }
}

fn deductions_never_overdraw_under_concurrency() {
    let s = instant();
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
    assert_eq!(balance, json!({"balance_credits": 20, "pending_credits": 0, "lifetime_earned": 1_000, "lifetime_spent": 980}));
    let mut balances: Vec<i64> = results.iter().filter(|r| r.status == 200).map(|r| r.json()["balance_credits"].as_i64().unwrap()).collect();
    balances.sort();
    assert_eq!(balances, vec![20, 160, 300, 440, 580, 720, 860], "each success saw its own balance");
    s.assert_ledgers_consistent();
}

fn deductions_need_an_idempotency_key_and_replay() {
    let s = instant();
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

/// The referrer's credit balance: `(balance_credits, pending_credits)`.
fn credits(s: &Server, token: &str) -> (i64, i64) {
    let b = get(s, token, "/referrals/balance");
    (b["balance_credits"].as_i64().unwrap(), b["pending_credits"].as_i64().unwrap_or_else(|| panic!("no pending_credits: {b}")))
}

fn refund(s: &Server, external_id: &str, cents: Option<i64>) -> Value {
    let mut body = json!({"external_id": external_id});
    if let Some(cents) = cents {
        body["amount_cents"] = json!(cents);
    }
    let r = s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&body).send();
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn external_id(conversion: &Value) -> String {
    conversion["conversion"]["external_id"].as_str().unwrap().to_owned()
}

fn a_bonus_is_pending_for_the_hold_and_a_full_refund_cancels_it() {
    let s = shared(); // COMMISSION_HOLD_DAYS=30
    let (_, token, code) = referrer(s);
    let (dana, _) = referred(s, &code);
    // Dana pays exactly the minimum: the referral converts, the bonus is held.
    let conversion = s.convert(&dana, 500);
    assert_eq!(conversion["effects"]["referral_bonus_credits"], 1_000, "{conversion}");
    assert_eq!(
        get(s, &token, "/referrals/balance"),
        json!({"balance_credits": 0, "pending_credits": 1_000, "lifetime_earned": 0, "lifetime_spent": 0})
    );
    let stats = get(s, &token, "/referrals/stats");
    assert_eq!(
        (stats["converted"].clone(), stats["credits_pending"].clone(), stats["credits_earned"].clone()),
        (json!(1), json!(1_000), json!(0)),
        "{stats}"
    );
    // Pending credits cannot be spent.
    s.post(&format!("{API}/referrals/credits/deduct"))
        .token(&token)
        .header("Idempotency-Key", &unique("deduct"))
        .json(&json!({"amount": 1, "reason": "too early"}))
        .send()
        .expect_error(409, "insufficient_credits");
    // A full refund within the hold cancels the bonus: nothing was credited, nothing is pending.
    refund(s, &external_id(&conversion), None);
    assert_eq!(credits(s, &token), (0, 0));
    let stats = get(s, &token, "/referrals/stats");
    assert_eq!((stats["credits_pending"].clone(), stats["credits_earned"].clone()), (json!(0), json!(0)), "{stats}");
    assert!(get(s, &token, "/referrals/credits")["items"].as_array().unwrap().is_empty());
    // Paying again does not earn the referral a second bonus.
    assert_eq!(s.convert(&dana, 5_000)["effects"]["referral_bonus_credits"], Value::Null);
    assert_eq!(credits(s, &token), (0, 0));
    s.assert_ledgers_consistent();
}

fn a_refund_cancels_a_pending_bonus_only_when_the_payment_no_longer_qualifies() {
    let s = shared();
    let (_, token, code) = referrer(s);
    let (ed, _) = referred(s, &code);
    let conversion = s.convert(&ed, 2_000);
    let id = external_id(&conversion);
    // $10.00 of $20.00 refunded: $10.00 still paid, at least the minimum of $5.00.
    refund(s, &id, Some(1_000));
    assert_eq!(credits(s, &token), (0, 1_000));
    // $6.00 more: $4.00 paid, below the minimum.
    refund(s, &id, Some(600));
    assert_eq!(credits(s, &token), (0, 0));
    s.assert_ledgers_consistent();
}

fn a_payment_below_the_minimum_converts_nothing() {
    let s = instant();
    let (_, token, code) = referrer(s);
    let (erin, _) = referred(s, &code);
    // One cent below REFERRAL_MIN_PAYMENT_CENTS (500): no conversion, and no disqualification.
    assert_eq!(s.convert(&erin, 499)["effects"]["referral_bonus_credits"], Value::Null);
    let stats = get(s, &token, "/referrals/stats");
    assert_eq!((stats["pending"].clone(), stats["converted"].clone()), (json!(1), json!(0)), "{stats}");
    assert_eq!(credits(s, &token), (0, 0));
    // The minimum itself converts (granted at once without a hold).
    assert_eq!(s.convert(&erin, 500)["effects"]["referral_bonus_credits"], 1_000);
    assert_eq!(credits(s, &token), (1_000, 0));
    assert_eq!(get(s, &token, "/referrals/stats")["converted"], 1);
}

fn a_payment_made_before_the_referral_existed_converts_nothing() {
    let s = instant();
    let (_, token, code) = referrer(s);
    // Stripe retries an old invoice of Gus's, paid an hour before he used the code.
    let (gus, _) = referred(s, &code);
    let event = json!({
        "id": unique("evt"), "type": "invoice.paid", "created": now() - 3_600,
        "data": {"object": {"id": unique("in"), "object": "invoice", "amount_paid": 5_000, "currency": "usd", "metadata": {"user_id": gus}}}
    });
    assert_eq!(s.stripe(&event).json()["outcome"], "conversion_recorded");
    assert_eq!(credits(s, &token), (0, 0));
    // Fay's payment of an hour ago is reported after she used the code.
    let (fay, _) = referred(s, &code);
    let r = s
        .post(&format!("{API}/admin/conversions"))
        .token(s.admin())
        .json(&json!({"external_id": unique("inv"), "user_id": fay, "amount_cents": 5_000, "currency": "usd", "occurred_at": iso(now() - 3_600)}))
        .send();
    assert_eq!((r.status, r.json()["effects"]["referral_bonus_credits"].clone()), (201, Value::Null), "{}", r.body);
    // Both were customers before the referral: their next payments are no new customer's either.
    assert_eq!(s.convert(&fay, 5_000)["effects"]["referral_bonus_credits"], Value::Null);
    assert_eq!(s.convert(&gus, 5_000)["effects"]["referral_bonus_credits"], Value::Null);
    let stats = get(s, &token, "/referrals/stats");
    assert_eq!((stats["pending"].clone(), stats["converted"].clone()), (json!(2), json!(0)), "{stats}");
    assert_eq!(credits(s, &token), (0, 0));
}

/// Sum of what the `grant_referral_bonuses` job reported over every cron run so far.
fn granted_by_cron(s: &Server) -> u64 {
    s.log_lines().iter().filter(|l| l["job"] == "grant_referral_bonuses").filter_map(|l| l["affected"].as_u64()).sum()
}

fn referrals_metric(s: &Server, token: &str) -> Value {
    get(s, token, "/rewards/badges")["metrics"]["referrals"].clone()
}

fn the_cron_grants_a_due_bonus_exactly_once() {
    // An instance of its own: the test moves the hold's end from outside.
    let s = Server::start(&[("COMMISSION_HOLD_DAYS", "1")]);
    let cases: Vec<(String, String)> = (0..4)
        .map(|_| {
            let (_, token, code) = referrer(&s);
            let (buyer, _) = referred(&s, &code);
            let conversion = s.convert(&buyer, 2_000);
            assert_eq!(conversion["effects"]["referral_bonus_credits"], 1_000);
            (token, external_id(&conversion))
        })
        .collect();
    for (token, _) in &cases {
        assert_eq!(credits(&s, token), (0, 1_000));
        assert_eq!(referrals_metric(&s, token), 0, "the ladder counts a referral when its bonus is granted");
    }
    // The hold has not passed: the cron grants nothing.
    s.run_cron("* * * * *");
    assert!(wait_for(std::time::Duration::from_secs(10), || (s.log_lines().iter().any(|l| l["job"] == "grant_referral_bonuses")).then_some(())).is_some());
    assert_eq!(credits(&s, &cases[0].0), (0, 1_000));
    // The hold passes (moved back from outside while nothing is in flight); 8 cron runs at once.
    s.d1(&format!("UPDATE referral_bonuses SET available_at = {}", now() - 60));
    parallel(8, |_| s.run_cron("* * * * *"));
    for (token, _) in &cases {
        assert_eq!(
            get(&s, token, "/referrals/balance"),
            json!({"balance_credits": 1_000, "pending_credits": 0, "lifetime_earned": 1_000, "lifetime_spent": 0})
        );
        let items = get(&s, token, "/referrals/credits")["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "granted once: {items:?}");
        let stats = get(&s, token, "/referrals/stats");
        assert_eq!((stats["credits_earned"].clone(), stats["credits_pending"].clone()), (json!(1_000), json!(0)));
        assert_eq!(referrals_metric(&s, token), 1);
    }
    let granted = wait_for(std::time::Duration::from_secs(10), || (granted_by_cron(&s) >= 4).then(|| granted_by_cron(&s)));
    assert_eq!(granted, Some(4), "the cron runs together granted each bonus once");
    // After the grant a refund no longer touches the credits.
    refund(&s, &cases[0].1, None);
    assert_eq!(credits(&s, &cases[0].0), (1_000, 0));
    s.run_cron("* * * * *");
    assert_eq!(credits(&s, &cases[0].0), (1_000, 0));
    s.assert_ledgers_consistent();
}

fn concurrent_refunds_and_grants_keep_the_ledgers_consistent() {
    let s = Server::start(&[("COMMISSION_HOLD_DAYS", "1")]);
    let cases: Vec<(String, String)> = (0..8)
        .map(|_| {
            let (_, token, code) = referrer(&s);
            let (buyer, _) = referred(&s, &code);
            let conversion = s.convert(&buyer, 1_000);
            assert_eq!(conversion["effects"]["referral_bonus_credits"], 1_000);
            (token, external_id(&conversion))
        })
        .collect();
    s.d1(&format!("UPDATE referral_bonuses SET available_at = {}", now() - 60));
    // Full refunds of every qualifying payment race cron runs that grant the now due bonuses.
    parallel(16, |i| {
        if i % 2 == 0 {
            s.run_cron("* * * * *");
        } else {
            refund(&s, &cases[i / 2].1, None);
        }
    });
    s.run_cron("* * * * *");
    let mut granted = 0;
    for (token, _) in &cases {
        // Either granted before its refund (kept) or cancelled by it: never both, never pending.
        let (balance, pending) = credits(&s, token);
        assert!(pending == 0 && (balance == 0 || balance == 1_000), "balance {balance}, pending {pending}");
        let items = get(&s, token, "/referrals/credits")["items"].as_array().unwrap().len() as i64;
        assert_eq!(items * 1_000, balance);
        assert_eq!(referrals_metric(&s, token), json!(balance / 1_000), "only a granted bonus counts on the ladder");
        granted += balance / 1_000;
    }
    eprintln!("{granted} of {} bonuses granted before their refund", cases.len());
    s.assert_ledgers_consistent();
}

fn a_deactivated_user_earns_nothing_new() {
    // Links cached for an hour: the deactivation must reach them at once.
    let s = Server::start(&[("LINK_CACHE_SECONDS", "3600"), ("COMMISSION_HOLD_DAYS", "0")]);
    let (affiliate_user, affiliate_token, _, affiliate_code) = s.active_affiliate();
    let (referrer_user, referrer_token, referral_code) = referrer(&s);
    let both = json!({"affiliate_code": affiliate_code, "referral_code": referral_code});
    let attribute = |token: &str, body: &Value| s.post(&format!("{API}/attributions")).token(token).json(body).send();
    let (early, early_token) = s.user();
    let (late, late_token) = s.user();
    assert_eq!(attribute(&early_token, &both).status, 201);
    assert_eq!(attribute(&late_token, &both).status, 201);
    let earned = s.convert(&early, 10_000);
    assert_eq!((earned["effects"]["commission_cents"].clone(), earned["effects"]["referral_bonus_credits"].clone()), (json!(2_000), json!(1_000)));
    let (a_link, r_link) = (format!("/a/{affiliate_code}"), format!("/r/{referral_code}"));
    assert_eq!(click(&s, &a_link, "203.0.113.50").status, 302);
    assert_eq!(click(&s, &r_link, "203.0.113.50").status, 302);
    // An administrator deactivates both.
    let set_active = |user: &str, active: bool| {
        let r = s.patch(&format!("{API}/admin/users/{user}")).token(s.admin()).json(&json!({"is_active": active})).send();
        assert_eq!(r.status, 200, "{}", r.body);
    };
    set_active(&affiliate_user, false);
    set_active(&referrer_user, false);
    // Their links are gone at once, although cached.
    click(&s, &a_link, "203.0.113.50").expect_error(404, "not_found");
    click(&s, &r_link, "203.0.113.50").expect_error(404, "not_found");
    // New users cannot attribute themselves to them, and a refusal records nothing.
    let (newcomer, newcomer_token) = s.user();
    attribute(&newcomer_token, &json!({"affiliate_code": affiliate_code})).expect_error(409, "affiliate_inactive");
    attribute(&newcomer_token, &json!({"referral_code": referral_code})).expect_error(404, "not_found");
    let (_, _, _, other_code) = s.active_affiliate();
    assert_eq!(attribute(&newcomer_token, &json!({"affiliate_code": other_code})).status, 201);
    let _ = newcomer;
    // A payment of a user they brought earlier is recorded and pays them nothing.
    let paid = s.convert(&late, 10_000);
    assert_eq!(paid["effects"], json!({"commission_cents": null, "referral_bonus_credits": null}), "{paid}");
    // Reactivated: what they had earned stayed, nothing accrued meanwhile.
    set_active(&affiliate_user, true);
    set_active(&referrer_user, true);
    let d = dashboard(&s, &affiliate_token);
    assert_eq!((d["conversions"].clone(), d["earnings"]["available_cents"].clone()), (json!(1), json!(2_000)), "{d}");
    assert_eq!(credits(&s, &referrer_token), (1_000, 0));
    let stats = get(&s, &referrer_token, "/referrals/stats");
    assert_eq!((stats["converted"].clone(), stats["pending"].clone()), (json!(1), json!(1)), "{stats}");
    assert_eq!(click(&s, &a_link, "203.0.113.50").status, 302);
    assert_eq!(click(&s, &r_link, "203.0.113.50").status, 302);
    s.assert_ledgers_consistent();
}

fn payments_racing_a_deactivation_report_what_landed() {
    // Its own instance: the ledgers are read with `server.d1`, which opens the instance's SQLite
    // file from another process (on a shared instance that can meet another test's writes
    // and make workerd's D1 answer SQLITE_BUSY).
    let s = &Server::start(&[("COMMISSION_HOLD_DAYS", "0")]);
    let (affiliate_user, _, affiliate_id, affiliate_code) = s.active_affiliate();
    let (referrer_user, _, referral_code) = referrer(s);
    let both = json!({"affiliate_code": affiliate_code, "referral_code": referral_code});
    let buyers: Vec<String> = (0..12)
        .map(|_| {
            let (id, token) = s.user();
            let r = s.post(&format!("{API}/attributions")).token(&token).json(&both).send();
            assert_eq!(r.status, 201, "{}", r.body);
            id
        })
        .collect();
    // Twelve first payments, and both payees deactivated in their midst.
    let results = parallel(buyers.len() + 2, |i| match i {
        0 | 1 => {
            let user = if i == 0 { &affiliate_user } else { &referrer_user };
            let r = s.patch(&format!("{API}/admin/users/{user}")).token(s.admin()).json(&json!({"is_active": false})).send();
            assert_eq!(r.status, 200, "{}", r.body);
            json!(null)
        }
        _ => s.convert(&buyers[i - 2], 10_000)["effects"].clone(),
    });
    // What each response said it did is what the ledgers hold: nothing more, nothing less.
    let reported_cents: i64 = results.iter().filter_map(|e| e["commission_cents"].as_i64()).sum();
    let reported_bonuses = results.iter().filter(|e| e["referral_bonus_credits"].as_i64().is_some()).count() as i64;
    let earned = s.d1(&format!(
        "SELECT COALESCE(SUM(amount_cents), 0) AS cents FROM earnings WHERE payee_id = '{affiliate_id}' AND kind = 'commission'"
    ));
    let bonuses = s.d1(&format!("SELECT COUNT(*) AS n FROM referral_bonuses WHERE referrer_id = '{referrer_user}'"));
    assert_eq!(earned[0]["cents"].as_i64(), Some(reported_cents), "commissions reported {results:?}");
    assert_eq!(bonuses[0]["n"].as_i64(), Some(reported_bonuses), "bonuses reported {results:?}");
    let converted = s.d1(&format!("SELECT COUNT(*) AS n FROM referrals WHERE referrer_id = '{referrer_user}' AND status = 'converted'"));
    assert_eq!(converted[0]["n"].as_i64(), Some(reported_bonuses), "a referral converts with its bonus or not at all");
    s.assert_ledgers_consistent();
}
