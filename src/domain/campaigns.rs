//! Promotional campaigns: offers, codes, the lifecycle, and who may redeem.

use super::money::MAX_CENTS;
use super::time::Timestamp;
use super::{status_enum, Rejection, INVALID_TRANSITION};
use serde::{Deserialize, Serialize};

status_enum!(
    /// draft → scheduled → active → completed; draft → active directly; completed is final.
    CampaignStatus { Draft = "draft", Scheduled = "scheduled", Active = "active", Completed = "completed" }
);

status_enum!(OfferType { DiscountPercent = "discount_percent", DiscountAmount = "discount_amount", Credits = "credits", FreeTrial = "free_trial" });

pub const PREFIX: &str = "PROMO";
pub const MAX_CREDITS: i64 = 1_000_000_000;
pub const MAX_TRIAL_DAYS: i64 = 3_650;

/// What a redemption grants: a discount in percent (1–100) or in cents, API credits, or free
/// trial days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    #[serde(rename = "type")]
    pub kind: OfferType,
    pub value: i64,
}

impl Offer {
    pub fn validate(self) -> Result<Offer, &'static str> {
        let ok = match self.kind {
            OfferType::DiscountPercent => (1..=100).contains(&self.value),
            OfferType::DiscountAmount => (1..=MAX_CENTS).contains(&self.value),
            OfferType::Credits => (1..=MAX_CREDITS).contains(&self.value),
            OfferType::FreeTrial => (1..=MAX_TRIAL_DAYS).contains(&self.value),
        };
        if ok {
            Ok(self)
        } else {
            Err(match self.kind {
                OfferType::DiscountPercent => "a discount_percent offer is 1 to 100",
                OfferType::DiscountAmount => "a discount_amount offer is a positive number of cents",
                OfferType::Credits => "a credits offer is a positive number of credits",
                OfferType::FreeTrial => "a free_trial offer is a positive number of days (at most 3650)",
            })
        }
    }
}

/// An administrator's own code: 4–24 upper-case letters and digits.
pub fn custom_code(text: &str) -> Result<String, &'static str> {
    let ok = (4..=24).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    ok.then(|| text.to_owned()).ok_or("code must be 4–24 upper-case letters and digits")
}

/// A code from a link or a request (case-insensitive); `None` when it cannot be one.
pub fn parse_code(text: &str) -> Option<String> {
    custom_code(&text.trim().to_ascii_uppercase()).ok()
}

pub fn transition(from: CampaignStatus, to: CampaignStatus) -> Result<(), Rejection> {
    use CampaignStatus::*;
    match (from, to) {
        (Draft, Scheduled) | (Draft, Active) | (Scheduled, Active) | (Active, Completed) => Ok(()),
        _ => Err(INVALID_TRANSITION),
    }
}

/// Only a draft may be edited.
pub fn editable(status: CampaignStatus) -> Result<(), Rejection> {
    match status {
        CampaignStatus::Draft => Ok(()),
        _ => Err(Rejection::conflict("campaign_not_editable", "Only draft campaigns can be edited.")),
    }
}

pub fn window(starts_at: Option<Timestamp>, ends_at: Option<Timestamp>) -> Result<(), &'static str> {
    match (starts_at, ends_at) {
        (Some(s), Some(e)) if e <= s => Err("ends_at must be after starts_at"),
        _ => Ok(()),
    }
}

/// A promotional campaign: a `PROMO` code, its offer and landing page, its schedule and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub offer: Offer,
    pub landing_url: String,
    pub status: CampaignStatus,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: i64,
    pub uses: i64,
    pub tags: Vec<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Campaign {
    pub fn state(&self) -> State {
        State {
            status: self.status,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            uses: self.uses,
            max_uses: self.max_uses,
            max_uses_per_user: self.max_uses_per_user,
        }
    }
}

/// A user's redemption of a campaign's offer (the offer as it was then).
#[derive(Clone, Debug, PartialEq)]
pub struct Redemption {
    pub id: String,
    pub campaign_code: String,
    pub offer: Offer,
    pub created_at: Timestamp,
}

/// What the rules need to know about a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub status: CampaignStatus,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub uses: i64,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: i64,
}

/// Live: active and within its dates. Only live campaigns redirect, show publicly and redeem.
pub fn is_live(c: &State, now: Timestamp) -> bool {
    c.status == CampaignStatus::Active && c.starts_at.is_none_or(|s| s <= now) && c.ends_at.is_none_or(|e| now < e)
}

/// Whether `user_uses` earlier redemptions by this user allow one more now. The store enforces
/// the same conditions atomically (store::campaigns::redeem); this tells which one failed.
pub fn redeemable(c: &State, user_uses: i64, now: Timestamp) -> Result<(), Rejection> {
    if !is_live(c, now) {
        return Err(Rejection::conflict("campaign_not_active", "This campaign is not active."));
    }
    if c.max_uses.is_some_and(|max| c.uses >= max) {
        return Err(Rejection::conflict("campaign_exhausted", "This campaign has been fully redeemed."));
    }
    if user_uses >= c.max_uses_per_user {
        return Err(Rejection::conflict(
            "redemption_limit_reached",
            "You have redeemed this campaign as often as allowed.",
        ));
    }
    Ok(())
}

/// The transition the cron job makes now, if any: a scheduled campaign starts at `starts_at`;
/// an active one completes at `ends_at` or once all its uses are taken.
pub fn due(c: &State, now: Timestamp) -> Option<CampaignStatus> {
    let ended = c.ends_at.is_some_and(|e| e <= now) || c.max_uses.is_some_and(|max| c.uses >= max);
    match c.status {
        CampaignStatus::Scheduled if c.starts_at.is_none_or(|s| s <= now) => {
            Some(if ended { CampaignStatus::Completed } else { CampaignStatus::Active })
        }
        CampaignStatus::Active if ended => Some(CampaignStatus::Completed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix(s)
    }

    fn state(status: CampaignStatus) -> State {
        State { status, starts_at: None, ends_at: None, uses: 0, max_uses: None, max_uses_per_user: 1 }
    }

    #[test]
    fn the_transition_table() {
        let allowed = [(Draft, Scheduled), (Draft, Active), (Scheduled, Active), (Active, Completed)];
        for &from in CampaignStatus::ALL {
            for &to in CampaignStatus::ALL {
                assert_eq!(transition(from, to).is_ok(), allowed.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
        assert!(editable(Draft).is_ok() && editable(Scheduled).is_err());
    }

    #[test]
    fn offers_are_bounded() {
        let o = |kind, value| Offer { kind, value }.validate().is_ok();
        assert!(o(OfferType::DiscountPercent, 1) && o(OfferType::DiscountPercent, 100));
        assert!(!o(OfferType::DiscountPercent, 0) && !o(OfferType::DiscountPercent, 101));
        assert!(o(OfferType::DiscountAmount, 500) && !o(OfferType::DiscountAmount, 0));
        assert!(o(OfferType::Credits, 1) && !o(OfferType::Credits, -1));
        assert!(o(OfferType::FreeTrial, 14) && !o(OfferType::FreeTrial, 0) && !o(OfferType::FreeTrial, 3_651));
        let parsed: Offer = serde_json::from_str(r#"{"type": "credits", "value": 500}"#).unwrap();
        assert_eq!(parsed, Offer { kind: OfferType::Credits, value: 500 });
        assert!(serde_json::from_str::<Offer>(r#"{"type": "cash", "value": 5}"#).is_err());
    }

    #[test]
    fn codes() {
        assert_eq!(custom_code("SUMMER24"), Ok("SUMMER24".into()));
        for bad in ["abc", "SUM", "SUMMER-24", "summer24", &"A".repeat(25), "ÄBCD"] {
            assert!(custom_code(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_code(" summer24 ").as_deref(), Some("SUMMER24"));
        assert_eq!(parse_code("<script>"), None);
    }

    #[test]
    fn liveness_follows_status_and_dates() {
        let mut c = state(Active);
        assert!(is_live(&c, t(0)));
        c.starts_at = Some(t(10));
        c.ends_at = Some(t(20));
        assert!(!is_live(&c, t(9)) && is_live(&c, t(10)) && is_live(&c, t(19)) && !is_live(&c, t(20)));
        assert!(!is_live(&state(Scheduled), t(0)) && !is_live(&state(Completed), t(0)));
        assert!(window(Some(t(10)), Some(t(10))).is_err() && window(Some(t(10)), None).is_ok());
    }

    #[test]
    fn redemption_rules_in_order() {
        let mut c = state(Active);
        c.max_uses = Some(2);
        c.max_uses_per_user = 2;
        assert!(redeemable(&c, 0, t(0)).is_ok());
        assert_eq!(redeemable(&c, 2, t(0)).unwrap_err().code, "redemption_limit_reached");
        c.uses = 2;
        assert_eq!(redeemable(&c, 0, t(0)).unwrap_err().code, "campaign_exhausted");
        c.status = Completed;
        assert_eq!(redeemable(&c, 0, t(0)).unwrap_err().code, "campaign_not_active");
    }

    #[test]
    fn the_cron_moves_campaigns_along() {
        let mut c = state(Scheduled);
        c.starts_at = Some(t(10));
        c.ends_at = Some(t(20));
        assert_eq!(due(&c, t(9)), None);
        assert_eq!(due(&c, t(10)), Some(Active));
        assert_eq!(due(&c, t(25)), Some(Completed), "a missed window completes directly");
        c.status = Active;
        assert_eq!(due(&c, t(15)), None);
        assert_eq!(due(&c, t(20)), Some(Completed));
        let mut used_up = state(Active);
        used_up.max_uses = Some(3);
        used_up.uses = 3;
        assert_eq!(due(&used_up, t(0)), Some(Completed));
        assert_eq!(due(&state(Draft), t(99)), None);
        assert_eq!(due(&state(Completed), t(99)), None);
    }
}
