//! Contract fuzzing: schemathesis (installed into .venv by `npm run setup`) generates requests
//! from `/openapi.json` — valid ones that must be accepted, invalid ones that must be refused,
//! undeclared methods, missing auth, sequences that follow the document's links — against a fresh
//! instance with real test data, as an administrator on admin routes and as a user elsewhere,
//! and every response must match the document. Any failure fails the suite.
//!
//! Bounded: `FUZZ_MAX_EXAMPLES` test cases per operation and phase (default 40) with a fixed seed
//! (`FUZZ_SEED`, default below), so a run is reproducible and takes a few minutes. Fuzz deeper
//! with a new seed: `npm run fuzz` (120 examples). The stateful phase follows the document's
//! links (an item created, then edited, bought, its key activated…). Coverage is reported: which
//! operations answered a success (read from the instance's request log), in coverage.txt. The report (JUnit, JSON, coverage.txt) is left in the instance's directory
//! under target/e2e.

use crate::support::{root, Server, API};
use crate::trials;
use serde_json::json;
use std::fs;
use std::process::Command;
use std::time::Instant;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(fuzz: the_service_keeps_its_openapi_contract)
}

const DEFAULT_SEED: &str = "20261130";

fn the_service_keeps_its_openapi_contract() {
    let schemathesis = root().join(".venv/bin/schemathesis");
    assert!(schemathesis.exists(), "schemathesis is missing: run `npm run setup` (it installs it into .venv)");
    // Every request logged (REQUEST_LOG=all): the coverage report reads what each operation
    // answered from the instance's own log.
    let s = Server::start_unthrottled(&[("COMMISSION_HOLD_DAYS", "0"), ("REQUEST_LOG", "all"), ("MIN_PAYOUT_CENTS", "1")]);
    let data = TestData::seed(&s);
    // Coverage counts the fuzzer's requests only, not the seeding's.
    let log_from = s.log_text().len();
    let dir = s.dir.join("fuzz");
    fs::create_dir_all(&dir).expect("fuzz dir");
    let config = dir.join("schemathesis.toml");
    fs::write(&config, data.config()).expect("write schemathesis.toml");
    let hooks = dir.join("fuzz_hooks.py");
    fs::write(&hooks, HOOKS_PY).expect("write the hooks");
    let max_examples = std::env::var("FUZZ_MAX_EXAMPLES").unwrap_or_else(|_| "40".into());
    let seed = std::env::var("FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let started = Instant::now();
    let out = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .args(["run", &format!("{}/openapi.json", s.base()), "--checks", "all", "--max-examples", &max_examples])
        // Reading what a POST just created: the pairs the fuzzer links are a campaign just
        // created (a draft, unknown to users until it is live) and a listing just created (a
        // draft, its seller's only), both 404 by design. Schemathesis 4.32 applies one set of
        // checks to every operation in its stateful phase (per-operation and per-phase settings
        // did not turn it off for these), so this check is skipped; the e2e stories read back
        // what they create.
        .args(["--exclude-checks", "ensure_resource_availability"])
        .args(["--seed", &seed, "--workers", "1", "--request-timeout", "30", "--report", "junit,json"])
        .arg("--report-dir")
        .arg(&dir)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("FUZZ_BODIES", data.bodies.to_string())
        .env("FUZZ_ADMIN_TOKEN", s.admin())
        .env("FUZZ_USER_TOKEN", &data.user_token)
        .current_dir(&dir)
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = text.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "schemathesis found failures (report in {}):\n{text}", dir.display());
    let coverage = Coverage::read(&s, log_from);
    let line = format!(
        "fuzz: seed {seed}, {max_examples} examples per operation and phase, {seconds:.0} s, {} requests; {} of {} operations answered a success (2xx/3xx)",
        coverage.requests,
        coverage.reached().len(),
        coverage.statuses.len()
    );
    eprintln!("{line}\n{}\n{}", summary.join("\n"), coverage.table());
    std::fs::write(dir.join("coverage.txt"), format!("{line}\n{}", coverage.table())).expect("write the coverage report");
    // Reported, not required: which success paths a run reaches depends on the order calls
    // happen to come in, and the stateful phase links destructive operations (an admin
    // deactivating a user listed by `GET /admin/users`, archiving an item, ending a campaign) to
    // others. The same seed reached 90 of 93 operations on a quiet machine and 83 under CI.
    let missed: Vec<&String> = coverage.statuses.keys().filter(|op| !coverage.reached().contains(op) && !NO_SUCCESS_BY_DESIGN.contains(&op.as_str())).collect();
    if !missed.is_empty() {
        eprintln!("fuzz: with seed {seed} and {max_examples} examples, no success from {missed:?}");
    }
}

/// Operations a generated request cannot succeed at: the Stripe webhook needs a signature the
/// fuzzer cannot make (its signed paths are the e2e tests'); an application (one per user: the
/// fuzzing user's were made while seeding, so that the rest of their program reaches its success
/// paths; applications are proven by the affiliates and resellers e2e tests).
const NO_SUCCESS_BY_DESIGN: &[&str] = &[
    "POST /api/v1/monetization/webhooks/stripe",
    "POST /api/v1/monetization/affiliates",
    "POST /api/v1/monetization/resellers",
];

/// What each documented operation answered during the run, from the instance's request log.
struct Coverage {
    /// `METHOD /path/{template}` → status → count.
    statuses: std::collections::BTreeMap<String, std::collections::BTreeMap<u16, usize>>,
    requests: usize,
}

impl Coverage {
    /// From the instance's log after byte `log_from`.
    fn read(s: &Server, log_from: usize) -> Coverage {
        let doc = s.get("/openapi.json").send().json();
        let mut templates = Vec::new();
        let mut statuses = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("operations").keys() {
                let op = format!("{} {path}", method.to_uppercase());
                statuses.insert(op.clone(), std::collections::BTreeMap::new());
                templates.push((method.to_uppercase(), path.clone(), op));
            }
        }
        // A template's `{name}` segment matches any one segment.
        let matches = |template: &str, path: &str| {
            let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
            t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
        };
        let mut requests = 0;
        let log = s.log_text();
        let lines = log.get(log_from..).unwrap_or_default().lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        for line in lines {
            let (Some(method), Some(path), Some(status)) = (line["method"].as_str(), line["path"].as_str(), line["status"].as_u64()) else { continue };
            requests += 1;
            let path = path.split('?').next().unwrap_or_default();
            if let Some((_, _, op)) = templates.iter().find(|(m, template, _)| m == method && matches(template, path)) {
                *statuses.get_mut(op).expect("known").entry(status as u16).or_insert(0) += 1;
            }
        }
        Coverage { statuses, requests }
    }

    fn reached(&self) -> Vec<&String> {
        self.statuses.iter().filter(|(_, by)| by.keys().any(|&st| (200..400).contains(&st))).map(|(op, _)| op).collect()
    }

    fn table(&self) -> String {
        self.statuses
            .iter()
            .map(|(op, by)| format!("  {op}: {}", by.iter().map(|(st, n)| format!("{st}×{n}")).collect::<Vec<_>>().join(" ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The schemathesis hooks (SCHEMATHESIS_HOOKS): a generated body of valid shape (positive mode
/// only: a negative case stays as generated) gets real values where a schema cannot say them:
/// an existing license key, item, activation, reseller and end user; an activity time within the
/// accepted window; a revenue month that has begun, in the billing currency; a version above the
/// highest; a review's text; a valid branding and contract. The values come from `FUZZ_BODIES` (JSON).
const HOOKS_PY: &str = r#"
import itertools, json, os
import schemathesis

DATA = json.loads(os.environ["FUZZ_BODIES"])
VERSIONS = itertools.count(2)


def put(body, field, value):
    if isinstance(body, dict) and isinstance(body.get(field), str):
        body[field] = value


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        return case
    path, body = case.operation.path, case.body
    if path == "/branding":
        # Answers by Host: the fuzzing user's verified domain.
        case.headers = {**(case.headers or {}), "Host": DATA["branding"]["custom_domain"]}
        return case
    if not isinstance(body, dict):
        return case
    if path.endswith(("/licenses/activate", "/licenses/validate", "/licenses/deactivate")):
        for field in ("license_key", "item_id", "instance_id"):
            put(body, field, DATA[field])
    elif path.endswith("/attributions"):
        put(body, "affiliate_code", DATA["affiliate_code"])
        put(body, "referral_code", DATA["referral_code"])
    elif path.endswith("/resellers/usage"):
        put(body, "reseller_id", DATA["reseller_id"])
        put(body, "end_user_id", DATA["end_user_id"])
    elif path.endswith("/admin/activity"):
        for event in body.get("events") or []:
            put(event, "occurred_at", DATA["now"])
    elif path.endswith("/admin/revenue"):
        for record in body.get("records") or []:
            put(record, "period", DATA["month"])
            put(record, "currency", "usd")
    elif path.endswith("/admin/revenue/pools"):
        put(body, "period", DATA["month"])
    elif path.endswith("/reviews"):
        put(body, "title", "Solid database")
        put(body, "review_text", "Matches well.")
        if isinstance(body.get("rating"), int) and not 1 <= body["rating"] <= 5:
            body["rating"] = 4
    elif path.endswith("/versions"):
        put(body, "version_number", "%d.0.0" % next(VERSIONS))
    elif path.endswith("/resellers/me/branding"):
        for field, value in DATA["branding"].items():
            put(body, field, value)
    elif path.endswith("/admin/resellers/{id}"):
        # An approval carries a valid contract; the version a PATCH may name (If-Match) is the
        # record's, which a generator cannot know (412 is proven by the e2e tests).
        if isinstance(body.get("contract"), dict) or body.get("status") == "approved":
            body["contract"] = DATA["contract"]
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "if-match"}
    return case


"#;

/// Records that exist on the fuzzed instance, so generated requests reach real ones.
struct TestData {
    user_token: String,
    campaign_codes: Vec<String>,
    affiliate_codes: Vec<String>,
    referral_codes: Vec<String>,
    affiliate_ids: Vec<String>,
    user_ids: Vec<String>,
    payout_ids: Vec<String>,
    item_ids: Vec<String>,
    order_ids: Vec<String>,
    license_ids: Vec<String>,
    license_keys: Vec<String>,
    download_tokens: Vec<String>,
    admin_order_ids: Vec<String>,
    rotated_order_ids: Vec<String>,
    reseller_ids: Vec<String>,
    /// Generated bodies of valid shape get these real values (the hooks of `hooks_py`).
    bodies: serde_json::Value,
    own_reseller_ids: Vec<String>,
    end_user_ids: Vec<String>,
    admin_campaign_codes: Vec<String>,
    purchase_item_ids: Vec<String>,
}

impl TestData {
    fn seed(s: &Server) -> TestData {
        let (user_id, user_token) = s.user();
        // Someone else's code (one's own is refused: nobody refers themselves).
        let (_, referrer_token) = s.user();
        let referral = s.get(&format!("{API}/referrals/code")).token(&referrer_token).send().json();
        let (_, affiliate_token, affiliate_id, affiliate_code) = s.active_affiliate();
        let (campaign_code, _) = crate::campaigns::live(s, json!({}));
        // A draft campaign, for the admin's edits (a live one takes few).
        let draft_campaign = crate::campaigns::create(s, json!({}))["campaign_code"].as_str().expect("campaign code").to_owned();
        // The fuzzing user as an active affiliate with a commission available to pay out.
        let r = s.post(&format!("{API}/affiliates")).token(&user_token).json(&json!({})).send();
        assert_eq!(r.status, 201, "{}", r.body);
        let (own_affiliate, own_code) = (r.json()["id"].as_str().expect("id").to_owned(), r.json()["affiliate_code"].as_str().expect("code").to_owned());
        let r = s.patch(&format!("{API}/admin/affiliates/{own_affiliate}")).token(s.admin()).json(&json!({"status": "active"})).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let (own_buyer, _) = s.referred_user(&own_code);
        s.convert(&own_buyer, 10_000);
        // Credits of the fuzzing user's, to deduct (from a campaign of their own: the one above
        // is left for the fuzzer to redeem).
        let (credits, _) = crate::campaigns::live(s, json!({"offer": {"type": "credits", "value": 5000}}));
        let r = s.post(&format!("{API}/campaigns/{credits}/redeem")).token(&user_token).send();
        assert_eq!(r.status, 201, "{}", r.body);
        // A payout to review: commissions are available at once on this instance.
        let (buyer, _) = s.referred_user(&affiliate_code);
        s.convert(&buyer, 100_000);
        let payout = s.post(&format!("{API}/affiliates/payouts")).token(&affiliate_token).json(&json!({})).send();
        assert_eq!(payout.status, 201, "{}", payout.body);
        let (victim, _) = s.user();
        // A published item of the fuzzing user's (edits, versions and uploads reach it).
        let item = crate::marketplace::published_item(
            s,
            &user_token,
            &json!({"title": "Fuzzed item", "category": "other", "price_cents": 100, "tags": ["fuzz"]}),
        );
        // A completed purchase of the fuzzing user's (a free item of someone else's).
        let (_, seller_token) = s.user();
        let free = crate::marketplace::published_item(s, &seller_token, &json!({"title": "Free", "category": "other", "price_cents": 0}));
        let order = s
            .post(&format!("{API}/marketplace/items/{free}/purchase"))
            .token(&user_token)
            .header("Idempotency-Key", "fuzz-seed")
            .json(&json!({}))
            .send();
        assert_eq!(order.status, 201, "{}", order.body);
        // A sale of the fuzzing user's item (their licenses, earnings and analytics have one).
        let (_, buyer_token) = s.user();
        let sale = s
            .post(&format!("{API}/marketplace/items/{item}/purchase"))
            .token(&buyer_token)
            .header("Idempotency-Key", "fuzz-sale")
            .json(&json!({}))
            .send();
        assert_eq!(sale.status, 201, "{}", sale.body);
        let sale = sale.json()["order_id"].as_str().expect("order id").to_owned();
        let done = s.post(&format!("{API}/admin/marketplace/orders/{sale}/complete")).token(s.admin()).json(&json!({"payment_ref": "fuzz"})).send();
        assert_eq!(done.status, 200, "{}", done.body);
        let license = s.d1(&format!("SELECT id FROM marketplace_licenses WHERE order_id = '{sale}'"));
        // A free item nobody bought yet, for the fuzzer's purchases.
        let unbought = crate::marketplace::published_item(s, &seller_token, &json!({"title": "Unbought", "category": "other", "price_cents": 0}));
        // An order for the admin's complete and refund (refunding the fuzzing user's own would
        // revoke the key and the link the other operations use).
        let (_, third_token) = s.user();
        let other = s.post(&format!("{API}/marketplace/items/{free}/purchase")).token(&third_token).header("Idempotency-Key", "fuzz-other").json(&json!({})).send();
        assert_eq!(other.status, 201, "{}", other.body);
        // A second purchase of the fuzzing user's, whose key rotates (the first one's stays).
        let second = crate::marketplace::published_item(s, &seller_token, &json!({"title": "Free too", "category": "other", "price_cents": 0}));
        let rotated = s.post(&format!("{API}/marketplace/items/{second}/purchase")).token(&user_token).header("Idempotency-Key", "fuzz-second").json(&json!({})).send();
        assert_eq!(rotated.status, 201, "{}", rotated.body);
        // The key and the download link of the fuzzing user's purchase (activations, validations
        // and downloads reach their success paths).
        let bought = order.json();
        let link = bought["download_url"].as_str().expect("download link");
        // Reseller applications of other users', for the admin's changes (several: one the
        // fuzzer terminates early takes no more changes).
        let applications: Vec<String> = (0..3)
            .map(|i| {
                let (_, applicant) = s.user();
                let body = json!({"company_name": format!("Fuzz Resale {i}"), "contact_email": "ops@fuzz.example", "expected_monthly_api_calls": 1000});
                let r = s.post(&format!("{API}/resellers")).token(&applicant).json(&body).send();
                assert_eq!(r.status, 201, "{}", r.body);
                r.json()["id"].as_str().expect("reseller id").to_owned()
            })
            .collect();
        // The fuzzing user as an active reseller under contract, with an end user and a verified
        // domain (their dashboard, quotes, end users, usage and branding reach success paths).
        let mine = s
            .post(&format!("{API}/resellers"))
            .token(&user_token)
            .json(&json!({"company_name": "Fuzz Own", "contact_email": "ops@own.example", "expected_monthly_api_calls": 1000}))
            .send();
        assert_eq!(mine.status, 201, "{}", mine.body);
        let own_reseller = mine.json()["id"].as_str().expect("reseller id").to_owned();
        let contract = json!({
            "starts_at": crate::support::iso(crate::support::now() - 5), "ends_at": crate::support::iso(crate::support::now() + 30 * 86_400),
            "pricing": {"mode": "volume", "tiers": [{"unit_price_micros": 1_000}]},
            "markup_bps": 1_000, "max_end_users": 100_000, "max_api_calls_per_month": 10_000_000_000_i64,
        });
        let r = s.patch(&format!("{API}/admin/resellers/{own_reseller}")).token(s.admin()).json(&json!({"status": "approved", "contract": contract})).send();
        assert_eq!(r.status, 200, "{}", r.body);
        s.run_cron("* * * * *");
        let end_user = s.post(&format!("{API}/resellers/me/end-users")).token(&user_token).json(&json!({"external_id": "fuzz-seed"})).send();
        assert_eq!(end_user.status, 201, "{}", end_user.body);
        let end_user = end_user.json()["id"].as_str().expect("end user id").to_owned();
        let branding = json!({"display_name": "Fuzz Brand", "logo_url": "https://cdn.fuzz.example/logo.png", "primary_color": "#336699",
                              "support_email": "help@fuzz.example", "custom_domain": "brand.fuzz.example"});
        let r = s.request("PUT", &format!("{API}/resellers/me/branding")).token(&user_token).json(&branding).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s.post(&format!("{API}/admin/resellers/{own_reseller}/domain/verify")).token(s.admin()).json(&json!({})).send();
        assert_eq!(r.status, 200, "{}", r.body);
        // An activation of the fuzzing user's key, for deactivations.
        let bought_key = order.json()["license"]["key"].as_str().expect("license key").to_owned();
        let activation = s.post(&format!("{API}/licenses/activate")).json(&json!({"license_key": bought_key, "item_id": free, "instance_name": "fuzz-seed"})).send();
        assert_eq!(activation.status, 201, "{}", activation.body);
        // Revenue of the fuzzing user's: two months ago (closed: its earnings can be paid out) and
        // last month (open: records and pools of the fuzzer go there).
        let last = crate::revenue::last_month();
        let before = month_before(&last);
        let r = crate::revenue::report(s, &[crate::revenue::record("fuzz-rev-1", &user_id, "fuzz-channel", &before, 10_000), crate::revenue::record("fuzz-rev-2", &user_id, "fuzz-channel", &last, 10_000)]);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s.post(&format!("{API}/admin/revenue/periods/{before}/close")).token(s.admin()).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let bodies = json!({
            "license_key": bought_key, "item_id": free, "instance_id": activation.json()["instance_id"],
            "reseller_id": own_reseller, "end_user_id": end_user, "month": last, "now": crate::support::iso(crate::support::now() - 60),
            "branding": branding, "contract": contract,
            "affiliate_code": affiliate_code, "referral_code": referral["referral_code"],
        });
        TestData {
            admin_campaign_codes: vec![draft_campaign, campaign_code.clone()],
            purchase_item_ids: vec![unbought, free.clone()],
            bodies,
            own_reseller_ids: vec![own_reseller],
            end_user_ids: vec![end_user],
            reseller_ids: applications,
            license_keys: vec![bought["license"]["key"].as_str().expect("license key").to_owned()],
            download_tokens: vec![link[link.find("/d/").expect("a /d/ link") + 3..].to_owned()],
            license_ids: vec![license[0]["id"].as_str().expect("license id").to_owned()],
            order_ids: vec![order.json()["order_id"].as_str().expect("order id").to_owned()],
            rotated_order_ids: vec![rotated.json()["order_id"].as_str().expect("order id").to_owned()],
            admin_order_ids: vec![other.json()["order_id"].as_str().expect("order id").to_owned()],
            item_ids: vec![item, free],
            user_token,
            campaign_codes: vec![campaign_code],
            affiliate_codes: vec![affiliate_code, own_code],
            referral_codes: vec![referral["referral_code"].as_str().expect("referral code").to_owned()],
            affiliate_ids: vec![affiliate_id],
            // (Not the fuzzing user: deactivating them would end the run's coverage of user routes.)
            user_ids: vec![victim],
            payout_ids: vec![payout.json()["id"].as_str().expect("payout id").to_owned()],
        }
    }

    /// schemathesis.toml: the two tokens by security scheme, and the existing records as
    /// dictionaries that path parameters draw from most of the time.
    fn config(&self) -> String {
        let list = |values: &[String]| json!(values).to_string();
        let bind = |path: &str, name: &str, dictionary: &str| {
            format!("[[operations]]\ninclude-path = \"{path}\"\nparameters = {{ \"path.{name}\" = {{ dictionary = \"{dictionary}\", probability = 0.8 }} }}\n\n")
        };
        let mut config = String::from(
            "[auth.openapi.bearerAuth]\nbearer = \"${FUZZ_USER_TOKEN}\"\n\n[auth.openapi.adminBearerAuth]\nbearer = \"${FUZZ_ADMIN_TOKEN}\"\n\n",
        );
        for (name, values) in [
            ("campaign_codes", &self.campaign_codes),
            ("affiliate_codes", &self.affiliate_codes),
            ("referral_codes", &self.referral_codes),
            ("affiliate_ids", &self.affiliate_ids),
            ("user_ids", &self.user_ids),
            ("payout_ids", &self.payout_ids),
            ("item_ids", &self.item_ids),
            ("order_ids", &self.order_ids),
            ("license_ids", &self.license_ids),
            ("license_keys", &self.license_keys),
            ("download_tokens", &self.download_tokens),
            ("admin_order_ids", &self.admin_order_ids),
            ("rotated_order_ids", &self.rotated_order_ids),
            ("reseller_ids", &self.reseller_ids),
            ("own_reseller_ids", &self.own_reseller_ids),
            ("end_user_ids", &self.end_user_ids),
            ("admin_campaign_codes", &self.admin_campaign_codes),
            ("purchase_item_ids", &self.purchase_item_ids),
        ] {
            config += &format!("[dictionaries.{name}]\nvalues = {}\n\n", list(values));
        }
        config += &bind("/c/{code}", "code", "campaign_codes");
        config += &bind("/a/{code}", "code", "affiliate_codes");
        config += &bind("/r/{code}", "code", "referral_codes");
        config += &bind(&format!("{API}/campaigns/{{code}}"), "code", "campaign_codes");
        config += &bind(&format!("{API}/campaigns/{{code}}/redeem"), "code", "campaign_codes");
        config += &bind(&format!("{API}/admin/campaigns/{{code}}"), "code", "admin_campaign_codes");
        config += &bind(&format!("{API}/admin/campaigns/{{code}}/stats"), "code", "campaign_codes");
        config += &bind(&format!("{API}/admin/affiliates/{{id}}"), "id", "affiliate_ids");
        config += &bind(&format!("{API}/admin/users/{{id}}"), "id", "user_ids");
        config += &bind(&format!("{API}/admin/payouts/{{id}}"), "id", "payout_ids");
        config += &bind(&format!("{API}/marketplace/licenses/{{id}}"), "id", "license_ids");
        config += &bind("/d/{token}", "token", "download_tokens");
        config += &bind(&format!("{API}/admin/resellers/{{id}}"), "id", "reseller_ids");
        config += &bind(&format!("{API}/admin/resellers/{{id}}/quota/reset"), "id", "reseller_ids");
        config += &bind(&format!("{API}/admin/resellers/{{id}}/domain/verify"), "id", "own_reseller_ids");
        config += &bind(&format!("{API}/resellers/me/end-users/{{id}}/deactivate"), "id", "end_user_ids");
        for path in [
            "marketplace/items/{id}",
            "marketplace/items/{id}/versions",
            "marketplace/items/{id}/file",
            "admin/marketplace/items/{id}",
            "marketplace/items/{id}/reviews",
            "marketplace/items/{id}/licenses",
        ] {
            config += &bind(&format!("{API}/{path}"), "id", "item_ids");
        }
        config += &bind(&format!("{API}/marketplace/items/{{id}}/purchase"), "id", "purchase_item_ids");
        for path in ["marketplace/purchases/{id}", "marketplace/purchases/{id}/download"] {
            config += &bind(&format!("{API}/{path}"), "id", "order_ids");
        }
        config += &bind(&format!("{API}/marketplace/purchases/{{id}}/license/rotate"), "id", "rotated_order_ids");
        for path in ["admin/marketplace/orders/{id}/complete", "admin/marketplace/orders/{id}/refund"] {
            config += &bind(&format!("{API}/{path}"), "id", "admin_order_ids");
        }
        // Answers the document cannot predict, declared here: a webhook body the fuzzer signs
        // with no secret is refused with 400 (as Stripe's retries of a forged event must be), and
        // activity events must lie within the last ACTIVITY_MAX_AGE_DAYS (ids are remembered that
        // long), which a schema of absolute values cannot say.
        config += &format!(
            "[[operations]]\ninclude-path = \"{API}/webhooks/stripe\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", 400]\n\n"
        );
        // Rules a schema cannot say: a campaign ends after it starts (two fields), a payment
        // may not lie in the future (the clock); a revenue record's month has begun and its
        // currency is the billing one, owners' shares sum to 10000, terms never start in a month
        // already split, a pool needs reported usage.
        for path in [
            format!("{API}/campaigns"),
            format!("{API}/admin/campaigns/{{code}}"),
            format!("{API}/admin/conversions"),
            format!("{API}/admin/revenue"),
            format!("{API}/admin/revenue/pools"),
            format!("{API}/admin/creators/{{id}}/terms"),
            format!("{API}/admin/channels/{{id}}/owners"),
        ] {
            config += &format!(
                "[[operations]]\ninclude-path = \"{path}\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", 401, 403, 404, 409, 422, 429]\n\n"
            );
        }
        // Listings: the billing currency, status changes by the state machine, versions above
        // the highest, a file only once per version, a search's depth, and an If-Match naming
        // another version of the item (412).
        // Purchases: an item owned already, a license of another item or at its limit, the
        // redirect to a download (302), a download link that is not one (403) or has expired
        // (410), a range outside the file.
        for path in [
            "marketplace/items",
            "marketplace/items/{id}",
            "marketplace/items/{id}/versions",
            "marketplace/items/{id}/file",
            "admin/marketplace/items/{id}",
            "marketplace/items/{id}/purchase",
            "marketplace/purchases/{id}",
            "marketplace/purchases/{id}/license/rotate",
            "marketplace/purchases/{id}/download",
            "admin/marketplace/orders/{id}/complete",
            "admin/marketplace/orders/{id}/refund",
            "licenses/activate",
            "licenses/validate",
            "licenses/deactivate",
            "marketplace/items/{id}/reviews",
            "marketplace/items/{id}/licenses",
            "marketplace/licenses/{id}",
            "marketplace/seller/payouts",
            "resellers",
            "resellers/me/pricing/quote",
            "resellers/me/dashboard",
            "resellers/me/end-users",
            "resellers/me/end-users/{id}/deactivate",
            "admin/resellers/{id}",
            "admin/resellers/{id}/quota/reset",
            "resellers/usage",
            "resellers/me/branding",
            "admin/resellers/{id}/domain/verify",
        ] {
            config += &format!(
                "[[operations]]\ninclude-path = \"{API}/{path}\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", 302, 401, 403, 404, 409, 412, 422, 429]\n\n"
            );
        }
        config += "[[operations]]\ninclude-path = \"/d/{token}\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", 403, 404, 410, 416, 429]\n\n";
        config += &format!(
            "[[operations]]\ninclude-path = \"{API}/admin/activity\"\nchecks.positive_data_acceptance.expected-statuses = [\"2xx\", 401, 403, 409, 422, 429]\n\n"
        );
        config
    }
}

/// The month before `YYYY-MM`.
fn month_before(month: &str) -> String {
    let (year, m): (i32, u32) = (month[..4].parse().expect("year"), month[5..].parse().expect("month"));
    if m == 1 { format!("{:04}-12", year - 1) } else { format!("{year:04}-{:02}", m - 1) }
}
