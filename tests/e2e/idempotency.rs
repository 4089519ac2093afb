//! `Idempotency-Key`, proven on `PATCH /admin/users/{id}`: replay, conflict, concurrency, expiry;
//! and on `POST /campaigns`: a replay carries the headers of the first answer.

use crate::support::{parallel, shared, strict, unique, API};
use crate::trials;
use serde_json::json;
use std::time::Duration;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(idempotency:
        the_same_key_and_request_replays_without_running_again,
        the_same_key_with_another_request_is_409,
        stored_client_errors_replay_too,
        keys_are_scoped_to_the_user,
        concurrent_retries_run_the_work_once,
        malformed_keys_are_422,
        keys_expire_and_the_cron_purges_them,
        replays_carry_the_headers_of_the_first_answer,
    )
}

fn the_same_key_and_request_replays_without_running_again() {
    let s = shared();
    let (target, _) = s.user();
    let path = format!("{API}/admin/users/{target}");
    let key = unique("key");
    let deactivate = json!({"is_active": false});
    let first = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&deactivate).send();
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    // Someone reactivates the user without a key.
    let r = s.patch(&path).token(s.admin()).json(&json!({"is_active": true})).send();
    assert_eq!(r.status, 200);
    // The retry replays the stored response and does not deactivate again.
    let replay = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&deactivate).send();
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), first.json());
    assert_eq!(s.find_user(&target)["is_active"], true, "the replay ran the work again");
}

fn the_same_key_with_another_request_is_409() {
    let s = shared();
    let (target, _) = s.user();
    let (other, _) = s.user();
    let key = unique("key");
    let r = s.patch(&format!("{API}/admin/users/{target}")).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": false})).send();
    assert_eq!(r.status, 200);
    let different_body = s.patch(&format!("{API}/admin/users/{target}")).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_admin": true})).send();
    different_body.expect_error(409, "idempotency_conflict");
    let different_path = s.patch(&format!("{API}/admin/users/{other}")).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": false})).send();
    different_path.expect_error(409, "idempotency_conflict");
    assert_eq!(s.find_user(&target)["is_admin"], false);
    assert_eq!(s.find_user(&other)["is_active"], true);
}

fn stored_client_errors_replay_too() {
    let s = shared();
    let key = unique("key");
    let path = format!("{API}/admin/users/{}", unique("ghost"));
    let first = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_admin": true})).send();
    first.expect_error(404, "not_found");
    let again = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_admin": true})).send();
    again.expect_error(404, "not_found");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

fn keys_are_scoped_to_the_user() {
    let s = shared();
    let (target, _) = s.user();
    let (_, other_admin) = s.new_admin();
    let key = unique("key");
    let path = format!("{API}/admin/users/{target}");
    let a = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": false})).send();
    assert_eq!(a.status, 200);
    // The same key from another user is a different key: it runs.
    let b = s.patch(&path).token(&other_admin).header("Idempotency-Key", &key).json(&json!({"is_active": true})).send();
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.header("idempotent-replayed"), None);
    assert_eq!(b.json()["is_active"], true);
}

fn concurrent_retries_run_the_work_once() {
    let s = shared();
    let (target, _) = s.user();
    let key = unique("key");
    let path = format!("{API}/admin/users/{target}");
    let admin = s.admin();
    let results = parallel(16, |_| {
        s.patch(&path).token(admin).header("Idempotency-Key", &key).json(&json!({"is_active": false})).send()
    });
    let executed: Vec<_> = results.iter().filter(|r| r.status == 200 && r.header("idempotent-replayed").is_none()).collect();
    assert_eq!(executed.len(), 1, "exactly one request runs: {results:?}");
    for r in &results {
        match r.status {
            200 => assert_eq!(r.json(), executed[0].json()),
            409 => assert_eq!(r.code(), "idempotency_in_progress"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
}

fn malformed_keys_are_422() {
    let s = shared();
    let (target, _) = s.user();
    let r = s
        .patch(&format!("{API}/admin/users/{target}"))
        .token(s.admin())
        .header("Idempotency-Key", &"k".repeat(256))
        .json(&json!({"is_active": false}))
        .send();
    r.expect_error(422, "validation_failed");
    assert_eq!(r.json()["error"]["field"], "Idempotency-Key");
    assert_eq!(s.find_user(&target)["is_active"], true);
}

fn keys_expire_and_the_cron_purges_them() {
    // IDEMPOTENCY_TTL_SECONDS is 2 on this instance.
    let s = strict();
    let (target, _) = s.user();
    let path = format!("{API}/admin/users/{target}");
    let key = unique("key");
    let r = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": false})).send();
    assert_eq!(r.status, 200);
    let r = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": true})).send();
    r.expect_error(409, "idempotency_conflict");
    std::thread::sleep(Duration::from_secs(3));
    // Expired: the key is free again, for any request.
    let r = s.patch(&path).token(s.admin()).header("Idempotency-Key", &key).json(&json!({"is_active": true})).send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(r.json()["is_active"], true);
    // Another key, left to expire, is deleted by the cron job.
    let stale = unique("key");
    let r = s.patch(&path).token(s.admin()).header("Idempotency-Key", &stale).json(&json!({"is_active": false})).send();
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_secs(3));
    s.run_cron("* * * * *");
    let purged = s.wait_log(|l| l["job"] == "purge_idempotency_keys" && l["affected"].as_u64().is_some_and(|n| n >= 1));
    assert!(!purged.is_empty(), "the cron job purged the expired keys");
}

fn replays_carry_the_headers_of_the_first_answer() {
    let s = shared();
    let key = unique("key");
    let body = json!({"name": "Replayed", "offer": {"type": "credits", "value": 5}, "landing_url": "https://soundhash.test/replayed"});
    let create = || s.post(&format!("{API}/campaigns")).token(s.admin()).header("Idempotency-Key", &key).json(&body).send();
    let first = create();
    assert_eq!(first.status, 201, "{}", first.body);
    let code = first.json()["campaign_code"].as_str().unwrap().to_owned();
    let location = format!("{API}/campaigns/{code}");
    assert_eq!((first.header("location"), first.header("idempotent-replayed")), (Some(location.as_str()), None));
    // The retry is answered as the first request was, Location included, and creates nothing.
    let replay = create();
    assert_eq!(
        (replay.status, replay.header("location"), replay.header("idempotent-replayed")),
        (201, Some(location.as_str()), Some("true")),
        "{:?}",
        replay.headers
    );
    assert_eq!(replay.json(), first.json());
    let created = s.get(&location).token(s.admin()).send();
    assert_eq!((created.status, created.json()["name"].clone()), (200, json!("Replayed")));
}
