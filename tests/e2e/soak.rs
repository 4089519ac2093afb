//! Soak: for `SOAK_SECONDS` (default 40; `npm run soak` runs 600), several concurrent clients
//! send a mixed load to one instance: clicks on the three kinds of links, redemptions of
//! campaigns near their limit, credit deductions near a zero balance, Stripe payments and refunds
//! (some events sent twice at once), revenue records (some re-sent), purchases and license
//! activations beyond their limit, reseller usage near its quota, and affiliate payouts taken to
//! paid. Halfway, the instance's processes are killed (SIGKILL) and started again on the same
//! state; the clients carry on.
//!
//! At the end: the ledger audit is empty; every counter holds everything the clients saw
//! accepted and nothing more than that plus what was in flight when the processes died; no
//! response was a 5xx; clicks lost with the killed isolate are counted, and are at most those
//! answered in the last second before the kill (the isolate holds a link's clicks 100 ms before
//! it sends them). Latencies per route class are reported; `SOAK_REPORT=FILE` writes the figures
//! as a BENCHMARKS.md section.

use crate::affiliates::dashboard;
use crate::support::{iso, now, parallel, unique, Resp, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(soak: a_mixed_load_with_a_crash_loses_nothing_answered_and_counts_nothing_twice)
}

/// Commission on each payment: 20 % of `PAYMENT`.
const PAYMENT: i64 = 25_000;
const COMMISSION: i64 = 5_000;

/// What the clients saw, for the final checks.
#[derive(Default)]
struct Seen {
    /// Per route class: latencies (ms) of answered requests.
    latency: BTreeMap<&'static str, Vec<f64>>,
    /// Requests sent with no answer (the instance was down or died under them).
    unanswered: BTreeMap<&'static str, usize>,
    /// 5xx answers (must be none).
    server_errors: Vec<String>,
    /// Per link: when each 302 came back.
    clicks: BTreeMap<String, Vec<Instant>>,
    /// Per campaign code: redemptions answered 201, and sent unanswered.
    redeemed: BTreeMap<String, (i64, i64)>,
    /// Credits deducted (answered 200) and sent unanswered, in credits.
    deducted: (i64, i64),
    /// Stripe: invoices answered (paid, refunded) and unanswered (paid, refunded).
    invoices: (i64, i64),
    refunds: (i64, i64),
    /// Payouts of the paying affiliate taken to `paid` (cents), and commissions it earned.
    paid_out: i64,
    payout_conversions: (i64, i64),
    /// Revenue records accepted (first or duplicate) and in unanswered batches.
    records: (i64, i64),
    /// Purchases answered, unanswered; per license key: activations answered 201, unanswered.
    purchases: (i64, i64),
    activations: BTreeMap<String, (i64, i64)>,
    /// Reseller calls accepted, unanswered; quota resets answered.
    usage: (i64, i64),
    resets: i64,
    /// A payout left open at the end (its amount).
    open_payout: i64,
    /// Per route class: answers after the restart.
    after_restart: BTreeMap<&'static str, usize>,
}

struct Soak<'a> {
    s: &'a Server,
    seen: Mutex<Seen>,
    stop: AtomicBool,
    /// While the instance is down, clients wait instead of spinning.
    down: AtomicBool,
    /// Set once the instance is back: answers from then on are counted per class.
    revived: AtomicBool,
}

/// Stops the clients when dropped.
struct StopOnDrop<'a, 'b>(&'a Soak<'b>);

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.down.store(false, Ordering::SeqCst);
    }
}

impl Soak<'_> {
    /// Sends a request of route class `class`; `None` when it went unanswered.
    fn send(&self, class: &'static str, call: crate::support::Call<'_>) -> Option<Resp> {
        let started = Instant::now();
        let result = call.try_send();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut seen = self.seen.lock().unwrap();
        match result {
            Ok(r) => {
                if r.status >= 500 {
                    seen.server_errors.push(format!("{class}: {} {}", r.status, r.body));
                }
                seen.latency.entry(class).or_default().push(ms);
                if self.revived.load(Ordering::SeqCst) {
                    *seen.after_restart.entry(class).or_default() += 1;
                }
                Some(r)
            }
            Err(_) => {
                *seen.unanswered.entry(class).or_default() += 1;
                drop(seen);
                std::thread::sleep(Duration::from_millis(50));
                None
            }
        }
    }

    /// A new user (provisioned by their first request): `(id, token)`.
    fn new_user(&self) -> (String, String) {
        let id = unique("soak-user");
        let token = self.s.token(&id);
        (id, token)
    }

    fn running(&self) -> bool {
        while self.down.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

/// The records and accounts the load works on.
struct Setup {
    links: Vec<String>,
    /// Referred users of the refunding affiliate (Stripe) and of the paying one (payouts).
    stripe_buyers: Vec<String>,
    stripe_affiliate: String,
    payout_affiliate: (String, String),
    /// The referrer whose credits are deducted, and their code (new referred users refill it).
    referrer: (String, String),
    creator: (String, String),
    item: String,
    reseller: (String, String, String),
}

fn setup(s: &Server) -> Setup {
    let (_, aff_token, _, aff_code) = s.active_affiliate();
    let (_, ref_token, ref_code) = crate::referrals::referrer(s);
    let (campaign, _) = crate::campaigns::live(s, json!({"offer": {"type": "discount_percent", "value": 10}}));
    let stripe_buyers = (0..8).map(|_| s.referred_user(&aff_code).0).collect();
    let (_, pay_token, _, pay_code) = s.active_affiliate();
    let (_, seller) = s.user();
    let item = crate::marketplace::published_item(s, &seller, &json!({"title": "Soak plugin", "category": "plugin", "price_cents": 0, "activation_limit": 3}));
    // A reseller under contract with one end user and a quota of 1,000 calls a month.
    let (_, reseller_token) = s.user();
    let r = s.post(&format!("{API}/resellers")).token(&reseller_token).json(&json!({"company_name": "Soak Co", "contact_email": "ops@soak.example", "expected_monthly_api_calls": 1000})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let reseller = r.json()["id"].as_str().unwrap().to_owned();
    let contract = json!({
        "starts_at": iso(now() - 5), "ends_at": iso(now() + 86_400),
        "pricing": {"mode": "volume", "tiers": [{"unit_price_micros": 1_000}]},
        "markup_bps": 0, "max_end_users": 5, "max_api_calls_per_month": 1_000,
    });
    let r = s.patch(&format!("{API}/admin/resellers/{reseller}")).token(s.admin()).json(&json!({"status": "approved", "contract": contract})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    s.run_cron("* * * * *"); // active from its start
    let r = s.post(&format!("{API}/resellers/me/end-users")).token(&reseller_token).json(&json!({"external_id": "soak-1"})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let end_user = r.json()["id"].as_str().unwrap().to_owned();
    Setup {
        links: vec![format!("/a/{aff_code}"), format!("/r/{ref_code}"), format!("/c/{campaign}")],
        stripe_buyers,
        stripe_affiliate: aff_token,
        payout_affiliate: (pay_token, pay_code),
        referrer: (ref_token, ref_code),
        creator: s.user(),
        item,
        reseller: (reseller_token, reseller, end_user),
    }
}

fn soak_seconds() -> u64 {
    std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(40)
}

fn a_mixed_load_with_a_crash_loses_nothing_answered_and_counts_nothing_twice() {
    let s = &Server::start_unthrottled(&[("COMMISSION_HOLD_DAYS", "0"), ("LINK_CACHE_SECONDS", "15")]);
    let setup = setup(s);
    let soak = Soak { s, seen: Mutex::new(Seen::default()), stop: AtomicBool::new(false), down: AtomicBool::new(false), revived: AtomicBool::new(false) };
    let seconds = soak_seconds();
    let started = Instant::now();
    let mut killed_at = None;
    std::thread::scope(|scope| {
        let (soak, setup) = (&soak, &setup);
        for (i, link) in setup.links.iter().enumerate() {
            scope.spawn(move || clicks(soak, link, i));
        }
        scope.spawn(move || redemptions(soak));
        scope.spawn(move || deductions(soak, setup));
        scope.spawn(move || stripe(soak, setup));
        scope.spawn(move || payouts(soak, setup));
        scope.spawn(move || revenue(soak, setup));
        scope.spawn(move || purchases(soak, setup));
        scope.spawn(move || usage(soak, setup));
        // The clients stop however this ends (a failed revive must not leave them waiting).
        let _stop = StopOnDrop(soak);
        // Halfway: kill the instance's processes, start them again on the same state.
        std::thread::sleep(Duration::from_secs(seconds / 2));
        soak.down.store(true, Ordering::SeqCst);
        let kill = Instant::now();
        s.crash();
        killed_at = Some((kill, Instant::now()));
        s.revive();
        soak.revived.store(true, Ordering::SeqCst);
        soak.down.store(false, Ordering::SeqCst);
        let rest = Duration::from_secs(seconds).saturating_sub(started.elapsed());
        std::thread::sleep(rest);
    });
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let killed_at = killed_at.expect("the instance was killed");
    // Deferred work runs: parked click batches, unconfirmed leaderboard batches, usage copies.
    s.run_cron("* * * * *");
    std::thread::sleep(Duration::from_secs(1));
    let seen = soak.seen.into_inner().unwrap();
    let report = check(s, &setup, &seen, killed_at);
    let requests: usize = seen.latency.values().map(Vec::len).sum();
    let unanswered: usize = seen.unanswered.values().sum();
    let mut table = String::from("| route class | requests | p50 ms | p99 ms |\n|---|---:|---:|---:|\n");
    for (class, ms) in &seen.latency {
        table += &format!("| {class} | {} | {:.1} | {:.1} |\n", ms.len(), percentile(ms, 50.0), percentile(ms, 99.0));
    }
    let summary = format!(
        "{requests} requests answered in {minutes:.1} minutes by {} clients, {unanswered} unanswered around the crash, 0 5xx; {report}",
        setup.links.len() + 7
    );
    eprintln!("soak: {summary}\n{table}");
    if let Ok(file) = std::env::var("SOAK_REPORT") {
        let section = format!(
            "## Soak: a mixed load with a crash halfway\n\nMeasured by `npm run soak` (`SOAK_SECONDS={seconds}`, tests/e2e/soak.rs) on one instance served by\n`scripts/serve.mjs`, its processes killed with SIGKILL halfway and started again on the same state.\n{summary}.\nThe ledger audit is empty; every counter holds what the clients saw accepted and at most what was in flight at the kill.\n\n{table}"
        );
        std::fs::write(&file, section).expect("write the soak report");
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((p / 100.0) * (v.len().saturating_sub(1)) as f64).round() as usize).copied().unwrap_or(0.0)
}

// --- the clients ---------------------------------------------------------------------------------

fn clicks(soak: &Soak, link: &str, n: usize) {
    let mut i = 0;
    while soak.running() {
        i += 1;
        let ip = format!("10.{n}.{}.{}", (i / 250) % 250, i % 250);
        let call = soak.s.get(link).header("User-Agent", crate::affiliates::BROWSER).header("CF-Connecting-IP", &ip);
        if let Some(r) = soak.send("clicks", call) {
            assert_eq!(r.status, 302, "{link}: {}", r.body);
            soak.seen.lock().unwrap().clicks.entry(link.to_owned()).or_default().push(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Fresh users redeem a campaign of 20 uses; once it is used up, an admin starts another.
fn redemptions(soak: &Soak) {
    let s = soak.s;
    let mut campaign: Option<String> = None;
    while soak.running() {
        if campaign.is_none() {
            let create = s.post(&format!("{API}/campaigns")).token(s.admin()).json(&json!({
                "name": "Soak", "offer": {"type": "discount_percent", "value": 10}, "max_uses": 20,
                "landing_url": "https://soundhash.test/promo"}));
            let Some(r) = soak.send("admin", create) else { continue };
            assert_eq!(r.status, 201, "{}", r.body);
            let code = r.json()["campaign_code"].as_str().unwrap().to_owned();
            let Some(r) = soak.send("admin", s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).json(&json!({"status": "active"}))) else { continue };
            assert_eq!(r.status, 200, "{}", r.body);
            soak.seen.lock().unwrap().redeemed.insert(code.clone(), (0, 0));
            campaign = Some(code);
        }
        let code = campaign.clone().unwrap_or_default();
        // Two users at once, near the limit.
        let tokens = [s.token(&unique("redeemer")), s.token(&unique("redeemer"))];
        let answers = parallel(2, |i| soak.send("redeem", s.post(&format!("{API}/campaigns/{code}/redeem")).token(&tokens[i])));
        let mut seen = soak.seen.lock().unwrap();
        let counts = seen.redeemed.get_mut(&code).unwrap();
        for answer in answers {
            match answer {
                Some(r) if r.status == 201 => counts.0 += 1,
                Some(r) => {
                    assert_eq!((r.status, r.code()), (409, "campaign_exhausted".to_owned()), "{}", r.body);
                    campaign = None;
                }
                None => counts.1 += 1,
            }
        }
    }
}

/// Deducts from a referrer's credits down to zero; refused at zero, a new referred user's first
/// payment brings 1,000 more.
fn deductions(soak: &Soak, setup: &Setup) {
    let s = soak.s;
    let (token, code) = &setup.referrer;
    let mut i = 0;
    while soak.running() {
        i += 1;
        let amount = 37 + (i * 53) % 250;
        let call = s.post(&format!("{API}/referrals/credits/deduct")).token(token).header("Idempotency-Key", &unique("deduct"));
        match soak.send("deduct", call.json(&json!({"amount": amount, "reason": "soak"}))) {
            Some(r) if r.status == 200 => {
                assert!(r.json()["balance_credits"].as_i64().unwrap() >= 0);
                soak.seen.lock().unwrap().deducted.0 += amount;
            }
            Some(r) => {
                assert_eq!((r.status, r.code()), (409, "insufficient_credits".to_owned()), "{}", r.body);
                // Refill: a new referred user pays for the first time.
                let (user, user_token) = soak.new_user();
                let attributed = soak.send("admin", s.post(&format!("{API}/attributions")).token(&user_token).json(&json!({"referral_code": code})));
                if attributed.is_some_and(|r| r.status == 201) {
                    let pay = s.post(&format!("{API}/admin/conversions")).token(s.admin());
                    soak.send("admin", pay.json(&json!({"external_id": unique("inv"), "user_id": user, "amount_cents": 1_000, "currency": "usd"})));
                }
            }
            None => soak.seen.lock().unwrap().deducted.1 += amount,
        }
    }
}

fn invoice_paid(invoice: &str, user: &str) -> Value {
    json!({"id": unique("evt"), "type": "invoice.paid", "created": now(),
           "data": {"object": {"id": invoice, "object": "invoice", "amount_paid": PAYMENT, "currency": "usd", "customer": "cus_soak", "metadata": {"user_id": user}}}})
}

/// Payments of referred users by Stripe; every third event is delivered twice at once, every
/// fourth payment is refunded in full (its refund delivered twice at once every other time).
fn stripe(soak: &Soak, setup: &Setup) {
    let mut i = 0;
    while soak.running() {
        i += 1;
        let invoice = unique("in");
        let buyer = &setup.stripe_buyers[i % setup.stripe_buyers.len()];
        let event = invoice_paid(&invoice, buyer);
        let copies = if i % 3 == 0 { 2 } else { 1 };
        let answers = parallel(copies, |_| soak.send("stripe", soak.s.stripe_call(&event)));
        let paid = answers.iter().flatten().inspect(|r| assert_eq!(r.status, 200, "{}", r.body)).count() > 0;
        {
            let mut seen = soak.seen.lock().unwrap();
            if paid { seen.invoices.0 += 1 } else { seen.invoices.1 += 1 }
        }
        if i % 4 == 0 && paid {
            let refund = json!({"id": unique("evt"), "type": "charge.refunded", "created": now(),
                                "data": {"object": {"id": unique("ch"), "object": "charge", "invoice": invoice, "amount_refunded": PAYMENT}}});
            let copies = if i % 8 == 0 { 2 } else { 1 };
            let answers = parallel(copies, |_| soak.send("stripe", soak.s.stripe_call(&refund)));
            let refunded = answers.iter().flatten().inspect(|r| assert_eq!(r.status, 200, "{}", r.body)).count() > 0;
            let mut seen = soak.seen.lock().unwrap();
            if refunded { seen.refunds.0 += 1 } else { seen.refunds.1 += 1 }
        }
    }
}

/// An affiliate's referred users pay; the affiliate asks for a payout when it can and an admin
/// takes it through approved and processing to paid.
fn payouts(soak: &Soak, setup: &Setup) {
    let s = soak.s;
    let (token, code) = &setup.payout_affiliate;
    let mut buyer: Option<String> = None;
    let mut open: Option<(String, i64)> = None;
    let mut i = 0;
    while soak.running() {
        i += 1;
        if buyer.is_none() || i % 5 == 0 {
            let (user, user_token) = soak.new_user();
            let Some(r) = soak.send("admin", s.post(&format!("{API}/attributions")).token(&user_token).json(&json!({"affiliate_code": code}))) else { continue };
            assert_eq!(r.status, 201, "{}", r.body);
            buyer = Some(user);
        }
        let user = buyer.clone().unwrap_or_default();
        let pay = s.post(&format!("{API}/admin/conversions")).token(s.admin());
        match soak.send("admin", pay.json(&json!({"external_id": unique("inv"), "user_id": user, "amount_cents": PAYMENT, "currency": "usd"}))) {
            Some(r) => {
                assert_eq!(r.status, 201, "{}", r.body);
                soak.seen.lock().unwrap().payout_conversions.0 += 1;
            }
            None => soak.seen.lock().unwrap().payout_conversions.1 += 1,
        }
        if i % 3 != 0 {
            continue;
        }
        // A payout left open by the crash is taken on from where it is.
        if open.is_none() {
            let ask = s.post(&format!("{API}/affiliates/payouts")).token(token).header("Idempotency-Key", &unique("payout")).json(&json!({}));
            let Some(r) = soak.send("payouts", ask) else { continue };
            if r.status == 201 {
                open = Some((r.json()["id"].as_str().unwrap().to_owned(), r.json()["amount_cents"].as_i64().unwrap()));
            } else {
                // Nothing available yet, or a payout requested before the crash whose answer was
                // lost: it is taken on from the list.
                let Some(list) = soak.send("payouts", s.get(&format!("{API}/affiliates/payouts")).token(token)) else { continue };
                let list = list.json();
                let unfinished = list["items"].as_array().into_iter().flatten().find(|p| ["pending", "approved", "processing"].contains(&p["status"].as_str().unwrap_or_default()));
                match unfinished {
                    Some(p) => open = Some((p["id"].as_str().unwrap().to_owned(), p["amount_cents"].as_i64().unwrap())),
                    None => continue,
                }
            }
        }
        let Some((id, amount)) = open.clone() else { continue };
        let mut paid = true;
        for status in ["approved", "processing", "paid"] {
            let change = s.patch(&format!("{API}/admin/payouts/{id}")).token(s.admin()).json(&json!({"status": status}));
            match soak.send("payouts", change) {
                Some(r) if r.status == 200 => {}
                // (Made before the crash; its answer was lost.)
                Some(r) if r.status == 409 && r.code() == "invalid_transition" => {}
                Some(r) => panic!("payout {id} → {status}: {} {}", r.status, r.body),
                None => {
                    paid = false;
                    break;
                }
            }
        }
        if paid {
            soak.seen.lock().unwrap().paid_out += amount;
            open = None;
        }
    }
    soak.seen.lock().unwrap().open_payout = open.map_or(0, |(_, amount)| amount);
}

/// Batches of five revenue records of one creator; every fourth batch is sent again.
fn revenue(soak: &Soak, setup: &Setup) {
    let (creator, _) = &setup.creator;
    let month = crate::revenue::last_month();
    let mut i = 0;
    while soak.running() {
        i += 1;
        let records: Vec<Value> = (0..5).map(|_| crate::revenue::record(&unique("rev"), creator, "soak-channel", &month, 1_000)).collect();
        let sends = if i % 4 == 0 { 2 } else { 1 };
        let mut accepted = false;
        for _ in 0..sends {
            let call = soak.s.post(&format!("{API}/admin/revenue")).token(soak.s.admin()).json(&json!({"records": records}));
            if let Some(r) = soak.send("revenue", call) {
                assert_eq!(r.status, 200, "{}", r.body);
                let body = r.json();
                assert_eq!(body["accepted"].as_i64().unwrap() + body["duplicates"].as_i64().unwrap(), 5, "{body}");
                accepted = true;
            }
        }
        let mut seen = soak.seen.lock().unwrap();
        if accepted { seen.records.0 += 5 } else { seen.records.1 += 5 }
    }
}

/// New buyers take the free item and activate their key on five machines at once (its limit is
/// three).
fn purchases(soak: &Soak, setup: &Setup) {
    let s = soak.s;
    while soak.running() {
        let (_, token) = soak.new_user();
        let buy = s.post(&format!("{API}/marketplace/items/{}/purchase", setup.item)).token(&token).header("Idempotency-Key", &unique("buy"));
        let Some(r) = soak.send("purchase", buy.json(&json!({}))) else {
            soak.seen.lock().unwrap().purchases.1 += 1;
            continue;
        };
        assert_eq!(r.status, 201, "{}", r.body);
        soak.seen.lock().unwrap().purchases.0 += 1;
        let key = r.json()["license"]["key"].as_str().unwrap().to_owned();
        let answers = parallel(5, |i| {
            let body = json!({"license_key": key, "item_id": setup.item, "instance_name": format!("machine-{i}")});
            soak.send("activate", s.post(&format!("{API}/licenses/activate")).header("CF-Connecting-IP", &format!("10.9.{}.{i}", key.len())).json(&body))
        });
        let mut counts = (0, 0);
        for answer in answers {
            match answer {
                Some(r) if r.status == 201 => counts.0 += 1,
                Some(r) => assert_eq!((r.status, r.code()), (409, "activation_limit_reached".to_owned()), "{}", r.body),
                None => counts.1 += 1,
            }
        }
        assert!(counts.0 <= 3, "{counts:?}");
        soak.seen.lock().unwrap().activations.insert(key, counts);
    }
}

/// Reports of reseller usage up to the monthly quota; at the quota an admin resets it.
fn usage(soak: &Soak, setup: &Setup) {
    let s = soak.s;
    let (_, reseller, end_user) = &setup.reseller;
    let mut i = 0;
    while soak.running() {
        i += 1;
        let calls = 1 + (i * 7) % 40;
        let call = s.post(&format!("{API}/resellers/usage")).token(s.admin()).header("Idempotency-Key", &unique("usage"));
        match soak.send("usage", call.json(&json!({"reseller_id": reseller, "end_user_id": end_user, "calls": calls}))) {
            Some(r) if r.status == 200 => {
                assert!(r.json()["used"].as_i64().unwrap() <= 1_000, "{}", r.body);
                soak.seen.lock().unwrap().usage.0 += calls;
            }
            Some(r) => {
                assert_eq!((r.status, r.code()), (429, "quota_exceeded".to_owned()), "{}", r.body);
                let reset = s.post(&format!("{API}/admin/resellers/{reseller}/quota/reset")).token(s.admin()).json(&json!({"reason": "soak"}));
                if soak.send("admin", reset).is_some_and(|r| r.status == 200) {
                    soak.seen.lock().unwrap().resets += 1;
                }
            }
            None => soak.seen.lock().unwrap().usage.1 += calls,
        }
    }
}

// --- the checks ----------------------------------------------------------------------------------

/// `low ≤ value ≤ high`, with a message naming what is checked.
fn within(what: &str, value: i64, low: i64, high: i64) {
    assert!(low <= value && value <= high, "{what}: {value} is not within [{low}, {high}] (answered, answered + in flight at the crash)");
}

fn check(s: &Server, setup: &Setup, seen: &Seen, (killed_at, crashed_at): (Instant, Instant)) -> String {
    assert!(seen.server_errors.is_empty(), "5xx answers: {:#?}", seen.server_errors);
    s.assert_ledgers_consistent();
    // Every client made progress, and went on after the restart.
    assert!(seen.redeemed.len() >= 2, "no campaign was used up: {:?}", seen.redeemed);
    assert!(seen.deducted.0 > 0 && seen.invoices.0 > 0 && seen.refunds.0 > 0 && seen.paid_out > 0, "a flow made no progress");
    assert!(seen.records.0 > 0 && seen.purchases.0 > 0 && seen.usage.0 > 0 && seen.resets > 0, "a flow made no progress");
    for class in ["clicks", "redeem", "deduct", "stripe", "payouts", "revenue", "purchase", "activate", "usage"] {
        assert!(seen.after_restart.get(class).copied().unwrap_or(0) > 0, "{class}: nothing answered after the restart: {:?}", seen.after_restart);
    }
    let get = |path: &str, token: &str| {
        let r = s.get(&format!("{API}{path}")).token(token).send();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    };

    // Clicks: none counted twice; lost only what the killed isolate held.
    let counted = |link: &str| -> i64 {
        let code = &link[3..];
        match &link[..3] {
            "/a/" => dashboard(s, &setup.stripe_affiliate)["clicks"].as_i64().unwrap(),
            "/r/" => get("/referrals/stats", &setup.referrer.0)["clicks"].as_i64().unwrap(),
            _ => get(&format!("/admin/campaigns/{code}/stats"), s.admin())["clicks"].as_i64().unwrap(),
        }
    };
    let mut lost_clicks = 0;
    let mut window_clicks = 0;
    let mut answered_clicks = 0;
    let unanswered_clicks = *seen.unanswered.get("clicks").unwrap_or(&0) as i64;
    for link in &setup.links {
        let answered = seen.clicks.get(link).map_or(&[][..], Vec::as_slice);
        // (Answered in the second before the kill, or while the processes were dying.)
        let in_window = answered.iter().filter(|t| **t <= crashed_at && killed_at.saturating_duration_since(**t) <= Duration::from_secs(1)).count() as i64;
        let n = counted(link);
        let lost = (answered.len() as i64 - n).max(0);
        within(&format!("clicks on {link}"), n, answered.len() as i64 - in_window, answered.len() as i64 + unanswered_clicks);
        lost_clicks += lost;
        window_clicks += in_window;
        answered_clicks += answered.len() as i64;
    }

    // Redemptions: within each campaign's limit, and all the answered ones there.
    let mut redeemed = 0;
    for (code, (ok, unanswered)) in &seen.redeemed {
        let n = get(&format!("/admin/campaigns/{code}/stats"), s.admin())["redemptions"].as_i64().unwrap();
        within(&format!("redemptions of {code}"), n, *ok, (ok + unanswered).min(20));
        redeemed += n;
    }

    // Credits: spent as answered (plus what was in flight), never below zero.
    let balance = get("/referrals/balance", &setup.referrer.0);
    let (earned, spent, left) = (balance["lifetime_earned"].as_i64().unwrap(), balance["lifetime_spent"].as_i64().unwrap(), balance["balance_credits"].as_i64().unwrap());
    within("credits spent", spent, seen.deducted.0, seen.deducted.0 + seen.deducted.1);
    assert_eq!(left, earned - spent, "{balance}");
    assert!(left >= 0);

    // Stripe: each payment once, each refund once, whatever was delivered twice.
    let d = dashboard(s, &setup.stripe_affiliate);
    let conversions = d["conversions"].as_i64().unwrap();
    within("Stripe payments", conversions, seen.invoices.0, seen.invoices.0 + seen.invoices.1);
    let e = &d["earnings"];
    let reversed = e["reversed_cents"].as_i64().unwrap();
    within("Stripe refunds", reversed / COMMISSION, seen.refunds.0, seen.refunds.0 + seen.refunds.1);
    let total: i64 = ["pending_cents", "available_cents", "in_payout_cents", "paid_cents", "reversed_cents"].iter().map(|k| e[k].as_i64().unwrap()).sum();
    assert_eq!(total, conversions * COMMISSION, "every commission once: {d}");

    // Payouts: what was paid is what the affiliate earned and was paid.
    let d = dashboard(s, &setup.payout_affiliate.0);
    let e = &d["earnings"];
    within("payout conversions", d["conversions"].as_i64().unwrap(), seen.payout_conversions.0, seen.payout_conversions.0 + seen.payout_conversions.1);
    let paid = e["paid_cents"].as_i64().unwrap();
    within("cents paid out", paid, seen.paid_out, seen.paid_out + seen.open_payout);
    let total: i64 = ["pending_cents", "available_cents", "in_payout_cents", "paid_cents"].iter().map(|k| e[k].as_i64().unwrap()).sum();
    assert_eq!(total, d["conversions"].as_i64().unwrap() * COMMISSION, "{d}");

    // Revenue: each record once, split 70/30.
    let lines = crate::revenue::lines(s, &setup.creator.1, "");
    within("revenue records", lines.len() as i64, seen.records.0, seen.records.0 + seen.records.1);
    assert!(lines.iter().all(|l| l["creator_cents"] == 700), "{:?}", lines.iter().find(|l| l["creator_cents"] != 700));

    // Purchases and activations.
    let item = s.get(&format!("{API}/marketplace/items/{}", setup.item)).send().json();
    within("sales", item["sales"].as_i64().unwrap(), seen.purchases.0, seen.purchases.0 + seen.purchases.1);
    let mut activations = 0;
    for (key, (ok, unanswered)) in &seen.activations {
        let r = s.post(&format!("{API}/licenses/validate")).json(&json!({"license_key": key, "item_id": setup.item})).send().json();
        let n = r["activation_usage"].as_i64().unwrap();
        within("activations of a license", n, *ok, (ok + unanswered).min(3));
        activations += n;
    }

    // Reseller usage: the month's total holds every accepted call.
    let board = get("/resellers/me/dashboard", &setup.reseller.0);
    let calls = board["api_calls"]["calls"].as_i64().unwrap();
    within("reseller calls", calls, seen.usage.0, seen.usage.0 + seen.usage.1);

    format!(
        "clicks {answered_clicks} answered, {} lost with the killed isolate (answered in its last second: {window_clicks}), {unanswered_clicks} unanswered; \
         {redeemed} redemptions in {} campaigns; {spent} credits spent of {earned}; {conversions} Stripe payments ({} refunded); \
         {} cents paid out; {} revenue records; {} purchases, {activations} activations; {calls} reseller calls",
        lost_clicks,
        seen.redeemed.len(),
        reversed / COMMISSION,
        paid,
        lines.len(),
        item["sales"],
    )
}
