//! Status: where the sending of an issue stands, from the ledger alone — how many got it,
//! failed (and why), are pending, and how many may have two copies (uncertain: a crash left
//! them in flight, or an answer was lost before they went again).
//!
//! Reads the ledger, never writes it (it is not even created when missing). What came back
//! from readers (unsubscribes through `bulletin serve`…) is the suppression store's, handed
//! in by the caller ([`Status::with_came_back`]).

use std::path::Path;

use serde_json::json;

use crate::ledger::{Ledger, LedgerError, Report, State, Undelivered};

/// How the sending of an issue stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// No ledger yet: nothing was ever sent from this workspace.
    NothingSent { issue: String },
    Recorded {
        issue: String,
        report: Report,
        /// Who did not get it, or who may have two copies (when asked for).
        failures: Vec<Undelivered>,
        /// What readers did from this issue's links, by kind of event (`unsubscribe`…), with
        /// how many readers did it.
        came_back: Vec<(String, u64)>,
    },
}

/// Whom a [`Status`] lists besides the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Nobody,
    /// Who did not get it, and why.
    Failed,
    /// Who may have two copies.
    Uncertain,
}

/// How to show a [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// The failures as CSV: email,state,attempts,reply.
    Csv,
}

/// Where the sending of `issue` (its slug) stands in the ledger at `ledger`, and whom
/// `listing` asks for.
pub fn status(ledger: &Path, issue: &str, listing: Listing) -> Result<Status, LedgerError> {
    if !ledger.is_file() {
        return Ok(Status::NothingSent {
            issue: issue.to_string(),
        });
    }
    let ledger = Ledger::open(ledger)?;
    Ok(Status::Recorded {
        issue: issue.to_string(),
        report: ledger.report(issue)?,
        failures: match listing {
            Listing::Failed => ledger.failures(issue)?,
            Listing::Uncertain => ledger.uncertain(issue)?,
            Listing::Nobody => Vec::new(),
        },
        came_back: Vec::new(),
    })
}

/// A state as people read it.
fn label(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::InFlight => "in flight",
        State::Sent => "sent",
        State::FailedTemporary => "failed (temporary)",
        State::FailedPermanent => "failed (permanent)",
    }
}

impl Status {
    /// The status with what readers did from the issue's links (from the suppression store).
    pub fn with_came_back(mut self, counts: Vec<(String, u64)>) -> Status {
        if let Status::Recorded { came_back, .. } = &mut self {
            *came_back = counts;
        }
        self
    }

    /// The status in `format`. With nothing sent, the same line whatever the format.
    pub fn render(&self, format: Format) -> String {
        match self {
            Status::NothingSent { issue } => format!("{issue}: nothing sent yet\n"),
            Status::Recorded {
                issue,
                report,
                failures,
                came_back,
            } => match format {
                Format::Json => format!("{}\n", json_of(issue, report, failures, came_back)),
                Format::Csv => csv_of(failures),
                Format::Text => text_of(issue, report, failures, came_back),
            },
        }
    }
}

fn json_of(
    issue: &str,
    report: &Report,
    failures: &[Undelivered],
    came_back: &[(String, u64)],
) -> serde_json::Value {
    let came_back: serde_json::Map<String, serde_json::Value> = came_back
        .iter()
        .map(|(kind, n)| (kind.clone(), json!(n)))
        .collect();
    json!({
        "issue": issue,
        "sent": report.sent,
        "failed_permanent": report.failed_permanent,
        "failed_temporary": report.failed_temporary,
        "pending": report.pending,
        "in_flight": report.in_flight,
        "uncertain": report.uncertain,
        "failures": failures.iter().map(|f| json!({
            "email": f.recipient.as_str(), "state": label(f.state), "attempts": f.attempts, "reply": f.reply,
            "uncertain": f.uncertain,
        })).collect::<Vec<_>>(),
        "came_back": came_back,
    })
}

fn csv_of(failures: &[Undelivered]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["email", "state", "attempts", "reply"]);
    for f in failures {
        let _ = out.write_record([
            f.recipient.as_str(),
            label(f.state),
            &f.attempts.to_string(),
            f.reply.as_deref().unwrap_or(""),
        ]);
    }
    String::from_utf8_lossy(&out.into_inner().unwrap_or_default()).into_owned()
}

fn text_of(
    issue: &str,
    report: &Report,
    failures: &[Undelivered],
    came_back: &[(String, u64)],
) -> String {
    let mut out = format!(
        "{issue}\nSent: {}\nFailed: {} permanent, {} temporary\nPending: {}\nIn flight: {}\n",
        report.sent,
        report.failed_permanent,
        report.failed_temporary,
        report.pending,
        report.in_flight
    );
    if report.uncertain > 0 {
        out.push_str(&format!(
            "Uncertain: {} (may have received two copies: an answer was lost, or they were in flight when a run stopped, before they went again)\n",
            report.uncertain
        ));
    }
    // Unsubscribes come from the issue's links; bounces and complaints from the mailboxes it
    // went to (webhooks, `bulletin bounces`).
    let is_link = |kind: &str| matches!(kind, "unsubscribe" | "resubscribe");
    let links: Vec<&(String, u64)> = came_back.iter().filter(|(k, _)| is_link(k)).collect();
    let reports: Vec<&(String, u64)> = came_back.iter().filter(|(k, _)| !is_link(k)).collect();
    for (title, counts) in [
        ("From this issue's links", links),
        ("Bounces and complaints", reports),
    ] {
        if !counts.is_empty() {
            let counts: Vec<String> = counts
                .iter()
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect();
            out.push_str(&format!("{title}: {}\n", counts.join(", ")));
        }
    }
    for f in failures {
        out.push_str(&format!(
            "  {}: {} after {} attempts: {}\n",
            f.recipient,
            label(f.state),
            f.attempts,
            f.reply.as_deref().unwrap_or("")
        ));
    }
    out
}
