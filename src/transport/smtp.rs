//! SMTP through lettre: a pool of connections to one relay, STARTTLS or TLS (rustls, with an
//! optional CA file for private relays), AUTH with a password from the environment, and our
//! own timeout around each send (lettre's bounds only the connect: a silent server must not
//! hang a newsletter).

use std::path::Path;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Accepted, Failure, Kind, Transport};
use crate::config::{Secret, Security, Smtp};
use crate::send::message::Outgoing;

/// How long one message may take, from taking a connection to the server's reply.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// A relay.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    description: String,
    timeout: Duration,
}

impl SmtpTransport {
    /// A transport for a profile; `password` is read from the environment by the caller;
    /// `base` is the folder relative paths (the CA file) start from.
    pub fn new(profile: &Smtp, password: Option<Secret>, base: &Path) -> Result<Self, String> {
        let port = profile.port.unwrap_or(match profile.security {
            Security::Tls => 465,
            Security::Starttls => 587,
            Security::None => 25,
        });
        let tls = match profile.security {
            Security::None => Tls::None,
            security => {
                let mut params = TlsParameters::builder(profile.host.clone());
                if let Some(ca) = &profile.ca_file {
                    let path = base.join(ca);
                    let pem = std::fs::read(&path).map_err(|e| {
                        format!(
                            "cannot read the CA file {}: {}",
                            path.display(),
                            crate::diag::io_reason(&e)
                        )
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        format!(
                            "the CA file {} is not a PEM certificate: {e}",
                            path.display()
                        )
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| format!("TLS: {e}"))?;
                if security == Security::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(profile.host.clone())
                .port(port)
                .tls(tls)
                .timeout(Some(Duration::from_secs(30)))
                .pool_config(PoolConfig::new().max_size(profile.pool.max(1)));
        if let (Some(user), Some(password)) = (&profile.username, password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let security = match profile.security {
            Security::Starttls => "STARTTLS",
            Security::Tls => "TLS",
            Security::None => "no encryption",
        };
        Ok(SmtpTransport {
            inner: builder.build(),
            description: format!("SMTP {}:{port} ({security})", profile.host),
            timeout: SEND_TIMEOUT,
        })
    }
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
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::InvalidData
            );
        }
        source = err.source();
    }
    false
}

impl Transport for SmtpTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        let envelope = Envelope::new(Some(message.from.clone()), vec![message.to.clone()])
            .map_err(|e| Failure {
                kind: Kind::Permanent,
                reply: e.to_string(),
            })?;
        match tokio::time::timeout(self.timeout, self.inner.send_raw(&envelope, &message.bytes))
            .await
        {
            Ok(Ok(response)) => Ok(Accepted {
                reply: format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string(),
            }),
            Ok(Err(e)) => Err(classify(&e)),
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
