//! Our pool of SMTP connections to one relay, in place of lettre's: at most `size`
//! connections exist at once (open, idle or closing); each carries at most `per_connection`
//! messages, then says QUIT and is replaced, as relays that limit messages per session expect;
//! a connection that failed in any way is dropped, never handed out again.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::relay::{Relay, Wire};
use crate::transport::{Failure, Kind};

/// An idle connection older than this is asked NOOP before use: relays close idle sessions,
/// and a message should not fail on a connection that is already gone. Busy connections
/// skip the round trip.
const PROBE_AFTER: Duration = Duration::from_secs(5);

pub(super) struct Pool {
    idle: Mutex<Vec<Connection>>,
    /// Held by each connection on loan and each one closing. A loan opens a connection only
    /// when none is idle, so connections never outnumber the permits.
    slots: Arc<Semaphore>,
    per_connection: u32,
}

struct Connection {
    smtp: AsyncSmtpConnection,
    /// The relay offers PIPELINING on it.
    pipelining: bool,
    /// The stream under `smtp`, for the message itself, when we may write on it.
    wire: Option<Wire>,
    /// Messages the relay accepted on it.
    sent: u32,
    last_used: Instant,
}

/// A connection on loan for one message, with the permit that counts it.
pub(super) struct Loan {
    conn: Connection,
    slot: OwnedSemaphorePermit,
}

impl Loan {
    pub fn smtp(&mut self) -> &mut AsyncSmtpConnection {
        &mut self.conn.smtp
    }

    /// Whether the relay offers PIPELINING on this connection.
    pub fn pipelining(&self) -> bool {
        self.conn.pipelining
    }

    /// The connection, and the stream under it when we may write the message on it.
    pub fn parts(&mut self) -> (&mut AsyncSmtpConnection, Option<&mut Wire>) {
        (&mut self.conn.smtp, self.conn.wire.as_mut())
    }
}

impl Pool {
    pub fn new(size: u32, per_connection: u32) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(size.max(1) as usize)),
            per_connection: per_connection.max(1),
        }
    }

    /// An idle connection that still answers, or a new one once fewer than `size` exist.
    pub async fn take(&self, relay: &Relay) -> Result<Loan, Failure> {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| Failure {
                kind: Kind::Transient,
                reply: "the SMTP connection pool is closed".into(),
            })?;
        while let Some(mut conn) = self.pop() {
            if conn.last_used.elapsed() < PROBE_AFTER || conn.smtp.test_connected().await {
                return Ok(Loan { conn, slot });
            }
            // The relay closed it while it sat idle: drop it and look further.
        }
        let opened = relay.open().await?;
        let conn = Connection {
            smtp: opened.smtp,
            pipelining: opened.pipelining,
            wire: opened.wire,
            sent: 0,
            last_used: Instant::now(),
        };
        Ok(Loan { conn, slot })
    }

    /// Takes back a connection whose message the relay accepted. A loan that is dropped
    /// instead (an error, a timeout) closes its connection and frees its place.
    pub fn give_back(&self, loan: Loan) {
        let Loan { mut conn, slot } = loan;
        conn.sent += 1;
        conn.last_used = Instant::now();
        if conn.sent >= self.per_connection {
            // QUIT without making the caller wait; the permit is held until the connection
            // is closed, so that no more than `size` connections ever exist.
            tokio::spawn(async move {
                let _ = conn.smtp.quit().await;
                drop(slot);
            });
        } else {
            self.lock().push(conn);
            // Freed after the push, so that whoever takes the permit finds the connection.
            drop(slot);
        }
    }

    fn pop(&self) -> Option<Connection> {
        self.lock().pop()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The list stays consistent even if a holder panicked: a push or a pop.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Pool {
    /// Says QUIT on the idle connections if the runtime still runs (best effort, as lettre's
    /// pool did); otherwise closing the sockets is all a relay needs.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for mut conn in idle {
            runtime.spawn(async move {
                let _ = conn.smtp.quit().await;
            });
        }
    }
}
