//! URLs the service redirects to or hands out. A redirect target is never taken from a request:
//! it is a stored or configured URL that passed `landing_url`.
//!
//! Validation is an allow-list, written here rather than with the `url` crate: that crate brings
//! IDNA/Unicode tables that doubled the Worker's upload size, and a landing page needs none of
//! what it parses. Accepted: `scheme://host[:port][/path][?query][#fragment]` with a DNS or IPv4
//! host (internationalised names in their `xn--` form), and a path/query/fragment of visible
//! ASCII where anything else is percent-encoded.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MAX_URL_LEN: usize = 2_048;

/// The parts of an absolute URL that passed the allow-list.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    /// Path, query and fragment, as given (may be empty).
    pub rest: &'a str,
}

fn parse(text: &str) -> Result<Parts<'_>, &'static str> {
    const SHAPE: &str = "must be an absolute URL like https://example.com/path";
    if text.chars().count() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let (scheme, after) = text.split_once("://").ok_or(SHAPE)?;
    let scheme_ok = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase());
    if !scheme_ok {
        return Err(SHAPE);
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.contains('@') {
        return Err("must not contain credentials");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse::<u16>().ok().filter(|p| *p > 0 && !port.starts_with('0')).ok_or(SHAPE)?;
            (host, Some(port))
        }
        None => (authority, None),
    };
    if !valid_host(host) {
        return Err("must name a valid host");
    }
    if !rest.is_empty() && !rest.starts_with(['/', '?', '#']) {
        return Err(SHAPE);
    }
    if !valid_rest(rest) {
        return Err("may contain only visible ASCII; percent-encode anything else");
    }
    Ok(Parts { scheme, host, port, rest })
}

/// DNS names (letters, digits, hyphens; labels of 1–63, not starting or ending with a hyphen)
/// or dotted IPv4 addresses.
fn valid_host(host: &str) -> bool {
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    !host.is_empty() && host.len() <= 253 && labels_ok
}

fn valid_rest(rest: &str) -> bool {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' => return false,
            b if b.is_ascii_graphic() => i += 1,
            _ => return false,
        }
    }
    true
}

/// A public web address (a DNS name with a dot, or an IPv4 address).
fn public_host(host: &str) -> bool {
    host.contains('.') && !host.ends_with('.')
}

/// A redirect target: an absolute `https` URL with a public host and no credentials (this also
/// rules out `javascript:`, `data:` and scheme-relative `//host` forms).
pub fn landing_url(text: &str) -> Result<Parts<'_>, &'static str> {
    let parts = parse(text)?;
    if parts.scheme != "https" {
        return Err("must be an https URL");
    }
    if !public_host(parts.host) {
        return Err("must name a public host");
    }
    Ok(parts)
}

/// A web address given by a user (an affiliate's website): http or https, public host.
pub fn web_url(text: &str) -> Result<Parts<'_>, &'static str> {
    let parts = parse(text)?;
    if !matches!(parts.scheme, "https" | "http") || !public_host(parts.host) {
        return Err("must be an absolute http(s) URL");
    }
    Ok(parts)
}

/// The service's own public origin (`http` and local hosts allowed, for development).
pub fn base_url(text: &str) -> Result<Parts<'_>, &'static str> {
    let parts = parse(text)?;
    if !matches!(parts.scheme, "https" | "http") {
        return Err("must be an absolute http(s) URL");
    }
    Ok(parts)
}

/// `target` with `key=value` added to its query (other parameters and the fragment kept).
pub fn with_param(target: &str, key: &str, value: &str) -> Result<String, &'static str> {
    landing_url(target)?;
    let (head, fragment) = match target.find('#') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let separator = match head.find('?') {
        None => "?",
        Some(_) if head.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    let pair: String = form_urlencoded::Serializer::new(String::new()).append_pair(key, value).finish();
    Ok(format!("{head}{separator}{pair}{fragment}"))
}

/// The query parameters of a request URL (`a=1&b=x%20y`), decoded.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// A purpose-bound key derived from a secret (HMAC-SHA256(secret, purpose)).
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The name of an affiliate link's click counter (its `LinkClicks` object): `aff:CODE`.
pub fn affiliate_link(code: &str) -> String {
    format!("aff:{code}")
}

/// The name of a referral link's click counter: `ref:CODE`.
pub fn referral_link(code: &str) -> String {
    format!("ref:{code}")
}

/// The name of a campaign link's click counter: `cmp:CODE`.
pub fn campaign_link(code: &str) -> String {
    format!("cmp:{code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_counters_keep_their_names() {
        // The names of stored objects: a change would orphan every link's counts.
        assert_eq!(affiliate_link("AFF23456789"), "aff:AFF23456789");
        assert_eq!(referral_link("REF23456789"), "ref:REF23456789");
        assert_eq!(campaign_link("SPRING26"), "cmp:SPRING26");
    }
    use proptest::prelude::*;

    #[test]
    fn landing_urls_must_be_plain_https() {
        for good in [
            "https://soundhash.io",
            "https://soundhash.io/",
            "https://soundhash.io/pricing?plan=pro&x=%C3%A9#top",
            "https://www.xn--mnchen-3ya.de:8443/a/b",
            "https://203.0.113.7/landing",
        ] {
            assert!(landing_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://soundhash.io/",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example/",
            "/relative/path",
            "https://user:pass@soundhash.io/",
            "https://user@soundhash.io/",
            "https://soundhash.io@evil.example/",
            "HTTPS://soundhash.io/",
            "https://localhost/",
            "https://soundhash.io:0/",
            "https://soundhash.io:99999/",
            "https://soundhash.io:/",
            "https://sound hash.io/",
            "https://soundhash.io/a b",
            "https://soundhash.io/\u{e9}",
            "https://soundhash.io/%zz",
            "https://soundhash.io/<script>",
            "https://soundhash.io\\@evil.example/",
            "https://-bad.io/",
            "https://soundhash.io./",
            "https://soundhash..io/",
            "https://soundhash.io/\n",
            "ftp://soundhash.io/",
            "https://",
            "",
        ] {
            assert!(landing_url(bad).is_err(), "{bad:?}");
        }
        assert!(landing_url(&format!("https://a.io/{}", "x".repeat(2_100))).is_err());
    }

    #[test]
    fn params_are_added_and_existing_ones_kept() {
        let with = |t: &str, k: &str, v: &str| with_param(t, k, v).unwrap();
        assert_eq!(with("https://soundhash.io/", "aff", "AFF23456789"), "https://soundhash.io/?aff=AFF23456789");
        assert_eq!(with("https://soundhash.io", "aff", "X"), "https://soundhash.io?aff=X");
        assert_eq!(with("https://soundhash.io/p?utm=x#top", "ref", "R"), "https://soundhash.io/p?utm=x&ref=R#top");
        assert_eq!(with("https://soundhash.io/p?", "ref", "R"), "https://soundhash.io/p?ref=R");
        assert_eq!(with("https://soundhash.io/p?a=1&", "ref", "R"), "https://soundhash.io/p?a=1&ref=R");
        assert_eq!(with("https://soundhash.io/p#frag?x", "promo", "a b&c"), "https://soundhash.io/p?promo=a+b%26c#frag?x");
        assert!(with_param("javascript:alert(1)", "a", "b").is_err());
    }

    #[test]
    fn other_url_kinds() {
        assert!(base_url("http://127.0.0.1:8787").is_ok());
        assert!(base_url("http://localhost:8787").is_ok());
        assert!(base_url("https://monetization.soundhash.io").is_ok());
        assert!(base_url("soundhash.io").is_err());
        assert!(web_url("http://my-blog.example.com/about").is_ok());
        assert!(web_url("ftp://files.example.com").is_err());
        assert!(web_url("http://localhost/").is_err());
    }

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            query_pairs("https://x.io/p?limit=5&cursor=a%2Bb&q=x+y#frag"),
            vec![("limit".into(), "5".into()), ("cursor".into(), "a+b".into()), ("q".into(), "x y".into())]
        );
        assert!(query_pairs("https://x.io/p").is_empty());
    }

    #[test]
    fn derived_keys_depend_on_purpose() {
        assert_ne!(derive_key(b"k", "a"), derive_key(b"k", "b"));
        assert_eq!(derive_key(b"k", "a").len(), 32);
    }

    proptest! {
        /// Whatever is accepted has no way to smuggle another host or scheme: no whitespace,
        /// no backslash, no '@' before the path, and it starts with https://host.
        #[test]
        fn accepted_urls_are_tame(text in "[ -~]{0,60}") {
            let candidate = format!("https://{text}");
            if let Ok(parts) = landing_url(&candidate) {
                prop_assert!(!candidate.contains(' ') && !candidate.contains('\\'));
                prop_assert!(!parts.host.contains('@') && !parts.host.is_empty());
                let origin = format!("https://{}", parts.host);
                prop_assert!(candidate.starts_with(&origin));
                let redirected = with_param(&candidate, "aff", "AFF23456789").unwrap();
                prop_assert!(landing_url(&redirected).is_ok());
            }
        }
    }
}
