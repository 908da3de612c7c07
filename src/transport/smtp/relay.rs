//! Opening one connection to the relay: TCP with TCP_NODELAY, then implicit TLS or STARTTLS,
//! EHLO and AUTH, through lettre's `AsyncSmtpConnection`.
//!
//! lettre keeps only the extensions it knows of its EHLO, and PIPELINING is not one: we say
//! EHLO once more (allowed at any time, RFC 5321 4.1.4; before AUTH, so that nothing of the
//! login is reset) and read it from that reply. One round trip per connection; pipelining
//! saves two per message.
//!
//! The stream lettre is given is a [`Wire`], of which we keep a handle: the message itself is
//! written on it by us ([`super::transaction`]), with no copy, where lettre would copy it
//! whole into a new string first. Not under STARTTLS: lettre puts its TLS above the stream it
//! was given, and only lettre writes through it.
//!
//! We open the socket ourselves because lettre never sets TCP_NODELAY: it writes a message and
//! its closing "." in two writes, and Nagle's algorithm holds the second until the relay
//! acknowledges the first, which a relay may delay by up to 40 ms. Over one connection to
//! smtp-sink, lettre's pool carried 75 messages a second; with TCP_NODELAY (and no NOOP before
//! each message, see [`super::pool`]), 206.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::transaction::offers;
use super::{classify, unreachable_io};
use crate::transport::{Failure, Kind};

/// How long the TCP connection may take to open (as lettre's own default did).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a connection is secured.
pub(super) enum Encryption {
    None,
    /// Plain TCP, upgraded with STARTTLS before anything else is said.
    Starttls(TlsParameters),
    /// TLS from the first byte.
    Implicit(TlsParameters),
}

/// Where and how to connect.
pub(super) struct Relay {
    pub host: String,
    pub port: u16,
    pub encryption: Encryption,
    pub credentials: Option<Credentials>,
    /// The name we give in EHLO: this machine's.
    pub hello: ClientId,
}

/// A connection ready for MAIL FROM.
pub(super) struct Opened {
    pub smtp: AsyncSmtpConnection,
    /// The relay offers PIPELINING on it.
    pub pipelining: bool,
    /// The stream under `smtp`, to write a message on between lettre's commands; `None`
    /// under STARTTLS, where lettre's TLS is above it.
    pub wire: Option<Wire>,
}

impl Relay {
    /// A connection ready for MAIL FROM: encrypted as the profile says, and logged in.
    pub async fn open(&self) -> Result<Opened, Failure> {
        let tcp = self.tcp().await?;
        let stream: Box<dyn AsyncTokioStream> = match &self.encryption {
            Encryption::Implicit(params) => Box::new(
                implicit_tls(tcp, params.clone())
                    .await
                    .map_err(|e| classify(&e))?,
            ),
            _ => Box::new(tcp),
        };
        let (stream, wire): (Box<dyn AsyncTokioStream>, _) = match &self.encryption {
            Encryption::Starttls(_) => (stream, None),
            _ => {
                let wire = Wire(Arc::new(Mutex::new(stream)));
                (Box::new(wire.clone()), Some(wire))
            }
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Encryption::Starttls(params) = &self.encryption {
            // lettre refuses when the relay does not offer STARTTLS: no downgrade to plain text.
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e))?;
        }
        let pipelining = match conn.command(Ehlo::new(self.hello.clone())).await {
            Ok(reply) => offers(&reply, "PIPELINING"),
            // It said EHLO once already: a refusal now only means no pipelining.
            Err(e) if e.status().is_some() => false,
            Err(e) => return Err(classify(&e)),
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(Opened {
            smtp: conn,
            pipelining,
            wire,
        })
    }

    async fn tcp(&self) -> Result<TcpStream, Failure> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(self.connect_failure(&e)),
            Err(_) => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "no answer");
                return Err(self.connect_failure(&e));
            }
        };
        tcp.set_nodelay(true)
            .map_err(|e| self.connect_failure(&e))?;
        Ok(tcp)
    }

    fn connect_failure(&self, e: &io::Error) -> Failure {
        Failure {
            kind: if unreachable_io(e.kind()) {
                Kind::Unreachable
            } else {
                Kind::Transient
            },
            reply: format!("cannot connect to {}:{}: {e}", self.host, self.port),
        }
    }
}

/// Wraps the socket in TLS with lettre's own TLS code (it knows the CA file and the relay's
/// name), so that lettre then reads the greeting through it.
#[allow(deprecated)] // AsyncNetworkStream is public in lettre 0.11 but meant to become private.
async fn implicit_tls(
    tcp: TcpStream,
    params: TlsParameters,
) -> Result<TlsStream, lettre::transport::smtp::Error> {
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    stream.upgrade_tls(params).await?;
    Ok(TlsStream(stream))
}

/// lettre's TLS stream (futures-io) seen as a tokio stream, which is what
/// `connect_with_transport` takes.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsStream(AsyncNetworkStream);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(futures_io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            buf.initialize_unfilled()
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

/// The stream under a connection, shared by lettre (which reads the replies and writes the
/// commands through it) and us (who write the message on it between two of lettre's
/// commands, never during one). lettre writes unbuffered, so the bytes go out in order.
#[derive(Debug, Clone)]
pub(super) struct Wire(Arc<Mutex<Box<dyn AsyncTokioStream>>>);

impl Wire {
    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn AsyncTokioStream>> {
        // A stream is no list that a panic could leave half changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.lock()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut **self.lock()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut **self.lock()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.lock().is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.lock()).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.lock().peer_addr()
    }
}
