//! What a run did: counts, who failed and why, why it stopped; and what became of each
//! recipient on the way there ([`Fate`]), turned into what the ledger records.
//!
//! Plain data and counting; the text and JSON of the report are in `report`.

use std::collections::BTreeMap;

use crate::ledger::{Outcome, RecipientKey};
use crate::transport::{Failure, Kind};

/// Why a run ended before the end of the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// Ctrl-C (or another [`super::Stop`] request).
    Interrupted,
    /// The relay kept failing: its last reply.
    Unreachable(String),
    /// The relay refused the credentials: its reply.
    Auth(String),
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub sent: u64,
    /// Recipients who will not get it, with the reply.
    pub failed_permanent: Vec<(RecipientKey, String)>,
    /// Recipients still to retry, with the last reply.
    pub failed_temporary: Vec<(RecipientKey, String)>,
    /// Rows not sent to, by reason ("unsubscribed", "duplicate"…).
    pub skipped: BTreeMap<String, u64>,
    /// Invalid rows, with their line and why.
    pub invalid: Vec<(u64, String)>,
    pub already_sent: u64,
    /// Recipients claimed but not tried because the run stopped; a new run sends to them.
    pub not_tried: u64,
    pub stopped: Option<Stopped>,
}

/// Progress after each delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Recipients dealt with, whatever became of them.
    pub done: u64,
    pub sent: u64,
    pub failed: u64,
}

/// What became of one recipient in this run.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Fate {
    /// Accepted: our Message-ID and the server's reply.
    Sent { message_id: String, reply: String },
    /// Not accepted, for this reason.
    Failed(Failure),
    /// Not sent because the run stopped first.
    NotTried,
    /// The task sending it failed (a panic): whether it left is unknown; a new run tries
    /// again.
    Crashed(String),
}

/// A recipient, and what became of them.
pub(super) type Delivered = (RecipientKey, Fate);

impl Tally {
    /// Counts one recipient's fate; returns what the ledger records for them.
    pub(super) fn count(&mut self, key: RecipientKey, fate: Fate) -> (RecipientKey, Outcome) {
        let outcome = match fate {
            Fate::Sent { message_id, reply } => {
                self.sent += 1;
                Outcome::Sent { message_id, reply }
            }
            Fate::NotTried => {
                self.not_tried += 1;
                Outcome::Released
            }
            Fate::Failed(failure) => {
                let permanent = failure.kind == Kind::Permanent;
                let list = if permanent {
                    &mut self.failed_permanent
                } else {
                    &mut self.failed_temporary
                };
                list.push((key.clone(), failure.reply.clone()));
                Outcome::Failed {
                    permanent,
                    reply: failure.reply,
                }
            }
            Fate::Crashed(reply) => {
                self.failed_temporary.push((key.clone(), reply.clone()));
                Outcome::Failed {
                    permanent: false,
                    reply,
                }
            }
        };
        (key, outcome)
    }

    /// Failed, either way.
    pub fn failed(&self) -> u64 {
        (self.failed_permanent.len() + self.failed_temporary.len()) as u64
    }
}
