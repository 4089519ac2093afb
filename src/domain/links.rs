//! URLs the service redirects to or hands out. A redirect target is never taken from a request:
//! it is a stored or configured URL that passed `landing_url`.
//!
//! Validation is an allow-list, written here rather than with the `url` crate: that crate brings
//! IDNA/Unicode tables that doubled the Worker's upload size, and a landing page needs none of
//! what it parses. Accepted: `scheme://host[:port][/path][?query][#fragment]` with a DNS or IPv4
//! host (internationalised names in their `xn--` form), and a path/query/fragment of visible
//! ASCII where anything else is percent-encoded.
//!
//! A host that a browser reads as an IPv4 address (every host whose last label is a number:
//! `127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`, per the WHATWG URL standard) must be a valid,
//! public one: never loopback, private, link-local (the cloud metadata service at
//! 169.254.169.254), shared, unspecified, multicast, reserved or broadcast. IPv6 literals
//! (`[::1]`) are not accepted at all.

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

/// A DNS name as people name a site or a mail domain: valid labels, at least two, the last not
/// all digits (so never an IPv4 address), without a trailing dot.
pub fn dns_name(host: &str) -> bool {
    valid_host(host) && host.contains('.') && host.rsplit('.').next().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
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

/// A public web address: a DNS name with a dot, or a public IPv4 address.
fn public_host(host: &str) -> bool {
    match ipv4(host) {
        Some(Ok(address)) => public_ipv4(address),
        Some(Err(())) => false,
        None => host.contains('.') && !host.ends_with('.'),
    }
}

/// How a browser reads a host whose last label is a number (WHATWG URL, "ends in a number" and
/// the IPv4 parser): `None` for a DNS name, `Some(Err)` for an invalid address
/// (`999.999.999.999`, `1.2.3.4.5`, `08.1.1.1`), else the address. Parts are decimal, octal
/// (leading `0`) or hexadecimal (`0x`); the last part fills the remaining bytes.
fn ipv4(host: &str) -> Option<Result<u32, ()>> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or("");
    fn hex(t: &str) -> Option<&str> {
        t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))
    }
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit()) || hex(last).is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    if !numeric {
        return None;
    }
    let number = |part: &str| -> Option<u64> {
        let (digits, radix) = match hex(part) {
            Some(h) => (h, 16),
            None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
            None => (part, 10),
        };
        if digits.is_empty() {
            return (radix != 10).then_some(0); // "0x" is 0
        }
        // (At most 2^32 matters: longer digit strings are too large anyway.)
        u64::from_str_radix(digits, radix).ok()
    };
    let parts: Vec<&str> = trimmed.split('.').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return Some(Err(()));
    }
    let Some(numbers) = parts.iter().map(|p| number(p)).collect::<Option<Vec<u64>>>() else { return Some(Err(())) };
    let (last, init) = numbers.split_last().unwrap_or((&0, &[]));
    if init.iter().any(|&n| n > 255) || *last >= 1u64 << (8 * (5 - numbers.len())) {
        return Some(Err(()));
    }
    let address = init.iter().enumerate().fold(*last, |acc, (i, &n)| acc + (n << (8 * (3 - i))));
    Some(Ok(address as u32))
}

/// Whether an IPv4 address is publicly routable (none of the special-purpose blocks of
/// RFC 6890 that reach a private, local or no network; the documentation blocks are harmless
/// and allowed).
fn public_ipv4(address: u32) -> bool {
    const BLOCKED: &[(u32, u32)] = &[
        (0x0000_0000, 8),  // 0.0.0.0/8: "this network", unspecified
        (0x0A00_0000, 8),  // 10.0.0.0/8: private
        (0x6440_0000, 10), // 100.64.0.0/10: shared (carrier-grade NAT)
        (0x7F00_0000, 8),  // 127.0.0.0/8: loopback
        (0xA9FE_0000, 16), // 169.254.0.0/16: link-local (cloud metadata)
        (0xAC10_0000, 12), // 172.16.0.0/12: private
        (0xC000_0000, 24), // 192.0.0.0/24: IETF protocol assignments
        (0xC0A8_0000, 16), // 192.168.0.0/16: private
        (0xC612_0000, 15), // 198.18.0.0/15: benchmarking
        (0xE000_0000, 4),  // 224.0.0.0/4: multicast
        (0xF000_0000, 4),  // 240.0.0.0/4: reserved, and 255.255.255.255 broadcast
    ];
    !BLOCKED.iter().any(|&(network, bits)| address >> (32 - bits) == network >> (32 - bits))
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
/// The path of a URL as the runtime serializes it (`https://host:port/p/a?q#f` → `/p/a`):
/// special-scheme serialization always has a path, and a `?` or `#` inside it is escaped.
pub fn path_of(url: &str) -> &str {
    let Some(after_scheme) = url.find("://").map(|i| &url[i + 3..]) else {
        return "/";
    };
    match after_scheme.find('/') {
        Some(start) => {
            let path = &after_scheme[start..];
            &path[..path.find(['?', '#']).unwrap_or(path.len())]
        }
        None => "/",
    }
}

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
    fn the_path_of_a_serialized_url() {
        assert_eq!(path_of("https://links.soundhash.io/c/PROMO1?utm=x#top"), "/c/PROMO1");
        assert_eq!(path_of("http://127.0.0.1:8787/api/v1/monetization/me"), "/api/v1/monetization/me");
        assert_eq!(path_of("https://host"), "/");
        assert_eq!(path_of("https://host?x=1"), "/");
        assert_eq!(path_of("https://host/a%3Fb"), "/a%3Fb");
        assert_eq!(path_of("garbage"), "/");
    }

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
    fn ip_hosts_must_be_valid_public_ipv4_addresses() {
        for bad in [
            "https://169.254.169.254/latest/meta-data/",
            "https://999.999.999.999/",
            "https://256.1.1.1/",
            "https://1.2.3.4.5/",
            "https://1.2.3.256/",
            "https://1.2.65536/",
            "https://1.16777216/",
            "https://4294967296/",
            "https://08.1.1.1/",
            "https://0x.0xg.1.1/",
            "https://example.123/",
            "https://example.0x1f/",
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0X7F.0.0.1/",
            "https://0177.0.0.1/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://127.0.0.1./",
            "https://10.0.0.8/",
            "https://10.1/",
            "https://172.16.5.4/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://0/",
            "https://0.1.2.3/",
            "https://192.0.0.8/",
            "https://198.18.0.1/",
            "https://224.0.0.1/",
            "https://239.255.255.250/",
            "https://240.1.2.3/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fe80::1]/",
            "https://[2001:db8::1]/",
            "https://[::]/",
        ] {
            assert!(landing_url(bad).is_err(), "{bad}");
            assert!(web_url(&bad.replacen("https", "http", 1)).is_err(), "{bad}");
        }
        for good in [
            "https://93.184.215.14/",
            "https://8.8.8.8/",
            "https://172.15.255.255/",
            "https://172.32.0.1/",
            "https://100.63.255.255/",
            "https://100.128.0.1/",
            "https://169.253.1.1/",
            "https://198.51.100.7/",
            "https://1x.example.com/",
            "https://123.example.com/",
            "https://example.com1/",
            "https://0xcafe.example.com/",
        ] {
            assert!(landing_url(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn ipv4_hosts_are_read_as_browsers_read_them() {
        let read = |host: &str| ipv4(host).map(|r| r.map(|a| std::net::Ipv4Addr::from(a).to_string()));
        assert_eq!(read("example.com"), None);
        assert_eq!(read("127.1"), Some(Ok("127.0.0.1".into())));
        assert_eq!(read("2130706433"), Some(Ok("127.0.0.1".into())));
        assert_eq!(read("0x7f.1"), Some(Ok("127.0.0.1".into())));
        assert_eq!(read("0177.0.0.1"), Some(Ok("127.0.0.1".into())));
        assert_eq!(read("0x7f.0.0x0.01"), Some(Ok("127.0.0.1".into())));
        assert_eq!(read("192.168.0x101"), Some(Ok("192.168.1.1".into())));
        assert_eq!(read("1.2.3.4."), Some(Ok("1.2.3.4".into())));
        assert_eq!(read("0x"), Some(Ok("0.0.0.0".into())));
        assert_eq!(read("999.1.1.1"), Some(Err(())));
        assert_eq!(read("09.1.1.1"), Some(Err(())));
        assert_eq!(read("1.2.3.4.5"), Some(Err(())));
        assert_eq!(read("a.1"), Some(Err(())));
        assert_eq!(read("99999999999999999999999"), Some(Err(())));
    }

    proptest! {
        /// Every dotted-quad form of an address reads as that address, and is accepted exactly
        /// when the address is public (checked against the standard library's classification).
        #[test]
        fn dotted_quads_are_judged_by_their_address(a in proptest::num::u8::ANY, b in proptest::num::u8::ANY, c in proptest::num::u8::ANY, d in proptest::num::u8::ANY, octal in proptest::bool::ANY) {
            let ip = std::net::Ipv4Addr::new(a, b, c, d);
            let host = if octal { format!("0{a:o}.0x{b:x}.{c}.{d}") } else { ip.to_string() };
            proptest::prop_assert_eq!(ipv4(&host), Some(Ok(u32::from(ip))), "{}", host);
            let special = ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_multicast()
                || ip.is_broadcast() || a == 0 || a >= 240 || (a == 100 && (64..128).contains(&b)) || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19));
            proptest::prop_assert_eq!(landing_url(&format!("https://{host}/")).is_ok(), !special, "{}", host);
        }
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
