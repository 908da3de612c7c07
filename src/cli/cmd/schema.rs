//! `bulletin schema`: prints the JSON Schema of the issue format.

use std::path::PathBuf;

use crate::cli::{Error, say};

/// Print the JSON Schema of the issue format.
///
/// Issue files name it with "$schema" so that editors (VS Code, JetBrains, Zed…) offer
/// completion and check fields as you type. The repository keeps a copy in
/// schema/issue.schema.json. The fields a layout declares for its own section kinds
/// (its fields.toml) are included: the workspace's layouts/default/, or the one given.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A layout folder whose declared fields to include (default: the workspace's layout).
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let folder = args
        .layout
        .or_else(|| crate::layout::workspace_layout(std::path::Path::new(".")));
    let layout = crate::layout::Layout::load(folder.as_deref())?;
    say(&crate::issue::json_schema_with(layout.fields()));
    Ok(())
}
