//! The suppression store: every unsubscribe and resubscribe a reader (or staff) asked for,
//! kept in SQLite, append-only. The state of an address is its latest event; nothing is ever
//! updated or deleted, so that "who unsubscribed when, and how" can always be answered.
//!
//! `bulletin serve` writes here (one event per answered request, committed before the answer:
//! an answered POST survives a crash), `bulletin suppressions` reads and adds, and `send`
//! reads the current suppressions into the list's [`Fingerprints`] before it plans.
//!
//! The store is exported, event by event after a cursor (its id), to senders elsewhere
//! (`bulletin serve`'s `/suppressions/export`), who keep a mirror of it ([`remote`]).
//!
//! Addresses are kept in their lower-case, ASCII-domain form ([`crate::audience::idn::key`]),
//! the same form the list's de-duplication compares. Knows nothing of HTTP or sending.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::audience::{Fingerprints, idn};

pub mod remote;

/// What a reader asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No more issues.
    Unsubscribe,
    /// Issues again (the "I clicked by mistake" button, or staff with a reason).
    Resubscribe,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unsubscribe => "unsubscribe",
            Kind::Resubscribe => "resubscribe",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RFC 8058: the mail client's own button, `List-Unsubscribe=One-Click` POSTed.
    OneClick,
    /// The button on the unsubscribe page.
    Page,
    /// A POST to the link without the one-click body.
    Post,
    /// `bulletin suppressions add|remove`.
    Staff,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OneClick => "one-click",
            Source::Page => "page",
            Source::Post => "post",
            Source::Staff => "staff",
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub at: DateTime<Utc>,
    /// As written; stored in its [`idn::key`] form.
    pub address: &'a str,
    pub kind: Kind,
    pub source: Source,
    /// The issue the link came from, when known.
    pub issue: Option<&'a str>,
    /// Why staff changed it.
    pub reason: Option<&'a str>,
}

/// An address whose latest event is an unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub address: String,
    pub kind: String,
    pub source: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// One event as the export carries it: every column, the id the cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exported {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub address: String,
    pub kind: String,
    pub source: String,
    pub issue: Option<String>,
    pub reason: Option<String>,
}

/// The store cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("suppression store {}: {reason}", path.display())]
pub struct StoreError {
    pub path: PathBuf,
    pub reason: String,
}

/// The suppression store, open.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    address     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('unsubscribe', 'resubscribe')),
    source      TEXT NOT NULL,
    issue       TEXT,
    reason      TEXT
);
CREATE INDEX IF NOT EXISTS events_by_address ON events (address, id);
-- Append-only: history is never rewritten.
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
";

/// The latest event of each address.
const CURRENT: &str = "
SELECT address, kind, source, at FROM events
WHERE id IN (SELECT max(id) FROM events GROUP BY address)
  AND kind = 'unsubscribe'
ORDER BY address";

impl Store {
    /// Opens the store at `path`, creating it (and its folder) if needed. WAL, and every
    /// commit synced (`synchronous = FULL`): a recorded event survives a crash or power cut.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |reason: String| StoreError {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(crate::diag::io_reason(&e)))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store
            .conn
            .busy_timeout(Duration::from_secs(10))
            .map_err(|e| store.error(e))?;
        store
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(|e| store.error(e))?;
        store
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| store.error(e))?;
        store
            .conn
            .execute_batch(SCHEMA)
            .map_err(|e| store.error(e))?;
        Ok(store)
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Records `event`; committed (and synced) when this returns.
    pub fn record(&mut self, event: &Event) -> Result<i64, StoreError> {
        let address = idn::key(event.address);
        self.conn
            .execute(
                "INSERT INTO events (at, fingerprint, address, kind, source, issue, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    event.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    fingerprint(&address),
                    address,
                    event.kind.as_str(),
                    event.source.as_str(),
                    event.issue,
                    event.reason,
                ],
            )
            .map_err(|e| self.error(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The addresses whose latest event is an unsubscribe, by address.
    pub fn current(&self) -> Result<Vec<Suppression>, StoreError> {
        let mut stmt = self.conn.prepare(CURRENT).map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Suppression {
                    address: r.get(0)?,
                    kind: r.get(1)?,
                    source: r.get(2)?,
                    at: r.get(3)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// The latest event of `address`, if any.
    pub fn latest(&self, address: &str) -> Result<Option<Kind>, StoreError> {
        let kind: Option<String> = self
            .conn
            .query_row(
                "SELECT kind FROM events WHERE address = ?1 ORDER BY id DESC LIMIT 1",
                [idn::key(address)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(kind.map(|k| match k.as_str() {
            "unsubscribe" => Kind::Unsubscribe,
            _ => Kind::Resubscribe,
        }))
    }

    /// What readers did from the links of the issue `slug`: each kind of event with the
    /// number of readers who did it.
    pub fn by_issue(&self, slug: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, count(DISTINCT address) FROM events WHERE issue = ?1 \
                 GROUP BY kind ORDER BY kind DESC",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([slug], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.error(e))?;
        rows.map(|row| row.map(|(kind, n)| (kind, n.unsigned_abs())))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))
    }

    /// Up to `limit` events recorded after the event `after` (0: from the first), in order.
    pub fn since(&self, after: i64, limit: usize) -> Result<Vec<Exported>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, address, kind, source, issue, reason FROM events \
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.error(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![after, limit], |r| {
                Ok(Exported {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    address: r.get(2)?,
                    kind: r.get(3)?,
                    source: r.get(4)?,
                    issue: r.get(5)?,
                    reason: r.get(6)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// How many events are recorded.
    pub fn events(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n.unsigned_abs())
            .map_err(|e| self.error(e))
    }
}

/// Adds the store's current suppressions to `set`, when the store at `path` exists (a
/// workspace that never served has none); returns how many it added.
pub fn add_current(path: &Path, set: &mut Fingerprints) -> Result<usize, StoreError> {
    if !path.is_file() {
        return Ok(0);
    }
    let current = Store::open(path)?.current()?;
    Ok(current.iter().filter(|s| set.insert(&s.address)).count())
}

/// What readers did from the links of the issue `slug`, by kind of event, with how many
/// readers did each; nothing when the store at `path` does not exist.
pub fn by_issue(path: &Path, slug: &str) -> Result<Vec<(String, u64)>, StoreError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    Store::open(path)?.by_issue(slug)
}

/// A short fingerprint of an address for logs, where the address itself must not appear:
/// the first 12 hex digits of the SHA-256 of its lower-case form (the store's `fingerprint`
/// column, so that a log line can be matched to its event).
pub fn fingerprint(address: &str) -> String {
    let digest = Sha256::digest(idn::key(address).as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(address: &str, kind: Kind) -> Event<'_> {
        Event {
            at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            address,
            kind,
            source: Source::Page,
            issue: None,
            reason: None,
        }
    }

    #[test]
    fn the_latest_event_decides_and_history_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/suppressions.sqlite");
        let mut store = Store::open(&path).unwrap();
        store
            .record(&event("Ana@Example.org", Kind::Unsubscribe))
            .unwrap();
        store
            .record(&event("bo@example.org", Kind::Unsubscribe))
            .unwrap();
        store
            .record(&event("bo@example.org", Kind::Resubscribe))
            .unwrap();
        let current = store.current().unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].address, "ana@example.org");
        assert_eq!(
            store.latest("ANA@example.org").unwrap(),
            Some(Kind::Unsubscribe)
        );
        assert_eq!(
            store.latest("bo@example.org").unwrap(),
            Some(Kind::Resubscribe)
        );
        assert_eq!(store.events().unwrap(), 3);
        // Append-only: the database itself refuses to rewrite history.
        assert!(store.conn.execute("DELETE FROM events", []).is_err());
        assert!(
            store
                .conn
                .execute("UPDATE events SET kind = 'resubscribe'", [])
                .is_err()
        );

        let mut set = Fingerprints::default();
        assert_eq!(add_current(&path, &mut set).unwrap(), 1);
        assert!(set.contains("ana@EXAMPLE.org") && !set.contains("bo@example.org"));
        assert_eq!(
            add_current(&dir.path().join("none.sqlite"), &mut set).unwrap(),
            0
        );
    }

    #[test]
    fn a_fingerprint_is_short_and_ignores_case() {
        assert_eq!(
            fingerprint("Ana@Example.org"),
            fingerprint("ana@example.org")
        );
        assert_eq!(fingerprint("ana@example.org").len(), 12);
        assert!(!fingerprint("ana@example.org").contains("ana"));
    }
}
