//! What the writer meant as markup but the email would show as text, or with a hole: Markdown
//! links and images whose URL is not one (`[x](https://efus example/p)` is not read as a
//! link at all, and its brackets go out), and merge fields that no reader has a value for
//! (`{{subscriber.first_nme}}` writes "Hi " without a word) (issue 12).
//!
//! Both are errors in `check` and warnings in `render`; this module returns them as
//! [`Problem`]s and lets the caller choose. It reads the issue and the layout, nothing else.

use pulldown_cmark::{Event, Parser, Tag};

use crate::issue::{Link, LoadedIssue, Problem};
use crate::layout::Layout;
use crate::merge::{FieldKey, FieldTable, Piece, Recipient};

/// Markdown links and images of the issue whose URL is not one: links that could not be read
/// as links (a space in the URL), links whose URL does not parse, images whose path is
/// neither a URL nor a relative path.
pub fn markdown_links(loaded: &LoadedIssue) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, markdown) in super::bodies(loaded) {
        for message in bad_links(markdown) {
            out.push(loaded.problem(&path, message));
        }
    }
    out
}

/// The sources of the issue's Markdown images without alt text, as written: `check` reports
/// them at their text field, and the rendered HTML's rule leaves them alone (issue 12: each was
/// reported twice).
pub fn images_without_alt(loaded: &LoadedIssue) -> Vec<String> {
    let mut out = Vec::new();
    for (_, markdown) in super::bodies(loaded) {
        let mut image: Option<(String, String)> = None;
        for event in Parser::new(markdown) {
            match event {
                Event::Start(Tag::Image { dest_url, .. }) => {
                    image = Some((dest_url.to_string(), String::new()))
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some((_, alt)) = image.as_mut() {
                        alt.push_str(&t);
                    }
                }
                Event::End(pulldown_cmark::TagEnd::Image) => {
                    if let Some((src, alt)) = image.take()
                        && alt.trim().is_empty()
                    {
                        out.push(src);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// What is wrong with the links and images of one Markdown text, in order.
fn bad_links(markdown: &str) -> Vec<String> {
    // Every link and image Markdown reads, and every one it leaves as text, begins with a
    // bracket, and an autolink with `<`: a text with neither has none, and is not parsed
    // (`render` warns of these after every render; for the sample, a third fewer instructions).
    if !markdown.contains(['[', '<']) {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Consecutive text, as pulldown-cmark cuts it at brackets it did not take for a link.
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<String>| {
        out.extend(unread_links(run));
        run.clear();
    };
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) => {
                run.push_str(&t);
                continue;
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                if !dest_url.starts_with('#')
                    && let Err(e) = Link::try_from(dest_url.to_string())
                {
                    out.push(format!("a link {e}"));
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) if !valid_image_src(&dest_url) => {
                out.push(format!(
                    "the image \"{dest_url}\" is neither a URL nor a relative path; write it \
                     in full (\"https://example.org/chart.png\") or as a path next to the \
                     issue (\"images/chart.png\"), with %20 for a space"
                ));
            }
            _ => {}
        }
        flush(&mut run, &mut out);
    }
    flush(&mut run, &mut out);
    out
}

/// `[words](url)` and `![alt](src)` left in text: Markdown did not read them as a link or an
/// image, and the brackets would show in the email.
fn unread_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("](").map(|i| from + i) {
        let open = text[..at].rfind('[');
        let close = text[at + 2..].find(')').map(|i| at + 2 + i);
        let (Some(open), Some(close)) = (open, close) else {
            from = at + 2;
            continue;
        };
        let image = text[..open].ends_with('!');
        let start = if image { open - 1 } else { open };
        let written = &text[start..=close];
        let url = text[at + 2..close].trim();
        let what = if image { "an image" } else { "a link" };
        let why = if url.chars().any(char::is_whitespace) {
            format!("its URL \"{url}\" has a space; remove it or write %20")
        } else {
            format!("its URL \"{url}\" is not valid")
        };
        out.push(format!(
            "\"{written}\" is not read as {what}, and its brackets would show in the email: {why}"
        ));
        from = close + 1;
    }
    out
}

/// An image's source as Markdown gave it: a URL, or a path relative to the issue.
fn valid_image_src(src: &str) -> bool {
    let src = crate::merge::blank_fields(src);
    let src = src.trim();
    if src.is_empty() || src.starts_with('#') {
        return true;
    }
    match url::Url::parse(src) {
        Ok(u) => matches!(u.scheme(), "http" | "https" | "data" | "cid"),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            !src.chars().any(|c| c.is_whitespace() || c == '\\')
        }
        Err(_) => false,
    }
}

/// Merge fields of the issue that name a field no reader has: not one of the sample reader's
/// (`email`, `first_name`, `name`), not one the layout uses itself (its templates, theme and
/// labels), not a column of the list when there is one (`columns`).
pub fn merge_fields(loaded: &LoadedIssue, layout: &Layout, columns: &[String]) -> Vec<Problem> {
    let mut known: Vec<String> = Recipient::sample().fields.keys().cloned().collect();
    known.extend(columns.iter().map(|c| c.trim().to_ascii_lowercase()));
    if !may_use_unknown_fields(loaded, &known) {
        return Vec::new();
    }
    let unknown = subscriber_fields(loaded)
        .into_iter()
        .filter(|(_, name)| !known.contains(name))
        .collect::<Vec<_>>();
    if unknown.is_empty() {
        // Most issues: no field beyond the reader's own, and no need to read the layout.
        return Vec::new();
    }
    known.extend(layout_fields(layout));
    known.sort();
    known.dedup();
    let mut out = Vec::new();
    for (path, name) in unknown {
        if known.contains(&name) {
            continue;
        }
        let hint = match closest(&name, &known) {
            Some(near) => format!("; did you mean {near}?"),
            None => String::new(),
        };
        out.push(loaded.problem(
            &path,
            format!(
                "the merge field {{{{subscriber.{name}}}}} is not a field readers have, so it \
                 would be written empty (known fields: {}){hint}",
                known.join(", ")
            ),
        ));
    }
    out
}

/// Each `{{subscriber.…}}` field of the issue's texts, with where it is, in order.
fn subscriber_fields(loaded: &LoadedIssue) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, text) in super::texts(loaded) {
        let Ok(pieces) = crate::merge::scan(&text) else {
            continue;
        };
        for piece in pieces {
            if let Piece::Field(field) = piece
                && let FieldKey::Subscriber(name) = field.key
            {
                out.push((path.clone(), name));
            }
        }
    }
    out
}

/// Whether the issue may use a reader field not in `known`, read from its file as written and
/// from its body files, without the JSON paths that [`subscriber_fields`] finds for a
/// warning: reading the JSON again for them was a twentieth of a whole `bulletin render`,
/// which warns of an unknown field after every render (callgrind), and most issues have none.
/// A field's fallback is read with its quotes unescaped (`| default: \"friend\"`); another
/// JSON escape (`\u…`), or anything not read as a field, may hide one: then it may.
fn may_use_unknown_fields(loaded: &LoadedIssue, known: &[String]) -> bool {
    let source = loaded.source();
    if source.contains("\\u") {
        return true;
    }
    let source = match source.contains("\\\"") {
        true => std::borrow::Cow::Owned(source.replace("\\\"", "\"")),
        false => std::borrow::Cow::Borrowed(source),
    };
    let source = source.as_ref();
    let body_files = super::body_files(loaded).into_iter().map(|(_, body)| body);
    std::iter::once(source).chain(body_files).any(|text| {
        let Ok(pieces) = crate::merge::scan(text) else {
            return true;
        };
        pieces.into_iter().any(|piece| {
            matches!(piece, Piece::Field(field)
                if matches!(&field.key, FieldKey::Subscriber(name) if !known.contains(name)))
        })
    })
}

/// The reader fields the layout uses itself: in its templates, its theme and its labels.
fn layout_fields(layout: &Layout) -> Vec<String> {
    let mut table = FieldTable::default();
    for template in layout.templates() {
        table.mark_template(&template.source);
    }
    let mut theme = Vec::new();
    theme_strings(&toml::Value::Table(layout.theme().clone()), &mut theme);
    for text in theme {
        table.mark_template(&text);
    }
    table
        .fields()
        .iter()
        .filter_map(|field| match &field.key {
            FieldKey::Subscriber(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every string of the theme (its labels among them).
fn theme_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(a) => a.iter().for_each(|v| theme_strings(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| theme_strings(v, out)),
        _ => {}
    }
}

/// The known name closest to `name`, when it is close enough to be a slip of the keyboard.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(name, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested() {
        let known = ["email", "first_name", "name"].map(String::from);
        assert_eq!(distance("first_nme", "first_name"), 1);
        assert_eq!(closest("first_nme", &known), Some("first_name"));
        assert_eq!(closest("city", &known), None);
    }

    #[test]
    fn links_not_read_as_links_are_found() {
        let found = bad_links("See [the programme](https://efus example/p) now.");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .starts_with("\"[the programme](https://efus example/p)\" is not read as a link"),
            "{found:?}"
        );
        let found = bad_links("![A chart](images/my chart.png)");
        assert!(found[0].contains("is not read as an image"), "{found:?}");
    }

    #[test]
    fn good_links_and_plain_brackets_are_left_alone() {
        assert!(bad_links("[a](https://example.org/a) and ![b](images/b.png)").is_empty());
        assert!(bad_links("A note [1] (see below) and `[x](y z)`.").is_empty());
        assert!(bad_links("[top](#top) [mail](mailto:a@example.org)").is_empty());
    }

    #[test]
    fn urls_that_do_not_parse_are_found() {
        let found = bad_links("[a](http://exa mple.org) [b](https://[::1)");
        assert!(!found.is_empty(), "{found:?}");
        assert!(!bad_links("[c](htps//example.org)").is_empty());
        // An autolink has no bracket: the angle bracket alone must send the text to the parser.
        let found = bad_links("Files at <ftp://example.org/files> today.");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("the scheme \"ftp\""), "{found:?}");
    }
}
