//! The one reader of the clock.
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
