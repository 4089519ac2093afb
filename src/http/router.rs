//! Routing: what a route is (`Route`) and how a request finds its route (`Router::resolve`). The
//! table of every route is the composition root's (`crate::routes`): it names every program's
//! handlers, and `http` knows no program.

use super::{ApiError, ApiResult, Ctx};
use futures_util::future::LocalBoxFuture;
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
    /// The handler reads the body itself, as a stream (`Ctx::body_stream`), and bounds it;
    /// `max_body` does not apply.
    pub streamed: bool,
    pub handler: Handler,
}

/// The method of a request as sent (case-sensitive, RFC 9110 §9.1), or `None` for one this service
/// never serves. (`worker::Method::from` reads any unknown method, `PROPFIND` or `QUERY`, as GET.)
pub fn method(raw: &str) -> Option<Method> {
    Some(match raw {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        _ => return None,
    })
}

/// A routing table and its path matcher. Build it once per isolate (`crate::routes::router`).
pub struct Router {
    routes: &'static [Route],
    /// Path pattern → indices into `routes` (one entry per method on that path).
    matcher: matchit::Router<Vec<usize>>,
}

impl Router {
    pub fn new(routes: &'static [Route]) -> Router {
        let mut by_path: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            match by_path.iter_mut().find(|(p, _)| *p == route.path) {
                Some((_, indices)) => indices.push(i),
                None => by_path.push((route.path, vec![i])),
            }
        }
        let mut matcher = matchit::Router::new();
        for (path, indices) in by_path {
            // The table is static and tested natively (`routes::tests::every_route_pattern_is_accepted_and_unique`).
            let _ = matcher.insert(path, indices);
        }
        Router { routes, matcher }
    }

    /// The route for `method` on `path` with its decoded parameters; 404 or 405 (with `Allow`,
    /// also for a method `method()` does not know: `None`).
    pub fn resolve(&self, method: Option<&Method>, path: &str) -> ApiResult<(&'static Route, Vec<(String, String)>)> {
        let not_found = || ApiError::not_found("There is no route at this path.");
        let found = self.matcher.at(path).map_err(|_| not_found())?;
        let routes = self.routes;
        let wanted = match method {
            Some(Method::Head) => Some(&Method::Get),
            other => other,
        };
        let Some(route) = found.value.iter().map(|&i| &routes[i]).find(|r| Some(&r.method) == wanted) else {
            let mut allow: Vec<&str> = Vec::new();
            for route in found.value.iter().map(|&i| &routes[i]) {
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
}
