//! Brevo's transactional email endpoint, as documented at
//! <https://developers.brevo.com/reference/sendtransacemail> (request: `POST /v3/smtp/email`
//! with an `api-key` header and a JSON body holding `sender`, `replyTo`, `subject`,
//! `htmlContent`, `textContent`, `tags`, `headers` and `messageVersions`, each version with
//! `to` [{email, name}] and its own subject and contents; answer: 201 with `messageIds`;
//! errors `{code, message}`), <https://developers.brevo.com/docs/batch-send-transactional-emails>
//! (up to 1000 versions), <https://developers.brevo.com/docs/heterogenous-versions-batch-emails>
//! (`headers.idempotencyKey`) and <https://developers.brevo.com/docs/limit-headers> (429 with
//! `x-sib-ratelimit-reset` in seconds). A version's `headers` is not documented; the fake takes
//! it as Brevo does for django-anymail.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use super::{Fake, answer, ledger, send, unsubscribe_url, workspace};

const KEY: (&str, &str) = ("BREVO_API_KEY", "xkeysib-test-key-0000");

fn invalid(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"code": "invalid_parameter", "message": message}))
}

/// Brevo's answer: 401 without the key; 400 for a body Brevo would refuse, or for a request
/// with a recipient in `refused` (Brevo takes or refuses a request whole); else 201 with a
/// message ID for each version.
fn brevo(refused: &'static [&'static str]) -> impl wiremock::Respond {
    answer(move |r: &Request| {
        if r.headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(KEY.1) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"code": "unauthorized", "message": "Key not found"}));
        }
        if r.headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return invalid("Content-Type must be application/json");
        }
        let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
            return invalid("Input must be a valid JSON object");
        };
        if body["sender"]["email"].as_str().is_none()
            || body["subject"].as_str().is_none()
            || body["htmlContent"].as_str().is_none()
        {
            return ResponseTemplate::new(400).set_body_json(
                json!({"code": "missing_parameter", "message": "sender, subject and htmlContent are required"}),
            );
        }
        let Some(versions) = body["messageVersions"].as_array() else {
            return invalid("messageVersions is not an array");
        };
        if versions.is_empty() || versions.len() > 1000 {
            return invalid("messageVersions must hold 1 to 1000 versions");
        }
        let headers_are_strings = |h: &Value| {
            h.as_object()
                .is_none_or(|h| h.values().all(|v| v.as_str().is_some_and(str::is_ascii)))
        };
        if !headers_are_strings(&body["headers"]) {
            return invalid("Invalid headers");
        }
        for v in versions {
            let Some(to) = v["to"]
                .as_array()
                .filter(|t| !t.is_empty() && t.len() <= 99)
            else {
                return invalid("to is missing in messageVersions");
            };
            if !headers_are_strings(&v["headers"]) {
                return invalid("Invalid headers");
            }
            for t in to {
                let email = t["email"].as_str().unwrap_or("");
                if refused.contains(&email) {
                    return invalid(&format!("email is not valid in to: {email}"));
                }
            }
        }
        let ids: Vec<String> = versions
            .iter()
            .map(|v| {
                format!(
                    "<brevo.{}@smtp-relay.mailin.fr>",
                    v["to"][0]["email"].as_str().unwrap_or("")
                )
            })
            .collect();
        ResponseTemplate::new(201).set_body_json(json!({"messageIds": ids}))
    })
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "brevo",
        &fake.uri(),
        &format!("api_key_env = \"{}\"\n{extra}", KEY.0),
        n,
    )
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.mount(
        Mock::given(method("POST"))
            .and(path("/v3/smtp/email"))
            .respond_with(responder),
    );
}

/// The version of `address` among all requests' versions, with the request's body.
fn version_of<'a>(bodies: &'a [Value], address: &str) -> (&'a Value, &'a Value) {
    bodies
        .iter()
        .flat_map(|b| {
            b["messageVersions"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |v| (b, v))
        })
        .find(|(_, v)| v["to"][0]["email"] == address)
        .unwrap_or_else(|| panic!("no version for {address}"))
}

#[test]
fn versions_carry_each_readers_own_message_and_unsubscribe_link() {
    let fake = Fake::start();
    mount(&fake, brevo(&[]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Brevo API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.headers.get("accept").unwrap(), "application/json");
        assert!(
            r.headers.get("authorization").is_none(),
            "the key goes in api-key"
        );
    }
    let bodies = fake.json_bodies();
    let (body, first) = version_of(&bodies, "reader0@example.org");
    // What every reader shares is given once.
    assert_eq!(
        body["sender"],
        json!({"email": "newsletter@example.org", "name": "Efus"})
    );
    assert_eq!(body["replyTo"], json!({"email": "contact@example.org"}));
    assert_eq!(body["tags"], json!(["2020-06"]));
    assert_eq!(
        body["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        body["headers"]["List-Id"]
            .as_str()
            .unwrap()
            .contains("newsletter.example.org")
    );
    assert!(
        body["headers"].get("List-Unsubscribe").is_none(),
        "nobody gets another reader's link"
    );
    assert!(body["htmlContent"].as_str().unwrap().contains("<html"));
    // Each reader's own message.
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
    let html = first["htmlContent"].as_str().unwrap();
    let text = first["textContent"].as_str().unwrap();
    assert!(
        html.contains("Czepczyński &lt;b&gt;&amp;&lt;/b&gt;"),
        "the name in the HTML"
    );
    assert!(
        text.contains("Czepczyński <b>&</b>"),
        "the name in the text"
    );
    let link = first["headers"]["List-Unsubscribe"].as_str().unwrap();
    assert!(
        link.contains(&unsubscribe_url("reader0@example.org")),
        "{link}"
    );
    assert!(link.contains("mailto:unsubscribe@example.org"), "{link}");
    let (_, second) = version_of(&bodies, "reader1@example.org");
    assert!(
        second["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .contains(&unsubscribe_url("reader1@example.org"))
    );
    assert!(second["textContent"].as_str().unwrap().contains("Reader1"));
    // An idempotency key per request, shaped as the UUID Brevo asks for.
    let keys: Vec<&str> = bodies
        .iter()
        .map(|b| b["headers"]["idempotencyKey"].as_str().unwrap())
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.len() == 36 && k.matches('-').count() == 4),
        "{keys:?}"
    );
    assert_ne!(keys[0], keys[1]);

    let held = ledger(ws.path());
    assert_eq!(held.len(), 3);
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}");
        assert!(
            reply.contains(&format!("messageId <brevo.{who}@")),
            "{who}: {reply}"
        );
    }
    // A second run sends nothing: everybody has it.
    let again = send(&ws, &[KEY], &[]).ok();
    assert!(again.contains("Already sent before: 3"), "{again}");
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn a_refused_request_fails_its_readers_and_the_other_requests_are_sent() {
    let fake = Fake::start();
    mount(&fake, brevo(&["reader1@example.org"]));
    let ws = profile(&fake, "batch_size = 2", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 1, "a failed recipient fails the run");
    let stdout = out.stdout();
    assert!(stdout.contains("email is not valid in to"), "{stdout}");
    // Brevo takes or refuses a request whole: whoever shared a request with reader1 failed
    // with them, and only they.
    let bodies = fake.json_bodies();
    assert_eq!(bodies.len(), 2);
    let held = ledger(ws.path());
    assert_eq!(held.len(), 4);
    for body in &bodies {
        let readers: Vec<&str> = body["messageVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["to"][0]["email"].as_str().unwrap())
            .collect();
        let refused = readers.contains(&"reader1@example.org");
        for r in readers {
            let (state, reply) = &held[r];
            if refused {
                assert_eq!(state, "failed_permanent", "{r}");
                assert!(
                    reply.contains("HTTP 400")
                        && reply.contains("invalid_parameter: email is not valid in to"),
                    "{r}: {reply}"
                );
            } else {
                assert_eq!(state, "sent", "{r}");
            }
        }
    }
    assert!(
        stdout.contains("Sent: 2") && stdout.contains("Failed: 2"),
        "{stdout}"
    );
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    for first in [
        // What Brevo documents for a 429: the rate-limit headers, reset in seconds.
        ResponseTemplate::new(429)
            .insert_header("x-sib-ratelimit-limit", "100")
            .insert_header("x-sib-ratelimit-remaining", "0")
            .insert_header("x-sib-ratelimit-reset", "1")
            .set_body_json(json!({"code": "too_many_requests", "message": "Too many requests"})),
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(json!({"code": "too_many_requests", "message": "Too many requests"})),
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
    ] {
        let fake = Fake::start();
        let status = first.clone();
        let ok = brevo(&[]);
        let seen = std::sync::atomic::AtomicUsize::new(0);
        mount(
            &fake,
            answer(move |r: &Request| {
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    status.clone()
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
            "the same batch, with the same idempotency key, is retried"
        );
        assert!(ledger(ws.path()).values().all(|(state, _)| state == "sent"));
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(1),
            "the retry waited (the reset header: 1 s; a 5xx backs off 2 s)"
        );
    }
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    mount(&fake, brevo(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "xkeysib-wrong-key-1234");
    let out = send(&ws, &[wrong], &[]);
    assert_eq!(out.code(), 1);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("BREVO_API_KEY"), "{all}");
    assert!(
        all.contains("HTTP 401") && all.contains("Key not found"),
        "{all}"
    );
    assert!(
        !all.contains("xkeysib-wrong-key-1234"),
        "the key is never printed"
    );
    assert!(all.contains("run the same command again"), "{all}");
    assert_eq!(fake.requests().len(), 1, "no more requests after a 401");
    assert!(
        all.contains("Not tried (the run stopped first): 4"),
        "{all}"
    );
    assert!(
        ledger(ws.path()).values().all(|(state, _)| state != "sent"),
        "nothing recorded as sent"
    );
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
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(KEY.1), "the key is redacted");
    let request: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(request["url"], format!("{}/v3/smtp/email", fake.uri()));
    assert_eq!(request["headers"]["api-key"], "[redacted]");
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| {
            let r: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            r["body"]["messageVersions"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 3, "{sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 2), "{sizes:?}");
    // Without the key in the environment, a dry run still works.
    let ws2 = profile(&fake, "", 1);
    assert!(
        send(&ws2, &[], &["--dry-run", "out"])
            .ok()
            .contains("Sent: 1")
    );
}
