//! Affiliate program rules: statuses and their transitions, commission terms, and which
//! conversions earn a commission.

use super::money::{percent_of, FULL_BPS};
use super::time::Timestamp;
use super::{status_enum, Rejection, INVALID_TRANSITION};

status_enum!(
    /// pending → active → suspended ⇄ active; any → terminated (final).
    AffiliateStatus { Pending = "pending", Active = "active", Suspended = "suspended", Terminated = "terminated" }
);

/// An affiliate: a user with a public `AFF` code whose referred users' payments earn commissions
/// on the affiliate's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Affiliate {
    pub id: String,
    pub user_id: String,
    pub code: String,
    pub status: AffiliateStatus,
    pub commission_rate_bps: u32,
    pub commission_months: u32,
    pub website: Option<String>,
    pub payout_email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub const MAX_COMMISSION_MONTHS: u32 = 120;

/// Checks a status change. Setting the current status again is not a transition (no-op), except
/// on a terminated affiliate, which accepts no change at all.
pub fn transition(from: AffiliateStatus, to: AffiliateStatus) -> Result<(), Rejection> {
    use AffiliateStatus::*;
    match (from, to) {
        (Terminated, _) => Err(INVALID_TRANSITION),
        (a, b) if a == b => Ok(()),
        (Pending, Active) | (Active, Suspended) | (Suspended, Active) | (_, Terminated) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

/// Terms are frozen once terminated.
pub fn can_change_terms(status: AffiliateStatus) -> Result<(), Rejection> {
    match status {
        AffiliateStatus::Terminated => Err(INVALID_TRANSITION),
        _ => Ok(()),
    }
}

/// A commission rate: 0–10000 basis points.
pub fn commission_rate(bps: i64) -> Result<u32, &'static str> {
    u32::try_from(bps).ok().filter(|b| *b <= FULL_BPS).ok_or("commission_rate_bps must be from 0 to 10000")
}

/// A commission period: 1–120 months.
pub fn commission_months(months: i64) -> Result<u32, &'static str> {
    u32::try_from(months)
        .ok()
        .filter(|m| (1..=MAX_COMMISSION_MONTHS).contains(m))
        .ok_or("commission_months must be from 1 to 120")
}

/// Only an admin may give an affiliate terms other than the program defaults.
pub fn may_set_terms(is_admin: bool, requested: Option<u32>, default: u32) -> Result<(), Rejection> {
    match requested {
        Some(value) if value != default && !is_admin => Err(Rejection::forbidden(
            "forbidden",
            "Only an administrator may set non-default commission terms.",
        )),
        _ => Ok(()),
    }
}

/// The end of the commission period: `months` calendar months after the attribution (clamped to
/// the month's last day, e.g. 31 Jan + 1 month = 28/29 Feb).
pub fn window_end(attributed_at: Timestamp, months: u32) -> Timestamp {
    attributed_at.plus_months(months)
}

/// Whether an affiliate's code brings new users and earns: the affiliate is active and its
/// user's account too (a deactivated user earns nothing new; what they earned stays).
pub fn is_live(status: AffiliateStatus, user_active: bool) -> bool {
    status == AffiliateStatus::Active && user_active
}

/// What the program knows about the converting user's affiliate.
#[derive(Clone, Copy, Debug)]
pub struct Referrer {
    pub status: AffiliateStatus,
    /// Whether the affiliate's user account is active.
    pub user_active: bool,
    pub rate_bps: u32,
    pub months: u32,
    pub attributed_at: Timestamp,
}

/// The commission a conversion earns: the affiliate must be live (`is_live`) and the conversion
/// must fall within `[attributed_at, window_end)`.
pub fn commission(referrer: Option<&Referrer>, amount_cents: i64, occurred_at: Timestamp) -> Option<i64> {
    let r = referrer?;
    let in_window = occurred_at >= r.attributed_at && occurred_at < window_end(r.attributed_at, r.months);
    (is_live(r.status, r.user_active) && in_window && amount_cents > 0).then(|| percent_of(amount_cents, r.rate_bps))
}

#[cfg(test)]
mod tests {
    use super::AffiliateStatus::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_transition_table() {
        let allowed = [
            (Pending, Active),
            (Active, Suspended),
            (Suspended, Active),
            (Pending, Terminated),
            (Active, Terminated),
            (Suspended, Terminated),
        ];
        for &from in AffiliateStatus::ALL {
            for &to in AffiliateStatus::ALL {
                let expected = from != Terminated && (from == to || allowed.contains(&(from, to)));
                assert_eq!(transition(from, to).is_ok(), expected, "{from:?} → {to:?}");
            }
        }
        assert_eq!(transition(Terminated, Active), Err(INVALID_TRANSITION));
        assert!(can_change_terms(Terminated).is_err() && can_change_terms(Suspended).is_ok());
    }

    #[test]
    fn statuses_round_trip_as_text() {
        for &s in AffiliateStatus::ALL {
            assert_eq!(AffiliateStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(AffiliateStatus::parse("Active"), None);
    }

    #[test]
    fn terms_are_bounded_and_admin_only_when_non_default() {
        assert_eq!(commission_rate(0), Ok(0));
        assert_eq!(commission_rate(10_000), Ok(10_000));
        assert!(commission_rate(10_001).is_err() && commission_rate(-1).is_err());
        assert_eq!(commission_months(1), Ok(1));
        assert!(commission_months(0).is_err() && commission_months(121).is_err());
        assert!(may_set_terms(false, None, 2000).is_ok());
        assert!(may_set_terms(false, Some(2000), 2000).is_ok());
        assert!(may_set_terms(false, Some(2500), 2000).is_err());
        assert!(may_set_terms(true, Some(2500), 2000).is_ok());
    }

    #[test]
    fn the_window_uses_calendar_months() {
        let jan31 = Timestamp::parse_rfc3339("2026-01-31T12:00:00Z").unwrap();
        assert_eq!(window_end(jan31, 1).to_rfc3339(), "2026-02-28T12:00:00Z");
        assert_eq!(window_end(jan31, 3).to_rfc3339(), "2026-04-30T12:00:00Z");
        let nov = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        assert_eq!(window_end(nov, 3).to_rfc3339(), "2027-02-25T00:00:00Z");
    }

    #[test]
    fn commissions_need_an_active_affiliate_within_the_window() {
        let at = Timestamp::parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        let r = Referrer { status: Active, user_active: true, rate_bps: 2000, months: 3, attributed_at: at };
        assert_eq!(commission(Some(&r), 4_999, at), Some(1_000));
        assert_eq!(commission(Some(&r), 4_999, at.plus_seconds(-1)), None, "before the attribution");
        let end = window_end(at, 3);
        assert_eq!(commission(Some(&r), 100, end.plus_seconds(-1)), Some(20));
        assert_eq!(commission(Some(&r), 100, end), None, "the window is half-open");
        assert_eq!(commission(Some(&Referrer { status: Suspended, ..r }), 100, at), None);
        assert_eq!(commission(Some(&Referrer { status: Pending, ..r }), 100, at), None);
        assert_eq!(commission(Some(&Referrer { user_active: false, ..r }), 100, at), None, "a deactivated user");
        assert_eq!(commission(None, 100, at), None);
        assert_eq!(commission(Some(&r), 0, at), None);
    }

    proptest! {
        #[test]
        fn the_window_is_later_for_longer_periods(start in 0i64..4_000_000_000, months in 1u32..120) {
            let t = Timestamp::from_unix(start);
            prop_assert!(window_end(t, months) < window_end(t, months + 1));
            prop_assert!(window_end(t, months) > t);
        }
    }
}
