//! What the writer meant as markup but the email would show as text, or with a hole: Markdown
//! links and images whose URL is not one (`[x](https://efus example/p)` is not read as a
//! link at all, and its brackets go out), and merge fields that no reader has a value for
//! (`{{subscriber.first_nme}}` writes "Hi " without a word) (issue 12).
//!
//! Both are errors in `check` and warnings in `render`; this module returns them as
//! [`Problem`]s and lets the caller choose. It reads the issue and the layout, nothing else.

use pulldown_cmark::{Event, Parser, Tag};

use crate::issue::{Link, LoadedIssue, Problem};

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

/// What is wrong with the links and images of one Markdown text, in order.
fn bad_links(markdown: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
