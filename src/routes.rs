//! The routing table, the composition root: every route of the service in one place, with its
//! access and limits. `/openapi.json` (`src/http/openapi.json`) documents exactly these; the
//! tests below compare the two.

use crate::http::meta;
use crate::http::router::{Access, Route, Router};
use crate::http::MAX_BODY_BYTES;
use crate::{affiliates, attributions, campaigns, conversions, links, marketplace, payouts, referrals, resellers, revenue, rewards, users};
use std::sync::OnceLock;
use worker::Method;

/// `route!(Method "path", Access, handler)`, optionally followed by `throttled: false`,
/// `max_body: bytes` or `streamed: true`.
macro_rules! route {
    ($method:ident $path:literal, $access:ident, $handler:path $(, $option:ident: $value:expr)*) => {{
        #[allow(unused_mut)]
        let mut route = Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            throttled: true,
            max_body: MAX_BODY_BYTES,
            streamed: false,
            handler: |ctx| Box::pin($handler(ctx)),
        };
        $(route.$option = $value;)*
        route
    }};
}

pub static ROUTES: &[Route] = &[
    route!(Get "/healthz", Public, meta::healthz, throttled: false),
    route!(Get "/openapi.json", Public, meta::openapi),
    route!(Get "/docs", Public, meta::docs),
    // Edge links.
    // Edge links throttle per IP only what reaches D1 (a code the isolate does not know yet).
    route!(Get "/a/{code}", Public, links::affiliate, throttled: false),
    route!(Get "/r/{code}", Public, links::referral, throttled: false),
    route!(Get "/c/{code}", Public, links::campaign, throttled: false),
    // Users.
    route!(Get "/api/v1/monetization/me", User, users::me),
    route!(Get "/api/v1/monetization/admin/users", Admin, users::admin_list),
    route!(Patch "/api/v1/monetization/admin/users/{id}", Admin, users::admin_update),
    // Affiliates.
    route!(Post "/api/v1/monetization/affiliates", User, affiliates::apply),
    route!(Get "/api/v1/monetization/affiliates/dashboard", User, affiliates::dashboard),
    route!(Get "/api/v1/monetization/affiliates/earnings", User, affiliates::list_earnings),
    route!(Post "/api/v1/monetization/affiliates/payouts", User, affiliates::request_payout),
    route!(Get "/api/v1/monetization/affiliates/payouts", User, affiliates::list_payouts),
    route!(Get "/api/v1/monetization/admin/affiliates", Admin, affiliates::admin_list),
    route!(Patch "/api/v1/monetization/admin/affiliates/{id}", Admin, affiliates::admin_update),
    // Attribution and referrals.
    route!(Post "/api/v1/monetization/attributions", User, attributions::create),
    route!(Get "/api/v1/monetization/referrals/code", User, referrals::code),
    route!(Get "/api/v1/monetization/referrals/stats", User, referrals::stats),
    route!(Get "/api/v1/monetization/referrals/balance", User, referrals::balance),
    route!(Get "/api/v1/monetization/referrals/credits", User, referrals::transactions),
    route!(Post "/api/v1/monetization/referrals/credits/deduct", User, referrals::deduct),
    // Campaigns.
    route!(Post "/api/v1/monetization/campaigns", Admin, campaigns::create),
    route!(Get "/api/v1/monetization/campaigns", User, campaigns::list_public),
    route!(Get "/api/v1/monetization/campaigns/redemptions", User, campaigns::my_redemptions),
    route!(Get "/api/v1/monetization/campaigns/{code}", User, campaigns::get),
    route!(Post "/api/v1/monetization/campaigns/{code}/redeem", User, campaigns::redeem),
    route!(Get "/api/v1/monetization/admin/campaigns", Admin, campaigns::admin_list),
    route!(Patch "/api/v1/monetization/admin/campaigns/{code}", Admin, campaigns::admin_update),
    route!(Get "/api/v1/monetization/admin/campaigns/{code}/stats", Admin, campaigns::admin_stats),
    // Conversions (the money in) and payouts (the money out).
    // Stripe's events reach several hundred KiB (an invoice with many lines): up to 1 MiB.
    route!(Post "/api/v1/monetization/webhooks/stripe", Public, conversions::stripe_webhook, throttled: false, max_body: 1024 * 1024),
    route!(Post "/api/v1/monetization/admin/conversions", Admin, conversions::admin_create),
    route!(Post "/api/v1/monetization/admin/refunds", Admin, conversions::admin_refund),
    route!(Get "/api/v1/monetization/admin/payouts", Admin, payouts::admin_list),
    route!(Patch "/api/v1/monetization/admin/payouts/{id}", Admin, payouts::admin_update),
    route!(Get "/api/v1/monetization/admin/ledger-audit", Admin, payouts::ledger_audit),
    // Gamification.
    route!(Post "/api/v1/monetization/admin/activity", Admin, rewards::ingest, max_body: 512 * 1024),
    route!(Get "/api/v1/monetization/rewards/badges", User, rewards::my_badges),
    route!(Post "/api/v1/monetization/admin/rewards/badges", Admin, rewards::admin_award),
    route!(Get "/api/v1/monetization/rewards/leaderboard", User, rewards::leaderboard),
    // Creator revenue sharing.
    route!(Post "/api/v1/monetization/admin/revenue", Admin, revenue::admin_records, max_body: 512 * 1024),
    route!(Post "/api/v1/monetization/admin/revenue/pools", Admin, revenue::admin_pool),
    route!(Put "/api/v1/monetization/admin/creators/{id}/terms", Admin, revenue::admin_terms),
    route!(Put "/api/v1/monetization/admin/channels/{id}/owners", Admin, revenue::admin_owners),
    route!(Post "/api/v1/monetization/admin/revenue/periods/{period}/close", Admin, revenue::admin_close),
    route!(Get "/api/v1/monetization/revenue/creator", User, revenue::summary),
    route!(Get "/api/v1/monetization/revenue/creator/records", User, revenue::my_records),
    route!(Get "/api/v1/monetization/revenue/creator/statements/{period}", User, revenue::statement),
    route!(Post "/api/v1/monetization/revenue/creator/payouts", User, revenue::request_payout),
    route!(Get "/api/v1/monetization/revenue/creator/payouts", User, revenue::list_payouts),
    // Marketplace. Browsing needs no token (throttled per IP).
    route!(Get "/api/v1/monetization/marketplace/items", Public, marketplace::search),
    route!(Post "/api/v1/monetization/marketplace/items", User, marketplace::create),
    route!(Get "/api/v1/monetization/marketplace/items/{id}", Public, marketplace::get),
    route!(Patch "/api/v1/monetization/marketplace/items/{id}", User, marketplace::update),
    route!(Get "/api/v1/monetization/marketplace/items/{id}/versions", Public, marketplace::list_versions),
    route!(Post "/api/v1/monetization/marketplace/items/{id}/versions", User, marketplace::add_version),
    route!(Put "/api/v1/monetization/marketplace/items/{id}/file", User, marketplace::upload, streamed: true),
    route!(Get "/api/v1/monetization/marketplace/items/{id}/reviews", Public, marketplace::reviews::list),
    route!(Post "/api/v1/monetization/marketplace/items/{id}/reviews", User, marketplace::reviews::write),
    route!(Get "/api/v1/monetization/marketplace/items/{id}/licenses", User, marketplace::seller::licenses),
    route!(Patch "/api/v1/monetization/marketplace/licenses/{id}", User, marketplace::seller::update_license),
    route!(Get "/api/v1/monetization/marketplace/seller/items", User, marketplace::seller_items),
    route!(Get "/api/v1/monetization/marketplace/seller/earnings", User, marketplace::seller::earnings),
    route!(Get "/api/v1/monetization/marketplace/seller/analytics", User, marketplace::seller::analytics),
    route!(Post "/api/v1/monetization/marketplace/seller/payouts", User, marketplace::seller::request_payout),
    route!(Get "/api/v1/monetization/marketplace/seller/payouts", User, marketplace::seller::list_payouts),
    route!(Patch "/api/v1/monetization/admin/marketplace/items/{id}", Admin, marketplace::admin_update),
    route!(Post "/api/v1/monetization/marketplace/items/{id}/purchase", User, marketplace::orders::purchase),
    route!(Get "/api/v1/monetization/marketplace/purchases", User, marketplace::orders::list),
    route!(Get "/api/v1/monetization/marketplace/purchases/{id}", User, marketplace::orders::get),
    route!(Post "/api/v1/monetization/marketplace/purchases/{id}/license/rotate", User, marketplace::orders::rotate),
    route!(Get "/api/v1/monetization/marketplace/purchases/{id}/download", User, marketplace::orders::download_link),
    route!(Post "/api/v1/monetization/admin/marketplace/orders/{id}/complete", Admin, marketplace::orders::admin_complete),
    route!(Post "/api/v1/monetization/admin/marketplace/orders/{id}/refund", Admin, marketplace::orders::admin_refund),
    // License checks by the seller's software, and signed downloads: public, throttled per IP.
    route!(Post "/api/v1/monetization/licenses/activate", Public, marketplace::orders::activate),
    route!(Post "/api/v1/monetization/licenses/validate", Public, marketplace::orders::validate),
    route!(Post "/api/v1/monetization/licenses/deactivate", Public, marketplace::orders::deactivate),
    route!(Get "/d/{token}", Public, marketplace::orders::download),
    // White-label resellers.
    route!(Post "/api/v1/monetization/resellers", User, resellers::apply),
    route!(Get "/api/v1/monetization/resellers/me", User, resellers::me),
    route!(Get "/api/v1/monetization/resellers/me/pricing/quote", User, resellers::quote),
    route!(Get "/api/v1/monetization/resellers/me/dashboard", User, resellers::dashboard),
    route!(Post "/api/v1/monetization/resellers/me/end-users", User, resellers::create_end_user),
    route!(Get "/api/v1/monetization/resellers/me/end-users", User, resellers::list_end_users),
    route!(Post "/api/v1/monetization/resellers/me/end-users/{id}/deactivate", User, resellers::deactivate_end_user),
    // The main API asks before serving an end user's calls: a hot path, not throttled per user.
    route!(Post "/api/v1/monetization/resellers/usage", Admin, resellers::usage, throttled: false),
    route!(Post "/api/v1/monetization/admin/resellers/{id}/quota/reset", Admin, resellers::reset_quota),
    route!(Get "/api/v1/monetization/admin/resellers", Admin, resellers::admin_list),
    route!(Put "/api/v1/monetization/resellers/me/branding", User, resellers::put_branding),
    route!(Get "/api/v1/monetization/resellers/me/branding", User, resellers::get_branding),
    route!(Post "/api/v1/monetization/admin/resellers/{id}/domain/verify", Admin, resellers::verify_domain),
    // Branding by Host: throttled per IP only on what reaches D1, as edge links are.
    route!(Get "/branding", Public, resellers::branding, throttled: false),
    route!(Patch "/api/v1/monetization/admin/resellers/{id}", Admin, resellers::admin_update),
];

/// The table with its path matcher, built once per isolate.
pub fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| Router::new(ROUTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::meta::OPENAPI_JSON;
    use serde_json::Value;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_pattern_is_accepted_and_unique() {
        let mut router = matchit::Router::new();
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method.to_string(), route.path)), "duplicate {} {}", route.method, route.path);
            if seen.iter().filter(|(_, p)| *p == route.path).count() == 1 {
                router.insert(route.path, ()).unwrap_or_else(|e| panic!("{}: {e}", route.path));
            }
        }
    }

    #[test]
    fn resolves_parameters_and_methods() {
        let (route, params) = router().resolve(Some(&Method::Patch), "/api/v1/monetization/admin/users/user%201").unwrap();
        assert_eq!(route.path, "/api/v1/monetization/admin/users/{id}");
        assert_eq!(params, vec![("id".to_string(), "user 1".to_string())]);
        let (route, _) = router().resolve(Some(&Method::Head), "/healthz").unwrap();
        assert_eq!(route.path, "/healthz");
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        assert_eq!(router().resolve(Some(&Method::Get), "/nope").err().map(|e| e.status), Some(404));
        assert_eq!(router().resolve(Some(&Method::Get), "/api/v1/monetization/me/").err().map(|e| e.status), Some(404));
        let e = router().resolve(Some(&Method::Delete), "/api/v1/monetization/me").err().unwrap();
        assert_eq!(e.status, 405);
        assert_eq!(e.headers, vec![("Allow", "GET, HEAD".to_string())]);
        let e = router().resolve(Some(&Method::Get), "/api/v1/monetization/admin/users/x").err().unwrap();
        assert_eq!(e.headers, vec![("Allow", "PATCH".to_string())]);
    }

    #[test]
    fn methods_the_service_does_not_know_are_405_never_get() {
        for raw in ["PROPFIND", "QUERY", "get", "Patch", "TRACE", "CONNECT", ""] {
            assert_eq!(crate::http::router::method(raw), None, "{raw:?}");
            let e = router().resolve(crate::http::router::method(raw).as_ref(), "/c/PROMOX").err().unwrap();
            assert_eq!((e.status, e.headers.clone()), (405, vec![("Allow", "GET, HEAD".to_string())]), "{raw:?}");
        }
        assert_eq!(router().resolve(None, "/nope").err().map(|e| e.status), Some(404));
        assert_eq!(crate::http::router::method("PATCH"), Some(Method::Patch));
    }

    #[test]
    fn the_location_of_a_new_campaign_is_its_route() {
        let (route, params) = router().resolve(Some(&Method::Get), &campaigns::location("SPRING26")).unwrap();
        assert_eq!(route.path, "/api/v1/monetization/campaigns/{code}");
        assert_eq!(params, vec![("code".to_string(), "SPRING26".to_string())]);
    }

    #[test]
    fn invalid_utf8_in_parameters_is_404() {
        let e = router().resolve(Some(&Method::Patch), "/api/v1/monetization/admin/users/%FF").err().unwrap();
        assert_eq!(e.status, 404);
    }

    fn doc() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        ops
    }

    #[test]
    fn the_document_names_every_badge_and_only_those() {
        let documented = doc()["components"]["schemas"]["BadgeAward"]["properties"]["badge_id"]["enum"].clone();
        let badges: Vec<&str> = crate::domain::rewards::BADGES.iter().map(|b| b.id).collect();
        assert_eq!(documented, serde_json::json!(badges));
    }

    #[test]
    fn the_document_names_exactly_the_routed_operations() {
        let documented: BTreeSet<(String, String)> =
            operations(&doc()).into_iter().map(|(m, p, _)| (m, p)).collect();
        let routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(undocumented.is_empty(), "routed but not in openapi.json: {undocumented:?}");
        assert!(unrouted.is_empty(), "in openapi.json but not routed: {unrouted:?}");
    }

    #[test]
    fn security_and_error_responses_match_each_routes_access() {
        let doc = doc();
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_string().to_lowercase()];
            let responses = op["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            let name = format!("{} {}", route.method, route.path);
            assert!(responses.keys().any(|s| s.starts_with('2') || s.starts_with('3')), "{name}: no success response");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            // Admin routes name their own scheme, so clients and the fuzzer know whose token
            // they need.
            let scheme = match route.access {
                Access::Public => None,
                Access::User => Some("bearerAuth"),
                Access::Admin => Some("adminBearerAuth"),
            };
            if let Some(scheme) = scheme {
                assert_eq!(op["security"], serde_json::json!([{ scheme: [] }]), "{name}: security scheme");
            }
            match route.access {
                Access::Public => assert!(!secured, "{name}: public route documented as secured"),
                Access::User | Access::Admin => {
                    assert!(secured, "{name}: authenticated route documented without security");
                    assert!(has("401") && has("403") && has("500"), "{name}: missing 401/403/500");
                }
            }
            if route.access != Access::Public || route.throttled {
                assert!(has("429"), "{name}: throttled but 429 undocumented");
            }
            let keyed = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| p["name"] == "Idempotency-Key" || p["$ref"] == "#/components/parameters/IdempotencyKey")
            });
            if keyed {
                assert!(has("422"), "{name}: a malformed Idempotency-Key is 422, undocumented");
            }
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413"), "{name}: body errors undocumented");
                if route.access != Access::Public {
                    assert!(has("415") && has("422"), "{name}: JSON body errors undocumented");
                }
            }
            let path_params: Vec<&str> =
                route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for param in path_params {
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == param && p["in"] == "path"));
                assert!(declared, "{name}: path parameter {param} undocumented");
            }
        }
    }
}
