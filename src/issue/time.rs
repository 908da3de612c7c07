//! Event times as written in an issue: a local date and time plus an IANA time zone.
//!
//! Writers think in local time ("10:00 in Paris"), so that is what the file holds; the
//! instant is computed here once, with the zone's daylight-saving rules, and a local time
//! that does not exist or happens twice on a change day is refused with an explanation
//! ([`TimeError`]). Owns the parsing of event times only; never formats them for readers
//! (the render stage does).
//!
//! Zones come from the IANA time zone database built into bulletin ([`Zone`]), so an issue
//! renders the same on every machine, whatever tzdata it has installed.

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
};
use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

const FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
];

/// When an event starts: "2020-06-04 10:00 Europe/Paris".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventStart {
    local: NaiveDateTime,
    zone: Zone,
    at: DateTime<Zone>,
}

impl EventStart {
    /// The moment the event starts, in its own time zone.
    pub fn instant(&self) -> DateTime<Zone> {
        self.at.clone()
    }
    pub fn zone(&self) -> &Zone {
        &self.zone
    }
    /// The day the event starts, as written (local to its zone).
    pub fn local_date(&self) -> chrono::NaiveDate {
        self.local.date()
    }
}

/// What is wrong with an event time as written. serde shows it (as text) when an issue is
/// read; [`EventEnd::resolve`] returns it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "\"{0}\" has extra words; write \"YYYY-MM-DD HH:MM Zone/City\", e.g. \"2020-06-04 10:00 Europe/Paris\""
    )]
    ExtraWords(String),
    #[error(
        "\"{0}\" is not a date and time; write \"YYYY-MM-DD HH:MM Zone/City\", e.g. \"2020-06-04 10:00 Europe/Paris\""
    )]
    NotDateTime(String),
    #[error(
        "\"{0}\" is not an IANA time zone; use a name such as \"Europe/Paris\", \"Europe/London\" or \"America/New_York\""
    )]
    UnknownZone(String),
    #[error(
        "\"{0}\" has no time zone; add one after the time, e.g. \"{example} Europe/Paris\"",
        example = .0.trim()
    )]
    NoZone(String),
    /// A local time that a daylight-saving change repeats.
    #[error(
        "{} happens twice in {} that day (clocks go back: {first} and {second}); pick a time outside the change",
        local.format("%Y-%m-%d %H:%M"),
        zone.name()
    )]
    Repeated {
        local: NaiveDateTime,
        zone: Zone,
        first: String,
        second: String,
    },
    /// A local time that a daylight-saving change skips.
    #[error(
        "{} does not exist in {} (clocks go forward that night); pick another time",
        local.format("%Y-%m-%d %H:%M"),
        zone.name()
    )]
    Skipped { local: NaiveDateTime, zone: Zone },
}

impl TryFrom<String> for EventStart {
    type Error = TimeError;
    fn try_from(s: String) -> Result<Self, TimeError> {
        let (local, zone) = split(&s)?;
        let Some(zone) = zone else {
            return Err(TimeError::NoZone(s));
        };
        let at = resolve(local, &zone)?;
        Ok(EventStart { local, zone, at })
    }
}

impl From<EventStart> for String {
    fn from(t: EventStart) -> String {
        format!("{} {}", t.local.format("%Y-%m-%d %H:%M"), t.zone.name())
    }
}

/// When an event ends: "2020-06-04 12:00" in the start's zone, or with a zone of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventEnd {
    local: NaiveDateTime,
    zone: Option<Zone>,
}

impl EventEnd {
    /// The moment the event ends, in the end's zone (the start's unless given).
    pub fn resolve(&self, start: &EventStart) -> Result<DateTime<Zone>, TimeError> {
        resolve(self.local, self.zone.as_ref().unwrap_or(&start.zone))
    }
}

impl TryFrom<String> for EventEnd {
    type Error = TimeError;
    fn try_from(s: String) -> Result<Self, TimeError> {
        let (local, zone) = split(&s)?;
        if let Some(zone) = &zone {
            resolve(local, zone)?;
        }
        Ok(EventEnd { local, zone })
    }
}

impl From<EventEnd> for String {
    fn from(t: EventEnd) -> String {
        let local = t.local.format("%Y-%m-%d %H:%M").to_string();
        match t.zone {
            Some(z) => format!("{local} {}", z.name()),
            None => local,
        }
    }
}

/// Splits "2020-06-04 10:00 Europe/Paris" into its local date-time and zone.
fn split(s: &str) -> Result<(NaiveDateTime, Option<Zone>), TimeError> {
    let s = s.trim();
    let mut parts = s.split_whitespace();
    let (first, second) = (parts.next().unwrap_or(""), parts.next());
    // Accept both "2020-06-04 10:00" and "2020-06-04T10:00".
    let (datetime, zone) = if first.contains('T') {
        (first.to_string(), second)
    } else {
        (format!("{first} {}", second.unwrap_or("")), parts.next())
    };
    if parts.next().is_some() {
        return Err(TimeError::ExtraWords(s.to_string()));
    }
    let local = FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(datetime.trim(), f).ok())
        .filter(|local| civil(local).is_some())
        .ok_or_else(|| TimeError::NotDateTime(s.to_string()))?;
    let zone = zone.map(parse_zone).transpose()?;
    Ok((local, zone))
}

fn parse_zone(name: &str) -> Result<Zone, TimeError> {
    Zone::named(name).ok_or_else(|| TimeError::UnknownZone(name.to_string()))
}

/// The instant of a local time in a zone, refusing times that a daylight-saving change skips
/// or repeats: writing either is almost always a mistake, and guessing would be worse.
fn resolve(local: NaiveDateTime, zone: &Zone) -> Result<DateTime<Zone>, TimeError> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at),
        LocalResult::Ambiguous(a, b) => Err(TimeError::Repeated {
            local,
            zone: zone.clone(),
            first: a.format("%H:%M %Z").to_string(),
            second: b.format("%H:%M %Z").to_string(),
        }),
        LocalResult::None => Err(TimeError::Skipped {
            local,
            zone: zone.clone(),
        }),
    }
}

/// An IANA time zone ("Europe/Paris") with its daylight-saving rules, read from the copy of
/// the time zone database built into bulletin (jiff's bundled tzdb). Names are matched as
/// the database does, without regard to case, and kept as the database spells them.
///
/// It is a chrono [`TimeZone`], so the rest of bulletin handles `DateTime<Zone>` as any
/// chrono time; `%Z` writes the abbreviation the zone uses at that moment ("CEST", "+0330").
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone of that IANA name ("Europe/Paris", "america/new_york"), if the database has it.
    pub fn named(name: &str) -> Option<Zone> {
        let zone = jiff::tz::TimeZone::get(name).ok()?;
        zone.iana_name().is_some().then_some(Zone(zone))
    }

    /// The zone's IANA name, spelled as the database spells it.
    pub fn name(&self) -> &str {
        // Every Zone comes from `named`, which keeps only zones that have a name.
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The zone's offset and abbreviation at an instant given in UTC.
    fn at_utc(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let seconds = utc.and_utc().timestamp();
        let instant = jiff::Timestamp::from_second(seconds).unwrap_or(if seconds < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        let info = self.0.to_offset_info(instant);
        ZoneOffset {
            zone: self.clone(),
            fixed: fixed(info.offset()),
            abbreviation: info.abbreviation().into(),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`Zone`]'s offset at one moment, with the abbreviation it goes by then. Written with
/// `%Z`, it shows the abbreviation.
#[derive(Clone, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
    abbreviation: Box<str>,
}

impl chrono::Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.abbreviation)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.abbreviation)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        use jiff::tz::AmbiguousOffset;
        let Some(civil) = civil(local) else {
            return LocalResult::None;
        };
        // The offset is looked up again at the instant it gives, for that moment's abbreviation.
        let at = |offset: jiff::tz::Offset| {
            let utc = *local - chrono::TimeDelta::seconds(i64::from(offset.seconds()));
            self.at_utc(&utc)
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(at(offset)),
            AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(at(before), at(after))
            }
            AmbiguousOffset::Gap { .. } => LocalResult::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.at_utc(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.at_utc(utc)
    }
}

/// A chrono local date and time as jiff takes it; `None` outside jiff's years (-9999 to 9999).
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    let small = |n: u32| i8::try_from(n).ok();
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        small(local.month())?,
        small(local.day())?,
        small(local.hour())?,
        small(local.minute())?,
        small(local.second())?,
        0,
    )
    .ok()
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    // jiff takes offsets up to ±26 hours, chrono up to ±24; no zone of the database goes
    // beyond ±15, so the fall-back to UTC is there for the types, not for a real zone.
    FixedOffset::east_opt(offset.seconds()).unwrap_or_else(|| chrono::Utc.fix())
}

impl JsonSchema for EventStart {
    fn schema_name() -> Cow<'static, str> {
        "EventStart".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Local date and time and IANA time zone, e.g. \"2020-06-04 10:00 Europe/Paris\".",
            "pattern": r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})? \S+$",
            "examples": ["2020-06-04 10:00 Europe/Paris"]
        })
    }
}

impl JsonSchema for EventEnd {
    fn schema_name() -> Cow<'static, str> {
        "EventEnd".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Local date and time, in the start's time zone unless one follows, e.g. \"2020-06-04 11:30\".",
            "pattern": r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?( \S+)?$",
            "examples": ["2020-06-04 11:30"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_separators_and_keeps_the_zone() {
        let a = EventStart::try_from("2020-06-04 10:00 Europe/Paris".to_string()).unwrap();
        let b = EventStart::try_from("2020-06-04T10:00 Europe/Paris".to_string()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.instant().format("%H:%M %Z").to_string(), "10:00 CEST");
    }

    #[test]
    fn winter_and_summer_offsets_differ() {
        let winter = EventStart::try_from("2020-03-28 10:00 Europe/Paris".to_string()).unwrap();
        let summer = EventStart::try_from("2020-03-29 10:00 Europe/Paris".to_string()).unwrap();
        assert_eq!(winter.instant().format("%z").to_string(), "+0100");
        assert_eq!(summer.instant().format("%z").to_string(), "+0200");
    }

    #[test]
    fn refuses_skipped_and_repeated_local_times() {
        let skipped = EventStart::try_from("2020-03-29 02:30 Europe/Paris".to_string());
        assert!(skipped.unwrap_err().to_string().contains("does not exist"));
        let repeated = EventStart::try_from("2020-10-25 02:30 Europe/Paris".to_string());
        assert!(repeated.unwrap_err().to_string().contains("happens twice"));
    }

    #[test]
    fn zone_names_match_without_case_and_keep_the_database_spelling() {
        let t = EventStart::try_from("2020-06-04 10:00 europe/paris".to_string()).unwrap();
        assert_eq!(t.zone().name(), "Europe/Paris");
        assert_eq!(String::from(t), "2020-06-04 10:00 Europe/Paris");
        // An old name the database keeps as a link stays as written.
        let t = EventStart::try_from("2020-06-04 10:00 Asia/Calcutta".to_string()).unwrap();
        assert_eq!(t.zone().name(), "Asia/Calcutta");
        assert_eq!(t.instant().format("%z").to_string(), "+0530");
    }

    #[test]
    fn repeated_times_name_both_offsets_in_order() {
        let e = EventStart::try_from("2020-10-25 02:30 Europe/Paris".to_string()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2020-10-25 02:30 happens twice in Europe/Paris that day (clocks go back: \
             02:30 CEST and 02:30 CET); pick a time outside the change"
        );
    }

    #[test]
    fn the_zone_rules_are_recent() {
        // British Columbia keeps daylight time all year from November 2026 (tzdb 2026):
        // an older database would say PST.
        let t = EventStart::try_from("2026-12-03 10:00 America/Vancouver".to_string()).unwrap();
        assert_eq!(
            t.instant().format("%H:%M %Z %z").to_string(),
            "10:00 MST -0700"
        );
    }

    #[test]
    fn refuses_missing_or_unknown_zone() {
        let none = EventStart::try_from("2020-06-04 10:00".to_string());
        assert!(none.unwrap_err().to_string().contains("has no time zone"));
        let bad = EventStart::try_from("2020-06-04 10:00 Europe/Pariss".to_string());
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("not an IANA time zone")
        );
    }
}

/// A day as an issue writes it, `YYYY-MM-DD`. A date that does not exist (`2020-13-40`) is
/// refused with the form expected and the nearest date that does (issue 12: chrono said only
/// "input is out of range").
pub fn parse_day(s: &str) -> Result<chrono::NaiveDate, DayError> {
    day(s).map_err(DayError)
}

/// A day that is not a date, with the form expected and, where there is one, the nearest date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DayError(String);

fn day(s: &str) -> Result<chrono::NaiveDate, String> {
    let t = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d);
    }
    let parts: Vec<&str> = t.split('-').collect();
    let numbers: Option<Vec<u32>> = match parts.as_slice() {
        [y, m, d] if y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()) => {
            parts.iter().map(|p| p.parse().ok()).collect()
        }
        _ => None,
    };
    let Some([y, m, d]) = numbers
        .as_deref()
        .and_then(|n| <[u32; 3]>::try_from(n).ok())
    else {
        return Err(format!(
            "\"{s}\" is not a date; write it as YYYY-MM-DD, e.g. \"2020-06-04\""
        ));
    };
    let year = y as i32;
    let month = m.clamp(1, 12);
    let last = (28..=31)
        .rev()
        .find(|day| chrono::NaiveDate::from_ymd_opt(year, month, *day).is_some())
        .unwrap_or(28);
    let day = d.clamp(1, last);
    let why = if !(1..=12).contains(&m) {
        format!("there is no month {m}")
    } else {
        format!("{} has no day {d}", month_name(m, year))
    };
    match chrono::NaiveDate::from_ymd_opt(year, month, day) {
        Some(near) => Err(format!(
            "\"{s}\" is not a date: {why}; write YYYY-MM-DD — the nearest valid date is \"{near}\""
        )),
        None => Err(format!(
            "\"{s}\" is not a date: {why}; write it as YYYY-MM-DD, e.g. \"2020-06-04\""
        )),
    }
}

fn month_name(m: u32, year: i32) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = NAMES[(m.clamp(1, 12) - 1) as usize];
    if m == 2 {
        format!("{name} {year}")
    } else {
        name.to_string()
    }
}

/// `#[serde(deserialize_with)]` for a day.
pub fn de_day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono::NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    parse_day(&s).map_err(serde::de::Error::custom)
}

/// `#[serde(deserialize_with)]` for an optional day.
pub fn de_opt_day<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::NaiveDate>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_day(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod day_tests {
    use super::parse_day;

    #[test]
    fn impossible_dates_name_the_nearest_valid_one() {
        assert!(parse_day("2020-06-04").is_ok());
        let e = parse_day("2020-13-40").unwrap_err().to_string();
        assert!(
            e.contains("no month 13") && e.contains("\"2020-12-31\""),
            "{e}"
        );
        let e = parse_day("2021-02-29").unwrap_err().to_string();
        assert!(
            e.contains("February 2021 has no day 29") && e.contains("\"2021-02-28\""),
            "{e}"
        );
        let e = parse_day("June 4").unwrap_err().to_string();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
    }
}
