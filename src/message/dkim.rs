//! DKIM signing by bulletin: the key read from the file a profile names, the headers the
//! signature covers (List-Unsubscribe and List-Unsubscribe-Post among them, as RFC 8058 asks
//! for one-click unsubscribe, and Feedback-ID, which Gmail counts only when signed), and
//! whether the signing domain aligns with the From address for DMARC. Signing itself is
//! lettre's, when the MIME message is built.
//!
//! Keys are read as today's tools write them (issue 14): OpenSSL 3's `openssl genrsa` writes
//! PKCS#8 (`BEGIN PRIVATE KEY`), which lettre does not read; it takes RSA in PKCS#1 and
//! Ed25519 as 32 bytes in base64. So a PKCS#8 key is decoded here (RSA with `rsa`, Ed25519
//! (RFC 8463) with `ed25519-dalek`) and handed to lettre in the form it takes.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use lettre::Address;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use pkcs8::{ObjectIdentifier, PrivateKeyInfo, SecretDocument};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};

use crate::audience::idn;
use crate::config::Config;
use crate::values::Dkim;

/// The key formats bulletin reads, as the errors say them.
const FORMATS: &str = "bulletin reads PEM private keys: RSA in PKCS#8 (\"BEGIN PRIVATE KEY\", what `openssl genrsa` writes on OpenSSL 3) or PKCS#1 (\"BEGIN RSA PRIVATE KEY\", `openssl genrsa -traditional`), and Ed25519 in PKCS#8 (`openssl genpkey -algorithm ed25519`)";

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why the DKIM key cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key {}: {}", path.display(), crate::diag::io_reason(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the DKIM key {} cannot be used: {source}; {FORMATS}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
}

/// What is wrong with a key file's contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("it is not a PEM private key")]
    NotPem,
    #[error("it holds a \"{0}\", not a private key")]
    NotPrivate(String),
    #[error(
        "it is encrypted; write it out without a passphrase first (openssl pkey -in KEY -out PLAIN.pem)"
    )]
    Encrypted,
    #[error("it is {0} key; DKIM signs with RSA or Ed25519")]
    Algorithm(String),
    #[error("it is not a valid {kind} key ({reason})")]
    Invalid { kind: &'static str, reason: String },
}

/// The signing set-up of a profile's `dkim` table: its key (PEM, see [`signing_key`]) read from
/// `private_key_file`, relative to `base` (the workspace).
pub fn load(dkim: &Dkim, base: &Path) -> Result<DkimConfig, DkimError> {
    let path = base.join(&dkim.private_key_file);
    let pem = std::fs::read_to_string(&path).map_err(|source| DkimError::Read {
        path: path.clone(),
        source,
    })?;
    let key = signing_key(&pem).map_err(|source| DkimError::Key { path, source })?;
    Ok(dkim_config(&dkim.selector, &dkim.domain, key))
}

/// The key in a PEM file, in the form lettre signs with: RSA in PKCS#8 (`BEGIN PRIVATE KEY`,
/// what `openssl genrsa` writes on OpenSSL 3) or PKCS#1 (`BEGIN RSA PRIVATE KEY`), Ed25519 in
/// PKCS#8 (`openssl genpkey -algorithm ed25519`), or lettre's own Ed25519 form (its 32 bytes
/// in base64).
pub fn signing_key(text: &str) -> Result<DkimSigningKey, KeyError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let Some((label, block)) = pem_block(text) else {
        // lettre's own form of an Ed25519 key: its 32 bytes in base64.
        return match STANDARD.decode(text) {
            Ok(bytes) if bytes.len() == 32 => ed25519_key(&bytes),
            _ => Err(KeyError::NotPem),
        };
    };
    let invalid = |kind, reason: String| KeyError::Invalid { kind, reason };
    match label {
        "RSA PRIVATE KEY" => DkimSigningKey::new(block, DkimSigningAlgorithm::Rsa)
            .map_err(|e| invalid("RSA", e.to_string())),
        "PRIVATE KEY" => {
            let der = SecretDocument::from_pem(block)
                .map_err(|e| invalid("PKCS#8", e.to_string()))?
                .1;
            let info = PrivateKeyInfo::try_from(der.as_bytes())
                .map_err(|e| invalid("PKCS#8", e.to_string()))?;
            match info.algorithm.oid {
                RSA => {
                    // lettre reads PKCS#1 only: the same key, written the way it reads.
                    let key = rsa::RsaPrivateKey::try_from(info)
                        .map_err(|e| invalid("RSA", e.to_string()))?;
                    let pkcs1 = key
                        .to_pkcs1_pem(LineEnding::LF)
                        .map_err(|e| invalid("RSA", e.to_string()))?;
                    DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                        .map_err(|e| invalid("RSA", e.to_string()))
                }
                ED25519 => {
                    let key = ed25519_dalek::SigningKey::from_pkcs8_der(der.as_bytes())
                        .map_err(|e| invalid("Ed25519", e.to_string()))?;
                    ed25519_key(&key.to_bytes())
                }
                other => Err(KeyError::Algorithm(algorithm_name(other))),
            }
        }
        "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
        "EC PRIVATE KEY" => Err(KeyError::Algorithm("an EC (ECDSA)".into())),
        other => Err(KeyError::NotPrivate(other.to_string())),
    }
}

fn ed25519_key(bytes: &[u8]) -> Result<DkimSigningKey, KeyError> {
    DkimSigningKey::new(&STANDARD.encode(bytes), DkimSigningAlgorithm::Ed25519).map_err(|e| {
        KeyError::Invalid {
            kind: "Ed25519",
            reason: e.to_string(),
        }
    })
}

/// The first PEM block that holds a private key (or else the first block): its label and
/// the block itself, from BEGIN to END. OpenSSL may write parameters before the key.
fn pem_block(text: &str) -> Option<(&str, &str)> {
    let mut first = None;
    let mut rest = text;
    while let Some(at) = rest.find("-----BEGIN ") {
        let from = &rest[at..];
        let label_end = from["-----BEGIN ".len()..].find("-----")? + "-----BEGIN ".len();
        let label = &from["-----BEGIN ".len()..label_end];
        let end_line = format!("-----END {label}-----");
        let block = match from.find(&end_line) {
            Some(end) => &from[..end + end_line.len()],
            None => from,
        };
        if label.ends_with("PRIVATE KEY") {
            return Some((label, block));
        }
        first.get_or_insert((label, block));
        rest = &from[block.len()..];
    }
    first
}

/// A key algorithm as people know it, by its OID.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "an EC (ECDSA)".into(),
        "1.3.101.113" => "an Ed448".into(),
        "1.3.101.110" | "1.3.101.111" => "an X25519 or X448 (key agreement)".into(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS (RSA restricted to PSS)".into(),
        "1.2.840.10040.4.1" => "a DSA".into(),
        other => format!("an unknown ({other})"),
    }
}

/// A signing domain that DMARC may not count for the From address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "DKIM signs for {dkim} (profiles.{profile}.dkim.domain), which is not the From address's domain {from} nor a parent of it: DMARC checks that the two align, so receivers may not count the signature; sign with domain = \"{from}\" (or its parent)"
)]
pub struct Misaligned {
    pub profile: String,
    pub dkim: String,
    pub from: String,
}

/// The profile `profile` of `config` signs for a domain DMARC may not count for the sender's
/// From address (see [`alignment`]); `None` when it does, or does not sign.
pub fn misaligned(config: &Config, profile: &str) -> Option<Misaligned> {
    let dkim = config.dkim(profile)?;
    alignment(profile, dkim, &config.sender.from.email).err()
}

/// Whether the signature of `dkim` counts for mail from `from` under DMARC's relaxed
/// alignment, taken simply: the DKIM domain is From's domain or a parent of it (with a dot in
/// it: never a bare top-level domain). DMARC compares organisational domains, which needs the
/// public suffix list. This simpler rule warns where DMARC would not when d= is a subdomain of
/// From's domain or a sibling of it, and takes a public suffix such as `co.uk` for a parent
/// (no one can sign for one anyway).
pub fn alignment(profile: &str, dkim: &Dkim, from: &Address) -> Result<(), Misaligned> {
    let ascii = |domain: &str| {
        idna::domain_to_ascii(domain.trim_end_matches('.'))
            .unwrap_or_else(|_| domain.to_lowercase())
    };
    let d = ascii(&dkim.domain);
    let from_domain = ascii(idn::ascii(from).domain());
    let parent = from_domain
        .strip_suffix(d.as_str())
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
    if parent && d.contains('.') {
        Ok(())
    } else {
        Err(Misaligned {
            profile: profile.to_string(),
            dkim: dkim.domain.clone(),
            from: idn::display(from)
                .rsplit_once('@')
                .map_or_else(String::new, |(_, d)| d.to_string()),
        })
    }
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
        "Feedback-ID",
        "MIME-Version",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    // The d= tag is ASCII: an internationalised domain in its A-label form.
    let domain = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_string());
    DkimConfig::new(
        selector.to_string(),
        domain,
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

    /// RFC 8410's example Ed25519 private key (section 10.3), as OpenSSL writes one.
    const ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

    /// A key made by `openssl ARGS` (on stdout).
    fn openssl(args: &[&str]) -> String {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn algorithm(key: &DkimSigningKey) -> String {
        // lettre keeps the algorithm to itself; its Debug says which.
        let debug = format!("{key:?}");
        if debug.contains("Rsa(") {
            "rsa".into()
        } else if debug.contains("Ed25519(") {
            "ed25519".into()
        } else {
            debug
        }
    }

    #[test]
    fn keys_as_openssl_writes_them_are_read() {
        let pkcs8 = openssl(&["genrsa", "1024"]);
        let pkcs1 = openssl(&["genrsa", "-traditional", "1024"]);
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let ed25519 = openssl(&["genpkey", "-algorithm", "ed25519"]);
        for (pem, expected) in [
            (pkcs8.as_str(), "rsa"),
            (pkcs1.as_str(), "rsa"),
            (ed25519.as_str(), "ed25519"),
            (ED25519_PKCS8, "ed25519"),
            // lettre's own form of an Ed25519 key: 32 bytes in base64.
            ("1O5y2/kTWErVttjx92n4rTr+fCjL8dT74Jeoj0R1WEI=", "ed25519"),
        ] {
            let key = signing_key(pem).unwrap_or_else(|e| panic!("{e}: {pem}"));
            assert_eq!(algorithm(&key), expected, "{pem}");
        }
        // Notepad's byte-order mark, Windows line endings, and parameters before the key.
        let windows = format!("\u{feff}{}", ED25519_PKCS8.replace('\n', "\r\n"));
        assert!(signing_key(&windows).is_ok());
        let ec = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{ED25519_PKCS8}"
        );
        assert!(signing_key(&with_params).is_ok());
        let err = signing_key(&ec).unwrap_err().to_string();
        assert!(
            err.contains("it is an EC (ECDSA) key; DKIM signs with RSA or Ed25519"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key_file_and_the_formats_that_work() {
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
        let cases = [
            ("bad.key", "not a key".to_string(), "it is not a PEM private key"),
            (
                "encrypted.key",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
                "it is encrypted; write it out without a passphrase first",
            ),
            (
                "cert.pem",
                "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".into(),
                "it holds a \"CERTIFICATE\", not a private key",
            ),
            (
                "broken.key",
                ED25519_PKCS8.replace("MC4C", "MC5C"),
                "it is not a valid PKCS#8 key",
            ),
            (
                "rsa.key",
                "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n".into(),
                "it is not a valid RSA key",
            ),
        ];
        for (file, contents, why) in cases {
            std::fs::write(dir.path().join(file), contents).unwrap();
            let err = load(&dkim(file), dir.path()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("the DKIM key ")
                    && text.contains(&format!("{file} cannot be used: {why}"))
                    && text.contains("PKCS#8")
                    && text.contains("PKCS#1")
                    && text.contains("Ed25519"),
                "{text}"
            );
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    #[test]
    fn the_signing_domain_aligns_when_it_is_from_s_domain_or_a_parent() {
        let from = |a: &str| a.parse::<Address>().unwrap();
        let signing = |domain: &str| Dkim {
            domain: domain.into(),
            ..dkim("k")
        };
        for (d, address) in [
            ("example.org", "news@example.org"),
            ("Example.ORG", "news@example.org"),
            ("example.org", "news@lists.example.org"),
            ("münchen.example", "news@xn--mnchen-3ya.example"),
            ("xn--mnchen-3ya.example", "news@münchen.example"),
        ] {
            assert_eq!(
                alignment("p", &signing(d), &from(address)),
                Ok(()),
                "{d} {address}"
            );
        }
        for (d, address) in [
            ("other.example", "news@example.org"),
            ("ample.org", "news@example.org"),
            ("org", "news@example.org"),
            ("mail.example.org", "news@example.org"),
        ] {
            assert!(
                alignment("p", &signing(d), &from(address)).is_err(),
                "{d} {address}"
            );
        }
        let err = alignment(
            "default",
            &signing("other.example"),
            &from("news@münchen.example"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("DKIM signs for other.example (profiles.default.dkim.domain), which is not the From address's domain münchen.example"),
            "{err}"
        );
    }
}
