//! A layout's own date patterns: chrono's `%` codes (`date_long = "%A %-d %B %Y"`), set in a
//! language's labels, written with CLDR's month, weekday and am/pm names for the issue's
//! locale (the names ICU4X gives [`super::dates`]'s own formats), and chrono for the rest.
//!
//! The names come from CLDR rather than from chrono's copy of the C library's locales, which
//! would put about 7,000 pointers into the binary for the loader to fix up at every start of
//! every command. CLDR's names are the format ones, as `%B` has been in the C library since
//! glibc 2.27: "4 czerwca" in Polish, "4 июня" in Russian.
//!
//! A pattern is checked when its [`Patterns`] is made, so that writing one never fails in the
//! middle of a render: one chrono cannot read, a field a date does not have (`%H` in
//! `date_long`), and the C library's own locale formats (`%x`, `%X`, `%c`, `%r`), which
//! bulletin does not have, are refused there with the label's name.
//!
//! Pure: reads no file and no clock.

use std::fmt::Write as _;

use chrono::format::{Fixed, Item, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone as _, Timelike};
use icu_calendar::{Date, Gregorian};
use icu_datetime::DateTimeFormatterPreferences;
use icu_datetime::input::{DateTime as IcuDateTime, Time};
use icu_datetime::pattern::{DateTimePattern, FixedCalendarDateTimeNames};
use writeable::TryWriteable;

use super::RenderError;
use super::dates::DateOptions;
use crate::issue::Zone;

/// Chrono patterns a layout set in its own language's labels.
#[derive(Debug)]
pub(super) struct Patterns {
    /// CLDR's names, when the layout set a pattern that may write them.
    names: Option<Names>,
    pub(super) long: Option<String>,
    pub(super) short: Option<String>,
    day: String,
    day_month: String,
    pub(super) time: Option<String>,
}

impl Patterns {
    /// The patterns of the issue's language, each checked; the names of `prefs`' locale.
    pub(super) fn new(
        opts: &DateOptions<'_>,
        prefs: DateTimeFormatterPreferences,
    ) -> Result<Self, RenderError> {
        let primary = opts.language.split('-').next().unwrap_or("en");
        let get = |key: &str, sample: Sample| -> Result<Option<String>, RenderError> {
            let Some(pattern) = [opts.full, opts.primary]
                .into_iter()
                .flatten()
                .find_map(|t| t.get(key).and_then(|v| v.as_str()))
            else {
                return Ok(None);
            };
            check(pattern, sample).map_err(|problem| RenderError::DatePattern {
                language: primary.to_string(),
                key: key.to_string(),
                pattern: pattern.to_string(),
                problem,
            })?;
            Ok(Some(pattern.to_string()))
        };
        let long = get("date_long", Sample::Date)?;
        let short = get("date_short", Sample::Date)?;
        let day = get("date_day", Sample::Date)?;
        let day_month = get("date_day_month", Sample::Date)?;
        let time = get("time", Sample::Time)?;
        // `date_day` and `date_day_month` are written only in ranges of `date_short`.
        let names = (long.is_some() || short.is_some() || time.is_some())
            .then(|| Names::of(prefs))
            .transpose()
            .map_err(|message| RenderError::Locale {
                language: opts.language.to_string(),
                message,
            })?;
        Ok(Patterns {
            names,
            long,
            short,
            day: day.unwrap_or_else(|| "%-d".into()),
            day_month: day_month.unwrap_or_else(|| "%-d %B".into()),
            time,
        })
    }

    /// A date in one of these patterns.
    pub(super) fn format(&self, date: NaiveDate, pattern: &str) -> String {
        let items = self.localized(pattern, date.weekday(), date.month0(), None);
        written(date.format_with_items(items.into_iter()))
    }

    /// A time (the `time` pattern) in its zone.
    pub(super) fn format_time(&self, t: &DateTime<Zone>, pattern: &str) -> String {
        let items = self.localized(pattern, t.weekday(), t.month0(), Some(t.hour()));
        written(t.format_with_items(items.into_iter()))
    }

    /// A range with the `date_short`, `date_day` and `date_day_month` patterns.
    pub(super) fn range(&self, from: NaiveDate, until: NaiveDate) -> String {
        let short = self.short.as_deref().unwrap_or("%-d %B %Y");
        // The start leaves out what it shares with the end.
        let (start, dash) = if (from.year(), from.month()) == (until.year(), until.month()) {
            (self.day.as_str(), "–")
        } else if from.year() == until.year() {
            (self.day_month.as_str(), " – ")
        } else {
            (short, " – ")
        };
        format!(
            "{}{dash}{}",
            self.format(from, start),
            self.format(until, short)
        )
    }

    /// The pattern's items, its names replaced by CLDR's for that weekday, month and hour.
    fn localized<'a>(
        &'a self,
        pattern: &'a str,
        weekday: chrono::Weekday,
        month0: u32,
        hour: Option<u32>,
    ) -> Vec<Item<'a>> {
        let Some(names) = &self.names else {
            return StrftimeItems::new(pattern).collect();
        };
        let day = weekday.num_days_from_monday() as usize;
        let month = month0 as usize;
        StrftimeItems::new(pattern)
            .map(|item| match item {
                Item::Fixed(Fixed::LongMonthName) => Item::Literal(&names.long_months[month]),
                Item::Fixed(Fixed::ShortMonthName) => Item::Literal(&names.short_months[month]),
                Item::Fixed(Fixed::LongWeekdayName) => Item::Literal(&names.long_weekdays[day]),
                Item::Fixed(Fixed::ShortWeekdayName) => Item::Literal(&names.short_weekdays[day]),
                Item::Fixed(Fixed::UpperAmPm) => match hour {
                    Some(h) => Item::Literal(names.am_pm(h)),
                    None => item,
                },
                Item::Fixed(Fixed::LowerAmPm) => match hour {
                    Some(h) => Item::OwnedLiteral(names.am_pm(h).to_lowercase().into()),
                    None => item,
                },
                other => other,
            })
            .collect()
    }
}

/// CLDR's month (January first), weekday (Monday first) and am/pm names of one locale.
#[derive(Debug)]
struct Names {
    long_months: Vec<String>,
    short_months: Vec<String>,
    long_weekdays: Vec<String>,
    short_weekdays: Vec<String>,
    am: String,
    pm: String,
}

impl Names {
    fn of(prefs: DateTimeFormatterPreferences) -> Result<Names, String> {
        // 2024 began on a Monday: 1 to 7 January are Monday to Sunday.
        let months = |pattern| -> Result<Vec<String>, String> {
            (1..=12).map(|m| name(prefs, pattern, m, 1, 0)).collect()
        };
        let weekdays = |pattern| -> Result<Vec<String>, String> {
            (1..=7).map(|d| name(prefs, pattern, 1, d, 0)).collect()
        };
        Ok(Names {
            long_months: months("MMMM")?,
            short_months: months("MMM")?,
            long_weekdays: weekdays("EEEE")?,
            short_weekdays: weekdays("EEE")?,
            am: name(prefs, "a", 1, 1, 9)?,
            pm: name(prefs, "a", 1, 1, 21)?,
        })
    }

    fn am_pm(&self, hour: u32) -> &str {
        if hour < 12 { &self.am } else { &self.pm }
    }
}

/// One field of a day in 2024, written by CLDR's pattern (`MMMM`, `EEE`, `a`).
fn name(
    prefs: DateTimeFormatterPreferences,
    pattern: &str,
    month: u8,
    day: u8,
    hour: u8,
) -> Result<String, String> {
    let pattern: DateTimePattern = pattern.parse().map_err(|e| format!("{e:?}"))?;
    let date = Date::try_new_gregorian(2024, month, day).map_err(|e| e.to_string())?;
    let time = Time::try_new(hour, 0, 0, 0).map_err(|e| e.to_string())?;
    // A names object holds one length of each field, so each pattern has its own.
    let mut names =
        FixedCalendarDateTimeNames::<Gregorian>::try_new(prefs).map_err(|e| e.to_string())?;
    let formatter = names
        .include_for_pattern(&pattern)
        .map_err(|e| e.to_string())?;
    formatter
        .format(&IcuDateTime { date, time })
        .try_write_to_string()
        .map(|s| s.into_owned())
        .map_err(|(e, _)| e.to_string())
}

/// What a pattern is written for: a date (`date_long`…) or a time in its zone (`time`).
#[derive(Debug, Clone, Copy)]
enum Sample {
    Date,
    Time,
}

/// Why a pattern cannot be used, as the end of a sentence naming the label.
fn check(pattern: &str, sample: Sample) -> Result<(), String> {
    for spec in specs(pattern) {
        if matches!(spec.chars().last(), Some('x' | 'X' | 'c' | 'r')) {
            return Err(format!(
                "{spec} is the C library's locale format, which bulletin does not have; write \
                 the fields out instead, e.g. \"%d/%m/%Y\" or \"%H:%M\""
            ));
        }
        let items: Vec<Item<'_>> = StrftimeItems::new(spec).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(format!(
                "{spec} is not one of chrono's codes; use e.g. \"%A %-d %B %Y\" (%A weekday, \
                 %-d day, %B month, %Y year, %H:%M time)"
            ));
        }
        let mut out = String::new();
        let fits = match sample {
            Sample::Date => {
                let date = NaiveDate::from_ymd_opt(2020, 6, 4).unwrap_or_default();
                write!(out, "{}", date.format_with_items(items.into_iter())).is_ok()
            }
            Sample::Time => match Zone::named("Europe/Paris")
                .and_then(|z| z.with_ymd_and_hms(2020, 6, 4, 10, 0, 0).single())
            {
                Some(t) => write!(out, "{}", t.format_with_items(items.into_iter())).is_ok(),
                None => true,
            },
        };
        if !fits {
            return Err(format!(
                "{spec} is not a field of a date; a date pattern writes the date's own fields \
                 (%A weekday, %-d day, %B month, %Y year) and the time has its own label, `time`"
            ));
        }
    }
    Ok(())
}

/// The `%` codes of a pattern, each with its modifiers (`%-d`, `%.3f`, `%::z`, `%%`).
fn specs(pattern: &str) -> impl Iterator<Item = &str> {
    let mut rest = pattern;
    std::iter::from_fn(move || {
        let start = rest.find('%')?;
        let after = &rest[start + 1..];
        let modifiers = after
            .find(|c: char| !matches!(c, '-' | '_' | '0'..='9' | '.' | ':' | '#'))
            .unwrap_or(after.len());
        let end = after[modifiers..]
            .chars()
            .next()
            .map_or(after.len(), |c| modifiers + c.len_utf8());
        let spec = &rest[start..start + 1 + end];
        rest = &after[end..];
        Some(spec)
    })
}

/// What a checked pattern wrote (every item of it was tried on a sample when it was made).
fn written(format: impl std::fmt::Display) -> String {
    let mut out = String::new();
    let _ = write!(out, "{format}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use icu_locale::Locale;

    fn patterns(locale: &str, labels: &str) -> Result<Patterns, RenderError> {
        let labels: toml::Table = labels.parse().unwrap();
        let locale = Locale::try_from_str(locale).unwrap();
        let opts = DateOptions {
            language: "xx",
            labels: &labels,
            primary: Some(&labels),
            full: None,
            base: None,
        };
        Patterns::new(&opts, DateTimeFormatterPreferences::from(&locale))
    }

    fn long(locale: &str, pattern: &str) -> String {
        let p = patterns(locale, &format!("date_long = {pattern:?}")).unwrap();
        let date = NaiveDate::from_ymd_opt(2020, 6, 4).unwrap();
        p.format(date, p.long.as_deref().unwrap())
    }

    #[test]
    fn names_are_cldrs_in_the_issues_locale() {
        assert_eq!(long("en-GB", "%A %-d %B %Y"), "Thursday 4 June 2020");
        assert_eq!(long("en-GB", "%a %-d %b %Y"), "Thu 4 Jun 2020");
        assert_eq!(long("fr", "%A %-d %B %Y"), "jeudi 4 juin 2020");
        assert_eq!(long("de", "%A, %-d. %B %Y"), "Donnerstag, 4. Juni 2020");
        // The month as a date writes it, not as a calendar's heading does.
        assert_eq!(long("pl", "%-d %B %Y"), "4 czerwca 2020");
        assert_eq!(long("ru", "%-d %B %Y"), "4 июня 2020");
        assert_eq!(long("ar-EG", "%A %-d %B"), "الخميس 4 يونيو");
    }

    #[test]
    fn a_time_pattern_writes_the_days_half_in_the_language() {
        let p = patterns("en-US", "time = \"%-I:%M %p (%P) %Z\"").unwrap();
        let zone = Zone::named("America/New_York").unwrap();
        let t = zone.with_ymd_and_hms(2020, 6, 4, 15, 30, 0).unwrap();
        assert_eq!(
            p.format_time(&t, p.time.as_deref().unwrap()),
            "3:30 PM (pm) EDT"
        );
    }

    #[test]
    fn a_range_keeps_what_its_ends_share_once() {
        let p = patterns("en-GB", "date_short = \"%-d %B %Y\"").unwrap();
        let d = |m, d| NaiveDate::from_ymd_opt(2020, m, d).unwrap();
        assert_eq!(p.range(d(11, 25), d(11, 27)), "25–27 November 2020");
        assert_eq!(
            p.range(d(11, 30), d(12, 2)),
            "30 November – 2 December 2020"
        );
    }

    #[test]
    fn a_pattern_that_cannot_be_written_is_refused_with_what_to_write() {
        let message = |labels: &str| patterns("en-GB", labels).unwrap_err().to_string();
        assert_eq!(
            message("date_short = \"%d %Q\""),
            "theme.toml: labels.xx.date_short: \"%d %Q\" is not a date pattern: %Q is not one \
             of chrono's codes; use e.g. \"%A %-d %B %Y\" (%A weekday, %-d day, %B month, %Y \
             year, %H:%M time)"
        );
        // A date has no hour: formatting it would fail in the middle of the render.
        assert!(
            message("date_long = \"%A %H\"").starts_with(
                "theme.toml: labels.xx.date_long: \"%A %H\" is not a date pattern: %H is not a \
                 field of a date;"
            ),
            "{}",
            message("date_long = \"%A %H\"")
        );
        assert!(
            message("date_day_month = \"%-x\"").contains(
                "%-x is the C library's locale format, which bulletin does not have; write the \
                 fields out instead"
            ),
            "{}",
            message("date_day_month = \"%-x\"")
        );
        assert!(message("time = \"%c\"").contains("%c is the C library's locale format"));
        // The time may write its hour, its zone and its day.
        assert!(patterns("en-GB", "time = \"%H:%M %Z, %A\"").is_ok());
    }

    #[test]
    fn codes_are_found_with_their_modifiers() {
        let found: Vec<&str> = specs("%-d.%m %%, %.3f %::z %#z at %").collect();
        assert_eq!(found, ["%-d", "%m", "%%", "%.3f", "%::z", "%#z", "%"]);
    }
}
