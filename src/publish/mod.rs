//! `bulletin publish`: the web edition, a static site folder ready to upload anywhere.
//!
//! For each issue it writes, in the site folder ([`site_folder`]: `[archive] folder`, `site/`
//! by default): `SLUG/index.html`, the issue's page — the email drawn for the web
//! ([`Images::Site`]: merge fields at their fallbacks, no unsubscribe link, nothing of a
//! reader's, no "View in browser"), set in the layout's `page.html.hbs` with its title, link
//! previews (Open Graph) and links to the list and the print version —; `SLUG/print.html`,
//! its print version; and a copy of every image the page shows, beside it, where a sent email
//! whose `images_url` is the page's address reads them too ([`site_path`]); files of other
//! stages go there too (`beside_page`: calendar files). Then, from the [`Manifest`], for
//! every issue the site has: the list of issues (`index.html`, `page/N/index.html`), and with
//! `[archive] base_url` the Atom feed (`feed.xml`) and the sitemap (`sitemap.xml`).
//!
//! Incremental and stable: every issue is rendered, but written only when what it would write
//! differs from what the manifest records; the list, feed and sitemap only when their bytes
//! change; every file atomically. An issue's slug (its file's name) names its folder for
//! good: an issue whose file is gone keeps its page and its place in the list unless
//! [`Options::prune`] asks, and one that fails to render keeps its last page.
//!
//! What it may touch: only the site folder, and there only what it wrote (each issue's files
//! as the manifest records them, the list's pages, `feed.xml`, `sitemap.xml`, `.bulletin/`),
//! so files of the user's in the folder stay. It reads issues, layouts and images and writes
//! none of them; it never sends, and reads no subscriber list, ledger or secret. It prints
//! nothing: the [`Report`] says what happened, for the command line to tell.

mod archive;
mod images;
mod manifest;
mod page;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};

pub use archive::{FEED_ENTRIES, PER_PAGE};
pub use images::site_path;
pub use manifest::{Entry, Manifest};

use crate::config::Archive;
use crate::edition::{self, Edition, EditionError, Images};
use crate::issue;
use crate::layout::{Layout, LayoutError};
use crate::merge::FieldKey;
use crate::output::{WriteError, write_atomic};
use crate::render::RenderError;

/// What to publish, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The issue files to publish now; the site keeps every other issue it has.
    pub issues: Vec<PathBuf>,
    /// The site folder.
    pub site: PathBuf,
    /// A layout folder that overrides each issue's own choice, as for `render`.
    pub layout: Option<PathBuf>,
    /// The workspace's folder: the list of issues is drawn with its layout
    /// (`layouts/default/`, else the built-in one) or with [`Options::layout`].
    pub root: PathBuf,
    /// The workspace's `[archive]`: the site's address, without which pages have no full
    /// address (no canonical link, no link previews' addresses) and there is no feed or
    /// sitemap.
    pub archive: Option<Archive>,
    /// Take away the pages of issues whose files are gone.
    pub prune: bool,
    /// This moment: when a page that changes now was last updated.
    pub now: DateTime<Utc>,
}

/// The site folder of a workspace: `[archive] folder` (relative to the workspace), else
/// `site/`. What `bulletin serve` or a deploy step reads.
pub fn site_folder(root: &Path, archive: Option<&Archive>) -> PathBuf {
    match archive {
        Some(a) => root.join(&a.folder),
        None => root.join("site"),
    }
}

/// The issue files of a folder (`issues/*.json`), sorted.
pub fn issues_in(dir: &Path) -> Result<Vec<PathBuf>, PublishError> {
    let read = std::fs::read_dir(dir).map_err(|e| PublishError::Issues {
        dir: dir.to_path_buf(),
        reason: crate::diag::io_reason(&e),
    })?;
    let mut out: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// What a publish did, issue by issue and for the site.
#[derive(Debug, Default)]
pub struct Report {
    /// The issues asked for, in order.
    pub issues: Vec<IssueReport>,
    /// Issues the site keeps whose files are gone.
    pub kept: Vec<Gone>,
    /// Issues taken off the site because their files are gone ([`Options::prune`]).
    pub pruned: Vec<Gone>,
    /// The list's pages, the feed and the sitemap.
    pub site_files: Vec<SiteFile>,
}

impl Report {
    /// How many issues were written, found unchanged, and failed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for i in &self.issues {
            match i.outcome {
                Outcome::Published { .. } => c.0 += 1,
                Outcome::Unchanged => c.1 += 1,
                Outcome::Failed { .. } => c.2 += 1,
            }
        }
        c
    }
}

/// One issue asked for.
#[derive(Debug)]
pub struct IssueReport {
    /// The issue file.
    pub file: PathBuf,
    pub slug: String,
    pub outcome: Outcome,
    /// What the render had to guess, and what the page shows that it should not.
    pub warnings: Vec<String>,
}

/// What became of an issue.
#[derive(Debug)]
pub enum Outcome {
    /// Its files were written; `first` when the site did not have it before.
    Published { first: bool },
    /// What it would write is what the site has: nothing was written.
    Unchanged,
    /// It could not be published; `kept` when the site keeps its last page.
    Failed { error: IssueFailure, kept: bool },
}

/// An issue the site has whose file is gone.
#[derive(Debug, Clone)]
pub struct Gone {
    pub slug: String,
    /// The file it was published from, as reached from here.
    pub file: PathBuf,
}

/// A file of the site's own (a page of the list, the feed, the sitemap).
#[derive(Debug, Clone)]
pub struct SiteFile {
    pub path: PathBuf,
    /// False when the folder had it already, byte for byte.
    pub written: bool,
}

/// Why one issue could not be published (the others are).
#[derive(Debug, thiserror::Error)]
pub enum IssueFailure {
    /// The same as `render` says.
    #[error(transparent)]
    Edition(#[from] EditionError),
    /// The layout's `page.html.hbs`.
    #[error(transparent)]
    Page(RenderError),
    #[error(
        "{}: \"{slug}\" cannot name a page of the site: page, index.html, feed.xml and \
         sitemap.xml are the site's own, and a name that starts with a dot is hidden; rename \
         the issue file (its name is its page's address)",
        file.display()
    )]
    ReservedSlug { file: PathBuf, slug: String },
    #[error(
        "{}: the site already has an issue named {slug}, published from {}; rename one of the \
         two files (an issue file's name is its page's address)",
        file.display(),
        other.display()
    )]
    SlugTaken {
        file: PathBuf,
        slug: String,
        other: PathBuf,
    },
    #[error(
        "{}: the image {src} is not below the folder its path starts from, so the site cannot \
         put it beside the page (where an email whose images_url is the page reads it too); \
         move it below that folder, e.g. to images/, and write its path from there",
        file.display()
    )]
    ImageOutside { file: PathBuf, src: String },
    #[error("{}: cannot read the image {}: {reason}", file.display(), path.display())]
    ImageRead {
        file: PathBuf,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{}: two files would be written as {to} beside the page: {} and {}; rename one of them",
        file.display(),
        first.display(),
        second.display()
    )]
    Clash {
        file: PathBuf,
        to: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "{}: a file to write beside the page is named \"{name}\", which is not a path below \
         the page's folder",
        file.display()
    )]
    FileName { file: PathBuf, name: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What stops a publish as a whole (an issue that fails does not: see [`IssueFailure`]).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read the issues in {}: {reason}", dir.display())]
    Issues { dir: PathBuf, reason: String },
    #[error("cannot read the site's record of what it published, {}: {reason}", path.display())]
    Manifest { path: PathBuf, reason: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot remove {}: {reason}", path.display())]
    Remove { path: PathBuf, reason: String },
    /// The layout the list of issues is drawn with.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Its `archive.html.hbs`.
    #[error(transparent)]
    Template(RenderError),
    #[error("cannot write {}: {reason}", path.display())]
    Xml { path: PathBuf, reason: String },
}

/// Publishes `opts.issues` into the site folder, then the list of issues, the feed and the
/// sitemap from everything the site has.
pub fn publish(opts: &Options) -> Result<Report, PublishError> {
    let mut manifest = Manifest::load(&opts.site)?;
    let mut report = Report::default();
    let mut asked = BTreeSet::new();
    for file in &opts.issues {
        let slug = issue::slug_of(file);
        asked.insert(slug.clone());
        let had = manifest.issues.contains_key(&slug);
        let mut warnings = Vec::new();
        let outcome = match publish_issue(opts, &mut manifest, file, &slug, &mut warnings) {
            Ok(true) => Outcome::Published { first: !had },
            Ok(false) => Outcome::Unchanged,
            Err(error) => {
                let kept = had && !matches!(error, IssueFailure::SlugTaken { .. });
                Outcome::Failed { error, kept }
            }
        };
        report.issues.push(IssueReport {
            file: file.clone(),
            slug,
            outcome,
            warnings,
        });
    }
    let gone: Vec<(String, Entry)> = manifest
        .issues
        .iter()
        .filter(|(slug, e)| !asked.contains(*slug) && !opts.site.join(&e.source).is_file())
        .map(|(s, e)| (s.clone(), e.clone()))
        .collect();
    for (slug, entry) in gone {
        let g = Gone {
            slug: slug.clone(),
            file: crate::workspace::lexical(&opts.site.join(&entry.source)),
        };
        if opts.prune {
            remove_issue(&opts.site, &slug, &entry)?;
            manifest.issues.remove(&slug);
            report.pruned.push(g);
        } else {
            report.kept.push(g);
        }
    }
    // The record first: the pages it describes are written already.
    write_if_changed(&manifest::path(&opts.site), &manifest.to_bytes())?;
    let layout = list_layout(opts, &manifest)?;
    report.site_files = archive::write(&opts.site, &manifest, &layout, opts.archive.as_ref())?;
    Ok(report)
}

/// The layout the list of issues is drawn with: `--layout`, else the newest issue's (when its
/// folder is still there), else the workspace's, else the built-in one.
fn list_layout(opts: &Options, manifest: &Manifest) -> Result<Layout, LayoutError> {
    let newest = manifest
        .newest_first()
        .first()
        .and_then(|(_, e)| e.layout.as_ref())
        .map(|l| crate::workspace::lexical(&opts.site.join(l)))
        .filter(|d| d.is_dir());
    let folder = match (&opts.layout, newest) {
        (Some(asked), _) => Some(asked.clone()),
        (None, Some(newest)) => Some(newest),
        (None, None) => crate::layout::workspace_layout(&opts.root),
    };
    Layout::load(folder.as_deref())
}

/// Slugs the site's own files and folders have.
const RESERVED: [&str; 4] = ["page", "index.html", "feed.xml", "sitemap.xml"];

pub(crate) fn reserved(slug: &str) -> bool {
    slug.is_empty()
        || slug.starts_with('.')
        || slug.contains(['/', '\\'])
        || RESERVED.contains(&slug.to_lowercase().as_str())
}

/// Publishes one issue; true when its files were written, false when the site has them
/// already. Its entry in the manifest is brought up to date either way.
fn publish_issue(
    opts: &Options,
    manifest: &mut Manifest,
    file: &Path,
    slug: &str,
    warnings: &mut Vec<String>,
) -> Result<bool, IssueFailure> {
    if reserved(slug) {
        return Err(IssueFailure::ReservedSlug {
            file: file.to_path_buf(),
            slug: slug.to_string(),
        });
    }
    let source = relative_to(&opts.site, file);
    if let Some(entry) = manifest.issues.get(slug) {
        let other = opts.site.join(&entry.source);
        if entry.source != source && other.is_file() && !same_file(&other, file) {
            return Err(IssueFailure::SlugTaken {
                file: file.to_path_buf(),
                slug: slug.to_string(),
                other: crate::workspace::lexical(&other),
            });
        }
    }
    let edition = edition::prepare(&edition::Options {
        issue: file.to_path_buf(),
        layout: opts.layout.clone(),
        images: Images::Site,
        archive: opts.archive.clone(),
    })?;
    warnings.extend(edition.rendered.warnings.iter().map(ToString::to_string));
    warnings.extend(readers_data(&edition));
    let url = opts.archive.as_ref().map(|a| a.issue_url(slug));
    let feed_url = opts
        .archive
        .as_ref()
        .map(|a| format!("{}feed.xml", a.base_url));
    let built = page::build(
        &edition,
        &page::Place {
            url: url.as_deref(),
            feed_url: feed_url.as_deref(),
        },
    )
    .map_err(IssueFailure::Page)?;

    let mut files: Vec<(String, Vec<u8>, PathBuf)> = vec![
        ("index.html".into(), built.page.into_bytes(), file.into()),
        ("print.html".into(), built.print.into_bytes(), file.into()),
    ];
    for copy in images::copies(&edition, &built.content)? {
        let bytes = std::fs::read(&copy.from).map_err(|e| IssueFailure::ImageRead {
            file: file.to_path_buf(),
            path: copy.from.clone(),
            reason: crate::diag::io_reason(&e),
        })?;
        files.push((copy.to, bytes, copy.from));
    }
    for (name, body) in beside_page(&edition) {
        if !images::safe_relative(&name) {
            return Err(IssueFailure::FileName {
                file: file.to_path_buf(),
                name,
            });
        }
        files.push((name, body.into_bytes(), file.into()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(IssueFailure::Clash {
            file: file.to_path_buf(),
            to: w[0].0.clone(),
            first: w[0].2.clone(),
            second: w[1].2.clone(),
        });
    }

    // To the second: the feed and the sitemap say no more.
    let now = opts.now.trunc_subsecs(0);
    let hash = fingerprint(files.iter().map(|(n, b, _)| (n.as_str(), b.as_slice())));
    let dir = opts.site.join(slug);
    let content_path = manifest::content_path(&opts.site, slug);
    let previous = manifest.issues.get(slug);
    let unchanged = previous.is_some_and(|e| {
        e.hash == hash && e.files.iter().all(|f| dir.join(f).is_file()) && content_path.is_file()
    });
    if !unchanged {
        // Only the files that differ: an image that did not change keeps its date, and an
        // upload that compares dates skips it.
        for (name, bytes, _) in &files {
            write_if_changed(&dir.join(name), bytes)?;
        }
        write_if_changed(&content_path, built.content.as_bytes())?;
        if let Some(old) = previous {
            for stale in old
                .files
                .iter()
                .filter(|f| !files.iter().any(|n| &n.0 == *f))
            {
                remove_quietly(&dir, stale);
            }
        }
    }
    let entry = Entry {
        source,
        hash,
        files: files.into_iter().map(|(n, _, _)| n).collect(),
        title: built.meta.title,
        preheader: built.meta.preheader,
        date: edition.issue.issue.date,
        date_text: built.meta.date_text,
        lang: built.meta.lang,
        dir: built.meta.dir,
        layout: edition.layout.dir().map(|d| relative_to(&opts.site, d)),
        published: previous.map_or(now, |e| e.published),
        updated: match previous {
            Some(e) if unchanged => e.updated,
            _ => now,
        },
    };
    manifest.issues.insert(slug.to_string(), entry);
    Ok(!unchanged)
}

/// The files other stages write beside an issue's page, each as a path relative to the
/// page's folder (`calendar/1-….ics`) and its text; `publish` writes them with the page, counts
/// them in its fingerprint and records them in the manifest, so they are rewritten when they
/// change and removed with the page. Today: the issue's calendar entries, in the layout's
/// words, where the email's "Add to calendar" `.ics` links point.
fn beside_page(edition: &Edition) -> Vec<(String, String)> {
    crate::calendar::files_with(&edition.issue, &edition.layout)
        .into_iter()
        .map(|f| (f.name, f.body))
        .collect()
}

/// What the web page would show of a reader, or for one, that it should not: the layout's
/// unsubscribe link (a layout that does not leave it out on the web, `{{#unless web}}`) and
/// merge fields without a fallback (the page shows nothing in their place).
fn readers_data(edition: &Edition) -> Vec<String> {
    let html = &edition.rendered.html;
    let mut out = Vec::new();
    if html.uses(&FieldKey::UnsubscribeUrl) {
        out.push(
            "the page shows the layout's unsubscribe link, which leads nowhere on the web: put it \
             inside {{#unless web}} … {{/unless}} in the layout's footer.mjml.hbs, as the \
             default layout does"
                .to_string(),
        );
    }
    let mut named = BTreeSet::new();
    for field in html.fields() {
        if let FieldKey::Subscriber(name) = &field.key
            && field.fallback.is_none()
            && named.insert(name.clone())
        {
            out.push(format!(
                "{{{{subscriber.{name}}}}} has no fallback, so the page shows nothing in its \
                 place; write {{{{subscriber.{name} | default: \"…\"}}}} for the words the \
                 page should show"
            ));
        }
    }
    out
}

/// SHA-256 (hex) of files, by name and bytes.
fn fingerprint<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, bytes) in files {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` (atomically) unless it holds them already; true when it wrote.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, WriteError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(path, bytes)?;
    Ok(true)
}

/// Takes an issue off the site: the files the manifest records for it, its folders once
/// empty, its content for the feed. Files of the user's in its folder stay.
fn remove_issue(site: &Path, slug: &str, entry: &Entry) -> Result<(), PublishError> {
    let dir = site.join(slug);
    for f in &entry.files {
        let path = dir.join(f);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PublishError::Remove {
                    path,
                    reason: crate::diag::io_reason(&e),
                });
            }
        }
        remove_empty_parents(&dir, f);
    }
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_file(manifest::content_path(site, slug));
    Ok(())
}

/// Removes `dir/rel` if it is there (a file the issue no longer has), and its folders below
/// `dir` once empty.
fn remove_quietly(dir: &Path, rel: &str) {
    if images::safe_relative(rel) {
        let _ = std::fs::remove_file(dir.join(rel));
        remove_empty_parents(dir, rel);
    }
}

/// Removes the folders of `rel` below `dir` that are empty, deepest first.
fn remove_empty_parents(dir: &Path, rel: &str) {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    while !parts.is_empty() {
        if std::fs::remove_dir(dir.join(parts.join("/"))).is_err() {
            break;
        }
        parts.pop();
    }
}

/// `file` relative to the folder `site`, '/'-separated: how the manifest names an issue's
/// file, valid wherever the workspace is.
fn relative_to(site: &Path, file: &Path) -> String {
    let rel = match (std::path::absolute(site), std::path::absolute(file)) {
        (Ok(site), Ok(file)) => pathdiff::diff_paths(
            crate::workspace::lexical(&file),
            crate::workspace::lexical(&site),
        )
        .unwrap_or(file),
        _ => file.to_path_buf(),
    };
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// The images of an issue that a sent email reads from its page on the site (its
/// `images_url` is the page's address, as `[archive]` makes it when the issue has none), and
/// that the local site folder `site` does not have yet, each as its path in the page's folder
/// (`images/a.png`): what `check` warns about before the issue goes out. Empty when the issue
/// reads its images elsewhere.
pub fn unpublished_images(edition: &Edition, archive: &Archive, site: &Path) -> Vec<String> {
    let page = archive.issue_url(&edition.issue.slug);
    if edition.issue.issue.images_url.as_ref().map(|u| u.as_str()) != Some(page.as_str()) {
        return Vec::new();
    }
    let html = crate::check::own_html(&edition.rendered);
    images::sources(&html)
        .into_iter()
        .filter_map(|src| {
            let rest = src.strip_prefix(&page)?;
            let at = site_path(rest)?;
            (!site.join(&edition.issue.slug).join(&at).is_file()).then_some(at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sites_own_names_are_not_slugs() {
        for slug in [
            "page",
            "Page",
            "index.html",
            "feed.xml",
            "sitemap.xml",
            ".x",
            "",
        ] {
            assert!(reserved(slug), "{slug}");
        }
        for slug in ["2020-06", "pages", "été 2020", "feed"] {
            assert!(!reserved(slug), "{slug}");
        }
    }

    #[test]
    fn the_fingerprint_tells_names_from_bytes() {
        let a = fingerprint([("ab", b"c".as_slice())].into_iter());
        let b = fingerprint([("a", b"bc".as_slice())].into_iter());
        assert_ne!(a, b);
        assert_eq!(a, fingerprint([("ab", b"c".as_slice())].into_iter()));
    }

    #[test]
    fn issue_files_are_named_from_the_site_folder() {
        assert_eq!(
            relative_to(Path::new("site"), Path::new("issues/2020-06.json")),
            "../issues/2020-06.json"
        );
        assert_eq!(
            relative_to(
                Path::new("deep/site"),
                Path::new("./issues/../issues/a.json")
            ),
            "../../issues/a.json"
        );
    }
}
