//! Stripe webhooks: signature verification and the parts of events this service uses.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`; the signature is
//! HMAC-SHA256(secret, "{t}.{raw body}"), compared in constant time; `t` must be within the
//! tolerance of now. Pure code, tested natively.
//!
//! Refunds name their invoice (older API versions) or only their payment intent (newer ones);
//! the payment intent → invoice links come from `invoice.paid` (older) and
//! `invoice_payment.paid` (newer). A refund whose conversion is not known yet is held and applied
//! when the conversion arrives: Stripe does not deliver events in order.
//!
//! The user of an invoice is, in order: `metadata.user_id` of the invoice, then
//! `subscription_details.metadata.user_id` (older API versions) or
//! `parent.subscription_details.metadata.user_id` (newer ones), then the customer mapping this
//! service learns from `customer.created`/`customer.updated` events and earlier invoices that
//! named the user.
//!
//! Every number taken from an event is checked against the domain's bounds before anything is
//! stored (amounts 0..=`money::MAX_CENTS`, instants within `Timestamp::checked`): an event that
//! fails is acknowledged as ignored, with the reason (a 4xx or 5xx would make Stripe retry it for
//! days, and a stored out-of-range number would break every later read of its row).

use crate::domain::money::MAX_CENTS;
use crate::domain::time::Timestamp;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

pub const TOLERANCE_SECONDS: i64 = 300;

pub fn verify_signature(header: &str, body: &[u8], secret: &[u8], now: i64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let t = timestamp.ok_or("signature header has no timestamp")?;
    // (abs_diff: `now - t` overflows for a `t` near i64::MIN, and a wrapped difference could
    // land inside the tolerance.)
    if now.abs_diff(t) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err("signature timestamp outside the tolerance");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "unusable secret")?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let valid = signatures
        .iter()
        .filter_map(|sig| hex::decode(sig).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if valid {
        Ok(())
    } else {
        Err("no valid v1 signature")
    }
}

/// The envelope of every Stripe event.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Any JSON value: checked by `created` (an out-of-range time is ignored, not a 400).
    pub created: Value,
    pub data: EventData,
}

impl Event {
    /// When the event happened.
    pub fn created(&self) -> Result<Timestamp, &'static str> {
        instant(Some(&self.created)).ok().flatten().ok_or(CREATED_OUT_OF_RANGE)
    }
}

const CREATED_OUT_OF_RANGE: &str = "ignored: created is not a Unix time from 1970 to 9999";
const PAID_AT_OUT_OF_RANGE: &str = "ignored: status_transitions.paid_at is not a Unix time from 1970 to 9999";
const AMOUNT_PAID_OUT_OF_RANGE: &str = "ignored: amount_paid is not an amount from 0 to 1000000000000 cents";
const AMOUNT_REFUNDED_OUT_OF_RANGE: &str = "ignored: amount_refunded is not an amount from 0 to 1000000000000 cents";

/// An integer within the domain's bounds of an instant; `Ok(None)` when absent or null.
fn instant(value: Option<&Value>) -> Result<Option<Timestamp>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().and_then(Timestamp::checked).map(Some).ok_or(()),
    }
}

/// An integer number of cents within the domain's bounds of an amount; `Ok(None)` when absent
/// or null.
fn cents(value: Option<&Value>) -> Result<Option<i64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().filter(|c| (0..=MAX_CENTS).contains(c)).map(Some).ok_or(()),
    }
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: Value,
}

/// `invoice.paid`: a conversion.
#[derive(Debug, PartialEq)]
pub struct PaidInvoice {
    pub invoice_id: String,
    /// 0..=`MAX_CENTS`.
    pub amount_paid: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub user_id: Option<String>,
    pub paid_at: Option<Timestamp>,
    /// Older API versions name the payment intent on the invoice.
    pub payment_intent: Option<String>,
}

/// `charge.refunded`: the cumulative refunded amount of a charge. Older API versions name the
/// invoice; newer ones only the payment intent (linked to its invoice by `invoice_payment.paid`).
#[derive(Debug, PartialEq)]
pub struct RefundedCharge {
    pub invoice_id: Option<String>,
    pub payment_intent: Option<String>,
    /// 0..=`MAX_CENTS`.
    pub amount_refunded: i64,
}

/// `invoice_payment.paid` (API 2025-03-31 and later): which payment intent paid which invoice.
#[derive(Debug, PartialEq)]
pub struct InvoicePayment {
    pub invoice_id: String,
    pub payment_intent: String,
}

/// `customer.created` / `customer.updated` with `metadata.user_id`.
#[derive(Debug, PartialEq)]
pub struct CustomerLink {
    pub customer: String,
    pub user_id: String,
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut node = v;
    for key in path {
        node = node.get(key)?;
    }
    node.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

/// The invoice of an `invoice.paid` event, or why it is ignored.
pub fn paid_invoice(object: &Value) -> Result<PaidInvoice, &'static str> {
    const INCOMPLETE: &str = "ignored: invoice without id, amount_paid or currency";
    let user_id = text(object, &["metadata", "user_id"])
        .or_else(|| text(object, &["subscription_details", "metadata", "user_id"]))
        .or_else(|| text(object, &["parent", "subscription_details", "metadata", "user_id"]));
    let amount_paid = cents(object.get("amount_paid")).map_err(|_| AMOUNT_PAID_OUT_OF_RANGE)?.ok_or(INCOMPLETE)?;
    let paid_at = instant(object.get("status_transitions").and_then(|s| s.get("paid_at"))).map_err(|_| PAID_AT_OUT_OF_RANGE)?;
    Ok(PaidInvoice {
        invoice_id: text(object, &["id"]).ok_or(INCOMPLETE)?,
        amount_paid,
        currency: text(object, &["currency"]).ok_or(INCOMPLETE)?.to_ascii_lowercase(),
        customer: text(object, &["customer"]),
        user_id,
        paid_at,
        payment_intent: text(object, &["payment_intent"]),
    })
}

/// The charge of a `charge.refunded` event, or why it is ignored.
pub fn refunded_charge(object: &Value) -> Result<RefundedCharge, &'static str> {
    const INCOMPLETE: &str = "ignored: charge without invoice, payment intent or amount_refunded";
    let invoice_id = text(object, &["invoice"]).or_else(|| text(object, &["metadata", "invoice_id"]));
    let payment_intent = text(object, &["payment_intent"]);
    let amount_refunded = cents(object.get("amount_refunded")).map_err(|_| AMOUNT_REFUNDED_OUT_OF_RANGE)?;
    match (invoice_id, payment_intent, amount_refunded) {
        (None, None, _) | (_, _, None) => Err(INCOMPLETE),
        (invoice_id, payment_intent, Some(amount_refunded)) => Ok(RefundedCharge { invoice_id, payment_intent, amount_refunded }),
    }
}

pub fn invoice_payment(object: &Value) -> Option<InvoicePayment> {
    Some(InvoicePayment {
        invoice_id: text(object, &["invoice"])?,
        payment_intent: text(object, &["payment", "payment_intent"])?,
    })
}

pub fn customer_link(object: &Value) -> Option<CustomerLink> {
    Some(CustomerLink { customer: text(object, &["id"])?, user_id: text(object, &["metadata", "user_id"])? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn valid_signatures_pass() {
        let body = br#"{"id":"evt_1"}"#;
        let header = format!("t=1000,v1={}", sign(b"whsec", 1000, body));
        assert_eq!(verify_signature(&header, body, b"whsec", 1000), Ok(()));
        assert_eq!(verify_signature(&header, body, b"whsec", 1300), Ok(()));
        // Any of several v1 signatures (secret rotation), other schemes ignored.
        let rotated = format!("t=1000,v0=abc,v1=deadbeef,v1={}", sign(b"whsec", 1000, body));
        assert_eq!(verify_signature(&rotated, body, b"whsec", 1000), Ok(()));
    }

    #[test]
    fn bad_or_stale_signatures_fail() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(b"whsec", 1000, body);
        assert!(verify_signature(&format!("t=1000,v1={good}"), body, b"whsec", 1301).is_err(), "stale");
        assert!(verify_signature(&format!("t=1000,v1={good}"), body, b"whsec", 699).is_err(), "from the future");
        assert!(verify_signature(&format!("t=1000,v1={good}"), br#"{"id":"evt_2"}"#, b"whsec", 1000).is_err());
        assert!(verify_signature(&format!("t=1001,v1={good}"), body, b"whsec", 1000).is_err());
        assert!(verify_signature(&format!("t=1000,v1={good}"), body, b"other", 1000).is_err());
        assert!(verify_signature(&format!("t=1000,v0={good}"), body, b"whsec", 1000).is_err());
        for header in ["", "t=,v1=", "v1=abc", "t=1000", "t=abc,v1=00", "garbage"] {
            assert!(verify_signature(header, body, b"whsec", 1000).is_err(), "{header}");
        }
    }

    #[test]
    fn timestamps_whose_distance_to_now_overflows_are_stale() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000i64;
        // now − t = 2^63 wraps to i64::MIN, whose wrapped abs() is negative: inside the tolerance.
        for t in [now.wrapping_sub(i64::MIN), i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let header = format!("t={t},v1={}", sign(b"whsec", t, body));
            assert_eq!(verify_signature(&header, body, b"whsec", now), Err("signature timestamp outside the tolerance"), "t={t}");
        }
        for now in [i64::MIN, i64::MAX] {
            let header = format!("t=1000,v1={}", sign(b"whsec", 1000, body));
            assert!(verify_signature(&header, body, b"whsec", now).is_err());
        }
    }

    #[test]
    fn numbers_outside_the_domains_bounds_are_reasons_to_ignore() {
        let invoice = |key: &str, value: Value| {
            let mut object = json!({"id": "in_1", "amount_paid": 2000, "currency": "usd", "status_transitions": {"paid_at": 1_800_000_000}});
            match key {
                "paid_at" => object["status_transitions"]["paid_at"] = value,
                _ => object[key] = value,
            }
            paid_invoice(&object)
        };
        let two_63 = Value::from(9_223_372_036_854_775_808u64);
        for value in [two_63.clone(), json!(i64::MIN), json!(-(1i64 << 62)), json!(-1), json!(253_402_300_800i64), json!(1.8e9), json!("1800000000")] {
            assert_eq!(invoice("paid_at", value.clone()), Err(PAID_AT_OUT_OF_RANGE), "{value}");
        }
        for value in [two_63.clone(), json!(i64::MAX), json!(-500), json!(MAX_CENTS + 1), json!(20.5), json!("2000")] {
            assert_eq!(invoice("amount_paid", value.clone()), Err(AMOUNT_PAID_OUT_OF_RANGE), "{value}");
        }
        let ok = invoice("paid_at", json!(253_402_300_799i64)).unwrap();
        assert_eq!((ok.amount_paid, ok.paid_at), (2000, Timestamp::checked(253_402_300_799)));
        assert_eq!(invoice("paid_at", Value::Null).unwrap().paid_at, None);
        assert_eq!(invoice("amount_paid", json!(MAX_CENTS)).unwrap().amount_paid, MAX_CENTS);
        for value in [two_63, json!(i64::MAX), json!(-500), json!(MAX_CENTS + 1), json!(1.5)] {
            let charge = json!({"id": "ch_1", "invoice": "in_1", "amount_refunded": value});
            assert_eq!(refunded_charge(&charge), Err(AMOUNT_REFUNDED_OUT_OF_RANGE), "{value}");
        }
        let event = |created: Value| Event { id: "evt_1".into(), kind: "invoice.paid".into(), created, data: EventData { object: json!({}) } };
        for value in [Value::from(9_223_372_036_854_775_808u64), json!(i64::MIN), json!(-1), json!("now"), Value::Null] {
            assert_eq!(event(value.clone()).created(), Err(CREATED_OUT_OF_RANGE), "{value}");
        }
        assert_eq!(event(json!(1_800_000_000)).created(), Ok(Timestamp::from_unix(1_800_000_000)));
        // The reasons name the bounds the domain sets.
        assert!(AMOUNT_PAID_OUT_OF_RANGE.contains(&format!(" {MAX_CENTS} ")) && AMOUNT_REFUNDED_OUT_OF_RANGE.contains(&format!(" {MAX_CENTS} ")));
    }

    #[test]
    fn invoices_name_their_user_in_several_places() {
        let base = json!({"id": "in_1", "amount_paid": 2000, "currency": "USD", "customer": "cus_1"});
        let mut direct = base.clone();
        direct["metadata"] = json!({"user_id": "u1"});
        assert_eq!(paid_invoice(&direct).unwrap().user_id.as_deref(), Some("u1"));
        assert_eq!(paid_invoice(&direct).unwrap().currency, "usd");
        let mut legacy = base.clone();
        legacy["subscription_details"] = json!({"metadata": {"user_id": "u2"}});
        assert_eq!(paid_invoice(&legacy).unwrap().user_id.as_deref(), Some("u2"));
        let mut parent = base.clone();
        parent["parent"] = json!({"subscription_details": {"metadata": {"user_id": "u3"}}});
        assert_eq!(paid_invoice(&parent).unwrap().user_id.as_deref(), Some("u3"));
        let none = paid_invoice(&base).unwrap();
        assert_eq!((none.user_id, none.customer.as_deref()), (None, Some("cus_1")));
        assert_eq!(paid_invoice(&json!({"id": "in_1"})), Err("ignored: invoice without id, amount_paid or currency"));
    }

    #[test]
    fn refunds_and_customers() {
        assert_eq!(
            refunded_charge(&json!({"id": "ch_1", "invoice": "in_1", "payment_intent": "pi_1", "amount_refunded": 500})),
            Ok(RefundedCharge { invoice_id: Some("in_1".into()), payment_intent: Some("pi_1".into()), amount_refunded: 500 })
        );
        assert_eq!(
            refunded_charge(&json!({"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 500})).unwrap().invoice_id,
            None
        );
        assert!(refunded_charge(&json!({"id": "ch_1", "amount_refunded": 500})).is_err());
        assert_eq!(
            invoice_payment(&json!({"id": "inpay_1", "invoice": "in_1", "payment": {"type": "payment_intent", "payment_intent": "pi_1"}})),
            Some(InvoicePayment { invoice_id: "in_1".into(), payment_intent: "pi_1".into() })
        );
        assert_eq!(
            customer_link(&json!({"id": "cus_1", "metadata": {"user_id": "u1"}})),
            Some(CustomerLink { customer: "cus_1".into(), user_id: "u1".into() })
        );
        assert_eq!(customer_link(&json!({"id": "cus_1", "metadata": {}})), None);
    }
}
