//! `bulletin init`: a new workspace, from nothing to a previewed issue in two commands.
//!
//! Glue only: what a workspace holds and how it is created is [`crate::workspace`]'s.

use std::path::{Path, PathBuf};

use crate::cli::{Error, note, say};
use crate::clock;
use crate::workspace::{self, Found, Options};

/// Create a newsletter workspace.
///
/// Writes bulletin.toml (who sends, how readers unsubscribe, how mail is sent; every setting
/// explained), a starter issue for this month in issues/ that shows every section kind, its
/// placeholder image, schema/issue.schema.json (so that editors complete the issue's
/// fields), subscribers.example.csv and a .gitignore. DIR is created if missing. Nothing is
/// ever replaced: if one of these files exists, nothing is written.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin init news && cd news && bulletin preview\n  bulletin init --layout-copy"
)]
pub struct Args {
    /// The workspace folder (default: the current folder).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Also copy the default layout into DIR/layouts/default/ to change its templates and
    /// theme there; render and preview use it from then on.
    #[arg(long)]
    pub layout_copy: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let today = clock::today();
    let written = workspace::create(&Options {
        dir: args.dir.clone(),
        today,
        layout_copy: args.layout_copy,
    })?;
    let mut list = String::new();
    for path in &written {
        list.push_str(&format!(
            "{}\n",
            workspace::shown(&args.dir, path).display()
        ));
    }
    say(&list);
    let issue = workspace::issue_path(today);
    let preview = format!("bulletin preview {}", issue.display());
    let next = if workspace::is_current_folder(&args.dir) {
        preview
    } else {
        format!("cd {} && {preview}", shell_word(&args.dir))
    };
    note(&format!(
        "\nNext: {next}\nThen write your issue in {} and your settings in {}.",
        issue.display(),
        workspace::CONFIG
    ));
    Ok(())
}

/// A path as one shell word: quoted when it holds spaces or shell characters.
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    let plain = s
        .chars()
        .all(|c| c.is_alphanumeric() || "/._-~+,:@".contains(c));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Where a command runs: the current folder, and the workspace around it.
pub(crate) struct Here {
    /// The current folder, absolute.
    pub cwd: PathBuf,
    /// The nearest folder with a `bulletin.toml`, from the current one up.
    pub workspace: Option<Found>,
}

impl Here {
    /// `path` as the user reaches it from the current folder.
    pub fn shown(&self, path: &Path) -> PathBuf {
        workspace::from_here(&self.cwd, path)
    }

    /// A folder of the workspace (`issues`, `out`) as reached from here, or `name` in the
    /// current folder outside any workspace.
    pub fn folder(&self, name: &str) -> PathBuf {
        match &self.workspace {
            Some(ws) if !ws.is_here() => ws.rel.join(name),
            _ => PathBuf::from(name),
        }
    }
}

/// The workspace around the current folder, found as git and cargo find theirs, by looking
/// upward; which it is is said on stderr when it is not the current folder (issue 13).
pub(crate) fn here() -> Result<Here, Error> {
    let cwd = std::env::current_dir().map_err(Error::CurrentDir)?;
    let workspace = workspace::around(&cwd);
    if let Some(ws) = &workspace
        && !ws.is_here()
    {
        note(&format!(
            "using the workspace in {} ({})",
            ws.rel.display(),
            ws.abs.display()
        ));
    }
    Ok(Here { cwd, workspace })
}
