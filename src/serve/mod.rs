//! `bulletin serve`, the public side: the page each reader's unsubscribe link leads to, and
//! RFC 8058 one-click unsubscribes from mail clients, recorded in the suppression store
//! ([`crate::suppressions`]). Runs behind the organisation's TLS reverse proxy, on loopback
//! by default.
//!
//! The rules it keeps:
//! - A `POST` to a reader's link unsubscribes at once (`List-Unsubscribe=One-Click` from a
//!   mail client gets an empty 200; the page's button gets a confirmation page). The event is
//!   committed before the answer: an answered POST is never lost.
//! - A `GET` never changes anything (mail scanners fetch every link): it shows a page with
//!   one button that POSTs.
//! - A token that does not open with the secret (forged, altered, cut short, another
//!   secret's) gets one plain "not valid" page and records nothing.
//! - Addresses never appear in a URL or a log line: logs carry a short fingerprint, and name
//!   no client.
//! - The pages are in the language of the issue the link came in, in its layout's colours
//!   and with its logo (`look`); a reader a bounce or complaint holds is told so, and a
//!   click of theirs lifts neither.
//! - Each client may make so many requests to the links a minute ([`limit`]); past that, 429.
//!
//! With `[archive]` in bulletin.toml (or `serve --site DIR`), it also serves the web edition
//! `bulletin publish` writes, under the path of `[archive] base_url` ([`site`]): public,
//! cacheable answers, beside the private, uncached pages of the links, which keep priority.
//!
//! Provider webhooks (bounces, complaints, unsubscribes) are in [`webhooks`]. Knows nothing
//! of sending.

mod commit;
mod export;
pub mod limit;
mod look;
mod pages;
mod routes;
pub mod site;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::suppressions::{Store, StoreError};
use crate::values::{Secret, SecretError};
pub use site::{Folder, Found, Site};

pub use routes::router;

/// The largest request body taken: a one-click POST is 26 bytes.
pub const BODY_LIMIT: usize = 4 * 1024;

/// How long one request may take, recording included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `bulletin serve`'s settings, checked: `[serve]` and `[unsubscribe]` of bulletin.toml, the
/// secret read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The store, as a path from where bulletin runs.
    pub store: PathBuf,
    /// The path links arrive at, `/unsubscribe/{token}`.
    pub path: String,
    pub secret: Secret,
    /// The newsletter's name, as pages show it.
    pub newsletter: String,
    /// The export's bearer token (`[serve] export_token_env`): no export without it.
    pub export_token: Option<Secret>,
    /// The web edition served beside the links, if any.
    pub site: Option<Site>,
    /// The providers' webhooks that are on, and the soft-bounce rule.
    pub webhooks: webhooks::Settings,
    /// The workspace's folder: the pages read `issues/<slug>.json` and its layout there.
    pub root: PathBuf,
    /// Whom a reader held by a bounce or complaint writes to: `[sender] reply_to`, else
    /// `from`.
    pub contact: lettre::Address,
    /// The per-client rate limit on the links' paths.
    pub limit: limit::Settings,
}

/// Settings that do not make a server, or a server that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{}: serve.path = \"{path}\" {why}; write the path of unsubscribe.url, e.g. \"/unsubscribe/{{token}}\"",
        config.display()
    )]
    Path {
        config: PathBuf,
        path: String,
        why: &'static str,
    },
    #[error("{}: unsubscribe.secret_env: {source}", config.display())]
    Secret {
        config: PathBuf,
        #[source]
        source: SecretError,
    },
    #[error("{}: {source}", config.display())]
    Webhooks {
        config: PathBuf,
        #[source]
        source: webhooks::SettingsError,
    },
    #[error("{}: serve.export_token_env: {source}", config.display())]
    ExportToken {
        config: PathBuf,
        #[source]
        source: SecretError,
    },
    #[error(
        "{} is not a folder: the site is the folder bulletin publish writes; remove or rename this file, or name another folder ([archive] folder in bulletin.toml, or serve --site DIR)",
        .0.shown
    )]
    SiteNotAFolder(Folder),
    #[error(
        "{}: the site's path {base} (from [archive] base_url) is the folder of the unsubscribe links ({path}): its pages would be read as tokens; publish the site at another path, e.g. base_url = \"https://example.org/newsletter/\"",
        config.display()
    )]
    SiteUnderLinks {
        config: PathBuf,
        base: String,
        path: String,
    },
    #[error("{}: serve.{message}", config.display())]
    Limit { config: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("the server stopped: {0}")]
    Io(#[source] std::io::Error),
}

impl Settings {
    /// Checks `config` (read from `config_path` in the workspace at `root`) for serving;
    /// `listen` in place of `[serve] listen`, `site` in place of `[archive] folder` (and a
    /// site served at `/` without `[archive]`).
    pub fn from_config(
        config: &Config,
        config_path: &Path,
        root: &Path,
        listen: Option<SocketAddr>,
        site: Option<Folder>,
    ) -> Result<Settings, ServeError> {
        let path = match &config.serve.path {
            Some(p) => p.clone(),
            None => url_path(&config.unsubscribe.url),
        };
        if let Some(why) = path_problem(&path) {
            return Err(ServeError::Path {
                config: config_path.to_path_buf(),
                path,
                why,
            });
        }
        let secret = Secret::from_env(&config.unsubscribe.secret_env).map_err(|source| {
            ServeError::Secret {
                config: config_path.to_path_buf(),
                source,
            }
        })?;
        let export_token = match &config.serve.export_token_env {
            Some(name) => {
                Some(
                    Secret::from_env(name).map_err(|source| ServeError::ExportToken {
                        config: config_path.to_path_buf(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let archive = config.archive.as_ref();
        let folder = site.or_else(|| archive.map(|a| Folder::new(root.join(&a.folder), &a.folder)));
        let site = folder.map(|f| Site::new(f, archive.map(|a| &a.base_url)));
        if let Some(site) = &site {
            if site.in_the_way() {
                return Err(ServeError::SiteNotAFolder(site.folder.clone()));
            }
            // `/newsletter/{token}` would take `/newsletter/feed.xml` for a token.
            if path.strip_suffix("{token}") == Some(site.base.as_str()) {
                return Err(ServeError::SiteUnderLinks {
                    config: config_path.to_path_buf(),
                    base: site.base.clone(),
                    path,
                });
            }
        }
        let resubscribe = format!("{path}/resubscribe");
        let webhooks = webhooks::Settings::from_config(
            &config.serve.webhooks,
            &config.serve.bounces,
            &[&path, &resubscribe, export::PATH],
        )
        .map_err(|source| ServeError::Webhooks {
            config: config_path.to_path_buf(),
            source,
        })?;
        let serve = &config.serve;
        let limit = limit::Settings::new(
            serve.rate_limit,
            serve.rate_limit_burst,
            serve.trusted_proxies.clone(),
            serve.client_ip_header,
        )
        .map_err(|message| ServeError::Limit {
            config: config_path.to_path_buf(),
            message,
        })?;
        let from = &config.sender.from;
        let contact = config
            .sender
            .reply_to
            .as_ref()
            .map_or_else(|| from.email.clone(), |r| r.email.clone());
        Ok(Settings {
            listen: listen.unwrap_or(config.serve.listen),
            store: root.join(&config.serve.store),
            path,
            secret,
            newsletter: from
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| from.email.to_string()),
            export_token,
            site,
            webhooks,
            root: root.to_path_buf(),
            contact,
            limit,
        })
    }
}

/// The path of an `https://host/path?query` URL.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    match rest.find('/') {
        Some(i) => rest[i..].to_string(),
        None => "/".to_string(),
    }
}

/// What is wrong with a path to serve links at, if anything.
fn path_problem(path: &str) -> Option<&'static str> {
    let Some(prefix) = path.strip_suffix("/{token}") else {
        return Some("does not end in /{token} (the token must be the link's last path segment)");
    };
    if !path.starts_with('/') {
        return Some("does not start with /");
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !prefix.chars().all(plain) || prefix.contains("//") {
        return Some("has characters other than letters, digits, '/', '-', '_', '.' and '~'");
    }
    None
}

/// What a running server needs besides its settings.
pub struct Options {
    pub settings: Settings,
    /// Where log lines go (stderr, from the CLI); never given an address.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Opens the store, listens and answers until `stop` resolves; calls `ready` with the
/// address it listens on (port 0 in the settings asks for any free port).
pub async fn serve(
    opts: Options,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = Store::open(&opts.settings.store)?;
    let listen = opts.settings.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: listen,
            reason: crate::diag::io_reason(&e),
        })?;
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    let hooks = webhooks::router(
        &opts.settings.webhooks,
        &opts.settings.store,
        opts.log.clone(),
    )?;
    let shared = routes::Shared::new(opts.settings, store, opts.log).map_err(ServeError::Io)?;
    let app = router(shared).merge(hooks);
    ready(addr);
    // The peer's address, which the rate limit counts by (or reads the proxy's header for).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(ServeError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_comes_from_the_unsubscribe_url_and_ends_in_the_token() {
        assert_eq!(
            url_path("https://example.org/news/unsubscribe/{token}?x=1"),
            "/news/unsubscribe/{token}"
        );
        assert_eq!(path_problem("/unsubscribe/{token}"), None);
        assert!(path_problem("/unsubscribe").is_some());
        assert!(path_problem("/u/{token}/x").is_some());
        assert!(path_problem("/{x}/{token}").is_some());
        assert!(path_problem("unsubscribe/{token}").is_some());
    }
}
