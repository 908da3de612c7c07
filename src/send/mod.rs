//! Sending an issue: one message per reader, built from the issue rendered once.
//!
//! The whole run lives here, in small parts:
//! - `plan`: the counting pass over the list, so that the person sending sees what will
//!   happen before it does;
//! - `run`: taking hold of the issue in the ledger (refused while another live run holds it,
//!   `live` tells whether its process still exists), the loop, letting go;
//! - the loop, `deliver`: the list read in batches → each batch **claimed** in the ledger →
//!   **dispatched** a few messages at a time (`dispatch`: pacing in `pace`, retries with
//!   backoff and 429 pauses in `retry`) → **recorded** in one commit; `policy` decides when
//!   the relay is gone or refuses us, [`Stop`] carries Ctrl-C;
//! - `tally` and `report`: what the run did, as data and as the report people and scripts
//!   read; `status`: where an issue's sending stands, from the ledger alone;
//! - `setup`: the composer and the transport a send works with, from the settings;
//! - `test_send`: a test copy to a few addresses, recorded nowhere.
//!
//! Time comes from the [`Clock`] handed in (timestamps) and from tokio's clock (waits), so
//! that tests drive a run with a fixed clock and paused time (`transport::stub` answers
//! from a script). This module knows nothing of SMTP or HTTP (a
//! [`Transport`](crate::transport::Transport) is all it sees), builds no message itself
//! ([`Composer`] does), and prints nothing: the CLI does.

mod deliver;
mod dispatch;
mod live;
mod pace;
mod plan;
mod policy;
mod report;
mod retry;
mod run;
mod setup;
mod status;
mod stop;
mod tally;
mod test_send;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::audience::AudienceError;
use crate::clock::Clock;
use crate::ledger::LedgerError;
use crate::message::{ComposeError, Composer};

pub use live::{process_alive, this_process};
pub use plan::{List, Plan, plan};
pub use report::{TestOutcome, TestReport};
pub use run::{Event, RunOptions, ledger_for, run};
pub use setup::{Setup, SetupError, tools};
pub use status::{Format, Listing, Status, status};
pub use stop::Stop;
pub use tally::{Progress, Stopped, Tally};
pub use test_send::test_send;

/// What a send works with: the message maker, the transport, and the clock that
/// stamps the ledger and the messages.
pub struct Tools<T> {
    pub composer: Arc<Composer>,
    pub transport: Arc<T>,
    pub clock: Arc<dyn Clock>,
}

/// How a run sends.
#[derive(Debug, Clone)]
pub struct Options {
    /// Messages in flight at once (the SMTP pool size).
    pub concurrency: usize,
    /// At most this many messages per period.
    pub rate: Option<(u32, Duration)>,
    /// Tries per message for temporary failures.
    pub max_attempts: u32,
    /// The first wait before a retry; it doubles each time.
    pub backoff: Duration,
    /// Recipients claimed and recorded per ledger transaction.
    pub batch: usize,
    /// Failures in a row, with no success at all, after which the relay counts as gone.
    pub unreachable_after: u32,
    /// Only recipients the ledger records as failed.
    pub only_failed: bool,
}

impl Options {
    /// The defaults, driven as fast as the transport allows.
    pub fn paced(pacing: crate::transport::Pacing) -> Options {
        Options {
            concurrency: pacing.concurrency,
            rate: pacing.rate,
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 4,
            rate: None,
            max_attempts: 4,
            backoff: Duration::from_secs(2),
            batch: 50,
            unreachable_after: 20,
            only_failed: false,
        }
    }
}

/// A problem that stops a send at once (a failed delivery does not: it is recorded in the
/// [`Tally`]).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    List(#[from] AudienceError),
    /// A test message cannot be built.
    #[error(transparent)]
    Compose(#[from] ComposeError),
}
