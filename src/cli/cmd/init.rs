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
/// placeholder image, layouts/default/theme.toml (your organisation's name, postal address,
/// website, social links and logo, as every email shows them; each explained),
/// schema/issue.schema.json (so that editors complete the issue's fields),
/// subscribers.example.csv and a .gitignore. DIR is created if missing. Nothing is ever
/// replaced: if one of these files exists, nothing is written. bulletin check reports every
/// placeholder of these files left as it is.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin init news && cd news && bulletin preview\n  bulletin init --layout-copy"
)]
pub struct Args {
    /// The workspace folder (default: the current folder).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also copy the default layout into DIR/layouts/default/ to change its templates there,
    /// with every key of its theme in theme.default.toml to copy from; render and preview use
    /// it from then on. In an existing workspace, copies only the layout.
    #[arg(long)]
    pub layout_copy: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    let today = clock::today();
    let dir = match args.dir {
        Some(dir) => dir,
        None => default_dir(args.layout_copy)?,
    };
    let created = workspace::create(&Options {
        dir: dir.clone(),
        today,
        layout_copy: args.layout_copy,
    })
    .map_err(|e| match e {
        workspace::WorkspaceError::Exists { .. } if dir.join(workspace::CONFIG).is_file() => {
            Error::Hinted {
                error: Box::new(e.into()),
                hint: format!(
                    "{} is a workspace already; to copy the default layout into it: bulletin init --layout-copy{}",
                    shown_dir(&dir),
                    if workspace::is_current_folder(&dir) {
                        String::new()
                    } else {
                        format!(" {}", shell_word(&dir))
                    }
                ),
            }
        }
        e => e.into(),
    })?;
    let mut list = String::new();
    for path in &created.written {
        list.push_str(&format!("{}\n", workspace::shown(&dir, path).display()));
    }
    say(&list);
    for path in &created.kept {
        note(&format!(
            "kept {}: the theme you have (every key of the built-in one is in {} to copy from)",
            workspace::shown(&dir, path).display(),
            workspace::shown(&dir, Path::new(workspace::THEME_DEFAULTS)).display()
        ));
    }
    if created.layout_only {
        note(&format!(
            "\nThe default layout is in {}: change its templates there. Render and preview use it.",
            workspace::shown(&dir, Path::new(workspace::LAYOUT_COPY)).display()
        ));
        return Ok(());
    }
    let issue = workspace::issue_path(today);
    let preview = format!("bulletin preview {}", issue.display());
    let next = if workspace::is_current_folder(&dir) {
        preview
    } else {
        format!("cd {} && {preview}", shell_word(&dir))
    };
    note(&format!(
        "\nNext: {next}\nThen put your organisation's details in {}, your settings in {} \
         and write your issue in {}; bulletin check shows what is left to replace.",
        workspace::ORGANISATION,
        workspace::CONFIG,
        issue.display(),
    ));
    Ok(())
}

/// The folder init works in when none is named: the current one; with `--layout-copy`, the
/// workspace around it. A new workspace is not made inside another one by accident.
fn default_dir(layout_copy: bool) -> Result<PathBuf, Error> {
    let here = self::here()?;
    match here.workspace {
        Some(ws) if !ws.is_here() && layout_copy => Ok(ws.rel),
        Some(ws) if !ws.is_here() => Err(Error::Usage(format!(
            "this folder is inside the workspace in {} ({}): bulletin init makes a new one; \
             name its folder to make one here anyway (bulletin init DIR), or use --layout-copy \
             to copy the default layout into this workspace",
            ws.rel.display(),
            ws.abs.display()
        ))),
        _ => Ok(PathBuf::from(".")),
    }
}

/// A folder as the user names it: "this folder" for the current one.
fn shown_dir(dir: &Path) -> String {
    if workspace::is_current_folder(dir) {
        "this folder".to_string()
    } else {
        dir.display().to_string()
    }
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
    /// The workspace's `[archive]`, if there is a workspace and it publishes a web edition.
    pub fn archive(&self) -> Result<Option<crate::config::Archive>, Error> {
        match &self.workspace {
            Some(ws) => Ok(crate::config::archive(&ws.abs)?),
            None => Ok(None),
        }
    }

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
