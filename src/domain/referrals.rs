//! Referral program rules: a referral is created when a user signs up with someone's `REF` code;
//! it converts on the referred user's first qualifying payment before it expires, and the
//! referrer earns API credits: a bonus held like a commission (`COMMISSION_HOLD_DAYS`), then
//! granted to the credit ledger, or cancelled when the payment is refunded while it is held.

use super::time::Timestamp;
use super::{status_enum, Rejection};

status_enum!(ReferralStatus { Pending = "pending", Converted = "converted", Expired = "expired" });

status_enum!(
    /// pending → granted (the credits reached the ledger) | cancelled (the qualifying payment was
    /// refunded while the bonus was held). Both ends are final.
    BonusStatus { Pending = "pending", Granted = "granted", Cancelled = "cancelled" }
);

/// A pending referral past its expiry shows as expired even before the cron job marks it.
pub fn view_status(stored: ReferralStatus, expires_at: Timestamp, now: Timestamp) -> ReferralStatus {
    shown(stored, expires_at <= now)
}

/// The same, when the store already compared the expiry with now (`lapsed`).
pub fn shown(stored: ReferralStatus, lapsed: bool) -> ReferralStatus {
    match stored {
        ReferralStatus::Pending if lapsed => ReferralStatus::Expired,
        other => other,
    }
}

pub fn expires_at(created_at: Timestamp, expiry_days: i64) -> Timestamp {
    created_at.plus_seconds(expiry_days * 86_400)
}

/// A referral as the conversion rule sees it.
#[derive(Clone, Copy, Debug)]
pub struct Referral {
    pub status: ReferralStatus,
    /// When the referred user signed up with the code (the attribution).
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether the referrer's account is active: a deactivated user earns nothing new.
    pub referrer_active: bool,
}

/// What the referred user paid before (their recorded conversions).
#[derive(Clone, Copy, Debug, Default)]
pub struct PaidBefore {
    /// When they first paid, if ever.
    pub first_at: Option<Timestamp>,
    /// The largest of their payments made no later than the one being judged (0: none).
    pub largest_cents: i64,
}

/// A payment that can convert a referral (or, net of its refunds, keep a bonus): positive and
/// at least `REFERRAL_MIN_PAYMENT_CENTS`.
pub fn qualifies(amount_cents: i64, min_payment_cents: i64) -> bool {
    amount_cents > 0 && amount_cents >= min_payment_cents
}

/// Whether a payment of `amount_cents` made at `occurred_at` converts the referral. It must be
/// the referred user's first qualifying payment made within `[created_at, expires_at)`, by a
/// user who had paid nothing before the referral existed, while the referrer is active.
///
/// Why each condition: a payment below the minimum would let sock accounts farm bonuses with
/// the smallest possible payment (it neither converts nor uses up the referral); a payment made
/// before the referral existed (a late webhook retry of an older invoice) was not brought by
/// it, and neither is anything an existing customer pays; the expiry is judged by the payment's
/// time, whatever the stored status says (the cron marks expiry by the clock, and a webhook may
/// arrive after it); and only the first qualifying payment counts, so a referral converts once,
/// whatever order its payments are reported in.
pub fn converts(referral: &Referral, amount_cents: i64, occurred_at: Timestamp, before: &PaidBefore, min_payment_cents: i64) -> bool {
    referral.referrer_active
        && referral.status != ReferralStatus::Converted
        && qualifies(amount_cents, min_payment_cents)
        && referral.created_at <= occurred_at
        && occurred_at < referral.expires_at
        && before.first_at.is_none_or(|first| first >= referral.created_at)
        && !qualifies(before.largest_cents, min_payment_cents)
}

/// How long at least a bonus of a payment Stripe reported stays pending. Stripe delivers events
/// in any order and at the same moment: a refund reported first is matched to its payment only
/// once both the payment and its link (`invoice_payment.paid`, newer API versions) have arrived,
/// and it can cancel the bonus only while the bonus is pending.
pub const STRIPE_SETTLE_SECONDS: i64 = 600;

/// When a new bonus of a payment held until `held_until` (`earnings::available_at`, as for
/// commissions) is due, and whether its conversion's own batch grants it rather than the cron:
/// when there is no hold (`COMMISSION_HOLD_DAYS=0`) or it is over already (a payment reported
/// late), unless the payment's source must settle first (`settle_seconds` from `now`).
pub fn bonus_due(hold_days: i64, held_until: Timestamp, now: Timestamp, settle_seconds: i64) -> (Timestamp, bool) {
    if settle_seconds > 0 {
        return (held_until.max(now.plus_seconds(settle_seconds)), false);
    }
    (held_until, hold_days == 0 || held_until <= now)
}

/// Whether a refund bringing the qualifying payment's refunds to `refunded_total` cancels its
/// bonus: only a held (pending) bonus, and only when what is left of the payment no longer
/// qualifies. A granted bonus stays: its credits may be spent already, and the ledger never
/// goes negative.
pub fn refund_cancels(bonus: Option<BonusStatus>, amount_cents: i64, refunded_total: i64, min_payment_cents: i64) -> bool {
    bonus == Some(BonusStatus::Pending) && !qualifies(amount_cents - refunded_total, min_payment_cents)
}

/// Nobody refers themselves.
pub fn not_self(referrer_id: &str, user_id: &str) -> Result<(), Rejection> {
    if referrer_id == user_id {
        Err(Rejection::unprocessable("self_referral", "You cannot use your own code."))
    } else {
        Ok(())
    }
}

/// A credit deduction must be a positive whole number of credits.
pub fn deduction(amount: i64) -> Result<i64, &'static str> {
    if (1..=super::money::MAX_CENTS).contains(&amount) {
        Ok(amount)
    } else {
        Err("amount must be a positive number of credits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix(s)
    }

    #[test]
    fn expiry() {
        assert_eq!(expires_at(t(0), 30), t(2_592_000));
        assert_eq!(view_status(ReferralStatus::Pending, t(10), t(9)), ReferralStatus::Pending);
        assert_eq!(view_status(ReferralStatus::Pending, t(10), t(10)), ReferralStatus::Expired);
        assert_eq!(view_status(ReferralStatus::Converted, t(10), t(99)), ReferralStatus::Converted);
    }

    const MIN: i64 = 500;

    fn referral(status: ReferralStatus) -> Referral {
        Referral { status, created_at: t(100), expires_at: t(200), referrer_active: true }
    }

    const NEW: PaidBefore = PaidBefore { first_at: None, largest_cents: 0 };

    #[test]
    fn a_first_qualifying_payment_within_the_referral_converts() {
        let pending = referral(ReferralStatus::Pending);
        assert!(converts(&pending, 500, t(150), &NEW, MIN), "equal to the minimum");
        assert!(!converts(&pending, 499, t(150), &NEW, MIN), "below the minimum");
        assert!(converts(&pending, 500, t(100), &NEW, MIN), "at created_at");
        assert!(!converts(&pending, 500, t(99), &NEW, MIN), "before the referral existed");
        assert!(converts(&pending, 500, t(199), &NEW, MIN));
        assert!(!converts(&pending, 500, t(200), &NEW, MIN), "at expires_at");
        assert!(!converts(&referral(ReferralStatus::Converted), 500, t(150), &NEW, MIN));
        assert!(converts(&referral(ReferralStatus::Expired), 500, t(150), &NEW, MIN), "marked expired after a payment that came in time");
        assert!(!converts(&referral(ReferralStatus::Expired), 500, t(200), &NEW, MIN));
        let inactive = Referral { referrer_active: false, ..pending };
        assert!(!converts(&inactive, 500, t(150), &NEW, MIN), "a deactivated referrer");
    }

    #[test]
    fn earlier_payments_decide_whether_this_one_is_first() {
        let pending = referral(ReferralStatus::Pending);
        let small_before = PaidBefore { first_at: Some(t(120)), largest_cents: 499 };
        assert!(converts(&pending, 500, t(150), &small_before, MIN), "smaller payments do not use the referral up");
        let qualifying_before = PaidBefore { first_at: Some(t(120)), largest_cents: 500 };
        assert!(!converts(&pending, 5_000, t(150), &qualifying_before, MIN), "not the first qualifying payment");
        let customer = PaidBefore { first_at: Some(t(99)), largest_cents: 1 };
        assert!(!converts(&pending, 5_000, t(150), &customer, MIN), "an existing customer is not a new referral");
        let at_signup = PaidBefore { first_at: Some(t(100)), largest_cents: 1 };
        assert!(converts(&pending, 5_000, t(150), &at_signup, MIN));
    }

    #[test]
    fn a_minimum_of_zero_still_needs_a_payment() {
        assert!(qualifies(1, 0) && !qualifies(0, 0) && !qualifies(-1, 0));
        assert!(refund_cancels(Some(BonusStatus::Pending), 1_000, 1_000, 0), "a full refund cancels");
    }

    #[test]
    fn refunds_cancel_only_held_bonuses_that_no_longer_qualify() {
        use BonusStatus::*;
        assert!(!refund_cancels(Some(Pending), 2_000, 1_500, MIN), "500 left");
        assert!(refund_cancels(Some(Pending), 2_000, 1_501, MIN), "499 left");
        assert!(refund_cancels(Some(Pending), 2_000, 2_000, MIN));
        assert!(!refund_cancels(Some(Granted), 2_000, 2_000, MIN), "granted credits stay");
        assert!(!refund_cancels(Some(Cancelled), 2_000, 2_000, MIN));
        assert!(!refund_cancels(None, 2_000, 2_000, MIN));
    }

    #[test]
    fn bonuses_wait_for_the_hold_unless_there_is_none() {
        assert_eq!(bonus_due(0, t(500), t(100), 0), (t(500), true), "no hold: at once, even for a payment dated ahead");
        assert_eq!(bonus_due(30, t(101), t(100), 0), (t(101), false));
        assert_eq!(bonus_due(30, t(100), t(100), 0), (t(100), true), "a late report of a payment whose hold is over");
        // A payment from Stripe settles first, whatever the hold.
        assert_eq!(bonus_due(0, t(100), t(100), 600), (t(700), false));
        assert_eq!(bonus_due(30, t(50), t(100), 600), (t(700), false));
        assert_eq!(bonus_due(30, t(5_000), t(100), 600), (t(5_000), false), "the hold is longer");
    }

    proptest! {
        /// Whatever the payments, reported in time order, exactly the first qualifying one made
        /// within the referral converts it, unless the user paid before the referral existed.
        #[test]
        fn one_payment_converts_and_it_is_the_first_qualifying_one(
            payments in proptest::collection::vec((0..300i64, 1..1_500i64), 0..12),
            min in 0..1_000i64,
        ) {
            let mut payments = payments;
            payments.sort();
            let mut status = ReferralStatus::Pending;
            let mut before = PaidBefore::default();
            let mut converted = Vec::new();
            for &(at, cents) in &payments {
                let r = Referral { status, ..referral(status) };
                if converts(&r, cents, t(at), &before, min) {
                    status = ReferralStatus::Converted;
                    converted.push((at, cents));
                }
                before.first_at = Some(before.first_at.map_or(t(at), |f| f.min(t(at))));
                before.largest_cents = before.largest_cents.max(cents);
            }
            let customer = payments.first().is_some_and(|&(at, _)| at < 100);
            let expected = payments.iter().find(|&&(at, cents)| (100..200).contains(&at) && qualifies(cents, min)).copied();
            let expected = if customer { None } else { expected };
            // A later qualifying payment outside the window comes after the first one anyway.
            let first_qualifying = payments.iter().find(|&&(_, cents)| qualifies(cents, min)).copied();
            let expected = expected.filter(|e| Some(*e) == first_qualifying);
            prop_assert_eq!(converted, expected.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn rules() {
        assert_eq!(not_self("a", "a").unwrap_err().code, "self_referral");
        assert!(not_self("a", "b").is_ok());
        assert!(deduction(0).is_err() && deduction(-5).is_err() && deduction(1).is_ok());
    }
}
