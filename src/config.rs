//! Runtime configuration from the Worker's vars and secrets (see README "Configuration").
//!
//! Parsing is pure (`Config::from_lookup`) so it is tested natively; `http` supplies the lookup.

/// Defaults of every var, in one place. The README documents each one.
pub mod defaults {
    pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
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
    /// Builds the configuration from a name → value lookup (the Worker's `env`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let api_secret_key = lookup("API_SECRET_KEY")
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| ConfigError("secret API_SECRET_KEY is missing or shorter than 16 bytes".into()))?
            .into_bytes();
        Ok(Config {
            api_secret_key,
            jwt_issuer: non_empty(lookup("JWT_ISSUER")),
            jwt_audience: non_empty(lookup("JWT_AUDIENCE")),
            idempotency_ttl_seconds: positive_int(
                "IDEMPOTENCY_TTL_SECONDS",
                lookup("IDEMPOTENCY_TTL_SECONDS"),
                defaults::IDEMPOTENCY_TTL_SECONDS,
            )?,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A positive integer var; unset or empty means the default.
pub fn positive_int(name: &str, value: Option<String>, default: i64) -> Result<i64, ConfigError> {
    match non_empty(value) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError(format!("var {name} must be a positive integer, got {text:?}"))),
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

    #[test]
    fn defaults_apply_when_vars_are_unset_or_empty() {
        let cfg = Config::from_lookup(lookup(&[
            ("API_SECRET_KEY", "0123456789abcdef"),
            ("JWT_ISSUER", ""),
            ("IDEMPOTENCY_TTL_SECONDS", " "),
        ]))
        .unwrap();
        assert_eq!(cfg.jwt_issuer, None);
        assert_eq!(cfg.jwt_audience, None);
        assert_eq!(cfg.idempotency_ttl_seconds, 86_400);
    }

    #[test]
    fn set_vars_are_used() {
        let cfg = Config::from_lookup(lookup(&[
            ("API_SECRET_KEY", "0123456789abcdef"),
            ("JWT_ISSUER", "soundhash"),
            ("JWT_AUDIENCE", "monetization"),
            ("IDEMPOTENCY_TTL_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(cfg.jwt_issuer.as_deref(), Some("soundhash"));
        assert_eq!(cfg.jwt_audience.as_deref(), Some("monetization"));
        assert_eq!(cfg.idempotency_ttl_seconds, 60);
    }

    #[test]
    fn missing_or_short_secret_and_bad_numbers_are_errors() {
        assert!(Config::from_lookup(lookup(&[])).is_err());
        assert!(Config::from_lookup(lookup(&[("API_SECRET_KEY", "short")])).is_err());
        let err = Config::from_lookup(lookup(&[
            ("API_SECRET_KEY", "0123456789abcdef"),
            ("IDEMPOTENCY_TTL_SECONDS", "-5"),
        ]))
        .unwrap_err();
        assert!(err.0.contains("IDEMPOTENCY_TTL_SECONDS"));
        assert!(positive_int("X", Some("abc".into()), 1).is_err());
        assert!(positive_int("X", Some("0".into()), 1).is_err());
    }
}
