//! (issue, layout) → [`Rendered`]: the email's subject, HTML and plain text, compiled once per
//! issue into [`Prepared`] templates whose merge fields are filled per recipient.
//!
//! Steps: build the template data (`context`), fill the layout's MJML and text templates with
//! Handlebars, compile the MJML with mrml, tidy and wrap the text, and cut both at their merge
//! fields, all on the calling thread (see [`render`] for why). Each part's templates, when the
//! same sources come a second time in the process, are kept compiled for the renders after
//! (`COMPILED`): parsing them costs more than filling them. Pure: reads nothing from disk and
//! touches no network; the issue and the layout arrive loaded (loading them and choosing the
//! layout is [`crate::edition`]'s). Relative image paths, the issue's and the layout's, are
//! resolved for where the email is read ([`AssetBase`]). Dates are written from CLDR in the
//! issue's language (`dates`), and a right-to-left language is laid out from the right
//! (`context`). What a render had to guess (a language without CLDR data or without the
//! layout's words) comes back as [`RenderWarning`]s for the command line to print and `check`
//! to report. Decides nothing about sending: `check` says what may go out.

mod context;
mod dates;
mod markdown;
mod patterns;
mod prebuilt;
mod text;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use handlebars::{Handlebars, no_escape};
use serde_json::Value;

pub use context::AssetBase;
use context::Images;
pub use dates::{DateOptions, Dates, Fallback, When};

use crate::diag::line_col;
use crate::issue::{LoadedIssue, Problem};
use crate::layout::{Layout, Part, Template};
use crate::merge::{FieldKey, FieldTable, MergeValues, Prepared};

/// Markdown as the text part writes it: paragraphs, lists, each link as "label (URL)". For
/// the stages that need an issue's text without markup (calendar entries).
pub fn plain_text(markdown: &str) -> String {
    markdown::to_text(markdown)
}

/// Options of a render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Where relative image paths point: in an inbox (the default), or as seen from a local
    /// output.
    pub assets: AssetBase,
    /// The address of the issue's page on the published site (`[archive]` in
    /// `bulletin.toml`), beside which `publish` writes its calendar files; `None` when the
    /// workspace publishes nothing.
    pub page_url: Option<String>,
    /// The web edition (`bulletin publish`) rather than the email: templates get `web: true`
    /// and leave out what only a reader's copy has (the unsubscribe link, why the reader gets
    /// it, "View in browser", the hidden preheader).
    pub web: bool,
}

/// An issue rendered once, ready to be filled for each recipient.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: Prepared,
    /// The inbox summary shown after the subject, if the issue has one.
    pub preheader: Option<Prepared>,
    pub html: Prepared,
    pub text: Prepared,
    /// The MJML that Handlebars produced, before compilation: for debugging a layout and for
    /// comparing compilers.
    pub mjml: String,
    /// The issue's date as the layout writes it (`issue.date`: "3 June 2020", "3 juin 2020"),
    /// for lists of issues.
    pub date: String,
    /// What the render had to guess: the command line prints them, `check` reports them.
    pub warnings: Vec<RenderWarning>,
}

/// Something a render did not stop for but the writer should know: the email went out in
/// another language than the issue's, in part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderWarning {
    /// CLDR has no locale data for the issue's language: dates are written in `locale`.
    #[error(
        "no locale data for \"{language}\" in CLDR: dates and times are written as for \"{locale}\" instead"
    )]
    NoLocaleData { language: String, locale: String },
    /// The layout has no words for the issue's language: its own words stay in English.
    #[error(
        "the layout has no words for \"{language}\": \"View in browser\", \"Unsubscribe\" and the \
         other words the layout writes itself stay in English; add [labels.{language}] to the \
         layout's theme.toml (see labels.toml in the default layout for the keys)"
    )]
    NoLabels { language: String },
}

/// One recipient's copy of an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Personalised {
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: String,
}

impl Rendered {
    /// The email as one recipient reads it.
    pub fn fill(&self, values: &impl MergeValues) -> Personalised {
        Personalised {
            subject: self.subject.fill(values),
            preheader: self.preheader.as_ref().map(|p| p.fill(values)),
            html: self.html.fill(values),
            text: self.text.fill(values),
        }
    }

    /// What every reader gets, as a fingerprint (SHA-256, hex): any change to the issue or the
    /// layout that a reader would see changes it.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [&self.subject, &self.html, &self.text] {
            h.update(part.fill(&crate::merge::NoValues).as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// True when the email carries a per-recipient unsubscribe link.
    pub fn has_unsubscribe_link(&self) -> bool {
        let key = FieldKey::UnsubscribeUrl;
        self.html.uses(&key) && self.text.uses(&key)
    }
}

/// What can go wrong turning a valid issue into an email.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}", .0.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n"))]
    Issue(Vec<Problem>),
    #[error("{file}{}: template error: {message}", position(*line, *column))]
    Template {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// A date pattern of the layout's labels that cannot be written (chrono cannot read it, it
    /// asks a date for its hour, it is the C library's locale format): refused before any
    /// render, which would otherwise fail in the middle.
    #[error("theme.toml: labels.{language}.{key}: \"{pattern}\" is not a date pattern: {problem}")]
    DatePattern {
        language: String,
        key: String,
        pattern: String,
        /// What is wrong with it and what to write instead.
        problem: String,
    },
    /// CLDR's date data could not be loaded for the issue's language (it is compiled in, so
    /// this is a bug rather than bad input; the message says which piece).
    #[error("cannot write dates in \"{language}\": {message}")]
    Locale { language: String, message: String },
    #[error(
        "the layout produced invalid MJML at line {line}:{column} of the generated document: {message}{}{}",
        if excerpt.is_empty() { String::new() } else { format!("\n  | {excerpt}") },
        hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default()
    )]
    Mjml {
        line: usize,
        column: usize,
        message: String,
        excerpt: String,
        /// What to do about it, where the caller can say (the command line adds its flag).
        hint: Option<String>,
        /// The generated document, for the person debugging the layout.
        mjml: String,
    },
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// Renders an issue with a layout, both parts on the calling thread: drawing the text part on
/// a second thread (and freeing the data there) cost more than it saved on two cores, for the
/// thread's start, its heap, waking it and the allocator's lock. One thread renders the
/// sample 8% faster as a whole `bulletin render` and 12% faster in-process (each measured in
/// turn with the other).
pub fn render(
    loaded: &LoadedIssue,
    layout: &Layout,
    opts: &RenderOptions,
) -> Result<Rendered, RenderError> {
    check_kinds(loaded, layout)?;
    let mut fields = FieldTable::unsubscribe_first();
    let images = Images {
        assets: &opts.assets,
        images_url: loaded.issue.images_url.as_ref().map(|u| u.as_str()),
    };
    let mut context = context::build(
        loaded,
        layout,
        images,
        opts.page_url.as_deref(),
        opts.web,
        &mut fields,
    )?;
    let data = handlebars::Context::from(serde_json::to_value(&context).unwrap_or(Value::Null));
    // The typed view is freed as soon as its JSON copy is made, so that the templates read
    // next take its memory rather than fresh pages.
    let (date, warnings) = (context.date(), std::mem::take(&mut context.warnings));
    drop(context);
    let language = loaded.issue.language.as_str();
    let mjml_sources = Sources::new(layout, Part::Mjml, images, language, &mut fields);
    let text_sources = Sources::new(layout, Part::Text, images, language, &mut fields);
    let mjml = Templates::get(mjml_sources)?.render(&data)?;
    let text = Templates::get(text_sources).and_then(|t| t.render(&data));
    let text = text.map(|text| text::tidy(&text));
    // Both parts filled and the data freed before mrml runs, so that its document tree reuses
    // that memory instead of touching fresh pages, each a page fault: a whole `bulletin
    // render` of the sample went from 660 faults to 600, and 4% less time.
    drop(data);
    // The HTML part's problems first: a broken one is what is reported.
    let html = compile_mjml(&mjml)?;
    let text = text?;
    let subject = fields.mark(loaded.issue.title.as_str());
    let preheader = loaded
        .issue
        .preheader
        .as_ref()
        .map(|p| fields.mark(p.as_str()));

    Ok(Rendered {
        subject: Prepared::text(subject, &fields),
        preheader: preheader.map(|p| Prepared::text(p, &fields)),
        html: Prepared::html(html, &fields),
        text: Prepared::text(text, &fields),
        mjml,
        date,
        warnings,
    })
}

/// Every section's kind must be one the layout can draw.
fn check_kinds(loaded: &LoadedIssue, layout: &Layout) -> Result<(), RenderError> {
    let kinds = layout.kinds();
    let problems: Vec<Problem> = loaded
        .section_kinds()
        .filter(|(_, kind)| !kinds.iter().any(|k| k == kind))
        .map(|(path, kind)| {
            loaded.problem(
                &path,
                format!(
                    "unknown section kind \"{kind}\"; the layout provides: {}. A new kind needs \
                     sections/{kind}.mjml.hbs and sections/{kind}.txt.hbs in the layout folder",
                    kinds.join(", ")
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RenderError::Issue(problems))
    }
}

/// What one part's Handlebars registry is compiled from: the part, the issue's language (for
/// the `upper` helper), and each template by name with the file it came from and its source
/// as registered (literal images resolved, merge fields marked). Equal sources compile to the
/// same registry, so this is also the key of [`COMPILED`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sources {
    part: Part,
    language: String,
    /// (name, file, source), the main template first.
    templates: Vec<(String, String, String)>,
}

impl Sources {
    fn new(
        layout: &Layout,
        part: Part,
        images: Images<'_>,
        language: &str,
        fields: &mut FieldTable,
    ) -> Self {
        let mut mark = |name: String, t: &Template| {
            let source = match part {
                Part::Mjml => fields.mark_template(&with_layout_images(&t.source, images)),
                Part::Text => fields.mark_template(&t.source),
            };
            (name, t.origin.describe(&t.name), source)
        };
        let mut templates = vec![mark(MAIN.to_string(), layout.main(part))];
        for (name, t) in layout.partials(part) {
            templates.push(mark(name, t));
        }
        Sources {
            part,
            language: language.to_string(),
            templates,
        }
    }
}

/// The registries kept for the renders after, and the fingerprints of the sources compiled
/// once, each newest last. Parsing a layout's templates costs more than filling them
/// (Handlebars' parser), and the same layout is drawn again and again in one process:
/// `publish` draws every issue with it, `preview` redraws on each save, the bench repeats a
/// render. A registry is kept only when its sources come a second time, so that a process
/// drawing one email (`bulletin render`, `check`, `send`) frees its registries as soon as both
/// parts are filled, before mrml builds its document, which then reuses that memory: 30 fewer
/// page faults of about 620 in a whole render of the sample. A registry is reused only for
/// exactly the same [`Sources`]; a fingerprint collision would only keep one early.
static COMPILED: Mutex<Compiled> = Mutex::new(Compiled {
    kept: Vec::new(),
    seen_once: Vec::new(),
});

/// How many registries [`COMPILED`] keeps (both parts of an email and of its web edition),
/// and how many sources it remembers having compiled once.
const KEEP_COMPILED: usize = 4;

struct Compiled {
    kept: Vec<Arc<Templates>>,
    seen_once: Vec<u64>,
}

impl Compiled {
    /// The registry kept for exactly these sources.
    fn find(&self, sources: &Sources) -> Option<Arc<Templates>> {
        self.kept.iter().find(|t| t.sources == *sources).cloned()
    }

    /// Keeps `templates` when its sources were compiled once before; else notes them.
    fn note(&mut self, templates: &Arc<Templates>) {
        let fingerprint = {
            let mut hasher = std::hash::DefaultHasher::new();
            templates.sources.hash(&mut hasher);
            hasher.finish()
        };
        match self.seen_once.iter().position(|f| *f == fingerprint) {
            Some(at) => {
                self.seen_once.remove(at);
                push_newest(&mut self.kept, Arc::clone(templates));
            }
            None => push_newest(&mut self.seen_once, fingerprint),
        }
    }
}

/// `item` added to `list`, the oldest dropped beyond [`KEEP_COMPILED`].
fn push_newest<T>(list: &mut Vec<T>, item: T) {
    list.push(item);
    if list.len() > KEEP_COMPILED {
        list.remove(0);
    }
}

/// One Handlebars registry for one part of the email, knowing which file each template came
/// from so that errors can name it.
struct Templates {
    sources: Sources,
    registry: Handlebars<'static>,
    origins: BTreeMap<String, String>,
}

const MAIN: &str = "email";

impl Templates {
    /// The registry for these sources: the one kept for them, or a new one.
    fn get(sources: Sources) -> Result<Arc<Self>, RenderError> {
        // A render that panicked holding the lock left the lists whole: each change is one call.
        let compiled = || COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = compiled().find(&sources) {
            return Ok(t);
        }
        let templates = Arc::new(Self::compile(sources)?);
        compiled().note(&templates);
        Ok(templates)
    }

    /// A registry of these sources: the built-in layout's templates come parsed by build.rs
    /// and are only read; the others are parsed, in order, the first that does not parse
    /// being the error.
    fn compile(sources: Sources) -> Result<Self, RenderError> {
        let mut registry = new_registry(sources.part, &sources.language);
        for (name, file, source) in &sources.templates {
            match prebuilt::parsed(name, source) {
                Some(parsed) => registry.register_template(name, parsed),
                None => register(&mut registry, name, file, source)?,
            }
        }
        let origins = sources
            .templates
            .iter()
            .map(|(name, file, _)| (name.clone(), file.clone()))
            .collect();
        Ok(Templates {
            sources,
            registry,
            origins,
        })
    }

    fn render(&self, data: &handlebars::Context) -> Result<String, RenderError> {
        self.registry.render_with_context(MAIN, data).map_err(|e| {
            let name = e.template_name.clone().unwrap_or_else(|| MAIN.to_string());
            RenderError::Template {
                file: self.origins.get(&name).cloned().unwrap_or(name),
                line: e.line_no,
                column: e.column_no,
                message: e.reason().to_string(),
            }
        })
    }
}

/// An empty registry for one part: text is not HTML-escaped, and `upper` knows the language.
fn new_registry(part: Part, language: &str) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_prevent_indent(true);
    if part == Part::Text {
        registry.register_escape_fn(no_escape);
    }
    text::register_helpers(&mut registry, language);
    registry
}

/// Parses `source` into `registry` as `name`; an error names `file`.
fn register(
    registry: &mut Handlebars<'static>,
    name: &str,
    file: &str,
    source: &str,
) -> Result<(), RenderError> {
    registry
        .register_template_string(name, source)
        .map_err(|e| RenderError::Template {
            file: file.to_string(),
            line: e.pos().map(|p| p.0),
            column: e.pos().map(|p| p.1),
            message: template_reason(e.reason()),
        })
}

/// A template's source with its literal image paths (`<mj-image src="badge.png">`) resolved
/// as layout images, like the theme's logo.
fn with_layout_images(source: &str, images: Images<'_>) -> String {
    let mut out = String::with_capacity(source.len());
    let mut done = 0;
    for range in crate::layout::literal_images(source) {
        out.push_str(&source[done..range.start]);
        // As written, so as escaped: the prefixes and URLs put before it need no escaping.
        out.push_str(&images.layout(&source[range.clone()]));
        done = range.end;
    }
    out.push_str(&source[done..]);
    out
}

/// Handlebars' parse errors, in words a layout editor can act on.
fn template_reason(reason: &handlebars::TemplateErrorReason) -> String {
    use handlebars::TemplateErrorReason as R;
    match reason {
        R::InvalidSyntax(_) => "invalid Handlebars syntax; look for a {{#if}} or {{#each}} \
                                without its {{/if}} or {{/each}}, or braces that do not pair up"
            .to_string(),
        other => other.to_string(),
    }
}

/// MJML → HTML with mrml.
fn compile_mjml(mjml: &str) -> Result<String, RenderError> {
    let parsed = mrml::parse(mjml).map_err(|e| mjml_error(mjml, &e))?;
    parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| RenderError::Mjml {
            line: 1,
            column: 1,
            message: e.to_string(),
            excerpt: String::new(),
            hint: None,
            mjml: mjml.to_string(),
        })
}

fn mjml_error(mjml: &str, e: &mrml::prelude::parser::Error) -> RenderError {
    use mrml::prelude::parser::Error as E;
    let offset = match e {
        E::UnexpectedElement { position, .. }
        | E::UnexpectedToken { position, .. }
        | E::MissingAttribute { position, .. }
        | E::InvalidAttribute { position, .. }
        | E::InvalidFormat { position, .. }
        | E::IncludeLoaderError { position, .. } => position.start,
        _ => mjml.len(),
    };
    let (line, column) = line_col(mjml, offset);
    let excerpt = mjml
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim()
        .chars()
        .take(120)
        .collect();
    let message = match e {
        E::EndOfStream { .. } => {
            "an element is not closed: the document ends inside it".to_string()
        }
        _ => {
            let message = e.to_string();
            match message.find(" at position") {
                Some(i) => message[..i].to_string(),
                None => message,
            }
        }
    };
    RenderError::Mjml {
        line,
        column,
        message,
        excerpt,
        hint: None,
        mjml: mjml.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use handlebars::Handlebars;

    use std::sync::Arc;

    use super::{AssetBase, FieldTable, Images, Part, Sources, Templates, prebuilt};
    use crate::layout::Layout;

    /// A render with the built-in layout parses no template: each comes parsed by build.rs,
    /// the footers too, whatever merge fields the issue's text used before them.
    #[test]
    fn the_built_in_layout_is_registered_without_parsing() {
        let layout = Layout::builtin().unwrap();
        let assets = AssetBase::Sent;
        let images = Images {
            assets: &assets,
            images_url: Some("https://example.org/images/"),
        };
        let issue_texts = ["", "Dear {{subscriber.first_name | default: \"friend\"}}"];
        for text in issue_texts {
            for part in [Part::Mjml, Part::Text] {
                let mut fields = FieldTable::unsubscribe_first();
                fields.mark(text);
                let sources = Sources::new(&layout, part, images, "en", &mut fields);
                for (name, file, source) in &sources.templates {
                    assert!(
                        prebuilt::parsed(name, source).is_some(),
                        "{file} ({part:?}) would be parsed at run time after {text:?}"
                    );
                }
            }
        }
    }

    /// A process that draws the same sources again compiles them a second time, then keeps
    /// them: `preview` and `publish` reuse them from the third render on, while a process
    /// that renders once (`render`, `send`) frees them before mrml runs. Sources in a
    /// language no other test uses, so that renders on other threads do not interleave.
    #[test]
    fn templates_are_kept_when_the_same_sources_come_again() {
        let layout = Layout::builtin().unwrap();
        let assets = AssetBase::Sent;
        let images = Images {
            assets: &assets,
            images_url: None,
        };
        let sources = || {
            Sources::new(
                &layout,
                Part::Text,
                images,
                "x-kept",
                &mut FieldTable::unsubscribe_first(),
            )
        };
        let first = Templates::get(sources()).unwrap();
        let second = Templates::get(sources()).unwrap();
        let third = Templates::get(sources()).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "compiled again the second time"
        );
        assert!(Arc::ptr_eq(&second, &third), "kept from the second time");
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "the first compiled is not kept"
        );
    }

    /// Values written by a plain `{{path}}`, which the vendored copy reads in place when
    /// the path is of names only (vendor/README.md): under `each` and `with`, through a
    /// block parameter (the general way), escaped or not, numbers, and a missing value.
    #[test]
    fn plain_values_are_written_as_handlebars_writes_them() {
        let mut hb = Handlebars::new();
        hb.register_template_string(
            "t",
            "{{#each items as |it|}}{{it.name}}|{{name}}|{{{html}}}|{{html}}|{{n}}|{{missing}}|\
             {{this.name}};{{/each}}{{a.b.c}}{{#with a}}{{b.c}}{{../top}}{{/with}}{{items.1.name}}",
        )
        .unwrap();
        let data = serde_json::json!({
            "top": "T",
            "items": [
                {"name": "x", "html": "<b>", "n": 1.5},
                {"name": "y", "html": "&", "n": 2}
            ],
            "a": {"b": {"c": "<c>"}}
        });
        assert_eq!(
            hb.render("t", &data).unwrap(),
            "x|x|<b>|&lt;b&gt;|1.5||x;y|y|&|&amp;|2||y;&lt;c&gt;&lt;c&gt;Ty"
        );
    }

    /// A value is escaped as handlebars escapes it whichever way the vendored copy takes to
    /// write it (vendor/README.md): each of the seven characters, beside others of several
    /// bytes, in a value of the data, of a block's own copy, a number and a helper's text;
    /// with the default escape, `no_escape`, one of the user's own, and the default again.
    #[test]
    fn values_are_escaped_as_handlebars_escapes_them() {
        let source = "{{v}}|{{#with (lookup this \"o\")}}{{v}}{{/with}}|{{n}}|{{concat v}}|{{{v}}}";
        let data = serde_json::json!({
            "v": "é<a href=\"x\">&'`=</a>ü€",
            "o": {"v": "plain ünïcode"},
            "n": 1.5
        });
        let render = |hb: &mut Handlebars| {
            hb.register_template_string("t", source).unwrap();
            hb.register_helper(
                "concat",
                Box::new(
                    |h: &handlebars::Helper,
                     _: &Handlebars,
                     _: &handlebars::Context,
                     _: &mut handlebars::RenderContext,
                     out: &mut dyn handlebars::Output|
                     -> handlebars::HelperResult {
                        let text = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
                        out.write(&format!("[{text}]"))?;
                        Ok(())
                    },
                ),
            );
            hb.render("t", &data).unwrap()
        };
        let raw = "é<a href=\"x\">&'`=</a>ü€";
        let mut hb = Handlebars::new();
        assert_eq!(
            render(&mut hb),
            format!(
                "é&lt;a href&#x3D;&quot;x&quot;&gt;&amp;&#x27;&#x60;&#x3D;&lt;/a&gt;ü€\
                 |plain ünïcode|1.5|[{raw}]|{raw}"
            )
        );
        hb.register_escape_fn(handlebars::no_escape);
        assert_eq!(
            render(&mut hb),
            format!("{raw}|plain ünïcode|1.5|[{raw}]|{raw}")
        );
        hb.register_escape_fn(|s: &str| s.to_uppercase());
        assert_eq!(
            render(&mut hb),
            format!("{}|PLAIN ÜNÏCODE|1.5|[{raw}]|{raw}", raw.to_uppercase())
        );
        hb.register_escape_fn(handlebars::html_escape);
        let escaped = "é&lt;a href&#x3D;&quot;x&quot;&gt;&amp;&#x27;&#x60;&#x3D;&lt;/a&gt;ü€";
        assert!(render(&mut hb).starts_with(&format!("{escaped}|")));
        hb.unregister_escape_fn();
        assert!(render(&mut hb).starts_with(&format!("{escaped}|")));
        assert_eq!(handlebars::html_escape(raw), escaped);
        assert_eq!(handlebars::html_escape("nothing to do"), "nothing to do");
    }

    /// A registry with `template` as "t" and [`show_params`] as the helper `show`.
    fn with_show(template: &str) -> Handlebars<'static> {
        let mut hb = Handlebars::new();
        hb.register_helper("show", Box::new(show_params));
        hb.register_template_string("t", template).unwrap();
        hb
    }

    /// A helper that writes each parameter, and the hash parameter `k`, as its relative path
    /// and its value: what the published Handlebars' tests were printed with.
    fn show_params(
        h: &handlebars::Helper,
        _: &Handlebars,
        _: &handlebars::Context,
        _: &mut handlebars::RenderContext,
        out: &mut dyn handlebars::Output,
    ) -> handlebars::HelperResult {
        let shown = |p: &handlebars::PathAndJson| {
            format!("{}={};", p.relative_path().unwrap_or("-"), p.value())
        };
        for p in h.params() {
            out.write(&shown(p))?;
        }
        if let Some(k) = h.hash_get("k") {
            out.write(&format!("k:{}", shown(k)))?;
        }
        Ok(())
    }

    /// What a helper's parameters hold, as the published handlebars 6.4.4 gives them (the
    /// expected text was printed by it): the vendored copy reads a parameter of names only in
    /// place for every helper but `each`, `with` and `log` (vendor/README.md), which must
    /// change no value and no relative path: `if`, `unless`, a subexpression, a hash
    /// parameter, a block parameter, `../`, `@root`, `this`, `@key`, a missing value, and
    /// blocks over a value of the data or over a copy (`with (lookup …)`).
    #[test]
    fn helper_parameters_hold_what_handlebars_gives_them() {
        let hb = with_show(
            "{{#each items as |it|}}{{#if name}}[{{show name it.n k=../top}}]{{/if}}\
             {{#unless missing}}-{{/unless}}{{#if ../top}}^{{/if}}{{#if @root.top}}r{{/if}}\
             {{#if this.name}}t{{/if}}{{#each tags}}{{#if this}}{{this}}{{/if}}{{show this}}\
             {{/each}}{{#if (eq name \"y\")}}Y{{/if}}{{show missing k=name}};{{/each}}\
             {{#with a}}{{#if b.c}}{{show b.c b}}{{/if}}{{/with}}{{#with (lookup items 0)}}\
             {{#if name}}{{show name}}{{/if}}{{#each tags}}{{show this ../name}}{{/each}}\
             {{/with}}{{show items.1.name top}}{{#each a}}{{show c @key}}{{/each}}",
        );
        let data = serde_json::json!({
            "top": "T",
            "items": [
                {"name": "x", "n": 1.5, "tags": ["p", ""]},
                {"name": "y", "n": 0, "tags": []}
            ],
            "a": {"b": {"c": "<c>"}}
        });
        assert_eq!(
            hb.render("t", &data).unwrap(),
            "[name=\"x\";it.n=1.5;k:../top=\"T\";]-^rtpthis=\"p\";this=\"\";missing=null;\
             k:name=\"x\";;[name=\"y\";it.n=0;k:../top=\"T\";]-^rtYmissing=null;\
             k:name=\"y\";;b.c=\"<c>\";b={\"c\":\"<c>\"};name=\"x\";this=\"p\";\
             ../name=\"x\";this=\"\";../name=\"x\";items.1.name=\"y\";top=\"T\";\
             c=\"<c>\";@key=\"b\";"
        );
    }

    /// Paths from an outer block (`../`, `../../`) and from the root (`@root`), written and
    /// given to helpers, as the published handlebars 6.4.4 reads them (the expected text was
    /// printed by it): the vendored copy reads them in place (vendor/README.md), under
    /// `each` with and without block parameters, nested, under `with` over a value of the
    /// data and over a copy (`with (lookup …)`), missing, escaped, and past the outermost
    /// block.
    #[test]
    fn outer_and_root_paths_read_as_handlebars_reads_them() {
        let hb = with_show(
            "{{@root.name}}{{#each items as |it|}}<{{../name}}|{{name}}|{{@root.name}}\
             |{{@root.a.b.c}}|{{#each tags}}{{name}}{{../name}}{{../../name}}\
             {{@root.items.0.name}}{{../it.name}}{{#if ../n}}+{{/if}}{{#if @root.name}}\
             r{{/if}}{{show ../name @root.name ../../a.b name k=../../name}}\
             {{/each}}>{{/each}}{{#with (lookup items 0)}}{{#each tags}}[{{name}}\
             {{../name}}{{show ../name ../../name name}}{{#if ../n}}!{{/if}}\
             ]{{/each}}{{/with}}{{#with a}}{{#with b}}{{../../name}}{{../b.c}}\
             {{@root.missing}}{{../missing}}{{show ../../name ../b.c @root.a.b.c}}\
             {{/with}}{{/with}}{{../name}}",
        );
        // Every level has a `name`, so that a path read from the wrong level finds one.
        let data = serde_json::json!({
            "name": "R&",
            "items": [
                {"name": "x<", "n": 1.5, "tags": [{"name": "p"}, {"name": ""}]},
                {"name": "y", "n": 0, "tags": [{"name": "q="}]}
            ],
            "a": {"b": {"c": "<c>"}, "name": "A"}
        });
        assert_eq!(
            hb.render("t", &data).unwrap(),
            "R&amp;<R&amp;|x&lt;|R&amp;|&lt;c&gt;|px&lt;R&amp;x&lt;x&lt;+r../name=\"x<\";\
             @root.name=\"R&\";../../a.b={\"c\":\"<c>\"};name=\"p\";k:../../name=\"R&\";\
             x&lt;R&amp;x&lt;x&lt;+r../name=\"x<\";@root.name=\"R&\";../../a.b={\"c\":\"<c>\"};\
             name=\"\";k:../../name=\"R&\";><R&amp;|y|R&amp;|&lt;c&gt;|q&#x3D;\
             yR&amp;x&lt;yr../name=\"y\";@root.name=\"R&\";../../a.b={\"c\":\"<c>\"};\
             name=\"q=\";k:../../name=\"R&\";>[px&lt;../name=\"x<\";../../name=\"R&\";\
             name=\"p\";!][x&lt;../name=\"x<\";../../name=\"R&\";name=\"\";\
             !]R&amp;&lt;c&gt;../../name=\"R&\";../b.c=\"<c>\";@root.a.b.c=\"<c>\";\
             R&amp;"
        );
    }

    /// What a layout's partials see, as the published handlebars 6.4.4 shows it (the expected
    /// text was printed by it): the vendored copy reads a partial's context in place instead
    /// of from a copy (vendor/README.md), which must change nothing a layout can see: `this`,
    /// `../`, `@root`, `@index`, a partial given a value, or hash parameters, or chosen by
    /// `lookup`, inside `each` and `with`.
    #[test]
    fn partials_see_the_same_context_as_with_the_published_handlebars() {
        let mut hb = Handlebars::new();
        let templates = [
            (
                "item",
                "[{{@index}} {{name}} {{../title}} {{@root.title}} \
                 {{#each tags}}{{this}}{{@index}}{{../name}}{{/each}}]",
            ),
            ("given", "<{{name}}|{{extra}}|{{../title}}>"),
            ("k", "({{name}}:{{@index}}:{{../title}})"),
            (
                "main",
                "{{title}}{{#each items}}{{> item}}{{> given this extra=\"x\"}}\
                 {{> (lookup this \"kind\")}}{{/each}}{{> given items.[1]}}\
                 {{#with items.[0]}}{{> item}}{{/with}}{{> given}}",
            ),
        ];
        for (name, source) in templates {
            hb.register_template_string(name, source).unwrap();
        }
        let data = serde_json::json!({
            "title": "T",
            "name": "root",
            "items": [
                {"name": "a", "kind": "k", "tags": ["p", "q"]},
                {"name": "b", "kind": "k", "tags": []}
            ]
        });
        assert_eq!(
            hb.render("main", &data).unwrap(),
            "T[0 a  T p0aq1a]<a|x|>(a:0:)[1 b  T ]<b|x|>(b:1:)<b||T>[ a  T p0aq1a]<root||T>"
        );
    }

    /// Escapes, comments and raw blocks, as the published handlebars 6.4.4 renders them (the
    /// expected text was printed by it): the vendored grammar matches plain text and comment
    /// bodies as atomic runs (vendor/README.md), which must change nothing a layout can see,
    /// standalone comments still taking their line with them.
    #[test]
    fn escapes_and_comments_read_as_with_the_published_handlebars() {
        let mut hb = Handlebars::new();
        hb.set_prevent_indent(true);
        let partial = "<p>\n  {{!-- a standalone comment --}}\n  {{x}} \\{{x}} \\\\{{x}}\n</p>\n";
        hb.register_partial("p", partial).unwrap();
        let main = "a\\{{b}}c\\\\\\{{{x}}}e {{!-- has }} and {{x}} --}}|{{! short }}|\n  \
                    {{!-- standalone --}}\n{{#if x}}\n  {{! inside }}\n  yes {{x}}\n{{/if}}\n\
                    {{{{raw}}}}{{x}} \\{{x}}{{{{/raw}}}}\n{{> p}}end\\";
        hb.register_template_string("main", main).unwrap();
        let data = serde_json::json!({"x": "X", "b": "B"});
        assert_eq!(
            hb.render("main", &data).unwrap(),
            "a{{b}}c\\\\Xe ||\n  yes X\n{{x}} {{x}}\n<p>\n  X {{x}} \\X\n</p>\nend\\"
        );
    }

    /// A template error's line and column, which the vendored copy now takes from pest's line
    /// index (vendor/README.md): still where the layout editor must look.
    #[test]
    fn a_template_error_names_its_line_and_column() {
        let source = "line1\n  x {{#if a}}\n{{/each}}";
        let e = Handlebars::new()
            .register_template_string("bad", source)
            .unwrap_err();
        assert_eq!(e.pos(), Some((3, 1)));
    }
}
