//! What an isolate knows about the users it served: their `Principal` (active, admin), kept for
//! `USER_CACHE_SECONDS`, so an authenticated request does not read `users` before its handler's
//! own query. The bound: a user deactivated through this service is forgotten at once by the
//! isolate that made the change; other isolates serve what they read for at most
//! `USER_CACHE_SECONDS`. Administrators are never kept: their rights also decide things on user
//! routes (terms of their own affiliate account, campaigns not yet live), so every request of an
//! admin reads D1 and a revoked right ends at once everywhere; `Admin` routes read D1 for anyone.

use super::auth::Principal;
use super::kept::{self, Kept};
use super::ApiResult;
use crate::domain::time::Timestamp;
use std::future::Future;

thread_local! {
    static KEPT: Kept<Principal> = Kept::new(10_000);
}

/// The principal of user `id`: kept, or from `load` (then kept `ttl_seconds`, unless an admin).
pub async fn principal<F, Fut>(id: &str, now: Timestamp, ttl_seconds: i64, load: F) -> ApiResult<Principal>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Principal>>,
{
    kept::get_or_load(&KEPT, id, now, ttl_seconds, |p| !p.is_admin, async { Ok(()) }, load).await
}

/// Drops what this isolate knows about user `id` (just changed here).
pub fn forget(id: &str) {
    KEPT.with(|k| k.forget(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::cell::Cell;

    fn user(id: &str, is_active: bool) -> Principal {
        Principal { id: id.into(), is_admin: false, is_active, created_at: Timestamp::from_unix(0) }
    }

    /// The principal, and whether `load` ran.
    fn get(id: &str, now: i64, ttl: i64, loaded: Principal) -> (Principal, bool) {
        let ran = Cell::new(false);
        let found = principal(id, Timestamp::from_unix(now), ttl, || async {
            ran.set(true);
            Ok(loaded)
        })
        .now_or_never()
        .expect("ready")
        .expect("loaded");
        (found, ran.get())
    }

    #[test]
    fn a_user_is_read_once_per_lifetime_and_forgotten_on_change() {
        assert_eq!(get("cache-a", 100, 10, user("cache-a", true)), (user("cache-a", true), true));
        assert_eq!(get("cache-a", 109, 10, user("cache-a", false)), (user("cache-a", true), false), "kept");
        assert_eq!(get("cache-a", 110, 10, user("cache-a", false)), (user("cache-a", false), true), "expired");
        forget("cache-a");
        assert_eq!(get("cache-a", 111, 10, user("cache-a", true)), (user("cache-a", true), true), "forgotten");
    }

    #[test]
    fn administrators_are_never_kept() {
        let admin = Principal { is_admin: true, ..user("cache-c", true) };
        assert_eq!(get("cache-c", 100, 10, admin.clone()), (admin.clone(), true));
        assert_eq!(get("cache-c", 101, 10, user("cache-c", true)), (user("cache-c", true), true), "read again: revoked at once");
    }

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        assert!(get("cache-b", 100, 0, user("cache-b", true)).1);
        assert!(get("cache-b", 100, 0, user("cache-b", true)).1);
        assert!(get("cache-b", 100, 10, user("cache-b", true)).1, "nothing was kept by the zero-lifetime reads");
    }
}
