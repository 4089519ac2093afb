//! Money is integer cents (`i64`, kept within ±2^53 so it survives JavaScript numbers), rates are
//! basis points (`2000` = 20 %). No floats anywhere.

/// Largest amount a client may send: 10^12 cents (ten billion dollars). Far below 2^53.
pub const MAX_CENTS: i64 = 1_000_000_000_000;
/// 100 % in basis points.
pub const FULL_BPS: u32 = 10_000;

/// An amount a client sends for a payment or a refund: 1 to `MAX_CENTS` cents.
pub fn positive_cents(cents: i64) -> Result<i64, &'static str> {
    if (1..=MAX_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err("amount_cents must be a positive number of cents")
    }
}

/// `amount × bps / 10000`, rounded half-up to the cent (for non-negative amounts).
pub fn percent_of(amount: i64, bps: u32) -> i64 {
    scale(amount, bps.into(), FULL_BPS.into())
}

/// The two parts of an amount split at `platform_bps`: the platform's share is rounded half-up
/// and the other party gets the remainder, so the parts always sum to the whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub platform: i64,
    pub other: i64,
}

pub fn split(amount: i64, platform_bps: u32) -> Split {
    let platform = percent_of(amount, platform_bps);
    Split { platform, other: amount - platform }
}

/// `value × numerator / denominator`, rounded half-up; 0 when the denominator is not positive.
/// Used to reverse the matching part of a commission when part of a payment is refunded.
pub fn scale(value: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let product = i128::from(value) * i128::from(numerator);
    let rounded = (2 * product + i128::from(denominator)).div_euclid(2 * i128::from(denominator));
    rounded as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples_from_the_design() {
        assert_eq!(split(10_000, 3_000), Split { platform: 3_000, other: 7_000 });
        assert_eq!(percent_of(999, 1_500), 150); // 149.85 → 150
        assert_eq!(split(999, 1_500), Split { platform: 150, other: 849 });
        assert_eq!(percent_of(5, 1_000), 1); // 0.5 → 1 (half-up)
        assert_eq!(percent_of(4, 1_000), 0); // 0.4 → 0
        assert_eq!(percent_of(4_999, 2_000), 1_000); // 999.8
        assert_eq!(percent_of(MAX_CENTS, FULL_BPS), MAX_CENTS);
    }

    #[test]
    fn client_amounts_are_positive_and_bounded() {
        assert_eq!(positive_cents(1), Ok(1));
        assert_eq!(positive_cents(MAX_CENTS), Ok(MAX_CENTS));
        for bad in [0, -1, MAX_CENTS + 1, i64::MIN] {
            assert!(positive_cents(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaling_refunds() {
        assert_eq!(scale(2_000, 5_000, 10_000), 1_000);
        assert_eq!(scale(2_001, 1, 2), 1_001); // 1000.5 → 1001
        assert_eq!(scale(7, 0, 10), 0);
        assert_eq!(scale(7, 10, 10), 7);
        assert_eq!(scale(7, 3, 0), 0);
    }

    proptest! {
        #[test]
        fn split_parts_sum_to_the_whole(amount in 0..=MAX_CENTS, bps in 0..=FULL_BPS) {
            let s = split(amount, bps);
            prop_assert_eq!(s.platform + s.other, amount);
            prop_assert!(s.platform >= 0 && s.other >= 0);
        }

        #[test]
        fn percent_is_half_up_and_bounded(amount in 0..=MAX_CENTS, bps in 0..=FULL_BPS) {
            let p = percent_of(amount, bps);
            prop_assert!(p >= 0 && p <= amount);
            // |p − exact| ≤ 1/2, ties up: 2·p·10000 − 2·amount·bps ∈ (−10000, 10000].
            let twice_diff = 2 * i128::from(p) * 10_000 - 2 * i128::from(amount) * i128::from(bps);
            prop_assert!(twice_diff > -10_000 && twice_diff <= 10_000, "{} {} {}", amount, bps, p);
        }

        #[test]
        fn percent_is_monotonic(amount in 0..MAX_CENTS, bps in 0..FULL_BPS) {
            prop_assert!(percent_of(amount + 1, bps) >= percent_of(amount, bps));
            prop_assert!(percent_of(amount, bps + 1) >= percent_of(amount, bps));
        }

        /// Reversing a commission in slices by cumulative refunds never exceeds it, and a full
        /// refund reverses it exactly.
        #[test]
        fn cumulative_reversals_add_up(commission in 0..1_000_000i64, amount in 1..10_000_000i64, cuts in proptest::collection::vec(0..10_000_000i64, 0..6)) {
            let mut refunded = 0;
            let mut reversed = 0;
            let mut points: Vec<i64> = cuts.into_iter().map(|c| c % (amount + 1)).collect();
            points.sort();
            points.push(amount);
            for point in points {
                let delta = scale(commission, point, amount) - scale(commission, refunded, amount);
                prop_assert!(delta >= 0);
                reversed += delta;
                refunded = point;
                prop_assert!(reversed <= commission);
            }
            prop_assert_eq!(reversed, commission);
        }
    }
}
