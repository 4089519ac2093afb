//! Runtime configuration from the Worker's vars and secrets (see README "Configuration").
//!
//! Parsing is pure (`Config::from_lookup`) so it is tested natively; `http` supplies the lookup.

use crate::domain::affiliates;
use crate::domain::campaigns::MAX_CREDITS;
use crate::domain::links;
use crate::domain::money::MAX_CENTS;
use crate::domain::MAX_EXACT_INT;

/// Defaults of every var, in one place. The README documents each one.
pub mod defaults {
    pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
    pub const AFFILIATE_COMMISSION_BPS: i64 = 2_000;
    pub const AFFILIATE_COMMISSION_MONTHS: i64 = 3;
    pub const COMMISSION_HOLD_DAYS: i64 = 30;
    pub const MIN_PAYOUT_CENTS: i64 = 5_000;
    pub const REFERRAL_BONUS_CREDITS: i64 = 1_000;
    pub const REFERRAL_EXPIRY_DAYS: i64 = 30;
    pub const REFERRAL_MIN_PAYMENT_CENTS: i64 = 500;
    pub const AFFILIATE_LANDING_URL: &str = "https://soundhash.io/";
    pub const REFERRAL_LANDING_URL: &str = "https://soundhash.io/signup";
    pub const PUBLIC_BASE_URL: &str = "https://monetization.soundhash.io";
    pub const BILLING_CURRENCY: &str = "usd";
    pub const LINK_CACHE_SECONDS: i64 = 15;
    pub const ACTIVITY_MAX_AGE_DAYS: i64 = 35;
    pub const DAILY_BOARD_RETENTION_DAYS: i64 = 90;
    pub const WEEKLY_BOARD_RETENTION_WEEKS: i64 = 104;
    pub const USER_CACHE_SECONDS: i64 = 10;
    pub const CREATOR_SHARE_BPS: i64 = 7_000;
    pub const MARKETPLACE_FEE_BPS: i64 = 1_500;
    pub const DOWNLOAD_LINK_DAYS: i64 = 30;
    pub const MARKETPLACE_MAX_FILE_BYTES: i64 = 100 * 1024 * 1024;
}

/// Which requests get the one-line structured access log (var `REQUEST_LOG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestLog {
    /// Every request: for debugging.
    All,
    /// Every mutation (POST, PUT, PATCH, DELETE) and every response of 400 and above, so money
    /// movements and failures stay auditable; successful reads and redirects (above all the edge
    /// links, already counted by their Durable Objects) are not logged line by line. The default.
    #[default]
    Mutations,
    /// Only responses of 400 and above.
    Errors,
}

impl RequestLog {
    /// Whether a request (`read`: GET or HEAD) answered with `status` is logged.
    pub fn logs(self, read: bool, status: u16) -> bool {
        match self {
            RequestLog::All => true,
            RequestLog::Mutations => !read || status >= 400,
            RequestLog::Errors => status >= 400,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// HS256 secret shared with the main SoundHash API (secret `API_SECRET_KEY`).
    pub api_secret_key: Vec<u8>,
    /// Required `iss` claim when set (var `JWT_ISSUER`; empty means unchecked).
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim when set (var `JWT_AUDIENCE`; empty means unchecked).
    pub jwt_audience: Option<String>,
    /// How long an `Idempotency-Key` is remembered (var `IDEMPOTENCY_TTL_SECONDS`).
    pub idempotency_ttl_seconds: i64,
    /// Default commission of new affiliates (`AFFILIATE_COMMISSION_BPS`).
    pub affiliate_commission_bps: u32,
    /// Default commission period of new affiliates, in months (`AFFILIATE_COMMISSION_MONTHS`).
    pub affiliate_commission_months: u32,
    /// Days a commission is held before it can be paid out (`COMMISSION_HOLD_DAYS`).
    pub commission_hold_days: i64,
    /// Smallest payout (`MIN_PAYOUT_CENTS`).
    pub min_payout_cents: i64,
    /// Credits a referrer earns per converted referral (`REFERRAL_BONUS_CREDITS`).
    pub referral_bonus_credits: i64,
    /// Days a referral may take to convert (`REFERRAL_EXPIRY_DAYS`).
    pub referral_expiry_days: i64,
    /// The smallest payment that converts a referral (`REFERRAL_MIN_PAYMENT_CENTS`).
    pub referral_min_payment_cents: i64,
    /// Where `/a/{code}` sends visitors (`AFFILIATE_LANDING_URL`, https).
    pub affiliate_landing_url: String,
    /// Where `/r/{code}` sends visitors (`REFERRAL_LANDING_URL`, https).
    pub referral_landing_url: String,
    /// This service's public origin, for the links it hands out (`PUBLIC_BASE_URL`).
    pub public_base_url: String,
    /// The one currency conversions are accepted in (`BILLING_CURRENCY`, ISO 4217, lower case).
    pub billing_currency: String,
    /// How long an isolate trusts what it read about a link's code on the click path
    /// (`LINK_CACHE_SECONDS`; 0 reads D1 on every click).
    pub link_cache_seconds: i64,
    /// How old a reported activity event may be (`ACTIVITY_MAX_AGE_DAYS`); event ids are
    /// remembered that long, so a re-sent event never counts twice.
    pub activity_max_age_days: i64,
    /// How long daily and weekly leaderboards are kept (`DAILY_BOARD_RETENTION_DAYS`,
    /// `WEEKLY_BOARD_RETENTION_WEEKS`); the cron deletes older ones.
    pub board_retention: crate::domain::rewards::Retention,
    /// Which requests are logged (`REQUEST_LOG`: `mutations`, `all` or `errors`).
    pub request_log: RequestLog,
    /// How long an isolate trusts what it read about a user (active, admin) on `User` routes
    /// (`USER_CACHE_SECONDS`; 0 reads D1 on every request). `Admin` routes always read D1.
    pub user_cache_seconds: i64,
    /// The creator's share of revenue where no terms of theirs are in force (`CREATOR_SHARE_BPS`).
    pub creator_share_bps: u32,
    /// The platform's fee on a marketplace sale where an admin set no rate for the item
    /// (`MARKETPLACE_FEE_BPS`).
    pub marketplace_fee_bps: u32,
    /// The largest file a seller may upload (`MARKETPLACE_MAX_FILE_BYTES`; R2 takes up to 5 GiB
    /// in one upload, the Workers request body limit is 100 MB on the free and pro plans; at
    /// most 4 GiB − 1 here).
    pub marketplace_max_file_bytes: u64,
    /// How long a buyer's download link is valid from the purchase (`DOWNLOAD_LINK_DAYS`).
    pub download_link_days: i64,
    /// Key of the download tokens' HMAC (secret `DOWNLOAD_SIGNING_SECRET`; derived from
    /// `API_SECRET_KEY` when unset).
    pub download_signing_secret: Vec<u8>,
    /// Stripe's secret API key (secret `STRIPE_SECRET_KEY`): with it, a paid marketplace order
    /// opens a Stripe Checkout Session; without, orders wait for
    /// `POST /admin/marketplace/orders/{id}/complete`.
    pub stripe_secret_key: Option<String>,
    /// Where Stripe's API is (`STRIPE_API_BASE`, `https://api.stripe.com`; tests point it at a
    /// local listener).
    pub stripe_api_base: String,
    /// Signing secret of the Stripe webhook endpoint (secret `STRIPE_WEBHOOK_SECRET`); without
    /// it the webhook answers 503.
    pub stripe_webhook_secret: Option<Vec<u8>>,
    /// Key of the visitor pseudonyms of click counting (secret `VISITOR_HASH_SECRET`; derived
    /// from `API_SECRET_KEY` when unset).
    pub visitor_hash_secret: Vec<u8>,
}

/// A var or secret that is missing or malformed. Shown only in logs, never to clients.
#[derive(Debug, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error: {}", self.0)
    }
}

impl Config {
    /// From the Worker's vars and secrets.
    pub fn from_env(env: &worker::Env) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
    }

    /// Builds the configuration from a name → value lookup (the Worker's `env`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        use defaults as d;
        let api_secret_key = lookup("API_SECRET_KEY")
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| ConfigError("secret API_SECRET_KEY is missing or shorter than 16 bytes".into()))?
            .into_bytes();
        // Durations are bounded so that every instant computed from them stays a date D1 and
        // the API can hold (a hold of 2^53 days would overflow and wrap).
        let int = |name: &str, default: i64, min: i64, max: i64| bounded_int(name, lookup(name), default, min, max);
        let rule = |name: &str, value: i64, check: fn(i64) -> Result<u32, &'static str>| {
            check(value).map_err(|e| ConfigError(format!("var {name}: {e}")))
        };
        let landing = |name: &str, default: &str| {
            let url = non_empty(lookup(name)).unwrap_or_else(|| default.to_owned());
            match links::landing_url(&url) {
                Ok(_) => Ok(url.clone()),
                Err(e) => Err(ConfigError(format!("var {name}: {e}"))),
            }
        };
        let visitor_hash_secret = match non_empty(lookup("VISITOR_HASH_SECRET")) {
            Some(secret) => secret.into_bytes(),
            None => links::derive_key(&api_secret_key, "visitor-hash"),
        };
        let download_signing_secret = match non_empty(lookup("DOWNLOAD_SIGNING_SECRET")) {
            Some(secret) => secret.into_bytes(),
            None => links::derive_key(&api_secret_key, "download-token"),
        };
        let stripe_api_base = non_empty(lookup("STRIPE_API_BASE")).unwrap_or_else(|| "https://api.stripe.com".to_owned());
        links::base_url(&stripe_api_base).map_err(|e| ConfigError(format!("var STRIPE_API_BASE: {e}")))?;
        let public_base_url = non_empty(lookup("PUBLIC_BASE_URL")).unwrap_or_else(|| d::PUBLIC_BASE_URL.to_owned());
        links::base_url(&public_base_url).map_err(|e| ConfigError(format!("var PUBLIC_BASE_URL: {e}")))?;
        let billing_currency = non_empty(lookup("BILLING_CURRENCY")).unwrap_or_else(|| d::BILLING_CURRENCY.to_owned());
        if billing_currency.len() != 3 || !billing_currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(ConfigError("var BILLING_CURRENCY must be a lower-case ISO 4217 code".into()));
        }
        Ok(Config {
            jwt_issuer: non_empty(lookup("JWT_ISSUER")),
            jwt_audience: non_empty(lookup("JWT_AUDIENCE")),
            idempotency_ttl_seconds: int("IDEMPOTENCY_TTL_SECONDS", d::IDEMPOTENCY_TTL_SECONDS, 1, MAX_SECONDS)?,
            affiliate_commission_bps: rule(
                "AFFILIATE_COMMISSION_BPS",
                int("AFFILIATE_COMMISSION_BPS", d::AFFILIATE_COMMISSION_BPS, 0, EXACT)?,
                affiliates::commission_rate,
            )?,
            affiliate_commission_months: rule(
                "AFFILIATE_COMMISSION_MONTHS",
                int("AFFILIATE_COMMISSION_MONTHS", d::AFFILIATE_COMMISSION_MONTHS, 1, EXACT)?,
                affiliates::commission_months,
            )?,
            commission_hold_days: int("COMMISSION_HOLD_DAYS", d::COMMISSION_HOLD_DAYS, 0, MAX_DAYS)?,
            min_payout_cents: int("MIN_PAYOUT_CENTS", d::MIN_PAYOUT_CENTS, 1, MAX_CENTS)?,
            referral_bonus_credits: int("REFERRAL_BONUS_CREDITS", d::REFERRAL_BONUS_CREDITS, 0, MAX_CREDITS)?,
            referral_expiry_days: int("REFERRAL_EXPIRY_DAYS", d::REFERRAL_EXPIRY_DAYS, 1, MAX_DAYS)?,
            referral_min_payment_cents: int("REFERRAL_MIN_PAYMENT_CENTS", d::REFERRAL_MIN_PAYMENT_CENTS, 0, MAX_CENTS)?,
            affiliate_landing_url: landing("AFFILIATE_LANDING_URL", d::AFFILIATE_LANDING_URL)?,
            referral_landing_url: landing("REFERRAL_LANDING_URL", d::REFERRAL_LANDING_URL)?,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            billing_currency,
            link_cache_seconds: int("LINK_CACHE_SECONDS", d::LINK_CACHE_SECONDS, 0, MAX_SECONDS)?,
            activity_max_age_days: int("ACTIVITY_MAX_AGE_DAYS", d::ACTIVITY_MAX_AGE_DAYS, 1, MAX_DAYS)?,
            board_retention: crate::domain::rewards::Retention {
                daily_days: int("DAILY_BOARD_RETENTION_DAYS", d::DAILY_BOARD_RETENTION_DAYS, 1, MAX_DAYS)?,
                weekly_weeks: int("WEEKLY_BOARD_RETENTION_WEEKS", d::WEEKLY_BOARD_RETENTION_WEEKS, 1, MAX_DAYS / 7)?,
            },
            request_log: match non_empty(lookup("REQUEST_LOG")).as_deref() {
                None | Some("mutations") => RequestLog::Mutations,
                Some("all") => RequestLog::All,
                Some("errors") => RequestLog::Errors,
                Some(other) => {
                    return Err(ConfigError(format!("var REQUEST_LOG must be mutations, all or errors, got {other:?}")))
                }
            },
            user_cache_seconds: int("USER_CACHE_SECONDS", d::USER_CACHE_SECONDS, 0, MAX_SECONDS)?,
            creator_share_bps: rule(
                "CREATOR_SHARE_BPS",
                int("CREATOR_SHARE_BPS", d::CREATOR_SHARE_BPS, 0, EXACT)?,
                crate::domain::revenue::share_bps,
            )?,
            marketplace_fee_bps: rule(
                "MARKETPLACE_FEE_BPS",
                int("MARKETPLACE_FEE_BPS", d::MARKETPLACE_FEE_BPS, 0, EXACT)?,
                crate::domain::marketplace::fee_rate,
            )?,
            // (Up to 4 GiB − 1: a size wasm32 counts in a usize.)
            marketplace_max_file_bytes: int("MARKETPLACE_MAX_FILE_BYTES", d::MARKETPLACE_MAX_FILE_BYTES, 1, u32::MAX.into())? as u64,
            download_link_days: int("DOWNLOAD_LINK_DAYS", d::DOWNLOAD_LINK_DAYS, 1, MAX_DAYS)?,
            download_signing_secret,
            stripe_secret_key: non_empty(lookup("STRIPE_SECRET_KEY")),
            stripe_api_base: stripe_api_base.trim_end_matches('/').to_owned(),
            stripe_webhook_secret: non_empty(lookup("STRIPE_WEBHOOK_SECRET")).map(String::into_bytes),
            visitor_hash_secret,
            api_secret_key,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The longest duration a var may set: 100 years, in days and in seconds.
pub const MAX_DAYS: i64 = 36_500;
pub const MAX_SECONDS: i64 = MAX_DAYS * 86_400;
/// The bound of any other integer var (rates and months have their domain rules besides).
const EXACT: i64 = MAX_EXACT_INT as i64;

/// An integer var from `min` to `max`; unset or empty means the default.
pub fn bounded_int(name: &str, value: Option<String>, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
    match non_empty(value) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError(format!("var {name} must be an integer from {min} to {max}, got {text:?}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const KEY: (&str, &str) = ("API_SECRET_KEY", "0123456789abcdef");

    #[test]
    fn defaults_apply_when_vars_are_unset_or_empty() {
        let cfg = Config::from_lookup(lookup(&[KEY, ("JWT_ISSUER", ""), ("IDEMPOTENCY_TTL_SECONDS", " ")])).unwrap();
        assert_eq!(cfg.jwt_issuer, None);
        assert_eq!(cfg.jwt_audience, None);
        assert_eq!(cfg.idempotency_ttl_seconds, 86_400);
        assert_eq!(cfg.affiliate_commission_bps, 2_000);
        assert_eq!(cfg.affiliate_commission_months, 3);
        assert_eq!(cfg.commission_hold_days, 30);
        assert_eq!(cfg.min_payout_cents, 5_000);
        assert_eq!(cfg.referral_bonus_credits, 1_000);
        assert_eq!(cfg.referral_expiry_days, 30);
        assert_eq!(cfg.referral_min_payment_cents, 500);
        assert_eq!(cfg.billing_currency, "usd");
        assert_eq!(cfg.link_cache_seconds, 15);
        assert_eq!(cfg.activity_max_age_days, 35);
        assert_eq!(cfg.board_retention, crate::domain::rewards::Retention { daily_days: 90, weekly_weeks: 104 });
        assert_eq!(cfg.request_log, RequestLog::Mutations);
        assert_eq!(cfg.user_cache_seconds, 10);
        assert_eq!(cfg.creator_share_bps, 7_000);
        assert_eq!(cfg.stripe_webhook_secret, None);
        assert_eq!(cfg.public_base_url, "https://monetization.soundhash.io");
        assert_eq!(cfg.visitor_hash_secret.len(), 32, "derived from the API key");
    }

    #[test]
    fn the_request_log_keeps_mutations_and_failures_by_default() {
        let m = RequestLog::Mutations;
        assert!(!m.logs(true, 200) && !m.logs(true, 302) && !m.logs(true, 304));
        assert!(m.logs(false, 200) && m.logs(false, 201) && m.logs(true, 404) && m.logs(true, 500));
        assert!(RequestLog::All.logs(true, 200));
        assert!(!RequestLog::Errors.logs(false, 201) && RequestLog::Errors.logs(false, 422));
    }

    #[test]
    fn set_vars_are_used() {
        let cfg = Config::from_lookup(lookup(&[
            KEY,
            ("JWT_ISSUER", "soundhash"),
            ("JWT_AUDIENCE", "monetization"),
            ("IDEMPOTENCY_TTL_SECONDS", "60"),
            ("AFFILIATE_COMMISSION_BPS", "2500"),
            ("COMMISSION_HOLD_DAYS", "0"),
            ("REFERRAL_MIN_PAYMENT_CENTS", "0"),
            ("PUBLIC_BASE_URL", "http://127.0.0.1:8787/"),
            ("AFFILIATE_LANDING_URL", "https://example.com/partners?src=x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_abc"),
        ]))
        .unwrap();
        assert_eq!(cfg.jwt_issuer.as_deref(), Some("soundhash"));
        assert_eq!(cfg.jwt_audience.as_deref(), Some("monetization"));
        assert_eq!(cfg.idempotency_ttl_seconds, 60);
        assert_eq!(cfg.affiliate_commission_bps, 2_500);
        assert_eq!(cfg.commission_hold_days, 0);
        assert_eq!(cfg.referral_min_payment_cents, 0);
        assert_eq!(cfg.public_base_url, "http://127.0.0.1:8787");
        assert_eq!(cfg.affiliate_landing_url, "https://example.com/partners?src=x");
        assert_eq!(cfg.stripe_webhook_secret.as_deref(), Some(&b"whsec_abc"[..]));
    }

    #[test]
    fn bad_values_are_errors_naming_the_var() {
        assert!(Config::from_lookup(lookup(&[])).is_err());
        assert!(Config::from_lookup(lookup(&[("API_SECRET_KEY", "short")])).is_err());
        for (name, value) in [
            ("IDEMPOTENCY_TTL_SECONDS", "-5"),
            ("IDEMPOTENCY_TTL_SECONDS", "0"),
            ("AFFILIATE_COMMISSION_BPS", "10001"),
            ("AFFILIATE_COMMISSION_MONTHS", "0"),
            ("COMMISSION_HOLD_DAYS", "-1"),
            ("REFERRAL_MIN_PAYMENT_CENTS", "-1"),
            ("MIN_PAYOUT_CENTS", "abc"),
            ("AFFILIATE_LANDING_URL", "http://example.com/"),
            ("REFERRAL_LANDING_URL", "javascript:alert(1)"),
            ("PUBLIC_BASE_URL", "example.com"),
            ("BILLING_CURRENCY", "USD"),
            ("REQUEST_LOG", "some"),
            // Durations that would carry instants past what D1 binds exactly (or wrap).
            ("IDEMPOTENCY_TTL_SECONDS", "9007199254740992"),
            ("COMMISSION_HOLD_DAYS", "36501"),
            ("REFERRAL_EXPIRY_DAYS", "106751991167300"),
            ("ACTIVITY_MAX_AGE_DAYS", "36501"),
            ("WEEKLY_BOARD_RETENTION_WEEKS", "5215"),
            ("USER_CACHE_SECONDS", "3153600001"),
            ("REFERRAL_BONUS_CREDITS", "1000000001"),
            ("MIN_PAYOUT_CENTS", "1000000000001"),
            ("CREATOR_SHARE_BPS", "10001"),
            ("CREATOR_SHARE_BPS", "-1"),
        ] {
            let err = Config::from_lookup(lookup(&[KEY, (name, value)])).unwrap_err();
            assert!(err.0.contains(name), "{name}={value}: {err}");
        }
        // The longest durations allowed are accepted.
        let longest = Config::from_lookup(lookup(&[KEY, ("COMMISSION_HOLD_DAYS", "36500"), ("IDEMPOTENCY_TTL_SECONDS", "3153600000")])).unwrap();
        assert_eq!((longest.commission_hold_days, longest.idempotency_ttl_seconds), (MAX_DAYS, MAX_SECONDS));
    }
}
