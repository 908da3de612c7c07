//! Dispatch: one delivery's worth of recipients (one message for SMTP, a provider's batch for
//! an API) composed, sent within the pace, and what failed for a reason that may pass sent
//! again after a backoff (or as long as the provider asked), a bounded number of times.
//!
//! Owns the transport calls and the waits between them; it never touches the ledger (the
//! loop claims before and records after) and decides nothing about the run as a whole except
//! raising the halt when the relay refuses us or is gone, so that nothing more starts.

use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::pace::Pace;
use super::retry::{Attempts, Next, Retry};
use super::stop::Stop;
use super::tally::{Delivered, Fate};
use crate::audience::Subscriber;
use crate::ledger::RecipientKey;
use crate::message::{Composer, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind, Transport};

/// What every delivery of a run shares.
pub(super) struct Dispatcher<T> {
    pub(super) transport: std::sync::Arc<T>,
    pub(super) pace: Pace,
    /// Deliveries in flight at once.
    pub(super) slots: Semaphore,
    pub(super) retry: Retry,
    /// Raised when nothing more should start: refused credentials, a relay gone, or the
    /// loop's stop policy.
    pub(super) halt: Stop,
    /// The run's own stop signal (Ctrl-C): nothing more starts either.
    pub(super) stop: Stop,
}

/// A message waiting for its (next) try.
type Pending = (RecipientKey, Outgoing);

impl<T: Transport> Dispatcher<T> {
    /// Delivers `chunk` (at most the transport's batch limit), composed at `now`: each
    /// recipient's fate.
    pub(super) async fn deliver(
        &self,
        composer: &Composer,
        chunk: Vec<(RecipientKey, Subscriber)>,
        now: SystemTime,
    ) -> Vec<Delivered> {
        let _slot = self.slots.acquire().await;
        if self.halted() {
            return chunk
                .into_iter()
                .map(|(key, _)| (key, Fate::NotTried))
                .collect();
        }
        let (mut pending, mut done) = compose(composer, chunk, now, self.transport.form());
        let mut attempts = Attempts::new(self.retry);
        while !pending.is_empty() {
            self.pace.wait().await;
            let (again, pause) = self.try_once(&composer.issue, pending, &mut done).await;
            if again.is_empty() {
                break;
            }
            let next = attempts.after(pause);
            if next == Next::GiveUp {
                done.extend(again.into_iter().map(|(key, _, f)| (key, Fate::Failed(f))));
                break;
            }
            if self.halted() {
                // The run is stopping: these were not delivered, and a new run sends them.
                done.extend(again.into_iter().map(|(key, _, _)| (key, Fate::NotTried)));
                break;
            }
            match next {
                Next::Backoff(wait) => tokio::time::sleep(wait).await,
                Next::Hold(pause) => self.pace.hold(pause).await,
                Next::GiveUp => unreachable!("handled above"),
            }
            pending = again.into_iter().map(|(key, m, _)| (key, m)).collect();
        }
        done
    }

    /// Whether nothing more should start.
    fn halted(&self) -> bool {
        self.halt.requested() || self.stop.requested()
    }

    /// One delivery of `pending`: the accepted and the definitive failures go to `done`;
    /// returned are those to try again, and the longest pause a provider asked for.
    async fn try_once(
        &self,
        issue: &str,
        pending: Vec<Pending>,
        done: &mut Vec<Delivered>,
    ) -> (Vec<(RecipientKey, Outgoing, Failure)>, Option<Duration>) {
        let (keys, messages): (Vec<RecipientKey>, Vec<Outgoing>) = pending.into_iter().unzip();
        let batch = Batch {
            key: batch_key(issue, &keys),
            messages,
        };
        let outcomes = answers(
            self.transport.send_batch(&batch).await,
            batch.messages.len(),
        );
        let mut pause: Option<Duration> = None;
        let mut again = Vec::new();
        for ((key, message), outcome) in keys.into_iter().zip(batch.messages).zip(outcomes) {
            match outcome {
                Ok(Accepted { reply }) => done.push((
                    key,
                    Fate::Sent {
                        message_id: message.message_id,
                        reply,
                    },
                )),
                Err(f) if f.kind.is_retryable() => {
                    if let Kind::Throttled(d) = f.kind {
                        pause = Some(pause.map_or(d, |p| p.max(d)));
                    }
                    again.push((key, message, f));
                }
                Err(f) => {
                    if matches!(f.kind, Kind::Auth | Kind::Unreachable) {
                        self.halt.request();
                    }
                    done.push((key, Fate::Failed(f)));
                }
            }
        }
        (again, pause)
    }
}

/// One outcome per message: a failure of the whole batch is each message's; a transport
/// that answered for fewer messages than it was given leaves the rest failed (temporary),
/// never unaccounted for.
fn answers(result: crate::transport::BatchResult, n: usize) -> Vec<Result<Accepted, Failure>> {
    let mut outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(failure) => vec![Err(failure); n],
    };
    let answered = outcomes.len();
    if answered < n {
        let missing = Failure {
            kind: Kind::Transient,
            reply: format!("the transport answered for {answered} of {n} messages"),
        };
        outcomes.resize(n, Err(missing));
    }
    outcomes
}

/// Each recipient's message, composed at `now` in the transport's form; one that cannot be
/// built is a permanent failure (its data is wrong, a retry would not change it).
fn compose(
    composer: &Composer,
    chunk: Vec<(RecipientKey, Subscriber)>,
    now: SystemTime,
    form: crate::message::Form,
) -> (Vec<Pending>, Vec<Delivered>) {
    let mut pending = Vec::with_capacity(chunk.len());
    let mut failed = Vec::new();
    for (key, subscriber) in chunk {
        match composer.compose_as(&subscriber, now, form) {
            Ok(message) => pending.push((key, message)),
            Err(e) => failed.push((
                key,
                Fate::Failed(Failure {
                    kind: Kind::Permanent,
                    reply: e.to_string(),
                }),
            )),
        }
    }
    (pending, failed)
}

/// The same for the same issue and recipients, whatever the run: an idempotency key.
fn batch_key(issue: &str, recipients: &[RecipientKey]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(issue.as_bytes());
    for r in recipients {
        h.update([0]);
        h.update(r.as_str().as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_failure_is_every_messages_and_a_short_answer_fails_the_rest() {
        let refused = Failure {
            kind: Kind::Transient,
            reply: "503".into(),
        };
        assert_eq!(
            answers(Err(refused.clone()), 2),
            vec![Err(refused.clone()); 2]
        );
        let ok = Ok(Accepted { reply: "ok".into() });
        let short = answers(Ok(vec![ok.clone()]), 3);
        assert_eq!(short.len(), 3);
        assert_eq!(short[0], ok);
        assert!(matches!(&short[2], Err(f) if f.kind == Kind::Transient));
    }

    #[test]
    fn the_batch_key_depends_on_the_issue_and_recipients_only() {
        let keys: Vec<RecipientKey> = ["a@example.org", "B@example.org"]
            .iter()
            .map(|a| RecipientKey::from(&a.parse::<lettre::Address>().unwrap()))
            .collect();
        assert_eq!(batch_key("2020-06", &keys), batch_key("2020-06", &keys));
        assert_ne!(batch_key("2020-06", &keys), batch_key("2020-07", &keys));
        assert_ne!(
            batch_key("2020-06", &keys),
            batch_key("2020-06", &keys[..1])
        );
        assert_eq!(batch_key("2020-06", &keys).len(), 32);
    }
}
