//! Authentication (the 401 matrix) and authorization (403 for non-admins and inactive users).

use crate::support::{b64, now, root, shared, sign, strict, unique, Server, API};
use crate::trials;
use serde_json::json;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(auth:
        bad_credentials_are_401,
        issuer_and_audience_are_enforced_when_configured,
        admin_routes_need_the_admin_flag_in_d1_not_a_claim,
        inactive_users_are_403_everywhere,
        deactivated_admins_lose_admin_routes,
        a_user_changed_elsewhere_is_served_at_most_user_cache_seconds_and_admin_routes_see_it_at_once,
        admins_cannot_change_their_own_flags,
        the_token_script_mints_tokens_the_worker_accepts,
        tokens_naming_critical_header_extensions_are_401,
        every_authenticated_route_refuses_bad_credentials_non_admins_and_deactivated_users,
        another_users_records_are_404_on_every_route_that_names_one,
    )
}

fn bad_credentials_are_401() {
    let s = shared();
    let me = format!("{API}/me");
    let user = unique("user");
    let secret = s.secret.as_bytes();
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let valid_claims = json!({"sub": user, "exp": now() + 600});
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"}).to_string()), b64(&valid_claims.to_string()));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("malformed", Some("Bearer not.a.jwt".into())),
        ("garbage", Some("Bearer abc".into())),
        ("bad signature", Some(format!("Bearer {}", sign(&hs256, &valid_claims, b"some-other-secret-value")))),
        ("alg none", Some(format!("Bearer {unsigned}"))),
        ("alg HS512", Some(format!("Bearer {}", sign(&json!({"alg": "HS512"}), &valid_claims, secret)))),
        ("expired", Some(format!("Bearer {}", sign(&hs256, &json!({"sub": user, "exp": now() - 120}), secret)))),
        ("no exp", Some(format!("Bearer {}", sign(&hs256, &json!({"sub": user}), secret)))),
        (
            "not yet valid",
            Some(format!("Bearer {}", sign(&hs256, &json!({"sub": user, "exp": now() + 600, "nbf": now() + 300}), secret))),
        ),
        ("no subject", Some(format!("Bearer {}", sign(&hs256, &json!({"exp": now() + 600}), secret)))),
    ];
    for (case, header) in cases {
        let mut call = s.get(&me);
        if let Some(h) = &header {
            call = call.header("Authorization", h);
        }
        let r = call.send();
        assert_eq!(r.status, 401, "{case}: {}", r.body);
        assert_eq!(r.code(), "unauthorized", "{case}");
    }
    // Within the 60 s leeway, an expired token still passes; a valid one passes.
    let lenient = sign(&hs256, &json!({"sub": user, "exp": now() - 30}), secret);
    assert_eq!(s.get(&me).token(&lenient).send().status, 200);
    let r = s.get(&me).token(&s.token(&user)).send();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], user.as_str());
}

fn issuer_and_audience_are_enforced_when_configured() {
    let s = strict();
    let me = format!("{API}/me");
    let user = unique("user");
    let claims = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut c = json!({"sub": user, "exp": now() + 600});
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        s.token_with(c)
    };
    let good_iss = Some("https://api.soundhash.test");
    for (case, token) in [
        ("wrong issuer", claims(Some("https://evil.test"), Some(json!("monetization")))),
        ("no issuer", claims(None, Some(json!("monetization")))),
        ("wrong audience", claims(good_iss, Some(json!("billing")))),
        ("no audience", claims(good_iss, None)),
    ] {
        let r = s.get(&me).token(&token).send();
        assert_eq!(r.status, 401, "{case}: {}", r.body);
        assert_eq!(r.code(), "unauthorized");
    }
    for aud in [json!("monetization"), json!(["billing", "monetization"])] {
        let r = s.get(&me).token(&claims(good_iss, Some(aud.clone()))).send();
        assert_eq!(r.status, 200, "aud {aud}: {}", r.body);
    }
    // The default instance checks neither.
    let open = shared();
    let token = open.token_with(json!({"sub": user, "exp": now() + 600, "iss": "https://evil.test"}));
    assert_eq!(open.get(&me).token(&token).send().status, 200);
}

fn admin_routes_need_the_admin_flag_in_d1_not_a_claim() {
    let s = shared();
    let (user, token) = s.user();
    let list = format!("{API}/admin/users");
    s.get(&list).token(&token).send().expect_error(403, "forbidden");
    let claiming = s.token_with(json!({"sub": user, "exp": now() + 600, "is_admin": true, "role": "admin", "admin": true}));
    s.get(&list).token(&claiming).send().expect_error(403, "forbidden");
    s.patch(&format!("{API}/admin/users/{user}"))
        .token(&claiming)
        .json(&json!({"is_admin": true}))
        .send()
        .expect_error(403, "forbidden");
    // Unauthenticated is 401, not 403.
    s.get(&list).send().expect_error(401, "unauthorized");
    // Granted in D1 by an admin, the same plain token works.
    let r = s.patch(&format!("{API}/admin/users/{user}")).token(s.admin()).json(&json!({"is_admin": true})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["is_admin"], true);
    assert_eq!(s.get(&list).token(&token).send().status, 200);
}

fn inactive_users_are_403_everywhere() {
    let s = shared();
    let (user, token) = s.user();
    let r = s.patch(&format!("{API}/admin/users/{user}")).token(s.admin()).json(&json!({"is_active": false})).send();
    assert_eq!((r.status, r.json()["is_active"].clone()), (200, json!(false)), "{}", r.body);
    s.get(&format!("{API}/me")).token(&token).send().expect_error(403, "forbidden");
    s.get(&format!("{API}/admin/users")).token(&token).send().expect_error(403, "forbidden");
    let r = s.patch(&format!("{API}/admin/users/{user}")).token(s.admin()).json(&json!({"is_active": true})).send();
    assert_eq!(r.status, 200);
    assert_eq!(s.get(&format!("{API}/me")).token(&token).send().status, 200);
}

fn deactivated_admins_lose_admin_routes() {
    let s = shared();
    let (admin, token) = s.new_admin();
    assert_eq!(s.get(&format!("{API}/admin/users")).token(&token).send().status, 200);
    let r = s.patch(&format!("{API}/admin/users/{admin}")).token(s.admin()).json(&json!({"is_active": false})).send();
    assert_eq!(r.status, 200);
    s.get(&format!("{API}/admin/users")).token(&token).send().expect_error(403, "forbidden");
    let r = s.patch(&format!("{API}/admin/users/{admin}")).token(s.admin()).json(&json!({"is_active": true, "is_admin": false})).send();
    assert_eq!(r.status, 200);
    s.get(&format!("{API}/admin/users")).token(&token).send().expect_error(403, "forbidden");
}

fn a_user_changed_elsewhere_is_served_at_most_user_cache_seconds_and_admin_routes_see_it_at_once() {
    const TTL: u64 = 8;
    let s = Server::start(&[("USER_CACHE_SECONDS", &TTL.to_string())]);
    // Before the user is first read (and kept), so the window measured here holds the kept one.
    let known_since = std::time::Instant::now();
    let (user, token) = s.user();
    let (admin, admin_token) = s.new_admin();
    let users = format!("{API}/admin/users");
    assert_eq!(s.get(&users).token(&admin_token).send().status, 200);
    assert_eq!(s.get(&format!("{API}/me")).token(&token).send().status, 200);
    // Changed elsewhere (as by another isolate): D1 written from outside the worker.
    s.d1(&format!("UPDATE users SET is_active = 0 WHERE id = '{user}'"));
    s.d1(&format!("UPDATE users SET is_admin = 0 WHERE id = '{admin}'"));
    // Admin rights end at once everywhere: on admin routes, and where a user route asks for them
    // (an administrator's own affiliate account may have other terms).
    s.get(&users).token(&admin_token).send().expect_error(403, "forbidden");
    let terms = s.post(&format!("{API}/affiliates")).token(&admin_token).json(&json!({"commission_rate_bps": 9500})).send();
    terms.expect_error(403, "forbidden");
    let me = s.get(&format!("{API}/me")).token(&token).send();
    if known_since.elapsed() < std::time::Duration::from_secs(TTL - 2) {
        assert_eq!(me.status, 200, "within USER_CACHE_SECONDS the isolate serves what it read");
    }
    std::thread::sleep(std::time::Duration::from_secs(TTL + 2).saturating_sub(known_since.elapsed()));
    s.get(&format!("{API}/me")).token(&token).send().expect_error(403, "forbidden");
}

fn admins_cannot_change_their_own_flags() {
    let s = shared();
    let (admin, token) = s.new_admin();
    let r = s.patch(&format!("{API}/admin/users/{admin}")).token(&token).json(&json!({"is_admin": false})).send();
    r.expect_error(409, "self_modification");
    assert_eq!(s.get(&format!("{API}/me")).token(&token).send().json()["is_admin"], true);
}

fn the_token_script_mints_tokens_the_worker_accepts() {
    let s = shared();
    let token_script = |args: &[&str]| {
        std::process::Command::new("node")
            .arg(root().join("scripts/token.mjs"))
            .args(args)
            .env("API_SECRET_KEY", &s.secret)
            .output()
            .expect("node scripts/token.mjs")
    };
    let user = unique("scripted");
    let out = token_script(&[&user, "--expires", "2m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = s.get(&format!("{API}/me")).token(&token).send();
    assert_eq!((r.status, r.json()["id"].clone()), (200, json!(user)));
    // A plain token is not an admin token.
    s.get(&format!("{API}/admin/users")).token(&token).send().expect_error(403, "forbidden");
    // Bad arguments are refused with exit code 2.
    for args in [vec!["has space"], vec!["x", "--expires", "soon"], vec![], vec!["x", "--bogus"]] {
        assert_eq!(token_script(&args).status.code(), Some(2), "{args:?}");
    }
}

/// RFC 7515 §4.1.11: a recipient that does not understand every extension a token lists in
/// `crit` must reject it. This service understands none.
fn tokens_naming_critical_header_extensions_are_401() {
    let s = shared();
    let me = format!("{API}/me");
    let user = unique("user");
    let claims = json!({"sub": user, "exp": now() + 600});
    let secret = s.secret.as_bytes();
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-policy"], "exp-policy": "strict"}),
        json!({"alg": "HS256", "crit": ["b64"], "b64": false}),
        json!({"alg": "HS256", "crit": []}),
        json!({"alg": "HS256", "crit": null}),
        json!({"alg": "HS256", "crit": "exp"}),
    ] {
        let r = s.get(&me).token(&sign(&header, &claims, secret)).send();
        assert_eq!(r.status, 401, "{header}: {}", r.body);
        assert_eq!(r.code(), "unauthorized", "{header}");
    }
    // The same claims under a plain header pass.
    let r = s.get(&me).token(&sign(&json!({"alg": "HS256", "typ": "JWT"}), &claims, secret)).send();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Every authenticated operation of `/openapi.json` (which a unit test keeps equal to the routing
/// table, so a new route is in this matrix the moment it is routed): the method, the path with
/// sample parameters, and whether it is an admin's.
fn secured_operations(s: &Server) -> Vec<(String, String, bool)> {
    let doc = s.get("/openapi.json").send().json();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(scheme) = op["security"].as_array().and_then(|s| s.first()).and_then(|s| s.as_object()).and_then(|s| s.keys().next().cloned()) else {
                continue;
            };
            let concrete = path.replace("{id}", "some-id").replace("{code}", "SOMECODE").replace("{period}", "2026-01").replace("{token}", "t");
            out.push((method.to_uppercase(), concrete, scheme == "adminBearerAuth"));
        }
    }
    out
}

/// The matrix of issue 14 over every authenticated route: each bad credential is 401 (before any
/// body or parameter is looked at), a user without the admin flag is 403 on every admin route, a
/// deactivated user is 403 everywhere.
fn every_authenticated_route_refuses_bad_credentials_non_admins_and_deactivated_users() {
    let s = shared();
    let operations = secured_operations(s);
    assert!(operations.len() > 60, "{} operations", operations.len());
    let user = unique("user");
    let secret = s.secret.as_bytes();
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let claims = json!({"sub": user, "exp": now() + 600});
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"}).to_string()), b64(&claims.to_string()));
    let credentials: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("Bearer not.a.jwt".into())),
        ("expired", Some(format!("Bearer {}", sign(&hs256, &json!({"sub": user, "exp": now() - 120}), secret)))),
        ("another key", Some(format!("Bearer {}", sign(&hs256, &claims, b"some-other-secret-value")))),
        ("alg none", Some(format!("Bearer {unsigned}"))),
        ("alg HS512", Some(format!("Bearer {}", sign(&json!({"alg": "HS512"}), &claims, secret)))),
    ];
    let mut probes = 0;
    for (i, (method, path, _)) in operations.iter().enumerate() {
        for (k, (case, header)) in credentials.iter().enumerate() {
            // (Bad tokens are throttled per client address: each probe comes from its own.)
            let mut call = s.request(method, path).header("CF-Connecting-IP", &format!("10.77.{}.{}", i % 250, k + 1)).json(&json!({}));
            if let Some(h) = header {
                call = call.header("Authorization", h);
            }
            let r = call.send();
            assert_eq!((r.status, r.code()), (401, "unauthorized".to_owned()), "{case}: {method} {path}: {}", r.body);
            probes += 1;
        }
    }
    // A user who is no admin: 403 on every admin route.
    let (_, token) = s.user();
    for (method, path, admin) in &operations {
        if *admin {
            let r = s.request(method, path).token(&token).json(&json!({})).send();
            assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()), "non-admin: {method} {path}: {}", r.body);
            probes += 1;
        }
    }
    // A deactivated user (an admin, even): 403 everywhere.
    let (admin, admin_token) = s.new_admin();
    let r = s.patch(&format!("{API}/admin/users/{admin}")).token(s.admin()).json(&json!({"is_active": false})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    for (method, path, _) in &operations {
        let r = s.request(method, path).token(&admin_token).json(&json!({})).send();
        assert_eq!((r.status, r.code()), (403, "forbidden".to_owned()), "deactivated: {method} {path}: {}", r.body);
        probes += 1;
    }
    eprintln!("authorization matrix: {} operations, {probes} probes", operations.len());
}

/// What a request carries: nothing, a JSON body, or a file upload.
#[derive(Clone)]
enum Body {
    Json(serde_json::Value),
    File,
}

/// One operation on a record someone owns: the record named to people who do not own it (each
/// must get 404 and not a byte of it), then the owner's call (proving the record is real and
/// was left as it was).
struct Owned {
    method: &'static str,
    template: String,
    record: String,
    foreign: String,
    intruders: Vec<String>,
    owner_path: String,
    owner: Option<String>,
    body: Body,
    owner_status: u16,
}

/// Routes with a path parameter that names no record of anyone's: why each is not in the BOLA
/// matrix. Any other route with a parameter must be in it.
const SHARED_BY_DESIGN: &[(&str, &str, &str)] = &[
    ("GET", "/a/{code}", "an affiliate's public link"),
    ("GET", "/r/{code}", "a referrer's public link"),
    ("GET", "/c/{code}", "a campaign's public link"),
    ("GET", "/d/{token}", "an HMAC-signed capability (its tampering is 403: marketplace tests)"),
    ("GET", "/api/v1/monetization/campaigns/{code}", "a live campaign is offered to every user"),
    ("POST", "/api/v1/monetization/campaigns/{code}/redeem", "a live campaign is offered to every user"),
    ("POST", "/api/v1/monetization/marketplace/items/{id}/purchase", "a published item is for sale to everyone"),
    ("GET", "/api/v1/monetization/marketplace/items/{id}/reviews", "a published item's reviews are public"),
    ("POST", "/api/v1/monetization/marketplace/items/{id}/reviews", "any buyer reviews (403 without a purchase: marketplace_sellers)"),
    ("GET", "/api/v1/monetization/revenue/creator/statements/{period}", "a period of the caller's own records"),
];

/// BOLA (OWASP API1:2023) over every route whose path names a record: another user's token gets
/// 404 (never 403, which would confirm the record exists) and a response without the record's
/// id; the owner then gets their record. A route with a path parameter that is neither here nor
/// in `SHARED_BY_DESIGN` fails the test.
fn another_users_records_are_404_on_every_route_that_names_one() {
    use crate::marketplace::{create_item, published_item};
    let s = shared();
    let (_, seller) = s.user();
    let (_, buyer) = s.user();
    let (_, stranger) = s.user();
    let item = |title: &str, price: i64| json!({"title": title, "category": "other", "price_cents": price});
    let draft = create_item(s, &seller, &item("Private draft", 500))["id"].as_str().unwrap().to_owned();
    let published = published_item(s, &seller, &item("Free for all", 0));
    let bought = s
        .post(&format!("{API}/marketplace/items/{published}/purchase"))
        .token(&buyer)
        .header("Idempotency-Key", &unique("k"))
        .json(&json!({}))
        .send();
    assert_eq!((bought.status, bought.json()["status"].as_str()), (201, Some("completed")), "{}", bought.body);
    let order = bought.json()["order_id"].as_str().unwrap().to_owned();
    let licenses = s.get(&format!("{API}/marketplace/items/{published}/licenses")).token(&seller).send().json();
    let license = licenses["items"][0]["id"].as_str().expect("the sale's license").to_owned();
    // Two resellers under contract; the second is the first's intruder.
    let under_contract = |token: &str| {
        let r = s.post(&format!("{API}/resellers")).token(token).json(&json!({"company_name": unique("Co"), "contact_email": "ops@co.example", "expected_monthly_api_calls": 10})).send();
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let contract = json!({
            "starts_at": crate::support::iso(now() - 5), "ends_at": crate::support::iso(now() + 3_600),
            "pricing": {"mode": "volume", "tiers": [{"unit_price_micros": 1_000}]},
            "markup_bps": 0, "max_end_users": 5, "max_api_calls_per_month": 100,
        });
        let r = s.patch(&format!("{API}/admin/resellers/{id}")).token(s.admin()).json(&json!({"status": "approved", "contract": contract})).send();
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let (_, reseller) = s.user();
    let (_, rival) = s.user();
    under_contract(&reseller);
    under_contract(&rival);
    let end_user = s.post(&format!("{API}/resellers/me/end-users")).token(&reseller).json(&json!({"external_id": "e-1"})).send();
    assert_eq!(end_user.status, 201, "{}", end_user.body);
    let end_user = end_user.json()["id"].as_str().unwrap().to_owned();

    let m = |p: &str| format!("{API}/marketplace/{p}");
    let case = |method, template: &str, id: &str, intruders: &[&String], owner: &str, body: Body, owner_status| Owned {
        method,
        template: format!("{API}/{template}"),
        record: id.to_owned(),
        foreign: format!("{API}/{}", template.replace("{id}", id)),
        intruders: intruders.iter().map(|t| t.to_string()).collect(),
        owner_path: format!("{API}/{}", template.replace("{id}", id)),
        owner: Some(owner.to_owned()),
        body,
        owner_status,
    };
    let mut cases = vec![
        case("PATCH", "marketplace/items/{id}", &draft, &[&stranger, &buyer], &seller, Body::Json(json!({"title": "Renamed by its seller"})), 200),
        case("POST", "marketplace/items/{id}/versions", &draft, &[&stranger, &buyer], &seller, Body::Json(json!({"version_number": "2.0.0"})), 201),
        case("PUT", "marketplace/items/{id}/file", &draft, &[&stranger, &buyer], &seller, Body::File, 201),
        case("GET", "marketplace/items/{id}/licenses", &published, &[&stranger, &buyer], &seller, Body::Json(json!({})), 200),
        case("PATCH", "marketplace/licenses/{id}", &license, &[&stranger, &buyer], &seller, Body::Json(json!({"status": "disabled"})), 200),
        case("GET", "marketplace/purchases/{id}", &order, &[&stranger, &seller], &buyer, Body::Json(json!({})), 200),
        case("POST", "marketplace/purchases/{id}/license/rotate", &order, &[&stranger, &seller], &buyer, Body::Json(json!({})), 200),
        case("GET", "marketplace/purchases/{id}/download", &order, &[&stranger, &seller], &buyer, Body::Json(json!({})), 302),
        case("POST", "resellers/me/end-users/{id}/deactivate", &end_user, &[&rival, &stranger], &reseller, Body::Json(json!({})), 200),
    ];
    // A draft's public pages (its private fields) are nobody's, with a token or without, its
    // seller's included; the published item's are everyone's.
    for template in ["marketplace/items/{id}", "marketplace/items/{id}/versions"] {
        cases.push(Owned {
            method: "GET",
            template: format!("{API}/{template}"),
            record: draft.clone(),
            foreign: m(&template.replace("{id}", &draft)["marketplace/".len()..]),
            intruders: vec![stranger.clone(), seller.clone(), String::new()],
            owner_path: m(&template.replace("{id}", &published)["marketplace/".len()..]),
            owner: None,
            body: Body::Json(json!({})),
            owner_status: 200,
        });
    }

    // Every route with a path parameter (but an admin's, whose matrix is the one above) is
    // classified: owned, or shared by design.
    let doc = s.get("/openapi.json").send().json();
    let mut unclassified = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let admin = op["security"].to_string().contains("adminBearerAuth");
            if !path.contains('{') || admin {
                continue;
            }
            let owned = cases.iter().any(|c| c.method == method && c.template == *path);
            let shared = SHARED_BY_DESIGN.iter().any(|(m, p, _)| *m == method && p == path);
            assert!(!(owned && shared), "{method} {path} is both owned and shared");
            if !owned && !shared {
                unclassified.push(format!("{method} {path}"));
            }
        }
    }
    assert!(unclassified.is_empty(), "routes naming a record without their place in the BOLA matrix: {unclassified:?}");

    let send = |method: &str, path: &str, token: Option<&str>, body: &Body| {
        let mut call = s.request(method, path);
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            call = call.token(t);
        }
        match body {
            Body::Json(v) => call.json(v).send(),
            Body::File => call.header("Content-Type", "application/zip").body(vec![7; 64]).send(),
        }
    };
    // What the owners see of their records, before and after the intruders' attempts.
    let snapshot = || {
        let get = |path: &str, token: &str| s.get(&format!("{API}/{path}")).token(token).send().body;
        [
            get("marketplace/seller/items", &seller),
            get(&format!("marketplace/items/{published}/licenses"), &seller),
            get(&format!("marketplace/purchases/{order}"), &buyer),
            get("resellers/me/end-users", &reseller),
        ]
    };
    let before = snapshot();
    let mut probes = 0;
    for c in &cases {
        for intruder in &c.intruders {
            let r = send(c.method, &c.foreign, Some(intruder), &c.body);
            assert_eq!((r.status, r.code()), (404, "not_found".to_owned()), "{} {}: {}", c.method, c.foreign, r.body);
            assert!(!r.body.contains(&c.record), "{} {} names the record: {}", c.method, c.foreign, r.body);
            probes += 1;
        }
    }
    // A draft is nobody's to buy or review either.
    let review = json!({"rating": 5, "title": "Great", "review_text": "Worth it"});
    let draft_routes = [
        ("POST", format!("{API}/marketplace/items/{draft}/purchase"), json!({})),
        ("GET", format!("{API}/marketplace/items/{draft}/reviews"), json!({})),
        ("POST", format!("{API}/marketplace/items/{draft}/reviews"), review),
    ];
    for (method, path, body) in &draft_routes {
        let call = s.request(method, path).token(&stranger).header("Idempotency-Key", &unique("k"));
        let r = if *method == "GET" { call.send() } else { call.json(body).send() };
        assert_eq!((r.status, r.code()), (404, "not_found".to_owned()), "{method} {path}: {}", r.body);
        probes += 1;
    }
    assert_eq!(snapshot(), before, "an intruder's request changed an owner's record");
    for c in &cases {
        let r = send(c.method, &c.owner_path, c.owner.as_deref(), &c.body);
        assert_eq!(r.status, c.owner_status, "the owner's {} {}: {}", c.method, c.owner_path, r.body);
    }
    eprintln!("BOLA matrix: {} operations naming a record, {probes} intruder probes", cases.len());
}
