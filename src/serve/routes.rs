//! The HTTP side of `bulletin serve`: the link's path and its resubscribe twin, GET (a page,
//! never a change) and POST (a change, recorded before the answer), the body limit, the
//! per-request timeout and the headers every private answer carries; what the links do not
//! take goes to the site ([`super::site`]), if there is one.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lettre::Address;

use super::commit::{Committer, Record};
use super::site::{Files, Public};
use super::{BODY_LIMIT, REQUEST_TIMEOUT, Settings, pages};
use crate::config::Secret;
use crate::message::unsubscribe::{self, Opened};
use crate::suppressions::{Done, Kind, Source, Store, fingerprint};

/// What every request shares: the settings, the store (one connection; SQLite writes one at
/// a time anyway) and the log.
#[derive(Clone)]
pub struct Shared(Arc<Inner>);

struct Inner {
    settings: Settings,
    /// Read by the export; written by the committer's thread alone.
    store: Arc<Mutex<Store>>,
    /// Where the readers' events are recorded, many to a commit.
    committer: Committer,
    log: Arc<dyn Fn(&str) + Send + Sync>,
    /// The site's files, when there is a site.
    files: Option<Files>,
}

impl Shared {
    /// The export's token, when the export is on.
    pub fn export_token(&self) -> Option<&Secret> {
        self.0.settings.export_token.as_ref()
    }

    /// Writes a log line (never with an address in it).
    pub fn log(&self, line: &str) {
        (self.0.log)(line)
    }

    /// Runs `f` on the store away from the async workers; `None` if the task failed.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Option<T> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = inner
                .store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut store)
        })
        .await
        .ok()
    }

    /// Starts the committer's thread on `store`.
    pub fn new(
        settings: Settings,
        store: Store,
        log: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> std::io::Result<Self> {
        let files = settings
            .site
            .clone()
            .map(|site| Files::new(site, &settings.newsletter));
        let store = Arc::new(Mutex::new(store));
        let committer = Committer::start(store.clone())?;
        Ok(Shared(Arc::new(Inner {
            settings,
            store,
            committer,
            log,
            files,
        })))
    }
}

/// The routes: `{path}` (GET shows, POST unsubscribes) and `{path}/resubscribe` (GET shows,
/// POST resubscribes); anything else goes to the site, or is 404. The links are routes, the
/// site the fallback: a path both could answer is the links'.
pub fn router(shared: Shared) -> Router {
    let path = shared.0.settings.path.clone();
    let mut router = Router::new()
        .route(&path, get(show_unsubscribe).post(unsubscribe))
        .route(
            &format!("{path}/resubscribe"),
            get(show_resubscribe).post(resubscribe),
        );
    if shared.export_token().is_some() {
        router = router.route(super::export::PATH, get(super::export::export));
    }
    router
        .fallback(site_or_not_found)
        .with_state(shared)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(guard))
}

/// A time limit for each request, and the headers every private answer carries: no
/// caching, no referrer (the token is in the URL), no framing, no scripts, not for search
/// engines. The site's answers are public (cached, indexed, with images): they keep their own.
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(pages::try_again("This took too long.")),
        )
            .into_response(),
    };
    if response.extensions().get::<Public>().is_some() {
        return response;
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

/// A path the links do not take: the site's, if it is under the site's path.
async fn site_or_not_found(
    State(shared): State<Shared>,
    request: axum::extract::Request,
) -> Response {
    if let Some(files) = &shared.0.files
        && let Some(response) = files.answer(request, &*shared.0.log).await
    {
        return response;
    }
    (StatusCode::NOT_FOUND, Html(pages::not_found())).into_response()
}

/// The reader a token was sealed for, and the issue of the link; `None` (logged) for a token
/// that does not open.
fn reader(shared: &Shared, token: &str) -> Option<Opened> {
    let opened = unsubscribe::open(&shared.0.settings.secret, token);
    if opened.is_none() {
        (shared.0.log)("invalid token: nothing recorded");
    }
    opened
}

/// The one answer to every token that does not open, whatever was wrong with it.
fn invalid() -> Response {
    (StatusCode::NOT_FOUND, Html(pages::invalid())).into_response()
}

async fn show_unsubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    match reader(&shared, &token) {
        Some(Opened { address, .. }) => {
            Html(pages::confirm(&shared.0.settings.newsletter, &address)).into_response()
        }
        None => invalid(),
    }
}

async fn show_resubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    match reader(&shared, &token) {
        Some(Opened { address, .. }) => Html(pages::offer_resubscribe(
            &shared.0.settings.newsletter,
            &address,
        ))
        .into_response(),
        None => invalid(),
    }
}

/// RFC 8058's one-click body, the page's button, or any other POST: each unsubscribes.
async fn unsubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
    body: Bytes,
) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid();
    };
    let source = source(&body);
    if record(&shared, &address, issue, Kind::Unsubscribe, source)
        .await
        .is_none()
    {
        return failed();
    }
    match source {
        // A mail client's button: it shows its own confirmation.
        Source::OneClick => StatusCode::OK.into_response(),
        _ => Html(pages::unsubscribed(
            &shared.0.settings.newsletter,
            &address,
            &token,
        ))
        .into_response(),
    }
}

async fn resubscribe(State(shared): State<Shared>, UrlPath(token): UrlPath<String>) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid();
    };
    if record(&shared, &address, issue, Kind::Resubscribe, Source::Page)
        .await
        .is_none()
    {
        return failed();
    }
    Html(pages::resubscribed(
        &shared.0.settings.newsletter,
        &address,
        &token,
    ))
    .into_response()
}

/// Where a POST came from: RFC 8058's `List-Unsubscribe=One-Click` (form-urlencoded, or
/// multipart/form-data, which the RFC also allows), `via=page` from our button, or neither.
fn source(body: &[u8]) -> Source {
    let fields: Vec<_> = url::form_urlencoded::parse(body).collect();
    let one_click = fields.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("List-Unsubscribe") && v.trim().eq_ignore_ascii_case("One-Click")
    });
    let text = String::from_utf8_lossy(body);
    if one_click || (text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click")) {
        Source::OneClick
    } else if fields.iter().any(|(k, v)| k == "via" && v == "page") {
        Source::Page
    } else {
        Source::Post
    }
}

/// Records the event against the issue the link came in, committed before this returns
/// what it did; a failure is logged, and answered 503 by the caller (the mail client or the
/// reader tries again).
async fn record(
    shared: &Shared,
    address: &Address,
    issue: Option<String>,
    kind: Kind,
    source: Source,
) -> Option<Done> {
    let done = shared
        .0
        .committer
        .record(Record {
            address: address.to_string(),
            kind,
            source,
            issue,
            unless_held: false,
        })
        .await;
    let who = fingerprint(address.as_ref());
    match done {
        Ok(done) => {
            (shared.0.log)(&format!("{kind} {who} ({})", source.as_str()));
            Some(done)
        }
        Err(reason) => {
            (shared.0.log)(&format!("{kind} {who} NOT recorded: {reason}"));
            None
        }
    }
}

fn failed() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(pages::try_again("Your request could not be recorded.")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_of_a_post_is_read_from_its_body() {
        assert_eq!(source(b"List-Unsubscribe=One-Click"), Source::OneClick);
        assert_eq!(
            source(b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--"),
            Source::OneClick
        );
        assert_eq!(source(b"via=page"), Source::Page);
        assert_eq!(source(b""), Source::Post);
    }
}
