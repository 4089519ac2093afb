//! Payouts: the money out, shared by every program that earns (affiliates now; creators and
//! sellers later). pending → approved → processing → paid | failed.

use super::time::Timestamp;
use super::{status_enum, Rejection, INVALID_TRANSITION};

status_enum!(PayoutStatus { Pending = "pending", Approved = "approved", Processing = "processing", Paid = "paid", Failed = "failed" });

/// A payout of a payee (`program` + `payee_id`, e.g. an affiliate) to its user.
#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    pub id: String,
    pub program: String,
    pub payee_id: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub status: PayoutStatus,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn transition(from: PayoutStatus, to: PayoutStatus) -> Result<(), Rejection> {
    use PayoutStatus::*;
    match (from, to) {
        (Pending, Approved) | (Approved, Processing) | (Processing, Paid) | (Processing, Failed) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

/// The longest address a mail system takes (RFC 5321: 254 in a path) and its parts.
pub const MAX_EMAIL_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// Where a payee's money is sent: one plain address, `local@domain`, as the WHATWG's "valid
/// e-mail address" and stricter: the local part a dot-atom (letters, digits and
/// ``!#$%&'*+/=?^_`{|}~-``, dots only between them: no quotes, commas, angle brackets or
/// whitespace), the domain a DNS name with a dot (labels of letters, digits and inner hyphens, the
/// last one not all digits). Surrounding whitespace is trimmed; the address is kept as written.
pub fn payout_email(text: &str) -> Result<String, &'static str> {
    const INVALID: &str = "must be one email address like name@example.com";
    let address = text.trim();
    let (local, domain) = address.split_once('@').ok_or(INVALID)?;
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let local_ok = (1..=MAX_LOCAL_LEN).contains(&local.len())
        && local.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(atext));
    if address.len() <= MAX_EMAIL_LEN && local_ok && super::links::dns_name(domain) {
        Ok(address.to_owned())
    } else {
        Err(INVALID)
    }
}

/// A payout gathers everything available; it must reach the minimum. (The balance is the
/// affiliate's state, not the request's: a conflict.)
pub fn check_amount(available_cents: i64, minimum_cents: i64) -> Result<(), Rejection> {
    if available_cents >= minimum_cents.max(1) {
        Ok(())
    } else {
        Err(Rejection::conflict(
            "below_minimum",
            "The available balance is below the minimum payout amount.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::PayoutStatus::*;
    use super::*;

    #[test]
    fn the_transition_table() {
        let allowed = [(Pending, Approved), (Approved, Processing), (Processing, Paid), (Processing, Failed)];
        for &from in PayoutStatus::ALL {
            for &to in PayoutStatus::ALL {
                assert_eq!(transition(from, to).is_ok(), allowed.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn the_minimum() {
        assert!(check_amount(5_000, 5_000).is_ok());
        assert_eq!(check_amount(4_999, 5_000).unwrap_err(), Rejection::conflict("below_minimum", "The available balance is below the minimum payout amount."));
        assert!(check_amount(0, 0).is_err(), "never an empty payout");
        assert!(check_amount(-10, 0).is_err(), "never a negative payout");
    }

    #[test]
    fn a_payout_email_is_one_plain_address() {
        for good in [
            "alice@example.com",
            "Alice.O'Brien+payouts@Mail.Example-Bank.co.uk",
            "x@a.io",
            "!#$%&'*+/=?^_`{|}~-@example.com",
            "user@xn--mnchen-3ya.de",
            "user@1x.example.com",
        ] {
            assert_eq!(payout_email(good).as_deref(), Ok(good), "{good}");
        }
        assert_eq!(payout_email("  alice@example.com\t").as_deref(), Ok("alice@example.com"));
        let long_local = format!("{}@x.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "x".repeat(64));
        let long_address = format!("a@{}.com", vec!["x".repeat(60); 5].join("."));
        for bad in [
            "a@x.com,b@y.com", "a@x.com;b@y.com", "\"<script>\"@x.com", "\"a b\"@x.com", "Alice <alice@x.com>", "<alice@x.com>",
            "alice@x.com b@y.com", "alice@x.com\r\nBcc: eve@y.com", "a@@x.com", "a@b@x.com", "@x.com", "alice@", "alice",
            "alice@localhost", "alice@x", "alice@-x.com", "alice@x-.com", "alice@x..com", "alice@.x.com", "alice@x.com.",
            "alice@[127.0.0.1]", "alice@127.0.0.1", ".alice@x.com", "alice.@x.com", "al..ice@x.com", "al(ice)@x.com",
            "alic\\e@x.com", "alicé@x.com", "alice@exämple.com", "alice@x_y.com", "", "   ",
            long_local.as_str(), long_label.as_str(), long_address.as_str(),
        ] {
            assert!(payout_email(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever is accepted is one address: one '@', nothing a mail header or HTML treats
        /// specially, within the length limit.
        #[test]
        fn accepted_addresses_are_plain(text in "[ -~]{0,40}") {
            if let Ok(address) = payout_email(&text) {
                proptest::prop_assert_eq!(address.matches('@').count(), 1);
                proptest::prop_assert!(!address.contains(['"', ',', ';', '<', '>', ' ', '(', ')', '[', ']', '\\', ':']), "{}", address);
                proptest::prop_assert!(address.len() <= MAX_EMAIL_LEN);
            }
        }
    }
}
