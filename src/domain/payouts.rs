//! Payouts: the money out, shared by every program that earns (affiliates now; creators and
//! sellers later). pending → approved → processing → paid | failed.

use super::time::Timestamp;
use super::{status_enum, Rejection, INVALID_TRANSITION};

status_enum!(PayoutStatus { Pending = "pending", Approved = "approved", Processing = "processing", Paid = "paid", Failed = "failed" });

/// A payout of a payee (`program` + `payee_id`, e.g. an affiliate) to its user.
#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    pub id: String,
    pub program: String,
    pub payee_id: String,
    pub user_id: String,
    pub amount_cents: i64,
    pub status: PayoutStatus,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn transition(from: PayoutStatus, to: PayoutStatus) -> Result<(), Rejection> {
    use PayoutStatus::*;
    match (from, to) {
        (Pending, Approved) | (Approved, Processing) | (Processing, Paid) | (Processing, Failed) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

/// A payout gathers everything available; it must reach the minimum.
pub fn check_amount(available_cents: i64, minimum_cents: i64) -> Result<(), Rejection> {
    if available_cents >= minimum_cents.max(1) {
        Ok(())
    } else {
        Err(Rejection::unprocessable(
            "below_minimum",
            "The available balance is below the minimum payout amount.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::PayoutStatus::*;
    use super::*;

    #[test]
    fn the_transition_table() {
        let allowed = [(Pending, Approved), (Approved, Processing), (Processing, Paid), (Processing, Failed)];
        for &from in PayoutStatus::ALL {
            for &to in PayoutStatus::ALL {
                assert_eq!(transition(from, to).is_ok(), allowed.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn the_minimum() {
        assert!(check_amount(5_000, 5_000).is_ok());
        assert_eq!(check_amount(4_999, 5_000).unwrap_err().code, "below_minimum");
        assert!(check_amount(0, 0).is_err(), "never an empty payout");
        assert!(check_amount(-10, 0).is_err(), "never a negative payout");
    }
}
