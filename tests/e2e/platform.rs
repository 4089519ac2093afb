//! The platform layer: health, envelopes, request ids, logging, body rules, OpenAPI, docs, cron,
//! and the deployable bundle.

use crate::support::{instant, root, shared, unique, wrangler, Server, API};
use crate::trials;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(platform:
        healthz_is_public,
        unknown_routes_are_404_envelopes,
        wrong_methods_are_405_with_allow,
        every_response_has_a_fresh_request_id,
        mutations_and_failures_log_one_line_and_successful_reads_none,
        request_log_all_and_errors_widen_and_narrow_the_log,
        methods_the_service_does_not_know_are_405_and_count_nothing,
        server_timing_counts_the_round_trips_of_each_request,
        bodies_over_64_kib_are_413,
        malformed_json_is_400_and_shape_errors_are_422_naming_the_field,
        bodies_must_be_json,
        internal_errors_hide_details_and_carry_the_request_id,
        openapi_documents_exactly_the_live_routes,
        docs_render_the_document_without_a_cdn,
        responses_are_never_sniffed_and_stored_only_when_public,
        cron_trigger_runs_the_jobs,
        deploy_dry_run_builds_a_small_bundle,
        integral_numbers_are_integers_and_fractions_are_refused_naming_the_field,
        an_explicit_null_is_refused_naming_the_field,
        every_documented_body_field_is_refused_in_client_words,
        instants_outside_1970_to_9999_are_refused,
        length_limits_count_characters_not_bytes,
    )
}

fn healthz_is_public() {
    let s = shared();
    let r = s.get("/healthz").send();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let head = s.request("HEAD", "/healthz").send();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

fn unknown_routes_are_404_envelopes() {
    let s = shared();
    for path in ["/nope", "/api/v1/monetization", &format!("{API}/me/"), &format!("{API}/nothing-here")] {
        s.get(path).send().expect_error(404, "not_found");
    }
    // Also with a valid token: routing comes first.
    let (_, token) = s.user();
    s.post(&format!("{API}/unknown")).token(&token).json(&json!({})).send().expect_error(404, "not_found");
}

fn wrong_methods_are_405_with_allow() {
    let s = shared();
    let r = s.request("DELETE", &format!("{API}/me")).send();
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = s.post("/healthz").send();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = s.get(&format!("{API}/admin/users/someone")).send();
    assert_eq!((r.status, r.header("allow")), (405, Some("PATCH")));
}

fn every_response_has_a_fresh_request_id() {
    let s = shared();
    let (_, token) = s.user();
    let responses = [
        s.get("/healthz").send(),
        s.get("/nope").send(),
        s.get(&format!("{API}/me")).send(),
        s.get(&format!("{API}/me")).token(&token).send(),
        s.get(&format!("{API}/admin/users")).token(&token).send(),
    ];
    let ids: BTreeSet<String> = responses
        .iter()
        .map(|r| {
            let id = r.header("x-request-id").unwrap_or_else(|| panic!("no X-Request-Id on {}", r.status));
            assert_eq!(id.len(), 36, "uuid-shaped: {id}");
            id.to_owned()
        })
        .collect();
    assert_eq!(ids.len(), responses.len(), "request ids repeat");
}

fn mutations_and_failures_log_one_line_and_successful_reads_none() {
    let s = shared();
    let (user, token) = s.user();
    let read = s.get(&format!("{API}/me")).token(&token).send();
    assert_eq!(read.status, 200);
    let denied = s.get(&format!("{API}/admin/users")).token(&token).send();
    let (admin, admin_token) = s.new_admin();
    let mutation = s.patch(&format!("{API}/admin/users/{user}")).token(&admin_token).json(&json!({"is_admin": false})).send();
    for (r, status, method, who) in [(&denied, 403, "GET", &user), (&mutation, 200, "PATCH", &admin)] {
        let id = r.header("x-request-id").expect("request id").to_owned();
        let lines = s.wait_log(|l| l["request_id"] == id.as_str() && l.get("status").is_some());
        assert_eq!(lines.len(), 1, "exactly one request line for {id}: {lines:?}");
        let line = &lines[0];
        assert_eq!(line["method"], method);
        assert_eq!(line["status"], status);
        assert_eq!(line["user_id"], who.as_str());
        assert_eq!(line["level"], "info");
        assert!(line["path"].as_str().unwrap().starts_with(API));
        assert!(line["duration_ms"].as_u64().is_some(), "{line}");
        assert!(line["d1"].as_u64().is_some() && line["do"].as_u64() == Some(0), "round trips logged: {line}");
    }
    // Lines are written in order: once the later ones are there, the read's would be too.
    let read_id = read.header("x-request-id").unwrap();
    assert!(s.log_lines().iter().all(|l| l["request_id"] != read_id), "a successful read is not logged");
}

fn request_log_all_and_errors_widen_and_narrow_the_log() {
    let everything = Server::start(&[("REQUEST_LOG", "all")]);
    let ok = everything.get("/healthz").send();
    let ok_id = ok.header("x-request-id").unwrap().to_owned();
    assert_eq!(everything.wait_log(|l| l["request_id"] == ok_id.as_str()).len(), 1, "REQUEST_LOG=all logs reads");

    let quiet = Server::start(&[("REQUEST_LOG", "errors")]);
    let (_, token) = quiet.user();
    let write = quiet.post(&format!("{API}/affiliates")).token(&token).json(&json!({})).send();
    assert_eq!(write.status, 201, "{}", write.body);
    let missing = quiet.get("/nope").send();
    let (write_id, missing_id) = (write.header("x-request-id").unwrap().to_owned(), missing.header("x-request-id").unwrap().to_owned());
    let logged = quiet.wait_log(|l| l["request_id"] == missing_id.as_str());
    assert_eq!(logged.len(), 1, "the 404 is logged");
    assert!(quiet.log_lines().iter().all(|l| l["request_id"] != write_id.as_str()), "the 201 is not");
}

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn methods_the_service_does_not_know_are_405_and_count_nothing() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    // (Methods workerd itself does not parse, such as `FOO` or a lower-case `get`, never reach the
    // worker: the runtime answers 501.)
    for method in ["PROPFIND", "QUERY", "MKCOL", "SEARCH", "TRACE"] {
        let r = s.request(method, &format!("/a/{code}")).header("User-Agent", BROWSER).send();
        r.expect_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(r.header("location"), None);
    }
    let r = s.request("QUERY", &format!("{API}/me")).token(&token).send();
    r.expect_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let id = r.header("x-request-id").unwrap().to_owned();
    let lines = s.wait_log(|l| l["request_id"] == id.as_str() && l.get("status").is_some());
    assert_eq!(lines.first().map(|l| l["method"].clone()), Some(json!("QUERY")), "logged as sent: {lines:?}");
    // One real click, for contrast: it alone is counted. (Clicks of a link go out in order, so
    // once this one is counted, any click sent before it would be too.)
    assert_eq!(s.get(&format!("/a/{code}")).header("User-Agent", BROWSER).send().status, 302);
    let clicks = crate::support::wait_for(std::time::Duration::from_secs(10), || {
        let dashboard = s.get(&format!("{API}/affiliates/dashboard")).token(&token).send().json();
        dashboard["clicks"].as_i64().filter(|&n| n >= 1)
    });
    assert_eq!(clicks, Some(1));
}

/// `(D1 round trips, Durable Object calls)` of a response's `Server-Timing`.
fn round_trips(r: &crate::support::Resp) -> (u64, u64) {
    let header = r.header("server-timing").unwrap_or_else(|| panic!("no Server-Timing on {} {}", r.status, r.body));
    let count = |metric: &str| {
        header
            .split(',')
            .map(str::trim)
            .find(|m| m.split(';').next() == Some(metric))
            .and_then(|m| m.split(';').find_map(|p| p.strip_prefix("count=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {metric} count in {header}"))
    };
    assert!(header.contains("total;dur="), "{header}");
    (count("d1"), count("do"))
}

fn server_timing_counts_the_round_trips_of_each_request() {
    // An instance of its own with long cache lifetimes: on a shared one, another test's change
    // makes an isolate forget (and re-read) what it keeps, and a 1-second link cache ends at the
    // next second boundary.
    let s = &Server::start(&[("LINK_CACHE_SECONDS", "60"), ("USER_CACHE_SECONDS", "60")]);
    let (_, token) = s.user(); // first sight: the user is read (and provisioned), then known
    let me = s.get(&format!("{API}/me")).token(&token).send();
    assert_eq!((me.status, round_trips(&me)), (200, (0, 0)), "a known user costs no D1 read");
    let balance = s.get(&format!("{API}/referrals/balance")).token(&token).send();
    assert_eq!((balance.status, round_trips(&balance)), (200, (1, 0)), "the balance is one query");
    let (code, _) = crate::campaigns::live(s, json!({}));
    let first = s.get(&format!("/c/{code}")).header("User-Agent", BROWSER).send();
    assert_eq!(first.status, 302);
    let click = s.get(&format!("/c/{code}")).header("User-Agent", BROWSER).send();
    assert_eq!((click.status, round_trips(&click)), (302, (0, 0)), "a cached link costs no round trip");
    // Admin routes read the user every time; a dashboard asks the link's Durable Object once.
    let stats = s.get(&format!("{API}/admin/campaigns/{code}/stats")).token(s.admin()).send();
    assert_eq!(stats.status, 200, "{}", stats.body);
    let (d1, objects) = round_trips(&stats);
    assert!(d1 >= 2 && objects == 1, "stats: {d1} D1, {objects} object calls");
    // Errors carry it too.
    assert_eq!(round_trips(&s.get("/nope").send()), (0, 0));
}

fn bodies_over_64_kib_are_413() {
    let s = shared();
    let admin = s.admin();
    let (target, _) = s.user();
    let path = format!("{API}/admin/users/{target}");
    let padding = "x".repeat(64 * 1024);
    let big = json!({"is_active": false, "pad": padding}).to_string().into_bytes();
    let oversized = || s.patch(&path).token(admin).header("Content-Type", "application/json");
    let r = oversized().body(big.clone()).send();
    r.expect_error(413, "payload_too_large");
    let r = oversized().body(big).send_chunked();
    r.expect_error(413, "payload_too_large");
    // Far over the limit, the declared length alone is refused: the answer comes before the body
    // is sent (a client still writing 2 MiB when the server answers and closes would see its
    // write reset instead, so this one sends the head only and reads).
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        2 << 20
    );
    let answer = s.raw(head.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Just under the limit is read (and then judged on its content).
    let fits = format!("{{\"is_active\": false, \"pad\": \"{}\"}}", "x".repeat(64 * 1024 - 40));
    assert!(fits.len() <= 64 * 1024);
    let r = s.patch(&path).token(admin).header("Content-Type", "application/json").body(fits.into_bytes()).send();
    r.expect_error(422, "validation_failed");
    // Nothing changed.
    assert_eq!(s.find_user(&target)["is_active"], true);
}

fn malformed_json_is_400_and_shape_errors_are_422_naming_the_field() {
    let s = shared();
    let admin = s.admin();
    let (target, _) = s.user();
    let path = format!("{API}/admin/users/{target}");
    let send = |body: &str| s.patch(&path).token(admin).header("Content-Type", "application/json").body(body.into()).send();
    for body in ["{", "{\"is_active\": }", "", "not json", "{\"is_active\": false} trailing"] {
        send(body).expect_error(400, "invalid_json");
    }
    for (body, field) in [
        ("{\"is_active\": \"no\"}", "is_active"),
        ("{\"is_active\": false, \"is_admin\": 1}", "is_admin"),
        ("{\"is_active\": false, \"role\": \"owner\"}", "role"),
        ("{}", "body"),
        ("[]", "body"),
    ] {
        let r = send(body);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.body);
    }
    assert_eq!(s.find_user(&target)["is_active"], true, "a rejected request changed nothing");
}

fn bodies_must_be_json() {
    let s = shared();
    let (target, _) = s.user();
    let r = s
        .patch(&format!("{API}/admin/users/{target}"))
        .token(s.admin())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(b"is_active=false".to_vec())
        .send();
    r.expect_error(415, "unsupported_media_type");
}

fn internal_errors_hide_details_and_carry_the_request_id() {
    // A real misconfiguration (a var that is not a number): every authenticated request fails
    // inside the worker.
    let broken = Server::start(&[("IDEMPOTENCY_TTL_SECONDS", "not-a-number")]);
    let token = broken.token(&unique("user"));
    let r = broken.get(&format!("{API}/me")).token(&token).send();
    r.expect_error(500, "internal_error");
    let id = r.header("x-request-id").expect("request id").to_owned();
    let error = &r.json()["error"];
    assert_eq!(error["request_id"], id.as_str());
    assert!(error["message"].as_str().unwrap().contains(&id));
    assert!(!r.body.contains("IDEMPOTENCY_TTL_SECONDS"), "leaks internals: {}", r.body);
    assert!(!r.body.contains("not-a-number"), "leaks internals: {}", r.body);
    // The detail is in the log, under the same request id.
    let logged = broken.wait_log(|l| l["request_id"] == id.as_str() && l["level"] == "error");
    assert!(logged.iter().any(|l| l["error"].as_str().is_some_and(|e| e.contains("IDEMPOTENCY_TTL_SECONDS"))), "{logged:?}");
    // Public routes still serve.
    assert_eq!(broken.get("/healthz").send().status, 200);
}

fn openapi_documents_exactly_the_live_routes() {
    let s = shared();
    let r = s.get("/openapi.json").send();
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 6);
    // For every documented path, a method it does not document must be answered 405 with an
    // Allow header listing exactly the documented methods: the path is routed, with those methods.
    for (path, item) in paths {
        let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
        let probe = ["PUT", "DELETE", "PATCH", "POST", "GET"].into_iter().find(|m| !documented.contains(*m)).unwrap();
        let concrete = path.replace("{id}", "some-id").replace("{code}", "SOMECODE");
        let r = s.request(probe, &concrete).send();
        assert_eq!(r.status, 405, "{probe} {path}: {}", r.body);
        let mut allowed: BTreeSet<String> = r.header("allow").unwrap().split(", ").map(str::to_owned).collect();
        allowed.remove("HEAD");
        assert_eq!(allowed, documented, "{path}");
    }
}

fn docs_render_the_document_without_a_cdn() {
    let s = shared();
    let r = s.get("/docs").send();
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("fetch(\"/openapi.json\")"), "the page renders the live document");
    for external in ["src=\"http", "href=\"http", "import(\"http", "@import"] {
        assert!(!r.body.contains(external), "external resource in /docs: {external}");
    }
    // The page loads nothing but itself and the document, and no other site frames it.
    let policy = r.header("content-security-policy").unwrap_or_default();
    for directive in ["default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
}

/// OWASP API8 (misconfiguration): no response is content-sniffed, and none is stored by a
/// browser or a shared cache but the public document and its page.
fn responses_are_never_sniffed_and_stored_only_when_public() {
    let s = shared();
    let (_, token) = s.user();
    let responses = [
        ("me", s.get(&format!("{API}/me")).token(&token).send()),
        ("an error", s.get("/nope").send()),
        ("a 401", s.get(&format!("{API}/me")).send()),
        ("a redirect's 404", s.get("/a/AFF22222222").send()),
        ("a mutation", s.post(&format!("{API}/affiliates")).token(&token).json(&json!({})).send()),
    ];
    for (what, r) in &responses {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
    for path in ["/openapi.json", "/docs"] {
        let r = s.get(path).send();
        assert_eq!((r.header("x-content-type-options"), r.header("cache-control")), (Some("nosniff"), Some("public, max-age=300")), "{path}");
    }
}

fn cron_trigger_runs_the_jobs() {
    let s = shared();
    s.run_cron("* * * * *");
    for job in ["purge_idempotency_keys", "expire_referrals", "grant_referral_bonuses"] {
        let lines = s.wait_log(|l| l["job"] == job && l["cron"] == "* * * * *");
        assert!(!lines.is_empty(), "the cron job {job} logged its run");
        assert!(lines.iter().all(|l| l["affected"].as_u64().is_some()), "{lines:?}");
    }
}

fn deploy_dry_run_builds_a_small_bundle() {
    let out_dir = root().join("target/e2e/deploy-dry-run");
    let out = wrangler(&["deploy", "--dry-run", "--outdir", out_dir.to_str().unwrap()]);
    let line = out.lines().find(|l| l.contains("Total Upload")).unwrap_or_else(|| panic!("no size line:\n{out}"));
    // "Total Upload: 612.34 KiB / gzip: 220.01 KiB"
    let gzip: f64 = line.split("gzip:").nth(1).and_then(|t| t.trim().split(' ').next()).and_then(|n| n.parse().ok()).expect(line);
    eprintln!("deploy dry run: {}", line.trim());
    assert!(gzip < 600.0, "bundle over the 600 KiB gzip budget: {line}");
}

fn integral_numbers_are_integers_and_fractions_are_refused_naming_the_field() {
    let s = shared();
    let (_, token) = s.user();
    let id = s.post(&format!("{API}/affiliates")).token(&token).json(&json!({})).send().json()["id"].as_str().unwrap().to_owned();
    let review = |body: &str| {
        s.patch(&format!("{API}/admin/affiliates/{id}")).token(s.admin()).header("Content-Type", "application/json").body(body.into()).send()
    };
    // JSON Schema counts 24.0 as an integer, and some JSON clients write integral numbers so.
    let r = review(r#"{"commission_months": 24.0, "commission_rate_bps": 2.5e3}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.json()["commission_months"].clone(), r.json()["commission_rate_bps"].clone()), (json!(24), json!(2500)));
    for (body, field, message) in [
        (r#"{"commission_months": 24.5}"#, "commission_months", "commission_months must be an integer"),
        (r#"{"commission_months": "24"}"#, "commission_months", "commission_months must be an integer"),
        (r#"{"commission_rate_bps": 1e300}"#, "commission_rate_bps", "commission_rate_bps is out of range"),
        (r#"{"commission_rate_bps": 9223372036854775808}"#, "commission_rate_bps", "commission_rate_bps is out of range"),
        // An exponent cut to 32 bits in wasm once read this as 1.
        (r#"{"commission_months": 1e-4294967296}"#, "commission_months", "commission_months must be an integer"),
    ] {
        let r = review(body);
        r.expect_error(422, "validation_failed");
        assert_eq!((r.json()["error"]["field"].as_str(), r.json()["error"]["message"].as_str()), (Some(field), Some(message)), "{body}");
    }
    // An exponent at the end of i64 once wrapped and crashed the worker; it is beyond any double.
    review(r#"{"commission_rate_bps": 1e9223372036854775807}"#).expect_error(400, "invalid_json");
    let terms = crate::affiliates::dashboard(s, &token);
    assert_eq!((terms["commission_months"].clone(), terms["commission_rate_bps"].clone()), (json!(24), json!(2500)), "refused bodies changed nothing");

    // Nested too: an offer's value.
    let post = |body: &str| s.post(&format!("{API}/campaigns")).token(s.admin()).header("Content-Type", "application/json").body(body.into()).send();
    let r = post(r#"{"name": "Floats", "offer": {"type": "credits", "value": 103496327.0}, "landing_url": "https://soundhash.test/"}"#);
    assert_eq!((r.status, r.json()["offer"]["value"].clone()), (201, json!(103_496_327)), "{}", r.body);
    let code = r.json()["campaign_code"].as_str().unwrap().to_owned();
    let patch = |body: &str| {
        s.patch(&format!("{API}/admin/campaigns/{code}")).token(s.admin()).header("Content-Type", "application/json").body(body.into()).send()
    };
    assert_eq!(patch(r#"{"offer": {"type": "credits", "value": 5.0}, "max_uses": 10.0}"#).json()["offer"]["value"], 5);
    let r = patch(r#"{"offer": {"type": "credits", "value": 5.5}}"#);
    r.expect_error(422, "validation_failed");
    assert_eq!((r.json()["error"]["field"].as_str(), r.json()["error"]["message"].as_str()), (Some("offer.value"), Some("offer.value must be an integer")));
    let r = post(r#"{"name": "Floats", "offer": {"type": "credits", "value": 1}, "landing_url": "https://soundhash.test/", "max_uses": 0.5}"#);
    assert_eq!((r.status, r.json()["error"]["field"].clone()), (422, json!("max_uses")), "{}", r.body);
}

fn an_explicit_null_is_refused_naming_the_field() {
    let s = shared();
    let (_, token) = s.user();
    // No field of any request body is nullable (the document says so): null is not "absent".
    let apply = |body: &str| s.post(&format!("{API}/affiliates")).token(&token).header("Content-Type", "application/json").body(body.into()).send();
    for (body, field) in [
        (r#"{"commission_months": null}"#, "commission_months"),
        (r#"{"payout_email": null}"#, "payout_email"),
        (r#"{"website": "https://me.example.com", "commission_rate_bps": null}"#, "commission_rate_bps"),
    ] {
        let r = apply(body);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["message"], format!("{field} must not be null; leave it out instead"), "{body}");
    }
    assert_eq!(apply("{}").status, 201, "no affiliate was created by the refused requests");
    let (target, _) = s.user();
    let r = s.patch(&format!("{API}/admin/users/{target}")).token(s.admin()).json(&json!({"is_active": false, "is_admin": null})).send();
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "is_admin");
    assert_eq!(s.find_user(&target)["is_active"], true, "nothing changed");
}

/// `$ref`s of the document resolved.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {r}")),
        None => schema,
    }
}

/// Bodies with one wrong value each, for every property of `schema` (nested objects and array
/// items too), with the field the error must name.
fn wrong_values(doc: &Value, schema: &Value) -> Vec<(Value, String)> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let property = resolve(doc, property);
        let kind = if property.get("enum").is_some() { "enum" } else { property["type"].as_str().unwrap_or("any") };
        let bad = match kind {
            "integer" => vec![json!("5"), json!(1.5), json!(true), json!([]), json!({}), json!(1e300), json!(u64::MAX), json!(-1e300)],
            "string" => vec![json!(5), json!(1.5), json!(true), json!([]), json!({})],
            "boolean" => vec![json!("true"), json!(1), json!([]), json!({})],
            "enum" => vec![json!(5), json!("no-such-value"), json!(["x"]), json!({"x": null})],
            "object" => vec![json!("x"), json!(5), json!([])],
            "array" => vec![json!("x"), json!(5), json!({})],
            other => panic!("{name}: untested type {other}"),
        };
        for value in bad.into_iter().chain([Value::Null]) {
            out.push((json!({ name: value }), name.clone()));
        }
        if kind == "object" {
            for (inner, path) in wrong_values(doc, property) {
                out.push((json!({ name: inner }), format!("{name}.{path}")));
            }
        }
        if kind == "array" {
            let items = resolve(doc, &property["items"]);
            if items["type"] == "object" {
                for (inner, path) in wrong_values(doc, items) {
                    out.push((json!({ name: [inner] }), format!("{name}[0].{path}")));
                }
            } else {
                for value in [json!(5), json!({}), Value::Null] {
                    out.push((json!({ name: [value] }), format!("{name}[0]")));
                }
            }
        }
    }
    out
}

/// Words of Rust and serde that must never reach a client.
const RUST_WORDS: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128", "usize", "isize", "f32", "f64", "struct",
    "enum", "variant", "sequence", "map", "unit", "option", "tuple", "newtype", "expected", "invalid",
];

fn every_documented_body_field_is_refused_in_client_words() {
    let s = shared();
    let (_, mut admin) = s.new_admin();
    let doc = s.get("/openapi.json").send().json();
    let mut probes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else { continue };
            if op["security"].as_array().is_none_or(|s| s.is_empty()) {
                continue; // the Stripe webhook: signed events, not a client's body
            }
            let concrete = path.replace("{id}", "some-id").replace("{code}", "SOMECODE");
            for (body, field) in wrong_values(&doc, schema) {
                // A fresh admin every 200 probes: one stays under the per-user throttle (600 a minute).
                if probes % 200 == 199 {
                    admin = s.new_admin().1;
                }
                let r = s
                    .request(&method.to_uppercase(), &concrete)
                    .token(&admin)
                    .header("Idempotency-Key", &unique("probe"))
                    .json(&body)
                    .send();
                let what = format!("{} {path} {body}: {}", method.to_uppercase(), r.body);
                r.expect_error(422, "validation_failed");
                let error = &r.json()["error"];
                assert_eq!(error["field"], field.as_str(), "{what}");
                let message = error["message"].as_str().unwrap();
                assert!(message.starts_with(&format!("{field} ")), "the message names the field: {what}");
                // (The field's own name may hold such a word: `unit_price_micros`.)
                let words: Vec<String> = message[field.len()..].split(|c: char| !c.is_ascii_alphanumeric()).map(str::to_lowercase).collect();
                assert!(!RUST_WORDS.iter().any(|w| words.iter().any(|x| x == w)), "Rust words in {what}");
                probes += 1;
            }
        }
    }
    assert!(probes > 300, "{probes} probes");
}

fn instants_outside_1970_to_9999_are_refused() {
    let s = shared();
    let (user, token) = s.user();
    // UTC forms of these fall before 1970 or after 9999 (the probe's value is the first).
    for text in ["0000-01-01T00:00:00+23:59", "1969-12-31T23:59:59Z", "1970-01-01T00:59:59+01:00", "9999-12-31T23:59:59-00:01"] {
        let r = s.post(&format!("{API}/campaigns")).token(s.admin())
            .json(&json!({"name": "Old", "offer": {"type": "credits", "value": 1}, "landing_url": "https://soundhash.test/", "starts_at": text}))
            .send();
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], "starts_at", "{text}");
        let r = s.post(&format!("{API}/admin/conversions")).token(s.admin())
            .json(&json!({"external_id": unique("inv"), "user_id": user, "amount_cents": 100, "currency": "usd", "occurred_at": text}))
            .send();
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], "occurred_at", "{text}");
        // A leaderboard's `at` only chooses a period to show: out of range, it shows the nearest
        // one in range, named as it is (never a key like `-001-W52`).
        let query = text.replace('+', "%2B");
        let r = s.get(&format!("{API}/rewards/leaderboard?category=revenue&period=weekly&at={query}")).token(&token).send();
        assert_eq!(r.status, 200, "{text}: {}", r.body);
        let key = r.json()["period_key"].as_str().unwrap().to_owned();
        assert!(key == "1970-W01" || key == "9999-W52", "{text}: {key}");
        assert_eq!(r.json()["entries"], json!([]), "{text}");
    }
    let r = s.get(&format!("{API}/rewards/leaderboard?category=revenue&period=weekly&at=0000-01-01")).token(&token).send();
    assert_eq!((r.status, r.json()["period_key"].clone()), (200, json!("1970-W01")), "{}", r.body);
    // The bounds themselves are accepted (and written back in UTC).
    let r = s.post(&format!("{API}/campaigns")).token(s.admin())
        .json(&json!({"name": "Bounds", "offer": {"type": "credits", "value": 1}, "landing_url": "https://soundhash.test/",
                      "starts_at": "1970-01-01T01:00:00+01:00", "ends_at": "9999-12-31T23:59:59Z"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.json()["starts_at"].clone(), r.json()["ends_at"].clone()), (json!("1970-01-01T00:00:00Z"), json!("9999-12-31T23:59:59Z")));
    let b = s.get(&format!("{API}/rewards/leaderboard?category=revenue&period=weekly&at=1970-01-01T00:00:00Z")).token(&token).send();
    assert_eq!((b.status, b.json()["period_key"].clone()), (200, json!("1970-W01")), "{}", b.body);
}

fn length_limits_count_characters_not_bytes() {
    let s = shared();
    // 200 characters of two bytes each are 200 characters: the deduction passes validation and
    // meets the (empty) balance.
    let (_, token) = s.user();
    let deduct = |reason: String| {
        s.post(&format!("{API}/referrals/credits/deduct"))
            .token(&token)
            .header("Idempotency-Key", &unique("deduct"))
            .json(&json!({"amount": 1, "reason": reason}))
            .send()
    };
    deduct("é".repeat(200)).expect_error(409, "insufficient_credits");
    let r = deduct("é".repeat(201));
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "reason");
    let campaign = |extra: Value| {
        let mut body = json!({"name": "x", "offer": {"type": "credits", "value": 1}, "landing_url": "https://soundhash.test/"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        s.post(&format!("{API}/campaigns")).token(s.admin()).json(&body).send()
    };
    let r = campaign(json!({"name": "ü".repeat(200), "description": "€".repeat(2_000), "tags": ["ñ".repeat(40)]}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["name"].as_str().unwrap().chars().count(), 200);
    for (extra, field) in [
        (json!({"name": "ü".repeat(201)}), "name"),
        (json!({"description": "€".repeat(2_001)}), "description"),
        (json!({"tags": ["ñ".repeat(41)]}), "tags"),
    ] {
        let r = campaign(extra);
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field);
    }
    // A failed payout's reason: 500 characters.
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    s.convert(&buyer, 40_000);
    let id = s.post(&format!("{API}/affiliates/payouts")).token(&token).send().json()["id"].as_str().unwrap().to_owned();
    let change = |body: Value| s.patch(&format!("{API}/admin/payouts/{id}")).token(s.admin()).json(&body).send();
    assert_eq!(change(json!({"status": "approved"})).status, 200);
    assert_eq!(change(json!({"status": "processing"})).status, 200);
    change(json!({"status": "failed", "failure_reason": "ß".repeat(501)})).expect_error(422, "validation_failed");
    let r = change(json!({"status": "failed", "failure_reason": "ß".repeat(500)}));
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("failed")), "{}", r.body);
}
