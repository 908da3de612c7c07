//! `bulletin serve` run for real: a send to aiosmtpd, the unsubscribe link of a received
//! message POSTed one-click, the next issue sent without that reader; forged tokens and GETs
//! that change nothing; concurrent POSTs, and a `kill -9` that loses no answered POST; and
//! `serve --check`, `bulletin suppressions`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulletin::config::Secret;
use bulletin::message::unsubscribe::seal;
use bulletin::suppressions::Store;
use mail_parser::MessageParser;

use crate::common::{Workspace, repo};

pub(crate) const SECRET: (&str, &str) = (
    "BULLETIN_UNSUBSCRIBE_SECRET",
    "test-secret-not-for-production",
);

/// `bulletin serve` on a free loopback port; killed (SIGKILL) when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(ws: &Workspace) -> Server {
        Server::start_with(ws, &[])
    }

    /// With these arguments after `serve --listen 127.0.0.1:0`.
    pub(crate) fn start_with(ws: &Workspace, args: &[&str]) -> Server {
        Server::start_with_env(ws, args, &[])
    }

    /// With these arguments, and these environment variables besides the unsubscribe secret.
    pub(crate) fn start_with_env(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulletin"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(ws.path())
            .env(SECRET.0, SECRET.1)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bulletin serve");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("bulletin serve: listening on http://")
            .unwrap_or_else(|| panic!("serve did not start: {line}"))
            .to_string();
        // Keep reading the log, so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server { child, addr, log }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the log has `line` in it, waiting up to 5 s for it: the server writes a line
    /// before it answers, but the thread that reads its stderr may not have read it yet.
    pub(crate) fn logged(&self, line: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(line) {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The log once it holds `needle` (read from the server's stderr by another thread, so
    /// a line written before an answer may arrive just after it); panics after 10 s.
    pub(crate) fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {out:?}")))?;
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// One HTTP/1.1 request with extra headers: (status, the head's lines, body bytes).
pub(crate) fn http_full(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}

/// The value of the header `name` in an answer's head, if it is there.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The link of `address` in the issue `slug`, as `send` seals it.
pub(crate) fn link(address: &str, slug: &str) -> String {
    format!(
        "/unsubscribe/{}",
        seal(&Secret::new(SECRET.1), &address.parse().unwrap(), slug)
    )
}

/// The sample issue again as `issues/{slug}.json`, written in `language` (in the Efus
/// layout, with its logo and colours).
pub(crate) fn issue_in(ws: &Workspace, slug: &str, language: &str) {
    let sample = ws.read("issues/2020-06.json");
    assert!(sample.contains("\"language\": \"en\""));
    ws.write(
        &format!("issues/{slug}.json"),
        &sample.replace(
            "\"language\": \"en\"",
            &format!("\"language\": \"{language}\""),
        ),
    );
}

pub(crate) const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

fn store(ws: &Workspace) -> Store {
    Store::open(&ws.path().join(".bulletin/suppressions.sqlite")).unwrap()
}

pub(crate) fn events(ws: &Workspace) -> u64 {
    store(ws).events().unwrap()
}

pub(crate) fn token_path(address: &str, secret: &str) -> String {
    format!(
        "/unsubscribe/{}",
        seal(&Secret::new(secret), &address.parse().unwrap(), "2020-06")
    )
}

/// aiosmtpd keeping what it accepts in a folder; stopped when dropped.
pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Smtp {
    pub fn start(dir: &Path) -> Smtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .arg(repo().join("tests/servers/smtp_server.py"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd: run `bash tests/setup.sh`");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Smtp {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message received, by recipient.
    pub fn received(&self) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut by = BTreeMap::<String, Vec<Vec<u8>>>::new();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "eml") {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                let rcpt = name.split_once('-').unwrap().1.to_string();
                by.entry(rcpt).or_default().push(std::fs::read(&p).unwrap());
            }
        }
        by
    }

    /// The MAIL FROM address the client gave for each message received, by recipient.
    pub fn mail_from(&self) -> BTreeMap<String, String> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "envelope"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let mut lines = text.lines();
                let mail = lines
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                (lines.next().unwrap().to_string(), mail.to_string())
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(ws: &Workspace, issue: &str) -> String {
    ws.run_with(
        &[
            "send",
            issue,
            "--profile",
            "test",
            "--list",
            "subscribers.csv",
            "--yes",
        ],
        &[SECRET],
    )
    .ok()
}

/// The issue's own test of done: unsubscribed by one click on a received message's link,
/// a reader gets no next issue, and the others do.
#[test]
fn a_one_click_unsubscribe_from_a_received_message_keeps_the_next_issue_from_that_reader() {
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let ws = Workspace::for_sending(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        smtp.port
    ));
    ws.write(
        "subscribers.csv",
        "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n",
    );
    let out = send(&ws, "issues/2020-06.json");
    assert!(out.contains("Sent: 3\n"), "{out}");

    // Bo's link, as his mail client reads it from the message.
    let got = smtp.received();
    let raw = &got["bo@example.org"][0];
    let msg = MessageParser::default().parse(raw).unwrap();
    let header = msg.header_raw("List-Unsubscribe").unwrap();
    let url = header
        .split(['<', '>'])
        .find(|part| part.starts_with("https://"))
        .unwrap();
    let path = url.strip_prefix("https://example.org").unwrap().to_string();
    assert!(!url.contains("bo@") && !url.contains("bo%40"));

    let server = Server::start(&ws);
    // A GET (a mail scanner following the link) shows the page and changes nothing.
    let (status, page) = http(&server.addr, "GET", &path, "").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("<form method=\"post\">") && page.contains("Unsubscribe"));
    assert!(!page.contains("bo@example.org"));
    assert_eq!(events(&ws), 0);

    // Forged tokens: one character changed, or sealed with another secret.
    let token = path.rsplit('/').next().unwrap();
    let mid = token.len() / 2;
    let flipped = if &token[mid..=mid] == "A" { "B" } else { "A" };
    let altered = format!(
        "/unsubscribe/{}{flipped}{}",
        &token[..mid],
        &token[mid + 1..]
    );
    let other = token_path("bo@example.org", "another secret");
    let cut = format!("/unsubscribe/{}", &token[..token.len() - 3]);
    for forged in [&altered, &other, &cut] {
        for method in ["GET", "POST"] {
            let (status, page) = http(&server.addr, method, forged, ONE_CLICK).unwrap();
            assert_eq!(status, 404, "{method} {forged}");
            assert!(page.contains("This link is not valid"), "{page}");
        }
    }
    assert_eq!(events(&ws), 0);

    // The mail client's one-click button.
    let (status, body) = http(&server.addr, "POST", &path, ONE_CLICK).unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(events(&ws), 1);
    let current = store(&ws).current().unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(
        (current[0].address.as_str(), current[0].source.as_str()),
        ("bo@example.org", "one-click")
    );
    // Counted against the issue whose link it was.
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(
        status.contains("From this issue's links: 1 unsubscribe"),
        "{status}"
    );
    let json = ws.run(&["status", "issues/2020-06.json", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["came_back"]["unsubscribe"], 1, "{json}");
    // The log names no reader.
    let log = server.log_with("unsubscribe");
    assert!(!log.contains("@example.org"), "{log}");

    // The next issue: Bo is skipped, and reported; Ana and Cy get it.
    let next = ws.read("issues/2020-06.json");
    ws.write("issues/2020-07.json", &next);
    let out = send(&ws, "issues/2020-07.json");
    assert!(
        out.contains("Recipients: 2") && out.contains("Skipped:    1 unsubscribed"),
        "{out}"
    );
    assert!(out.contains("Sent: 2\n"), "{out}");
    let got = smtp.received();
    let counts: Vec<(&str, usize)> = got.iter().map(|(r, m)| (r.as_str(), m.len())).collect();
    assert_eq!(
        counts,
        [
            ("ana@example.org", 2),
            ("bo@example.org", 1),
            ("cy@example.org", 2)
        ]
    );
}

/// The page's button, the confirmation's "clicked by mistake", and the history they leave.
#[test]
fn the_page_unsubscribes_with_its_button_and_resubscribes_by_mistake() {
    let ws = Workspace::for_sending("");
    let server = Server::start(&ws);
    let path = token_path("Ana@Example.org", SECRET.1);
    let (status, page) = http(&server.addr, "POST", &path, "via=page").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("<h1>You are unsubscribed</h1>"), "{page}");
    let token = path.rsplit('/').next().unwrap();
    assert!(
        page.contains(&format!("action=\"{token}/resubscribe\"")),
        "{page}"
    );

    // A GET of the resubscribe page changes nothing either.
    let (status, _) = http(&server.addr, "GET", &format!("{path}/resubscribe"), "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(events(&ws), 1);
    let (status, page) = http(
        &server.addr,
        "POST",
        &format!("{path}/resubscribe"),
        "via=page",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("You are subscribed again"), "{page}");
    assert_eq!(events(&ws), 2);
    assert!(store(&ws).current().unwrap().is_empty());

    // A body over the limit is refused before anything is recorded.
    let big = "x".repeat(10_000);
    let (status, _) = http(&server.addr, "POST", &path, &big).unwrap();
    assert_eq!(status, 413);
    assert_eq!(events(&ws), 2);
    let (status, _) = http(&server.addr, "GET", "/elsewhere", "").unwrap();
    assert_eq!(status, 404);
}

/// One reader's one-click POST, timed: (status, or the error that kept it from an answer;
/// the time from connecting to the last byte of the answer).
fn timed_one_click(addr: &str, path: &str) -> (std::io::Result<u16>, Duration) {
    let start = Instant::now();
    let status = http(addr, "POST", path, ONE_CLICK).map(|(status, _)| status);
    (status, start.elapsed())
}

/// `count` one-click POSTs from `clients` threads, each reader `r{first + n}@example.org`
/// once; a thread stops at its first request without an answer (the server is gone) or once
/// `stop` is set. Returns each answered reader with its answer's latency.
fn one_click_load(
    addr: &str,
    first: usize,
    clients: usize,
    count: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(String, u16, Duration)> {
    let each = count / clients;
    let handles: Vec<_> = (0..clients)
        .map(|t| {
            let (addr, stop) = (addr.to_string(), stop.clone());
            std::thread::spawn(move || {
                let secret = Secret::new(SECRET.1);
                let mut answered = Vec::with_capacity(each);
                for i in 0..each {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let address = format!("r{}@example.org", first + t * each + i);
                    let token = seal(&secret, &address.parse().unwrap(), "2020-06");
                    match timed_one_click(&addr, &format!("/unsubscribe/{token}")) {
                        (Ok(status), took) => answered.push((address, status, took)),
                        (Err(_), _) => break, // the server is gone
                    }
                }
                answered
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// The `q`-quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

/// The issue's load test: 10,000 one-click POSTs from 50 concurrent clients on loopback, none
/// lost (the store has 10,000); latency and throughput on stderr, never asserted (the machine
/// is shared). Then `kill -9` under the same load, and a restart: every answered POST is in
/// the store. The rate limit is off here: every client is 127.0.0.1.
#[test]
fn ten_thousand_one_click_posts_from_50_clients_none_lost_even_when_killed() {
    let ws = Workspace::for_sending("[serve]\nrate_limit = \"off\"\n");
    let server = Server::start(&ws);
    let started = Instant::now();
    let answered = one_click_load(
        &server.addr,
        0,
        50,
        10_000,
        Arc::new(AtomicBool::new(false)),
    );
    let elapsed = started.elapsed();
    let refused: Vec<_> = answered.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(
        refused.is_empty(),
        "not 200: {:?}",
        &refused[..refused.len().min(5)]
    );
    assert_eq!(answered.len(), 10_000);
    assert_eq!(events(&ws), 10_000);
    assert_eq!(store(&ws).current().unwrap().len(), 10_000);
    let mut took: Vec<Duration> = answered.iter().map(|(_, _, t)| *t).collect();
    took.sort();
    eprintln!(
        "serve load: 10,000 one-click POSTs from 50 clients in {:.2} s: {:.0} POSTs/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        10_000.0 / elapsed.as_secs_f64(),
        quantile(&took, 0.50).as_secs_f64() * 1e3,
        quantile(&took, 0.99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3,
    );

    // Killed (SIGKILL) while 50 clients keep posting: whatever got its 200 is there.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        std::thread::spawn(move || one_click_load(&addr, 100_000, 50, 10_000, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while events(&ws) < 12_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let answered = load.join().unwrap();
    assert!(answered.iter().all(|(_, s, _)| *s == 200));
    assert!(answered.len() >= 1_000, "only {} answered", answered.len());

    // A new server opens the store the killed one left, with every answered POST in it.
    let again = Server::start(&ws);
    let current: std::collections::HashSet<String> = store(&ws)
        .current()
        .unwrap()
        .into_iter()
        .map(|s| s.address)
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .map(|(a, _, _)| a)
        .filter(|a| !current.contains(*a))
        .collect();
    assert!(lost.is_empty(), "answered but not recorded: {lost:?}");
    eprintln!(
        "serve load: killed under load after {} more answered POSTs; all {} in the store after the restart",
        answered.len(),
        answered.len()
    );
    let (status, _) = http(
        &again.addr,
        "POST",
        &token_path("late@example.org", SECRET.1),
        ONE_CLICK,
    )
    .unwrap();
    assert_eq!(status, 200);
}

/// The pages speak the language of the issue the link came in, right to left where it is
/// written so, in its layout's colours and with its logo, which `serve` serves.
#[test]
fn the_pages_are_in_the_issues_language_with_its_layouts_colours_and_logo() {
    let ws = Workspace::for_sending("");
    issue_in(&ws, "2020-07", "fr");
    issue_in(&ws, "2020-08", "ar");
    let server = Server::start(&ws);

    let (status, head, page) = http_full(
        &server.addr,
        "GET",
        &link("ana@example.org", "2020-07"),
        &[],
        "",
    );
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"fr\" dir=\"ltr\">"), "{page}");
    assert!(
        page.contains("<h1>Se désabonner de Efus\u{202F}?</h1>"),
        "{page}"
    );
    assert!(page.contains(">Se désabonner</button>"), "{page}");
    assert!(page.contains("ne recevra plus aucun numéro"), "{page}");
    // The Efus theme's button colour, not the default one.
    assert!(page.contains("background:#1b3a6b"), "{page}");
    let csp = header(&head, "content-security-policy").unwrap();
    assert!(
        csp.contains("img-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script"), "{csp}");

    // The logo: relative to the link, served with an image type and cached for good.
    let src = page
        .split("<img class=\"logo\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a logo")
        .to_string();
    assert!(src.starts_with("logo/") && src.ends_with(".png"), "{src}");
    assert!(page.contains("alt=\"Efus – European Forum for Urban Security\""));
    let (status, head, png) =
        http_full(&server.addr, "GET", &format!("/unsubscribe/{src}"), &[], "");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("image/png"));
    assert!(
        header(&head, "cache-control")
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        png,
        std::fs::read(ws.path().join("layouts/efus/logo.png")).unwrap()
    );
    let (status, _, _) = http_full(
        &server.addr,
        "GET",
        "/unsubscribe/logo/0000000000000000.png",
        &[],
        "",
    );
    assert_eq!(status, 404);

    // Arabic: right to left, its words, and the address isolated in the sentence.
    let (status, _, page) = http_full(
        &server.addr,
        "GET",
        &link("ana@example.org", "2020-08"),
        &[],
        "",
    );
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"ar\" dir=\"rtl\">"), "{page}");
    assert!(page.contains("إلغاء الاشتراك في"), "{page}");
    assert!(
        page.contains("<bdi>a\u{2022}\u{2022}\u{2022}@example.org</bdi>"),
        "{page}"
    );
    // The confirmation after the page's button, and the resubscribe page, in Arabic too.
    let (_, _, done) = http_full(
        &server.addr,
        "POST",
        &link("ana@example.org", "2020-08"),
        &[],
        "via=page",
    );
    let done = String::from_utf8(done).unwrap();
    assert!(
        done.contains("dir=\"rtl\"") && done.contains("أُلغي اشتراكك"),
        "{done}"
    );
    let (_, _, back) = http_full(
        &server.addr,
        "GET",
        &format!("{}/resubscribe", link("ana@example.org", "2020-08")),
        &[],
        "",
    );
    let back = String::from_utf8(back).unwrap();
    assert!(
        back.contains("src=\"../logo/") && back.contains("الاشتراك مجددًا"),
        "{back}"
    );
    assert!(!server.log().contains("@example.org"), "{}", server.log());
}

/// An issue file gone (or never there) leaves the pages in English, in the workspace's
/// layout, and the request answered.
#[test]
fn the_pages_fall_back_to_english_when_the_issue_file_is_missing_or_broken() {
    let ws = Workspace::for_sending("");
    ws.write("issues/2020-09.json", "{ \"title\": ");
    let server = Server::start(&ws);
    for slug in ["2031-01", "2020-09"] {
        let (status, _, page) =
            http_full(&server.addr, "GET", &link("ana@example.org", slug), &[], "");
        let page = String::from_utf8(page).unwrap();
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<html lang=\"en\" dir=\"ltr\">"), "{page}");
        assert!(page.contains("<h1>Unsubscribe from Efus?</h1>"), "{page}");
        let (status, body) = http(
            &server.addr,
            "POST",
            &link("ana@example.org", slug),
            ONE_CLICK,
        )
        .unwrap();
        assert_eq!((status, body.as_str()), (200, ""));
    }
    let log = server.log_with("in English");
    assert!(log.contains("2031-01"), "{log}");
    // A link that does not open: the reader's own language, from the browser.
    let (status, _, page) = http_full(
        &server.addr,
        "GET",
        "/unsubscribe/not-a-token",
        &[("Accept-Language", "de-CH, de;q=0.9, en;q=0.5")],
        "",
    );
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 404);
    assert!(
        page.contains("lang=\"de\"") && page.contains("Dieser Link ist ungültig"),
        "{page}"
    );
}

/// A reader a bounce holds: the resubscribe page says why nothing is sent and whom to
/// write to, its button records nothing that lifts the bounce, and the next send still skips
/// the address.
#[test]
fn a_bounced_readers_resubscribe_page_tells_the_truth_and_lifts_nothing() {
    use bulletin::suppressions::{Event, Kind, Provider, Source};
    let ws = Workspace::for_sending("");
    issue_in(&ws, "2020-07", "fr");
    let server = Server::start(&ws);
    let at = bulletin::clock::now();
    let mut store = store(&ws);
    store
        .record(&Event {
            at,
            address: "bo@example.org",
            kind: Kind::Bounce,
            source: Source::Webhook(Provider::Postmark),
            issue: None,
            reason: Some("550 5.1.1 unknown user"),
        })
        .unwrap();
    let resubscribe = format!("{}/resubscribe", link("bo@example.org", "2020-06"));
    let (status, _, page) = http_full(&server.addr, "GET", &resubscribe, &[], "");
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("<h1>We cannot send to this address</h1>"),
        "{page}"
    );
    assert!(page.contains("the mailbox refused them"), "{page}");
    assert!(
        page.contains("<a href=\"mailto:contact@example.org\">contact@example.org</a>"),
        "{page}"
    );
    assert!(
        !page.contains("<form") && !page.contains("subscribed again"),
        "{page}"
    );

    // The button of a page loaded before the bounce: nothing recorded, the same truth.
    let (status, _, page) = http_full(&server.addr, "POST", &resubscribe, &[], "via=page");
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("We cannot send to this address") && !page.contains("subscribed again"),
        "{page}"
    );
    assert_eq!(events(&ws), 1);
    assert_eq!(store.held("bo@example.org").unwrap(), Some(Kind::Bounce));
    server.log_with("not recorded: held by a bounce");

    // In the issue's language, and for a complaint.
    store
        .record(&Event {
            at,
            address: "cy@example.org",
            kind: Kind::Complaint,
            source: Source::Webhook(Provider::Postmark),
            issue: None,
            reason: None,
        })
        .unwrap();
    let resubscribe = format!("{}/resubscribe", link("cy@example.org", "2020-07"));
    let (_, _, page) = http_full(&server.addr, "POST", &resubscribe, &[], "via=page");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("Nous ne pouvons pas écrire à cette adresse")
            && page.contains("signalé comme spam"),
        "{page}"
    );
    assert_eq!(events(&ws), 2);

    // An unsubscribe of a bounced reader is recorded, and offers no way back by a click.
    let (_, _, page) = http_full(
        &server.addr,
        "POST",
        &link("bo@example.org", "2020-06"),
        &[],
        "via=page",
    );
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("You are unsubscribed") && !page.contains("resubscribe\""),
        "{page}"
    );
    assert!(page.contains("mailto:contact@example.org"), "{page}");
    assert_eq!(events(&ws), 3);
    assert_eq!(store.held("bo@example.org").unwrap(), Some(Kind::Bounce));
}

/// The per-client rate limit: over it, 429 with Retry-After, logged without the address;
/// behind a trusted proxy each forwarded client has its own bucket, and a header from anyone
/// else counts for nothing.
#[test]
fn a_client_over_the_rate_limit_gets_429_with_retry_after() {
    let ws = Workspace::for_sending("[serve]\nrate_limit = \"3/min\"\n");
    let server = Server::start(&ws);
    let path = link("ana@example.org", "2020-06");
    for _ in 0..3 {
        let (status, _, _) = http_full(&server.addr, "GET", &path, &[], "");
        assert_eq!(status, 200);
    }
    let (status, head, page) = http_full(&server.addr, "POST", &path, &[], ONE_CLICK);
    assert_eq!(status, 429, "{head}");
    let wait: u64 = header(&head, "retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After: {wait}");
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains("Please try again")
    );
    assert_eq!(events(&ws), 0, "a refused POST records nothing");
    let log = server.log_with("rate limit: 1 request refused (429)");
    assert!(!log.contains("127.0.0.1"), "{log}");
    // Another client behind the proxy on this machine (loopback is trusted by default).
    let forwarded = [("X-Forwarded-For", "198.51.100.7")];
    let (status, _, _) = http_full(&server.addr, "POST", &path, &forwarded, ONE_CLICK);
    assert_eq!(status, 200);
    assert_eq!(events(&ws), 1);
    // What the links do not take is not counted.
    let (status, _, _) = http_full(&server.addr, "GET", "/elsewhere", &[], "");
    assert_eq!(status, 404);
    drop(server);

    // With no trusted proxy, the header is the client's own word: ignored.
    let config = ws.read("bulletin.toml");
    ws.write(
        "bulletin.toml",
        &config.replace(
            "rate_limit = \"3/min\"",
            "rate_limit = \"3/min\"\ntrusted_proxies = []",
        ),
    );
    let server = Server::start(&ws);
    for i in 0..4 {
        let ip = format!("198.51.100.{i}");
        let (status, _, _) = http_full(&server.addr, "GET", &path, &[("X-Forwarded-For", &ip)], "");
        assert_eq!(status, if i < 3 { 200 } else { 429 });
    }
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(
        out.contains("limit:   3/min per client, 3 at once; X-Forwarded-For read from no proxy"),
        "{out}"
    );
    ws.write(
        "bulletin.toml",
        &config.replace("rate_limit = \"3/min\"", "rate_limit = \"fast\""),
    );
    let err = ws.run_with(&["serve", "--check"], &[SECRET]).bad_input();
    assert!(
        err.contains("bulletin.toml") && err.contains("\"fast\" is not a rate limit"),
        "{err}"
    );
}

#[test]
fn serve_check_needs_the_secret_and_a_path_that_ends_in_the_token() {
    let ws = Workspace::for_sending("");
    let err = ws.run(&["serve", "--check"]).bad_input();
    assert!(err.contains("BULLETIN_UNSUBSCRIBE_SECRET"), "{err}");
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(
        out.contains("listen:  127.0.0.1:8480")
            && out.contains("path:    /unsubscribe/{token}")
            && out.contains("created on the first request"),
        "{out}"
    );
    let config = ws.read("bulletin.toml");
    ws.write(
        "bulletin.toml",
        &format!("{config}\n[serve]\npath = \"/unsubscribe\"\n"),
    );
    let err = ws.run_with(&["serve", "--check"], &[SECRET]).bad_input();
    assert!(err.contains("serve.path = \"/unsubscribe\""), "{err}");
}

#[test]
fn suppressions_are_listed_added_and_removed_with_their_history_kept() {
    let ws = Workspace::for_sending("");
    assert_eq!(ws.run(&["suppressions", "list"]).ok(), "");
    ws.run(&["suppressions", "add", "Ana@Example.org"]).ok();
    let list = ws.run(&["suppressions", "list"]).ok();
    assert!(
        list.starts_with("ana@example.org\tunsubscribe\tstaff\t"),
        "{list}"
    );
    // Remove asks why.
    assert_eq!(
        ws.run(&["suppressions", "remove", "ana@example.org"])
            .code(),
        2
    );
    ws.run(&[
        "suppressions",
        "remove",
        "ana@example.org",
        "--reason",
        "asked by phone",
    ])
    .ok();
    assert_eq!(ws.run(&["suppressions", "list"]).ok(), "");
    assert_eq!(events(&ws), 2);
    // The whole history, with the reason, and from a cursor on.
    let export = ws.run(&["suppressions", "export"]).ok();
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines[0], "id,at,address,kind,source,issue,reason");
    assert!(
        lines[1].starts_with("1,") && lines[1].contains(",ana@example.org,unsubscribe,staff,,")
    );
    assert!(lines[2].starts_with("2,") && lines[2].ends_with(",resubscribe,staff,,asked by phone"));
    let later = ws.run(&["suppressions", "export", "--since", "1"]).ok();
    assert_eq!(later.lines().count(), 2, "{later}");
}

/// A GET with a bearer token: (status, body).
fn get_with_token(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The issue's "senders elsewhere": serve's export, pulled by a send in another workspace,
/// which skips a reader who unsubscribed there, and refuses to send when it cannot pull.
#[test]
fn a_send_elsewhere_pulls_the_export_and_refuses_to_send_without_it() {
    const EXPORT: (&str, &str) = ("BULLETIN_EXPORT_TOKEN", "export-token-for-the-tests");
    let server_ws =
        Workspace::for_sending("[serve]\nexport_token_env = \"BULLETIN_EXPORT_TOKEN\"\n");
    let server = Server::start_with_env(&server_ws, &[], &[EXPORT]);
    let (status, _) = http(
        &server.addr,
        "POST",
        &token_path("bo@example.org", SECRET.1),
        ONE_CLICK,
    )
    .unwrap();
    assert_eq!(status, 200);

    // The export answers only to its token.
    for wrong in [None, Some("another-token"), Some("")] {
        let (status, body) = get_with_token(&server.addr, "/suppressions/export", wrong);
        assert_eq!(status, 401, "{wrong:?}");
        assert!(!body.contains("bo@example.org"));
    }
    let (status, body) =
        get_with_token(&server.addr, "/suppressions/export?since=0", Some(EXPORT.1));
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["events"][0]["address"], "bo@example.org", "{page}");
    assert_eq!(page["events"][0]["kind"], "unsubscribe");
    assert_eq!(page["events"][0]["issue"], "2020-06");
    assert_eq!(page["more"], false);
    let (_, after) = get_with_token(
        &server.addr,
        &format!("/suppressions/export?since={}", page["next"]),
        Some(EXPORT.1),
    );
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after["events"].as_array().unwrap().len(), 0, "{after}");
    assert!(!server.log().contains("@example.org"), "{}", server.log());

    // The sender's workspace, elsewhere, pulls before it sends.
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let sender = Workspace::for_sending(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\n\
         [suppressions]\nremote = \"http://{}/suppressions/export\"\ntoken_env = \"BULLETIN_EXPORT_TOKEN\"\n",
        smtp.port, server.addr
    ));
    sender.write(
        "subscribers.csv",
        "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n",
    );
    let args = [
        "send",
        "issues/2020-06.json",
        "--profile",
        "test",
        "--list",
        "subscribers.csv",
        "--yes",
    ];
    let out = sender.run_with(&args, &[SECRET, EXPORT]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(
        out.stderr().contains("Pulled 1 new suppression events"),
        "{}",
        out.stderr()
    );
    assert!(
        out.stdout().contains("Skipped:    1 unsubscribed"),
        "{}",
        out.stdout()
    );
    let got: Vec<String> = smtp.received().into_keys().collect();
    assert_eq!(got, ["ana@example.org", "cy@example.org"]);

    // The next issue: a wrong token, then the server gone. Nothing is sent either time.
    let next = sender.read("issues/2020-06.json");
    sender.write("issues/2020-07.json", &next);
    let args_next = args.map(|a| {
        if a == "issues/2020-06.json" {
            "issues/2020-07.json"
        } else {
            a
        }
    });
    let refused = sender.run_with(&args_next, &[SECRET, ("BULLETIN_EXPORT_TOKEN", "stale")]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("refused the token")
            && refused
                .stderr()
                .contains(&format!("http://{}/suppressions/export", server.addr)),
        "{}",
        refused.stderr()
    );
    assert!(
        !refused.stderr().contains("stale"),
        "the token is never printed"
    );
    drop(server);
    let gone = sender.run_with(&args_next, &[SECRET, EXPORT]);
    assert_eq!(gone.code(), 1, "{}", gone.stderr());
    assert!(
        gone.stderr()
            .contains("cannot reach the suppression export")
            && gone.stderr().contains("--without-remote-suppressions"),
        "{}",
        gone.stderr()
    );
    assert_eq!(
        smtp.received().values().map(Vec::len).sum::<usize>(),
        2,
        "nothing sent"
    );

    // Asked to go on without it: what was pulled before still keeps Bo out.
    let mut forced = args_next.to_vec();
    forced.push("--without-remote-suppressions");
    let out = sender.run_with(&forced, &[SECRET, EXPORT]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(out.stderr().contains("not pulling"), "{}", out.stderr());
    let got = smtp.received();
    assert_eq!(got["ana@example.org"].len(), 2);
    assert!(!got.contains_key("bo@example.org"));
}
