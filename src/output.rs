//! Writing outputs atomically: a file appears whole or not at all, so a crash or an error
//! never leaves a half-written email where a previous good one stood. What cannot be made
//! again is also flushed to the disk before it replaces the old file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An output that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {reason}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

/// Writes `contents` to `path` through a temporary file in the same folder, flushed to the
/// disk, then renames it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write(path, contents, Flush::ToDisk)
}

/// As [`write_atomic`], without waiting for the disk: for what a command makes again from
/// its inputs (`render`'s email files). A crash of the process still leaves the old file or
/// the new one, whole; only a crash of the machine may lose the newest write, and running the
/// command again restores it. Waiting for the disk costs about a millisecond a file, more
/// than rendering the email.
pub fn write_regenerable(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write(path, contents, Flush::Never)
}

#[derive(PartialEq)]
enum Flush {
    ToDisk,
    Never,
}

fn write(path: &Path, contents: &[u8], flush: Flush) -> Result<(), WriteError> {
    let err = |e: std::io::Error| WriteError {
        path: path.to_path_buf(),
        reason: crate::diag::io_reason(&e),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".bulletin-");
    // A temporary file is private (0600); an output is an ordinary file others may read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(err)?;
    tmp.write_all(contents).map_err(err)?;
    if flush == Flush::ToDisk {
        tmp.as_file().sync_all().map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
