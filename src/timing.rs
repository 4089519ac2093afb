//! What a request costs: its D1 round trips (queries and batches) and Durable Object calls, each
//! counted with the time spent waiting for them, reported in the `Server-Timing` header of every
//! response (`d1`, `do`, `total`), where browsers' developer tools show them.

use std::cell::Cell;
use std::future::Future;
use worker::Date;

/// Round trips of one kind made by one request, and the milliseconds spent in them.
#[derive(Debug, Default)]
pub struct Meter {
    calls: Cell<u32>,
    millis: Cell<u64>,
}

impl Meter {
    /// Awaits one round trip, counting it.
    pub async fn time<F: Future>(&self, round_trip: F) -> F::Output {
        let started = Date::now().as_millis();
        let output = round_trip.await;
        self.calls.set(self.calls.get().saturating_add(1));
        self.millis.set(self.millis.get().saturating_add(Date::now().as_millis().saturating_sub(started)));
        output
    }

    pub fn calls(&self) -> u32 {
        self.calls.get()
    }

    pub fn millis(&self) -> u64 {
        self.millis.get()
    }
}

/// The `Server-Timing` value: `d1;count=1;dur=3;desc="D1 round trips: 1", do;…, total;dur=5`.
pub fn server_timing(d1: (u32, u64), objects: (u32, u64), total_millis: u64) -> String {
    format!(
        "d1;count={};dur={};desc=\"D1 round trips: {}\", do;count={};dur={};desc=\"Durable Object calls: {}\", total;dur={total_millis}",
        d1.0, d1.1, d1.0, objects.0, objects.1, objects.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_counts_and_durations() {
        assert_eq!(
            server_timing((2, 7), (0, 0), 12),
            "d1;count=2;dur=7;desc=\"D1 round trips: 2\", do;count=0;dur=0;desc=\"Durable Object calls: 0\", total;dur=12"
        );
    }
}
