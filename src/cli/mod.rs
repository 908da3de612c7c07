//! The command line: clap's argument structs, one `run` per command in `cmd/`, and the one
//! place where results and errors become text for people and exit codes for scripts.
//!
//! Exit codes: 0 success, 1 bad input (or a failed check), 2 usage, 3 a send that ran but
//! left readers without the issue ([`UNSENT`]).

mod cmd;
mod term;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::issue::IssueError;
use crate::issue::next::NextError;
use crate::layout::LayoutError;
use crate::output::WriteError;
use crate::preview::PreviewError;
use crate::render::RenderError;
use crate::workspace::WorkspaceError;

/// Compose, preview, check, publish and send a newsletter issue.
///
/// An issue is a JSON file of sections (news, events, agenda, about, text) with Markdown in its
/// text fields. bulletin fills a layout (MJML + Handlebars, built in or your own) and produces
/// a responsive HTML email and its plain-text part.
#[derive(Debug, Parser)]
#[command(name = "bulletin", version, propagate_version = true)]
#[command(after_help = "Start with: bulletin init news && cd news && bulletin preview")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(cmd::init::Args),
    New(cmd::new::Args),
    Render(cmd::render::Args),
    Preview(cmd::preview::Args),
    Check(cmd::check::Args),
    Publish(cmd::publish::Args),
    Send(cmd::send::Args),
    Status(cmd::status::Args),
    Serve(cmd::serve::Args),
    Suppressions(cmd::suppressions::Args),
    Bounces(cmd::bounces::Args),
    Schema(cmd::schema::Args),
}

/// Everything a command can fail with, by stage. Each stage's error keeps its source; only
/// this layer turns them into text, adding what to do on the command line (the stages name
/// no command or flag).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The issue → layout → render pipeline, for the commands that go through it whole.
    #[error(transparent)]
    Edition(#[from] crate::edition::EditionError),
    #[error(transparent)]
    Links(#[from] crate::check::links::LinkCheckError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Preview(#[from] PreviewError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Next(#[from] NextError),
    /// No workspace around the current folder: a usage error (exit 2).
    #[error(transparent)]
    NoWorkspace(#[from] crate::workspace::FindError),
    /// bulletin.toml cannot be read or is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The secret, the DKIM key or the transport of a send (a profile that does not exist is
    /// a usage error, exit 2).
    #[error(transparent)]
    Setup(#[from] crate::send::SetupError),
    /// Sending: the ledger, the subscriber list, a message that cannot be built.
    #[error(transparent)]
    Send(crate::send::SendError),
    /// The ledger, read on its own (`bulletin status`).
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A stage's error (exit 1) with what to do about it on the command line.
    #[error("{error}\n  hint: {hint}")]
    Hinted { error: Box<Error>, hint: String },
    /// A refusal to send (the issue changed, another run holds it), and the way out of it on
    /// the command line, in the words the ledger's refusal already began.
    #[error("{source}; {hint}")]
    Refused {
        #[source]
        source: crate::send::SendError,
        hint: &'static str,
    },
    /// The current folder cannot be known (it was deleted, or is not readable).
    #[error("cannot tell the current folder: {}", crate::diag::io_reason(.0))]
    CurrentDir(#[source] std::io::Error),
    /// The answer to a question on the terminal cannot be read.
    #[error("cannot read the answer from the terminal: {}", crate::diag::io_reason(.0))]
    Terminal(#[source] std::io::Error),
    /// The runtime that drives network work cannot start (out of threads or memory).
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The command line itself is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// `bulletin serve`: its settings, or the server.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// `bulletin publish`: the site folder, its record, the list of issues.
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    /// The suppression store.
    #[error(transparent)]
    Suppressions(#[from] crate::suppressions::StoreError),
    /// `bulletin bounces`: the mailbox, the ledger or the store.
    #[error(transparent)]
    Bounces(#[from] crate::bounces::BouncesError),
    /// The suppressions of a `bulletin serve` elsewhere could not be pulled.
    #[error(transparent)]
    Pull(#[from] crate::suppressions::remote::PullError),
    /// The command has reported what failed (a check found errors): exit 1, nothing more to say.
    #[error("")]
    Failed,
    /// A send ran, and has reported who did not get the issue (failed now or in an earlier
    /// run, or not tried because it stopped): exit [`UNSENT`], nothing more to say.
    #[error("")]
    Unsent,
}

/// The exit code of a send that left readers without the issue. Not 1: a script must tell
/// "nothing was sent, fix the input" (1) from "the send ran and some readers remain" (3: run
/// the same command later, or `--only-failed`, or read `status --failed`); 0, 1 and 2 keep
/// the meaning every bulletin command gives them.
pub const UNSENT: u8 = 3;

/// A send's error, with the command-line way out where the ledger refused the run.
impl From<crate::send::SendError> for Error {
    fn from(e: crate::send::SendError) -> Error {
        use crate::ledger::LedgerError;
        use crate::send::SendError;
        let hint = match &e {
            SendError::Ledger(LedgerError::Changed { .. }) => {
                "run with --force to send the new version to the rest"
            }
            SendError::Ledger(LedgerError::Held { .. }) => {
                "wait for it to finish, or stop it and run send again to continue"
            }
            _ => return Error::Send(e),
        };
        Error::Refused { source: e, hint }
    }
}

impl Error {
    fn exit_code(&self) -> u8 {
        use crate::send::SetupError;
        use crate::transport::TransportError;
        match self {
            Error::Usage(_) | Error::NoWorkspace(_) => 2,
            Error::Setup(SetupError::Transport(TransportError::NoProfile { .. })) => 2,
            Error::Unsent => UNSENT,
            _ => 1,
        }
    }
}

/// What a send's report leaves to say on stderr, and its exit code: 0 when every reader of
/// the list has the issue, [`UNSENT`] when some remain (failed now or before, or not tried).
pub(crate) fn after_send(tally: &crate::send::Tally) -> Result<(), Error> {
    if let Some(stopped) = &tally.stopped {
        note(&format!(
            "{}\nTo continue where it stopped, run the same command again.",
            stopped.explain()
        ));
    }
    if !tally.failed_before.is_empty() {
        note(&format!(
            "{} readers failed for good in an earlier run; --only-failed tries them again.",
            tally.failed_before.len()
        ));
    }
    if !tally.uncertain.is_empty() {
        note(&format!(
            "{} readers may have two copies; bulletin status --uncertain lists them.",
            tally.uncertain.len()
        ));
    }
    match tally.stopped.is_some() || tally.unsent() > 0 {
        true => Err(Error::Unsent),
        false => Ok(()),
    }
}

/// The runtime `serve`, `bounces` and a signed send run on: two workers, as many as the
/// machines bulletin is made for have cores.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// The runtime a send runs on: one thread, unless each message is signed (DKIM). On one
/// thread a message costs no hand-over between threads: a send of the sample to 20,000
/// readers through 8 connections took 15 to 20% less CPU at the same rate, and the relay's
/// answers, not bulletin's CPU, set the pace. Signing is most of a signed message's CPU
/// (about 1.7 ms with an RSA-2048 key, against 0.1 ms for the rest): two workers sign two at
/// a time, and a signed send of 5,000 readers took 0.64 of the time it took on one thread.
fn send_runtime(signed: bool) -> Result<tokio::runtime::Runtime, Error> {
    if signed {
        return runtime();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Parses the arguments, runs the command, prints what went wrong, returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with 0, usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(args),
        Command::New(args) => cmd::new::run(args),
        Command::Render(args) => cmd::render::run(args),
        Command::Preview(args) => cmd::preview::run(args),
        Command::Publish(args) => cmd::publish::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Suppressions(args) => cmd::suppressions::run(args),
        Command::Bounces(args) => cmd::bounces::run(args),
        Command::Schema(args) => cmd::schema::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints an error on stderr, one `error:` line per problem.
fn report(e: &Error) {
    if matches!(e, Error::Failed | Error::Unsent) {
        return; // already reported
    }
    let text = crate::diag::error_lines(&e.to_string());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes to stdout; a closed pipe (`bulletin … | head`) is not an error.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A line on stderr for people, beside data on stdout; a closed stderr is not an error.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", text.trim_end());
}

/// A warning on stderr.
fn warn(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {text}");
}
