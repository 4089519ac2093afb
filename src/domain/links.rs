//! URLs the service redirects to or hands out. A redirect target is never taken from a request:
//! it is a stored or configured URL that passed `landing_url`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

/// A redirect target: an absolute `https` URL with a host and no credentials (this also rules out
/// `javascript:`, `data:` and scheme-relative `//host` forms).
pub fn landing_url(text: &str) -> Result<Url, &'static str> {
    let url = Url::parse(text.trim()).map_err(|_| "must be an absolute https URL")?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an absolute https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials");
    }
    if text.len() > 2_048 {
        return Err("must be at most 2048 characters");
    }
    Ok(url)
}

/// The service's own public origin (`http` allowed, for local development).
pub fn base_url(text: &str) -> Result<Url, &'static str> {
    let url = Url::parse(text.trim()).map_err(|_| "must be an absolute http(s) URL")?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an absolute http(s) URL");
    }
    Ok(url)
}

/// `target` with `key=value` added to its query (other parameters kept).
pub fn with_param(target: &str, key: &str, value: &str) -> Result<String, &'static str> {
    let mut url = landing_url(target)?;
    url.query_pairs_mut().append_pair(key, value);
    Ok(url.into())
}

/// A purpose-bound key derived from a secret (HMAC-SHA256(secret, purpose)).
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_urls_must_be_plain_https() {
        assert!(landing_url("https://soundhash.io/pricing?plan=pro").is_ok());
        for bad in [
            "http://soundhash.io/",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example/",
            "/relative/path",
            "https://user:pass@soundhash.io/",
            "https://user@soundhash.io/",
            "ftp://soundhash.io/",
            "",
        ] {
            assert!(landing_url(bad).is_err(), "{bad}");
        }
        assert!(landing_url(&format!("https://a.io/{}", "x".repeat(2_100))).is_err());
    }

    #[test]
    fn params_are_added_and_existing_ones_kept() {
        assert_eq!(with_param("https://soundhash.io/", "aff", "AFF23456789").unwrap(), "https://soundhash.io/?aff=AFF23456789");
        assert_eq!(
            with_param("https://soundhash.io/p?utm=x#top", "ref", "REF2345678A").unwrap(),
            "https://soundhash.io/p?utm=x&ref=REF2345678A#top"
        );
    }

    #[test]
    fn base_urls_allow_http() {
        assert!(base_url("http://127.0.0.1:8787").is_ok());
        assert!(base_url("https://monetization.soundhash.io").is_ok());
        assert!(base_url("soundhash.io").is_err());
    }

    #[test]
    fn derived_keys_depend_on_purpose() {
        assert_ne!(derive_key(b"k", "a"), derive_key(b"k", "b"));
        assert_eq!(derive_key(b"k", "a").len(), 32);
    }
}
