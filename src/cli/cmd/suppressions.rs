//! `bulletin suppressions list|add|remove|export`: the suppression store, by hand; and the
//! stores a send honours (its own, and the pulled mirror of one elsewhere).

use std::path::{Path, PathBuf};

use crate::cli::{Error, note, say, warn};
use crate::config;
use crate::suppressions::{Event, Kind, Source, Store, remote};

/// See and change who must not be sent to (the store `bulletin serve` records in).
///
/// Nothing is ever deleted: remove records a resubscribe, with your reason, after the
/// unsubscribe, bounce or complaint it undoes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin suppressions list\n  bulletin suppressions add ana@example.org\n  bulletin suppressions remove ana@example.org --reason \"asked by phone, 2020-06-04\"\n  bulletin suppressions export > events.csv"
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
    /// Every event of the store, oldest first, as CSV: id,at,address,kind,source,issue,reason
    /// (the history, resubscribes included; `list` gives who is suppressed now).
    Export {
        /// Only the events after this id (the first column of an earlier export).
        #[arg(long, default_value_t = 0, value_name = "ID")]
        since: i64,
    },
}

/// The store's events after `since`, as CSV, page by page.
fn export(path: &Path, since: i64) -> Result<(), Error> {
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    let header = ["id", "at", "address", "kind", "source", "issue", "reason"];
    let written = |e: csv::Error| Error::Usage(format!("cannot write the export: {e}"));
    out.write_record(header).map_err(written)?;
    if path.is_file() {
        let store = Store::open(path)?;
        let mut after = since;
        loop {
            let page = store.since(after, remote::PAGE)?;
            for e in &page {
                let id = e.id.to_string();
                let (issue, reason) = (e.issue.as_deref(), e.reason.as_deref());
                let row = [&id, &e.at, &e.address, &e.kind, &e.source];
                let rest = [issue.unwrap_or(""), reason.unwrap_or("")];
                out.write_record(row.iter().map(|s| s.as_str()).chain(rest))
                    .map_err(written)?;
            }
            match page.last() {
                Some(last) => after = last.id,
                None => break,
            }
        }
    }
    out.flush()
        .map_err(|e| Error::Usage(format!("cannot write the export: {e}")))
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
        Action::Export { since } => return export(&path, *since),
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

/// The suppression stores a send honours ([`remote::for_sending`]), saying what became of
/// the remote export; one that cannot be pulled stops the send, with what to do about it.
pub(crate) async fn for_sending(
    config: &config::Config,
    root: &Path,
    without_remote: bool,
) -> Result<Vec<PathBuf>, Error> {
    let found = remote::for_sending(config, root, without_remote)
        .await
        .map_err(|e| match e {
            remote::ForSendingError::Token(_) => Error::Hinted {
                error: Box::new(Error::Usage(e.to_string())),
                hint: "set it to the export token of the bulletin serve at [suppressions] remote"
                    .into(),
            },
            remote::ForSendingError::Pull(e) => Error::Hinted {
                error: Box::new(e.into()),
                hint: "nothing was sent, so that nobody who unsubscribed there gets this issue; fix the address or the server, or send with --without-remote-suppressions to use only what was pulled before".into(),
            },
        })?;
    match &found.remote {
        remote::RemoteState::NotSet => {}
        remote::RemoteState::Skipped(url) => warn(&format!(
            "not pulling the suppressions of {url} (--without-remote-suppressions): readers who unsubscribed there since the last pull may get this issue"
        )),
        remote::RemoteState::Pulled(url, pulled) => note(&format!(
            "Pulled {} new suppression events from {url} ({} in all)",
            pulled.events, pulled.total
        )),
    }
    Ok(found.stores)
}
