//! White-label resellers: contracts an admin approves (dates, tiered wholesale pricing, markup,
//! end-user and API-call quotas), the reseller's branding served by host, and usage counted per
//! UTC calendar month. Money here is integer micro-dollars per call, rounded half-up to cents
//! once, at the end of a price.

use super::links::{dns_name, landing_url};
use super::money::{FULL_BPS, MAX_CENTS};
use super::payouts::payout_email;
use super::time::{Month, Timestamp};
use super::{status_enum, Rejection, INVALID_TRANSITION};
use serde::{Deserialize, Serialize};

// --- statuses ----------------------------------------------------------------------------------

status_enum!(ResellerStatus {
    Pending = "pending",
    Approved = "approved",
    Active = "active",
    Expired = "expired",
    Suspended = "suspended",
    Terminated = "terminated",
});

/// Who moves a reseller: an admin, or the cron at the contract's dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Admin,
    Cron,
}

/// pending → approved (an admin, with a contract) → active (the cron at `starts_at`) → expired
/// (the cron at `ends_at`; also an approved contract whose end passed first); an admin suspends
/// anyone not terminated, at any time, and reinstates a suspended one (to approved: the cron
/// activates it again while its contract runs, or expires it), and terminates anyone not
/// terminated, for good.
pub fn transition(from: ResellerStatus, to: ResellerStatus, by: Actor) -> Result<(), Rejection> {
    use ResellerStatus::*;
    let ok = match by {
        Actor::Cron => matches!((from, to), (Approved, Active) | (Approved | Active, Expired)),
        Actor::Admin => matches!(
            (from, to),
            (Pending, Approved)
                | (Pending | Approved | Active | Expired, Suspended)
                | (Suspended, Approved)
                | (Pending | Approved | Active | Suspended | Expired, Terminated)
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(INVALID_TRANSITION)
    }
}

/// Whether a reseller's end users may be served (the quota check refuses everyone else's at once).
pub fn serves(status: ResellerStatus) -> bool {
    status == ResellerStatus::Active
}

// --- pricing -----------------------------------------------------------------------------------

/// Most tiers a price has.
pub const MAX_TIERS: usize = 20;
/// Highest price of one call: one dollar.
pub const MAX_UNIT_PRICE_MICROS: i64 = 1_000_000;
/// Most calls a month a contract allows or a quote prices: ten billion. With `MAX_UNIT_PRICE_MICROS`
/// a price stays within `MAX_CENTS`.
pub const MAX_CALLS: i64 = 10_000_000_000;
/// Highest markup: 500 %.
pub const MAX_MARKUP_BPS: u32 = 50_000;
/// Most end users a contract allows.
pub const MAX_END_USERS: i64 = 10_000_000;

const MICROS_PER_CENT: i128 = 10_000;

status_enum!(
    /// `graduated`: each call priced in the tier it falls in; `volume`: every call at the tier the
    /// month's total reaches.
    PricingMode { Graduated = "graduated", Volume = "volume" }
);

/// A tier: calls up to `up_to` (inclusive; `None`, left out: no end) at `unit_price_micros` each.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<i64>,
    pub unit_price_micros: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub mode: PricingMode,
    pub tiers: Vec<Tier>,
}

/// Tiers as a contract may have them: 1 to `MAX_TIERS`, bounds rising, only the last open-ended,
/// prices 0 to `MAX_UNIT_PRICE_MICROS`. Calls past a last bounded tier are priced at it.
pub fn check_pricing(p: &Pricing) -> Result<(), String> {
    if p.tiers.is_empty() || p.tiers.len() > MAX_TIERS {
        return Err(format!("tiers must be 1 to {MAX_TIERS}"));
    }
    let mut below = 0;
    for (i, tier) in p.tiers.iter().enumerate() {
        if !(0..=MAX_UNIT_PRICE_MICROS).contains(&tier.unit_price_micros) {
            return Err(format!("tiers[{i}].unit_price_micros must be 0 to {MAX_UNIT_PRICE_MICROS}"));
        }
        match tier.up_to {
            None if i + 1 < p.tiers.len() => return Err(format!("tiers[{i}].up_to: only the last tier may be open-ended (null)")),
            None => {}
            Some(n) if n <= below || n > MAX_CALLS => {
                return Err(format!("tiers[{i}].up_to must be above the tier before ({below}) and at most {MAX_CALLS}"))
            }
            Some(n) => below = n,
        }
    }
    Ok(())
}

/// The index of the tier `calls` falls in (the last for calls past every bound).
pub fn tier_of(p: &Pricing, calls: i64) -> usize {
    p.tiers.iter().position(|t| t.up_to.is_none_or(|n| calls <= n)).unwrap_or(p.tiers.len().saturating_sub(1))
}

/// The wholesale price of `calls` (0 to `MAX_CALLS`) in micro-dollars: graduated, each call in its
/// tier; volume, every call at the tier the total reaches.
pub fn price_micros(p: &Pricing, calls: i64) -> i128 {
    let calls = calls.clamp(0, MAX_CALLS);
    let Some(last) = p.tiers.last() else { return 0 };
    match p.mode {
        PricingMode::Volume => i128::from(calls) * i128::from(p.tiers[tier_of(p, calls)].unit_price_micros),
        PricingMode::Graduated => {
            let (mut total, mut below) = (0i128, 0i64);
            for tier in &p.tiers {
                let top = tier.up_to.unwrap_or(MAX_CALLS).min(calls);
                if top > below {
                    total += i128::from(top - below) * i128::from(tier.unit_price_micros);
                    below = top;
                }
            }
            // Past the last bound: at the last tier's price.
            total + i128::from(calls - below) * i128::from(last.unit_price_micros)
        }
    }
}

/// Micro-dollars to cents, rounded half-up (non-negative amounts), within `MAX_CENTS`.
pub fn micros_to_cents(micros: i128) -> i64 {
    let cents = (micros.max(0) + MICROS_PER_CENT / 2) / MICROS_PER_CENT;
    cents.min(i128::from(MAX_CENTS)) as i64
}

/// What `calls` in a month cost and earn under a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub calls: i64,
    /// The index of the tier the month's total reaches.
    pub tier: usize,
    /// What the reseller pays the platform (the platform's revenue).
    pub wholesale_cents: i64,
    /// What the reseller charges: wholesale plus `markup_bps` of it.
    pub retail_cents: i64,
    /// The reseller's margin: retail − wholesale.
    pub margin_cents: i64,
}

/// Wholesale and retail are each rounded once, from micro-dollars (retail = wholesale × (1 +
/// markup)); the margin is their difference.
pub fn quote(p: &Pricing, markup_bps: u32, calls: i64) -> Quote {
    let calls = calls.clamp(0, MAX_CALLS);
    let micros = price_micros(p, calls);
    let wholesale_cents = micros_to_cents(micros);
    let full = i128::from(FULL_BPS);
    let retail_micros = (micros * (full + i128::from(markup_bps)) + full / 2) / full;
    let retail_cents = micros_to_cents(retail_micros).max(wholesale_cents);
    Quote { calls, tier: tier_of(p, calls), wholesale_cents, retail_cents, margin_cents: retail_cents - wholesale_cents }
}

// --- contracts ---------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub pricing: Pricing,
    pub markup_bps: u32,
    pub max_end_users: i64,
    pub max_api_calls_per_month: i64,
}

/// A contract's terms, checked: the field at fault and why.
pub fn check_contract(c: &Contract) -> Result<(), (&'static str, String)> {
    if c.ends_at <= c.starts_at {
        return Err(("contract.ends_at", "must be after starts_at".into()));
    }
    check_pricing(&c.pricing).map_err(|why| ("contract.pricing", why))?;
    if c.markup_bps > MAX_MARKUP_BPS {
        return Err(("contract.markup_bps", format!("must be 0 to {MAX_MARKUP_BPS}")));
    }
    if !(1..=MAX_END_USERS).contains(&c.max_end_users) {
        return Err(("contract.max_end_users", format!("must be 1 to {MAX_END_USERS}")));
    }
    if !(1..=MAX_CALLS).contains(&c.max_api_calls_per_month) {
        return Err(("contract.max_api_calls_per_month", format!("must be 1 to {MAX_CALLS}")));
    }
    Ok(())
}

/// Where the cron moves an approved or active reseller at `now`: active once its contract has
/// started, expired once it has ended; `None` when it stays.
pub fn due(status: ResellerStatus, c: &Contract, now: Timestamp) -> Option<ResellerStatus> {
    use ResellerStatus::*;
    match status {
        Approved | Active if now >= c.ends_at => Some(Expired),
        Approved if now >= c.starts_at => Some(Active),
        _ => None,
    }
}

// --- resellers ---------------------------------------------------------------------------------

/// An application, as sent by the user who would become the reseller.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub company_name: String,
    pub contact_email: String,
    pub requested_domain: Option<String>,
    pub expected_monthly_api_calls: i64,
}

/// A reseller as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Reseller {
    pub id: String,
    pub user_id: String,
    pub company_name: String,
    pub contact_email: String,
    pub requested_domain: Option<String>,
    pub expected_monthly_api_calls: i64,
    pub status: ResellerStatus,
    /// Changes so far: a write lands only at the version it read.
    pub version: i64,
    pub contract: Option<Contract>,
    pub branding: Option<Branding>,
    pub domain_verified_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Reseller {
    /// A pending reseller from a checked application.
    pub fn apply(id: String, user_id: String, a: &Application, now: Timestamp) -> Result<Reseller, (&'static str, String)> {
        if !(0..=MAX_CALLS).contains(&a.expected_monthly_api_calls) {
            return Err(("expected_monthly_api_calls", format!("must be 0 to {MAX_CALLS}")));
        }
        let requested_domain = a
            .requested_domain
            .as_deref()
            .map(|d| custom_domain(d).map_err(|why| ("requested_domain", why.to_owned())))
            .transpose()?;
        Ok(Reseller {
            id,
            user_id,
            company_name: company_name(&a.company_name)?,
            contact_email: email(&a.contact_email, "contact_email")?,
            requested_domain,
            expected_monthly_api_calls: a.expected_monthly_api_calls,
            status: ResellerStatus::Pending,
            version: 1,
            contract: None,
            branding: None,
            domain_verified_at: None,
            created_at: now,
            updated_at: now,
        })
    }
}

// --- applications and branding -----------------------------------------------------------------

pub const MAX_NAME_CHARS: usize = 200;

fn name(value: &str, field: &'static str) -> Result<String, (&'static str, String)> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err((field, format!("must be 1 to {MAX_NAME_CHARS} characters without control characters")));
    }
    Ok(trimmed.to_owned())
}

pub fn company_name(value: &str) -> Result<String, (&'static str, String)> {
    name(value, "company_name")
}

pub fn email(value: &str, field: &'static str) -> Result<String, (&'static str, String)> {
    payout_email(value).map_err(|why| (field, why.to_owned()))
}

/// A custom domain as stored: lower case, without a port or a trailing dot; a DNS name with a dot
/// (never an address), as a browser would send it in `Host`.
pub fn custom_domain(text: &str) -> Result<String, &'static str> {
    let lower = text.trim().to_ascii_lowercase();
    let host = match lower.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err("must be a domain name like app.example.com"),
        None => lower.as_str(),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if dns_name(host) {
        Ok(host.to_owned())
    } else {
        Err("must be a domain name like app.example.com")
    }
}

/// A `#RRGGBB` color, as stored (lower case).
pub fn color(text: &str) -> Result<String, &'static str> {
    match text.strip_prefix('#') {
        Some(hex) if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(format!("#{}", hex.to_ascii_lowercase())),
        _ => Err("must be a color #RRGGBB"),
    }
}

/// The reseller's branding, as sent.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingFields {
    pub display_name: String,
    pub logo_url: String,
    pub primary_color: String,
    pub support_email: String,
    pub custom_domain: String,
}

/// Branding as stored and served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    pub display_name: String,
    pub logo_url: String,
    pub primary_color: String,
    pub support_email: String,
    pub custom_domain: String,
}

/// Branding fields checked and normalized: the field at fault and why.
pub fn branding(f: &BrandingFields) -> Result<Branding, (&'static str, String)> {
    landing_url(f.logo_url.trim()).map_err(|why| ("logo_url", why.to_owned()))?;
    Ok(Branding {
        display_name: name(&f.display_name, "display_name")?,
        logo_url: f.logo_url.trim().to_owned(),
        primary_color: color(&f.primary_color).map_err(|why| ("primary_color", why.to_owned()))?,
        support_email: email(&f.support_email, "support_email")?,
        custom_domain: custom_domain(&f.custom_domain).map_err(|why| ("custom_domain", why.to_owned()))?,
    })
}

// --- quotas ------------------------------------------------------------------------------------

/// The usage window of `now`: its UTC calendar month, and the seconds until the next one starts.
pub fn window(now: Timestamp) -> (Month, i64) {
    let month = Month::of(now);
    let next = month.next().map_or(super::time::END_OF_TIME.unix() + 1, |m| m.start().unix());
    (month, (next - now.unix()).max(1))
}

/// A report of `calls` against a monthly quota with `used` counted so far: the new count, or,
/// when it would cross the limit, `Err(remaining)` (the request is refused whole).
pub fn admit(used: i64, limit: i64, calls: i64) -> Result<i64, i64> {
    let remaining = (limit - used).max(0);
    if calls > remaining {
        Err(remaining)
    } else {
        Ok(used + calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tiers(mode: PricingMode, tiers: &[(Option<i64>, i64)]) -> Pricing {
        Pricing { mode, tiers: tiers.iter().map(|&(up_to, unit_price_micros)| Tier { up_to, unit_price_micros }).collect() }
    }

    /// The worked example: ≤10,000 at $0.010, ≤100,000 at $0.008, above at $0.005.
    fn example(mode: PricingMode) -> Pricing {
        tiers(mode, &[(Some(10_000), 10_000), (Some(100_000), 8_000), (None, 5_000)])
    }

    #[test]
    fn the_worked_example() {
        assert_eq!(quote(&example(PricingMode::Graduated), 0, 150_000).wholesale_cents, 107_000);
        assert_eq!(quote(&example(PricingMode::Volume), 0, 150_000).wholesale_cents, 75_000);
        // Inclusive bounds: 10,000 calls are all in the first tier; 10,001 reach the second.
        assert_eq!(tier_of(&example(PricingMode::Volume), 10_000), 0);
        assert_eq!(tier_of(&example(PricingMode::Volume), 10_001), 1);
        assert_eq!(quote(&example(PricingMode::Volume), 0, 10_000).wholesale_cents, 10_000);
        assert_eq!(quote(&example(PricingMode::Volume), 0, 10_001).wholesale_cents, 8_001, "the volume cliff: more calls, less money");
        assert_eq!(quote(&example(PricingMode::Graduated), 0, 0), Quote { calls: 0, tier: 0, wholesale_cents: 0, retail_cents: 0, margin_cents: 0 });
        let q = quote(&example(PricingMode::Graduated), 2_500, 150_000);
        assert_eq!((q.retail_cents, q.margin_cents), (133_750, 26_750));
    }

    #[test]
    fn calls_past_a_last_bounded_tier_are_priced_at_it() {
        let p = tiers(PricingMode::Graduated, &[(Some(100), 1_000), (Some(200), 500)]);
        assert_eq!(price_micros(&p, 300), 100 * 1_000 + 100 * 500 + 100 * 500);
        let v = Pricing { mode: PricingMode::Volume, ..p };
        assert_eq!(price_micros(&v, 300), 300 * 500);
        assert_eq!(tier_of(&v, 300), 1);
    }

    #[test]
    fn cents_round_half_up_once() {
        assert_eq!(micros_to_cents(4_999), 0);
        assert_eq!(micros_to_cents(5_000), 1);
        assert_eq!(micros_to_cents(15_000), 2);
        // 1.5 cents at a 100 % markup: 3 cents retail (not 2 × 2 rounded cents = 4).
        let q = quote(&tiers(PricingMode::Graduated, &[(None, 15_000)]), 10_000, 1);
        assert_eq!((q.wholesale_cents, q.retail_cents, q.margin_cents), (2, 3, 1));
        // Three calls at 0.3 cents: 0.9 cents, one cent; not three roundings to zero.
        assert_eq!(quote(&tiers(PricingMode::Graduated, &[(None, 3_000)]), 0, 3).wholesale_cents, 1);
        assert_eq!(quote(&tiers(PricingMode::Graduated, &[(None, MAX_UNIT_PRICE_MICROS)]), MAX_MARKUP_BPS, MAX_CALLS).wholesale_cents, MAX_CENTS);
    }

    #[test]
    fn pricing_is_checked() {
        let bad = |t: &[(Option<i64>, i64)]| check_pricing(&tiers(PricingMode::Graduated, t)).unwrap_err();
        assert!(check_pricing(&example(PricingMode::Graduated)).is_ok());
        assert!(check_pricing(&tiers(PricingMode::Volume, &[(Some(5), 0)])).is_ok(), "a bounded last tier and a free tier");
        assert!(bad(&[]).contains("1 to"));
        assert!(bad(&[(None, 1), (Some(5), 1)]).contains("only the last"));
        assert!(bad(&[(Some(5), 1), (Some(5), 1)]).contains("above the tier before"));
        assert!(bad(&[(Some(0), 1)]).contains("above"));
        assert!(bad(&[(Some(5), -1)]).contains("unit_price_micros"));
        assert!(bad(&[(Some(5), MAX_UNIT_PRICE_MICROS + 1)]).contains("unit_price_micros"));
        assert!(bad(&[(Some(MAX_CALLS + 1), 1)]).contains("at most"));
    }

    #[test]
    fn statuses_move_by_who_may_move_them() {
        use ResellerStatus::*;
        for (from, to, by, ok) in [
            (Pending, Approved, Actor::Admin, true),
            (Pending, Approved, Actor::Cron, false),
            (Approved, Active, Actor::Cron, true),
            (Approved, Active, Actor::Admin, false),
            (Active, Expired, Actor::Cron, true),
            (Approved, Expired, Actor::Cron, true),
            (Active, Suspended, Actor::Admin, true),
            (Suspended, Approved, Actor::Admin, true),
            (Suspended, Active, Actor::Cron, false),
            (Expired, Terminated, Actor::Admin, true),
            (Terminated, Approved, Actor::Admin, false),
            (Terminated, Suspended, Actor::Admin, false),
            (Pending, Suspended, Actor::Admin, true),
            (Terminated, Suspended, Actor::Admin, false),
            (Expired, Active, Actor::Cron, false),
        ] {
            assert_eq!(transition(from, to, by).is_ok(), ok, "{from:?} → {to:?} by {by:?}");
        }
        assert!(serves(Active));
        assert!(ResellerStatus::ALL.iter().filter(|s| serves(**s)).count() == 1);
    }

    #[test]
    fn the_cron_follows_the_contract_dates() {
        let contract = Contract {
            starts_at: Timestamp::from_unix(1_000),
            ends_at: Timestamp::from_unix(2_000),
            pricing: example(PricingMode::Volume),
            markup_bps: 0,
            max_end_users: 1,
            max_api_calls_per_month: 1,
        };
        let at = Timestamp::from_unix;
        assert_eq!(due(ResellerStatus::Approved, &contract, at(999)), None);
        assert_eq!(due(ResellerStatus::Approved, &contract, at(1_000)), Some(ResellerStatus::Active));
        assert_eq!(due(ResellerStatus::Active, &contract, at(1_999)), None);
        assert_eq!(due(ResellerStatus::Active, &contract, at(2_000)), Some(ResellerStatus::Expired));
        assert_eq!(due(ResellerStatus::Approved, &contract, at(5_000)), Some(ResellerStatus::Expired), "never active past its end");
        assert_eq!(due(ResellerStatus::Suspended, &contract, at(5_000)), None, "a suspension is an admin's to lift");
        assert!(check_contract(&contract).is_ok());
        assert_eq!(check_contract(&Contract { ends_at: at(1_000), ..contract.clone() }).unwrap_err().0, "contract.ends_at");
        assert_eq!(check_contract(&Contract { max_end_users: 0, ..contract.clone() }).unwrap_err().0, "contract.max_end_users");
        assert_eq!(check_contract(&Contract { markup_bps: MAX_MARKUP_BPS + 1, ..contract }).unwrap_err().0, "contract.markup_bps");
    }

    #[test]
    fn branding_is_normalized() {
        assert_eq!(custom_domain(" App.Example.COM.:8443 "), Ok("app.example.com".into()));
        assert_eq!(custom_domain("example.com"), Ok("example.com".into()));
        for bad in ["localhost", "1.2.3.4", "https://example.com", "example.com/path", "exa mple.com", "-a.example.com", "", "a..b", "example.com:", "example.com:99999a"] {
            assert!(custom_domain(bad).is_err(), "{bad}");
        }
        assert_eq!(color("#A1b2C3"), Ok("#a1b2c3".into()));
        for bad in ["A1B2C3", "#12345", "#1234567", "#GGGGGG"] {
            assert!(color(bad).is_err(), "{bad}");
        }
        let fields = BrandingFields {
            display_name: " Acme Audio ".into(),
            logo_url: "https://cdn.acme.example/logo.png".into(),
            primary_color: "#FF0000".into(),
            support_email: "help@acme.example".into(),
            custom_domain: "Audio.Acme.Example".into(),
        };
        let b = branding(&fields).unwrap();
        assert_eq!((b.display_name.as_str(), b.primary_color.as_str(), b.custom_domain.as_str()), ("Acme Audio", "#ff0000", "audio.acme.example"));
        for (logo, field) in [("http://cdn.acme.example/l.png", "logo_url"), ("https://127.0.0.1/l.png", "logo_url"), ("https://10.0.0.1/x", "logo_url")] {
            assert_eq!(branding(&BrandingFields { logo_url: logo.into(), ..fields.clone() }).unwrap_err().0, field, "{logo}");
        }
        assert_eq!(branding(&BrandingFields { support_email: "nope".into(), ..fields }).unwrap_err().0, "support_email");
    }

    #[test]
    fn quota_windows_are_utc_months() {
        // 2026-12-31T23:59:59Z → 1 s to January.
        let (month, left) = window(Timestamp::parse_rfc3339("2026-12-31T23:59:59Z").unwrap());
        assert_eq!((month.to_string(), left), ("2026-12".into(), 1));
        let (month, left) = window(Timestamp::parse_rfc3339("2027-02-01T00:00:00Z").unwrap());
        assert_eq!((month.to_string(), left), ("2027-02".into(), 28 * 86_400));
        assert_eq!(admit(90, 100, 10), Ok(100), "exactly the quota is accepted");
        assert_eq!(admit(90, 100, 11), Err(10), "a request that would cross it is refused whole");
        assert_eq!(admit(120, 100, 1), Err(0), "after a lowered quota");
    }

    fn pricing() -> impl Strategy<Value = Pricing> {
        (prop::collection::vec((1i64..5_000, 0i64..=MAX_UNIT_PRICE_MICROS), 1..6), any::<bool>(), any::<bool>()).prop_map(|(steps, open, volume)| {
            let mut up_to = 0;
            let mut tiers: Vec<Tier> = steps
                .into_iter()
                .map(|(step, price)| {
                    up_to += step;
                    Tier { up_to: Some(up_to), unit_price_micros: price }
                })
                .collect();
            if open {
                tiers.last_mut().unwrap().up_to = None;
            }
            Pricing { mode: if volume { PricingMode::Volume } else { PricingMode::Graduated }, tiers }
        })
    }

    /// The price of each call on its own, one by one: the reference of both modes.
    fn unit_by_unit(p: &Pricing, calls: i64) -> i128 {
        let at = |n: i64| i128::from(p.tiers[tier_of(p, n)].unit_price_micros);
        match p.mode {
            PricingMode::Graduated => (1..=calls).map(at).sum(),
            PricingMode::Volume => i128::from(calls) * at(calls),
        }
    }

    proptest! {
        #[test]
        fn prices_equal_the_unit_by_unit_reference(p in pricing(), calls in 0i64..30_000) {
            prop_assert!(check_pricing(&p).is_ok());
            prop_assert_eq!(price_micros(&p, calls), unit_by_unit(&p, calls));
        }

        #[test]
        fn graduated_prices_never_fall_as_calls_rise(p in pricing(), calls in 0i64..30_000, more in 0i64..5_000) {
            let p = Pricing { mode: PricingMode::Graduated, ..p };
            prop_assert!(price_micros(&p, calls + more) >= price_micros(&p, calls));
            prop_assert!(quote(&p, 0, calls + more).wholesale_cents >= quote(&p, 0, calls).wholesale_cents);
        }

        #[test]
        fn volume_prices_are_the_reached_tier_times_the_calls(p in pricing(), calls in 0i64..30_000) {
            let p = Pricing { mode: PricingMode::Volume, ..p };
            let tier = tier_of(&p, calls);
            prop_assert_eq!(price_micros(&p, calls), i128::from(calls) * i128::from(p.tiers[tier].unit_price_micros));
            // Within a tier, more calls never cost less; at a bound the price may drop (the cliff).
            if let Some(bound) = p.tiers[tier].up_to {
                if calls < bound {
                    prop_assert!(price_micros(&p, calls + 1) >= price_micros(&p, calls));
                }
            }
        }

        #[test]
        fn markup_is_rounded_once_from_micros(p in pricing(), calls in 0i64..30_000, markup in 0u32..=MAX_MARKUP_BPS) {
            let q = quote(&p, markup, calls);
            prop_assert_eq!(q.retail_cents, q.wholesale_cents + q.margin_cents);
            prop_assert!(q.margin_cents >= 0);
            // Retail is within half a cent (and a rounding of the micros) of the exact
            // wholesale × (1 + markup), computed from the micros, not from rounded cents.
            let exact = price_micros(&p, calls) * (10_000 + i128::from(markup)); // in micros × 10^4
            let retail = i128::from(q.retail_cents) * 10_000 * 10_000;
            prop_assert!((retail - exact).abs() <= 5_000 * 10_000 + 10_000, "{} vs {}", retail, exact);
            prop_assert!(quote(&p, markup.saturating_add(1).min(MAX_MARKUP_BPS), calls).retail_cents >= q.retail_cents);
        }
    }
}
