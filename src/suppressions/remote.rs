//! The mirror of a suppression store kept elsewhere: `send` pulls what a `bulletin serve` run
//! on another machine recorded since the last pull (its export, `GET
//! /suppressions/export?since=N`, with a bearer token) into a local store of the same shape,
//! `.bulletin/remote-suppressions.sqlite`, which it then honours like its own.
//!
//! Each page of events and the cursor after it are committed together, so a pull cut short
//! (a crash, a dropped connection) leaves a mirror that is whole up to its cursor, and the
//! next pull goes on from there. [`for_sending`] says which stores a send honours: its own and
//! this mirror, pulled first; an export that cannot be pulled is an error (fail closed), unless
//! the sender says to go on with what was pulled before. What to print is the caller's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::params;

use super::{Exported, Store, StoreError, fingerprint};
use crate::audience::idn;
use crate::values::Secret;

/// Events asked for in one request; the export answers at most this many.
pub const PAGE: usize = 5000;

/// How long one request of the pull may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One page of the export, as `bulletin serve` answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub events: Vec<Exported>,
    /// The cursor to ask from next: the last event's id (the one asked from, if none).
    pub next: i64,
    /// True when more events wait after `next`.
    pub more: bool,
}

/// Where to pull from.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: url::Url,
    pub token: Secret,
}

/// What a pull did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulled {
    /// Events added to the mirror by this pull.
    pub events: u64,
    /// Events the mirror holds in all.
    pub total: u64,
}

/// The export could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot reach the suppression export {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the suppression export {url} refused the token (HTTP {status}); set the variable named by [suppressions] token_env to the value of [serve] export_token_env on the server"
    )]
    Refused { url: String, status: u16 },
    #[error("the suppression export {url} answered HTTP {status}: {body}")]
    Failed {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the suppression export {url} answered something that is not an export: {reason}")]
    Malformed { url: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The suppression stores a send honours, and what became of the remote export.
#[derive(Debug)]
pub struct ForSending {
    /// The workspace's own store (`[serve] store`), then the mirror when there is a remote.
    pub stores: Vec<PathBuf>,
    pub remote: RemoteState,
}

/// What became of `[suppressions] remote` before a send.
#[derive(Debug)]
pub enum RemoteState {
    /// None is set.
    NotSet,
    /// Not pulled, as asked: the mirror holds what the last pull brought.
    Skipped(url::Url),
    /// Pulled into the mirror.
    Pulled(url::Url, Pulled),
}

/// The remote export could not be pulled, so a send must not go out.
#[derive(Debug, thiserror::Error)]
pub enum ForSendingError {
    /// The variable named by `[suppressions] token_env` is not set.
    #[error("[suppressions] token_env: {0}")]
    Token(String),
    #[error(transparent)]
    Pull(#[from] PullError),
}

/// The stores a send of the workspace at `root` honours: its own and, when `[suppressions]
/// remote` is set, the mirror of that export, pulled first unless `without_remote`.
pub async fn for_sending(
    config: &crate::config::Config,
    root: &Path,
    without_remote: bool,
) -> Result<ForSending, ForSendingError> {
    let mut stores = vec![root.join(&config.serve.store)];
    let Some(settings) = &config.suppressions else {
        return Ok(ForSending {
            stores,
            remote: RemoteState::NotSet,
        });
    };
    let mirror = mirror_path(root);
    stores.push(mirror.clone());
    let url = settings.remote.clone();
    if without_remote {
        return Ok(ForSending {
            stores,
            remote: RemoteState::Skipped(url),
        });
    }
    let token =
        Secret::from_env(&settings.token_env).map_err(|e| ForSendingError::Token(e.to_string()))?;
    let remote = Remote {
        url: url.clone(),
        token,
    };
    let pulled = pull(&remote, &mirror).await?;
    Ok(ForSending {
        stores,
        remote: RemoteState::Pulled(url, pulled),
    })
}

/// The mirror's file in the workspace at `root`.
pub fn mirror_path(root: &Path) -> PathBuf {
    root.join(crate::workspace::STATE_DIR)
        .join("remote-suppressions.sqlite")
}

/// Pulls every event recorded since the last pull into the mirror at `mirror`.
pub async fn pull(remote: &Remote, mirror: &Path) -> Result<Pulled, PullError> {
    let mut store = Store::open(mirror)?;
    store.open_mirror()?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("bulletin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| unreachable(remote, &e))?;
    let mut added = 0;
    loop {
        let after = store.cursor(remote.url.as_str())?;
        let page = fetch(&client, remote, after).await?;
        if page.events.iter().any(|e| e.id <= after) || page.next < after {
            return Err(PullError::Malformed {
                url: remote.url.to_string(),
                reason: format!("events from before the cursor {after} came back"),
            });
        }
        added += store.append_page(remote.url.as_str(), &page)?;
        if !page.more || page.events.is_empty() {
            break;
        }
    }
    Ok(Pulled {
        events: added,
        total: store.events()?,
    })
}

async fn fetch(client: &reqwest::Client, remote: &Remote, after: i64) -> Result<Page, PullError> {
    let url = remote.url.to_string();
    let answer = client
        .get(remote.url.clone())
        .query(&[("since", after.to_string()), ("limit", PAGE.to_string())])
        .bearer_auth(remote.token.expose())
        .send()
        .await
        .map_err(|e| unreachable(remote, &e))?;
    let status = answer.status().as_u16();
    if status == 401 || status == 403 {
        return Err(PullError::Refused { url, status });
    }
    let body = answer.bytes().await.map_err(|e| unreachable(remote, &e))?;
    if status != 200 {
        let body = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(PullError::Failed { url, status, body });
    }
    serde_json::from_slice(&body).map_err(|e| PullError::Malformed {
        url,
        reason: e.to_string(),
    })
}

fn unreachable(remote: &Remote, e: &reqwest::Error) -> PullError {
    use std::error::Error as _;
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    PullError::Unreachable {
        url: remote.url.to_string(),
        reason,
    }
}

impl Store {
    /// Makes the table that keeps, for each export pulled, the cursor after the last pull.
    fn open_mirror(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS pulled (url TEXT PRIMARY KEY, cursor INTEGER NOT NULL)",
            )
            .map_err(|e| self.error(e))
    }

    /// The cursor after the last pull of `url` (0: never pulled).
    fn cursor(&self, url: &str) -> Result<i64, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT cursor FROM pulled WHERE url = ?1", [url], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.error(e))
    }

    /// Appends a page's events and moves the cursor past them, in one transaction.
    fn append_page(&mut self, url: &str, page: &Page) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| StoreError {
            path: path.clone(),
            reason: e.to_string(),
        };
        let tx = self.conn.transaction().map_err(fail)?;
        for e in &page.events {
            let address = idn::key(&e.address);
            tx.execute(
                "INSERT INTO events (at, fingerprint, address, kind, source, issue, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.at,
                    fingerprint(&address),
                    address,
                    e.kind,
                    e.source,
                    e.issue,
                    e.reason
                ],
            )
            .map_err(fail)?;
        }
        let next = page
            .events
            .last()
            .map_or(page.next, |e| e.id.max(page.next));
        tx.execute(
            "INSERT INTO pulled (url, cursor) VALUES (?1, ?2)
             ON CONFLICT (url) DO UPDATE SET cursor = excluded.cursor",
            params![url, next],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(page.events.len() as u64)
    }
}
