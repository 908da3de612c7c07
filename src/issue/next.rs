//! The next issue, derived from a previous one (`bulletin new`).
//!
//! [`next_issue`] is pure: it takes an issue and the new date and slug, and returns the new
//! issue with what recurs kept (the sections, their headings and columns, the about block,
//! events and agenda entries still to come) and what is new each time replaced by "TODO"
//! placeholders, which `bulletin check` refuses to send. [`latest_in`] is the one function
//! here that reads the disk: it lists a folder and peeks at each issue's date. Nothing here
//! writes files, prints or reads the clock.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{Action, Issue, Item, Link, Section};
use crate::merge::{self, MergeText, Piece};

/// The subject line of a new issue.
pub const TITLE: &str = "TODO: subject line";
/// The preheader of a new issue.
pub const PREHEADER: &str = "TODO: one sentence shown after the subject in the inbox";
/// The body of a `text` section, after the greeting if the previous issue had one.
pub const INTRO: &str = "TODO: introduce this issue.";
/// The body of a `news` section that had an introduction of its own.
pub const SECTION_INTRO: &str = "TODO: introduce this section.";
/// The one item a `news` section starts with.
pub const NEWS_TITLE: &str = "TODO: title";
pub const NEWS_BODY: &str = "TODO: what happened, in two or three sentences.";
pub const NEWS_LINK_LABEL: &str = "Read more";
pub const NEWS_LINK_URL: &str = "https://example.org/TODO";

/// What [`next_issue`] carried over and what it dropped, for the writer to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events still to come on the new date, kept as they were.
    pub kept_events: usize,
    /// Events that start before the new date.
    pub dropped_events: usize,
    /// Agenda entries kept: undated ones and those not over by the new date.
    pub kept_agenda: usize,
    /// Agenda entries over before the new date.
    pub dropped_agenda: usize,
    /// Events and agenda sections left with no item, named by heading (or kind): the writer
    /// fills them or removes them.
    pub emptied: Vec<String>,
}

/// What can go wrong when making the next issue. What to do about it (which command, which
/// flag) is the command line's to say.
#[derive(Debug, thiserror::Error)]
pub enum NextError {
    #[error("no issue found in {}", dir.display())]
    NoIssue { dir: PathBuf },
    #[error("cannot read folder {}: {}", path.display(), crate::diag::io_reason(source))]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists; a new issue never replaces one", path.display())]
    Exists { path: PathBuf, suggestion: String },
    #[error("cannot write the new issue {} as JSON: {source}", path.display())]
    Serialize {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The issue that follows `from`, dated `date` and named `new_slug` (`from` was `old_slug`).
///
/// `from` is an issue as [`super::load`] returns it, with `body_file`s read into `body`; what
/// is kept keeps its `body_file` (the new issue lives in the same folder) and drops the copy.
pub fn next_issue(
    from: &Issue,
    date: NaiveDate,
    old_slug: &str,
    new_slug: &str,
) -> (Issue, Summary) {
    let mut summary = Summary::default();
    let mut next = from.clone();
    next.title = placeholder(TITLE);
    next.preheader = Some(placeholder(PREHEADER));
    next.date = date;
    next.web_url = from
        .web_url
        .as_ref()
        .map(|url| renamed_link(url, old_slug, new_slug));
    for section in &mut next.sections {
        match section.kind.as_str() {
            "text" => {
                let greeting = section.body.as_ref().and_then(|b| greeting(b.as_str()));
                let body = match greeting {
                    Some(g) => format!("{g}\n\n{INTRO}"),
                    None => INTRO.to_string(),
                };
                // The greeting is a line of text that was valid; should it not be valid alone
                // (a field written across lines), the plain placeholder does.
                section.body =
                    Some(MergeText::try_from(body).unwrap_or_else(|_| placeholder(INTRO)));
                section.body_file = None;
                section.body_text = None;
            }
            "news" => {
                if section.body.is_some() || section.body_file.is_some() {
                    section.body = Some(placeholder(SECTION_INTRO));
                    section.body_file = None;
                    section.body_text = None;
                }
                section.items = vec![news_placeholder()];
            }
            "events" => {
                let before = section.items.len();
                section
                    .items
                    .retain(|item| item.start.as_ref().is_none_or(|s| s.local_date() >= date));
                summary.kept_events += section.items.len();
                summary.dropped_events += before - section.items.len();
                note_emptied(section, before, &mut summary);
            }
            "agenda" => {
                let before = section.items.len();
                section.items.retain(|item| match item.date {
                    None => true,
                    Some(day) => item.until.unwrap_or(day) >= date,
                });
                summary.kept_agenda += section.items.len();
                summary.dropped_agenda += before - section.items.len();
                note_emptied(section, before, &mut summary);
            }
            // `about` recurs as it is; a kind a layout adds is kept too, for its writer to edit.
            _ => {}
        }
        unresolve_bodies(section);
    }
    (next, summary)
}

/// The issue as its file holds it: pretty JSON with a final newline.
pub fn to_json(issue: &Issue, path: &Path) -> Result<String, NextError> {
    let mut text = serde_json::to_string_pretty(issue).map_err(|source| NextError::Serialize {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    Ok(text)
}

/// The latest issue in a folder, and the files that could not be dated.
#[derive(Debug, Clone)]
pub struct Latest {
    /// The `.json` file with the greatest `date` (the greatest name among equal dates).
    pub path: PathBuf,
    /// Files skipped because their date could not be read, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Finds the issue with the greatest `date` among the `.json` files of `dir`. It reads only
/// the dates: the caller loads (and so checks) the one it picks.
pub fn latest_in(dir: &Path) -> Result<Latest, NextError> {
    #[derive(serde::Deserialize)]
    struct Dated {
        date: NaiveDate,
    }
    if !dir.is_dir() {
        return Err(NextError::NoIssue {
            dir: dir.to_path_buf(),
        });
    }
    let read_err = |source: std::io::Error| NextError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut dated = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") || !path.is_file() {
            continue;
        }
        let date = std::fs::read_to_string(&path)
            .map_err(|e| crate::diag::io_reason(&e))
            .and_then(|text| {
                serde_json::from_str::<Dated>(&text)
                    .map_err(|_| "its \"date\" cannot be read (invalid JSON or date)".to_string())
            });
        match date {
            Ok(d) => dated.push((d.date, name, path)),
            Err(reason) => skipped.push((path, reason)),
        }
    }
    skipped.sort();
    let (_, _, path) = dated.into_iter().max().ok_or_else(|| NextError::NoIssue {
        dir: dir.to_path_buf(),
    })?;
    Ok(Latest { path, skipped })
}

/// A merge text that is a constant of this module, and so known to be valid.
fn placeholder(text: &str) -> MergeText {
    MergeText::try_from(text.to_string()).expect("placeholder constants have no merge field")
}

fn news_placeholder() -> Item {
    Item {
        title: Some(placeholder(NEWS_TITLE)),
        body: Some(placeholder(NEWS_BODY)),
        link: Some(Action {
            label: placeholder(NEWS_LINK_LABEL),
            url: Link::try_from(NEWS_LINK_URL.to_string()).expect("placeholder URL is valid"),
        }),
        ..Item::default()
    }
}

/// The first line of a body if it greets the reader with a merge field ("Dear
/// {{subscriber.first_name | default: "member"}},").
fn greeting(body: &str) -> Option<&str> {
    let first = body.trim_start().lines().next()?.trim_end();
    let has_field =
        merge::scan(first).is_ok_and(|pieces| pieces.iter().any(|p| matches!(p, Piece::Field(_))));
    // A greeting is a short line; a first paragraph that happens to hold a field is not one.
    (has_field && first.chars().count() <= 100).then_some(first)
}

fn note_emptied(section: &Section, before: usize, summary: &mut Summary) {
    if before > 0 && section.items.is_empty() {
        let name = match &section.heading {
            Some(h) => format!("\"{h}\""),
            None => section.kind.clone(),
        };
        summary.emptied.push(name);
    }
}

/// Where a body came from a `body_file`, keeps the file reference only: a file holding both
/// would not load.
fn unresolve_bodies(section: &mut Section) {
    if section.body_file.is_some() {
        section.body = None;
    }
    for item in &mut section.items {
        if item.body_file.is_some() {
            item.body = None;
        }
    }
}

/// The link with the old slug replaced by the new one where it stands as a whole word
/// (`…/newsletter/2020-06` → `…/newsletter/2020-07`); unchanged if it does not appear.
fn renamed_link(url: &Link, old_slug: &str, new_slug: &str) -> Link {
    let renamed = replace_word(url.as_str(), old_slug, new_slug);
    Link::try_from(renamed).unwrap_or_else(|_| url.clone())
}

fn replace_word(text: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        return text.to_string();
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(old) {
        let before = text[..i].chars().next_back();
        let after = text[i + old.len()..].chars().next();
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(new);
        last = i + old.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn issue(json: &str) -> Issue {
        serde_json::from_str(json).unwrap()
    }

    const SAMPLE: &str = r#"{
      "title": "June",
      "preheader": "June news",
      "date": "2020-06-03",
      "web_url": "https://example.org/newsletter/2020-06",
      "sections": [
        {"kind": "text", "body": "Dear {{subscriber.first_name | default: \"member\"}},\n\nWelcome to June."},
        {"kind": "news", "heading": "Projects", "columns": 2, "items": [
          {"title": "A", "tag": "Project", "body": "a"}, {"title": "B", "body": "b"}]},
        {"kind": "events", "heading": "Events", "items": [
          {"title": "Past", "start": "2020-06-04 10:00 Europe/Paris"},
          {"title": "Same day", "start": "2020-06-20 09:00 Europe/Paris"},
          {"title": "Later", "start": "2020-06-25 11:00 Europe/Paris"}]},
        {"kind": "agenda", "items": [
          {"title": "Past day", "date": "2020-06-04"},
          {"title": "Undated"},
          {"title": "Range over", "date": "2020-06-10", "until": "2020-06-19"},
          {"title": "Range running", "date": "2020-06-10", "until": "2020-06-22"},
          {"title": "Later", "date": "2020-11-25", "until": "2020-11-27"}]},
        {"kind": "about", "heading": "About", "body": "Who we are.", "bullets": ["One"],
         "cta": {"label": "Join", "url": "https://example.org/join"}}
      ]
    }"#;

    fn titles(section: &Section) -> Vec<&str> {
        section
            .items
            .iter()
            .filter_map(|i| i.title.as_ref().map(MergeText::as_str))
            .collect()
    }

    #[test]
    fn drops_what_is_past_and_keeps_what_is_to_come() {
        let (next, summary) =
            next_issue(&issue(SAMPLE), day("2020-06-20"), "2020-06", "2020-06-20");
        assert_eq!(titles(&next.sections[2]), ["Same day", "Later"]);
        assert_eq!(
            titles(&next.sections[3]),
            ["Undated", "Range running", "Later"]
        );
        assert_eq!(
            summary,
            Summary {
                kept_events: 2,
                dropped_events: 1,
                kept_agenda: 3,
                dropped_agenda: 2,
                emptied: vec![],
            }
        );
    }

    #[test]
    fn replaces_what_is_new_each_time() {
        let from = issue(SAMPLE);
        let (next, _) = next_issue(&from, day("2020-07-01"), "2020-06", "2020-07");
        assert_eq!(next.title.as_str(), TITLE);
        assert_eq!(next.preheader.as_ref().unwrap().as_str(), PREHEADER);
        assert_eq!(next.date, day("2020-07-01"));
        assert_eq!(
            next.web_url.as_ref().unwrap().as_str(),
            "https://example.org/newsletter/2020-07"
        );
        assert_eq!(
            next.sections[0].body.as_ref().unwrap().as_str(),
            "Dear {{subscriber.first_name | default: \"member\"}},\n\nTODO: introduce this issue."
        );
        let news = &next.sections[1];
        assert_eq!(news.heading.as_ref().unwrap().as_str(), "Projects");
        assert_eq!(news.columns, 2);
        assert_eq!(news.items.len(), 1);
        assert_eq!(
            serde_json::to_value(&news.items[0]).unwrap(),
            serde_json::json!({
                "title": "TODO: title",
                "body": "TODO: what happened, in two or three sentences.",
                "link": {"label": "Read more", "url": "https://example.org/TODO"}
            })
        );
        assert_eq!(
            serde_json::to_value(&next.sections[4]).unwrap(),
            serde_json::to_value(&from.sections[4]).unwrap()
        );
        let kinds: Vec<&str> = next.sections.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["text", "news", "events", "agenda", "about"]);
    }

    #[test]
    fn a_text_without_greeting_gets_the_plain_placeholder() {
        let from = issue(
            r#"{"title": "T", "date": "2020-06-03", "sections": [
                {"kind": "text", "body": "Hello all,\n\nWelcome."}]}"#,
        );
        let (next, _) = next_issue(&from, day("2020-07-01"), "a", "b");
        assert_eq!(next.sections[0].body.as_ref().unwrap().as_str(), INTRO);
    }

    #[test]
    fn an_emptied_section_is_named() {
        let from = issue(
            r#"{"title": "T", "date": "2020-06-03", "sections": [
                {"kind": "events", "heading": "Events", "items": [
                  {"title": "Past", "start": "2020-06-04 10:00 Europe/Paris"}]},
                {"kind": "agenda", "items": []}]}"#,
        );
        let (next, summary) = next_issue(&from, day("2020-07-01"), "a", "b");
        assert!(next.sections[0].items.is_empty());
        assert_eq!(summary.emptied, ["\"Events\""]);
    }

    #[test]
    fn kept_body_files_are_kept_as_references() {
        let mut from = issue(
            r#"{"title": "T", "date": "2020-06-03", "sections": [
                {"kind": "about", "body_file": "about.md"}]}"#,
        );
        // As issue::load leaves it: the file's text read into `body`.
        from.sections[0].body = Some(placeholder("Who we are."));
        let (next, _) = next_issue(&from, day("2020-07-01"), "a", "b");
        assert!(next.sections[0].body.is_none());
        assert_eq!(
            next.sections[0].body_file.as_deref(),
            Some(Path::new("about.md"))
        );
    }

    #[test]
    fn the_slug_is_replaced_only_as_a_whole_word() {
        assert_eq!(
            replace_word("https://example.org/n/2020-06.html", "2020-06", "2020-07"),
            "https://example.org/n/2020-07.html"
        );
        assert_eq!(
            replace_word("https://example.org/n/2020-06-03", "2020-06", "2020-07"),
            "https://example.org/n/2020-06-03"
        );
        assert_eq!(
            replace_word("https://example.org/news", "news", "x"),
            "https://example.org/x"
        );
        assert_eq!(
            replace_word("https://example.org/newsletter", "news", "x"),
            "https://example.org/newsletter"
        );
    }
}
