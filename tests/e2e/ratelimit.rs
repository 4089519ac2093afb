//! Abuse throttling: per user when authenticated, per client IP otherwise (and on failed auth).
//! Limits are the wrangler.toml bindings: RATE_LIMIT_USER 600/60 s, RATE_LIMIT_IP 300/60 s.

use crate::support::{shared, Resp, API};
use crate::trials;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(ratelimit:
        a_user_over_the_limit_gets_429_with_retry_after,
        failed_authentications_are_throttled_per_ip,
    )
}

/// Sends up to `max` requests from 8 threads until one is throttled; returns (successes, the 429).
fn hammer(max: usize, send: impl Fn() -> Resp + Sync) -> (usize, Option<Resp>) {
    let sent = AtomicUsize::new(0);
    let ok = AtomicUsize::new(0);
    let limited = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                while sent.fetch_add(1, Ordering::SeqCst) < max && limited.lock().unwrap().is_none() {
                    let r = send();
                    if r.status == 429 {
                        *limited.lock().unwrap() = Some(r);
                    } else {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (ok.into_inner(), limited.into_inner().unwrap())
}

fn check_429(r: &Resp) {
    r.expect_error(429, "rate_limited");
    let retry: u32 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

fn a_user_over_the_limit_gets_429_with_retry_after() {
    let s = shared();
    let (_, token) = s.user();
    // Two windows hold at most 1,200: sending 1,201 always meets the limit.
    let (ok, limited) = hammer(1201, || s.get(&format!("{API}/me")).token(&token).send());
    let limited = limited.expect("no 429 within 1,201 requests");
    check_429(&limited);
    assert!(ok >= 599, "throttled after only {ok} requests");
    // Others are not affected.
    let (_, other) = s.user();
    assert_eq!(s.get(&format!("{API}/me")).token(&other).send().status, 200);
}

fn failed_authentications_are_throttled_per_ip() {
    let s = shared();
    // Each run has its own `wrangler dev`, so a fixed documentation address is private to it.
    let ip = "198.51.100.7";
    let (ok, limited) = hammer(601, || s.get(&format!("{API}/me")).header("CF-Connecting-IP", ip).header("Authorization", "Bearer bad").send());
    let limited = limited.expect("no 429 within 601 failed attempts");
    check_429(&limited);
    assert!(ok >= 299, "throttled after only {ok} attempts");
    // Another address is unaffected, on public routes too.
    let r = s.get("/openapi.json").header("CF-Connecting-IP", "203.0.113.9").send();
    assert_eq!(r.status, 200);
    // The same address is throttled on public routes too: on an edge link, every code the
    // isolate does not know yet reaches D1 and is throttled. (Sent until refused: when the burst
    // ended just before a window boundary, the new window first lets a few through.)
    let n = AtomicUsize::new(0);
    let made_up = || format!("/a/AFF{:08}", n.fetch_add(1, Ordering::SeqCst)).replace('0', "2").replace('1', "3");
    let (_, throttled_public) = hammer(601, || s.get(&made_up()).header("CF-Connecting-IP", ip).send());
    check_429(&throttled_public.expect("no 429 on a public route within 601 requests"));
}
