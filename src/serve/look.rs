//! How a link's pages look and speak: in the language of the issue the link came in (its
//! slug is sealed in the token), with the colours and logo of that issue's layout.
//!
//! `serve` runs in the workspace, so it reads `issues/<slug>.json` for the issue's
//! `"language"` and `"layout"` (its JSON only: an issue that no longer passes `check` still
//! has a language), loads the layout as `render` would ([`crate::layout::folder_for`]) and
//! takes the `page_*` words of its `labels.toml` (English where a language lacks them), the
//! `[colors]` of its theme and its `[logo]`. Nothing here fails a request: an issue file gone
//! or broken gives the workspace's own layout in English, a layout that does not load the
//! workspace's, and that failing the built-in one; each fallback is logged.
//!
//! Colours are used only when every pair the pages draw keeps WCAG AA (4.5:1, by
//! [`crate::check::contrast`]); otherwise the default layout's. A logo in the layout's
//! folder is served by `serve` itself under the links' path (`{prefix}/logo/<hash>.<ext>`,
//! [`Looks::logo`]): the pages allow images from their own origin and nowhere else. A logo at
//! an `https://` address is shown from there, its origin alone allowed.
//!
//! A link without an issue (a token of before the slug was sealed in, one that does not
//! open, a request that took too long) gets the reader's language from `Accept-Language`,
//! among those the workspace's layout has words for.
//!
//! Looks are kept per issue (and per language) for [`FRESH`]: a busy minute reads the files
//! once, and an issue or theme edited on the server shows within a minute.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use sha2::{Digest, Sha256};

use crate::check::contrast;
use crate::issue::{self, Language};
use crate::layout::{self, Layout};

/// How long a look is kept before its files are read again.
pub const FRESH: Duration = Duration::from_secs(60);

/// The most looks kept; past it, the stale ones go, and if none is, all of them.
const MAX_LOOKS: usize = 256;

/// The largest logo served: a bigger one is left out of the pages (and logged).
pub const MAX_LOGO: u64 = 512 * 1024;

/// The most logos kept (one per layout in use, in practice).
const MAX_LOGOS: usize = 64;

/// The key whose presence says a language has words for the pages.
const PAGE_KEY: &str = "page_unsubscribe_title";

type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// The colours the pages are drawn in: the theme's `[colors]` of the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    pub background: String,
    pub surface: String,
    pub text: String,
    pub heading: String,
    pub muted: String,
    pub link: String,
    pub button: String,
    pub button_text: String,
}

/// The default layout's colours (`layouts/default/theme.toml`), which keep AA.
fn default_palette() -> Palette {
    let c = |s: &str| s.to_string();
    Palette {
        background: c("#f2f4f7"),
        surface: c("#ffffff"),
        text: c("#1f2933"),
        heading: c("#102a43"),
        muted: c("#4a5563"),
        link: c("#1d4f91"),
        button: c("#1d4f91"),
        button_text: c("#ffffff"),
    }
}

/// Every (text, background) pair the pages draw: the text on the page, the button's label on
/// it, and the secondary button (the button's colour on the page).
const PAIRS: [(&str, &str); 6] = [
    ("text", "surface"),
    ("heading", "surface"),
    ("muted", "surface"),
    ("link", "surface"),
    ("button_text", "button"),
    ("button", "surface"),
];

/// The layout's colours, or what keeps them from being used.
fn palette(layout: &Layout) -> Result<Palette, String> {
    let colors = layout.theme().get("colors").and_then(|c| c.as_table());
    let get = |key: &str| -> Result<String, String> {
        let value = colors
            .and_then(|c| c.get(key))
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("colors.{key} is not set"))?;
        match contrast::parse_hex(value) {
            Some(_) => Ok(value.trim().to_string()),
            None => Err(format!(
                "colors.{key} = \"{value}\" is not a #rrggbb colour"
            )),
        }
    };
    let palette = Palette {
        background: get("background")?,
        surface: get("surface")?,
        text: get("text")?,
        heading: get("heading")?,
        muted: get("muted")?,
        link: get("link")?,
        button: get("button")?,
        button_text: get("button_text")?,
    };
    for (fg, bg) in PAIRS {
        let (Some(f), Some(b)) = (
            contrast::parse_hex(&get(fg)?),
            contrast::parse_hex(&get(bg)?),
        ) else {
            continue;
        };
        let ratio = contrast::ratio(f, b);
        if ratio < contrast::MIN_RATIO {
            return Err(format!(
                "colors.{fg} on colors.{bg} has a contrast of {ratio:.1}:1, under {}:1",
                contrast::MIN_RATIO
            ));
        }
    }
    Ok(palette)
}

/// The layout's logo, as the pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    pub src: LogoSrc,
    pub alt: String,
    pub width: Option<u32>,
}

/// Where the pages take the logo from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoSrc {
    /// A file of the layout, served by `serve` as `logo/<this>` under the links' path.
    Served(String),
    /// An `https://` address.
    Remote(url::Url),
}

/// A logo file `serve` answers with.
#[derive(Debug, Clone)]
pub struct LogoFile {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// The pages' language, direction, words, colours and logo.
#[derive(Debug, Clone)]
pub struct Look {
    /// The `lang` of the pages: the issue's tag, or `en` when its language has no words.
    pub lang: String,
    /// `ltr` or `rtl`.
    pub dir: &'static str,
    words: toml::Table,
    pub colors: Palette,
    pub logo: Option<Logo>,
}

/// The built-in layout's English words: what any word missing elsewhere falls back on.
static ENGLISH: LazyLock<toml::Table> = LazyLock::new(|| {
    Layout::builtin()
        .map(|l| l.labels("en", "en"))
        .unwrap_or_default()
});

impl Look {
    /// The built-in layout in English: what a page shows when nothing else can be read.
    pub fn english() -> Look {
        Look {
            lang: "en".into(),
            dir: "ltr",
            words: ENGLISH.clone(),
            colors: default_palette(),
            logo: None,
        }
    }

    /// The words `key` (`page_unsubscribe_title`…), in the page's language, or English.
    pub fn word<'a>(&'a self, key: &'a str) -> &'a str {
        self.words
            .get(key)
            .and_then(|v| v.as_str())
            .or_else(|| ENGLISH.get(key).and_then(|v| v.as_str()))
            .unwrap_or(key)
    }

    /// The page's `Content-Security-Policy`: no scripts, styles inline, forms to itself,
    /// and images only from where the logo is (none without one).
    pub fn csp(&self) -> String {
        let img = match self.logo.as_ref().map(|l| &l.src) {
            None => String::new(),
            Some(LogoSrc::Served(_)) => "; img-src 'self'".into(),
            Some(LogoSrc::Remote(url)) => {
                format!("; img-src {}", url.origin().ascii_serialization())
            }
        };
        format!(
            "default-src 'none'; style-src 'unsafe-inline'{img}; form-action 'self'; frame-ancestors 'none'"
        )
    }
}

/// Whether `layout` has the pages' words for the tag `tag` itself.
fn has_words(layout: &Layout, tag: &str) -> bool {
    layout
        .language_labels(tag)
        .is_some_and(|words| words.contains_key(PAGE_KEY))
}

/// The looks of the links' pages, kept per issue and per language, and the logos they show.
pub struct Looks {
    /// The workspace's folder.
    root: PathBuf,
    kept: Mutex<HashMap<String, (Instant, Arc<Look>)>>,
    workspace: Mutex<Option<(Instant, Arc<Layout>)>>,
    logos: Mutex<HashMap<String, LogoFile>>,
    log: Log,
}

impl Looks {
    pub fn new(root: &Path, log: Log) -> Looks {
        Looks {
            root: root.to_path_buf(),
            kept: Mutex::new(HashMap::new()),
            workspace: Mutex::new(None),
            logos: Mutex::new(HashMap::new()),
            log,
        }
    }

    /// The look of the links of the issue `slug`; with no slug, the reader's language from
    /// `accept` (`Accept-Language`) in the workspace's layout.
    pub async fn of_issue(self: &Arc<Self>, slug: Option<&str>, accept: Option<&str>) -> Arc<Look> {
        match slug {
            Some(slug) => {
                let (looks, slug) = (self.clone(), slug.to_string());
                self.kept_or(format!("issue {slug}"), move || looks.load_issue(&slug))
                    .await
            }
            None => self.of_reader(accept).await,
        }
    }

    /// The look for a reader whose browser asks for `accept` (`Accept-Language`), in the
    /// workspace's layout: the first language it names that the layout has words for, or
    /// English.
    pub async fn of_reader(self: &Arc<Self>, accept: Option<&str>) -> Arc<Look> {
        let looks = self.clone();
        let accept = accept.map(str::to_string);
        // The workspace's layout is needed to choose; loading it is a blocking read.
        let chosen = tokio::task::spawn_blocking(move || match looks.workspace_layout() {
            Some(layout) => choose(&layout, accept.as_deref()),
            None => Language::default(),
        })
        .await;
        let Ok(language) = chosen else {
            return Arc::new(Look::english());
        };
        let looks = self.clone();
        let key = format!("language {}", language.as_str());
        self.kept_or(key, move || looks.in_workspace(&language))
            .await
    }

    /// The logo file `name` (`<hash>.<ext>`), if a page showed it.
    pub fn logo(&self, name: &str) -> Option<LogoFile> {
        self.logos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The look kept under `key` while it is fresh, or a new one from `load` (on a blocking
    /// thread); English if `load` fails outright.
    async fn kept_or(
        &self,
        key: String,
        load: impl FnOnce() -> Look + Send + 'static,
    ) -> Arc<Look> {
        if let Some((at, look)) = self
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && at.elapsed() < FRESH
        {
            return look.clone();
        }
        let look = match tokio::task::spawn_blocking(load).await {
            Ok(look) => Arc::new(look),
            Err(_) => {
                (self.log)(&format!(
                    "pages for {key}: could not be prepared; shown in English"
                ));
                Arc::new(Look::english())
            }
        };
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_LOOKS {
            kept.retain(|_, (at, _)| at.elapsed() < FRESH);
            if kept.len() >= MAX_LOOKS {
                kept.clear();
            }
        }
        kept.insert(key, (Instant::now(), look.clone()));
        look
    }

    /// The look of the issue `slug`, read from `issues/<slug>.json` and its layout.
    fn load_issue(&self, slug: &str) -> Look {
        let english = Language::default();
        if !plain_slug(slug) {
            return self.in_workspace(&english);
        }
        let path = self.root.join("issues").join(format!("{slug}.json"));
        let source = match issue::read(&path) {
            Ok(source) => source,
            Err(e) => {
                let why = e.to_string();
                (self.log)(&format!(
                    "pages for the links of issue {slug}: {}; they are in English, in the workspace's layout, until the issue file is back",
                    why.lines().next().unwrap_or("")
                ));
                return self.in_workspace(&english);
            }
        };
        let language = source.language().unwrap_or_default();
        let folder = layout::folder_for(None, &source.dir, source.layout());
        match Layout::load(folder.as_deref()) {
            Ok(layout) => self.build(&layout, &language, &format!("the layout of issue {slug}")),
            Err(e) => {
                (self.log)(&format!(
                    "pages for the links of issue {slug}: its layout does not load ({e}); they use the workspace's layout"
                ));
                self.in_workspace(&language)
            }
        }
    }

    /// The look of the workspace's layout in `language`.
    fn in_workspace(&self, language: &Language) -> Look {
        match self.workspace_layout() {
            Some(layout) => self.build(&layout, language, "the workspace's layout"),
            None => Look::english(),
        }
    }

    /// The workspace's own layout (`layouts/default/` over the built-in one), kept for
    /// [`FRESH`]; the built-in one when it does not load.
    fn workspace_layout(&self) -> Option<Arc<Layout>> {
        let mut kept = self.workspace.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, layout)) = kept.as_ref()
            && at.elapsed() < FRESH
        {
            return Some(layout.clone());
        }
        let folder = layout::workspace_layout(&self.root.join("issues"));
        let layout = match Layout::load(folder.as_deref()) {
            Ok(layout) => layout,
            Err(e) => {
                (self.log)(&format!(
                    "pages: the workspace's layout does not load ({e}); they use the built-in one"
                ));
                Layout::builtin().ok()?
            }
        };
        let layout = Arc::new(layout);
        *kept = Some((Instant::now(), layout.clone()));
        Some(layout)
    }

    /// The look of `layout` in `language` (English when the layout has no words for it);
    /// `which` names the layout in log lines.
    fn build(&self, layout: &Layout, language: &Language, which: &str) -> Look {
        let primary = language.primary();
        let translated = has_words(layout, &primary) || has_words(layout, language.as_str());
        let (lang, dir, words) = if translated {
            (
                language.as_str().to_string(),
                language.direction(),
                layout.labels(&primary, language.as_str()),
            )
        } else {
            ("en".to_string(), "ltr", layout.labels("en", "en"))
        };
        let colors = palette(layout).unwrap_or_else(|why| {
            (self.log)(&format!(
                "pages in {which}: {why}; they use the default colours (bulletin check names the colours to change)"
            ));
            default_palette()
        });
        Look {
            lang,
            dir,
            words,
            colors,
            logo: self.logo_of(layout, which),
        }
    }

    /// The theme's `[logo]`, its file (if it is one) read and kept to be served.
    fn logo_of(&self, layout: &Layout, which: &str) -> Option<Logo> {
        let theme = layout.theme();
        let table = theme.get("logo")?.as_table()?;
        let src = table.get("src")?.as_str()?.trim();
        let alt = table
            .get("alt")
            .and_then(|v| v.as_str())
            .or_else(|| theme.get("name").and_then(|v| v.as_str()))
            .unwrap_or("")
            .to_string();
        let width = table
            .get("width")
            .and_then(|w| w.as_integer())
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| (1..=600).contains(w));
        let src = if src.starts_with("https://") {
            LogoSrc::Remote(url::Url::parse(src).ok()?)
        } else if !src.is_empty() && issue::is_relative_reference(src) {
            let dir = layout.dir()?;
            LogoSrc::Served(self.keep_logo(&dir.join(src), which)?)
        } else {
            // http:// would be blocked as mixed content, data: needs no serving: neither is
            // what `check` accepts for an email either.
            return None;
        };
        Some(Logo { src, alt, width })
    }

    /// Reads the logo file at `path` and keeps it to be served; its name, `<hash>.<ext>`,
    /// changes with its content, so that it can be cached for good.
    fn keep_logo(&self, path: &Path, which: &str) -> Option<String> {
        let shown = path.display();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let content_type = match ext.as_str() {
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "webp" => "image/webp",
            "svg" => "image/svg+xml",
            _ => {
                (self.log)(&format!(
                    "pages in {which}: the logo {shown} is not a PNG, JPEG, GIF, WebP or SVG file; the pages show none"
                ));
                return None;
            }
        };
        let bytes = match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_LOGO => Err(format!(
                "is {} KB, over the {} KB the pages take; make it smaller",
                meta.len() / 1024,
                MAX_LOGO / 1024
            )),
            Ok(_) => std::fs::read(path).map_err(|e| crate::diag::io_reason(&e)),
            Err(e) => Err(crate::diag::io_reason(&e)),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(why) => {
                (self.log)(&format!(
                    "pages in {which}: the logo {shown}: {why}; the pages show none"
                ));
                return None;
            }
        };
        let digest = Sha256::digest(&bytes);
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{hash}.{ext}");
        let mut logos = self.logos.lock().unwrap_or_else(|p| p.into_inner());
        if !logos.contains_key(&name) {
            if logos.len() >= MAX_LOGOS {
                logos.clear();
            }
            logos.insert(
                name.clone(),
                LogoFile {
                    bytes: Bytes::from(bytes),
                    content_type,
                },
            );
        }
        Some(name)
    }
}

/// A slug as `bulletin new` makes them (letters, digits, `-`, `_`, `.`, not starting with a
/// dot): anything else is not looked for on disk.
fn plain_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 200
        && !slug.starts_with('.')
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The reader's language: the first of `accept` (`Accept-Language`, by its weights) that
/// `layout` has words for, as the most precise tag it has words for (`pt-BR`, else `pt`);
/// English otherwise.
fn choose(layout: &Layout, accept: Option<&str>) -> Language {
    let mut asked: Vec<(f32, usize, &str)> = accept
        .unwrap_or("")
        .split(',')
        .take(20)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut bits = part.split(';');
            let tag = bits.next()?.trim();
            let q = bits
                .filter_map(|b| b.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !tag.is_empty() && tag != "*" && tag.len() <= 35).then_some((q, i, tag))
        })
        .collect();
    asked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in asked {
        let Ok(language) = Language::try_from(tag.to_string()) else {
            continue;
        };
        let primary = language.primary();
        let own_table = layout.language_labels(language.as_str()).is_some();
        if has_words(layout, language.as_str()) || (own_table && has_words(layout, &primary)) {
            return language;
        }
        if has_words(layout, &primary)
            && let Ok(language) = Language::try_from(primary)
        {
            return language;
        }
    }
    Language::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Log {
        Arc::new(|_| {})
    }

    #[test]
    fn the_default_palette_is_the_default_themes_and_keeps_aa() {
        let layout = Layout::load(None).unwrap();
        assert_eq!(palette(&layout), Ok(default_palette()));
    }

    #[test]
    fn colours_under_aa_fall_back_to_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("theme.toml"),
            "[colors]\nbutton = \"#9ab\"\nbutton_text = \"#ffffff\"\n",
        )
        .unwrap();
        let layout = Layout::load(Some(dir.path())).unwrap();
        let why = palette(&layout).unwrap_err();
        assert!(why.contains("colors.button_text on colors.button"), "{why}");
        let said = Arc::new(Mutex::new(String::new()));
        let sink = said.clone();
        let looks = Looks::new(
            dir.path(),
            Arc::new(move |l: &str| sink.lock().unwrap().push_str(l)),
        );
        let look = looks.build(&layout, &Language::default(), "the test layout");
        assert_eq!(look.colors, default_palette());
        assert!(said.lock().unwrap().contains("default colours"));
    }

    #[test]
    fn the_readers_language_is_the_first_asked_that_has_words() {
        let layout = Layout::load(None).unwrap();
        let pick = |accept: &str| choose(&layout, Some(accept)).as_str().to_string();
        assert_eq!(pick("fr-CH, fr;q=0.9, en;q=0.8"), "fr");
        assert_eq!(pick("tlh, de;q=0.5, ar;q=0.7"), "ar");
        assert_eq!(pick("pt-BR"), "pt-BR");
        assert_eq!(pick("sw, *;q=0.1"), "en");
        assert_eq!(pick("fr;q=0, it"), "it");
        assert_eq!(choose(&layout, None).as_str(), "en");
    }

    #[test]
    fn a_look_speaks_the_issues_language_or_english() {
        let dir = tempfile::tempdir().unwrap();
        let looks = Looks::new(dir.path(), quiet());
        let layout = Layout::load(None).unwrap();
        let ar = looks.build(&layout, &Language::try_from("ar".to_string()).unwrap(), "x");
        assert_eq!((ar.lang.as_str(), ar.dir), ("ar", "rtl"));
        assert_ne!(ar.word(PAGE_KEY), Look::english().word(PAGE_KEY));
        let sw = looks.build(&layout, &Language::try_from("sw".to_string()).unwrap(), "x");
        assert_eq!((sw.lang.as_str(), sw.dir), ("en", "ltr"));
        assert_eq!(sw.word(PAGE_KEY), Look::english().word(PAGE_KEY));
        assert!(sw.csp().contains("default-src 'none'") && !sw.csp().contains("img-src"));
        assert!(!plain_slug("../secret") && !plain_slug(".hidden") && plain_slug("2020-06"));
    }

    #[test]
    fn every_language_of_labels_toml_has_every_page_word() {
        let layout = Layout::load(None).unwrap();
        let english = layout.language_labels("en").unwrap();
        let keys: Vec<&String> = english.keys().filter(|k| k.starts_with("page_")).collect();
        assert!(keys.len() >= 15, "{keys:?}");
        let source = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/default/labels.toml"),
        )
        .unwrap();
        let all: toml::Table = source.parse().unwrap();
        let mut languages = 0;
        for (tag, words) in &all {
            // Regions ([pt-BR]) take their language's words and change only what differs.
            if tag.contains('-') {
                continue;
            }
            languages += 1;
            let words = words.as_table().unwrap();
            for key in &keys {
                let word = words.get(*key).and_then(|w| w.as_str());
                let Some(word) = word else {
                    panic!("[{tag}] has no {key}");
                };
                // The same placeholders as the English words, each once.
                for name in ["newsletter", "address", "contact"] {
                    let field = format!("{{{{{name}}}}}");
                    let want = english[*key].as_str().unwrap().matches(&field).count();
                    assert_eq!(word.matches(&field).count(), want, "[{tag}] {key}: {word}");
                }
            }
        }
        assert_eq!(languages, 33);
    }
}
