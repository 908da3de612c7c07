//! The command line: clap's argument structs, one `run` per command in `cmd/`, and the one
//! place where results and errors become text for people and exit codes for scripts.
//!
//! Exit codes: 0 success, 1 bad input (or a failed check), 2 usage.

mod cmd;

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

/// Compose, preview, check and send a newsletter issue.
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
    Send(cmd::send::Args),
    Status(cmd::status::Args),
    Schema(cmd::schema::Args),
}

/// Everything a command can fail with, by stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Render(#[from] RenderError),
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
    /// The command line itself is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something outside the user's input went wrong (exit 1).
    #[error("{0}")]
    Other(String),
    /// The command has reported what failed (a check found errors): exit 1, nothing more to say.
    #[error("")]
    Failed,
    #[error(transparent)]
    Edition(#[from] crate::edition::EditionError),
    #[error(transparent)]
    Links(#[from] crate::check::links::LinkCheckError),
    /// A stage's error (exit 1) with what to do about it on the command line: the stages
    /// name no command or flag, the command that called them does.
    #[error("{error}\n  hint: {hint}")]
    Hinted { error: Box<Error>, hint: String },
    #[error(transparent)]
    Secret(#[from] crate::config::SecretError),
    #[error(transparent)]
    Dkim(#[from] crate::message::DkimError),
    /// A profile that does not exist is a usage error (exit 2).
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// The current folder cannot be known (it was deleted, or is not readable).
    #[error("cannot tell the current folder: {}", crate::diag::io_reason(.0))]
    CurrentDir(#[source] std::io::Error),
    /// The answer to a question on the terminal cannot be read.
    #[error("cannot read the answer from the terminal: {}", crate::diag::io_reason(.0))]
    Terminal(#[source] std::io::Error),
    /// Sending: the ledger, the subscriber list, a message that cannot be built.
    #[error(transparent)]
    Send(#[from] crate::send::SendError),
    /// The ledger, read on its own (`bulletin status`).
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A refusal to send (the issue changed, another run holds it), and what to do about it
    /// on the command line: the library's errors name no flag.
    #[error("{source}; {hint}")]
    Refused {
        #[source]
        source: crate::send::SendError,
        hint: &'static str,
    },
    /// bulletin.toml cannot be read or is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The runtime that drives network work cannot start (out of threads or memory).
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::NoWorkspace(_) => 2,
            Error::Transport(crate::transport::TransportError::NoProfile { .. }) => 2,
            _ => 1,
        }
    }
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
        Command::Check(args) => cmd::check::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Status(args) => cmd::status::run(args),
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
