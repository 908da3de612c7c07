//! DKIM signing by bulletin: the key read from the file a profile names, and the headers the
//! signature covers (List-Unsubscribe and List-Unsubscribe-Post among them, as RFC 8058 asks
//! for one-click unsubscribe). Signing itself is lettre's, when the MIME message is built.

use std::path::{Path, PathBuf};

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey, DkimSigningKeyError,
};
use lettre::message::header::HeaderName;

use crate::config::Dkim;

/// Why the DKIM key cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key {}: {}", path.display(), crate::diag::io_reason(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key {} is not an RSA private key: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: DkimSigningKeyError,
    },
}

/// The signing set-up of a profile's `dkim` table: its RSA key (PEM) read from
/// `private_key_file`, relative to `base` (the workspace).
pub fn load(dkim: &Dkim, base: &Path) -> Result<DkimConfig, DkimError> {
    let path = base.join(&dkim.private_key_file);
    let pem = std::fs::read_to_string(&path).map_err(|source| DkimError::Read {
        path: path.clone(),
        source,
    })?;
    let key = DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        .map_err(|source| DkimError::Key { path, source })?;
    Ok(dkim_config(&dkim.selector, &dkim.domain, key))
}

/// Headers that must be signed for receivers to honour one-click unsubscribe (RFC 8058).
pub fn dkim_config(selector: &str, domain: &str, key: DkimSigningKey) -> DkimConfig {
    // Not Content-Type: lettre signs it as it was before the multipart boundary was set, so
    // verifiers (dkimpy) reject the signature.
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dkim(file: &str) -> Dkim {
        Dkim {
            domain: "example.org".into(),
            selector: "news".into(),
            private_key_file: file.into(),
        }
    }

    #[test]
    fn errors_name_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dkim("missing.key"), dir.path()).unwrap_err();
        assert!(matches!(err, DkimError::Read { .. }), "{err}");
        assert!(
            err.to_string().starts_with("cannot read the DKIM key ")
                && err
                    .to_string()
                    .contains("missing.key: no such file or folder"),
            "{err}"
        );
        std::fs::write(dir.path().join("bad.key"), "not a key").unwrap();
        let err = load(&dkim("bad.key"), dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("bad.key is not an RSA private key"),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
