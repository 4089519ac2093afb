//! List pagination: `?limit=` (1–100, default 20) and an opaque `cursor`; responses are
//! `{"items": [...], "next_cursor": "..." | null}`. The cursor is the sort key of the last item
//! returned, base64url-encoded JSON; stores fetch `limit + 1` rows after it to know if more exist.

use super::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, PartialEq)]
pub struct PageRequest<K> {
    pub limit: u32,
    /// Sort key of the last item of the previous page.
    pub after: Option<K>,
}

impl<K: DeserializeOwned> PageRequest<K> {
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
            Some(text) => Some(decode(text).ok_or_else(|| ApiError::validation("cursor", "cursor is not valid"))?),
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
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode(&key(last)))
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

fn encode<K: Serialize>(key: &K) -> String {
    B64.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode<K: DeserializeOwned>(text: &str) -> Option<K> {
    let bytes = B64.decode(text).ok()?;
    serde_json::from_slice(&bytes).ok()
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
        for bad in ["!!!", "bm90IGpzb24", "W1sxXV0"] {
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

        #[test]
        fn garbage_cursors_are_422_not_panics(text in ".{0,40}") {
            if let Err(e) = PageRequest::<Key>::parse(None, Some(&text)) {
                proptest::prop_assert_eq!(e.field.as_deref(), Some("cursor"));
            }
        }
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert_eq!(page, Page { items: vec![1, 2], next_cursor: None });
        let empty = Page::from_rows(Vec::<i32>::new(), 5, |n| *n);
        assert_eq!(empty.next_cursor, None);
    }
}
