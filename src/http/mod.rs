//! Transport: one entry (`serve`) that routes (through the table it is handed: `crate::routes`),
//! authenticates, throttles, calls the handler and turns every outcome into a response with
//! `X-Request-Id` and one structured log line. Knows no program.

pub mod auth;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod kept;
pub mod meta;
pub mod pagination;
pub mod principals;
pub mod ratelimit;
pub mod router;

pub use error::{ApiError, ApiResult};

use auth::Principal;
use crate::config::{Config, RequestLog};
use crate::domain::time::Timestamp;
use crate::log::log;
use crate::store::Db;
use crate::timing::{self, Meter};
use futures_util::StreamExt;
use pagination::PageRequest;
use router::{Access, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::OnceCell;
use std::rc::Rc;
use worker::{web_sys, ByteStream, Date, Env, Headers, Method};

/// Request bodies above this are refused with 413 (unless the route allows more).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Oversized bodies up to this size are read and discarded before the 413 (no route allows more).
const DRAIN_LIMIT_BYTES: usize = 1024 * 1024;

/// What a handler returns; turned into a `Response` (and stored for idempotent replays).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// A body passed through from elsewhere (an R2 object), in place of `body`; never stored
    /// for replays.
    pub stream: Option<web_sys::ReadableStream>,
}

impl Reply {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> ApiResult {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        Ok(Reply { status, content_type: "application/json", body, headers: Vec::new(), stream: None })
    }

    pub fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
        Self::json(200, value)
    }

    pub fn created<T: Serialize + ?Sized>(value: &T) -> ApiResult {
        Self::json(201, value)
    }

    pub fn text(content_type: &'static str, body: &str) -> Reply {
        Reply { status: 200, content_type, body: body.as_bytes().to_vec(), headers: Vec::new(), stream: None }
    }

    /// A response whose body is `stream` (its `Content-Length` set by the runtime when the
    /// stream's length is known, as an R2 object's is).
    pub fn streamed(status: u16, content_type: &'static str, stream: web_sys::ReadableStream) -> Reply {
        Reply { status, content_type, body: Vec::new(), headers: Vec::new(), stream: Some(stream) }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Everything a handler may use about the request it serves.
pub struct Ctx {
    pub env: Env,
    pub method: Method,
    pub path: String,
    /// Path and query string, as the client sent them.
    pub target: String,
    pub query: Vec<(String, String)>,
    pub headers: Headers,
    /// Path parameters of the matched route, percent-decoded.
    pub params: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The unread body of a `streamed` route, until `body_stream` takes it.
    stream: std::cell::Cell<Option<web_sys::ReadableStream>>,
    pub request_id: String,
    pub now: Timestamp,
    /// The authenticated, active user; set before any `User` or `Admin` handler runs.
    pub user: Option<Principal>,
    /// Keeps work alive after the response (`ctx.wait_until`).
    pub background: worker::Context,
    config: OnceCell<Rc<Config>>,
    /// This request's D1 round trips and Durable Object calls (`Server-Timing`).
    d1_meter: Rc<Meter>,
    object_meter: Rc<Meter>,
}

impl Ctx {
    pub fn user(&self) -> ApiResult<&Principal> {
        self.user.as_ref().ok_or_else(|| ApiError::internal("handler needs a user but route is public"))
    }

    /// The body of a `streamed` route, unread (once; `None` after, or when there is none).
    pub fn body_stream(&self) -> Option<web_sys::ReadableStream> {
        self.stream.take()
    }

    pub fn param(&self, name: &str) -> ApiResult<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::internal(format!("route has no parameter {name}")))
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    pub fn client_ip(&self) -> String {
        self.header("CF-Connecting-IP").unwrap_or_else(|| "unknown".into())
    }

    /// The configuration, parsed once per isolate: vars and secrets are fixed for a deployment.
    pub fn config(&self) -> ApiResult<&Config> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config = match ISOLATE_CONFIG.with(|c| c.borrow().clone()) {
            Some(config) => config,
            None => {
                let config = Rc::new(Config::from_env(&self.env)?);
                ISOLATE_CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
                config
            }
        };
        Ok(self.config.get_or_init(|| config))
    }

    /// The D1 database; its round trips count in this request's `Server-Timing`.
    pub fn db(&self) -> ApiResult<Db> {
        Ok(Db::metered(&self.env, self.d1_meter.clone())?)
    }

    /// Where this request's Durable Object calls are counted (`Server-Timing`).
    pub fn object_meter(&self) -> &Meter {
        &self.object_meter
    }

    /// The JSON body, typed. Only `application/json` (or no content type) is accepted.
    pub fn json<T: DeserializeOwned>(&self) -> ApiResult<T> {
        if let Some(ct) = self.header("Content-Type") {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/json") {
                return Err(ApiError::new(415, "unsupported_media_type", "Send the body as application/json."));
            }
        }
        json::parse(&self.body)
    }

    /// An optional query parameter naming one value of an enum (`?status=active`).
    pub fn query_named<T: crate::domain::Named>(&self, name: &str) -> ApiResult<Option<T>> {
        match self.query(name) {
            None => Ok(None),
            Some(text) => T::parse(text)
                .map(Some)
                .ok_or_else(|| ApiError::validation(name, format!("{name} must be {}", T::choices()))),
        }
    }

    /// `?limit=&cursor=` of a list endpoint.
    /// The version an `If-Match` names (`"3"`, `W/"3"` or `3`: a record's `ETag` or `version`).
    pub fn if_match(&self) -> ApiResult<Option<i64>> {
        let Some(value) = self.header("If-Match") else { return Ok(None) };
        let text = match value.strip_prefix("W/") {
            Some(weak) => weak.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(""),
            None => value.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(&value),
        };
        if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation("If-Match", "If-Match must be the ETag (version) of the record"));
        }
        text.parse::<i64>().map(Some).map_err(|_| ApiError::validation("If-Match", "If-Match must be the ETag (version) of the record"))
    }

    pub fn page<K: pagination::CursorKey>(&self) -> ApiResult<PageRequest<K>> {
        PageRequest::parse(self.query("limit"), self.query("cursor"))
    }
}

thread_local! {
    /// A misconfiguration is not cached: every request reports it until the vars are fixed.
    static ISOLATE_CONFIG: std::cell::RefCell<Option<Rc<Config>>> = const { std::cell::RefCell::new(None) };
}

/// The Worker's fetch entry, routing by `router`: never fails, never panics on input.
///
/// It takes the runtime's request as it is (`web_sys::Request`): `worker::Request` reads the
/// request's `cf` object on construction, which costs a click about a tenth of its time, and
/// nothing here needs it.
pub async fn serve(
    req: web_sys::Request,
    env: Env,
    background: worker::Context,
    router: &'static Router,
) -> Result<web_sys::Response, wasm_bindgen::JsValue> {
    let started = Date::now().as_millis();
    let request_id = crate::ids::request_id();
    // The method as sent (`worker::Method` reads any method it does not know as GET).
    let raw_method = req.method();
    let method = router::method(&raw_method);
    let url = req.url();
    let path = crate::domain::links::path_of(&url).to_owned();
    let meters = (Rc::new(Meter::default()), Rc::new(Meter::default()));
    let mut user_id = None;
    let mut request_log = RequestLog::default();
    let outcome = handle(req, &url, env, background, router, method.clone(), &request_id, &meters, &mut user_id, &mut request_log)
        .await;
    let (status, mut reply) = match outcome {
        Ok(reply) => (reply.status, reply),
        Err(error) => {
            if let Some(detail) = &error.detail {
                log("error", &serde_json::json!({"request_id": request_id, "error": detail}));
            }
            let body = serde_json::to_vec(&error.body(&request_id)).unwrap_or_default();
            let reply = Reply { status: error.status, content_type: "application/json", body, headers: error.headers, stream: None };
            (error.status, reply)
        }
    };
    let duration_ms = Date::now().as_millis().saturating_sub(started);
    let (d1, objects) = (&meters.0, &meters.1);
    reply.headers.push((
        "Server-Timing",
        timing::server_timing((d1.calls(), d1.millis()), (objects.calls(), objects.millis()), duration_ms),
    ));
    let read = matches!(method, Some(Method::Get | Method::Head));
    if request_log.logs(read, status) {
        let shown_method: String = raw_method.chars().take(32).collect();
        log(
            "info",
            &serde_json::json!({
                "request_id": request_id,
                "method": shown_method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "d1": d1.calls(),
                "do": objects.calls(),
                "user_id": user_id,
            }),
        );
    }
    into_response(reply, &request_id)
}

/// The runtime's response (it refuses only a status outside 200–599, and every status here is
/// one of ours).
fn into_response(reply: Reply, request_id: &str) -> Result<web_sys::Response, wasm_bindgen::JsValue> {
    let headers = Headers::new();
    // Header values here are ours and valid; a failed set only drops that header.
    if !reply.body.is_empty() || reply.stream.is_some() {
        let _ = headers.set("Content-Type", reply.content_type);
    }
    let _ = headers.set("X-Request-Id", request_id);
    // Hardening (OWASP API8): no content sniffing; nothing stored by a browser or a shared cache
    // unless the handler says so (the public document and docs page do).
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    let _ = headers.set("Cache-Control", "no-store");
    for (name, value) in &reply.headers {
        let _ = headers.set(name, value);
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(reply.status);
    init.set_headers(&headers.0);
    if let Some(stream) = reply.stream {
        return web_sys::Response::new_with_opt_readable_stream_and_init(Some(&stream), &init);
    }
    let mut body = reply.body;
    if body.is_empty() {
        // (A 302 has no body: none rather than zero bytes.)
        web_sys::Response::new_with_opt_str_and_init(None, &init)
    } else {
        web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut body), &init)
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    req: web_sys::Request,
    url: &str,
    env: Env,
    background: worker::Context,
    router: &'static Router,
    method: Option<Method>,
    request_id: &str,
    meters: &(Rc<Meter>, Rc<Meter>),
    user_id: &mut Option<String>,
    request_log: &mut RequestLog,
) -> ApiResult {
    let path = crate::domain::links::path_of(url).to_owned();
    let headers = Headers(req.headers());
    let (route, params) = match router.resolve(method.as_ref(), &path) {
        Ok(found) => found,
        Err(e) => {
            // Read (and drop) what the client is still sending, so it sees the 404 or 405
            // rather than a connection reset mid-upload.
            let _ = read_body(&req, &headers, 0).await;
            return Err(e);
        }
    };
    // The raw URL (no parsing crate: see domain::links).
    let target = match url.split_once('?') {
        Some((_, q)) => format!("{path}?{}", q.split('#').next().unwrap_or("")),
        None => path.clone(),
    };
    let query = crate::domain::links::query_pairs(url);
    let (body, stream) = if route.streamed { (Vec::new(), req.body()) } else { (read_body(&req, &headers, route.max_body).await?, None) };
    let mut ctx = Ctx {
        env,
        // (Known: `resolve` answers 405 to a method it does not know.)
        method: method.unwrap_or_else(|| route.method.clone()),
        path,
        target,
        query,
        headers,
        params,
        body,
        stream: std::cell::Cell::new(stream),
        request_id: request_id.to_owned(),
        now: Timestamp::from_unix_millis(Date::now().as_millis()),
        user: None,
        background,
        config: OnceCell::new(),
        d1_meter: meters.0.clone(),
        object_meter: meters.1.clone(),
    };
    // (A configuration error surfaces on the routes that need the configuration.)
    if let Ok(config) = ctx.config() {
        *request_log = config.request_log;
    }
    let outcome = async {
        match route.access {
            Access::Public => {
                if route.throttled {
                    ratelimit::by_ip(&ctx).await?;
                }
            }
            Access::User | Access::Admin => {
                let user = authenticate(&ctx, route.access, route.throttled, user_id).await?;
                if !user.is_active {
                    return Err(ApiError::forbidden("This account is deactivated."));
                }
                if route.access == Access::Admin && !user.is_admin {
                    return Err(ApiError::forbidden("Administrator rights are required."));
                }
                ctx.user = Some(user);
            }
        }
        (route.handler)(&ctx).await
    }
    .await;
    // A streamed route that failed before reading its body: read what the client is still
    // sending (up to DRAIN_LIMIT_BYTES), so it sees the error rather than a reset connection.
    if outcome.is_err() {
        if let Some(stream) = ctx.stream.take() {
            drain(stream).await;
        }
    }
    outcome
}

/// Reads and drops a body up to `DRAIN_LIMIT_BYTES`.
async fn drain(stream: web_sys::ReadableStream) {
    let mut stream = ByteStream::from(stream);
    let mut received = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        received += chunk.len();
        if received > DRAIN_LIMIT_BYTES {
            break;
        }
    }
}

/// Verifies the bearer token, throttles per user (unless the route is not throttled; per IP when
/// the token is bad), and returns the user, provisioned on first sight. What a `User` route
/// needs to know about its user comes from the per-isolate cache (`principals`); an `Admin` route
/// always reads D1, so revoked rights end at once everywhere.
async fn authenticate(ctx: &Ctx, access: Access, throttled: bool, user_id: &mut Option<String>) -> ApiResult<Principal> {
    let config = ctx.config()?;
    let settings = auth::JwtSettings {
        secret: &config.api_secret_key,
        issuer: config.jwt_issuer.as_deref(),
        audience: config.jwt_audience.as_deref(),
    };
    let authorization = ctx.header("Authorization");
    let verified = auth::bearer_token(authorization.as_deref())
        .and_then(|token| auth::verify_kept(token, &settings, ctx.now.to_chrono()));
    let sub = match verified {
        Ok(sub) => sub,
        Err(reason) => {
            ratelimit::by_ip(ctx).await?;
            return Err(ApiError::unauthorized(format!("Authentication failed: {reason}.")));
        }
    };
    *user_id = Some(sub.clone());
    // (A route the main API calls on its hot path is not throttled per user: `throttled: false`.
    // A bad token is still throttled per IP above.)
    if throttled {
        ratelimit::by_user(ctx, &sub).await?;
    }
    let ttl = if access == Access::Admin { 0 } else { config.user_cache_seconds };
    principals::principal(&sub, ctx.now, ttl, || async {
        let user = crate::store::users::find_or_provision(&ctx.db()?, &sub, ctx.now).await?;
        Ok(Principal::from(user))
    })
    .await
}

/// Reads the body up to `limit` bytes. A larger body is answered with 413 after draining it up
/// to `DRAIN_LIMIT_BYTES` (so the client's connection stays usable for its next request); beyond
/// that it is not read at all.
async fn read_body(req: &web_sys::Request, headers: &Headers, limit: usize) -> ApiResult<Vec<u8>> {
    let declared = headers.get("Content-Length").ok().flatten();
    if declared.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|len| len > DRAIN_LIMIT_BYTES as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = Vec::new();
    let Some(stream) = req.body() else {
        return Ok(body); // no body at all (GET and HEAD never have one)
    };
    let mut stream = ByteStream::from(stream);
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        received += chunk.len();
        if received > DRAIN_LIMIT_BYTES {
            break;
        }
        if received <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if received > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(body)
}
