//! Referral program rules: a referral is created when a user signs up with someone's `REF` code;
//! it converts on the referred user's first paid conversion before it expires, and the referrer
//! earns API credits.

use super::time::Timestamp;
use super::{status_enum, Rejection};

status_enum!(ReferralStatus { Pending = "pending", Converted = "converted", Expired = "expired" });

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

/// Whether a conversion converts the referral: not converted yet, the payment made before the
/// referral expired (whatever the stored status says: the cron marks expiry by the clock, and a
/// payment's webhook may arrive late), and the referred user's first conversion.
pub fn converts(status: ReferralStatus, expires_at: Timestamp, occurred_at: Timestamp, earlier_conversions: u64) -> bool {
    status != ReferralStatus::Converted && occurred_at < expires_at && earlier_conversions == 0
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

    #[test]
    fn only_a_first_payment_before_expiry_converts() {
        assert!(converts(ReferralStatus::Pending, t(10), t(9), 0));
        assert!(!converts(ReferralStatus::Pending, t(10), t(10), 0), "expired");
        assert!(!converts(ReferralStatus::Pending, t(10), t(5), 1), "not the first payment");
        assert!(!converts(ReferralStatus::Converted, t(10), t(5), 0));
        assert!(converts(ReferralStatus::Expired, t(10), t(5), 0), "marked expired after a payment that came in time");
        assert!(!converts(ReferralStatus::Expired, t(10), t(11), 0));
    }

    #[test]
    fn rules() {
        assert_eq!(not_self("a", "a").unwrap_err().code, "self_referral");
        assert!(not_self("a", "b").is_ok());
        assert!(deduction(0).is_err() && deduction(-5).is_err() && deduction(1).is_ok());
    }
}
