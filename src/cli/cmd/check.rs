//! `bulletin check`: render the issue as it will be sent and report what is wrong before it
//! goes out. Glue only: the edition is [`crate::edition`]'s, the rules and the report
//! (order, counts, summary, whether it fails) are [`crate::check`]'s; this file prints them
//! and draws the progress bar, which names the link it waits on after a second.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::check::report::{self, Report};
use crate::check::{self, Finding, links};
use crate::cli::{Error, note, say};
use crate::edition::{self, Images};

/// Check an issue before it goes out.
///
/// Renders the issue and reports problems like a compiler, each with its file, line:column and
/// JSON path, and which section and item that is, in words; in a body file, that file's own
/// line and column. Errors: anything render rejects, images without alt text, malformed URLs, links
/// that answer 4xx/5xx or cannot be reached, placeholder "TODO" text, no unsubscribe link, HTML
/// over Gmail's 102 KB, an image that is a file (the issue's or the layout's, such as its logo)
/// without "images_url". Whatever would make bulletin send refuse the issue is an error
/// here. Warnings: HTML over 80 KB, a long, all-capitals or "!!!" subject, no
/// preheader, an empty section, events before the issue date, agenda out of order, vague link text ("click
/// here"), images without width, low colour contrast in the theme, headings that skip a level,
/// remote images over 1 MB. Exits 1 on errors (or on warnings with --strict), 0 otherwise.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin check issues/2020-06.json\n  bulletin check issues/2020-06.json --offline --strict\n  bulletin check issues/2020-06.json --json | jq -r .message"
)]
pub struct Args {
    /// The issue file (JSON).
    pub issue: PathBuf,
    /// Do not check links and remote images over the network.
    #[arg(long)]
    pub offline: bool,
    /// Print one JSON object per finding (one per line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
    // The same layout choice as render, preview and send.
    #[arg(long, value_name = "DIR", help = super::render::LAYOUT_HELP)]
    pub layout: Option<PathBuf>,
    /// Seconds to wait for each link to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
}

pub fn run(args: Args) -> Result<(), Error> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero() && t.as_secs() <= 3600)
        .ok_or_else(|| {
            Error::Usage("--timeout takes a number of seconds from above 0 to 3600".into())
        })?;
    let here = super::init::here()?;
    let archive = here.archive()?;
    let site = archive.as_ref().map(|a| {
        let site = crate::publish::site_folder(&here.folder("."), Some(a));
        (crate::workspace::lexical(&site), a.base_url.to_string())
    });
    let (findings, links_checked) = find(&args, timeout, archive, site)?;
    let report = Report::new(findings, links_checked);
    let out = if args.json {
        report
            .findings()
            .iter()
            .map(|f| format!("{}\n", f.to_json()))
            .collect()
    } else {
        lines(report.findings())
    };
    if args.json {
        say(&out);
        note(&report.summary());
    } else {
        say(&(out + &report.summary()));
    }
    if report.fails(args.strict) {
        return Err(Error::Failed);
    }
    Ok(())
}

/// Everything found, and how many links were checked (none with --offline). An issue that
/// does not render is reported like any other finding; only what is not about the issue
/// (an unreadable file) stops the check.
fn find(
    args: &Args,
    timeout: Duration,
    archive: Option<crate::config::Archive>,
    site: Option<(PathBuf, String)>,
) -> Result<(Vec<Finding>, Option<usize>), Error> {
    let prepared = edition::prepare(&edition::Options {
        issue: args.issue.clone(),
        layout: args.layout.clone(),
        images: Images::Sent,
        archive: archive.clone(),
    });
    let edition = match prepared {
        Ok(e) => e,
        Err(e) => return Ok((check::unprepared(&args.issue, e)?, None)),
    };
    let mut findings = check::inspect(&edition);
    if let (Some(archive), Some((site, base_url))) = (&archive, &site) {
        let missing = crate::publish::unpublished_images(&edition, archive, site);
        findings.extend(report::unpublished(
            &edition,
            &missing,
            site,
            base_url,
            args.offline,
        ));
    }
    let (loaded, layout) = (&edition.issue, &edition.layout);
    if args.offline {
        return Ok((findings, None));
    }
    let targets = links::targets(loaded, layout, &check::own_html(&edition.rendered));
    let count = targets.len();
    let opts = links::LinkOptions {
        timeout,
        ..Default::default()
    };
    let waiting = Arc::new(links::Waiting::default());
    let bar = ProgressBar::start(count as u64, args.json, Arc::clone(&waiting));
    let found = links::check_blocking(loaded, targets, &opts, waiting);
    bar.finish();
    findings.extend(found?);
    Ok((findings, Some(count)))
}

/// How long a link is waited on before the bar names it.
const NAME_AFTER: Duration = Duration::from_secs(1);

/// A progress bar on stderr, when stderr is a terminal and the output is for people: how many
/// links are checked, and the one it is waiting on once that takes more than a second.
struct ProgressBar {
    bar: indicatif::ProgressBar,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    fn start(len: u64, json: bool, waiting: Arc<links::Waiting>) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return ProgressBar {
                bar: indicatif::ProgressBar::hidden(),
                stop: None,
                ticker: None,
            };
        }
        let bar = indicatif::ProgressBar::new(len);
        // The link waited on goes on a line of its own: a URL does not fit beside the bar in
        // a narrow terminal.
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "checking links {bar:30} {pos}/{len}\n{wide_msg}",
        ) {
            bar.set_style(style);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let shown = bar.clone();
        let ticker = std::thread::Builder::new()
            .name("bulletin-progress".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(200))
                {
                    shown.set_position(waiting.done() as u64);
                    let message = waiting
                        .longest(Instant::now(), NAME_AFTER)
                        .map(|(url, waited)| format!("waiting for {url} ({} s)", waited.as_secs()))
                        .unwrap_or_default();
                    shown.set_message(message);
                }
            })
            .ok();
        ProgressBar {
            bar,
            stop: Some(stop),
            ticker,
        }
    }

    fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Findings as people read them, one a line: `error: issue.json:4:12: title: …`.
pub(crate) fn lines(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{f}\n")).collect()
}
