//! Subscriber lists: a CSV file as a spreadsheet exports it, read one row at a time.
//!
//! The header names the columns: `email` is required; every other column (`first_name`,
//! `name`, `language`…) becomes a merge field. A `status` column (subscribed, unsubscribed,
//! bounced) is honoured, and so is a suppression file (one address a line). UTF-8 with or
//! without a byte-order mark, separated by commas, semicolons or tabs (the header tells which).
//! Invalid addresses are reported with their line and skipped; an address seen before (in any
//! case, its domain in Unicode or in ASCII form) is skipped as a duplicate. Rows stream, and
//! the addresses met so far, for de-duplication, are kept on disk (`seen`): the memory a
//! pass takes does not grow with the list. Internationalised addresses are read as written;
//! [`idn`] gives the forms sending and people need.
//!
//! This module knows nothing of issues or sending.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lettre::Address;

use crate::merge::Recipient;

pub mod idn;
mod seen;

use seen::Seen;

/// One person to send to.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    /// The address, checked.
    pub address: Address,
    /// Every column of the row by its (lower-case) header, `email` included.
    pub fields: BTreeMap<String, String>,
    /// The row's line in the file (the header is line 1).
    pub line: u64,
}

impl Subscriber {
    /// The reader's merge values: their columns, and `unsubscribe_url` (made by whoever
    /// holds the secret that signs it; a sample one in the preview).
    pub fn recipient(&self, unsubscribe_url: Option<String>) -> Recipient {
        Recipient {
            fields: self.fields.clone(),
            unsubscribe_url,
        }
    }
}

/// Why a row is not sent to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// `status` says unsubscribed.
    Unsubscribed,
    /// `status` says bounced.
    Bounced,
    /// The address is in the suppression file.
    Suppressed,
    /// The address cannot be sent to.
    Invalid(String),
    /// The address was on an earlier line.
    Duplicate,
}

impl Skip {
    /// The reason without its details, for counting: "unsubscribed", "invalid"…
    pub fn label(&self) -> &'static str {
        match self {
            Skip::Unsubscribed => "unsubscribed",
            Skip::Bounced => "bounced",
            Skip::Suppressed => "suppressed",
            Skip::Invalid(_) => "invalid",
            Skip::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Unsubscribed => f.write_str("unsubscribed"),
            Skip::Bounced => f.write_str("bounced"),
            Skip::Suppressed => f.write_str("suppressed"),
            Skip::Invalid(why) => write!(f, "invalid: {why}"),
            Skip::Duplicate => f.write_str("duplicate"),
        }
    }
}

/// A row of the list: someone to send to, or someone skipped and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Send(Subscriber),
    Skipped {
        line: u64,
        /// The address as written.
        email: String,
        why: Skip,
    },
}

/// What can stop a list from being read at all (a bad row is skipped instead).
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: the header has no \"email\" column (columns: {columns}); name the address column \"email\"", path.display())]
    NoEmailColumn { path: PathBuf, columns: String },
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The addresses read so far cannot be noted (the temporary folder is full or cannot be
    /// written): without them, duplicates would be sent to twice.
    #[error("{}: cannot note the addresses read so far, to skip duplicates, in the temporary folder (TMPDIR): {reason}", path.display())]
    Seen { path: PathBuf, reason: String },
}

/// The separator a header line uses: the most frequent of comma, semicolon and tab outside
/// quotes (a comma when there is none).
pub fn detect_delimiter(header: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        match b {
            b'"' => quoted = !quoted,
            _ if !quoted => {
                for (d, n) in counts.iter_mut() {
                    if b == *d {
                        *n += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b','))
        .filter(|(_, n)| *n > 0)
        .map_or(b',', |(d, _)| *d)
}

/// The addresses of a suppression file (one a line; blank lines and `#` comments ignored),
/// as fingerprints.
pub fn read_suppressions(path: &Path) -> Result<Fingerprints, AudienceError> {
    let err = |e: std::io::Error| AudienceError::Read {
        path: path.to_path_buf(),
        reason: crate::diag::io_reason(&e),
    };
    let reader = BufReader::new(File::open(path).map_err(err)?);
    let mut set = Fingerprints::default();
    for line in reader.lines() {
        let line = line.map_err(err)?;
        let address = line.trim().trim_start_matches('\u{feff}');
        if !address.is_empty() && !address.starts_with('#') {
            set.insert(address);
        }
    }
    Ok(set)
}

/// A set of addresses kept as 128-bit fingerprints of their lower-case form (the domain in
/// ASCII form, [`idn::key`]): a million addresses take about 32 MB instead of the addresses
/// themselves. For suppressions, which are few next to a list; the list's own addresses are
/// kept on disk (`seen`).
#[derive(Debug)]
pub struct Fingerprints {
    keys: (RandomState, RandomState),
    seen: HashSet<u128>,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Fingerprints {
            keys: (RandomState::new(), RandomState::new()),
            seen: HashSet::new(),
        }
    }
}

impl Fingerprints {
    fn fingerprint(&self, address: &str) -> u128 {
        let lower = idn::key(address);
        let half = |state: &RandomState| {
            let mut h = state.build_hasher();
            h.write(lower.as_bytes());
            h.finish()
        };
        (u128::from(half(&self.keys.0)) << 64) | u128::from(half(&self.keys.1))
    }

    /// Adds an address; false if it was there already.
    pub fn insert(&mut self, address: &str) -> bool {
        let f = self.fingerprint(address);
        self.seen.insert(f)
    }

    pub fn contains(&self, address: &str) -> bool {
        self.seen.contains(&self.fingerprint(address))
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A subscriber list being read, row by row.
pub struct Rows {
    path: PathBuf,
    records: csv::StringRecordsIntoIter<Box<dyn Read>>,
    headers: Vec<String>,
    email_column: usize,
    status_column: Option<usize>,
    seen: Seen,
    suppressed: Fingerprints,
    unsubscribed: Fingerprints,
    bounced: Fingerprints,
}

/// Opens a list; `suppressed` are addresses never to send to.
pub fn open(path: &Path, suppressed: Fingerprints) -> Result<Rows, AudienceError> {
    let err = |e: std::io::Error| AudienceError::Read {
        path: path.to_path_buf(),
        reason: crate::diag::io_reason(&e),
    };
    let mut reader = BufReader::new(File::open(path).map_err(err)?);
    // Excel writes a byte-order mark before UTF-8 text; it is not part of the first column.
    if reader.fill_buf().map_err(err)?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let mut header = String::new();
    reader.read_line(&mut header).map_err(err)?;
    let delimiter = detect_delimiter(&header);
    let input: Box<dyn Read> = Box::new(Lf {
        inner: BufReader::new(std::io::Cursor::new(header.into_bytes()).chain(reader)),
    });
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| malformed(path, &e))?
        .iter()
        .map(|h| h.trim().to_lowercase().replace([' ', '-'], "_"))
        .collect();
    let email_column = headers
        .iter()
        .position(|h| h == "email" || h == "e_mail" || h == "email_address")
        .ok_or_else(|| AudienceError::NoEmailColumn {
            path: path.to_path_buf(),
            columns: headers.join(", "),
        })?;
    let status_column = headers.iter().position(|h| h == "status");
    let seen = Seen::new().map_err(|e| seen_error(path, &e))?;
    Ok(Rows {
        path: path.to_path_buf(),
        records: csv.into_records(),
        headers,
        email_column,
        status_column,
        seen,
        suppressed,
        unsubscribed: Fingerprints::default(),
        bounced: Fingerprints::default(),
    })
}

/// Reads `\r\n` as `\n`. The csv crate counts lines wrong in files with Windows line
/// endings (as Excel writes them), and line numbers are how people find a bad row.
struct Lf<R> {
    inner: R,
}

impl<R: BufRead> Read for Lf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut out = 0;
        while out < buf.len() {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let room = (buf.len() - out).min(available.len());
            // Copy everything up to the next `\r`.
            let run = available[..room]
                .iter()
                .position(|&b| b == b'\r')
                .unwrap_or(room);
            if run > 0 {
                buf[out..out + run].copy_from_slice(&available[..run]);
                out += run;
                self.inner.consume(run);
                continue;
            }
            // A `\r`: dropped when a `\n` follows, kept otherwise.
            self.inner.consume(1);
            if self.inner.fill_buf()?.first() != Some(&b'\n') {
                buf[out] = b'\r';
                out += 1;
            }
        }
        Ok(out)
    }
}

fn seen_error(path: &Path, e: &rusqlite::Error) -> AudienceError {
    AudienceError::Seen {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn malformed(path: &Path, e: &csv::Error) -> AudienceError {
    let line = e.position().map_or(0, |p| p.line());
    let reason = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "the file is not UTF-8 text; export it from the spreadsheet as \"CSV UTF-8\""
                .to_string()
        }
        _ => e.to_string(),
    };
    AudienceError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    }
}

impl Rows {
    /// Also skips `unsubscribed` (the suppression store's readers), counted as unsubscribed
    /// like the list's own `status` column.
    pub fn unsubscribed(mut self, unsubscribed: Fingerprints) -> Rows {
        self.unsubscribed = unsubscribed;
        self
    }

    /// Also skips `bounced` (the suppression store's bounced readers), counted as bounced like
    /// the list's own `status = bounced`.
    pub fn bounced(mut self, bounced: Fingerprints) -> Rows {
        self.bounced = bounced;
        self
    }

    /// The merge fields the list provides (its column names).
    pub fn columns(&self) -> &[String] {
        &self.headers
    }

    fn row(&mut self, record: &csv::StringRecord) -> Result<Row, AudienceError> {
        let line = record.position().map_or(0, |p| p.line());
        let email = record
            .get(self.email_column)
            .unwrap_or("")
            .trim()
            .to_string();
        let skip = |why| {
            Ok(Row::Skipped {
                line,
                email: email.clone(),
                why,
            })
        };
        let status = self
            .status_column
            .and_then(|c| record.get(c))
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        match status.as_str() {
            "unsubscribed" => return skip(Skip::Unsubscribed),
            "bounced" | "cleaned" => return skip(Skip::Bounced),
            _ => {}
        }
        if email.is_empty() {
            return skip(Skip::Invalid("no address".into()));
        }
        let address = match Address::from_str(&email) {
            Ok(a) => a,
            Err(_) => {
                return skip(Skip::Invalid(format!(
                    "\"{email}\" is not an email address"
                )));
            }
        };
        if self.unsubscribed.contains(&email) {
            return skip(Skip::Unsubscribed);
        }
        if self.bounced.contains(&email) {
            return skip(Skip::Bounced);
        }
        if self.suppressed.contains(&email) {
            return skip(Skip::Suppressed);
        }
        let new = self
            .seen
            .insert(&idn::key(&email))
            .map_err(|e| seen_error(&self.path, &e))?;
        if !new {
            return skip(Skip::Duplicate);
        }
        let fields = self
            .headers
            .iter()
            .zip(record.iter())
            .filter(|(h, _)| !h.is_empty())
            .map(|(h, v)| (h.clone(), v.to_string()))
            .collect();
        Ok(Row::Send(Subscriber {
            address,
            fields,
            line,
        }))
    }
}

impl Iterator for Rows {
    type Item = Result<Row, AudienceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some(match record {
            Ok(record) => self.row(&record),
            Err(e) => Err(malformed(&self.path, &e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(contents: &[u8], suppress: &[&str]) -> Vec<Row> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        std::fs::write(&path, contents).unwrap();
        let mut set = Fingerprints::default();
        for s in suppress {
            set.insert(s);
        }
        open(&path, set).unwrap().map(Result::unwrap).collect()
    }

    fn sent(rows: &[Row]) -> Vec<(String, u64)> {
        rows.iter()
            .filter_map(|r| match r {
                Row::Send(s) => Some((s.address.to_string(), s.line)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn detects_the_separator_from_the_header() {
        assert_eq!(detect_delimiter("email,name"), b',');
        assert_eq!(detect_delimiter("email;name;\"a,b\""), b';');
        assert_eq!(detect_delimiter("email\tname"), b'\t');
        assert_eq!(detect_delimiter("email"), b',');
    }

    #[test]
    fn reads_excel_semicolon_csv_with_bom() {
        let list = "\u{feff}Email;First name;Status\r\nana@example.org;Ana;subscribed\r\nbo@example.org;Bo;unsubscribed\r\n";
        let rows = rows(list.as_bytes(), &[]);
        assert_eq!(sent(&rows), [("ana@example.org".to_string(), 2)]);
        let Row::Send(ana) = &rows[0] else { panic!() };
        assert_eq!(ana.fields["first_name"], "Ana");
        assert!(matches!(
            &rows[1],
            Row::Skipped {
                why: Skip::Unsubscribed,
                line: 3,
                ..
            }
        ));
    }

    #[test]
    fn skips_invalid_duplicate_and_suppressed_addresses() {
        let list = "email,name\nana@example.org,Ana\nnot-an-address,X\nANA@Example.org,Ana again\nzed@example.org,Zed\n,Nobody\n";
        let rows = rows(list.as_bytes(), &["Zed@example.org"]);
        assert_eq!(sent(&rows), [("ana@example.org".to_string(), 2)]);
        let skipped: Vec<(u64, Skip)> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Skipped { line, why, .. } => Some((*line, why.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            skipped,
            [
                (
                    3,
                    Skip::Invalid("\"not-an-address\" is not an email address".into())
                ),
                (4, Skip::Duplicate),
                (5, Skip::Suppressed),
                (6, Skip::Invalid("no address".into())),
            ]
        );
    }

    #[test]
    fn an_internationalised_domain_is_one_reader_in_either_form() {
        let list =
            "email\njörg@münchen.example\nJÖRG@xn--mnchen-3ya.example\nascii@MÜNCHEN.example\n";
        let rows = rows(list.as_bytes(), &["ascii@xn--mnchen-3ya.example"]);
        // Kept as written, for people and the ledger; sending converts the domain.
        assert_eq!(sent(&rows), [("jörg@münchen.example".to_string(), 2)]);
        assert!(matches!(
            &rows[1],
            Row::Skipped {
                why: Skip::Duplicate,
                ..
            }
        ));
        assert!(matches!(
            &rows[2],
            Row::Skipped {
                why: Skip::Suppressed,
                ..
            }
        ));
    }

    #[test]
    fn a_list_larger_than_the_set_in_memory_keeps_each_readers_first_row_only() {
        // 30,000 rows, well beyond the page cache of the addresses seen: every 10th row
        // repeats, in upper case, an address of 5,001 rows before; every 10th other one is a
        // reader whose domain is in Unicode, some repeated 20,000 rows later in ASCII form.
        let mut list = String::from("email,row\n");
        let mut expected_sent = Vec::new();
        let mut expected_duplicates = Vec::new();
        for i in 0..30_000u64 {
            let line = i + 2;
            if i % 10 == 9 && i >= 5_001 {
                list.push_str(&format!("READER{}@EXAMPLE.ORG,{i}\n", i - 5_001));
                expected_duplicates.push(line);
            } else if i % 70 == 0 && i >= 20_000 {
                list.push_str(&format!(
                    "J\u{d6}RG{}@xn--mnchen-3ya.example,{i}\n",
                    i - 20_000
                ));
                expected_duplicates.push(line);
            } else if i % 10 == 0 {
                list.push_str(&format!("j\u{f6}rg{i}@m\u{fc}nchen.example,{i}\n"));
                expected_sent.push(line);
            } else {
                list.push_str(&format!("reader{i}@example.org,{i}\n"));
                expected_sent.push(line);
            }
        }
        let rows = rows(list.as_bytes(), &[]);
        assert_eq!(rows.len(), 30_000);
        let sent: Vec<u64> = sent(&rows).into_iter().map(|(_, line)| line).collect();
        let duplicates: Vec<u64> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Skipped {
                    line,
                    why: Skip::Duplicate,
                    ..
                } => Some(*line),
                _ => None,
            })
            .collect();
        assert_eq!(duplicates.len(), 2_500 + 143);
        assert_eq!(duplicates, expected_duplicates);
        assert_eq!(sent, expected_sent);
        // The row kept is the first, as written.
        for (i, address) in [
            (0, "j\u{f6}rg0@m\u{fc}nchen.example"),
            (8, "reader8@example.org"),
        ] {
            let Row::Send(first) = &rows[i] else { panic!() };
            assert_eq!(first.address.to_string(), address);
            assert_eq!(first.fields["row"], i.to_string());
        }
    }

    #[test]
    fn windows_line_endings_count_lines_right() {
        let list =
            "email\r\na@example.org\r\nb@example.org\r\n\"c\r@example.org\"\r\nd@example.org";
        let rows = rows(list.as_bytes(), &[]);
        let lines: Vec<u64> = rows
            .iter()
            .map(|r| match r {
                Row::Send(s) => s.line,
                Row::Skipped { line, .. } => *line,
            })
            .collect();
        assert_eq!(lines, [2, 3, 4, 5]);
    }

    #[test]
    fn a_list_without_email_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        std::fs::write(&path, "name,mail\nAna,ana@example.org\n").unwrap();
        let err = open(&path, Fingerprints::default()).err().unwrap();
        assert!(
            err.to_string()
                .contains("the header has no \"email\" column (columns: name, mail)")
        );
    }

    #[test]
    fn quoted_fields_keep_their_separators_and_line_breaks() {
        let list = "email,name\n\"ana@example.org\",\"Martin, Ana\"\nbo@example.org,\"Bo\nBo\"\ncy@example.org,Cy\n";
        let rows = rows(list.as_bytes(), &[]);
        let Row::Send(ana) = &rows[0] else { panic!() };
        assert_eq!(ana.fields["name"], "Martin, Ana");
        assert_eq!(
            sent(&rows).last().unwrap(),
            &("cy@example.org".to_string(), 5)
        );
    }
}
