//! The issue file: JSON on disk → a typed, validated [`Issue`].
//!
//! This stage owns the issue format (and so the JSON Schema generated from these types), reads
//! `body_file`s, resolves relative image paths, and checks every field once so that later stages
//! never re-check. It knows nothing of layouts, Handlebars, MJML or sending; the one question
//! it cannot answer alone — which section kinds exist — is answered by the caller's list.

mod error;
mod fields;
mod locate;
pub mod next;
mod patch;
mod time;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use error::{IssueError, Problem};
pub use fields::{CustomFields, FieldSpec, FieldType, FieldValue, Fields, KindFields};
pub use locate::strings as json_strings;
pub use time::{DayError, EventEnd, EventStart, TimeError, Zone, ZoneOffset, parse_day};

use crate::merge::{self, MergeText};

/// A language tag (BCP 47) such as `en`, `fr` or `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(
    with = "String",
    description = "Language of the issue as a BCP 47 tag, e.g. \"en\", \"fr\", \"pt-BR\"."
)]
pub struct Language(String);

impl Language {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The primary language subtag, lower-case: `pt` for `pt-BR`.
    pub fn primary(&self) -> String {
        self.0
            .split('-')
            .next()
            .unwrap_or("en")
            .to_ascii_lowercase()
    }
    /// The region subtag if there is one, upper-case: `BR` for `pt-BR`.
    pub fn region(&self) -> Option<String> {
        let tag = language_tags::LanguageTag::parse(&self.0).ok()?;
        tag.region().map(str::to_ascii_uppercase)
    }
    /// Text direction of the language: `rtl` for Arabic, Hebrew, Persian, Urdu and every tag
    /// whose script CLDR writes right to left (its likely script when the tag names none:
    /// `ckb`, `ps`, `az-Arab`, `pa-Arab`…), `ltr` otherwise. A tag CLDR cannot read falls back
    /// on its primary language.
    pub fn direction(&self) -> &'static str {
        // CLDR's likely-subtags and script data (ICU4X compiled data): the tag's own script
        // if it names one, else the script its language is most likely written in.
        let rtl = match icu_locale::Locale::try_from_str(&self.0) {
            Ok(locale) => {
                icu_locale::LocaleDirectionality::new_extended().is_right_to_left(&locale.id)
            }
            Err(_) => matches!(
                self.primary().as_str(),
                "ar" | "he" | "fa" | "ur" | "yi" | "ps" | "sd" | "ug" | "dv" | "ckb"
            ),
        };
        if rtl { "rtl" } else { "ltr" }
    }
}

impl Default for Language {
    fn default() -> Self {
        Language("en".into())
    }
}

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match language_tags::LanguageTag::parse(&s) {
            Ok(tag) if tag.is_valid() => Ok(Language(tag.as_str().to_string())),
            _ => Err(format!(
                "\"{s}\" is not a BCP 47 language tag; write e.g. \"en\", \"fr\" or \"pt-BR\""
            )),
        }
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0
    }
}

/// An absolute `http`, `https` or `mailto` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String", description = "An absolute http(s) or mailto URL.")]
pub struct Link(String);

impl Link {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Link {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        // A merge field may stand in a URL (`https://example.org/?u={{subscriber.email}}`);
        // validate the URL with the field taken out.
        let probe = merge::blank_fields(&s);
        match url::Url::parse(probe.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https" | "mailto") => Ok(Link(s.trim().into())),
            Ok(u) => Err(format!(
                "\"{s}\" uses the scheme \"{}\"; links must start with https://, http:// or mailto:",
                u.scheme()
            )),
            Err(e) => Err(format!(
                "\"{s}\" is not a valid URL ({e}); write it in full, e.g. \"https://example.org/page\""
            )),
        }
    }
}

impl From<Link> for String {
    fn from(l: Link) -> String {
        l.0
    }
}

/// One newsletter issue, as parsed from its JSON file and validated.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "bulletin issue",
    description = "One newsletter issue for bulletin."
)]
pub struct Issue {
    /// The JSON Schema this file follows; editors use it for completion and validation.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The subject line of the email, and the title of the issue.
    pub title: MergeText,
    /// Short summary shown after the subject in the inbox list (hidden in the email itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<MergeText>,
    /// Issue date, YYYY-MM-DD.
    #[serde(deserialize_with = "time::de_day")]
    #[schemars(with = "String", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub date: NaiveDate,
    /// Language of the issue (BCP 47); dates and layout labels follow it. Default "en".
    #[serde(default)]
    pub language: Language,
    /// Address of the web version of this issue; the layout shows a "View in browser" link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_url: Option<Link>,
    /// Base URL where this issue's local images are published. When set, relative image
    /// paths become absolute URLs under it (what an email needs); otherwise they point to the
    /// files next to the issue (what a local preview needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_url: Option<Link>,
    /// A layout folder, relative to this file, to use instead of the default layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<PathBuf>,
    /// The sections, in order. Each section's `kind` names a partial of the layout.
    pub sections: Vec<Section>,
}

/// One section of an issue: a `kind` (the layout partial that draws it), a heading, and its
/// content. Which fields a kind uses is up to its partial.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The layout partial that draws this section: news, events, agenda, about, text, or a
    /// kind your layout adds.
    #[schemars(extend("examples" = ["news", "events", "agenda", "about", "text"]))]
    pub kind: String,
    /// The section's heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<MergeText>,
    /// Number of columns for items (1 or 2). Columns stack into one on phones.
    // Written only when it is not the default, so that `bulletin new` writes what a person
    // would; the schema still documents the default.
    #[serde(default = "one_column", skip_serializing_if = "is_one_column")]
    #[schemars(range(min = 1, max = 2), extend("default" = 1))]
    pub columns: u8,
    // body, body_file and body_text stand in both Section and Item rather than in a shared
    // struct: serde's `flatten` would lose `deny_unknown_fields` and the error positions.
    /// Text in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<MergeText>,
    /// A Markdown file, relative to the issue file, to use as the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// Wording for the plain-text part of the email, where the Markdown body does not read
    /// well as text. Written as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<MergeText>,
    /// Bullet points (Markdown), e.g. what members get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bullets: Vec<MergeText>,
    /// A call-to-action button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta: Option<Action>,
    /// The items of the section: news stories, events, agenda entries…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    /// The fields the layout declares for this section's kind ([`CustomFields`]); taken out
    /// of the JSON before the typed parse, written back when the issue is serialized.
    #[serde(flatten, skip_deserializing)]
    #[schemars(skip)]
    pub fields: Fields,
}

fn one_column() -> u8 {
    1
}

fn is_one_column(columns: &u8) -> bool {
    *columns == 1
}

/// A labelled link: a button or a "read more".
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The words on the button or link.
    pub label: MergeText,
    /// Where it goes.
    pub url: Link,
}

/// An image with its alternative text.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// An absolute URL, or a path relative to the issue file.
    pub src: String,
    /// What the image shows, for people who cannot see it. Required.
    pub alt: MergeText,
    /// Where a click on the image goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// Display width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1200))]
    pub width: Option<u32>,
}

/// One item of a section. Every field is optional here; the section kind's partial uses the
/// ones it needs (a news story a title, image and body; an event a start, a place and a
/// registration link; an agenda entry a date, a type and a title).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Title of the story, event or entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<MergeText>,
    /// A short tag shown above the title, e.g. "Project" or "Members only".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<MergeText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Text in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<MergeText>,
    /// A Markdown file, relative to the issue file, to use as the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// Wording for the plain-text part of the email, where the Markdown body does not read
    /// well as text. Written as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<MergeText>,
    /// A "read more" link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Action>,
    /// Event start: local date and time and IANA time zone, "2020-06-04 10:00 Europe/Paris".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventStart>,
    /// Event end: "2020-06-04 12:00" (the start's time zone), or with a zone of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventEnd>,
    /// The event happens online.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub online: bool,
    /// Venue of an event in a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<MergeText>,
    /// City of an event in a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<MergeText>,
    /// Registration page of an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<Link>,
    /// A short note, e.g. "Registration is free but mandatory".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<MergeText>,
    /// Agenda date, YYYY-MM-DD; with `until`, the first day of a range.
    #[serde(
        default,
        deserialize_with = "time::de_opt_day",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub date: Option<NaiveDate>,
    /// Last day of a date range, YYYY-MM-DD.
    #[serde(
        default,
        deserialize_with = "time::de_opt_day",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>", regex(pattern = r"^\d{4}-\d{2}-\d{2}$"))]
    pub until: Option<NaiveDate>,
    /// Type of agenda entry: Webconference, Webinar, Meeting, Conference…
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MergeText>,
    /// Where an agenda entry takes place, e.g. "Nice, France".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<MergeText>,
    /// An "Information" page for an agenda entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Link>,
    /// The fields the layout declares for items of this section's kind ([`CustomFields`]).
    #[serde(flatten, skip_deserializing)]
    #[schemars(skip)]
    pub fields: Fields,
}

/// An issue file as loaded: the typed issue, where it came from, and its source text (kept so
/// that later stages can point at a line).
#[derive(Debug, Clone)]
pub struct LoadedIssue {
    pub issue: Issue,
    /// The issue file.
    pub path: PathBuf,
    /// The folder the issue file is in; relative paths resolve against it.
    pub dir: PathBuf,
    /// The file name without extension: names the outputs.
    pub slug: String,
    source: String,
}

impl LoadedIssue {
    /// An error about the value at `json_path` in this issue file, located at its line:column.
    pub fn problem(&self, json_path: &str, message: impl Into<String>) -> Problem {
        Problem::at(&self.path, &self.source, json_path, message)
    }

    /// The source text of the issue file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every section kind the issue uses, with the JSON path of the section.
    pub fn section_kinds(&self) -> impl Iterator<Item = (String, &str)> {
        self.issue
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("sections[{i}].kind"), s.kind.as_str()))
    }
}

/// Reads and validates an issue file: JSON syntax, field types, dates and time zones, URLs,
/// alt text, body files and local images. All problems are reported together. Fields a
/// layout declares are refused: use [`read`] and [`Source::check`] to allow them.
pub fn load(path: &Path) -> Result<LoadedIssue, IssueError> {
    read(path)?.check(&CustomFields::default())
}

/// Parses issue text that claims to come from `path` (used for errors and relative paths).
pub fn parse(path: &Path, source: String) -> Result<LoadedIssue, IssueError> {
    read_str(path, source)?.check(&CustomFields::default())
}

/// An issue file read and parsed as JSON, not yet checked against the issue format: what a
/// caller needs to choose the layout first, whose declared fields ([`CustomFields`]) the
/// check needs.
#[derive(Debug, Clone)]
pub struct Source {
    /// The issue file.
    pub path: PathBuf,
    /// The folder the issue file is in.
    pub dir: PathBuf,
    text: String,
    doc: serde_json::Value,
}

/// Reads an issue file and parses its JSON; a syntax error is the one error reported.
pub fn read(path: &Path) -> Result<Source, IssueError> {
    let source = std::fs::read_to_string(path).map_err(|e| IssueError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    read_str(path, source)
}

/// Parses the JSON of issue text that claims to come from `path`.
pub fn read_str(path: &Path, source: String) -> Result<Source, IssueError> {
    // Notepad saves UTF-8 with a byte-order mark; JSON parsers refuse it (issue 12).
    let source = match source.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => source,
    };
    let mut de = serde_json::Deserializer::from_str(&source);
    let doc = match <serde_json::Value as Deserialize>::deserialize(&mut de) {
        Ok(doc) => doc,
        Err(e) => return Err(Problem::syntax(path, &source, &e).into()),
    };
    if let Err(e) = de.end() {
        return Err(Problem::trailing(path, &source, &e).into());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(Source {
        path: path.to_path_buf(),
        dir,
        text: source,
        doc,
    })
}

impl Source {
    /// The layout folder the issue names in `"layout"`, relative to the issue's folder.
    pub fn layout(&self) -> Option<PathBuf> {
        let layout = self.doc.get("layout")?.as_str()?;
        Some(self.dir.join(layout))
    }

    /// The language the issue declares in `"language"`: `None` when it declares none (the
    /// issue's default, English) or one that is not a language tag. Read without checking
    /// the rest of the issue, for `serve`'s pages.
    pub fn language(&self) -> Option<Language> {
        let tag = self.doc.get("language")?.as_str()?;
        Language::try_from(tag.to_string()).ok()
    }

    /// Checks the issue against the format, with the fields `custom` declares for its
    /// section kinds, and reads its body files.
    pub fn check(self, custom: &CustomFields) -> Result<LoadedIssue, IssueError> {
        let Source {
            path,
            dir,
            text,
            mut doc,
        } = self;
        let mut problems = Vec::new();
        let kinds = section_kinds_of(&doc);
        let problem = |p: &str, m: String| Problem::at(&path, &text, p, m);
        let taken = custom.take(&mut doc, &problem, &mut problems);
        // serde stops at the first problem; to report them all in one run (issue 12: five
        // problems took four runs), each one found is patched out of the document — the
        // value dropped, or a stand-in put where a value is required — and the parse is
        // tried again. The stand-ins never reach anyone: the problems make this an error.
        // An issue without problems (the common case) is read first without the JSON path
        // serde_path_to_error keeps for every value, which costs about a quarter more.
        let mut issue: Option<Issue> = Issue::deserialize(&doc).ok();
        for _ in 0..MAX_PROBLEMS {
            if issue.is_some() {
                break;
            }
            match serde_path_to_error::deserialize(&doc) {
                Ok(parsed) => {
                    issue = Some(parsed);
                    break;
                }
                Err(e) => {
                    let at = e.path().to_string();
                    let raw = e.inner().to_string();
                    let mut p = Problem::from_serde(&path, &text, e);
                    add_hint(&mut p, &kinds, custom);
                    problems.push(p);
                    if !patch::patch(&mut doc, &at, &raw) {
                        break;
                    }
                }
            }
        }
        let Some(mut issue) = issue else {
            return Err(IssueError::Invalid(sorted(problems)));
        };
        for t in taken {
            put_fields(&mut issue, &t.path, t.fields);
        }
        let slug = slug_of(&path);
        let mut loaded = LoadedIssue {
            issue,
            path,
            dir,
            slug,
            source: text,
        };
        problems.extend(validate_and_resolve(&mut loaded));
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(IssueError::Invalid(sorted(problems)))
        }
    }
}

/// How many problems one run reports at most.
const MAX_PROBLEMS: usize = 200;

/// Problems in file order, each once.
fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| p.position.unwrap_or((usize::MAX, 0)));
    let mut out: Vec<Problem> = Vec::new();
    for p in problems {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The `kind` of each section, by index, as written.
fn section_kinds_of(doc: &serde_json::Value) -> Vec<Option<String>> {
    doc.get("sections")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .map(|s| s.get("kind").and_then(|k| k.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Section and item index of a JSON path: `sections[2].items[0].x` → (2, Some(0)).
fn indexes_of(json_path: &str) -> Option<(usize, Option<usize>)> {
    let rest = json_path.strip_prefix("sections[")?;
    let (si, rest) = rest.split_once(']')?;
    let si = si.parse().ok()?;
    let ii = rest
        .strip_prefix(".items[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(i, _)| i.parse().ok());
    Some((si, ii))
}

/// An unknown field in a section (or item) of a kind the layout adds fields to names them,
/// and the file that declares them.
fn add_hint(p: &mut Problem, kinds: &[Option<String>], custom: &CustomFields) {
    if !p.message.starts_with("unknown field") {
        return;
    }
    let Some((si, ii)) = indexes_of(&p.json_path) else {
        return;
    };
    // The path of an unknown field is the field's own; only a field directly in the item
    // (or section) concerns the declared fields.
    let depth_ok = match ii {
        Some(_) => p.json_path.matches('.').count() <= 2,
        None => p.json_path.matches('.').count() <= 1,
    };
    if !depth_ok {
        return;
    }
    if let Some(Some(kind)) = kinds.get(si)
        && let Some(hint) = custom.hint(kind, ii.is_some())
    {
        p.message = format!("{}; {hint}", p.message);
    }
}

fn put_fields(issue: &mut Issue, json_path: &str, fields: Fields) {
    let Some((si, ii)) = indexes_of(json_path) else {
        return;
    };
    let Some(section) = issue.sections.get_mut(si) else {
        return;
    };
    match ii {
        None => section.fields = fields,
        Some(ii) => {
            if let Some(item) = section.items.get_mut(ii) {
                item.fields = fields;
            }
        }
    }
}

/// Checks what serde cannot (rules across fields, files on disk) and reads `body_file`s into
/// `body`, so that every later stage sees text.
fn validate_and_resolve(loaded: &mut LoadedIssue) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut issue = loaded.issue.clone();
    for (si, section) in issue.sections.iter_mut().enumerate() {
        let sp = format!("sections[{si}]");
        if !(1..=2).contains(&section.columns) {
            problems.push(loaded.problem(
                &format!("{sp}.columns"),
                format!("{} columns: a section has 1 or 2", section.columns),
            ));
        }
        resolve_body(
            loaded,
            &sp,
            &mut section.body,
            &section.body_file,
            &mut problems,
        );
        for (ii, item) in section.items.iter_mut().enumerate() {
            let ip = format!("{sp}.items[{ii}]");
            resolve_body(loaded, &ip, &mut item.body, &item.body_file, &mut problems);
            if let Some(image) = &item.image {
                check_image(loaded, &format!("{ip}.image"), image, &mut problems);
            }
            check_event_times(loaded, &ip, item, &mut problems);
            if let (Some(from), Some(until)) = (item.date, item.until)
                && until < from
            {
                problems.push(loaded.problem(
                    &format!("{ip}.until"),
                    format!("the range ends ({until}) before it starts ({from})"),
                ));
            }
            if item.until.is_some() && item.date.is_none() {
                problems.push(loaded.problem(
                    &format!("{ip}.until"),
                    "\"until\" needs a \"date\" to start the range",
                ));
            }
        }
    }
    if problems.is_empty() {
        loaded.issue = issue;
    }
    problems
}

fn resolve_body(
    loaded: &LoadedIssue,
    path: &str,
    body: &mut Option<MergeText>,
    body_file: &Option<PathBuf>,
    out: &mut Vec<Problem>,
) {
    if let Some(file) = body_file {
        if body.is_some() {
            out.push(loaded.problem(
                &format!("{path}.body_file"),
                "both \"body\" and \"body_file\" are given; keep one",
            ));
            return;
        }
        let full = loaded.dir.join(file);
        let text = std::fs::read_to_string(&full).map_err(|e| {
            format!(
                "cannot read body file {}: {}; the path is relative to the issue file",
                full.display(),
                crate::diag::io_reason(&e)
            )
        });
        match text.and_then(MergeText::try_from) {
            Ok(text) => *body = Some(text),
            Err(e) => out.push(loaded.problem(&format!("{path}.body_file"), e)),
        }
    }
}

fn check_image(loaded: &LoadedIssue, path: &str, image: &Image, out: &mut Vec<Problem>) {
    if image.alt.as_str().trim().is_empty() {
        out.push(loaded.problem(
            &format!("{path}.alt"),
            "the image has empty alt text; describe what it shows for people who cannot see it",
        ));
    }
    if image.src.trim().is_empty() {
        out.push(loaded.problem(&format!("{path}.src"), "the image has no src"));
    } else if is_relative_reference(&image.src) {
        let file = loaded.dir.join(&image.src);
        if !file.is_file() {
            out.push(loaded.problem(
                &format!("{path}.src"),
                format!(
                    "image file {} not found; relative image paths start from the issue's folder",
                    file.display()
                ),
            ));
        }
    } else if let Err(e) = Link::try_from(image.src.clone()) {
        out.push(loaded.problem(&format!("{path}.src"), e));
    }
}

/// The name an issue file gives its outputs: the file name without extension.
pub fn slug_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "issue".into())
}

/// True for a path like `images/logo.png`, false for `https://…` or `data:` URLs.
pub fn is_relative_reference(src: &str) -> bool {
    url::Url::parse(src).is_err()
}

fn check_event_times(loaded: &LoadedIssue, path: &str, item: &Item, out: &mut Vec<Problem>) {
    match (&item.start, &item.end) {
        (None, Some(_)) => {
            out.push(loaded.problem(&format!("{path}.end"), "\"end\" needs a \"start\""))
        }
        (Some(start), Some(end)) => match end.resolve(start) {
            Ok(end_at) if end_at <= start.instant() => {
                out.push(loaded.problem(&format!("{path}.end"), "the event ends before it starts"))
            }
            Ok(_) => {}
            Err(e) => out.push(loaded.problem(&format!("{path}.end"), e.to_string())),
        },
        _ => {}
    }
}

/// The JSON Schema of the issue format, as published in `schema/issue.schema.json`.
pub fn json_schema() -> String {
    json_schema_with(&CustomFields::default())
}

/// The JSON Schema of the issue format with the fields a layout declares for its kinds.
pub fn json_schema_with(custom: &CustomFields) -> String {
    let mut schema = schemars::schema_for!(Issue);
    // Through the Schema, not a plain Value: it writes its keywords in their usual order.
    if let Some(obj) = schema.as_object_mut() {
        let mut value = serde_json::Value::Object(std::mem::take(obj));
        custom.extend_schema(&mut value);
        if let serde_json::Value::Object(map) = value {
            *obj = map;
        }
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Where the schema lives in the repository and in a workspace, relative to its root.
pub const SCHEMA_PATH: &str = "schema/issue.schema.json";
