//! Findings in the rendered HTML itself: images without alt text or width (from the layout or
//! from Markdown), and headings that skip a level.

use std::path::Path;

use super::{Finding, Severity, path_of};
use crate::issue::LoadedIssue;

/// `theme_file` is named for what the layout itself put in the email.
pub fn check(loaded: &LoadedIssue, theme_file: &Path, html: &str, out: &mut Vec<Finding>) {
    let ctx = Ctx { loaded, theme_file };
    check_images(&ctx, html, out);
    check_headings(&ctx, html, out);
}

struct Ctx<'a> {
    loaded: &'a LoadedIssue,
    theme_file: &'a Path,
}

/// The tags named `name` in `html`, each as the text between `<` and `>`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    html.match_indices(open.as_str())
        .filter_map(|(at, _)| {
            let rest = &html[at + open.len()..];
            // `<img` but not `<imgx`.
            if !rest.starts_with([' ', '>', '/', '\n', '\t']) {
                return None;
            }
            rest.find('>').map(|end| &rest[..end])
        })
        .collect()
}

/// The value of a double-quoted attribute, entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// HTML text with its character references decoded: `&amp;`, `&quot;`, `&#39;`, `&#x3D;`…
/// (Handlebars writes `=` in a URL as `&#x3D;`.)
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn finding(ctx: &Ctx<'_>, severity: Severity, needle: &str, message: String) -> Finding {
    let path = path_of(ctx.loaded, needle);
    let problem = if path.is_empty() {
        // Not from the issue: the layout or its theme put it there.
        crate::issue::Problem {
            file: ctx.theme_file.to_path_buf(),
            position: None,
            json_path: String::new(),
            message,
        }
    } else {
        ctx.loaded.problem(&path, message)
    };
    Finding { severity, problem }
}

fn check_images(ctx: &Ctx<'_>, html: &str, out: &mut Vec<Finding>) {
    for tag in tags(html, "img") {
        let src = attr(tag, "src").unwrap_or_default();
        let needle = src.rsplit('/').next().unwrap_or(&src).to_string();
        // Markdown's images without alt are reported where they are written (check_markdown).
        let in_markdown = super::markup::images_without_alt(ctx.loaded)
            .iter()
            .any(|m| !m.is_empty() && src.ends_with(m.as_str()));
        if attr(tag, "alt").is_none_or(|a| a.trim().is_empty()) && !in_markdown {
            out.push(finding(
                ctx,
                Severity::Error,
                &needle,
                format!("the image {src} has no alt text; say what it shows, for readers who cannot see it"),
            ));
        }
        if attr(tag, "width").is_none() {
            out.push(finding(
                ctx,
                Severity::Warning,
                &needle,
                format!(
                    "the image {src} has no width; Outlook then shows it at its full size, which can break the layout"
                ),
            ));
        }
    }
}

fn check_headings(ctx: &Ctx<'_>, html: &str, out: &mut Vec<Finding>) {
    let mut previous = 0u8;
    let mut at = 0;
    while let Some(found) = html[at..].find("<h") {
        let start = at + found;
        at = start + 2;
        let level = html.as_bytes().get(start + 2).copied().unwrap_or(0);
        let next = html.as_bytes().get(start + 3).copied().unwrap_or(0);
        if !(b'1'..=b'6').contains(&level) || !matches!(next, b' ' | b'>') {
            continue;
        }
        let level = level - b'0';
        let close = format!("</h{level}>");
        let inner = &html[start..];
        let text = inner
            .find('>')
            .and_then(|open| {
                inner[open + 1..]
                    .find(&close)
                    .map(|end| &inner[open + 1..open + 1 + end])
            })
            .map(strip_tags)
            .unwrap_or_default();
        if previous > 0 && level > previous + 1 {
            out.push(finding(
                ctx,
                Severity::Warning,
                &text,
                format!(
                    "the heading \"{text}\" (h{level}) comes after an h{previous}: screen readers use heading levels to navigate, so do not skip one"
                ),
            ));
        }
        previous = level;
    }
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn character_references_are_decoded() {
        assert_eq!(
            super::unescape("https://e.org/?a&#x3D;1&amp;b&#61;2 &quot;x&quot; &unknown; & done"),
            "https://e.org/?a=1&b=2 \"x\" &unknown; & done"
        );
    }
}
