//! The HTTP side of `bulletin serve`: the link's path and its resubscribe twin, GET (a page,
//! never a change) and POST (a change, recorded before the answer), the layout's logo, the
//! per-client rate limit on all of them, the body limit, the per-request timeout and the
//! headers every private answer carries; what the links do not take goes to the site
//! ([`super::site`]), if there is one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lettre::Address;

use super::commit::{Committer, Record};
use super::limit::Limiter;
use super::look::{Look, Looks};
use super::pages::{self, Page};
use super::site::{Files, Public};
use super::{BODY_LIMIT, REQUEST_TIMEOUT, Settings};
use crate::message::unsubscribe::{self, Opened};
use crate::suppressions::{Done, Kind, Source, Store, fingerprint};
use crate::values::Secret;

/// What every request shares: the settings, the store (written by the committer's thread;
/// SQLite writes one at a time anyway), the pages' looks, the rate limit and the log.
#[derive(Clone)]
pub struct Shared(Arc<Inner>);

struct Inner {
    settings: Settings,
    /// Read by the export and the resubscribe page; written by the committer's thread alone.
    store: Arc<Mutex<Store>>,
    /// Where the readers' events are recorded, many to a commit.
    committer: Committer,
    looks: Arc<Looks>,
    /// `None` when `[serve] rate_limit = "off"`.
    limiter: Option<Arc<Limiter>>,
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

    /// Starts the committer's thread on `store` (and, with a runtime, the limiter's
    /// eviction of idle clients).
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
        let limiter = Limiter::new(&settings.limit, log.clone()).map(Arc::new);
        if let Some(limiter) = &limiter
            && tokio::runtime::Handle::try_current().is_ok()
        {
            Limiter::evict_idle(Arc::downgrade(limiter));
        }
        let looks = Arc::new(Looks::new(&settings.root, log.clone()));
        Ok(Shared(Arc::new(Inner {
            settings,
            store,
            committer,
            looks,
            limiter,
            log,
            files,
        })))
    }

    /// The page context for `look`, `up` from the page to the links' folder.
    fn page<'a>(&'a self, look: &'a Look, up: &'a str) -> Page<'a> {
        Page {
            look,
            up,
            newsletter: &self.0.settings.newsletter,
        }
    }
}

/// Where the links' logo is answered: `{prefix}/logo/{file}` beside `{prefix}/{token}`, so
/// that the proxy passes it with the links and a page finds it at `logo/…` (or `../logo/…`).
fn logo_path(path: &str) -> String {
    let prefix = path.strip_suffix("/{token}").unwrap_or("");
    format!("{prefix}/logo/{{file}}")
}

/// The routes: `{path}` (GET shows, POST unsubscribes), `{path}/resubscribe` (GET shows,
/// POST resubscribes) and the logo, each under the rate limit; anything else goes to the
/// site, or is 404. The links are routes, the site the fallback: a path both could answer is
/// the links'.
pub fn router(shared: Shared) -> Router {
    let path = shared.0.settings.path.clone();
    let mut links = Router::new()
        .route(&path, get(show_unsubscribe).post(unsubscribe))
        .route(
            &format!("{path}/resubscribe"),
            get(show_resubscribe).post(resubscribe),
        )
        .route(&logo_path(&path), get(logo));
    if shared.export_token().is_some() {
        links = links.route(super::export::PATH, get(super::export::export));
    }
    if shared.0.limiter.is_some() {
        links = links.route_layer(axum::middleware::from_fn_with_state(shared.clone(), limit));
    }
    links
        .fallback(site_or_not_found)
        .with_state(shared.clone())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(shared, guard))
}

/// The reader's `Accept-Language`, for the pages of a link that names no issue.
fn accept(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// A page in `look`, with `status` and the look's `Content-Security-Policy`.
fn answer(look: &Look, status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    if let Ok(csp) = HeaderValue::from_str(&look.csp()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The rate limit: a client over it is answered 429 with `Retry-After` (whole seconds) and
/// the "try again" page in its language; nothing else is done.
async fn limit(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (Some(limiter), Some(ConnectInfo(peer))) = (
        &shared.0.limiter,
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    ) else {
        // No socket address (the router called without a listener): nothing to count by.
        return next.run(request).await;
    };
    let Err(wait) = limiter.admit(peer.ip(), request.headers()) else {
        return next.run(request).await;
    };
    let mut response = try_again_at(
        &shared,
        request.uri().path(),
        accept(request.headers()),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// From a request's path to the links' folder, where the logo is: `""` at
/// `{prefix}/{token}`, `"../"` at `{prefix}/{token}/resubscribe`, `None` elsewhere.
fn up(path: &str, shared: &Shared) -> Option<&'static str> {
    let prefix = shared
        .0
        .settings
        .path
        .strip_suffix("{token}")
        .unwrap_or("/");
    let rest = path.strip_prefix(prefix)?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [_] => Some(""),
        [_, "resubscribe"] => Some("../"),
        _ => None,
    }
}

/// The "try again" page answered at `path` (by the rate limit or the timeout), in the
/// reader's language; without the logo where a relative path could not find it.
async fn try_again_at(
    shared: &Shared,
    path: &str,
    languages: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut look = shared.0.looks.of_reader(languages).await;
    let up = up(path, shared);
    if up.is_none() {
        let mut plain = (*look).clone();
        plain.logo = None;
        look = Arc::new(plain);
    }
    let html = pages::try_again(&shared.page(&look, up.unwrap_or("")));
    answer(&look, status, html)
}

/// A time limit for each request, and the headers every private answer carries: no
/// caching, no referrer (the token is in the URL), no framing, no scripts (a page's own
/// policy, which allows its logo, is kept), not for search engines. The site's answers and
/// the logo are public (cached, indexed, with images): they keep their own.
async fn guard(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let languages = accept(request.headers()).map(str::to_string);
    let path = request.uri().path().to_string();
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            try_again_at(
                &shared,
                &path,
                languages.as_deref(),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
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
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
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

/// The layout's logo a page showed, by the hash in its name: cached for good (a changed logo
/// gets a new name), public, never sniffed, never a document that runs scripts (an SVG).
async fn logo(State(shared): State<Shared>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(logo) = shared.0.looks.logo(&file) else {
        return (StatusCode::NOT_FOUND, Html(pages::not_found())).into_response();
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, logo.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        logo.bytes,
    )
        .into_response();
    response.extensions_mut().insert(Public);
    response
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

/// The one answer to every token that does not open, whatever was wrong with it, in the
/// reader's language (the token names no issue that could say which).
async fn invalid(shared: &Shared, headers: &HeaderMap, up: &str) -> Response {
    let look = shared.0.looks.of_reader(accept(headers)).await;
    let html = pages::invalid(&shared.page(&look, up));
    answer(&look, StatusCode::NOT_FOUND, html)
}

/// The look of the pages of a link of the issue `issue`.
async fn look_of(shared: &Shared, issue: Option<&str>, headers: &HeaderMap) -> Arc<Look> {
    shared.0.looks.of_issue(issue, accept(headers)).await
}

async fn show_unsubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid(&shared, &headers, "").await;
    };
    let look = look_of(&shared, issue.as_deref(), &headers).await;
    let html = pages::confirm(&shared.page(&look, ""), &address);
    answer(&look, StatusCode::OK, html)
}

/// GET on the resubscribe link: the offer, or, for an address a bounce or complaint holds,
/// why no click can bring the issues back (read now; the POST checks again as it records).
async fn show_resubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid(&shared, &headers, "../").await;
    };
    let look = look_of(&shared, issue.as_deref(), &headers).await;
    let text = address.to_string();
    let held = shared
        .with_store(move |store| store.held(&text))
        .await
        .and_then(Result::ok)
        .flatten();
    let p = shared.page(&look, "../");
    let html = match held {
        Some(kind) => pages::held(&p, &address, kind, &shared.0.settings.contact),
        None => pages::offer_resubscribe(&p, &address),
    };
    answer(&look, StatusCode::OK, html)
}

/// RFC 8058's one-click body, the page's button, or any other POST: each unsubscribes.
async fn unsubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid(&shared, &headers, "").await;
    };
    let source = source(&body);
    let done = record(&shared, &address, issue.clone(), Kind::Unsubscribe, source).await;
    match (source, done) {
        // A mail client's button: it shows its own confirmation.
        (Source::OneClick, Some(_)) => StatusCode::OK.into_response(),
        (_, Some(done)) => {
            let look = look_of(&shared, issue.as_deref(), &headers).await;
            let html = pages::unsubscribed(
                &shared.page(&look, ""),
                &address,
                &token,
                done.held,
                &shared.0.settings.contact,
            );
            answer(&look, StatusCode::OK, html)
        }
        (_, None) => failed(&shared, issue.as_deref(), &headers, "").await,
    }
}

/// The page's "subscribe me again": recorded, unless a bounce or complaint holds the address
/// (a click cannot lift either); then nothing is recorded and the page says why.
async fn resubscribe(
    State(shared): State<Shared>,
    UrlPath(token): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(Opened { address, issue }) = reader(&shared, &token) else {
        return invalid(&shared, &headers, "../").await;
    };
    let done = record(
        &shared,
        &address,
        issue.clone(),
        Kind::Resubscribe,
        Source::Page,
    )
    .await;
    let Some(done) = done else {
        return failed(&shared, issue.as_deref(), &headers, "../").await;
    };
    let look = look_of(&shared, issue.as_deref(), &headers).await;
    let p = shared.page(&look, "../");
    let html = match done.held {
        Some(kind) => pages::held(&p, &address, kind, &shared.0.settings.contact),
        None => pages::resubscribed(&p, &address, &token),
    };
    answer(&look, StatusCode::OK, html)
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
/// reader tries again). A reader's resubscribe is not recorded for an address a bounce or
/// complaint holds ([`Done::id`] is `None`).
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
            unless_held: kind == Kind::Resubscribe,
        })
        .await;
    let who = fingerprint(address.as_ref());
    let source = source.as_str();
    match done {
        Ok(done) => {
            (shared.0.log)(&match (done.id, done.held) {
                (None, Some(held)) => format!(
                    "{kind} {who} ({source}) not recorded: held by a {held}, which only staff lift"
                ),
                _ => format!("{kind} {who} ({source})"),
            });
            Some(done)
        }
        Err(reason) => {
            (shared.0.log)(&format!("{kind} {who} NOT recorded: {reason}"));
            None
        }
    }
}

/// The event could not be recorded: "try again", 503.
async fn failed(shared: &Shared, issue: Option<&str>, headers: &HeaderMap, up: &str) -> Response {
    let look = look_of(shared, issue, headers).await;
    let html = pages::try_again(&shared.page(&look, up));
    answer(&look, StatusCode::SERVICE_UNAVAILABLE, html)
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
