//! The routing table: every route of the service, in one place. `/openapi.json` documents exactly
//! these (a native test compares the two).

use super::{meta, ApiError, ApiResult, Ctx};
use crate::{affiliates, attributions, campaigns, conversions, links, payouts, referrals, rewards, users};
use futures_util::future::LocalBoxFuture;
use std::sync::OnceLock;
use worker::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token; throttled per client IP when `throttled`.
    Public,
    /// A valid token of an active user; throttled per user.
    User,
    /// As `User`, and `users.is_admin` must be set.
    Admin,
}

pub type Handler = for<'a> fn(&'a Ctx) -> LocalBoxFuture<'a, ApiResult>;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub throttled: bool,
    /// Largest request body accepted (413 above).
    pub max_body: usize,
    pub handler: Handler,
}

/// `route!(Method "path", Access, handler)`, optionally followed by `throttled: false` or
/// `max_body: bytes`.
macro_rules! route {
    ($method:ident $path:literal, $access:ident, $handler:path $(, $option:ident: $value:expr)*) => {{
        #[allow(unused_mut)]
        let mut route = Route {
            method: Method::$method,
            path: $path,
            access: Access::$access,
            throttled: true,
            max_body: super::MAX_BODY_BYTES,
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
    route!(Get "/a/{code}", Public, links::affiliate),
    route!(Get "/r/{code}", Public, links::referral),
    route!(Get "/c/{code}", Public, links::campaign),
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
    route!(Post "/api/v1/monetization/webhooks/stripe", Public, conversions::stripe_webhook, throttled: false),
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
];

/// Path pattern → indices into `ROUTES` (one entry per method on that path).
fn matcher() -> &'static matchit::Router<Vec<usize>> {
    static MATCHER: OnceLock<matchit::Router<Vec<usize>>> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let mut by_path: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, route) in ROUTES.iter().enumerate() {
            match by_path.iter_mut().find(|(p, _)| *p == route.path) {
                Some((_, indices)) => indices.push(i),
                None => by_path.push((route.path, vec![i])),
            }
        }
        let mut router = matchit::Router::new();
        for (path, indices) in by_path {
            // The table is static and tested natively (`every_route_pattern_is_accepted`).
            let _ = router.insert(path, indices);
        }
        router
    })
}

/// The route for `method` on `path` with its decoded parameters; 404 or 405 (with `Allow`).
pub fn resolve(method: &Method, path: &str) -> ApiResult<(&'static Route, Vec<(String, String)>)> {
    let not_found = || ApiError::not_found("There is no route at this path.");
    let found = matcher().at(path).map_err(|_| not_found())?;
    let wanted = if *method == Method::Head { &Method::Get } else { method };
    let Some(route) = found.value.iter().map(|&i| &ROUTES[i]).find(|r| r.method == *wanted) else {
        let mut allow: Vec<&str> = Vec::new();
        for route in found.value.iter().map(|&i| &ROUTES[i]) {
            allow.push(route.method.as_ref());
            if route.method == Method::Get {
                allow.push("HEAD");
            }
        }
        return Err(ApiError::method_not_allowed(&allow));
    };
    let mut params = Vec::new();
    for (name, raw) in found.params.iter() {
        let value = percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| not_found())?;
        params.push((name.to_owned(), value.into_owned()));
    }
    Ok((route, params))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (route, params) = resolve(&Method::Patch, "/api/v1/monetization/admin/users/user%201").unwrap();
        assert_eq!(route.path, "/api/v1/monetization/admin/users/{id}");
        assert_eq!(params, vec![("id".to_string(), "user 1".to_string())]);
        let (route, _) = resolve(&Method::Head, "/healthz").unwrap();
        assert_eq!(route.path, "/healthz");
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
        assert_eq!(resolve(&Method::Get, "/nope").err().map(|e| e.status), Some(404));
        assert_eq!(resolve(&Method::Get, "/api/v1/monetization/me/").err().map(|e| e.status), Some(404));
        let e = resolve(&Method::Delete, "/api/v1/monetization/me").err().unwrap();
        assert_eq!(e.status, 405);
        assert_eq!(e.headers, vec![("Allow", "GET, HEAD".to_string())]);
        let e = resolve(&Method::Get, "/api/v1/monetization/admin/users/x").err().unwrap();
        assert_eq!(e.headers, vec![("Allow", "PATCH".to_string())]);
    }

    #[test]
    fn invalid_utf8_in_parameters_is_404() {
        let e = resolve(&Method::Patch, "/api/v1/monetization/admin/users/%FF").err().unwrap();
        assert_eq!(e.status, 404);
    }
}
