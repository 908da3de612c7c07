//! `bulletin suppressions list|add|remove`: the suppression store, by hand.

use std::path::PathBuf;

use crate::cli::{Error, say};
use crate::config;
use crate::suppressions::{Event, Kind, Source, Store};

/// See and change who must not be sent to (the store `bulletin serve` records in).
///
/// Nothing is ever deleted: remove records a resubscribe, with your reason, after the
/// unsubscribe, bounce or complaint it undoes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin suppressions list\n  bulletin suppressions add ana@example.org\n  bulletin suppressions remove ana@example.org --reason \"asked by phone, 2020-06-04\""
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the addresses not to send to: address, kind (unsubscribe, bounce, complaint), source, when (tab-separated).
    List,
    /// Add an address (it gets no more issues).
    Add {
        address: lettre::Address,
        /// Why, kept with the event.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Take an address off (kept in the history as a resubscribe).
    Remove {
        address: lettre::Address,
        /// Why: a reader asked, an error… (required: an unsubscribe is the reader's choice).
        #[arg(long)]
        reason: String,
    },
}

/// Which store: the workspace's, as [serve] store says.
fn store_path() -> Result<PathBuf, Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let config = config::load(&root.join(config::FILE_NAME))?;
    Ok(root.join(&config.serve.store))
}

pub fn run(args: Args) -> Result<(), Error> {
    let path = store_path()?;
    let (address, kind, reason) = match &args.action {
        Action::List => {
            if !path.is_file() {
                return Ok(());
            }
            let mut out = String::new();
            for s in Store::open(&path)?.current()? {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    s.address, s.kind, s.source, s.at
                ));
            }
            say(&out);
            return Ok(());
        }
        Action::Add { address, reason } => (address, Kind::Unsubscribe, reason.as_deref()),
        Action::Remove { address, reason } => (address, Kind::Resubscribe, Some(reason.as_str())),
    };
    let mut store = Store::open(&path)?;
    let text = address.to_string();
    // What suppresses the address now: an unsubscribe, a bounce or a complaint. Staff's
    // remove lifts any of them.
    let before = store.state(&text)?;
    let unchanged = match kind {
        Kind::Resubscribe => before.is_none(),
        _ => before.is_some(),
    };
    if unchanged {
        say(&format!(
            "{text}: {} already; nothing recorded\n",
            match kind {
                Kind::Resubscribe => "not suppressed",
                _ => "suppressed",
            }
        ));
        return Ok(());
    }
    store.record(&Event {
        at: crate::clock::now(),
        address: &text,
        kind,
        source: Source::Staff,
        issue: None,
        reason,
    })?;
    say(&format!("{text}: {kind} recorded\n"));
    Ok(())
}
