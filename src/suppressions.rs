//! The suppression store: every unsubscribe and resubscribe a reader (or staff) asked for, and
//! every bounce and complaint a provider reported, kept in SQLite, append-only. Nothing is ever
//! updated or deleted, so that "who was suppressed when, and why" can always be answered.
//!
//! `bulletin serve` writes here (one event per answered request, committed before the answer:
//! an answered POST survives a crash; the providers' webhooks likewise), `bulletin
//! suppressions` reads and adds, and `send` reads the current suppressions into the list's
//! [`Fingerprints`] before it plans.
//!
//! What suppresses an address ([`Store::current`]): an unsubscribe, a bounce or a complaint.
//! A reader's resubscribe (the page's "I clicked by mistake") lifts an unsubscribe only: a
//! bounce says the mailbox refused mail and a complaint that the reader marked an issue as
//! spam, and neither is undone by a click on a link. Staff lift either (`bulletin
//! suppressions remove --reason`). A soft bounce suppresses nothing by itself: it is recorded,
//! and the [`SoftRule`]'s count of them in its window turns into a bounce
//! ([`Store::record_reports`]).
//!
//! Stores written before bounces (schema 1: unsubscribes and resubscribes only) are moved to
//! schema 2 when first opened, their rows copied as they were, ids included.
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

/// What a reader asked for, or what a provider reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No more issues.
    Unsubscribe,
    /// Issues again (the "I clicked by mistake" button, or staff with a reason).
    Resubscribe,
    /// The mailbox refused mail for good (a hard bounce), or soft bounces reached the limit.
    Bounce,
    /// The mailbox refused mail for now; counted, suppresses nothing by itself.
    SoftBounce,
    /// The reader reported an issue as spam.
    Complaint,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unsubscribe => "unsubscribe",
            Kind::Resubscribe => "resubscribe",
            Kind::Bounce => "bounce",
            Kind::SoftBounce => "soft-bounce",
            Kind::Complaint => "complaint",
        }
    }

    /// The kind a stored `kind` column names.
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Unsubscribe,
            Kind::Resubscribe,
            Kind::Bounce,
            Kind::SoftBounce,
            Kind::Complaint,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
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
    /// A provider's webhook (`bulletin serve`).
    Webhook(Provider),
    /// A bounce report or complaint read from the bounce mailbox (`bulletin bounces`).
    Bounces,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OneClick => "one-click",
            Source::Page => "page",
            Source::Post => "post",
            Source::Staff => "staff",
            Source::Webhook(p) => p.as_str(),
            Source::Bounces => "bounces",
        }
    }
}

/// A sending provider whose webhook reports bounces, complaints and unsubscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    Sendgrid,
    Mailgun,
    Brevo,
    Mailjet,
    Ses,
    Resend,
}

impl Provider {
    /// The name, as in `transport = "…"`, `[serve.webhooks.…]` and the store's `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::Sendgrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Brevo => "brevo",
            Provider::Mailjet => "mailjet",
            Provider::Ses => "ses",
            Provider::Resend => "resend",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a provider's webhook, or a report in the bounce mailbox, said about one address.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub at: DateTime<Utc>,
    pub address: &'a str,
    /// [`Kind::Bounce`], [`Kind::SoftBounce`], [`Kind::Complaint`] or [`Kind::Unsubscribe`].
    pub kind: Kind,
    /// [`Source::Webhook`] or [`Source::Bounces`].
    pub source: Source,
    /// The issue the report is about, when known (a bounce report found in the ledger).
    pub issue: Option<&'a str>,
    /// The provider's words: the bounce type, the SMTP diagnostic.
    pub reason: Option<&'a str>,
    /// The provider's id of the event, or the report's Message-ID, when it has one: a report
    /// already recorded under it for the same address (a retry of a delivery whose answer was
    /// lost, a mailbox read again) is not recorded, nor counted, again.
    pub reference: Option<&'a str>,
}

/// When soft bounces add up to a bounce: `limit` of them for one address within `window`
/// (`[serve.bounces]`), counted since its last resubscribe or bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftRule {
    pub limit: u32,
    pub window: chrono::TimeDelta,
}

/// What recording one [`Report`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded; `soft` is the count of soft bounces in the window for a soft bounce.
    Event { id: i64, soft: Option<u32> },
    /// A soft bounce that reached the limit: recorded, and a bounce after it.
    Escalated { id: i64, soft: u32 },
    /// A report already recorded under the same reference: nothing done.
    Duplicate,
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

/// One event of a batch ([`Store::record_batch`]).
#[derive(Debug, Clone)]
pub struct Pending<'a> {
    pub event: Event<'a>,
    /// Left unrecorded when the address is held by a bounce or a complaint: a reader's own
    /// resubscribe, which cannot lift either, is then not recorded at all.
    pub unless_held: bool,
}

/// What recording one event of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The event's id; `None` when it was left unrecorded ([`Pending::unless_held`]).
    pub id: Option<i64>,
    /// The bounce or complaint that holds the address, if one does (whatever was recorded).
    pub held: Option<Kind>,
}

/// An address that is suppressed, and the event that suppresses it.
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

/// The schema's version, in `PRAGMA user_version`: 1 (never written as such, 0 in the file)
/// had unsubscribes and resubscribes only; 2 adds bounces, complaints and `ref`.
const VERSION: i64 = 2;

/// Schema 2's table, under a name given by the caller (`events`, or the copy a migration
/// fills).
fn table(name: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    address     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN
                    ('unsubscribe', 'resubscribe', 'bounce', 'soft-bounce', 'complaint')),
    source      TEXT NOT NULL,
    issue       TEXT,
    reason      TEXT,
    -- The provider's id of a reported event, so that its retries are recorded once.
    ref         TEXT
);"
    )
}

const INDEXES_AND_TRIGGERS: &str = "
CREATE INDEX IF NOT EXISTS events_by_address ON events (address, id);
CREATE INDEX IF NOT EXISTS events_by_ref ON events (ref) WHERE ref IS NOT NULL;
-- Append-only: history is never rewritten.
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
";

/// Schema 1 to 2: SQLite cannot change a CHECK constraint in place, so the rows are copied,
/// ids and all, into a table of the new shape that then takes the old one's name. Inside one
/// transaction: a crash leaves schema 1 whole, or schema 2 whole.
const MIGRATE_FROM_1: &str = "
INSERT INTO events_v2 (id, at, fingerprint, address, kind, source, issue, reason)
    SELECT id, at, fingerprint, address, kind, source, issue, reason FROM events ORDER BY id;
DROP TRIGGER IF EXISTS events_no_update;
DROP TRIGGER IF EXISTS events_no_delete;
DROP INDEX IF EXISTS events_by_address;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
";

/// Every event that can change an address's state, in order: soft bounces only count.
const STATE_EVENTS: &str = "
SELECT id, address, kind, source, at FROM events
WHERE kind != 'soft-bounce'
ORDER BY address, id";

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
        let mut store = Store {
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
        store.schema().map_err(|e| store.error(e))?;
        Ok(store)
    }

    /// Creates the schema, or moves a schema 1 store to schema 2; once, whoever opens first
    /// (the check is repeated inside the write transaction).
    fn schema(&mut self) -> rusqlite::Result<()> {
        let version =
            |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
        if version(&self.conn)? >= VERSION {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if version(&tx)? < VERSION {
            let exists: bool = tx.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                [],
                |r| r.get(0),
            )?;
            if exists {
                tx.execute_batch(&table("events_v2"))?;
                tx.execute_batch(MIGRATE_FROM_1)?;
            } else {
                tx.execute_batch(&table("events"))?;
            }
            tx.execute_batch(INDEXES_AND_TRIGGERS)?;
            tx.pragma_update(None, "user_version", VERSION)?;
        }
        tx.commit()
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
                    stamp(event.at),
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

    /// Records a batch of events in one transaction, committed (and synced) when this
    /// returns: one sync for the whole batch, which is what lets `serve` answer many readers
    /// at once (group commit) while still answering none before its event is on disk. Each
    /// event is told whether its address is held by a bounce or a complaint, as it stood
    /// before it.
    pub fn record_batch(&mut self, batch: &[Pending]) -> Result<Vec<Done>, StoreError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| StoreError {
            path: path.clone(),
            reason: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut out = Vec::with_capacity(batch.len());
        for pending in batch {
            let event = &pending.event;
            let address = idn::key(event.address);
            let held = Self::held_in(&tx, &address).map_err(fail)?;
            if pending.unless_held && held.is_some() {
                out.push(Done { id: None, held });
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO events (at, fingerprint, address, kind, source, issue, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    stamp(event.at),
                    fingerprint(&address),
                    address,
                    event.kind.as_str(),
                    event.source.as_str(),
                    event.issue,
                    event.reason,
                ])
            })
            .map_err(fail)?;
            out.push(Done {
                id: Some(tx.last_insert_rowid()),
                held,
            });
        }
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    /// The bounce or complaint that holds `address`, if one does: what only staff lift,
    /// whether or not a later unsubscribe is what suppresses it now.
    pub fn held(&self, address: &str) -> Result<Option<Kind>, StoreError> {
        Self::held_in(&self.conn, &idn::key(address)).map_err(|e| self.error(e))
    }

    fn held_in(conn: &Connection, key: &str) -> rusqlite::Result<Option<Kind>> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, address, kind, source, at FROM events
             WHERE address = ?1 AND kind IN ('bounce', 'complaint', 'resubscribe') ORDER BY id",
        )?;
        let mut state = State::default();
        for row in stmt.query_map([key], Row::read)? {
            state.apply(row?);
        }
        Ok(state.held.and_then(|row| Kind::parse(&row.kind)))
    }

    /// The addresses suppressed now, by address, each with the event that suppresses it.
    pub fn current(&self) -> Result<Vec<Suppression>, StoreError> {
        let mut out = Vec::new();
        self.each_current(|s| out.push(s))?;
        Ok(out)
    }

    /// Hands each address suppressed now to `take`, in address order, with the event that
    /// suppresses it: a send reads them into its sets without holding them all at once.
    pub fn each_current(&self, mut take: impl FnMut(Suppression)) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(STATE_EVENTS).map_err(|e| self.error(e))?;
        let rows = stmt.query_map([], Row::read).map_err(|e| self.error(e))?;
        let mut state = State::default();
        let mut address: Option<String> = None;
        for row in rows {
            let row = row.map_err(|e| self.error(e))?;
            if address.as_deref() != Some(row.address.as_str()) {
                if let Some(s) = std::mem::take(&mut state).suppression() {
                    take(s);
                }
                address = Some(row.address.clone());
            }
            state.apply(row);
        }
        if let Some(s) = state.suppression() {
            take(s);
        }
        Ok(())
    }

    /// What suppresses `address` now, if anything.
    pub fn state(&self, address: &str) -> Result<Option<Kind>, StoreError> {
        Self::state_in(&self.conn, &idn::key(address)).map_err(|e| self.error(e))
    }

    fn state_in(conn: &Connection, key: &str) -> rusqlite::Result<Option<Kind>> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, address, kind, source, at FROM events
             WHERE address = ?1 AND kind != 'soft-bounce' ORDER BY id",
        )?;
        let mut state = State::default();
        for row in stmt.query_map([key], Row::read)? {
            state.apply(row?);
        }
        Ok(state.suppression().and_then(|s| Kind::parse(&s.kind)))
    }

    /// The latest event of `address`, if any (soft bounces included).
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
        Ok(kind.as_deref().and_then(Kind::parse))
    }

    /// Records what a provider's webhook or the bounce mailbox reported, all in one transaction, committed (and
    /// synced) when this returns: a soft bounce that brings the address's count in
    /// `rule.window` to `rule.limit` is followed by a bounce; a report whose reference is
    /// already recorded for the same source and address is skipped.
    pub fn record_reports(
        &mut self,
        reports: &[Report],
        rule: SoftRule,
    ) -> Result<Vec<Recorded>, StoreError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| StoreError {
            path: path.clone(),
            reason: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut out = Vec::with_capacity(reports.len());
        for report in reports {
            out.push(Self::record_report(&tx, report, rule).map_err(fail)?);
        }
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    fn record_report(
        tx: &rusqlite::Transaction,
        report: &Report,
        rule: SoftRule,
    ) -> rusqlite::Result<Recorded> {
        let key = idn::key(report.address);
        let source = report.source.as_str();
        if let Some(reference) = report.reference {
            let seen: bool = tx
                .prepare_cached(
                    "SELECT count(*) > 0 FROM events WHERE ref = ?1 AND source = ?2 AND address = ?3",
                )?
                .query_row(params![reference, source, key], |r| r.get(0))?;
            if seen {
                return Ok(Recorded::Duplicate);
            }
        }
        let insert = |kind: Kind, reason: Option<&str>, reference: Option<&str>| {
            tx.prepare_cached(
                "INSERT INTO events (at, fingerprint, address, kind, source, issue, reason, ref)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                stamp(report.at),
                fingerprint(&key),
                key,
                kind.as_str(),
                source,
                report.issue,
                reason,
                reference,
            ])?;
            Ok::<_, rusqlite::Error>(tx.last_insert_rowid())
        };
        let id = insert(report.kind, report.reason, report.reference)?;
        if report.kind != Kind::SoftBounce {
            return Ok(Recorded::Event { id, soft: None });
        }
        // Soft bounces since the address was last resubscribed or bounced, in the window.
        let soft: u32 = tx
            .prepare_cached(
                "SELECT count(*) FROM events
                 WHERE address = ?1 AND kind = 'soft-bounce' AND at >= ?2
                   AND id > (SELECT coalesce(max(id), 0) FROM events
                             WHERE address = ?1 AND kind IN ('resubscribe', 'bounce'))",
            )?
            .query_row(params![key, stamp(report.at - rule.window)], |r| r.get(0))?;
        let held = matches!(
            Self::state_in(tx, &key)?,
            Some(Kind::Bounce | Kind::Complaint)
        );
        if soft < rule.limit || held {
            return Ok(Recorded::Event {
                id,
                soft: Some(soft),
            });
        }
        let days = rule.window.num_days();
        let why = match report.reason {
            Some(last) => format!("{soft} soft bounces in {days} days; the last: {last}"),
            None => format!("{soft} soft bounces in {days} days"),
        };
        insert(Kind::Bounce, Some(&why), None)?;
        Ok(Recorded::Escalated { id, soft })
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

/// How times are stored: RFC 3339, UTC, milliseconds, so that text order is time order.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One row that can change an address's state.
struct Row {
    id: i64,
    address: String,
    kind: String,
    source: String,
    at: String,
}

impl Row {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<Row> {
        Ok(Row {
            id: r.get(0)?,
            address: r.get(1)?,
            kind: r.get(2)?,
            source: r.get(3)?,
            at: r.get(4)?,
        })
    }
}

/// One address's state, event after event: what a reader's resubscribe lifts (an
/// unsubscribe) is kept apart from what only staff lift (a bounce, a complaint).
#[derive(Default)]
struct State {
    unsubscribed: Option<Row>,
    held: Option<Row>,
}

impl State {
    fn apply(&mut self, row: Row) {
        match Kind::parse(&row.kind) {
            Some(Kind::Unsubscribe) => self.unsubscribed = Some(row),
            Some(Kind::Bounce | Kind::Complaint) => self.held = Some(row),
            Some(Kind::Resubscribe) => {
                if row.source == Source::Staff.as_str() {
                    self.held = None;
                }
                self.unsubscribed = None;
            }
            // Soft bounces count toward a bounce; a kind of a later schema is left alone.
            Some(Kind::SoftBounce) | None => {}
        }
    }

    /// The latest of the events that suppress the address, if any.
    fn suppression(self) -> Option<Suppression> {
        let row = match (self.unsubscribed, self.held) {
            (Some(u), Some(h)) => Some(if u.id > h.id { u } else { h }),
            (u, h) => u.or(h),
        }?;
        Some(Suppression {
            address: row.address,
            kind: row.kind,
            source: row.source,
            at: row.at,
        })
    }
}

/// Adds the store's current suppressions to `set`, when the store at `path` exists (a
/// workspace that never served has none); returns how many it added.
pub fn add_current(path: &Path, set: &mut Fingerprints) -> Result<usize, StoreError> {
    if !path.is_file() {
        return Ok(0);
    }
    let mut added = 0;
    Store::open(path)?.each_current(|s| {
        if set.insert(&s.address) {
            added += 1;
        }
    })?;
    Ok(added)
}

/// Like [`add_current`], by kind: bounces to `bounced`, unsubscribes and complaints (the
/// reader's own "no more") to `unsubscribed`; returns how many it added.
pub fn add_current_by_kind(
    path: &Path,
    unsubscribed: &mut Fingerprints,
    bounced: &mut Fingerprints,
) -> Result<usize, StoreError> {
    if !path.is_file() {
        return Ok(0);
    }
    let mut added = 0;
    Store::open(path)?.each_current(|s| {
        let new = match Kind::parse(&s.kind) {
            Some(Kind::Bounce) => bounced.insert(&s.address),
            _ => unsubscribed.insert(&s.address),
        };
        if new {
            added += 1;
        }
    })?;
    Ok(added)
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

    fn report(address: &str, kind: Kind, reference: Option<&'static str>) -> Report<'static> {
        Report {
            at: DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            address: Box::leak(address.to_string().into_boxed_str()),
            kind,
            source: Source::Webhook(Provider::Postmark),
            issue: None,
            reason: Some("550 5.1.1 unknown user"),
            reference,
        }
    }

    const RULE: SoftRule = SoftRule {
        limit: 3,
        window: chrono::TimeDelta::days(30),
    };

    #[test]
    fn bounces_and_complaints_suppress_and_only_staff_lift_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store
            .record_reports(
                &[
                    report("ana@example.org", Kind::Bounce, Some("b1")),
                    report("bo@example.org", Kind::Complaint, None),
                    report("cy@example.org", Kind::Unsubscribe, None),
                ],
                RULE,
            )
            .unwrap();
        let kinds = |store: &Store| {
            store
                .current()
                .unwrap()
                .into_iter()
                .map(|s| format!("{} {} {}", s.address, s.kind, s.source))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&store),
            [
                "ana@example.org bounce postmark",
                "bo@example.org complaint postmark",
                "cy@example.org unsubscribe postmark"
            ]
        );
        // The page's resubscribe lifts an unsubscribe, not a bounce or a complaint.
        for who in ["ana@example.org", "bo@example.org", "cy@example.org"] {
            store.record(&event(who, Kind::Resubscribe)).unwrap();
        }
        assert_eq!(
            kinds(&store),
            [
                "ana@example.org bounce postmark",
                "bo@example.org complaint postmark"
            ]
        );
        assert_eq!(store.state("ana@example.org").unwrap(), Some(Kind::Bounce));
        // Staff lift anything.
        let mut staff = event("ana@example.org", Kind::Resubscribe);
        staff.source = Source::Staff;
        store.record(&staff).unwrap();
        assert_eq!(store.state("ana@example.org").unwrap(), None);
        // A retry of a recorded report is skipped.
        let again = store
            .record_reports(&[report("ana@example.org", Kind::Bounce, Some("b1"))], RULE)
            .unwrap();
        assert_eq!(again, [Recorded::Duplicate]);
        assert_eq!(store.state("ana@example.org").unwrap(), None);
    }

    #[test]
    fn soft_bounces_become_a_bounce_at_the_limit_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let at = |days: i64, reference: &'static str| {
            let mut r = report("ana@example.org", Kind::SoftBounce, Some(reference));
            r.at += chrono::TimeDelta::days(days);
            r
        };
        // Two, then one 40 days later: the first two are out of the window.
        let out = store
            .record_reports(&[at(0, "s1"), at(1, "s2"), at(41, "s3")], RULE)
            .unwrap();
        assert!(
            matches!(out[2], Recorded::Event { soft: Some(1), .. }),
            "{out:?}"
        );
        assert_eq!(store.state("ana@example.org").unwrap(), None);
        // A retry does not count twice.
        let out = store.record_reports(&[at(41, "s3")], RULE).unwrap();
        assert_eq!(out, [Recorded::Duplicate]);
        let out = store.record_reports(&[at(42, "s4")], RULE).unwrap();
        assert!(
            matches!(out[0], Recorded::Event { soft: Some(2), .. }),
            "{out:?}"
        );
        let out = store.record_reports(&[at(43, "s5")], RULE).unwrap();
        assert!(
            matches!(out[0], Recorded::Escalated { soft: 3, .. }),
            "{out:?}"
        );
        let current = store.current().unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].kind, "bounce");
        // Counting starts again after the bounce.
        let out = store.record_reports(&[at(44, "s6")], RULE).unwrap();
        assert!(
            matches!(out[0], Recorded::Event { soft: Some(1), .. }),
            "{out:?}"
        );
    }

    #[test]
    fn a_store_of_schema_1_opens_with_its_history_and_takes_bounces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            // What bulletin wrote before bounces, as it wrote it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                    fingerprint TEXT NOT NULL, address TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('unsubscribe', 'resubscribe')),
                    source TEXT NOT NULL, issue TEXT, reason TEXT);
                 CREATE INDEX events_by_address ON events (address, id);
                 CREATE TRIGGER events_no_update BEFORE UPDATE ON events
                    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                 CREATE TRIGGER events_no_delete BEFORE DELETE ON events
                    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                 INSERT INTO events VALUES (1, '2020-01-01T00:00:00.000Z', 'f', 'ana@example.org', 'unsubscribe', 'page', NULL, NULL);
                 INSERT INTO events VALUES (7, '2020-01-02T00:00:00.000Z', 'f', 'bo@example.org', 'unsubscribe', 'staff', NULL, 'asked');",
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.events().unwrap(), 2);
        assert_eq!(store.current().unwrap().len(), 2);
        let out = store
            .record_reports(&[report("cy@example.org", Kind::Bounce, None)], RULE)
            .unwrap();
        // Ids go on from the old table's.
        assert_eq!(out, [Recorded::Event { id: 8, soft: None }]);
        assert!(store.conn.execute("DELETE FROM events", []).is_err());
        drop(store);
        // Opened again: nothing more to do.
        assert_eq!(Store::open(&path).unwrap().current().unwrap().len(), 3);
    }

    #[test]
    fn a_batch_is_one_transaction_and_a_readers_resubscribe_never_lifts_a_bounce() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        store
            .record_reports(&[report("ana@example.org", Kind::Bounce, None)], RULE)
            .unwrap();
        store
            .record(&event("ana@example.org", Kind::Unsubscribe))
            .unwrap();
        let pending = |address, kind, unless_held| Pending {
            event: event(address, kind),
            unless_held,
        };
        let done = store
            .record_batch(&[
                pending("Ana@example.org", Kind::Resubscribe, true),
                pending("bo@example.org", Kind::Unsubscribe, false),
                pending("bo@example.org", Kind::Resubscribe, true),
                pending("ana@example.org", Kind::Unsubscribe, false),
            ])
            .unwrap();
        // Ana's bounce holds her even behind her own later unsubscribe: her resubscribe is
        // not recorded; Bo's is.
        assert_eq!(
            done.iter()
                .map(|d| (d.id.is_some(), d.held))
                .collect::<Vec<_>>(),
            [
                (false, Some(Kind::Bounce)),
                (true, None),
                (true, None),
                (true, Some(Kind::Bounce))
            ]
        );
        assert_eq!(store.events().unwrap(), 5);
        assert_eq!(store.held("ana@example.org").unwrap(), Some(Kind::Bounce));
        assert_eq!(store.held("bo@example.org").unwrap(), None);
        let mut staff = event("ana@example.org", Kind::Resubscribe);
        staff.source = Source::Staff;
        store.record(&staff).unwrap();
        assert_eq!(store.held("ana@example.org").unwrap(), None);
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
