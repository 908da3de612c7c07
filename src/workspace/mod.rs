//! A workspace: the folder a newsletter is written in (`bulletin init`), and finding it from
//! any folder inside it, as git and cargo find theirs ([`root`], [`around`]).
//!
//! This module owns what a new workspace contains — `bulletin.toml`, a starter issue that
//! uses every section kind of the default layout, its placeholder image, the organisation's
//! details (name, postal address, website and social links, logo) in the workspace's theme
//! `layouts/default/theme.toml`, the issue schema, an example subscriber list, a `.gitignore`
//! and, on request, a copy of the default layout (also into an existing workspace) — and
//! creating one without ever replacing a file. The starter files live in `starter/` and are
//! compiled in; [`starter_texts`] hands `check` the starter's own words, so that it can say
//! which are left. It never prints, never renders and never reads the clock: the caller
//! passes today's date.

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};

use crate::output::{WriteError, write_atomic};

const BULLETIN_TOML: &str = include_str!("starter/bulletin.toml");
const ISSUE_JSON: &str = include_str!("starter/issue.json");
const PLACEHOLDER_PNG: &[u8] = include_bytes!("starter/placeholder.png");
const SUBSCRIBERS_CSV: &str = include_str!("starter/subscribers.example.csv");
const GITIGNORE: &str = include_str!("starter/gitignore");
const THEME_TOML: &str = include_str!("starter/theme.toml");

/// The settings file at the root of a workspace.
pub const CONFIG: &str = "bulletin.toml";
/// The workspace's layout folder: its theme (the organisation's details) is always there, and
/// `--layout-copy` puts the default layout's templates there; every command finds it.
pub const LAYOUT_COPY: &str = "layouts/default";
/// The organisation's details, in the workspace's layout folder.
pub const ORGANISATION: &str = "layouts/default/theme.toml";
/// Every key of the built-in theme, written beside the workspace's theme by `--layout-copy`
/// to copy from; bulletin does not read it.
pub const THEME_DEFAULTS: &str = "layouts/default/theme.default.toml";
/// The file in a copied layout that records the bulletin version it was copied from.
pub const LAYOUT_VERSION: &str = "VERSION";

/// What to create.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace folder; created if missing.
    pub dir: PathBuf,
    /// Today: names the starter issue and dates it.
    pub today: NaiveDate,
    /// Also copy the default layout into `layouts/default/` for editing.
    pub layout_copy: bool,
}

/// What [`create`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The files written, relative to the workspace folder.
    pub written: Vec<PathBuf>,
    /// True when the folder was a workspace already and only the layout was copied into it.
    pub layout_only: bool,
    /// Files of the layout the workspace had already and kept (its theme).
    pub kept: Vec<PathBuf>,
}

/// A file of a new workspace: its path relative to the workspace folder, and its bytes.
#[derive(Debug, Clone)]
pub struct File {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// Why a workspace could not be created.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Files that would have been replaced; nothing was written.
    #[error(
        "{}\n  nothing was written: bulletin init never replaces a file; start the workspace in another folder, e.g. bulletin init {suggestion}",
        existing.iter().map(|p| format!("{} already exists", p.display())).collect::<Vec<_>>().join("\n")
    )]
    Exists {
        existing: Vec<PathBuf>,
        /// A folder name to offer instead.
        suggestion: String,
    },
    #[error("{} is a file, not a folder; name a new or existing folder", dir.display())]
    NotAFolder { dir: PathBuf },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Where a workspace keeps what bulletin records: the ledger of sends.
pub const STATE_DIR: &str = ".bulletin";

/// The workspace `from` is in: the nearest folder with a `bulletin.toml`, from `from` up (as
/// git and cargo find theirs). Relative to `from` when it is below it (`.` for `from`
/// itself, `..` for its parent), so that paths printed from it read as the user typed them.
pub fn root(from: &Path) -> Result<PathBuf, FindError> {
    from.ancestors()
        .find(|d| d.join(CONFIG).is_file())
        .map(|d| relative_to(d, from))
        .ok_or_else(|| FindError::NotFound {
            from: from.to_path_buf(),
        })
}

/// A workspace found from a folder: where it is as written from that folder (`.`, `..`,
/// `../..`), and in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The workspace folder, relative to the folder it was found from.
    pub rel: PathBuf,
    /// The workspace folder, absolute.
    pub abs: PathBuf,
}

impl Found {
    /// True when the workspace is the folder it was found from: nothing needs saying.
    pub fn is_here(&self) -> bool {
        is_current_folder(&self.rel)
    }
}

/// The workspace around `cwd` (an absolute folder), as [`root`] finds it, or `None` outside
/// any workspace.
pub fn around(cwd: &Path) -> Option<Found> {
    let abs = cwd.ancestors().find(|d| d.join(CONFIG).is_file())?;
    Some(Found {
        rel: relative_to(abs, cwd),
        abs: abs.to_path_buf(),
    })
}

/// `path`, relative to `cwd`, written as shortly as it goes from `cwd`, the way a user
/// standing there would type it: `../issues/2026-12.json` from `issues/` is `2026-12.json`.
/// An absolute path is returned as it is: the user gave it so.
pub fn from_here(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let full = lexical(&cwd.join(path));
    match pathdiff::diff_paths(&full, lexical(cwd)) {
        Some(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Some(rel) => rel,
        None => path.to_path_buf(),
    }
}

/// `.` removed and `..` resolved, without asking the disk, so that `issues/../layouts/efus`
/// compares well with `layouts/efus`.
pub fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `dir`, an ancestor of `from`, written relative to `from`.
fn relative_to(dir: &Path, from: &Path) -> PathBuf {
    match from.strip_prefix(dir) {
        Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rest) => rest.components().map(|_| "..").collect(),
        Err(_) => dir.to_path_buf(),
    }
}

/// The ledger of the workspace at `root`.
pub fn ledger_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join("ledger.sqlite")
}

/// No workspace was found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(
        "no {CONFIG} in {} or any folder above it: run bulletin init to start a workspace, or go to yours",
        from.display()
    )]
    NotFound { from: PathBuf },
}

/// The starter issue's path in a workspace: `issues/YYYY-MM.json` for today's month.
pub fn issue_path(today: NaiveDate) -> PathBuf {
    Path::new("issues").join(format!("{}.json", today.format("%Y-%m")))
}

/// Every file of a new workspace, in the order they are written.
pub fn files(today: NaiveDate, layout_copy: bool) -> Vec<File> {
    let mut files = vec![
        file(CONFIG, BULLETIN_TOML.as_bytes()),
        File {
            path: issue_path(today),
            contents: starter_issue(today).into_bytes(),
        },
        file("issues/images/placeholder.png", PLACEHOLDER_PNG),
        file(ORGANISATION, THEME_TOML.as_bytes()),
        file(
            crate::issue::SCHEMA_PATH,
            crate::issue::json_schema().as_bytes(),
        ),
        file("subscribers.example.csv", SUBSCRIBERS_CSV.as_bytes()),
        file(".gitignore", GITIGNORE.as_bytes()),
    ];
    if layout_copy {
        files.extend(layout_files());
    }
    files
}

/// The default layout's files for editing: its templates, every key of its theme (beside the
/// workspace's own theme, to copy from) and the version they come from.
fn layout_files() -> Vec<File> {
    let layout = Path::new(LAYOUT_COPY);
    let mut files = Vec::new();
    for (name, bytes) in crate::layout::builtin_files() {
        if name == crate::layout::THEME {
            let mut text = THEME_DEFAULTS_NOTE.as_bytes().to_vec();
            text.extend(bytes);
            files.push(File {
                path: PathBuf::from(THEME_DEFAULTS),
                contents: text,
            });
        } else {
            files.push(File {
                path: layout.join(name),
                contents: bytes,
            });
        }
    }
    files.push(File {
        path: layout.join(LAYOUT_VERSION),
        contents: format!("{}\n", env!("CARGO_PKG_VERSION")).into_bytes(),
    });
    files
}

/// What the copy of the built-in theme says first.
const THEME_DEFAULTS_NOTE: &str = "\
# bulletin does not read this file. It holds every key of the built-in layout's theme, as
# this version of bulletin has it, to copy from: put a key you want to change, with its
# [table], in theme.toml beside this file, which holds your organisation's details.
#
";

/// The starter issue's own words: each of its texts with where it stands
/// (`sections[1].items[0].title`) — what a newcomer is meant to replace, for `check` to find
/// when it is still there.
pub fn starter_texts() -> Vec<(String, String)> {
    let issue = starter_issue(NaiveDate::default());
    match serde_json::from_str::<serde_json::Value>(&issue) {
        Ok(value) => crate::issue::json_strings(&value),
        Err(_) => Vec::new(),
    }
}

/// `rel` as the user names it from where they ran the command: under `dir`, or alone when
/// `dir` is the current folder.
pub fn shown(dir: &Path, rel: &Path) -> PathBuf {
    if is_current_folder(dir) {
        rel.to_path_buf()
    } else {
        dir.join(rel)
    }
}

/// True for `.` (and the empty path): the folder the command runs in.
pub fn is_current_folder(dir: &Path) -> bool {
    dir.as_os_str().is_empty() || dir == Path::new(".")
}

/// Creates the workspace and returns the files written, relative to it. If any of them
/// already exists, writes nothing and says which.
///
/// With `layout_copy` in a folder that is a workspace already (it has a `bulletin.toml`), only
/// the layout is copied: its templates and `theme.default.toml`, and the organisation's theme
/// if the workspace has none; a theme it has is kept.
pub fn create(options: &Options) -> Result<Created, WorkspaceError> {
    let dir = &options.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(WorkspaceError::NotAFolder { dir: dir.clone() });
    }
    let layout_only = options.layout_copy && dir.join(CONFIG).is_file();
    let mut kept = Vec::new();
    let files = if layout_only {
        let mut files = layout_files();
        if dir.join(ORGANISATION).symlink_metadata().is_ok() {
            kept.push(PathBuf::from(ORGANISATION));
        } else {
            files.insert(0, file(ORGANISATION, THEME_TOML.as_bytes()));
        }
        files
    } else {
        files(options.today, options.layout_copy)
    };
    // `symlink_metadata` also sees a dangling link, which a write would follow.
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|f| shown(dir, &f.path))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        let suggestion = if is_current_folder(dir) {
            "news".to_string()
        } else {
            format!("{}-2", dir.display())
        };
        return Err(WorkspaceError::Exists {
            existing,
            suggestion,
        });
    }
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        write_atomic(&dir.join(&f.path), &f.contents)?;
        written.push(f.path);
    }
    Ok(Created {
        written,
        layout_only,
        kept,
    })
}

fn file(path: &str, contents: &[u8]) -> File {
    File {
        path: PathBuf::from(path),
        contents: contents.to_vec(),
    }
}

/// The starter issue for `today`: dated today, with events two and three weeks ahead and a
/// conference five weeks ahead, so that `bulletin new` keeps them for a while.
fn starter_issue(today: NaiveDate) -> String {
    let ahead = |days: u64| {
        today
            .checked_add_days(Days::new(days))
            .unwrap_or(today)
            .format("%Y-%m-%d")
            .to_string()
    };
    ISSUE_JSON
        .replace("__MONTH__", &today.format("%B %Y").to_string())
        .replace("__SLUG__", &today.format("%Y-%m").to_string())
        .replace("__DATE__", &today.format("%Y-%m-%d").to_string())
        .replace("__EVENT_DAY__", &ahead(14))
        .replace("__EVENT2_DAY__", &ahead(21))
        .replace("__RANGE_FROM__", &ahead(35))
        .replace("__RANGE_UNTIL__", &ahead(37))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_starter_issue_is_dated_and_uses_every_section_kind() {
        let text = starter_issue(day("2026-11-20"));
        assert!(!text.contains("__"), "a placeholder is left:\n{text}");
        assert!(!text.contains("TODO"));
        let issue: crate::issue::Issue = serde_json::from_str(&text).unwrap();
        assert_eq!(issue.date, day("2026-11-20"));
        assert_eq!(
            issue.title.as_str(),
            "Your Organisation newsletter — November 2026"
        );
        assert_eq!(
            issue.web_url.as_ref().unwrap().as_str(),
            "https://your-organisation.example/newsletter/2026-11"
        );
        let kinds: Vec<&str> = issue.sections.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["text", "news", "events", "agenda", "about"]);
        assert_eq!(
            issue.sections[2].items[0]
                .start
                .as_ref()
                .unwrap()
                .local_date(),
            day("2026-12-04")
        );
        let agenda = &issue.sections[3].items;
        assert_eq!(agenda[1].until, Some(day("2026-12-27")));
        assert!(agenda[2].date.is_none());
    }

    #[test]
    fn the_starter_links_only_to_the_placeholder_domain() {
        // your-organisation.example: reserved for examples (RFC 2606), and found by `check`.
        for text in [starter_issue(day("2026-11-20")), THEME_TOML.to_string()] {
            for (i, _) in text.match_indices("://") {
                let start = text[..i]
                    .rfind(|c: char| !c.is_ascii_alphabetic())
                    .map_or(0, |p| p + 1);
                let url = &text[start..];
                assert!(
                    url.starts_with("https://your-organisation.example"),
                    "{}",
                    &url[..url.len().min(60)]
                );
            }
        }
    }

    #[test]
    fn the_organisation_file_is_a_theme_with_every_detail() {
        let theme: toml::Table = THEME_TOML.parse().unwrap();
        assert_eq!(theme["name"].as_str(), Some("Your organisation"));
        assert!(
            theme["footer"]["address"]
                .as_str()
                .unwrap()
                .contains("Example Street")
        );
        assert_eq!(
            theme["footer"]["social"][0]["url"].as_str(),
            Some("https://your-organisation.example")
        );
        // The logo is there to fill in, each key with its comment.
        for key in [
            "# [logo]",
            "# src = ",
            "# alt = ",
            "# width = ",
            "# link = ",
        ] {
            assert!(THEME_TOML.contains(key), "{key}");
        }
        // Every value of it is the built-in theme's shape: it lays over it key by key.
        let builtin = crate::layout::Layout::builtin().unwrap();
        for key in ["name", "footer"] {
            assert!(builtin.theme().contains_key(key), "{key}");
        }
    }

    #[test]
    fn the_config_has_the_documented_keys() {
        let config: toml::Table = BULLETIN_TOML.parse().unwrap();
        assert_eq!(
            config["sender"]["from"].as_str(),
            Some("Your Organisation <newsletter@your-organisation.example>")
        );
        assert_eq!(
            config["unsubscribe"]["secret_env"].as_str(),
            Some("BULLETIN_UNSUBSCRIBE_SECRET")
        );
        let smtp = &config["profiles"]["default"];
        assert_eq!(smtp["port"].as_integer(), Some(587));
        assert_eq!(smtp["pool"].as_integer(), Some(4));
        assert_eq!(smtp["rate"].as_str(), Some("10/s"));
        assert_eq!(
            smtp["password_env"].as_str(),
            Some("BULLETIN_SMTP_PASSWORD")
        );
    }

    #[test]
    fn a_workspace_is_found_upward_and_paths_are_written_from_here() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("news");
        std::fs::create_dir_all(top.join("issues/drafts")).unwrap();
        std::fs::write(top.join(CONFIG), "").unwrap();
        let found = around(&top.join("issues/drafts")).unwrap();
        assert_eq!(found.rel, Path::new("../.."));
        assert_eq!(found.abs, top);
        assert!(!found.is_here());
        assert!(around(&top).unwrap().is_here());
        assert!(around(dir.path()).is_none());
        let issues = top.join("issues");
        assert_eq!(
            from_here(&issues, Path::new("../issues/2026-12.json")),
            Path::new("2026-12.json")
        );
        assert_eq!(
            from_here(&issues.join("drafts"), Path::new("../../out")),
            Path::new("../../out")
        );
        assert_eq!(
            from_here(&top, Path::new("./issues/a.json")),
            Path::new("issues/a.json")
        );
        assert_eq!(from_here(&top, Path::new(".")), Path::new("."));
        assert_eq!(from_here(&issues, &top.join("out")), top.join("out"));
    }

    #[test]
    fn the_layout_copy_is_stamped_with_the_version() {
        let copied = files(day("2026-11-20"), true);
        let version = copied
            .iter()
            .find(|f| f.path == Path::new("layouts/default/VERSION"))
            .unwrap();
        assert_eq!(
            version.contents,
            format!("{}\n", env!("CARGO_PKG_VERSION")).as_bytes()
        );
        assert!(
            copied
                .iter()
                .any(|f| f.path == Path::new("layouts/default/sections/news.mjml.hbs"))
        );
        // One theme.toml, the organisation's; the built-in one beside it, not read.
        let themes: Vec<_> = copied
            .iter()
            .filter(|f| f.path == Path::new(ORGANISATION))
            .collect();
        assert_eq!(themes.len(), 1);
        assert_eq!(themes[0].contents, THEME_TOML.as_bytes());
        let defaults = copied
            .iter()
            .find(|f| f.path == Path::new(THEME_DEFAULTS))
            .unwrap();
        assert!(
            String::from_utf8_lossy(&defaults.contents).starts_with("# bulletin does not read")
        );
        let plain: Vec<PathBuf> = files(day("2026-11-20"), false)
            .into_iter()
            .map(|f| f.path)
            .filter(|p| p.starts_with("layouts"))
            .collect();
        assert_eq!(plain, [PathBuf::from(ORGANISATION)]);
    }
}
