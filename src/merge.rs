//! Merge fields: the per-recipient parts of an email (`{{subscriber.first_name}}`,
//! `{{unsubscribe_url}}`) and the prepared templates that carry them.
//!
//! Rendering an issue (Handlebars, Markdown, MJML) is costly and happens once. Merge fields
//! therefore travel through it as inert markers, and the compiled HTML and text are then cut
//! into a [`Prepared`] template: literal text with holes. Each hole knows how its value must
//! be escaped where it landed (HTML text, a URL inside an attribute, plain text), so filling
//! it for one recipient is string concatenation, never a second render.
//!
//! Syntax, the same in issue text and in layout templates:
//! `{{subscriber.FIELD}}`, `{{subscriber.FIELD | default: "fallback"}}`, `{{unsubscribe_url}}`.
//!
//! This module knows nothing of issues, layouts or subscribers' storage.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Text written by a person that may contain merge fields; checked when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct MergeText(String);

impl MergeText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MergeText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        scan(&s).map_err(|e| e.to_string())?;
        Ok(MergeText(s))
    }
}

impl From<MergeText> for String {
    fn from(t: MergeText) -> String {
        t.0
    }
}

impl fmt::Display for MergeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a merge field stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldKey {
    /// A column of the subscriber list: `first_name`, `email`, `language`…
    Subscriber(String),
    /// The recipient's own unsubscribe link.
    UnsubscribeUrl,
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKey::Subscriber(name) => write!(f, "subscriber.{name}"),
            FieldKey::UnsubscribeUrl => f.write_str("unsubscribe_url"),
        }
    }
}

/// One merge field as written: its key and the text to use when the value is empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MergeField {
    pub key: FieldKey,
    pub fallback: Option<String>,
}

/// A merge field that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{message} in \"{{{{{token}}}}}\"; write {{{{subscriber.first_name}}}}, {{{{subscriber.first_name | default: \"friend\"}}}} or {{{{unsubscribe_url}}}}"
)]
pub struct MergeError {
    pub token: String,
    pub message: String,
}

/// Text cut at its merge fields.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Field(MergeField),
}

/// Cuts issue text at its merge fields. Any `{{…}}` in issue text must be a merge field.
pub fn scan(text: &str) -> Result<Vec<Piece<'_>>, MergeError> {
    cut(text, true)
}

/// The same text with every merge field removed: for validating the rest (e.g. a URL).
pub fn blank_fields(text: &str) -> String {
    match scan(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_string(),
                Piece::Field(_) => "x".to_string(),
            })
            .collect(),
        Err(_) => text.to_string(),
    }
}

/// Issue text as it reads with no reader's values: each merge field written as its fallback,
/// or left out. For texts that leave the email and are never filled per reader (calendar
/// entries), which must not carry `{{…}}`. Text that cannot be read (it was checked when the
/// issue was parsed) loses its braces rather than keep a half field.
pub fn with_fallbacks(text: &str) -> String {
    match scan(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_string(),
                Piece::Field(f) => f.fallback.unwrap_or_default(),
            })
            .collect(),
        Err(_) => text.replace("{{", "").replace("}}", ""),
    }
}

/// `text` cut into literal text and merge fields. `strict` is for a person's text, where
/// every `{{…}}` must be a field; otherwise it is a layout's template, where any other
/// `{{…}}` is Handlebars and stays, and a Handlebars comment is passed over whole: what it
/// mentions is not shown, so it is not a field the layout uses.
fn cut(text: &str, strict: bool) -> Result<Vec<Piece<'_>>, MergeError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = find_pair(rest, '{') {
        if !strict && let Some(len) = comment_len(&rest[open..]) {
            out.push(Piece::Text(&rest[..open + len]));
            rest = &rest[open + len..];
            continue;
        }
        let after = &rest[open + 2..];
        let Some(close) = find_pair(after, '}') else {
            if strict {
                return Err(MergeError {
                    token: after.chars().take(30).collect(),
                    message: "\"{{\" is not closed with \"}}\"".into(),
                });
            }
            break;
        };
        let inner = &after[..close];
        match parse_field(inner) {
            Ok(field) => {
                out.push(Piece::Text(&rest[..open]));
                out.push(Piece::Field(field));
            }
            // In a layout, `{{…}}` that is not a merge field is Handlebars: leave it.
            Err(_) if !strict => out.push(Piece::Text(&rest[..open + 2 + close + 2])),
            Err(message) => {
                return Err(MergeError {
                    token: inner.trim().to_string(),
                    message: message.to_string(),
                });
            }
        }
        rest = &after[close + 2..];
    }
    out.push(Piece::Text(rest));
    out.retain(|p| !matches!(p, Piece::Text("")));
    Ok(out)
}

/// Where `text` first has `brace` twice in a row (`{{` or `}}`). A search for the one byte
/// is a memchr, where a search for the two-byte string goes through the general substring
/// searcher: layouts are marked on every render, and are mostly plain text.
fn find_pair(text: &str, brace: char) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(brace) {
        let at = from + at;
        if text[at + 1..].starts_with(brace) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The length of the Handlebars comment `text` starts with, as Handlebars reads it:
/// `{{!-- … --}}`, or else `{{! … }}`; to the end of `text` if it is not closed (a template
/// Handlebars will refuse).
fn comment_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("{{!")?;
    if let Some(at) = body.strip_prefix("--").and_then(|long| long.find("--}}")) {
        return Some("{{!--".len() + at + "--}}".len());
    }
    Some(
        body.find("}}")
            .map_or(text.len(), |at| "{{!".len() + at + "}}".len()),
    )
}

/// Reads `subscriber.first_name | default: "friend"` (the inside of the braces), or says
/// what is wrong with it. The error is only words: a layout's every Handlebars tag comes
/// here, and is left alone without building one.
fn parse_field(inner: &str) -> Result<MergeField, &'static str> {
    let (name, filter) = match inner.split_once('|') {
        Some((n, f)) => (n.trim(), Some(f.trim())),
        None => (inner.trim(), None),
    };
    let key = if name == "unsubscribe_url" {
        FieldKey::UnsubscribeUrl
    } else if let Some(field) = name.strip_prefix("subscriber.") {
        let valid = !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err("a subscriber field is letters, digits and _");
        }
        FieldKey::Subscriber(field.to_ascii_lowercase())
    } else {
        return Err("unknown merge field");
    };
    let fallback = match filter {
        None => None,
        Some(f) => {
            let value = f
                .strip_prefix("default:")
                .map(str::trim)
                .and_then(|v| v.strip_prefix('"'))
                .and_then(|v| v.strip_suffix('"'))
                .ok_or("the fallback is written | default: \"text\"")?;
            Some(value.to_string())
        }
    };
    Ok(MergeField { key, fallback })
}

/// The merge fields met while rendering one issue, each replaced in the text by a marker
/// that survives Markdown, Handlebars escaping and MJML unchanged.
#[derive(Debug, Default, Clone)]
pub struct FieldTable {
    fields: Vec<MergeField>,
}

const MARK_OPEN: &str = "xQbltn";
const MARK_CLOSE: &str = "Qx";

/// The marker of `{{unsubscribe_url}}` in a table made by [`FieldTable::unsubscribe_first`]:
/// the same for every issue. `build.rs` marks the built-in footer's link with it.
pub const UNSUBSCRIBE_MARKER: &str = "xQbltn0Qx";

impl FieldTable {
    /// A table whose first field is `{{unsubscribe_url}}`, used or not, so that a template
    /// whose only merge field it is (the built-in footer) is marked the same for every issue:
    /// the same text, which `build.rs` parsed once ([`crate::render`]). Otherwise its number
    /// would follow the fields the issue's own text used before it.
    pub fn unsubscribe_first() -> FieldTable {
        FieldTable {
            fields: vec![MergeField {
                key: FieldKey::UnsubscribeUrl,
                fallback: None,
            }],
        }
    }

    /// Issue text with its merge fields replaced by markers. The text was checked when the
    /// issue was parsed; anything unreadable is kept as written.
    pub fn mark(&mut self, text: &str) -> String {
        self.mark_pieces(cut(text, true).unwrap_or_else(|_| vec![Piece::Text(text)]))
    }

    /// Layout template source with its merge fields replaced by markers; every other `{{…}}`
    /// is Handlebars and stays.
    pub fn mark_template(&mut self, source: &str) -> String {
        // Every merge field names `subscriber.` or `unsubscribe_url`: a template that says
        // neither has none, and is not cut at each of its Handlebars tags (every template of
        // the layout, on every render).
        let names = |name: &str| memchr::memmem::find(source.as_bytes(), name.as_bytes());
        if names("subscriber.").is_none() && names("unsubscribe_url").is_none() {
            return source.to_string();
        }
        self.mark_pieces(cut(source, false).unwrap_or_else(|_| vec![Piece::Text(source)]))
    }

    fn mark_pieces(&mut self, pieces: Vec<Piece<'_>>) -> String {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => {
                    let index = match self.fields.iter().position(|x| *x == f) {
                        Some(i) => i,
                        None => {
                            self.fields.push(f);
                            self.fields.len() - 1
                        }
                    };
                    out.push_str(&format!("{MARK_OPEN}{index}{MARK_CLOSE}"));
                }
            }
        }
        out
    }

    pub fn fields(&self) -> &[MergeField] {
        &self.fields
    }
}

/// Applies `f` to the text between merge-field markers, leaving the markers as they are (an
/// upper-cased marker would no longer be found).
pub fn map_outside_fields(marked: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(marked.len());
    let mut rest = marked;
    while let Some(open) = rest.find(MARK_OPEN) {
        let after = &rest[open + MARK_OPEN.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || !after[digits..].starts_with(MARK_CLOSE) {
            out.push_str(&f(&rest[..open + MARK_OPEN.len()]));
            rest = after;
            continue;
        }
        out.push_str(&f(&rest[..open]));
        let end = open + MARK_OPEN.len() + digits + MARK_CLOSE.len();
        out.push_str(&rest[open..end]);
        rest = &rest[end..];
    }
    out.push_str(&f(rest));
    out
}

/// How a value is escaped where its field landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML text or a quoted attribute value.
    Html,
    /// Inside a URL in an attribute (after its start): percent-encoded, then HTML-escaped.
    UrlComponent,
    /// Plain text: the text part, a header.
    None,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Text of the document, by where it is in it.
    Text(Range<usize>),
    Field {
        index: usize,
        escape: Escape,
    },
}

/// A rendered document with holes for merge fields, ready to be filled per recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The document as marked, which the text segments are read from: it is kept whole
    /// rather than copied piece by piece (an email is about 100 KB).
    document: String,
    segments: Vec<Segment>,
    fields: Vec<MergeField>,
}

/// Where `s` has a marker of one of `table`'s fields, each with its field as a segment, in
/// order; anything else that looks like a marker is text.
fn holes(
    s: &str,
    table: &FieldTable,
    context: impl Fn(&str, usize) -> Escape,
) -> Vec<(Range<usize>, Segment)> {
    // memchr's search rather than `str::find`'s: this goes through the whole email.
    let markers = memchr::memmem::Finder::new(MARK_OPEN);
    let mut found_holes = Vec::new();
    let mut search = 0;
    while let Some(found) = markers.find(&s.as_bytes()[search..]) {
        let start = search + found;
        let digits_at = start + MARK_OPEN.len();
        let digits = s[digits_at..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = digits_at + digits;
        match s[digits_at..end].parse::<usize>() {
            Ok(index) if s[end..].starts_with(MARK_CLOSE) && index < table.fields.len() => {
                let after = end + MARK_CLOSE.len();
                let field = Segment::Field {
                    index,
                    escape: context(s, start),
                };
                found_holes.push((start..after, field));
                search = after;
            }
            _ => search = digits_at,
        }
    }
    found_holes
}

impl Prepared {
    /// Cuts compiled HTML at its markers, choosing each hole's escaping from where it stands.
    /// The document is kept, not copied, when it is given rather than lent.
    pub fn html(html: impl Into<String>, table: &FieldTable) -> Self {
        Self::cut_marked(html.into(), table, html_context)
    }

    /// Cuts plain text at its markers; values go in as they are.
    pub fn text(text: impl Into<String>, table: &FieldTable) -> Self {
        Self::cut_marked(text.into(), table, |_, _| Escape::None)
    }

    fn cut_marked(
        document: String,
        table: &FieldTable,
        context: impl Fn(&str, usize) -> Escape,
    ) -> Self {
        let mut segments = Vec::new();
        let mut last = 0;
        for (range, field) in holes(&document, table, context) {
            if range.start > last {
                segments.push(Segment::Text(last..range.start));
            }
            segments.push(field);
            last = range.end;
        }
        if last < document.len() {
            segments.push(Segment::Text(last..document.len()));
        }
        Prepared {
            document,
            segments,
            fields: table.fields.clone(),
        }
    }

    /// The document's text at `range`.
    fn text_at(&self, range: &Range<usize>) -> &str {
        &self.document[range.clone()]
    }

    /// Field `index`'s value for one recipient, or its fallback when the value is empty.
    fn value<'v>(&'v self, index: usize, values: &'v impl MergeValues) -> &'v str {
        let field = &self.fields[index];
        values
            .value(&field.key)
            .filter(|v| !v.trim().is_empty())
            .or(field.fallback.as_deref())
            .unwrap_or("")
    }

    /// The document for one recipient: each field's value (or its fallback when the value is
    /// empty) escaped for where it stands.
    pub fn fill(&self, values: &impl MergeValues) -> String {
        let mut out = String::with_capacity(self.len_hint());
        for seg in &self.segments {
            match seg {
                Segment::Text(range) => out.push_str(self.text_at(range)),
                Segment::Field { index, escape } => {
                    push_escaped(&mut out, self.value(*index, values), *escape);
                }
            }
        }
        out
    }

    /// The same document as [`Prepared::fill`] in pieces, in order: each literal as it is in
    /// the document, and each value (escaped for where it stands, as `fill` writes it) written
    /// into `out` — so that work done once per issue on the literal text is not done again
    /// per recipient, and the literal text is not copied for them (quoted-printable,
    /// [`crate::message`]).
    pub fn fill_spans<'d>(&'d self, values: &impl MergeValues, out: &mut String) -> Vec<Span<'d>> {
        let mut spans = Vec::with_capacity(self.segments.len());
        let mut literal = 0;
        for seg in &self.segments {
            match seg {
                Segment::Text(range) => {
                    spans.push(Span::Literal(literal, self.text_at(range)));
                    literal += 1;
                }
                Segment::Field { index, escape } => {
                    let start = out.len();
                    push_escaped(out, self.value(*index, values), *escape);
                    spans.push(Span::Value(start..out.len()));
                }
            }
        }
        spans
    }

    /// The literal text between the holes, in order: what [`Span::Literal`] numbers.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Text(range) => Some(self.text_at(range)),
            Segment::Field { .. } => None,
        })
    }

    /// The document in a provider's template language: each hole written as `token(n)`,
    /// where `n` numbers a distinct field-and-escaping in `slots` (new ones are added), so
    /// that the provider fills it with [`Slots::values`] of each recipient.
    pub fn with_tokens(&self, slots: &mut Slots, token: &impl Fn(usize) -> String) -> String {
        let mut out = String::with_capacity(self.len_hint());
        for seg in &self.segments {
            match seg {
                Segment::Text(range) => out.push_str(self.text_at(range)),
                Segment::Field { index, escape } => {
                    let n = slots.number(&self.fields[*index], *escape);
                    out.push_str(&token(n));
                }
            }
        }
        out
    }

    /// The distinct merge fields this document uses.
    pub fn fields(&self) -> impl Iterator<Item = &MergeField> {
        let mut used: Vec<usize> = self
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Field { index, .. } => Some(*index),
                Segment::Text(_) => None,
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter().map(|i| &self.fields[i])
    }

    /// True when the document has a hole for `key`.
    pub fn uses(&self, key: &FieldKey) -> bool {
        self.fields().any(|f| f.key == *key)
    }

    fn len_hint(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Text(range) => range.len(),
                Segment::Field { .. } => 32,
            })
            .sum()
    }
}

/// A piece of a document filled by [`Prepared::fill_spans`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span<'d> {
    /// The `n`th literal of [`Prepared::literals`], and its text.
    Literal(usize, &'d str),
    /// A recipient's value, escaped: where `fill_spans` wrote it, in bytes.
    Value(std::ops::Range<usize>),
}

/// The holes of documents written with [`Prepared::with_tokens`]: each a merge field and
/// how its value is escaped where it stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slots(Vec<(MergeField, Escape)>);

impl Slots {
    fn number(&mut self, field: &MergeField, escape: Escape) -> usize {
        match self.0.iter().position(|(f, e)| f == field && *e == escape) {
            Some(n) => n,
            None => {
                self.0.push((field.clone(), escape));
                self.0.len() - 1
            }
        }
    }

    /// One recipient's value for each slot, in slot order, escaped as the slot needs.
    pub fn values(&self, values: &impl MergeValues) -> Vec<String> {
        self.0
            .iter()
            .map(|(field, escape)| {
                let value = values
                    .value(&field.key)
                    .filter(|v| !v.trim().is_empty())
                    .or(field.fallback.as_deref())
                    .unwrap_or("");
                let mut out = String::with_capacity(value.len());
                push_escaped(&mut out, value, *escape);
                out
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where merge values come from: a subscriber list row, or sample values for a preview.
pub trait MergeValues {
    fn value(&self, key: &FieldKey) -> Option<&str>;
}

/// Values that leave every merge field empty (or at its fallback): what an issue says on its
/// own, before any reader.
pub struct NoValues;

impl MergeValues for NoValues {
    fn value(&self, _: &FieldKey) -> Option<&str> {
        None
    }
}

/// A reader's values: their columns and their own unsubscribe link. The one type that fills
/// an issue for somebody, be it a subscriber of the list (a send), a reader picked in the
/// preview, or the sample reader that `render` and `preview` show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recipient {
    /// The list's columns by their (lower-case) header: `email`, `first_name`, `name`…
    pub fields: BTreeMap<String, String>,
    /// Their own unsubscribe link; `None` leaves `{{unsubscribe_url}}` empty.
    pub unsubscribe_url: Option<String>,
}

impl Recipient {
    /// What `render` and `preview` show in place of a real subscriber.
    pub fn sample() -> Self {
        let fields = [
            ("email", "alex.morgan@example.org"),
            ("first_name", "Alex"),
            ("name", "Alex Morgan"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Recipient {
            fields,
            unsubscribe_url: Some("https://example.org/unsubscribe?token=SAMPLE".into()),
        }
    }
}

impl MergeValues for Recipient {
    fn value(&self, key: &FieldKey) -> Option<&str> {
        match key {
            FieldKey::Subscriber(name) => self.fields.get(name).map(String::as_str),
            FieldKey::UnsubscribeUrl => self.unsubscribe_url.as_deref(),
        }
    }
}

/// Decides how a field at byte `pos` of `html` must be escaped: inside the value of an
/// `href`/`src` attribute, after the URL's start, it is part of a URL; anywhere else it is
/// HTML text or a whole attribute value.
fn html_context(html: &str, pos: usize) -> Escape {
    let before = &html[..pos];
    let in_tag = match (before.rfind('<'), before.rfind('>')) {
        (Some(lt), Some(gt)) => lt > gt,
        (Some(_), None) => true,
        _ => false,
    };
    if !in_tag {
        return Escape::Html;
    }
    let tag = &before[before.rfind('<').unwrap_or(0)..];
    let Some(eq) = tag.rfind("=\"").or_else(|| tag.rfind("='")) else {
        return Escape::Html;
    };
    let name: String = tag[..eq]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let value_so_far = &tag[eq + 2..];
    let url_attr = matches!(
        name.to_ascii_lowercase().as_str(),
        "href" | "src" | "action"
    );
    if url_attr && !value_so_far.is_empty() {
        Escape::UrlComponent
    } else {
        Escape::Html
    }
}

/// What a value inside a URL keeps as it is: RFC 3986's unreserved characters. A space is
/// `%20`, which reads right in a path, a query and a `mailto:` alike.
pub const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn push_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(value),
        Escape::Html => push_html_escaped(out, value),
        Escape::UrlComponent => {
            let encoded = percent_encoding::utf8_percent_encode(value, URL_COMPONENT).to_string();
            push_html_escaped(out, &encoded)
        }
    }
}

/// Text made safe for HTML, in element content and in quoted attributes alike.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_html_escaped(&mut out, value);
    out
}

fn push_html_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(first: &str) -> Recipient {
        let mut v = Recipient::default();
        v.fields.insert("first_name".into(), first.into());
        v.unsubscribe_url = Some("https://example.org/u?t=a&b".into());
        v
    }

    #[test]
    fn reads_fields_with_and_without_fallback() {
        let pieces =
            scan(r#"Dear {{ subscriber.first_name | default: "friend" }}, {{unsubscribe_url}}"#)
                .unwrap();
        assert_eq!(pieces.len(), 4);
        assert_eq!(
            pieces[1],
            Piece::Field(MergeField {
                key: FieldKey::Subscriber("first_name".into()),
                fallback: Some("friend".into())
            })
        );
    }

    #[test]
    fn refuses_unknown_fields_in_issue_text() {
        let e = scan("Hello {{name}}").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown merge field in \"{{name}}\""),
            "{e}"
        );
        assert!(scan("Hello {{subscriber.first_name | fallback}}").is_err());
        assert!(scan("Hello {{subscriber.first_name").is_err());
    }

    /// A document cut at its fields, owned or borrowed, fills with each field where it was
    /// and every other character kept: a field first, last, two side by side, and text that
    /// only looks like a marker (an index the table has not, no closing mark, no digits).
    #[test]
    fn a_cut_document_keeps_everything_around_its_fields() {
        let mut table = FieldTable::default();
        let marked = table.mark(
            "{{subscriber.first_name}}, é {{subscriber.first_name}}{{unsubscribe_url}} \
             xQbltn9Qx xQbltn0 xQbltnQx xQbltn{{subscriber.first_name}}",
        );
        let expected = "Ann, é Annhttps://example.org/u?t=a&b xQbltn9Qx xQbltn0 xQbltnQx xQbltnAnn";
        let v = values("Ann");
        assert_eq!(Prepared::text(&marked, &table).fill(&v), expected);
        assert_eq!(Prepared::text(marked.clone(), &table).fill(&v), expected);
        assert_eq!(Prepared::text("", &table).fill(&v), "");
        assert_eq!(
            Prepared::html(marked, &table).fill(&v),
            expected.replace('&', "&amp;")
        );
    }

    #[test]
    fn fills_html_with_escaping_by_context() {
        let mut table = FieldTable::default();
        let marked = table.mark(
            "<p>Hi {{subscriber.first_name | default: \"friend\"}}</p>\
             <a href=\"{{unsubscribe_url}}\">x</a>\
             <a href=\"https://e.org/?n={{subscriber.first_name}}\">y</a>",
        );
        let prepared = Prepared::html(&marked, &table);
        let html = prepared.fill(&values("Ann <b> & Co"));
        assert!(html.contains("<p>Hi Ann &lt;b&gt; &amp; Co</p>"), "{html}");
        assert!(
            html.contains("href=\"https://example.org/u?t=a&amp;b\""),
            "{html}"
        );
        assert!(html.contains("?n=Ann%20%3Cb%3E%20%26%20Co\""), "{html}");
        assert!(prepared.fill(&values("  ")).contains("<p>Hi friend</p>"));
    }

    #[test]
    fn a_provider_template_filled_with_slot_values_is_the_filled_document() {
        let mut table = FieldTable::default();
        let marked = table.mark(
            "<p>Hi {{subscriber.first_name | default: \"friend\"}}</p>\
             <a href=\"https://e.org/?n={{subscriber.first_name}}\">y</a>\
             <p>{{subscriber.first_name | default: \"friend\"}}</p>",
        );
        let prepared = Prepared::html(&marked, &table);
        let mut slots = Slots::default();
        let template = prepared.with_tokens(&mut slots, &|n| format!("-s{n}-"));
        // The same field twice in the same context is one slot; in a URL, another.
        assert_eq!(slots.len(), 2);
        for first in ["Ann <b> & Co", ""] {
            let v = values(first);
            let mut by_provider = template.clone();
            for (n, value) in slots.values(&v).iter().enumerate() {
                by_provider = by_provider.replace(&format!("-s{n}-"), value);
            }
            assert_eq!(by_provider, prepared.fill(&v));
        }
    }

    #[test]
    fn with_fallbacks_writes_each_field_as_its_fallback_or_nothing() {
        assert_eq!(
            with_fallbacks(
                r#"Dear {{subscriber.first_name | default: "member"}}, {{unsubscribe_url}}!"#
            ),
            "Dear member, !"
        );
        assert_eq!(with_fallbacks("Plain text"), "Plain text");
        assert_eq!(
            with_fallbacks("Broken {{subscriber.x"),
            "Broken subscriber.x"
        );
    }

    #[test]
    fn upper_case_leaves_fields_alone() {
        let mut table = FieldTable::default();
        let marked = table.mark("News for {{subscriber.first_name}}!");
        let upper = map_outside_fields(&marked, str::to_uppercase);
        let mut v = Recipient::default();
        v.fields.insert("first_name".into(), "Ana".into());
        assert_eq!(Prepared::text(&upper, &table).fill(&v), "NEWS FOR Ana!");
    }

    #[test]
    fn fields_in_a_layout_comment_are_not_fields() {
        let mut table = FieldTable::default();
        let source = "{{!-- uses {{subscriber.email}} and {{unsubscribe_url}} --}}\
                      {{! or {{subscriber.city }}{{!-- a }} b {{subscriber.name}}";
        let marked = table.mark_template(source);
        // The long comment and the short one pass whole; the last `{{!--` is not closed
        // with `--}}`, so Handlebars reads `{{!-- a }}` and then a merge field.
        assert_eq!(table.fields().len(), 1);
        assert_eq!(table.fields()[0].key, FieldKey::Subscriber("name".into()));
        assert!(marked.starts_with(
            "{{!-- uses {{subscriber.email}} and {{unsubscribe_url}} --}}{{! or {{subscriber.city }}{{!-- a }} b "
        ));
        assert!(!marked.ends_with("{{subscriber.name}}"));
    }

    #[test]
    fn layout_templates_keep_their_handlebars() {
        let mut table = FieldTable::default();
        let marked = table.mark_template("{{#each items}}{{title}}{{/each}} {{subscriber.email}}");
        assert!(marked.starts_with("{{#each items}}{{title}}{{/each}} xQbltn0Qx"));
        let text = Prepared::text(&marked, &table);
        let mut v = Recipient::default();
        v.fields.insert("email".into(), "a&b@example.org".into());
        assert!(text.fill(&v).ends_with(" a&b@example.org"));
    }
}
