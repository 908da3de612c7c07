//! `bulletin bounces`: reads the bounce mailbox of SMTP sends (IMAP, Maildir or mbox),
//! records its bounces and complaints in the suppression store, and says what it found.

use std::path::PathBuf;

use crate::bounces::{Options, Processor, Summary, imap, local};
use crate::cli::{Error, say};
use crate::config::{self, ConfigError};
use crate::values::Secret;

/// Read the bounce mailbox and record its bounces and complaints (for SMTP sends).
///
/// Messages sent over SMTP bounce to the sender's address. This reads that mailbox — over
/// IMAP with TLS ([bounces] imap in bulletin.toml, or --imap), or a Maildir folder or mbox
/// file —, finds each delivery status notification (RFC 3464), complaint (RFC 5965 feedback
/// report) and common plain-text bounce, and records it for the reader and issue it came back
/// from (found in the ledger by the message's Message-ID, else by the address): a 5.x.x
/// failure is a bounce, a 4.x.x failure or a delay a soft bounce (a bounce once [serve.bounces]
/// soft_limit of them fall within soft_window_days), an abuse report a complaint. `bulletin
/// send` skips those readers. What it recorded is moved to [bounces] handled_folder
/// (bulletin-handled); everything else is left where it is, unread. Running it again records
/// nothing twice.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin bounces\n  bulletin bounces --dry-run\n  bulletin bounces --imap imaps://newsletter@imap.example.org/INBOX --password-env BULLETIN_IMAP_PASSWORD\n  bulletin bounces --maildir ~/Maildir\n  bulletin bounces --mbox /var/mail/newsletter --json"
)]
pub struct Args {
    /// The mailbox over IMAP, in place of [bounces] imap: imaps://USER@HOST[:PORT]/FOLDER.
    #[arg(long, value_name = "URL", conflicts_with_all = ["maildir", "mbox"])]
    pub imap: Option<String>,
    /// A Maildir folder (holding cur/, new/ and tmp/); handled messages move into its
    /// .bulletin-handled/ subfolder.
    #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
    pub maildir: Option<PathBuf>,
    /// An mbox file, read and never changed (a rerun records nothing twice).
    #[arg(long, value_name = "FILE")]
    pub mbox: Option<PathBuf>,
    /// The environment variable holding the IMAP password, in place of [bounces] password_env.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
    /// Say what would be recorded; record nothing, move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// As JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let config_path = root.join(config::FILE_NAME);
    let config = config::load(&config_path)?;
    let rule_error = |message: String| {
        Error::Config(ConfigError::Rule {
            path: config_path.clone(),
            message,
        })
    };
    let rule = config
        .serve
        .bounces
        .rule()
        .map_err(|e| rule_error(e.to_string()))?;
    let settings = config.bounces.clone().unwrap_or_default();
    let options = Options {
        dry_run: args.dry_run,
        rule,
        now: crate::clock::now(),
    };
    let ledger = crate::workspace::ledger_path(&root);
    let store = root.join(&config.serve.store);
    // VERP tags are made with the unsubscribe secret; without it, reports only a VERP address
    // could match are counted and said.
    let secret_env = config.unsubscribe.secret_env.clone();
    let verp_secret = Secret::from_env(&secret_env).ok();
    // The mailbox is known (or refused, as a usage error) before the ledger is opened.
    let source = match (&args.maildir, &args.mbox) {
        (Some(dir), _) => Source::Maildir(dir),
        (None, Some(file)) => Source::Mbox(file),
        (None, None) => {
            let given = imap::Given {
                imap: args.imap.as_deref(),
                password_env: args.password_env.as_deref(),
            };
            Source::Imap(
                imap::mailbox(&given, &settings).map_err(|e| match e.in_settings {
                    false => Error::Usage(e.message),
                    true => rule_error(format!("[bounces] {}", e.message)),
                })?,
            )
        }
    };
    let mut processor = Processor::open(&ledger, &store, options)?.with_verp_secret(verp_secret);
    let (shown, place) = match source {
        Source::Maildir(dir) => {
            local::maildir(&here.join(dir), &settings.handled_folder, &mut processor)?;
            (dir.display().to_string(), Place::Maildir)
        }
        Source::Mbox(file) => {
            local::mbox(&here.join(file), &mut processor)?;
            (file.display().to_string(), Place::Mbox)
        }
        Source::Imap(mailbox) => {
            crate::cli::runtime()?.block_on(imap::run(&mailbox, &root, &mut processor))?;
            (mailbox.shown, Place::Imap)
        }
    };
    let summary = std::mem::take(&mut processor.summary);
    if args.json {
        let mut value = serde_json::to_value(&summary).unwrap_or_default();
        value["mailbox"] = serde_json::Value::String(shown);
        say(&format!("{value:#}\n"));
    } else {
        say(&text(&summary, &shown, &settings.handled_folder, place));
    }
    if summary.verp_without_secret > 0 {
        crate::cli::warn(&format!(
            "{} returned to a VERP address could not be matched: {secret_env} (the unsubscribe secret the issues were sent with, [unsubscribe] secret_env) is not set; set it and run bulletin bounces again",
            count(summary.verp_without_secret, "report", "reports")
        ));
    }
    Ok(())
}

/// The mailbox named: a Maildir, an mbox file, or the IMAP mailbox of the flags and settings.
enum Source<'a> {
    Maildir(&'a std::path::Path),
    Mbox(&'a std::path::Path),
    Imap(imap::Mailbox),
}

/// Where the mailbox is: what "moved" means there.
#[derive(Debug, Clone, Copy)]
enum Place {
    Imap,
    Maildir,
    Mbox,
}

/// "1 complaint", "2 complaints".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary for people: the counts, then each reader found.
fn text(s: &Summary, shown: &str, folder: &str, place: Place) -> String {
    let mut parts = vec![
        count(s.hard, "hard bounce", "hard bounces"),
        format!("{} soft", s.soft),
        count(s.complaints, "complaint", "complaints"),
        count(s.not_bounces, "not a bounce", "not bounces"),
    ];
    if s.not_in_ledger > 0 {
        parts.push(format!(
            "{} for a reader not in the ledger",
            s.not_in_ledger
        ));
    }
    let mut out = format!(
        "{}: {}\n",
        count(s.messages, "message", "messages"),
        parts.join(", ")
    );
    out.push_str(&format!("Mailbox: {shown}\n"));
    if !s.findings.is_empty() {
        out.push('\n');
        for f in &s.findings {
            out.push_str(&format!(
                "  {}  {}  {}  {}{}\n",
                f.address,
                f.kind,
                f.issue.as_deref().unwrap_or("-"),
                f.outcome,
                f.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    if s.dry_run {
        out.push_str("Dry run: nothing recorded, nothing moved.\n");
        return out;
    }
    let mut recorded = format!("Recorded: {}", s.recorded);
    if s.escalated > 0 {
        recorded.push_str(&format!(
            " ({} reached the soft-bounce limit and now suppress as bounces)",
            s.escalated
        ));
    }
    if s.already_recorded > 0 {
        recorded.push_str(&format!("; {} already recorded", s.already_recorded));
    }
    out.push_str(&recorded);
    out.push('\n');
    match place {
        Place::Mbox => out.push_str("The mbox file is not changed.\n"),
        Place::Imap | Place::Maildir => {
            if s.moved > 0 {
                let to = match place {
                    Place::Maildir => format!(".{folder}/"),
                    _ => folder.to_string(),
                };
                out.push_str(&format!(
                    "Moved {} to {to}\n",
                    count(s.moved, "message", "messages")
                ));
            }
            let left = s.messages.saturating_sub(s.moved);
            if left > 0 {
                out.push_str(&format!(
                    "Left in place: {left} (not bounces, or about nobody in the ledger)\n"
                ));
            }
        }
    }
    out
}
