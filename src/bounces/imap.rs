//! The bounce mailbox over IMAP (RFC 3501) with TLS from the first byte (`imaps://`, port
//! 993): async-imap on tokio, TLS by rustls with the roots lettre's SMTP connections trust
//! (webpki-roots) and, for a private server, a CA file. There is no switch that turns
//! certificate checks off: a test server gets a CA of its own, given as `ca_file`.
//!
//! Every message of the folder is fetched with `BODY.PEEK[]` (which leaves it unread) in
//! batches by UID; those recorded are moved to the handled folder with `UID MOVE` (RFC 6851),
//! or, on a server without MOVE, `UID COPY`, `\Deleted` and `UID EXPUNGE` (RFC 4315; plain
//! `EXPUNGE` where UIDPLUS is missing too). The password is read from the environment by the
//! caller and never appears in a URL, a message or an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_stream::StreamExt;

use super::{BouncesError, Processor, Settings};
use crate::values::Secret;

/// How long connecting, TLS, the greeting and the login may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one command (a batch of fetches, a move) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Messages fetched per command.
const BATCH: usize = 50;

/// An IMAP mailbox, checked, with its password.
pub struct Mailbox {
    /// The URL as shown in messages: `imaps://user@host:port/folder`, never a password.
    pub shown: String,
    pub host: String,
    pub port: u16,
    pub folder: String,
    pub username: String,
    pub password: Secret,
    /// The variable the password came from, for the hint when the login is refused.
    pub password_env: String,
    /// A CA certificate (PEM) to trust besides the usual roots.
    pub ca_file: Option<PathBuf>,
    pub handled_folder: String,
}

/// What the URL gives: host, port, folder and, when it has one, the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
    pub folder: String,
    pub username: Option<String>,
}

/// What the command line gives besides `[bounces]`: `--imap` and `--password-env`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    pub imap: Option<&'a str>,
    pub password_env: Option<&'a str>,
}

/// Why no mailbox can be read, and whether the settings (`[bounces]`) or the command line are
/// at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MailboxError {
    pub in_settings: bool,
    pub message: String,
}

/// The IMAP mailbox from the command line (`given`) and `[bounces]`, checked, its password read.
pub fn mailbox(given: &Given<'_>, settings: &Settings) -> Result<Mailbox, MailboxError> {
    let fail = |from_flag: bool, message: String| MailboxError {
        in_settings: !from_flag,
        message,
    };
    let (url, from_flag) = match (given.imap, &settings.imap) {
        (Some(url), _) => (url, true),
        (None, Some(url)) => (url.as_str(), false),
        (None, None) => {
            return Err(fail(
                true,
                "no mailbox to read: set [bounces] imap in bulletin.toml (e.g. imap = \"imaps://newsletter@imap.example.org/INBOX\"), or give --imap URL, --maildir DIR or --mbox FILE".into(),
            ));
        }
    };
    let address = address(url).map_err(|e| fail(from_flag, e.to_string()))?;
    let username = address
        .username
        .clone()
        .or_else(|| settings.username.clone())
        .ok_or_else(|| {
            fail(
                from_flag,
                "no user name: put it in the URL (imaps://USER@HOST/INBOX) or set [bounces] username".to_string(),
            )
        })?;
    let (password_env, env_from_flag) = match (given.password_env, &settings.password_env) {
        (Some(name), _) => (name.to_string(), true),
        (None, Some(name)) => (name.clone(), false),
        (None, None) => {
            return Err(fail(
                true,
                "no password: set [bounces] password_env to the environment variable that holds it, or give --password-env NAME".into(),
            ));
        }
    };
    let password =
        Secret::from_env(&password_env).map_err(|e| fail(env_from_flag, e.to_string()))?;
    super::local::check_folder(&settings.handled_folder).map_err(|e| fail(false, e.to_string()))?;
    let user = percent_encoding::utf8_percent_encode(&username, USERINFO);
    let port = match address.port {
        993 => String::new(),
        port => format!(":{port}"),
    };
    Ok(Mailbox {
        shown: format!("imaps://{user}@{}{port}/{}", address.host, address.folder),
        host: address.host,
        port: address.port,
        folder: address.folder,
        username,
        password,
        password_env,
        ca_file: settings.ca_file.clone(),
        handled_folder: settings.handled_folder.clone(),
    })
}

/// What a user name keeps as it is in a URL.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A text that is not an `imaps://` mailbox URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(String);

/// Reads `imaps://[user@]host[:port][/folder]`.
pub fn address(text: &str) -> Result<Address, AddressError> {
    parse_address(text).map_err(AddressError)
}

fn parse_address(text: &str) -> Result<Address, String> {
    let example = "e.g. \"imaps://newsletter@imap.example.org/INBOX\"";
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("\"{text}\" is not an IMAP URL ({e}); write it in full, {example}"))?;
    match url.scheme() {
        "imaps" => {}
        "imap" => {
            return Err(format!(
                "\"{text}\": bulletin reads the bounce mailbox over TLS only; write imaps:// (port 993), {example}"
            ));
        }
        other => {
            return Err(format!(
                "\"{text}\" is a {other}: URL, not an IMAP one; {example}"
            ));
        }
    }
    if url.password().is_some() {
        // Not quoted back: the password must not reach a terminal or a log.
        return Err(
            "the IMAP URL has a password in it; take it out of the URL and name the environment variable that holds it (password_env, or --password-env)".into(),
        );
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("\"{text}\" has no server name; {example}"))?
        .trim_matches(['[', ']'])
        .to_string();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let folder = decode(url.path().trim_start_matches('/'));
    Ok(Address {
        host,
        port: url.port().unwrap_or(993),
        folder: if folder.is_empty() {
            "INBOX".into()
        } else {
            folder
        },
        username: Some(decode(url.username())).filter(|u| !u.is_empty()),
    })
}

fn failed(mailbox: &Mailbox, reason: impl Into<String>) -> BouncesError {
    BouncesError::Imap {
        url: mailbox.shown.clone(),
        reason: reason.into(),
    }
}

/// The TLS settings: the usual roots, and the CA file's certificates.
fn tls(mailbox: &Mailbox, base: &Path) -> Result<tokio_rustls::TlsConnector, BouncesError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = &mailbox.ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let path = base.join(ca);
        let pem = std::fs::read(&path).map_err(|e| BouncesError::Local {
            path: path.clone(),
            reason: format!(
                "cannot read the CA file ([bounces] ca_file): {}",
                crate::diag::io_reason(&e)
            ),
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| BouncesError::Local {
                path: path.clone(),
                reason: format!("not a PEM certificate ({e}); give the CA certificate, -----BEGIN CERTIFICATE-----"),
            })?;
            roots.add(cert).map_err(|e| BouncesError::Local {
                path: path.clone(),
                reason: format!("the certificate cannot be trusted as a CA: {e}"),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(BouncesError::Local {
                path,
                reason: "no certificate in it; give the CA certificate in PEM, -----BEGIN CERTIFICATE-----".into(),
            });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(mailbox, format!("TLS cannot be set up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Runs `step` within `limit`, or says what timed out.
async fn within<T>(
    mailbox: &Mailbox,
    limit: Duration,
    what: &str,
    step: impl Future<Output = Result<T, BouncesError>>,
) -> Result<T, BouncesError> {
    tokio::time::timeout(limit, step).await.map_err(|_| {
        failed(
            mailbox,
            format!("no answer in {} s while {what}", limit.as_secs()),
        )
    })?
}

type Imap = Session<TlsStream<TcpStream>>;

/// Connects, checks the certificate against the host name, reads the greeting and logs in.
async fn open(mailbox: &Mailbox, base: &Path) -> Result<Imap, BouncesError> {
    let connector = tls(mailbox, base)?;
    let name = rustls::pki_types::ServerName::try_from(mailbox.host.clone()).map_err(|_| {
        failed(
            mailbox,
            format!("\"{}\" is not a server name", mailbox.host),
        )
    })?;
    let tcp = TcpStream::connect((mailbox.host.as_str(), mailbox.port))
        .await
        .map_err(|e| {
            failed(
                mailbox,
                format!(
                    "cannot connect to {}:{} ({}); check the server name and port",
                    mailbox.host,
                    mailbox.port,
                    crate::diag::io_reason(&e)
                ),
            )
        })?;
    let stream = connector.connect(name, tcp).await.map_err(|e| {
        failed(
            mailbox,
            format!(
                "TLS failed ({e}); a server with a private certificate needs its CA as [bounces] ca_file"
            ),
        )
    })?;
    let mut client = async_imap::Client::new(stream);
    match client.read_response().await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(failed(mailbox, "the server closed the connection at once")),
        Err(e) => {
            return Err(failed(
                mailbox,
                format!("no IMAP greeting ({}); is this an IMAP server?", e),
            ));
        }
    }
    client
        .login(&mailbox.username, mailbox.password.expose())
        .await
        .map_err(|(e, _)| {
            failed(
                mailbox,
                format!(
                    "the server refused the login of {} ({}); check the user name and the password in {}",
                    mailbox.username,
                    imap_reason(&e),
                    mailbox.password_env
                ),
            )
        })
}

/// An IMAP error in words, without what the server echoed of our command.
fn imap_reason(e: &async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
            text.trim().to_string()
        }
        other => other.to_string(),
    }
}

/// Reads the mailbox's folder, records each message, and moves those handled.
pub async fn run(
    mailbox: &Mailbox,
    base: &Path,
    processor: &mut Processor,
) -> Result<(), BouncesError> {
    let mut session = within(mailbox, CONNECT_TIMEOUT, "connecting", open(mailbox, base)).await?;
    let result = read_and_move(mailbox, &mut session, processor).await;
    // A failed logout changes nothing that was recorded or moved.
    let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
    result
}

async fn read_and_move(
    mailbox: &Mailbox,
    session: &mut Imap,
    processor: &mut Processor,
) -> Result<(), BouncesError> {
    let folder = &mailbox.folder;
    within(mailbox, COMMAND_TIMEOUT, "opening the folder", async {
        session.select(folder).await.map_err(|e| {
            failed(
                mailbox,
                format!("cannot open the folder \"{folder}\" ({})", imap_reason(&e)),
            )
        })
    })
    .await?;
    let uids = within(mailbox, COMMAND_TIMEOUT, "listing the messages", async {
        session.uid_search("ALL").await.map_err(|e| {
            failed(
                mailbox,
                format!("cannot list the messages ({})", imap_reason(&e)),
            )
        })
    })
    .await?;
    let mut uids: Vec<u32> = uids.into_iter().collect();
    uids.sort_unstable();
    let mut handled = Vec::new();
    for batch in uids.chunks(BATCH) {
        let set = uid_set(batch);
        let fetched = within(mailbox, COMMAND_TIMEOUT, "fetching messages", async {
            let stream = session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(|e| failed(mailbox, format!("cannot fetch ({})", imap_reason(&e))))?;
            let mut stream = std::pin::pin!(stream);
            let mut out = Vec::new();
            while let Some(item) = stream.next().await {
                let fetch = item
                    .map_err(|e| failed(mailbox, format!("cannot fetch ({})", imap_reason(&e))))?;
                if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
                    out.push((uid, body.to_vec()));
                }
            }
            Ok(out)
        })
        .await?;
        for (uid, raw) in fetched {
            if processor.take(&raw)? {
                handled.push(uid);
            }
        }
    }
    if handled.is_empty() || processor.summary.dry_run {
        return Ok(());
    }
    within(
        mailbox,
        COMMAND_TIMEOUT,
        "moving the handled messages",
        async { move_handled(mailbox, session, &handled).await },
    )
    .await?;
    processor.summary.moved += u64::try_from(handled.len()).unwrap_or(u64::MAX);
    Ok(())
}

/// Moves the messages `uids` to the handled folder, creating it first if needed.
async fn move_handled(
    mailbox: &Mailbox,
    session: &mut Imap,
    uids: &[u32],
) -> Result<(), BouncesError> {
    let target = &mailbox.handled_folder;
    let exists = {
        let list = session.list(Some(""), Some(target)).await.map_err(|e| {
            failed(
                mailbox,
                format!("cannot list folders ({})", imap_reason(&e)),
            )
        })?;
        let mut list = std::pin::pin!(list);
        let mut found = false;
        while let Some(name) = list.next().await {
            if name.is_ok_and(|n| n.name() == target) {
                found = true;
            }
        }
        found
    };
    if !exists {
        session.create(target).await.map_err(|e| {
            failed(
                mailbox,
                format!(
                    "cannot create the folder \"{target}\" for handled messages ({}); create it, or name another in [bounces] handled_folder",
                    imap_reason(&e)
                ),
            )
        })?;
    }
    let capabilities = session.capabilities().await.map_err(|e| {
        failed(
            mailbox,
            format!("cannot read the capabilities ({})", imap_reason(&e)),
        )
    })?;
    let cannot_move = |e: async_imap::error::Error| {
        failed(
            mailbox,
            format!(
                "recorded, but cannot move the handled messages to \"{target}\" ({}); a later run moves them and records nothing twice",
                imap_reason(&e)
            ),
        )
    };
    let set = uid_set(uids);
    if capabilities.has_str("MOVE") {
        return session.uid_mv(&set, target).await.map_err(cannot_move);
    }
    session.uid_copy(&set, target).await.map_err(cannot_move)?;
    {
        let stored = session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await
            .map_err(cannot_move)?;
        let mut stored = std::pin::pin!(stored);
        while let Some(item) = stored.next().await {
            item.map_err(cannot_move)?;
        }
    }
    if capabilities.has_str("UIDPLUS") {
        let gone = session.uid_expunge(&set).await.map_err(cannot_move)?;
        let mut gone = std::pin::pin!(gone);
        while let Some(item) = gone.next().await {
            item.map_err(cannot_move)?;
        }
    } else {
        let gone = session.expunge().await.map_err(cannot_move)?;
        let mut gone = std::pin::pin!(gone);
        while let Some(item) = gone.next().await {
            item.map_err(cannot_move)?;
        }
    }
    Ok(())
}

/// `1,3,7`: the UIDs as a set, each named.
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imap_url_gives_host_port_folder_and_user() {
        assert_eq!(
            address("imaps://news%40example.org@imap.example.org/Bounces").unwrap(),
            Address {
                host: "imap.example.org".into(),
                port: 993,
                folder: "Bounces".into(),
                username: Some("news@example.org".into()),
            }
        );
        let plain = address("imaps://127.0.0.1:10993").unwrap();
        assert_eq!((plain.port, plain.folder.as_str()), (10993, "INBOX"));
        assert_eq!(plain.username, None);
        for (bad, says) in [
            ("imap://imap.example.org/INBOX", "over TLS only"),
            ("imaps://u:secret@imap.example.org/", "has a password in it"),
            ("https://imap.example.org/", "not an IMAP one"),
            ("imap.example.org", "not an IMAP URL"),
        ] {
            let err = address(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn a_uid_set_names_each_uid() {
        assert_eq!(uid_set(&[1, 3, 7]), "1,3,7");
    }
}
