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
/// The most uses a campaign (or one user of it) may be given.
pub const MAX_USES: i64 = 1_000_000_000;

/// A limit of uses (`max_uses`, `max_uses_per_user`): 1 to `MAX_USES`.
pub fn uses_limit(n: i64) -> Result<i64, &'static str> {
    (1..=MAX_USES).contains(&n).then_some(n).ok_or("must be 1 to 1000000000")
}

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

/// A condition on a campaign at an instant `now`: the lifecycle's rules (`LIVE`, `REDEEMABLE`,
/// `OVER`, `DUE`) are written once, as values of this type, and read two ways. `holds` reads them
/// here, where Rust decides (the click path, the public view, why a redemption was refused, the
/// cron's transitions); `store::campaigns::condition` renders the very same values as SQL, where
/// D1 must decide atomically (a redemption) or filter by index (the public list, the cron's
/// chunk). So a rule cannot say one thing in Rust and another in SQL: only the four atoms have
/// an SQL reading, each a single comparison written next to this one, and an atom added here
/// does not compile until the renderer knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The campaign has this status.
    Status(CampaignStatus),
    /// Its start has come: no `starts_at`, or `starts_at <= now` (the window includes its start).
    Started,
    /// Its end has come: `ends_at <= now` (the window excludes its end; no `ends_at`: never).
    Ended,
    /// All its uses are taken: `max_uses` is set and `uses >= max_uses`.
    UsedUp,
    Not(&'static Rule),
    All(&'static [Rule]),
    Any(&'static [Rule]),
}

impl Rule {
    pub fn holds(&self, c: &State, now: Timestamp) -> bool {
        match *self {
            Rule::Status(status) => c.status == status,
            Rule::Started => c.starts_at.is_none_or(|s| s <= now),
            Rule::Ended => c.ends_at.is_some_and(|e| e <= now),
            Rule::UsedUp => c.max_uses.is_some_and(|max| c.uses >= max),
            Rule::Not(rule) => !rule.holds(c, now),
            Rule::All(rules) => rules.iter().all(|r| r.holds(c, now)),
            Rule::Any(rules) => rules.iter().any(|r| r.holds(c, now)),
        }
    }
}

/// Live: active, started and not yet ended, i.e. within `[starts_at, ends_at)`. Only live
/// campaigns redirect, show publicly and redeem.
pub const LIVE: Rule = Rule::All(&[Rule::Status(CampaignStatus::Active), Rule::Started, Rule::Not(&Rule::Ended)]);

/// Redeemable by someone under the per-user limit: live with uses left.
pub const REDEEMABLE: Rule = Rule::All(&[LIVE, Rule::Not(&Rule::UsedUp)]);

/// Over: its end has come or its uses are all taken.
pub const OVER: Rule = Rule::Any(&[Rule::Ended, Rule::UsedUp]);

/// What the cron job must move on: a scheduled campaign whose start has come, an active one
/// that is `OVER` (written out per atom, so that each branch is one index range in D1).
pub const DUE: Rule = Rule::Any(&[
    Rule::All(&[Rule::Status(CampaignStatus::Scheduled), Rule::Started]),
    Rule::All(&[Rule::Status(CampaignStatus::Active), Rule::Ended]),
    Rule::All(&[Rule::Status(CampaignStatus::Active), Rule::UsedUp]),
]);

pub fn is_live(c: &State, now: Timestamp) -> bool {
    LIVE.holds(c, now)
}

/// Whether the caller may know of a campaign at all: administrators know every campaign, anyone
/// else only a live one. Codes can be chosen, so guessable: a campaign not yet announced (or
/// over) must answer exactly as an unknown code does.
pub fn known_to(c: &State, is_admin: bool, now: Timestamp) -> bool {
    is_admin || is_live(c, now)
}

/// Whether `user_uses` earlier redemptions by this user allow one more now. The store enforces
/// the same rule atomically (`REDEEMABLE` and the per-user limit inside its INSERT, see
/// store::campaigns::redeem); this tells which part failed.
pub fn redeemable(c: &State, user_uses: i64, now: Timestamp) -> Result<(), Rejection> {
    if !LIVE.holds(c, now) {
        return Err(Rejection::conflict("campaign_not_active", "This campaign is not active."));
    }
    if Rule::UsedUp.holds(c, now) {
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

/// The transition the cron job makes now, if any (`DUE`): a scheduled campaign starts at
/// `starts_at`, straight into completed if it is already `OVER`; an active one completes when
/// `OVER`.
pub fn due(c: &State, now: Timestamp) -> Option<CampaignStatus> {
    if !DUE.holds(c, now) {
        return None;
    }
    Some(if OVER.holds(c, now) { CampaignStatus::Completed } else { CampaignStatus::Active })
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
        let scheduled = State { starts_at: Some(t(10)), ..state(Scheduled) };
        assert!(!known_to(&scheduled, false, t(10)) && known_to(&scheduled, true, t(10)));
        assert!(known_to(&state(Active), false, t(0)));
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

    /// Every combination of status, dates around `now` and uses, for the rules' properties.
    fn states() -> Vec<State> {
        let dates = [None, Some(t(9)), Some(t(10)), Some(t(11))];
        let mut all = Vec::new();
        for &status in CampaignStatus::ALL {
            for starts_at in dates {
                for ends_at in dates {
                    for (uses, max_uses) in [(0, None), (2, Some(3)), (3, Some(3))] {
                        all.push(State { status, starts_at, ends_at, uses, max_uses, max_uses_per_user: 1 });
                    }
                }
            }
        }
        all
    }

    #[test]
    fn the_rules_are_what_their_names_say() {
        let now = t(10);
        for c in states() {
            let started = c.starts_at.is_none_or(|s| s <= now);
            let ended = c.ends_at.is_some_and(|e| e <= now);
            let used_up = c.max_uses.is_some_and(|m| c.uses >= m);
            let live = c.status == Active && started && !ended;
            assert_eq!(LIVE.holds(&c, now), live, "{c:?}");
            assert_eq!(REDEEMABLE.holds(&c, now), live && !used_up, "{c:?}");
            assert_eq!(redeemable(&c, 0, now).is_ok(), REDEEMABLE.holds(&c, now), "{c:?}");
            // DUE, written per atom for the store, is "scheduled and started, or active and over".
            let over = OVER.holds(&c, now);
            assert_eq!(DUE.holds(&c, now), (c.status == Scheduled && started) || (c.status == Active && over), "{c:?}");
            assert_eq!(due(&c, now).is_some(), DUE.holds(&c, now), "{c:?}");
            // A transition the cron makes is one the state machine allows, and leaves nothing due.
            if let Some(to) = due(&c, now) {
                assert!(transition(c.status, to).is_ok() || (c.status, to) == (Scheduled, Completed), "{c:?} → {to:?}");
                assert_eq!(due(&State { status: to, ..c }, now), None, "{c:?} → {to:?}");
            }
        }
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
