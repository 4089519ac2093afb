//! White-label resellers: apply → approve with a contract → the cron activates it → quotes by
//! the contract's tiers → end users up to the contract's seats under parallel creation →
//! amendments racing each other all land → suspend refuses at once, reinstate → the cron expires
//! the contract at its end → terminate for good.

use crate::support::{iso, now, parallel, unique, Resp, Server, API};
use crate::trials;
use serde_json::{json, Value};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(resellers: a_reseller_lives_through_its_contract)
}

fn patch(s: &Server, id: &str, body: &Value) -> Resp {
    s.patch(&format!("{API}/admin/resellers/{id}")).token(s.admin()).json(body).send()
}

/// The worked example: ≤10,000 at $0.010, ≤100,000 at $0.008, above at $0.005.
fn contract(mode: &str, starts_at: i64, ends_at: i64, markup_bps: i64, max_end_users: i64) -> Value {
    json!({
        "starts_at": iso(starts_at),
        "ends_at": iso(ends_at),
        "pricing": {"mode": mode, "tiers": [
            {"up_to": 10_000, "unit_price_micros": 10_000},
            {"up_to": 100_000, "unit_price_micros": 8_000},
            {"unit_price_micros": 5_000},
        ]},
        "markup_bps": markup_bps,
        "max_end_users": max_end_users,
        "max_api_calls_per_month": 1_000,
    })
}

fn quote(s: &Server, token: &str, calls: i64) -> Resp {
    s.get(&format!("{API}/resellers/me/pricing/quote?calls={calls}")).token(token).send()
}

fn end_user(s: &Server, token: &str, external_id: &str) -> Resp {
    s.post(&format!("{API}/resellers/me/end-users")).token(token).json(&json!({"external_id": external_id})).send()
}

fn status(s: &Server, token: &str) -> String {
    s.get(&format!("{API}/resellers/me")).token(token).send().json()["status"].as_str().unwrap_or_default().to_owned()
}

fn a_reseller_lives_through_its_contract() {
    let s = &Server::start(&[]);
    let (user, token) = s.user();
    // Apply: once, with a checked application.
    let application = json!({"company_name": "Acme Audio", "contact_email": "ops@acme.example", "requested_domain": "Audio.Acme.Example.", "expected_monthly_api_calls": 150_000});
    let r = s.post(&format!("{API}/resellers")).token(&token).json(&application).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let reseller = r.json();
    let id = reseller["id"].as_str().unwrap().to_owned();
    assert_eq!((reseller["status"].as_str(), reseller["requested_domain"].as_str(), reseller["user_id"].as_str()), (Some("pending"), Some("audio.acme.example"), Some(user.as_str())));
    s.post(&format!("{API}/resellers")).token(&token).json(&application).send().expect_error(409, "already_applied");
    let (_, other) = s.user();
    let mut bad = application.clone();
    bad["contact_email"] = json!("not an address");
    s.post(&format!("{API}/resellers")).token(&other).json(&bad).send().expect_error(422, "validation_failed");
    s.get(&format!("{API}/resellers/me")).token(&other).send().expect_error(404, "not_found");
    quote(s, &token, 10).expect_error(409, "not_under_contract");
    end_user(s, &token, "u-1").expect_error(409, "not_under_contract");

    // Approval: an admin's, with a valid contract.
    patch(s, &id, &json!({"status": "approved"})).expect_error(422, "validation_failed");
    patch(s, &id, &json!({"status": "approved", "contract": contract("graduated", now() + 10, now() - 10, 2_500, 5)})).expect_error(422, "validation_failed");
    let mut falling = contract("graduated", now() - 10, now() + 10, 2_500, 5);
    falling["pricing"]["tiers"][1]["up_to"] = json!(5);
    patch(s, &id, &json!({"status": "approved", "contract": falling})).expect_error(422, "validation_failed");
    s.patch(&format!("{API}/admin/resellers/{id}")).token(&token).json(&json!({"status": "approved"})).send().expect_error(403, "forbidden");
    patch(s, &id, &json!({"status": "active"})).expect_error(422, "validation_failed");
    let approved = patch(s, &id, &json!({"status": "approved", "contract": contract("graduated", now() - 5, now() + 3_600, 2_500, 5), "reason": "signed"}));
    assert_eq!((approved.status, approved.json()["status"].as_str()), (200, Some("approved")), "{}", approved.body);
    // The cron activates it once its contract has started.
    s.run_cron("* * * * *");
    assert_eq!(status(s, &token), "active");

    // Quotes: graduated $1,070.00 wholesale for 150,000 calls, 25 % markup; volume $750.00.
    let q = quote(s, &token, 150_000);
    assert_eq!(q.status, 200, "{}", q.body);
    let q = q.json();
    assert_eq!(
        (q["wholesale_cents"].as_i64(), q["retail_cents"].as_i64(), q["reseller_margin_cents"].as_i64(), q["platform_revenue_cents"].as_i64(), q["tier"].as_i64()),
        (Some(107_000), Some(133_750), Some(26_750), Some(107_000), Some(2))
    );
    quote(s, &token, -1).expect_error(422, "validation_failed");
    // Amendments racing each other (five markups at once) all land, one after the other.
    let version = s.get(&format!("{API}/resellers/me")).token(&token).send().json()["version"].as_i64().unwrap();
    let amendments = parallel(5, |i| patch(s, &id, &json!({"contract": contract("volume", now() - 5, now() + 3_600, 1_000 * (i as i64 + 1), 5)})));
    assert!(amendments.iter().all(|r| r.status == 200), "{:?}", amendments.iter().map(|r| &r.body).collect::<Vec<_>>());
    let after = s.get(&format!("{API}/resellers/me")).token(&token).send().json();
    assert_eq!((after["version"].as_i64(), after["status"].as_str()), (Some(version + 5), Some("active")), "{after}");
    // With If-Match, only at the version read.
    let stale = s.patch(&format!("{API}/admin/resellers/{id}")).token(s.admin()).header("If-Match", &format!("\"{version}\""))
        .json(&json!({"contract": contract("volume", now() - 5, now() + 3_600, 0, 5)})).send();
    stale.expect_error(412, "precondition_failed");
    assert_eq!(quote(s, &token, 150_000).json()["wholesale_cents"], 75_000);
    let events = s.d1(&format!("SELECT kind, actor_id FROM reseller_events WHERE reseller_id = '{id}'"));
    assert_eq!(events.len(), 2 + 5, "approval, activation and five amendments: {events:?}");
    assert_eq!(events.iter().filter(|e| e["actor_id"].is_null()).count(), 1, "the cron's activation");

    // End users: thirty at once for five seats; the same external id is the same end user.
    let created = parallel(30, |i| end_user(s, &token, &format!("ext-{i}")));
    assert_eq!(created.iter().filter(|r| r.status == 201).count(), 5, "{:?}", created.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(created.iter().all(|r| r.status == 201 || r.code() == "end_user_limit_reached"));
    let first = created.iter().find(|r| r.status == 201).unwrap().json();
    let again = end_user(s, &token, first["external_id"].as_str().unwrap());
    assert_eq!((again.status, again.json()["id"].clone()), (200, first["id"].clone()));
    let first_id = first["id"].as_str().unwrap().to_owned();
    let r = s.post(&format!("{API}/resellers/me/end-users/{first_id}/deactivate")).token(&token).json(&json!({})).send();
    assert_eq!((r.status, r.json()["active"].as_bool()), (200, Some(false)));
    s.post(&format!("{API}/resellers/me/end-users/{}/deactivate", first["id"].as_str().unwrap())).token(&other).json(&json!({})).send().expect_error(404, "not_found");
    assert_eq!(end_user(s, &token, &unique("ext")).status, 201, "a freed seat");
    end_user(s, &token, &unique("ext")).expect_error(409, "end_user_limit_reached");
    let listed = s.get(&format!("{API}/resellers/me/end-users?limit=100")).token(&token).send().json();
    assert_eq!(listed["items"].as_array().unwrap().iter().filter(|u| u["active"] == true).count(), 5);

    // Branding: served by Host once the domain is verified (and the reseller active).
    let theme = |host: &str| s.get("/branding").header("Host", host).send();
    let branding = json!({"display_name": "Acme Audio", "logo_url": "https://cdn.acme.example/logo.png", "primary_color": "#FF6600",
        "support_email": "help@acme.example", "custom_domain": "Audio.Acme.Example"});
    let r = s.request("PUT", &format!("{API}/resellers/me/branding")).token(&token).json(&branding).send();
    assert_eq!((r.status, r.json()["domain_status"].as_str(), r.json()["custom_domain"].as_str()), (200, Some("pending"), Some("audio.acme.example")), "{}", r.body);
    theme("audio.acme.example").expect_error(404, "not_found");
    let mut bad = branding.clone();
    bad["logo_url"] = json!("http://10.0.0.1/logo.png");
    s.request("PUT", &format!("{API}/resellers/me/branding")).token(&token).json(&bad).send().expect_error(422, "validation_failed");
    let r = s.post(&format!("{API}/admin/resellers/{id}/domain/verify")).token(s.admin()).json(&json!({})).send();
    assert_eq!((r.status, r.json()["domain_status"].as_str()), (200, Some("verified")), "{}", r.body);
    let served = theme("AUDIO.acme.example:443");
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!((served.json()["display_name"].as_str(), served.json()["primary_color"].as_str()), (Some("Acme Audio"), Some("#ff6600")));
    assert!(served.header("Cache-Control").is_some_and(|c| c.starts_with("public, max-age=")));
    theme("unknown.example").expect_error(404, "not_found");
    // The domain is one reseller's.
    assert_eq!(s.post(&format!("{API}/resellers")).token(&other).json(&json!({"company_name": "Other", "contact_email": "o@other.example", "expected_monthly_api_calls": 1})).send().status, 201);
    s.request("PUT", &format!("{API}/resellers/me/branding")).token(&other).json(&branding).send().expect_error(409, "domain_taken");

    // Usage: fifty reports of 25 calls at once against a quota of 1,000: exactly 40 counted.
    let active: Vec<String> = listed["items"].as_array().unwrap().iter().filter(|u| u["active"] == true).map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    let report = |calls: i64, end_user: &str, key: Option<&str>| {
        let call = s.post(&format!("{API}/resellers/usage")).token(s.admin());
        let call = match key {
            Some(key) => call.header("Idempotency-Key", key),
            None => call,
        };
        call.json(&json!({"reseller_id": id, "end_user_id": end_user, "calls": calls})).send()
    };
    let results = parallel(50, |i| report(25, &active[i % active.len()], None));
    let counted: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(counted.len(), 40, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().all(|r| r.status == 200 || r.code() == "quota_exceeded"));
    let mut used: Vec<i64> = counted.iter().map(|r| r.json()["used"].as_i64().unwrap()).collect();
    used.sort();
    assert_eq!(used, (1..=40).map(|n| n * 25).collect::<Vec<_>>(), "each report counted once, in turn");
    assert_eq!(counted[0].header("RateLimit-Limit"), Some("1000"));
    let refused = report(1, &active[0], None);
    refused.expect_error(429, "quota_exceeded");
    let retry: i64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 31 * 86_400, "{retry}");
    assert_eq!((refused.header("RateLimit-Remaining"), refused.header("RateLimit-Reset")), (Some("0"), Some(retry.to_string().as_str())));
    // An admin resets the month's quota; a retried report (same key) counts once.
    let r = s.post(&format!("{API}/admin/resellers/{id}/quota/reset")).token(s.admin()).json(&json!({"reason": "customer paid for more"})).send();
    assert_eq!((r.status, r.json()["used"].as_i64(), r.json()["calls"].as_i64()), (200, Some(0), Some(1_000)), "{}", r.body);
    let key = unique("usage");
    let first = report(10, &active[0], Some(&key)).json();
    let again = report(10, &active[0], Some(&key)).json();
    assert_eq!((first["used"].as_i64(), again["used"].as_i64(), again["replayed"].as_bool()), (Some(10), Some(10), Some(true)));
    report(11, &active[0], Some(&key)).expect_error(409, "idempotency_conflict");
    report(1_001, &active[0], None).expect_error(422, "validation_failed");
    assert_eq!(report(5, &active[0], None).json()["used"], 15);
    report(1, &first_id, None).expect_error(403, "end_user_not_active");
    s.post(&format!("{API}/resellers/usage")).token(s.admin()).json(&json!({"reseller_id": "nobody", "end_user_id": active[0], "calls": 1})).send().expect_error(404, "not_found");
    s.post(&format!("{API}/resellers/usage")).token(&token).json(&json!({"reseller_id": id, "end_user_id": active[0], "calls": 1})).send().expect_error(403, "forbidden");
    // The cron copies the month's total (every call counted, the reset's too) to D1.
    s.run_cron("* * * * *");
    let totals = s.d1(&format!("SELECT calls FROM reseller_usage WHERE reseller_id = '{id}'"));
    assert_eq!(totals.iter().map(|t| t["calls"].as_i64()).collect::<Vec<_>>(), vec![Some(1_000 + 15)]);

    // The dashboard: seats, this month against the quota, twelve months priced.
    let r = s.get(&format!("{API}/resellers/me/dashboard")).token(&token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    let board = r.json();
    assert_eq!(board["end_users"], json!({"active": 5, "limit": 5}));
    assert_eq!((board["api_calls"]["calls"].as_i64(), board["api_calls"]["used"].as_i64(), board["api_calls"]["remaining"].as_i64()), (Some(1_015), Some(15), Some(985)));
    let months = board["months"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    let priced = quote(s, &token, 1_015).json();
    assert_eq!((months[0]["calls"].as_i64(), months[0]["wholesale_cents"].clone(), months[0]["revenue_cents"].clone()), (Some(1_015), priced["wholesale_cents"].clone(), priced["reseller_margin_cents"].clone()));
    assert!(months[1..].iter().all(|m| m["calls"] == 0 && m["month"].as_str() < months[0]["month"].as_str()));
    s.get(&format!("{API}/resellers/me/dashboard")).token(&other).send().expect_error(409, "not_under_contract");
    let (_, stranger) = s.user();
    s.get(&format!("{API}/resellers/me/dashboard")).token(&stranger).send().expect_error(404, "not_found");

    // Suspended: refused at once; reinstated: active again at the next cron.
    assert_eq!(patch(s, &id, &json!({"status": "suspended", "reason": "unpaid invoice"})).json()["status"], "suspended");
    report(1, &active[0], None).expect_error(403, "reseller_not_active");
    theme("audio.acme.example").expect_error(404, "not_found");
    end_user(s, &token, &unique("ext")).expect_error(409, "not_under_contract");
    patch(s, &id, &json!({"contract": contract("volume", now() - 5, now() + 3_600, 0, 5)})).expect_error(409, "not_under_contract");
    assert_eq!(patch(s, &id, &json!({"status": "approved"})).json()["status"], "approved");
    s.run_cron("* * * * *");
    assert_eq!(status(s, &token), "active");
    // A new domain is pending again: the old one serves nothing.
    let mut moved = branding.clone();
    moved["custom_domain"] = json!("studio.acme.example");
    let r = s.request("PUT", &format!("{API}/resellers/me/branding")).token(&token).json(&moved).send();
    assert_eq!((r.status, r.json()["domain_status"].as_str()), (200, Some("pending")));
    theme("audio.acme.example").expect_error(404, "not_found");
    theme("studio.acme.example").expect_error(404, "not_found");
    assert_eq!(s.post(&format!("{API}/admin/resellers/{id}/domain/verify")).token(s.admin()).json(&json!({})).send().status, 200);
    assert_eq!(theme("studio.acme.example").status, 200);
    s.request("PUT", &format!("{API}/resellers/me/branding")).token(&other).json(&moved).send().expect_error(409, "domain_taken");

    // The cron expires the contract at its end.
    let ending = patch(s, &id, &json!({"contract": contract("volume", now() - 5, now() + 1, 0, 5)}));
    assert_eq!(ending.status, 200, "{}", ending.body);
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    s.run_cron("* * * * *");
    assert_eq!(status(s, &token), "expired");
    quote(s, &token, 1).expect_error(409, "not_under_contract");
    // Terminated for good.
    assert_eq!(patch(s, &id, &json!({"status": "terminated"})).json()["status"], "terminated");
    patch(s, &id, &json!({"status": "approved"})).expect_error(409, "invalid_transition");
    patch(s, &id, &json!({"status": "active"})).expect_error(422, "validation_failed");
    // A terminated reseller's verified domain is free again.
    let mut studio = branding.clone();
    studio["custom_domain"] = json!("studio.acme.example");
    assert_eq!(s.request("PUT", &format!("{API}/resellers/me/branding")).token(&other).json(&studio).send().status, 200);
    let listed = s.get(&format!("{API}/admin/resellers?status=terminated")).token(s.admin()).send().json();
    assert_eq!(listed["items"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), vec![json!(id)]);
}
