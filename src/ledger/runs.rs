//! Runs: which run holds an issue, since when, and whether it is still alive.
//!
//! One run at a time holds an issue: a second `send` of the same issue is refused, and told
//! which run holds it since when. A run that stopped sending heartbeats (it crashed) no longer
//! holds anything. An issue whose content changed after a partial send is refused unless
//! forced. Taking hold also puts back to pending what a crashed run left in flight.
//!
//! Owns the `runs` and `issues` tables; touches `deliveries` only to recover and count them
//! when a run starts. Whether a process is alive is for the caller to say (`alive`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::schema::stamp;
use super::{Fault, Ledger, LedgerError};

/// A run that has not written a heartbeat for this long is taken to have crashed.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// A run that holds an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId(pub(super) i64);

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

/// What a run asks for when it starts.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    /// The issue's slug: "2020-06".
    pub issue: &'a str,
    /// The rendered issue's hash: a different one after a partial send is refused.
    pub content_hash: &'a str,
    pub subject: &'a str,
    pub holder: &'a Holder,
    /// Go on even though the issue changed after a partial send.
    pub force: bool,
}

/// What a run starts with.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub run: RunId,
    /// Deliveries a crashed run left in flight, now pending again and marked uncertain.
    pub recovered: u64,
}

impl Ledger {
    /// Takes hold of an issue for a run. Refused ([`LedgerError::Held`]) while another live
    /// run holds it, and ([`LedgerError::Changed`]) when the issue changed since it was first
    /// sent, unless `force`. A run is live while it beats (see [`STALE_AFTER`]) and `alive`
    /// says its process still exists (a run killed on this machine is noticed at once).
    /// Deliveries a crashed run left in flight go back to pending, marked uncertain.
    pub fn start_run(
        &mut self,
        request: &RunRequest<'_>,
        now: DateTime<Utc>,
        alive: impl Fn(&Holder) -> bool,
    ) -> Result<RunStart, LedgerError> {
        let stale_before = stamp(now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default());
        let RunRequest {
            issue,
            content_hash,
            subject,
            holder,
            force,
        } = *request;
        self.with_tx(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
                    return Err(Fault::Refused(LedgerError::Held {
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
                    return Err(Fault::Refused(LedgerError::Changed {
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
                params![issue, holder.to_string(), holder.host, holder.pid, stamp(now)],
            )?;
            let run = RunId(tx.last_insert_rowid());
            tx.commit()?;
            Ok(RunStart { run, recovered })
        })
    }

    /// Says the run is alive; call it every few seconds while sending.
    pub fn heartbeat(&self, run: RunId, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1",
                params![run.0, stamp(now)],
            )?;
            Ok(())
        })
    }

    /// Lets go of the issue.
    pub fn finish_run(&self, run: RunId, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.with(|conn| {
            conn.execute(
                "UPDATE runs SET finished_at = ?2 WHERE id = ?1",
                params![run.0, stamp(now)],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ledger::{Outcome, RecipientKey};

    pub(in crate::ledger) fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_591_000_000 + seconds, 0).unwrap()
    }

    pub(in crate::ledger) fn me(pid: u32) -> Holder {
        Holder {
            host: "laptop".into(),
            pid,
        }
    }

    pub(in crate::ledger) fn alive(_: &Holder) -> bool {
        true
    }

    pub(in crate::ledger) fn people(n: usize) -> Vec<RecipientKey> {
        (0..n)
            .map(|i| {
                let address: lettre::Address = format!("p{i}@example.org").parse().unwrap();
                RecipientKey::from(&address)
            })
            .collect()
    }

    pub(in crate::ledger) fn sent(id: &str) -> Outcome {
        Outcome::Sent {
            message_id: format!("<{id}@example.org>"),
            reply: "250 OK".into(),
            uncertain: false,
        }
    }

    /// Starts a run of `issue` at version `hash` by `holder`.
    pub(in crate::ledger) fn start(
        l: &mut Ledger,
        issue: &str,
        hash: &str,
        holder: &Holder,
        force: bool,
        now: DateTime<Utc>,
        alive: impl Fn(&Holder) -> bool,
    ) -> Result<RunStart, LedgerError> {
        let request = RunRequest {
            issue,
            content_hash: hash,
            subject: "s",
            holder,
            force,
        };
        l.start_run(&request, now, alive)
    }

    #[test]
    fn after_a_crash_in_flight_deliveries_are_pending_and_uncertain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let mut l = Ledger::open(&path).unwrap();
            let run = start(&mut l, "i", "h", &me(1), false, at(0), alive)
                .unwrap()
                .run;
            l.claim("i", run, &people(5), false, at(1)).unwrap();
            l.record("i", &[(people(1)[0].clone(), sent("x"))], at(2))
                .unwrap();
            // The process dies here: no finish_run, no heartbeat.
        }
        let mut l = Ledger::open(&path).unwrap();
        let begun = start(&mut l, "i", "h", &me(1), false, at(600), alive).unwrap();
        assert_eq!(begun.recovered, 4);
        let report = l.report("i").unwrap();
        assert_eq!((report.sent, report.pending, report.uncertain), (1, 4, 4));
        let again = l.claim("i", begun.run, &people(5), false, at(601)).unwrap();
        assert_eq!(again.claimed.len(), 4, "the sent one is not claimed again");
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let mut first = Ledger::open(&path).unwrap();
        let mut second = Ledger::open(&path).unwrap();
        let run = start(&mut first, "i", "h", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        first.heartbeat(run, at(30)).unwrap();
        let err = start(&mut second, "i", "h", &me(2), false, at(40), alive).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("i is being sent by another run (laptop, pid 1, since"),
            "{err}"
        );
        // A holder whose process is gone holds nothing, heartbeat or not.
        let gone = |h: &Holder| h.pid != 1;
        assert!(start(&mut second, "i", "h", &me(2), false, at(41), gone).is_ok());
        // A run that stops beating for a minute holds nothing either.
        assert!(start(&mut first, "i", "h", &me(3), false, at(200), alive).is_ok());
    }

    #[test]
    fn a_changed_issue_needs_force_after_a_partial_send() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = start(&mut l, "i", "v1", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        l.claim("i", run, &people(2), false, at(1)).unwrap();
        l.record("i", &[(people(1)[0].clone(), sent("x"))], at(2))
            .unwrap();
        l.finish_run(run, at(3)).unwrap();
        let err = start(&mut l, "i", "v2", &me(1), false, at(4), alive).unwrap_err();
        assert!(matches!(err, LedgerError::Changed { sent: 1, .. }), "{err}");
        assert!(err.to_string().contains("changed since it was first sent"));
        assert!(
            !err.to_string().contains("--"),
            "the ledger names no command-line flag: {err}"
        );
        assert!(start(&mut l, "i", "v2", &me(1), true, at(5), alive).is_ok());
        let failures = l.failures("i").unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].recipient.as_str(), "p1@example.org");
    }
}
