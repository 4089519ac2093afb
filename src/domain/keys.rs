//! Keys clients choose to name their own requests and records: `Idempotency-Key`s, and the ids
//! other billing systems give their payments (`external_id`). One rule for both. Also the rule
//! for the ids other SoundHash systems give their users, events, channels and videos.

/// The longest key.
pub const MAX_KEY_LEN: usize = 255;

/// A client's key: 1–255 visible ASCII characters, exactly as sent (a header's surrounding
/// whitespace is no part of its value, and a body's string is taken as written); `None` when the
/// text cannot be one.
pub fn client_key(text: &str) -> Option<&str> {
    let valid = !text.is_empty() && text.len() <= MAX_KEY_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    valid.then_some(text)
}

/// The longest id of a user, an event, a channel or a video.
pub const MAX_ID_LEN: usize = 128;
/// Ids of records this service makes itself start with this; reporters may not use it.
pub const INTERNAL_PREFIX: &str = "soundhash:";

/// An id another SoundHash system gave: 1–128 visible ASCII characters.
pub fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_as_sent() {
        assert_eq!(client_key("3f2c-key"), Some("3f2c-key"));
        assert_eq!(client_key(" 3f2c-key "), None, "as the document's pattern says");
        assert_eq!(client_key(&"k".repeat(255)).map(str::len), Some(255));
        for bad in ["", "  ", "has space", "ключ", "tab\tin", &"k".repeat(256)] {
            assert_eq!(client_key(bad), None, "{bad:?}");
        }
    }
}
