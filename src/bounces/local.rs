//! The bounce mailbox as files: a Maildir folder (what Dovecot, Postfix's `home_mailbox =
//! Maildir/` and most local delivery agents write) or an mbox file. Read with mail-parser's
//! mailbox readers.
//!
//! A handled Maildir message is renamed into the Maildir++ subfolder `.<handled folder>/`
//! (the folder IMAP clients and Dovecot show as `<handled folder>`), in the same `new/` or
//! `cur/` it was in, its name and flags kept; the rest are not touched. An mbox file is never
//! written: a report read again is recorded once (the store keeps each under the report's
//! Message-ID), and the summary says "already recorded".

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mail_parser::mailbox::{maildir, mbox};

use super::{BouncesError, Processor};

fn local(path: &Path, reason: impl Into<String>) -> BouncesError {
    BouncesError::Local {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A handled folder's name that is not one plain folder name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FolderError(String);

/// A handled folder's name, checked: one plain folder name.
pub fn check_folder(name: &str) -> Result<(), FolderError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    match plain {
        true => Ok(()),
        false => Err(FolderError(format!(
            "handled_folder = \"{name}\" must be one folder name, without '/' or a leading '.', e.g. \"{}\"",
            super::HANDLED
        ))),
    }
}

/// Reads every message of the Maildir at `dir` (its `new/` and `cur/`), records each, and
/// moves those handled into `dir/.<folder>/`, unless this is a dry run.
pub fn maildir(dir: &Path, folder: &str, processor: &mut Processor) -> Result<(), BouncesError> {
    check_folder(folder).map_err(|e| local(dir, e.to_string()))?;
    let messages = maildir::MessageIterator::new(dir).map_err(|e| {
        local(
            dir,
            format!(
                "not a Maildir folder ({}); give the folder that holds cur/, new/ and tmp/",
                crate::diag::io_reason(&e)
            ),
        )
    })?;
    let target = dir.join(format!(".{folder}"));
    for message in messages {
        let message = message.map_err(|e| local(dir, crate::diag::io_reason(&e)))?;
        let handled = processor.take(message.contents())?;
        if handled && !processor.summary.dry_run {
            move_into(message.path(), &target)?;
            processor.summary.moved += 1;
        }
    }
    Ok(())
}

/// Renames `file` (in `…/new/` or `…/cur/`) into the same subfolder of the Maildir++ folder
/// `target`, making the folder first if needed.
fn move_into(file: &Path, target: &Path) -> Result<(), BouncesError> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(target.join(sub))
            .map_err(|e| local(target, crate::diag::io_reason(&e)))?;
    }
    // Dovecot and Courier mark a Maildir++ subfolder with this empty file.
    let marker = target.join("maildirfolder");
    if !marker.exists() {
        fs::write(&marker, b"").map_err(|e| local(&marker, crate::diag::io_reason(&e)))?;
    }
    let sub = file
        .parent()
        .and_then(Path::file_name)
        .filter(|s| *s == "new")
        .map_or("cur", |_| "new");
    let name = file
        .file_name()
        .ok_or_else(|| local(file, "not a message file"))?;
    let to: PathBuf = target.join(sub).join(name);
    fs::rename(file, &to).map_err(|e| {
        local(
            file,
            format!(
                "cannot move it to {}: {}",
                to.display(),
                crate::diag::io_reason(&e)
            ),
        )
    })
}

/// Reads every message of the mbox file at `file` and records each; the file is not changed.
pub fn mbox(file: &Path, processor: &mut Processor) -> Result<(), BouncesError> {
    let opened = fs::File::open(file).map_err(|e| local(file, crate::diag::io_reason(&e)))?;
    let mut any = false;
    for message in mbox::MessageIterator::new(BufReader::new(opened)) {
        let message = message.map_err(|e| local(file, crate::diag::io_reason(&e)))?;
        any = true;
        processor.take(message.contents())?;
    }
    let empty = fs::metadata(file).map(|m| m.len() == 0).unwrap_or(false);
    if !any && !empty {
        return Err(local(
            file,
            "not an mbox file (no line starting with \"From \"); give the mailbox file itself, or --maildir for a Maildir folder",
        ));
    }
    Ok(())
}
