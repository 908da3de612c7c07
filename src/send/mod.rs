//! Sending an issue: one message per reader, built from the issue rendered once.
//!
//! [`run`] is the send loop: the subscriber list streamed in batches, each batch claimed in
//! the ledger, handed to a transport, and recorded. It knows nothing of SMTP or HTTP details;
//! the messages themselves are built by [`crate::message`].

pub mod run;
