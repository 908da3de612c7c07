//! The ledger's tables, their migrations, and how times are written in them.
//!
//! Owns the SQL that creates tables and the connection's settings (WAL, busy timeout); it
//! must not read or write any row: runs and deliveries do that.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// The schema, applied in order; `PRAGMA user_version` says how many are in place. A
/// migration once released is never edited: a change is a new entry.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    // 2: `bulletin bounces` finds a delivery by the Message-ID a bounce report quotes, or by
    // the reader's address.
    r#"
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX deliveries_recipient ON deliveries (recipient, updated_at);
"#,
    // 3: the deliveries table made again, with what recording a send costs in mind:
    // - its state CHECK written with `=` and `OR`: written with `IN`, SQLite built a
    //   temporary b-tree of the five values for every row written, about two fifths of what
    //   recording a delivery cost (callgrind). It allows and refuses the same values.
    // - a reader's deliveries found by their address alone. With `updated_at` in it, the
    //   index moved an entry at every claim and every record of a send; `latest_sent_to`
    //   sorts the reader's few rows (one an issue) itself.
    // A CHECK cannot be changed in place: the rows are copied into the new table, in this
    // migration's transaction (SQLite's "12 steps"; nothing refers to the table).
    r#"
CREATE TABLE deliveries_3 (
    issue      TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state = 'pending' OR state = 'in_flight' OR state = 'sent'
                                    OR state = 'failed_temporary' OR state = 'failed_permanent'),
    uncertain  INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    reply      TEXT,
    run        INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (issue, recipient)
) WITHOUT ROWID;
INSERT INTO deliveries_3 (issue, recipient, state, uncertain, attempts, message_id, reply, run, updated_at)
    SELECT issue, recipient, state, uncertain, attempts, message_id, reply, run, updated_at
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_3 RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (issue, state);
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX deliveries_by_recipient ON deliveries (recipient);
"#,
];

/// Sets the connection up and brings the schema up to date.
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    // WAL: commits are cheap and readers (`bulletin status`) never block the sender.
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let done = usize::try_from(version).unwrap_or(0);
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
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

/// A time as the ledger writes it: RFC 3339, UTC, milliseconds (sorts as text).
pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_every_migration_in_wal_mode_and_reopening_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        for _ in 0..2 {
            let mut conn = Connection::open(&path).unwrap();
            prepare(&mut conn).unwrap();
            assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn a_ledger_of_the_second_version_is_brought_up_to_date_and_finds_a_reader_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..2] {
                conn.execute_batch(migration).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute(
                "INSERT INTO deliveries (issue, recipient, state, updated_at)
                 VALUES ('2020-06', 'ana@example.org', 'sent', '2020-06-01T00:00:00.000Z')",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO deliveries (issue, recipient, state, uncertain, attempts,
                                         message_id, reply, run, updated_at)
                 VALUES ('2020-06', 'ben@example.org', 'failed_temporary', 1, 3,
                         '<m@example.org>', '451 later', 7, '2020-06-01T00:00:01.000Z')",
                [],
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn).unwrap();
        assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT issue, recipient FROM deliveries
                 WHERE recipient = ?1 AND state = 'sent' ORDER BY updated_at DESC LIMIT 1",
                ["ana@example.org"],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("deliveries_by_recipient"), "{plan}");
        let issue: String = conn
            .query_row(
                "SELECT issue FROM deliveries WHERE recipient = ?1",
                ["ana@example.org"],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(issue, "2020-06");
        // Every column of every row came through the table's rebuild.
        let ben: (String, i64, i64, String, String, i64, String) = conn
            .query_row(
                "SELECT state, uncertain, attempts, message_id, reply, run, updated_at
                 FROM deliveries WHERE issue = '2020-06' AND recipient = 'ben@example.org'",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            ben,
            (
                "failed_temporary".into(),
                1,
                3,
                "<m@example.org>".into(),
                "451 later".into(),
                7,
                "2020-06-01T00:00:01.000Z".into()
            )
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2);
    }

    /// The state CHECK, written without `IN` since the third migration, still refuses a
    /// state the ledger does not know and takes each one it does.
    #[test]
    fn the_ledger_refuses_a_state_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("l.sqlite")).unwrap();
        prepare(&mut conn).unwrap();
        let insert = |recipient: &str, state: &str| {
            conn.execute(
                "INSERT INTO deliveries (issue, recipient, state, updated_at)
                 VALUES ('2020-06', ?1, ?2, '2020-06-01T00:00:00.000Z')",
                [recipient, state],
            )
        };
        for (i, state) in [
            "pending",
            "in_flight",
            "sent",
            "failed_temporary",
            "failed_permanent",
        ]
        .into_iter()
        .enumerate()
        {
            insert(&format!("r{i}@example.org"), state).unwrap();
        }
        let refused = insert("x@example.org", "bounced");
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("CHECK")),
            "{refused:?}"
        );
    }
}
