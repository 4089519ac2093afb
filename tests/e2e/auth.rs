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
