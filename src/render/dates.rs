//! Dates and times as readers see them, in the issue's language: "Thursday, 4 June 2020",
//! "Thursday, 4 June 2020 at 10:00–11:30 CEST", "25–27 November 2020".
//!
//! Everything comes from CLDR, the Unicode locale data, through ICU4X's compiled data: the
//! order of day, month and year, month and weekday names, the words between date and time
//! ("at", "à", "um"), the clock (24-hour in en-GB, 12-hour in en-US), digits, and the names
//! of time zones where the language has them ("CEST", "MESZ"; else "UTC+2", "GMT+2"). The
//! calendar is always the Gregorian one the issue is written in, with the language's names.
//!
//! Which locale: the issue's tag when it names a region (`pt-BR`, `ar-EG`); else the
//! `locale` of its language's labels (`en` → en-GB in the default layout); else the bare tag,
//! which CLDR resolves to its default (`ar`, `ja`). A tag CLDR has no data for falls back to
//! the base language's locale and says so ([`Dates::fallback`]).
//!
//! Ranges: ICU4X 2.4 formats ranges only behind its `unstable` feature (and failed on long
//! month names when tried), so ranges are built here from CLDR pieces. Both ends are
//! formatted in full with their fields marked; the fields that differ (the day; the day and
//! month) are cut out of each, and what the ends share is written once: "25–27 November 2020",
//! "30 November – 2 December 2020", "2020. november 25–27.", "2020年11月25日至27日". A
//! separator with no space goes between ends without spaces, else one with spaces; the dash
//! itself is the language's `range_separator` label. Times do the same inside the full event
//! line: "Thursday, 4 June 2020 at 10:00–11:30 CEST".
//!
//! Overrides: a layout may still set chrono patterns (`date_long`, `date_short`, `date_day`,
//! `date_day_month`, `time`, with chrono's `%` codes) in its own language's labels; each one
//! set replaces that piece for that language only (a pattern is never inherited from
//! `[labels.en]` by another language; see [`super::patterns`]). A pattern that cannot be
//! written is refused when [`Dates`] is made ([`super::RenderError::DatePattern`]), never in
//! the middle of a render.
//!
//! Pure: reads no file and no clock.

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Datelike, NaiveDate, Offset, Timelike};
use icu_calendar::{Date, Gregorian};
use icu_datetime::fieldsets::{Combo, T, YMD, YMDE, YMDET, zone::SpecificShort};
use icu_datetime::input::{
    DateTime as IcuDateTime, Time, TimeZone, TimeZoneInfo, UtcOffset, ZonedDateTime,
};
use icu_datetime::{DateTimeFormatterPreferences, FixedCalendarDateTimeFormatter, parts};
use icu_locale::Locale;
use icu_provider::prelude::*;
use icu_time::zone::models::AtTime;
use serde::Serialize;
use writeable::{Part, PartsWrite, Writeable};

use super::RenderError;
use super::patterns::Patterns;
use crate::issue::Zone;

type Formatter<F> = FixedCalendarDateTimeFormatter<Gregorian, F>;
type Zoned = ZonedDateTime<Gregorian, TimeZoneInfo<AtTime>>;

/// What a [`Dates`] is made from: the issue's language and the layout's labels for it.
#[derive(Debug, Clone, Copy)]
pub struct DateOptions<'a> {
    /// The issue's language tag as written (`ar`, `pt-BR`).
    pub language: &'a str,
    /// The labels of the issue's language, `[en]` included (for `range_separator`).
    pub labels: &'a toml::Table,
    /// The labels the layout gives for the primary language only (`[pt]`), if any: its
    /// `locale` and chrono patterns apply to this language alone.
    pub primary: Option<&'a toml::Table>,
    /// The labels the layout gives for the full tag only (`[pt-BR]`), if any.
    pub full: Option<&'a toml::Table>,
    /// The base labels (`[en]`): their `locale` is the fallback of a tag CLDR does not know.
    pub base: Option<&'a toml::Table>,
}

/// Dates and times in one language.
#[derive(Debug)]
pub struct Dates {
    /// The CLDR locale used, as a tag (`en-GB`).
    locale: String,
    /// Set when the issue's language has no CLDR data: the tag and the locale used instead.
    fallback: Option<Fallback>,
    /// "4 June 2020"
    ymd: Formatter<YMD>,
    /// "Thursday, 4 June 2020"
    ymde: Formatter<YMDE>,
    /// "Thursday, 4 June 2020 at 10:00 CEST"
    full: Formatter<Combo<YMDET, SpecificShort>>,
    /// "10:00", for a layout that sets a date pattern but no time pattern.
    time: Formatter<T>,
    /// "CEST"
    zone: Formatter<SpecificShort>,
    /// "–", between the ends of a date range.
    range: String,
    /// "–", between the ends of a time range (Chinese writes dates "至" but times "–").
    time_range: String,
    /// Chrono patterns a layout set for this language.
    patterns: Patterns,
}

/// A language CLDR has no data for, and the locale its dates are written in instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub language: String,
    pub locale: String,
}

/// An event's date and time, ready for a template.
#[derive(Debug, Clone, Serialize)]
pub struct When {
    /// "Thursday, 4 June 2020"
    pub date: String,
    /// "10:00", "10:00–11:30", or with zones when the ends differ: "10:00 CEST – 12:00 EEST"
    pub time: String,
    /// "CEST"
    pub zone: String,
    /// Everything in one line: "Thursday, 4 June 2020 at 10:00–11:30 CEST"
    pub text: String,
    /// The start as an RFC 3339 instant, for machines.
    pub iso: String,
}

impl Dates {
    /// Dates in the issue's language (see the module documentation for which locale). A
    /// chrono pattern of the labels that chrono cannot read is refused here, with the label's
    /// name.
    pub fn new(opts: DateOptions<'_>) -> Result<Self, RenderError> {
        let (locale, fallback) = resolve(&opts);
        let prefs = DateTimeFormatterPreferences::from(&locale);
        let patterns = Patterns::new(&opts, prefs)?;
        let error = |e: icu_datetime::DateTimeFormatterLoadError| RenderError::Locale {
            language: opts.language.to_string(),
            message: e.to_string(),
        };
        let label = |key: &str| {
            opts.labels
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let range = label("range_separator").unwrap_or_else(|| "–".into());
        let time_range = label("time_range_separator").unwrap_or_else(|| range.clone());
        Ok(Dates {
            locale: locale.to_string(),
            fallback,
            ymd: Formatter::try_new(prefs, YMD::long()).map_err(error)?,
            ymde: Formatter::try_new(prefs, YMDE::long()).map_err(error)?,
            full: Formatter::try_new(prefs, YMDE::long().with_time_hm().with_zone(SpecificShort))
                .map_err(error)?,
            time: Formatter::try_new(prefs, T::hm()).map_err(error)?,
            zone: Formatter::try_new(prefs, SpecificShort).map_err(error)?,
            range,
            time_range,
            patterns,
        })
    }

    /// The CLDR locale dates are written in (`en-GB`).
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// Set when the issue's language has no CLDR data, so that dates are in another locale.
    pub fn fallback(&self) -> Option<&Fallback> {
        self.fallback.as_ref()
    }

    /// "Wednesday, 3 June 2020"
    pub fn long(&self, date: NaiveDate) -> String {
        if let Some(p) = &self.patterns.long {
            return self.patterns.format(date, p);
        }
        match gregorian(date) {
            Some(d) => self.ymde.format(&d).to_string(),
            None => date.to_string(),
        }
    }

    /// "3 June 2020"
    pub fn short(&self, date: NaiveDate) -> String {
        if let Some(p) = &self.patterns.short {
            return self.patterns.format(date, p);
        }
        match gregorian(date) {
            Some(d) => self.ymd.format(&d).to_string(),
            None => date.to_string(),
        }
    }

    /// A single date or a range, as short as it can be: "25–27 November 2020",
    /// "30 November – 2 December 2020", "30 December 2020 – 2 January 2021".
    pub fn range(&self, from: NaiveDate, until: Option<NaiveDate>) -> String {
        let until = match until {
            Some(u) if u != from => u,
            _ => return self.short(from),
        };
        if self.patterns.short.is_some() {
            return self.patterns.range(from, until);
        }
        let (Some(a), Some(b)) = (gregorian(from), gregorian(until)) else {
            return format!("{from} – {until}");
        };
        let (a, b) = (marked(&self.ymd.format(&a)), marked(&self.ymd.format(&b)));
        let differ: &[Part] = if (from.year(), from.month()) == (until.year(), until.month()) {
            &[parts::DAY]
        } else if from.year() == until.year() {
            &[parts::DAY, parts::MONTH]
        } else {
            &[]
        };
        shared_once(&a, &b, differ, &self.range)
            .unwrap_or_else(|| join(&a.text, &self.range, &b.text))
    }

    /// An event's start and optional end, each in its own time zone's offset of that day.
    pub fn event(&self, start: DateTime<Zone>, end: Option<DateTime<Zone>>) -> When {
        if self.patterns.long.is_some() || self.patterns.time.is_some() {
            return self.patterns_event(start, end);
        }
        let date = self.long(start.date_naive());
        let iso = start.to_rfc3339();
        let Some(a) = zoned(&start) else {
            return When {
                text: format!("{date}, {}", start.format("%H:%M %Z")),
                time: start.format("%H:%M").to_string(),
                zone: start.format("%Z").to_string(),
                date,
                iso,
            };
        };
        let zone = self.zone.format(&a).to_string();
        let full = marked(&self.full.format(&a));
        let start_time = full.text_of(TIME).unwrap_or_default();
        let end = end.and_then(|e| {
            let full = marked(&self.full.format(&zoned(&e)?));
            Some((e, full))
        });
        let (time, text) = match end {
            None => (start_time, full.text.clone()),
            Some((e, end_full)) if e.date_naive() == start.date_naive() => {
                // Each end's time (and zone) as the full line writes it ("10:00 AM",
                // "10:00 ч."), so that the line reads as CLDR's with the end added.
                let same_zone =
                    e.offset().fix() == start.offset().fix() && e.timezone() == start.timezone();
                let fields = if same_zone { TIME } else { TIME_AND_ZONE };
                match (full.text_of(fields), end_full.text_of(fields)) {
                    (Some(a), Some(b)) => {
                        let span = join(&a, &self.time_range, &b);
                        let text = full
                            .replace(fields, &span)
                            .unwrap_or_else(|| full.text.clone());
                        (span, text)
                    }
                    _ => (
                        start_time,
                        join(&full.text, &self.time_range, &end_full.text),
                    ),
                }
            }
            Some((_, end_full)) => (start_time, join(&full.text, &self.range, &end_full.text)),
        };
        When {
            date,
            time,
            zone,
            text,
            iso,
        }
    }

    /// An event written with the layout's chrono patterns, as before CLDR:
    /// "Thursday 4 June 2020, 10:00–11:30 CEST".
    fn patterns_event(&self, start: DateTime<Zone>, end: Option<DateTime<Zone>>) -> When {
        let time = |t: &DateTime<Zone>| match &self.patterns.time {
            Some(p) => self.patterns.format_time(t, p),
            None => zoned(t)
                .map(|z| self.time.format(&z).to_string())
                .unwrap_or_else(|| t.format("%H:%M").to_string()),
        };
        let zone = |t: &DateTime<Zone>| t.format("%Z").to_string();
        let date = self.long(start.date_naive());
        let (time_text, text) = match end {
            None => {
                let t = time(&start);
                (t.clone(), format!("{date}, {t} {}", zone(&start)))
            }
            Some(end) if end.date_naive() == start.date_naive() && zone(&end) == zone(&start) => {
                let t = format!("{}{}{}", time(&start), self.time_range, time(&end));
                (t.clone(), format!("{date}, {t} {}", zone(&start)))
            }
            Some(end) if end.date_naive() == start.date_naive() => {
                let t = format!(
                    "{} {} {} {} {}",
                    time(&start),
                    zone(&start),
                    self.range,
                    time(&end),
                    zone(&end)
                );
                (t.clone(), format!("{date}, {t}"))
            }
            Some(end) => {
                let t = time(&start);
                let text = format!(
                    "{date}, {t} {} {} {}, {} {}",
                    zone(&start),
                    self.range,
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

/// The fields of a time of day.
const TIME: &[Part] = &[parts::HOUR, parts::MINUTE, parts::SECOND, parts::DAY_PERIOD];
/// The fields of a time of day and its zone.
const TIME_AND_ZONE: &[Part] = &[
    parts::HOUR,
    parts::MINUTE,
    parts::SECOND,
    parts::DAY_PERIOD,
    parts::TIME_ZONE_NAME,
];

/// Formatted text with the byte ranges of its fields.
#[derive(Debug, Default)]
struct Marked {
    text: String,
    parts: Vec<(Range<usize>, Part)>,
}

impl fmt::Write for Marked {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.text.push_str(s);
        Ok(())
    }
}

impl PartsWrite for Marked {
    type SubPartsWrite = Marked;
    fn with_part(
        &mut self,
        part: Part,
        mut f: impl FnMut(&mut Self::SubPartsWrite) -> fmt::Result,
    ) -> fmt::Result {
        let start = self.text.len();
        f(self)?;
        self.parts.push((start..self.text.len(), part));
        Ok(())
    }
}

fn marked(w: &impl Writeable) -> Marked {
    let mut m = Marked::default();
    // Writing to a String cannot fail.
    let _ = w.write_to_parts(&mut m);
    m
}

impl Marked {
    /// The smallest range that holds every field of these kinds.
    fn span(&self, fields: &[Part]) -> Option<Range<usize>> {
        let mut found = self.parts.iter().filter(|(_, p)| fields.contains(p));
        let first = found.next()?.0.clone();
        Some(found.fold(first, |acc, (r, _)| {
            acc.start.min(r.start)..acc.end.max(r.end)
        }))
    }

    /// The text of the span of these fields.
    fn text_of(&self, fields: &[Part]) -> Option<String> {
        Some(self.text[self.span(fields)?].to_string())
    }

    /// The text with the span of these fields replaced.
    fn replace(&self, fields: &[Part], with: &str) -> Option<String> {
        let span = self.span(fields)?;
        Some(format!(
            "{}{with}{}",
            &self.text[..span.start],
            &self.text[span.end..]
        ))
    }

    /// Whether `at` is inside one of the fields.
    fn in_field(&self, at: usize) -> bool {
        self.parts
            .iter()
            .any(|(r, p)| p.category == "datetime" && r.contains(&at))
    }

    /// The span of the fields that differ, stretched over the literal written against its
    /// end ("25." in German, "25日" in Japanese), except a comma, and except punctuation that
    /// ends the text when the range is tight ("november 25–27." in Hungarian).
    fn differing(&self, fields: &[Part]) -> Option<(Range<usize>, bool)> {
        let span = self.span(fields)?;
        let tight = !self.text[span.clone()].contains(char::is_whitespace);
        let mut end = span.end;
        for (i, c) in self.text[span.end..].char_indices() {
            let at = span.end + i;
            if c.is_whitespace() || matches!(c, ',' | '،' | '，' | '、') || self.in_field(at) {
                break;
            }
            end = at + c.len_utf8();
        }
        let attached = &self.text[span.end..end];
        if tight && end == self.text.len() && attached.chars().all(|c| c.is_ascii_punctuation()) {
            end = span.end;
        }
        Some((span.start..end, tight))
    }
}

/// Two ends joined by a range separator, with spaces around it when the ends have spaces in
/// them ("10:00–11:30", "10:00 AM – 11:30 AM", "2020年12月30日～2021年1月2日").
fn join(a: &str, sep: &str, b: &str) -> String {
    if a.contains(char::is_whitespace) || b.contains(char::is_whitespace) {
        format!("{a} {sep} {b}")
    } else {
        format!("{a}{sep}{b}")
    }
}

/// "25–27 November 2020" from "25 November 2020" and "27 November 2020": what differs is
/// written twice, what the ends share once. `None` when the two do not share the rest.
fn shared_once(a: &Marked, b: &Marked, differ: &[Part], sep: &str) -> Option<String> {
    if differ.is_empty() {
        return None;
    }
    let (sa, tight_a) = a.differing(differ)?;
    let (sb, tight_b) = b.differing(differ)?;
    let (prefix, suffix) = (&a.text[..sa.start], &a.text[sa.end..]);
    if prefix != &b.text[..sb.start] || suffix != &b.text[sb.end..] {
        return None;
    }
    let (from, until) = (&a.text[sa], &b.text[sb]);
    Some(if tight_a && tight_b {
        format!("{prefix}{from}{sep}{until}{suffix}")
    } else {
        format!("{prefix}{from} {sep} {until}{suffix}")
    })
}

fn gregorian(date: NaiveDate) -> Option<Date<Gregorian>> {
    let month = u8::try_from(date.month()).ok()?;
    let day = u8::try_from(date.day()).ok()?;
    Date::try_new_gregorian(date.year(), month, day).ok()
}

/// A chrono date and time in its zone, as ICU4X takes it: the local date and time, the IANA
/// zone and the offset of that moment.
fn zoned(t: &DateTime<Zone>) -> Option<Zoned> {
    let date = gregorian(t.date_naive())?;
    let time = Time::try_new(
        u8::try_from(t.hour()).ok()?,
        u8::try_from(t.minute()).ok()?,
        u8::try_from(t.second()).ok()?,
        0,
    )
    .ok()?;
    let offset = UtcOffset::try_from_seconds(t.offset().fix().local_minus_utc()).ok();
    let zone = TimeZone::from_iana_id(t.timezone().name())
        .with_offset(offset)
        .at_date_time(IcuDateTime { date, time });
    Some(ZonedDateTime { date, time, zone })
}

/// The locale dates are written in, and the fallback when CLDR does not know the language.
fn resolve(opts: &DateOptions<'_>) -> (Locale, Option<Fallback>) {
    let label = |t: Option<&toml::Table>| {
        t.and_then(|t| t.get("locale"))
            .and_then(|v| v.as_str())
            .and_then(|s| Locale::try_from_str(s).ok())
    };
    let tag = Locale::try_from_str(opts.language).ok();
    let names_a_place = tag
        .as_ref()
        .is_some_and(|l| l.id.region.is_some() || l.id.script.is_some());
    let chosen = label(opts.full)
        .or_else(|| tag.clone().filter(|_| names_a_place))
        .or_else(|| label(opts.primary))
        .or(tag);
    match chosen {
        Some(locale) if has_data(&locale) => (locale, None),
        _ => {
            let locale = label(opts.base)
                .filter(has_data)
                .unwrap_or(icu_locale::locale!("en"));
            let fallback = Fallback {
                language: opts.language.to_string(),
                locale: locale.to_string(),
            };
            (locale, Some(fallback))
        }
    }
}

/// Whether CLDR (as compiled into ICU4X) has date data for the locale's language, not just
/// the root locale it would fall back to: asked of the wide weekday names, which every
/// language has and none shares with the root.
fn has_data(locale: &Locale) -> bool {
    let data_locale = DataLocale::from(locale);
    let mut metadata = DataRequestMetadata::default();
    metadata.silent = true;
    let request = DataRequest {
        id: DataIdentifierBorrowed::for_marker_attributes_and_locale(
            DataMarkerAttributes::from_str_or_panic("5"),
            &data_locale,
        ),
        metadata,
    };
    let response: Result<DataResponse<icu_datetime::provider::names::DatetimeNamesWeekdayV1>, _> =
        icu_datetime::provider::Baked.load(request);
    match response {
        Ok(r) => r.metadata.locale.is_none_or(|l| !l.is_unknown()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(language: &str) -> Dates {
        let empty = toml::Table::new();
        Dates::new(DateOptions {
            language,
            labels: &empty,
            primary: None,
            full: None,
            base: None,
        })
        .unwrap()
    }

    fn with_labels(language: &str, own: &str) -> Result<Dates, RenderError> {
        let own: toml::Table = own.parse().unwrap();
        Dates::new(DateOptions {
            language,
            labels: &own,
            primary: Some(&own),
            full: None,
            base: None,
        })
    }

    fn en() -> Dates {
        with_labels("en", "locale = \"en-GB\"").unwrap()
    }

    /// A local time in a zone.
    fn at(zone: &str, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Zone> {
        use chrono::TimeZone as _;
        let tz = Zone::named(zone).unwrap();
        tz.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ranges_are_as_short_as_they_can_be() {
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
        assert_eq!(
            en.range(d("2020-06-04"), Some(d("2020-06-04"))),
            "4 June 2020"
        );
    }

    /// Ranges built from CLDR's long dates. Where a comment names CLDR's own interval format
    /// (cldr-json `ca-gregorian.json`, `intervalFormats.yMMMd`, with the long month), the
    /// range matches it.
    #[test]
    fn ranges_follow_each_languages_date_order() {
        let cases = [
            // CLDR de: "d.–d. MMMM y", "d. MMMM – d. MMMM y"
            (
                "de",
                "25.–27. November 2020",
                "30. November – 2. Dezember 2020",
            ),
            (
                "es",
                "25–27 de noviembre de 2020",
                "30 de noviembre – 2 de diciembre de 2020",
            ),
            ("fr", "25–27 novembre 2020", "30 novembre – 2 décembre 2020"),
            // CLDR hu: "y. MMMM d–d.", "y. MMMM d. – MMMM d."
            (
                "hu",
                "2020. november 25–27.",
                "2020. november 30. – december 2.",
            ),
            // CLDR lv: "y. 'gada' d.–d. MMMM"
            (
                "lv",
                "2020. gada 25.–27. novembris",
                "2020. gada 30. novembris – 2. decembris",
            ),
            // Without the Chinese labels' "至" (CLDR zh: "y年M月d日至d日", "y年M月d日至M月d日").
            ("zh", "2020年11月25日–27日", "2020年11月30日–12月2日"),
            ("ar", "25–27 نوفمبر 2020", "30 نوفمبر – 2 ديسمبر 2020"),
            (
                "en-US",
                "November 25–27, 2020",
                "November 30 – December 2, 2020",
            ),
        ];
        for (language, same_month, same_year) in cases {
            let dates = dates(language);
            assert_eq!(
                dates.range(d("2020-11-25"), Some(d("2020-11-27"))),
                same_month,
                "{language}"
            );
            assert_eq!(
                dates.range(d("2020-11-30"), Some(d("2020-12-02"))),
                same_year,
                "{language}"
            );
        }
        // The language's own separator: CLDR ja "y年M月d日～d日", "y年M月d日～M月d日",
        // "y年M月d日～y年M月d日".
        let ja = with_labels("ja", "range_separator = \"～\"").unwrap();
        assert_eq!(
            ja.range(d("2020-11-25"), Some(d("2020-11-27"))),
            "2020年11月25日～27日"
        );
        assert_eq!(
            ja.range(d("2020-11-30"), Some(d("2020-12-02"))),
            "2020年11月30日～12月2日"
        );
        assert_eq!(
            ja.range(d("2020-12-30"), Some(d("2021-01-02"))),
            "2020年12月30日～2021年1月2日"
        );
        // Chinese: "至" between dates, "–" between times (CLDR zh Hm: "HH:mm–HH:mm").
        let zh = with_labels(
            "zh",
            "range_separator = \"至\"\ntime_range_separator = \"–\"",
        )
        .unwrap();
        let t = |h, m| at("Europe/Paris", 2020, 6, 4, h, m);
        assert_eq!(
            zh.event(t(10, 0), Some(t(11, 30))).text,
            "2020年6月4日星期四 GMT+2 10:00–11:30"
        );
        assert_eq!(
            zh.range(d("2020-11-25"), Some(d("2020-11-27"))),
            "2020年11月25日至27日"
        );
    }

    #[test]
    fn event_times_follow_daylight_saving() {
        let paris = |m, d, h, min| at("Europe/Paris", 2020, m, d, h, min);
        assert_eq!(
            en().event(paris(6, 4, 10, 0), None).text,
            "Thursday, 4 June 2020 at 10:00 CEST"
        );
        let when = en().event(paris(6, 4, 10, 0), Some(paris(6, 4, 11, 30)));
        assert_eq!(when.text, "Thursday, 4 June 2020 at 10:00–11:30 CEST");
        assert_eq!(when.time, "10:00–11:30");
        assert_eq!(when.zone, "CEST");
        assert_eq!(when.date, "Thursday, 4 June 2020");
        assert_eq!(
            en().event(paris(12, 3, 10, 0), None).text,
            "Thursday, 3 December 2020 at 10:00 CET"
        );
    }

    #[test]
    fn events_across_zones_and_days_say_both_ends() {
        let start = at("Europe/Paris", 2020, 6, 4, 10, 0);
        let athens = at("Europe/Athens", 2020, 6, 4, 12, 0);
        assert_eq!(
            en().event(start.clone(), Some(athens)).text,
            "Thursday, 4 June 2020 at 10:00 CEST – 12:00 EEST"
        );
        let next_day = at("Europe/Paris", 2020, 6, 5, 12, 0);
        assert_eq!(
            en().event(start, Some(next_day)).text,
            "Thursday, 4 June 2020 at 10:00 CEST – Friday, 5 June 2020 at 12:00 CEST"
        );
    }

    #[test]
    fn a_twelve_hour_clock_keeps_its_day_period_with_each_end() {
        let start = at("America/New_York", 2020, 6, 4, 10, 0);
        let end = at("America/New_York", 2020, 6, 4, 11, 30);
        assert_eq!(
            dates("en-US").event(start, Some(end)).text,
            // CLDR puts a narrow no-break space before AM and PM.
            "Thursday, June 4, 2020 at 10:00\u{202f}AM – 11:30\u{202f}AM EDT"
        );
    }

    #[test]
    fn bare_tags_get_their_cldr_default_not_english() {
        let t = at("Europe/Paris", 2020, 6, 4, 10, 0);
        assert_eq!(
            dates("fr").event(t.clone(), None).text,
            "jeudi 4 juin 2020 à 10:00 UTC+2"
        );
        assert_eq!(
            dates("de").event(t, None).text,
            "Donnerstag, 4. Juni 2020 um 10:00 MESZ"
        );
        assert_eq!(dates("es").short(d("2020-06-02")), "2 de junio de 2020");
        assert_eq!(dates("ar").short(d("2020-06-04")), "4 يونيو 2020");
        assert_eq!(dates("ar-EG").short(d("2020-06-04")), "٤ يونيو ٢٠٢٠");
        assert_eq!(dates("he").short(d("2020-06-04")), "4 ביוני 2020");
        assert_eq!(dates("fa").short(d("2020-06-04")), "۴ ژوئن ۲۰۲۰");
        assert_eq!(dates("ja").long(d("2020-06-04")), "2020年6月4日木曜日");
        assert_eq!(dates("zh").long(d("2020-06-04")), "2020年6月4日星期四");
        assert_eq!(dates("ur").short(d("2020-06-04")), "4 جون، 2020");
        for known in [
            "ar", "he", "fa", "ur", "ja", "zh", "pt-BR", "en-CH", "sr-Latn",
        ] {
            assert_eq!(dates(known).fallback(), None, "{known}");
        }
    }

    #[test]
    fn a_language_without_cldr_data_falls_back_and_says_so() {
        let base: toml::Table = "locale = \"en-GB\"".parse().unwrap();
        let dates = Dates::new(DateOptions {
            language: "tlh",
            labels: &base,
            primary: None,
            full: None,
            base: Some(&base),
        })
        .unwrap();
        assert_eq!(
            dates.fallback(),
            Some(&Fallback {
                language: "tlh".into(),
                locale: "en-GB".into()
            })
        );
        assert_eq!(dates.short(d("2020-06-04")), "4 June 2020");
    }

    #[test]
    fn a_region_in_the_tag_wins_over_the_languages_locale_label() {
        let own: toml::Table = "locale = \"en-GB\"".parse().unwrap();
        let us = Dates::new(DateOptions {
            language: "en-US",
            labels: &own,
            primary: Some(&own),
            full: None,
            base: Some(&own),
        })
        .unwrap();
        assert_eq!(us.short(d("2020-06-04")), "June 4, 2020");
        assert_eq!(us.locale(), "en-US");
    }

    #[test]
    fn a_broken_pattern_is_refused_not_a_panic() {
        let err = with_labels("en", "date_short = \"%Q\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("theme.toml: labels.en.date_short: \"%Q\" is not a date pattern"),
            "{err}"
        );
    }

    #[test]
    fn a_layouts_own_patterns_still_win() {
        let old = "date_long = \"%A %-d %B %Y\"\ndate_short = \"%-d %B %Y\"\ntime = \"%H:%M\"";
        let en = with_labels("en", old).unwrap();
        let t = at("Europe/Paris", 2020, 6, 4, 10, 0);
        let end = at("Europe/Paris", 2020, 6, 4, 11, 30);
        assert_eq!(
            en.event(t, Some(end)).text,
            "Thursday 4 June 2020, 10:00–11:30 CEST"
        );
        assert_eq!(
            en.range(d("2020-11-25"), Some(d("2020-11-27"))),
            "25–27 November 2020"
        );
        let fr = with_labels("fr", "date_long = \"%A %-d %B %Y\"").unwrap();
        assert_eq!(fr.long(d("2020-06-04")), "jeudi 4 juin 2020");
    }
}
