//! `bulletin status`: how the sending of an issue stands, from the ledger.

use std::path::PathBuf;

use crate::cli::{Error, say};
use crate::send::{self, Format, Listing};
use crate::workspace::ledger_path;

/// Show how the sending of an issue stands.
///
/// Reads the workspace's ledger: how many got it, failed (and why), are pending, and how many
/// are uncertain: they may have two copies (an answer was lost before they went again, or a
/// crash left them in flight). --failed --csv lists exactly who did not get it and why;
/// --uncertain lists who may have it twice. What readers did from the issue's links
/// (unsubscribes answered by bulletin serve) is counted too.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin status issues/2020-06.json\n  bulletin status issues/2020-06.json --failed --csv > failed.csv\n  bulletin status issues/2020-06.json --uncertain --csv > uncertain.csv"
)]
pub struct Args {
    /// The issue file.
    pub issue: PathBuf,
    /// List the recipients who did not get it.
    #[arg(long)]
    pub failed: bool,
    /// List the recipients who may have two copies.
    #[arg(long, conflicts_with = "failed")]
    pub uncertain: bool,
    /// With --failed or --uncertain: as CSV (email,state,attempts,reply).
    #[arg(long)]
    pub csv: bool,
    /// As JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let slug = args
        .issue
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage("name an issue file".into()))?;
    let listing = match (args.failed, args.uncertain) {
        (true, _) => Listing::Failed,
        (_, true) => Listing::Uncertain,
        _ if args.csv => {
            return Err(Error::Usage(
                "--csv goes with --failed or --uncertain".into(),
            ));
        }
        _ => Listing::Nobody,
    };
    let came_back = crate::suppressions::by_issue(&store_path(&root), &slug)?;
    let status = send::status(&ledger_path(&root), &slug, listing)?.with_came_back(came_back);
    let format = match (args.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Text,
    };
    say(&status.render(format));
    Ok(())
}

/// The suppression store `bulletin serve` writes: `[serve] store`, or its default when the
/// settings cannot be read (status must work while they are being written).
fn store_path(root: &std::path::Path) -> PathBuf {
    let store = crate::config::load(&root.join(crate::config::FILE_NAME))
        .map(|c| c.serve.store)
        .unwrap_or_else(|_| crate::config::Serve::default().store);
    root.join(store)
}
