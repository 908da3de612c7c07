//! SendGrid's v3 Mail Send, as documented at
//! <https://www.twilio.com/docs/sendgrid/api-reference/mail-send> (request: `POST
//! /v3/mail/send`, `Authorization: Bearer KEY`, JSON with `from`, `reply_to`, `content` text
//! then HTML, `categories`, `tracking_settings`, and `personalizations` each with `to`,
//! `subject`, `headers`, `substitutions`, `custom_args`; answer: 202 with an empty body and
//! an `X-Message-Id` header), <https://docs.sendgrid.com/api-reference/mail-send/limitations>
//! (1000 personalizations, 10,000 bytes of substitutions each, each address once),
//! <https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors> (400 with
//! `{"errors": [{"message", "field"}]}`, 401 `authorization required`) and
//! <https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits>
//! (429 with `X-RateLimit-Reset` in Unix seconds).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use super::{Fake, answer, ledger, send, unsubscribe_url, workspace};

const KEY: (&str, &str) = ("SENDGRID_API_KEY", "SG.test-key-0000");

fn error(status: u16, message: &str, field: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"errors": [{"message": message, "field": field, "help": null}]}))
}

/// What SendGrid refuses of a request, as its limitations page says, or `None`.
fn invalid(body: &Value) -> Option<(String, String)> {
    let bad = |m: &str, f: &str| Some((m.to_string(), f.to_string()));
    let personalizations = body["personalizations"].as_array()?;
    if personalizations.is_empty() || personalizations.len() > 1000 {
        return bad(
            "The personalizations field is required and must have at least one and at most 1000 personalizations.",
            "personalizations",
        );
    }
    if body["from"]["email"].as_str().is_none() {
        return bad("The from object must be provided", "from");
    }
    let content = body["content"].as_array()?;
    if content.first()?["type"] != "text/plain" || content.get(1)?["type"] != "text/html" {
        return bad("text/plain must come first", "content");
    }
    let mut seen = BTreeSet::new();
    for (i, p) in personalizations.iter().enumerate() {
        let to = p["to"].as_array()?;
        for a in to {
            if !seen.insert(a["email"].as_str()?.to_lowercase()) {
                return bad(
                    "Each email address in the personalization block should be unique",
                    &format!("personalizations.{i}.to"),
                );
            }
            if a["name"].as_str().is_some_and(|n| n.contains([',', ';'])) {
                return bad("to.name cannot contain ; or ,", "personalizations.to.name");
            }
        }
        let subs = serde_json::to_vec(&p["substitutions"]).unwrap().len();
        if to.is_empty() || subs > 10_000 {
            return bad(
                "substitutions may not exceed 10,000 bytes per personalization",
                "personalizations.substitutions",
            );
        }
    }
    None
}

/// SendGrid's answer: 401 for a wrong key, 400 for a request it refuses (or one naming a
/// recipient in `refuse`), else 202 with the request's `X-Message-Id`.
fn sendgrid(refuse: &'static [&'static str]) -> impl wiremock::Respond {
    let count = std::sync::atomic::AtomicUsize::new(0);
    answer(move |r: &Request| {
        let auth = r.headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {}", KEY.1)) {
            return error(
                401,
                "The provided authorization grant is invalid, expired, or revoked",
                None,
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
            return error(400, "Bad Request", None);
        };
        if let Some((message, field)) = invalid(&body) {
            return error(400, &message, Some(&field));
        }
        let text = String::from_utf8_lossy(&r.body);
        if refuse.iter().any(|a| text.contains(a)) {
            return error(
                400,
                "Does not contain a valid address.",
                Some("personalizations.0.to.0.email"),
            );
        }
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ResponseTemplate::new(202).insert_header("X-Message-Id", format!("sg-batch-{n}"))
    })
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "sendgrid",
        &fake.uri(),
        &format!("api_key_env = \"{}\"\n{extra}", KEY.0),
        n,
    )
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.mount(
        Mock::given(method("POST"))
            .and(path("/v3/mail/send"))
            .respond_with(responder),
    );
}

/// The addresses a request is for.
fn recipients(body: &Value) -> Vec<String> {
    body["personalizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["to"][0]["email"].as_str().unwrap().to_string())
        .collect()
}

/// What SendGrid makes of the template for one personalization: each token replaced by its
/// substitution.
fn substituted(template: &str, personalization: &Value) -> String {
    let mut out = template.to_string();
    for (token, value) in personalization["substitutions"].as_object().unwrap() {
        out = out.replace(token, value.as_str().unwrap());
    }
    out
}

#[test]
fn one_template_and_a_personalization_for_each_reader() {
    let fake = Fake::start();
    mount(&fake, sendgrid(&[]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("SendGrid API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.headers["content-type"].to_str().unwrap(),
            "application/json"
        );
        assert_eq!(r.headers["accept"].to_str().unwrap(), "application/json");
    }
    let bodies = fake.json_bodies();
    let body = &bodies[0];
    assert_eq!(
        body["from"],
        json!({"email": "newsletter@example.org", "name": "Efus"})
    );
    assert_eq!(body["reply_to"], json!({"email": "contact@example.org"}));
    assert_eq!(body["categories"], json!(["2020-06"]));
    assert_eq!(
        body["tracking_settings"]["subscription_tracking"]["enable"], false,
        "SendGrid's own List-Unsubscribe would clash with the reader's"
    );
    let text = body["content"][0]["value"].as_str().unwrap();
    let html = body["content"][1]["value"].as_str().unwrap();
    assert!(
        text.contains("-bltn") && html.contains("-bltn"),
        "a template"
    );
    assert!(
        !html.contains("&lt;b&gt;&amp;&lt;/b&gt;") && !html.contains("Reader1"),
        "no reader's name in the template"
    );

    let all: Vec<&Value> = bodies
        .iter()
        .flat_map(|b| b["personalizations"].as_array().unwrap())
        .collect();
    assert_eq!(all.len(), 3, "one personalization per reader");
    let first = all
        .iter()
        .find(|p| p["to"][0]["email"] == "reader0@example.org")
        .unwrap();
    assert_eq!(
        first["to"],
        json!([{"email": "reader0@example.org", "name": "Mariusz Czepczyński"}])
    );
    assert!(
        first["subject"]
            .as_str()
            .unwrap()
            .starts_with("Efus newsletter")
    );
    // Filled by SendGrid, the template is the reader's own message: the name escaped in
    // the HTML, as written in the text, their own unsubscribe link in both.
    let own_html = substituted(html, first);
    let own_text = substituted(text, first);
    assert!(
        own_html.contains("Czepczyński &lt;b&gt;&amp;&lt;/b&gt;"),
        "the name in the HTML"
    );
    assert!(
        own_text.contains("Czepczyński <b>&</b>"),
        "the name in the text"
    );
    let link = unsubscribe_url("reader0@example.org");
    assert!(own_text.contains(&link), "the unsubscribe link in the text");
    assert!(
        own_html.contains(&link.replace('&', "&amp;")),
        "and in the HTML"
    );
    assert!(!own_html.contains("-bltn") && !own_text.contains("-bltn"));
    let headers = &first["headers"];
    let unsubscribe = headers["List-Unsubscribe"].as_str().unwrap();
    assert!(unsubscribe.contains(&link), "{unsubscribe}");
    assert!(unsubscribe.contains("mailto:unsubscribe@example.org"));
    assert_eq!(
        headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        headers["List-Id"]
            .as_str()
            .unwrap()
            .contains("newsletter.example.org")
    );
    let id = first["custom_args"]["bulletin_message_id"]
        .as_str()
        .unwrap();
    assert!(
        id.starts_with("<2020-06.") && id.ends_with("@example.org>"),
        "{id}"
    );
    // Each reader has their own link.
    let other = all
        .iter()
        .find(|p| p["to"][0]["email"] == "reader1@example.org")
        .unwrap();
    assert!(
        other["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .contains(&unsubscribe_url("reader1@example.org"))
    );
    assert!(substituted(text, other).contains("Reader1"));

    let held = ledger(ws.path());
    assert_eq!(held.len(), 3);
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}");
        assert!(reply.contains("X-Message-Id sg-batch-"), "{who}: {reply}");
    }
    let again = send(&ws, &[KEY], &[]).ok();
    assert!(again.contains("Already sent before: 3"), "{again}");
    assert_eq!(fake.requests().len(), 2, "the second run sends nothing");
}

#[test]
fn a_refused_request_fails_its_readers_and_the_other_requests_go() {
    let fake = Fake::start();
    mount(&fake, sendgrid(&["reader1@example.org"]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 1, "failed recipients fail the run");
    let stdout = out.stdout();
    assert!(
        stdout.contains("Does not contain a valid address."),
        "{stdout}"
    );
    let refused: Vec<String> = fake
        .json_bodies()
        .iter()
        .map(recipients)
        .find(|r| r.contains(&"reader1@example.org".to_string()))
        .unwrap();
    let held = ledger(ws.path());
    for (who, (state, reply)) in &held {
        if refused.contains(who) {
            assert_eq!(state, "failed_permanent", "{who}");
            assert!(
                reply.contains("HTTP 400")
                    && reply.contains(
                        "Does not contain a valid address. (personalizations.0.to.0.email)"
                    ),
                "{who}: {reply}"
            );
        } else {
            assert_eq!(state, "sent", "{who}");
        }
    }
    assert_eq!(
        fake.requests().len(),
        2,
        "a refused request is not sent again"
    );
}

#[test]
fn a_reader_whose_values_are_too_big_for_sendgrid_fails_alone() {
    let fake = Fake::start();
    mount(&fake, sendgrid(&[]));
    let ws = profile(&fake, "", 3);
    let huge = "x".repeat(6000);
    ws.write(
        "subscribers.csv",
        &format!(
            "email,first_name,name\nreader0@example.org,Ann,Ann\nbig@example.org,{huge},Big\nreader2@example.org,Bob,Bob\n"
        ),
    );
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 1);
    let held = ledger(ws.path());
    let (state, reply) = &held["big@example.org"];
    assert_eq!(state, "failed_permanent");
    assert!(reply.contains("at most 10000"), "{reply}");
    assert_eq!(held["reader0@example.org"].0, "sent");
    assert_eq!(held["reader2@example.org"].0, "sent");
    let bodies = fake.json_bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        recipients(&bodies[0]),
        ["reader0@example.org", "reader2@example.org"],
        "the big reader is left out of the request SendGrid would refuse whole"
    );
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    let reset = || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (now.as_secs() + 2).to_string()
    };
    // (first answer, the longest the run may take: a wait read from the answer, not the
    // 5 s bulletin waits after a 429 that does not say)
    for (first, within) in [
        (
            error(429, "too many requests", None).insert_header("Retry-After", "1"),
            4,
        ),
        // SendGrid documents X-RateLimit-Reset (Unix seconds), not Retry-After.
        (
            error(429, "too many requests", None).insert_header("X-RateLimit-Reset", reset()),
            4,
        ),
        (
            ResponseTemplate::new(503).set_body_string("Service Unavailable"),
            60,
        ),
    ] {
        let fake = Fake::start();
        let ok = sendgrid(&[]);
        let seen = std::sync::atomic::AtomicUsize::new(0);
        mount(
            &fake,
            answer(move |r: &Request| {
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    first.clone()
                } else {
                    wiremock::Respond::respond(&ok, r)
                }
            }),
        );
        let ws = profile(&fake, "", 3);
        let started = std::time::Instant::now();
        let out = send(&ws, &[KEY], &[]).ok();
        assert!(out.contains("Sent: 3"), "{out}");
        let requests = fake.requests();
        assert_eq!(
            requests.len(),
            2,
            "the refused request, then the same again"
        );
        assert_eq!(
            requests[0].body, requests[1].body,
            "the same batch is retried"
        );
        assert!(ledger(ws.path()).values().all(|(state, _)| state == "sent"));
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_secs(1),
            "the retry waited"
        );
        assert!(
            took < std::time::Duration::from_secs(within),
            "waited as told: {took:?}"
        );
    }
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    mount(&fake, sendgrid(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "SG.wrong-key-1234");
    let out = send(&ws, &[wrong], &[]);
    assert_eq!(out.code(), 1);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("SENDGRID_API_KEY"), "{all}");
    assert!(all.contains("HTTP 401"), "{all}");
    assert!(
        !all.contains("SG.wrong-key-1234"),
        "the key is never printed"
    );
    assert_eq!(fake.requests().len(), 1, "no more requests after a 401");
    assert!(
        all.contains("Not tried (the run stopped first): 4"),
        "{all}"
    );
    assert!(ledger(ws.path()).values().all(|(state, _)| state != "sent"));
}

#[test]
fn a_dry_run_writes_the_requests_with_the_key_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let out = send(&ws, &[KEY], &["--dry-run", "out"]).ok();
    assert!(out.contains("dry run"), "{out}");
    assert!(fake.requests().is_empty(), "a dry run sends nothing");
    let mut files: Vec<_> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let requests: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    for (file, request) in files.iter().zip(&requests) {
        assert!(!std::fs::read_to_string(file).unwrap().contains(KEY.1));
        assert_eq!(request["url"], format!("{}/v3/mail/send", fake.uri()));
        assert_eq!(request["headers"]["Authorization"], "Bearer [redacted]");
    }
    let readers: usize = requests.iter().map(|r| recipients(&r["body"]).len()).sum();
    assert_eq!(readers, 3);

    // An EU account goes to SendGrid's EU host; no key is needed for a dry run.
    let ws2 = profile(&fake, "region = \"eu\"", 1);
    let config = ws2.read("bulletin.toml");
    let config: String = config
        .lines()
        .filter(|l| !l.starts_with(&format!("endpoint = \"{}\"", fake.uri())))
        .map(|l| format!("{l}\n"))
        .collect();
    ws2.write("bulletin.toml", &config);
    assert!(
        send(&ws2, &[], &["--dry-run", "out"])
            .ok()
            .contains("Sent: 1")
    );
    let written = std::fs::read_to_string(ws2.path().join("out/request-00001.json")).unwrap();
    let request: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(request["url"], "https://api.eu.sendgrid.com/v3/mail/send");
}
