//! The data templates see: the issue turned into display-ready values (Markdown already HTML
//! and text, dates already written out in the issue's language, image paths resolved), the
//! theme and the labels. Every piece of text passes through the merge-field table here, so
//! merge fields reach the templates as inert markers.

use serde::Serialize;
use serde_json::Value;

use super::dates::{Dates, When};
use super::markdown::{self, Styles};
use crate::issue::{self, Action, Image, Issue, Item, LoadedIssue, Section};
use crate::layout::Layout;
use crate::merge::FieldTable;

/// Prefixes put before relative image paths: where the issue's folder and the layout's folder
/// are as seen from the rendered HTML (`../issues/` next to `out/`, `/issue/` in a preview).
#[derive(Debug, Clone, Default)]
pub struct AssetBase {
    pub issue: String,
    pub layout: String,
}

#[derive(Serialize)]
pub struct Context {
    issue: IssueView,
    theme: Value,
    labels: Value,
    logo: Option<ImageView>,
    sections: Vec<SectionView>,
    unsubscribe_url: String,
}

#[derive(Serialize)]
struct IssueView {
    title: String,
    preheader: Option<String>,
    date: String,
    date_long: String,
    date_iso: String,
    lang: String,
    dir: &'static str,
    web_url: Option<String>,
    slug: String,
}

#[derive(Serialize)]
struct SectionView {
    kind: String,
    heading: Option<String>,
    columns: u8,
    /// "50%" for two columns: the width MJML columns need.
    column_width: String,
    body_html: Option<String>,
    body_text: Option<String>,
    bullets: Vec<Rich>,
    cta: Option<ActionView>,
    items: Vec<ItemView>,
    /// Items grouped by row, `columns` per row (the last row may be short).
    rows: Vec<Vec<ItemView>>,
    first: bool,
    /// The heading level for item titles: 3 under the section's heading, 2 without one, so
    /// that headings never skip a level.
    item_level: u8,
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
    link: Option<String>,
    width: Option<u32>,
}

#[derive(Serialize, Clone)]
struct ItemView {
    title: Option<String>,
    tag: Option<String>,
    image: Option<ImageView>,
    body_html: Option<String>,
    body_text: Option<String>,
    link: Option<ActionView>,
    when: Option<When>,
    online: bool,
    venue: Option<String>,
    city: Option<String>,
    /// "Online", or venue and city joined.
    location: Option<String>,
    registration: Option<String>,
    note: Option<String>,
    /// An agenda date or range: "25–27 November 2020".
    date: Option<String>,
    date_iso: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    place: Option<String>,
    info: Option<String>,
}

/// Everything needed to turn issue values into views.
struct Builder<'a> {
    fields: &'a mut FieldTable,
    styles: Styles,
    dates: Dates,
    labels: toml::Table,
    issue: &'a Issue,
    assets: &'a AssetBase,
}

/// Builds the template data for `loaded`, marking merge fields in `fields`.
pub fn build(
    loaded: &LoadedIssue,
    layout: &Layout,
    assets: &AssetBase,
    fields: &mut FieldTable,
) -> Result<Context, String> {
    let issue = &loaded.issue;
    let primary = issue.language.primary();
    let region = issue.language.region();
    let labels = layout.labels(&primary, issue.language.as_str());
    let dates = Dates::new(&labels, &primary, region.as_deref())?;
    let mut b = Builder {
        fields,
        styles: Styles::from_theme(layout.theme()),
        dates,
        labels,
        issue,
        assets,
    };
    let sections = issue
        .sections
        .iter()
        .enumerate()
        .map(|(i, s)| b.section(s, i == 0))
        .collect();
    let theme = b.marked_json(layout.theme());
    let labels = b.marked_json(&b.labels.clone());
    let logo = layout_logo(layout, assets);
    Ok(Context {
        issue: IssueView {
            title: b.fields.mark(issue.title.as_str()),
            preheader: issue.preheader.as_ref().map(|p| b.fields.mark(p.as_str())),
            date: b.dates.short(issue.date),
            date_long: b.dates.long(issue.date),
            date_iso: issue.date.to_string(),
            lang: issue.language.as_str().to_string(),
            dir: issue.language.direction(),
            web_url: issue.web_url.as_ref().map(|u| b.fields.mark(u.as_str())),
            slug: loaded.slug.clone(),
        },
        theme,
        labels,
        logo,
        sections,
        unsubscribe_url: b.fields.mark("{{unsubscribe_url}}"),
    })
}

impl Builder<'_> {
    fn mark(&mut self, s: &str) -> String {
        self.fields.mark(s)
    }

    fn mark_opt(&mut self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.fields.mark(s))
    }

    /// Markdown to both forms; `text` (the writer's own text wording) wins for the text part.
    fn rich(&mut self, markdown: &str, text: Option<&str>) -> Rich {
        let marked = self.mark(markdown);
        Rich {
            html: markdown::to_html(&marked, &self.styles),
            text: match text {
                Some(t) => self.mark(t),
                None => markdown::to_text(&marked),
            },
        }
    }

    fn bullet(&mut self, markdown: &str) -> Rich {
        let marked = self.mark(markdown);
        Rich {
            html: markdown::to_inline_html(&marked, &self.styles),
            text: markdown::to_text(&marked),
        }
    }

    fn action(&mut self, a: &Action) -> ActionView {
        ActionView {
            label: self.mark(a.label.as_str()),
            url: self.mark(a.url.as_str()),
        }
    }

    fn section(&mut self, s: &Section, first: bool) -> SectionView {
        let body = s
            .body
            .as_ref()
            .map(|b| self.rich(b.as_str(), s.body_text.as_ref().map(|t| t.as_str())));
        let items: Vec<ItemView> = s.items.iter().map(|i| self.item(i)).collect();
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
            first,
            item_level: if s.heading.is_some() { 3 } else { 2 },
        }
    }

    fn item(&mut self, i: &Item) -> ItemView {
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
                .map(|p| self.mark(p.as_str()))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        };
        ItemView {
            title: self.mark_opt(i.title.as_ref().map(|t| t.as_str())),
            tag: self.mark_opt(i.tag.as_ref().map(|t| t.as_str())),
            image: i.image.as_ref().map(|img| self.image(img)),
            body_html: body.as_ref().map(|b| b.html.clone()),
            body_text: body.map(|b| b.text),
            link: i.link.as_ref().map(|a| self.action(a)),
            when,
            online: i.online,
            venue: self.mark_opt(i.venue.as_ref().map(|t| t.as_str())),
            city: self.mark_opt(i.city.as_ref().map(|t| t.as_str())),
            location,
            registration: i.registration.as_ref().map(|u| self.mark(u.as_str())),
            note: self.mark_opt(i.note.as_ref().map(|n| n.as_str())),
            date: i.date.map(|d| self.dates.range(d, i.until)),
            date_iso: i.date.map(|d| d.to_string()),
            kind: self.mark_opt(i.kind.as_ref().map(|t| t.as_str())),
            place: self.mark_opt(i.place.as_ref().map(|t| t.as_str())),
            info: i.info.as_ref().map(|u| self.mark(u.as_str())),
        }
    }

    fn image(&mut self, img: &Image) -> ImageView {
        let src = if !issue::is_relative_reference(&img.src) {
            img.src.clone()
        } else if let Some(base) = &self.issue.images_url {
            join_url(base.as_str(), &img.src)
        } else {
            format!("{}{}", self.assets.issue, img.src)
        };
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

/// The theme's `[logo]`, its relative `src` taken from the layout folder.
fn layout_logo(layout: &Layout, assets: &AssetBase) -> Option<ImageView> {
    let logo = layout.theme().get("logo")?.as_table()?;
    let src = logo.get("src")?.as_str()?;
    let src = if issue::is_relative_reference(src) {
        format!("{}{src}", assets.layout)
    } else {
        src.to_string()
    };
    Some(ImageView {
        src,
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
