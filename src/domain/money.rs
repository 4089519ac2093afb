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
/// (half away from zero for a negative amount, so a chargeback splits as the mirror image of its
/// payment) and the other party gets the remainder, so the parts always sum to the whole. The
/// one split of every program: commissions, creator shares, marketplace fees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub platform: i64,
    pub other: i64,
}

pub fn split(amount: i64, platform_bps: u32) -> Split {
    let platform = percent_of(amount, platform_bps);
    Split { platform, other: amount - platform }
}

/// `value × numerator / denominator`, rounded half-up, symmetrically about zero (−2.5 → −3, as
/// 2.5 → 3); 0 when the denominator is not positive. Also used to reverse the matching part of a
/// commission when part of a payment is refunded.
pub fn scale(value: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let product = i128::from(value) * i128::from(numerator);
    let denominator = i128::from(denominator);
    let magnitude = (2 * product.abs() + denominator) / (2 * denominator);
    (product.signum() * magnitude) as i64
}

/// Divides `total` among parts in proportion to `weights` by the largest-remainder method: each
/// part gets the floor of its exact share, and the cents left over go one each to the largest
/// remainders, ties to the earlier part (callers order the parts deterministically). The parts
/// sum to `total` exactly, each within one cent of its exact share, with the sign of `total`
/// (a negative total is divided as the mirror image of its positive). A part of weight 0 gets
/// nothing. `None` when every weight is 0: there is nothing to divide by.
pub fn allocate(total: i64, weights: &[u64]) -> Option<Vec<i64>> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return None;
    }
    let magnitude = u128::from(total.unsigned_abs());
    let exact: Vec<(u128, u128)> = weights.iter().map(|&w| (magnitude * u128::from(w) / sum, magnitude * u128::from(w) % sum)).collect();
    let mut parts: Vec<u128> = exact.iter().map(|&(floor, _)| floor).collect();
    let left = magnitude - parts.iter().sum::<u128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; the sort is stable, so equal remainders keep the callers' order.
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1));
    for &i in order.iter().take(left as usize) {
        parts[i] += 1;
    }
    let sign = total.signum();
    Some(parts.into_iter().map(|p| sign * p as i64).collect())
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
    fn negative_amounts_split_as_the_mirror_image() {
        assert_eq!(split(-10_000, 3_000), Split { platform: -3_000, other: -7_000 });
        assert_eq!(split(-999, 1_500), Split { platform: -150, other: -849 });
        assert_eq!(percent_of(-5, 1_000), -1); // −0.5 → −1, as 0.5 → 1
        assert_eq!(scale(-2_001, 1, 2), -1_001);
    }

    #[test]
    fn largest_remainders_take_the_cents_left_over() {
        assert_eq!(allocate(100, &[1, 1, 1]), Some(vec![34, 33, 33]), "a tie goes to the earlier part");
        assert_eq!(allocate(-100, &[1, 1, 1]), Some(vec![-34, -33, -33]));
        assert_eq!(allocate(10, &[5_000, 3_000, 2_000]), Some(vec![5, 3, 2]));
        // 7 × 1/3 = 2.33…, 7 × 2/3 = 4.67: the larger remainder gets the cent.
        assert_eq!(allocate(7, &[1, 2]), Some(vec![2, 5]));
        assert_eq!(allocate(5, &[0, 3, 0]), Some(vec![0, 5, 0]));
        assert_eq!(allocate(0, &[1, 2]), Some(vec![0, 0]));
        assert_eq!(allocate(5, &[0, 0]), None);
        assert_eq!(allocate(5, &[]), None);
        assert_eq!(allocate(1_000_003, &[1; 7]), Some(vec![142_858, 142_858, 142_858, 142_858, 142_857, 142_857, 142_857]));
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
        fn splits_are_symmetric_about_zero(amount in 0..=MAX_CENTS, bps in 0..=FULL_BPS) {
            let (up, down) = (split(amount, bps), split(-amount, bps));
            prop_assert_eq!(down, Split { platform: -up.platform, other: -up.other });
            prop_assert_eq!(down.platform + down.other, -amount);
        }

        /// The parts sum to the total, each is within a cent of its exact share (floor or
        /// ceiling), has the total's sign, and zero weights get nothing.
        #[test]
        fn allocations_are_exact(total in -MAX_CENTS..=MAX_CENTS, weights in proptest::collection::vec(0..1_000_000_000_000u64, 1..40)) {
            let Some(parts) = allocate(total, &weights) else {
                prop_assert!(weights.iter().all(|&w| w == 0));
                return Ok(());
            };
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let sum: i128 = weights.iter().map(|&w| i128::from(w)).sum();
            for (part, &w) in parts.iter().zip(&weights) {
                let exact_floor = (i128::from(total.abs()) * i128::from(w) / sum) as i64;
                prop_assert!(part.abs() == exact_floor || part.abs() == exact_floor + 1, "{} {}", part, exact_floor);
                prop_assert!(total >= 0 && *part >= 0 || total < 0 && *part <= 0);
                if w == 0 {
                    prop_assert_eq!(*part, 0);
                }
            }
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
