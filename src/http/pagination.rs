//! List pagination: `?limit=` (1–100, default 20) and an opaque `cursor`; responses are
//! `{"items": [...], "next_cursor": "..." | null}`. The cursor is the sort key of the last item
//! returned (`CursorKey`); stores fetch `limit + 1` rows after it to know if more exist.

use super::ApiError;
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, PartialEq)]
pub struct PageRequest<K> {
    pub limit: u32,
    /// Sort key of the last item of the previous page.
    pub after: Option<K>,
}

/// A sort key as a cursor writes it. Every string of a key's documented shape is a key (a
/// position in the list, the next page starts after it), so a client can only send a cursor the
/// service reads: `^[0-9]{1,15}$` for a sequence number, `^[0-9]{1,15}(\.([0-9a-f]{2}){0,256})?$`
/// for (creation time, id) with the id's bytes in hex.
pub trait CursorKey: Sized {
    fn encode(&self) -> String;
    fn decode(text: &str) -> Option<Self>;
}

/// The longest id a cursor carries (ids are at most 128 characters).
const MAX_CURSOR_ID_BYTES: usize = 256;

fn number(text: &str) -> Option<i64> {
    let ok = (1..=15).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

impl CursorKey for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }

    fn decode(text: &str) -> Option<Self> {
        number(text)
    }
}

impl CursorKey for (i64, String) {
    fn encode(&self) -> String {
        let hex: String = self.1.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", self.0)
    }

    fn decode(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('.').unwrap_or((text, ""));
        if id.len() > 2 * MAX_CURSOR_ID_BYTES || id.len() % 2 != 0 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..id.len()).step_by(2).map(|i| u8::from_str_radix(&id[i..i + 2], 16).ok()).collect();
        // Not an id this service handed out, maybe, but still a place in the order.
        Some((number(time)?, String::from_utf8_lossy(&bytes?).into_owned()))
    }
}

impl<K: CursorKey> PageRequest<K> {
    /// From the raw `limit` and `cursor` query parameters.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(ApiError::validation("limit", format!("limit must be an integer from 1 to {MAX_LIMIT}"))),
            },
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => Some(K::decode(text).ok_or_else(|| ApiError::validation("cursor", "cursor is not valid"))?),
        };
        Ok(PageRequest { limit, after })
    }

    /// Rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> u32 {
        self.limit + 1
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with `fetch_limit`) to the page and derives the next cursor from the
    /// last item kept.
    pub fn from_rows<K: CursorKey>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| key(last).encode())
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Key = (i64, String);

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(PageRequest::<Key>::parse(None, None).unwrap(), PageRequest { limit: 20, after: None });
        assert_eq!(PageRequest::<Key>::parse(Some("1"), None).unwrap().limit, 1);
        assert_eq!(PageRequest::<Key>::parse(Some("100"), None).unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", "", "1.5"] {
            let e = PageRequest::<Key>::parse(Some(bad), None).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (422, Some("limit")), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let page = Page::from_rows(vec![(1, "a".to_string()), (2, "b".to_string()), (3, "c".to_string())], 2, |r| r.clone());
        assert_eq!(page.items.len(), 2);
        let cursor = page.next_cursor.expect("a next page exists");
        let next = PageRequest::<Key>::parse(None, Some(&cursor)).unwrap();
        assert_eq!(next.after, Some((2, "b".to_string())));
        assert_eq!(cursor, "2.62");
        for bad in ["!!!", "bm90IGpzb24", "W1sxXV0", "2.6", "2.6G", "1234567890123456", &format!("1.{}", "ab".repeat(257)), "-1.62", "2.62."] {
            let e = PageRequest::<Key>::parse(None, Some(bad)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("cursor"), "{bad}");
        }
    }

    proptest::proptest! {
        /// Walking pages of any size visits every row once, in order.
        #[test]
        fn paging_visits_every_row_once(n in 0usize..60, limit in 1u32..=12) {
            let rows: Vec<Key> = (0..n as i64).map(|i| (i / 3, format!("id{i:03}"))).collect();
            let mut seen = Vec::new();
            let mut after: Option<Key> = None;
            loop {
                let batch: Vec<Key> = rows.iter().filter(|r| after.as_ref().is_none_or(|a| *r > a)).take(limit as usize + 1).cloned().collect();
                let page = Page::from_rows(batch, limit, |r| r.clone());
                seen.extend(page.items);
                match page.next_cursor {
                    Some(c) => after = PageRequest::<Key>::parse(None, Some(&c)).unwrap().after,
                    None => break,
                }
            }
            proptest::prop_assert_eq!(seen, rows);
        }

        /// Every string of the documented shapes is a cursor: a client cannot send one the
        /// document allows and the service refuses.
        #[test]
        fn every_cursor_of_the_documented_shape_is_read(time in "[0-9]{1,15}", id in "([0-9a-f]{2}){0,40}", seq in "[0-9]{1,15}") {
            let text = if id.is_empty() { time.clone() } else { format!("{time}.{id}") };
            proptest::prop_assert!(PageRequest::<Key>::parse(None, Some(&text)).is_ok(), "{}", text);
            proptest::prop_assert!(PageRequest::<i64>::parse(None, Some(&seq)).is_ok());
        }

        #[test]
        fn keys_round_trip(time in 0i64..999_999_999_999_999, id in ".{0,40}") {
            let key = (time, id);
            proptest::prop_assert_eq!(<Key as CursorKey>::decode(&key.encode()), Some(key));
        }

        #[test]
        fn garbage_cursors_are_422_not_panics(text in ".{0,40}") {
            if let Err(e) = PageRequest::<Key>::parse(None, Some(&text)) {
                proptest::prop_assert_eq!(e.field.as_deref(), Some("cursor"));
            }
        }
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(vec![1i64, 2], 2, |n| *n);
        assert_eq!(page, Page { items: vec![1, 2], next_cursor: None });
        let empty = Page::from_rows(Vec::<i64>::new(), 5, |n| *n);
        assert_eq!(empty.next_cursor, None);
    }
}
