//! `bulletin serve` serving the web edition, run for real against a site folder written here
//! the way `bulletin publish` lays it out: the content type and caching of each kind of file,
//! `304` on revalidation, HEAD, the redirects to a folder's `/`, traversal attempts raw and
//! percent-encoded, hidden files and symlinks, the unsubscribe links beside it, a site that is
//! not published yet, `--site` and `--check`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::Workspace;
use crate::serve::{ONE_CLICK, SECRET, Server, events, token_path};

/// One answer, read raw: no client in between to tidy the path or the headers.
struct Answer {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `METHOD path HTTP/1.1` with `headers`, the path sent exactly as written.
fn ask(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(addr: &str, path: &str) -> Answer {
    ask(addr, "GET", path, &[])
}

const INDEX: &str = "<!DOCTYPE html><title>All issues</title><a href=\"2020-06/\">June</a>";
const ISSUE: &str = "<!DOCTYPE html><title>June 2020</title><img src=\"images/a.png\">";
const PRINT: &str = "<!DOCTYPE html><title>June 2020, to print</title>";
const FEED: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Efus</title></feed>\n";
const SITEMAP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"></urlset>\n";
const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bulletin//EN\r\nEND:VCALENDAR\r\n";
const MANIFEST: &str = "{\"manifest\": \"MANIFEST-CONTENTS\"}";
const OUTSIDE: &str = "TOP-SECRET-OUTSIDE-THE-SITE";
/// The first bytes of a PNG, and some that are not UTF-8.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe";

/// A workspace whose `[archive]` is read at `base_url` (none: no `[archive]`).
fn workspace(base_url: Option<&str>) -> Workspace {
    let ws = Workspace::for_sending("");
    if let Some(base_url) = base_url {
        let config = ws.read("bulletin.toml");
        ws.write(
            "bulletin.toml",
            &format!("{config}\n[archive]\nbase_url = \"{base_url}\"\n"),
        );
    }
    ws.write("outside.txt", OUTSIDE);
    ws
}

/// What publish writes, in `dir`.
fn publish(ws: &Workspace, dir: &str) {
    for (file, text) in [
        ("index.html", INDEX),
        ("feed.xml", FEED),
        ("sitemap.xml", SITEMAP),
        ("2020-06/index.html", ISSUE),
        ("2020-06/print.html", PRINT),
        ("2020-06/calendar/1.ics", ICS),
        (".bulletin/manifest.json", MANIFEST),
        (".env", OUTSIDE),
    ] {
        ws.write(&format!("{dir}/{file}"), text);
    }
    std::fs::create_dir_all(ws.path().join(dir).join("2020-06/images")).unwrap();
    std::fs::write(ws.path().join(dir).join("2020-06/images/a.png"), PNG).unwrap();
}

/// The server's log, once it holds `what` (it is read on another thread).
fn log_with(server: &Server, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.contains(what) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_kind_of_file_has_its_content_type_and_caching_and_the_links_still_work() {
    let ws = workspace(Some("https://example.org/newsletter/"));
    publish(&ws, "site");
    let server = Server::start(&ws);
    assert!(
        log_with(&server, "serving the site").contains("serving the site in site/ at /newsletter/"),
        "{}",
        server.log()
    );
    let page = ("text/html; charset=utf-8", "public, max-age=300");
    for (path, body, (content_type, cache)) in [
        ("/newsletter/", INDEX.as_bytes(), page),
        ("/newsletter/index.html", INDEX.as_bytes(), page),
        ("/newsletter/2020-06/", ISSUE.as_bytes(), page),
        ("/newsletter/2020-06/print.html", PRINT.as_bytes(), page),
        (
            "/newsletter/feed.xml",
            FEED.as_bytes(),
            ("application/atom+xml", "public, max-age=300"),
        ),
        (
            "/newsletter/sitemap.xml",
            SITEMAP.as_bytes(),
            ("application/xml", "public, max-age=300"),
        ),
        (
            "/newsletter/2020-06/calendar/1.ics",
            ICS.as_bytes(),
            ("text/calendar; charset=utf-8", "public, max-age=300"),
        ),
        (
            "/newsletter/2020-06/images/a.png",
            PNG,
            ("image/png", "public, max-age=86400"),
        ),
    ] {
        let got = get(&server.addr, path);
        assert_eq!(got.status, 200, "{path}: {}", got.text());
        assert_eq!(got.body, body, "{path}");
        assert_eq!(got.header("content-type"), Some(content_type), "{path}");
        assert_eq!(got.header("cache-control"), Some(cache), "{path}");
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
        assert!(got.header("etag").is_some(), "{path}");
        assert!(got.header("last-modified").is_some(), "{path}");
        // Public pages: none of the unsubscribe pages' private headers.
        assert_eq!(got.header("x-robots-tag"), None, "{path}");
        assert_eq!(got.header("content-security-policy"), None, "{path}");

        // HEAD: the same headers, no body.
        let head = ask(&server.addr, "HEAD", path, &[]);
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path}");
        assert_eq!(head.header("content-type"), Some(content_type));
        assert_eq!(head.header("cache-control"), Some(cache));
        assert_eq!(
            head.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(head.header("etag"), got.header("etag"));
    }

    // A folder without its last slash, the site's own path too: redirected, so that the
    // pages' relative links work.
    for (path, to) in [
        ("/newsletter", "/newsletter/"),
        ("/newsletter?utm_source=x", "/newsletter/?utm_source=x"),
        ("/newsletter/2020-06", "/newsletter/2020-06/"),
    ] {
        let got = get(&server.addr, path);
        assert_eq!(got.status, 307, "{path}");
        assert_eq!(got.header("location"), Some(to), "{path}");
    }

    // Only GET and HEAD.
    let got = ask(
        &server.addr,
        "POST",
        "/newsletter/feed.xml",
        &[("Content-Length", "0")],
    );
    assert_eq!(got.status, 405);
    assert_eq!(got.header("allow"), Some("GET, HEAD"));

    // Outside the site's path: the plain 404 of the links, private as before.
    let got = get(&server.addr, "/elsewhere");
    assert_eq!(got.status, 404);
    assert_eq!(got.header("cache-control"), Some("no-store"));
    assert!(!got.text().contains("/newsletter/"), "{}", got.text());

    // The unsubscribe links beside the site: a GET shows the page, a one-click POST records.
    let path = token_path("ana@example.org", SECRET.1);
    let got = get(&server.addr, &path);
    assert_eq!(got.status, 200);
    assert!(
        got.text().contains("<form method=\"post\">"),
        "{}",
        got.text()
    );
    assert_eq!(got.header("cache-control"), Some("no-store"));
    assert_eq!(got.header("x-robots-tag"), Some("noindex"));
    let len = ONE_CLICK.len().to_string();
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\n{ONE_CLICK}"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(events(&ws), 1);
}

#[test]
fn a_cached_copy_is_revalidated_with_304() {
    let ws = workspace(Some("https://example.org/newsletter/"));
    publish(&ws, "site");
    let server = Server::start(&ws);
    for path in ["/newsletter/2020-06/", "/newsletter/2020-06/images/a.png"] {
        let first = get(&server.addr, path);
        let etag = first.header("etag").unwrap().to_string();
        let modified = first.header("last-modified").unwrap().to_string();

        let again = ask(&server.addr, "GET", path, &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("cache-control"), first.header("cache-control"));
        assert_eq!(again.header("x-content-type-options"), Some("nosniff"));

        let again = ask(
            &server.addr,
            "GET",
            path,
            &[("If-Modified-Since", &modified)],
        );
        assert_eq!(again.status, 304, "{path}");
        let head = ask(&server.addr, "HEAD", path, &[("If-None-Match", &etag)]);
        assert_eq!(head.status, 304, "HEAD {path}");

        // If-None-Match decides when both are sent (RFC 9110 13.2.2): another tag, a new copy.
        let other = ask(
            &server.addr,
            "GET",
            path,
            &[
                ("If-None-Match", "\"not-this-one\""),
                ("If-Modified-Since", &modified),
            ],
        );
        assert_eq!(other.status, 200, "{path}");
    }

    // Published again, changed: the old tag gets the new page.
    let first = get(&server.addr, "/newsletter/2020-06/");
    let etag = first.header("etag").unwrap().to_string();
    ws.write(
        "site/2020-06/index.html",
        &format!("{ISSUE}<p>Corrected.</p>"),
    );
    let again = ask(
        &server.addr,
        "GET",
        "/newsletter/2020-06/",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 200);
    assert!(again.text().ends_with("<p>Corrected.</p>"));
    assert_ne!(again.header("etag"), Some(etag.as_str()));
}

#[test]
fn nothing_outside_the_folder_nor_hidden_is_served() {
    let ws = workspace(Some("https://example.org/newsletter/"));
    publish(&ws, "site");
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        let site = ws.path().join("site");
        // Out of the folder, and to the hidden manifest: refused. Within it: followed.
        symlink(ws.path().join("outside.txt"), site.join("leak.txt")).unwrap();
        symlink(ws.path(), site.join("workspace")).unwrap();
        symlink(".bulletin/manifest.json", site.join("manifest.json")).unwrap();
        symlink("../feed.xml", site.join("2020-06/feed.xml")).unwrap();
    }
    let server = Server::start(&ws);
    let refused = [
        "/newsletter/../outside.txt",
        "/newsletter/../../../../etc/passwd",
        "/newsletter/2020-06/../../outside.txt",
        "/newsletter/%2e%2e/outside.txt",
        "/newsletter/%2E%2E/outside.txt",
        "/newsletter/2020-06/%2e%2e/%2e%2e/outside.txt",
        "/newsletter/..%2foutside.txt",
        "/newsletter/%2e%2e%2foutside.txt",
        "/newsletter/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/newsletter/..%5coutside.txt",
        "/newsletter/%2fetc%2fpasswd",
        "/newsletter//etc/passwd",
        "/newsletter/.env",
        "/newsletter/.bulletin/manifest.json",
        "/newsletter/.bulletin/",
        "/newsletter/.bulletin",
        "/newsletter/%2ebulletin/manifest.json",
        "/newsletter/2020-06/images/",
        "/newsletter/2020-06/calendar/",
        "/newsletter/leak.txt",
        "/newsletter/workspace/outside.txt",
        "/newsletter/workspace/bulletin.toml",
        "/newsletter/manifest.json",
        "/newsletter/2020-06/index.html/",
        "/newsletter/nothing.html",
    ];
    for path in refused {
        for method in ["GET", "HEAD"] {
            let got = ask(&server.addr, method, path, &[]);
            assert!(
                matches!(got.status, 400 | 404),
                "{method} {path}: {} {}",
                got.status,
                got.text()
            );
            let text = got.text();
            assert!(
                !text.contains(OUTSIDE)
                    && !text.contains("MANIFEST-CONTENTS")
                    && !text.contains("root:")
                    && !text.contains("[unsubscribe]")
                    && !text.contains("a.png"),
                "{method} {path}: {text}"
            );
        }
    }
    // The site's 404: a small page of the serve pages' kind, back to the archive.
    let got = get(&server.addr, "/newsletter/nothing.html");
    assert_eq!(got.status, 404);
    assert_eq!(got.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(got.header("cache-control"), Some("no-cache"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    let text = got.text();
    assert!(
        text.contains("<h1>Page not found</h1>")
            && text.contains("<a href=\"/newsletter/\">All issues of Efus</a>"),
        "{text}"
    );
    #[cfg(unix)]
    {
        let got = get(&server.addr, "/newsletter/2020-06/feed.xml");
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), FEED);
    }
}

#[test]
fn a_site_not_published_yet_is_noted_once_and_served_once_it_is() {
    let ws = workspace(Some("https://example.org/newsletter/"));
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(
        out.contains("site:    site/ at /newsletter/ (not there yet: run bulletin publish"),
        "{out}"
    );
    let server = Server::start(&ws);
    let note = "no site in site/ yet: run bulletin publish";
    let log = log_with(&server, note);
    assert_eq!(log.matches(note).count(), 1, "{log}");
    let got = get(&server.addr, "/newsletter/");
    assert_eq!(got.status, 404);
    assert!(
        got.text().contains("href=\"/newsletter/\""),
        "{}",
        got.text()
    );
    let got = get(&server.addr, "/newsletter/feed.xml");
    assert_eq!(got.status, 404);

    // Published while serving: no restart needed, and no second note.
    publish(&ws, "site");
    let got = get(&server.addr, "/newsletter/");
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), INDEX);
    assert_eq!(server.log().matches(note).count(), 1);
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(
        out.contains("site:    site/ at /newsletter/ (7 files)"),
        "{out}"
    );
}

#[test]
fn site_serves_a_folder_at_the_root_without_archive_and_check_reports_it() {
    let ws = workspace(None);
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(
        out.contains("site:    none (set [archive] base_url"),
        "{out}"
    );
    publish(&ws, "public");
    std::fs::remove_file(ws.path().join("public/index.html")).unwrap();
    let out = ws
        .run_with(&["serve", "--check", "--site", "public"], &[SECRET])
        .ok();
    assert!(
        out.contains("site:    public/ at / (6 files, no index.html: run bulletin publish)"),
        "{out}"
    );
    ws.write("public/index.html", INDEX);
    let server = Server::start_with(&ws, &["--site", "public"]);
    assert_eq!(get(&server.addr, "/").text(), INDEX);
    let got = get(&server.addr, "/feed.xml");
    assert_eq!(got.header("content-type"), Some("application/atom+xml"));
    // `//host` stays on this site: the redirect keeps one leading slash.
    let got = get(&server.addr, "//2020-06");
    assert_eq!(got.status, 307);
    assert_eq!(got.header("location"), Some("/2020-06/"));
    for path in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/.bulletin/manifest.json",
    ] {
        let got = get(&server.addr, path);
        assert!(matches!(got.status, 400 | 404), "{path}: {}", got.status);
        assert!(!got.text().contains(OUTSIDE) && !got.text().contains("MANIFEST"));
    }
    // The links keep priority over the site at /.
    let got = get(&server.addr, &token_path("bo@example.org", SECRET.1));
    assert_eq!(got.status, 200);
    assert!(got.text().contains("Unsubscribe"), "{}", got.text());
    let got = get(&server.addr, "/unsubscribe/not-a-token");
    assert_eq!(got.status, 404);
    assert!(
        got.text().contains("This link is not valid"),
        "{}",
        got.text()
    );
}

#[test]
fn a_site_that_cannot_be_served_is_refused_with_what_to_do() {
    let ws = workspace(Some("https://example.org/unsubscribe/"));
    let err = ws.run_with(&["serve", "--check"], &[SECRET]).bad_input();
    assert!(
        err.contains("the site's path /unsubscribe/ (from [archive] base_url) is the folder of the unsubscribe links")
            && err.contains("base_url = \"https://example.org/newsletter/\""),
        "{err}"
    );
    let ws = workspace(Some("https://example.org/newsletter/"));
    ws.write("site", "not a folder");
    let err = ws.run_with(&["serve", "--check"], &[SECRET]).bad_input();
    assert!(
        err.contains("site/ is not a folder") && err.contains("[archive] folder"),
        "{err}"
    );
}
