//! The web edition beside the unsubscribe links: `bulletin serve` answers GET and HEAD for the
//! files `bulletin publish` writes (the workspace's `[archive] folder`, or `serve --site DIR`)
//! under the path of `[archive] base_url` (`/newsletter/` for
//! `https://example.org/newsletter/`, or `/`). The unsubscribe routes are matched first; only
//! what they do not take comes here.
//!
//! The files are served by tower-http's `ServeDir` (ranges, `Last-Modified`, strong `ETag`s,
//! `304` on `If-None-Match` and `If-Modified-Since`, a folder's `index.html`, the redirect of
//! `dir` to `dir/`), over a [`Backend`] of ours that opens nothing hidden and nothing outside
//! the folder. Around it, this module adds what a newsletter site needs:
//!
//! - **content types** the site's readers rely on: `text/html; charset=utf-8` (a page in any
//!   language, without a `<meta charset>` to find first), `application/atom+xml` for
//!   `feed.xml` (feed readers sniff less), `application/xml` for the sitemap,
//!   `text/calendar; charset=utf-8` for `.ics`; images by their extension (mime_guess);
//! - **caching**: pages, the feed, the sitemap and calendars `public, max-age=300`: right
//!   after a send, thousands of readers open the issue within minutes, and five minutes let
//!   browsers and a proxy or CDN absorb that, while a corrected issue, republished, shows
//!   within five minutes; past that a revalidation is a cheap `304`. Images and other assets
//!   `public, max-age=86400`: they are fetched with every page, but their names are not
//!   content hashes (a replaced image keeps its name), so a day and not a year;
//! - **safety**: no `..` (raw or percent-encoded), no dotfile or dot-folder (the manifest in
//!   `.bulletin/`), no symlink that leads out of the folder (one that stays inside is
//!   followed), no listing of a folder without `index.html`; every answer says
//!   `X-Content-Type-Options: nosniff`, and an SVG opened on its own runs no script;
//! - a small HTML **404 page** with a link to the archive's index.
//!
//! The folder may not exist yet: every request looks at the disk, so the site appears as
//! soon as `publish` writes it, with no restart. Nothing here prints; failures to read go to
//! the server's log.

use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

use super::pages;

/// How long browsers and proxies keep pages, the feed, the sitemap and calendars.
pub const PAGE_CACHE: &str = "public, max-age=300";

/// How long they keep images and other assets.
pub const ASSET_CACHE: &str = "public, max-age=86400";

/// Where the site is on disk, and how messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The folder itself, absolute.
    pub path: PathBuf,
    /// As the user wrote it (`site/`, or what `--site` was given).
    pub shown: String,
}

impl Folder {
    /// `path` (absolute), named `shown` in messages, which end it with a `/`.
    pub fn new(path: PathBuf, shown: &Path) -> Folder {
        let shown = shown.display().to_string();
        let shown = if shown.ends_with('/') {
            shown
        } else {
            format!("{shown}/")
        };
        Folder { path, shown }
    }
}

/// The site `serve` answers for: a folder, and the path it is read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub folder: Folder,
    /// The path requests arrive under, as sent (percent-encoded), starting and ending with
    /// `/`: `/newsletter/`, or `/`.
    pub base: String,
}

/// What is in the site's folder now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Not there (yet): `publish` has not run.
    Missing,
    /// A file, or something else that is not a folder.
    NotAFolder,
    /// A folder with this many files to serve (hidden ones not counted), with or without the
    /// index page.
    Folder { files: usize, index: bool },
}

impl Site {
    /// The site in `folder`, read at `base_url`'s path (`None`: at `/`).
    pub fn new(folder: Folder, base_url: Option<&url::Url>) -> Site {
        let base = base_url.map_or("/", |u| u.path());
        let base = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        Site { folder, base }
    }

    /// Whether the folder is there, without looking inside.
    pub fn exists(&self) -> bool {
        self.folder.path.is_dir()
    }

    /// Whether something other than a folder is where the folder should be.
    pub fn in_the_way(&self) -> bool {
        std::fs::metadata(&self.folder.path).is_ok_and(|m| !m.is_dir())
    }

    /// Looks at the folder and counts its files (for `--check`).
    pub fn look(&self) -> Found {
        match std::fs::metadata(&self.folder.path) {
            Err(_) => Found::Missing,
            Ok(m) if !m.is_dir() => Found::NotAFolder,
            Ok(_) => Found::Folder {
                files: count_files(&self.folder.path),
                index: self.folder.path.join("index.html").is_file(),
            },
        }
    }

    /// Where `path` (a request's, still percent-encoded) falls.
    fn place<'a>(&self, path: &'a str) -> Place<'a> {
        if let Some(rest) = path.strip_prefix(self.base.as_str()) {
            Place::Inside(rest)
        } else if self.base.len() > 1 && path == &self.base[..self.base.len() - 1] {
            Place::Bare
        } else {
            Place::Outside
        }
    }
}

/// Regular files below `dir`, hidden ones and those in hidden folders left out; symlinks
/// are neither followed nor counted (a count, not a promise that each is served).
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

enum Place<'a> {
    /// Under the site's path: the rest, after its `/`.
    Inside(&'a str),
    /// The site's path without its last `/`.
    Bare,
    Outside,
}

/// Marks an answer of the site, so that the headers of the private pages (no-store,
/// noindex, a CSP without images) are not put on it.
#[derive(Debug, Clone, Copy)]
pub struct Public;

/// The site, ready to answer: the settings and the `ServeDir` over the guarded folder.
#[derive(Clone)]
pub struct Files {
    site: Site,
    dir: ServeDir<tower_http::services::fs::DefaultServeDirFallback, Guarded>,
    /// The newsletter's name, for the 404 page's link.
    newsletter: String,
}

impl Files {
    pub fn new(site: Site, newsletter: &str) -> Files {
        let dir = ServeDir::with_backend(
            &site.folder.path,
            Guarded {
                root: Arc::new(site.folder.path.clone()),
            },
        )
        // `ServeDir` sees paths without the site's prefix: its `dir` → `dir/` redirect must
        // put it back.
        .redirect_path_prefix(site.base.trim_end_matches('/'));
        Files {
            site,
            dir,
            newsletter: newsletter.to_string(),
        }
    }

    /// The site's answer to `request`, or `None` when its path is not the site's.
    pub async fn answer(
        &self,
        request: Request,
        log: &(dyn Fn(&str) + Send + Sync),
    ) -> Option<Response> {
        let path = request.uri().path().to_string();
        let rest = match self.site.place(&path) {
            Place::Outside => return None,
            Place::Bare => return Some(self.public(self.to_base(&request))),
            Place::Inside(rest) => rest,
        };
        // One leading `/`: `//host` in a redirect's Location would leave the site.
        let rest = format!("/{}", rest.trim_start_matches('/'));
        let kind = Kind::of(&rest);
        let is_get = matches!(*request.method(), Method::GET | Method::HEAD);
        let (mut parts, body) = request.into_parts();
        let target = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.clone(),
        };
        parts.uri = match Uri::builder().path_and_query(target).build() {
            Ok(uri) => uri,
            // The path came in as a valid URI; a part of it is one too. Refused all the same.
            Err(_) => return Some(self.public(self.not_found())),
        };
        let mut dir = self.dir.clone();
        let response = match dir.try_call(Request::from_parts(parts, body)).await {
            Ok(response) => response.map(Body::new),
            Err(e) if not_there(&e) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    log(&format!(
                        "site: {path}: permission denied in {}; let the user bulletin serve runs as read it",
                        self.site.folder.shown
                    ));
                }
                self.not_found()
            }
            Err(e) => {
                log(&format!(
                    "site: {path}: cannot read it in {}: {}",
                    self.site.folder.shown,
                    crate::diag::io_reason(&e)
                ));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(pages::site_try_again("This page could not be read.")),
                )
                    .into_response()
            }
        };
        Some(self.public(self.finish(response, kind, is_get)))
    }

    /// `/newsletter` → `/newsletter/`: the pages' relative links need the slash.
    fn to_base(&self, request: &Request) -> Response {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return method_not_allowed();
        }
        let location = match request.uri().query() {
            Some(q) => format!("{}?{q}", self.site.base),
            None => self.site.base.clone(),
        };
        match HeaderValue::try_from(location) {
            Ok(location) => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => self.not_found(),
        }
    }

    fn not_found(&self) -> Response {
        let mut response = (
            StatusCode::NOT_FOUND,
            Html(pages::site_not_found(&self.newsletter, &self.site.base)),
        )
            .into_response();
        // A page missing now may be published in a minute: no cache keeps the 404.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// `ServeDir`'s answer with our content type, caching and 404 page.
    fn finish(&self, mut response: Response, kind: Kind, is_get: bool) -> Response {
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return self.not_found();
        }
        if status == StatusCode::METHOD_NOT_ALLOWED || !is_get {
            return method_not_allowed();
        }
        let headers = response.headers_mut();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(kind.cache));
        }
        // A 304 carries validators and caching, not the representation's headers.
        if status.is_success() {
            if let Some(content_type) = kind.content_type {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            let is_svg = headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"image/svg+xml"));
            if is_svg {
                // An SVG opened on its own is a document of this origin; scripts in it
                // would run beside the unsubscribe pages.
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("script-src 'none'"),
                );
            }
        }
        response
    }

    /// Every site answer: marked public, and never sniffed into another type.
    fn public(&self, mut response: Response) -> Response {
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response.extensions_mut().insert(Public);
        response
    }
}

fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
    )
        .into_response()
}

/// An error that means "no such file here" to a reader: missing, unreadable, a file where a
/// folder was expected (ENOTDIR), or refused by [`Guarded`].
fn not_there(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::NotADirectory
    )
}

/// What a request's path asks for, by its last segment: its content type (`None`: the
/// extension's, as `ServeDir` guesses it) and how long it may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    content_type: Option<&'static str>,
    cache: &'static str,
}

impl Kind {
    fn of(path: &str) -> Kind {
        let last = path.rsplit('/').next().unwrap_or_default();
        let name = percent_encoding::percent_decode_str(last)
            .decode_utf8_lossy()
            .to_ascii_lowercase();
        let extension = match name.rsplit_once('.') {
            Some((_, ext)) => ext,
            // A folder (its index.html) or a name without extension.
            None if name.is_empty() => "html",
            None => "",
        };
        let page = |content_type| Kind {
            content_type: Some(content_type),
            cache: PAGE_CACHE,
        };
        let asset = |content_type| Kind {
            content_type,
            cache: ASSET_CACHE,
        };
        match extension {
            "html" | "htm" => page("text/html; charset=utf-8"),
            "xml" if name == "feed.xml" => page("application/atom+xml"),
            "atom" => page("application/atom+xml"),
            // The sitemap, and any other XML.
            "xml" => page("application/xml"),
            "ics" => page("text/calendar; charset=utf-8"),
            // A list publish may rewrite with every issue (a search index, say).
            "json" => page("application/json"),
            "txt" => page("text/plain; charset=utf-8"),
            "css" => asset(Some("text/css; charset=utf-8")),
            "js" | "mjs" => asset(Some("text/javascript; charset=utf-8")),
            // Images and the rest: mime_guess knows them.
            _ => asset(None),
        }
    }
}

/// The folder as `ServeDir` reads it, minus what must not leave it: `ServeDir` already
/// refuses `..` and absolute parts; this refuses hidden names (`.bulletin/`, `.git`,
/// `.env`) and whatever resolves, through symlinks, outside the folder. Each is "not
/// found", the same answer as a file that does not exist.
#[derive(Debug, Clone)]
struct Guarded {
    root: Arc<PathBuf>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Backend for Guarded {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = Boxed<TokioFile>;
    type MetadataFuture = Boxed<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.open(inside(&root, &path).await?).await })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.metadata(inside(&root, &path).await?).await })
    }
}

/// `path` (below `root`) once every link is followed, if it is still below `root` and
/// nothing on the way, asked or resolved, is hidden.
async fn inside(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let refused = || io::Error::from(io::ErrorKind::NotFound);
    let asked = path.strip_prefix(root).map_err(|_| refused())?;
    if !plain(asked) {
        return Err(refused());
    }
    // Looked up at every request: the folder may be created, or replaced, while serving.
    let real_root = tokio::fs::canonicalize(root).await?;
    let real = tokio::fs::canonicalize(path).await?;
    match real.strip_prefix(&real_root) {
        Ok(rel) if plain(rel) => Ok(real),
        _ => Err(refused()),
    }
}

/// True when every part of `rel` is a plain name that is not hidden.
fn plain(rel: &Path) -> bool {
    rel.components().all(|c| match c {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_file_has_its_type_and_cache() {
        let of = |p| {
            let k = Kind::of(p);
            (k.content_type, k.cache)
        };
        assert_eq!(of("/"), (Some("text/html; charset=utf-8"), PAGE_CACHE));
        assert_eq!(
            of("/2020-06/"),
            (Some("text/html; charset=utf-8"), PAGE_CACHE)
        );
        assert_eq!(
            of("/2020-06/print.html"),
            (Some("text/html; charset=utf-8"), PAGE_CACHE)
        );
        assert_eq!(of("/feed.xml"), (Some("application/atom+xml"), PAGE_CACHE));
        assert_eq!(of("/sitemap.xml"), (Some("application/xml"), PAGE_CACHE));
        assert_eq!(
            of("/2020-06/calendar/1.ics"),
            (Some("text/calendar; charset=utf-8"), PAGE_CACHE)
        );
        assert_eq!(of("/2020-06/images/a.png"), (None, ASSET_CACHE));
        // Percent-encoded names are read as ServeDir reads them.
        assert_eq!(
            of("/2020-06/a%2Ehtml"),
            (Some("text/html; charset=utf-8"), PAGE_CACHE)
        );
        assert_eq!(
            of("/style.CSS"),
            (Some("text/css; charset=utf-8"), ASSET_CACHE)
        );
    }

    #[test]
    fn the_site_path_comes_from_the_base_url() {
        let folder = Folder::new(PathBuf::from("/srv/site"), Path::new("site"));
        assert_eq!(folder.shown, "site/");
        let url = url::Url::parse("https://example.org/newsletter/").unwrap();
        let site = Site::new(folder.clone(), Some(&url));
        assert_eq!(site.base, "/newsletter/");
        assert!(matches!(site.place("/newsletter"), Place::Bare));
        assert!(matches!(site.place("/newsletter/"), Place::Inside("")));
        assert!(matches!(
            site.place("/newsletter/feed.xml"),
            Place::Inside("feed.xml")
        ));
        assert!(matches!(site.place("/newsletters/"), Place::Outside));
        assert!(matches!(site.place("/"), Place::Outside));
        let root = Site::new(folder, None);
        assert_eq!(root.base, "/");
        assert!(matches!(root.place("/"), Place::Inside("")));
        assert!(matches!(root.place("/x"), Place::Inside("x")));
    }

    #[tokio::test]
    async fn nothing_hidden_and_nothing_outside_the_folder_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join(".bulletin")).unwrap();
        std::fs::create_dir_all(root.join("2020-06")).unwrap();
        std::fs::write(root.join("index.html"), "index").unwrap();
        std::fs::write(root.join(".bulletin/manifest.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        assert!(inside(&root, &root.join("index.html")).await.is_ok());
        assert!(inside(&root, &root.join("2020-06")).await.is_ok());
        for hidden in [".bulletin/manifest.json", ".bulletin", "2020-06/.env"] {
            let e = inside(&root, &root.join(hidden)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{hidden}");
        }
        // Not below the root at all, as asked.
        assert!(inside(&root, &dir.path().join("secret.txt")).await.is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(dir.path().join("secret.txt"), root.join("out.txt")).unwrap();
            symlink("../index.html", root.join("2020-06/in.html")).unwrap();
            symlink(".bulletin/manifest.json", root.join("manifest.json")).unwrap();
            assert!(inside(&root, &root.join("out.txt")).await.is_err());
            assert!(inside(&root, &root.join("manifest.json")).await.is_err());
            assert_eq!(
                inside(&root, &root.join("2020-06/in.html")).await.unwrap(),
                root.canonicalize().unwrap().join("index.html")
            );
        }
        assert_eq!(
            Site::new(Folder::new(root.clone(), Path::new("site")), None).look(),
            Found::Folder {
                files: 1,
                index: true
            }
        );
        let missing = Folder::new(dir.path().join("nothing"), Path::new("nothing"));
        assert_eq!(Site::new(missing, None).look(), Found::Missing);
    }
}
