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

use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{Run, Workspace, repo};

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

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }

    /// Every request's body as JSON.
    pub fn json_bodies(&self) -> Vec<serde_json::Value> {
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
    let ws = Workspace::with_sample();
    let sample = ws.read("issues/2020-06.json").replacen(
        "\"language\": \"en\",",
        "\"language\": \"en\",\n  \"images_url\": \"https://example.org/newsletter/2020-06/\",",
        1,
    );
    ws.write("issues/2020-06.json", &sample);
    let config = std::fs::read_to_string(repo().join("bulletin.toml")).unwrap()
        + &format!(
            "\n[profiles.api]\ntransport = \"{transport}\"\nendpoint = \"{endpoint}\"\n{settings}\n"
        );
    ws.write("bulletin.toml", &config);
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

/// The reader's unsubscribe token, computed as the binary does (HMAC-SHA256 of the address,
/// with the test secret) so that a test can check a header carries the reader's own link.
pub fn unsubscribe_url(address: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.1.as_bytes()).unwrap();
    mac.update(address.to_lowercase().as_bytes());
    let token: String = mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let email = address.replace('@', "%40");
    format!("https://example.org/unsubscribe?email={email}&token={token}")
}
