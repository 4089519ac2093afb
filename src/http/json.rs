//! JSON request bodies: syntax errors are 400 `invalid_json`; shape errors (wrong type, missing or
//! unknown field) are 422 `validation_failed` naming the field. Request types use
//! `#[serde(deny_unknown_fields)]` so a client can never set a field the endpoint does not offer.

use super::ApiError;
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("The request body is empty; a JSON object is expected."));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(shape_error)?;
    de.end().map_err(|e| ApiError::invalid_json(format!("Malformed JSON: {}.", without_position(&e))))?;
    Ok(value)
}

fn shape_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = err.inner();
    let message = without_position(inner);
    if !inner.is_data() {
        return ApiError::invalid_json(format!("Malformed JSON: {message}."));
    }
    let path = err.path().to_string();
    let parent = if path == "." { String::new() } else { path };
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
}
