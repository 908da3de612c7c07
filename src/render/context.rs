//! The data templates see: the issue turned into display-ready values (Markdown already HTML
//! and text, dates already written out in the issue's language, image paths resolved), the
//! theme and the labels. Every piece of text passes through the merge-field table here, so
//! merge fields reach the templates as inert markers.
//!
//! Direction: `issue.dir` (`ltr`/`rtl`, from the language), `issue.start` and `issue.end`
//! (`left`/`right`, swapped in a right-to-left issue) so that templates write
//! `align="{{issue.start}}"` and `border-{{issue.start}}` rather than left and right; the
//! theme's Markdown styles are mirrored for right-to-left issues. Short values set inside a
//! line (names, places, tags, agenda titles) whose direction is not the issue's are wrapped in
//! Unicode isolates (U+2068 … U+2069, what `<bdi>` does, but in the text itself, so that the
//! plain-text part and clients that drop unknown tags or attributes keep it): a Latin venue
//! next to an Arabic comma stays in its place. Places are joined with the language's
//! `list_separator` (the Arabic comma «،» in Arabic).
//!
//! Each item that is an event gets its "Add to calendar" links (`calendar`: the `.ics` file
//! beside the issue's page when the workspace publishes one, Google Calendar, Outlook), made
//! by [`crate::calendar`] from the same issue and the same words.
//!
//! Relative image paths are resolved here ([`Images`]), the issue's and the layout's by the
//! same rule, for the place the email will be read: an inbox (`images_url`) or a local file or
//! page ([`AssetBase::Local`]), or the published site ([`AssetBase::Site`]). Reads no file;
//! knows nothing of sending.
//!
//! `web` (true for the web edition that `publish` writes, [`super::RenderOptions::web`])
//! tells the templates to leave out what only a reader's email has.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::dates::{DateOptions, Dates, When};
use super::markdown::{self, Styles};
use super::{RenderError, RenderWarning};
use crate::calendar;
use crate::issue::{self, Action, FieldValue, Image, Item, LoadedIssue, Section};
use crate::layout::Layout;
use crate::merge::FieldTable;

/// Where the relative image paths of the issue (item images, Markdown images) and of the
/// layout (the theme's logo, literal images in templates) point in the rendered HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AssetBase {
    /// The email as it goes out: a relative image becomes `images_url` + its path, the
    /// issue's and the layout's alike; without `images_url` it stays as written (and `check`
    /// refuses to let it go out).
    #[default]
    Sent,
    /// Seen from a local file or page: prefixes for the issue's folder and the layout's folder
    /// (`../issues/` and `../layouts/efus/` next to `out/`, `files/` and `layout/` in a
    /// preview). The issue's images still use `images_url` when it is set; the layout's keep
    /// pointing at the layout folder.
    Local { issue: String, layout: String },
    /// On the issue's page of the published site, which has a copy of every image beside it
    /// at its path as written (`publish`): relative images, the issue's and the layout's,
    /// stay as written, whatever `images_url` says. A sent email whose `images_url` is the
    /// page's address reads them at the same places.
    Site,
}

/// How the relative image paths of one render are resolved.
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    pub assets: &'a AssetBase,
    pub images_url: Option<&'a str>,
}

impl Images<'_> {
    /// An image of the issue (an item's image, an image in Markdown).
    pub fn issue(&self, src: &str) -> String {
        if !is_relative(src) {
            return src.to_string();
        }
        match (self.images_url, self.assets) {
            (_, AssetBase::Site) => src.to_string(),
            (Some(base), _) => join_url(base, src),
            (None, AssetBase::Local { issue, .. }) => format!("{issue}{src}"),
            (None, AssetBase::Sent) => src.to_string(),
        }
    }

    /// An image of the layout (the theme's logo, a literal image in a template).
    pub fn layout(&self, src: &str) -> String {
        if !is_relative(src) {
            return src.to_string();
        }
        match (self.assets, self.images_url) {
            (AssetBase::Local { layout, .. }, _) => format!("{layout}{src}"),
            (AssetBase::Site, _) => src.to_string(),
            (AssetBase::Sent, Some(base)) => join_url(base, src),
            (AssetBase::Sent, None) => src.to_string(),
        }
    }
}

/// A path to resolve: not a URL, not empty, not an anchor, and not a merge field (whose
/// value is the reader's, not a file of ours).
fn is_relative(src: &str) -> bool {
    let has_field = !crate::merge::map_outside_fields(src, |_| String::new()).is_empty();
    !src.trim().is_empty()
        && !src.starts_with('#')
        && !has_field
        && issue::is_relative_reference(src)
}

/// The template data. A value an issue leaves out (`None`) is left out of the JSON rather
/// than written as null: a template reads both alike (`{{#if}}` is false, `{{value}}` writes
/// nothing), and the sample's data has about 460 such keys fewer to allocate, insert and free
/// (0.46 M instructions of a render, and about 40 page faults).
#[derive(Serialize)]
pub struct Context {
    issue: IssueView,
    theme: Value,
    labels: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    logo: Option<ImageView>,
    sections: Vec<SectionView>,
    unsubscribe_url: String,
    /// The web edition (`publish`): templates leave out what only a reader's email has.
    web: bool,
    /// What the render had to guess (not template data).
    #[serde(skip)]
    pub warnings: Vec<RenderWarning>,
}

#[derive(Serialize)]
struct IssueView {
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    preheader: Option<String>,
    date: String,
    date_long: String,
    date_iso: String,
    lang: String,
    dir: &'static str,
    /// True for a right-to-left language.
    rtl: bool,
    /// Where lines start: "left", or "right" in a right-to-left issue.
    start: &'static str,
    /// Where lines end: "right", or "left" in a right-to-left issue.
    end: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_url: Option<String>,
    slug: String,
}

#[derive(Serialize)]
struct SectionView {
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    heading: Option<String>,
    columns: u8,
    /// "50%" for two columns: the width MJML columns need.
    column_width: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    bullets: Vec<Rich>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cta: Option<ActionView>,
    items: Vec<ItemView>,
    /// Items grouped by row, `columns` per row (the last row may be short).
    rows: Vec<Vec<ItemView>>,
    first: bool,
    /// The heading level for item titles: 3 under the section's heading, 2 without one, so
    /// that headings never skip a level.
    item_level: u8,
    /// The fields the layout declares for this kind (`fields.toml`), by name; last, so that
    /// a declared field wins over a built-in one of the same name.
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
}

#[derive(Serialize, Clone)]
struct Rich {
    html: String,
    text: String,
}

#[derive(Serialize, Clone)]
struct ActionView {
    label: String,
    url: String,
}

#[derive(Serialize, Clone)]
struct ImageView {
    src: String,
    alt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
}

#[derive(Serialize, Clone)]
struct ItemView {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<ActionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<When>,
    online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    venue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    /// "Online", or venue and city joined by the language's list separator.
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// An agenda date or range: "25–27 November 2020".
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_iso: Option<String>,
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    place: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<String>,
    /// "Add to calendar" links, for an item that is an event (see [`CalendarView`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<CalendarView>,
    /// The fields the layout declares for items of this kind, as for sections.
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
}

/// An event's "Add to calendar" links: each address alone (`ics` only when the workspace
/// publishes a site), and `links`, the same in the order a line shows them, each with its
/// name ("Google", "Outlook", the layout's `calendar_file` word for the `.ics`), so that a
/// template need not know which there are.
#[derive(Serialize, Clone)]
struct CalendarView {
    #[serde(skip_serializing_if = "Option::is_none")]
    ics: Option<String>,
    google: String,
    outlook: String,
    links: Vec<NamedLink>,
    /// False when an earlier item of the issue is the same event (an agenda entry of an event
    /// above it) and so has shown these links already: the text part, where each address is
    /// written whole, shows them once.
    first: bool,
}

#[derive(Serialize, Clone)]
struct NamedLink {
    name: String,
    url: String,
}

/// Everything needed to turn issue values into views.
struct Builder<'a> {
    fields: &'a mut FieldTable,
    styles: Styles,
    dates: Dates,
    labels: toml::Table,
    images: Images<'a>,
    /// The issue is right to left.
    rtl: bool,
    /// The "Add to calendar" links of the items that are events, by (section, item) index.
    calendar: BTreeMap<(usize, usize), CalendarView>,
}

/// Builds the template data for `loaded`, marking merge fields in `fields`.
pub fn build(
    loaded: &LoadedIssue,
    layout: &Layout,
    images: Images<'_>,
    page_url: Option<&str>,
    web: bool,
    fields: &mut FieldTable,
) -> Result<Context, RenderError> {
    let issue = &loaded.issue;
    let tag = issue.language.as_str();
    let primary = issue.language.primary();
    let labels = layout.labels(&primary, tag);
    let primary_labels = layout.language_labels(&primary);
    let full_labels = if tag.eq_ignore_ascii_case(&primary) {
        None
    } else {
        layout.language_labels(tag)
    };
    let base_labels = layout.language_labels("en");
    let dates = Dates::new(DateOptions {
        language: tag,
        labels: &labels,
        primary: primary_labels.as_ref(),
        full: full_labels.as_ref(),
        base: base_labels.as_ref(),
    })?;
    let mut warnings = Vec::new();
    if let Some(f) = dates.fallback() {
        warnings.push(RenderWarning::NoLocaleData {
            language: f.language.clone(),
            locale: f.locale.clone(),
        });
    }
    if primary != "en" && primary_labels.is_none() && full_labels.is_none() {
        warnings.push(RenderWarning::NoLabels {
            language: tag.to_string(),
        });
    }
    let dir = issue.language.direction();
    let rtl = dir == "rtl";
    let styles = Styles::from_theme(layout.theme());
    let mut b = Builder {
        fields,
        styles: if rtl { styles.mirrored() } else { styles },
        dates,
        labels,
        images,
        rtl,
        calendar: BTreeMap::new(),
    };
    b.calendar = b.calendar_views(loaded, page_url);
    let sections = issue
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| b.section(i, s))
        .collect();
    let mut theme = b.marked_json(layout.theme());
    // The organisation's name starts the text part's first line, next to the language's words.
    if let Some(Value::String(name)) = theme.get_mut("name") {
        *name = b.isolated(name.clone(), name);
    }
    let labels = b.marked_json(&b.labels.clone());
    let logo = layout_logo(layout, images);
    Ok(Context {
        issue: IssueView {
            title: b.fields.mark(issue.title.as_str()),
            preheader: issue.preheader.as_ref().map(|p| b.fields.mark(p.as_str())),
            date: b.dates.short(issue.date),
            date_long: b.dates.long(issue.date),
            date_iso: issue.date.to_string(),
            lang: issue.language.as_str().to_string(),
            dir,
            rtl,
            start: if rtl { "right" } else { "left" },
            end: if rtl { "left" } else { "right" },
            web_url: issue.web_url.as_ref().map(|u| b.fields.mark(u.as_str())),
            slug: loaded.slug.clone(),
        },
        theme,
        labels,
        logo,
        sections,
        unsubscribe_url: b.fields.mark("{{unsubscribe_url}}"),
        web,
        warnings,
    })
}

impl Context {
    /// The issue's date as templates get it (`issue.date`), written in its language.
    pub fn date(&self) -> String {
        self.issue.date.clone()
    }
}

impl Builder<'_> {
    fn mark(&mut self, s: &str) -> String {
        self.fields.mark(s)
    }

    fn mark_opt(&mut self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.fields.mark(s))
    }

    /// A short value set inside a line, marked, and isolated when its direction is not the
    /// issue's (see the module documentation).
    fn inline(&mut self, s: &str) -> String {
        let marked = self.mark(s);
        self.isolated(marked, s)
    }

    fn inline_opt(&mut self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.inline(s))
    }

    /// `marked` wrapped in a first-strong isolate when `written` (the same text as the writer
    /// wrote it) runs the other way than the issue, or, in a right-to-left issue, holds merge
    /// fields and nothing that says which way it runs.
    fn isolated(&self, marked: String, written: &str) -> String {
        let wrap = match first_strong(written) {
            Strong::Ltr => self.rtl,
            Strong::Rtl => !self.rtl,
            Strong::Unknown => self.rtl,
            Strong::None => false,
        };
        if wrap {
            format!("\u{2068}{marked}\u{2069}")
        } else {
            marked
        }
    }

    /// Markdown to both forms; `text` (the writer's own text wording) wins for the text part.
    fn rich(&mut self, markdown: &str, text: Option<&str>) -> Rich {
        let marked = self.mark(markdown);
        Rich {
            html: markdown::to_html(&marked, &self.styles, &|src: &str| self.images.issue(src)),
            text: match text {
                Some(t) => self.mark(t),
                None => markdown::to_text(&marked),
            },
        }
    }

    fn bullet(&mut self, markdown: &str) -> Rich {
        let marked = self.mark(markdown);
        Rich {
            html: markdown::to_inline_html(&marked, &self.styles, &|src: &str| {
                self.images.issue(src)
            }),
            text: markdown::to_text(&marked),
        }
    }

    fn action(&mut self, a: &Action) -> ActionView {
        // A link written without words reads "Read more" in the issue's language.
        let label = if a.label.as_str().trim().is_empty() {
            self.label("read_more", "Read more")
        } else {
            self.mark(a.label.as_str())
        };
        ActionView {
            label,
            url: self.mark(a.url.as_str()),
        }
    }

    /// The "Add to calendar" links of every item that is an event, in the layout's words.
    fn calendar_views(
        &self,
        loaded: &LoadedIssue,
        page_url: Option<&str>,
    ) -> BTreeMap<(usize, usize), CalendarView> {
        let words = calendar::Words::from_labels(&self.labels);
        let file_name = self.label("calendar_file", "Calendar file (.ics)");
        let mut views = BTreeMap::new();
        for entry in calendar::entries(loaded, &words) {
            let links = entry.links(page_url);
            // Brand names are Latin: isolated in a right-to-left line, like other names.
            let mut named = vec![
                NamedLink {
                    name: self.isolated("Google".into(), "Google"),
                    url: links.google.clone(),
                },
                NamedLink {
                    name: self.isolated("Outlook".into(), "Outlook"),
                    url: links.outlook.clone(),
                },
            ];
            if let Some(ics) = &links.ics {
                named.push(NamedLink {
                    name: file_name.clone(),
                    url: ics.clone(),
                });
            }
            let mut view = CalendarView {
                ics: links.ics,
                google: links.google,
                outlook: links.outlook,
                links: named,
                first: true,
            };
            // The items are in issue order.
            for at in &entry.items {
                views.insert(*at, view.clone());
                view.first = false;
            }
        }
        views
    }

    fn section(&mut self, index: usize, s: &Section) -> SectionView {
        let body = s
            .body
            .as_ref()
            .map(|b| self.rich(b.as_str(), s.body_text.as_ref().map(|t| t.as_str())));
        let items: Vec<ItemView> = s
            .items
            .iter()
            .enumerate()
            .map(|(ii, i)| self.item((index, ii), i))
            .collect();
        let columns = s.columns.max(1);
        SectionView {
            kind: s.kind.clone(),
            heading: self.mark_opt(s.heading.as_ref().map(|h| h.as_str())),
            columns,
            column_width: format!("{}%", 100 / u32::from(columns)),
            body_html: body.as_ref().map(|b| b.html.clone()),
            body_text: body.map(|b| b.text),
            bullets: s.bullets.iter().map(|b| self.bullet(b.as_str())).collect(),
            cta: s.cta.as_ref().map(|a| self.action(a)),
            rows: items.chunks(columns.into()).map(<[_]>::to_vec).collect(),
            items,
            first: index == 0,
            item_level: if s.heading.is_some() { 3 } else { 2 },
            fields: self.declared(&s.fields),
        }
    }

    fn item(&mut self, at: (usize, usize), i: &Item) -> ItemView {
        let body = i
            .body
            .as_ref()
            .map(|b| self.rich(b.as_str(), i.body_text.as_ref().map(|t| t.as_str())));
        let when = i.start.as_ref().map(|start| {
            let end = i.end.as_ref().and_then(|e| e.resolve(start).ok());
            self.dates.event(start.instant(), end)
        });
        let location = if i.online {
            Some(self.label("online", "Online"))
        } else {
            let parts: Vec<String> = [&i.venue, &i.city]
                .into_iter()
                .flatten()
                .map(|p| self.inline(p.as_str()))
                .collect();
            let separator = self.label("list_separator", ", ");
            (!parts.is_empty()).then(|| parts.join(&separator))
        };
        ItemView {
            title: self.inline_opt(i.title.as_ref().map(|t| t.as_str())),
            tag: self.inline_opt(i.tag.as_ref().map(|t| t.as_str())),
            image: i.image.as_ref().map(|img| self.image(img)),
            body_html: body.as_ref().map(|b| b.html.clone()),
            body_text: body.map(|b| b.text),
            link: i.link.as_ref().map(|a| self.action(a)),
            when,
            online: i.online,
            venue: self.inline_opt(i.venue.as_ref().map(|t| t.as_str())),
            city: self.inline_opt(i.city.as_ref().map(|t| t.as_str())),
            location,
            registration: i.registration.as_ref().map(|u| self.mark(u.as_str())),
            note: self.mark_opt(i.note.as_ref().map(|n| n.as_str())),
            date: i.date.map(|d| self.dates.range(d, i.until)),
            date_iso: i.date.map(|d| d.to_string()),
            kind: self.inline_opt(i.kind.as_ref().map(|t| t.as_str())),
            place: self.inline_opt(i.place.as_ref().map(|t| t.as_str())),
            info: i.info.as_ref().map(|u| self.mark(u.as_str())),
            calendar: self.calendar.get(&at).cloned(),
            fields: self.declared(&i.fields),
        }
    }

    /// Declared fields as template data: text marked (and isolated like other short values),
    /// Markdown as `{html, text}`, a date written out in the issue's language (and
    /// `<name>_iso`), a URL as a string, a bool and a number as they are.
    fn declared(&mut self, fields: &issue::Fields) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (name, value) in fields {
            let v = match value {
                FieldValue::Text(t) => Value::String(self.inline(t.as_str())),
                FieldValue::Markdown(t) => {
                    let rich = self.rich(t.as_str(), None);
                    serde_json::json!({"html": rich.html, "text": rich.text})
                }
                FieldValue::Bool(b) => Value::Bool(*b),
                FieldValue::Number(n) => Value::Number(n.clone()),
                FieldValue::Url(u) => Value::String(self.mark(u.as_str())),
                FieldValue::Date(d) => {
                    out.insert(format!("{name}_iso"), Value::String(d.to_string()));
                    Value::String(self.dates.range(*d, None))
                }
            };
            out.insert(name.clone(), v);
        }
        out
    }

    fn image(&mut self, img: &Image) -> ImageView {
        let src = self.images.issue(&img.src);
        ImageView {
            src,
            alt: self.mark(img.alt.as_str()),
            link: img.link.as_ref().map(|l| self.mark(l.as_str())),
            width: img.width,
        }
    }

    fn label(&self, key: &str, default: &str) -> String {
        self.labels
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
            .to_string()
    }

    /// Theme and labels as template data, with merge fields in their strings marked.
    fn marked_json(&mut self, table: &toml::Table) -> Value {
        let mut value = serde_json::to_value(table).unwrap_or(Value::Null);
        self.mark_strings(&mut value);
        value
    }

    fn mark_strings(&mut self, value: &mut Value) {
        match value {
            Value::String(s) if s.contains("{{") => *s = self.fields.mark_template(s),
            Value::Array(a) => a.iter_mut().for_each(|v| self.mark_strings(v)),
            Value::Object(o) => o.values_mut().for_each(|v| self.mark_strings(v)),
            _ => {}
        }
    }
}

/// Which way a text runs, by its first strong character (Unicode's bidi classes), merge
/// fields skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strong {
    Ltr,
    Rtl,
    /// Only merge fields say: the reader's value decides.
    Unknown,
    /// Nothing does: digits, punctuation.
    None,
}

fn first_strong(written: &str) -> Strong {
    use icu_properties::{CodePointMapData, props::BidiClass};
    let bidi = CodePointMapData::<BidiClass>::new();
    let pieces =
        crate::merge::scan(written).unwrap_or_else(|_| vec![crate::merge::Piece::Text(written)]);
    let mut fields = false;
    for piece in pieces {
        match piece {
            crate::merge::Piece::Field(_) => fields = true,
            crate::merge::Piece::Text(t) => {
                for c in t.chars() {
                    match bidi.get(c) {
                        BidiClass::LeftToRight => return Strong::Ltr,
                        BidiClass::RightToLeft | BidiClass::ArabicLetter => return Strong::Rtl,
                        _ => {}
                    }
                }
            }
        }
    }
    if fields {
        Strong::Unknown
    } else {
        Strong::None
    }
}

/// The theme's `[logo]`, its relative `src` resolved as a layout image.
fn layout_logo(layout: &Layout, images: Images<'_>) -> Option<ImageView> {
    let logo = layout.theme().get("logo")?.as_table()?;
    let src = layout.logo_src()?;
    Some(ImageView {
        src: images.layout(src),
        alt: logo
            .get("alt")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        link: logo
            .get("link")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        width: logo
            .get("width")
            .and_then(|v| v.as_integer())
            .and_then(|w| u32::try_from(w).ok()),
    })
}

fn join_url(base: &str, path: &str) -> String {
    let base = if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    };
    match url::Url::parse(&base).and_then(|b| b.join(path)) {
        Ok(u) => u.to_string(),
        Err(_) => format!("{base}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> AssetBase {
        AssetBase::Local {
            issue: "../issues/".into(),
            layout: "../layouts/efus/".into(),
        }
    }

    #[test]
    fn sent_images_go_under_images_url_the_issues_and_the_layouts_alike() {
        let sent = AssetBase::Sent;
        let images = Images {
            assets: &sent,
            images_url: Some("https://cdn.example.org/2020-06"),
        };
        assert_eq!(
            images.issue("images/a.png"),
            "https://cdn.example.org/2020-06/images/a.png"
        );
        assert_eq!(
            images.layout("logo.png"),
            "https://cdn.example.org/2020-06/logo.png"
        );
        assert_eq!(
            images.layout("https://example.org/logo.png"),
            "https://example.org/logo.png"
        );
        // Without images_url they stay as written (and check refuses them).
        let images = Images {
            assets: &sent,
            images_url: None,
        };
        assert_eq!(images.issue("images/a.png"), "images/a.png");
        assert_eq!(images.layout("logo.png"), "logo.png");
    }

    #[test]
    fn local_layout_images_keep_pointing_at_the_layout_folder() {
        let local = local();
        let images = Images {
            assets: &local,
            images_url: Some("https://cdn.example.org/2020-06/"),
        };
        assert_eq!(
            images.issue("images/a.png"),
            "https://cdn.example.org/2020-06/images/a.png"
        );
        assert_eq!(images.layout("logo.png"), "../layouts/efus/logo.png");
        let images = Images {
            assets: &local,
            images_url: None,
        };
        assert_eq!(images.issue("images/a.png"), "../issues/images/a.png");
    }

    #[test]
    fn languages_cldr_writes_right_to_left_are_rtl() {
        let dir = |tag: &str| {
            issue::Language::try_from(tag.to_string())
                .unwrap()
                .direction()
        };
        for rtl in [
            "ar", "ar-EG", "he", "fa", "ur", "yi", "ps", "ckb", "az-Arab", "pa-Arab", "dv",
        ] {
            assert_eq!(dir(rtl), "rtl", "{rtl}");
        }
        for ltr in ["en", "fr", "az", "pa", "sr-Latn", "ja", "zh-Hant", "tlh"] {
            assert_eq!(dir(ltr), "ltr", "{ltr}");
        }
    }

    #[test]
    fn first_strong_skips_merge_fields() {
        assert_eq!(first_strong("Palais des Congrès"), Strong::Ltr);
        assert_eq!(first_strong("2020 — نيس"), Strong::Rtl);
        assert_eq!(first_strong("«שלום»"), Strong::Rtl);
        assert_eq!(first_strong("{{subscriber.city}} 2020"), Strong::Unknown);
        assert_eq!(first_strong("{{subscriber.city}}، مدينة"), Strong::Rtl);
        assert_eq!(first_strong("2020 – 12"), Strong::None);
    }

    #[test]
    fn merge_fields_and_anchors_are_not_paths() {
        let mut fields = FieldTable::default();
        let field = fields.mark("{{subscriber.photo}}");
        let local = local();
        let images = Images {
            assets: &local,
            images_url: Some("https://cdn.example.org/"),
        };
        assert_eq!(images.issue(&field), field);
        assert_eq!(images.layout("#top"), "#top");
    }
}
