//! The issues a preview shows and, for each, its last good render, its current error and a
//! version number that moves on at every render. Rendering goes through the one entry every
//! command uses ([`crate::edition::prepare`], with the same layout choice), its images served
//! from `files/` and `layout/`; a failed render keeps the last good one and records the error
//! beside it. After every render, whoever asked for it (the watcher, or a page opening an
//! issue), the watcher is told, so that it watches the folders that render used. Serving
//! (routes, the page) is the server's; this file writes and prints nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::audience::{self, Fingerprints, Row, Subscriber};
use crate::config::Archive;
use crate::edition::{self, Images};
use crate::merge::Recipient;
use crate::render::Rendered;

/// One issue as the preview shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub subject: String,
    pub preheader: Option<String>,
    pub html: String,
    pub text: String,
    /// The render itself, to fill for a reader picked on the page.
    pub rendered: Arc<Rendered>,
}

/// A render of the issue `slug` finished (well or not) and the page should look again.
#[derive(Debug, Clone)]
pub struct Change {
    pub slug: String,
}

/// What happened when an issue was rendered, for the command to report.
#[derive(Debug, Clone)]
pub enum Outcome {
    Rendered {
        slug: String,
        took: Duration,
    },
    Failed {
        slug: String,
        message: String,
    },
    /// A folder the preview would watch and cannot: changes in it do not show. The preview
    /// goes on (issue 13: one unreadable folder stopped it).
    NotWatched {
        path: PathBuf,
        reason: String,
    },
}

/// Where an issue's files are.
#[derive(Debug, Clone)]
pub struct Folders {
    /// The folder of the issue file: its body files and images.
    pub issue: PathBuf,
    /// The layout folder in use, if not the built-in layout alone.
    pub layout: Option<PathBuf>,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    folders: Folders,
    good: Option<Arc<Shown>>,
    good_version: u64,
    error: Option<String>,
    version: u64,
}

/// A snapshot of an issue's state for the page.
#[derive(Debug, Clone)]
pub struct State {
    pub good: Option<Arc<Shown>>,
    /// The version at which `good` was rendered.
    pub good_version: u64,
    pub error: Option<String>,
    pub version: u64,
    pub path: PathBuf,
}

/// How many readers of a list the picker offers.
pub const READERS_SHOWN: usize = 500;

/// Who hears about renders: the command, which prints them.
pub type Reporter = Arc<dyn Fn(Outcome) + Send + Sync>;

/// Everything the preview serves, shared by the server and the watcher.
pub struct Site {
    issues_dir: PathBuf,
    single: Option<PathBuf>,
    layout: Option<PathBuf>,
    archive: Option<Archive>,
    /// A subscriber list whose readers the page can pick.
    list: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, Entry>>,
    changes: broadcast::Sender<Change>,
    reporter: OnceLock<Reporter>,
    /// Told after each render, whoever asked for it: the watcher, which then looks for new
    /// folders to watch.
    after_render: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// One render at a time: a render started by the watcher and one started by a page must
    /// not finish in the wrong order and put an older reading of the files on show.
    rendering: Mutex<()>,
}

/// An issue file listed on the index page.
#[derive(Debug, Clone)]
pub struct Listed {
    pub slug: String,
    pub title: String,
    pub date: String,
}

impl Site {
    /// A site over `issues_dir`, showing `single` when given, with an optional layout folder
    /// that overrides the issues' own.
    pub fn new(
        issues_dir: PathBuf,
        single: Option<PathBuf>,
        layout: Option<PathBuf>,
        list: Option<PathBuf>,
    ) -> Self {
        let (changes, _) = broadcast::channel(64);
        Site {
            issues_dir,
            single,
            layout,
            archive: None,
            list,
            entries: Mutex::new(BTreeMap::new()),
            changes,
            reporter: OnceLock::new(),
            after_render: OnceLock::new(),
            rendering: Mutex::new(()),
        }
    }

    /// The workspace's web edition, for the "View in browser" link of issues without
    /// `web_url`.
    pub fn with_archive(mut self, archive: Option<Archive>) -> Self {
        self.archive = archive;
        self
    }

    /// Sets who hears about each render.
    pub fn report_to(&self, reporter: Reporter) {
        let _ = self.reporter.set(reporter);
    }

    /// Sets who is told after each render (the watcher).
    pub fn after_render(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.after_render.set(hook);
    }

    /// Passes an outcome to whoever hears about renders.
    pub fn report(&self, outcome: Outcome) {
        if let Some(report) = self.reporter.get() {
            report(outcome);
        }
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-updated (each update is
        // one assignment), so a poisoned lock is still good to use.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slug of the issue given on the command line, if any.
    pub fn single_slug(&self) -> Option<String> {
        self.single.as_deref().map(slug_of)
    }

    /// Listens for renders.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The issue file for a slug: the one given, or `<issues_dir>/<slug>.json`.
    fn path_for(&self, slug: &str) -> Option<PathBuf> {
        if let Some(single) = &self.single
            && slug_of(single) == slug
        {
            return Some(single.clone());
        }
        let valid = !slug.is_empty()
            && !slug.starts_with('.')
            && slug
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let path = self.issues_dir.join(format!("{slug}.json"));
        (valid && path.is_file()).then_some(path)
    }

    /// The state of an issue, rendering it first if the preview has not shown it yet.
    pub fn state(&self, slug: &str) -> Option<State> {
        if !self.entries().contains_key(slug) {
            let path = self.path_for(slug)?;
            let mut entries = self.entries();
            if entries.contains_key(slug) {
                // Another request registered it meanwhile.
                drop(entries);
                return self.state(slug);
            }
            entries.insert(
                slug.to_string(),
                Entry {
                    folders: Folders {
                        issue: parent_of(&path),
                        layout: self.layout.clone(),
                    },
                    path,
                    good: None,
                    good_version: 0,
                    error: None,
                    version: 0,
                },
            );
            drop(entries);
            self.render(slug);
        }
        self.known_state(slug)
    }

    /// The state of an issue the preview has shown already; it never renders.
    pub fn known_state(&self, slug: &str) -> Option<State> {
        let entries = self.entries();
        let e = entries.get(slug)?;
        Some(State {
            good: e.good.clone(),
            good_version: e.good_version,
            error: e.error.clone(),
            version: e.version,
            path: e.path.clone(),
        })
    }

    /// The folders an issue's files are served from.
    pub fn folders(&self, slug: &str) -> Option<Folders> {
        self.entries().get(slug).map(|e| e.folders.clone())
    }

    /// Renders every issue the preview has shown; a file changed.
    pub fn render_all(&self) {
        let slugs: Vec<String> = self.entries().keys().cloned().collect();
        for slug in slugs {
            self.render(&slug);
        }
    }

    /// Renders one issue, keeps the result (or the error beside the last good result), and
    /// only then tells the pages.
    fn render(&self, slug: &str) {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = self.entries().get(slug).map(|e| e.path.clone()) else {
            return;
        };
        let started = Instant::now();
        let result = self.render_file(&path);
        {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(slug) else {
                return;
            };
            entry.version += 1;
            match &result {
                Ok((shown, folders)) => {
                    entry.good = Some(Arc::new(shown.clone()));
                    entry.good_version = entry.version;
                    entry.error = None;
                    entry.folders = folders.clone();
                }
                Err(message) => entry.error = Some(message.clone()),
            }
        }
        let _ = self.changes.send(Change {
            slug: slug.to_string(),
        });
        let outcome = match result {
            Ok(_) => Outcome::Rendered {
                slug: slug.to_string(),
                took: started.elapsed(),
            },
            Err(message) => Outcome::Failed {
                slug: slug.to_string(),
                message,
            },
        };
        if let Some(hook) = self.after_render.get() {
            hook();
        }
        self.report(outcome);
    }

    fn render_file(&self, path: &Path) -> Result<(Shown, Folders), String> {
        let prepared = edition::prepare(&edition::Options {
            issue: path.to_path_buf(),
            layout: self.layout.clone(),
            // Relative to the page that shows the email: /issue/<slug>/email.html.
            images: Images::Served {
                issue: "files/".into(),
                layout: "layout/".into(),
            },
            archive: self.archive.clone(),
        });
        let edition = prepared.map_err(|e| crate::diag::error_lines(&e.to_string()))?;
        let email = edition.rendered.fill(&Recipient::sample());
        Ok((
            Shown {
                subject: email.subject,
                preheader: email.preheader,
                html: email.html,
                text: email.text,
                rendered: Arc::new(edition.rendered),
            },
            Folders {
                issue: edition.issue.dir.clone(),
                layout: edition.layout.dir().map(Path::to_path_buf),
            },
        ))
    }

    /// The first readers of the subscriber list (at most [`READERS_SHOWN`]), for the picker.
    pub fn readers(&self) -> Vec<Subscriber> {
        let Some(list) = &self.list else {
            return Vec::new();
        };
        let Ok(rows) = audience::open(list, Fingerprints::default()) else {
            return Vec::new();
        };
        rows.filter_map(|r| match r {
            Ok(Row::Send(s)) => Some(s),
            _ => None,
        })
        .take(READERS_SHOWN)
        .collect()
    }

    /// The folders to watch: the issues' folders and the layout folders in use.
    pub fn watch_roots(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.issues_dir.clone()];
        if let Some(single) = &self.single {
            roots.push(parent_of(single));
        }
        roots.extend(self.layout.clone());
        for e in self.entries().values() {
            roots.push(e.folders.issue.clone());
            roots.extend(e.folders.layout.clone());
        }
        let mut roots: Vec<PathBuf> = roots
            .into_iter()
            // Canonical, so that `issues/../layouts/efus` is not taken for a part of `issues/`.
            .filter_map(|r| r.canonicalize().ok())
            .filter(|r| r.is_dir())
            .collect();
        roots.sort();
        roots.dedup();
        roots
    }

    /// The workspace the issues are in (the nearest folder above them with a `bulletin.toml`),
    /// as a canonical path: links that lead inside it may be followed by the watcher.
    pub fn workspace_root(&self) -> Option<PathBuf> {
        let start = self.issues_dir.canonicalize().ok()?;
        start
            .ancestors()
            .find(|d| d.join(crate::workspace::CONFIG).is_file())
            .map(Path::to_path_buf)
    }

    /// The issues in the issues folder, newest issue date first.
    pub fn list(&self) -> Vec<Listed> {
        let mut listed: Vec<Listed> = std::fs::read_dir(&self.issues_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| describe(&p))
            .collect();
        if let Some(single) = &self.single
            && !listed.iter().any(|l| l.slug == slug_of(single))
        {
            listed.push(describe(single));
        }
        listed.sort_by(|a, b| b.date.cmp(&a.date).then(a.slug.cmp(&b.slug)));
        listed
    }
}

/// Title and date of an issue file for the index, read leniently: a broken file is still
/// listed, so that its preview can show what is wrong.
fn describe(path: &Path) -> Listed {
    let value: serde_json::Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    Listed {
        slug: slug_of(path),
        title: field("title"),
        date: field("date"),
    }
}

fn slug_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
