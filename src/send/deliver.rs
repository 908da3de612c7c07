//! The send loop: the subscriber list read in batches; each batch **claimed** in the ledger
//! (so nobody already sent to is sent to again), **dispatched** a few deliveries at a time,
//! and its outcomes **recorded** in one commit; the run's heartbeat is written with each
//! record and every [`HEARTBEAT`] while deliveries are out.
//!
//! Batches overlap: once the relay has taken a message, the next batch is claimed (and what
//! came back so far recorded) while half of the current one is still out, so that the
//! connections never wait for the ledger, nor for a batch's slowest message. A reader is
//! still only dispatched after their claim is committed, and recorded after their delivery
//! ends; a crash leaves exactly the claimed and unrecorded readers in flight, never more than
//! one batch of them: the next batch only tops the readers out up to a batch. Until the first
//! message is taken, a batch is claimed only when the one before has ended: a relay that is
//! gone from the start leaves the rest of the list unclaimed.
//!
//! A permanent failure is recorded and the run goes on; a relay that keeps failing, or that
//! refuses our credentials, stops the run after the batch in hand (`policy`); so does a
//! [`Stop`] request (Ctrl-C). A delivery task that panics is recorded as a temporary failure
//! of its readers, never left in flight. Whatever stops it, everything sent is recorded and
//! a new run continues where this one ended.
//!
//! Owns the order of the steps; the steps themselves are `dispatch`, `policy`, `tally` and
//! the ledger's. It never holds or lets go of the issue: `run` does.

use std::collections::{HashMap, HashSet};
use std::iter::Peekable;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::dispatch::Dispatcher;
use super::pace::Pace;
use super::policy::StopPolicy;
use super::retry::Retry;
use super::stop::Stop;
use super::tally::{Delivered, Fate, Progress, Stopped, Tally};
use super::{Options, SendError, Tools};
use crate::audience::{AudienceError, Row, Skip, Subscriber};
use crate::clock::Clock;
use crate::ledger::{Ledger, LedgerError, Outcome, RecipientKey, RunId, STALE_AFTER};
use crate::message::Composer;
use crate::transport::Transport;

/// How often a run says it is alive while a batch is out: well within [`STALE_AFTER`].
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(STALE_AFTER.as_secs() / 4);

/// One run's loop, over a ledger the run holds.
pub(super) struct Loop<'a, T> {
    pub(super) tools: &'a Tools<T>,
    pub(super) ledger: &'a mut Ledger,
    pub(super) run: RunId,
    pub(super) opts: &'a Options,
    pub(super) stop: &'a Stop,
}

impl<T: Transport> Loop<'_, T> {
    /// Sends to every row of `rows` that the ledger does not record as sent.
    pub(super) async fn deliver(
        self,
        rows: impl Iterator<Item = Result<Row, AudienceError>>,
        mut progress: impl FnMut(Progress),
    ) -> Result<Tally, SendError> {
        let Loop {
            tools,
            ledger,
            run,
            opts,
            stop,
        } = self;
        let issue = tools.composer.issue.clone();
        let only = match opts.only_failed {
            true => Some(
                ledger
                    .failures(&issue)?
                    .into_iter()
                    .map(|f| f.recipient)
                    .collect(),
            ),
            false => None,
        };
        let limit = tools.transport.batch_limit().max(1);
        let concurrency = opts.concurrency.max(1);
        // Enough recipients per ledger transaction to keep every connection or request busy.
        let mut list = Batches::new(rows, only, opts.batch.max(limit * concurrency));
        let halt = Stop::new();
        let mut course = Course {
            held: Held {
                ledger,
                issue: &issue,
                run,
                clock: tools.clock.as_ref(),
            },
            dispatcher: Arc::new(Dispatcher {
                transport: Arc::clone(&tools.transport),
                pace: Pace::new(opts.rate),
                slots: Semaphore::new(concurrency),
                ahead: Semaphore::new(concurrency + 1),
                retry: Retry {
                    max_attempts: opts.max_attempts,
                    backoff: opts.backoff,
                },
                halt: halt.clone(),
                stop: stop.clone(),
            }),
            composer: &tools.composer,
            limit,
            retry_permanent: opts.only_failed,
            tally: Tally::default(),
            policy: StopPolicy::new(opts.unreachable_after),
            halt,
            stop,
            done: 0,
        };
        // Claimed ahead once the relay has taken a message: when this many readers are out.
        let refill = list.size / 2;
        let mut flight = Flight::default();
        let mut outcomes = Vec::new();
        // Deliveries can take longer than a hold lasts (a slow relay, long 429 pauses): the
        // run beats while it waits, or a second run would take the issue over.
        let mut beat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let ahead = if course.policy.ever_sent() { refill } else { 0 };
            while !stopping && flight.out <= ahead {
                if let Some(why) = course.verdict() {
                    course.tally.stopped = Some(why);
                    stopping = true;
                } else if stop.requested() {
                    course.tally.stopped = Some(Stopped::Interrupted);
                    stopping = true;
                } else if list.is_exhausted() {
                    break;
                } else {
                    // Topped up to one batch, no more: a crash leaves at most a batch of
                    // readers claimed and unrecorded (in flight), as when batches took turns.
                    let want = list.size.saturating_sub(flight.out);
                    let batch = list.next_batch(&mut course.tally, want)?;
                    if !batch.is_empty() {
                        course.held.record(&outcomes)?;
                        outcomes.clear();
                        course.launch(&mut flight, batch)?;
                    }
                }
            }
            if flight.is_empty() {
                break;
            }
            tokio::select! {
                delivered = flight.next() => if let Some(delivered) = delivered {
                    course.take(delivered, &mut outcomes);
                    progress(course.progress());
                },
                _ = beat.tick() => course.held.heartbeat()?,
            }
        }
        course.held.record(&outcomes)?;
        // As the last batch ended: the policy's reason first (refused credentials outrank a
        // Ctrl-C that came meanwhile), then a stop already decided, then a halt.
        let verdict = course.policy.verdict().cloned();
        course.tally.stopped = verdict
            .or(course.tally.stopped.take())
            .or_else(|| course.halt.requested().then_some(Stopped::Interrupted));
        Ok(course.tally)
    }
}

/// How the run is going: what the loop carries from one batch to the next.
struct Course<'a, T> {
    held: Held<'a>,
    dispatcher: Arc<Dispatcher<T>>,
    composer: &'a Arc<Composer>,
    /// Recipients per delivery.
    limit: usize,
    /// `--only-failed`: permanent failures are claimed again.
    retry_permanent: bool,
    tally: Tally,
    policy: StopPolicy,
    /// Raised when nothing more should start (see [`Dispatcher`]).
    halt: Stop,
    stop: &'a Stop,
    /// Recipients dealt with so far.
    done: u64,
}

impl<T: Transport> Course<'_, T> {
    /// Claims `batch` and sends those claimed on their way.
    fn launch(
        &mut self,
        flight: &mut Flight,
        batch: Vec<(RecipientKey, Subscriber)>,
    ) -> Result<(), LedgerError> {
        let mine = self
            .held
            .claim(batch, self.retry_permanent, &mut self.tally)?;
        let now = SystemTime::from(self.held.clock.now());
        flight.launch(&self.dispatcher, self.composer, mine, self.limit, now);
        Ok(())
    }

    /// Why the run must stop before the next batch, if it must.
    fn verdict(&self) -> Option<Stopped> {
        match self.policy.verdict() {
            Some(why) => Some(why.clone()),
            None if self.halt.requested() => Some(Stopped::Interrupted),
            None => None,
        }
    }

    /// Counts one delivery's fates, and raises the halt if the run must stop.
    fn take(&mut self, delivered: Vec<Delivered>, outcomes: &mut Vec<(RecipientKey, Outcome)>) {
        for (key, fate) in delivered {
            self.policy.observe(&fate);
            outcomes.push(self.tally.count(key, fate));
            self.done += 1;
        }
        if self.stop.requested() || self.policy.verdict().is_some() {
            self.halt.request();
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.done,
            sent: self.tally.sent,
            failed: self.tally.failed(),
        }
    }
}

/// The list, read a batch at a time: rows to send to (keyed once), the rest counted as
/// skipped.
struct Batches<I: Iterator> {
    rows: Peekable<I>,
    /// With `--only-failed`: the only recipients to send to.
    only: Option<HashSet<RecipientKey>>,
    size: usize,
}

impl<I: Iterator<Item = Result<Row, AudienceError>>> Batches<I> {
    fn new(rows: I, only: Option<HashSet<RecipientKey>>, size: usize) -> Self {
        Batches {
            rows: rows.peekable(),
            only,
            size: size.max(1),
        }
    }

    fn is_exhausted(&mut self) -> bool {
        self.rows.peek().is_none()
    }

    /// Up to `want` recipients (at least one); empty when the rows read were all skipped.
    fn next_batch(
        &mut self,
        tally: &mut Tally,
        want: usize,
    ) -> Result<Vec<(RecipientKey, Subscriber)>, AudienceError> {
        let want = want.clamp(1, self.size);
        let mut batch = Vec::with_capacity(want);
        for row in self.rows.by_ref() {
            match row? {
                Row::Send(s) => {
                    let key = RecipientKey::from(&s.address);
                    if self.only.as_ref().is_none_or(|only| only.contains(&key)) {
                        batch.push((key, s));
                    }
                }
                Row::Skipped { line, why, .. } => {
                    *tally.skipped.entry(why.label().to_string()).or_default() += 1;
                    if let Skip::Invalid(reason) = why {
                        tally.invalid.push((line, reason));
                    }
                }
            }
            if batch.len() >= want {
                break;
            }
        }
        Ok(batch)
    }
}

/// The ledger as one run holds it: claims and records, stamped by the run's clock.
struct Held<'a> {
    ledger: &'a mut Ledger,
    issue: &'a str,
    run: RunId,
    clock: &'a dyn Clock,
}

impl Held<'_> {
    /// Claims `batch` for the run: those the ledger gives back are this run's to send; the
    /// rest were sent already, or failed for good (unless `retry_permanent`) and are still
    /// failed: counted so, never as sent.
    fn claim(
        &mut self,
        batch: Vec<(RecipientKey, Subscriber)>,
        retry_permanent: bool,
        tally: &mut Tally,
    ) -> Result<Vec<(RecipientKey, Subscriber)>, LedgerError> {
        let keys: Vec<RecipientKey> = batch.iter().map(|(k, _)| k.clone()).collect();
        let claim = self.ledger.claim(
            self.issue,
            self.run,
            &keys,
            retry_permanent,
            self.clock.now(),
        )?;
        tally.already_sent += claim.sent_before;
        tally.failed_before.extend(claim.failed_before);
        let claimed: HashSet<RecipientKey> = claim.claimed.into_iter().collect();
        Ok(batch
            .into_iter()
            .filter(|(k, _)| claimed.contains(k))
            .collect())
    }

    /// Says the run is alive.
    fn heartbeat(&mut self) -> Result<(), LedgerError> {
        self.ledger.heartbeat(self.run, self.clock.now())
    }

    /// Records a batch's outcomes in one commit, and says the run is alive.
    fn record(&mut self, outcomes: &[(RecipientKey, Outcome)]) -> Result<(), LedgerError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        self.ledger.record(self.issue, outcomes, now)?;
        self.ledger.heartbeat(self.run, now)
    }
}

/// The deliveries out, each a task, and whose readers each one carries.
#[derive(Default)]
struct Flight {
    tasks: JoinSet<Vec<Delivered>>,
    readers: HashMap<tokio::task::Id, Vec<RecipientKey>>,
    /// Readers whose delivery has not ended.
    out: usize,
}

impl Flight {
    /// One task per `limit` recipients of `mine`.
    fn launch<T: Transport>(
        &mut self,
        dispatcher: &Arc<Dispatcher<T>>,
        composer: &Arc<Composer>,
        mut mine: Vec<(RecipientKey, Subscriber)>,
        limit: usize,
        now: SystemTime,
    ) {
        let flight = self;
        flight.out += mine.len();
        while !mine.is_empty() {
            let rest = mine.split_off(limit.min(mine.len()));
            let chunk = std::mem::replace(&mut mine, rest);
            let keys = chunk.iter().map(|(k, _)| k.clone()).collect();
            let (dispatcher, composer) = (Arc::clone(dispatcher), Arc::clone(composer));
            let task = flight
                .tasks
                .spawn(async move { dispatcher.deliver(&composer, chunk, now).await });
            flight.readers.insert(task.id(), keys);
        }
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The next delivery to end, or `None` when all have. A task that panicked comes back
    /// as a temporary failure of each of its readers.
    async fn next(&mut self) -> Option<Vec<Delivered>> {
        Some(match self.tasks.join_next_with_id().await? {
            Ok((id, delivered)) => {
                let readers = self.readers.remove(&id).unwrap_or_default();
                self.out = self.out.saturating_sub(readers.len());
                delivered
            }
            Err(e) => {
                let readers = self.readers.remove(&e.id()).unwrap_or_default();
                self.out = self.out.saturating_sub(readers.len());
                let reply = format!("not sent: the delivery failed inside bulletin ({})", why(e));
                readers
                    .into_iter()
                    .map(|key| (key, Fate::Crashed(reply.clone())))
                    .collect()
            }
        })
    }
}

/// What a failed task said.
fn why(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".into()
    }
}
