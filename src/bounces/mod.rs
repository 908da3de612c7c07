//! `bulletin bounces`: the bounce mailbox of an SMTP sender, read and recorded.
//!
//! Messages sent over SMTP bounce to the envelope sender (the `[sender] from` address), as
//! reports that arrive later in that mailbox: delivery status notifications (RFC 3464),
//! complaints in the Abuse Reporting Format (RFC 5965) from feedback loops, and the
//! plain-text bounces some servers still write. This stage reads the mailbox — over IMAP
//! with TLS ([`imap`]), or a Maildir folder or mbox file ([`local`]) —, reads each message
//! into a typed report ([`parse`]), finds the reader and the issue in the ledger (by the
//! original Message-ID bulletin set, else by the VERP address the report was returned to
//! when the profile sent with one ([`crate::message::verp`]), else by the reported address),
//! and records each bounce,
//! soft bounce and complaint in the suppression store through
//! [`Store::record_reports`], the same path as the providers' webhooks, so that the soft-bounce
//! rule applies and `send` skips those readers. The report's own Message-ID is the record's
//! `ref`: a report read twice is recorded once.
//!
//! What it may touch: the ledger, read only; the suppression store, appended to; in the
//! mailbox, only the messages it recorded, moved to the handled folder once recorded (an
//! IMAP `MOVE`, or a rename into the Maildir's `.bulletin-handled/`; an mbox file is never
//! written). Messages that are not bounces, or are about nobody in the ledger, are left where
//! they are, unread: IMAP fetches with `BODY.PEEK[]`. It sends nothing, and prints nothing
//! (the command line does): the [`Summary`] it returns names readers, for the sender's own
//! terminal only.

pub mod imap;
pub mod local;
pub mod parse;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, LedgerError};
use crate::message::verp;
use crate::suppressions::{Kind, Recorded, Report, SoftRule, Source, Store, StoreError};
use crate::values::Secret;
use parse::Report as Parsed;

/// `[bounces]` in bulletin.toml: where the bounce mailbox is, so that the usual run is just
/// `bulletin bounces`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `imaps://user@imap.example.org/INBOX` (port 993 unless given; the folder INBOX
    /// unless given).
    pub imap: Option<String>,
    /// The user name, when it is not in the URL.
    pub username: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// Where handled messages go (created if missing).
    #[serde(default = "default_folder")]
    pub handled_folder: String,
    /// A CA certificate (PEM) to trust besides the usual roots, for a private server.
    pub ca_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            imap: None,
            username: None,
            password_env: None,
            handled_folder: default_folder(),
            ca_file: None,
        }
    }
}

/// The handled folder, when the settings name none.
pub const HANDLED: &str = "bulletin-handled";

fn default_folder() -> String {
    HANDLED.to_string()
}

/// What went wrong. Each names the mailbox (URL, folder or file) and says what to check.
#[derive(Debug, thiserror::Error)]
pub enum BouncesError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No ledger: this is not the workspace that sends.
    #[error(
        "no ledger at {}: run bulletin bounces in the workspace you send from (its ledger holds the Message-IDs the reports point to)",
        .0.display()
    )]
    NoLedger(PathBuf),
    /// A Maildir folder or mbox file that cannot be read or changed.
    #[error("{}: {reason}", path.display())]
    Local { path: PathBuf, reason: String },
    /// The IMAP server: the URL (never the password), what failed, and what to check.
    #[error("{url}: {reason}")]
    Imap { url: String, reason: String },
}

/// What to do with what is found.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Report only: record nothing, move nothing.
    pub dry_run: bool,
    pub rule: SoftRule,
    pub now: DateTime<Utc>,
}

/// One reader a report is about, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The reader as the ledger has them (or as the report names them, when not in it).
    pub address: String,
    /// `bounce`, `soft-bounce` or `complaint`.
    pub kind: String,
    /// The issue it came back from, when the reader is in the ledger.
    pub issue: Option<String>,
    pub reason: Option<String>,
    /// `recorded`, `escalated` (a soft bounce that reached the limit, recorded as a bounce
    /// too), `already recorded`, `not in the ledger`, or `dry run`.
    pub outcome: String,
    /// The report's Message-ID (or digest), kept as the store's `ref`.
    pub report: String,
}

/// What one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Messages read.
    pub messages: u64,
    /// Readers in the ledger with a hard bounce, a soft bounce, a complaint.
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
    /// Messages that are not bounces or complaints (left where they are).
    pub not_bounces: u64,
    /// Reports about an address the ledger never sent to (left where they are).
    pub not_in_ledger: u64,
    /// Reports recorded now, and recorded before (a mailbox read again).
    pub recorded: u64,
    pub already_recorded: u64,
    /// Soft bounces that reached the limit and suppress as a bounce.
    pub escalated: u64,
    /// Messages moved to the handled folder.
    pub moved: u64,
    /// Reports not matched by Message-ID that were returned to a VERP address, left unread
    /// because the unsubscribe secret (which makes the tags) is not set.
    pub verp_without_secret: u64,
    pub dry_run: bool,
    pub findings: Vec<Finding>,
}

/// Reads each message, records what it reports, and says whether it was handled (to move).
pub struct Processor {
    ledger: Ledger,
    store: Option<Store>,
    options: Options,
    /// The key of VERP tags, from the unsubscribe secret; None when it is not set.
    verp_key: Option<verp::Key>,
    pub summary: Summary,
}

impl Processor {
    /// Opens the ledger at `ledger` (which must exist) and, unless this is a dry run, the
    /// store at `store`.
    pub fn open(ledger: &Path, store: &Path, options: Options) -> Result<Processor, BouncesError> {
        if !ledger.is_file() {
            return Err(BouncesError::NoLedger(ledger.to_path_buf()));
        }
        let ledger = Ledger::open(ledger)?;
        let store = match options.dry_run {
            true => None,
            false => Some(Store::open(store)?),
        };
        Ok(Processor {
            ledger,
            store,
            options,
            verp_key: None,
            summary: Summary {
                dry_run: options.dry_run,
                ..Summary::default()
            },
        })
    }

    /// Reads VERP addresses with `secret` (the unsubscribe secret); without one, a report
    /// only a VERP address could match is counted in [`Summary::verp_without_secret`].
    pub fn with_verp_secret(mut self, secret: Option<Secret>) -> Processor {
        self.verp_key = secret.as_ref().map(verp::Key::new);
        self
    }

    /// Reads and records one message; true when it was a report about a reader in the
    /// ledger, recorded (now or before): the message may be moved to the handled folder.
    pub fn take(&mut self, raw: &[u8]) -> Result<bool, BouncesError> {
        self.summary.messages += 1;
        let delivered_to = parse::delivered_to(raw);
        let verp = Verp {
            addresses: &delivered_to,
            key: self.verp_key.as_ref(),
        };
        let located = match locate(&self.ledger, &parse::parse(raw), &verp)? {
            Some(Readers::NoSecret(located)) => {
                self.summary.verp_without_secret += 1;
                located
            }
            Some(Readers::Located(located)) => located,
            None => {
                self.summary.not_bounces += 1;
                return Ok(false);
            }
        };
        let report_id = parse::report_id(raw);
        let mut handled = false;
        let mut reports = Vec::new();
        for one in &located {
            if one.issue.is_none() {
                self.summary.not_in_ledger += 1;
                self.summary
                    .findings
                    .push(one.finding("not in the ledger", &report_id));
                continue;
            }
            match one.kind {
                Kind::Bounce => self.summary.hard += 1,
                Kind::SoftBounce => self.summary.soft += 1,
                _ => self.summary.complaints += 1,
            }
            handled = true;
            reports.push(one);
        }
        let Some(store) = self.store.as_mut() else {
            for one in reports {
                self.summary
                    .findings
                    .push(one.finding("dry run", &report_id));
            }
            return Ok(false);
        };
        let records: Vec<Report> = reports
            .iter()
            .map(|one| Report {
                at: self.options.now,
                address: &one.address,
                kind: one.kind,
                source: Source::Bounces,
                issue: one.issue.as_deref(),
                reason: one.reason.as_deref(),
                reference: Some(&report_id),
            })
            .collect();
        let outcomes = store.record_reports(&records, self.options.rule)?;
        for (one, outcome) in reports.iter().zip(outcomes) {
            let said = match outcome {
                Recorded::Duplicate => {
                    self.summary.already_recorded += 1;
                    "already recorded"
                }
                Recorded::Escalated { .. } => {
                    self.summary.recorded += 1;
                    self.summary.escalated += 1;
                    "escalated"
                }
                Recorded::Event { .. } => {
                    self.summary.recorded += 1;
                    "recorded"
                }
            };
            self.summary.findings.push(one.finding(said, &report_id));
        }
        Ok(handled)
    }
}

/// A report's reader, located.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    address: String,
    kind: Kind,
    /// None: the address is not in the ledger.
    issue: Option<String>,
    reason: Option<String>,
}

impl Located {
    fn finding(&self, outcome: &str, report: &str) -> Finding {
        Finding {
            address: self.address.clone(),
            kind: self.kind.as_str().to_string(),
            issue: self.issue.clone(),
            reason: self.reason.clone(),
            outcome: outcome.to_string(),
            report: report.to_string(),
        }
    }
}

/// What a report says of one address: the address it names, the kind, the reason.
type Wanted = (String, Kind, Option<String>);

/// The addresses a report was delivered to, and the secret to read VERP tags with.
struct Verp<'a> {
    addresses: &'a [String],
    key: Option<&'a verp::Key>,
}

impl Verp<'_> {
    /// The reader and issue of the first VERP address whose tag is one of the issue's
    /// readers'; Err(()) when there is a VERP address but no secret to read it with.
    fn find(
        &self,
        ledger: &Ledger,
    ) -> Result<Result<Option<crate::ledger::Found>, ()>, BouncesError> {
        let parsed: Vec<(String, String)> = self
            .addresses
            .iter()
            .filter_map(|a| verp::parse(a))
            .collect();
        if parsed.is_empty() {
            return Ok(Ok(None));
        }
        let Some(key) = self.key else {
            return Ok(Err(()));
        };
        for (slug, tag) in parsed {
            if let Some(found) = ledger.find_recipient_of(&slug, |r| key.tag(r.as_str()) == tag)? {
                return Ok(Ok(Some(found)));
            }
        }
        Ok(Ok(None))
    }
}

/// The readers a report is about; `NoSecret` when some are not in the ledger and the VERP
/// address the report carries could not be read (no secret).
enum Readers {
    Located(Vec<Located>),
    NoSecret(Vec<Located>),
}

/// The readers a report is about, with the issue each came back from; `None` when it is not
/// a bounce or complaint at all.
fn locate(ledger: &Ledger, report: &Parsed, verp: &Verp) -> Result<Option<Readers>, BouncesError> {
    let (message_id, wanted): (Option<&str>, Vec<Wanted>) = match report {
        Parsed::NotABounce => return Ok(None),
        Parsed::Arf(arf) => {
            let Some(kind) = arf.kind() else {
                return Ok(None);
            };
            let address = arf
                .original_rcpt_to
                .clone()
                .or_else(|| arf.original_to.clone())
                .unwrap_or_default();
            let reason = Some(format!("feedback report: {}", arf.feedback_type));
            (
                arf.original_message_id.as_deref(),
                vec![(address, kind, reason)],
            )
        }
        Parsed::Dsn(dsn) => {
            let wanted: Vec<_> = dsn
                .recipients
                .iter()
                .filter_map(|r| Some((r.final_recipient.clone(), r.kind()?, r.reason())))
                .collect();
            if wanted.is_empty() {
                // A report of delivery, relay or expansion: nothing went wrong.
                return Ok(None);
            }
            (dsn.original_message_id.as_deref(), wanted)
        }
    };
    // bulletin sends each message to one reader: its Message-ID finds them and the issue,
    // whatever address the report names (a forward, an alias). The worst of what the report
    // says about its recipients is what happened to the message.
    // A VERP envelope sender names the reader and the issue as well, when the report kept
    // no Message-ID.
    let mut no_secret = false;
    let mut found = message_id
        .map(|id| ledger.by_message_id(id))
        .transpose()?
        .flatten();
    if found.is_none() {
        match verp.find(ledger)? {
            Ok(by_verp) => found = by_verp,
            Err(()) => no_secret = true,
        }
    }
    if let Some(found) = found {
        let worst = wanted
            .iter()
            .max_by_key(|(_, kind, _)| severity(*kind))
            .cloned();
        if let Some((_, kind, reason)) = worst {
            return Ok(Some(Readers::Located(vec![Located {
                address: found.recipient.as_str().to_string(),
                kind,
                issue: Some(found.issue),
                reason,
            }])));
        }
    }
    let mut located = Vec::new();
    for (address, kind, reason) in wanted {
        let found = match address.is_empty() {
            true => None,
            false => ledger.latest_sent_to(&address)?,
        };
        located.push(match found {
            Some(found) => Located {
                address: found.recipient.as_str().to_string(),
                kind,
                issue: Some(found.issue),
                reason,
            },
            None => Located {
                address: if address.is_empty() {
                    "(no address in the report)".into()
                } else {
                    address
                },
                kind,
                issue: None,
                reason,
            },
        });
    }
    let unmatched = located.iter().any(|one| one.issue.is_none());
    Ok(Some(match no_secret && unmatched {
        true => Readers::NoSecret(located),
        false => Readers::Located(located),
    }))
}

fn severity(kind: Kind) -> u8 {
    match kind {
        Kind::Complaint => 3,
        Kind::Bounce => 2,
        Kind::SoftBounce => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
