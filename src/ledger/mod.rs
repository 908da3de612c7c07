//! The ledger: an SQLite file that records, for every (issue, recipient), where the delivery
//! stands, so that a crash, a Ctrl-C or a flaky relay never loses track of who got what.
//!
//! A delivery moves pending → in flight → sent (with the server's reply and Message-ID) or
//! failed (temporary or permanent, with the reply). Claims and outcomes are committed in small
//! transactions as they happen (WAL mode: readers never wait, and a commit is cheap). After a
//! crash, deliveries left in flight are put back to pending and marked *uncertain*: the relay
//! may have accepted them just before the crash, and the report says so.
//!
//! One run at a time holds an issue: a second `send` of the same issue is refused, and told
//! which run holds it since when. A run that stopped sending heartbeats (it crashed) no longer
//! holds anything. An issue whose content changed after a partial send is refused unless
//! forced.
//!
//! This module knows no transport or message types: outcomes arrive as plain values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// A run that has not written a heartbeat for this long is taken to have crashed.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// The schema, applied in order; `PRAGMA user_version` says how many are in place.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE issues (
    issue        TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    subject      TEXT NOT NULL,
    first_run_at TEXT NOT NULL
);
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    issue        TEXT NOT NULL,
    holder       TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX runs_open ON runs (issue) WHERE finished_at IS NULL;
CREATE TABLE deliveries (
    issue      TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'sent', 'failed_temporary', 'failed_permanent')),
    uncertain  INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    reply      TEXT,
    run        INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (issue, recipient)
) WITHOUT ROWID;
CREATE INDEX deliveries_state ON deliveries (issue, state);
"#];

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {}: {reason}", path.display())]
    Storage { path: PathBuf, reason: String },
    #[error(
        "{issue} is being sent by another run ({holder}, since {since}); wait for it to finish, or stop it and run send again to continue"
    )]
    Held {
        issue: String,
        holder: String,
        since: String,
    },
    #[error(
        "{issue} changed since it was first sent on {since} ({sent} recipients already have the earlier version); run with --force to send the new version to the rest"
    )]
    Changed {
        issue: String,
        since: String,
        sent: u64,
    },
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
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::Sent => "sent",
            State::FailedTemporary => "failed_temporary",
            State::FailedPermanent => "failed_permanent",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "in_flight" => State::InFlight,
            "sent" => State::Sent,
            "failed_temporary" => State::FailedTemporary,
            "failed_permanent" => State::FailedPermanent,
            _ => State::Pending,
        }
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by the server: its Message-ID and its reply.
    Sent { message_id: String, reply: String },
    /// Not accepted; `permanent` failures are not retried.
    Failed { permanent: bool, reply: String },
    /// Claimed but not tried (the run stopped first): pending again, attempts unchanged.
    Released,
}

/// A run that holds an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(i64);

/// Who runs a send: for telling people, and for noticing a run whose process is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, pid {}", self.host, self.pid)
    }
}

/// What a run starts with.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub run: RunId,
    /// Deliveries a crashed run left in flight, now pending again and marked uncertain.
    pub recovered: u64,
}

/// Counts of deliveries by state, for one issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: u64,
    pub failed_permanent: u64,
    pub failed_temporary: u64,
    pub pending: u64,
    pub in_flight: u64,
    /// Deliveries that a crash left in doubt (they may have been delivered twice).
    pub uncertain: u64,
}

/// A delivery that did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub recipient: String,
    pub state: State,
    pub reply: Option<String>,
    pub attempts: u32,
}

/// The open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Ledger {
    /// Opens (creating it, and its folder, if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let storage = |reason: String| LedgerError::Storage {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| storage(crate::diag::io_reason(&e)))?;
        }
        let conn = Connection::open(path).map_err(|e| storage(e.to_string()))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.prepare().map_err(|e| storage(e.to_string()))?;
        Ok(ledger)
    }

    fn prepare(&mut self) -> rusqlite::Result<()> {
        // WAL: commits are cheap and readers (`bulletin status`) never block the sender.
        self.conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.busy_timeout(Duration::from_secs(10))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let done = usize::try_from(version).unwrap_or(0);
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    fn storage(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError::Storage {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Takes hold of `issue` for a run by `holder`. Refused while another live run holds it,
    /// or when the issue changed since it was first sent (unless `force`). A run is live while
    /// it beats (see [`STALE_AFTER`]) and `alive` says its process still exists (a run killed
    /// on this machine is noticed at once). Deliveries a crashed run left in flight go back to
    /// pending, marked uncertain.
    #[allow(clippy::too_many_arguments)]
    pub fn start_run(
        &mut self,
        issue: &str,
        content_hash: &str,
        subject: &str,
        holder: &Holder,
        force: bool,
        now: DateTime<Utc>,
        alive: impl Fn(&Holder) -> bool,
    ) -> Result<RunStart, LedgerError> {
        let stale_before = stamp(now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default());
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: Option<(String, String, i64, String)> = tx
                .query_row(
                    "SELECT host, started_at, pid, holder FROM runs
                     WHERE issue = ?1 AND finished_at IS NULL AND heartbeat_at >= ?2
                     ORDER BY id LIMIT 1",
                    params![issue, stale_before],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((host, since, pid, shown)) = live {
                let other = Holder {
                    host,
                    pid: u32::try_from(pid).unwrap_or(0),
                };
                if alive(&other) {
                    return Ok(Err(LedgerError::Held {
                        issue: issue.to_string(),
                        holder: shown,
                        since,
                    }));
                }
            }
            let known: Option<(String, String)> = tx
                .query_row(
                    "SELECT content_hash, first_run_at FROM issues WHERE issue = ?1",
                    params![issue],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((hash, since)) = &known
                && hash != content_hash
            {
                let sent: i64 = tx.query_row(
                    "SELECT count(*) FROM deliveries WHERE issue = ?1 AND state = 'sent'",
                    params![issue],
                    |r| r.get(0),
                )?;
                let sent = sent.unsigned_abs();
                if sent > 0 && !force {
                    return Ok(Err(LedgerError::Changed {
                        issue: issue.to_string(),
                        since: since.clone(),
                        sent,
                    }));
                }
            }
            tx.execute(
                "INSERT INTO issues (issue, content_hash, subject, first_run_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (issue) DO UPDATE SET content_hash = excluded.content_hash, subject = excluded.subject",
                params![issue, content_hash, subject, stamp(now)],
            )?;
            // Runs that stopped without finishing (crashed) hold nothing any more.
            tx.execute(
                "UPDATE runs SET finished_at = ?2 WHERE issue = ?1 AND finished_at IS NULL",
                params![issue, stamp(now)],
            )?;
            let recovered = tx.execute(
                "UPDATE deliveries SET state = 'pending', uncertain = 1, updated_at = ?2
                 WHERE issue = ?1 AND state = 'in_flight'",
                params![issue, stamp(now)],
            )? as u64;
            tx.execute(
                "INSERT INTO runs (issue, holder, host, pid, started_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    issue,
                    holder.to_string(),
                    holder.host,
                    holder.pid,
                    stamp(now)
                ],
            )?;
            let run = RunId(tx.last_insert_rowid());
            tx.commit()?;
            Ok(Ok(RunStart { run, recovered }))
        })();
        result.map_err(|e| self.storage(e))?
    }

    /// Says the run is alive; call it every few seconds while sending.
    pub fn heartbeat(&self, run: RunId, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1",
                params![run.0, stamp(now)],
            )
            .map(|_| ())
            .map_err(|e| self.storage(e))
    }

    /// Lets go of the issue.
    pub fn finish_run(&self, run: RunId, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2 WHERE id = ?1",
                params![run.0, stamp(now)],
            )
            .map(|_| ())
            .map_err(|e| self.storage(e))
    }

    /// Marks `recipients` in flight for `run`, in one transaction, and returns those claimed:
    /// a recipient already sent to (or failed permanently, unless `retry_permanent`) is left
    /// alone and not returned.
    pub fn claim(
        &mut self,
        issue: &str,
        run: RunId,
        recipients: &[String],
        retry_permanent: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            let mut claimed = Vec::with_capacity(recipients.len());
            {
                let mut current = tx.prepare_cached(
                    "SELECT state FROM deliveries WHERE issue = ?1 AND recipient = ?2",
                )?;
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO deliveries (issue, recipient, state, run, updated_at)
                     VALUES (?1, ?2, 'in_flight', ?3, ?4)
                     ON CONFLICT (issue, recipient) DO UPDATE
                     SET state = 'in_flight', run = excluded.run, updated_at = excluded.updated_at",
                )?;
                for r in recipients {
                    let state: Option<String> = current
                        .query_row(params![issue, r], |row| row.get(0))
                        .optional()?;
                    let skip = match state.as_deref().map(State::parse) {
                        Some(State::Sent) => true,
                        Some(State::FailedPermanent) => !retry_permanent,
                        _ => false,
                    };
                    if !skip {
                        upsert.execute(params![issue, r, run.0, stamp(now)])?;
                        claimed.push(r.clone());
                    }
                }
            }
            tx.commit()?;
            Ok(claimed)
        })();
        result.map_err(|e| self.storage(e))
    }

    /// Records how deliveries ended, in one transaction.
    pub fn record(
        &mut self,
        issue: &str,
        outcomes: &[(String, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            {
                let mut update = tx.prepare_cached(
                    "UPDATE deliveries
                     SET state = ?3, message_id = coalesce(?4, message_id), reply = ?5,
                         attempts = attempts + 1, updated_at = ?6
                     WHERE issue = ?1 AND recipient = ?2",
                )?;
                let mut release = tx.prepare_cached(
                    "UPDATE deliveries SET state = 'pending', updated_at = ?3
                     WHERE issue = ?1 AND recipient = ?2 AND state = 'in_flight'",
                )?;
                for (recipient, outcome) in outcomes {
                    let (state, message_id, reply) = match outcome {
                        Outcome::Released => {
                            release.execute(params![issue, recipient, stamp(now)])?;
                            continue;
                        }
                        Outcome::Sent { message_id, reply } => {
                            (State::Sent, Some(message_id.as_str()), reply.as_str())
                        }
                        Outcome::Failed { permanent, reply } => (
                            if *permanent {
                                State::FailedPermanent
                            } else {
                                State::FailedTemporary
                            },
                            None,
                            reply.as_str(),
                        ),
                    };
                    update.execute(params![
                        issue,
                        recipient,
                        state.as_str(),
                        message_id,
                        reply,
                        stamp(now)
                    ])?;
                }
            }
            tx.commit()
        })();
        result.map_err(|e| self.storage(e))
    }

    /// How the sending of `issue` stands.
    pub fn report(&self, issue: &str) -> Result<Report, LedgerError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT state, count(*), sum(uncertain) FROM deliveries WHERE issue = ?1 GROUP BY state",
            )?;
            let mut report = Report::default();
            let rows = stmt.query_map(params![issue], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (state, n, uncertain) = row?;
                let (n, uncertain) = (n.unsigned_abs(), uncertain.unsigned_abs());
                report.uncertain += uncertain;
                match State::parse(&state) {
                    State::Pending => report.pending = n,
                    State::InFlight => report.in_flight = n,
                    State::Sent => report.sent = n,
                    State::FailedTemporary => report.failed_temporary = n,
                    State::FailedPermanent => report.failed_permanent = n,
                }
            }
            Ok(report)
        })();
        result.map_err(|e| self.storage(e))
    }

    /// Everyone who did not get `issue`, and why, in recipient order.
    pub fn failures(&self, issue: &str) -> Result<Vec<Failure>, LedgerError> {
        let result = (|| {
            let mut stmt = self.conn.prepare(
                "SELECT recipient, state, reply, attempts FROM deliveries
                 WHERE issue = ?1 AND state <> 'sent' ORDER BY recipient",
            )?;
            let rows = stmt.query_map(params![issue], |r| {
                Ok(Failure {
                    recipient: r.get(0)?,
                    state: State::parse(&r.get::<_, String>(1)?),
                    reply: r.get(2)?,
                    attempts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })();
        result.map_err(|e| self.storage(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_591_000_000 + seconds, 0).unwrap()
    }

    fn me(pid: u32) -> Holder {
        Holder {
            host: "laptop".into(),
            pid,
        }
    }

    fn alive(_: &Holder) -> bool {
        true
    }

    fn people(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p{i}@example.org")).collect()
    }

    fn sent(id: &str) -> Outcome {
        Outcome::Sent {
            message_id: format!("<{id}@example.org>"),
            reply: "250 OK".into(),
        }
    }

    #[test]
    fn a_delivery_goes_from_in_flight_to_sent_and_is_never_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join(".bulletin/ledger.sqlite")).unwrap();
        let run = l
            .start_run("2020-06", "h1", "June", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        let everyone = people(3);
        assert_eq!(
            l.claim("2020-06", run, &everyone, false, at(1)).unwrap(),
            everyone
        );
        l.record(
            "2020-06",
            &[
                (everyone[0].clone(), sent("a")),
                (
                    everyone[1].clone(),
                    Outcome::Failed {
                        permanent: true,
                        reply: "550 no such user".into(),
                    },
                ),
            ],
            at(2),
        )
        .unwrap();
        let report = l.report("2020-06").unwrap();
        assert_eq!(
            (report.sent, report.failed_permanent, report.in_flight),
            (1, 1, 1)
        );
        // Claimed again: only the one still in flight.
        assert_eq!(
            l.claim("2020-06", run, &everyone, false, at(3)).unwrap(),
            [everyone[2].clone()]
        );
        // --only-failed style retry of permanent failures.
        assert_eq!(
            l.claim("2020-06", run, &everyone[1..2], true, at(4))
                .unwrap(),
            [everyone[1].clone()]
        );
        let mode: String = l
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn after_a_crash_in_flight_deliveries_are_pending_and_uncertain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let mut l = Ledger::open(&path).unwrap();
            let run = l
                .start_run("i", "h", "s", &me(1), false, at(0), alive)
                .unwrap()
                .run;
            l.claim("i", run, &people(5), false, at(1)).unwrap();
            l.record("i", &[(people(1)[0].clone(), sent("x"))], at(2))
                .unwrap();
            // The process dies here: no finish_run, no heartbeat.
        }
        let mut l = Ledger::open(&path).unwrap();
        let start = l
            .start_run("i", "h", "s", &me(1), false, at(600), alive)
            .unwrap();
        assert_eq!(start.recovered, 4);
        let report = l.report("i").unwrap();
        assert_eq!((report.sent, report.pending, report.uncertain), (1, 4, 4));
        let again = l.claim("i", start.run, &people(5), false, at(601)).unwrap();
        assert_eq!(again.len(), 4, "the sent one is not claimed again");
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let mut first = Ledger::open(&path).unwrap();
        let mut second = Ledger::open(&path).unwrap();
        let run = first
            .start_run("i", "h", "s", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        first.heartbeat(run, at(30)).unwrap();
        let err = second
            .start_run("i", "h", "s", &me(2), false, at(40), alive)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("i is being sent by another run (laptop, pid 1, since"),
            "{err}"
        );
        // A holder whose process is gone holds nothing, heartbeat or not.
        let gone = |h: &Holder| h.pid != 1;
        let run = second.start_run("i", "h", "s", &me(2), false, at(41), gone);
        assert!(run.is_ok());
        // A run that stops beating for a minute holds nothing either.
        assert!(
            first
                .start_run("i", "h", "s", &me(3), false, at(200), alive)
                .is_ok()
        );
    }

    #[test]
    fn a_changed_issue_needs_force_after_a_partial_send() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = l
            .start_run("i", "v1", "s", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        l.claim("i", run, &people(2), false, at(1)).unwrap();
        l.record("i", &[(people(1)[0].clone(), sent("x"))], at(2))
            .unwrap();
        l.finish_run(run, at(3)).unwrap();
        let err = l
            .start_run("i", "v2", "s", &me(1), false, at(4), alive)
            .unwrap_err();
        assert!(matches!(err, LedgerError::Changed { sent: 1, .. }), "{err}");
        assert!(err.to_string().contains("run with --force"));
        assert!(
            l.start_run("i", "v2", "s", &me(1), true, at(5), alive)
                .is_ok()
        );
        let failures = l.failures("i").unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].recipient, "p1@example.org");
    }
}
