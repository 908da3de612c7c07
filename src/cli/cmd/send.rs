//! `bulletin send`: a test send to a few addresses, or the real send to a subscriber list,
//! recorded in the workspace's ledger so that it can be resumed.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::check;
use crate::cli::term::{confirm, progress_bar};
use crate::cli::{Error, note, say, warn};
use crate::clock::SystemClock;
use crate::config::{self, Archive};
use crate::edition::{self, Edition, Images};
use crate::send::{self, Event, RunOptions, Stop, Tools};
use crate::transport::{Pacing, Transport};

/// Send an issue: a test to a few addresses, or to a subscriber list.
///
/// With --to, sends a test copy ("[TEST]" in the subject) to those addresses only; nothing is
/// recorded. With --list, shows what will happen and asks for confirmation, then sends to
/// every subscribed address of the list, recording each outcome in .bulletin/ledger.sqlite.
/// Running the same command again continues where a run stopped: nobody gets a second copy.
///
/// The profile (--profile, from bulletin.toml) says how messages leave: an SMTP relay, or a
/// provider's API (brevo, mailjet, sendgrid, postmark, mailgun, ses, resend).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin send issues/2020-06.json --to me@example.org\n  bulletin send issues/2020-06.json --list subscribers.csv\n  bulletin send issues/2020-06.json --list subscribers.csv --dry-run out/eml\n  bulletin send issues/2020-06.json --list subscribers.csv --only-failed\n\nExit codes:\n  0  every reader of the list has the issue (some may have two copies: see status --uncertain)\n  1  bad input or a failed check: nothing was sent\n  2  usage: wrong arguments, no workspace, no such profile\n  3  the send ran, and readers remain without the issue (failed, or not tried because it stopped)"
)]
pub struct Args {
    /// The issue file (JSON).
    pub issue: PathBuf,
    /// The subscriber list (CSV with an "email" column).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "to",
        conflicts_with = "to"
    )]
    pub list: Option<PathBuf>,
    /// Send a test copy to this address (repeatable).
    #[arg(long, value_name = "ADDRESS", value_parser = address)]
    pub to: Vec<lettre::Address>,
    /// The transport profile of bulletin.toml to use.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Send nothing: write every message as an .eml file into DIR (SMTP), or every request
    /// the provider would get, credentials redacted (API profiles).
    #[arg(long, value_name = "DIR")]
    pub dry_run: Option<PathBuf>,
    /// Send only to the recipients the ledger records as failed.
    #[arg(long)]
    pub only_failed: bool,
    /// Continue even though the issue changed since it was first sent.
    #[arg(long)]
    pub force: bool,
    /// A file of addresses (one a line) never to send to.
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
    /// Send even though the suppressions of [suppressions] remote cannot be pulled, with
    /// those pulled before.
    #[arg(long)]
    pub without_remote_suppressions: bool,
    /// Print the report as JSON on standard output (for scripts; the plan goes to standard
    /// error).
    #[arg(long)]
    pub json: bool,
    // The same layout choice as render, check and preview.
    #[arg(long, value_name = "DIR", help = super::render::LAYOUT_HELP)]
    pub layout: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let config = config::load(&root.join(config::FILE_NAME))?;
    if let Some(misaligned) = crate::message::dkim::misaligned(&config, &args.profile) {
        warn(&misaligned.to_string());
    }
    // The edition `check` checks, in the same layout, refused by the same rules.
    let Edition {
        issue, rendered, ..
    } = prepare_to_send(&args, config.archive.clone())?;
    let setup = send::Setup {
        config: &config,
        profile: &args.profile,
        root: &root,
        dry_run: args.dry_run.clone(),
        test: args.list.is_none(),
        clock: Arc::new(SystemClock),
    };
    crate::cli::send_runtime(config.dkim(&args.profile).is_some())?.block_on(async {
        let (tools, pacing) = send::tools(&setup, &issue.slug, rendered)?;
        match &args.list {
            Some(list) => {
                // Readers who unsubscribed through `bulletin serve`, here or elsewhere.
                let without = args.without_remote_suppressions;
                let stores = super::suppressions::for_sending(&config, &root, without).await?;
                to_list(&args, list, &issue.path, &root, stores, &tools, pacing).await
            }
            None => test(&args, &tools).await,
        }
    })
}

/// The issue as `check` sees it, in the layout `--layout` chose; refused (exit 1, nothing
/// sent) with `check`'s findings when a rule that protects readers is broken.
fn prepare_to_send(args: &Args, archive: Option<Archive>) -> Result<Edition, Error> {
    let edition = edition::prepare(&edition::Options {
        issue: args.issue.clone(),
        layout: args.layout.clone(),
        images: Images::Sent,
        archive,
    })?;
    let mut blockers = check::send_blockers(&edition);
    if !blockers.is_empty() {
        check::sort(&mut blockers);
        note(&super::check::lines(&blockers));
        note(&format!(
            "nothing sent: fix the errors above (bulletin check {} shows them too)",
            args.issue.display()
        ));
        return Err(Error::Failed);
    }
    Ok(edition)
}

/// The plan, the confirmation and the run over `--list`, with progress on stderr and the
/// report on stdout.
async fn to_list<T: Transport>(
    args: &Args,
    path: &Path,
    issue: &Path,
    root: &Path,
    stores: Vec<PathBuf>,
    tools: &Tools<T>,
    pacing: Pacing,
) -> Result<(), Error> {
    let list = send::List {
        path: path.to_path_buf(),
        suppress: args.suppress.clone(),
        stores,
    };
    let plan = send::plan(&list, tools)?;
    // With --json, stdout is the report's alone.
    let show = if args.json { note } else { say };
    show(&plan.text(issue));
    if args.dry_run.is_none()
        && !args.yes
        && !confirm(&format!("Send to {} recipients?", plan.recipients))?
    {
        note("Nothing sent.");
        return Ok(());
    }
    let opts = RunOptions {
        ledger: send::ledger_for(root, args.dry_run.as_deref()),
        list,
        force: args.force,
        stop: Stop::on_ctrl_c(),
        delivery: send::Options {
            only_failed: args.only_failed,
            ..send::Options::paced(pacing)
        },
    };
    let bar = progress_bar(
        plan.recipients,
        "sending {bar:30} {pos}/{len} {per_sec} eta {eta} {wide_msg}",
    );
    let tally = send::run(&opts, tools, |event| match event {
        Event::Started { recovered } if recovered > 0 => note(&format!(
            "{recovered} recipients were in flight when an earlier run stopped; they are sent again (a few may get two copies)"
        )),
        Event::Started { .. } => {}
        Event::Progress(p) => {
            bar.set_position(p.done);
            bar.set_message(format!("{} sent, {} failed", p.sent, p.failed));
        }
    })
    .await?;
    bar.finish_and_clear();
    say(&match args.json {
        true => format!("{}\n", tally.json(&tools.composer.issue)),
        false => tally.text(),
    });
    crate::cli::after_send(&tally)
}

/// A test copy to each `--to` address (all checked by clap before anything is sent).
async fn test<T: Transport>(args: &Args, tools: &Tools<T>) -> Result<(), Error> {
    let report = send::test_send(&args.to, tools).await?;
    say(&match args.json {
        true => format!("{}\n", report.json()),
        false => report.text(),
    });
    report.all_sent().then_some(()).ok_or(Error::Unsent)
}

/// A `--to` value: an email address, or a usage error that says so.
fn address(text: &str) -> Result<lettre::Address, String> {
    lettre::Address::from_str(text).map_err(|_| format!("\"{text}\" is not an email address"))
}
