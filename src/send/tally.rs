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
    /// Recipients an earlier run failed for good, left alone by this one (`--only-failed`
    /// tries them again), with the reply they failed with.
    pub failed_before: Vec<(RecipientKey, String)>,
    /// Recipients who may have two copies (an answer was lost and the message went again, or
    /// may have gone before it failed), with what happened.
    pub uncertain: Vec<(RecipientKey, String)>,
    /// Rows not sent to, by reason ("unsubscribed", "duplicate"…).
    pub skipped: BTreeMap<String, u64>,
    /// Invalid rows, with their line and why.
    pub invalid: Vec<(u64, String)>,
    pub already_sent: u64,
    /// Recipients claimed but not sent because the run stopped (Ctrl-C, refused credentials,
    /// a provider that cannot go on): pending again, and a new run sends to them.
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

/// What became of one recipient in this run. `uncertain`: they may have two copies (see
/// [`Tally::uncertain`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Fate {
    /// Accepted: our Message-ID and the server's reply; `doubt`, why they may have two
    /// copies (an earlier try's answer was lost), if they may.
    Sent {
        message_id: String,
        reply: String,
        doubt: Option<String>,
    },
    /// Not accepted, for this reason.
    Failed { failure: Failure, uncertain: bool },
    /// Not sent because the run stopped first.
    NotTried { uncertain: bool },
    /// The task sending it failed (a panic): whether it left is unknown, so they may get two
    /// copies when a new run tries again.
    Crashed(String),
}

impl Fate {
    /// Accepted, with no doubt about it.
    #[cfg(test)]
    pub(super) fn sent(message_id: &str, reply: &str) -> Fate {
        Fate::Sent {
            message_id: message_id.into(),
            reply: reply.into(),
            doubt: None,
        }
    }

    /// Failed, with no doubt that nothing went.
    pub(super) fn failed(failure: Failure) -> Fate {
        Fate::Failed {
            failure,
            uncertain: false,
        }
    }
}

/// A recipient, and what became of them.
pub(super) type Delivered = (RecipientKey, Fate);

impl Tally {
    /// Counts one recipient's fate; returns what the ledger records for them.
    pub(super) fn count(&mut self, key: RecipientKey, fate: Fate) -> (RecipientKey, Outcome) {
        let outcome = match fate {
            Fate::Sent {
                message_id,
                reply,
                doubt,
            } => {
                self.sent += 1;
                if let Some(why) = &doubt {
                    self.doubt(&key, true, &format!("sent again after: {why}"));
                }
                Outcome::Sent {
                    message_id,
                    reply,
                    uncertain: doubt.is_some(),
                }
            }
            Fate::NotTried { uncertain } => {
                self.not_tried += 1;
                self.doubt(&key, uncertain, "an answer was lost before the run stopped");
                Outcome::Released { uncertain }
            }
            // Refused credentials, a relay or provider that cannot go on: nothing this reader
            // did, so they are not failed but pending again, for the next run.
            Fate::Failed { failure, uncertain }
                if matches!(failure.kind, Kind::Auth | Kind::Unreachable) =>
            {
                self.not_tried += 1;
                self.doubt(&key, uncertain, &failure.reply);
                Outcome::Released { uncertain }
            }
            Fate::Failed { failure, uncertain } => {
                let permanent = failure.kind == Kind::Permanent;
                let list = if permanent {
                    &mut self.failed_permanent
                } else {
                    &mut self.failed_temporary
                };
                list.push((key.clone(), failure.reply.clone()));
                self.doubt(&key, uncertain, &failure.reply);
                Outcome::Failed {
                    permanent,
                    reply: failure.reply,
                    uncertain,
                }
            }
            Fate::Crashed(reply) => {
                self.failed_temporary.push((key.clone(), reply.clone()));
                self.doubt(&key, true, &reply);
                Outcome::Failed {
                    permanent: false,
                    reply,
                    uncertain: true,
                }
            }
        };
        (key, outcome)
    }

    fn doubt(&mut self, key: &RecipientKey, uncertain: bool, why: &str) {
        if uncertain {
            self.uncertain.push((key.clone(), why.to_string()));
        }
    }

    /// Failed, in this run or for good in an earlier one.
    pub fn failed(&self) -> u64 {
        (self.failed_permanent.len() + self.failed_temporary.len() + self.failed_before.len())
            as u64
    }

    /// Readers of the list who do not have the issue: failed (now or before), or not tried
    /// because the run stopped.
    pub fn unsent(&self) -> u64 {
        self.failed() + self.not_tried
    }
}
