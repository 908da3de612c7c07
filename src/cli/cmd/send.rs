//! `bulletin send`: a test send to a few addresses, or the real send to a subscriber list,
//! recorded in the workspace's ledger so that it can be resumed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::check;
use crate::cli::{Error, note, say};
use crate::clock::SystemClock;
use crate::config::{self, Config, Profile, Secret};
use crate::edition::{self, Edition, Images};
use crate::issue::LoadedIssue;
use crate::ledger::LedgerError;
use crate::message::{self, Composer, Unsubscribe};
use crate::render::Rendered;
use crate::send::{self, Event, RunOptions, SendError, Stop, Stopped, Tools};
use crate::transport::{self, OpenOptions, Pacing, Transport};

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
    after_help = "Examples:\n  bulletin send issues/2020-06.json --to me@example.org\n  bulletin send issues/2020-06.json --list subscribers.csv\n  bulletin send issues/2020-06.json --list subscribers.csv --dry-run out/eml\n  bulletin send issues/2020-06.json --list subscribers.csv --only-failed"
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
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
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
    /// Print the report as JSON on standard output (for scripts; the plan goes to standard
    /// error).
    #[arg(long)]
    pub json: bool,
    // The same layout choice as render, check and preview.
    #[arg(long, value_name = "DIR", help = super::render::LAYOUT_HELP)]
    pub layout: Option<PathBuf>,
}

/// The workspace the current folder is in.
fn workspace_root() -> Result<PathBuf, Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    Ok(crate::workspace::root(&here)?)
}

pub fn run(args: Args) -> Result<(), Error> {
    let root = workspace_root()?;
    let config = config::load(&root.join(config::FILE_NAME))?;
    // The edition `check` checks, in the same layout, refused by the same rules.
    let Edition {
        issue: loaded,
        rendered,
        ..
    } = prepare_to_send(&args)?;
    let secret = Secret::from_env(&config.unsubscribe.secret_env)?;
    let composer = composer(
        &config,
        &loaded,
        rendered,
        secret,
        !args.to.is_empty(),
        &root,
        &args.profile,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let options = OpenOptions {
        dry_run: args.dry_run.clone(),
        root: root.clone(),
        letterhead: composer.letterhead(),
        template: composer.template(),
        clock: Arc::new(SystemClock),
    };
    let transport = runtime.block_on(async { transport::open(&config, &args.profile, options) })?;
    let pace = transport.pacing();
    runtime.block_on(dispatch(
        &args,
        &loaded,
        composer,
        Arc::new(transport),
        &root,
        pace,
    ))
}

/// The issue as `check` sees it, in the layout `--layout` chose; refused (exit 1, nothing
/// sent) with `check`'s findings when a rule that protects readers is broken.
fn prepare_to_send(args: &Args) -> Result<Edition, Error> {
    let edition = edition::prepare(&edition::Options {
        issue: args.issue.clone(),
        layout: args.layout.clone(),
        images: Images::Sent,
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

fn composer(
    config: &Config,
    loaded: &LoadedIssue,
    rendered: Rendered,
    secret: Secret,
    test: bool,
    root: &Path,
    profile: &str,
) -> Result<Composer, Error> {
    let dkim = match config.profiles.get(profile).and_then(Profile::dkim) {
        Some(dkim) => Some(message::load_dkim(dkim, root)?),
        None => None,
    };
    Ok(Composer {
        rendered,
        issue: loaded.slug.clone(),
        from: config.sender.from.clone(),
        reply_to: config.sender.reply_to.clone(),
        list_id: config.sender.list_id.clone(),
        unsubscribe: Unsubscribe {
            url: config.unsubscribe.url.clone(),
            mailto: config.unsubscribe.mailto.clone(),
            secret,
        },
        test,
        dkim,
        slots: Default::default(),
    })
}

/// The send itself: a test send to `--to`, or the plan, the confirmation and the run over
/// `--list`, with progress on stderr and the report on stdout.
async fn dispatch<T: Transport>(
    args: &Args,
    loaded: &LoadedIssue,
    composer: Composer,
    transport: Arc<T>,
    root: &Path,
    pace: Pacing,
) -> Result<(), Error> {
    let tools = Tools {
        composer: Arc::new(composer),
        transport,
        clock: Arc::new(SystemClock),
    };
    if !args.to.is_empty() {
        return test(args, &tools).await;
    }
    let Some(path) = &args.list else {
        return Err(Error::Usage(
            "name a subscriber list with --list, or test addresses with --to".into(),
        ));
    };
    let list = send::List {
        path: path.clone(),
        suppress: args.suppress.clone(),
    };
    let plan = send::plan(&list, &tools)?;
    let plan_text = plan.text(&loaded.path);
    if args.json {
        note(plan_text.trim_end());
    } else {
        say(&plan_text);
    }
    if args.dry_run.is_none() && !args.yes && !confirm(plan.recipients)? {
        note("Nothing sent.");
        return Ok(());
    }
    let opts = RunOptions {
        ledger: match &args.dry_run {
            Some(dir) => send::dry_run_ledger(dir),
            None => crate::workspace::ledger_path(root),
        },
        list,
        force: args.force,
        stop: Stop::on_ctrl_c(),
        delivery: send::Options {
            concurrency: pace.concurrency,
            rate: pace.rate,
            only_failed: args.only_failed,
            ..send::Options::default()
        },
    };
    let bar = progress_bar(plan.recipients);
    let tally = send::run(&opts, &tools, |event| match event {
        Event::Started { recovered } if recovered > 0 => note(&format!(
            "{recovered} recipients were in flight when an earlier run stopped; they are sent again (a few may get two copies)"
        )),
        Event::Started { .. } => {}
        Event::Progress(p) => {
            bar.set_position(p.done);
            bar.set_message(format!("{} sent, {} failed", p.sent, p.failed));
        }
    })
    .await
    .map_err(with_hint)?;
    bar.finish_and_clear();
    if args.json {
        say(&format!("{}\n", tally.json(&tools.composer.issue)));
    } else {
        say(&tally.text());
    }
    if let Some(stopped) = &tally.stopped {
        let why = match stopped {
            Stopped::Interrupted => "stopped by Ctrl-C".to_string(),
            Stopped::Unreachable(reply) => format!("stopped: the relay keeps failing ({reply})"),
            Stopped::Auth(reply) => format!(
                "stopped: the relay refused the credentials ({reply}); check the password's environment variable"
            ),
        };
        note(&format!(
            "{why}\nTo continue where it stopped, run the same command again."
        ));
        return Err(Error::Failed);
    }
    if tally.failed() > 0 {
        return Err(Error::Failed);
    }
    Ok(())
}

/// A test copy to each `--to` address, checked here, before anything is sent.
async fn test<T: Transport>(args: &Args, tools: &Tools<T>) -> Result<(), Error> {
    let to = args
        .to
        .iter()
        .map(|a| {
            lettre::Address::from_str(a)
                .map_err(|_| Error::Usage(format!("\"{a}\" is not an email address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report = send::test_send(&to, tools).await?;
    if args.json {
        say(&format!("{}\n", report.json()));
    } else {
        say(&report.text());
    }
    if report.all_sent() {
        Ok(())
    } else {
        Err(Error::Failed)
    }
}

/// A refusal of the ledger's, with the command-line way out of it.
fn with_hint(e: SendError) -> Error {
    let hint = match &e {
        SendError::Ledger(LedgerError::Changed { .. }) => {
            "run with --force to send the new version to the rest"
        }
        SendError::Ledger(LedgerError::Held { .. }) => {
            "wait for it to finish, or stop it and run send again to continue"
        }
        _ => return e.into(),
    };
    Error::Refused { source: e, hint }
}

fn confirm(recipients: u64) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "add --yes to send without being asked (no terminal to ask on)".into(),
        ));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "Send to {recipients} recipients? Type yes to send: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(Error::Terminal)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "sending {bar:30} {pos}/{len} {per_sec} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
