//! Transports: messages in, outcomes out. SMTP ([`smtp`]) and the providers' HTTP APIs
//! ([`api`]) deliver for real; the file transport ([`file`]) writes `.eml` files for
//! `--dry-run` and tests.
//!
//! A transport takes a [`Batch`]: one message for SMTP, up to a provider's documented limit
//! for an API. Whether a failure is worth retrying is a property of the error
//! ([`Failure::kind`]): the send loop decides what to do with it. Transports know nothing of
//! the ledger.

pub mod api;
pub mod file;
pub mod smtp;
pub mod stub;

use std::future::Future;
use std::time::Duration;

use crate::message::{Form, Outgoing};

/// The server took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The server's reply ("250 2.0.0 Ok: queued as 4F1A2", "accepted, request 8c1e…"), or
    /// where a file went.
    pub reply: String,
}

/// What kind of failure, for deciding what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Try again later: 4xx SMTP replies (421, 450, 451, 454…), HTTP 5xx, timeouts, dropped
    /// connections.
    Transient,
    /// Try again after this long: the provider said so (HTTP 429 with Retry-After).
    Throttled(Duration),
    /// This recipient will not get it: 5xx SMTP replies (550 no such user…), HTTP 4xx.
    Permanent,
    /// The server cannot be reached at all; other messages will fail the same way.
    Unreachable,
    /// The server refused our credentials: stop everything.
    Auth,
}

impl Kind {
    /// True when the same message may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Kind::Transient | Kind::Throttled(_))
    }
}

/// The server did not take the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reply}")]
pub struct Failure {
    pub kind: Kind,
    /// The server's reply, or what went wrong on the way.
    pub reply: String,
}

/// Messages that go out in one delivery: one SMTP transaction, or one API request.
#[derive(Debug)]
pub struct Batch {
    /// The same for the same issue and recipients, across retries and runs: providers that
    /// take an idempotency key get this one, so a retried request is not delivered twice.
    pub key: String,
    pub messages: Vec<Outgoing>,
}

/// What a delivery of a batch came to: each message's outcome in the batch's order, or one
/// failure for the whole batch (nothing was delivered).
pub type BatchResult = Result<Vec<Result<Accepted, Failure>>, Failure>;

/// Something that delivers messages.
pub trait Transport: Send + Sync + 'static {
    /// Delivers one message.
    fn send(&self, message: &Outgoing) -> impl Future<Output = Result<Accepted, Failure>> + Send;

    /// Delivers a batch of at most [`Transport::batch_limit`] messages.
    fn send_batch(&self, batch: &Batch) -> impl Future<Output = BatchResult> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(batch.messages.len());
            for message in &batch.messages {
                outcomes.push(self.send(message).await);
            }
            Ok(outcomes)
        }
    }

    /// The most messages one delivery carries.
    fn batch_limit(&self) -> usize {
        1
    }

    /// What each message must carry: the MIME bytes (SMTP, SES), or its parts (JSON APIs).
    fn form(&self) -> Form {
        Form::Mime
    }

    /// How to name it to a person: "SMTP smtp.example.org:587 (STARTTLS)".
    fn describe(&self) -> String;
}
