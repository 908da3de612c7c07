//! A transport for tests: it records what it was given and answers from a script, so that
//! the send loop's rules (retries, backoff, 429 pauses, stopping) are unit tests that run in
//! milliseconds under tokio's paused time.
//!
//! A script answers per call (the n-th delivery gets the n-th answer, whatever it carries)
//! or per message (each message's n-th attempt gets its n-th answer, the last one repeating),
//! and otherwise with a default ([`Answer::Accept`] unless told). Messages are told apart by
//! their Message-ID, which is the same for the same issue and reader on every attempt.
//!
//! This file owns only the stub: it must not reach into the send loop or the ledger, and it
//! reads nothing of an [`Outgoing`] but its Message-ID.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::message::{Form, Outgoing};

use super::{Accepted, Batch, BatchResult, Failure, Kind, Transport};

/// How the stub answers one message (or one call).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// "250 2.0.0 accepted by the stub".
    Accept,
    /// Accepted after this long (a slow server): time for something else to happen.
    Slow(Duration),
    /// A failure worth retrying: "451 4.3.0 try again later".
    Temporary,
    /// This reader will not get it: "550 5.1.1 no such user".
    Permanent,
    /// HTTP 429 with Retry-After: wait this long.
    Throttled(Duration),
    /// The server cannot be reached at all.
    Unreachable,
    /// The server refuses our credentials.
    AuthRefused,
    /// The transport panics (a bug in it, or in something it calls).
    Panic,
    /// The whole delivery fails with this kind of failure: nothing in it was delivered.
    RefuseBatch(Kind),
    /// Delivered, but the answer is lost on the way ([`Kind::Lost`]): the reader has it.
    Lost,
    /// A reader the provider refuses, and the whole request with them, without saying who:
    /// a request carrying this message is refused whole; alone, it is refused.
    Spoils,
    /// The same, but the answer names this message as the one at fault: it fails, the
    /// others of the request are [`Kind::Bystander`]s.
    SpoilsNamed,
}

impl Answer {
    /// The failure this answer stands for, if it is one.
    fn failure(&self) -> Option<Failure> {
        let (kind, reply) = match self {
            Answer::Accept | Answer::Slow(_) | Answer::Panic => return None,
            Answer::Temporary => (Kind::Transient, "451 4.3.0 try again later"),
            Answer::Permanent => (Kind::Permanent, "550 5.1.1 no such user"),
            Answer::Throttled(d) => (Kind::Throttled(*d), "429 too many requests"),
            Answer::Unreachable => (Kind::Unreachable, "connection refused"),
            Answer::AuthRefused => (Kind::Auth, "535 5.7.8 authentication failed"),
            Answer::RefuseBatch(kind) => (*kind, "the whole request was refused"),
            Answer::Lost => (Kind::Lost, "no answer: the connection was lost"),
            Answer::Spoils | Answer::SpoilsNamed => {
                (Kind::Permanent, "550 5.1.1 refused: bad address")
            }
        };
        Some(Failure {
            kind,
            reply: reply.to_string(),
        })
    }
}

/// One delivery the stub was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When, on tokio's clock (paused in tests, so exact).
    pub at: Instant,
    /// The batch's idempotency key.
    pub key: String,
    /// The Message-IDs it carried, in order.
    pub message_ids: Vec<String>,
}

#[derive(Debug, Default)]
struct Script {
    per_call: VecDeque<Answer>,
    per_message: HashMap<String, VecDeque<Answer>>,
    otherwise: Option<Answer>,
}

impl Script {
    /// The next answer for `message_id`: its own script's next (its last repeats), or the
    /// default.
    fn for_message(&mut self, message_id: &str) -> Answer {
        match self.per_message.get_mut(message_id) {
            Some(answers) if answers.len() > 1 => answers.pop_front().unwrap_or(Answer::Accept),
            Some(answers) => answers.front().cloned().unwrap_or(Answer::Accept),
            None => self.otherwise.clone().unwrap_or(Answer::Accept),
        }
    }
}

/// The stub transport: scripted answers, every call recorded.
#[derive(Debug)]
pub struct StubTransport {
    script: Mutex<Script>,
    calls: Mutex<Vec<Call>>,
    delivered: Mutex<Vec<String>>,
    /// The keys of the batches it accepted (with [`StubTransport::idempotent`]).
    keys: Mutex<HashMap<String, usize>>,
    batch_limit: usize,
    form: Form,
    idempotent: bool,
    look_up: bool,
}

impl Default for StubTransport {
    fn default() -> Self {
        StubTransport::new()
    }
}

/// A lock whose holder panicked is still good here: the stub's state is plain data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StubTransport {
    /// A stub that accepts everything, one message a delivery, MIME form.
    pub fn new() -> StubTransport {
        StubTransport {
            script: Mutex::new(Script::default()),
            calls: Mutex::new(Vec::new()),
            delivered: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
            batch_limit: 1,
            form: Form::Mime,
            idempotent: false,
            look_up: false,
        }
    }

    /// Takes an idempotency key: a batch whose key it accepted before is answered as
    /// accepted, and not delivered again (as Resend does).
    pub fn idempotent(mut self) -> StubTransport {
        self.idempotent = true;
        self
    }

    /// Can be asked what it delivered ([`Transport::look_up`]): it shows the messages it
    /// delivered.
    pub fn with_look_up(mut self) -> StubTransport {
        self.look_up = true;
        self
    }

    /// How many times the message with this Message-ID was delivered.
    pub fn copies_of(&self, message_id: &str) -> usize {
        lock(&self.delivered)
            .iter()
            .filter(|m| *m == message_id)
            .count()
    }

    /// The first calls answer these, in order, for every message they carry (a failure
    /// answer fails each; [`Answer::RefuseBatch`] fails the call). Later calls answer per
    /// message.
    pub fn calls_answer(self, answers: impl IntoIterator<Item = Answer>) -> StubTransport {
        lock(&self.script).per_call.extend(answers);
        self
    }

    /// The message with this Message-ID answers these on its successive attempts; the last
    /// answer repeats.
    pub fn message_answers(
        self,
        message_id: impl Into<String>,
        answers: impl IntoIterator<Item = Answer>,
    ) -> StubTransport {
        let answers: VecDeque<Answer> = answers.into_iter().collect();
        if !answers.is_empty() {
            lock(&self.script)
                .per_message
                .insert(message_id.into(), answers);
        }
        self
    }

    /// What every message without a script of its own answers (instead of accepting).
    pub fn otherwise(self, answer: Answer) -> StubTransport {
        lock(&self.script).otherwise = Some(answer);
        self
    }

    /// Carries up to `n` messages a delivery, as a provider's batch API does.
    pub fn with_batch_limit(mut self, n: usize) -> StubTransport {
        self.batch_limit = n.max(1);
        self
    }

    /// Asks for messages in this form.
    pub fn with_form(mut self, form: Form) -> StubTransport {
        self.form = form;
        self
    }

    /// Every delivery asked for, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The Message-IDs accepted, in order.
    pub fn delivered(&self) -> Vec<String> {
        lock(&self.delivered).clone()
    }

    /// The times the message with this Message-ID was in a delivery.
    pub fn attempts_of(&self, message_id: &str) -> Vec<Instant> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.message_ids.iter().any(|m| m == message_id))
            .map(|c| c.at)
            .collect()
    }

    /// Records the call and decides every message's answer, all before any await (the
    /// locks are never held across one, nor when the stub panics).
    fn answers(&self, key: &str, messages: &[&Outgoing]) -> Vec<Answer> {
        let message_ids: Vec<String> = messages.iter().map(|m| m.message_id.clone()).collect();
        let mut script = lock(&self.script);
        let answers = match script.per_call.pop_front() {
            Some(answer) => vec![answer; message_ids.len()],
            None => message_ids
                .iter()
                .map(|id| script.for_message(id))
                .collect(),
        };
        drop(script);
        lock(&self.calls).push(Call {
            at: Instant::now(),
            key: key.to_string(),
            message_ids,
        });
        answers
    }

    /// One delivery of `messages` (a batch, or one message sent alone).
    async fn deliver(&self, key: &str, messages: &[&Outgoing]) -> BatchResult {
        if self.idempotent && lock(&self.keys).contains_key(key) {
            lock(&self.calls).push(Call {
                at: Instant::now(),
                key: key.to_string(),
                message_ids: messages.iter().map(|m| m.message_id.clone()).collect(),
            });
            let replay = Accepted {
                reply: "accepted before under this key".to_string(),
            };
            return Ok(vec![Ok(replay); messages.len()]);
        }
        let answers = self.answers(key, messages);
        if answers.contains(&Answer::Panic) {
            panic!("the stub transport was told to panic");
        }
        let slowest = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Slow(d) => Some(*d),
                _ => None,
            })
            .max();
        if let Some(d) = slowest {
            tokio::time::sleep(d).await;
        }
        if let Some(refusal) = answers.iter().find(|a| matches!(a, Answer::RefuseBatch(_))) {
            return Err(refusal.failure().unwrap_or_else(|| unreachable!()));
        }
        if answers.len() > 1 && answers.contains(&Answer::Spoils) {
            return Err(Answer::Spoils.failure().unwrap_or_else(|| unreachable!()));
        }
        if answers.len() > 1 && answers.contains(&Answer::SpoilsNamed) {
            return Ok(answers
                .iter()
                .map(|a| {
                    Err(match a {
                        Answer::SpoilsNamed => a.failure().unwrap_or_else(|| unreachable!()),
                        _ => Failure {
                            kind: Kind::Bystander,
                            reply: "not sent: another address of the request was refused".into(),
                        },
                    })
                })
                .collect());
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        let mut accepted = false;
        for (message, answer) in messages.iter().zip(&answers) {
            if matches!(answer, Answer::Lost) || answer.failure().is_none() {
                lock(&self.delivered).push(message.message_id.clone());
                accepted = true;
            }
            outcomes.push(match answer.failure() {
                Some(failure) => Err(failure),
                None => Ok(Accepted {
                    reply: "250 2.0.0 accepted by the stub".to_string(),
                }),
            });
        }
        if accepted {
            *lock(&self.keys).entry(key.to_string()).or_default() += 1;
        }
        Ok(outcomes)
    }
}

impl Transport for StubTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        let mut outcomes = self.deliver("", &[message]).await?;
        outcomes.pop().unwrap_or_else(|| {
            Err(Failure {
                kind: Kind::Transient,
                reply: "the stub answered nothing".into(),
            })
        })
    }

    async fn send_batch(&self, batch: &Batch) -> BatchResult {
        let messages: Vec<&Outgoing> = batch.messages.iter().collect();
        self.deliver(&batch.key, &messages).await
    }

    fn batch_limit(&self) -> usize {
        self.batch_limit
    }

    fn form(&self) -> Form {
        self.form
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    async fn look_up(&self, batch: &Batch) -> Vec<Option<Accepted>> {
        let delivered = lock(&self.delivered).clone();
        batch
            .messages
            .iter()
            .map(|m| {
                (self.look_up && delivered.contains(&m.message_id)).then(|| Accepted {
                    reply: "found by the stub's look-up".to_string(),
                })
            })
            .collect()
    }

    fn describe(&self) -> String {
        "stub transport".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_script_is_followed_and_its_last_answer_repeats() {
        let mut script = Script::default();
        script.per_message.insert(
            "<a>".into(),
            VecDeque::from([Answer::Temporary, Answer::Accept]),
        );
        script.otherwise = Some(Answer::Permanent);
        assert_eq!(script.for_message("<a>"), Answer::Temporary);
        assert_eq!(script.for_message("<a>"), Answer::Accept);
        assert_eq!(script.for_message("<a>"), Answer::Accept);
        assert_eq!(script.for_message("<b>"), Answer::Permanent);
    }

    #[test]
    fn every_failure_answer_is_of_its_kind() {
        assert_eq!(Answer::Temporary.failure().unwrap().kind, Kind::Transient);
        assert_eq!(Answer::Permanent.failure().unwrap().kind, Kind::Permanent);
        assert_eq!(
            Answer::Throttled(Duration::from_secs(3))
                .failure()
                .unwrap()
                .kind,
            Kind::Throttled(Duration::from_secs(3))
        );
        assert_eq!(
            Answer::Unreachable.failure().unwrap().kind,
            Kind::Unreachable
        );
        assert_eq!(Answer::AuthRefused.failure().unwrap().kind, Kind::Auth);
        assert!(Answer::Accept.failure().is_none());
    }
}
