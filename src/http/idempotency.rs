//! `Idempotency-Key` for mutations that move money or credits. Wrap a handler's work in `run`:
//!
//! - the first request with a key claims `(user, key)` in D1 and stores its response (2xx and
//!   4xx alike); an answer that asks for a retry (a 5xx, or a 409 with `Retry-After` for a lost
//!   race) frees the key, so the retry with the same key does the work instead of replaying it;
//! - the same key with the same method, path, query and body replays the stored response (status,
//!   body and the headers the handler set, such as `Location`) with `Idempotent-Replayed: true`,
//!   without running the work again;
//! - the same key with a different request → 409 `idempotency_conflict`;
//! - the same key while the first request is still running → 409 `idempotency_in_progress`
//!   with `Retry-After`;
//! - keys expire after `IDEMPOTENCY_TTL_SECONDS` (24 h); the cron job purges them.

use super::{ApiError, ApiResult, Ctx, Reply};
use crate::log::log;
use crate::store::idempotency as store;
use sha2::{Digest, Sha256};
use std::future::Future;

pub const HEADER: &str = "Idempotency-Key";

/// The headers a handler may set on a response that is stored for replays. A `Reply` names its
/// headers with `&'static str`, so a stored header is replayed under its name from this list;
/// one missing here is logged when stored and left out of replays.
const REPLAYED_HEADERS: &[&str] = &["Location", "Content-Location", "Link", "Retry-After", "Allow", "Cache-Control"];

fn replayed_name(name: &str) -> Option<&'static str> {
    REPLAYED_HEADERS.iter().copied().find(|h| h.eq_ignore_ascii_case(name))
}

/// A response's headers as stored: JSON `[[name, value], …]`.
fn stored_headers(ctx: &Ctx, headers: &[(&'static str, String)]) -> String {
    for (name, _) in headers.iter().filter(|(name, _)| replayed_name(name).is_none()) {
        log("error", &serde_json::json!({"request_id": ctx.request_id, "idempotency": "header not replayable", "header": name}));
    }
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    Optional,
    Required,
}

pub async fn run<F, Fut>(ctx: &Ctx, policy: KeyPolicy, work: F) -> ApiResult
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let key = match (ctx.header(HEADER), policy) {
        (None, KeyPolicy::Optional) => return work().await,
        (None, KeyPolicy::Required) => {
            return Err(ApiError::validation(HEADER, "This request requires an Idempotency-Key header."))
        }
        (Some(key), _) => parse_key(&key)?,
    };
    let user = &ctx.user()?.id;
    let hash = request_hash(ctx.method.as_ref(), &ctx.target, &ctx.body);
    let db = ctx.db()?;
    let ttl = ctx.config()?.idempotency_ttl_seconds;
    if !store::claim(&db, user, &key, &hash, ctx.now, ttl).await? {
        return replay(store::find(&db, user, &key).await?, &hash);
    }
    let outcome = work().await;
    let saved = match &outcome {
        Ok(reply) => {
            let body = String::from_utf8_lossy(&reply.body);
            store::complete(&db, user, &key, &hash, reply.status, &body, &stored_headers(ctx, &reply.headers)).await
        }
        Err(e) if !e.asks_retry() => {
            let body = e.body(&ctx.request_id).to_string();
            store::complete(&db, user, &key, &hash, e.status, &body, &stored_headers(ctx, &e.headers)).await
        }
        Err(_) => store::release(&db, user, &key, &hash).await,
    };
    if let Err(e) = saved {
        // The work has happened; the key stays claimed (a retry gets 409, never a second effect).
        log("error", &serde_json::json!({"request_id": ctx.request_id, "idempotency": "store failed", "error": e.to_string()}));
    }
    outcome
}

fn replay(held: Option<store::Held>, hash: &str) -> ApiResult {
    let Some(held) = held else {
        return Err(ApiError::contention("idempotency_in_progress", "This Idempotency-Key was just released; retry."));
    };
    if held.request_hash != hash {
        return Err(ApiError::conflict(
            "idempotency_conflict",
            "This Idempotency-Key was used for a different request.",
        ));
    }
    match (held.status_code, held.response_body) {
        (Some(status), Some(body)) => {
            let stored: Vec<(String, String)> = match held.response_headers.as_deref() {
                None => Vec::new(),
                Some(json) => serde_json::from_str(json).map_err(|e| ApiError::internal(format!("stored response headers {json:?}: {e}")))?,
            };
            let mut headers: Vec<(&'static str, String)> =
                stored.into_iter().filter_map(|(name, value)| Some((replayed_name(&name)?, value))).collect();
            headers.push(("Idempotent-Replayed", "true".into()));
            Ok(Reply { status, content_type: "application/json", body: body.into_bytes(), headers, stream: None })
        }
        _ => Err(ApiError::contention(
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )),
    }
}

/// Keys are 1–255 visible ASCII characters (`domain::keys`; a UUID is typical).
pub fn parse_key(raw: &str) -> ApiResult<String> {
    crate::domain::keys::client_key(raw)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::validation(HEADER, "Idempotency-Key must be 1–255 visible ASCII characters."))
}

/// SHA-256 over method, path with query, and body: what "the same request" means.
pub fn request_hash(method: &str, target: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), target.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_separates_every_part() {
        let base = request_hash("POST", "/a", b"{}");
        assert_eq!(base, request_hash("POST", "/a", b"{}"));
        assert_eq!(base.len(), 64);
        assert_ne!(base, request_hash("PATCH", "/a", b"{}"));
        assert_ne!(base, request_hash("POST", "/a?x=1", b"{}"));
        assert_ne!(base, request_hash("POST", "/a", b"{ }"));
        // Length prefixes keep boundaries unambiguous.
        assert_ne!(request_hash("POST", "/ab", b"c"), request_hash("POST", "/a", b"bc"));
    }

    #[test]
    fn only_final_answers_spend_a_key() {
        assert!(ApiError::contention("concurrent_update", "retry").asks_retry());
        assert!(ApiError::internal("d1 down").asks_retry());
        assert!(!ApiError::conflict("refund_exceeds_amount", "nothing left").asks_retry());
        assert!(!ApiError::validation("amount_cents", "must be positive").asks_retry());
    }

    #[test]
    fn keys_are_validated() {
        assert_eq!(parse_key("3f2c-key").unwrap(), "3f2c-key");
        for bad in ["", "  ", " padded ", "has space", "ключ", &"k".repeat(256)] {
            let e = parse_key(bad).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (422, Some(HEADER)), "{bad:?}");
        }
    }

    #[test]
    fn replays_need_the_same_request() {
        let held = |hash: &str, status: Option<u16>| store::Held {
            request_hash: hash.into(),
            status_code: status,
            response_body: status.map(|_| "{\"ok\":true}".into()),
            response_headers: None,
        };
        let reply = replay(Some(held("h", Some(201))), "h").unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (201, b"{\"ok\":true}".as_slice()));
        assert_eq!(reply.headers, vec![("Idempotent-Replayed", "true".to_string())]);
        assert_eq!(replay(Some(held("other", Some(201))), "h").unwrap_err().code, "idempotency_conflict");
        let running = replay(Some(held("h", None)), "h").unwrap_err();
        assert_eq!((running.code, running.asks_retry()), ("idempotency_in_progress", true));
        assert_eq!(replay(Some(held("other", None)), "h").unwrap_err().code, "idempotency_conflict");
    }

    #[test]
    fn replays_carry_the_stored_headers() {
        let held = |headers: Option<&str>| store::Held {
            request_hash: "h".into(),
            status_code: Some(201),
            response_body: Some("{}".into()),
            response_headers: headers.map(str::to_owned),
        };
        let stored: Vec<(&'static str, String)> = vec![("Location", "/api/v1/monetization/campaigns/SPRING26".into())];
        let json = serde_json::to_string(&stored).unwrap();
        assert_eq!(json, r#"[["Location","/api/v1/monetization/campaigns/SPRING26"]]"#);
        let reply = replay(Some(held(Some(&json))), "h").unwrap();
        assert_eq!(
            reply.headers,
            vec![("Location", "/api/v1/monetization/campaigns/SPRING26".to_string()), ("Idempotent-Replayed", "true".to_string())]
        );
        // Names are matched whatever their case; unknown ones are left out.
        let reply = replay(Some(held(Some(r#"[["location","/x"],["X-Unknown","1"]]"#))), "h").unwrap();
        assert_eq!(reply.headers, vec![("Location", "/x".to_string()), ("Idempotent-Replayed", "true".to_string())]);
        // Keys stored before the headers were: the body and status alone.
        assert_eq!(replay(Some(held(None)), "h").unwrap().headers, vec![("Idempotent-Replayed", "true".to_string())]);
        assert_eq!(replay(Some(held(Some("{bad"))), "h").unwrap_err().status, 500);
    }
}
