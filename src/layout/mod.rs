//! Layouts: the templates and theme that give an issue its look.
//!
//! A layout is a folder: `email.mjml.hbs` (the MJML document), `email.txt.hbs` (the plain-text
//! part), `sections/<kind>.mjml.hbs` and `sections/<kind>.txt.hbs` (one pair per section
//! kind), any other `*.hbs` partials, `theme.toml` (colours, fonts, logo, footer) and
//! `labels.toml` (the words the layout writes itself, one table per language). The published
//! site's pages are HTML templates of the layout too ([`Layout::web_templates`]):
//! `page.html.hbs` around each issue's web edition, `archive.html.hbs` for the list of issues,
//! and any other `*.html.hbs` as their partials.
//! The default layout is compiled into the binary; a layout folder overrides it file by file,
//! and its `theme.toml` and `labels.toml` override the default ones key by key. A theme's
//! `[labels.<tag>]` tables override `labels.toml` key by key ([`Layout::labels`]), so a
//! workspace changes one word without copying the dictionary. The built-in `labels.toml` is
//! read at build time (`build.rs`) into one static table per language, so that a run builds
//! only the languages it asks for rather than parsing the whole dictionary.
//!
//! The images a layout brings (the theme's `[logo] src`, a literal `src` in a template) are
//! paths relative to the layout folder; [`Layout::images`] lists them, so that the render can
//! resolve them and `check` can say when nobody could see them in an inbox.
//!
//! This module hands out template text, theme values and those lists; it never renders and
//! decides nothing about sending.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;

use crate::issue::{CustomFields, FieldSpec, FieldType, KindFields};

#[derive(RustEmbed)]
#[folder = "layouts/default/"]
#[exclude = "*.md"]
struct DefaultLayout;

/// The default layout's `labels.toml` as `build.rs` read it.
mod builtin_labels {
    include!(concat!(env!("OUT_DIR"), "/labels.rs"));

    fn text(start: u32, end: u32) -> &'static str {
        &TEXT[start as usize..end as usize]
    }

    /// Each language's tag with its (key, word) pairs, tags and keys sorted.
    pub(super) fn languages() -> impl Iterator<Item = (&'static str, Words)> {
        LANGUAGES.iter().map(|&(start, end, first, count)| {
            let pairs = &WORDS[first as usize..(first + count) as usize];
            (text(start, end), Words(pairs))
        })
    }

    /// One language's (key, word) pairs.
    #[derive(Clone, Copy)]
    pub(super) struct Words(&'static [(u32, u32, u32, u32)]);

    impl Words {
        pub(super) fn iter(self) -> impl Iterator<Item = (&'static str, &'static str)> {
            self.0.iter().map(|&(key_start, key_end, start, end)| {
                (text(key_start, key_end), text(start, end))
            })
        }
    }
}

/// The main MJML template.
pub const EMAIL_MJML: &str = "email.mjml.hbs";
/// The main plain-text template.
pub const EMAIL_TEXT: &str = "email.txt.hbs";
/// The theme file.
pub const THEME: &str = "theme.toml";
/// The layout's words per language.
pub const LABELS: &str = "labels.toml";
/// The fields the layout's own section kinds add to sections and items.
pub const FIELDS: &str = "fields.toml";
/// The suffix of the published site's page templates (HTML + Handlebars).
pub const WEB_SUFFIX: &str = ".html.hbs";
/// The issue's page on the published site, and its print version, by the name templates call
/// it: `page.html.hbs`.
pub const PAGE: &str = "page";
/// The published site's list of issues: `archive.html.hbs`.
pub const ARCHIVE: &str = "archive";

/// Every file of the built-in default layout, by its path in the layout
/// (`sections/news.mjml.hbs`), with its bytes, sorted by path: what `bulletin init
/// --layout-copy` writes out for editing.
pub fn builtin_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = DefaultLayout::iter()
        .filter_map(|name| {
            let file = DefaultLayout::get(&name)?;
            Some((name.to_string(), file.data.into_owned()))
        })
        .collect();
    files.sort();
    files
}

/// An embedded file's text, borrowed from the binary when it is valid UTF-8 (every file
/// `layouts/default/` holds is), rather than copied at each start.
fn embedded_text(data: Cow<'static, [u8]>) -> Cow<'static, str> {
    match data {
        Cow::Borrowed(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        },
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// A template file of a layout: its name in the layout (`sections/news.mjml.hbs`), its text,
/// and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The built-in layout's text is the binary's own, borrowed; a folder's file is read.
    pub source: Cow<'static, str>,
    pub origin: Origin,
}

/// Where a layout file came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Compiled into the binary from `layouts/default/`.
    Builtin,
    /// A file of a layout folder.
    File(PathBuf),
}

impl Origin {
    /// How to name the file to a person.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Origin::Builtin => format!("{name} (built-in default layout)"),
            Origin::File(path) => path.display().to_string(),
        }
    }
}

/// Which flavour of template a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Mjml,
    Text,
}

impl Part {
    fn suffix(self) -> &'static str {
        match self {
            Part::Mjml => ".mjml.hbs",
            Part::Text => ".txt.hbs",
        }
    }
}

/// A loaded layout: default files with a folder's overrides applied.
#[derive(Debug, Clone)]
pub struct Layout {
    templates: BTreeMap<String, Template>,
    theme: toml::Table,
    /// The override folder's `labels.toml` (one table of words per language tag), laid over
    /// the built-in labels (`builtin_labels`) when a language is asked for
    /// ([`Layout::language_labels`]).
    labels: toml::Table,
    /// The override folder, if any: relative paths in the theme (the logo) start there.
    dir: Option<PathBuf>,
    /// `fields.toml`: the fields each kind adds, checked by the issue stage.
    fields: CustomFields,
}

/// What can be wrong with a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read layout folder {}: no such folder", path.display())]
    NoFolder { path: PathBuf },
    #[error("cannot read layout folder {}: {}", path.display(), crate::diag::io_reason(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid theme: {message}", file)]
    Theme {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

impl Layout {
    /// The built-in default layout.
    pub fn builtin() -> Result<Self, LayoutError> {
        let mut templates = BTreeMap::new();
        let mut theme = toml::Table::new();
        let mut fields = CustomFields::default();
        for name in DefaultLayout::iter() {
            // Read at build time into `builtin_labels`; embedded as well for `init --layout-copy`.
            if name == LABELS {
                continue;
            }
            let Some(file) = DefaultLayout::get(&name) else {
                continue;
            };
            let source = embedded_text(file.data);
            if name == THEME {
                theme = parse_theme(&source, &Origin::Builtin.describe(THEME))?;
            } else if name == FIELDS {
                let file = Origin::Builtin.describe(FIELDS);
                fields = parse_fields(&parse_theme(&source, &file)?, &file)?;
            } else if name.ends_with(".hbs") {
                templates.insert(
                    name.to_string(),
                    Template {
                        name: name.to_string(),
                        source,
                        origin: Origin::Builtin,
                    },
                );
            }
        }
        Ok(Layout {
            templates,
            theme,
            labels: toml::Table::new(),
            dir: None,
            fields,
        })
    }

    /// The layout an issue is drawn with (see [`folder_for`]), loaded.
    pub fn for_issue(
        asked: Option<&Path>,
        issue: &crate::issue::LoadedIssue,
    ) -> Result<Self, LayoutError> {
        let declared = issue.issue.layout.as_ref().map(|l| issue.dir.join(l));
        Self::load(folder_for(asked, &issue.dir, declared).as_deref())
    }

    /// The default layout with the files of `dir` laid over it.
    pub fn load(dir: Option<&Path>) -> Result<Self, LayoutError> {
        let mut layout = Self::builtin()?;
        if let Some(dir) = dir {
            layout.overlay(dir)?;
        }
        layout.check()?;
        Ok(layout)
    }

    fn overlay(&mut self, dir: &Path) -> Result<(), LayoutError> {
        let read_err = |path: &Path, source: std::io::Error| LayoutError::Read {
            path: path.to_path_buf(),
            source,
        };
        if !dir.is_dir() {
            return Err(LayoutError::NoFolder {
                path: dir.to_path_buf(),
            });
        }
        for path in files_under(dir).map_err(|e| read_err(dir, e))? {
            let Ok(rel) = path.strip_prefix(dir) else {
                continue;
            };
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if name == THEME {
                let source = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
                let over = parse_theme(&source, &path.display().to_string())?;
                merge_tables(&mut self.theme, over);
            } else if name == LABELS {
                let source = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
                let over = parse_theme(&source, &path.display().to_string())?;
                merge_tables(&mut self.labels, over);
            } else if name == FIELDS {
                let source = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
                let file = path.display().to_string();
                let over = parse_fields(&parse_theme(&source, &file)?, &file)?;
                // A folder's fields.toml declares its kinds; the built-in kinds declare none.
                self.fields.kinds.extend(over.kinds);
                self.fields.declared_in = over.declared_in;
            } else if name.ends_with(".hbs") {
                let source = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
                self.templates.insert(
                    name.clone(),
                    Template {
                        name,
                        source: Cow::Owned(source),
                        origin: Origin::File(path),
                    },
                );
            }
        }
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Every section kind must come with both its MJML and its text partial.
    fn check(&self) -> Result<(), LayoutError> {
        for main in [EMAIL_MJML, EMAIL_TEXT] {
            if !self.templates.contains_key(main) {
                return Err(LayoutError::Invalid {
                    file: main.into(),
                    message: "the layout has no such template".into(),
                });
            }
        }
        let mjml = self.kinds_for(Part::Mjml);
        let text = self.kinds_for(Part::Text);
        if let Some(kind) = mjml.iter().find(|k| !text.contains(k)) {
            return Err(LayoutError::Invalid {
                file: format!("sections/{kind}.mjml.hbs"),
                message: format!(
                    "section kind \"{kind}\" has an MJML partial but no text partial; add sections/{kind}.txt.hbs"
                ),
            });
        }
        if let Some(kind) = self.fields.kinds.keys().find(|k| !mjml.contains(k)) {
            return Err(LayoutError::Invalid {
                file: self.fields.declared_in.clone(),
                message: format!(
                    "fields are declared for the section kind \"{kind}\", which the layout does \
                     not draw; add sections/{kind}.mjml.hbs and sections/{kind}.txt.hbs"
                ),
            });
        }
        if let Some(kind) = text.iter().find(|k| !mjml.contains(k)) {
            return Err(LayoutError::Invalid {
                file: format!("sections/{kind}.txt.hbs"),
                message: format!(
                    "section kind \"{kind}\" has a text partial but no MJML partial; add sections/{kind}.mjml.hbs"
                ),
            });
        }
        Ok(())
    }

    fn kinds_for(&self, part: Part) -> Vec<String> {
        self.templates
            .keys()
            .filter_map(|name| name.strip_prefix("sections/")?.strip_suffix(part.suffix()))
            .map(str::to_string)
            .collect()
    }

    /// The section kinds this layout can draw, sorted.
    pub fn kinds(&self) -> Vec<String> {
        self.kinds_for(Part::Mjml)
    }

    /// The main template of a part.
    pub fn main(&self, part: Part) -> &Template {
        let name = match part {
            Part::Mjml => EMAIL_MJML,
            Part::Text => EMAIL_TEXT,
        };
        &self.templates[name]
    }

    /// The partials of a part, each with the name templates call it by: a section kind
    /// (`news`) for `sections/news.mjml.hbs`, the path without suffix for any other.
    pub fn partials(&self, part: Part) -> impl Iterator<Item = (String, &Template)> {
        self.templates.iter().filter_map(move |(name, t)| {
            let stem = name.strip_suffix(part.suffix())?;
            if name == EMAIL_MJML || name == EMAIL_TEXT {
                return None;
            }
            let call = stem.strip_prefix("sections/").unwrap_or(stem);
            Some((call.to_string(), t))
        })
    }

    /// The published site's page templates (`*.html.hbs`), each by the name templates call
    /// it: the file name without `.html.hbs` ([`PAGE`], [`ARCHIVE`], or a partial's name).
    pub fn web_templates(&self) -> impl Iterator<Item = (String, &Template)> {
        self.templates.iter().filter_map(|(name, t)| {
            let stem = name.strip_suffix(WEB_SUFFIX)?;
            Some((stem.to_string(), t))
        })
    }

    /// Every template file, by name.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// The fields the layout's kinds add to sections and items (`fields.toml`).
    pub fn fields(&self) -> &CustomFields {
        &self.fields
    }

    /// The theme, defaults merged with the override folder's `theme.toml`.
    pub fn theme(&self) -> &toml::Table {
        &self.theme
    }

    /// The override folder, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The theme's `[logo] src`, as written.
    pub fn logo_src(&self) -> Option<&str> {
        self.theme.get("logo")?.as_table()?.get("src")?.as_str()
    }

    /// The relative images this layout brings, as written (`logo.png`), each with where it
    /// is named: the theme's logo first, then literal images of the MJML templates.
    /// Absolute URLs are not listed: they need nothing.
    pub fn images(&self) -> Vec<LayoutImage<'_>> {
        let mut out = Vec::new();
        if let Some(src) = self.logo_src()
            && crate::issue::is_relative_reference(src)
            && !src.trim().is_empty()
        {
            out.push(LayoutImage {
                src: src.to_string(),
                named_in: NamedIn::Logo,
            });
        }
        for t in self.templates.values() {
            if !t.name.ends_with(Part::Mjml.suffix()) {
                continue;
            }
            for range in literal_images(&t.source) {
                out.push(LayoutImage {
                    src: t.source[range].to_string(),
                    named_in: NamedIn::Template(t),
                });
            }
        }
        out
    }

    /// The labels for a language: `en`, overridden by its primary language (`pt`) and then by
    /// the full tag (`pt-BR`), so a layout may translate only some of them. Each level is
    /// [`Layout::language_labels`]: `labels.toml`'s table with the theme's `[labels.<tag>]`
    /// laid over it.
    pub fn labels(&self, primary: &str, full: &str) -> toml::Table {
        let mut labels = toml::Table::new();
        let mut done: Vec<String> = Vec::new();
        for tag in ["en", primary, full] {
            let tag = tag.to_ascii_lowercase();
            if done.contains(&tag) {
                continue;
            }
            if let Some(t) = self.language_labels(&tag) {
                merge_tables(&mut labels, t);
            }
            done.push(tag);
        }
        labels
    }

    /// `labels.toml`'s table for this tag (case does not matter): the built-in one with the
    /// folder's laid over it key by key. When tags differ in case only (`pt-BR`, `PT-br`) the
    /// first in sorted order counts, and a folder's entry that is not a table gives `None`:
    /// what merging the folder's file into the whole built-in one and then looking the tag
    /// up gave, without building the tables of the other languages.
    fn file_labels(&self, tag: &str) -> Option<toml::Table> {
        let builtin = builtin_labels::languages().find(|(k, _)| k.eq_ignore_ascii_case(tag));
        let folder = self
            .labels
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(tag));
        let words = |words: builtin_labels::Words| -> toml::Table {
            words
                .iter()
                .map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string())))
                .collect()
        };
        match (builtin, folder) {
            (None, None) => None,
            (Some((_, built)), None) => Some(words(built)),
            (None, Some((_, over))) => over.as_table().cloned(),
            // The built-in tag sorts first: the folder does not have it.
            (Some((key, built)), Some((over_key, _))) if key < over_key.as_str() => {
                Some(words(built))
            }
            (Some((key, built)), Some((over_key, over))) if key == over_key.as_str() => {
                let over = over.as_table()?;
                let mut t = words(built);
                merge_tables(&mut t, over.clone());
                Some(t)
            }
            // The folder's tag sorts first; the built-in file has no table of that tag, since
            // its tags differ in more than case (build.rs checks).
            (Some(_), Some((_, over))) => over.as_table().cloned(),
        }
    }

    /// The words the layout gives for exactly this language tag (`fr`, `pt-BR`; case does
    /// not matter), `labels.toml`'s table with the theme's `[labels.<tag>]` laid over it, or
    /// `None` when neither has one.
    pub fn language_labels(&self, tag: &str) -> Option<toml::Table> {
        let find = |all: Option<&toml::Table>| -> Option<toml::Table> {
            all?.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .and_then(|(_, v)| v.as_table())
                .cloned()
        };
        let from_file = self.file_labels(tag);
        let from_theme = find(self.theme.get("labels").and_then(|l| l.as_table()));
        match (from_file, from_theme) {
            (None, None) => None,
            (Some(t), None) | (None, Some(t)) => Some(t),
            (Some(mut t), Some(over)) => {
                merge_tables(&mut t, over);
                Some(t)
            }
        }
    }
}

/// An image of the layout itself, whose path starts in the layout folder.
#[derive(Debug, Clone)]
pub struct LayoutImage<'a> {
    /// The path as written, e.g. `logo.png`.
    pub src: String,
    pub named_in: NamedIn<'a>,
}

/// Where a layout image is named.
#[derive(Debug, Clone)]
pub enum NamedIn<'a> {
    /// The theme's `[logo] src`.
    Logo,
    /// A literal `src="…"` (or `background-url="…"`) of a template.
    Template(&'a Template),
}

/// The attributes whose value is an image path, in MJML and in HTML.
const IMAGE_ATTRIBUTES: [&str; 2] = ["src=\"", "background-url=\""];

/// Where the literal, relative image paths of a template are: the values of `src="…"` and
/// `background-url="…"` that hold no Handlebars expression (`src="{{logo.src}}"` is data,
/// resolved where the data is made) and are not URLs, as byte ranges of `source`.
pub fn literal_images(source: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for attr in IMAGE_ATTRIBUTES {
        for (at, _) in source.match_indices(attr) {
            // ` src="` but not `data-src="`.
            let standalone = source[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
            let start = at + attr.len();
            let Some(len) = source[start..].find('"') else {
                continue;
            };
            let value = &source[start..start + len];
            let trimmed = value.trim();
            if standalone
                && !trimmed.is_empty()
                && !value.contains("{{")
                && !trimmed.starts_with('#')
                && crate::issue::is_relative_reference(trimmed)
            {
                out.push(start..start + len);
            }
        }
    }
    out.sort_by_key(|r| r.start);
    out
}

fn parse_theme(source: &str, file: &str) -> Result<toml::Table, LayoutError> {
    source.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| crate::diag::line_col(source, s.start))
            .unwrap_or((1, 1));
        LayoutError::Theme {
            file: file.to_string(),
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

/// Reads `fields.toml`: `[kinds.<kind>.section]` and `[kinds.<kind>.items]`, each field
/// `name = { type = "string", required = true, description = "…" }` or just
/// `name = "string"`.
fn parse_fields(table: &toml::Table, file: &str) -> Result<CustomFields, LayoutError> {
    let invalid = |message: String| LayoutError::Invalid {
        file: file.to_string(),
        message,
    };
    let types = || {
        FieldType::NAMES
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = CustomFields {
        kinds: BTreeMap::new(),
        declared_in: file.to_string(),
    };
    if let Some(key) = table.keys().find(|k| *k != "kinds") {
        return Err(invalid(format!(
            "unknown table \"{key}\"; declare fields under [kinds.<kind>.section] and \
             [kinds.<kind>.items]"
        )));
    }
    let Some(kinds) = table.get("kinds") else {
        return Ok(out);
    };
    let Some(kinds) = kinds.as_table() else {
        return Err(invalid("\"kinds\" must be a table".into()));
    };
    for (kind, levels) in kinds {
        let Some(levels) = levels.as_table() else {
            return Err(invalid(format!("kinds.{kind} must be a table")));
        };
        let mut kf = KindFields::default();
        for (level, specs) in levels {
            let at = format!("kinds.{kind}.{level}");
            let target = match level.as_str() {
                "section" => &mut kf.section,
                "items" => &mut kf.items,
                _ => {
                    return Err(invalid(format!(
                        "unknown table [{at}]; a kind has [kinds.{kind}.section] and \
                         [kinds.{kind}.items]"
                    )));
                }
            };
            let Some(specs) = specs.as_table() else {
                return Err(invalid(format!("[{at}] must be a table")));
            };
            for (name, spec) in specs {
                let at = format!("{at}.{name}");
                let reserved: &[&str] = if level == "section" {
                    &["kind", "items"]
                } else {
                    &["fields"]
                };
                let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !well_formed || reserved.contains(&name.as_str()) {
                    return Err(invalid(format!(
                        "{at}: \"{name}\" cannot name a field; use letters, digits and _, \
                         starting with a letter, and none of {reserved:?}"
                    )));
                }
                let (ty, required, description) = match spec {
                    toml::Value::String(t) => (t.as_str(), false, None),
                    toml::Value::Table(t) => {
                        if let Some(k) = t
                            .keys()
                            .find(|k| !["type", "required", "description"].contains(&k.as_str()))
                        {
                            return Err(invalid(format!(
                                "{at}: unknown key \"{k}\"; a field has type, required and \
                                 description"
                            )));
                        }
                        let ty = t.get("type").and_then(|v| v.as_str()).ok_or_else(|| {
                            invalid(format!("{at}: no type; write type = one of {}", types()))
                        })?;
                        let required = match t.get("required") {
                            None => false,
                            Some(v) => v.as_bool().ok_or_else(|| {
                                invalid(format!("{at}.required must be true or false"))
                            })?,
                        };
                        let description = t
                            .get("description")
                            .and_then(|v| v.as_str())
                            .map(str::to_string);
                        (ty, required, description)
                    }
                    _ => {
                        return Err(invalid(format!(
                            "{at}: write {{ type = \"string\", required = true }} or just \
                             \"string\""
                        )));
                    }
                };
                let ty = FieldType::parse(ty).ok_or_else(|| {
                    invalid(format!(
                        "{at}: unknown type \"{ty}\"; use one of {}",
                        types()
                    ))
                })?;
                target.insert(
                    name.clone(),
                    FieldSpec {
                        ty,
                        required,
                        description,
                    },
                );
            }
        }
        out.kinds.insert(kind.clone(), kf);
    }
    Ok(out)
}

/// Lays `over` onto `base`: tables merge key by key, anything else is replaced.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// The files below `dir`, sorted, skipping hidden files and editors' backups.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.ends_with('~') || name.starts_with('#') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The layout folder for an issue: the one asked for (`--layout`), else the issue's
/// `"layout"` (`declared`, already joined to the issue's folder `issue_dir`), else the
/// workspace's `layouts/default/`, else none (the built-in layout alone).
pub fn folder_for(
    asked: Option<&Path>,
    issue_dir: &Path,
    declared: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(dir) = asked {
        return Some(dir.to_path_buf());
    }
    if declared.is_some() {
        return declared;
    }
    workspace_layout(issue_dir)
}

/// Finds the layout folder of a workspace: the nearest `layouts/default/` above the issue's
/// folder, which `bulletin init --layout-copy` creates for editing.
pub fn workspace_layout(issue_dir: &Path) -> Option<PathBuf> {
    let start = std::path::absolute(issue_dir).ok()?;
    let found = start
        .ancestors()
        .map(|a| a.join("layouts").join("default"))
        .find(|p| p.is_dir())?;
    // Keep paths in messages short and relative when the folder is below the current one.
    let cwd = std::env::current_dir().ok();
    Some(
        match cwd.and_then(|c| found.strip_prefix(c).ok().map(Path::to_path_buf)) {
            Some(rel) => rel,
            None => found,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_layout_provides_the_documented_kinds() {
        let layout = Layout::load(None).unwrap();
        assert_eq!(
            layout.kinds(),
            ["about", "agenda", "events", "news", "text"]
        );
    }

    #[test]
    fn builtin_files_are_the_default_layout_folder() {
        let files = builtin_files();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            EMAIL_MJML,
            EMAIL_TEXT,
            THEME,
            "sections/news.mjml.hbs",
            "page.html.hbs",
            "archive.html.hbs",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let disk = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/default/theme.toml"),
        )
        .unwrap();
        assert!(files.iter().any(|(n, bytes)| n == THEME && *bytes == disk));
    }

    #[test]
    fn literal_images_are_relative_paths_without_handlebars() {
        let source = r#"<mj-image src="badge.png" /><mj-image src="{{logo.src}}" />
<mj-section background-url="img/bg.jpg"><img data-src="x.png" src="https://e.org/a.png">
<img src="cid:logo" /><mj-image src="" />"#;
        let found: Vec<&str> = literal_images(source)
            .into_iter()
            .map(|r| &source[r])
            .collect();
        assert_eq!(found, ["badge.png", "img/bg.jpg"]);
    }

    #[test]
    fn labels_come_from_labels_toml_then_the_theme_key_by_key() {
        let mut layout = Layout::load(None).unwrap();
        let fr = layout.labels("fr", "fr");
        assert_eq!(fr["unsubscribe"].as_str(), Some("Se désabonner"));
        // Keys French does not set come from English.
        assert_eq!(fr["range_separator"].as_str(), Some("–"));
        let theme: toml::Table =
            "[labels.fr]\nunsubscribe = \"Ne plus recevoir\"\n[labels.PT-br]\nonline = \"On-line\""
                .parse()
                .unwrap();
        merge_tables(&mut layout.theme, theme);
        let fr = layout.labels("fr", "fr-CA");
        assert_eq!(fr["unsubscribe"].as_str(), Some("Ne plus recevoir"));
        assert_eq!(fr["register"].as_str(), Some("S’inscrire"));
        // en, then pt, then pt-BR (whatever its case), the theme over labels.toml at each.
        let br = layout.labels("pt", "pt-BR");
        assert_eq!(br["online"].as_str(), Some("On-line"));
        assert_eq!(br["register"].as_str(), Some("Inscreva-se"));
        assert_eq!(br["unsubscribe"].as_str(), Some("Cancelar inscrição"));
        assert!(layout.language_labels("tlh").is_none());
        assert!(layout.language_labels("pt-br").is_some());
    }

    /// The whole of `labels.toml` as the TOML parser reads it.
    fn labels_toml() -> toml::Table {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/default/labels.toml");
        std::fs::read_to_string(path).unwrap().parse().unwrap()
    }

    #[test]
    fn builtin_labels_are_labels_toml_table_by_table() {
        let file = labels_toml();
        let tags: Vec<&str> = builtin_labels::languages().map(|(tag, _)| tag).collect();
        let file_tags: Vec<&str> = file.keys().map(String::as_str).collect();
        assert_eq!(tags, file_tags);
        let layout = Layout::load(None).unwrap();
        for (tag, words) in &file {
            assert_eq!(
                layout.language_labels(tag).as_ref(),
                words.as_table(),
                "[{tag}]"
            );
            let upper = tag.to_ascii_uppercase();
            assert_eq!(
                layout.language_labels(&upper).as_ref(),
                words.as_table(),
                "{upper}"
            );
        }
    }

    #[test]
    fn a_folder_labels_toml_is_laid_over_the_builtin_one_as_one_merged_file() {
        // What the layout did before it read labels.toml at build time: merge the folder's
        // file into the whole built-in one, then take the first tag equal but for case.
        let merged_then_found = |over: &toml::Table, tag: &str| -> Option<toml::Table> {
            let mut all = labels_toml();
            merge_tables(&mut all, over.clone());
            all.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .and_then(|(_, v)| v.as_table())
                .cloned()
        };
        let folders = [
            "",
            "[fr]\nunsubscribe = \"Ne plus recevoir\"\n[tlh]\nunsubscribe = \"mev\"",
            "[PT-br]\nonline = \"On-line\"\n[pt-br]\nonline = \"Em linha\"",
            "[pt-BR]\nonline = \"On-line\"\n[FR]\nregister = \"Inscription\"",
            "de = \"not a table\"\n[fr.nested]\nkey = \"value\"",
            "[Zh]\nnewsletter = \"Z\"\n[zh]\nnewsletter = \"z\"",
        ];
        for folder in folders {
            let mut layout = Layout::load(None).unwrap();
            layout.labels = folder.parse().unwrap();
            for tag in [
                "en", "fr", "FR", "pt-br", "PT-BR", "de", "zh", "ZH", "tlh", "xx",
            ] {
                assert_eq!(
                    layout.language_labels(tag),
                    merged_then_found(&layout.labels, tag),
                    "{tag} with {folder:?}"
                );
            }
        }
    }

    #[test]
    fn theme_overrides_merge_key_by_key() {
        let mut base: toml::Table = "[colors]\ntext = \"#111\"\nlink = \"#00f\""
            .parse()
            .unwrap();
        let over: toml::Table = "[colors]\nlink = \"#0a0\"".parse().unwrap();
        merge_tables(&mut base, over);
        assert_eq!(base["colors"]["text"].as_str(), Some("#111"));
        assert_eq!(base["colors"]["link"].as_str(), Some("#0a0"));
    }
}
