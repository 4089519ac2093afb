//! Click counting rules for edge links (`/a/…`, `/r/…`, `/c/…`).
//!
//! Counted: GET requests from browsers. Not counted: HEAD, requests without a user agent, and
//! user agents that contain one of `BOT_MARKERS` (crawlers, monitors, link-preview fetchers).
//! A visitor is `HMAC-SHA256(secret, day ‖ IP ‖ user agent)`: the same person counts once per
//! link and hour, the id changes every UTC day, and raw IPs are never stored.

use super::time::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Lower-case fragments of user agents that are not people clicking. Matched case-insensitively.
pub const BOT_MARKERS: &[&str] = &[
    "bot", "crawl", "spider", "slurp", "facebookexternalhit", "facebookcatalog", "embedly", "quora link preview",
    "outbrain", "pinterest", "vkshare", "w3c_validator", "whatsapp", "telegram", "skypeuripreview", "nuzzel",
    "bitlybot", "tumblr", "redditbot", "preview", "headlesschrome", "phantomjs", "lighthouse", "pingdom",
    "uptime", "monitor", "python-requests", "python-urllib", "go-http-client", "curl/", "wget/", "okhttp",
    "java/", "libwww", "httpclient", "axios/", "node-fetch", "scrapy",
];

pub fn is_countable(is_get: bool, user_agent: Option<&str>) -> bool {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else { return false };
    let ua = ua.to_ascii_lowercase();
    is_get && !BOT_MARKERS.iter().any(|marker| contains(ua.as_bytes(), marker.as_bytes()))
}

/// `needle` occurs in `haystack`. (For a few dozen short needles in a short user agent on every
/// click, a plain scan beats building a two-way searcher per needle, which `str::contains` does.)
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    haystack.len() >= needle.len()
        && (0..=haystack.len() - needle.len()).any(|i| haystack[i] == first && &haystack[i + 1..i + needle.len()] == rest)
}

/// Hours since the epoch: the bucket of unique-visitor counting.
pub fn hour(at: Timestamp) -> i64 {
    at.unix().div_euclid(3_600)
}

/// The key of visitor ids, prepared once per isolate: the HMAC's key schedule costs as much
/// as hashing a click's input, so each click starts from a copy of the keyed state.
#[derive(Clone)]
pub struct VisitorKey(Hmac<Sha256>);

impl VisitorKey {
    pub fn new(secret: &[u8]) -> Self {
        VisitorKey(Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"))
    }
}

/// The day-scoped pseudonymous visitor id (hex, 128 bits).
pub fn visitor_id(key: &VisitorKey, at: Timestamp, ip: &str, user_agent: &str) -> String {
    let mut mac = key.0.clone();
    let day = at.unix().div_euclid(86_400);
    for part in [day.to_string().as_bytes(), ip.as_bytes(), user_agent.as_bytes()] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_scan_agrees_with_str_contains(haystack in "[a-z/ .-]{0,40}", needle in "[a-z/ .-]{0,6}") {
            proptest::prop_assert_eq!(contains(haystack.as_bytes(), needle.as_bytes()), haystack.contains(&needle));
        }
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

    #[test]
    fn people_count_and_machines_do_not() {
        assert!(is_countable(true, Some(FIREFOX)));
        assert!(!is_countable(false, Some(FIREFOX)), "HEAD");
        assert!(!is_countable(true, None));
        assert!(!is_countable(true, Some("  ")));
        for ua in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "facebookexternalhit/1.1",
            "Slackbot-LinkExpanding 1.0",
            "Twitterbot/1.0",
            "WhatsApp/2.23.20.0",
            "TelegramBot (like TwitterBot)",
            "Mozilla/5.0 (compatible; Discordbot/2.0)",
            "curl/8.5.0",
            "python-requests/2.31",
            "Mozilla/5.0 HeadlessChrome/120.0",
        ] {
            assert!(!is_countable(true, Some(ua)), "{ua}");
        }
    }

    #[test]
    fn visitor_ids_are_stable_within_a_day_and_private() {
        let noon = Timestamp::parse_rfc3339("2026-11-25T12:00:00Z").unwrap();
        let key = VisitorKey::new(b"secret");
        let a = visitor_id(&key, noon, "203.0.113.5", FIREFOX);
        assert_eq!(a.len(), 32);
        assert_eq!(a, visitor_id(&key, noon.plus_seconds(3_600), "203.0.113.5", FIREFOX));
        assert_ne!(a, visitor_id(&key, noon.plus_seconds(86_400), "203.0.113.5", FIREFOX), "new day");
        assert_ne!(a, visitor_id(&key, noon, "203.0.113.6", FIREFOX));
        assert_ne!(a, visitor_id(&VisitorKey::new(b"other"), noon, "203.0.113.5", FIREFOX));
        assert!(!a.contains("203"));
        assert_eq!(hour(noon) * 3_600, noon.unix());
        // The prepared key gives what HMAC-SHA256(secret, day ‖ IP ‖ user agent) gives, with each
        // part length-prefixed (ids already counted this hour stay the same ids).
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        for part in ["20782".as_bytes(), b"203.0.113.5", FIREFOX.as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        let expected: String = mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a, expected);
    }
}
