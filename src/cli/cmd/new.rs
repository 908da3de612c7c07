//! `bulletin new`: the next issue, from the latest one in the workspace's issues/ (the
//! workspace is found upward from the current folder) or from --from ISSUE.
//!
//! Glue only: which issue is the latest and what the next one keeps are
//! [`crate::issue::next`]'s; the date comes from [`crate::clock`] unless --date gives it.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::cli::{Error, note, say, warn};
use crate::clock;
use crate::issue::{self, next};
use crate::output::write_atomic;

/// Create the next issue from the last one.
///
/// Starts from the issue in the workspace's issues/ with the latest "date" (or from --from
/// ISSUE) and writes <SLUG>.json next to it: the same sections with their headings and columns,
/// the about block as it was, the events and agenda entries that are not over by the new
/// date, and "TODO" placeholders for the subject, the preheader, the introduction and the
/// news, which bulletin check refuses to send. Prints the new file's path; never replaces a
/// file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin new\n  bulletin new --date 2026-12-01\n  bulletin new --from issues/2026-11.json 2026-12-special"
)]
pub struct Args {
    /// The new issue's name, which names its file and outputs (default: the date's YYYY-MM,
    /// or YYYY-MM-DD if that issue exists).
    #[arg(value_name = "SLUG")]
    pub slug: Option<String>,
    /// The issue to start from (default: the one in the workspace's issues/ with the latest
    /// date).
    #[arg(long, value_name = "ISSUE")]
    pub from: Option<PathBuf>,
    /// The new issue's date (default: today). Events and agenda entries over before it are
    /// dropped.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<NaiveDate>,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("\"{s}\" is not a date; write YYYY-MM-DD, e.g. 2026-12-01"))
}

pub fn run(args: Args) -> Result<(), Error> {
    let date = args.date.unwrap_or_else(clock::today);
    let here = super::init::here()?;
    let from = match args.from {
        Some(path) => path,
        None => {
            let latest = next::latest_in(&here.folder("issues")).map_err(|e| match e {
                next::NextError::NoIssue { .. } => Error::Hinted {
                    error: Box::new(e.into()),
                    hint: "run bulletin new in a workspace (bulletin init makes one), or name \
                           the issue to start from with --from ISSUE"
                        .into(),
                },
                e => e.into(),
            })?;
            for (path, reason) in &latest.skipped {
                warn(&format!("skipped {}: {reason}", here.shown(path).display()));
            }
            latest.path
        }
    };
    // The previous issue's layout decides which fields its kinds may hold (fields.toml).
    let (loaded, layout) = crate::edition::load(&from, None)?;
    let dir = from.parent().filter(|p| !p.as_os_str().is_empty());
    let in_dir = |slug: &str| {
        let name = format!("{slug}.json");
        dir.map_or_else(|| PathBuf::from(&name), |d| d.join(&name))
    };
    let slug = match args.slug {
        Some(slug) => checked_slug(&slug)?,
        None => {
            let month = date.format("%Y-%m").to_string();
            if in_dir(&month).symlink_metadata().is_ok() {
                date.format("%Y-%m-%d").to_string()
            } else {
                month
            }
        }
    };
    let path = in_dir(&slug);
    if path.symlink_metadata().is_ok() {
        let suggestion = format!("{slug}-2");
        return Err(Error::Hinted {
            hint: format!("name the new issue, e.g. bulletin new {suggestion}"),
            error: Box::new(
                next::NextError::Exists {
                    path: here.shown(&path),
                    suggestion,
                }
                .into(),
            ),
        });
    }
    let (new_issue, summary) = next::next_issue(&loaded.issue, date, &loaded.slug, &slug);
    let text = next::to_json(&new_issue, &path)?;
    // Never write an issue that bulletin itself would not read back.
    issue::read_str(&path, text.clone())?.check(layout.fields())?;
    write_atomic(&path, text.as_bytes())?;
    say(&format!("{}\n", here.shown(&path).display()));
    note(&describe(&summary));
    for section in &summary.emptied {
        warn(&format!(
            "the section {section} has nothing left to come: add entries or remove it"
        ));
    }
    Ok(())
}

/// A slug names a file in the issue's folder: no folders, no hidden files.
fn checked_slug(slug: &str) -> Result<String, Error> {
    let slug = slug.strip_suffix(".json").unwrap_or(slug);
    let ok = !slug.is_empty()
        && !slug.starts_with('.')
        && slug
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(slug.to_string())
    } else {
        Err(Error::Usage(format!(
            "SLUG \"{slug}\" cannot name an issue file: use letters, digits, \"-\" and \"_\", e.g. 2026-12 or 2026-12-special"
        )))
    }
}

/// "kept 2 events and 3 agenda entries; dropped 1 past event and 2 past agenda entries"
fn describe(s: &next::Summary) -> String {
    let kept = format!(
        "kept {} and {}",
        count(s.kept_events, "event", "events"),
        count(s.kept_agenda, "agenda entry", "agenda entries")
    );
    if s.dropped_events + s.dropped_agenda == 0 {
        return kept;
    }
    format!(
        "{kept}; dropped {} and {}",
        count(s.dropped_events, "past event", "past events"),
        count(s.dropped_agenda, "past agenda entry", "past agenda entries")
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
