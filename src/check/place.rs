//! Where a finding points, so that a writer can go there: the issue's line:column and JSON
//! path, with the section and item said in words ("the 3rd section (news, "Our projects"),
//! 1st item ("SOLIDIFY")"); for text read from a `body_file`, that Markdown file's own line
//! and column; for what the layout put in the email, the file of the layout folder that has
//! it. Never a file the user does not have: what only the built-in layout has is reported
//! about the issue (issue 13).
//!
//! This file locates and words; it decides nothing about what is wrong.

use std::path::{Path, PathBuf};

use super::Finding;
use crate::diag::line_col;
use crate::issue::{LoadedIssue, Problem};
use crate::layout::{Layout, Origin};

/// The section and item a JSON path is in, in words, from the issue's JSON (`None` for a path
/// outside the sections, or one the issue does not have).
pub fn in_words(issue: &serde_json::Value, json_path: &str) -> Option<String> {
    let rest = json_path.strip_prefix("sections[")?;
    let (si, rest) = rest.split_once(']')?;
    let si: usize = si.parse().ok()?;
    let section = issue.get("sections")?.get(si)?;
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|t| t.as_str())
            .map(short)
            .filter(|t| !t.is_empty())
    };
    let kind = text(section, "kind").unwrap_or_else(|| "no kind".into());
    let mut words = match text(section, "heading") {
        Some(h) => format!("the {} section ({kind}, \"{h}\")", ordinal(si + 1)),
        None => format!("the {} section ({kind})", ordinal(si + 1)),
    };
    for (list, noun) in [("items", "item"), ("bullets", "bullet")] {
        let Some(after) = rest.strip_prefix(&format!(".{list}[")) else {
            continue;
        };
        let Some(n) = after
            .split_once(']')
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            continue;
        };
        words.push_str(&format!(", {} {noun}", ordinal(n + 1)));
        let element = section.get(list).and_then(|l| l.get(n));
        if let Some(title) = element.and_then(|e| text(e, "title")) {
            words.push_str(&format!(" (\"{title}\")"));
        }
    }
    Some(words)
}

/// Fills in each finding's place in words, from the issue's source text, for findings about
/// the issue (or its body files) that have none yet.
pub fn explain(source: &str, findings: &mut [Finding]) {
    let Ok(issue) = serde_json::from_str::<serde_json::Value>(source) else {
        return;
    };
    for f in findings.iter_mut().filter(|f| f.place.is_none()) {
        f.place = in_words(&issue, &f.problem.json_path);
    }
}

/// "1st", "2nd", "3rd", "4th", "11th", "21st".
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A heading or title cut to a few words, for a message.
fn short(text: &str) -> String {
    const MAX: usize = 40;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX {
        return flat;
    }
    let mut out = String::new();
    for word in flat.split(' ') {
        if out.chars().count() + word.chars().count() + 1 > MAX {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    format!("{out}…")
}

/// The Markdown file and text behind a JSON path that ends in `body_file`, if it is one: the
/// file as the user reaches it, and its text as the issue holds it.
fn body_file<'a>(loaded: &'a LoadedIssue, json_path: &str) -> Option<(PathBuf, &'a str)> {
    let rest = json_path
        .strip_prefix("sections[")?
        .strip_suffix("body_file")?;
    let (si, rest) = rest.split_once(']')?;
    let section = loaded.issue.sections.get(si.parse::<usize>().ok()?)?;
    let (file, body) = match rest.strip_prefix(".items[") {
        Some(item) => {
            let (ii, _) = item.split_once(']')?;
            let item = section.items.get(ii.parse::<usize>().ok()?)?;
            (item.body_file.as_ref()?, item.body.as_ref()?)
        }
        None => (section.body_file.as_ref()?, section.body.as_ref()?),
    };
    Some((under(&loaded.dir, file), body.as_str()))
}

/// `rel` in `dir`, without a leading `./` when `dir` is the current folder.
fn under(dir: &Path, rel: &Path) -> PathBuf {
    if crate::workspace::is_current_folder(dir) {
        rel.to_path_buf()
    } else {
        dir.join(rel)
    }
}

/// A problem about the issue's `json_path`: when that is a body file, at byte `offset` of its
/// text (its line and column in the Markdown file); otherwise at the JSON value.
pub fn at_offset(
    loaded: &LoadedIssue,
    json_path: &str,
    offset: usize,
    message: impl Into<String>,
) -> Problem {
    match body_file(loaded, json_path) {
        Some((file, text)) => Problem {
            file,
            position: Some(line_col(text, offset)),
            json_path: json_path.to_string(),
            message: message.into(),
        },
        None => loaded.problem(json_path, message),
    }
}

/// A problem about the issue's `json_path`, at `needle` when that is in a body file (its
/// first occurrence), otherwise at the JSON value.
pub fn at_needle(
    loaded: &LoadedIssue,
    json_path: &str,
    needle: &str,
    message: impl Into<String>,
) -> Problem {
    let offset = body_file(loaded, json_path).and_then(|(_, text)| text.find(needle));
    match offset {
        Some(at) => at_offset(loaded, json_path, at, message),
        None => loaded.problem(json_path, message),
    }
}

/// Where the layout folder has `needle` (a URL, an image path): its theme file or a template
/// of its own, with the line and column. `None` when only the built-in layout has it.
pub fn in_layout(layout: &Layout, needle: &str) -> Option<(PathBuf, (usize, usize))> {
    let theme = layout
        .dir()
        .map(|d| d.join(crate::layout::THEME))
        .filter(|p| p.is_file());
    if let Some(theme) = theme
        && let Ok(text) = std::fs::read_to_string(&theme)
        && let Some(at) = find_outside_comments(&text, needle)
    {
        return Some((theme, line_col(&text, at)));
    }
    layout.templates().find_map(|t| match &t.origin {
        Origin::File(path) => t
            .source
            .find(needle)
            .map(|at| (path.clone(), line_col(&t.source, at))),
        Origin::Builtin => None,
    })
}

/// The first `needle` in TOML text that is not in a comment.
fn find_outside_comments(text: &str, needle: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.trim_start();
        if !code.starts_with('#')
            && let Some(at) = line.find(needle)
        {
            return Some(offset + at);
        }
        offset += line.len();
    }
    None
}

/// A problem about something in the email (`needle`: a URL, an image path): where the issue
/// has it, else where the layout folder has it, else — only the built-in layout has it — about
/// the issue file as a whole, saying so.
pub fn about_email(
    loaded: &LoadedIssue,
    layout: &Layout,
    needle: &str,
    message: String,
) -> Problem {
    let path = super::path_of(loaded, needle);
    if !path.is_empty() {
        return at_needle(loaded, &path, needle, message);
    }
    match in_layout(layout, needle) {
        Some((file, position)) => Problem {
            file,
            position: Some(position),
            json_path: String::new(),
            message,
        },
        None => Problem {
            file: loaded.path.clone(),
            position: None,
            json_path: String::new(),
            message: format!("{message} (in the built-in layout)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }

    #[test]
    fn paths_are_said_in_words() {
        let issue: serde_json::Value = serde_json::json!({"sections": [
            {"kind": "text"},
            {"kind": "news", "heading": "Our projects", "items": [{"title": "SOLIDIFY"}, {}]},
            {"kind": "about", "heading": "A heading that goes on and on far longer than any reader needs", "bullets": ["a"]}
        ]});
        let said = |p: &str| in_words(&issue, p);
        assert_eq!(said("sections[0].body").unwrap(), "the 1st section (text)");
        assert_eq!(
            said("sections[1].items[0].link.url").unwrap(),
            "the 2nd section (news, \"Our projects\"), 1st item (\"SOLIDIFY\")"
        );
        assert_eq!(
            said("sections[1].items[1]").unwrap(),
            "the 2nd section (news, \"Our projects\"), 2nd item"
        );
        assert_eq!(
            said("sections[2].bullets[0]").unwrap(),
            "the 3rd section (about, \"A heading that goes on and on far longer…\"), 1st bullet"
        );
        assert_eq!(said("title"), None);
        assert_eq!(said("sections[9].body"), None);
    }
}
