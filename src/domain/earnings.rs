//! The earnings ledger of payees (affiliates now; creators and sellers later).
//!
//! Each row is a `commission` (≥ 0) or an `adjustment` (< 0, from a partial refund, or a refund
//! of a commission already in a payout). An adjustment is available when its commission is. Stored statuses: `open` → `in_payout` → `paid`, back to `open`
//! when a payout fails, or `reversed` (a commission refunded in full before any payout). The API
//! splits `open` by the hold: `pending` until `available_at`, then `available`.

use super::money::scale;
use super::time::Timestamp;
use super::status_enum;
use serde::Serialize;

status_enum!(StoredStatus { Open = "open", InPayout = "in_payout", Paid = "paid", Reversed = "reversed" });
status_enum!(EarningStatus { Pending = "pending", Available = "available", InPayout = "in_payout", Paid = "paid", Reversed = "reversed" });
status_enum!(EarningKind { Commission = "commission", Adjustment = "adjustment" });

/// The status a client sees.
pub fn view_status(stored: StoredStatus, available_at: Timestamp, now: Timestamp) -> EarningStatus {
    match stored {
        StoredStatus::Open if available_at > now => EarningStatus::Pending,
        StoredStatus::Open => EarningStatus::Available,
        StoredStatus::InPayout => EarningStatus::InPayout,
        StoredStatus::Paid => EarningStatus::Paid,
        StoredStatus::Reversed => EarningStatus::Reversed,
    }
}

/// When a new commission becomes available for payout.
pub fn available_at(occurred_at: Timestamp, hold_days: i64) -> Timestamp {
    occurred_at.plus_seconds(hold_days * 86_400)
}

/// A sum of ledger rows that share kind, stored status and whether their hold has passed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Group {
    pub kind: EarningKind,
    pub status: StoredStatus,
    pub matured: bool,
    pub cents: i64,
}

/// The dashboard's buckets. `pending + available + in_payout + paid` is what the payee keeps of
/// all commissions ever earned after `reversed`. A refund adjustment is held as long as its
/// commission (so a partly refunded pending commission shows less pending); `available` nets the
/// adjustments of released commissions and is negative when refunds of already-paid commissions
/// exceed new earnings (a debt that the next payout settles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Balances {
    pub pending_cents: i64,
    pub available_cents: i64,
    pub in_payout_cents: i64,
    pub paid_cents: i64,
    pub reversed_cents: i64,
}

impl Balances {
    pub fn from_groups(groups: &[Group]) -> Balances {
        let mut b = Balances::default();
        for g in groups {
            match (g.kind, g.status) {
                (EarningKind::Commission, StoredStatus::Reversed) => b.reversed_cents += g.cents,
                (EarningKind::Adjustment, _) => b.reversed_cents -= g.cents,
                _ => {}
            }
            match g.status {
                StoredStatus::Open if g.matured => b.available_cents += g.cents,
                StoredStatus::Open => b.pending_cents += g.cents,
                StoredStatus::InPayout => b.in_payout_cents += g.cents,
                StoredStatus::Paid => b.paid_cents += g.cents,
                StoredStatus::Reversed => {}
            }
        }
        b
    }
}

/// A conversion's commission as it stands when a refund arrives.
#[derive(Clone, Copy, Debug)]
pub struct CommissionFacts {
    pub cents: i64,
    pub status: StoredStatus,
}

/// What a refund does to the commission of its conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundEffect {
    None,
    /// A full refund of a commission that was never paid out: the row becomes `reversed`. (If a
    /// payout takes it first, the store records the adjustment instead.)
    Reverse { cents: i64 },
    /// An adjustment of `-cents`, netted against the next payout.
    Adjust { cents: i64 },
}

/// The part of the commission matching the newly refunded part of the payment: cumulative
/// refunds reverse `commission × refunded / amount` (half-up), so slices add up exactly.
pub fn refund_effect(
    commission: Option<CommissionFacts>,
    amount_cents: i64,
    refunded_before: i64,
    refunded_after: i64,
) -> RefundEffect {
    let Some(c) = commission else { return RefundEffect::None };
    let delta = scale(c.cents, refunded_after, amount_cents) - scale(c.cents, refunded_before, amount_cents);
    if delta <= 0 || c.status == StoredStatus::Reversed {
        RefundEffect::None
    } else if c.status == StoredStatus::Open && refunded_before == 0 && refunded_after == amount_cents {
        RefundEffect::Reverse { cents: c.cents }
    } else {
        RefundEffect::Adjust { cents: delta }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix(s)
    }

    #[test]
    fn open_rows_are_pending_until_the_hold_passes() {
        assert_eq!(view_status(StoredStatus::Open, t(100), t(99)), EarningStatus::Pending);
        assert_eq!(view_status(StoredStatus::Open, t(100), t(100)), EarningStatus::Available);
        assert_eq!(view_status(StoredStatus::Paid, t(100), t(0)), EarningStatus::Paid);
        assert_eq!(available_at(t(0), 30), t(30 * 86_400));
        assert_eq!(available_at(t(5), 0), t(5));
    }

    #[test]
    fn balances_bucket_the_ledger() {
        use EarningKind::*;
        use StoredStatus::*;
        let g = |kind, status, matured, cents| Group { kind, status, matured, cents };
        let b = Balances::from_groups(&[
            g(Commission, Open, false, 1_000),
            g(Commission, Open, true, 2_000),
            g(Adjustment, Open, false, -300),
            g(Commission, InPayout, true, 4_000),
            g(Commission, Paid, true, 8_000),
            g(Adjustment, Paid, true, -100),
            g(Commission, Reversed, true, 500),
        ]);
        assert_eq!(
            b,
            Balances { pending_cents: 700, available_cents: 2_000, in_payout_cents: 4_000, paid_cents: 7_900, reversed_cents: 900 }
        );
        // Everything earned = kept + reversed.
        let earned = 1_000 + 2_000 + 4_000 + 8_000 + 500;
        assert_eq!(b.pending_cents + b.available_cents + b.in_payout_cents + b.paid_cents + b.reversed_cents, earned);
    }

    #[test]
    fn refunds_reverse_or_adjust() {
        let open = Some(CommissionFacts { cents: 2_000, status: StoredStatus::Open });
        let paid = Some(CommissionFacts { cents: 2_000, status: StoredStatus::Paid });
        assert_eq!(refund_effect(open, 10_000, 0, 10_000), RefundEffect::Reverse { cents: 2_000 });
        assert_eq!(refund_effect(open, 10_000, 0, 5_000), RefundEffect::Adjust { cents: 1_000 });
        assert_eq!(refund_effect(open, 10_000, 5_000, 10_000), RefundEffect::Adjust { cents: 1_000 });
        assert_eq!(refund_effect(paid, 10_000, 0, 10_000), RefundEffect::Adjust { cents: 2_000 });
        assert_eq!(refund_effect(open, 10_000, 10_000, 10_000), RefundEffect::None, "a repeated refund");
        assert_eq!(refund_effect(None, 10_000, 0, 10_000), RefundEffect::None);
        let reversed = Some(CommissionFacts { cents: 2_000, status: StoredStatus::Reversed });
        assert_eq!(refund_effect(reversed, 10_000, 0, 10_000), RefundEffect::None);
    }
}
