//! Marketplace, the seller's side and reviews: reviews only by buyers, exact under parallel
//! writes and removed by a refund; the seller's earnings, analytics, payouts (a refund after a
//! payout netted in the next), item stats, and the licenses of their items.

use crate::marketplace::{create_item, published_item, upload};
use crate::support::{parallel, shared, unique, Resp, Server, API};
use crate::trials;
use serde_json::{json, Value};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(marketplace_sellers:
        reviews_come_from_buyers_only_and_stay_exact_in_parallel,
        sellers_see_sales_refunds_and_payouts_netted,
        sellers_list_disable_and_enable_the_licenses_of_their_items,
    )
}

fn buy(s: &Server, token: &str, item: &str) -> Value {
    let r = s.post(&format!("{API}/marketplace/items/{item}/purchase")).token(token).header("Idempotency-Key", &unique("k")).json(&json!({})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

/// Bought and paid (for other billing: an admin completes it).
fn bought(s: &Server, token: &str, item: &str) -> Value {
    let order = buy(s, token, item);
    if order["status"] == "completed" {
        return order;
    }
    let id = order["order_id"].as_str().unwrap();
    let r = s.post(&format!("{API}/admin/marketplace/orders/{id}/complete")).token(s.admin()).json(&json!({"payment_ref": unique("inv")})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn refund(s: &Server, order: &Value) {
    let id = order["order_id"].as_str().unwrap();
    let r = s.post(&format!("{API}/admin/marketplace/orders/{id}/refund")).token(s.admin()).json(&json!({})).send();
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("refunded")), "{}", r.body);
}

fn review(s: &Server, token: &str, item: &str, body: &Value) -> Resp {
    s.post(&format!("{API}/marketplace/items/{item}/reviews")).token(token).json(body).send()
}

fn rating(s: &Server, item: &str) -> (Value, Value) {
    let r = s.get(&format!("{API}/marketplace/items/{item}")).send();
    assert_eq!(r.status, 200, "{}", r.body);
    let item = r.json();
    (item["average_rating"].clone(), item["review_count"].clone())
}

/// Every review of an item, page by page, without a token.
fn all_reviews(s: &Server, item: &str) -> Vec<Value> {
    let (mut all, mut cursor) = (Vec::new(), String::new());
    loop {
        let r = s.get(&format!("{API}/marketplace/items/{item}/reviews?limit=7{cursor}")).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

fn reviews_come_from_buyers_only_and_stay_exact_in_parallel() {
    let s = shared();
    let (_, seller) = s.user();
    let item = published_item(s, &seller, &json!({"title": "Reviewed plugin", "category": "plugin", "price_cents": 0}));
    let good = json!({"rating": 5, "title": "Works"});
    // Only buyers, and only well-formed reviews.
    let (_, stranger) = s.user();
    review(s, &stranger, &item, &good).expect_error(403, "purchase_required");
    review(s, &seller, &item, &good).expect_error(403, "purchase_required");
    s.post(&format!("{API}/marketplace/items/{item}/reviews")).json(&good).send().expect_error(401, "unauthorized");
    let buyers: Vec<String> = (0..20).map(|_| s.user().1).collect();
    let orders: Vec<Value> = buyers.iter().map(|t| bought(s, t, &item)).collect();
    review(s, &buyers[0], &item, &json!({"rating": 6, "title": "Too good"})).expect_error(422, "validation_failed");
    review(s, &buyers[0], &item, &json!({"rating": 4.5, "title": "Half"})).expect_error(422, "validation_failed");
    review(s, &buyers[0], &item, &json!({"rating": 4, "title": " "})).expect_error(422, "validation_failed");
    review(s, &buyers[0], &item, &json!({"rating": 4, "title": "Hi", "stars": 1})).expect_error(422, "validation_failed");
    let draft = create_item(s, &seller, &json!({"title": "Draft", "category": "plugin", "price_cents": 0}));
    review(s, &buyers[0], draft["id"].as_str().unwrap(), &good).expect_error(404, "not_found");
    assert_eq!(rating(s, &item), (Value::Null, json!(0)));

    // Twenty buyers at once: 7 × 5 + 13 × 2 = 61 over 20.
    let stars = |i: usize| if i < 7 { 5 } else { 2 };
    let results = parallel(20, |i| review(s, &buyers[i], &item, &json!({"rating": stars(i), "title": format!("Review {i}"), "review_text": "Text"})));
    assert!(results.iter().all(|r| r.status == 201), "{:?}", results.iter().map(|r| &r.body).collect::<Vec<_>>());
    assert_eq!(rating(s, &item), (json!(3.05), json!(20)));
    // Ten of them write again at once: their reviews are replaced (200), not added.
    // 61 − (7 × 5 + 3 × 2) + 10 × 1 = 30 over 20.
    let again = parallel(10, |i| review(s, &buyers[i], &item, &json!({"rating": 1, "title": "Changed my mind"})));
    assert!(again.iter().all(|r| r.status == 200), "{:?}", again.iter().map(|r| &r.body).collect::<Vec<_>>());
    assert_eq!(again[0].json()["id"], results[0].json()["id"], "the same review, replaced");
    assert_eq!(rating(s, &item), (json!(1.5), json!(20)));
    let listed = all_reviews(s, &item);
    assert_eq!(listed.len(), 20);
    assert_eq!(listed.iter().filter(|r| r["rating"] == 1).count(), 10);
    let times: Vec<&str> = listed.iter().map(|r| r["updated_at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "the latest written first: {times:?}");

    // A refund removes the buyer's review (a 1) from the average, racing their own new review:
    // whichever lands first, the review is gone and the counts are exact.
    let raced = parallel(2, |i| {
        if i == 0 {
            refund(s, &orders[0]);
            None
        } else {
            Some(review(s, &buyers[0], &item, &json!({"rating": 1, "title": "Once more"})))
        }
    });
    let late = raced[1].as_ref().unwrap();
    assert!(late.status == 200 || late.code() == "purchase_required", "{}", late.body);
    // 30 − 1 = 29 over 19.
    assert_eq!(rating(s, &item), (json!(1.53), json!(19)));
    assert_eq!(all_reviews(s, &item).len(), 19);
    review(s, &buyers[0], &item, &good).expect_error(403, "purchase_required");
    s.assert_ledgers_consistent();
}

fn earnings(s: &Server, token: &str) -> Value {
    let r = s.get(&format!("{API}/marketplace/seller/earnings")).token(token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn pay_out(s: &Server, token: &str) -> Resp {
    s.post(&format!("{API}/marketplace/seller/payouts")).token(token).json(&json!({})).send()
}

fn settle(s: &Server, payout: &str) {
    for status in ["approved", "processing", "paid"] {
        let r = s.patch(&format!("{API}/admin/payouts/{payout}")).token(s.admin()).json(&json!({"status": status})).send();
        assert_eq!(r.status, 200, "{status}: {}", r.body);
    }
}

fn sales(v: &Value) -> [i64; 6] {
    ["sales", "refunds", "gross_cents", "refunded_cents", "fee_cents", "net_cents"].map(|k| v[k].as_i64().unwrap_or(-1))
}

/// Sales, refunds and payouts of one seller on an instance without the earnings hold: the
/// totals add up, a refund after a payout is netted against the next one.
fn sellers_see_sales_refunds_and_payouts_netted() {
    let s = &Server::start(&[("COMMISSION_HOLD_DAYS", "0"), ("MIN_PAYOUT_CENTS", "100")]);
    let (seller, token) = s.user();
    // A: 10.00 (fee 1.50, seller 8.50); B: 20.00 (fee 3.00, seller 17.00).
    let a = published_item(s, &token, &json!({"title": "Item A", "category": "audio_dataset", "price_cents": 1000}));
    let b = published_item(s, &token, &json!({"title": "Item B", "category": "model", "price_cents": 2000}));
    let (_, one) = s.user();
    let (_, two) = s.user();
    let a1 = bought(s, &one, &a);
    let a2 = bought(s, &two, &a);
    bought(s, &one, &b);
    let e = earnings(s, &token);
    assert_eq!(sales(&e["totals"]), [3, 0, 4000, 0, 600, 3400], "{e}");
    assert_eq!(e["balances"]["available_cents"], 3400);
    let by_item: Vec<(Value, [i64; 6])> = e["by_item"].as_array().unwrap().iter().map(|i| (i["item_id"].clone(), sales(i))).collect();
    assert_eq!(by_item, vec![(json!(a), [2, 0, 2000, 0, 300, 1700]), (json!(b), [1, 0, 2000, 0, 300, 1700])], "ties by gross, then id");
    let months = e["by_month"].as_array().unwrap();
    let summed = months.iter().map(sales).fold([0; 6], |a, m| std::array::from_fn(|k| a[k] + m[k]));
    assert_eq!(summed, [3, 0, 4000, 0, 600, 3400], "the months add up to the totals");
    let before = s.get(&format!("{API}/marketplace/seller/earnings?from=2020-01&to=2020-12")).token(&token).send().json();
    assert_eq!((sales(&before["totals"]), before["by_item"].as_array().unwrap().len()), ([0; 6], 0), "no sale in 2020");
    assert_eq!(before["balances"]["available_cents"], 3400, "balances are not windowed");

    // Paid out, then one sale refunded: the seller owes it, and the next payout nets it.
    let r = pay_out(s, &token);
    assert_eq!((r.status, r.json()["amount_cents"].as_i64()), (201, Some(3400)), "{}", r.body);
    settle(s, r.json()["id"].as_str().unwrap());
    refund(s, &a2);
    let e = earnings(s, &token);
    assert_eq!(sales(&e["totals"]), [2, 1, 4000, 1000, 450, 2550], "gross = refunded + fees + net");
    assert_eq!((e["balances"]["available_cents"].as_i64(), e["balances"]["paid_cents"].as_i64()), (Some(-850), Some(3400)));
    pay_out(s, &token).expect_error(409, "below_minimum");
    let (_, three) = s.user();
    bought(s, &three, &b);
    let r = pay_out(s, &token);
    assert_eq!((r.status, r.json()["amount_cents"].as_i64()), (201, Some(1700 - 850)), "{}", r.body);
    let payouts = s.get(&format!("{API}/marketplace/seller/payouts")).token(&token).send().json();
    assert_eq!(payouts["items"].as_array().unwrap().len(), 2);
    assert!(payouts["items"].as_array().unwrap().iter().all(|p| p["program"] == "marketplace" && p["user_id"] == seller.as_str()));

    // Analytics over the default window, and the top item.
    let r = s.get(&format!("{API}/marketplace/seller/analytics?top=1")).token(&token).send();
    assert_eq!(r.status, 200, "{}", r.body);
    let analytics = r.json();
    assert_eq!(sales(&analytics["totals"]), [3, 1, 6000, 1000, 750, 4250]);
    assert_eq!(analytics["top_items"].as_array().unwrap().len(), 1);
    assert_eq!((analytics["top_items"][0]["item_id"].clone(), analytics["top_items"][0]["title"].clone()), (json!(b), json!("Item B")));
    let past = s.get(&format!("{API}/marketplace/seller/analytics?from=2020-01-01&to=2020-02-01")).token(&token).send().json();
    assert_eq!(sales(&past["totals"]), [0, 0, 0, 0, 0, 0]);
    s.get(&format!("{API}/marketplace/seller/analytics?top=0")).token(&token).send().expect_error(422, "validation_failed");
    s.get(&format!("{API}/marketplace/seller/earnings?from=2026-13")).token(&token).send().expect_error(422, "validation_failed");

    // The seller's item list: revenue and downloads per item.
    let link = s.get(&format!("{API}/marketplace/purchases/{}/download", a1["order_id"].as_str().unwrap())).token(&one).send();
    assert_eq!(link.status, 302);
    let path = link.header("Location").unwrap();
    assert_eq!(ureq::get(&format!("{}{}", s.base(), &path[path.find("/d/").unwrap()..])).call().expect("download").status(), 200);
    let items = s.get(&format!("{API}/marketplace/seller/items")).token(&token).send().json();
    let stats: Vec<(Value, Value, Value)> =
        items["items"].as_array().unwrap().iter().map(|i| (i["id"].clone(), i["seller"]["revenue_cents"].clone(), i["seller"]["downloads"].clone())).collect();
    assert_eq!(stats, vec![(json!(b), json!(3400), json!(0)), (json!(a), json!(850), json!(1))]);

    // Another user has no sales to see; nobody else's earnings show.
    let (_, other) = s.user();
    assert_eq!(sales(&earnings(s, &other)["totals"]), [0, 0, 0, 0, 0, 0]);
    s.assert_ledgers_consistent();
}

fn licenses_of(s: &Server, token: &str, item: &str) -> Resp {
    s.get(&format!("{API}/marketplace/items/{item}/licenses?limit=1")).token(token).send()
}

fn set_license(s: &Server, token: &str, license: &str, status: &str) -> Resp {
    s.patch(&format!("{API}/marketplace/licenses/{license}")).token(token).json(&json!({"status": status})).send()
}

fn validate(s: &Server, key: &str, item: &str) -> String {
    let r = s.post(&format!("{API}/licenses/validate")).json(&json!({"license_key": key, "item_id": item})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["code"].as_str().unwrap().to_owned()
}

fn sellers_list_disable_and_enable_the_licenses_of_their_items() {
    let s = shared();
    let (_, seller) = s.user();
    let item = create_item(s, &seller, &json!({"title": "Licensed", "category": "plugin", "price_cents": 0, "activation_limit": 2}));
    let item = item["id"].as_str().unwrap().to_owned();
    assert_eq!(upload(s, &seller, &item, "", "application/zip", vec![7; 100]).status, 201);
    assert_eq!(s.patch(&format!("{API}/marketplace/items/{item}")).token(&seller).json(&json!({"status": "published"})).send().status, 200);
    let (buyer, token) = s.user();
    let (_, other_token) = s.user();
    let first = bought(s, &token, &item);
    let second = bought(s, &other_token, &item);
    let key = first["license"]["key"].as_str().unwrap().to_owned();
    let r = s.post(&format!("{API}/licenses/activate")).json(&json!({"license_key": key, "item_id": item, "instance_name": "studio-mac"})).send();
    assert_eq!(r.status, 201, "{}", r.body);

    // Newest first, a page at a time, with active instances and only a hint of the key.
    let page = licenses_of(s, &seller, &item);
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    assert_eq!(page["items"][0]["order_id"], second["order_id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = s.get(&format!("{API}/marketplace/items/{item}/licenses?limit=1&cursor={cursor}")).token(&seller).send().json();
    let license = next["items"][0].clone();
    assert_eq!((license["order_id"].clone(), license["buyer_id"].as_str()), (first["order_id"].clone(), Some(buyer.as_str())));
    assert_eq!((license["activation_usage"].as_i64(), license["instances"][0]["instance_name"].as_str()), (Some(1), Some("studio-mac")));
    let hint = license["key_hint"].as_str().unwrap();
    assert!(hint.starts_with("SHM-") && key.ends_with(hint.rsplit('-').next().unwrap()), "{license}");
    assert!(!next.to_string().contains(&key), "the key is the buyer's");
    // Only the seller: a buyer or a stranger sees 404.
    let (_, other_seller) = s.user();
    published_item(s, &other_seller, &json!({"title": "Another seller's", "category": "plugin", "price_cents": 0}));
    let id = license["id"].as_str().unwrap();
    for stranger in [&token, &other_seller] {
        licenses_of(s, stranger, &item).expect_error(404, "not_found");
        set_license(s, stranger, id, "disabled").expect_error(404, "not_found");
    }

    // Disabled: validates as such and activates nothing; enabled again: valid.
    let r = set_license(s, &seller, id, "disabled");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("disabled")), "{}", r.body);
    assert_eq!(set_license(s, &seller, id, "disabled").status, 200, "the same status again changes nothing");
    assert_eq!(validate(s, &key, &item), "disabled");
    s.post(&format!("{API}/licenses/activate"))
        .json(&json!({"license_key": key, "item_id": item, "instance_name": "laptop"}))
        .send()
        .expect_error(409, "license_disabled");
    assert_eq!(set_license(s, &seller, id, "active").status, 200);
    assert_eq!(validate(s, &key, &item), "valid");
    set_license(s, &seller, id, "revoked").expect_error(422, "validation_failed");
    // A refunded buyer's license is revoked for good.
    refund(s, &second);
    let revoked = page["items"][0]["id"].as_str().unwrap();
    set_license(s, &seller, revoked, "active").expect_error(409, "invalid_transition");
    // Parallel toggles end in one of the two states, each write whole.
    let toggles = parallel(10, |i| set_license(s, &seller, id, if i % 2 == 0 { "disabled" } else { "active" }));
    assert!(toggles.iter().all(|r| r.status == 200), "{:?}", toggles.iter().map(|r| &r.body).collect::<Vec<_>>());
    let listed = s.get(&format!("{API}/marketplace/items/{item}/licenses")).token(&seller).send().json();
    let status = listed["items"].as_array().unwrap().iter().find(|l| l["id"] == id).unwrap()["status"].as_str().unwrap().to_owned();
    assert_eq!(validate(s, &key, &item), if status == "active" { "valid" } else { "disabled" });
}
