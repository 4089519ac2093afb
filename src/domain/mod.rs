//! Pure business rules: no `worker`, no JS, no I/O. Everything here is tested natively.

pub mod affiliates;
pub mod campaigns;
pub mod clicks;
pub mod links;
pub mod codes;
pub mod conversions;
pub mod earnings;
pub mod keys;
pub mod marketplace;
pub mod money;
pub mod payouts;
pub mod referrals;
pub mod resellers;
pub mod revenue;
pub mod rewards;
pub mod time;
pub mod users;

/// The largest integer magnitude every JSON client, and D1's binding (JavaScript numbers), keeps
/// exactly: 2^53. Bodies, stored values and configuration stay within it.
pub const MAX_EXACT_INT: u64 = 1 << 53;

/// A business rule said no. `http` turns it into the matching status and error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub code: &'static str,
    pub message: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// The request conflicts with the current state (409).
    Conflict,
    /// The request is well-formed but breaks a rule (422).
    Unprocessable,
    /// The caller may not do this (403).
    Forbidden,
}

impl Rejection {
    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        Rejection { kind: RejectionKind::Conflict, code, message }
    }
    pub const fn unprocessable(code: &'static str, message: &'static str) -> Self {
        Rejection { kind: RejectionKind::Unprocessable, code, message }
    }
    pub const fn forbidden(code: &'static str, message: &'static str) -> Self {
        Rejection { kind: RejectionKind::Forbidden, code, message }
    }
}

/// The standard rejection of a state machine.
pub const INVALID_TRANSITION: Rejection =
    Rejection::conflict("invalid_transition", "This status change is not allowed from the current status.");

/// An enum with fixed string forms (stored in D1 and shown in the API).
pub trait Named: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn parse(text: &str) -> Option<Self>;

    /// "pending, active or terminated", for error messages.
    fn choices() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

/// String forms of a status enum (stored in D1 and shown in the API), defined once per enum.
/// It is read from its string form only (anything else: "must be one of a, b or c"); a derived
/// `Deserialize` would also take `{"a": null}`, and serde_json answers a number given for it
/// with a syntax error.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Text;
                impl serde::de::Visitor<'_> for Text {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        write!(f, "one of {}", <$name as $crate::domain::Named>::choices())
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::parse(text).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
                    }
                }
                deserializer.deserialize_str(Text)
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl $crate::domain::Named for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn as_str(self) -> &'static str { $name::as_str(self) }
            fn parse(text: &str) -> Option<Self> { $name::parse(text) }
        }
    };
}
pub(crate) use status_enum;

#[cfg(test)]
mod tests {
    use super::payouts::PayoutStatus;
    use super::Named;

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(PayoutStatus::choices(), "pending, approved, processing, paid or failed");
    }

    #[test]
    fn status_enums_are_read_from_their_names_only() {
        assert_eq!(serde_json::from_str::<PayoutStatus>(r#""paid""#).unwrap(), PayoutStatus::Paid);
        for bad in [r#""Paid""#, r#""lost""#, r#"{"paid": null}"#, "5", "null", r#"["paid"]"#] {
            let e = serde_json::from_str::<PayoutStatus>(bad).unwrap_err();
            // A shape error (422 naming the field), not a syntax error, saying what is accepted.
            assert!(e.is_data(), "{bad}: {e}");
            assert!(e.to_string().contains("expected one of pending, approved, processing, paid or failed"), "{bad}: {e}");
        }
        assert_eq!(serde_json::to_string(&PayoutStatus::Paid).unwrap(), r#""paid""#);
    }
}
