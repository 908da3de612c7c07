//! The send loop: the subscriber list streamed in batches; each batch claimed in the ledger
//! (so nobody already sent to is sent to again), composed, delivered a few at a time within
//! the rate limit, retried with backoff on temporary failures, and recorded in one commit.
//!
//! A permanent failure is recorded and the run goes on; a relay that keeps failing, or that
//! refuses our credentials, stops the run after the batch in hand; so does Ctrl-C (the
//! `stop` flag). Whatever stops it, everything sent is recorded and a new run continues
//! where this one ended.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};

use crate::audience::{AudienceError, Row, Skip, Subscriber};
use crate::ledger::{Ledger, LedgerError, Outcome, RunId};
use crate::message::{Composer, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind, Transport};

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

/// Why a run ended before the end of the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// Ctrl-C.
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
    pub failed_permanent: Vec<(String, String)>,
    /// Recipients still to retry, with the last reply.
    pub failed_temporary: Vec<(String, String)>,
    pub skipped: BTreeMap<String, u64>,
    /// Invalid rows, with their line and why.
    pub invalid: Vec<(u64, String)>,
    pub already_sent: u64,
    /// Recipients claimed but not tried because the run stopped; a new run sends to them.
    pub not_tried: u64,
    pub stopped: Option<Stopped>,
}

/// Progress after each message.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub sent: u64,
    pub failed: u64,
}

/// A problem that stops sending at once.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    List(#[from] AudienceError),
}

/// Paces deliveries: at most `n` per `per`, spread evenly; and holds everyone back when a
/// provider asks us to wait.
struct Pace {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(rate: Option<(u32, Duration)>) -> Pace {
        Pace {
            gap: rate.map_or(Duration::ZERO, |(n, per)| per / n.max(1)),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// Nobody sends for `pause`.
    async fn hold(&self, pause: Duration) {
        let mut next = self.next.lock().await;
        *next = (*next).max(Instant::now() + pause);
    }
}

/// Sends to every row of `rows` that the ledger does not record as sent.
#[allow(clippy::too_many_arguments)]
pub async fn deliver<T: Transport>(
    composer: Arc<Composer>,
    rows: impl Iterator<Item = Result<Row, AudienceError>>,
    ledger: &mut Ledger,
    issue: &str,
    run: RunId,
    transport: Arc<T>,
    opts: &Options,
    stop: &AtomicBool,
    progress: impl Fn(Progress),
) -> Result<Tally, RunError> {
    let failed_before: Option<std::collections::HashSet<String>> = if opts.only_failed {
        Some(
            ledger
                .failures(issue)?
                .into_iter()
                .map(|f| f.recipient)
                .collect(),
        )
    } else {
        None
    };
    let mut tally = Tally::default();
    let pace = Arc::new(Pace::new(opts.rate));
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let limit = transport.batch_limit().max(1);
    // Enough recipients per ledger transaction to keep every connection or request busy.
    let claim = opts.batch.max(limit * opts.concurrency.max(1));
    // Set when nothing more should start: Ctrl-C, refused credentials, a relay gone.
    let halt = Arc::new(AtomicBool::new(false));
    let mut failures_in_a_row = 0u32;
    let mut ever_sent = false;
    let mut batch: Vec<Subscriber> = Vec::with_capacity(claim);
    let mut rows = rows.peekable();
    let mut done = 0u64;
    while rows.peek().is_some() {
        if stop.load(Ordering::SeqCst) {
            tally.stopped = Some(Stopped::Interrupted);
            break;
        }
        batch.clear();
        for row in rows.by_ref() {
            match row? {
                Row::Send(s) => {
                    let key = s.address.to_string().to_lowercase();
                    if failed_before.as_ref().is_none_or(|f| f.contains(&key)) {
                        batch.push(s);
                    }
                }
                Row::Skipped { line, why, .. } => {
                    *tally.skipped.entry(why.label().to_string()).or_default() += 1;
                    if let Skip::Invalid(reason) = why {
                        tally.invalid.push((line, reason));
                    }
                }
            }
            if batch.len() >= claim {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let keys: Vec<String> = batch
            .iter()
            .map(|s| s.address.to_string().to_lowercase())
            .collect();
        let claimed = ledger.claim(issue, run, &keys, opts.only_failed, crate::clock::now())?;
        tally.already_sent += (keys.len() - claimed.len()) as u64;
        let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();

        let mut tasks = tokio::task::JoinSet::new();
        let mut mine: Vec<Subscriber> = batch
            .drain(..)
            .filter(|s| claimed.contains(&s.address.to_string().to_lowercase()))
            .collect();
        while !mine.is_empty() {
            let rest = mine.split_off(limit.min(mine.len()));
            let chunk = std::mem::replace(&mut mine, rest);
            let (composer, transport, slots, pace) = (
                Arc::clone(&composer),
                Arc::clone(&transport),
                Arc::clone(&slots),
                Arc::clone(&pace),
            );
            let tries = Tries {
                max_attempts: opts.max_attempts.max(1),
                backoff: opts.backoff,
            };
            let halt = Arc::clone(&halt);
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                if halt.load(Ordering::SeqCst) {
                    return not_tried(chunk);
                }
                send_chunk(&composer, chunk, transport.as_ref(), &pace, tries, &halt).await
            });
        }
        let mut outcomes = Vec::new();
        let mut stop_for: Option<Stopped> = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok(chunk) = joined else { continue };
            for (key, fate) in chunk {
                let outcome = match fate {
                    Fate::Sent { message_id, reply } => {
                        tally.sent += 1;
                        ever_sent = true;
                        failures_in_a_row = 0;
                        Outcome::Sent { message_id, reply }
                    }
                    Fate::NotTried => {
                        tally.not_tried += 1;
                        Outcome::Released
                    }
                    Fate::Failed(failure) => {
                        match failure.kind {
                            Kind::Permanent => {
                                failures_in_a_row = 0;
                                tally
                                    .failed_permanent
                                    .push((key.clone(), failure.reply.clone()));
                            }
                            Kind::Auth => {
                                stop_for = Some(Stopped::Auth(failure.reply.clone()));
                                tally
                                    .failed_temporary
                                    .push((key.clone(), failure.reply.clone()));
                            }
                            Kind::Transient | Kind::Throttled(_) | Kind::Unreachable => {
                                failures_in_a_row += 1;
                                tally
                                    .failed_temporary
                                    .push((key.clone(), failure.reply.clone()));
                                let gone = failure.kind == Kind::Unreachable
                                    || (!ever_sent && failures_in_a_row >= opts.unreachable_after);
                                if gone && stop_for.is_none() {
                                    stop_for = Some(Stopped::Unreachable(failure.reply.clone()));
                                }
                            }
                        }
                        Outcome::Failed {
                            permanent: failure.kind == Kind::Permanent,
                            reply: failure.reply,
                        }
                    }
                };
                done += 1;
                outcomes.push((key, outcome));
            }
            if stop.load(Ordering::SeqCst) || stop_for.is_some() {
                halt.store(true, Ordering::SeqCst);
            }
            progress(Progress {
                done,
                sent: tally.sent,
                failed: (tally.failed_permanent.len() + tally.failed_temporary.len()) as u64,
            });
        }
        let now = crate::clock::now();
        ledger.record(issue, &outcomes, now)?;
        ledger.heartbeat(run, now)?;
        if let Some(reason) = stop_for {
            tally.stopped = Some(reason);
            break;
        }
        if halt.load(Ordering::SeqCst) {
            tally.stopped = Some(Stopped::Interrupted);
            break;
        }
    }
    Ok(tally)
}

/// How often, and how patiently, temporary failures are retried.
#[derive(Debug, Clone, Copy)]
struct Tries {
    max_attempts: u32,
    backoff: Duration,
}

/// What became of one recipient.
enum Fate {
    /// Accepted: our Message-ID and the server's reply.
    Sent {
        message_id: String,
        reply: String,
    },
    Failed(Failure),
    /// Not sent because the run stopped first.
    NotTried,
}

/// A recipient, by lower-case address, and what became of them.
type Delivered = (String, Fate);

fn not_tried(chunk: Vec<Subscriber>) -> Vec<Delivered> {
    chunk
        .into_iter()
        .map(|s| (s.address.to_string().to_lowercase(), Fate::NotTried))
        .collect()
}

/// Throttling answers (429) waited out per chunk before giving up for this run.
const MAX_THROTTLES: u32 = 8;

/// One delivery's worth of recipients (one message for SMTP, a provider's batch for an API):
/// composed, sent, and what failed for a reason that may pass sent again, after a backoff
/// (or as long as the provider asked), a bounded number of times.
async fn send_chunk<T: Transport>(
    composer: &Composer,
    chunk: Vec<Subscriber>,
    transport: &T,
    pace: &Pace,
    tries: Tries,
    halt: &AtomicBool,
) -> Vec<Delivered> {
    let form = transport.form();
    let now = std::time::SystemTime::from(crate::clock::now());
    let mut done: Vec<Delivered> = Vec::with_capacity(chunk.len());
    let mut pending = Vec::with_capacity(chunk.len());
    for subscriber in &chunk {
        let key = subscriber.address.to_string().to_lowercase();
        match composer.compose_as(subscriber, now, form) {
            Ok(message) => pending.push((key, message)),
            Err(e) => done.push((
                key,
                Fate::Failed(Failure {
                    kind: Kind::Permanent,
                    reply: e.to_string(),
                }),
            )),
        }
    }
    let mut wait = tries.backoff;
    let (mut attempt, mut throttles) = (1, 0);
    while !pending.is_empty() {
        pace.wait().await;
        let (keys, messages): (Vec<String>, Vec<_>) = pending.drain(..).unzip();
        let batch = Batch {
            key: batch_key(&composer.issue, &keys),
            messages,
        };
        let outcomes: Vec<Result<Accepted, Failure>> = match transport.send_batch(&batch).await {
            Ok(outcomes) => outcomes,
            Err(failure) => batch
                .messages
                .iter()
                .map(|_| Err(failure.clone()))
                .collect(),
        };
        let mut pause = None;
        let mut again: Vec<(String, Outgoing, Failure)> = Vec::new();
        for ((key, message), outcome) in keys.into_iter().zip(batch.messages).zip(outcomes) {
            match outcome {
                Ok(accepted) => done.push((
                    key,
                    Fate::Sent {
                        message_id: message.message_id,
                        reply: accepted.reply,
                    },
                )),
                Err(f) if f.kind.is_retryable() => {
                    if let Kind::Throttled(d) = f.kind {
                        pause = Some(pause.unwrap_or(d).max(d));
                    }
                    again.push((key, message, f));
                }
                Err(f) => {
                    if matches!(f.kind, Kind::Auth | Kind::Unreachable) {
                        halt.store(true, Ordering::SeqCst);
                    }
                    done.push((key, Fate::Failed(f)));
                }
            }
        }
        let give_up = match pause {
            Some(_) => throttles >= MAX_THROTTLES,
            None => attempt >= tries.max_attempts,
        };
        if again.is_empty() {
            break;
        }
        if give_up {
            done.extend(again.into_iter().map(|(key, _, f)| (key, Fate::Failed(f))));
            break;
        }
        if halt.load(Ordering::SeqCst) {
            // The run is stopping: these were not delivered, and a new run sends them.
            done.extend(again.into_iter().map(|(key, _, _)| (key, Fate::NotTried)));
            break;
        }
        match pause {
            Some(d) => {
                throttles += 1;
                pace.hold(d).await;
            }
            None => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
        pending.extend(again.into_iter().map(|(key, message, _)| (key, message)));
    }
    done
}

/// The same for the same issue and recipients, whatever the run: an idempotency key.
fn batch_key(issue: &str, recipients: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(issue.as_bytes());
    for r in recipients {
        h.update([0]);
        h.update(r.as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
