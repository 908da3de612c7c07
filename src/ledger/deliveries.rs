//! Deliveries: claiming recipients for a run, recording how each delivery ended, and
//! reporting where an issue's sending stands.
//!
//! Owns the `deliveries` table's rows after a run has started; never decides who holds an
//! issue (that is `runs`), never creates tables (that is `schema`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::schema::stamp;
use super::{Fault, Ledger, LedgerError, RecipientKey, RunId, State};

/// How one delivery ended. `uncertain`: the reader may have two copies (an answer was lost
/// and the message went again, or may have gone before it failed); once recorded, it stays.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by the server: its Message-ID and its reply.
    Sent {
        message_id: String,
        reply: String,
        uncertain: bool,
    },
    /// Not accepted; `permanent` failures are not retried.
    Failed {
        permanent: bool,
        reply: String,
        uncertain: bool,
    },
    /// Claimed but not sent (the run stopped first, or could not go on for a reason that is
    /// not the reader's): pending again, attempts unchanged.
    Released { uncertain: bool },
}

/// What [`Ledger::claim`] gave a run, and what it left alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claim {
    /// This run's to send.
    pub claimed: Vec<RecipientKey>,
    /// Sent by an earlier run.
    pub sent_before: u64,
    /// Failed for good in an earlier run (left alone unless permanent failures are retried),
    /// with the reply they failed with.
    pub failed_before: Vec<(RecipientKey, String)>,
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

/// A delivery that did not succeed (yet), or that may have succeeded twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Undelivered {
    pub recipient: RecipientKey,
    pub state: State,
    pub reply: Option<String>,
    /// Runs that tried it.
    pub attempts: u32,
    /// The reader may have two copies.
    pub uncertain: bool,
}

/// A delivery that a bounce report points at: the issue and the reader it went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub issue: String,
    pub recipient: RecipientKey,
}

impl Ledger {
    /// The delivery whose message carried `message_id` (with or without its angle brackets),
    /// if this ledger recorded one.
    pub fn by_message_id(&self, message_id: &str) -> Result<Option<Found>, LedgerError> {
        let bare = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        if bare.is_empty() {
            return Ok(None);
        }
        let bracketed = format!("<{bare}>");
        self.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT issue, recipient FROM deliveries
                     WHERE message_id IN (?1, ?2) ORDER BY updated_at DESC LIMIT 1",
                )?
                .query_row(params![bracketed, bare], |r| {
                    Ok(Found {
                        issue: r.get(0)?,
                        recipient: r.get(1)?,
                    })
                })
                .optional()?)
        })
    }

    /// The latest issue sent to `address` (compared in lower case), if any.
    pub fn latest_sent_to(&self, address: &str) -> Result<Option<Found>, LedgerError> {
        let key = address.trim().to_lowercase();
        self.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT issue, recipient FROM deliveries
                     WHERE recipient = ?1 AND state = 'sent' ORDER BY updated_at DESC LIMIT 1",
                )?
                .query_row(params![key], |r| {
                    Ok(Found {
                        issue: r.get(0)?,
                        recipient: r.get(1)?,
                    })
                })
                .optional()?)
        })
    }

    /// The first reader the issue `slug` (compared without regard to case: a relay may fold a
    /// VERP address's case) went or was to go to, as the ledger keys them, for whom `wanted`
    /// is true. Rows are read one at a time: an issue sent to a million readers is never
    /// held whole.
    pub fn find_recipient_of(
        &self,
        slug: &str,
        mut wanted: impl FnMut(&RecipientKey) -> bool,
    ) -> Result<Option<Found>, LedgerError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT issue, recipient FROM deliveries WHERE issue = ?1 COLLATE NOCASE",
            )?;
            let mut rows = stmt.query(params![slug])?;
            while let Some(row) = rows.next()? {
                let recipient: RecipientKey = row.get(1)?;
                if wanted(&recipient) {
                    return Ok(Some(Found {
                        issue: row.get(0)?,
                        recipient,
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Marks `recipients` in flight for `run`, in one transaction, and says which it claimed:
    /// a recipient already sent to (or failed permanently, unless `retry_permanent`) is left
    /// alone, and counted as such.
    pub fn claim(
        &mut self,
        issue: &str,
        run: RunId,
        recipients: &[RecipientKey],
        retry_permanent: bool,
        now: DateTime<Utc>,
    ) -> Result<Claim, LedgerError> {
        self.with_tx(|conn| {
            let tx = conn.transaction()?;
            let mut claim = Claim {
                claimed: Vec::with_capacity(recipients.len()),
                ..Claim::default()
            };
            {
                // A reader the ledger does not know yet, the usual case, is claimed by the
                // insert alone; only one it knows is looked up, to see how it stands.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO deliveries (issue, recipient, state, run, updated_at)
                     VALUES (?1, ?2, 'in_flight', ?3, ?4)
                     ON CONFLICT (issue, recipient) DO NOTHING",
                )?;
                let mut current = tx.prepare_cached(
                    "SELECT state, coalesce(reply, '') FROM deliveries WHERE issue = ?1 AND recipient = ?2",
                )?;
                let mut take = tx.prepare_cached(
                    "UPDATE deliveries SET state = 'in_flight', run = ?3, updated_at = ?4
                     WHERE issue = ?1 AND recipient = ?2",
                )?;
                for r in recipients {
                    if insert.execute(params![issue, r, run.0, stamp(now)])? == 1 {
                        claim.claimed.push(r.clone());
                        continue;
                    }
                    let (state, reply): (String, String) =
                        current.query_row(params![issue, r], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    match State::read(issue, &state)? {
                        State::Sent => claim.sent_before += 1,
                        State::FailedPermanent if !retry_permanent => {
                            claim.failed_before.push((r.clone(), reply));
                        }
                        _ => {
                            take.execute(params![issue, r, run.0, stamp(now)])?;
                            claim.claimed.push(r.clone());
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(claim)
        })
    }

    /// Records how deliveries ended, in one transaction.
    pub fn record(
        &mut self,
        issue: &str,
        outcomes: &[(RecipientKey, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with_tx(|conn| {
            let tx = conn.transaction()?;
            {
                // `uncertain` only ever goes from 0 to 1: a reader who may have two copies
                // still may, whatever happens next.
                let mut update = tx.prepare_cached(
                    "UPDATE deliveries
                     SET state = ?3, message_id = coalesce(?4, message_id), reply = ?5,
                         attempts = attempts + 1, updated_at = ?6, uncertain = max(uncertain, ?7)
                     WHERE issue = ?1 AND recipient = ?2",
                )?;
                let mut release = tx.prepare_cached(
                    "UPDATE deliveries SET state = 'pending', updated_at = ?3, uncertain = max(uncertain, ?4)
                     WHERE issue = ?1 AND recipient = ?2 AND state = 'in_flight'",
                )?;
                for (recipient, outcome) in outcomes {
                    let (state, message_id, reply, uncertain) = match outcome {
                        Outcome::Released { uncertain } => {
                            release.execute(params![issue, recipient, stamp(now), uncertain])?;
                            continue;
                        }
                        Outcome::Sent {
                            message_id,
                            reply,
                            uncertain,
                        } => (
                            State::Sent,
                            Some(message_id.as_str()),
                            reply.as_str(),
                            uncertain,
                        ),
                        Outcome::Failed {
                            permanent,
                            reply,
                            uncertain,
                        } => (
                            if *permanent {
                                State::FailedPermanent
                            } else {
                                State::FailedTemporary
                            },
                            None,
                            reply.as_str(),
                            uncertain,
                        ),
                    };
                    update.execute(params![
                        issue,
                        recipient,
                        state.as_stored(),
                        message_id,
                        reply,
                        stamp(now),
                        uncertain
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// How the sending of `issue` stands.
    pub fn report(&self, issue: &str) -> Result<Report, LedgerError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT state, count(*), sum(uncertain) FROM deliveries WHERE issue = ?1 GROUP BY state",
            )?;
            let rows = stmt.query_map(params![issue], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut report = Report::default();
            for row in rows {
                let (state, n, uncertain) = row?;
                let (n, uncertain) = (n.unsigned_abs(), uncertain.unsigned_abs());
                report.uncertain += uncertain;
                match State::read(issue, &state)? {
                    State::Pending => report.pending = n,
                    State::InFlight => report.in_flight = n,
                    State::Sent => report.sent = n,
                    State::FailedTemporary => report.failed_temporary = n,
                    State::FailedPermanent => report.failed_permanent = n,
                }
            }
            Ok(report)
        })
    }

    /// Everyone who did not get `issue`, and why, in recipient order.
    pub fn failures(&self, issue: &str) -> Result<Vec<Undelivered>, LedgerError> {
        self.select(issue, "state <> 'sent'")
    }

    /// Everyone who may have two copies of `issue`, whatever their state, in recipient order.
    pub fn uncertain(&self, issue: &str) -> Result<Vec<Undelivered>, LedgerError> {
        self.select(issue, "uncertain = 1")
    }

    /// The deliveries of `issue` that `filter` (SQL, a constant) keeps.
    fn select(&self, issue: &str, filter: &str) -> Result<Vec<Undelivered>, LedgerError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT recipient, state, reply, attempts, uncertain FROM deliveries
                 WHERE issue = ?1 AND {filter} ORDER BY recipient"
            ))?;
            let rows = stmt.query_map(params![issue], |r| {
                Ok((
                    r.get::<_, RecipientKey>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            let mut found = Vec::new();
            for row in rows {
                let (recipient, state, reply, attempts, uncertain) = row?;
                found.push(Undelivered {
                    recipient,
                    state: State::read(issue, &state)?,
                    reply,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    uncertain: uncertain != 0,
                });
            }
            Ok::<_, Fault>(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::runs::tests::{alive, at, me, people, sent, start};
    use super::*;

    #[test]
    fn a_delivery_goes_from_in_flight_to_sent_and_is_never_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join(".bulletin/ledger.sqlite")).unwrap();
        let run = start(&mut l, "2020-06", "h1", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        let everyone = people(3);
        assert_eq!(
            l.claim("2020-06", run, &everyone, false, at(1))
                .unwrap()
                .claimed,
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
                        uncertain: false,
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
        // Claimed again: only the one still in flight; the sent one and the one failed for
        // good are counted apart, the failure with its reply.
        assert_eq!(
            l.claim("2020-06", run, &everyone, false, at(3)).unwrap(),
            Claim {
                claimed: vec![everyone[2].clone()],
                sent_before: 1,
                failed_before: vec![(everyone[1].clone(), "550 no such user".into())],
            }
        );
        // --only-failed style retry of permanent failures.
        assert_eq!(
            l.claim("2020-06", run, &everyone[1..2], true, at(4))
                .unwrap()
                .claimed,
            [everyone[1].clone()]
        );
    }

    #[test]
    fn a_delivery_is_found_by_its_message_id_or_its_readers_latest_issue() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let p = people(2);
        for (i, issue) in ["2020-05", "2020-06"].into_iter().enumerate() {
            let run = start(&mut l, issue, "h", &me(1), false, at(0), alive)
                .unwrap()
                .run;
            let second = i64::try_from(i).unwrap() * 10;
            l.claim(issue, run, &p, false, at(second + 1)).unwrap();
            l.record(
                issue,
                &[
                    (p[0].clone(), sent(&format!("{issue}.a"))),
                    (p[1].clone(), sent(&format!("{issue}.b"))),
                ],
                at(second + 2),
            )
            .unwrap();
        }
        let found = |issue: &str, who: usize| {
            Some(Found {
                issue: issue.into(),
                recipient: p[who].clone(),
            })
        };
        assert_eq!(
            l.by_message_id("<2020-05.b@example.org>").unwrap(),
            found("2020-05", 1)
        );
        assert_eq!(
            l.by_message_id(" 2020-06.a@example.org ").unwrap(),
            found("2020-06", 0)
        );
        assert_eq!(l.by_message_id("<other@example.org>").unwrap(), None);
        assert_eq!(l.by_message_id("<>").unwrap(), None);
        let upper = p[1].as_str().to_uppercase();
        assert_eq!(l.latest_sent_to(&upper).unwrap(), found("2020-06", 1));
        assert_eq!(l.latest_sent_to("nobody@example.org").unwrap(), None);
        // As VERP reads a tag: the issue's reader for whom the test holds.
        assert_eq!(
            l.find_recipient_of("2020-05", |r| r == &p[1]).unwrap(),
            found("2020-05", 1)
        );
        assert_eq!(l.find_recipient_of("2020-07", |_| true).unwrap(), None);
    }

    #[test]
    fn a_released_delivery_is_pending_again_with_its_attempts_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = start(&mut l, "i", "h", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        let p = people(1);
        l.claim("i", run, &p, false, at(1)).unwrap();
        l.record(
            "i",
            &[(p[0].clone(), Outcome::Released { uncertain: false })],
            at(2),
        )
        .unwrap();
        let failures = l.failures("i").unwrap();
        assert_eq!(
            (failures[0].state, failures[0].attempts),
            (State::Pending, 0)
        );
    }

    #[test]
    fn uncertain_is_sticky_whatever_the_reader_becomes_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let run = start(&mut l, "i", "h", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        let p = people(3);
        l.claim("i", run, &p, false, at(1)).unwrap();
        let failed = |uncertain| Outcome::Failed {
            permanent: false,
            reply: "no answer".into(),
            uncertain,
        };
        l.record(
            "i",
            &[
                (p[0].clone(), failed(true)),
                (p[1].clone(), Outcome::Released { uncertain: true }),
                (p[2].clone(), failed(false)),
            ],
            at(2),
        )
        .unwrap();
        l.claim("i", run, &p, false, at(3)).unwrap();
        let certain = Outcome::Sent {
            message_id: "<x@example.org>".into(),
            reply: "250".into(),
            uncertain: false,
        };
        let everyone: Vec<_> = p.iter().map(|k| (k.clone(), certain.clone())).collect();
        l.record("i", &everyone, at(4)).unwrap();
        let report = l.report("i").unwrap();
        assert_eq!((report.sent, report.uncertain), (3, 2));
        let who: Vec<_> = l.uncertain("i").unwrap();
        assert_eq!(who.len(), 2);
        assert!(who.iter().all(|u| u.uncertain && u.state == State::Sent));
        assert_eq!(who[0].recipient, p[0]);
        assert_eq!(who[1].recipient, p[1]);
    }

    #[test]
    fn an_unknown_state_in_the_file_is_an_error_not_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let mut l = Ledger::open(&path).unwrap();
        let run = start(&mut l, "i", "h", &me(1), false, at(0), alive)
            .unwrap()
            .run;
        l.claim("i", run, &people(1), false, at(1)).unwrap();
        // As a newer version might write it: a state this one does not know.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE deliveries SET state = 'bounced';",
        )
        .unwrap();
        for err in [
            l.report("i").unwrap_err(),
            l.failures("i").unwrap_err(),
            l.claim("i", run, &people(1), false, at(2)).unwrap_err(),
        ] {
            assert!(
                matches!(&err, LedgerError::UnknownState { state, .. } if state == "bounced"),
                "{err:?}"
            );
            assert!(err.to_string().contains("l.sqlite"), "{err}");
        }
    }
}
