//! Sending an issue: one message per reader, built from the issue rendered once.
//!
//! So far: [`message`] builds each reader's email. The send loop (plan from the subscriber
//! list and the ledger, pace, retry, transports) comes next; it will drive a transport and
//! record through the ledger's API, and it knows nothing of SMTP or HTTP details itself.

pub mod message;
mod qp;
pub mod run;
