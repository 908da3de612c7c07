//! An issue's page and its print version: the web edition's compiled email, cut into its
//! stylesheet and its body, set in the layout's `page.html.hbs`; and the Handlebars registry
//! of the layout's web templates, which the list of issues uses too.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde_json::{Value, json};

use super::images;
use crate::edition::Edition;
use crate::layout::{self, Layout};
use crate::merge::NoValues;
use crate::render::RenderError;

/// What an issue's page says about it, for the list of issues and the feed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Meta {
    pub title: String,
    pub preheader: Option<String>,
    /// The date as the email writes it, in the issue's language.
    pub date_text: String,
    pub lang: String,
    pub dir: String,
}

/// An issue's web edition, ready to write.
#[derive(Debug, Clone)]
pub(super) struct Built {
    /// `index.html`.
    pub page: String,
    /// `print.html`.
    pub print: String,
    /// The email's body as the page shows it, its images relative to the page: the feed's
    /// content.
    pub content: String,
    pub meta: Meta,
}

/// Where the page is and what is around it.
pub(super) struct Place<'a> {
    /// The page's full address, with `[archive] base_url`.
    pub url: Option<&'a str>,
    /// The feed's full address, when the site has one.
    pub feed_url: Option<&'a str>,
}

/// The page and the print version of `edition`, which was drawn for the site
/// ([`crate::edition::Images::Site`]).
pub(super) fn build(edition: &Edition, place: &Place<'_>) -> Result<Built, RenderError> {
    let rendered = &edition.rendered;
    let language = &edition.issue.issue.language;
    let meta = Meta {
        title: rendered.subject.fill(&NoValues),
        preheader: rendered
            .preheader
            .as_ref()
            .map(|p| p.fill(&NoValues))
            .filter(|p| !p.trim().is_empty()),
        date_text: rendered.date.clone(),
        lang: language.as_str().to_string(),
        dir: language.direction().to_string(),
    };
    let (styles, content) = split(&rendered.html.fill(&NoValues));
    let image = first_image(&edition.layout, &content).and_then(|src| match place.url {
        Some(page) => url::Url::parse(page)
            .and_then(|u| u.join(&src))
            .ok()
            .map(|u| u.to_string()),
        None => None,
    });
    let layout = &edition.layout;
    let mut data = json!({
        "issue": {
            "title": meta.title,
            "preheader": meta.preheader,
            "date": meta.date_text,
            "date_iso": edition.issue.issue.date.to_string(),
            "lang": meta.lang,
            "dir": meta.dir,
            "slug": edition.issue.slug,
        },
        "theme": serde_json::to_value(layout.theme()).unwrap_or(Value::Null),
        "labels": labels(layout, language),
        "print": false,
        "links": {
            "archive": "../index.html",
            "page": "index.html",
            "print": "print.html",
            "feed": place.feed_url.map(|_| "../feed.xml"),
        },
        "url": place.url,
        "image": image,
        "feed_url": place.feed_url,
        "styles": styles,
        "content": content,
    });
    let templates = WebTemplates::new(layout)?;
    let page = templates.render(layout::PAGE, &data)?;
    data["print"] = Value::Bool(true);
    let print = templates.render(layout::PAGE, &data)?;
    Ok(Built {
        page,
        print,
        content,
        meta,
    })
}

/// The layout's words for `language` as template data.
pub(super) fn labels(layout: &Layout, language: &crate::issue::Language) -> Value {
    let labels = layout.labels(&language.primary(), language.as_str());
    serde_json::to_value(labels).unwrap_or(Value::Null)
}

/// The issue's first image, for link previews: the first of its own (an item's, one in its
/// Markdown), else the first of the page (the layout's logo).
fn first_image(layout: &Layout, content: &str) -> Option<String> {
    let mut own: Vec<String> = layout.images().into_iter().map(|i| i.src).collect();
    own.extend(layout.logo_src().map(str::to_string));
    let usable: Vec<String> = images::sources(content)
        .into_iter()
        .filter(|s| {
            crate::issue::is_relative_reference(s)
                || s.starts_with("https://")
                || s.starts_with("http://")
        })
        .collect();
    usable
        .iter()
        .find(|s| !own.contains(s))
        .or(usable.first())
        .cloned()
}

/// The compiled email cut in two: its stylesheets (the `<style>` elements of its head; those
/// inside conditional comments are Outlook's, and left out) and the content of its `<body>`.
/// mrml writes both the same way for every email; a document without them is all body.
pub(super) fn split(html: &str) -> (String, String) {
    let head = match (html.find("<head>"), html.find("</head>")) {
        (Some(start), Some(end)) if start < end => &html[start..end],
        _ => "",
    };
    let head = without_comments(head);
    let mut styles = Vec::new();
    let mut rest = head.as_str();
    while let Some(start) = rest.find("<style") {
        let Some(len) = rest[start..].find("</style>") else {
            break;
        };
        let end = start + len + "</style>".len();
        styles.push(rest[start..end].to_string());
        rest = &rest[end..];
    }
    let body = html
        .find("<body")
        .and_then(|at| html[at..].find('>').map(|gt| at + gt + 1))
        .and_then(|start| html.rfind("</body>").map(|end| (start, end)))
        .filter(|(start, end)| start <= end)
        .map(|(start, end)| html[start..end].to_string())
        .unwrap_or_else(|| html.to_string());
    (styles.join("\n"), body)
}

/// HTML with its comments taken out (`<!-- … -->`, conditional comments among them).
fn without_comments(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(len) => rest = &rest[start + 4 + len + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The layout's web templates (`*.html.hbs`) in one Handlebars registry, each known by the
/// file it came from so that errors can name it. Values are HTML-escaped.
pub(super) struct WebTemplates<'a> {
    registry: Handlebars<'a>,
    origins: BTreeMap<String, String>,
}

impl WebTemplates<'_> {
    pub fn new(layout: &Layout) -> Result<Self, RenderError> {
        let mut registry = Handlebars::new();
        let mut origins = BTreeMap::new();
        for (name, t) in layout.web_templates() {
            let file = t.origin.describe(&t.name);
            registry
                .register_template_string(&name, &t.source)
                .map_err(|e| RenderError::Template {
                    file: file.clone(),
                    line: e.pos().map(|p| p.0),
                    column: e.pos().map(|p| p.1),
                    message: e.reason().to_string(),
                })?;
            origins.insert(name, file);
        }
        Ok(WebTemplates { registry, origins })
    }

    pub fn render(&self, name: &str, data: &Value) -> Result<String, RenderError> {
        if !self.registry.has_template(name) {
            return Err(RenderError::Template {
                file: format!("{name}{}", layout::WEB_SUFFIX),
                line: None,
                column: None,
                message: "the layout has no such template".into(),
            });
        }
        self.registry.render(name, data).map_err(|e| {
            let at = e.template_name.clone().unwrap_or_else(|| name.to_string());
            RenderError::Template {
                file: self.origins.get(&at).cloned().unwrap_or(at),
                line: e.line_no,
                column: e.column_no,
                message: e.reason().to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_is_cut_into_its_styles_and_its_body() {
        let html = "<!doctype html><html><head><title>T</title><style type=\"text/css\">p { margin: 0; }</style>\
<!--[if lte mso 11]><style type=\"text/css\">.mj-outlook-group-fix { width:100% !important; }</style><![endif]-->\
<!--[if !mso]><!--><meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\"><!--<![endif]-->\
<style media=\"screen and (min-width:480px)\">.a { width: 50%; }</style></head>\
<body style=\"word-spacing:normal;\"><div role=\"article\">Hello</div></body></html>";
        let (styles, body) = split(html);
        assert_eq!(
            styles,
            "<style type=\"text/css\">p { margin: 0; }</style>\n<style media=\"screen and (min-width:480px)\">.a { width: 50%; }</style>"
        );
        assert_eq!(body, "<div role=\"article\">Hello</div>");
        assert_eq!(split("<p>bare</p>"), (String::new(), "<p>bare</p>".into()));
    }
}
