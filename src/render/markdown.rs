//! Markdown in issue text, to the two forms an email needs: inline-styled HTML for the HTML
//! part (email clients drop most stylesheets, so the layout's `[markdown]` styles are written
//! on each element) and readable plain text for the text part (links written out in full).
//! Image paths are resolved by the caller's function (`context` knows where images are).
//! The styles are written for left-to-right text; [`Styles::mirrored`] swaps left and right
//! for a right-to-left issue (list indents, a quote's rule).

use std::collections::BTreeMap;

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::merge::escape_html;

/// Inline styles per HTML element, from the theme's `[markdown]` table.
#[derive(Debug, Clone, Default)]
pub struct Styles(BTreeMap<String, String>);

impl Styles {
    pub fn from_theme(theme: &toml::Table) -> Self {
        let map = theme
            .get("markdown")
            .and_then(|m| m.as_table())
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Styles(map)
    }

    /// The same styles for right-to-left text: every left becomes right and the other way
    /// round (`padding: 0 0 0 22px` → `0 22px 0 0`, `border-left` → `border-right`,
    /// `text-align: left` → `right`).
    pub fn mirrored(&self) -> Self {
        Styles(
            self.0
                .iter()
                .map(|(tag, style)| (tag.clone(), mirror_css(style)))
                .collect(),
        )
    }

    fn open(&self, tag: &str, attrs: &str) -> String {
        match self.0.get(tag) {
            Some(style) => format!("<{tag}{attrs} style=\"{}\">", escape_html(style)),
            None => format!("<{tag}{attrs}>"),
        }
    }
}

/// An inline style with left and right swapped: property names (`padding-left`,
/// `border-left`), the four sides of `margin`, `padding` and `border-*` shorthands, the
/// corners of `border-radius`, and the values of `text-align`, `float` and `clear`. Anything
/// else is kept as written.
pub fn mirror_css(style: &str) -> String {
    let mut out = Vec::new();
    for declaration in style.split(';') {
        let Some((property, value)) = declaration.split_once(':') else {
            if !declaration.trim().is_empty() {
                out.push(declaration.trim().to_string());
            }
            continue;
        };
        let property = property.trim();
        let name = property.to_ascii_lowercase();
        let value = value.trim();
        let (value, important) = match value.strip_suffix("!important") {
            Some(v) => (v.trim_end(), " !important"),
            None => (value, ""),
        };
        let mirrored_name = swap_sides(&name);
        let words: Vec<&str> = value.split_whitespace().collect();
        let mirrored_value = match name.as_str() {
            "margin" | "padding" | "border-width" | "border-style" | "border-color" | "inset"
                if words.len() == 4 =>
            {
                [words[0], words[3], words[2], words[1]].join(" ")
            }
            "border-radius" if !value.contains('/') => match words.as_slice() {
                [a, b] => format!("{b} {a}"),
                [a, b, c] => format!("{b} {a} {b} {c}"),
                [a, b, c, d] => format!("{b} {a} {d} {c}"),
                _ => value.to_string(),
            },
            "text-align" | "float" | "clear" => swap_sides(value),
            _ => value.to_string(),
        };
        let property = if mirrored_name == name {
            property.to_string()
        } else {
            mirrored_name
        };
        out.push(format!("{property}: {mirrored_value}{important}"));
    }
    let mut css = out.join("; ");
    if style.trim_end().ends_with(';') {
        css.push(';');
    }
    css
}

/// "left" and "right" swapped in a word or name (`border-left` → `border-right`).
fn swap_sides(s: &str) -> String {
    s.split('-')
        .map(|part| match part {
            "left" => "right",
            "right" => "left",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SMART_PUNCTUATION
}

/// Where an image of the Markdown points, from its path as written.
pub type ImageSrc<'a> = &'a dyn Fn(&str) -> String;

/// Markdown to HTML with the layout's inline styles and image paths resolved by `image`.
pub fn to_html(markdown: &str, styles: &Styles, image: ImageSrc<'_>) -> String {
    let events =
        Parser::new_ext(markdown, options()).map(|event| style_event(event, styles, image));
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html.trim_end().to_string()
}

/// Markdown to HTML without the paragraph around it: for a bullet or a one-line note.
pub fn to_inline_html(markdown: &str, styles: &Styles, image: ImageSrc<'_>) -> String {
    let html = to_html(markdown, styles, image);
    let open_p = styles.open("p", "");
    match html
        .strip_prefix(&open_p)
        .and_then(|h| h.strip_suffix("</p>"))
    {
        Some(inner) if !inner.contains("<p") => inner.to_string(),
        _ => html,
    }
}

/// Raw HTML written in place of the elements that get a style; images get their path
/// resolved.
fn style_event<'a>(event: Event<'a>, styles: &Styles, image: ImageSrc<'_>) -> Event<'a> {
    let open = |tag: &str, attrs: &str| Event::Html(CowStr::from(styles.open(tag, attrs)));
    let close = |tag: &str| Event::Html(CowStr::from(format!("</{tag}>")));
    match event {
        Event::Start(Tag::Paragraph) => open("p", ""),
        Event::End(TagEnd::Paragraph) => Event::Html("</p>\n".into()),
        Event::Start(Tag::Link {
            dest_url, title, ..
        }) => {
            let mut attrs = format!(" href=\"{}\"", escape_html(&dest_url));
            if !title.is_empty() {
                attrs.push_str(&format!(" title=\"{}\"", escape_html(&title)));
            }
            open("a", &attrs)
        }
        Event::End(TagEnd::Link) => close("a"),
        Event::Start(Tag::List(None)) => open("ul", ""),
        Event::End(TagEnd::List(false)) => Event::Html("</ul>\n".into()),
        Event::Start(Tag::List(Some(first))) => {
            let attrs = if first == 1 {
                String::new()
            } else {
                format!(" start=\"{first}\"")
            };
            open("ol", &attrs)
        }
        Event::End(TagEnd::List(true)) => Event::Html("</ol>\n".into()),
        Event::Start(Tag::Item) => open("li", ""),
        Event::End(TagEnd::Item) => Event::Html("</li>\n".into()),
        Event::Start(Tag::Heading { level, .. }) => open(heading_tag(level), ""),
        Event::End(TagEnd::Heading(level)) => {
            Event::Html(format!("</{}>\n", heading_tag(level)).into())
        }
        Event::Start(Tag::BlockQuote(_)) => open("blockquote", ""),
        Event::End(TagEnd::BlockQuote(_)) => Event::Html("</blockquote>\n".into()),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: image(&dest_url).into(),
            title,
            id,
        }),
        other => other,
    }
}

fn heading_tag(level: HeadingLevel) -> &'static str {
    // Headings inside an item sit below the layout's own section and item headings.
    match level {
        HeadingLevel::H1 | HeadingLevel::H2 | HeadingLevel::H3 => "h4",
        HeadingLevel::H4 => "h5",
        _ => "h6",
    }
}

/// Markdown to plain text: paragraphs separated by a blank line, lists with "- " or "1. ",
/// emphasis dropped, and each link written as "label (URL)" — or just the URL when the label
/// is the URL. Lines are not wrapped here; the text part is wrapped as a whole.
pub fn to_text(markdown: &str) -> String {
    let mut out = String::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<(String, usize)> = Vec::new();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Paragraph) | Event::Start(Tag::Heading { .. }) => {}
            Event::End(TagEnd::Paragraph) | Event::End(TagEnd::Heading(_)) => {
                if lists.is_empty() {
                    out.push_str("\n\n");
                } else {
                    out.push('\n');
                }
            }
            Event::Start(Tag::List(first)) => {
                if lists.is_empty() && !out.is_empty() && !out.ends_with("\n\n") {
                    out.push('\n');
                }
                lists.push(first);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push((dest_url.to_string(), out.len()))
            }
            Event::End(TagEnd::Link) => {
                if let Some((url, start)) = links.pop() {
                    let label = out[start..].trim();
                    let shown = url.strip_prefix("mailto:").unwrap_or(&url);
                    if label != url && label != shown {
                        out.push_str(&format!(" ({shown})"));
                    }
                }
            }
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("----\n\n"),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_written_once_in_text() {
        let text =
            to_text("See [the programme](https://example.org/p) or <https://example.org/q>.");
        assert_eq!(
            text,
            "See the programme (https://example.org/p) or https://example.org/q."
        );
    }

    /// The vendored pulldown-cmark keeps its entity table packed (vendor/README.md); every
    /// name must still expand as HTML5 defines it, as Python's own table of it says.
    #[test]
    fn entities_expand_as_html5_names_them() {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import html.entities, json; print(json.dumps(html.entities.html5))",
            ])
            .output()
            .expect("python3 reads HTML5's entity table (bash tests/setup.sh)");
        let table: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&out.stdout).unwrap();
        let named: Vec<_> = table.iter().filter(|(k, _)| k.ends_with(';')).collect();
        assert_eq!(named.len(), 2125);
        for (name, value) in named {
            assert_eq!(
                to_text(&format!("x&{name}x")),
                format!("x{value}x"),
                "&{name}"
            );
        }
        assert_eq!(to_text("x&notanentity;x"), "x&notanentity;x");
    }

    #[test]
    fn lists_and_paragraphs_read_as_text() {
        let text = to_text("Intro **bold**.\n\n- one\n- two\n\nAfter.");
        assert_eq!(text, "Intro bold.\n\n- one\n- two\n\nAfter.");
    }

    #[test]
    fn image_paths_are_resolved_by_the_caller() {
        let html = to_inline_html("![A chart](images/chart.png)", &Styles::default(), &|src| {
            format!("https://cdn.example.org/{src}")
        });
        assert_eq!(
            html,
            "<img src=\"https://cdn.example.org/images/chart.png\" alt=\"A chart\" />"
        );
    }

    #[test]
    fn styles_mirror_for_right_to_left_text() {
        assert_eq!(
            mirror_css("margin: 0 0 12px 0; padding: 0 0 0 22px;"),
            "margin: 0 0 12px 0; padding: 0 22px 0 0;"
        );
        assert_eq!(
            mirror_css(
                "margin: 0 0 12px 0; padding: 0 0 0 12px; border-left: 3px solid #d9e2ec; color: #4a5563;"
            ),
            "margin: 0 0 12px 0; padding: 0 12px 0 0; border-right: 3px solid #d9e2ec; color: #4a5563;"
        );
        assert_eq!(
            mirror_css("text-align: left; margin-left: 4px !important; border-radius: 4px 0 0 4px"),
            "text-align: right; margin-right: 4px !important; border-radius: 0 4px 4px 0"
        );
        assert_eq!(mirror_css("color: #123"), "color: #123");
        let styles = Styles(
            [("ul".to_string(), "padding: 0 0 0 22px;".to_string())]
                .into_iter()
                .collect(),
        )
        .mirrored();
        assert_eq!(
            to_html("- a", &styles, &str::to_string),
            "<ul style=\"padding: 0 22px 0 0;\"><li>a</li>\n</ul>"
        );
    }

    #[test]
    fn html_carries_theme_styles() {
        let styles = Styles(
            [("a".to_string(), "color: #123456".to_string())]
                .into_iter()
                .collect(),
        );
        let html = to_inline_html(
            "A [link](https://example.org/?a=1&b=2)",
            &styles,
            &str::to_string,
        );
        assert_eq!(
            html,
            "A <a href=\"https://example.org/?a=1&amp;b=2\" style=\"color: #123456\">link</a>"
        );
    }
}
