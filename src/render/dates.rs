//! Dates and times as readers see them, in the issue's language: "Thursday 4 June 2020,
//! 10:00 CEST", "25–27 November 2020". Patterns come from the layout's labels (so a layout
//! can change them per language); month and day names come from the locale. A pattern chrono
//! cannot read is refused when [`Dates`] is made ([`super::RenderError::DatePattern`]), never
//! in the middle of a render. Pure: reads no file and no clock.

use chrono::{DateTime, Datelike, Locale, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

use super::RenderError;

/// Date and time patterns (chrono's `%` syntax) for one language.
#[derive(Debug, Clone)]
pub struct Dates {
    locale: Locale,
    /// "Thursday 4 June 2020"
    long: String,
    /// "4 June 2020"
    short: String,
    /// "4", the first day of a range within a month
    day: String,
    /// "30 November", the first day of a range within a year
    day_month: String,
    /// "10:00"
    time: String,
}

/// An event's date and time, ready for a template.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    /// "Thursday 4 June 2020"
    pub date: String,
    /// "10:00" or "10:00–11:30"
    pub time: String,
    /// "CEST"
    pub zone: String,
    /// Everything in one line: "Thursday 4 June 2020, 10:00–11:30 CEST"
    pub text: String,
    /// The start as an RFC 3339 instant, for machines.
    pub iso: String,
}

impl Dates {
    /// Patterns from the labels (`date_long`, `date_short`, `date_day`, `date_day_month`,
    /// `time`, `locale`), with English defaults.
    /// A pattern that chrono cannot read is refused here, with the label's name: formatting
    /// with it later would fail in the middle of a render.
    pub fn new(
        labels: &toml::Table,
        primary: &str,
        region: Option<&str>,
    ) -> Result<Self, RenderError> {
        let get = |key: &str, default: &str| -> Result<String, RenderError> {
            let pattern = labels.get(key).and_then(|v| v.as_str()).unwrap_or(default);
            let broken = chrono::format::StrftimeItems::new(pattern)
                .any(|item| matches!(item, chrono::format::Item::Error));
            if broken {
                Err(RenderError::DatePattern {
                    language: primary.to_string(),
                    key: key.to_string(),
                    pattern: pattern.to_string(),
                })
            } else {
                Ok(pattern.to_string())
            }
        };
        let locale = labels
            .get("locale")
            .and_then(|v| v.as_str())
            .and_then(|l| Locale::try_from(l).ok())
            .unwrap_or_else(|| locale_for(primary, region));
        Ok(Dates {
            locale,
            long: get("date_long", "%A %-d %B %Y")?,
            short: get("date_short", "%-d %B %Y")?,
            day: get("date_day", "%-d")?,
            day_month: get("date_day_month", "%-d %B")?,
            time: get("time", "%H:%M")?,
        })
    }

    fn date(&self, date: NaiveDate, pattern: &str) -> String {
        date.format_localized(pattern, self.locale).to_string()
    }

    /// "Wednesday 3 June 2020"
    pub fn long(&self, date: NaiveDate) -> String {
        self.date(date, &self.long)
    }

    /// "3 June 2020"
    pub fn short(&self, date: NaiveDate) -> String {
        self.date(date, &self.short)
    }

    /// A single date or a range, as short as it can be: "25–27 November 2020",
    /// "30 November – 2 December 2020", "30 December 2020 – 2 January 2021".
    pub fn range(&self, from: NaiveDate, until: Option<NaiveDate>) -> String {
        match until {
            None => self.short(from),
            Some(until) if until == from => self.short(from),
            Some(until) if (from.year(), from.month()) == (until.year(), until.month()) => {
                format!("{}–{}", self.date(from, &self.day), self.short(until))
            }
            Some(until) if from.year() == until.year() => {
                format!(
                    "{} – {}",
                    self.date(from, &self.day_month),
                    self.short(until)
                )
            }
            Some(until) => format!("{} – {}", self.short(from), self.short(until)),
        }
    }

    /// An event's start and optional end, each in its own time zone's offset of that day.
    pub fn event(&self, start: DateTime<Tz>, end: Option<DateTime<Tz>>) -> When {
        let time = |t: &DateTime<Tz>| t.format_localized(&self.time, self.locale).to_string();
        let zone = |t: &DateTime<Tz>| t.format("%Z").to_string();
        let date = self.long(start.date_naive());
        let (time_text, text) = match end {
            None => {
                let t = time(&start);
                (t.clone(), format!("{date}, {t} {}", zone(&start)))
            }
            Some(end) if end.date_naive() == start.date_naive() && zone(&end) == zone(&start) => {
                let t = format!("{}–{}", time(&start), time(&end));
                (t.clone(), format!("{date}, {t} {}", zone(&start)))
            }
            Some(end) if end.date_naive() == start.date_naive() => {
                let t = format!(
                    "{} {} – {} {}",
                    time(&start),
                    zone(&start),
                    time(&end),
                    zone(&end)
                );
                (t.clone(), format!("{date}, {t}"))
            }
            Some(end) => {
                let t = time(&start);
                let text = format!(
                    "{date}, {t} {} – {}, {} {}",
                    zone(&start),
                    self.long(end.date_naive()),
                    time(&end),
                    zone(&end)
                );
                (t, text)
            }
        };
        When {
            date,
            time: time_text,
            zone: zone(&start),
            text,
            iso: start.to_rfc3339(),
        }
    }
}

/// The locale for a language tag: `fr` → fr_FR, `pt-BR` → pt_BR, `en` → en_GB (the network
/// is European; a layout may say otherwise with `locale` in its labels).
fn locale_for(primary: &str, region: Option<&str>) -> Locale {
    let candidates = [
        region.map(|r| format!("{primary}_{r}")),
        Some(match primary {
            "en" => "en_GB".to_string(),
            "el" => "el_GR".to_string(),
            "sv" => "sv_SE".to_string(),
            "da" => "da_DK".to_string(),
            "cs" => "cs_CZ".to_string(),
            "ca" => "ca_ES".to_string(),
            other => format!("{other}_{}", other.to_ascii_uppercase()),
        }),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|c| Locale::try_from(c.as_str()).ok())
        .unwrap_or(Locale::POSIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn en() -> Dates {
        Dates::new(&toml::Table::new(), "en", None).unwrap()
    }

    #[test]
    fn ranges_are_as_short_as_they_can_be() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let en = en();
        assert_eq!(
            en.range(d("2020-11-25"), Some(d("2020-11-27"))),
            "25–27 November 2020"
        );
        assert_eq!(
            en.range(d("2020-11-30"), Some(d("2020-12-02"))),
            "30 November – 2 December 2020"
        );
        assert_eq!(
            en.range(d("2020-12-30"), Some(d("2021-01-02"))),
            "30 December 2020 – 2 January 2021"
        );
        assert_eq!(en.range(d("2020-06-04"), None), "4 June 2020");
    }

    #[test]
    fn event_times_follow_daylight_saving() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let summer = paris.with_ymd_and_hms(2020, 6, 4, 10, 0, 0).unwrap();
        let end = paris.with_ymd_and_hms(2020, 6, 4, 11, 30, 0).unwrap();
        assert_eq!(
            en().event(summer, None).text,
            "Thursday 4 June 2020, 10:00 CEST"
        );
        assert_eq!(
            en().event(summer, Some(end)).text,
            "Thursday 4 June 2020, 10:00–11:30 CEST"
        );
        let winter = paris.with_ymd_and_hms(2020, 12, 3, 10, 0, 0).unwrap();
        assert_eq!(
            en().event(winter, None).text,
            "Thursday 3 December 2020, 10:00 CET"
        );
    }

    #[test]
    fn a_broken_pattern_is_refused_not_a_panic() {
        let labels: toml::Table = "date_short = \"%Q\"".parse().unwrap();
        let err = Dates::new(&labels, "en", None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("theme.toml: labels.en.date_short: \"%Q\" is not a date pattern"),
            "{err}"
        );
    }

    #[test]
    fn french_names_days_and_months_in_french() {
        let fr = Dates::new(&toml::Table::new(), "fr", None).unwrap();
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let t = paris.with_ymd_and_hms(2020, 6, 4, 10, 0, 0).unwrap();
        assert_eq!(fr.event(t, None).text, "jeudi 4 juin 2020, 10:00 CEST");
    }
}
