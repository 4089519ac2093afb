//! Marketplace listings: a draft, its file streamed to R2 (SHA-256 recorded), published, found
//! by full-text search without a token; versions; edits guarded against lost updates and
//! private to the seller; uploads bounded, typed, and never replacing a version's file.

use crate::support::{parallel, shared, unique, Resp, Server, API};
use crate::trials;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(marketplace:
        a_listing_is_uploaded_published_and_found_without_a_token,
        edits_are_private_to_the_seller_and_never_lost,
        uploads_are_bounded_and_typed,
        parallel_uploads_of_a_version_keep_one_file,
        a_purchase_completes_once_into_a_license_a_download_and_a_held_earning,
        license_keys_activate_up_to_their_limit_exactly,
        a_paid_order_checks_out_with_stripe_and_completes_once_on_the_webhook,
    )
}

pub fn create_item(s: &Server, token: &str, body: &Value) -> Value {
    let r = s.post(&format!("{API}/marketplace/items")).token(token).json(body).send();
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

pub fn upload(s: &Server, token: &str, item: &str, query: &str, content_type: &str, bytes: Vec<u8>) -> Resp {
    s.request("PUT", &format!("{API}/marketplace/items/{item}/file{query}"))
        .token(token)
        .header("Content-Type", content_type)
        .body(bytes)
        .send()
}

fn patch(s: &Server, token: &str, item: &str, body: &Value) -> Resp {
    s.patch(&format!("{API}/marketplace/items/{item}")).token(token).json(body).send()
}

/// Bytes that differ from one call to the next (not compressible into a shortcut).
fn file_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A published item of `token`'s with one uploaded file: its id.
pub fn published_item(s: &Server, token: &str, body: &Value) -> String {
    let item = create_item(s, token, body);
    let id = item["id"].as_str().unwrap().to_owned();
    let r = upload(s, token, &id, "", "application/zip", file_bytes(1024, 7));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = patch(s, token, &id, &json!({"status": "published"}));
    assert_eq!(r.status, 200, "{}", r.body);
    id
}

fn search(s: &Server, query: &str) -> Vec<String> {
    let r = s.get(&format!("{API}/marketplace/items?limit=100{query}")).send();
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

fn a_listing_is_uploaded_published_and_found_without_a_token() {
    let s = shared();
    let (seller, token) = s.user();
    let word = unique("zq").replace(['-', '_'], "");
    let item = create_item(
        s,
        &token,
        &json!({"title": format!("Jazz café {word} fingerprints"), "description": "Smooth recordings", "category": "fingerprint_database",
                "tags": ["Jazz Piano", "live"], "price_cents": 1999, "currency": "USD", "activation_limit": 3}),
    );
    let id = item["id"].as_str().unwrap().to_owned();
    assert_eq!((item["status"].as_str(), item["seller_id"].as_str()), (Some("draft"), Some(seller.as_str())));
    assert_eq!(item["tags"], json!(["jazz-piano", "live"]));
    assert_eq!(item["seller"]["fee_bps"], 1500);
    // A draft is its seller's only, and is published only with a file.
    s.get(&format!("{API}/marketplace/items/{id}")).send().expect_error(404, "not_found");
    patch(s, &token, &id, &json!({"status": "published"})).expect_error(409, "file_required");
    // A multi-MiB file, streamed; the SHA-256 recorded is the file's.
    let bytes = file_bytes(3 * 1024 * 1024 + 17, 1);
    let sha = hex::encode(Sha256::digest(&bytes));
    let r = upload(s, &token, &id, "", "application/zip", bytes);
    assert_eq!(r.status, 201, "{}", r.body);
    let v1 = r.json();
    assert_eq!((v1["version_number"].as_str(), v1["is_latest"].as_bool()), (Some("1.0.0"), Some(true)));
    assert_eq!((v1["file"]["sha256"].as_str(), v1["file"]["size"].as_i64()), (Some(sha.as_str()), Some(3 * 1024 * 1024 + 17)));
    let r = patch(s, &token, &id, &json!({"status": "published"}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Found without a token: by words (the last as a prefix, accents folded), tag, category and price.
    assert_eq!(search(s, &format!("&q={word}")), vec![id.clone()]);
    assert_eq!(search(s, &format!("&q=cafe%20{}", &word[..word.len() - 2])), vec![id.clone()]);
    assert_eq!(search(s, &format!("&q={word}%20piano")), vec![id.clone()], "tags are searched");
    assert!(search(s, &format!("&q={word}%20rock")).is_empty(), "every word is required");
    assert!(search(s, "&tag=Jazz_piano&category=fingerprint_database&min_price=1999&max_price=1999&sort=newest").contains(&id));
    assert!(!search(s, "&tag=jazz-piano&max_price=1998").contains(&id));
    s.get(&format!("{API}/marketplace/items?q={}", "x".repeat(201))).send().expect_error(422, "validation_failed");
    s.get(&format!("{API}/marketplace/items?sort=cheapest")).send().expect_error(422, "validation_failed");
    assert!(search(s, "&q=%21%21%21").is_empty(), "a query with nothing searchable matches nothing");
    // A second version becomes the latest once its file is there.
    let r = s.post(&format!("{API}/marketplace/items/{id}/versions")).token(&token).json(&json!({"version_number": "1.1.0", "release_notes": "More tracks"})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["file"], Value::Null);
    s.post(&format!("{API}/marketplace/items/{id}/versions")).token(&token).json(&json!({"version_number": "1.0.5"})).send().expect_error(422, "validation_failed");
    let public = s.get(&format!("{API}/marketplace/items/{id}")).send().json();
    assert_eq!(public["latest_version"]["version_number"], "1.0.0", "1.1.0 has no file yet");
    assert_eq!(public["latest_version"]["is_latest"], true);
    assert!(public.get("seller").is_none(), "the public view has no seller fields: {public}");
    let r = upload(s, &token, &id, "?version=1.1.0", "application/octet-stream", file_bytes(2048, 2));
    assert_eq!(r.status, 201, "{}", r.body);
    let versions = s.get(&format!("{API}/marketplace/items/{id}/versions")).send().json();
    let listed: Vec<(&str, bool)> = versions["items"].as_array().unwrap().iter().map(|v| (v["version_number"].as_str().unwrap(), v["is_latest"].as_bool().unwrap())).collect();
    assert_eq!(listed, vec![("1.1.0", true), ("1.0.0", false)]);
    // Archived: out of the search, still readable (past buyers' links).
    assert_eq!(patch(s, &token, &id, &json!({"status": "archived"})).status, 200);
    assert!(search(s, &format!("&q={word}")).is_empty());
    assert_eq!(s.get(&format!("{API}/marketplace/items/{id}")).send().json()["status"], "archived");
}

fn edits_are_private_to_the_seller_and_never_lost() {
    let s = shared();
    let (_, token) = s.user();
    let (_, other) = s.user();
    let item = create_item(s, &token, &json!({"title": "Dataset", "category": "audio_dataset", "price_cents": 500}));
    let id = item["id"].as_str().unwrap().to_owned();
    patch(s, &other, &id, &json!({"price_cents": 1})).expect_error(404, "not_found");
    patch(s, &token, &id, &json!({"fee_bps": 0})).expect_error(422, "validation_failed");
    patch(s, &token, &id, &json!({"tags": ["a/b"]})).expect_error(422, "validation_failed");
    // Seven edits of seven different fields at once: each lands, none undoes another.
    let edits = [
        json!({"title": "Dataset"}),
        json!({"description": "new description"}),
        json!({"category": "model"}),
        json!({"tags": ["edited"]}),
        json!({"price_cents": 777}),
        json!({"license_terms": "personal use"}),
        json!({"activation_limit": 5}),
    ];
    let results = parallel(edits.len(), |i| patch(s, &token, &id, &edits[i]));
    assert!(results.iter().all(|r| r.status == 200), "{:?}", results.iter().map(|r| r.body.clone()).collect::<Vec<_>>());
    let mut versions: Vec<i64> = results.iter().map(|r| r.json()["seller"]["version"].as_i64().unwrap()).collect();
    versions.sort();
    assert_eq!(versions, (2..=8).collect::<Vec<i64>>(), "one version per edit");
    let mine = s.get(&format!("{API}/marketplace/seller/items")).token(&token).send().json();
    let item = &mine["items"][0];
    for edit in &edits {
        let (field, value) = edit.as_object().unwrap().iter().next().unwrap();
        assert_eq!(&item[field], value, "{field} kept: {item}");
    }
    // With If-Match, an edit based on a stale read is refused (412), a fresh one applies.
    let fresh = patch(s, &token, &id, &json!({"title": "Dataset v2"}));
    let etag = fresh.header("ETag").unwrap().to_owned();
    assert_eq!(etag, "\"9\"");
    let stale = s.patch(&format!("{API}/marketplace/items/{id}")).token(&token).header("If-Match", "\"8\"").json(&json!({"title": "lost"})).send();
    stale.expect_error(412, "precondition_failed");
    let ok = s.patch(&format!("{API}/marketplace/items/{id}")).token(&token).header("If-Match", &etag).json(&json!({"title": "kept"})).send();
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The seller's list shows the draft; an admin sets the item's fee (and only an admin).
    let mine = s.get(&format!("{API}/marketplace/seller/items")).token(&token).send().json();
    assert_eq!(mine["items"][0]["id"], id.as_str());
    assert_eq!(mine["items"][0]["title"], "kept");
    let r = s.patch(&format!("{API}/admin/marketplace/items/{id}")).token(&other).json(&json!({"fee_bps": 500})).send();
    r.expect_error(403, "forbidden");
    let r = s.patch(&format!("{API}/admin/marketplace/items/{id}")).token(s.admin()).json(&json!({"fee_bps": 500})).send();
    assert_eq!((r.status, r.json()["seller"]["fee_bps"].as_i64()), (200, Some(500)), "{}", r.body);
    let r = s.patch(&format!("{API}/admin/marketplace/items/{id}")).token(s.admin()).json(&json!({"default_fee": true})).send();
    assert_eq!(r.json()["seller"]["fee_bps"], 1500, "{}", r.body);
}

fn uploads_are_bounded_and_typed() {
    let s = &Server::start(&[("MARKETPLACE_MAX_FILE_BYTES", "1000")]);
    let (_, token) = s.user();
    let (_, other) = s.user();
    let id = create_item(s, &token, &json!({"title": "Plugin", "category": "plugin", "price_cents": 0}))["id"].as_str().unwrap().to_owned();
    upload(s, &token, &id, "", "text/html", vec![1; 10]).expect_error(415, "unsupported_media_type");
    upload(s, &token, &id, "", "application/zip", vec![1; 1001]).expect_error(413, "payload_too_large");
    // Refused before it is read, a larger body is still drained (up to 1 MiB): the client sees
    // the answer, not a reset connection.
    upload(s, &token, &id, "", "application/zip", vec![1; 900 * 1024]).expect_error(413, "payload_too_large");
    s.request("PUT", &format!("{API}/marketplace/items/{id}/file")).token("bad").header("Content-Type", "application/zip").body(vec![1; 900 * 1024]).send().expect_error(401, "unauthorized");
    upload(s, &other, &id, "", "application/zip", vec![1; 10]).expect_error(404, "not_found");
    let chunked = s.request("PUT", &format!("{API}/marketplace/items/{id}/file")).token(&token).header("Content-Type", "application/zip").body(vec![1; 10]).send_chunked();
    chunked.expect_error(411, "length_required");
    upload(s, &token, &id, "?version=9.9.9", "application/zip", vec![1; 10]).expect_error(404, "not_found");
    assert!(s.get(&format!("{API}/marketplace/items/{id}/versions")).send().status == 404, "a draft's versions are private");
    // An admin archives a listing, and does nothing else with its status.
    let r = s.patch(&format!("{API}/admin/marketplace/items/{id}")).token(s.admin()).json(&json!({"status": "published"})).send();
    r.expect_error(422, "validation_failed");
}

/// Five uploads of the same version at once (half a MiB each, streamed at the same time): one
/// file lands, the others are refused and their objects removed from R2.
fn parallel_uploads_of_a_version_keep_one_file() {
    let s = shared();
    let (_, token) = s.user();
    let id = create_item(s, &token, &json!({"title": "Plugin", "category": "plugin", "price_cents": 0}))["id"].as_str().unwrap().to_owned();
    let r = s.post(&format!("{API}/marketplace/items/{id}/versions")).token(&token).json(&json!({"version_number": "2.0.0-rc.1"})).send();
    assert_eq!(r.status, 201, "{}", r.body);
    let results = parallel(5, |i| upload(s, &token, &id, "?version=2.0.0-rc.1", "application/zip", file_bytes(512 * 1024, 10 + i as u64)));
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|&&st| st == 201).count(), 1, "{statuses:?}");
    assert!(results.iter().all(|r| r.status == 201 || r.code() == "version_has_file"), "{statuses:?}");
    let winner = results.iter().find(|r| r.status == 201).unwrap().json();
    // Without a version named, an upload makes the next one (the release of the pre-release).
    let r = upload(s, &token, &id, "", "application/zip", vec![2; 100]);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["version_number"], "2.0.0");
    assert_eq!(patch(s, &token, &id, &json!({"status": "published"})).status, 200);
    let versions = s.get(&format!("{API}/marketplace/items/{id}/versions")).send().json();
    let rc = versions["items"].as_array().unwrap().iter().find(|v| v["version_number"] == "2.0.0-rc.1").unwrap().clone();
    assert_eq!(rc["file"]["sha256"], winner["file"]["sha256"], "the file recorded is the winner's");
    // Only the winner's object is left in R2 for that version.
    let objects = r2_objects(s, &format!("items/{id}/{}/", rc["id"].as_str().unwrap()));
    assert_eq!(objects, 1, "the losers' objects were removed");
}

/// How many objects local R2 holds under `prefix` (its metadata database).
fn r2_objects(s: &Server, prefix: &str) -> usize {
    let dir = s.dir.join("v3").join("r2").join("miniflare-R2BucketObject");
    let db = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .expect("local R2 metadata database");
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('SELECT COUNT(*) FROM _mf_objects WHERE key LIKE ?', (sys.argv[2] + '%',)).fetchone()[0])"])
        .arg(&db)
        .arg(prefix)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a count")
}

// --- purchases, licenses, downloads ------------------------------------------------------------

fn purchase(s: &Server, token: &str, item: &str, key: Option<&str>) -> Resp {
    let call = s.post(&format!("{API}/marketplace/items/{item}/purchase")).token(token);
    let call = match key {
        Some(key) => call.header("Idempotency-Key", key),
        None => call,
    };
    call.json(&json!({})).send()
}

/// GET of a URL of this service (the path of `url`), the body as bytes.
fn get_bytes(s: &Server, url: &str, range: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::Read;
    let path = &url[url.find("/d/").expect("a download link")..];
    let mut req = ureq::get(&format!("{}{path}", s.base()));
    if let Some(range) = range {
        req = req.set("Range", range);
    }
    let response = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let headers = response.headers_names().into_iter().filter_map(|n| response.header(&n).map(|v| (n.to_lowercase(), v.to_owned()))).collect();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).expect("read body");
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn a_purchase_completes_once_into_a_license_a_download_and_a_held_earning() {
    let s = shared();
    let (_, seller_token) = s.user();
    let (_, token) = s.user();
    let item = create_item(s, &seller_token, &json!({"title": "Paid DB", "category": "fingerprint_database", "price_cents": 1999, "activation_limit": 3}));
    let id = item["id"].as_str().unwrap().to_owned();
    let bytes = file_bytes(1536 * 1024 + 3, 42);
    assert_eq!(upload(s, &seller_token, &id, "", "application/zip", bytes.clone()).status, 201);
    purchase(s, &token, &id, Some(&unique("k"))).expect_error(404, "not_found");
    assert_eq!(patch(s, &seller_token, &id, &json!({"status": "published"})).status, 200);
    purchase(s, &token, &id, None).expect_error(422, "validation_failed");
    purchase(s, &seller_token, &id, Some(&unique("k"))).expect_error(422, "own_item");
    let key = unique("buy");
    let r = purchase(s, &token, &id, Some(&key));
    assert_eq!(r.status, 201, "{}", r.body);
    let order = r.json();
    assert_eq!((order["status"].as_str(), order["price_cents"].as_i64()), (Some("pending"), Some(1999)));
    assert_eq!((order["platform_fee_cents"].as_i64(), order["seller_payout_cents"].as_i64()), (Some(300), Some(1699)));
    assert_eq!((order["license"].clone(), order["download_url"].clone()), (Value::Null, Value::Null));
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    // A replay, and a second attempt while it is pending, answer the same order.
    assert_eq!(purchase(s, &token, &id, Some(&key)).json()["order_id"], order_id.as_str());
    let again = purchase(s, &token, &id, Some(&unique("k")));
    assert_eq!((again.status, again.json()["order_id"].as_str()), (200, Some(order_id.as_str())));
    // Completed five times at once: once.
    let completions = parallel(5, |_| s.post(&format!("{API}/admin/marketplace/orders/{order_id}/complete")).token(s.admin()).json(&json!({"payment_ref": "inv_1"})).send());
    assert!(completions.iter().all(|r| r.status == 200), "{:?}", completions.iter().map(|r| &r.body).collect::<Vec<_>>());
    let done = completions[0].json();
    assert_eq!(done["status"], "completed");
    let license_key = done["license"]["key"].as_str().unwrap().to_owned();
    assert!(completions.iter().all(|r| r.json()["license"]["key"] == license_key.as_str()), "one license");
    // (Through the API: this instance is shared, and a second writer on its D1 file can make the
    // worker's queries fail with SQLITE_BUSY.)
    let earnings = s.get(&format!("{API}/marketplace/seller/earnings")).token(&seller_token).send().json();
    assert_eq!((earnings["totals"]["net_cents"].as_i64(), earnings["balances"]["pending_cents"].as_i64()), (Some(1699), Some(1699)), "held once: {earnings}");
    assert_eq!(s.get(&format!("{API}/marketplace/items/{id}")).send().json()["sales"].as_i64(), Some(1));
    purchase(s, &token, &id, Some(&unique("k"))).expect_error(409, "already_purchased");
    // The buyer's and nobody else's.
    let mine = s.get(&format!("{API}/marketplace/purchases")).token(&token).send().json();
    assert_eq!(mine["items"][0]["order_id"], order_id.as_str());
    let (_, stranger) = s.user();
    s.get(&format!("{API}/marketplace/purchases/{order_id}")).token(&stranger).send().expect_error(404, "not_found");
    s.get(&format!("{API}/marketplace/purchases/{order_id}/download")).token(&stranger).send().expect_error(404, "not_found");
    // The download: a 302 to the signed link; whole and by range; the bytes are the file's.
    let r = s.get(&format!("{API}/marketplace/purchases/{order_id}/download")).token(&token).send();
    assert_eq!(r.status, 302, "{}", r.body);
    let link = r.header("Location").unwrap().to_owned();
    assert_eq!(link, done["download_url"].as_str().unwrap());
    let (status, headers, body) = get_bytes(s, &link, None);
    assert_eq!(status, 200);
    assert_eq!(hex::encode(Sha256::digest(&body)), hex::encode(Sha256::digest(&bytes)), "the file, whole");
    assert_eq!(header(&headers, "content-length"), Some(bytes.len().to_string().as_str()));
    // Two D1 round trips: the grant with the item's versions, then the count.
    assert!(header(&headers, "server-timing").is_some_and(|t| t.contains("d1;count=2;")), "{headers:?}");
    assert!(header(&headers, "content-disposition").unwrap().starts_with("attachment; filename=\"Paid_DB-1.0.0"));
    let (status, headers, body) = get_bytes(s, &link, Some("bytes=1000-1999"));
    assert_eq!((status, body.as_slice()), (206, &bytes[1000..2000]));
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes 1000-1999/{}", bytes.len()).as_str()));
    assert_eq!(header(&headers, "content-length"), Some("1000"));
    // A HEAD says what a download would be, and is no download.
    let head = ureq::head(&format!("{}{}", s.base(), &link[link.find("/d/").unwrap()..])).call().expect("HEAD");
    assert_eq!((head.status(), head.header("etag").map(str::to_owned)), (200, header(&headers, "etag").map(str::to_owned)));
    let (status, _, body) = get_bytes(s, &link, Some("bytes=-10"));
    assert_eq!((status, body.as_slice()), (206, &bytes[bytes.len() - 10..]));
    assert_eq!(get_bytes(s, &link, Some("bytes=99999999-")).0, 416);
    // Tampered links never give a byte.
    let signature_at = link.rfind('.').unwrap() + 1;
    let mut tampered = link.clone().into_bytes();
    tampered[signature_at] = if tampered[signature_at] == b'A' { b'B' } else { b'A' };
    let (status, _, body) = get_bytes(s, &String::from_utf8(tampered).unwrap(), None);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("download_invalid"));
    let expiry_at = link[..signature_at - 1].rfind('.').unwrap() + 1;
    let extended = format!("{}9{}", &link[..expiry_at], &link[expiry_at..]);
    assert_eq!(get_bytes(s, &extended, None).0, 403, "a later expiry under the same signature");
    let mine = s.get(&format!("{API}/marketplace/seller/items")).token(&seller_token).send().json();
    assert_eq!(mine["items"][0]["seller"]["downloads"].as_i64(), Some(1), "the whole download counted (ranges past the start are not)");
    s.assert_ledgers_consistent();
}

fn license(s: &Server, action: &str, body: &Value) -> Resp {
    s.post(&format!("{API}/licenses/{action}")).json(body).send()
}

fn license_keys_activate_up_to_their_limit_exactly() {
    let s = shared();
    let (_, seller_token) = s.user();
    let (_, token) = s.user();
    let id = published_item(s, &seller_token, &json!({"title": "Free plugin", "category": "plugin", "price_cents": 0, "activation_limit": 3}));
    let other_item = published_item(s, &seller_token, &json!({"title": "Other", "category": "plugin", "price_cents": 0}));
    // Free: completed at once.
    let r = purchase(s, &token, &id, Some(&unique("k")));
    assert_eq!(r.status, 201, "{}", r.body);
    let order = r.json();
    assert_eq!(order["status"], "completed");
    let key = order["license"]["key"].as_str().unwrap().to_owned();
    assert_eq!(order["license"]["activation_limit"], 3);
    // Twenty activations at once: exactly three instances.
    let results = parallel(20, |i| license(s, "activate", &json!({"license_key": key, "item_id": id, "instance_name": format!("machine-{i}")})));
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 3, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().all(|r| r.status == 201 || r.code() == "activation_limit_reached"));
    let first = created[0].json();
    // The same instance again is the same activation; typed differently, the key still reads.
    let typed = key.to_lowercase().replace('-', " ");
    let r = license(s, "activate", &json!({"license_key": typed, "item_id": id, "instance_name": first["instance_name"]}));
    assert_eq!((r.status, r.json()["instance_id"].clone()), (200, first["instance_id"].clone()));
    // Validation: the item is always checked.
    let check = |key: &str, item: &str, instance: Option<&str>| {
        let mut body = json!({"license_key": key, "item_id": item});
        if let Some(instance) = instance {
            body["instance_id"] = json!(instance);
        }
        let r = license(s, "validate", &body);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let ok = check(&key, &id, first["instance_id"].as_str());
    assert_eq!((ok["valid"].as_bool(), ok["code"].as_str(), ok["activation_usage"].as_i64()), (Some(true), Some("valid"), Some(3)));
    let wrong = check(&key, &other_item, None);
    assert_eq!((wrong["valid"].as_bool(), wrong["code"].as_str(), wrong["activation_usage"].clone()), (Some(false), Some("wrong_item"), Value::Null));
    assert_eq!((ok["item"]["title"].as_str(), ok["item"]["id"].as_str(), wrong["item"].clone()), (Some("Free plugin"), Some(id.as_str()), Value::Null));
    assert_eq!(check(&key, &id, Some("no-such-instance"))["code"], "instance_not_found");
    assert_eq!(check("SHM-00000-00000-00000-00000-00000", &id, None)["code"], "unknown");
    assert_eq!(check("not a key", &id, None)["code"], "unknown");
    license(s, "activate", &json!({"license_key": key, "item_id": other_item, "instance_name": "x"})).expect_error(404, "not_found");
    // A freed seat takes a new instance.
    let r = license(s, "deactivate", &json!({"license_key": key, "item_id": id, "instance_id": first["instance_id"]}));
    assert_eq!((r.status, r.json()["activation_usage"].as_i64()), (200, Some(2)), "{}", r.body);
    license(s, "deactivate", &json!({"license_key": key, "item_id": id, "instance_id": first["instance_id"]})).expect_error(404, "not_found");
    assert_eq!(license(s, "activate", &json!({"license_key": key, "item_id": id, "instance_name": "new-machine"})).status, 201);
    // Rotation: the old key stops at once, the new one works.
    let order_id = order["order_id"].as_str().unwrap();
    let r = s.post(&format!("{API}/marketplace/purchases/{order_id}/license/rotate")).token(&token).json(&json!({})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    let new_key = r.json()["license"]["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert_eq!(check(&key, &id, None)["code"], "unknown");
    assert_eq!(check(&new_key, &id, None)["code"], "valid");
}

/// A stand-in for Stripe's API on a local port: answers every request with a new Checkout
/// Session and keeps what it was sent (method and path, headers, body).
struct FakeStripe {
    base: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn fake_stripe() -> FakeStripe {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = requests.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock().unwrap().push(format!("{head}\r\n{}", String::from_utf8_lossy(&body)));
            let session = json!({"id": format!("cs_test_{n}"), "url": format!("https://checkout.stripe.test/c/pay/cs_test_{n}")}).to_string();
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{session}", session.len());
        }
    });
    FakeStripe { base, requests }
}

fn a_paid_order_checks_out_with_stripe_and_completes_once_on_the_webhook() {
    let stripe = fake_stripe();
    let s = &Server::start(&[("STRIPE_SECRET_KEY", "sk_test_fake"), ("STRIPE_API_BASE", &stripe.base)]);
    let (_, seller_token) = s.user();
    let (_, token) = s.user();
    let id = published_item(s, &seller_token, &json!({"title": "Jazz & Blues", "category": "audio_dataset", "price_cents": 2500}));
    let r = purchase(s, &token, &id, Some(&unique("k")));
    assert_eq!(r.status, 201, "{}", r.body);
    let order = r.json();
    let order_id = order["order_id"].as_str().unwrap().to_owned();
    assert_eq!((order["status"].as_str(), order["checkout_url"].as_str()), (Some("pending"), Some("https://checkout.stripe.test/c/pay/cs_test_0")));
    // What Stripe was asked: a Checkout Session for this order at its price, with the secret key
    // and an idempotency key of the order.
    let sent = stripe.requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let request = sent[0].to_lowercase();
    assert!(request.starts_with("post /v1/checkout/sessions "), "{request}");
    assert!(request.contains("authorization: bearer sk_test_fake"), "{request}");
    assert!(request.contains(&format!("idempotency-key: soundhash-order-{order_id}")), "{request}");
    let body = sent[0].split("\r\n\r\n").nth(1).unwrap().to_owned();
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert_eq!(form.get("client_reference_id"), Some(&order_id));
    assert_eq!(form.get("metadata[order_id]"), Some(&order_id));
    assert_eq!(form.get("line_items[0][price_data][unit_amount]").map(String::as_str), Some("2500"));
    assert_eq!(form.get("line_items[0][price_data][currency]").map(String::as_str), Some("usd"));
    assert_eq!(form.get("line_items[0][price_data][product_data][name]").map(String::as_str), Some("Jazz & Blues"));
    // The pending order answers again with its checkout, without a second session.
    let again = purchase(s, &token, &id, Some(&unique("k")));
    assert_eq!((again.status, again.json()["checkout_url"].clone()), (200, order["checkout_url"].clone()));
    assert_eq!(stripe.requests.lock().unwrap().len(), 1);
    // Another session's or another amount's completion is not this order's.
    let completed = |session: &str, amount: i64| {
        json!({"id": unique("evt"), "type": "checkout.session.completed", "created": crate::support::now(), "data": {"object": {
            "id": session, "object": "checkout.session", "client_reference_id": order_id, "payment_status": "paid",
            "amount_total": amount, "currency": "usd", "payment_intent": "pi_test_1"}}})
    };
    assert_eq!(s.stripe(&completed("cs_test_9", 2500)).json()["outcome"], "ignored: not the order's checkout session");
    assert_eq!(s.stripe(&completed("cs_test_0", 1)).json()["outcome"], "ignored: amount or currency is not the order's");
    // The event delivered five times at once completes the order once.
    let event = completed("cs_test_0", 2500);
    let results = parallel(5, |_| s.stripe(&event));
    let outcomes: Vec<String> = results.iter().map(|r| r.json()["outcome"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "order_completed").count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o == "order_completed" || o == "duplicate"), "{outcomes:?}");
    let done = s.get(&format!("{API}/marketplace/purchases/{order_id}")).token(&token).send().json();
    assert_eq!(done["status"], "completed");
    assert!(done["license"]["key"].as_str().is_some_and(|k| k.starts_with("SHM-")));
    assert!(done.get("checkout_url").is_none(), "a completed order has no checkout: {done}");
    let earnings = s.d1(&format!("SELECT amount_cents FROM earnings WHERE source = 'order:{order_id}'"));
    assert_eq!(earnings.iter().map(|e| e["amount_cents"].as_i64()).collect::<Vec<_>>(), vec![Some(2125)], "2500 less the 15 % fee, once");
    s.assert_ledgers_consistent();
    // Refunded by Stripe (the event three times at once): refunded once; the key and the
    // download stop at once; the seller's open earning is reversed.
    let key = done["license"]["key"].as_str().unwrap().to_owned();
    let item_of = |item: &str| json!({"license_key": key, "item_id": item});
    assert_eq!(license(s, "validate", &item_of(&id)).json()["code"], "valid");
    let link = done["download_url"].as_str().unwrap().to_owned();
    assert_eq!(get_bytes(s, &link, None).0, 200);
    let partial = json!({"id": unique("evt"), "type": "charge.refunded", "created": crate::support::now(), "data": {"object": {
        "id": "ch_test_1", "object": "charge", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 500, "currency": "usd", "refunded": false}}});
    assert_eq!(s.stripe(&partial).json()["outcome"], "ignored: partial refund of a marketplace order");
    let refund = json!({"id": unique("evt"), "type": "charge.refunded", "created": crate::support::now(), "data": {"object": {
        "id": "ch_test_1", "object": "charge", "payment_intent": "pi_test_1", "amount": 2500, "amount_refunded": 2500, "currency": "usd", "refunded": true}}});
    let results = parallel(3, |_| s.stripe(&refund));
    let outcomes: Vec<String> = results.iter().map(|r| r.json()["outcome"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "order_refunded").count(), 1, "{outcomes:?}");
    assert_eq!(license(s, "validate", &item_of(&id)).json()["code"], "revoked");
    license(s, "activate", &json!({"license_key": key, "item_id": id, "instance_name": "m"})).expect_error(409, "license_revoked");
    let (status, _, body) = get_bytes(s, &link, None);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("download_revoked"), "never a byte of the file");
    let refunded = s.get(&format!("{API}/marketplace/purchases/{order_id}")).token(&token).send().json();
    assert_eq!((refunded["status"].as_str(), refunded["download_url"].clone()), (Some("refunded"), Value::Null));
    assert_eq!(refunded["license"]["status"], "revoked");
    let earnings = s.d1(&format!("SELECT status FROM earnings WHERE payee_id = (SELECT seller_id FROM marketplace_orders WHERE id = '{order_id}')"));
    assert_eq!(earnings.iter().map(|e| e["status"].as_str().unwrap_or_default()).collect::<Vec<_>>(), vec!["reversed"], "reversed, nothing added");
    assert_eq!(s.d1(&format!("SELECT sales FROM marketplace_items WHERE id = '{id}'"))[0]["sales"].as_i64(), Some(0));
    // An admin's refund of it now answers it as it is; the buyer may buy again.
    let again = s.post(&format!("{API}/admin/marketplace/orders/{order_id}/refund")).token(s.admin()).json(&json!({})).send();
    assert_eq!((again.status, again.json()["status"].as_str()), (200, Some("refunded")));
    let order = purchase(s, &token, &id, Some(&unique("k")));
    assert_eq!(order.status, 201, "a refunded order frees the place");
    // Its refund arrives before its checkout completes (events come in any order): held, then
    // applied as the order completes; the buyer never holds a working key.
    let (order_id, url) = (order.json()["order_id"].as_str().unwrap().to_owned(), order.json()["checkout_url"].as_str().unwrap().to_owned());
    let session = url.rsplit('/').next().unwrap();
    let mut early = refund.clone();
    early["id"] = json!(unique("evt"));
    early["data"]["object"]["payment_intent"] = json!("pi_test_2");
    assert!(s.stripe(&early).json()["outcome"].as_str().unwrap().starts_with("refund_held"));
    let mut late = completed(session, 2500);
    late["data"]["object"]["client_reference_id"] = json!(order_id);
    late["data"]["object"]["payment_intent"] = json!("pi_test_2");
    assert_eq!(s.stripe(&late).json()["outcome"], "order_completed_and_refunded");
    let refunded = s.get(&format!("{API}/marketplace/purchases/{order_id}")).token(&token).send().json();
    assert_eq!((refunded["status"].as_str(), refunded["license"]["status"].as_str(), refunded["download_url"].clone()), (Some("refunded"), Some("revoked"), Value::Null));
    s.assert_ledgers_consistent();
}
