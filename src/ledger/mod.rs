//! The ledger: an SQLite file that records, for every (issue, recipient), where the delivery
//! stands, so that a crash, a Ctrl-C or a flaky relay never loses track of who got what.
//!
//! A delivery moves pending → in flight → sent (with the server's reply and Message-ID) or
//! failed (temporary or permanent, with the reply). Claims and outcomes are committed in small
//! transactions as they happen (WAL mode: readers never wait, and a commit is cheap). After a
//! crash, deliveries left in flight are put back to pending and marked *uncertain*: the relay
//! may have accepted them just before the crash, and the report says so.
//!
//! The parts: `schema` (the tables and their migrations), `runs` (which run holds an issue,
//! heartbeats, an issue that changed after a partial send) and `deliveries` (claim, record,
//! report, failures). This file holds what they share: the open [`Ledger`], its errors,
//! [`State`] and [`RecipientKey`].
//!
//! This module knows no transport or message types: outcomes arrive as plain values. It
//! speaks to people only through its errors, and those name no command-line flag: what to do
//! about them is the caller's to say.

mod deliveries;
mod runs;
mod schema;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

pub use deliveries::{Claim, Found, Outcome, Report, Undelivered};
pub use runs::{Holder, RunId, RunRequest, RunStart, STALE_AFTER};

/// What can go wrong with the ledger. Every variant names the ledger's file or the issue.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger's folder cannot be made.
    #[error("the ledger {}: {}", path.display(), crate::diag::io_reason(source))]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed (the file is not a database, the disk is full, it is locked too long…).
    /// The reason is in the message too: people see the message only.
    #[error("the ledger {}: {source}", path.display())]
    Storage {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A delivery is in a state this version does not know (a newer bulletin wrote it, or
    /// the file was edited): guessing would risk a second copy or a lost reader.
    #[error(
        "the ledger {}: a delivery of {issue} is in the state \"{state}\", which this version of bulletin does not know",
        path.display()
    )]
    UnknownState {
        path: PathBuf,
        issue: String,
        state: String,
    },
    /// Another live run holds the issue.
    #[error("{issue} is being sent by another run ({holder}, since {since})")]
    Held {
        issue: String,
        holder: String,
        since: String,
    },
    /// The issue changed since it was first sent, and some readers have the earlier version.
    /// [`RunRequest::force`] goes on anyway.
    #[error(
        "{issue} changed since it was first sent on {since} ({sent} recipients already have the earlier version)"
    )]
    Changed {
        issue: String,
        since: String,
        sent: u64,
    },
}

/// What went wrong inside an operation, before the ledger's path is attached.
#[derive(Debug)]
enum Fault {
    Sql(rusqlite::Error),
    /// A state string that [`State::from_stored`] does not know, and the issue it is of.
    UnknownState {
        issue: String,
        state: String,
    },
    /// Not a storage problem: the ledger says no ([`LedgerError::Held`], [`LedgerError::Changed`]).
    Refused(LedgerError),
}

impl From<rusqlite::Error> for Fault {
    fn from(e: rusqlite::Error) -> Fault {
        Fault::Sql(e)
    }
}

impl Fault {
    fn at(self, path: &Path) -> LedgerError {
        match self {
            Fault::Sql(source) => LedgerError::Storage {
                path: path.to_path_buf(),
                source,
            },
            Fault::UnknownState { issue, state } => LedgerError::UnknownState {
                path: path.to_path_buf(),
                issue,
                state,
            },
            Fault::Refused(e) => e,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    InFlight,
    Sent,
    FailedTemporary,
    FailedPermanent,
}

impl State {
    /// As the file writes it.
    fn as_stored(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::Sent => "sent",
            State::FailedTemporary => "failed_temporary",
            State::FailedPermanent => "failed_permanent",
        }
    }

    /// As the file writes it; `None` for a state this version does not know.
    fn from_stored(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "in_flight" => State::InFlight,
            "sent" => State::Sent,
            "failed_temporary" => State::FailedTemporary,
            "failed_permanent" => State::FailedPermanent,
            _ => return None,
        })
    }

    /// A stored state of `issue`, or the fault that names it.
    fn read(issue: &str, s: &str) -> Result<State, Fault> {
        State::from_stored(s).ok_or_else(|| Fault::UnknownState {
            issue: issue.to_string(),
            state: s.to_string(),
        })
    }
}

/// A recipient as the ledger knows them: the address, lower-cased once, here. Two rows that
/// differ only in case are one reader (RFC 5321 lets a server tell them apart; no list
/// should rely on it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecipientKey(String);

impl RecipientKey {
    /// The address as it is stored and shown: lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&lettre::Address> for RecipientKey {
    fn from(address: &lettre::Address) -> RecipientKey {
        let written: &str = address.as_ref();
        RecipientKey(written.to_lowercase())
    }
}

impl std::fmt::Display for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for RecipientKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for RecipientKey {
    /// Keys in the file were lower-cased when they were written.
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(|s| RecipientKey(s.to_string()))
    }
}

/// The open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Opens (creating it, and its folder, if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| Fault::from(e).at(path))?;
        schema::prepare(&mut conn).map_err(|e| Fault::from(e).at(path))?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op`, which takes a transaction, on the connection; its fault, if any, named by
    /// the ledger's path.
    fn with_tx<T>(
        &mut self,
        op: impl FnOnce(&mut Connection) -> Result<T, Fault>,
    ) -> Result<T, LedgerError> {
        op(&mut self.conn).map_err(|f| f.at(&self.path))
    }

    /// Runs `op` on the connection; its fault, if any, named by the ledger's path.
    fn with<T>(&self, op: impl FnOnce(&Connection) -> Result<T, Fault>) -> Result<T, LedgerError> {
        op(&self.conn).map_err(|f| f.at(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn a_recipient_key_is_the_address_in_lower_case() {
        let a = lettre::Address::from_str("Ana.Martin@Example.ORG").unwrap();
        assert_eq!(RecipientKey::from(&a).as_str(), "ana.martin@example.org");
        let b = lettre::Address::from_str("ana.martin@example.org").unwrap();
        assert_eq!(RecipientKey::from(&a), RecipientKey::from(&b));
    }

    #[test]
    fn every_state_reads_back_and_an_unknown_one_is_not_taken_for_pending() {
        for s in [
            State::Pending,
            State::InFlight,
            State::Sent,
            State::FailedTemporary,
            State::FailedPermanent,
        ] {
            assert_eq!(State::from_stored(s.as_stored()), Some(s));
        }
        assert_eq!(State::from_stored("bounced"), None);
    }

    #[test]
    fn a_file_that_is_not_a_ledger_is_a_storage_error_naming_it_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        std::fs::write(
            &path,
            "not a database, just text that is long enough to matter",
        )
        .unwrap();
        let Err(err) = Ledger::open(&path) else {
            panic!("opened a text file as a ledger")
        };
        assert!(matches!(err, LedgerError::Storage { .. }), "{err:?}");
        assert!(err.to_string().starts_with("the ledger "), "{err}");
        assert!(err.to_string().contains("ledger.sqlite"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
