//! Calendar entries: each event of an issue in iCalendar (RFC 5545), one `.ics` file per event
//! and one for the issue's whole agenda ([`files`]), and the "Add to calendar" links of Google
//! Calendar and Outlook on the web ([`Entry::links`]) that the render stage puts beside each
//! event in the email, the web page and the text part.
//!
//! **Which items are events.** An item with a `start`, in any section (an event), and an item
//! with a `date` but no `start` (an agenda entry: all day, or the days from `date` to
//! `until`). An undated item is none. An agenda entry with the title of an event of the same
//! issue, on a day the event starts, is that event and not a second one: it gets the event's
//! entry and links, and the agenda file has the event once (issues list their events again in
//! the agenda, as the sample does).
//!
//! **Times** are written in UTC (`DTSTART:20200604T080000Z`), which RFC 5545 allows and every
//! calendar reads, so no VTIMEZONE is needed: the instant comes from the event's own zone and
//! its daylight-saving rules ([`crate::issue::EventStart`]). An event without an `end` lasts
//! [`DEFAULT_HOURS`] hour: Google's and Outlook's links need an end, and the `.ics` says what
//! the links say. Whole days are `VALUE=DATE`, with DTEND the day after the last (the end is
//! exclusive in RFC 5545, and in both links).
//!
//! **Texts**, in the issue's language: SUMMARY is the title; DESCRIPTION the item's text as
//! the text part writes it, its note and its link ("Register: URL", in the layout's words);
//! LOCATION the layout's word for "Online", or the venue and city, or the agenda entry's
//! place; URL the registration page, else the information page, else the "read more" link.
//! The links carry the same but the item's text ([`Entry::details`]): the text part writes
//! each address whole. A calendar entry is the same for every reader, so merge fields are
//! written as their fallback, or left out ([`crate::merge::with_fallbacks`]): no `{{…}}`
//! reaches a calendar.
//!
//! **Stable output.** A UID is a hash of the title and the time, `@` the host of the issue's
//! web address (`bulletin` without one): the same event carried into the next issue keeps its
//! UID, so a calendar that has it updates it rather than adding it twice (a new title or time
//! is a new entry). DTSTAMP is the issue's date. File names are the entry's position and its
//! title in ASCII (`calendar/1-emergency-planning-a-key-tool-in-health.ics`).
//!
//! The iCalendar text itself (escaping, folding at 75 octets) is the `icalendar` crate's; the
//! Markdown to text is the render stage's ([`crate::render::plain_text`], a pure function), so
//! that a DESCRIPTION reads as the text part does; the render stage in turn asks [`entries`]
//! for each event's links. Pure: reads no file, no clock and no network, and writes nothing;
//! putting the files on the site is the publishing stage's.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use icalendar::{Calendar, Component, EventLike, Property};
use sha2::{Digest, Sha256};

use crate::issue::{Item, LoadedIssue, Section};
use crate::layout::Layout;
use crate::merge::with_fallbacks;
use crate::render::plain_text;

/// The file of the whole agenda, relative to the issue's page folder.
pub const AGENDA: &str = "calendar/agenda.ics";

/// The folder of the calendar files, relative to the issue's page folder.
const FOLDER: &str = "calendar";

/// How long an event without an `end` lasts, in hours.
pub const DEFAULT_HOURS: i64 = 1;

/// How long the title part of a file name may be.
const SLUG_CHARS: usize = 40;

/// Who wrote the calendar (RFC 5545 §3.7.3).
const PRODID: &str = "-//bulletin//calendar entries//EN";

/// One calendar file: its path relative to the issue's page folder
/// (`calendar/1-emergency-planning.ics`, `calendar/agenda.ics`) and its iCalendar text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarFile {
    pub name: String,
    pub body: String,
}

/// When an entry happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// An event with a time, in UTC; the end is after the start.
    Timed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Whole days: the first, and the day after the last.
    AllDay { first: NaiveDate, after: NaiveDate },
}

/// One event of the issue as calendars see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its file, relative to the issue's page folder: `calendar/1-emergency-planning.ics`.
    pub name: String,
    pub uid: String,
    pub summary: String,
    pub span: Span,
    /// The whole text: the item's text, its note, its link.
    pub description: String,
    /// What the links carry: the note and the link, not the item's text. The text part
    /// shows each link whole, and some browsers and mail clients cut an address past about
    /// 2,000 characters; the `.ics` file has everything.
    pub details: String,
    pub location: Option<String>,
    pub url: Option<String>,
    /// The items it stands for, as (section, item) indexes in the issue, in issue order: the
    /// event's own, and an agenda entry of the same event.
    pub items: Vec<(usize, usize)>,
    /// The first day in the event's own zone: the day an agenda entry of it names.
    day: NaiveDate,
}

/// The "Add to calendar" links of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The entry's `.ics` file on the site; `None` when the workspace publishes no site.
    pub ics: Option<String>,
    pub google: String,
    pub outlook: String,
}

/// The layout's words a calendar entry uses, in the issue's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub online: String,
    pub register: String,
    pub information: String,
    pub read_more: String,
    /// Between a label and its value: ": ", "\u{202F}: " in French.
    pub colon: String,
    /// Between the venue and the city: ", ", "، " in Arabic.
    pub list_separator: String,
}

impl Default for Words {
    /// The default layout's English words.
    fn default() -> Self {
        Words {
            online: "Online".into(),
            register: "Register".into(),
            information: "Information".into(),
            read_more: "Read more".into(),
            colon: ": ".into(),
            list_separator: ", ".into(),
        }
    }
}

impl Words {
    /// The words of a language's labels (`Layout::labels`); a word they lack stays English.
    pub fn from_labels(labels: &toml::Table) -> Self {
        let english = Words::default();
        let word = |key: &str, default: String| {
            labels
                .get(key)
                .and_then(|v| v.as_str())
                .map(with_fallbacks)
                .unwrap_or(default)
        };
        Words {
            online: word("online", english.online),
            register: word("register", english.register),
            information: word("information", english.information),
            read_more: word("read_more", english.read_more),
            colon: word("colon", english.colon),
            list_separator: word("list_separator", english.list_separator),
        }
    }

    /// The words `layout` gives the issue's language, as the email has them.
    pub fn of(loaded: &LoadedIssue, layout: &Layout) -> Self {
        let language = &loaded.issue.language;
        Words::from_labels(&layout.labels(&language.primary(), language.as_str()))
    }
}

/// The calendar files of an issue, in the built-in layout's words: one per event, then
/// [`AGENDA`] with all of them; none for an issue without events. [`files_with`] uses a
/// layout's own words.
pub fn files(loaded: &LoadedIssue) -> Vec<CalendarFile> {
    // The built-in layout is compiled in; should it ever fail to read, English words still
    // make valid files.
    let words = Layout::builtin()
        .map(|layout| Words::of(loaded, &layout))
        .unwrap_or_default();
    files_in(loaded, &words)
}

/// The calendar files of an issue drawn with `layout`, in its words for the issue's language
/// (its `theme.toml` and `labels.toml` included), as the email has them.
pub fn files_with(loaded: &LoadedIssue, layout: &Layout) -> Vec<CalendarFile> {
    files_in(loaded, &Words::of(loaded, layout))
}

fn files_in(loaded: &LoadedIssue, words: &Words) -> Vec<CalendarFile> {
    let entries = entries(loaded, words);
    if entries.is_empty() {
        return Vec::new();
    }
    let stamp = stamp(loaded);
    let mut files: Vec<CalendarFile> = entries
        .iter()
        .map(|entry| CalendarFile {
            name: entry.name.clone(),
            body: ics(None, std::slice::from_ref(entry), stamp),
        })
        .collect();
    let title = one_line(&with_fallbacks(loaded.issue.title.as_str()));
    files.push(CalendarFile {
        name: AGENDA.to_string(),
        body: ics(Some(&title), &entries, stamp),
    });
    files
}

/// The events of an issue (see the module documentation for which items are), in the order
/// the issue first names them, each named and numbered for its file.
pub fn entries(loaded: &LoadedIssue, words: &Words) -> Vec<Entry> {
    let domain = uid_domain(loaded);
    let issue_title = with_fallbacks(loaded.issue.title.as_str());
    let mut found = Vec::new();
    for (si, section) in loaded.issue.sections.iter().enumerate() {
        for (ii, item) in section.items.iter().enumerate() {
            let named = Named {
                section,
                item,
                issue_title: &issue_title,
            };
            if let Some(entry) = entry_of(named, (si, ii), words, &domain) {
                found.push(entry);
            }
        }
    }
    // Events first, so that an agenda entry joins its event whichever section comes first.
    let (timed, days): (Vec<Entry>, Vec<Entry>) = found
        .into_iter()
        .partition(|e| matches!(e.span, Span::Timed { .. }));
    let mut entries: Vec<Entry> = Vec::new();
    for entry in timed.into_iter().chain(days) {
        match entries.iter_mut().find(|e| e.is_same_event(&entry)) {
            Some(same) => same.items.extend(entry.items),
            None => entries.push(entry),
        }
    }
    for entry in &mut entries {
        entry.items.sort_unstable();
    }
    entries.sort_by_key(|e| e.items.first().copied());
    for (n, entry) in entries.iter_mut().enumerate() {
        entry.name = file_name(n + 1, &entry.summary);
    }
    entries
}

impl Entry {
    /// The "Add to calendar" links: the `.ics` file beside the issue's page (`page_url`, the
    /// page's folder address, when the workspace publishes a site), Google Calendar and Outlook
    /// on the web.
    pub fn links(&self, page_url: Option<&str>) -> Links {
        Links {
            ics: page_url.map(|page| join_url(page, &self.name)),
            google: self.google_url(),
            outlook: self.outlook_url(),
        }
    }

    /// Google Calendar's "new event" page with this entry filled in.
    pub fn google_url(&self) -> String {
        let dates = match self.span {
            Span::Timed { start, end } => format!("{}/{}", utc_basic(start), utc_basic(end)),
            Span::AllDay { first, after } => format!("{}/{}", day_basic(first), day_basic(after)),
        };
        with_query(
            "https://calendar.google.com/calendar/render?action=TEMPLATE",
            &[
                ("text", &self.summary),
                ("dates", &dates),
                ("details", &self.details),
                ("location", self.location.as_deref().unwrap_or("")),
            ],
        )
    }

    /// Outlook on the web's "new event" page with this entry filled in (the deep link that
    /// works on phones too).
    pub fn outlook_url(&self) -> String {
        let (start, end, all_day) = match self.span {
            Span::Timed { start, end } => (utc_extended(start), utc_extended(end), ""),
            Span::AllDay { first, after } => (day_extended(first), day_extended(after), "true"),
        };
        with_query(
            "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose&rru=addevent",
            &[
                ("subject", &self.summary),
                ("startdt", &start),
                ("enddt", &end),
                ("allday", all_day),
                ("body", &self.details),
                ("location", self.location.as_deref().unwrap_or("")),
            ],
        )
    }

    /// This entry as an iCalendar VEVENT, stamped `stamp`.
    fn event(&self, stamp: DateTime<Utc>) -> icalendar::Event {
        let mut event = icalendar::Event::new();
        // UID and DTSTAMP are always set: without them the crate writes a random UID and the
        // clock's time, and the files would change at every run.
        event.uid(&self.uid).timestamp(stamp).summary(&self.summary);
        match self.span {
            Span::Timed { start, end } => event.starts(start).ends(end),
            Span::AllDay { first, after } => event.starts(first).ends(after),
        };
        if !self.description.is_empty() {
            event.description(&self.description);
        }
        if let Some(location) = &self.location {
            event.location(location);
        }
        if let Some(url) = &self.url {
            event.url(url);
        }
        event.done()
    }

    /// Whether `other` (found later, never before an event) is this entry again: the same
    /// title at the same time, or an agenda entry of this event, titled as it is, on a day it
    /// starts.
    fn is_same_event(&self, other: &Entry) -> bool {
        if comparable(&self.summary) != comparable(&other.summary) {
            return false;
        }
        match (self.span, other.span) {
            (a, b) if a == b => true,
            (Span::Timed { .. }, Span::AllDay { first, after }) => {
                first <= self.day && self.day < after
            }
            _ => false,
        }
    }
}

/// An item with what names it when it has no title of its own.
#[derive(Clone, Copy)]
struct Named<'a> {
    section: &'a Section,
    item: &'a Item,
    issue_title: &'a str,
}

/// The entry of an item that is an event, not yet named for its file.
fn entry_of(named: Named<'_>, at: (usize, usize), words: &Words, domain: &str) -> Option<Entry> {
    let item = named.item;
    let (span, day) = span_of(item)?;
    let summary = summary_of(named);
    let text = item_text(item);
    let note = item
        .note
        .as_ref()
        .map(|n| clean(&with_fallbacks(n.as_str())));
    let action = action_line(item, words);
    let description = paragraphs([text, note.clone(), action.clone()]);
    let details = paragraphs([note, action]);
    Some(Entry {
        name: String::new(),
        uid: uid(&summary, span, domain),
        summary,
        span,
        description,
        details,
        location: location_of(item, words),
        url: url_of(item),
        items: vec![at],
        day,
    })
}

/// When an item happens, and its first day in its own zone; `None` for an item that is not
/// an event.
fn span_of(item: &Item) -> Option<(Span, NaiveDate)> {
    if let Some(start) = &item.start {
        let begins = start.instant().with_timezone(&Utc);
        let default_end = begins
            .checked_add_signed(TimeDelta::hours(DEFAULT_HOURS))
            .unwrap_or(begins);
        // The issue's check refuses an end that cannot be resolved or comes first; should
        // one get here all the same, the event gets the default length.
        let end = item
            .end
            .as_ref()
            .and_then(|end| end.resolve(start).ok())
            .map(|end| end.with_timezone(&Utc))
            .filter(|end| *end > begins)
            .unwrap_or(default_end);
        return Some((Span::Timed { start: begins, end }, start.local_date()));
    }
    let first = item.date?;
    let last = item.until.unwrap_or(first).max(first);
    let after = last.succ_opt()?;
    Some((Span::AllDay { first, after }, first))
}

/// The item's title; else its type or tag, the section's heading, the issue's title.
fn summary_of(named: Named<'_>) -> String {
    let item = named.item;
    [
        item.title.as_ref(),
        item.kind.as_ref(),
        item.tag.as_ref(),
        named.section.heading.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|t| one_line(&with_fallbacks(t.as_str())))
    .find(|t| !t.is_empty())
    .unwrap_or_else(|| one_line(named.issue_title))
}

/// The item's text as the text part writes it: its own text wording, else its Markdown as
/// text.
fn item_text(item: &Item) -> Option<String> {
    let text = match (&item.body_text, &item.body) {
        (Some(text), _) => with_fallbacks(text.as_str()),
        (None, Some(body)) => plain_text(&with_fallbacks(body.as_str())),
        (None, None) => return None,
    };
    Some(clean(&text)).filter(|t| !t.is_empty())
}

/// "Register: URL", "Information: URL" or the "read more" link, in the layout's words.
fn action_line(item: &Item, words: &Words) -> Option<String> {
    let (label, url) = if let Some(url) = &item.registration {
        (words.register.clone(), url.as_str())
    } else if let Some(url) = &item.info {
        (words.information.clone(), url.as_str())
    } else if let Some(link) = &item.link {
        let label = one_line(&with_fallbacks(link.label.as_str()));
        let label = if label.is_empty() {
            words.read_more.clone()
        } else {
            label
        };
        (label, link.url.as_str())
    } else {
        return None;
    };
    let url = with_fallbacks(url);
    Some(format!("{label}{}{}", words.colon, url.trim()))
}

/// "Online" in the issue's language, the venue and city, or an agenda entry's place.
fn location_of(item: &Item, words: &Words) -> Option<String> {
    if item.online {
        return Some(words.online.clone());
    }
    let parts: Vec<String> = [&item.venue, &item.city]
        .into_iter()
        .flatten()
        .map(|p| one_line(&with_fallbacks(p.as_str())))
        .filter(|p| !p.is_empty())
        .collect();
    if !parts.is_empty() {
        return Some(parts.join(&words.list_separator));
    }
    item.place
        .as_ref()
        .map(|p| one_line(&with_fallbacks(p.as_str())))
        .filter(|p| !p.is_empty())
}

/// The registration page, else the information page, else the "read more" link.
fn url_of(item: &Item) -> Option<String> {
    let link = item.link.as_ref().map(|l| &l.url);
    [item.registration.as_ref(), item.info.as_ref(), link]
        .into_iter()
        .flatten()
        .map(|u| with_fallbacks(u.as_str()).trim().to_string())
        .find(|u| !u.is_empty())
}

/// A UID that stays the same for the same event: a hash of its title and time, at `domain`.
fn uid(summary: &str, span: Span, domain: &str) -> String {
    let when = match span {
        Span::Timed { start, end } => format!("{}/{}", utc_basic(start), utc_basic(end)),
        Span::AllDay { first, after } => format!("{}/{}", day_basic(first), day_basic(after)),
    };
    let hash = Sha256::digest(format!("{}\n{when}", comparable(summary)).as_bytes());
    let hex: String = hash.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("{hex}@{domain}")
}

/// The host of the issue's web address, which says whose the UIDs are; `bulletin` without
/// one.
fn uid_domain(loaded: &LoadedIssue) -> String {
    loaded
        .issue
        .web_url
        .as_ref()
        .and_then(|u| url::Url::parse(with_fallbacks(u.as_str()).trim()).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "bulletin".to_string())
}

/// DTSTAMP: the issue's date, so that the same issue always writes the same files.
fn stamp(loaded: &LoadedIssue) -> DateTime<Utc> {
    loaded.issue.date.and_time(NaiveTime::MIN).and_utc()
}

/// A calendar with `entries`, named `name` (the agenda's calendar is named after the issue).
fn ics(name: Option<&str>, entries: &[Entry], stamp: DateTime<Utc>) -> String {
    // Calendar::new() would write the crate's own PRODID.
    let mut calendar = Calendar::empty();
    for (key, value) in [
        ("VERSION", "2.0"),
        ("PRODID", PRODID),
        ("CALSCALE", "GREGORIAN"),
        ("METHOD", "PUBLISH"),
    ] {
        calendar.append_property(Property::new(key, value));
    }
    if let Some(name) = name {
        calendar.name(name);
    }
    for entry in entries {
        calendar.push(entry.event(stamp));
    }
    calendar.to_string()
}

/// `calendar/3-security-democracy-and-cities.ics`; `calendar/3.ics` for a title with no
/// letter or digit that ASCII can write.
fn file_name(position: usize, summary: &str) -> String {
    let slug = slug(summary);
    if slug.is_empty() {
        format!("{FOLDER}/{position}.ics")
    } else {
        format!("{FOLDER}/{position}-{slug}.ics")
    }
}

/// A title as lower-case ASCII words joined by hyphens, cut between words: safe in a URL and
/// a file name on any system. Letters and digits are written in ASCII ("é" → "e", Cyrillic
/// and Chinese transliterated); anything else only separates words ("n°4" → "n-4").
fn slug(title: &str) -> String {
    let ascii: String = title
        .chars()
        .map(|c| match c.is_alphanumeric() {
            true => deunicode::deunicode_char(c).unwrap_or(" "),
            false => " ",
        })
        .collect::<String>()
        .to_ascii_lowercase();
    let mut out = String::new();
    let mut gap = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    if out.len() <= SLUG_CHARS {
        return out;
    }
    let cut = &out[..SLUG_CHARS];
    match cut.rfind('-') {
        Some(at) if at > 0 => cut[..at].to_string(),
        _ => cut.to_string(),
    }
}

/// What the same title is, whatever its case and spacing.
fn comparable(title: &str) -> String {
    one_line(title).to_lowercase()
}

/// Text on one line: runs of white space, line breaks included, made one space.
fn one_line(text: &str) -> String {
    clean(text).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text with its line breaks as `\n` and no other control character (RFC 5545 allows none in
/// a text value but the tab), trimmed.
fn clean(text: &str) -> String {
    let kept = |c: char| !c.is_control() || c == '\n' || c == '\t';
    // Most text has nothing to take out (a carriage return is a control character).
    if text.chars().all(kept) {
        return text.trim().to_string();
    }
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| kept(*c))
        .collect::<String>()
        .trim()
        .to_string()
}

/// The parts that are there, a blank line between them.
fn paragraphs<const N: usize>(parts: [Option<String>; N]) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// What a query value keeps as it is: RFC 3986's unreserved characters, and `:` and `/`, which
/// a query may hold (`dates=20200604T080000Z/20200604T093000Z` stays legible). A space is
/// `%20`, not the `+` of HTML forms (`url::form_urlencoded`): Outlook's deep link shows a
/// `+` as it is in the event's title and text.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

/// `base` (which has a query already) with the non-empty `pairs` added, each value
/// percent-encoded.
fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = base.to_string();
    for (key, value) in pairs {
        if value.is_empty() {
            continue;
        }
        url.push('&');
        url.push_str(key);
        url.push('=');
        url.extend(percent_encoding::utf8_percent_encode(value, QUERY_VALUE));
    }
    url
}

/// A file under the page's folder address.
fn join_url(page: &str, name: &str) -> String {
    if page.ends_with('/') {
        format!("{page}{name}")
    } else {
        format!("{page}/{name}")
    }
}

/// `20200604T080000Z`: iCalendar's and Google's form.
fn utc_basic(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `2020-06-04T08:00:00Z`: Outlook's form.
fn utc_extended(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `20200604`
fn day_basic(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// `2020-06-04`
fn day_extended(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// An issue with these items in one events section (a JSON array's inside).
    fn issue(items: &str) -> LoadedIssue {
        issue_in(
            "en",
            &format!(r#"{{"kind": "events", "items": [{items}]}}"#),
        )
    }

    fn issue_in(language: &str, sections: &str) -> LoadedIssue {
        let json = format!(
            r#"{{"title": "June, news; more", "date": "2026-03-01", "language": "{language}",
                "web_url": "https://news.example.org/2026-03/", "sections": [{sections}]}}"#
        );
        crate::issue::parse(Path::new("issue.json"), json).expect("valid issue")
    }

    fn only(loaded: &LoadedIssue) -> Entry {
        let mut all = entries(loaded, &Words::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn timed(start: &str, end: Option<&str>) -> Span {
        let end = end
            .map(|e| format!(r#", "end": "{e}""#))
            .unwrap_or_default();
        only(&issue(&format!(
            r#"{{"title": "T", "start": "{start}"{end}}}"#
        )))
        .span
    }

    #[test]
    fn times_are_utc_on_both_sides_of_daylight_saving_changes() {
        let cases = [
            // Paris: CET (+1) on Saturday, CEST (+2) from Sunday 29 March 2026.
            ("2026-03-28 10:00 Europe/Paris", "2026-03-28T09:00:00Z"),
            ("2026-03-29 10:00 Europe/Paris", "2026-03-29T08:00:00Z"),
            ("2026-06-04 10:00 Europe/Paris", "2026-06-04T08:00:00Z"),
            ("2026-12-04 10:00 Europe/Paris", "2026-12-04T09:00:00Z"),
            // New York: EST (-5), EDT (-4) from Sunday 8 March 2026.
            ("2026-03-07 10:00 America/New_York", "2026-03-07T15:00:00Z"),
            ("2026-03-08 10:00 America/New_York", "2026-03-08T14:00:00Z"),
            // Sydney: AEDT (+11) until Sunday 5 April 2026 03:00, then AEST (+10).
            ("2026-04-04 10:00 Australia/Sydney", "2026-04-03T23:00:00Z"),
            ("2026-04-05 10:00 Australia/Sydney", "2026-04-05T00:00:00Z"),
            // Kolkata: +5:30 all year.
            ("2026-03-29 10:00 Asia/Kolkata", "2026-03-29T04:30:00Z"),
        ];
        for (start, expected) in cases {
            let Span::Timed { start: at, end } = timed(start, None) else {
                panic!("{start}: not timed");
            };
            assert_eq!(at, utc(expected), "{start}");
            assert_eq!(
                end - at,
                TimeDelta::hours(DEFAULT_HOURS),
                "{start}: default length"
            );
        }
        // An end in another zone, across the night the clocks change.
        let span = timed(
            "2026-03-28 22:00 Europe/Paris",
            Some("2026-03-29 09:00 America/New_York"),
        );
        assert_eq!(
            span,
            Span::Timed {
                start: utc("2026-03-28T21:00:00Z"),
                end: utc("2026-03-29T13:00:00Z"),
            }
        );
    }

    #[test]
    fn ics_writes_utc_times_and_the_issue_date_as_stamp() {
        let loaded = issue(
            r#"{"title": "Emergency planning", "start": "2020-06-04 10:00 Europe/Paris",
                "end": "2020-06-04 11:30", "online": true,
                "registration": "https://example.org/r"}"#,
        );
        let files = files(&loaded);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["calendar/1-emergency-planning.ics", AGENDA]);
        let body = &files[0].body;
        for line in [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//bulletin//calendar entries//EN",
            "METHOD:PUBLISH",
            "DTSTART:20200604T080000Z",
            "DTEND:20200604T093000Z",
            "DTSTAMP:20260301T000000Z",
            "SUMMARY:Emergency planning",
            "LOCATION:Online",
            "URL:https://example.org/r",
            "DESCRIPTION:Register: https://example.org/r",
        ] {
            assert!(
                body.split("\r\n").any(|l| l == line),
                "{line} not in\n{body}"
            );
        }
        let uid = body.lines().find(|l| l.starts_with("UID:")).unwrap();
        assert!(uid.ends_with("@news.example.org"), "{uid}");
        // The same issue writes the same files.
        assert_eq!(files, super::files(&loaded));
        // The agenda is named after the issue, its text escaped.
        assert!(
            files[1]
                .body
                .contains("X-WR-CALNAME:June\\, news\\; more\r\n")
        );
    }

    #[test]
    fn whole_days_are_dates_ending_the_day_after() {
        let loaded = issue_in(
            "en",
            r#"{"kind": "agenda", "items": [
                {"title": "Conference", "date": "2020-11-25", "until": "2020-11-27", "place": "Nice, France"},
                {"title": "Day", "date": "2020-12-31"},
                {"title": "Undated"}]}"#,
        );
        let all = entries(&loaded, &Words::default());
        assert_eq!(all.len(), 2, "an undated entry is not an event");
        let first = NaiveDate::from_ymd_opt(2020, 11, 25).unwrap();
        let after = NaiveDate::from_ymd_opt(2020, 11, 28).unwrap();
        assert_eq!(all[0].span, Span::AllDay { first, after });
        let body = ics(None, &all, stamp(&loaded));
        for line in [
            "DTSTART;VALUE=DATE:20201125",
            "DTEND;VALUE=DATE:20201128",
            "DTSTART;VALUE=DATE:20201231",
            "DTEND;VALUE=DATE:20210101",
            "LOCATION:Nice\\, France",
        ] {
            assert!(
                body.split("\r\n").any(|l| l == line),
                "{line} not in\n{body}"
            );
        }
        assert!(all[0].google_url().contains("&dates=20201125/20201128&"));
        let outlook = all[0].outlook_url();
        assert!(
            outlook.contains("&startdt=2020-11-25&enddt=2020-11-28&allday=true&"),
            "{outlook}"
        );
    }

    #[test]
    fn texts_are_escaped_and_folded() {
        let loaded = issue(
            r#"{"title": "Cities, safety; and \"more\"", "start": "2020-06-04 10:00 Europe/Paris",
                "venue": "Palais des Congrès", "city": "Nice",
                "body": "First line, with *emphasis*; a [link](https://example.org/a).\n\nSecond paragraph \\ backslash, and a long sentence that runs past seventy-five octets to be folded.",
                "note": "Free"}"#,
        );
        let body = &files(&loaded)[0].body;
        assert!(
            body.contains("SUMMARY:Cities\\, safety\\; and \"more\"\r\n"),
            "{body}"
        );
        assert!(
            body.contains("LOCATION:Palais des Congrès\\, Nice\r\n"),
            "{body}"
        );
        // Lines are folded at 75 octets (a CRLF and a space), never inside a character.
        for line in body.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        let unfolded = body.replace("\r\n ", "");
        assert!(
            unfolded.contains(
                "DESCRIPTION:First line\\, with emphasis\\; a link (https://example.org/a).\\n\\nSecond paragraph \\\\ backslash"
            ),
            "{unfolded}"
        );
        assert!(unfolded.contains("folded.\\n\\nFree\r\n"), "{unfolded}");
    }

    #[test]
    fn links_are_percent_encoded() {
        let loaded = issue(
            r#"{"title": "Q&A: cities #1 + 2 = ?", "start": "2026-03-29 10:00 Europe/Paris",
                "end": "2026-03-29 11:30", "venue": "Salle 1/2", "city": "Liège",
                "note": "Free; bring ID", "registration": "https://example.org/r?a=1&b=2"}"#,
        );
        let entry = only(&loaded);
        assert_eq!(
            entry.google_url(),
            "https://calendar.google.com/calendar/render?action=TEMPLATE\
             &text=Q%26A:%20cities%20%231%20%2B%202%20%3D%20%3F\
             &dates=20260329T080000Z/20260329T093000Z\
             &details=Free%3B%20bring%20ID%0A%0ARegister:%20https://example.org/r%3Fa%3D1%26b%3D2\
             &location=Salle%201/2%2C%20Li%C3%A8ge"
        );
        assert_eq!(
            entry.outlook_url(),
            "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose&rru=addevent\
             &subject=Q%26A:%20cities%20%231%20%2B%202%20%3D%20%3F\
             &startdt=2026-03-29T08:00:00Z&enddt=2026-03-29T09:30:00Z\
             &body=Free%3B%20bring%20ID%0A%0ARegister:%20https://example.org/r%3Fa%3D1%26b%3D2\
             &location=Salle%201/2%2C%20Li%C3%A8ge"
        );
        // Each value comes back whole from the query.
        let url = url::Url::parse(&entry.google_url()).unwrap();
        let text = url.query_pairs().find(|(k, _)| k == "text").unwrap().1;
        assert_eq!(text, "Q&A: cities #1 + 2 = ?");
        let links = entry.links(Some("https://example.org/newsletter/2026-03/"));
        assert_eq!(
            links.ics.as_deref(),
            Some("https://example.org/newsletter/2026-03/calendar/1-q-a-cities-1-2.ics")
        );
        assert_eq!(entry.links(None).ics, None);
    }

    #[test]
    fn links_carry_the_note_and_the_link_and_files_everything() {
        let long = "word ".repeat(100);
        let loaded = issue(&format!(
            r#"{{"title": "T", "start": "2020-06-04 10:00 Europe/Paris", "body": "{long}",
                 "note": "Free", "registration": "https://example.org/r"}}"#
        ));
        let entry = only(&loaded);
        assert!(entry.description.starts_with("word word"));
        assert!(
            entry
                .description
                .ends_with("\n\nFree\n\nRegister: https://example.org/r")
        );
        assert_eq!(entry.details, "Free\n\nRegister: https://example.org/r");
        assert!(entry.google_url().len() < 300, "{}", entry.google_url());
    }

    #[test]
    fn merge_fields_become_their_fallback() {
        let loaded = issue(
            r#"{"title": "For {{subscriber.first_name | default: \"members\"}} only",
                "start": "2020-06-04 10:00 Europe/Paris",
                "body": "Dear {{subscriber.first_name}}, come.",
                "registration": "https://example.org/r?e={{subscriber.email}}"}"#,
        );
        let entry = only(&loaded);
        assert_eq!(entry.summary, "For members only");
        assert_eq!(entry.url.as_deref(), Some("https://example.org/r?e="));
        let files = files(&loaded);
        for text in [&files[0].body, &entry.google_url(), &entry.outlook_url()] {
            assert!(!text.contains("{{") && !text.contains("%7B%7B"), "{text}");
        }
        assert!(entry.description.starts_with("Dear , come."));
    }

    #[test]
    fn an_agenda_entry_of_an_event_is_that_event() {
        // The agenda comes first: the entry still joins the event, which keeps its time.
        let loaded = issue_in(
            "fr",
            r#"{"kind": "agenda", "items": [
                 {"title": "Emergency  planning", "date": "2020-06-04", "info": "https://example.org/i"},
                 {"title": "Other", "date": "2020-06-04"}]},
               {"kind": "events", "items": [
                 {"title": "Emergency planning", "start": "2020-06-04 23:30 America/New_York", "online": true},
                 {"title": "Emergency planning", "start": "2020-06-05 10:00 Europe/Paris"}]}"#,
        );
        let layout = Layout::builtin().unwrap();
        let all = entries(&loaded, &Words::of(&loaded, &layout));
        assert_eq!(all.len(), 3, "{all:#?}");
        // The day is the event's own (4 June in New York, 5 June in UTC).
        assert_eq!(all[0].items, [(0, 0), (1, 0)]);
        assert!(matches!(all[0].span, Span::Timed { .. }));
        assert_eq!(all[0].location.as_deref(), Some("En ligne"));
        assert_eq!(all[0].name, "calendar/1-emergency-planning.ics");
        assert_eq!(all[1].items, [(0, 1)]);
        assert_eq!(all[1].name, "calendar/2-other.ics");
        // Another day is another event.
        assert_eq!(all[2].items, [(1, 1)]);
        let agenda = files_with(&loaded, &layout).pop().unwrap();
        assert_eq!(agenda.name, AGENDA);
        assert_eq!(agenda.body.matches("BEGIN:VEVENT").count(), 3);
    }

    #[test]
    fn uids_follow_the_event_not_its_place_in_the_issue() {
        let a = issue(
            r#"{"title": "A", "start": "2020-06-04 10:00 Europe/Paris"},
               {"title": "B", "start": "2020-06-05 10:00 Europe/Paris"}"#,
        );
        let b = issue(r#"{"title": "B", "start": "2020-06-05 10:00 Europe/Paris"}"#);
        let a = entries(&a, &Words::default());
        let b = entries(&b, &Words::default());
        assert_eq!(a[1].uid, b[0].uid);
        assert_ne!(a[0].uid, a[1].uid);
        assert_eq!(a[1].name, "calendar/2-b.ics");
        assert_eq!(b[0].name, "calendar/1-b.ics");
    }

    #[test]
    fn file_names_are_short_ascii() {
        assert_eq!(
            slug("Emergency planning, a key tool in health crisis management?"),
            "emergency-planning-a-key-tool-in-health"
        );
        assert_eq!(
            slug("Sécurité, démocratie & villes"),
            "securite-democratie-villes"
        );
        assert_eq!(slug("Безопасность городов"), "bezopasnost-gorodov");
        assert_eq!(slug("LOUD webinar n°4"), "loud-webinar-n-4");
        assert_eq!(slug("城市安全"), "cheng-shi-an-quan");
        assert_eq!(slug("?!"), "");
        assert_eq!(file_name(4, "?!"), "calendar/4.ics");
        assert_eq!(slug(&"a".repeat(60)).len(), SLUG_CHARS);
    }

    #[test]
    fn the_words_are_the_layouts_in_the_issues_language() {
        let loaded = issue_in(
            "fr",
            r#"{"kind": "events", "items": [{"title": "T", "start": "2020-06-04 10:00 Europe/Paris",
                 "online": true, "registration": "https://example.org/r"}]}"#,
        );
        let entry = entries(&loaded, &Words::of(&loaded, &Layout::builtin().unwrap())).remove(0);
        assert_eq!(entry.location.as_deref(), Some("En ligne"));
        assert_eq!(
            entry.description,
            "S’inscrire\u{202F}: https://example.org/r"
        );
        // A language the layout has no words for stays in English.
        let loaded = issue_in(
            "sw",
            r#"{"kind": "events", "items": [{"title": "T", "start": "2020-06-04 10:00 Europe/Paris", "online": true}]}"#,
        );
        let entry = entries(&loaded, &Words::of(&loaded, &Layout::builtin().unwrap())).remove(0);
        assert_eq!(entry.location.as_deref(), Some("Online"));
    }

    #[test]
    fn an_issue_without_events_has_no_calendar() {
        let loaded = issue_in("en", r#"{"kind": "news", "items": [{"title": "N"}]}"#);
        assert!(files(&loaded).is_empty());
    }
}
