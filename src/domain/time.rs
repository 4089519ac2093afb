//! Instants as whole UTC seconds since the Unix epoch, shown to clients as RFC 3339.
//!
//! Calendar arithmetic is done here with the civil-date algorithms of H. Hinnant (proleptic
//! Gregorian, exact for years 0–9999) instead of chrono's parser and formatter, which cost more
//! wasm than everything in this file; the tests check both agree.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with one-second resolution. Stored in D1 as an INTEGER, shown as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses exactly `width` ASCII digits.
fn digits(text: &[u8], width: usize) -> Option<u32> {
    let part = text.get(..width)?;
    part.iter().try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

fn date(text: &[u8]) -> Option<(i64, u32, u32)> {
    let (year, month, day) = (digits(text, 4)?, digits(text.get(5..)?, 2)?, digits(text.get(8..)?, 2)?);
    let shaped = text.get(4) == Some(&b'-') && text.get(7) == Some(&b'-');
    let valid = shaped && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year.into(), month);
    valid.then_some((year.into(), month, day))
}

/// The Unix seconds an RFC 3339 date-time names (years 0000–9999 as written, any offset), not
/// yet checked against the accepted range.
fn rfc3339_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let (y, mo, d) = date(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (h, mi, s) = (digits(&b[11..], 2)?, digits(&b[14..], 2)?, digits(&b[17..], 2)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let frac = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        rest = &rest[1 + frac..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if rest.len() == 6 && rest[3] == b':' => {
            let (oh, om) = (digits(&rest[1..], 2)?, digits(&rest[4..], 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = i64::from(oh * 60 + om);
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let local = days_from_civil(y, mo, d) * DAY + i64::from(h * 3_600 + mi * 60 + s);
    Some(local - offset * 60)
}

/// An RFC 3339 date-time, or a `YYYY-MM-DD` date's midnight (UTC), as unchecked Unix seconds.
fn instant_or_date_seconds(text: &str) -> Option<i64> {
    if text.len() == 10 {
        let (y, m, d) = date(text.as_bytes())?;
        return Some(days_from_civil(y, m, d) * DAY);
    }
    rfc3339_seconds(text)
}

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

    /// `2026-11-25T11:54:51Z`.
    pub fn to_rfc3339(self) -> String {
        let (y, mo, d) = civil_from_days(self.0.div_euclid(DAY));
        let s = self.0.rem_euclid(DAY);
        format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3_600, s / 60 % 60, s % 60)
    }

    /// The UTC date, `2026-11-25`.
    pub fn date(self) -> String {
        self.to_rfc3339()[..10].to_owned()
    }

    /// An instant of the accepted range (`START_OF_TIME..=END_OF_TIME`, 1970–9999 UTC): the one
    /// check every parser applies (request bodies, query parameters, Stripe events), so that
    /// every stored instant can be written back as RFC 3339 and named by its periods.
    pub fn checked(seconds: i64) -> Option<Self> {
        (START_OF_TIME.0..=END_OF_TIME.0).contains(&seconds).then_some(Timestamp(seconds))
    }

    /// Accepts RFC 3339 date-times (`2026-11-25T11:54:51Z`, `…51.123+02:00`): offsets are
    /// converted to UTC, fractions dropped. The instant must be within the accepted range
    /// (`checked`): `0000-01-01T00:00:00+23:59` is in the year -1.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        Self::checked(rfc3339_seconds(text)?)
    }

    /// An RFC 3339 instant, or a plain `YYYY-MM-DD` date meaning its midnight (UTC); both within
    /// the accepted range.
    pub fn parse_instant_or_date(text: &str) -> Option<Self> {
        Self::checked(instant_or_date_seconds(text)?)
    }

    /// As `parse_instant_or_date`, but an instant outside the accepted range is moved to its
    /// nearer end: for the bounds of a period searched (from 1900 means from the start), never
    /// for an instant that is stored.
    pub fn parse_bound(text: &str) -> Option<Self> {
        Some(Timestamp(instant_or_date_seconds(text)?.clamp(START_OF_TIME.0, END_OF_TIME.0)))
    }

    /// `months` calendar months later, the day clamped to the month's end (31 Jan + 1 = 28/29 Feb).
    pub fn plus_months(self, months: u32) -> Self {
        let (y, m, d) = civil_from_days(self.0.div_euclid(DAY));
        let index = y * 12 + i64::from(m - 1) + i64::from(months);
        let (year, month) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
        let day = d.min(days_in_month(year, month));
        Timestamp(days_from_civil(year, month, day) * DAY + self.0.rem_euclid(DAY))
    }

    /// The UTC calendar date: (year, month, day).
    pub fn civil(self) -> (i64, u32, u32) {
        civil_from_days(self.0.div_euclid(DAY))
    }

    /// The ISO 8601 week: (week-numbering year, week 1–53). Weeks start on Monday; week 1 is the
    /// one holding the year's first Thursday, so 2027-01-01 (a Friday) is in 2026-W53.
    pub fn iso_week(self) -> (i64, u32) {
        let days = self.0.div_euclid(DAY);
        let weekday = (days + 3).rem_euclid(7); // Monday = 0 (1970-01-01 was a Thursday)
        let thursday = days - weekday + 3;
        let (year, _, _) = civil_from_days(thursday);
        let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
        (year, week as u32)
    }

    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::from_timestamp(self.0, 0).unwrap_or_default()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor, so that a bad value is reported where it stands (the 422 names its field).
        struct Rfc3339;
        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 date-time")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(text).ok_or_else(|| E::custom("must be an RFC 3339 date-time from 1970 to 9999 (UTC)"))
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

/// A half-open reporting period `[from, to)`; unbounded ends are the epoch and year 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The earliest instant the service accepts (1970-01-01T00:00:00Z).
pub const START_OF_TIME: Timestamp = Timestamp(0);
/// The latest instant the service accepts, and a period may name (9999-12-31T23:59:59Z).
pub const END_OF_TIME: Timestamp = Timestamp(253_402_300_799);

impl Period {
    pub const ALL: Period = Period { from: START_OF_TIME, to: END_OF_TIME };

    /// From optional `from`/`to` texts (RFC 3339 or dates; bounds outside the accepted range
    /// move to its ends). A period that ends before it starts is empty, not an error: it holds
    /// nothing. The error names the bad field.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, (&'static str, &'static str)> {
        let bound = |text: Option<&str>, field: &'static str, default: Timestamp| match text {
            None | Some("") => Ok(default),
            Some(t) => Timestamp::parse_bound(t).ok_or((field, "must be an RFC 3339 date-time or a YYYY-MM-DD date")),
        };
        Ok(Period { from: bound(from, "from", Period::ALL.from)?, to: bound(to, "to", Period::ALL.to)? })
    }

    /// Whether the period holds no instant.
    pub fn is_empty(self) -> bool {
        self.to <= self.from
    }
}

/// A UTC calendar month, written `YYYY-MM` (1970-01 to 9999-12): the usage period of revenue
/// and the period of a statement. Months order as time does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i64);

impl Month {
    /// 1970-01 and 9999-12, the months the service accepts.
    pub const FIRST: Month = Month(1970 * 12);
    pub const LAST: Month = Month(9999 * 12 + 11);

    /// Exactly `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Month> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 7 || b[4] != b'-' || !digits(0..4) || !digits(5..7) {
            return None;
        }
        let year: i64 = text[..4].parse().ok()?;
        let month: i64 = text[5..].parse().ok()?;
        let m = Month(year * 12 + month - 1);
        ((1..=12).contains(&month) && (Month::FIRST..=Month::LAST).contains(&m)).then_some(m)
    }

    /// The month an instant falls in.
    pub fn of(t: Timestamp) -> Month {
        let (year, month, _) = t.civil();
        Month(year * 12 + i64::from(month) - 1)
    }

    /// The month after this one; `None` after 9999-12.
    pub fn next(self) -> Option<Month> {
        (self < Month::LAST).then_some(Month(self.0 + 1))
    }

    /// Its first instant.
    pub fn start(self) -> Timestamp {
        let (year, month) = (self.0.div_euclid(12), (self.0.rem_euclid(12) + 1) as u32);
        Timestamp(days_from_civil(year, month, 1) * DAY)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.0.div_euclid(12), self.0.rem_euclid(12) + 1)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Month;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a month YYYY-MM")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Month, E> {
                Month::parse(text).ok_or_else(|| E::custom(MONTH_FORMAT))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// What a month must look like, for error messages.
pub const MONTH_FORMAT: &str = "must be a month YYYY-MM from 1970-01 to 9999-12";

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
        for bad in ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T10:00:00",
                    "2026-11-25T10:00:00.Z", "2026-11-25T10:00:00+0200", "2026-11-25T10:00:00Zjunk", "+2026-11-25T10:00:00Z"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(Timestamp::parse_instant_or_date("2024-02-29").map(|t| t.to_rfc3339()).as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(Timestamp::parse_instant_or_date("2023-02-29"), None);
    }

    #[test]
    fn only_instants_from_1970_to_9999_utc_are_accepted() {
        // The security probe's value: a valid-looking text whose UTC instant is in the year -1.
        for bad in [
            "0000-01-01T00:00:00+23:59",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:59:59+01:00",
            "9999-12-31T23:59:59-00:01",
            "9999-12-31T23:30:00-23:59",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
            assert_eq!(Timestamp::parse_instant_or_date(bad), None, "{bad}");
            assert!(serde_json::from_str::<Timestamp>(&format!("\"{bad}\"")).is_err(), "{bad}");
        }
        for bad in ["0000-01-01", "1969-12-31"] {
            assert_eq!(Timestamp::parse_instant_or_date(bad), None, "{bad}");
        }
        let first = Timestamp::parse_rfc3339("1970-01-01T01:00:00+01:00").unwrap();
        assert_eq!((first, first.to_rfc3339(), first.iso_week()), (START_OF_TIME, "1970-01-01T00:00:00Z".into(), (1970, 1)));
        let last = Timestamp::parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!((last, last.to_rfc3339(), last.iso_week()), (END_OF_TIME, "9999-12-31T23:59:59Z".into(), (9999, 52)));
        assert_eq!(Timestamp::parse_instant_or_date("1970-01-01"), Some(START_OF_TIME));
        assert_eq!(Timestamp::parse_instant_or_date("9999-12-31").map(|t| t.date()).as_deref(), Some("9999-12-31"));
        assert_eq!(Timestamp::checked(-1), None);
        assert_eq!(Timestamp::checked(END_OF_TIME.unix() + 1), None);
        assert_eq!(Timestamp::checked(i64::MIN), None);
        assert_eq!(Timestamp::checked(1_800_000_000), Some(Timestamp::from_unix(1_800_000_000)));
        assert_eq!(Timestamp::parse_instant_or_date("0000-01-01"), None);
        assert_eq!(Timestamp::parse_bound("0000-01-01"), Some(START_OF_TIME), "a bound moves into the range");
    }

    proptest::proptest! {
        /// Whatever is accepted is written back in the form it was read in: four-digit years.
        #[test]
        fn accepted_instants_are_written_back_readable(y in 0u32..10_000, mo in 1u32..13, d in 1u32..29, h in 0u32..24, off_h in 0u32..24, off_m in 0u32..60, east in proptest::bool::ANY) {
            let sign = if east { '+' } else { '-' };
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:00:00{sign}{off_h:02}:{off_m:02}");
            if let Some(t) = Timestamp::parse_rfc3339(&text) {
                let written = t.to_rfc3339();
                proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&written), Some(t), "{} → {}", text, written);
                let (year, week) = t.iso_week();
                proptest::prop_assert!((1970..=9999).contains(&year) && (1..=53).contains(&week), "{}", text);
            }
        }
    }

    #[test]
    fn periods() {
        assert_eq!(Period::parse(None, None), Ok(Period::ALL));
        let p = Period::parse(Some("2026-11-01"), Some("2026-12-01T00:00:00Z")).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2026-11-01T00:00:00Z");
        assert_eq!(p.to.to_rfc3339(), "2026-12-01T00:00:00Z");
        assert_eq!(Period::parse(Some("yesterday"), None).unwrap_err().0, "from");
        assert_eq!(Period::parse(None, Some("2026-13-01")).unwrap_err().0, "to");
        // Backwards or empty periods hold nothing; they are not errors.
        let backwards = Period::parse(Some("2026-12-01"), Some("2026-11-01")).unwrap();
        assert!(backwards.is_empty() && !p.is_empty());
        assert!(Period::parse(Some("2026-12-01"), Some("2026-12-01")).unwrap().is_empty());
        // Bounds outside 1970–9999 move to its ends.
        let wide = Period::parse(Some("0000-01-01T00:00:00+23:59"), Some("9999-12-31T23:59:59-23:59")).unwrap();
        assert_eq!(wide, Period::ALL);
        assert_eq!(Period::parse(Some("1900-01-01"), None).unwrap(), Period::ALL);
    }

    #[test]
    fn millis_truncate_to_seconds() {
        assert_eq!(Timestamp::from_unix_millis(1_999).unix(), 1);
    }

    // The civil arithmetic agrees with chrono's (which the wasm build does not link).
    proptest::proptest! {
        #[test]
        fn formatting_matches_chrono(seconds in 0i64..253_402_300_799) {
            let ours = Timestamp::from_unix(seconds).to_rfc3339();
            let theirs = chrono::DateTime::from_timestamp(seconds, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            proptest::prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn parsing_matches_chrono(seconds in 86_400i64..253_402_214_400, offset_min in -1439i64..1440, frac in proptest::option::of(0u32..1_000_000)) {
            let offset = chrono::FixedOffset::east_opt((offset_min * 60) as i32).unwrap();
            let dt = chrono::DateTime::from_timestamp(seconds, frac.unwrap_or(0) * 1000).unwrap().with_timezone(&offset);
            let format = if frac.is_some() { chrono::SecondsFormat::Micros } else { chrono::SecondsFormat::Secs };
            let text = dt.to_rfc3339_opts(format, false);
            if let Ok(reparsed) = chrono::DateTime::parse_from_rfc3339(&text) {
                proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp::from_unix(reparsed.timestamp())), "{}", text);
            }
        }

        #[test]
        fn months_match_chrono(seconds in 0i64..250_000_000_000, months in 0u32..240) {
            let ours = Timestamp::from_unix(seconds).plus_months(months);
            let theirs = chrono::DateTime::from_timestamp(seconds, 0).unwrap().checked_add_months(chrono::Months::new(months)).unwrap();
            proptest::prop_assert_eq!(ours.unix(), theirs.timestamp());
        }

        #[test]
        fn iso_weeks_match_chrono(seconds in 0i64..253_402_300_799) {
            use chrono::Datelike;
            let theirs = chrono::DateTime::from_timestamp(seconds, 0).unwrap().iso_week();
            proptest::prop_assert_eq!(Timestamp::from_unix(seconds).iso_week(), (i64::from(theirs.year()), theirs.week()));
        }

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

    #[test]
    fn months_are_yyyy_mm() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(m.next().map(|n| n.to_string()).as_deref(), Some("2027-01"));
        assert_eq!(m.start(), Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap());
        assert_eq!(Month::of(Timestamp::parse_rfc3339("2026-12-31T23:59:59Z").unwrap()), m);
        assert_eq!(Month::of(Timestamp::parse_rfc3339("2027-01-01T00:00:00Z").unwrap()), m.next().unwrap());
        assert!(Month::parse("2026-11").unwrap() < m);
        assert_eq!(Month::parse("1970-01"), Some(Month::FIRST));
        assert_eq!(Month::LAST.to_string(), "9999-12");
        assert_eq!(Month::LAST.next(), None);
        for bad in ["2026-13", "2026-00", "2026-1", "26-12", "2026/12", "1969-12", "+026-12", "2026-12-01", "", "２026-12", "2026-1x"] {
            assert_eq!(Month::parse(bad), None, "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&m).unwrap(), r#""2026-12""#);
        assert_eq!(serde_json::from_str::<Month>(r#""2026-12""#).unwrap(), m);
        let e = serde_json::from_str::<Month>(r#""2026-13""#).unwrap_err();
        assert!(e.is_data() && e.to_string().contains(MONTH_FORMAT), "{e}");
    }
}
