//! `bulletin preview`: serve an issue (or the list of issues) with live reload. Glue only:
//! serving, watching and rendering are [`crate::preview`]'s.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::cli::{Error, say, warn};
use crate::preview::{self, DEFAULT_PORT, Options, Outcome, PreviewError};

/// Preview an issue in the browser as you write it.
///
/// Serves the issue on 127.0.0.1 and opens your browser on it: the subject and preheader as an
/// inbox shows them, the HTML at desktop and phone widths side by side, the plain-text part,
/// the HTML size, and a dark-mode view. Saving the issue, a body file, an image or a layout
/// file updates the page by itself; a render error shows over the last good render until
/// it is fixed. Without ISSUE, the page lists the issues in the workspace's issues/ (the
/// workspace is found upward from the current folder). Stop with Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin preview issues/2020-06.json\n  bulletin preview --no-open --port 8080\n  bulletin preview issues/2020-06.json --layout layouts/test\n  bulletin preview --bind 0.0.0.0 --host news.local"
)]
pub struct Args {
    /// The issue file to show; without it, the issues in the workspace's issues/ are listed.
    pub issue: Option<PathBuf>,
    /// The port to use; if it is taken, the next free one is used and printed.
    #[arg(long, short, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Do not open a browser.
    #[arg(long)]
    pub no_open: bool,
    // The same layout choice as render, check and send.
    #[arg(long, value_name = "DIR", help = super::render::LAYOUT_HELP)]
    pub layout: Option<PathBuf>,
    /// The address to listen on. The default, 127.0.0.1, keeps the preview on this machine;
    /// 0.0.0.0 shows it to your network: the address printed then carries a key, without which
    /// the readers of --list are not shown.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// A host name the preview answers to, besides localhost and this machine's own names
    /// (repeatable): a name it has on your network or in a hosts file. Requests addressed to
    /// any other name are refused, so that no web page can reach the preview through a name
    /// of its own.
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Look for changes by polling the files, for folders where change notifications do not
    /// arrive (network drives, some containers).
    #[arg(long)]
    pub poll: bool,
    /// A subscriber list (CSV): the page then lets you pick one of its readers and shows the
    /// issue as they would see it.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = super::init::here()?;
    let issues_dir = match &args.issue {
        Some(issue) => issue
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
        None => here.folder("issues"),
    };
    if args.issue.is_none() && !issues_dir.is_dir() {
        let message = match &here.workspace {
            Some(ws) => format!(
                "the workspace in {} has no issues/ folder: name an issue file, or start one with bulletin new",
                ws.rel.display()
            ),
            None => "no bulletin.toml in this folder or any folder above it, and no issues/ \
                     folder here: run bulletin preview in a workspace (bulletin init makes one), \
                     or name an issue file"
                .to_string(),
        };
        return Err(Error::Usage(message));
    }
    let running = preview::start(Options {
        issue: args.issue,
        issues_dir,
        layout: args.layout,
        archive: here.archive()?,
        bind: args.bind,
        port: args.port,
        poll: args.poll,
        list: args.list.clone(),
        hosts: args.hosts,
    })
    .map_err(|e| match e {
        PreviewError::NoPort { .. } => Error::Hinted {
            error: Box::new(e.into()),
            hint: "pass another port with --port".into(),
        },
        e => e.into(),
    })?;
    if let Some(port) = running.asked_port_taken {
        warn(&format!("port {port} is taken; using the next free one"));
    }
    say(&format!("Preview: {}\n", running.url));
    if let Some(local) = &running.local_url {
        let readers = if args.list.is_some() {
            "The readers of --list (names and addresses) are shown only at the address above, \
             with its key: share it only with who may see them"
        } else {
            "Readers of a --list would be shown only at the address above, with its key"
        };
        warn(&format!(
            "the preview is visible to your network (--bind {}): anyone who can reach this \
             machine can see the issue. {readers}",
            args.bind
        ));
        say(&format!("On this machine: {local}\n"));
    }
    say("Press Ctrl-C to stop.\n");
    let open = running.local_url.as_ref().unwrap_or(&running.url);
    if !args.no_open && webbrowser::open(open).is_err() {
        warn("could not open a browser; open the address above yourself");
    }
    running.run(report)?;
    say("Stopped.\n");
    Ok(())
}

/// A path as the user would name it from here: relative when it is below the current folder.
fn shown_path(path: &std::path::Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
}

/// One line per render on stderr, so the terminal shows what the page shows.
fn report(outcome: Outcome) {
    let mut err = std::io::stderr().lock();
    let _ = match outcome {
        Outcome::Rendered { slug, took } => {
            writeln!(err, "rendered {slug} in {} ms", took.as_millis())
        }
        Outcome::Failed { message, .. } => write!(err, "{message}"),
        Outcome::NotWatched { path, reason } => writeln!(
            err,
            "warning: not watching {}: {reason}; changes there will not show",
            shown_path(&path).display()
        ),
    };
}
