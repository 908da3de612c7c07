//! `bulletin check`: render the issue and report what is wrong before it goes out.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::check::{self, Finding, links};
use crate::cli::{Error, note, say};
use crate::issue::{self, IssueError, Problem};
use crate::layout::Layout;
use crate::render::{self, RenderError, RenderOptions};

/// Check an issue before it goes out.
///
/// Renders the issue and reports problems like a compiler, each with its file, line:column and
/// JSON path. Errors: anything render rejects, images without alt text, malformed URLs, links
/// that answer 4xx/5xx or cannot be reached, placeholder "TODO" text, no unsubscribe link, HTML
/// over Gmail's 102 KB. Warnings: HTML over 80 KB, a long, all-capitals or "!!!" subject, no
/// preheader, events before the issue date, agenda out of order, vague link text ("click
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
    /// A layout folder to use instead of the issue's or the default one.
    #[arg(long, value_name = "DIR")]
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
    let (mut findings, links_checked) = find(&args, timeout)?;
    findings.sort_by_key(|f| (f.severity, f.problem.position.unwrap_or((usize::MAX, 0))));
    let (errors, warnings) = check::counts(&findings);
    let summary = summary(errors, warnings, links_checked);
    let mut out = String::new();
    for f in &findings {
        if args.json {
            out.push_str(&f.to_json().to_string());
        } else {
            out.push_str(&f.to_string());
        }
        out.push('\n');
    }
    if args.json {
        say(&out);
        note(&summary);
    } else {
        say(&(out + &summary));
    }
    if errors > 0 || (args.strict && warnings > 0) {
        return Err(Error::Failed);
    }
    Ok(())
}

/// Everything found, and how many links were checked (none with --offline). An issue that
/// does not render is reported like any other finding; only what is not about the issue
/// (an unreadable file) stops the check.
fn find(args: &Args, timeout: Duration) -> Result<(Vec<Finding>, Option<usize>), Error> {
    let loaded = match issue::load(&args.issue) {
        Ok(l) => l,
        Err(IssueError::Invalid(problems)) => return Ok((check::from_problems(problems), None)),
        Err(e) => return Err(e.into()),
    };
    let layout = match Layout::for_issue(args.layout.as_deref(), &loaded) {
        Ok(l) => l,
        Err(e) => return Ok((vec![check::unrendered(&loaded.path, &e.to_string())], None)),
    };
    let rendered = match render::render(&loaded, &layout, &RenderOptions::default()) {
        Ok(r) => r,
        Err(RenderError::Issue(problems)) => return Ok((check::from_problems(problems), None)),
        Err(RenderError::Template {
            file,
            line,
            column,
            message,
        }) => {
            let problem = Problem {
                file: file.into(),
                position: line.zip(column),
                json_path: String::new(),
                message: format!("template error: {message}"),
            };
            return Ok((vec![Finding::error(problem)], None));
        }
        Err(e) => return Ok((vec![check::unrendered(&loaded.path, &e.to_string())], None)),
    };
    let mut findings = check::inspect(&loaded, &layout, &rendered);
    if args.offline {
        return Ok((findings, None));
    }
    let targets = links::targets(&loaded, &check::own_html(&rendered));
    let count = targets.len();
    let bar = progress_bar(count as u64, args.json);
    let tick = bar.clone();
    let opts = links::LinkOptions {
        timeout,
        ..Default::default()
    };
    let theme = check::theme_file(&layout);
    let found = links::check_blocking(&loaded, &theme, targets, &opts, move || tick.inc(1))
        .map_err(Error::Other)?;
    bar.finish_and_clear();
    findings.extend(found);
    Ok((findings, Some(count)))
}

/// A progress bar on stderr, when stderr is a terminal and the output is for people.
fn progress_bar(len: u64, json: bool) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("checking links {bar:30} {pos}/{len} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// "2 errors, 1 warning (37 links checked)"
fn summary(errors: usize, warnings: usize, links: Option<usize>) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let found = if errors + warnings == 0 {
        "no problems found".to_string()
    } else {
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    };
    let links = match links {
        Some(n) => format!(" ({} checked)", plural(n, "link")),
        None => " (links not checked)".to_string(),
    };
    format!("{found}{links}\n")
}
