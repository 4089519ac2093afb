//! JSON request bodies: syntax errors are 400 `invalid_json`; shape errors (wrong type, missing or
//! unknown field) are 422 `validation_failed` naming the field. Request types use
//! `#[serde(deny_unknown_fields)]` so a client can never set a field the endpoint does not offer.
//!
//! The field is found from where serde_json stopped (its error's line and column) by re-reading
//! the body up to there (`path_at`): the same paths serde_path_to_error gives (the tests compare
//! the two), without its per-type code in the bundle (about 11 KiB gzip).

use super::ApiError;
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("The request body is empty; a JSON object is expected."));
    }
    serde_json::from_slice(body).map_err(|e| shape_error(body, &e))
}

fn shape_error(body: &[u8], err: &serde_json::Error) -> ApiError {
    let message = without_position(err);
    if !err.is_data() {
        return ApiError::invalid_json(format!("Malformed JSON: {message}."));
    }
    let mut parent = path_at(body, offset(body, err.line(), err.column()));
    // An enum written as an object stops inside it, at the variant's key: name the enum's field.
    if let Some(variant) = message.strip_prefix("unknown variant `").and_then(|rest| rest.split('`').next()) {
        if let Some(enclosing) = parent.strip_suffix(variant).and_then(|p| p.strip_suffix('.')) {
            parent = enclosing.to_owned();
        }
    }
    // The path of a missing field is its enclosing object; name the field itself.
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    let field = match (missing, parent.is_empty()) {
        (Some(name), true) => name.to_owned(),
        (Some(name), false) => format!("{parent}.{name}"),
        (None, true) => "body".to_owned(),
        (None, false) => parent,
    };
    // "unknown field `x`, expected one of …" would list the accepted fields: keep the first part.
    let message = match message.find(", expected") {
        Some(cut) if message.starts_with("unknown field") => message[..cut].to_owned(),
        // Do not show Rust type names.
        _ if message.contains("expected struct") => "expected a JSON object".to_owned(),
        _ => message,
    };
    ApiError::validation(field, message)
}

fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}

/// The byte offset of serde_json's (1-based) line and column.
fn offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(line - 2).map_or(body.len(), |(i, _)| i + 1)
    };
    (line_start + column).min(body.len())
}

enum Frame {
    /// An object and the key whose value is being read (none between a comma and the next key).
    Object(Option<String>),
    /// An array and the index of the element being read.
    Array(usize),
}

/// The path (`events[3].metric`; empty for the whole body) of the value or key being read at
/// byte `end` of a body that is well-formed JSON up to there.
fn path_at(body: &[u8], end: usize) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    // Whether the next string in an object is a key.
    let mut want_key = false;
    let mut i = 0;
    while i < end {
        match body[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                want_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
                want_key = false;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(index)) => *index += 1,
                Some(Frame::Object(key)) => {
                    *key = None;
                    want_key = true;
                }
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i = start;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if want_key {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let raw = &body[start..i.min(body.len())];
                        *key = Some(serde_json::from_slice::<String>(&[b"\"", raw, b"\""].concat()).unwrap_or_default());
                    }
                    want_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    fn err(body: &str) -> ApiError {
        parse::<Body>(body.as_bytes()).unwrap_err()
    }

    proptest::proptest! {
        /// No body makes parsing panic; every failure is a 400 or a 422 naming a field.
        #[test]
        fn arbitrary_bytes_are_answered_not_panicked_on(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Err(e) = parse::<Body>(&bytes) {
                proptest::prop_assert!(e.status == 400 || (e.status == 422 && e.field.is_some()));
            }
        }

        #[test]
        fn json_shaped_input_too(text in r#"\{("[a-z_]{1,8}": ?(true|1|"x"|null|\{\}|\[\]),? ?){0,4}\}"#) {
            if let Err(e) = parse::<Body>(text.as_bytes()) {
                proptest::prop_assert!(e.status == 400 || (e.status == 422 && e.field.is_some()), "{:?}", e);
            }
        }
    }

    #[test]
    fn well_formed_bodies_parse() {
        let b: Body = parse(br#" {"name": "x", "inner": {"flag": true}} "#).unwrap();
        assert_eq!(b.name, "x");
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in ["{", "{\"name\": }", "", "   ", "{\"name\":\"x\"} trailing", "\u{0}"] {
            let e = err(body);
            assert_eq!((e.status, e.code), (400, "invalid_json"), "{body:?}");
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = err(r#"{"name": 5}"#);
        assert_eq!((e.status, e.code, e.field.as_deref()), (422, "validation_failed", Some("name")));
        let e = err(r#"{"name": "x", "is_admin": true}"#);
        assert_eq!(e.field.as_deref(), Some("is_admin"));
        assert_eq!(e.message, "unknown field `is_admin`");
        let e = err(r#"{}"#);
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = err(r#"{"name": "x", "inner": {"flag": "yes"}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.flag"));
        let e = err(r#"{"name": "x", "inner": {"flag": true, "extra": 1}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.extra"));
        let e = err(r#""text""#);
        assert_eq!((e.status, e.field.as_deref()), (422, Some("body")));
        assert_eq!(e.message, "expected a JSON object");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Event {
        id: String,
        amount: u32,
        kind: Kind,
        tags: Option<Vec<String>>,
        occurred_at: Option<crate::domain::time::Timestamp>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        ApiCalls,
        Matches,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Events {
        events: Vec<Event>,
        at: Option<crate::domain::time::Timestamp>,
        #[serde(rename = "se\"cret")]
        odd: Option<u8>,
    }

    /// The field serde_path_to_error names, shaped as `shape_error` shapes it.
    fn oracle<T: DeserializeOwned>(body: &[u8]) -> Option<String> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(_) => return None,
            Err(e) => e,
        };
        if !err.inner().is_data() {
            return None;
        }
        let path = err.path().to_string();
        let parent = if path == "." { String::new() } else { path };
        let message = without_position(err.inner());
        // (serde_path_to_error names a duplicate field's object; we name the field itself, like
        // a missing one.)
        let missing = message
            .strip_prefix("missing field `")
            .or_else(|| message.strip_prefix("duplicate field `"))
            .and_then(|rest| rest.split('`').next());
        Some(match (missing, parent.is_empty()) {
            (Some(name), true) => name.to_owned(),
            (Some(name), false) => format!("{parent}.{name}"),
            (None, true) => "body".to_owned(),
            (None, false) => parent,
        })
    }

    #[test]
    fn paths_match_serde_path_to_error_on_nested_bodies() {
        for body in [
            r#"{"events": [{"id": "a", "amount": 1, "kind": "matches"}, {"id": "b", "amount": -1, "kind": "matches"}]}"#,
            r#"{"events": [{"id": "a", "amount": 1, "kind": "matches"}, {"id": "b", "amount": 1, "kind": "nope"}]}"#,
            r#"{"events": [{"id": "a", "amount": 1, "kind": "matches", "tags": ["x", 5]}]}"#,
            r#"{"events": [{"id": "a,\"]{", "amount": 1, "kind": "matches", "extra": {"deep": [1, 2]}}]}"#,
            r#"{"events": [{"id": "a", "kind": "matches"}]}"#,
            "{\n  \"events\": [\n    {\"id\": \"a\", \"amount\": 1, \"kind\": \"api_calls\"},\n    {\"id\": 7}\n  ]\n}",
            r#"{"se\"cret": 300, "events": []}"#,
            r#"{"events": {}}"#,
            r#"[1, 2]"#,
            r#"{"events": [], "events": []}"#,
            r#"{"\u0065vents": [{"id": "a", "amount": 1.5, "kind": "matches"}]}"#,
            r#"{"events": [], "at": "yesterday"}"#,
            r#"{"at": 5, "events": []}"#,
            r#"{"events": [{"id": "a", "amount": 1, "kind": {"nope": null}}]}"#,
            r#"{"events": [{"id": "a", "amount": 1, "kind": {"matches": 1}}]}"#,
            "{\"events\": [{\"id\": \"日本語 ü\", \"amount\": \"x\", \"kind\": \"matches\"}]}",
            "{\"events\": [{\"id\": \"é\",\n \"kind\": \"matches\", \"amount\": 1, \"tags\": [\"ß\", null]}]}",
        ] {
            let ours = parse::<Events>(body.as_bytes()).err().filter(|e| e.status == 422).map(|e| e.field.unwrap_or_default());
            assert_eq!(ours, oracle::<Events>(body.as_bytes()), "{body}");
        }
    }

    proptest::proptest! {
        /// Over generated bodies of the right shape with wrong parts, both name the same field.
        #[test]
        fn paths_match_serde_path_to_error(
            events in proptest::collection::vec(
                (r#"("a"|5|null)"#, r#"(1|-1|"x"|1\.5)"#, r#"("matches"|"api_calls"|"other"|3)"#,
                 r#"(|, "tags": \["t", ?(1|"u")\]|, "zzz": \{"k": \[1\]\}|, "id": "dup"|, "occurred_at": ("2026-11-25T10:00:00Z"|"soon"|1))"#),
                0..4),
            space in r#"[ \n]{0,2}"#,
        ) {
            let items: Vec<String> = events
                .iter()
                .map(|(id, amount, kind, extra)| format!(r#"{{"id":{space}{id}, "amount": {amount},{space}"kind": {kind}{extra}}}"#))
                .collect();
            let body = format!(r#"{{{space}"events": [{}]}}"#, items.join(&format!(",{space}")));
            let ours = parse::<Events>(body.as_bytes()).err().filter(|e| e.status == 422).map(|e| e.field.unwrap_or_default());
            proptest::prop_assert_eq!(ours, oracle::<Events>(body.as_bytes()), "{}", body);
        }
    }
}
