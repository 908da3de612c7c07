//! `bulletin send` through providers' HTTP APIs, each against a local fake of the provider
//! (wiremock on 127.0.0.1) that checks method, path, credentials and body against the
//! provider's published API reference (cited in each module), and answers as the provider
//! documents: success, a partial failure, 429 with Retry-After, 5xx then success, 401.
//! After each run the test reads the ledger (a real SQLite file) to see what it holds.

mod brevo;
mod mailgun;
mod mailjet;
mod postmark;
mod resend;
mod resume;
mod sendgrid;
mod ses;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{Run, Workspace};

pub const SECRET: (&str, &str) = (
    "BULLETIN_UNSUBSCRIBE_SECRET",
    "test-secret-not-for-production",
);

/// A fake provider on 127.0.0.1, on a runtime of its own so that tests stay synchronous
/// while the binary talks to it.
pub struct Fake {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Fake {
    pub fn start() -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(MockServer::start());
        Fake { runtime, server }
    }

    /// The base URL: `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn mount(&self, mock: Mock) {
        self.runtime.block_on(mock.mount(&self.server));
    }

    /// Answers every `POST path` with `responder`.
    pub fn on_post(&self, path: &str, responder: impl Respond + 'static) {
        self.mount(
            Mock::given(method("POST"))
                .and(wiremock::matchers::path(path))
                .respond_with(responder),
        );
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }

    /// Every POST request's body as JSON (look-ups are GETs without a body).
    pub fn json_bodies_of_posts(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
            .collect()
    }

    /// Every request's body as JSON.
    pub fn json_bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
            .collect()
    }
}

/// A responder from a function of the request (a closure that checks it and answers).
pub fn answer(
    f: impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static,
) -> impl wiremock::Respond {
    move |r: &Request| f(r)
}

/// Answers the first request with `first` (a 429, a 5xx…), then every one as `then` does:
/// a provider that is throttled or fails once, then is its usual self.
pub fn first_then(first: impl Respond + 'static, then: impl Respond + 'static) -> impl Respond {
    let seen = AtomicUsize::new(0);
    answer(move |r: &Request| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            first.respond(r)
        } else {
            then.respond(r)
        }
    })
}

/// Answers with each template in turn, then the last one for ever.
pub struct InTurn {
    answers: Vec<ResponseTemplate>,
    next: std::sync::atomic::AtomicUsize,
}

impl InTurn {
    pub fn new(answers: Vec<ResponseTemplate>) -> InTurn {
        InTurn {
            answers,
            next: Default::default(),
        }
    }
}

impl wiremock::Respond for InTurn {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.answers[n.min(self.answers.len() - 1)].clone()
    }
}

/// A workspace with the sample (images published), a profile named `api` for the fake with
/// the given `transport` and extra settings, and a list of `n` subscribers
/// (`reader0@example.org`…, first names `Reader0`…); the first is "Czepczyński <b>&</b>".
pub fn workspace(transport: &str, endpoint: &str, settings: &str, n: usize) -> Workspace {
    let ws = Workspace::for_sending(&format!(
        "[profiles.api]\ntransport = \"{transport}\"\nendpoint = \"{endpoint}\"\n{settings}\n"
    ));
    let mut list = String::from("email,first_name,name\n");
    for i in 0..n {
        if i == 0 {
            list.push_str("reader0@example.org,Czepczyński <b>&</b>,Mariusz Czepczyński\n");
        } else {
            list.push_str(&format!("reader{i}@example.org,Reader{i},Reader {i}\n"));
        }
    }
    ws.write("subscribers.csv", &list);
    ws
}

/// `bulletin send issues/2020-06.json --profile api --list subscribers.csv --yes` with the
/// unsubscribe secret and `env` set.
pub fn send(ws: &Workspace, env: &[(&str, &str)], extra: &[&str]) -> Run {
    let mut args = vec![
        "send",
        "issues/2020-06.json",
        "--profile",
        "api",
        "--list",
        "subscribers.csv",
        "--yes",
    ];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(SECRET);
    ws.run_with(&args, &env)
}

/// What the ledger holds for the sample issue: recipient → (state, reply).
pub fn ledger(ws: &Path) -> BTreeMap<String, (String, String)> {
    let conn = rusqlite::Connection::open(ws.join(".bulletin/ledger.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT recipient, state, coalesce(reply, '') FROM deliveries WHERE issue = '2020-06'",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The reader's unsubscribe link, made as the binary makes it (their address sealed with the
/// test secret, the library's own `seal`), so that a test can check a header carries the
/// reader's own link.
pub fn unsubscribe_url(address: &str) -> String {
    let secret = bulletin::config::Secret::new(SECRET.1);
    let token = bulletin::message::unsubscribe::seal(&secret, &address.parse().unwrap(), "2020-06");
    format!("https://example.org/unsubscribe/{token}")
}

/// The first reader's own message ("Czepczyński <b>&</b>"): the subject, the name
/// escaped in the HTML, as written in the text.
pub fn assert_first_readers_message(subject: &str, html: &str, text: &str) {
    assert!(subject.starts_with("Efus newsletter"), "{subject}");
    assert!(
        html.contains("Czepczyński &lt;b&gt;&amp;&lt;/b&gt;"),
        "the name in the HTML"
    );
    assert!(
        text.contains("Czepczyński <b>&</b>"),
        "the name in the text"
    );
}

/// A List-Unsubscribe value holds the reader's own link (not another reader's) and the
/// mailto address.
pub fn assert_own_unsubscribe(header: &str, address: &str) {
    assert!(header.contains(&unsubscribe_url(address)), "{header}");
    assert!(
        header.contains("mailto:unsubscribe@example.org"),
        "{header}"
    );
}

/// The list headers of `address`'s message: their own List-Unsubscribe, one-click
/// List-Unsubscribe-Post, and the newsletter's List-Id.
pub fn assert_list_headers(unsubscribe: &str, post: &str, list_id: &str, address: &str) {
    assert_own_unsubscribe(unsubscribe, address);
    assert_eq!(post, "List-Unsubscribe=One-Click");
    assert!(list_id.contains("newsletter.example.org"), "{list_id}");
}

/// After a run that went well: the ledger has each of the `readers` sent, with a reply that
/// `reply_ok(recipient, reply)` accepts (the provider's message ID); a second run with `env`
/// says everybody has it already and sends no request.
pub fn assert_all_sent_and_not_again(
    fake: &Fake,
    ws: &Workspace,
    env: &[(&str, &str)],
    readers: usize,
    reply_ok: impl Fn(&str, &str) -> bool,
) {
    let held = ledger(ws.path());
    assert_eq!(held.len(), readers);
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}");
        assert!(reply_ok(who, reply), "{who}: {reply}");
    }
    let before = fake.requests().len();
    let again = send(ws, env, &[]).ok();
    assert!(
        again.contains(&format!("Already sent before: {readers}")),
        "{again}"
    );
    assert_eq!(
        fake.requests().len(),
        before,
        "the second run sends nothing"
    );
}

/// A run with `env` whose first request is refused for a while (a 429 or a 5xx, see
/// [`first_then`]): it succeeds with all `readers` sent; the refused request goes again, the
/// same, and `requests` go in all; the ledger has everybody sent; and the retry waited (at
/// least the 1 s the 429s say; a 5xx backs off longer). Returns the requests.
pub fn assert_retried_once_and_all_sent(
    fake: &Fake,
    ws: &Workspace,
    env: &[(&str, &str)],
    readers: usize,
    requests: usize,
) -> Vec<Request> {
    let started = Instant::now();
    let stdout = send(ws, env, &[]).ok();
    assert!(stdout.contains(&format!("Sent: {readers}")), "{stdout}");
    let received = fake.requests();
    assert_eq!(
        received.len(),
        requests,
        "the refused request, then the same again (and any others)"
    );
    assert_eq!(
        received[0].body, received[1].body,
        "the same batch is retried"
    );
    let held = ledger(ws.path());
    assert_eq!(held.len(), readers);
    assert!(held.values().all(|(state, _)| state == "sent"), "{held:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry waited"
    );
    received
}

/// After a run in which the provider refused the requests holding `refused`: the ledger has
/// its `readers`, those in `refused` failed for good with a reply holding each of
/// `reply_has`, and all others sent.
pub fn assert_only_refused_failed(
    ws: &Workspace,
    readers: usize,
    refused: &[&str],
    reply_has: &[&str],
) {
    let held = ledger(ws.path());
    assert_eq!(held.len(), readers, "{held:?}");
    for (who, (state, reply)) in &held {
        if refused.contains(&who.as_str()) {
            assert_eq!(state, "failed_permanent", "{who}");
            for part in reply_has {
                assert!(reply.contains(part), "{who}: {reply}");
            }
        } else {
            assert_eq!(state, "sent", "{who}");
        }
    }
}

/// After a run with a wrong secret in one of the variables `names` (all of them the
/// profile's credentials): it failed (exit 3: readers remain), named each variable, said the
/// HTTP status (`status_text`, e.g. "HTTP 401"), never printed `wrong_secret`, told how to
/// resume; it made one request and stopped (the profile sends 5 readers one a request), and
/// nobody is recorded as sent or failed: all five are pending, the refused one too.
pub fn assert_refused_key_stops_at_once(
    out: &Run,
    fake: &Fake,
    ws: &Workspace,
    names: &[&str],
    wrong_secret: &str,
    status_text: &str,
) {
    assert_eq!(out.code(), 3);
    let all = format!("{}{}", out.stdout(), out.stderr());
    for name in names {
        assert!(all.contains(name), "{name} is named: {all}");
    }
    assert!(all.contains(status_text), "{all}");
    assert!(!all.contains(wrong_secret), "the secret is never printed");
    assert!(all.contains("run the same command again"), "{all}");
    assert_eq!(
        fake.requests().len(),
        1,
        "no more requests after a refused key"
    );
    assert!(
        all.contains("Not tried (the run stopped first): 5"),
        "{all}"
    );
    assert!(
        all.contains("stopped: the credentials were refused"),
        "{all}"
    );
    assert!(
        !all.contains("relay") && !all.contains("password"),
        "an API key is not a relay's password: {all}"
    );
    assert!(
        ledger(ws.path())
            .values()
            .all(|(state, _)| state == "pending"),
        "nothing recorded as sent or failed"
    );
}

/// The requests a dry run wrote in `out/`, in order: each file's text and its JSON. They are
/// `request-00001.json`, `request-00002.json`…
pub fn dry_run_files(ws: &Workspace) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            assert_eq!(
                file.file_name().unwrap().to_str().unwrap(),
                format!("request-{:05}.json", i + 1)
            );
            let text = std::fs::read_to_string(file).unwrap();
            let request = serde_json::from_str(&text).unwrap();
            (text, request)
        })
        .collect()
}

/// `send --dry-run out` with `env` set, and what every provider's dry run shares: it says it
/// is one; nothing reaches the fake; no value of `env` (the credentials) is in any file it
/// wrote; the files hold `messages` messages between them, at most `batch` each, as `count`
/// counts them in a request's body. Returns the files ([`dry_run_files`]).
pub fn assert_dry_run(
    fake: &Fake,
    ws: &Workspace,
    env: &[(&str, &str)],
    messages: usize,
    batch: usize,
    count: impl Fn(&Value) -> usize,
) -> Vec<(String, Value)> {
    let out = send(ws, env, &["--dry-run", "out"]).ok();
    assert!(out.contains("dry run"), "{out}");
    assert!(fake.requests().is_empty(), "a dry run sends nothing");
    let files = dry_run_files(ws);
    assert_eq!(files.len(), messages.div_ceil(batch), "{batch} a request");
    for (text, _) in &files {
        for (name, value) in env {
            assert!(!text.contains(value), "{name} is redacted: {text}");
        }
    }
    let sizes: Vec<usize> = files.iter().map(|(_, r)| count(&r["body"])).collect();
    assert_eq!(sizes.iter().sum::<usize>(), messages, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= batch), "{sizes:?}");
    files
}

/// A dry run needs no credentials: without them in the environment, the one reader of `ws`
/// is "sent". Returns the one request written.
pub fn dry_run_without_credentials(ws: &Workspace) -> Value {
    let out = send(ws, &[], &["--dry-run", "out"]).ok();
    assert!(out.contains("Sent: 1"), "{out}");
    let mut files = dry_run_files(ws);
    assert_eq!(files.len(), 1);
    files.remove(0).1
}
