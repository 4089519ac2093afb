//! Users: provisioning on first sight, the admin listing (pagination), flag changes.

use crate::support::{shared, unique, API};
use crate::trials;
use serde_json::json;
use std::collections::HashSet;

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(users:
        users_are_provisioned_once_on_first_sight,
        the_admin_listing_pages_through_every_user_once,
        list_parameters_are_validated,
        patching_an_unknown_user_is_404,
    )
}

fn users_are_provisioned_once_on_first_sight() {
    let s = shared();
    let id = unique("newcomer");
    let token = s.token(&id);
    let first = s.get(&format!("{API}/me")).token(&token).send();
    assert_eq!(first.status, 200, "{}", first.body);
    let me = first.json();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["is_admin"], false);
    assert_eq!(me["is_active"], true);
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));
    // Provisioning is idempotent, also under concurrency: one row, one creation time.
    let again = crate::support::parallel(8, |_| s.get(&format!("{API}/me")).token(&token).send().json());
    assert!(again.iter().all(|m| *m == me), "{again:?}");
    // Concurrent first sight of another user also yields one consistent row.
    let fresh = unique("racer");
    let t = s.token(&fresh);
    let seen = crate::support::parallel(8, |_| s.get(&format!("{API}/me")).token(&t).send());
    assert!(seen.iter().all(|r| r.status == 200), "{seen:?}");
    let created: HashSet<String> = seen.iter().map(|r| r.json()["created_at"].as_str().unwrap().to_owned()).collect();
    assert_eq!(created.len(), 1);
}

fn the_admin_listing_pages_through_every_user_once() {
    let s = shared();
    let mine: Vec<String> = (0..5).map(|_| s.user().0).collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let r = s.get(&format!("{API}/admin/users?limit=2{q}")).token(s.admin()).send();
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| (u["created_at"].as_str().unwrap().to_owned(), u["id"].as_str().unwrap().to_owned())));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10_000, "pagination does not end");
    }
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), seen.len(), "a user was listed twice");
    for id in &mine {
        assert!(ids.contains(id), "{id} missing from the listing");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "not in creation order");
    // Default page size is 20.
    let first = s.get(&format!("{API}/admin/users")).token(s.admin()).send().json();
    assert_eq!(first["items"].as_array().unwrap().len(), seen.len().min(20));
}

fn list_parameters_are_validated() {
    let s = shared();
    for (query, field) in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=many", "limit"), ("cursor=%21%21", "cursor")] {
        let r = s.get(&format!("{API}/admin/users?{query}")).token(s.admin()).send();
        r.expect_error(422, "validation_failed");
        assert_eq!(r.json()["error"]["field"], field, "{query}");
    }
    let r = s.get(&format!("{API}/admin/users?limit=100")).token(s.admin()).send();
    assert_eq!(r.status, 200);
}

fn patching_an_unknown_user_is_404() {
    let s = shared();
    let r = s
        .patch(&format!("{API}/admin/users/{}", unique("ghost")))
        .token(s.admin())
        .json(&json!({"is_admin": true}))
        .send();
    r.expect_error(404, "not_found");
}
