//! Transports: a message's bytes in, an outcome out. SMTP ([`smtp`]) delivers for real; the
//! file transport ([`file`]) writes `.eml` files for `--dry-run` and tests.
//!
//! Whether a failure is worth retrying is a property of the error ([`Failure::kind`]): the
//! send loop decides what to do with it. Transports know nothing of the ledger.

pub mod file;
pub mod smtp;

use std::future::Future;

use crate::send::message::Outgoing;

/// The server took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The server's reply ("250 2.0.0 Ok: queued as 4F1A2"), or where a file went.
    pub reply: String,
}

/// What kind of failure, for deciding what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Try again later: 4xx replies (421, 450, 451, 454…), timeouts, dropped connections.
    Transient,
    /// This recipient will not get it: 5xx replies (550 no such user…).
    Permanent,
    /// The server cannot be reached at all; other messages will fail the same way.
    Unreachable,
    /// The server refused our credentials: stop everything.
    Auth,
}

/// The server did not take the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reply}")]
pub struct Failure {
    pub kind: Kind,
    /// The server's reply, or what went wrong on the way.
    pub reply: String,
}

/// Something that delivers messages.
pub trait Transport: Send + Sync + 'static {
    /// Delivers one message.
    fn send(&self, message: &Outgoing) -> impl Future<Output = Result<Accepted, Failure>> + Send;

    /// How to name it to a person: "SMTP smtp.example.org:587 (STARTTLS)".
    fn describe(&self) -> String;
}
