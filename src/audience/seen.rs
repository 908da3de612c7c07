//! The addresses a list pass has met, for de-duplication: an exact set that lives on disk,
//! so that the memory a pass needs does not grow with the list.
//!
//! The set is an SQLite table in a connection's temporary database, stored in a file
//! (`temp_store = FILE`) in the system's temporary folder (`SQLITE_TMPDIR` or `TMPDIR`, else
//! `/var/tmp` or `/tmp`). SQLite deletes that file as soon as it has opened it (on Unix), so
//! a crash leaves nothing behind and no earlier pass's file is ever read; nothing is on disk
//! at all until the page cache ([`CACHE_KIB`]) is full, so a small list never touches it.
//! Keys are compared exactly: no two addresses are ever taken for one.
//!
//! Knows nothing of CSV or of what makes two addresses the same reader: the caller hands in
//! the key ([`super::idn::key`]).

use rusqlite::Connection;

/// The page cache of the set, in KiB: the most memory it holds, whatever the list's size.
/// Beyond it, pages go to the temporary file (and stay in the system's file cache while it
/// has room), costing a few microseconds per address.
#[cfg(not(test))]
const CACHE_KIB: u32 = 4096;
/// Small in tests, so that a list of a few thousand rows already outgrows it.
#[cfg(test)]
const CACHE_KIB: u32 = 256;

/// Keys added per transaction: a commit per key would cost more than the insert.
const BATCH: u32 = 1024;

/// Keys met so far.
pub struct Seen {
    conn: Connection,
    /// Keys added in the open transaction (none is open when 0).
    pending: u32,
}

impl Seen {
    /// An empty set.
    pub fn new() -> rusqlite::Result<Seen> {
        // The main database stays empty; the set lives in the connection's temporary one,
        // which SQLite opens on first use, after the pragmas below. (The bundled SQLite is
        // built to keep temporary databases in memory unless told otherwise.)
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(&format!(
            "PRAGMA temp_store = FILE;
             PRAGMA temp.cache_size = -{CACHE_KIB};
             PRAGMA temp.journal_mode = OFF;
             CREATE TEMP TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID;"
        ))?;
        Ok(Seen { conn, pending: 0 })
    }

    /// Adds `key`; false if it was there already.
    pub fn insert(&mut self, key: &str) -> rusqlite::Result<bool> {
        if self.pending == 0 {
            self.conn.execute_batch("BEGIN")?;
        }
        let added = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO temp.seen (key) VALUES (?1)")?
            .execute([key])?;
        self.pending += 1;
        if self.pending == BATCH {
            self.conn.execute_batch("COMMIT")?;
            self.pending = 0;
        }
        Ok(added == 1)
    }
}

impl Drop for Seen {
    fn drop(&mut self) {
        // The set is thrown away with the connection; the commit only closes the transaction
        // the way SQLite expects when there is no journal to roll back with.
        if self.pending > 0 {
            let _ = self.conn.execute_batch("COMMIT");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_new_once_and_keys_are_compared_exactly() {
        let mut seen = Seen::new().unwrap();
        assert!(seen.insert("ana@example.org").unwrap());
        assert!(!seen.insert("ana@example.org").unwrap());
        // The caller folds case; the set does not.
        assert!(seen.insert("Ana@example.org").unwrap());
        assert!(seen.insert("").unwrap());
        assert!(!seen.insert("").unwrap());
    }

    #[test]
    fn more_keys_than_the_cache_holds_are_all_remembered() {
        // About 40 bytes a key: 20,000 keys are near three times the page cache.
        let mut seen = Seen::new().unwrap();
        let key = |i: u32| {
            format!(
                "reader-{:08}@list-{}.example.org",
                i.wrapping_mul(2_654_435_761),
                i % 7
            )
        };
        for i in 0..20_000 {
            assert!(seen.insert(&key(i)).unwrap(), "{i} new");
        }
        for i in (0..20_000).step_by(97) {
            assert!(!seen.insert(&key(i)).unwrap(), "{i} seen");
        }
        let pages: i64 = seen
            .conn
            .query_row("PRAGMA temp.page_count", [], |r| r.get(0))
            .unwrap();
        let page_size: i64 = seen
            .conn
            .query_row("PRAGMA temp.page_size", [], |r| r.get(0))
            .unwrap();
        assert!(
            pages * page_size > 2 * i64::from(CACHE_KIB) * 1024,
            "the set outgrew its cache: {pages} pages of {page_size} bytes"
        );
    }
}
