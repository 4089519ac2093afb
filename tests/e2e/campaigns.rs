//! Promotional campaigns: lifecycle with cron transitions, redirect rules, click counting at the
//! edge, exact redemption limits under concurrency, and stats.

use crate::affiliates::{click, BROWSER};
use crate::support::{iso, now, parallel, shared, unique, wait_for, Resp, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(campaigns:
        the_lifecycle_follows_the_cron,
        creation_is_validated,
        transitions_and_draft_edits,
        links_redirect_only_live_campaigns_and_keep_the_query,
        clicks_count_people_once_per_hour,
        a_burst_of_clicks_is_counted_exactly,
        max_uses_hold_under_200_parallel_redemptions,
        the_per_user_limit_holds_under_parallel_redemptions,
        offers_are_granted_and_listed,
        conversions_after_redeeming_count_for_the_campaign,
        landing_urls_must_not_point_at_private_or_invalid_addresses,
        concurrent_edits_lose_no_update,
        a_corrupt_tags_column_is_an_error_and_is_never_rewritten,
        campaigns_are_live_from_their_start_included_to_their_end_excluded,
        campaigns_that_are_not_live_are_unknown_to_users,
        the_cron_advances_more_campaigns_than_one_chunk_over_successive_runs,
        a_click_batch_that_fails_part_way_is_retried_not_dropped,
    )
}

/// Creates a campaign (admin) with `extra` fields over a credits offer; returns its body.
pub fn create(s: &Server, extra: Value) -> Value {
    let mut body = json!({"name": "Winter promo", "offer": {"type": "credits", "value": 500},
                          "landing_url": "https://soundhash.test/promo?utm_source=mail"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.post(&format!("{API}/campaigns")).token(s.admin()).json(&body).send();
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn set_status(s: &Server, code: &str, status: &str) -> crate::support::Resp {
    s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).json(&json!({"status": status})).send()
}

/// A live campaign: `(code, campaign)`.
pub fn live(s: &Server, extra: Value) -> (String, Value) {
    let c = create(s, extra);
    let code = c["campaign_code"].as_str().unwrap().to_owned();
    let r = set_status(s, &code, "active");
    assert_eq!(r.status, 200, "{}", r.body);
    (code, r.json())
}

fn campaign(s: &Server, code: &str) -> Value {
    s.get(&format!("{API}/campaigns/{code}")).token(s.admin()).send().json()
}

fn stats(s: &Server, code: &str) -> Value {
    let r = s.get(&format!("{API}/admin/campaigns/{code}/stats")).token(s.admin()).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn wait_clicks(s: &Server, code: &str, n: i64) -> Value {
    wait_for(Duration::from_secs(10), || {
        let st = stats(s, code);
        (st["clicks"] == n).then_some(st)
    })
    .unwrap_or_else(|| panic!("clicks never reached {n}: {}", stats(s, code)))
}

fn redeem(s: &Server, token: &str, code: &str) -> crate::support::Resp {
    s.post(&format!("{API}/campaigns/{code}/redeem")).token(token).send()
}

fn the_lifecycle_follows_the_cron() {
    let s = shared();
    let t = now();
    let c = create(s, json!({"starts_at": iso(t - 60)}));
    let code = c["campaign_code"].as_str().unwrap().to_owned();
    assert_eq!(c["status"], "draft");
    assert!(code.starts_with("PROMO") && code.len() == 13, "{code}");
    let link = format!("/c/{code}");
    assert_eq!(click(s, &link, "198.51.100.40").status, 404, "a draft does not redirect");
    assert_eq!(set_status(s, &code, "scheduled").json()["status"], "scheduled");
    assert_eq!(click(s, &link, "198.51.100.40").status, 404, "nor does a scheduled one");
    // The cron starts it (starts_at has passed)…
    s.run_cron("* * * * *");
    assert_eq!(campaign(s, &code)["status"], "active");
    let r = wait_for(Duration::from_secs(5), || Some(click(s, &link, "198.51.100.40")).filter(|r| r.status == 302)).expect("redirects once active");
    assert!(r.header("location").unwrap().contains(&format!("promo={code}")));
    let (_, user) = s.user();
    let listed = s.get(&format!("{API}/campaigns?limit=100")).token(&user).send().json();
    assert!(listed["items"].as_array().unwrap().iter().any(|c| c["campaign_code"] == code.as_str()));
    // …and completes one whose ends_at has passed.
    let (ending, _) = live(s, json!({"ends_at": iso(now() + 3)}));
    let ending_link = format!("/c/{ending}");
    assert_eq!(click(s, &ending_link, "198.51.100.40").status, 302);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(click(s, &ending_link, "198.51.100.40").status, 404, "past ends_at it no longer redirects");
    redeem(s, &user, &ending).expect_error(404, "not_found");
    redeem(s, s.admin(), &ending).expect_error(409, "campaign_not_active");
    s.run_cron("* * * * *");
    assert_eq!(campaign(s, &ending)["status"], "completed");
    set_status(s, &ending, "active").expect_error(409, "invalid_transition");
    s.get(&format!("{API}/campaigns/{ending}")).token(&user).send().expect_error(404, "not_found");
    // A campaign whose uses are all taken completes too.
    let (used_up, _) = live(s, json!({"max_uses": 1}));
    assert_eq!(redeem(s, &user, &used_up).status, 201);
    s.run_cron("* * * * *");
    assert_eq!(campaign(s, &used_up)["status"], "completed");
}

fn creation_is_validated() {
    let s = shared();
    let post = |body: Value| s.post(&format!("{API}/campaigns")).token(s.admin()).json(&body).send();
    let base = json!({"name": "x", "offer": {"type": "discount_percent", "value": 10}, "landing_url": "https://soundhash.test/"});
    let with = |patch: Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (patch, field) in [
        (json!({"landing_url": "javascript:alert(1)"}), "landing_url"),
        (json!({"landing_url": "data:text/html,hi"}), "landing_url"),
        (json!({"landing_url": "//evil.example/"}), "landing_url"),
        (json!({"landing_url": "https://user:pw@soundhash.test/"}), "landing_url"),
        (json!({"landing_url": "http://soundhash.test/"}), "landing_url"),
        (json!({"offer": {"type": "discount_percent", "value": 0}}), "offer.value"),
        (json!({"offer": {"type": "discount_percent", "value": 101}}), "offer.value"),
        (json!({"offer": {"type": "discount_amount", "value": -5}}), "offer.value"),
        (json!({"offer": {"type": "free_trial", "value": 0}}), "offer.value"),
        (json!({"offer": {"type": "cash", "value": 5}}), "offer.type"),
        (json!({"starts_at": "2027-01-02T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"}), "ends_at"),
        (json!({"max_uses": 0}), "max_uses"),
        (json!({"max_uses_per_user": 0}), "max_uses_per_user"),
        // Beyond the limit, and beyond ±2^53 (D1 would store it rounded, as a float no
        // campaign could be read from again).
        (json!({"max_uses": 1_000_000_001}), "max_uses"),
        (json!({"max_uses_per_user": 9_007_199_254_740_993_i64}), "max_uses_per_user"),
        (json!({"max_uses": i64::MAX}), "max_uses"),
        (json!({"code": "lower"}), "code"),
        (json!({"code": "ABC"}), "code"),
        (json!({"status": "active"}), "status"),
        (json!({"name": ""}), "name"),
    ] {
        let r = post(with(patch.clone()));
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{patch}: {}", r.body);
    }
    let r = post(json!({"offer": {"type": "credits", "value": 1}, "landing_url": "https://soundhash.test/"}));
    assert_eq!((r.status, r.json()["error"]["field"].clone()), (422, json!("name")));
    // Chosen codes are unique.
    let chosen = format!("SPRING{}", std::process::id());
    assert_eq!(post(with(json!({"code": chosen}))).json()["campaign_code"], chosen.as_str());
    post(with(json!({"code": chosen}))).expect_error(409, "already_exists");
    // Admins only.
    let (_, user) = s.user();
    s.post(&format!("{API}/campaigns")).token(&user).json(&base).send().expect_error(403, "forbidden");
}

fn transitions_and_draft_edits() {
    let s = shared();
    let code = create(s, json!({}))["campaign_code"].as_str().unwrap().to_owned();
    let patch = |body: Value| s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).json(&body).send();
    patch(json!({"status": "completed"})).expect_error(409, "invalid_transition");
    let edited = patch(json!({"name": "Renamed", "offer": {"type": "discount_amount", "value": 1_500}, "tags": ["email", "q4"]})).json();
    assert_eq!((edited["name"].clone(), edited["offer"]["value"].clone(), edited["tags"].clone()), (json!("Renamed"), json!(1_500), json!(["email", "q4"])));
    patch(json!({"landing_url": "javascript:alert(1)"})).expect_error(422, "validation_failed");
    patch(json!({"code": "NEWCODE1"})).expect_error(422, "validation_failed");
    patch(json!({})).expect_error(422, "validation_failed");
    assert_eq!(patch(json!({"status": "active"})).json()["status"], "active");
    patch(json!({"name": "Too late"})).expect_error(409, "campaign_not_editable");
    patch(json!({"status": "scheduled"})).expect_error(409, "invalid_transition");
    assert_eq!(patch(json!({"status": "completed"})).json()["status"], "completed");
    patch(json!({"status": "active"})).expect_error(409, "invalid_transition");
    s.patch(&format!("{API}/admin/campaigns/NOPE{}", std::process::id())).token(s.admin()).json(&json!({"status": "active"})).send().expect_error(404, "not_found");
    let listed = s.get(&format!("{API}/admin/campaigns?status=completed&limit=100")).token(s.admin()).send().json();
    assert!(listed["items"].as_array().unwrap().iter().any(|c| c["campaign_code"] == code.as_str()));
    s.get(&format!("{API}/admin/campaigns?status=paused")).token(s.admin()).send().expect_error(422, "validation_failed");
}

fn links_redirect_only_live_campaigns_and_keep_the_query() {
    let s = shared();
    let (code, _) = live(s, json!({"landing_url": "https://soundhash.test/landing?utm_source=mail&x=1#plans"}));
    let r = click(s, &format!("/c/{code}"), "198.51.100.41");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(format!("https://soundhash.test/landing?utm_source=mail&x=1&promo={code}#plans").as_str()));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // Codes are case-insensitive.
    assert_eq!(click(s, &format!("/c/{}", code.to_lowercase()), "198.51.100.41").status, 302);
    // Whatever the request says, the target is the stored one.
    let r = s.get(&format!("/c/{code}?next=https://evil.example/&url=//evil.example")).header("User-Agent", BROWSER).send();
    assert!(r.header("location").unwrap().starts_with("https://soundhash.test/landing?"), "{r:?}");
    for path in ["/c/NOPE1234", "/c/%2F%2Fevil.example", "/c/x", &format!("/c/{code}x")] {
        let r = s.get(path).header("User-Agent", BROWSER).send();
        assert_eq!((r.status, r.header("location")), (404, None), "{path}");
    }
    // Completed: 404 at once in this isolate (the cache forgets what it changes).
    set_status(s, &code, "completed");
    assert_eq!(click(s, &format!("/c/{code}"), "198.51.100.41").status, 404);
}

fn clicks_count_people_once_per_hour() {
    let s = shared();
    let (code, _) = live(s, json!({}));
    let link = format!("/c/{code}");
    for ip in ["203.0.113.50", "203.0.113.50", "203.0.113.51"] {
        assert_eq!(click(s, &link, ip).status, 302);
    }
    assert_eq!(s.request("HEAD", &link).header("User-Agent", BROWSER).send().status, 302);
    for bot in ["Twitterbot/1.0", "LinkedInBot/1.0", "Mozilla/5.0 (compatible; bingbot/2.0)", "WhatsApp/2.23"] {
        assert_eq!(s.get(&link).header("User-Agent", bot).header("CF-Connecting-IP", "203.0.113.52").send().status, 302);
    }
    let st = wait_clicks(s, &code, 3);
    assert_eq!(st["unique_visitors"], 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(s, &code)["clicks"], 3, "HEAD and bots are not counted");
    let today = &st["by_day"].as_array().unwrap()[0];
    assert_eq!((today["clicks"].clone(), today["unique_visitors"].clone()), (json!(3), json!(2)));
}

fn a_burst_of_clicks_is_counted_exactly() {
    let s = shared();
    let (code, _) = live(s, json!({}));
    let link = format!("/c/{code}");
    let results = parallel(80, |i| click(s, &link, &format!("192.0.2.{}", i % 20)));
    assert!(results.iter().all(|r| r.status == 302), "{:?}", results.iter().find(|r| r.status != 302));
    let st = wait_clicks(s, &code, 80);
    assert_eq!(st["unique_visitors"], 20);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stats(s, &code)["clicks"], 80, "no click counted twice");
}

fn max_uses_hold_under_200_parallel_redemptions() {
    // An instance of its own: wrangler dev's proxy starts dropping connections at about 256
    // requests in flight, and the shared instance serves other tests meanwhile.
    let own = Server::start(&[]);
    let s = &own;
    let (code, _) = live(s, json!({"max_uses": 25, "offer": {"type": "discount_percent", "value": 20}}));
    let tokens: Vec<String> = (0..200).map(|_| s.token(&unique("redeemer"))).collect();
    let results = parallel(200, |i| redeem(s, &tokens[i], &code));
    let ok = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(ok, 25, "{:?}", results.iter().filter(|r| r.status != 201 && r.status != 409).collect::<Vec<_>>());
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.status == 409 && r.code() == "campaign_exhausted"));
    let c = campaign(s, &code);
    assert_eq!(c["uses"], 25);
    assert_eq!(stats(s, &code)["redemptions"], 25);
    s.run_cron("* * * * *");
    assert_eq!(campaign(s, &code)["status"], "completed");
}

fn the_per_user_limit_holds_under_parallel_redemptions() {
    let s = shared();
    let (code, _) = live(s, json!({}));
    let (_, token) = s.user();
    let results = parallel(20, |_| redeem(s, &token, &code));
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.code() == "redemption_limit_reached"));
    // A limit of 3 allows exactly 3, also in parallel.
    let (three, _) = live(s, json!({"max_uses_per_user": 3}));
    let results = parallel(12, |_| redeem(s, &token, &three));
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 3, "{results:?}");
    redeem(s, &token, &three).expect_error(409, "redemption_limit_reached");
    // The credits were granted exactly 1 + 3 times.
    let balance = s.get(&format!("{API}/referrals/balance")).token(&token).send().json();
    assert_eq!(balance["balance_credits"], 4 * 500);
    s.assert_ledgers_consistent();
}

fn offers_are_granted_and_listed() {
    let s = shared();
    let (credits, _) = live(s, json!({"offer": {"type": "credits", "value": 750}}));
    let (trial, _) = live(s, json!({"offer": {"type": "free_trial", "value": 14}}));
    let (_, token) = s.user();
    let key = unique("redeem");
    let first = s.post(&format!("{API}/campaigns/{credits}/redeem")).token(&token).header("Idempotency-Key", &key).send();
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.json()["offer"], json!({"type": "credits", "value": 750}));
    let replay = s.post(&format!("{API}/campaigns/{credits}/redeem")).token(&token).header("Idempotency-Key", &key).send();
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(replay.json(), first.json());
    assert_eq!(redeem(s, &token, &trial).json()["offer"], json!({"type": "free_trial", "value": 14}));
    let balance = s.get(&format!("{API}/referrals/balance")).token(&token).send().json();
    assert_eq!(balance["balance_credits"], 750, "credited once");
    let mine = s.get(&format!("{API}/campaigns/redemptions")).token(&token).send().json();
    let codes: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|r| r["campaign_code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec![trial.as_str(), credits.as_str()], "newest first");
    // Public views carry no admin fields; unknown and draft codes are 404.
    let public = s.get(&format!("{API}/campaigns/{credits}")).token(&token).send().json();
    assert!(public.get("max_uses").is_none() && public.get("uses").is_none() && public.get("created_by").is_none(), "{public}");
    redeem(s, &token, "NOPE9999").expect_error(404, "not_found");
    let draft = create(s, json!({}))["campaign_code"].as_str().unwrap().to_owned();
    redeem(s, &token, &draft).expect_error(404, "not_found");
    s.get(&format!("{API}/campaigns/{draft}")).token(&token).send().expect_error(404, "not_found");
}

fn conversions_after_redeeming_count_for_the_campaign() {
    let s = shared();
    let (code, _) = live(s, json!({"offer": {"type": "discount_percent", "value": 25}}));
    for ip in ["203.0.113.60", "203.0.113.61", "203.0.113.62", "203.0.113.63"] {
        click(s, &format!("/c/{code}"), ip);
    }
    let (buyer, token) = s.user();
    // A payment from before the redemption is not the campaign's.
    let earlier = json!({"external_id": unique("inv"), "user_id": buyer, "amount_cents": 1_000, "currency": "usd", "occurred_at": iso(now() - 3_600)});
    assert_eq!(s.post(&format!("{API}/admin/conversions")).token(s.admin()).json(&earlier).send().status, 201);
    assert_eq!(redeem(s, &token, &code).status, 201);
    let conversion = s.convert(&buyer, 4_000);
    s.convert(&buyer, 6_000);
    let external_id = conversion["conversion"]["external_id"].as_str().unwrap();
    s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id, "amount_cents": 1_000})).send();
    let st = wait_clicks(s, &code, 4);
    assert_eq!((st["redemptions"].clone(), st["conversions"].clone(), st["revenue_cents"].clone()), (json!(1), json!(2), json!(9_000)));
    assert_eq!(st["conversion_rate"], 0.5);
    assert_eq!(st["by_day"][0]["redemptions"], 1);
}

fn landing_urls_must_not_point_at_private_or_invalid_addresses() {
    let s = shared();
    let post = |url: &str| {
        s.post(&format!("{API}/campaigns"))
            .token(s.admin())
            .json(&json!({"name": "x", "offer": {"type": "credits", "value": 1}, "landing_url": url}))
            .send()
    };
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://999.999.999.999/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0177.0.0.1/",
        "https://0x7f000001/",
        "https://10.0.0.8/",
        "https://172.16.5.4/",
        "https://192.168.1.1/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://240.1.2.3/",
        "https://1.2.3.4.5/",
        "https://example.123/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://[2001:db8::1]/",
    ] {
        let r = post(url);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], "landing_url", "{url}: {}", r.body);
    }
    for url in ["https://93.184.215.14/landing", "https://soundhash.test/promo", "https://1x.example.com/"] {
        let r = post(url);
        assert_eq!(r.status, 201, "{url}: {}", r.body);
    }
}

fn concurrent_edits_lose_no_update() {
    let s = shared();
    // Seven fields, two requests for each with different values: 14 edits of one draft at once.
    let edit = |i: usize| -> (&'static str, Value) {
        let v = i / 7 + 1;
        match i % 7 {
            0 => ("name", json!(format!("Edited {v}"))),
            1 => ("description", json!(format!("Description {v}"))),
            2 => ("offer", json!({"type": "credits", "value": 600 + v})),
            3 => ("landing_url", json!(format!("https://soundhash.test/edited-{v}"))),
            4 => ("max_uses", json!(100 + v)),
            5 => ("max_uses_per_user", json!(1 + v)),
            _ => ("tags", json!([format!("tag-{v}")])),
        }
    };
    for round in 0..3 {
        let original = create(s, json!({}));
        let code = original["campaign_code"].as_str().unwrap();
        let results = parallel(14, |i| {
            let (field, value) = edit(i);
            s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).json(&json!({ field: value })).send()
        });
        assert!(results.iter().all(|r| r.status == 200 || (r.status == 409 && r.code() == "concurrent_update")), "{results:?}");
        assert!(results.iter().any(|r| r.status == 200), "round {round}: nothing applied");
        // Each answer shows its own change…
        for (i, r) in results.iter().enumerate().filter(|(_, r)| r.status == 200) {
            let (field, value) = edit(i);
            assert_eq!(r.json()[field], value, "round {round}, request {i}");
        }
        // …and every change answered 200 is still there at the end (one of the two per field).
        let now = campaign(s, code);
        for field in 0..7 {
            let name = edit(field).0;
            let applied: Vec<Value> = [field, field + 7].into_iter().filter(|&i| results[i].status == 200).map(|i| edit(i).1).collect();
            if applied.is_empty() {
                assert_eq!(now[name], original[name], "round {round}: {name} changed by no request");
            } else {
                assert!(applied.contains(&now[name]), "round {round}: a change of {name} was lost: {} not in {applied:?}", now[name]);
            }
        }
    }
}

fn a_corrupt_tags_column_is_an_error_and_is_never_rewritten() {
    // An instance of its own: the test writes its D1 from outside.
    let own = Server::start(&[]);
    let s = &own;
    let code = create(s, json!({"tags": ["spring"]}))["campaign_code"].as_str().unwrap().to_owned();
    s.d1(&format!("UPDATE campaigns SET tags = '{{bad' WHERE code = '{code}'"));
    s.get(&format!("{API}/campaigns/{code}")).token(s.admin()).send().expect_error(500, "internal_error");
    let r = s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).json(&json!({"name": "Renamed"})).send();
    r.expect_error(500, "internal_error");
    assert!(!r.body.contains("bad") && !r.body.contains("tags"), "a 500 shows nothing internal: {}", r.body);
    assert_eq!(s.d1(&format!("SELECT name, tags FROM campaigns WHERE code = '{code}'")), [json!({"name": "Winter promo", "tags": "{bad"})]);
    // The log says what is wrong and where.
    let logged = s.log_lines().into_iter().filter_map(|l| l["error"].as_str().map(str::to_owned)).any(|e| e.contains(&code) && e.contains("tags"));
    assert!(logged, "the corrupt column is logged");
}

/// Sleeps until `millis` past the start of Unix second `second` (the worker judges by the same clock).
fn sleep_until(second: i64, millis: u64) {
    let target = Duration::from_secs(second as u64) + Duration::from_millis(millis);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    if let Some(wait) = target.checked_sub(now) {
        std::thread::sleep(wait);
    }
}

fn campaigns_are_live_from_their_start_included_to_their_end_excluded() {
    let s = shared();
    let start = now() + 3;
    let end = start + 2;
    // A live campaign is: redirected to, shown and listed to users, redeemable (an admin's
    // redemption tells "not active" apart from the limits).
    let (code, _) = live(s, json!({"starts_at": iso(start), "ends_at": iso(end), "max_uses_per_user": 10}));
    let (_, user) = s.user();
    // Everything a user and an admin see of it, observed within one second of the clock.
    let observe = |second: i64| -> (Vec<bool>, Resp) {
        sleep_until(second, 20);
        let mut seen = parallel(4, |i| match i {
            0 => click(s, &format!("/c/{code}"), "198.51.100.70"),
            1 => s.get(&format!("{API}/campaigns/{code}")).token(&user).send(),
            2 => s.get(&format!("{API}/campaigns?limit=100")).token(&user).send(),
            _ => redeem(s, s.admin(), &code),
        });
        let redeemed = seen.pop().unwrap();
        let listed = seen[2].json()["items"].as_array().unwrap().iter().any(|c| c["campaign_code"] == code.as_str());
        (vec![seen[0].status == 302, seen[1].status == 200, listed], redeemed)
    };
    let (before, refused) = observe(start - 1);
    let (at_start, redeemed) = observe(start);
    let (at_end, too_late) = observe(end);
    assert_eq!(before, [false, false, false], "not live in the second before starts_at (click, GET, list)");
    refused.expect_error(409, "campaign_not_active");
    assert_eq!(at_start, [true, true, true], "live from the second of starts_at");
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    assert_eq!(redeemed.json()["created_at"], iso(start), "redeemed in the very second of starts_at");
    assert_eq!(at_end, [false, false, false], "not live from the second of ends_at");
    too_late.expect_error(409, "campaign_not_active");
}

fn campaigns_that_are_not_live_are_unknown_to_users() {
    let s = shared();
    let (_, user) = s.user();
    let scheduled = create(s, json!({"starts_at": iso(now() + 3_600)}))["campaign_code"].as_str().unwrap().to_owned();
    assert_eq!(set_status(s, &scheduled, "scheduled").status, 200);
    let (not_started, _) = live(s, json!({"starts_at": iso(now() + 3_600)}));
    let (completed, _) = live(s, json!({}));
    assert_eq!(set_status(s, &completed, "completed").status, 200);
    let draft = create(s, json!({}))["campaign_code"].as_str().unwrap().to_owned();
    let unknown_redeem = redeem(s, &user, "NOPE1234");
    unknown_redeem.expect_error(404, "not_found");
    let unknown_get = s.get(&format!("{API}/campaigns/NOPE1234")).token(&user).send();
    unknown_get.expect_error(404, "not_found");
    for code in [&scheduled, &not_started, &completed, &draft] {
        let r = redeem(s, &user, code);
        assert_eq!((r.status, r.json()), (404, unknown_redeem.json()), "redeeming {code}: the same answer as an unknown code");
        let r = s.get(&format!("{API}/campaigns/{code}")).token(&user).send();
        assert_eq!((r.status, r.json()), (404, unknown_get.json()), "reading {code}: the same answer as an unknown code");
    }
    // Administrators keep the specific answers.
    for code in [&scheduled, &not_started, &completed] {
        redeem(s, s.admin(), code).expect_error(409, "campaign_not_active");
        assert_eq!(s.get(&format!("{API}/campaigns/{code}")).token(s.admin()).send().status, 200);
    }
    let credits = s.get(&format!("{API}/referrals/balance")).token(&user).send().json();
    assert_eq!(credits["balance_credits"], 0, "nothing was redeemed");
}

fn the_cron_advances_more_campaigns_than_one_chunk_over_successive_runs() {
    // An instance of its own: the test writes its D1 from outside.
    let own = Server::start(&[]);
    let s = &own;
    let t = now();
    // 600 scheduled campaigns due to start, more than one run's chunk (500), written straight to
    // D1; and 10 active ones whose uses are all taken.
    s.d1(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
         INSERT INTO campaigns (code, name, offer_type, offer_value, landing_url, status, starts_at, created_by, created_at, updated_at)
         SELECT printf('BULK%04d', i), 'Bulk', 'credits', 1, 'https://soundhash.test/', 'scheduled', {t} - 60, 'e2e', {t}, {t} FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
         INSERT INTO campaigns (code, name, offer_type, offer_value, landing_url, status, max_uses, uses, created_by, created_at, updated_at)
         SELECT printf('USEDUP%02d', i), 'Used up', 'credits', 1, 'https://soundhash.test/', 'active', 3, 3, 'e2e', {t}, {t} FROM n;"
    ));
    let moved = || {
        let sql = "SELECT SUM(code LIKE 'BULK%' AND status = 'active') + SUM(code LIKE 'USEDUP%' AND status = 'completed') AS n FROM campaigns";
        s.d1(sql)[0]["n"].as_i64().unwrap()
    };
    s.run_cron("* * * * *");
    assert_eq!(moved(), 500, "one chunk of 500 transitions in a run");
    s.run_cron("* * * * *");
    assert_eq!(moved(), 610, "the rest on the next run");
    s.run_cron("* * * * *");
    assert_eq!(moved(), 610);
}

fn a_click_batch_that_fails_part_way_is_retried_not_dropped() {
    // An instance of its own: the test changes a Durable Object's SQLite file from outside.
    let own = Server::start(&[]);
    let s = &own;
    let (code, _) = live(s, json!({}));
    let link = format!("/c/{code}");
    assert_eq!(click(s, &link, "203.0.113.90").status, 302);
    wait_clicks(s, &code, 1);
    // From now on the object fails on the second new visitor of a write: a batch of several
    // clicks fails part-way, after its id and its first click were written.
    s.object_exec(
        "LinkClicks",
        "CREATE TRIGGER injected_failure BEFORE INSERT ON visitors WHEN (SELECT COUNT(*) FROM visitors) >= 2
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    );
    let results = parallel(5, |i| click(s, &link, &format!("203.0.113.{}", 91 + i)));
    assert!(results.iter().all(|r| r.status == 302));
    // Every click is either counted or, after the retries, parked for the cron: never dropped
    // silently as the "duplicate" of a batch that was only half applied.
    let unsent = || -> i64 {
        s.log_lines().iter().filter(|l| l["link"] == format!("cmp:{code}").as_str()).filter_map(|l| l["unsent_clicks"].as_i64()).sum()
    };
    let settled = wait_for(Duration::from_secs(10), || {
        let counted = stats(s, &code)["clicks"].as_i64().unwrap() - 1;
        (counted + unsent() == 5).then_some((counted, unsent()))
    });
    let (counted, parked) = settled.unwrap_or_else(|| panic!("clicks counted: {}, parked: {}", stats(s, &code)["clicks"], unsent()));
    assert!(parked > 0, "the failing batch was parked (counted {counted})");
    // Once the object works again, the cron sends the parked batch: every click counts, once.
    s.object_exec("LinkClicks", "DROP TRIGGER injected_failure;");
    s.run_cron("* * * * *");
    assert_eq!(stats(s, &code)["clicks"], 1 + 5);
    s.run_cron("* * * * *");
    assert_eq!(click(s, &link, "203.0.113.99").status, 302);
    wait_clicks(s, &code, 1 + 5 + 1);
    assert!(s.log_lines().iter().all(|l| l["lost_clicks"].is_null()), "nothing lost");
}
