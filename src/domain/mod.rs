//! Pure business rules: no `worker`, no JS, no I/O. Everything here is tested natively.

pub mod affiliates;
pub mod campaigns;
pub mod clicks;
pub mod links;
pub mod codes;
pub mod conversions;
pub mod earnings;
pub mod money;
pub mod payouts;
pub mod referrals;
pub mod rewards;
pub mod time;
pub mod users;

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
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

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
}
