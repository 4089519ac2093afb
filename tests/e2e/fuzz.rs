//! Contract fuzzing: schemathesis (installed into .venv by `npm run setup`) generates requests
//! from `/openapi.json` — valid ones that must be accepted, invalid ones that must be refused,
//! undeclared methods, missing auth, sequences that follow the document's links — against a fresh
//! instance with real test data, as an administrator on admin routes and as a user elsewhere,
//! and every response must match the document. Any failure fails the suite.
//!
//! Bounded: `FUZZ_MAX_EXAMPLES` test cases per operation and phase (default 40) with a fixed seed
//! (`FUZZ_SEED`, default below), so a run is reproducible and takes about two minutes. Fuzz
//! deeper with another seed: `FUZZ_SEED=7 FUZZ_MAX_EXAMPLES=300 cargo test --test e2e -- fuzz`.
//! The report (JUnit and JSON) is left in the instance's directory under target/e2e.

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
    let s = Server::start_unthrottled(&[("COMMISSION_HOLD_DAYS", "0")]);
    let data = TestData::seed(&s);
    let dir = s.dir.join("fuzz");
    fs::create_dir_all(&dir).expect("fuzz dir");
    let config = dir.join("schemathesis.toml");
    fs::write(&config, data.config()).expect("write schemathesis.toml");
    let max_examples = std::env::var("FUZZ_MAX_EXAMPLES").unwrap_or_else(|_| "40".into());
    let seed = std::env::var("FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let started = Instant::now();
    let out = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .args(["run", &format!("{}/openapi.json", s.base), "--checks", "all", "--max-examples", &max_examples])
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
        .env("FUZZ_ADMIN_TOKEN", s.admin())
        .env("FUZZ_USER_TOKEN", &data.user_token)
        .current_dir(&dir)
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = text.lines().skip_while(|l| !l.contains("SUMMARY")).collect();
    eprintln!("fuzz: seed {seed}, {max_examples} examples per operation and phase, {:.0} s\n{}", started.elapsed().as_secs_f64(), summary.join("\n"));
    assert!(out.status.success(), "schemathesis found failures (report in {}):\n{text}", dir.display());
}

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
}

impl TestData {
    fn seed(s: &Server) -> TestData {
        let (_, user_token) = s.user();
        // Someone else's code (one's own is refused: nobody refers themselves).
        let (_, referrer_token) = s.user();
        let referral = s.get(&format!("{API}/referrals/code")).token(&referrer_token).send().json();
        let (_, affiliate_token, affiliate_id, affiliate_code) = s.active_affiliate();
        let (campaign_code, _) = crate::campaigns::live(s, json!({}));
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
        // A reseller application of another user's, for the admin's changes.
        let (_, applicant) = s.user();
        let reseller = s
            .post(&format!("{API}/resellers"))
            .token(&applicant)
            .json(&json!({"company_name": "Fuzz Resale", "contact_email": "ops@fuzz.example", "expected_monthly_api_calls": 1000}))
            .send();
        assert_eq!(reseller.status, 201, "{}", reseller.body);
        TestData {
            reseller_ids: vec![reseller.json()["id"].as_str().expect("reseller id").to_owned()],
            license_keys: vec![bought["license"]["key"].as_str().expect("license key").to_owned()],
            download_tokens: vec![link[link.find("/d/").expect("a /d/ link") + 3..].to_owned()],
            license_ids: vec![license[0]["id"].as_str().expect("license id").to_owned()],
            order_ids: vec![order.json()["order_id"].as_str().expect("order id").to_owned()],
            rotated_order_ids: vec![rotated.json()["order_id"].as_str().expect("order id").to_owned()],
            admin_order_ids: vec![other.json()["order_id"].as_str().expect("order id").to_owned()],
            item_ids: vec![item, free],
            user_token,
            campaign_codes: vec![campaign_code],
            affiliate_codes: vec![affiliate_code],
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
        ] {
            config += &format!("[dictionaries.{name}]\nvalues = {}\n\n", list(values));
        }
        config += &bind("/c/{code}", "code", "campaign_codes");
        config += &bind("/a/{code}", "code", "affiliate_codes");
        config += &bind("/r/{code}", "code", "referral_codes");
        config += &bind(&format!("{API}/campaigns/{{code}}"), "code", "campaign_codes");
        config += &bind(&format!("{API}/campaigns/{{code}}/redeem"), "code", "campaign_codes");
        config += &bind(&format!("{API}/admin/campaigns/{{code}}"), "code", "campaign_codes");
        config += &bind(&format!("{API}/admin/campaigns/{{code}}/stats"), "code", "campaign_codes");
        config += &bind(&format!("{API}/admin/affiliates/{{id}}"), "id", "affiliate_ids");
        config += &bind(&format!("{API}/admin/users/{{id}}"), "id", "user_ids");
        config += &bind(&format!("{API}/admin/payouts/{{id}}"), "id", "payout_ids");
        config += &bind(&format!("{API}/marketplace/licenses/{{id}}"), "id", "license_ids");
        config += &bind("/d/{token}", "token", "download_tokens");
        config += &bind(&format!("{API}/admin/resellers/{{id}}"), "id", "reseller_ids");
        config += &bind(&format!("{API}/admin/resellers/{{id}}/quota/reset"), "id", "reseller_ids");
        config += &bind(&format!("{API}/admin/resellers/{{id}}/domain/verify"), "id", "reseller_ids");
        for path in ["licenses/activate", "licenses/validate", "licenses/deactivate"] {
            config += &format!(
                "[[operations]]\ninclude-path = \"{API}/{path}\"\nparameters = {{ \"body.license_key\" = {{ dictionary = \"license_keys\", probability = 0.8 }}, \"body.item_id\" = {{ dictionary = \"item_ids\", probability = 0.8 }} }}\n\n"
            );
        }
        for path in [
            "marketplace/items/{id}",
            "marketplace/items/{id}/versions",
            "marketplace/items/{id}/file",
            "admin/marketplace/items/{id}",
            "marketplace/items/{id}/purchase",
            "marketplace/items/{id}/reviews",
            "marketplace/items/{id}/licenses",
        ] {
            config += &bind(&format!("{API}/{path}"), "id", "item_ids");
        }
        for path in ["marketplace/purchases/{id}", "marketplace/purchases/{id}/download"] {
            config += &bind(&format!("{API}/{path}"), "id", "order_ids");
        }
        config += &bind(&format!("{API}/marketplace/purchases/{{id}}/license/rotate"), "id", "rotated_order_ids");
        for path in ["admin/marketplace/orders/{id}/complete", "admin/marketplace/orders/{id}/refund"] {
            config += &bind(&format!("{API}/{path}"), "id", "admin_order_ids");
        }
        config += &format!(
            "[[operations]]\ninclude-path = \"{API}/attributions\"\nparameters = {{ \"body.affiliate_code\" = {{ dictionary = \"affiliate_codes\", probability = 0.8 }}, \"body.referral_code\" = {{ dictionary = \"referral_codes\", probability = 0.8 }} }}\n\n"
        );
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
