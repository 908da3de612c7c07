//! A run: the ledger opened, the issue taken hold of (refused while another live run holds
//! it, or when it changed after a partial send unless forced), the loop, the issue let go.
//!
//! Owns the run's lifetime in the ledger (start, heartbeats through the loop, finish); the
//! loop's rules are `deliver`'s. Prints nothing: what happens is told through [`Event`]s.

use std::path::{Path, PathBuf};

use super::deliver::Loop;
use super::plan::{List, subject};
use super::stop::Stop;
use super::tally::{Progress, Tally};
use super::{Options, SendError, Tools, live};
use crate::ledger::{Ledger, RunRequest};
use crate::transport::Transport;

/// What a run is of, and how it goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The ledger file: the workspace's, or a dry run's own ([`ledger_for`]).
    pub ledger: PathBuf,
    pub list: List,
    /// Go on even though the issue changed after a partial send.
    pub force: bool,
    /// Stops the run once what is in flight is recorded ([`Stop::on_ctrl_c`]).
    pub stop: Stop,
    pub delivery: Options,
}

/// What a run tells as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The run holds the issue. `recovered` readers were in flight when an earlier run
    /// stopped: they are sent again (a few may get two copies).
    Started { recovered: u64 },
    /// After each delivery.
    Progress(Progress),
}

/// The ledger a send of the workspace at `root` records in: the workspace's, or for a dry run
/// into a folder, one of its own there, so that a dry run records nothing in the workspace's.
pub fn ledger_for(root: &Path, dry_run: Option<&Path>) -> PathBuf {
    match dry_run {
        Some(dir) => dir.join(".dry-run-ledger.sqlite"),
        None => crate::workspace::ledger_path(root),
    }
}

/// Sends the issue of `tools.composer` to `opts.list`, recording every outcome.
pub async fn run<T: Transport>(
    opts: &RunOptions,
    tools: &Tools<T>,
    mut events: impl FnMut(Event),
) -> Result<Tally, SendError> {
    let mut ledger = Ledger::open(&opts.ledger)?;
    let holder = live::this_process();
    let (hash, subject) = (
        tools.composer.rendered.content_hash(),
        subject(&tools.composer),
    );
    let request = RunRequest {
        issue: &tools.composer.issue,
        content_hash: &hash,
        subject: &subject,
        holder: &holder,
        force: opts.force,
    };
    let start = ledger.start_run(&request, tools.clock.now(), |other| {
        live::process_alive(other, &holder.host)
    })?;
    events(Event::Started {
        recovered: start.recovered,
    });
    let tally = match opts.list.rows() {
        Ok(rows) => {
            let run = Loop {
                tools,
                ledger: &mut ledger,
                run: start.run,
                opts: &opts.delivery,
                stop: &opts.stop,
            };
            run.deliver(rows, |p| events(Event::Progress(p))).await
        }
        Err(e) => Err(e.into()),
    };
    // Let go whatever happened. Should this fail, the run's process is gone in a moment and
    // the next run notices.
    let _ = ledger.finish_run(start.run, tools.clock.now());
    tally
}
