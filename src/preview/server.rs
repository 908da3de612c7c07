//! The preview's HTTP side: the page, the rendered email from memory, a server-sent event
//! stream that says "render" after each render is in place (with the issue's state, so that
//! the page asks only for the email), and the files under the issue's folder and the layout
//! folder — nothing else. A path that leaves those folders (`..`, encoded or not, or a symlink
//! pointing out) is answered 404, and there are no listings.
//! Every request passes the [`Guard`]: a host name it knows, and for a subscriber list's
//! readers, the key when there is one. Renders asked for by a request run on blocking threads.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State as With};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::site::{Folders, Shown, Site, State};
use crate::merge::{Recipient, escape_html};

const PAGE: &str = include_str!("page.html");

/// Who may ask the preview for what: the host names it answers to, and the key that reader
/// data needs.
///
/// A web page elsewhere can reach the preview through a DNS name that it points at this
/// machine (DNS rebinding); its requests then carry that name in `Host`. So only requests
/// addressed to a name on the list are answered: loopback names, and beyond loopback this
/// machine's own names, and the names added with `hosts`. An IP address as `Host` is accepted
/// when the preview listens beyond loopback (rebinding needs a name; a colleague typing the
/// address is the point), and only a loopback address when it does not.
///
/// Beyond loopback, anyone on the network can reach the preview: the issue is for them to see,
/// but a subscriber list's readers (names and addresses) are served only to requests that
/// carry the key (`?key=`) the preview printed (issue 13).
#[derive(Debug, Clone)]
pub struct Guard {
    names: BTreeSet<String>,
    any_ip: bool,
    key: Option<String>,
}

impl Guard {
    /// The guard for a preview listening on `bind`, answering also to `hosts`; `key` is asked
    /// for reader data.
    pub fn new(bind: IpAddr, hosts: &[String], key: Option<String>) -> Self {
        let mut names: BTreeSet<String> = ["localhost"].iter().map(|s| s.to_string()).collect();
        let network = !bind.is_loopback();
        if network && let Some(machine) = machine_name() {
            names.insert(format!("{machine}.local"));
            names.insert(machine);
        }
        names.extend(hosts.iter().map(|h| normal_host(h)));
        Guard {
            names,
            any_ip: network,
            key,
        }
    }

    /// Whether a request addressed to `host` (a `Host` header) is answered.
    fn allows_host(&self, host: &str) -> bool {
        let name = host_name(host);
        // "[::1]" (IPv6 is written in brackets) or "127.0.0.1".
        let literal = match name.strip_prefix('[') {
            Some(rest) => rest
                .strip_suffix(']')
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
            None => name.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        };
        match literal {
            Some(ip) => self.any_ip || ip.is_loopback(),
            None => self.names.contains(&name),
        }
    }

    /// Whether reader data may be served with this `key` from the query.
    fn allows_readers(&self, given: Option<&str>) -> bool {
        match &self.key {
            None => true,
            Some(key) => given.is_some_and(|g| same(g.as_bytes(), key.as_bytes())),
        }
    }
}

/// This machine's name, lower-case.
fn machine_name() -> Option<String> {
    let name = hostname::get().ok()?.into_string().ok()?;
    let name = normal_host(&name);
    (!name.is_empty()).then_some(name)
}

/// A host name as compared: lower-case, without the root's trailing dot.
fn normal_host(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The name (or bracketed IPv6 address) of a `Host` header, without its port.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        // "[::1]:4510"
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        }
    };
    normal_host(name)
}

/// Compares two keys in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The routes of the preview, behind `guard`'s host check.
pub fn routes(site: Arc<Site>, guard: Guard) -> Router {
    let guard = Arc::new(guard);
    let checked = Arc::clone(&guard);
    Router::new()
        .route("/", get(index))
        .route("/issue/{slug}", get(to_slash))
        .route("/issue/{slug}/", get(page))
        .route("/issue/{slug}/email.html", get(email_html))
        .route("/issue/{slug}/email.txt", get(email_text))
        .route("/issue/{slug}/state.json", get(state))
        .route("/issue/{slug}/readers.json", get(readers))
        .route("/issue/{slug}/events", get(events))
        .route("/issue/{slug}/files/{*path}", get(issue_file))
        .route("/issue/{slug}/layout/{*path}", get(layout_file))
        .fallback(not_found)
        .with_state(Shared { site, guard })
        .layer(axum::middleware::from_fn(move |request, next| {
            only_known_hosts(Arc::clone(&checked), request, next)
        }))
}

/// What every handler can reach.
#[derive(Clone)]
struct Shared {
    site: Arc<Site>,
    guard: Arc<Guard>,
}

async fn only_known_hosts(
    guard: Arc<Guard>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if guard.allows_host(host) {
        next.run(request).await
    } else {
        let names: Vec<&str> = guard.names.iter().map(String::as_str).collect();
        (
            StatusCode::FORBIDDEN,
            format!(
                "the preview answers only to {}{}; start it with --host NAME to add a name\n",
                names.join(", "),
                if guard.any_ip {
                    " and this machine's addresses"
                } else {
                    " and 127.0.0.1"
                }
            ),
        )
            .into_response()
    }
}

/// Reader data asked for without the key it needs.
fn no_key() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the readers of the list are shown only at the address bulletin preview printed, with its key\n",
    )
        .into_response()
}

/// The state of an issue, rendering it first if the preview has not shown it yet — on a
/// thread for blocking work, so that a render (a second or more for a big issue on a slow
/// machine) never holds up the server's own threads (issue 13).
async fn state_of(site: &Arc<Site>, slug: &str) -> Option<State> {
    let (site, slug) = (Arc::clone(site), slug.to_string());
    tokio::task::spawn_blocking(move || site.state(&slug))
        .await
        .ok()
        .flatten()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// `?key=`: the key reader data needs beyond loopback.
#[derive(serde::Deserialize)]
struct Key {
    key: Option<String>,
}

impl Key {
    /// `?key=…` to carry on in links, when the key given is the right one.
    fn query(&self, guard: &Guard) -> String {
        match (&self.key, &guard.key) {
            (Some(given), Some(_)) if guard.allows_readers(Some(given)) => {
                format!("?key={}", encode(given))
            }
            _ => String::new(),
        }
    }
}

async fn index(With(Shared { site, guard }): With<Shared>, Query(k): Query<Key>) -> Response {
    let query = k.query(&guard);
    if let Some(slug) = site.single_slug() {
        return Redirect::temporary(&format!("/issue/{}/{query}", encode(&slug))).into_response();
    }
    let rows: String = site
        .list()
        .iter()
        .map(|l| {
            format!(
                "<li><a href=\"/issue/{}/{}\"><span class=\"date\">{}</span> <strong>{}</strong> <span class=\"slug\">{}.json</span></a></li>\n",
                encode(&l.slug),
                escape_html(&query),
                escape_html(&l.date),
                escape_html(if l.title.is_empty() { "(no title)" } else { &l.title }),
                escape_html(&l.slug)
            )
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>No issue files (<code>*.json</code>) in this folder yet.</p>".to_string()
    } else {
        format!("<ul>\n{rows}</ul>")
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Issues · bulletin preview</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:40px auto;padding:0 20px;color:#1f2933}}\
         ul{{list-style:none;padding:0}}li a{{display:block;padding:10px 12px;border:1px solid #d9e2ec;border-radius:6px;margin:0 0 8px;color:inherit;text-decoration:none}}\
         li a:hover{{border-color:#1d4f91}}.date{{color:#52606d;margin-right:8px}}.slug{{color:#52606d;float:right}}</style></head>\
         <body><h1>Issues</h1>{body}</body></html>"
    ))
    .into_response()
}

async fn to_slash(UrlPath(slug): UrlPath<String>) -> Redirect {
    Redirect::permanent(&format!("/issue/{}/", encode(&slug)))
}

async fn page(With(Shared { site, .. }): With<Shared>, UrlPath(slug): UrlPath<String>) -> Response {
    let Some(state) = state_of(&site, &slug).await else {
        return not_found().await;
    };
    let html = PAGE
        .replace("__SLUG__", &escape_html(&slug))
        .replace("__FILE__", &escape_html(&state.path.display().to_string()));
    no_store(Html(html).into_response())
}

/// `?as=N`: show the email as the list's reader number N sees it (with `key=` beyond
/// loopback).
#[derive(serde::Deserialize)]
struct As {
    #[serde(rename = "as")]
    reader: Option<usize>,
    key: Option<String>,
}

/// The email's HTML and text, for the sample reader or for one picked from the list.
fn email_for(site: &Site, good: &Shown, reader: Option<usize>) -> (String, String) {
    let picked = reader.and_then(|n| site.readers().into_iter().nth(n));
    match picked {
        Some(subscriber) => {
            // The sample unsubscribe link: a real one needs the secret, which a preview has not.
            let recipient = subscriber.recipient(Recipient::sample().unsubscribe_url);
            let email = good.rendered.fill(&recipient);
            (email.html, email.text)
        }
        None => (good.html.clone(), good.text.clone()),
    }
}

async fn email_html(
    With(Shared { site, guard }): With<Shared>,
    UrlPath(slug): UrlPath<String>,
    Query(q): Query<As>,
) -> Response {
    if q.reader.is_some() && !guard.allows_readers(q.key.as_deref()) {
        return no_key();
    }
    match state_of(&site, &slug).await {
        Some(state) => match state.good {
            Some(good) => no_store(Html(email_for(&site, &good, q.reader).0).into_response()),
            None => no_store(Html(String::new()).into_response()),
        },
        None => not_found().await,
    }
}

async fn readers(
    With(Shared { site, guard }): With<Shared>,
    UrlPath(slug): UrlPath<String>,
    Query(k): Query<Key>,
) -> Response {
    if !guard.allows_readers(k.key.as_deref()) {
        return no_key();
    }
    if state_of(&site, &slug).await.is_none() {
        return not_found().await;
    }
    let list: Vec<serde_json::Value> = site
        .readers()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = s
                .fields
                .get("name")
                .or_else(|| s.fields.get("first_name"))
                .filter(|n| !n.trim().is_empty());
            let label = match name {
                Some(n) => format!("{n} <{}>", s.address),
                None => s.address.to_string(),
            };
            serde_json::json!({ "index": i, "label": label })
        })
        .collect();
    no_store(
        (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::Value::Array(list).to_string(),
        )
            .into_response(),
    )
}

async fn email_text(
    With(Shared { site, guard }): With<Shared>,
    UrlPath(slug): UrlPath<String>,
    Query(q): Query<As>,
) -> Response {
    if q.reader.is_some() && !guard.allows_readers(q.key.as_deref()) {
        return no_key();
    }
    match state_of(&site, &slug).await {
        Some(state) => {
            let text = state
                .good
                .map(|g| email_for(&site, &g, q.reader).1)
                .unwrap_or_default();
            no_store(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
        }
        None => not_found().await,
    }
}

async fn state(
    With(Shared { site, .. }): With<Shared>,
    UrlPath(slug): UrlPath<String>,
) -> Response {
    let Some(state) = state_of(&site, &slug).await else {
        return not_found().await;
    };
    no_store(
        (
            [(header::CONTENT_TYPE, "application/json")],
            state_json(&state),
        )
            .into_response(),
    )
}

/// What the page is told of an issue's state: `state.json`, and each "render" event.
fn state_json(state: &State) -> String {
    let good = state.good.as_deref();
    serde_json::json!({
        "version": state.version,
        "good_version": state.good_version,
        "rendered": good.is_some(),
        "subject": good.map(|g| g.subject.as_str()),
        "preheader": good.and_then(|g| g.preheader.as_deref()),
        "html_bytes": good.map_or(0, |g| g.html.len()),
        "text_bytes": good.map_or(0, |g| g.text.len()),
        "error": state.error,
    })
    .to_string()
}

/// "render" after each render of the issue, with its state as `state.json` gives it: the page
/// needs no request of its own before it fetches the email (issue 17).
async fn events(
    With(Shared { site, .. }): With<Shared>,
    UrlPath(slug): UrlPath<String>,
) -> Response {
    if state_of(&site, &slug).await.is_none() {
        return not_found().await;
    }
    let stream = BroadcastStream::new(site.subscribe()).filter_map(move |change| match change {
        // The state now: the render's own, or a newer one.
        Ok(c) if c.slug == slug => Some(Ok::<_, Infallible>(
            Event::default().event("render").data(
                site.known_state(&slug)
                    .map_or_else(|| "?".into(), |s| state_json(&s)),
            ),
        )),
        Ok(_) => None,
        // Missed some: the page only needs to look again.
        Err(_) => Some(Ok(Event::default().event("render").data("?"))),
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn issue_file(
    With(Shared { site, .. }): With<Shared>,
    UrlPath((slug, path)): UrlPath<(String, String)>,
) -> Response {
    serve_under(site.folders(&slug).map(|f: Folders| f.issue), &path).await
}

async fn layout_file(
    With(Shared { site, .. }): With<Shared>,
    UrlPath((slug, path)): UrlPath<(String, String)>,
) -> Response {
    serve_under(site.folders(&slug).and_then(|f| f.layout), &path).await
}

/// A file below `root`, or 404.
async fn serve_under(root: Option<PathBuf>, rel: &str) -> Response {
    let Some(file) = root.and_then(|r| contained(&r, rel)) else {
        return not_found().await;
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mime = mime_guess::from_path(&file).first_or_octet_stream();
            no_store(([(header::CONTENT_TYPE, mime.to_string())], bytes).into_response())
        }
        Err(_) => not_found().await,
    }
}

/// `root/rel` if it is a file inside `root` once every link is followed: no `..`, no
/// absolute path, no symlink that leads out, no folder, and nothing hidden (`.env`, `.git/`:
/// an issue folder may be a whole project).
pub fn contained(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let refused = |c: Component<'_>| match c {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name.starts_with('.') || name.contains('\0')
        }
        _ => true,
    };
    if rel.components().any(refused) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let file = root.join(rel).canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// The preview shows what is on disk now: no browser cache in between.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_checked_by_name_and_ip_literals_by_where_the_preview_listens() {
        let loopback = Guard::new("127.0.0.1".parse().unwrap(), &["News.Lan.".into()], None);
        for host in [
            "127.0.0.1:4510",
            "localhost:4510",
            "[::1]:4510",
            "news.lan",
            "NEWS.lan:80",
        ] {
            assert!(loopback.allows_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:4510",
            "192.168.1.5:4510",
            "",
            "[::1",
        ] {
            assert!(!loopback.allows_host(host), "{host}");
        }
        let network = Guard::new("0.0.0.0".parse().unwrap(), &[], Some("k3y".into()));
        for host in ["192.168.1.5:4510", "[fe80::1]:4510", "localhost"] {
            assert!(network.allows_host(host), "{host}");
        }
        assert!(!network.allows_host("evil.example:4510"));
        assert!(network.allows_readers(Some("k3y")));
        for key in [None, Some(""), Some("k3"), Some("k3yy")] {
            assert!(!network.allows_readers(key), "{key:?}");
        }
        assert!(loopback.allows_readers(None));
    }

    #[test]
    fn only_files_inside_the_root_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("issues");
        std::fs::create_dir_all(root.join("images")).unwrap();
        std::fs::write(root.join("images/a.png"), b"png").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"secret").unwrap();
        assert!(contained(&root, "images/a.png").is_some());
        assert!(contained(&root, "../secret.txt").is_none());
        assert!(contained(&root, "images/../../secret.txt").is_none());
        assert!(contained(&root, "/etc/passwd").is_none());
        assert!(
            contained(&root, "images").is_none(),
            "folders are not listed"
        );
        std::fs::write(root.join(".env"), b"SECRET=1").unwrap();
        assert!(
            contained(&root, ".env").is_none(),
            "hidden files are not served"
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
                .unwrap();
            assert!(
                contained(&root, "link.txt").is_none(),
                "a symlink out is refused"
            );
        }
    }
}
