//! The file transport: each message written as `<folder>/<recipient>.eml`, atomically, for
//! `--dry-run` (read them, open them in a mail program) and for tests. It takes MIME bytes and
//! writes only into its folder.

use std::path::PathBuf;

use super::{Accepted, Failure, Kind, Transport};
use crate::message::Outgoing;

/// Writes messages into a folder.
pub struct FileTransport {
    pub dir: PathBuf,
}

impl Transport for FileTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        // An address is a safe file name once its few special characters are replaced.
        let bytes = message.mime().map_err(|e| Failure {
            kind: Kind::Permanent,
            reply: e.to_string(),
        })?;
        let name: String = message
            .envelope
            .to
            .to_string()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "@.-_+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        crate::output::write_atomic(&path, bytes).map_err(|e| Failure {
            kind: Kind::Unreachable,
            reply: e.to_string(),
        })?;
        Ok(Accepted {
            reply: format!("written to {}", path.display()),
        })
    }

    fn describe(&self) -> String {
        format!("dry run: .eml files in {}", self.dir.display())
    }
}
