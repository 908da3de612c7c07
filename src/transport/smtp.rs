//! SMTP through lettre: a pool of connections to one relay (`pool`), each opened by us
//! (`relay`) with TCP_NODELAY, secured with STARTTLS or TLS (rustls, with an optional CA file
//! for private relays), logged in with a password from the environment, and renewed after the
//! profile's `messages_per_connection`. Our own timeout bounds each send: a silent server must
//! not hang a newsletter.
//!
//! MAIL FROM, RCPT TO and DATA go out together where the relay offers PIPELINING
//! (`transaction`).
//!
//! Replies: a 421 to a message (the relay closes the connection: too many messages on it, or
//! shutting down) is no reason to wait, since the message was refused: it goes again at once
//! on a new connection (once; a second 421 is a temporary failure, backed off). A connection
//! lost, or a timeout, after the message went out and before the relay's reply is
//! [`Kind::Lost`]: the relay may have stored it, and the reader may get it twice.
//!
//! It takes MIME bytes ([`crate::message::Form::Mime`]) and answers with an outcome; lettre
//! stays in here, and nothing here knows of the send loop or the ledger. Addresses arrive with
//! their domains in ASCII form; one whose local part is not ASCII goes out with SMTPUTF8 when
//! the relay offers it, and is a permanent failure when it does not (`transaction`).

mod pool;
mod relay;
mod transaction;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use self::pool::Pool;
use self::relay::{Encryption, Relay};
use super::{Accepted, Failure, Kind, Pacing, Transport};
use crate::config::{Security, Smtp};
use crate::message::{MimeBytes, Outgoing};
use crate::values::Secret;

/// How long one message may take, from taking a connection to the server's reply.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the relay's TLS cannot be set up; each names the CA file it is about.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot read the CA file {}: {}", path.display(), crate::diag::io_reason(source))]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {} is not a PEM certificate: {source}", path.display())]
    NotPem {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// A relay.
pub struct SmtpTransport {
    relay: Relay,
    pool: Pool,
    description: String,
    timeout: Duration,
    pacing: Pacing,
    /// The variable holding the password, to name when the relay refuses it.
    password_env: Option<String>,
}

impl SmtpTransport {
    /// A transport for a profile; `password` is read from the environment by the caller;
    /// `base` is the folder relative paths (the CA file) start from.
    pub fn new(profile: &Smtp, password: Option<Secret>, base: &Path) -> Result<Self, SmtpError> {
        let port = profile.port.unwrap_or(match profile.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::None => 25,
        });
        let encryption = match profile.security {
            Security::None => Encryption::None,
            Security::Tls => Encryption::Implicit(tls_parameters(profile, base)?),
            Security::Starttls => Encryption::Starttls(tls_parameters(profile, base)?),
        };
        let credentials = match (&profile.username, password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        let security = match profile.security {
            Security::Starttls => "STARTTLS",
            Security::Tls => "TLS",
            Security::None => "no encryption",
        };
        Ok(SmtpTransport {
            relay: Relay {
                host: profile.host.clone(),
                port,
                encryption,
                credentials,
                hello: ClientId::default(),
            },
            pool: Pool::new(profile.pool, profile.messages_per_connection),
            description: format!("SMTP {}:{port} ({security})", profile.host),
            timeout: SEND_TIMEOUT,
            pacing: Pacing {
                concurrency: profile.pool as usize,
                rate: profile.rate.map(|r| (r.messages, r.per)),
            },
            password_env: profile.password_env.clone(),
        })
    }

    /// The profile's pool of connections and rate.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// One message, on a pooled connection, or on a new one at once if the relay closed the
    /// first with a 421. `went` is raised once the message may have reached the relay.
    async fn deliver(
        &self,
        envelope: &Envelope,
        bytes: &MimeBytes,
        went: &AtomicBool,
    ) -> Result<Response, Failure> {
        match self.deliver_once(envelope, bytes, went).await {
            Err(Refused::Closing(_)) => {
                // A 421 refuses the message: nothing was stored, nothing went.
                went.store(false, Ordering::SeqCst);
                self.deliver_once(envelope, bytes, went)
                    .await
                    .map_err(Refused::into_failure)
            }
            other => other.map_err(Refused::into_failure),
        }
    }

    /// One message on a pooled connection; the connection goes back to the pool only if the
    /// relay accepted the message, or if nothing was said on it because the relay cannot take
    /// this message at all (a permanent failure: an address that needs SMTPUTF8, which it does
    /// not offer).
    async fn deliver_once(
        &self,
        envelope: &Envelope,
        bytes: &MimeBytes,
        went: &AtomicBool,
    ) -> Result<Response, Refused> {
        let mut loan = self.pool.take(&self.relay).await.map_err(Refused::Other)?;
        if let Some(reply) = transaction::unsendable(loan.smtp(), envelope, bytes) {
            self.pool.give_back(loan);
            return Err(Refused::Other(Failure {
                kind: Kind::Permanent,
                reply,
            }));
        }
        let pipelining = loan.pipelining();
        let (smtp, wire) = loan.parts();
        let response = match transaction::transmit(smtp, wire, pipelining, envelope, bytes, went)
            .await
        {
            Ok(response) => response,
            Err(transaction::Error::Write(e)) => {
                // The line that ends the data never went: the relay cannot have taken it.
                return Err(Refused::Other(Failure {
                    kind: Kind::Transient,
                    reply: format!(
                        "the connection to the relay was lost while the message was sent ({e}); it was not delivered"
                    ),
                }));
            }
            Err(transaction::Error::Smtp(e))
                if e.status().is_some_and(|c| c.to_string() == "421") =>
            {
                return Err(Refused::Closing(classify(&e)));
            }
            // No reply after the message went out: the relay may have stored it.
            Err(transaction::Error::Smtp(e))
                if e.status().is_none() && went.load(Ordering::SeqCst) =>
            {
                return Err(Refused::Other(Failure {
                    kind: Kind::Lost,
                    reply: format!(
                        "the connection to the relay was lost after the message was sent, before the relay confirmed it ({e}); it may have been delivered"
                    ),
                }));
            }
            Err(transaction::Error::Smtp(e)) => return Err(Refused::Other(classify(&e))),
        };
        self.pool.give_back(loan);
        Ok(response)
    }
}

/// Why one try of a message failed.
enum Refused {
    /// 421: the relay closes the connection.
    Closing(Failure),
    Other(Failure),
}

impl Refused {
    fn into_failure(self) -> Failure {
        match self {
            Refused::Closing(f) | Refused::Other(f) => f,
        }
    }
}

/// TLS that checks the relay's certificate against its name, trusting the profile's CA file
/// as well as the usual roots.
fn tls_parameters(profile: &Smtp, base: &Path) -> Result<TlsParameters, SmtpError> {
    let mut params = TlsParameters::builder(profile.host.clone());
    if let Some(ca) = &profile.ca_file {
        let path = base.join(ca);
        let pem = std::fs::read(&path).map_err(|source| SmtpError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let cert =
            Certificate::from_pem(&pem).map_err(|source| SmtpError::NotPem { path, source })?;
        params = params.add_root_certificate(cert);
    }
    params.build_rustls().map_err(SmtpError::Tls)
}

/// Sorts lettre's errors into what the send loop acts on.
fn classify(e: &lettre::transport::smtp::Error) -> Failure {
    let reply = e.to_string();
    let code = e.status().map(|c| c.to_string());
    let kind = if matches!(code.as_deref(), Some("535" | "534" | "530" | "538")) {
        Kind::Auth
    } else if e.is_permanent() {
        Kind::Permanent
    } else if e.is_tls() || refused(e) {
        // A certificate the relay's name does not match, or a relay that is not there, will
        // not get better by retrying this message.
        Kind::Unreachable
    } else {
        // 4xx replies, timeouts, refused or dropped connections.
        Kind::Transient
    };
    Failure { kind, reply }
}

/// True when nothing listens at the relay's address (or its name does not resolve), or the
/// TLS handshake fails (a certificate that is not trusted): retrying will not help.
fn refused(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return unreachable_io(io.kind());
        }
        source = err.source();
    }
    false
}

/// The I/O errors that mean the relay cannot be reached at all: nothing listens, the address
/// is not ours to use, or TLS failed (rustls reports a certificate it does not trust as
/// invalid data).
fn unreachable_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::{AddrNotAvailable, ConnectionRefused, InvalidData, NotFound};
    matches!(
        kind,
        ConnectionRefused | AddrNotAvailable | NotFound | InvalidData
    )
}

impl Transport for SmtpTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        let permanent = |reply: String| Failure {
            kind: Kind::Permanent,
            reply,
        };
        let bytes = message.mime_bytes().map_err(|e| permanent(e.to_string()))?;
        let envelope = Envelope::new(
            Some(message.envelope.from.clone()),
            vec![message.envelope.to.clone()],
        )
        .map_err(|e| permanent(e.to_string()))?;
        let went = AtomicBool::new(false);
        match tokio::time::timeout(self.timeout, self.deliver(&envelope, bytes, &went)).await {
            Ok(Ok(response)) => Ok(Accepted {
                reply: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string(),
            }),
            Ok(Err(failure)) if failure.kind == Kind::Auth => Err(Failure {
                reply: match &self.password_env {
                    Some(var) => format!(
                        "{}; check the username and the password in {var}",
                        failure.reply
                    ),
                    None => format!(
                        "{}; the relay wants a username and password_env",
                        failure.reply
                    ),
                },
                ..failure
            }),
            Ok(Err(failure)) => Err(failure),
            Err(_) if went.load(Ordering::SeqCst) => Err(Failure {
                kind: Kind::Lost,
                reply: format!(
                    "no answer from the relay within {} s after the message was sent; it may have been delivered",
                    self.timeout.as_secs()
                ),
            }),
            Err(_) => Err(Failure {
                kind: Kind::Transient,
                reply: format!(
                    "no answer from the relay within {} s",
                    self.timeout.as_secs()
                ),
            }),
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
