//! End-to-end suite: instances served by scripts/serve.mjs (the workerd, local D1 and local
//! Durable Objects of `wrangler dev`, without its proxy worker), driven over
//! HTTP like a client would. Run by `npm test`; filter like any test: `cargo test --test e2e -- auth`.

mod support;

mod affiliates;
mod auth;
mod campaigns;
mod conversions;
mod faults;
mod fuzz;
mod idempotency;
mod marketplace;
mod marketplace_sellers;
mod payouts;
mod platform;
mod ratelimit;
mod referrals;
mod resellers;
mod revenue;
mod soak;
mod rewards;
mod users;

use libtest_mimic::{Arguments, Trial};

/// `trials!(module: test_a, test_b)` → named trials `module::test_a`, …
#[macro_export]
macro_rules! trials {
    ($module:ident: $($test:ident),* $(,)?) => {
        vec![$(libtest_mimic::Trial::test(concat!(stringify!($module), "::", stringify!($test)), || {
            $test();
            Ok(())
        })),*]
    };
}

fn main() {
    let mut args = Arguments::from_args();
    // Tests mostly wait on the network; run more of them than there are cores, but not so many
    // that their parallel bursts overload the two cores.
    args.test_threads.get_or_insert(6);
    let tests: Vec<Trial> = [
        // First: the longest, so the others run beside it.
        fuzz::tests(),
        soak::tests(),
        faults::tests(),
        platform::tests(),
        auth::tests(),
        users::tests(),
        idempotency::tests(),
        ratelimit::tests(),
        affiliates::tests(),
        referrals::tests(),
        resellers::tests(),
        conversions::tests(),
        payouts::tests(),
        campaigns::tests(),
        rewards::tests(),
        revenue::tests(),
        marketplace::tests(),
        marketplace_sellers::tests(),
    ]
        .into_iter()
        .flatten()
        .collect();
    support::remove_previous_runs();
    let conclusion = libtest_mimic::run(&args, tests);
    support::shutdown_all();
    conclusion.exit();
}
