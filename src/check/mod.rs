//! `check`: what is wrong with an issue before it goes out, as findings with a severity, the
//! file, line:column and JSON path — like a compiler — and, for people, which section and
//! item that is in words ([`place`], which also points into body files and layout folders,
//! never at a file the user does not have).
//!
//! [`inspect`] looks at the issue, the layout's theme and the rendered email without the
//! network; [`links`] checks that every link and remote image answers. [`send_blockers`] are
//! the rules that stop a send: every one of them is an error here too, and `send` runs them
//! before it asks for confirmation, so that an issue `check` passes is one `send` sends.
//! This stage reads the other stages' results ([`Edition`]) and changes nothing; it never
//! prints (the command does) and never sends.

pub mod contrast;
pub mod html;
pub mod links;
pub mod markup;
pub mod place;
pub mod placeholders;
pub mod report;

use std::fmt;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use serde::Serialize;

use crate::edition::{Edition, EditionError};
use crate::issue::{IssueError, LoadedIssue, Problem, is_relative_reference};
use crate::layout::{Layout, NamedIn, Origin};
use crate::merge::NoValues;
use crate::render::{RenderError, Rendered};

/// Gmail clips messages whose HTML is larger than this: an error.
pub const CLIP_BYTES: usize = 102 * 1024;
/// Past this, the HTML is close to being clipped: a warning.
pub const WARN_BYTES: usize = 80 * 1024;
/// Inboxes cut longer subjects.
pub const SUBJECT_CHARS: usize = 70;
/// Remote images larger than this make the email slow to open.
pub const IMAGE_BYTES: u64 = 1024 * 1024;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub problem: Problem,
    /// Which section and item the JSON path is, in words ("the 3rd section (news, "Our
    /// projects"), 1st item ("SOLIDIFY")"), for people; the path stays, for tools.
    pub place: Option<String>,
}

impl Finding {
    pub fn error(problem: Problem) -> Self {
        Finding {
            severity: Severity::Error,
            problem,
            place: None,
        }
    }
    fn warning(problem: Problem) -> Self {
        Finding {
            severity: Severity::Warning,
            problem,
            place: None,
        }
    }

    fn new(severity: Severity, problem: Problem) -> Self {
        Finding {
            severity,
            problem,
            place: None,
        }
    }

    /// A finding about a file as a whole (a layout file, the rendered email).
    fn about(severity: Severity, file: &Path, json_path: &str, message: String) -> Self {
        Finding::new(
            severity,
            Problem {
                file: file.to_path_buf(),
                position: None,
                json_path: json_path.to_string(),
                message,
            },
        )
    }

    /// The finding as one JSON object, for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "severity": self.severity,
            "file": self.problem.file.display().to_string(),
            "line": self.problem.position.map(|p| p.0),
            "column": self.problem.position.map(|p| p.1),
            "path": self.problem.json_path,
            "where": self.place,
            "message": self.problem.message,
        })
    }
}

impl fmt::Display for Finding {
    /// `error: issue.json:9:20: sections[2].items[0].link.url, in the 3rd section (news, "Our
    /// projects"), 1st item ("SOLIDIFY"): https://… answers 404 Not Found`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let p = &self.problem;
        write!(f, "{label}: {}", p.file.display())?;
        if let Some((l, c)) = p.position {
            write!(f, ":{l}:{c}")?;
        }
        if !p.json_path.is_empty() {
            write!(f, ": {}", p.json_path)?;
            if let Some(place) = &self.place {
                write!(f, ", in {place}")?;
            }
        }
        write!(f, ": {}", p.message)
    }
}

/// A layout or template problem that stopped the render, as an error finding about the issue.
pub fn unrendered(issue: &Path, message: &str) -> Finding {
    Finding::about(Severity::Error, issue, "", message.to_string())
}

/// Problems that stop an issue from rendering, as error findings.
pub fn from_problems(problems: Vec<Problem>) -> Vec<Finding> {
    problems.into_iter().map(Finding::error).collect()
}

/// An issue that could not be prepared, as findings about `issue` (the issue file): what is
/// wrong with the issue, a template or the layout is reported like any other finding. Only
/// what is not about them (an unreadable issue file) is returned as an error.
pub fn unprepared(issue: &Path, e: EditionError) -> Result<Vec<Finding>, IssueError> {
    let mut findings = unprepared_findings(issue, e)?;
    if let Ok(source) = std::fs::read_to_string(issue) {
        place::explain(&source, &mut findings);
    }
    Ok(findings)
}

fn unprepared_findings(issue: &Path, e: EditionError) -> Result<Vec<Finding>, IssueError> {
    Ok(match e {
        EditionError::Issue(IssueError::Invalid(problems)) => from_problems(problems),
        EditionError::Issue(e) => return Err(e),
        EditionError::Layout(e) => vec![unrendered(issue, &e.to_string())],
        EditionError::Render(RenderError::Issue(problems)) => from_problems(problems),
        EditionError::Render(RenderError::Template {
            file,
            line,
            column,
            message,
        }) => vec![Finding::error(Problem {
            file: file.into(),
            position: line.zip(column),
            json_path: String::new(),
            message: format!("template error: {message}"),
        })],
        EditionError::Render(e) => vec![unrendered(issue, &e.to_string())],
    })
}

/// Everything that can be found without the network, [`send_blockers`] included.
pub fn inspect(edition: &Edition) -> Vec<Finding> {
    let Edition {
        issue: loaded,
        layout,
        rendered,
        ..
    } = edition;
    let mut out = send_blockers(edition);
    let email = rendered.fill(&crate::merge::Recipient::sample());
    check_subject(loaded, &email.subject, &mut out);
    check_placeholders(loaded, &mut out);
    let shown = format!("{}\n{}", html::unescape(&email.html), email.text);
    placeholders::check(edition, &shown, &mut out);
    check_markdown(loaded, &mut out);
    out.extend(
        markup::markdown_links(loaded)
            .into_iter()
            .map(Finding::error),
    );
    let fields = markup::merge_fields(loaded, layout, &[]);
    out.extend(fields.into_iter().map(Finding::error));
    check_labels(loaded, &mut out);
    check_sections(loaded, &mut out);
    check_dates(loaded, &mut out);
    check_language(edition, &mut out);
    check_size(loaded, email.html.len(), &mut out);
    let theme = theme_file(layout);
    html::check(loaded, layout, &email.html, &mut out);
    contrast::check(layout, &theme, &mut out);
    place::explain(loaded.source(), &mut out);
    out
}

/// What stops an edition from going out, as error findings: no unsubscribe link in the HTML
/// and the text; an image that is a file (of the issue, in its Markdown, or of the layout:
/// the theme's logo, an image in a template) while the issue has no `images_url`, so that no
/// reader could see it. `send` refuses an edition with any of these; `check` reports them.
pub fn send_blockers(edition: &Edition) -> Vec<Finding> {
    let Edition {
        issue: loaded,
        layout,
        rendered,
        ..
    } = edition;
    let mut out = Vec::new();
    if !rendered.has_unsubscribe_link() {
        out.push(Finding::about(
            Severity::Error,
            &layout_file(layout, "footer.mjml.hbs"),
            "",
            "the email has no unsubscribe link: put {{unsubscribe_url}} in the layout's HTML and text \
             footers (footer.mjml.hbs, footer.txt.hbs)"
                .into(),
        ));
    }
    if loaded.issue.images_url.is_none() {
        issue_files(loaded, &mut out);
        layout_files(layout, rendered, &mut out);
    }
    place::explain(loaded.source(), &mut out);
    out
}

/// What to do about an image file nobody could see in an inbox.
const PUBLISH: &str = "publish the images and set \"images_url\" in the issue to where they are: \
     each image's address is then images_url followed by its path here";

/// The issue's images that are files next to it: items' images and images in Markdown.
fn issue_files(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    let message = |src: &str| {
        format!(
            "the image {src} is a file next to the issue, which readers cannot see in an email: {PUBLISH}"
        )
    };
    for (si, s) in loaded.issue.sections.iter().enumerate() {
        for (ii, item) in s.items.iter().enumerate() {
            if let Some(image) = &item.image
                && is_relative_reference(&image.src)
            {
                let path = format!("sections[{si}].items[{ii}].image.src");
                out.push(Finding::error(loaded.problem(&path, message(&image.src))));
            }
        }
    }
    for (path, markdown) in bodies(loaded) {
        for (event, range) in Parser::new(markdown).into_offset_iter() {
            if let Event::Start(Tag::Image { dest_url, .. }) = event
                && !dest_url.trim().is_empty()
                && !dest_url.starts_with('#')
                && is_relative_reference(&dest_url)
            {
                let problem = place::at_offset(loaded, &path, range.start, message(&dest_url));
                out.push(Finding::error(problem));
            }
        }
    }
}

/// The layout's own images (the theme's logo, images in templates) that are files in the
/// layout folder, when the email shows them.
fn layout_files(layout: &Layout, rendered: &Rendered, out: &mut Vec<Finding>) {
    let shown = html::unescape(&own_html(rendered));
    for image in layout.images() {
        if !shown.contains(&image.src) {
            continue;
        }
        let src = &image.src;
        let finding = match image.named_in {
            NamedIn::Logo => Finding::about(
                Severity::Error,
                &theme_file(layout),
                "logo.src",
                format!(
                    "the layout's logo {src} is a file in the layout folder, which readers cannot \
                     see in an email: publish it with the issue's images (as images_url + \"{src}\") \
                     and set \"images_url\" in the issue to where they are"
                ),
            ),
            NamedIn::Template(t) => {
                let file = match &t.origin {
                    Origin::File(path) => path.clone(),
                    Origin::Builtin => PathBuf::from(Origin::Builtin.describe(&t.name)),
                };
                Finding::about(
                    Severity::Error,
                    &file,
                    "",
                    format!(
                        "the layout's image {src} is a file in the layout folder, which readers \
                         cannot see in an email: publish it with the issue's images (as \
                         images_url + \"{src}\") and set \"images_url\" in the issue to where they are"
                    ),
                )
            }
        };
        out.push(finding);
    }
}

/// Findings in the order `check` shows them: errors first, then file by file, each by
/// position in the file.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| (f.severity, f.problem.position.unwrap_or((usize::MAX, 0)));
        (a.severity, &a.problem.file)
            .cmp(&(b.severity, &b.problem.file))
            .then(key(a).cmp(&key(b)))
    });
}

/// The theme file, for findings about the layout's own content (logo, footer links).
pub fn theme_file(layout: &Layout) -> PathBuf {
    layout_file(layout, crate::layout::THEME)
}

/// Where a layout file is, for findings: the override folder's copy if it has one.
fn layout_file(layout: &Layout, name: &str) -> PathBuf {
    match layout.dir() {
        Some(dir) if dir.join(name).is_file() => dir.join(name),
        _ => PathBuf::from(format!("{name} (built-in default layout)")),
    }
}

/// `subject` as a reader sees it (merge fields filled with sample values).
fn check_subject(loaded: &LoadedIssue, subject: &str, out: &mut Vec<Finding>) {
    let issue = &loaded.issue;
    let chars = subject.chars().count();
    if chars > SUBJECT_CHARS {
        out.push(Finding::warning(loaded.problem(
            "title",
            format!(
                "the subject is {chars} characters; inboxes cut it after about {SUBJECT_CHARS}"
            ),
        )));
    }
    let letters: Vec<char> = subject.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 4 && letters.iter().all(|c| !c.is_lowercase()) {
        out.push(Finding::warning(loaded.problem(
            "title",
            "the subject is in capitals, which reads as shouting and looks like spam to filters",
        )));
    }
    if subject.contains("!!!") {
        out.push(Finding::warning(loaded.problem(
            "title",
            "the subject has \"!!!\", which spam filters count against it",
        )));
    }
    if issue
        .preheader
        .as_ref()
        .is_none_or(|p| p.as_str().trim().is_empty())
    {
        out.push(Finding::warning(loaded.problem(
            "",
            "no preheader: inboxes will show the first words of the email after the subject; \
             add \"preheader\" with one sentence",
        )));
    }
}

/// Text the issue is written in, each with its JSON path: every string of the file, and the
/// Markdown of body files.
fn texts(loaded: &LoadedIssue) -> Vec<(String, String)> {
    let mut out = match serde_json::from_str::<serde_json::Value>(loaded.source()) {
        Ok(value) => crate::issue::json_strings(&value),
        Err(_) => Vec::new(),
    };
    out.extend(
        body_files(loaded)
            .into_iter()
            .map(|(path, body)| (path, body.to_string())),
    );
    out
}

/// The bodies read from their own files (not in the issue's JSON), each named by its
/// `body_file`.
fn body_files(loaded: &LoadedIssue) -> Vec<(String, &str)> {
    let mut out = bodies(loaded);
    out.retain(|(path, _)| path.ends_with("body_file"));
    out
}

/// The Markdown texts of the issue (bodies and bullets), each with its JSON path; a body read
/// from a file is named by its `body_file`.
fn bodies(loaded: &LoadedIssue) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (si, s) in loaded.issue.sections.iter().enumerate() {
        let sp = format!("sections[{si}]");
        if let Some(b) = &s.body {
            let at = if s.body_file.is_some() {
                "body_file"
            } else {
                "body"
            };
            out.push((format!("{sp}.{at}"), b.as_str()));
        }
        for (bi, b) in s.bullets.iter().enumerate() {
            out.push((format!("{sp}.bullets[{bi}]"), b.as_str()));
        }
        for (ii, item) in s.items.iter().enumerate() {
            if let Some(b) = &item.body {
                let at = if item.body_file.is_some() {
                    "body_file"
                } else {
                    "body"
                };
                out.push((format!("{sp}.items[{ii}].{at}"), b.as_str()));
            }
        }
    }
    out
}

/// `bulletin new` leaves "TODO" where the writer has work to do; none may go out.
fn check_placeholders(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    for (path, text) in texts(loaded) {
        if path == "$schema" {
            continue;
        }
        if let Some(at) = text.find("TODO") {
            out.push(Finding::error(place::at_offset(
                loaded,
                &path,
                at,
                format!("placeholder text left: \"{}\"", excerpt(&text, "TODO")),
            )));
        }
    }
}

/// Words before and after `needle` in an excerpt.
const WORDS_BEFORE: usize = 4;
const WORDS_AFTER: usize = 9;

/// A short piece of `text` around `needle`, in whole words of its line, with "…" where it
/// was cut.
fn excerpt(text: &str, needle: &str) -> String {
    let found = text.find(needle).unwrap_or(0);
    let line_start = text[..found].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[found..].find('\n').map_or(text.len(), |i| found + i);
    let (text, at) = (&text[line_start..line_end], found - line_start);
    // Each word with where it ends, so that the word holding `needle` can be found.
    let mut words: Vec<(&str, usize)> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        let word_start = text.len() - rest.len() + start;
        let len = rest[start..]
            .find(char::is_whitespace)
            .unwrap_or(rest.len() - start);
        words.push((&text[word_start..word_start + len], word_start + len));
        rest = &rest[start + len..];
    }
    let Some(hit) = words.iter().position(|(_, end)| *end > at) else {
        return String::new();
    };
    let from = hit.saturating_sub(WORDS_BEFORE);
    let to = (hit + WORDS_AFTER).min(words.len());
    let mut piece = words[from..to]
        .iter()
        .map(|(w, _)| *w)
        .collect::<Vec<_>>()
        .join(" ");
    if from > 0 {
        piece.insert_str(0, "… ");
    }
    if to < words.len() {
        piece.push_str(" …");
    }
    piece
}

/// Links and images inside Markdown: their URLs and words. Each finding points at the link
/// or image itself when the Markdown is a body file.
fn check_markdown(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    for (path, markdown) in bodies(loaded) {
        let mut link: Option<(String, String, usize)> = None;
        let mut image: Option<(String, String, usize)> = None;
        for (event, range) in Parser::new(markdown).into_offset_iter() {
            match event {
                Event::Start(Tag::Link { dest_url, .. }) => {
                    link = Some((dest_url.to_string(), String::new(), range.start))
                }
                Event::Start(Tag::Image { dest_url, .. }) => {
                    image = Some((dest_url.to_string(), String::new(), range.start))
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some((_, alt, _)) = image.as_mut() {
                        alt.push_str(&t);
                    } else if let Some((_, words, _)) = link.as_mut() {
                        words.push_str(&t);
                    }
                }
                Event::End(TagEnd::Link) => {
                    // Its URL is checked with the links Markdown did not read (markup).
                    if let Some((_, words, at)) = link.take() {
                        check_link_words(loaded, &path, at, &words, out);
                    }
                }
                Event::End(TagEnd::Image) => {
                    if let Some((src, alt, at)) = image.take()
                        && alt.trim().is_empty()
                    {
                        out.push(Finding::error(place::at_offset(
                            loaded,
                            &path,
                            at,
                            format!(
                                "the image {src} has no alt text: write ![what it shows]({src})"
                            ),
                        )));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Words that say nothing about where a link goes, for readers who jump from link to link.
const VAGUE_LINK_WORDS: [&str; 8] = [
    "here",
    "click here",
    "click",
    "this",
    "this link",
    "link",
    "more",
    "read this",
];

fn check_link_words(
    loaded: &LoadedIssue,
    path: &str,
    at: usize,
    words: &str,
    out: &mut Vec<Finding>,
) {
    let plain = words
        .trim()
        .trim_end_matches(['.', '!', ':', '…'])
        .to_lowercase();
    if VAGUE_LINK_WORDS.contains(&plain.as_str()) {
        out.push(Finding::warning(place::at_offset(
            loaded,
            path,
            at,
            format!(
                "the link text \"{}\" does not say where it goes; use words that do, e.g. \"the programme\"",
                words.trim()
            ),
        )));
    }
}

fn check_labels(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    for (si, s) in loaded.issue.sections.iter().enumerate() {
        if let Some(cta) = &s.cta {
            check_link_words(
                loaded,
                &format!("sections[{si}].cta.label"),
                0,
                cta.label.as_str(),
                out,
            );
        }
        for (ii, item) in s.items.iter().enumerate() {
            if let Some(link) = &item.link {
                let path = format!("sections[{si}].items[{ii}].link.label");
                check_link_words(loaded, &path, 0, link.label.as_str(), out);
            }
        }
    }
}

/// A section with nothing in it shows a lone heading, or nothing at all.
fn check_sections(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    for (si, s) in loaded.issue.sections.iter().enumerate() {
        let has_body = s
            .body
            .as_ref()
            .is_some_and(|b| !b.as_str().trim().is_empty());
        let has_bullets = s.bullets.iter().any(|b| !b.as_str().trim().is_empty());
        if has_body || has_bullets || !s.items.is_empty() || s.cta.is_some() {
            continue;
        }
        let shows = if s.heading.is_some() {
            "the email would show its heading alone"
        } else {
            "the email would show nothing of it"
        };
        out.push(Finding::warning(loaded.problem(
            &format!("sections[{si}]"),
            format!("the section is empty: {shows}; fill it or remove it"),
        )));
    }
}

/// Events that start before the issue is sent, and agenda entries out of order.
fn check_dates(loaded: &LoadedIssue, out: &mut Vec<Finding>) {
    let issue_date = loaded.issue.date;
    for (si, s) in loaded.issue.sections.iter().enumerate() {
        let mut previous: Option<(chrono::NaiveDate, usize)> = None;
        for (ii, item) in s.items.iter().enumerate() {
            if let Some(start) = &item.start {
                let day = start.instant().date_naive();
                if day < issue_date {
                    out.push(Finding::warning(loaded.problem(
                        &format!("sections[{si}].items[{ii}].start"),
                        format!(
                            "the event starts on {day}, before the issue's date ({issue_date})"
                        ),
                    )));
                }
            }
            if s.kind == "agenda"
                && let Some(date) = item.date
            {
                if let Some((before, bi)) = previous
                    && date < before
                {
                    out.push(Finding::warning(loaded.problem(
                        &format!("sections[{si}].items[{ii}].date"),
                        format!(
                            "the agenda is not in date order: {date} comes after {before} (items[{bi}])"
                        ),
                    )));
                }
                previous = Some((date, ii));
            }
        }
    }
}

/// What the render had to guess about the issue's language (no CLDR data for its dates, no
/// words for it in the layout), as warnings on its "language".
fn check_language(edition: &Edition, out: &mut Vec<Finding>) {
    for w in &edition.rendered.warnings {
        out.push(Finding::warning(
            edition.issue.problem("language", w.to_string()),
        ));
    }
}

fn check_size(loaded: &LoadedIssue, bytes: usize, out: &mut Vec<Finding>) {
    let kb = crate::diag::kilobytes;
    if bytes > CLIP_BYTES {
        out.push(Finding::about(
            Severity::Error,
            &loaded.path,
            "",
            format!(
                "the HTML is {}, over Gmail's 102 KB limit: Gmail will cut the email and hide the \
                 rest (and the unsubscribe link) behind \"View entire message\"",
                kb(bytes)
            ),
        ));
    } else if bytes > WARN_BYTES {
        out.push(Finding::about(
            Severity::Warning,
            &loaded.path,
            "",
            format!(
                "the HTML is {}, close to Gmail's 102 KB clipping limit",
                kb(bytes)
            ),
        ));
    }
}

/// The JSON path of the string in the issue that is `needle`, else of the first that contains
/// it (a URL inside Markdown), or "" when the issue does not have it (the layout does).
fn path_of(loaded: &LoadedIssue, needle: &str) -> String {
    let texts = texts(loaded);
    let exact = texts.iter().find(|(_, text)| text == needle);
    let within = || {
        texts.iter().find(|(path, text)| {
            // A base URL (images_url, web_url) is not where a longer URL comes from.
            text.contains(needle) && !path.ends_with("_url")
        })
    };
    exact
        .or_else(within)
        .map(|(p, _)| p.clone())
        .unwrap_or_default()
}

/// Counts of findings by severity.
pub fn counts(findings: &[Finding]) -> (usize, usize) {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    (errors, findings.len() - errors)
}

/// Filled with no values, so that links built from merge fields come out empty and are
/// left alone by the link checker.
pub fn own_html(rendered: &Rendered) -> String {
    rendered.html.fill(&NoValues)
}
