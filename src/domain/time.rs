//! Instants as whole UTC seconds since the Unix epoch, shown to clients as RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with one-second resolution. Stored in D1 as an INTEGER, shown as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    /// From a JavaScript clock reading (milliseconds since the epoch).
    pub fn from_unix_millis(millis: u64) -> Self {
        Timestamp((millis / 1000) as i64)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds))
    }

    /// `2026-11-25T11:54:51Z`; instants outside chrono's range (never produced here) show as the epoch.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp(self.0, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Accepts any RFC 3339 instant (offsets are converted to UTC, fractions dropped).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|dt| Timestamp(dt.timestamp()))
    }

    /// An RFC 3339 instant, or a plain `YYYY-MM-DD` date meaning its midnight (UTC).
    pub fn parse_instant_or_date(text: &str) -> Option<Self> {
        Self::parse_rfc3339(text).or_else(|| {
            let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            Some(Timestamp(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp()))
        })
    }

    pub fn to_chrono(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(self.0, 0).unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time"))
    }
}

/// A half-open reporting period `[from, to)`; unbounded ends are the epoch and year 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The latest instant a period may name (9999-12-31T23:59:59Z).
pub const END_OF_TIME: Timestamp = Timestamp(253_402_300_799);

impl Period {
    pub const ALL: Period = Period { from: Timestamp(0), to: END_OF_TIME };

    /// From optional `from`/`to` texts (RFC 3339 or dates). The error names the bad field.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, (&'static str, &'static str)> {
        let bound = |text: Option<&str>, field: &'static str, default: Timestamp| match text {
            None | Some("") => Ok(default),
            Some(t) => Timestamp::parse_instant_or_date(t)
                .ok_or((field, "must be an RFC 3339 date-time or a YYYY-MM-DD date")),
        };
        let period = Period { from: bound(from, "from", Period::ALL.from)?, to: bound(to, "to", Period::ALL.to)? };
        if period.to <= period.from {
            return Err(("to", "must be after from"));
        }
        Ok(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp::from_unix(1_795_600_491);
        assert_eq!(t.to_rfc3339(), "2026-11-25T09:54:51Z");
        assert_eq!(Timestamp::parse_rfc3339("2026-11-25T09:54:51Z"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-25T11:54:51.999+02:00"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2026-11-24"), None);
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse(None, None), Ok(Period::ALL));
        let p = Period::parse(Some("2026-11-01"), Some("2026-12-01T00:00:00Z")).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-11-01T00:00:00Z");
        assert_eq!(p.to.to_rfc3339(), "2026-12-01T00:00:00Z");
        assert_eq!(Period::parse(Some("yesterday"), None).unwrap_err().0, "from");
        assert_eq!(Period::parse(Some("2026-12-01"), Some("2026-11-01")).unwrap_err().0, "to");
    }

    #[test]
    fn millis_truncate_to_seconds() {
        assert_eq!(Timestamp::from_unix_millis(1_999).unix(), 1);
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_round_trips(seconds in 0i64..253_402_300_799) {
            let t = Timestamp::from_unix(seconds);
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,40}") {
            let _ = Timestamp::parse_rfc3339(&text);
        }
    }

    #[test]
    fn serde_round_trip() {
        let t = Timestamp::from_unix(0);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"1970-01-01T00:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"nope\"").is_err());
    }
}
