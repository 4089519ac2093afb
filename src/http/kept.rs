//! What an isolate keeps for a short while instead of reading D1 again (what a link's code
//! stands for, who a user is): one rule for every such cache. An entry is kept until its time is
//! up; `forget` drops one at once (the isolate that changed it), and a read that started before
//! any `forget` is not kept, since it may have read what was just changed. Past `max` entries the
//! cache starts over (a bound on memory, not an eviction policy).

use super::ApiResult;
use crate::domain::time::Timestamp;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::thread::LocalKey;

pub struct Kept<V> {
    entries: RefCell<HashMap<String, (V, Timestamp)>>,
    forgotten: Cell<u64>,
    max: usize,
}

impl<V: Clone> Kept<V> {
    pub fn new(max: usize) -> Self {
        Kept { entries: RefCell::new(HashMap::new()), forgotten: Cell::new(0), max }
    }

    /// Drops what is kept under `key`.
    pub fn forget(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
        self.forgotten.set(self.forgotten.get().wrapping_add(1));
    }

    fn get(&self, key: &str, now: Timestamp) -> Option<V> {
        self.entries.borrow().get(key).filter(|(_, until)| *until > now).map(|(v, _)| v.clone())
    }

    fn keep(&self, key: &str, value: V, until: Timestamp, generation: u64) {
        if self.forgotten.get() != generation {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.max {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, until));
    }
}

/// The value under `key`: kept, or else from `load`, then kept for `ttl_seconds` if `keep` says
/// so (0 keeps nothing). `miss` runs before a load (for instance a throttle on what reaches D1).
pub async fn get_or_load<V, Load>(
    cache: &'static LocalKey<Kept<V>>,
    key: &str,
    now: Timestamp,
    ttl_seconds: i64,
    keep: impl Fn(&V) -> bool,
    miss: impl Future<Output = ApiResult<()>>,
    load: impl FnOnce() -> Load,
) -> ApiResult<V>
where
    V: Clone + 'static,
    Load: Future<Output = ApiResult<V>>,
{
    if ttl_seconds > 0 {
        if let Some(value) = cache.with(|c| c.get(key, now)) {
            return Ok(value);
        }
    }
    miss.await?;
    let generation = cache.with(|c| c.forgotten.get());
    let value = load().await?;
    if ttl_seconds > 0 && keep(&value) {
        cache.with(|c| c.keep(key, value.clone(), now.plus_seconds(ttl_seconds), generation));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    thread_local! {
        static NUMBERS: Kept<i64> = Kept::new(2);
    }

    /// The value, and whether `load` ran.
    fn get(key: &str, now: i64, ttl: i64, loaded: i64) -> (i64, bool) {
        let ran = Cell::new(false);
        let value = get_or_load(&NUMBERS, key, Timestamp::from_unix(now), ttl, |v| *v >= 0, async { Ok(()) }, || async {
            ran.set(true);
            Ok(loaded)
        })
        .now_or_never()
        .expect("ready")
        .expect("loaded");
        (value, ran.get())
    }

    #[test]
    fn a_value_is_loaded_once_per_lifetime_and_forgotten_on_change() {
        assert_eq!(get("a", 100, 10, 1), (1, true));
        assert_eq!(get("a", 109, 10, 2), (1, false), "kept");
        assert_eq!(get("a", 110, 10, 3), (3, true), "expired");
        NUMBERS.with(|n| n.forget("a"));
        assert_eq!(get("a", 111, 10, 4), (4, true), "forgotten");
    }

    #[test]
    fn what_keep_refuses_and_a_zero_lifetime_are_loaded_every_time() {
        assert!(get("b", 100, 10, -1).1);
        assert!(get("b", 100, 10, -1).1, "not kept: keep said no");
        assert!(get("c", 100, 0, 5).1);
        assert!(get("c", 100, 0, 5).1, "not kept: no lifetime");
    }

    #[test]
    fn a_read_that_started_before_a_forget_is_not_kept() {
        let loaded = get_or_load(&NUMBERS, "d", Timestamp::from_unix(100), 10, |_| true, async { Ok(()) }, || async {
            NUMBERS.with(|n| n.forget("other")); // a change lands while this read is out
            Ok(7)
        })
        .now_or_never()
        .expect("ready")
        .expect("loaded");
        assert_eq!(loaded, 7);
        assert!(get("d", 101, 10, 8).1, "read again");
    }

    #[test]
    fn the_cache_starts_over_past_its_bound() {
        NUMBERS.with(|n| n.entries.borrow_mut().clear()); // (tests share a thread's cache)
        get("e1", 100, 10, 1);
        get("e2", 100, 10, 1);
        get("e3", 100, 10, 1);
        assert_eq!(NUMBERS.with(|n| n.entries.borrow().len()), 1);
    }
}
