//! The money in: signed Stripe webhooks (signatures, replays, user resolution) and the admin
//! conversion and refund endpoints.

use crate::affiliates::dashboard;
use crate::support::{instant, now, parallel, shared, strict, unique, Server, API};
use crate::trials;
use serde_json::{json, Value};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(conversions:
        bad_signatures_are_400_and_change_nothing,
        redelivered_events_have_one_effect_also_in_parallel,
        invoices_find_their_user,
        other_events_and_currencies_are_ignored,
        webhooks_need_their_secret,
        refunds_that_come_first_wait_for_their_conversion,
        a_refund_that_comes_first_counts_against_the_referral,
        newer_api_refunds_find_their_invoice_through_the_payment,
        admin_conversions_are_idempotent_on_external_id,
        concurrent_partial_refunds_never_exceed_the_payment,
        out_of_range_numbers_in_signed_events_are_acknowledged_and_change_nothing,
        large_genuine_events_fit_the_webhook_limit,
        signature_timestamps_that_overflow_are_stale,
        a_null_refund_amount_is_refused_not_a_full_refund,
    )
}

fn invoice(invoice: &str, object: Value) -> Value {
    let mut object = object;
    object["id"] = json!(invoice);
    object["object"] = json!("invoice");
    json!({"id": unique("evt"), "type": "invoice.paid", "created": now(), "data": {"object": object}})
}

fn commission_count(s: &Server, token: &str) -> i64 {
    dashboard(s, token)["conversions"].as_i64().unwrap()
}

fn bad_signatures_are_400_and_change_nothing() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let event = invoice(&unique("in"), json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer}}));
    let secret = s.var("STRIPE_WEBHOOK_SECRET").unwrap().to_owned();
    let cases = [
        ("wrong secret", s.stripe_signed(&event, now(), "whsec_wrong")),
        ("stale", s.stripe_signed(&event, now() - 360, &secret)),
        ("from the future", s.stripe_signed(&event, now() + 360, &secret)),
        ("missing header", s.post(&format!("{API}/webhooks/stripe")).header("Content-Type", "application/json").body(event.to_string().into_bytes()).send()),
        ("garbage header", s.post(&format!("{API}/webhooks/stripe")).header("Stripe-Signature", "t=abc,v1=zz").body(event.to_string().into_bytes()).send()),
    ];
    for (case, r) in cases {
        assert_eq!(r.status, 400, "{case}: {}", r.body);
        assert_eq!(r.code(), "invalid_signature", "{case}");
    }
    // A body changed after signing.
    let t = now();
    let signed = s.stripe_signed(&json!({"id": "evt_other", "type": "ping", "created": t, "data": {"object": {}}}), t, &secret);
    assert_eq!(signed.status, 200);
    let mut tampered = event.clone();
    tampered["data"]["object"]["amount_paid"] = json!(99_999_999);
    let body = tampered.to_string();
    let good = s.stripe_signed(&event, t, &secret);
    assert_eq!(good.status, 200, "the untampered event goes through");
    let header = format!("t={t},v1={}", "0".repeat(64));
    let r = s.post(&format!("{API}/webhooks/stripe")).header("Stripe-Signature", &header).body(body.into_bytes()).send();
    r.expect_error(400, "invalid_signature");
    assert_eq!(commission_count(s, &token), 1, "only the genuine event counted");
    assert_eq!(dashboard(s, &token)["revenue_cents"], 10_000);
}

fn redelivered_events_have_one_effect_also_in_parallel() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let event = invoice(&unique("in"), json!({"amount_paid": 25_000, "currency": "usd", "metadata": {"user_id": buyer}}));
    let results = parallel(10, |_| s.stripe(&event));
    let outcomes: Vec<String> = results.iter().map(|r| {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["outcome"].as_str().unwrap().to_owned()
    }).collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "conversion_recorded").count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o == "conversion_recorded" || o == "duplicate"));
    // Later redelivery, and the same invoice under another event id (Stripe retries, resends).
    assert_eq!(s.stripe(&event).json()["outcome"], "duplicate");
    let mut resent = event.clone();
    resent["id"] = json!(unique("evt"));
    assert_eq!(s.stripe(&resent).json()["outcome"], "duplicate");
    let d = dashboard(s, &token);
    assert_eq!((d["conversions"].clone(), d["earnings"]["available_cents"].clone()), (json!(1), json!(5_000)));
    // Refund events replayed in parallel reverse once.
    let invoice_id = event["data"]["object"]["id"].as_str().unwrap();
    let refund = json!({"id": unique("evt"), "type": "charge.refunded", "created": now(),
                        "data": {"object": {"id": unique("ch"), "invoice": invoice_id, "amount_refunded": 25_000}}});
    let results = parallel(10, |_| s.stripe(&refund));
    let recorded = results.iter().filter(|r| r.json()["outcome"] == "refund_recorded").count();
    assert_eq!(recorded, 1, "{results:?}");
    let d = dashboard(s, &token);
    assert_eq!((d["earnings"]["available_cents"].clone(), d["earnings"]["reversed_cents"].clone()), (json!(0), json!(5_000)));
    s.assert_ledgers_consistent();
}

fn invoices_find_their_user() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let customer = unique("cus");
    // The customer is linked to the user by a customer event…
    let linked = s.stripe(&json!({"id": unique("evt"), "type": "customer.created", "created": now(),
                                  "data": {"object": {"id": customer, "object": "customer", "metadata": {"user_id": buyer}}}}));
    assert_eq!(linked.json()["outcome"], "customer_linked");
    // …so an invoice naming only the customer is attributed.
    let r = s.stripe(&invoice(&unique("in"), json!({"amount_paid": 1_000, "currency": "usd", "customer": customer})));
    assert_eq!(r.json()["outcome"], "conversion_recorded", "{}", r.body);
    // Subscription metadata (old and new API shapes) names the user too.
    let r = s.stripe(&invoice(&unique("in"), json!({"amount_paid": 1_000, "currency": "usd", "subscription_details": {"metadata": {"user_id": buyer}}})));
    assert_eq!(r.json()["outcome"], "conversion_recorded");
    let r = s.stripe(&invoice(&unique("in"), json!({"amount_paid": 1_000, "currency": "usd", "parent": {"subscription_details": {"metadata": {"user_id": buyer}}}})));
    assert_eq!(r.json()["outcome"], "conversion_recorded");
    assert_eq!(commission_count(s, &token), 3);
    // An invoice nobody can be found for is acknowledged and ignored.
    let r = s.stripe(&invoice(&unique("in"), json!({"amount_paid": 1_000, "currency": "usd", "customer": unique("cus")})));
    assert_eq!((r.status, r.json()["outcome"].clone()), (200, json!("ignored: no user for this invoice")));
}

fn other_events_and_currencies_are_ignored() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    for (event, outcome) in [
        (json!({"id": unique("evt"), "type": "invoice.created", "created": now(), "data": {"object": {"id": unique("in")}}}), "ignored: event type not handled"),
        (invoice(&unique("in"), json!({"amount_paid": 1_000, "currency": "eur", "metadata": {"user_id": buyer}})), "ignored: currency not accepted"),
        (invoice(&unique("in"), json!({"amount_paid": 0, "currency": "usd", "metadata": {"user_id": buyer}})), "ignored: nothing was paid"),
        (json!({"id": unique("evt"), "type": "charge.refunded", "created": now(), "data": {"object": {"id": "ch_x", "amount_refunded": 5}}}), "ignored: charge without invoice, payment intent or amount_refunded"),
    ] {
        let r = s.stripe(&event);
        assert_eq!((r.status, r.json()["outcome"].clone()), (200, json!(outcome)), "{}", r.body);
    }
    assert_eq!(commission_count(s, &token), 0);
    // Signed but not an event.
    let r = s.stripe(&json!(["not", "an", "event"]));
    r.expect_error(400, "invalid_json");
}

fn charge_refunded(invoice: Option<&str>, payment_intent: Option<&str>, total: i64) -> Value {
    let mut charge = json!({"id": unique("ch"), "object": "charge", "amount_refunded": total});
    if let Some(i) = invoice {
        charge["invoice"] = json!(i);
    }
    if let Some(pi) = payment_intent {
        charge["payment_intent"] = json!(pi);
    }
    json!({"id": unique("evt"), "type": "charge.refunded", "created": now(), "data": {"object": charge}})
}

fn refunds_that_come_first_wait_for_their_conversion() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let invoice_id = unique("in");
    // Stripe delivers the refund before the payment.
    let r = s.stripe(&charge_refunded(Some(&invoice_id), None, 10_000));
    assert_eq!(r.json()["outcome"], "refund_held: no conversion for this charge yet", "{}", r.body);
    let r = s.stripe(&invoice(&invoice_id, json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer}})));
    assert_eq!(r.json()["outcome"], "conversion_recorded");
    let d = dashboard(s, &token);
    assert_eq!(d["earnings"], json!({"pending_cents": 0, "available_cents": 0, "in_payout_cents": 0, "paid_cents": 0, "reversed_cents": 2_000}));
    assert_eq!(d["revenue_cents"], 0);
    s.assert_ledgers_consistent();
}

fn a_refund_that_comes_first_counts_against_the_referral() {
    let s = instant(); // no hold: a bonus of an admin conversion is granted at once
    let credits = |token: &str| {
        let b = s.get(&format!("{API}/referrals/balance")).token(token).send().json();
        (b["balance_credits"].as_i64().unwrap(), b["pending_credits"].as_i64().unwrap())
    };
    let paid = |invoice_id: &str, buyer: &str| {
        let r = s.stripe(&invoice(invoice_id, json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer}})));
        assert_eq!(r.json()["outcome"], "conversion_recorded", "{}", r.body);
    };
    // Refunded in full before the payment is reported (older API: the refund names the
    // invoice): the bonus, pending while the payment settles, is cancelled at once.
    let (_, token, code) = crate::referrals::referrer(s);
    let (buyer, _) = crate::referrals::referred(s, &code);
    let invoice_id = unique("in");
    assert_eq!(s.stripe(&charge_refunded(Some(&invoice_id), None, 10_000)).json()["outcome"], "refund_held: no conversion for this charge yet");
    paid(&invoice_id, &buyer);
    assert_eq!(credits(&token), (0, 0));
    // Newer API: the refund names only the payment intent, and the invoice learns it last. The
    // bonus waits (STRIPE_SETTLE_SECONDS), so the link's arrival still cancels it.
    let (_, token, code) = crate::referrals::referrer(s);
    let (buyer, _) = crate::referrals::referred(s, &code);
    let (invoice_id, payment_intent) = (unique("in"), unique("pi"));
    s.stripe(&charge_refunded(None, Some(&payment_intent), 10_000));
    paid(&invoice_id, &buyer);
    assert_eq!(credits(&token), (0, 1_000), "pending while the payment settles");
    let link = json!({"id": unique("evt"), "type": "invoice_payment.paid", "created": now(),
                      "data": {"object": {"id": unique("inpay"), "object": "invoice_payment", "invoice": invoice_id,
                                          "payment": {"type": "payment_intent", "payment_intent": payment_intent}}}});
    assert_eq!(s.stripe(&link).json()["outcome"], "payment_linked");
    assert_eq!(credits(&token), (0, 0));
    // Refunded in part, leaving at least REFERRAL_MIN_PAYMENT_CENTS (500): the bonus stays.
    let (_, token, code) = crate::referrals::referrer(s);
    let (buyer, _) = crate::referrals::referred(s, &code);
    let invoice_id = unique("in");
    s.stripe(&charge_refunded(Some(&invoice_id), None, 9_500));
    paid(&invoice_id, &buyer);
    assert_eq!(credits(&token), (0, 1_000));
    s.assert_ledgers_consistent();
}

fn newer_api_refunds_find_their_invoice_through_the_payment() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let (invoice_id, payment_intent) = (unique("in"), unique("pi"));
    let payment = json!({"id": unique("evt"), "type": "invoice_payment.paid", "created": now(),
                         "data": {"object": {"id": unique("inpay"), "object": "invoice_payment", "invoice": invoice_id,
                                             "payment": {"type": "payment_intent", "payment_intent": payment_intent}}}});
    // A half refund names only the payment intent, and arrives before everything else.
    let r = s.stripe(&charge_refunded(None, Some(&payment_intent), 5_000));
    assert_eq!(r.json()["outcome"], "refund_held: no conversion for this charge yet", "{}", r.body);
    assert_eq!(s.stripe(&payment).json()["outcome"], "payment_linked");
    let r = s.stripe(&invoice(&invoice_id, json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer}})));
    assert_eq!(r.json()["outcome"], "conversion_recorded");
    assert_eq!(dashboard(s, &token)["earnings"]["available_cents"], 1_000, "half of the $20.00 commission");
    // The rest of the refund, in order this time.
    let r = s.stripe(&charge_refunded(None, Some(&payment_intent), 10_000));
    assert_eq!(r.json()["outcome"], "refund_recorded", "{}", r.body);
    let d = dashboard(s, &token);
    assert_eq!((d["earnings"]["available_cents"].clone(), d["earnings"]["reversed_cents"].clone()), (json!(0), json!(2_000)));
    s.assert_ledgers_consistent();
}

fn webhooks_need_their_secret() {
    let s = strict(); // no STRIPE_WEBHOOK_SECRET
    let r = s.post(&format!("{API}/webhooks/stripe")).header("Stripe-Signature", "t=1,v1=00").body(b"{}".to_vec()).send();
    r.expect_error(503, "webhooks_disabled");
}

fn admin_conversions_are_idempotent_on_external_id() {
    let s = shared();
    let (user, _) = s.user();
    let external_id = unique("inv");
    let body = json!({"external_id": external_id, "user_id": user, "amount_cents": 4_200, "currency": "USD", "occurred_at": "2026-01-02T03:04:05Z"});
    let post = |b: &Value| s.post(&format!("{API}/admin/conversions")).token(s.admin()).json(b).send();
    let first = post(&body);
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.json()["conversion"]["currency"], "usd");
    let again = post(&body);
    assert_eq!((again.status, again.json()["conversion"].clone()), (200, first.json()["conversion"].clone()));
    let mut different = body.clone();
    different["amount_cents"] = json!(4_300);
    post(&different).expect_error(409, "already_exists");
    for (patch, status, code, field) in [
        (json!({"currency": "eur"}), 422, "unsupported_currency", "currency"),
        (json!({"amount_cents": 0}), 422, "validation_failed", "amount_cents"),
        (json!({"amount_cents": 2_000_000_000_000i64}), 422, "validation_failed", "amount_cents"),
        (json!({"occurred_at": "2999-01-01T00:00:00Z"}), 422, "validation_failed", "occurred_at"),
        (json!({"occurred_at": "yesterday"}), 422, "validation_failed", "occurred_at"),
        (json!({"user_id": ""}), 422, "validation_failed", "user_id"),
        (json!({"external_id": "has space"}), 422, "validation_failed", "external_id"),
        // Taken as written, as the document's pattern says (no silent trimming).
        (json!({"external_id": " inv-padded "}), 422, "validation_failed", "external_id"),
        (json!({"currency": "eur"}), 422, "unsupported_currency", "currency"),
    ] {
        let mut b = body.clone();
        b["external_id"] = json!(unique("inv"));
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = post(&b);
        r.expect_error(status, code);
        assert_eq!(r.json()["error"]["field"], field, "{patch}");
    }
    // Not for regular users.
    let (_, token) = s.user();
    s.post(&format!("{API}/admin/conversions")).token(&token).json(&body).send().expect_error(403, "forbidden");
    s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": unique("nope")})).send().expect_error(404, "not_found");
}

fn concurrent_partial_refunds_never_exceed_the_payment() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let conversion = s.convert(&buyer, 5_000);
    assert_eq!(conversion["effects"]["commission_cents"], 1_000);
    let external_id = conversion["conversion"]["external_id"].as_str().unwrap();
    // Ten parallel refunds of $10.00 against a $50.00 payment: exactly five land.
    let results = parallel(10, |_| {
        s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id, "amount_cents": 1_000})).send()
    });
    let landed = results.iter().filter(|r| r.status == 201).count();
    assert!(results.iter().all(|r| r.status == 201 || (r.status == 409 && r.code() == "refund_exceeds_amount") || (r.status == 409 && r.code() == "refund_contention")), "{results:?}");
    assert!(landed <= 5, "{results:?}");
    // Retry the contended ones until the payment is refunded in full: never more.
    while s.post(&format!("{API}/admin/refunds")).token(s.admin()).json(&json!({"external_id": external_id, "amount_cents": 1_000})).send().status == 201 {}
    let reversed: i64 = dashboard(s, &token)["earnings"]["reversed_cents"].as_i64().unwrap();
    assert_eq!(reversed, 1_000, "the whole commission, reversed exactly once");
    assert_eq!(dashboard(s, &token)["earnings"]["available_cents"], 0);
    s.assert_ledgers_consistent();
}

fn out_of_range_numbers_in_signed_events_are_acknowledged_and_change_nothing() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let invoice_id = unique("in");
    let paid = |object: Value| invoice(&invoice_id, object);
    let base = json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer}});
    let with = |key: &str, value: Value| {
        let mut object = base.clone();
        object[key] = value;
        paid(object)
    };
    let paid_at = |value: Value| with("status_transitions", json!({"paid_at": value}));
    let created = |value: Value| {
        let mut event = paid(base.clone());
        event["created"] = value;
        event
    };
    // The probe's values: ±2^63 as JSON numbers, 2^63 − 1, −500, −2^62.
    let two_63 = Value::from(9_223_372_036_854_775_808u64);
    let refund = |total: Value| {
        json!({"id": unique("evt"), "type": "charge.refunded", "created": now(),
               "data": {"object": {"id": unique("ch"), "object": "charge", "invoice": invoice_id, "amount_refunded": total}}})
    };
    let events = [
        ("paid_at", paid_at(two_63.clone())),
        ("paid_at", paid_at(json!(i64::MIN))),
        ("paid_at", paid_at(json!(-(1i64 << 62)))),
        ("paid_at", paid_at(json!(-1))),
        ("paid_at", paid_at(json!(253_402_300_800i64))),
        ("paid_at", paid_at(json!(1.5e9))),
        ("created", created(two_63.clone())),
        ("created", created(json!(i64::MIN))),
        ("created", created(json!("yesterday"))),
        ("amount_paid", with("amount_paid", json!(i64::MAX))),
        ("amount_paid", with("amount_paid", two_63.clone())),
        ("amount_paid", with("amount_paid", json!(1_000_000_000_001i64))),
        // Refunds of an invoice not paid yet (they would be held for it).
        ("amount_refunded", refund(json!(i64::MAX))),
        ("amount_refunded", refund(json!(-500))),
        ("amount_refunded", refund(two_63)),
        ("amount_refunded", refund(json!(100.5))),
    ];
    // Delivered at once, as Stripe does.
    let results = parallel(events.len(), |i| s.stripe(&events[i].1));
    for ((field, event), r) in events.iter().zip(&results) {
        assert_eq!(r.status, 200, "{event}: {}", r.body);
        let outcome = r.json()["outcome"].as_str().unwrap().to_owned();
        assert!(outcome.starts_with("ignored: ") && outcome.contains(field), "{event}: {outcome}");
        let id = event["id"].as_str().unwrap().to_owned();
        let logged = s.wait_log(|l| l["stripe_event"] == id.as_str() && l["outcome"] == outcome.as_str());
        assert_eq!(logged.len(), 1, "the reason is logged: {id}");
    }
    let d = dashboard(s, &token);
    assert_eq!((d["conversions"].clone(), d["revenue_cents"].clone()), (json!(0), json!(0)), "nothing was stored: {d}");
    // The genuine invoice and a genuine partial refund of it still work, and the cron is happy.
    let r = s.stripe(&paid(base.clone()));
    assert_eq!(r.json()["outcome"], "conversion_recorded", "{}", r.body);
    let r = s.stripe(&refund(json!(2_500)));
    assert_eq!(r.json()["outcome"], "refund_recorded", "{}", r.body);
    let d = dashboard(s, &token);
    assert_eq!((d["conversions"].clone(), d["revenue_cents"].clone(), d["earnings"]["available_cents"].clone()), (json!(1), json!(7_500), json!(1_500)), "{d}");
    s.run_cron("* * * * *");
    s.assert_ledgers_consistent();
}

fn large_genuine_events_fit_the_webhook_limit() {
    let s = shared();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    // An invoice with many lines, as Stripe sends them: about 300 KB.
    let line = |i: usize| {
        json!({"id": format!("il_{i:06}"), "object": "line_item", "amount": 10, "currency": "usd",
               "description": format!("1 × Fingerprint lookup pack (at $0.10 / month) — item {i}"),
               "period": {"start": now() - 86_400, "end": now()}, "quantity": 1,
               "metadata": {"sku": format!("sku_{i}")}})
    };
    let lines: Vec<Value> = (0..1_300).map(line).collect();
    let event = invoice(&unique("in"), json!({"amount_paid": 10_000, "currency": "usd", "metadata": {"user_id": buyer},
                                               "lines": {"object": "list", "data": lines, "has_more": false}}));
    let size = event.to_string().len();
    assert!((250_000..400_000).contains(&size), "{size} bytes");
    let r = s.stripe(&event);
    assert_eq!((r.status, r.json()["outcome"].clone()), (200, json!("conversion_recorded")), "{}", r.body);
    assert_eq!(dashboard(s, &token)["revenue_cents"], 10_000);
    // The limit still holds, for the webhook too.
    let mut huge = event.clone();
    huge["data"]["object"]["lines"]["data"] = json!((0..5_000).map(line).collect::<Vec<_>>());
    huge["data"]["object"]["id"] = json!(unique("in"));
    huge["id"] = json!(unique("evt"));
    let length = huge.to_string().len();
    assert!(length > 1 << 20);
    // (Its head only, then the answer is read: the declared length alone is refused, and a
    // client still writing the body when the server answers and closes sees its write reset.)
    let head = format!(
        "POST {API}/webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    let answer = s.raw(head.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("payload_too_large"), "{answer}");
    assert_eq!(commission_count(s, &token), 1);
}

fn signature_timestamps_that_overflow_are_stale() {
    let s = shared();
    let secret = s.var("STRIPE_WEBHOOK_SECRET").unwrap().to_owned();
    let event = json!({"id": unique("evt"), "type": "ping", "created": now(), "data": {"object": {}}});
    // now − t = 2^63 does not fit an i64: computed with wrapping, |now − t| came out negative
    // and inside the tolerance. One of these is that second.
    for t in [now() - 2, now() - 1, now(), now() + 1, now() + 2].map(|n| n.wrapping_sub(i64::MIN)) {
        let r = s.stripe_signed(&event, t, &secret);
        r.expect_error(400, "invalid_signature");
    }
    for t in [i64::MIN, i64::MAX, -1, 0] {
        s.stripe_signed(&event, t, &secret).expect_error(400, "invalid_signature");
    }
}

fn a_null_refund_amount_is_refused_not_a_full_refund() {
    let s = instant();
    let (_, token, _, code) = s.active_affiliate();
    let (buyer, _) = s.referred_user(&code);
    let conversion = s.convert(&buyer, 10_000);
    let external_id = conversion["conversion"]["external_id"].as_str().unwrap().to_owned();
    let refund = |body: &str| s.post(&format!("{API}/admin/refunds")).token(s.admin()).header("Content-Type", "application/json").body(body.into()).send();
    let r = refund(&format!(r#"{{"external_id": "{external_id}", "amount_cents": null}}"#));
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "amount_cents");
    assert_eq!(dashboard(s, &token)["earnings"]["reversed_cents"], 0, "nothing was refunded");
    // Null refunds among $10.00 refunds, all at once: only the $10.00 ones land.
    let results = parallel(12, |i| {
        let amount = if i % 2 == 0 { "null" } else { "1000.0" };
        refund(&format!(r#"{{"external_id": "{external_id}", "amount_cents": {amount}}}"#))
    });
    let mut landed = 0;
    for (i, r) in results.iter().enumerate() {
        match (i % 2, r.status) {
            (0, _) => r.expect_error(422, "validation_failed"),
            (_, 201) => landed += 1,
            _ => r.expect_error(409, "refund_contention"),
        }
    }
    assert!(landed >= 1, "{results:?}");
    assert_eq!(dashboard(s, &token)["earnings"]["reversed_cents"], 200 * landed, "{landed} refunds of $10.00 reverse $2.00 each");
    // Leaving the amount out refunds the rest.
    let r = refund(&format!(r#"{{"external_id": "{external_id}"}}"#));
    assert_eq!((r.status, r.json()["conversion"]["refunded_cents"].clone()), (201, json!(10_000)), "{}", r.body);
    assert_eq!(dashboard(s, &token)["earnings"]["reversed_cents"], 2_000);
    s.assert_ledgers_consistent();
}
