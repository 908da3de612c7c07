//! The one reader of the clock, and the [`Clock`] handed to the stages that need the time.
//!
//! Every "today" in bulletin comes from [`today`], so that a command's date logic can be
//! called with a fixed date in tests and there is one place to look when a date is wrong.
//! `clippy.toml` forbids `Local::now` and `Utc::now` everywhere else. This module only tells
//! the date; it never decides what to do with it.

use chrono::NaiveDate;

/// Today's date in the local time zone of the machine.
#[allow(clippy::disallowed_methods)] // the one permitted reader of the clock
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// This moment, for timestamps (the ledger, a message's Date).
#[allow(clippy::disallowed_methods)] // the one permitted reader of the clock
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Where a stage that stamps times (the send loop, a signed request) reads them: the system
/// clock in use, a fixed one in tests, so that ledgers and messages are reproducible.
pub trait Clock: Send + Sync + 'static {
    /// This moment.
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        now()
    }
}

/// A clock that always says the same moment (tests, reproducible dry runs).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub chrono::DateTime<chrono::Utc>);

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}
