//! `bulletin send`: a test send to a few addresses, or the real send to a subscriber list,
//! recorded in the workspace's ledger so that it can be resumed.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::audience::{self, Fingerprints, Row, Subscriber};
use crate::check;
use crate::cli::{Error, note, say};
use crate::clock::SystemClock;
use crate::config::{self, Config, Profile, Secret};
use crate::edition::{self, Edition, Images};
use crate::issue::LoadedIssue;
use crate::ledger::{Holder, Ledger};
use crate::merge::NoValues;
use crate::message::{self, Composer, Unsubscribe};
use crate::render::Rendered;
use crate::send::run::{self, Options, Stopped, Tally};
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
pub fn workspace_root() -> Result<PathBuf, Error> {
    let here = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
    Ok(crate::workspace::root(&here)?)
}

pub fn run(args: Args) -> Result<(), Error> {
    let root = workspace_root()?;
    let config =
        config::load(&root.join(config::FILE_NAME)).map_err(|e| Error::Other(e.to_string()))?;
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
        .map_err(|e| Error::Other(e.to_string()))?;
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

async fn dispatch<T: Transport>(
    args: &Args,
    loaded: &LoadedIssue,
    composer: Composer,
    transport: Arc<T>,
    root: &Path,
    pace: Pacing,
) -> Result<(), Error> {
    if !args.to.is_empty() {
        return test_send(&args.to, &composer, transport.as_ref(), args.json).await;
    }
    let Some(list) = &args.list else {
        return Err(Error::Usage(
            "name a subscriber list with --list, or test addresses with --to".into(),
        ));
    };
    let suppressed = || -> Result<Fingerprints, Error> {
        match &args.suppress {
            Some(f) => audience::read_suppressions(f).map_err(|e| Error::Other(e.to_string())),
            None => Ok(Fingerprints::default()),
        }
    };
    // A first pass counts, so that the person sending sees what will happen before it does.
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut recipients = 0u64;
    for row in audience::open(list, suppressed()?).map_err(|e| Error::Other(e.to_string()))? {
        match row.map_err(|e| Error::Other(e.to_string()))? {
            Row::Send(_) => recipients += 1,
            Row::Skipped { why, .. } => *counts.entry(why.label().to_string()).or_default() += 1,
        }
    }
    let subject = composer.rendered.subject.fill(&NoValues);
    let mut plan = format!(
        "Issue:      {}\nSubject:    {subject}\nRecipients: {recipients}\n",
        loaded.path.display()
    );
    for (why, n) in &counts {
        plan.push_str(&format!("Skipped:    {n} {why}\n"));
    }
    plan.push_str(&format!("Transport:  {}\n", transport.describe()));
    if args.json {
        note(plan.trim_end());
    } else {
        say(&plan);
    }
    if args.dry_run.is_none() && !args.yes && !confirm(recipients)? {
        note("Nothing sent.");
        return Ok(());
    }

    let mut ledger = match &args.dry_run {
        Some(dir) => Ledger::open(&dir.join(".dry-run-ledger.sqlite")),
        None => Ledger::open(&crate::workspace::ledger_path(root)),
    }
    .map_err(|e| Error::Other(e.to_string()))?;
    let holder = Holder {
        host: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "this machine".into()),
        pid: std::process::id(),
    };
    let start = ledger
        .start_run(
            &loaded.slug,
            &composer.rendered.content_hash(),
            &subject,
            &holder,
            args.force,
            crate::clock::now(),
            |other| process_alive(other, &holder.host),
        )
        .map_err(|e| Error::Other(e.to_string()))?;
    if start.recovered > 0 {
        note(&format!(
            "{} recipients were in flight when an earlier run stopped; they are sent again (a few may get two copies)",
            start.recovered
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let bar = progress_bar(recipients);
    let tick = bar.clone();
    let opts = Options {
        concurrency: pace.concurrency,
        rate: pace.rate,
        only_failed: args.only_failed,
        ..Options::default()
    };
    let rows = audience::open(list, suppressed()?).map_err(|e| Error::Other(e.to_string()))?;
    let tally = run::deliver(
        Arc::new(composer),
        rows,
        &mut ledger,
        &loaded.slug,
        start.run,
        transport,
        &opts,
        &stop,
        move |p| {
            tick.set_position(p.done);
            tick.set_message(format!("{} sent, {} failed", p.sent, p.failed));
        },
    )
    .await
    .map_err(|e| Error::Other(e.to_string()))?;
    bar.finish_and_clear();
    let _ = ledger.finish_run(start.run, crate::clock::now());
    if args.json {
        say(&format!("{}\n", report_json(&loaded.slug, &tally)));
    } else {
        say(&report(&tally));
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
    if !tally.failed_permanent.is_empty() || !tally.failed_temporary.is_empty() {
        return Err(Error::Failed);
    }
    Ok(())
}

/// Whether the run `other` may still be sending: on another machine we cannot tell (its
/// heartbeat decides); on this one, its process must exist (`kill -9` is noticed at once).
fn process_alive(other: &Holder, this_host: &str) -> bool {
    if other.host != this_host {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return true;
    }
    proc.join(other.pid.to_string()).exists()
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
        .map_err(|e| Error::Other(e.to_string()))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

async fn test_send<T: Transport>(
    to: &[String],
    composer: &Composer,
    transport: &T,
    json: bool,
) -> Result<(), Error> {
    let mut failed = false;
    let mut results = Vec::new();
    for address in to {
        let address = lettre::Address::from_str(address)
            .map_err(|_| Error::Usage(format!("\"{address}\" is not an email address")))?;
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("email".to_string(), address.to_string());
        let subscriber = Subscriber {
            address: address.clone(),
            fields,
            line: 0,
        };
        let message = composer
            .compose_as(
                &subscriber,
                std::time::SystemTime::from(crate::clock::now()),
                transport.form(),
            )
            .map_err(|e| Error::Other(e.to_string()))?;
        let (sent, reply) = match transport.send(&message).await {
            Ok(a) => (true, a.reply),
            Err(f) => (false, f.reply),
        };
        failed |= !sent;
        if json {
            results.push(
                serde_json::json!({"email": address.to_string(), "sent": sent, "reply": reply}),
            );
        } else if sent {
            say(&format!("test sent to {address}: {reply}\n"));
        } else {
            say(&format!("test NOT sent to {address}: {reply}\n"));
        }
    }
    if json {
        say(&format!("{}\n", serde_json::json!({ "test": results })));
    }
    if failed { Err(Error::Failed) } else { Ok(()) }
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

/// The end-of-run report for scripts.
pub fn report_json(issue: &str, t: &Tally) -> serde_json::Value {
    let failed = |list: &[(String, String)], permanent: bool| -> Vec<serde_json::Value> {
        list.iter()
            .map(|(who, reply)| serde_json::json!({"email": who, "reply": reply, "permanent": permanent}))
            .collect()
    };
    let mut failures = failed(&t.failed_permanent, true);
    failures.extend(failed(&t.failed_temporary, false));
    let stopped = t.stopped.as_ref().map(|s| match s {
        Stopped::Interrupted => serde_json::json!({"why": "interrupted"}),
        Stopped::Unreachable(reply) => serde_json::json!({"why": "unreachable", "reply": reply}),
        Stopped::Auth(reply) => serde_json::json!({"why": "credentials refused", "reply": reply}),
    });
    serde_json::json!({
        "issue": issue,
        "sent": t.sent,
        "already_sent": t.already_sent,
        "not_tried": t.not_tried,
        "skipped": t.skipped,
        "invalid": t.invalid.iter().map(|(line, why)| serde_json::json!({"line": line, "reason": why})).collect::<Vec<_>>(),
        "failed": failures,
        "stopped": stopped,
    })
}

/// The end-of-run report.
pub fn report(t: &Tally) -> String {
    let mut out = format!("Sent: {}\n", t.sent);
    if t.already_sent > 0 {
        out.push_str(&format!("Already sent before: {}\n", t.already_sent));
    }
    for (why, n) in &t.skipped {
        out.push_str(&format!("Skipped ({why}): {n}\n"));
    }
    for (line, why) in &t.invalid {
        out.push_str(&format!("  line {line}: {why}\n"));
    }
    if t.not_tried > 0 {
        out.push_str(&format!(
            "Not tried (the run stopped first): {}\n",
            t.not_tried
        ));
    }
    out.push_str(&format!(
        "Failed: {}\n",
        t.failed_permanent.len() + t.failed_temporary.len()
    ));
    for (who, reply) in &t.failed_permanent {
        out.push_str(&format!("  {who}: {reply} (permanent)\n"));
    }
    for (who, reply) in &t.failed_temporary {
        out.push_str(&format!(
            "  {who}: {reply} (temporary: a new run retries it)\n"
        ));
    }
    out
}
