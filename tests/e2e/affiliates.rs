//! The affiliate program end to end: apply, review, the edge link, attribution, conversions
//! (Stripe), refunds, the dashboard and payouts — exact at every step.

use crate::support::{instant, now, parallel, shared, unique, wait_for, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::time::Duration;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(affiliates:
        the_affiliate_story_is_exact_at_every_step,
        commissions_wait_for_the_hold,
        a_full_refund_before_payout_reverses_the_commission,
        applications_and_terms,
        the_review_transitions,
        attribution_rules,
        concurrent_attributions_keep_the_first,
        concurrent_reviews_lose_no_update,
        commission_rules,
        edge_links_count_people_not_machines,
        links_cache_their_code_and_forget_it_on_change,
        concurrent_clicks_are_all_counted,
        a_payout_email_is_one_plain_address,
        out_of_range_rates_read_as_errors_and_d1_refuses_them,
    )
}

pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

pub fn dashboard(s: &Server, token: &str) -> Value {
    let r = s.get(&format!("{API}/affiliates/dashboard")).token(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn earnings(d: &Value) -> [i64; 5] {
    let e = &d["earnings"];
    ["pending_cents", "available_cents", "in_payout_cents", "paid_cents", "reversed_cents"].map(|k| e[k].as_i64().unwrap())
}

pub fn click(s: &Server, path: &str, ip: &str) -> crate::support::Resp {
    s.get(path).header("User-Agent", BROWSER).header("CF-Connecting-IP", ip).send()
}

/// Waits until the dashboard shows `n` clicks (they are recorded after the response).
fn wait_clicks(s: &Server, token: &str, n: i64) -> Value {
    wait_for(Duration::from_secs(10), || {
        let d = dashboard(s, token);
        (d["clicks"] == n).then_some(d)
    })
    .unwrap_or_else(|| panic!("clicks never reached {n}: {}", dashboard(s, token)))
}

fn invoice_paid(invoice: &str, user: &str, cents: i64) -> Value {
    json!({
        "id": unique("evt"), "type": "invoice.paid", "created": now(),
        "data": {"object": {"id": invoice, "object": "invoice", "amount_paid": cents, "currency": "usd",
                            "customer": unique("cus"), "metadata": {"user_id": user}}}
    })
}

fn charge_refunded(invoice: &str, refunded_total: i64) -> Value {
    json!({
        "id": unique("evt"), "type": "charge.refunded", "created": now(),
        "data": {"object": {"id": unique("ch"), "object": "charge", "invoice": invoice, "amount_refunded": refunded_total}}
    })
}

fn payout_status(s: &Server, id: &str, status: &str) -> Value {
    let r = s.patch(&format!("{API}/admin/payouts/{id}")).token(s.admin()).json(&json!({"status": status})).send();
    assert_eq!(r.status, 200, "{status}: {}", r.body);
    r.json()
}

fn the_affiliate_story_is_exact_at_every_step() {
    let s = instant();
    // Alice applies.
    let (_, alice) = s.user();
    let r = s.post(&format!("{API}/affiliates")).token(&alice).json(&json!({"website": "https://alice.example.com", "payout_email": "alice@example.com"})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let application = r.json();
    assert_eq!(application["status"], "pending");
    assert_eq!((application["commission_rate_bps"].clone(), application["commission_months"].clone()), (json!(2000), json!(3)));
    let code = application["affiliate_code"].as_str().unwrap().to_owned();
    let id = application["id"].as_str().unwrap().to_owned();
    assert!(code.starts_with("AFF") && code.len() == 11 && !code[3..].contains(['0', 'O', '1', 'I']), "{code}");
    // Not yet active: the link is 404, never a redirect.
    let r = click(s, &format!("/a/{code}"), "198.51.100.20");
    assert_eq!((r.status, r.header("location")), (404, None));
    // The admin approves.
    let r = s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&json!({"status": "active"})).send();
    assert_eq!(r.json()["status"], "active");
    // A visitor clicks the link.
    let r = click(s, &format!("/a/{code}"), "198.51.100.20");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(format!("https://soundhash.test/partners?src=aff&aff={code}").as_str()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let d = wait_clicks(s, &alice, 1);
    assert_eq!(earnings(&d), [0, 0, 0, 0, 0]);
    assert_eq!((d["referred_users"].clone(), d["conversions"].clone(), d["revenue_cents"].clone()), (json!(0), json!(0), json!(0)));
    // Bob signs up and attributes.
    let (bob, bob_token) = s.user();
    let r = s.post(&format!("{API}/attributions")).token(&bob_token).json(&json!({"affiliate_code": code.to_lowercase()})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["affiliate_code"], code.as_str());
    assert_eq!(dashboard(s, &alice)["referred_users"], 1);
    // Bob pays $300.00 (signed Stripe event): 20 % = $60.00, available at once on this instance.
    let invoice = unique("in");
    let r = s.stripe(&invoice_paid(&invoice, &bob, 30_000));
    assert_eq!((r.status, r.json()["outcome"].clone()), (200, json!("conversion_recorded")), "{}", r.body);
    let d = dashboard(s, &alice);
    assert_eq!((d["conversions"].clone(), d["revenue_cents"].clone()), (json!(1), json!(30_000)));
    assert_eq!(earnings(&d), [0, 6_000, 0, 0, 0]);
    // Alice takes a payout of everything available.
    let r = s.post(&format!("{API}/affiliates/payouts")).token(&alice).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let payout = r.json();
    assert_eq!((payout["amount_cents"].clone(), payout["status"].clone()), (json!(6_000), json!("pending")));
    assert_eq!(earnings(&dashboard(s, &alice)), [0, 0, 6_000, 0, 0]);
    let again = s.post(&format!("{API}/affiliates/payouts")).token(&alice).send();
    again.expect_error(409, "below_minimum");
    // Bob gets $100.00 back while the payout is under way: a third of the commission comes back
    // as an adjustment against the next payout.
    let r = s.stripe(&charge_refunded(&invoice, 10_000));
    assert_eq!(r.json()["outcome"], "refund_recorded", "{}", r.body);
    let d = dashboard(s, &alice);
    assert_eq!(d["revenue_cents"], 20_000);
    assert_eq!(earnings(&d), [0, -2_000, 6_000, 0, 2_000]);
    // The payout goes through.
    let payout_id = payout["id"].as_str().unwrap();
    payout_status(s, payout_id, "approved");
    payout_status(s, payout_id, "processing");
    assert_eq!(payout_status(s, payout_id, "paid")["status"], "paid");
    assert_eq!(earnings(&dashboard(s, &alice)), [0, -2_000, 0, 6_000, 2_000]);
    // Bob renews for $500.00: $100.00 commission, less the $20.00 owed.
    let r = s.stripe(&invoice_paid(&unique("in"), &bob, 50_000));
    assert_eq!(r.json()["outcome"], "conversion_recorded");
    assert_eq!(earnings(&dashboard(s, &alice)), [0, 8_000, 0, 6_000, 2_000]);
    let r = s.post(&format!("{API}/affiliates/payouts")).token(&alice).send();
    assert_eq!(r.json()["amount_cents"], 8_000, "{}", r.body);
    let d = dashboard(s, &alice);
    assert_eq!(earnings(&d), [0, 0, 8_000, 6_000, 2_000]);
    assert_eq!((d["conversions"].clone(), d["revenue_cents"].clone()), (json!(2), json!(70_000)));
    // The ledger rows say the same.
    let rows = s.get(&format!("{API}/affiliates/earnings")).token(&alice).send().json();
    let amounts: Vec<i64> = rows["items"].as_array().unwrap().iter().map(|e| e["amount_cents"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![10_000, -2_000, 6_000], "newest first");
    let payouts = s.get(&format!("{API}/affiliates/payouts")).token(&alice).send().json();
    assert_eq!(payouts["items"].as_array().unwrap().len(), 2);
    s.assert_ledgers_consistent();
}

fn commissions_wait_for_the_hold() {
    let s = shared(); // COMMISSION_HOLD_DAYS=30
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let before = now();
    let conversion = s.convert(&buyer, 9_999);
    assert_eq!(conversion["effects"]["commission_cents"], 2_000); // 1999.8 → 2000
    assert_eq!(earnings(&dashboard(s, &token)), [2_000, 0, 0, 0, 0]);
    // A partial refund of a held commission is held with it: less pending, no debt available now.
    let external_id = conversion["conversion"]["external_id"].as_str().unwrap();
    let r = s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id, "amount_cents": 5_000})).send();
    assert_eq!(r.json()["commission_reversed_cents"], 1_000, "{}", r.body); // 2000 × 5000/9999 = 1000.1
    assert_eq!(earnings(&dashboard(s, &token)), [1_000, 0, 0, 0, 1_000]);
    s.post(&format!("{API}/affiliates/payouts")).token(&token).send().expect_error(409, "below_minimum");
    let rows = s.get(&format!("{API}/affiliates/earnings")).token(&token).send().json();
    let items = rows["items"].as_array().unwrap();
    assert_eq!(items.iter().map(|r| r["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["adjustment", "commission"]);
    assert!(items.iter().all(|r| r["status"] == "pending"), "{rows}");
    let row = &items[1];
    let available_at = crate::support::parse_time(row["available_at"].as_str().unwrap());
    assert!((available_at - before - 30 * 86_400).abs() <= 5, "held for 30 days: {row}");
}

fn a_full_refund_before_payout_reverses_the_commission() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let conversion = s.convert(&buyer, 12_345);
    assert_eq!(conversion["effects"]["commission_cents"], 2_469);
    let external_id = conversion["conversion"]["external_id"].as_str().unwrap();
    let r = s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.json()["commission_reversed_cents"].clone(), r.json()["conversion"]["refunded_cents"].clone()), (json!(2_469), json!(12_345)));
    assert_eq!(earnings(&dashboard(s, &token)), [0, 0, 0, 0, 2_469]);
    let rows = s.get(&format!("{API}/affiliates/earnings")).token(&token).send().json();
    assert_eq!(rows["items"].as_array().unwrap().len(), 1, "reversed in place, no adjustment row");
    assert_eq!(rows["items"][0]["status"], "reversed");
    // Nothing is left to refund.
    let r = s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id, "amount_cents": 1})).send();
    r.expect_error(409, "refund_exceeds_amount");
}

fn applications_and_terms() {
    let s = shared();
    let (_, token) = s.user();
    let apply = |body: Value| s.post(&format!("{API}/affiliates")).token(&token).json(&body).send();
    apply(json!({"commission_rate_bps": 3000})).expect_error(403, "forbidden");
    apply(json!({"commission_months": 12})).expect_error(403, "forbidden");
    for (body, field) in [
        (json!({"website": "javascript:alert(1)"}), "website"),
        (json!({"payout_email": "not-an-email"}), "payout_email"),
        (json!({"commission_rate_bps": 10_001}), "commission_rate_bps"),
        (json!({"commission_months": 0}), "commission_months"),
        (json!({"status": "active"}), "status"),
    ] {
        let r = apply(body.clone());
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{body}");
    }
    // Defaults are allowed to anyone.
    let r = apply(json!({"commission_rate_bps": 2000, "commission_months": 3}));
    assert_eq!(r.status, 201, "{}", r.body);
    apply(json!({})).expect_error(409, "already_exists");
    // An administrator may set other terms (for themselves too).
    let (_, admin) = s.new_admin();
    let r = s.post(&format!("{API}/affiliates")).token(&admin).json(&json!({"commission_rate_bps": 3500, "commission_months": 12})).send();
    assert_eq!((r.status, r.json()["commission_rate_bps"].clone(), r.json()["commission_months"].clone()), (201, json!(3500), json!(12)));
    // Not an affiliate: no dashboard.
    let (_, stranger) = s.user();
    s.get(&format!("{API}/affiliates/dashboard")).token(&stranger).send().expect_error(404, "not_found");
    s.get(&format!("{API}/affiliates/earnings")).token(&stranger).send().expect_error(404, "not_found");
    s.post(&format!("{API}/affiliates/payouts")).token(&stranger).send().expect_error(404, "not_found");
}

fn the_review_transitions() {
    let s = shared();
    let (_, token) = s.user();
    let id = s.post(&format!("{API}/affiliates")).token(&token).json(&json!({})).send().json()["id"].as_str().unwrap().to_owned();
    let review = |body: Value| s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&body).send();
    review(json!({"status": "suspended"})).expect_error(409, "invalid_transition");
    assert_eq!(review(json!({"status": "active"})).json()["status"], "active");
    review(json!({"status": "pending"})).expect_error(409, "invalid_transition");
    assert_eq!(review(json!({"status": "suspended"})).json()["status"], "suspended");
    assert_eq!(review(json!({"status": "active", "commission_rate_bps": 2500})).json()["commission_rate_bps"], 2500);
    assert_eq!(review(json!({"status": "terminated"})).json()["status"], "terminated");
    review(json!({"status": "active"})).expect_error(409, "invalid_transition");
    review(json!({"commission_rate_bps": 100})).expect_error(409, "invalid_transition");
    review(json!({})).expect_error(422, "validation_failed");
    review(json!({"status": "archived"})).expect_error(422, "validation_failed");
    s.patch(&format!("{API}/admin/affiliates/{}", unique("nope"))).token(s.admin()).json(&json!({"status": "active"})).send().expect_error(404, "not_found");
    // Users cannot review.
    s.patch(&format!("{API}/admin/affiliates/{id}")).token(&token).json(&json!({"status": "active"})).send().expect_error(403, "forbidden");
    // The admin listing filters by status and pages.
    let listed = s.get(&format!("{API}/admin/affiliates?status=terminated&limit=100")).token(s.admin()).send().json();
    assert!(listed["items"].as_array().unwrap().iter().all(|a| a["status"] == "terminated"));
    s.get(&format!("{API}/admin/affiliates?status=archived")).token(s.admin()).send().expect_error(422, "validation_failed");
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = s.get(&format!("{API}/admin/affiliates?status=terminated&limit=1{cursor}")).token(s.admin()).send().json();
        seen += page["items"].as_array().unwrap().iter().filter(|a| a["id"] == id.as_str()).count();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, 1);
}

fn attribution_rules() {
    let s = shared();
    let (_, owner_token, affiliate_id, code) = s.active_affiliate();
    let attribute = |token: &str, body: Value| s.post(&format!("{API}/attributions")).token(token).json(&body).send();
    attribute(&owner_token, json!({"affiliate_code": code})).expect_error(422, "self_referral");
    let (_, t) = s.user();
    attribute(&t, json!({})).expect_error(422, "validation_failed");
    attribute(&t, json!({"affiliate_code": "AFF22222222"})).expect_error(404, "not_found");
    attribute(&t, json!({"affiliate_code": "not a code"})).expect_error(404, "not_found");
    attribute(&t, json!({"referral_code": "REF22222222"})).expect_error(404, "not_found");
    // A suspended affiliate's code is refused.
    s.patch(&format!("{API}/admin/affiliates/{affiliate_id}")).token(s.admin()).json(&json!({"status": "suspended"})).send();
    attribute(&t, json!({"affiliate_code": code})).expect_error(409, "affiliate_inactive");
    s.patch(&format!("{API}/admin/affiliates/{affiliate_id}")).token(s.admin()).json(&json!({"status": "active"})).send();
    assert_eq!(attribute(&t, json!({"affiliate_code": code})).status, 201);
    // First touch wins.
    let (_, _, _, other) = s.active_affiliate();
    attribute(&t, json!({"affiliate_code": other})).expect_error(409, "already_attributed");
}

fn concurrent_attributions_keep_the_first() {
    let s = shared();
    let codes: Vec<String> = (0..4).map(|_| s.active_affiliate().3).collect();
    let (user, token) = s.user();
    let results = parallel(12, |i| {
        s.post(&format!("{API}/attributions")).token(&token).json(&json!({"affiliate_code": codes[i % codes.len()]})).send()
    });
    let created: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.status == 409 && r.code() == "already_attributed"));
    // The conversion goes to the one that won.
    let winner = created[0].json()["affiliate_code"].as_str().unwrap().to_owned();
    let conversion = s.convert(&user, 10_000);
    assert_eq!(conversion["effects"]["commission_cents"], 2_000);
    assert!(codes.contains(&winner));
}

/// Admins changing different terms of one affiliate at once: every change that was answered 200
/// stays visible until a later change of the same field replaces it. A review that wrote back a
/// stale copy of the other field would put its initial value (2000 bps, 3 months) back.
fn concurrent_reviews_lose_no_update() {
    let s = shared();
    for round in 0..3 {
        let (_, token, id, _) = s.active_affiliate();
        let results = parallel(16, |i| {
            let body = if i % 2 == 0 { json!({"commission_rate_bps": 2_100 + i}) } else { json!({"commission_months": 4 + i}) };
            s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&body).send()
        });
        let applied: Vec<Value> = results.iter().filter(|r| r.status == 200).map(|r| r.json()).collect();
        assert!(results.iter().all(|r| r.status == 200 || (r.status == 409 && r.code() == "concurrent_update")), "{results:?}");
        // Each answer shows its own change.
        for (i, r) in results.iter().enumerate().filter(|(_, r)| r.status == 200) {
            let (field, value) = if i % 2 == 0 { ("commission_rate_bps", 2_100 + i) } else { ("commission_months", 4 + i) };
            assert_eq!(r.json()[field], json!(value), "round {round}, request {i}");
        }
        let now = dashboard(s, &token);
        let rates: Vec<&Value> = applied.iter().map(|a| &a["commission_rate_bps"]).collect();
        let months: Vec<&Value> = applied.iter().map(|a| &a["commission_months"]).collect();
        let (rate_set, months_set) = (results.iter().step_by(2).any(|r| r.status == 200), results.iter().skip(1).step_by(2).any(|r| r.status == 200));
        assert!(!rate_set || now["commission_rate_bps"] != 2_000, "round {round}: a rate change was lost: {now}");
        assert!(!months_set || now["commission_months"] != 3, "round {round}: a months change was lost: {now}");
        assert!(rates.contains(&&now["commission_rate_bps"]) && months.contains(&&now["commission_months"]), "round {round}: {now}");
    }
}

fn commission_rules() {
    let s = shared();
    let (_, token, affiliate_id, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    // A payment from before the attribution earns nothing.
    let r = s
        .post(&format!("{API}/admin/conversions"))
        .token(s.admin())
        .json(&json!({"external_id": unique("inv"), "user_id": buyer, "amount_cents": 10_000, "currency": "usd",
                      "occurred_at": "2020-01-01T00:00:00Z"}))
        .send();
    assert_eq!((r.status, r.json()["effects"]["commission_cents"].clone()), (201, Value::Null));
    // A suspended affiliate earns nothing; reactivated, it does again, at the new rate.
    s.patch(&format!("{API}/admin/affiliates/{affiliate_id}")).token(s.admin()).json(&json!({"status": "suspended"})).send();
    assert_eq!(s.convert(&buyer, 10_000)["effects"]["commission_cents"], Value::Null);
    s.patch(&format!("{API}/admin/affiliates/{affiliate_id}")).token(s.admin()).json(&json!({"status": "active", "commission_rate_bps": 1500})).send();
    assert_eq!(s.convert(&buyer, 999)["effects"]["commission_cents"], 150); // 149.85 → 150
    assert_eq!(dashboard(s, &token)["conversions"], 1);
    // A user who was never attributed earns nobody anything.
    let (loner, _) = s.user();
    assert_eq!(s.convert(&loner, 10_000)["effects"]["commission_cents"], Value::Null);
}

/// The click path caches what it read about a code (`LINK_CACHE_SECONDS`, an hour here): a
/// change made behind the API's back is not seen, a change through the API is seen at once.
fn links_cache_their_code_and_forget_it_on_change() {
    let s = crate::support::Server::start(&[("LINK_CACHE_SECONDS", "3600")]);
    let (_, _, id, code) = s.active_affiliate();
    let link = format!("/a/{code}");
    assert_eq!(click(&s, &link, "203.0.113.40").status, 302);
    s.d1(&format!("UPDATE affiliates SET status = 'suspended' WHERE id = '{id}'"));
    assert_eq!(click(&s, &link, "203.0.113.40").status, 302, "served from the isolate's cache");
    s.d1(&format!("UPDATE affiliates SET status = 'active' WHERE id = '{id}'"));
    let review = |status: &str| s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).json(&json!({"status": status})).send();
    assert_eq!(review("suspended").status, 200);
    click(&s, &link, "203.0.113.40").expect_error(404, "not_found");
    assert_eq!(review("active").status, 200);
    assert_eq!(click(&s, &link, "203.0.113.40").status, 302);
}

fn edge_links_count_people_not_machines() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let link = format!("/a/{code}");
    assert_eq!(click(s, &link, "203.0.113.10").status, 302);
    assert_eq!(click(s, &link, "203.0.113.10").status, 302); // same visitor, same hour
    assert_eq!(click(s, &link, "203.0.113.11").status, 302);
    let head = s.request("HEAD", &link).header("User-Agent", BROWSER).send();
    assert_eq!(head.status, 302);
    for bot in ["Googlebot/2.1 (+http://www.google.com/bot.html)", "facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0"] {
        let r = s.get(&link).header("User-Agent", bot).send();
        assert_eq!(r.status, 302, "bots are redirected too, just not counted");
    }
    assert_eq!(s.get(&link).header("User-Agent", "").send().status, 302); // no user agent at all
    let d = wait_clicks(s, &token, 3);
    assert_eq!(d["unique_visitors"], 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(dashboard(s, &token)["clicks"], 3, "HEAD and bots are not counted");
    // Unknown codes and other paths are 404, never a redirect.
    for path in ["/a/AFF22222222", "/a/AFF", "/a/%3Cscript%3E", "/a/"] {
        let r = s.get(path).header("User-Agent", BROWSER).send();
        assert_eq!((r.status, r.header("location")), (404, None), "{path}");
    }
    // Codes are case-insensitive; the redirect carries the canonical form.
    let r = click(s, &format!("/a/{}", code.to_lowercase()), "203.0.113.12");
    assert!(r.header("location").unwrap().ends_with(&format!("aff={code}")));
}

fn concurrent_clicks_are_all_counted() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let link = format!("/a/{code}");
    let results = parallel(40, |i| click(s, &link, &format!("192.0.2.{}", i % 10)));
    assert!(results.iter().all(|r| r.status == 302));
    let d = wait_clicks(s, &token, 40);
    assert_eq!(d["unique_visitors"], 10);
}

fn a_payout_email_is_one_plain_address() {
    let s = shared();
    let (_, token) = s.user();
    let apply = |email: &str| s.post(&format!("{API}/affiliates")).token(&token).json(&json!({"payout_email": email})).send();
    let (long_local, long_domain) = (format!("{}@x.com", "a".repeat(65)), format!("a@{}.com", "x".repeat(250)));
    for email in [
        "a@x.com,b@y.com",
        "a@x.com;b@y.com",
        "\"<script>\"@x.com",
        "\"a b\"@x.com",
        "Alice <alice@x.com>",
        "<alice@x.com>",
        "alice@x.com\r\nBcc: eve@y.com",
        "a@@x.com",
        "a@b@x.com",
        "@x.com",
        "alice@",
        "alice@localhost",
        "alice@x",
        "alice@-x.com",
        "alice@x-.com",
        "alice@x..com",
        "alice@[127.0.0.1]",
        ".alice@x.com",
        "alice.@x.com",
        "al..ice@x.com",
        "al(ice)@x.com",
        "alicé@x.com",
        long_local.as_str(),
        long_domain.as_str(),
    ] {
        let r = apply(email);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], "payout_email", "{email}: {}", r.body);
    }
    let r = apply(" Alice.O'Brien+payouts@Mail.Example-Bank.co.uk ");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["payout_email"], "Alice.O'Brien+payouts@Mail.Example-Bank.co.uk");
}

fn out_of_range_rates_read_as_errors_and_d1_refuses_them() {
    // An instance of its own: the test writes its D1 from outside.
    let own = Server::start(&[]);
    let s = &own;
    let (_, token, affiliate_id, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    assert_eq!(s.convert(&buyer, 10_000)["effects"]["commission_cents"], 2_000);
    // Rows that got past D1's checks (written with them off) read as errors, never as numbers
    // wrapped into range: a rate of -1 is not 4294967295 bps, nor 2^32 + 2000 bps 2000.
    let unchecked = |sql: String| s.d1(&format!("PRAGMA ignore_check_constraints = ON; {sql}; PRAGMA ignore_check_constraints = OFF;"));
    unchecked(format!("UPDATE affiliates SET commission_rate_bps = -1 WHERE id = '{affiliate_id}'"));
    s.get(&format!("{API}/affiliates/dashboard")).token(&token).send().expect_error(500, "internal_error");
    s.get(&format!("{API}/admin/affiliates?limit=100")).token(s.admin()).send().expect_error(500, "internal_error");
    unchecked(format!("UPDATE affiliates SET commission_rate_bps = {} WHERE id = '{affiliate_id}'", (1_i64 << 32) + 2_000));
    let conversion = json!({"external_id": unique("inv"), "user_id": buyer, "amount_cents": 10_000, "currency": "usd"});
    s.post(&format!("{API}/admin/conversions")).token(s.admin()).json(&conversion).send().expect_error(500, "internal_error");
    unchecked(format!(
        "UPDATE affiliates SET commission_rate_bps = 2000 WHERE id = '{affiliate_id}'; UPDATE earnings SET rate_bps = -1 WHERE payee_id = '{affiliate_id}'"
    ));
    s.get(&format!("{API}/affiliates/earnings")).token(&token).send().expect_error(500, "internal_error");
    unchecked(format!("UPDATE earnings SET rate_bps = 2000 WHERE payee_id = '{affiliate_id}'"));
    assert_eq!(dashboard(s, &token)["commission_rate_bps"], 2_000);
    // D1 itself refuses a rate outside 0–10000, in the earnings ledger as in affiliates.
    for rate in [10_001, -1] {
        for sql in [
            format!("UPDATE earnings SET rate_bps = {rate} WHERE payee_id = '{affiliate_id}'"),
            format!(
                "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, rate_bps, status, available_at, created_at, updated_at)
                 VALUES ('{}', 'affiliate', '{affiliate_id}', 'commission', 1, {rate}, 'open', 0, 0, 0)",
                unique("earning")
            ),
            format!("UPDATE affiliates SET commission_rate_bps = {rate} WHERE id = '{affiliate_id}'"),
        ] {
            let refused = s.try_d1(&sql).expect_err(&sql);
            assert!(refused.contains("CHECK constraint failed"), "{sql}: {refused}");
        }
    }
    s.assert_ledgers_consistent();
}
