//! One entry from an issue file to the email: load the issue, choose its layout, render it
//! with its image paths resolved for where it will be read. `render`, `check`, `preview`,
//! `send` and `publish` (its web edition, [`Images::Site`]) all go through [`prepare`], so
//! that what is previewed and checked is what is sent, in the same layout (issue 11: the four
//! commands each had a copy, and the copies differed).
//!
//! The layout is the one asked for (`--layout`), else the issue's `"layout"`, else the
//! workspace's `layouts/default/`, else the built-in one ([`crate::layout::folder_for`]).
//!
//! This module owns the layout choice and where relative images point ([`Images`]). It does
//! not decide whether an edition may be sent (the rules are `check`'s:
//! [`crate::check::send_blockers`]), touches no network, writes nothing and prints nothing.

use std::path::{Path, PathBuf};

use crate::config::Archive;
use crate::issue::{self, IssueError, Link, LoadedIssue};
use crate::layout::{Layout, LayoutError};
use crate::render::{self, AssetBase, RenderError, RenderOptions, Rendered};

/// What to prepare, and for where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The issue file.
    pub issue: PathBuf,
    /// A layout folder that overrides the issue's own choice.
    pub layout: Option<PathBuf>,
    /// Where the email will be read, which decides where relative images point.
    pub images: Images,
    /// The workspace's web edition (`[archive]`), if it has one: an issue without `web_url`
    /// gets its page there, and, when it is sent, images without `images_url` are read there.
    pub archive: Option<Archive>,
}

/// Where the email will be read, and so where relative image paths (the issue's and the
/// layout's) must point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// In an inbox, as `send` sends it and `check` checks it: a relative image becomes the
    /// issue's `images_url` + its path; without `images_url` it stays as written, and
    /// [`crate::check::send_blockers`] refuses to let it go out.
    Sent,
    /// From files written into this folder (`render --out`): the issue's and the layout's
    /// images as paths relative to it (`../issues/images/a.png`, `../layouts/efus/logo.png`).
    /// The issue's images use `images_url` when it is set.
    FromFolder(PathBuf),
    /// From a page that serves the issue's folder and the layout's folder under these URL
    /// prefixes (the preview: `files/` and `layout/`).
    Served { issue: String, layout: String },
    /// On the issue's page of the published site (`publish`): the web edition, which leaves
    /// out what only a reader's email has ([`RenderOptions::web`]), its relative images, the
    /// issue's and the layout's, as written, for the copies `publish` puts beside the page.
    Site,
}

/// An issue rendered with its layout: everything the commands need to show, check or send
/// it.
#[derive(Debug, Clone)]
pub struct Edition {
    /// The issue as loaded.
    pub issue: LoadedIssue,
    /// The layout it was drawn with.
    pub layout: Layout,
    /// The email, ready to be filled for each reader, its images pointing where
    /// [`Options::images`] said.
    pub rendered: Rendered,
}

/// What can stop an issue from becoming an email, by stage.
#[derive(Debug, thiserror::Error)]
pub enum EditionError {
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Loads the issue, chooses its layout and renders it for `opts.images`.
pub fn prepare(opts: &Options) -> Result<Edition, EditionError> {
    let (mut loaded, layout) = load(&opts.issue, opts.layout.as_deref())?;
    let page_url = opts
        .archive
        .as_ref()
        .map(|a| a.issue_url(&issue::slug_of(&opts.issue)));
    if let Some(page) = &page_url {
        let sent = opts.images == Images::Sent;
        default_to_site(&mut loaded, page, sent);
    }
    let assets = match &opts.images {
        Images::Sent => AssetBase::Sent,
        Images::FromFolder(out) => AssetBase::Local {
            issue: relative_url(out, &loaded.dir),
            layout: layout
                .dir()
                .map(|d| relative_url(out, d))
                .unwrap_or_default(),
        },
        Images::Served { issue, layout } => AssetBase::Local {
            issue: issue.clone(),
            layout: layout.clone(),
        },
        Images::Site => AssetBase::Site,
    };
    let web = opts.images == Images::Site;
    let rendered = render::render(
        &loaded,
        &layout,
        &RenderOptions {
            assets,
            page_url,
            web,
        },
    )?;
    Ok(Edition {
        issue: loaded,
        layout,
        rendered,
    })
}

/// The issue's page on the site stands in for a `web_url` it does not have, and, in an email
/// that is sent, for its `images_url` (`publish` copies the images beside the page). A local
/// render or preview keeps showing the image files.
fn default_to_site(loaded: &mut LoadedIssue, page: &str, sent: bool) {
    let Ok(link) = Link::try_from(page.to_string()) else {
        return;
    };
    if loaded.issue.web_url.is_none() {
        loaded.issue.web_url = Some(link.clone());
    }
    if sent && loaded.issue.images_url.is_none() {
        loaded.issue.images_url = Some(link);
    }
}

/// Reads the issue, chooses and loads its layout, and checks the issue with the fields the
/// layout declares for its kinds (`fields.toml`): the layout is chosen from the issue's JSON
/// before the issue is checked, since what it may hold depends on the layout.
pub fn load(issue: &Path, layout: Option<&Path>) -> Result<(LoadedIssue, Layout), EditionError> {
    let source = issue::read(issue)?;
    let folder = crate::layout::folder_for(layout, &source.dir, source.layout());
    let layout = Layout::load(folder.as_deref())?;
    let loaded = source.check(layout.fields())?;
    Ok((loaded, layout))
}

/// The folder `to` as a URL prefix relative to the folder `from` ("../issues/").
fn relative_url(from: &Path, to: &Path) -> String {
    let (Ok(from), Ok(to)) = (std::path::absolute(from), std::path::absolute(to)) else {
        return String::new();
    };
    let Some(rel) = pathdiff::diff_paths(
        crate::workspace::lexical(&to),
        crate::workspace::lexical(&from),
    ) else {
        return String::new();
    };
    let mut url: String = rel
        .components()
        .map(|c| {
            let part = c.as_os_str().to_string_lossy();
            percent_encoding::utf8_percent_encode(&part, PATH_PART).to_string()
        })
        .collect::<Vec<_>>()
        .join("/");
    if !url.is_empty() {
        url.push('/');
    }
    url
}

/// What a folder name may keep as it is in a relative URL.
const PATH_PART: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_become_relative_url_prefixes() {
        assert_eq!(
            relative_url(Path::new("out"), Path::new("issues")),
            "../issues/"
        );
        assert_eq!(
            relative_url(
                Path::new("deep/er/out"),
                Path::new("issues/../layouts/my efus")
            ),
            "../../../layouts/my%20efus/"
        );
        assert_eq!(relative_url(Path::new("out"), Path::new("out")), "");
    }
}
