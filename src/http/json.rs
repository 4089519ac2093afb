//! JSON request bodies: syntax errors are 400 `invalid_json`; shape errors (wrong type, missing or
//! unknown field) are 422 `validation_failed` naming the field. Request types use
//! `#[serde(deny_unknown_fields)]` so a client can never set a field the endpoint does not offer.
//!
//! The field is found from where serde_json stopped (its error's line and column) by re-reading
//! the body up to there (`path_at`): the same paths serde_path_to_error gives (the tests compare
//! the two), without its per-type code in the bundle (about 11 KiB gzip).
//!
//! Two rules hold for every body, before and after serde:
//! - numbers: the document's numbers are integers, and JSON Schema counts `55.0` or `5.5e1` as
//!   the integer 55, as do JSON clients that write every number as a double; such a number (its
//!   exact decimal value integral, within ±2^53) is read as that integer (`integral`). `55.5` stays
//!   a fraction and is refused where an integer is expected. An integer beyond ±2^53 is refused
//!   as out of range wherever it stands (no client keeps it exactly, nor does D1's binding).
//! - null: no field of any request body is nullable (the document declares none), so an explicit
//!   `null` is refused naming its field, never read as "absent": `"amount_cents": null` on a
//!   refund must not mean "refund everything". Leave a field out to leave it unset.
//!
//! Every message reaches the client in its words, starting with the field (`client_words`):
//! no Rust type names (`i64`, `struct X`) and no echo of the value sent.

use super::ApiError;
use serde::de::DeserializeOwned;
use std::borrow::Cow;

use crate::domain::MAX_EXACT_INT;
const NOT_NULL: &str = "must not be null; leave it out instead";
const OUT_OF_RANGE: &str = "is out of range";

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json("The request body is empty; a JSON object is expected."));
    }
    let scanned = scan(body);
    let body: &[u8] = &scanned.body;
    let refuse = |problem: &Problem| {
        let field = path_at(body, problem.at);
        let field = if field.is_empty() { "body".to_owned() } else { field };
        ApiError::validation(field.clone(), format!("{field} {}", problem.words))
    };
    // Problems are told in the order they stand in the body. One serde read without complaint
    // (a null in an optional field) and that stands before serde's complaint comes first; a
    // value serde complained about itself (a null where a string is required) is told as serde
    // tells it ("must be a string").
    match (serde_json::from_slice(body), scanned.first_problem) {
        (Ok(value), None) => Ok(value),
        (Ok(_), Some(problem)) => Err(refuse(&problem)),
        (Err(e), Some(problem)) if e.is_data() && problem.at + problem.length < offset(body, e.line(), e.column()) => {
            Err(refuse(&problem))
        }
        (Err(e), _) => Err(shape_error(body, &e)),
    }
}

/// A value refused whatever the field: a `null`, or an integer beyond ±2^53.
struct Problem {
    /// Where its token starts and how long it is, in the body serde reads.
    at: usize,
    length: usize,
    words: &'static str,
}

/// A body with its integral numbers written as integers, and its first problem.
struct Scanned<'a> {
    body: Cow<'a, [u8]>,
    first_problem: Option<Problem>,
}

/// One pass over the tokens outside strings (any bytes: a malformed body is left to serde).
fn scan(body: &[u8]) -> Scanned<'_> {
    let mut out: Option<Vec<u8>> = None;
    let mut first_problem: Option<Problem> = None;
    // Bytes of `body` before `copied` are in `out` already (once a number was rewritten).
    let mut copied = 0;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'n' if body[i..].starts_with(b"null") => {
                if first_problem.is_none() {
                    first_problem = Some(Problem { at: shifted(i, &out, copied), length: 4, words: NOT_NULL });
                }
                i += 4;
            }
            b'-' | b'0'..=b'9' => {
                let end = i + body[i..].iter().take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
                let token = std::str::from_utf8(&body[i..end]).unwrap_or_default();
                if token.contains(['.', 'e', 'E']) {
                    if let Ok(n) = integral(token) {
                        let o = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                        o.extend_from_slice(&body[copied..i]);
                        o.extend_from_slice(n.to_string().as_bytes());
                        copied = end;
                    }
                } else if integral(token) == Err(Inexact::TooLarge) && first_problem.is_none() {
                    // (An integer serde would read as i64 but D1 and clients could not keep.)
                    first_problem = Some(Problem { at: shifted(i, &out, copied), length: token.len(), words: OUT_OF_RANGE });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    let body = match out {
        Some(mut o) => {
            o.extend_from_slice(&body[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(body),
    };
    Scanned { body, first_problem }
}

/// Offset `i` of the body as sent, in the body serde reads (the rewritten one, once a number
/// before `i` was rewritten: `out` holds the body up to `copied`).
fn shifted(i: usize, out: &Option<Vec<u8>>, copied: usize) -> usize {
    let shift = out.as_ref().map_or(0, |o| o.len() as isize - copied as isize);
    (i as isize + shift) as usize
}

/// Why a JSON number is not an integer this service reads.
#[derive(Debug, PartialEq)]
enum Inexact {
    Fraction,
    /// An integer beyond ±2^53.
    TooLarge,
}

/// The integer a JSON number token stands for, when its exact decimal value is an integer within
/// ±2^53 (`55.0`, `5.5e1`, `-0.0`, `100e-2`). Decided on the digits, never through a float (whose
/// parser would also cost the bundle ~15 KiB).
fn integral(token: &str) -> Result<i64, Inexact> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(Inexact::Fraction); // (not a number at all)
    }
    // value = digits × 10^scale
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    let Ok(exponent) = exponent.parse::<i64>() else {
        return Err(if exponent.starts_with('-') { Inexact::Fraction } else { Inexact::TooLarge });
    };
    // (Checked throughout: an exponent near ±2^63 must neither wrap nor be truncated to usize.)
    let scale = exponent.checked_sub(fraction.len() as i64).ok_or(Inexact::Fraction)?;
    let integer = if scale >= 0 {
        let length = (digits.len() as i64).checked_add(scale).ok_or(Inexact::TooLarge)?;
        if length > 16 {
            return Err(Inexact::TooLarge); // 2^53 has 16 digits
        }
        format!("{digits}{}", "0".repeat(scale as usize))
    } else {
        let dropped = usize::try_from(scale.unsigned_abs()).map_err(|_| Inexact::Fraction)?;
        let cut = digits.len().checked_sub(dropped).ok_or(Inexact::Fraction)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return Err(Inexact::Fraction);
        }
        digits[..cut].to_owned()
    };
    let magnitude = integer.parse::<u64>().map_err(|_| Inexact::TooLarge)?;
    if magnitude > MAX_EXACT_INT {
        return Err(Inexact::TooLarge);
    }
    let n = magnitude as i64;
    Ok(if negative { -n } else { n })
}

/// The number token that ends at byte `end` of the body (where serde_json stopped after it).
fn number_before(body: &[u8], end: usize) -> &str {
    let end = end.min(body.len());
    let length = body[..end].iter().rev().take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
    std::str::from_utf8(&body[end - length..end]).unwrap_or_default()
}

fn shape_error(body: &[u8], err: &serde_json::Error) -> ApiError {
    let message = without_position(err);
    if !err.is_data() {
        return ApiError::invalid_json(format!("Malformed JSON: {message}."));
    }
    let at = offset(body, err.line(), err.column());
    let mut parent = path_at(body, at);
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
    let words = client_words(&message, number_before(body, at));
    ApiError::validation(field.clone(), format!("{field} {words}"))
}

/// What serde says is wrong with a value, in a client's words: the predicate that follows the
/// field's name (`must be an integer`). Rust type names (`i64`, `struct Offer`) and the value
/// sent never appear. `number` is the number token serde stopped after, if any.
fn client_words(message: &str, number: &str) -> Cow<'static, str> {
    if message.starts_with("missing field") {
        return "is required".into();
    }
    if message.starts_with("duplicate field") {
        return "is given more than once".into();
    }
    if message.starts_with("unknown field") {
        return "is not a field of this request".into();
    }
    // The messages of this service's own types are written for clients already.
    if message.starts_with("must ") || message.starts_with("is ") {
        return message.to_owned().into();
    }
    // "invalid type: string \"x\", expected i64": the expectation is serde's, at the end.
    let (head, expected) = message.rsplit_once(", expected ").unwrap_or((message, ""));
    let words = match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            // (A number with a fraction or exponent that reaches here is a fraction, or an
            // integer too large to be exact.)
            let out_of_range = head.starts_with("invalid value: integer")
                || (head.starts_with("invalid type: floating point") && integral(number) == Err(Inexact::TooLarge));
            if out_of_range {
                return OUT_OF_RANGE.into();
            }
            "an integer"
        }
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" => "a string",
        "a character" => "a single character",
        "a boolean" => "true or false",
        "a sequence" => "an array",
        "a map" => "an object",
        e if e.starts_with("struct ") => "an object",
        // Named choices ("one of `a`, `b`", "`a` or `b`") and our types' own expectations.
        e if e.starts_with("one of ") || e.starts_with('`') || e.starts_with("an RFC 3339") => {
            return format!("must be {e}").into();
        }
        _ => return "is not valid here".into(),
    };
    format!("must be {words}").into()
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
        assert_eq!(e.message, "is_admin is not a field of this request");
        let e = err(r#"{}"#);
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = err(r#"{"name": "x", "inner": {"flag": "yes"}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.flag"));
        let e = err(r#"{"name": "x", "inner": {"flag": true, "extra": 1}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.extra"));
        let e = err(r#""text""#);
        assert_eq!((e.status, e.field.as_deref()), (422, Some("body")));
        assert_eq!(e.message, "body must be an object");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Numbers {
        n: Option<i64>,
        small: Option<u8>,
        list: Option<Vec<i64>>,
        label: Option<String>,
    }

    fn numbers(body: &str) -> Result<Numbers, ApiError> {
        parse::<Numbers>(body.as_bytes())
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_notation() {
        for (text, n) in [
            ("55.0", 55), ("55.000", 55), ("5.5e1", 55), ("5.5E+1", 55), ("550e-1", 55), ("-55.0", -55), ("-0.0", 0),
            ("0e5", 0), ("0.0e-400", 0), ("1e2", 100), ("100e-2", 1), ("9007199254740992.0", 9_007_199_254_740_992),
            ("-9007199254740992.0", -9_007_199_254_740_992), ("1.5e15", 1_500_000_000_000_000),
        ] {
            let body = format!(r#"{{"n": {text}, "list": [1, {text}, 2.0], "label": "{text}"}}"#);
            let parsed = numbers(&body).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(parsed, Numbers { n: Some(n), small: None, list: Some(vec![1, n, 2]), label: Some(text.to_owned()) }, "{text}");
        }
        assert_eq!(numbers(r#"{"small": 255.0}"#).unwrap().small, Some(255));
    }

    #[test]
    fn fractions_and_numbers_beyond_two_to_the_53_are_refused_in_words() {
        for (body, field, message) in [
            (r#"{"n": 55.5}"#, "n", "n must be an integer"),
            (r#"{"n": 1e-2}"#, "n", "n must be an integer"),
            (r#"{"n": 55.0000000000000001}"#, "n", "n must be an integer"),
            (r#"{"list": [1, 2.5]}"#, "list[1]", "list[1] must be an integer"),
            (r#"{"n": "55"}"#, "n", "n must be an integer"),
            (r#"{"n": true}"#, "n", "n must be an integer"),
            (r#"{"n": 9007199254740993.0}"#, "n", "n is out of range"),
            (r#"{"n": 1e300}"#, "n", "n is out of range"),
            (r#"{"n": -1e300}"#, "n", "n is out of range"),
            (r#"{"n": 9223372036854775808}"#, "n", "n is out of range"),
            // Plain integers serde would take as i64, beyond what D1 and clients keep exactly.
            (r#"{"n": 9007199254740993}"#, "n", "n is out of range"),
            (r#"{"n": -9007199254740993}"#, "n", "n is out of range"),
            (r#"{"list": [1, 2.0, 9007199254740993]}"#, "list[2]", "list[2] is out of range"),
            (r#"{"label": 9007199254740993}"#, "label", "label must be a string"),
            (r#"{"small": 256}"#, "small", "small is out of range"),
            (r#"{"small": 256.0}"#, "small", "small is out of range"),
            (r#"{"small": -1}"#, "small", "small is out of range"),
        ] {
            let e = numbers(body).unwrap_err();
            assert_eq!((e.status, e.field.as_deref(), e.message.as_str()), (422, Some(field), message), "{body}");
        }
        for (token, why) in [("9007199254740993", Inexact::TooLarge), ("1e17", Inexact::TooLarge), ("1e99999999999999999999", Inexact::TooLarge),
                             ("1e-99999999999999999999", Inexact::Fraction), ("0.5", Inexact::Fraction), ("12345678901234567.5", Inexact::Fraction),
                             // Exponents at the ends of i64 (they once wrapped, and crashed the worker).
                             ("1e9223372036854775807", Inexact::TooLarge), ("1.5e9223372036854775807", Inexact::TooLarge),
                             ("1e-9223372036854775808", Inexact::Fraction), ("1.0e-9223372036854775808", Inexact::Fraction),
                             ("1e-4294967296", Inexact::Fraction)] {
            assert_eq!(integral(token), Err(why), "{token}");
        }
        assert_eq!(integral("0.0e9223372036854775807"), Ok(0));
        assert_eq!(numbers(r#"{"n": 9007199254740992, "list": [-9007199254740992]}"#).unwrap().n, Some(1 << 53));
        // Beyond what a double holds, serde_json stops reading: not JSON this service reads.
        let e = numbers(r#"{"n": 1e400}"#).unwrap_err();
        assert_eq!((e.status, e.code, e.message.as_str()), (400, "invalid_json", "Malformed JSON: number out of range."));
        // Where null is a wrong type (in a list of integers), it is told as one.
        let e = numbers(r#"{"list": [1, null]}"#).unwrap_err();
        assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("list[1]"), "list[1] must be an integer"));
    }

    #[test]
    fn an_explicit_null_is_refused_naming_its_field() {
        for (body, field) in [
            (r#"{"n": null}"#, "n"),
            (r#"{"label": "null", "list": [1], "n": null}"#, "n"),
            ("{\"n\": 2.0,\n \"label\": null}", "label"),
        ] {
            let e = numbers(body).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (422, Some(field)), "{body}: {e:?}");
            assert_eq!(e.message, format!("{field} must not be null; leave it out instead"));
        }
        let e = err(r#"{"name": "x", "inner": null}"#);
        assert_eq!(e.field.as_deref(), Some("inner"));
        // In body order: before a missing field (told at the object's end) or a later wrong value.
        let e = err(r#"{"inner": null}"#);
        assert_eq!(e.field.as_deref(), Some("inner"));
        let e = numbers(r#"{"label": null, "n": "x"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("label"));
        let e = numbers(r#"{"n": "x", "label": null}"#).unwrap_err();
        assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("n"), "n must be an integer"));
        // A null where a value is required is a wrong value.
        let e = err(r#"{"name": null}"#);
        assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("name"), "name must be a string"));
        // Left out, a field is absent; a "null" inside a string is text.
        assert_eq!(numbers(r#"{"label": "null"}"#).unwrap().label.as_deref(), Some("null"));
        assert_eq!(numbers("{}").unwrap(), Numbers { n: None, small: None, list: None, label: None });
    }

    proptest::proptest! {
        /// Any integer within ±2^53, written with a decimal point anywhere and the exponent that
        /// puts it back, is that integer.
        #[test]
        fn shifted_decimal_points_keep_the_integer(n in -(1i64 << 53)..=(1i64 << 53), shift in 0usize..20, zeros in 0usize..3) {
            let digits = format!("{:0>width$}", n.unsigned_abs(), width = shift + 1);
            let (whole, fraction) = digits.split_at(digits.len() - shift);
            let sign = if n < 0 { "-" } else { "" };
            let text = format!("{sign}{whole}.{fraction}{}e{shift}", "0".repeat(zeros));
            proptest::prop_assert_eq!(integral(&text), Ok(n), "{}", text);
        }

        /// A non-zero fraction is never an integer.
        #[test]
        fn fractions_are_not_integers(whole in 0u64..1_000_000, fraction in "[0-9]{0,5}[1-9]") {
            let text = format!("{whole}.{fraction}");
            proptest::prop_assert_eq!(integral(&text), Err(Inexact::Fraction), "{}", text);
        }
    }

    /// Every kind of field this service reads, and wrong values for it.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Kinds {
        text: Option<String>,
        flag: Option<bool>,
        count: Option<i64>,
        small: Option<u32>,
        list: Option<Vec<String>>,
        inner: Option<Inner>,
        at: Option<crate::domain::time::Timestamp>,
        status: Option<crate::domain::payouts::PayoutStatus>,
    }

    /// Words of Rust and serde that must not reach a client.
    const RUST_WORDS: &[&str] = &[
        "i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128", "usize", "isize", "f32", "f64", "struct",
        "enum", "variant", "sequence", "map", "unit", "option", "tuple", "newtype", "expected", "invalid", "kinds",
    ];

    #[test]
    fn no_message_shows_rust_or_serde_words() {
        let wrong = [r#""x""#, "5", "1.5", "-1", "1e300", "18446744073709551615", "true", "[]", "[1]", "{}", r#"{"flag": 1}"#, "null"];
        let fields = ["text", "flag", "count", "small", "list", "inner", "at", "status", "unknown"];
        for field in fields {
            for value in wrong {
                let body = format!(r#"{{"{field}": {value}}}"#);
                let Err(e) = parse::<Kinds>(body.as_bytes()) else { continue };
                assert_eq!(e.status, 422, "{body}");
                let named = e.field.clone().unwrap();
                assert!(named.starts_with(field), "{body}: {e:?}");
                assert!(e.message.starts_with(&format!("{named} ")), "the message names the field: {body}: {e:?}");
                let words: Vec<String> = e.message.split(|c: char| !c.is_ascii_alphanumeric()).map(str::to_lowercase).collect();
                assert!(!RUST_WORDS.iter().any(|w| words.iter().any(|x| x == w)), "{body}: {}", e.message);
                assert!(!e.message.contains("18446744073709551615") && !e.message.contains("1e300"), "echoes the value: {}", e.message);
            }
        }
        for body in [r#"{"text": "a", "text": "b"}"#, r#"[1]"#, "5"] {
            let e = parse::<Kinds>(body.as_bytes()).unwrap_err();
            let words: Vec<String> = e.message.split(|c: char| !c.is_ascii_alphanumeric()).map(str::to_lowercase).collect();
            assert!(!RUST_WORDS.iter().any(|w| words.iter().any(|x| x == w)), "{body}: {}", e.message);
        }
        let e = parse::<Kinds>(br#"{"status": "lost"}"#).unwrap_err();
        assert_eq!(e.message, "status must be one of pending, approved, processing, paid or failed");
        let e = parse::<Kinds>(br#"{"at": "0000-01-01T00:00:00+23:59"}"#).unwrap_err();
        assert_eq!((e.field.as_deref(), e.message.as_str()), (Some("at"), "at must be an RFC 3339 date-time from 1970 to 9999 (UTC)"));
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
