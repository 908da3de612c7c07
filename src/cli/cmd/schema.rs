//! `bulletin schema`: prints the JSON Schema of the issue format.

use crate::cli::{Error, say};

/// Print the JSON Schema of the issue format.
///
/// Issue files name it with "$schema" so that editors (VS Code, JetBrains, Zed…) offer
/// completion and check fields as you type. The repository keeps a copy in
/// schema/issue.schema.json.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> Result<(), Error> {
    say(&crate::issue::json_schema());
    Ok(())
}
