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

use super::message::Composer;
use crate::audience::{AudienceError, Row, Skip, Subscriber};
use crate::ledger::{Ledger, LedgerError, Outcome, RunId};
use crate::transport::{Failure, Kind, Transport};

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

/// Paces messages: at most `n` per `per`, spread evenly.
struct Pace {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(rate: Option<(u32, Duration)>) -> Option<Pace> {
        rate.map(|(n, per)| Pace {
            gap: per / n.max(1),
            next: Mutex::new(Instant::now()),
        })
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
    let pace = Pace::new(opts.rate).map(Arc::new);
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut failures_in_a_row = 0u32;
    let mut ever_sent = false;
    let mut batch: Vec<Subscriber> = Vec::with_capacity(opts.batch);
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
            if batch.len() >= opts.batch {
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
        for subscriber in batch.drain(..) {
            let key = subscriber.address.to_string().to_lowercase();
            if !claimed.contains(&key) {
                continue;
            }
            let (composer, transport, slots, pace) = (
                Arc::clone(&composer),
                Arc::clone(&transport),
                Arc::clone(&slots),
                pace.clone(),
            );
            let (max_attempts, backoff) = (opts.max_attempts.max(1), opts.backoff);
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let outcome = send_one(
                    &composer,
                    &subscriber,
                    transport.as_ref(),
                    pace.as_deref(),
                    max_attempts,
                    backoff,
                )
                .await;
                (key, outcome)
            });
        }
        let mut outcomes = Vec::new();
        let mut stop_for: Option<Stopped> = None;
        while let Some(joined) = tasks.join_next().await {
            let Ok((key, outcome)) = joined else { continue };
            done += 1;
            match &outcome {
                Ok(message_id_reply) => {
                    tally.sent += 1;
                    ever_sent = true;
                    failures_in_a_row = 0;
                    outcomes.push((
                        key,
                        Outcome::Sent {
                            message_id: message_id_reply.0.clone(),
                            reply: message_id_reply.1.clone(),
                        },
                    ));
                }
                Err(failure) => {
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
                        Kind::Transient | Kind::Unreachable => {
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
                    outcomes.push((
                        key,
                        Outcome::Failed {
                            permanent: failure.kind == Kind::Permanent,
                            reply: failure.reply.clone(),
                        },
                    ));
                }
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
    }
    Ok(tally)
}

/// One message: composed, then sent with retries for temporary failures. Returns the
/// Message-ID and the server's reply.
async fn send_one<T: Transport>(
    composer: &Composer,
    subscriber: &Subscriber,
    transport: &T,
    pace: Option<&Pace>,
    max_attempts: u32,
    backoff: Duration,
) -> Result<(String, String), Failure> {
    let message = composer
        .compose(subscriber, std::time::SystemTime::from(crate::clock::now()))
        .map_err(|e| Failure {
            kind: Kind::Permanent,
            reply: e.to_string(),
        })?;
    let mut wait = backoff;
    let mut attempt = 1;
    loop {
        if let Some(pace) = pace {
            pace.wait().await;
        }
        match transport.send(&message).await {
            Ok(accepted) => return Ok((message.message_id.clone(), accepted.reply)),
            Err(f) if f.kind == Kind::Transient && attempt < max_attempts => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(f) => return Err(f),
        }
    }
}
