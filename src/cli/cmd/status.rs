//! `bulletin status`: how the sending of an issue stands, from the ledger.

use std::path::PathBuf;

use crate::cli::cmd::send::workspace_root;
use crate::cli::{Error, say};
use crate::ledger::{Ledger, State};
use crate::workspace::ledger_path;

/// Show how the sending of an issue stands.
///
/// Reads the workspace's ledger: how many got it, failed (and why), are pending, and how many
/// a crash left uncertain. --failed --csv lists exactly who did not get it and why.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin status issues/2020-06.json\n  bulletin status issues/2020-06.json --failed --csv > failed.csv"
)]
pub struct Args {
    /// The issue file.
    pub issue: PathBuf,
    /// List the recipients who did not get it.
    #[arg(long)]
    pub failed: bool,
    /// With --failed: as CSV (email,state,attempts,reply).
    #[arg(long, requires = "failed")]
    pub csv: bool,
    /// As JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let root = workspace_root()?;
    let slug = args
        .issue
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage("name an issue file".into()))?;
    let path = ledger_path(&root);
    if !path.is_file() {
        say(&format!("{slug}: nothing sent yet\n"));
        return Ok(());
    }
    let ledger = Ledger::open(&path).map_err(|e| Error::Other(e.to_string()))?;
    let report = ledger
        .report(&slug)
        .map_err(|e| Error::Other(e.to_string()))?;
    let failures = if args.failed {
        ledger
            .failures(&slug)
            .map_err(|e| Error::Other(e.to_string()))?
    } else {
        Vec::new()
    };
    let state = |s: State| match s {
        State::Pending => "pending",
        State::InFlight => "in flight",
        State::Sent => "sent",
        State::FailedTemporary => "failed (temporary)",
        State::FailedPermanent => "failed (permanent)",
    };
    if args.json {
        let value = serde_json::json!({
            "issue": slug,
            "sent": report.sent,
            "failed_permanent": report.failed_permanent,
            "failed_temporary": report.failed_temporary,
            "pending": report.pending,
            "in_flight": report.in_flight,
            "uncertain": report.uncertain,
            "failures": failures.iter().map(|f| serde_json::json!({
                "email": f.recipient, "state": state(f.state), "attempts": f.attempts, "reply": f.reply,
            })).collect::<Vec<_>>(),
        });
        say(&format!("{value}\n"));
        return Ok(());
    }
    if args.csv {
        let mut out = csv::Writer::from_writer(Vec::new());
        let _ = out.write_record(["email", "state", "attempts", "reply"]);
        for f in &failures {
            let _ = out.write_record([
                f.recipient.as_str(),
                state(f.state),
                &f.attempts.to_string(),
                f.reply.as_deref().unwrap_or(""),
            ]);
        }
        say(&String::from_utf8_lossy(
            &out.into_inner().unwrap_or_default(),
        ));
        return Ok(());
    }
    let mut out = format!(
        "{slug}\nSent: {}\nFailed: {} permanent, {} temporary\nPending: {}\nIn flight: {}\n",
        report.sent,
        report.failed_permanent,
        report.failed_temporary,
        report.pending,
        report.in_flight
    );
    if report.uncertain > 0 {
        out.push_str(&format!(
            "Uncertain: {} (in flight when a run stopped; they may have received two copies)\n",
            report.uncertain
        ));
    }
    for f in &failures {
        out.push_str(&format!(
            "  {}: {} after {} attempts: {}\n",
            f.recipient,
            state(f.state),
            f.attempts,
            f.reply.as_deref().unwrap_or("")
        ));
    }
    say(&out);
    Ok(())
}
