//! Bearer-token authentication: HS256 JWTs as issued by the main SoundHash API.
//!
//! The algorithm is pinned (a token announcing `none` or any other algorithm is rejected before its
//! signature is looked at), `exp` is required, `nbf` is honoured, both with 60 s leeway, and
//! `iss`/`aud` are checked when configured. `sub` is the user id. A token that names critical
//! header extensions (`crit`, RFC 7515 §4.1.11) is rejected: this service understands none.
//! Pure code: tested natively.

use crate::domain::time::Timestamp;
use crate::domain::users::User;
use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, TimeOptions, UntrustedToken, ValidationError};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;

pub const LEEWAY_SECONDS: i64 = 60;
pub const MAX_USER_ID_LEN: usize = 128;

/// Who a request is from: the token's user as D1 knows them (provisioned on first sight).
/// Handlers get it from `Ctx::user`; admin rights come from here, never from the token.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub id: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: Timestamp,
}

impl From<User> for Principal {
    fn from(u: User) -> Self {
        Principal { id: u.id, is_admin: u.is_admin, is_active: u.is_active, created_at: u.created_at }
    }
}

pub struct JwtSettings<'a> {
    pub secret: &'a [u8],
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
}

#[derive(Deserialize)]
struct CustomClaims {
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(list) => list.iter().any(|a| a == wanted),
        }
    }
}

/// Extracts the token from an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, &'static str> {
    let value = header.ok_or("missing bearer token")?.trim();
    let (scheme, token) = value.split_once(' ').ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("malformed Authorization header");
    }
    Ok(token.trim())
}

thread_local! {
    /// Tokens this isolate verified: token → (subject, the last millisecond it is valid).
    static VERIFIED: RefCell<HashMap<String, (String, i64)>> = RefCell::new(HashMap::new());
}

/// The most tokens an isolate keeps verified (past it, it starts over: a bound on memory).
const MAX_VERIFIED: usize = 10_000;

/// `verify`, done once per token and isolate: a token verified before is valid, as it was then,
/// until its `exp` plus the leeway (its signature, header, `nbf`, `iss`, `aud` and `sub` cannot
/// change, and the settings are the isolate's). Only tokens that passed are kept; the whole
/// token is the key, so nothing but the same token finds an entry. Saves a request the HMAC and
/// the token's decoding (about a tenth of an authenticated read's time in the bench).
pub fn verify_kept(token: &str, settings: &JwtSettings, now: DateTime<Utc>) -> Result<String, &'static str> {
    let now_ms = now.timestamp_millis();
    let kept = VERIFIED.with(|v| v.borrow().get(token).filter(|(_, until)| now_ms <= *until).map(|(sub, _)| sub.clone()));
    if let Some(sub) = kept {
        return Ok(sub);
    }
    let (sub, expires) = verify_until(token, settings, now)?;
    VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        if v.len() >= MAX_VERIFIED {
            v.clear();
        }
        let until = expires.timestamp_millis().saturating_add(LEEWAY_SECONDS * 1_000);
        v.insert(token.to_owned(), (sub.clone(), until));
    });
    Ok(sub)
}

/// Verifies a token and returns its subject (the user id). The error is a short reason that is
/// safe to show to the client.
pub fn verify(token: &str, settings: &JwtSettings, now: DateTime<Utc>) -> Result<String, &'static str> {
    verify_until(token, settings, now).map(|(sub, _)| sub)
}

/// `verify`, with the token's `exp`.
fn verify_until(token: &str, settings: &JwtSettings, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), &'static str> {
    let untrusted = UntrustedToken::new(token).map_err(|_| "malformed token")?;
    if names_critical_extensions(token) {
        return Err("unsupported critical token header");
    }
    let key = Hs256Key::new(settings.secret);
    let token = Hs256.validator::<CustomClaims>(&key).validate(&untrusted).map_err(|e| match e {
        ValidationError::AlgorithmMismatch { .. } => "unsupported token algorithm",
        ValidationError::InvalidSignature | ValidationError::InvalidSignatureLen { .. } => "invalid token signature",
        _ => "malformed token",
    })?;
    let claims = token.claims();
    let time = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
    claims.validate_expiration(&time).map_err(|e| match e {
        ValidationError::Expired => "token expired",
        _ => "token has no expiry",
    })?;
    if claims.not_before.is_some() {
        claims.validate_maturity(&time).map_err(|_| "token not yet valid")?;
    }
    let custom = &claims.custom;
    if let Some(issuer) = settings.issuer {
        if custom.iss.as_deref() != Some(issuer) {
            return Err("token issuer not accepted");
        }
    }
    if let Some(audience) = settings.audience {
        if !custom.aud.as_ref().is_some_and(|aud| aud.contains(audience)) {
            return Err("token audience not accepted");
        }
    }
    let expires = claims.expiration.ok_or("token has no expiry")?;
    match custom.sub.as_deref() {
        Some(sub) if valid_user_id(sub) => Ok((sub.to_owned(), expires)),
        _ => Err("token subject missing or invalid"),
    }
}

/// Whether the token's header has a `crit` parameter, whatever its value (also `null` or `[]`,
/// which RFC 7515 forbids). jwt-compact has decoded the header already; one that would not decode
/// here counts as naming some.
fn names_critical_extensions(token: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let header = token.split('.').next().unwrap_or_default();
    let parsed = B64.decode(header).ok().and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok());
    parsed.is_none_or(|h| h.get("crit").is_some())
}

/// User ids come from the main API: 1–128 visible ASCII characters.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use serde_json::{json, Value};
    use sha2::Sha256;

    const SECRET: &[u8] = b"test-secret-0123456789";
    const NOW: i64 = 1_800_000_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    /// Signs header and claims by hand, independently of the library under test.
    fn sign(header: Value, claims: Value, secret: &[u8]) -> String {
        let data = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(data.as_bytes());
        format!("{data}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    fn hs256(claims: Value) -> String {
        sign(json!({"alg": "HS256", "typ": "JWT"}), claims, SECRET)
    }

    fn open() -> JwtSettings<'static> {
        JwtSettings { secret: SECRET, issuer: None, audience: None }
    }

    #[test]
    fn a_valid_token_yields_its_subject() {
        let t = hs256(json!({"sub": "user-1", "exp": NOW + 3600}));
        assert_eq!(verify(&t, &open(), now()), Ok("user-1".to_string()));
    }

    #[test]
    fn expiry_is_required_and_has_sixty_seconds_of_leeway() {
        assert_eq!(verify(&hs256(json!({"sub": "u"})), &open(), now()), Err("token has no expiry"));
        assert!(verify(&hs256(json!({"sub": "u", "exp": NOW - 59})), &open(), now()).is_ok());
        assert_eq!(verify(&hs256(json!({"sub": "u", "exp": NOW - 61})), &open(), now()), Err("token expired"));
    }

    #[test]
    fn a_kept_token_is_valid_until_its_expiry_and_the_leeway_as_before() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let t = hs256(json!({"sub": "kept-1", "exp": NOW + 100}));
        assert_eq!(verify_kept(&t, &open(), now()), Ok("kept-1".to_string()));
        assert_eq!(verify_kept(&t, &open(), at(NOW + 160)), Ok("kept-1".to_string()), "kept: exp + leeway");
        assert_eq!(verify_kept(&t, &open(), at(NOW + 161)), Err("token expired"), "never served past its expiry");
        assert_eq!(verify(&t, &open(), at(NOW + 161)), Err("token expired"), "the same verdict as verify");
        // Refused tokens are not kept: a token not yet valid is valid once its time comes.
        let soon = hs256(json!({"sub": "kept-2", "exp": NOW + 3600, "nbf": NOW + 120}));
        assert_eq!(verify_kept(&soon, &open(), now()), Err("token not yet valid"));
        assert_eq!(verify_kept(&soon, &open(), at(NOW + 60)), Ok("kept-2".to_string()));
        // Only the very same token finds an entry: one with another signature is checked.
        let forged = format!("{}AAAA", &t[..t.len() - 4]);
        assert_eq!(verify_kept(&forged, &open(), now()), Err("invalid token signature"));
    }

    #[test]
    fn not_before_is_honoured_with_leeway() {
        let soon = hs256(json!({"sub": "u", "exp": NOW + 3600, "nbf": NOW + 59}));
        assert!(verify(&soon, &open(), now()).is_ok());
        let later = hs256(json!({"sub": "u", "exp": NOW + 3600, "nbf": NOW + 61}));
        assert_eq!(verify(&later, &open(), now()), Err("token not yet valid"));
    }

    #[test]
    fn the_algorithm_is_pinned() {
        let claims = json!({"sub": "admin", "exp": NOW + 3600});
        let none = format!(
            "{}.{}.",
            B64.encode(json!({"alg": "none"}).to_string()),
            B64.encode(claims.to_string())
        );
        assert_eq!(verify(&none, &open(), now()), Err("unsupported token algorithm"));
        let hs512 = sign(json!({"alg": "HS512"}), claims.clone(), SECRET);
        assert_eq!(verify(&hs512, &open(), now()), Err("unsupported token algorithm"));
        let lower = sign(json!({"alg": "hs256"}), claims, SECRET);
        assert_eq!(verify(&lower, &open(), now()), Err("unsupported token algorithm"));
    }

    #[test]
    fn signatures_are_checked() {
        let forged = sign(json!({"alg": "HS256"}), json!({"sub": "u", "exp": NOW + 3600}), b"another-secret-xyz");
        assert_eq!(verify(&forged, &open(), now()), Err("invalid token signature"));
        let good = hs256(json!({"sub": "u", "exp": NOW + 3600}));
        let (head, _) = good.rsplit_once('.').unwrap();
        let tampered_claims = format!(
            "{}.{}.{}",
            head.split('.').next().unwrap(),
            B64.encode(json!({"sub": "admin", "exp": NOW + 3600}).to_string()),
            good.rsplit('.').next().unwrap()
        );
        assert_eq!(verify(&tampered_claims, &open(), now()), Err("invalid token signature"));
    }

    #[test]
    fn critical_header_extensions_are_rejected() {
        let claims = json!({"sub": "u", "exp": NOW + 3600});
        for header in [
            json!({"alg": "HS256", "crit": ["exp-policy"], "exp-policy": "strict"}),
            json!({"alg": "HS256", "typ": "JWT", "crit": ["b64"], "b64": false}),
            json!({"alg": "HS256", "crit": []}),
            json!({"alg": "HS256", "crit": null}),
            json!({"alg": "HS256", "crit": "exp"}),
        ] {
            assert_eq!(verify(&sign(header.clone(), claims.clone(), SECRET), &open(), now()), Err("unsupported critical token header"), "{header}");
        }
        // Other header parameters are ignored, as before.
        let kid = sign(json!({"alg": "HS256", "typ": "JWT", "kid": "k1", "jku": "https://evil.example/jwks"}), claims, SECRET);
        assert!(verify(&kid, &open(), now()).is_ok());
    }

    #[test]
    fn garbage_is_malformed() {
        for t in ["", "abc", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.!!!.sig"] {
            assert!(verify(t, &open(), now()).is_err(), "{t}");
        }
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let strict = JwtSettings { secret: SECRET, issuer: Some("soundhash"), audience: Some("monetization") };
        let ok = hs256(json!({"sub": "u", "exp": NOW + 60, "iss": "soundhash", "aud": "monetization"}));
        assert!(verify(&ok, &strict, now()).is_ok());
        let list = hs256(json!({"sub": "u", "exp": NOW + 60, "iss": "soundhash", "aud": ["x", "monetization"]}));
        assert!(verify(&list, &strict, now()).is_ok());
        let wrong_iss = hs256(json!({"sub": "u", "exp": NOW + 60, "iss": "evil", "aud": "monetization"}));
        assert_eq!(verify(&wrong_iss, &strict, now()), Err("token issuer not accepted"));
        let no_aud = hs256(json!({"sub": "u", "exp": NOW + 60, "iss": "soundhash"}));
        assert_eq!(verify(&no_aud, &strict, now()), Err("token audience not accepted"));
        // Unconfigured checks accept anything.
        assert!(verify(&wrong_iss, &open(), now()).is_ok());
    }

    #[test]
    fn subjects_must_be_plausible_user_ids() {
        for sub in [json!(""), json!("has space"), json!("x".repeat(129))] {
            let t = hs256(json!({"sub": sub, "exp": NOW + 60}));
            assert_eq!(verify(&t, &open(), now()), Err("token subject missing or invalid"), "{sub}");
        }
        assert!(verify(&hs256(json!({"sub": 42, "exp": NOW + 60})), &open(), now()).is_err());
        assert_eq!(verify(&hs256(json!({"exp": NOW + 60})), &open(), now()), Err("token subject missing or invalid"));
    }

    proptest::proptest! {
        /// Arbitrary tokens and headers are rejected, never panicked on.
        #[test]
        fn arbitrary_tokens_are_rejected(token in "[A-Za-z0-9_.=+/ -]{0,120}") {
            proptest::prop_assert!(verify(&token, &open(), now()).is_err());
            let header = format!("Bearer {token}");
            let _ = bearer_token(Some(&header));
        }

        /// Any claims signed with the right key either verify to their `sub` or fail cleanly.
        #[test]
        fn signed_claims_verify_exactly_when_valid(exp in (NOW - 200)..(NOW + 200), sub in "[ -~]{0,10}") {
            let token = hs256(json!({"sub": sub, "exp": exp}));
            let valid = exp + LEEWAY_SECONDS >= NOW && valid_user_id(&sub);
            proptest::prop_assert_eq!(verify(&token, &open(), now()).is_ok(), valid);
        }
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert!(bearer_token(None).is_err());
        assert!(bearer_token(Some("Basic abc")).is_err());
        assert!(bearer_token(Some("Bearer")).is_err());
        assert!(bearer_token(Some("Bearer ")).is_err());
    }
}
