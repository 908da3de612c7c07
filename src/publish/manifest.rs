//! The site's own record of what `publish` wrote (`.bulletin/manifest.json` in the site
//! folder): each published issue by its slug, which names its page's folder for good, with
//! the issue file it came from, a fingerprint of what was written and what the list of issues
//! and the feed say about it. The list, the feed and the sitemap are built from it, so an
//! issue whose file is gone stays listed as long as its page stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::PublishError;

/// The folder of the site where `publish` keeps its records (the manifest, each issue's web
/// content for the feed). A static host serves it like any folder; nothing in it is private.
pub const STATE_DIR: &str = ".bulletin";
/// The manifest, in [`STATE_DIR`].
pub const FILE: &str = "manifest.json";
/// The format of the manifest this version writes.
const VERSION: u32 = 1;

/// Every issue the site has, by slug.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub issues: BTreeMap<String, Entry>,
}

/// One published issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The issue file, relative to the site folder, '/'-separated (`../issues/2020-06.json`).
    pub source: String,
    /// SHA-256 (hex) of every file written for the issue, names and bytes.
    pub hash: String,
    /// The files written in the issue's folder, relative to it, '/'-separated.
    pub files: Vec<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    pub date: NaiveDate,
    /// The date as the email writes it, in the issue's language.
    pub date_text: String,
    pub lang: String,
    pub dir: String,
    /// The layout folder it was drawn with, relative to the site folder; none for the
    /// built-in layout. The list of issues is drawn with the newest issue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// When the issue was first published.
    pub published: DateTime<Utc>,
    /// When its page last changed.
    pub updated: DateTime<Utc>,
}

impl Manifest {
    /// The manifest of the site folder `site`; an empty one when there is none yet.
    pub fn load(site: &Path) -> Result<Manifest, PublishError> {
        let path = path(site);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest {
                    version: VERSION,
                    issues: BTreeMap::new(),
                });
            }
            Err(e) => {
                return Err(PublishError::Manifest {
                    path,
                    reason: crate::diag::io_reason(&e),
                });
            }
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| PublishError::Manifest {
                path: path.clone(),
                reason: format!("it is not a manifest bulletin wrote ({e})"),
            })?;
        // What prune removes is named here: a record edited by hand must not lead it out of
        // the site folder.
        for (slug, entry) in &manifest.issues {
            if let Some(bad) = std::iter::once(slug)
                .filter(|s| super::reserved(s))
                .chain(
                    entry
                        .files
                        .iter()
                        .filter(|f| !super::images::safe_relative(f)),
                )
                .next()
            {
                return Err(PublishError::Manifest {
                    path,
                    reason: format!(
                        "it names \"{bad}\" for the issue {slug}, which is not a file of the site's"
                    ),
                });
            }
        }
        if manifest.version > VERSION {
            return Err(PublishError::Manifest {
                path,
                reason: format!(
                    "it was written by a newer bulletin (format {}, this one knows {VERSION})",
                    manifest.version
                ),
            });
        }
        Ok(manifest)
    }

    /// The manifest as it is written: JSON, two-space indented, slugs in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }

    /// The issues, newest first (by date, then by slug).
    pub fn newest_first(&self) -> Vec<(&String, &Entry)> {
        let mut all: Vec<(&String, &Entry)> = self.issues.iter().collect();
        all.sort_by(|a, b| (b.1.date, b.0).cmp(&(a.1.date, a.0)));
        all
    }
}

/// Where the manifest of the site folder `site` is.
pub fn path(site: &Path) -> PathBuf {
    site.join(STATE_DIR).join(FILE)
}

/// Where the web content of the issue `slug` is kept for the feed.
pub fn content_path(site: &Path, slug: &str) -> PathBuf {
    site.join(STATE_DIR)
        .join("content")
        .join(format!("{slug}.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(date: &str) -> Entry {
        Entry {
            source: "../issues/x.json".into(),
            hash: "00".into(),
            files: vec!["index.html".into()],
            title: "T".into(),
            preheader: None,
            date: date.parse().unwrap(),
            date_text: date.into(),
            lang: "en".into(),
            dir: "ltr".into(),
            layout: None,
            published: DateTime::UNIX_EPOCH,
            updated: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_record_that_leads_out_of_the_site_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        let mut e = entry("2020-06-03");
        e.files.push("../../elsewhere.txt".into());
        m.issues.insert("2020-06".into(), e);
        std::fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(path(dir.path()), m.to_bytes()).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("\"../../elsewhere.txt\" for the issue 2020-06"),
            "{err}"
        );
        m.issues.clear();
        m.issues.insert("..".into(), entry("2020-06-03"));
        std::fs::write(path(dir.path()), m.to_bytes()).unwrap();
        assert!(Manifest::load(dir.path()).is_err());
    }

    #[test]
    fn newest_first_by_date_then_slug() {
        let mut m = Manifest::default();
        m.issues.insert("2020-06".into(), entry("2020-06-03"));
        m.issues.insert("2020-07".into(), entry("2020-07-01"));
        m.issues
            .insert("2020-06-special".into(), entry("2020-06-03"));
        let order: Vec<&str> = m.newest_first().iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(order, ["2020-07", "2020-06-special", "2020-06"]);
        let back: Manifest = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
    }
}
