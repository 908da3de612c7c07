//! `bulletin publish`: the web edition, a static site folder of every issue. Glue only: the
//! site is [`crate::publish`]'s; this file chooses the issues and the folder and says what
//! was written.

use std::path::PathBuf;

use crate::cli::{Error, note, say, warn};
use crate::publish::{self, Outcome};

/// Publish the issues as a website: a folder to upload anywhere.
///
/// Writes the site folder (site/ in the workspace; [archive] folder in bulletin.toml, or
/// --out, to choose another) with, for each issue, its page SLUG/index.html (the email as a
/// web page: merge fields show their fallbacks, and there is no unsubscribe link and nothing
/// of any reader's), its print version SLUG/print.html and its images beside them; the list
/// of all issues, newest first (index.html, then page/2/index.html and on past 50 issues);
/// and, once bulletin.toml says where the site will be read ([archive] base_url), the Atom
/// feed feed.xml and sitemap.xml. Then upload the whole folder to that address.
///
/// With [archive] base_url set, an issue without "web_url" or "images_url" gets its page on
/// the site for both: its "View in browser" link, and the images of the email it sends, point
/// there. Publish (and upload) before you send.
///
/// Only what changed is written again (the folder keeps its record in
/// .bulletin/manifest.json). A page keeps its address for good: deleting an issue file does
/// not take its page off the site, --prune does. Exits 1 when an issue could not be published:
/// the others are, and it keeps its last page.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  bulletin publish                         every issue in the workspace's issues/
  bulletin publish issues/2020-06.json     just this issue (the list of issues is updated too)
  bulletin publish --out /tmp/site         write the site somewhere else
  bulletin publish --prune                 also take off the pages of issue files that are gone

In bulletin.toml:
  [archive]
  base_url = \"https://example.org/newsletter/\"   # where the site will be read
  folder = \"site\"                                # where it is written (the default)")]
pub struct Args {
    /// The issue files to publish (default: every issues/*.json of the workspace). The site
    /// keeps the issues it has that are not named.
    pub issues: Vec<PathBuf>,
    /// The site folder to write (default: [archive] folder in bulletin.toml, else site/ in
    /// the workspace).
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    // The same layout choice as render, check, preview and send.
    #[arg(long, value_name = "DIR", help = super::render::LAYOUT_HELP)]
    pub layout: Option<PathBuf>,
    /// Take off the site the pages of issues whose files are gone (they stay without it, so
    /// that links in emails already sent keep working).
    #[arg(long)]
    pub prune: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = super::init::here()?;
    let archive = here.archive()?;
    let root = here.folder(".");
    let site = match &args.out {
        Some(out) => out.clone(),
        None => publish::site_folder(&root, archive.as_ref()),
    };
    let site = crate::workspace::lexical(&site);
    let issues = if args.issues.is_empty() {
        let dir = here.folder("issues");
        let found = publish::issues_in(&dir).map_err(|e| Error::Hinted {
            error: Box::new(e.into()),
            hint: "name the issue files to publish: bulletin publish issues/2020-06.json".into(),
        })?;
        if found.is_empty() {
            note(&format!(
                "no issue files (*.json) in {}",
                here.shown(&dir).display()
            ));
        }
        found
    } else {
        args.issues.clone()
    };
    let report = publish::publish(&publish::Options {
        issues,
        site: site.clone(),
        layout: args.layout.clone(),
        root,
        archive: archive.clone(),
        prune: args.prune,
        now: crate::clock::now(),
    })
    .map_err(|e| match e {
        publish::PublishError::Manifest { .. } => Error::Hinted {
            error: Box::new(e.into()),
            hint: "move it away and publish again: every issue file is published anew at its \
                   address, but pages whose files are gone are no longer listed"
                .into(),
        },
        e => e.into(),
    })?;

    let shown = |p: &std::path::Path| here.shown(p).display().to_string();
    let mut out = String::new();
    for i in &report.issues {
        for w in &i.warnings {
            warn(&format!("{}: {w}", shown(&i.file)));
        }
        match &i.outcome {
            Outcome::Published { .. } => out.push_str(&format!(
                "published {}  {}\n",
                i.slug,
                shown(&site.join(&i.slug).join("index.html"))
            )),
            Outcome::Unchanged => out.push_str(&format!("unchanged {}\n", i.slug)),
            Outcome::Failed { error, kept } => {
                say(&std::mem::take(&mut out));
                // The same words as `render` for the same issue.
                note(&crate::diag::error_lines(&error.to_string()));
                out.push_str(&match kept {
                    true => format!("failed    {}  (its last published page stays)\n", i.slug),
                    false => format!("failed    {}\n", i.slug),
                });
            }
        }
    }
    for g in &report.kept {
        out.push_str(&format!(
            "kept      {}  ({} is gone; --prune takes its page off)\n",
            g.slug,
            shown(&g.file)
        ));
    }
    for g in &report.pruned {
        out.push_str(&format!(
            "removed   {}  ({} is gone)\n",
            g.slug,
            shown(&g.file)
        ));
    }
    for f in &report.site_files {
        let how = if f.written { "wrote    " } else { "unchanged" };
        out.push_str(&format!("{how} {}\n", shown(&f.path)));
    }
    let (published, unchanged, failed) = report.counts();
    let plural = |n: usize| if n == 1 { "issue" } else { "issues" };
    let mut summary = format!(
        "{published} {} published, {unchanged} unchanged",
        plural(published)
    );
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    if !report.kept.is_empty() {
        summary.push_str(&format!(", {} kept without their files", report.kept.len()));
    }
    if !report.pruned.is_empty() {
        summary.push_str(&format!(", {} removed", report.pruned.len()));
    }
    let folder = format!("{}/", shown(&site).trim_end_matches('/'));
    match &archive {
        Some(a) => summary.push_str(&format!(". Upload {folder} to {}\n", a.base_url.as_str())),
        None => summary.push_str(&format!(". {folder} is ready to upload\n")),
    }
    out.push_str(&summary);
    say(&out);
    if archive.is_none() {
        warn(
            "no feed.xml or sitemap.xml, and no full addresses for link previews: they need the \
             address the site will be read at. Set it in bulletin.toml:\n  [archive]\n  \
             base_url = \"https://example.org/newsletter/\"",
        );
    }
    if failed > 0 {
        return Err(Error::Failed);
    }
    Ok(())
}
