//! Dispatch: one delivery's worth of recipients (one message for SMTP, a provider's batch for
//! an API) composed, sent within the pace, and what failed for a reason that may pass sent
//! again after a backoff (or as long as the provider asked), a bounded number of times.
//!
//! Three rules keep a reader from paying for someone else's problem:
//! - **A request refused whole** (a provider that takes or refuses a batch at once) is not
//!   the fault of every reader in it. Where the provider names the readers at fault, only
//!   they fail and the others ([`Kind::Bystander`]) go again at once without them; where it
//!   does not, the batch is split in halves, and each half that is refused again is split
//!   again, down to the reader at fault. When every part of a split is refused the same way
//!   ([`SHARED_AFTER`] requests at one level), the fault is in what they share (the sender,
//!   the settings): the run stops and nobody fails.
//! - **An answer lost** after the request went out ([`Kind::Lost`]) may hide a delivery:
//!   before sending again, the transport is asked whether it shows the messages accepted
//!   ([`Transport::look_up`]); those it shows are sent, the others go again and, unless the
//!   provider's idempotency key covers the retry, are recorded as *uncertain*: they may have
//!   two copies.
//! - A group of messages that went out together goes again together, so that its
//!   idempotency key stays the same.
//!
//! A delivery is composed before it takes its slot (a connection, a request in flight), one
//! delivery ahead of the slots at most ([`Dispatcher::ahead`]): the next message is ready
//! when a slot frees, instead of a connection waiting while it is composed, and no more than
//! one delivery's messages wait composed.
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

/// Requests at one level of a split, all refused whole with the same reply, after which the
/// fault is taken to be in what they share rather than in a reader of each: 1 + 2 + 4
/// requests are spent finding out.
pub(super) const SHARED_AFTER: usize = 4;

/// What every delivery of a run shares.
pub(super) struct Dispatcher<T> {
    pub(super) transport: std::sync::Arc<T>,
    pub(super) pace: Pace,
    /// Deliveries in flight at once.
    pub(super) slots: Semaphore,
    /// Deliveries composed or in flight at once: one more than `slots`, so that one delivery
    /// is composed while the slots are busy, and no more wait composed.
    pub(super) ahead: Semaphore,
    pub(super) retry: Retry,
    /// Raised when nothing more should start: refused credentials, a relay gone, or the
    /// loop's stop policy.
    pub(super) halt: Stop,
    /// The run's own stop signal (Ctrl-C): nothing more starts either.
    pub(super) stop: Stop,
}

/// A message waiting for its (next) try.
struct Pending {
    key: RecipientKey,
    message: Outgoing,
    /// The keys of the requests that carried it and whose answer was lost: it may have been
    /// delivered by any of them.
    lost: Vec<String>,
    /// What was said when the last of them was lost.
    lost_reply: Option<String>,
    /// Why its last try failed.
    last: Option<Failure>,
}

impl Pending {
    /// Whether an earlier try may have delivered it.
    fn in_doubt(&self) -> bool {
        !self.lost.is_empty()
    }

    /// Its fate when the run stops before it is sent.
    fn not_tried(self) -> Delivered {
        let uncertain = self.in_doubt();
        (self.key, Fate::NotTried { uncertain })
    }

    /// Its fate when it fails for good (for this run) with `failure`.
    fn failed(self, failure: Failure) -> Delivered {
        let uncertain = self.in_doubt();
        (self.key, Fate::Failed { failure, uncertain })
    }
}

/// Messages that go out in one request, and go again together.
type Group = Vec<Pending>;

/// What one try of a group came to, besides what went to `done`.
#[derive(Default)]
struct Tried {
    /// To try again after a backoff, with why in `last`.
    again: Group,
    /// The longest pause the provider asked for.
    pause: Option<Duration>,
    /// Not sent because another message of the request was refused: to go again at once.
    aside: Group,
    /// Refused whole, for a reason the answer does not pin on any of them.
    refused: Option<(Group, Failure)>,
}

/// What a round of tries came to: the groups to try again, and the longest pause asked for.
#[derive(Default)]
struct Round {
    again: Vec<Group>,
    pause: Option<Duration>,
}

impl<T: Transport> Dispatcher<T> {
    /// Delivers `chunk` (at most the transport's batch limit), composed at `now`: each
    /// recipient's fate.
    pub(super) async fn deliver(
        &self,
        composer: &Composer,
        chunk: Vec<(RecipientKey, Subscriber)>,
        now: SystemTime,
    ) -> Vec<Delivered> {
        let _ahead = self.ahead.acquire().await;
        if self.halted() {
            return chunk
                .into_iter()
                .map(|(key, _)| (key, Fate::NotTried { uncertain: false }))
                .collect();
        }
        let (pending, mut done) = compose(composer, chunk, now, self.transport.form());
        // A halt raised while it waits for its slot leaves it untried (`round` checks).
        let _slot = self.slots.acquire().await;
        let issue = &composer.issue;
        let mut attempts = Attempts::new(self.retry);
        let mut groups = vec![pending];
        loop {
            let round = self.round(issue, groups, &mut done).await;
            if round.again.is_empty() {
                break;
            }
            let next = attempts.after(round.pause);
            if next == Next::GiveUp {
                done.extend(round.again.into_iter().flatten().map(|p| {
                    let failure = p.last.clone().unwrap_or_else(|| Failure {
                        kind: Kind::Transient,
                        reply: "not sent".into(),
                    });
                    p.failed(failure)
                }));
                break;
            }
            if self.halted() {
                // The run is stopping: these were not delivered, and a new run sends them.
                let again = round.again.into_iter().flatten();
                done.extend(again.map(Pending::not_tried));
                break;
            }
            match next {
                Next::Backoff(wait) => tokio::time::sleep(wait).await,
                Next::Hold(pause) => self.pace.hold(pause).await,
                Next::GiveUp => unreachable!("handled above"),
            }
            groups = self.look_up(round.again, &mut done).await;
        }
        done
    }

    /// Whether nothing more should start.
    fn halted(&self) -> bool {
        self.halt.requested() || self.stop.requested()
    }

    /// Each group once, and whatever a refusal splits off, level by level, until no request
    /// is left to make at once: what to try again after a backoff.
    async fn round(&self, issue: &str, groups: Vec<Group>, done: &mut Vec<Delivered>) -> Round {
        let mut round = Round::default();
        let mut level = groups;
        while !level.is_empty() {
            let mut next = Vec::new();
            let mut refusals = Vec::new();
            let mut requests = 0;
            for group in level {
                if group.is_empty() {
                    continue;
                }
                if self.halted() {
                    done.extend(group.into_iter().map(Pending::not_tried));
                    continue;
                }
                requests += 1;
                self.pace.wait().await;
                let tried = self.try_once(issue, group, done).await;
                if !tried.again.is_empty() {
                    round.again.push(tried.again);
                }
                round.pause = longest(round.pause, tried.pause);
                if !tried.aside.is_empty() {
                    next.push(tried.aside);
                }
                refusals.extend(tried.refused);
            }
            let shared = requests >= SHARED_AFTER
                && refusals.len() == requests
                && refusals.iter().all(|(_, f)| f.reply == refusals[0].1.reply);
            for (mut group, failure) in refusals {
                if shared {
                    // Not any reader's doing: stop the run, leave them all to the next one.
                    self.halt.request();
                    let failure = Failure {
                        kind: Kind::Unreachable,
                        reply: format!(
                            "{}; every part of the request was refused the same way, so the fault is in what all readers share (the sender, the issue, the settings), not in a reader",
                            failure.reply
                        ),
                    };
                    done.extend(group.into_iter().map(|p| p.failed(failure.clone())));
                } else if group.iter().any(Pending::in_doubt) {
                    // An earlier request of these may have been delivered: split, they would
                    // go under new idempotency keys and could get two copies.
                    done.extend(group.into_iter().map(|p| p.failed(failure.clone())));
                } else {
                    let second = group.split_off(group.len() / 2);
                    next.push(group);
                    next.push(second);
                }
            }
            level = next;
        }
        round
    }

    /// One request of `group`: the accepted and the definitive failures go to `done`; the
    /// rest is sorted for what comes next.
    async fn try_once(&self, issue: &str, group: Group, done: &mut Vec<Delivered>) -> Tried {
        let keys: Vec<RecipientKey> = group.iter().map(|p| p.key.clone()).collect();
        let (meta, messages): (Vec<_>, Vec<Outgoing>) = group
            .into_iter()
            .map(|p| ((p.key, p.lost, p.lost_reply), p.message))
            .unzip();
        let batch = Batch {
            key: batch_key(issue, &keys),
            messages,
        };
        let n = batch.messages.len();
        let result = self.transport.send_batch(&batch).await;
        let mut tried = Tried::default();
        type Meta = (RecipientKey, Vec<String>, Option<String>);
        let rebuild = |meta: Vec<Meta>, messages: Vec<Outgoing>| {
            meta.into_iter()
                .zip(messages)
                .map(|((key, lost, lost_reply), message)| Pending {
                    key,
                    message,
                    lost,
                    lost_reply,
                    last: None,
                })
                .collect::<Group>()
        };
        let outcomes = match result {
            Err(f) if f.kind == Kind::Permanent && n > 1 => {
                tried.refused = Some((rebuild(meta, batch.messages), f));
                return tried;
            }
            Ok(outcomes)
                if n > 1
                    && outcomes.len() == n
                    && outcomes
                        .iter()
                        .all(|o| matches!(o, Err(f) if f.kind == Kind::Bystander)) =>
            {
                // Refused for someone, and nobody named: as good as refused whole.
                let first = outcomes.into_iter().find_map(Result::err);
                let failure = first.map_or_else(
                    || unreachable!("n > 1 failures"),
                    |f| Failure {
                        kind: Kind::Permanent,
                        reply: f.reply,
                    },
                );
                tried.refused = Some((rebuild(meta, batch.messages), failure));
                return tried;
            }
            other => answers(other, n),
        };
        let idempotent = self.transport.idempotent();
        let pending = rebuild(meta, batch.messages);
        for (mut p, outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                Ok(Accepted { reply }) => {
                    // A retry under the very key whose answer was lost is one delivery where
                    // the provider takes an idempotency key; anything else may be a second.
                    let uncertain =
                        p.in_doubt() && !(idempotent && p.lost.iter().all(|k| *k == batch.key));
                    let doubt = uncertain.then(|| p.lost_reply.clone().unwrap_or_default());
                    done.push((
                        p.key,
                        Fate::Sent {
                            message_id: p.message.message_id,
                            reply,
                            doubt,
                        },
                    ));
                }
                Err(f) if f.kind == Kind::Bystander && n > 1 => tried.aside.push(p),
                Err(f) if f.kind.is_retryable() || f.kind == Kind::Bystander => {
                    match f.kind {
                        Kind::Throttled(d) => tried.pause = longest(tried.pause, Some(d)),
                        Kind::Lost => {
                            if !p.lost.contains(&batch.key) {
                                p.lost.push(batch.key.clone());
                            }
                            p.lost_reply = Some(f.reply.clone());
                        }
                        _ => {}
                    }
                    p.last = Some(f);
                    tried.again.push(p);
                }
                Err(f) => {
                    if matches!(f.kind, Kind::Auth | Kind::Unreachable) {
                        self.halt.request();
                    }
                    done.push(p.failed(f));
                }
            }
        }
        tried
    }

    /// Before groups whose answer was lost go again: those the transport shows accepted are
    /// sent; the rest go again.
    async fn look_up(&self, groups: Vec<Group>, done: &mut Vec<Delivered>) -> Vec<Group> {
        if self.transport.idempotent() {
            // The same key again: the provider answers for the first request.
            return groups;
        }
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let Some(lost_key) = group.iter().find_map(|p| p.lost.last().cloned()) else {
                out.push(group);
                continue;
            };
            let batch = Batch {
                key: lost_key,
                messages: group.iter().map(|p| p.message.clone()).collect(),
            };
            let found = self.transport.look_up(&batch).await;
            let mut rest = Vec::with_capacity(group.len());
            for (i, p) in group.into_iter().enumerate() {
                match found.get(i).cloned().flatten() {
                    // The provider has it: sent once, and not sent again.
                    Some(Accepted { reply }) if p.in_doubt() => done.push((
                        p.key,
                        Fate::Sent {
                            message_id: p.message.message_id,
                            reply,
                            doubt: None,
                        },
                    )),
                    _ => rest.push(p),
                }
            }
            out.push(rest);
        }
        out
    }
}

fn longest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
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
) -> (Group, Vec<Delivered>) {
    let mut pending = Vec::with_capacity(chunk.len());
    let mut failed = Vec::new();
    for (key, subscriber) in chunk {
        match composer.compose_as(&subscriber, now, form) {
            Ok(message) => pending.push(Pending {
                key,
                message,
                lost: Vec::new(),
                lost_reply: None,
                last: None,
            }),
            Err(e) => failed.push((
                key,
                Fate::failed(Failure {
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
    crate::message::hex(&h.finalize()[..16])
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
        // The key a provider was given for a batch stays the same from one version to the
        // next: the first 16 bytes of the SHA-256, in lower-case hex.
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(b"2020-06\0a@example.org\0b@example.org");
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(batch_key("2020-06", &keys), hex);
    }
}
