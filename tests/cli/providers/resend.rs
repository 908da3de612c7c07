//! Resend's batch endpoint, as documented at
//! <https://resend.com/docs/api-reference/emails/send-batch-emails> (request: `POST
//! /emails/batch`, `Authorization: Bearer KEY`, a JSON array of up to 100 emails with from,
//! to, subject, html, text, reply_to, headers {name: string}, tags [{name, value}] where names
//! and values are ASCII letters, digits, `_` and `-`; answer: 200 `{"data": [{"id"}…]}` in
//! the request's order), <https://resend.com/docs/dashboard/emails/idempotency-keys> (the
//! `Idempotency-Key` header: the same key and payload within 24 hours get the first answer
//! and are not sent again; the same key with another payload is a 409
//! `invalid_idempotent_request`), <https://resend.com/docs/api-reference/errors> (errors as
//! `{statusCode, name, message}`: 401 for a bad key, 422 `validation_error` for the whole
//! batch, 429 `rate_limit_exceeded`, `daily_quota_exceeded`, `monthly_quota_exceeded`) and
//! <https://resend.com/docs/api-reference/rate-limit> (429 with `retry-after` in seconds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use super::{Fake, answer, ledger, send, unsubscribe_url, workspace};

const KEY: (&str, &str) = ("RESEND_API_KEY", "re_test_key_0000");

/// A fake Resend account: it checks each request against the documented API, remembers
/// idempotency keys as Resend does (the same key and body → the first answer again, nothing
/// sent; the same key and another body → 409), and keeps the emails it "sent".
#[derive(Default)]
struct Account {
    /// Idempotency key → (body, answer).
    keys: Mutex<HashMap<String, (Vec<u8>, Value)>>,
    /// The recipients of every email sent, once per delivery.
    delivered: Mutex<Vec<String>>,
    /// Emails to this address fail validation (strict mode: the whole batch is refused).
    invalid: Option<&'static str>,
}

fn error(status: u16, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"statusCode": status, "name": name, "message": message}))
}

fn tag_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Account {
    fn new(invalid: Option<&'static str>) -> Arc<Account> {
        Arc::new(Account {
            invalid,
            ..Default::default()
        })
    }

    fn answer(&self, r: &Request) -> ResponseTemplate {
        let auth = r.headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {}", KEY.1)) {
            return error(401, "validation_error", "API key is invalid");
        }
        if r.headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return error(
                422,
                "validation_error",
                "Content-Type must be application/json",
            );
        }
        let Some(key) = r
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
        else {
            panic!("bulletin sends every batch with an Idempotency-Key");
        };
        if key.is_empty() || key.len() > 256 {
            return error(400, "invalid_idempotency_key", "must be 1-256 characters");
        }
        if let Some((body, first)) = self.keys.lock().unwrap().get(key) {
            return if *body == r.body {
                ResponseTemplate::new(200).set_body_json(first.clone())
            } else {
                error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload.",
                )
            };
        }
        let Ok(Value::Array(emails)) = serde_json::from_slice::<Value>(&r.body) else {
            return error(
                422,
                "validation_error",
                "the body must be an array of emails",
            );
        };
        if emails.is_empty() || emails.len() > 100 {
            return error(422, "validation_error", "between 1 and 100 emails");
        }
        for e in &emails {
            if let Some(problem) = self.problem(e) {
                return error(422, "validation_error", &problem);
            }
        }
        let data: Vec<Value> = emails
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"id": format!("re-{}-{i}", &key[..8])}))
            .collect();
        let reply = json!({ "data": data });
        let mut delivered = self.delivered.lock().unwrap();
        for e in &emails {
            delivered.push(e["to"][0].as_str().unwrap().to_string());
        }
        self.keys
            .lock()
            .unwrap()
            .insert(key.to_string(), (r.body.clone(), reply.clone()));
        ResponseTemplate::new(200).set_body_json(reply)
    }

    /// What Resend would refuse in one email, if anything.
    fn problem(&self, e: &Value) -> Option<String> {
        for field in ["from", "subject", "html", "text"] {
            if !e[field].is_string() {
                return Some(format!("Missing `{field}` field."));
            }
        }
        let to = e["to"].as_array()?;
        if to.is_empty() || to.len() > 50 {
            return Some("`to` takes 1 to 50 addresses".into());
        }
        if let Some(bad) = self.invalid
            && to[0].as_str().unwrap().contains(bad)
        {
            return Some(format!("Invalid `to` field: {bad} is not a valid address"));
        }
        if !e["headers"].as_object()?.values().all(Value::is_string) {
            return Some("header values must be strings".into());
        }
        for tag in e["tags"].as_array()? {
            if !tag_ok(tag["name"].as_str()?) || !tag_ok(tag["value"].as_str()?) {
                return Some(
                    "Tags should only contain ASCII letters, numbers, underscores, or dashes"
                        .into(),
                );
            }
        }
        None
    }
}

fn mount(fake: &Fake, account: &Arc<Account>) {
    let account = Arc::clone(account);
    fake.mount(
        Mock::given(method("POST"))
            .and(path("/emails/batch"))
            .respond_with(answer(move |r: &Request| account.answer(r))),
    );
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "resend",
        &fake.uri(),
        &format!("api_key_env = \"{}\"\n{extra}", KEY.0),
        n,
    )
}

#[test]
fn batches_carry_each_readers_own_email_with_an_idempotency_key() {
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, &account);
    let ws = profile(&fake, "batch_size = 2", 3);
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Resend API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| r.headers.get("idempotency-key").unwrap().to_str().unwrap())
        .collect();
    assert_ne!(keys[0], keys[1], "each batch has its own key");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.headers.get("content-type").unwrap().to_str().unwrap(),
            "application/json"
        );
    }
    let emails: Vec<Value> = fake
        .json_bodies()
        .into_iter()
        .flat_map(|b| b.as_array().unwrap().clone())
        .collect();
    assert_eq!(emails.len(), 3);
    let first = emails
        .iter()
        .find(|e| e["to"][0].as_str().unwrap().contains("reader0@example.org"))
        .unwrap();
    assert_eq!(
        first["to"],
        json!(["Mariusz Czepczyński <reader0@example.org>"])
    );
    assert_eq!(first["from"], "Efus <newsletter@example.org>");
    assert_eq!(first["reply_to"], "contact@example.org");
    assert_eq!(
        first["tags"],
        json!([{"name": "issue", "value": "2020-06"}])
    );
    assert!(
        first["subject"]
            .as_str()
            .unwrap()
            .starts_with("Efus newsletter")
    );
    let html = first["html"].as_str().unwrap();
    let text = first["text"].as_str().unwrap();
    assert!(
        html.contains("Czepczyński &lt;b&gt;&amp;&lt;/b&gt;"),
        "the name in the HTML"
    );
    assert!(
        text.contains("Czepczyński <b>&</b>"),
        "the name in the text"
    );
    let headers = &first["headers"];
    let unsubscribe = headers["List-Unsubscribe"].as_str().unwrap();
    assert!(unsubscribe.contains(&unsubscribe_url("reader0@example.org")));
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
    // Each reader's own link, not the first reader's.
    let other = emails
        .iter()
        .find(|e| e["to"][0].as_str().unwrap().contains("reader2@example.org"))
        .unwrap();
    assert!(
        other["headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .contains(&unsubscribe_url("reader2@example.org"))
    );

    let held = ledger(ws.path());
    assert_eq!(held.len(), 3);
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}");
        assert!(reply.contains("id re-"), "{who}: {reply}");
    }
    let again = send(&ws, &[KEY], &[]).ok();
    assert!(again.contains("Already sent before: 3"), "{again}");
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn a_refused_batch_is_a_permanent_failure_and_the_other_batches_are_sent() {
    // Resend validates a batch whole (strict mode, the default): one invalid email refuses
    // the batch it is in, with a 422.
    let fake = Fake::start();
    let account = Account::new(Some("reader2@example.org"));
    mount(&fake, &account);
    let ws = profile(&fake, "batch_size = 2", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 1, "failed recipients fail the run");
    let stdout = out.stdout();
    assert!(
        stdout.contains("Sent: 2") && stdout.contains("Failed: 2"),
        "{stdout}"
    );
    let held = ledger(ws.path());
    for who in ["reader2@example.org", "reader3@example.org"] {
        assert_eq!(held[who].0, "failed_permanent", "{who}");
        assert!(held[who].1.contains("HTTP 422"), "{:?}", held[who]);
        assert!(
            held[who]
                .1
                .contains("reader2@example.org is not a valid address")
        );
    }
    assert_eq!(held["reader0@example.org"].0, "sent");
    assert_eq!(held["reader1@example.org"].0, "sent");
    assert_eq!(fake.requests().len(), 2, "a 422 is not retried");
}

#[test]
fn throttled_and_lost_answers_are_retried_with_the_same_key_and_nobody_gets_two() {
    // First a 429 with retry-after; then a 503 sent after Resend took the batch (the answer
    // was lost on the way back): the retry carries the same key, and Resend answers it
    // without sending again.
    for lost in [false, true] {
        let fake = Fake::start();
        let account = Account::new(None);
        let seen = AtomicUsize::new(0);
        let inner = Arc::clone(&account);
        fake.mount(
            Mock::given(method("POST"))
                .and(path("/emails/batch"))
                .respond_with(answer(move |r: &Request| {
                    if seen.fetch_add(1, Ordering::SeqCst) > 0 {
                        return inner.answer(r);
                    }
                    if lost {
                        inner.answer(r);
                        ResponseTemplate::new(503).set_body_string("upstream timed out")
                    } else {
                        error(
                            429,
                            "rate_limit_exceeded",
                            "Too many requests. You can only make 2 requests per second.",
                        )
                        .insert_header("retry-after", "1")
                        .insert_header("ratelimit-limit", "2")
                        .insert_header("ratelimit-remaining", "0")
                        .insert_header("ratelimit-reset", "1")
                    }
                })),
        );
        let ws = profile(&fake, "", 3);
        let started = std::time::Instant::now();
        let out = send(&ws, &[KEY], &[]).ok();
        assert!(out.contains("Sent: 3"), "{out}");
        let requests = fake.requests();
        assert_eq!(requests.len(), 2, "the first request, then the same again");
        assert_eq!(requests[0].body, requests[1].body, "the same batch");
        assert_eq!(
            requests[0].headers.get("idempotency-key"),
            requests[1].headers.get("idempotency-key"),
            "with the same key"
        );
        let mut delivered = account.delivered.lock().unwrap().clone();
        delivered.sort();
        assert_eq!(delivered.len(), 3, "nobody twice: {delivered:?}");
        assert!(ledger(ws.path()).values().all(|(state, _)| state == "sent"));
        assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    }
}

#[test]
fn a_used_up_quota_stops_the_run_and_a_later_run_sends_the_rest() {
    let fake = Fake::start();
    let account = Account::new(None);
    let quota_left = Arc::new(AtomicUsize::new(1));
    let (inner, left) = (Arc::clone(&account), Arc::clone(&quota_left));
    fake.mount(
        Mock::given(method("POST"))
            .and(path("/emails/batch"))
            .respond_with(answer(move |r: &Request| {
                if left.load(Ordering::SeqCst) == 0 {
                    return error(
                        429,
                        "daily_quota_exceeded",
                        "You have reached your daily email sending quota.",
                    );
                }
                left.fetch_sub(1, Ordering::SeqCst);
                inner.answer(r)
            })),
    );
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 1);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("daily_quota_exceeded"), "{all}");
    assert!(all.contains("run the same command again"), "{all}");
    assert_eq!(
        fake.requests().len(),
        2,
        "one batch sent, one refused, and no retry of a used-up quota"
    );
    let held = ledger(ws.path());
    assert_eq!(held.values().filter(|(s, _)| s == "sent").count(), 1);
    assert!(held.values().all(|(s, _)| s != "failed_permanent"));

    // The quota is renewed: the next run sends the others, and only them.
    quota_left.store(10, Ordering::SeqCst);
    let again = send(&ws, &[KEY], &[]).ok();
    assert!(again.contains("Sent: 3"), "{again}");
    assert_eq!(account.delivered.lock().unwrap().len(), 4);
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, &account);
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "re_wrong_key_1234");
    let out = send(&ws, &[wrong], &[]);
    assert_eq!(out.code(), 1);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("RESEND_API_KEY"), "{all}");
    assert!(all.contains("HTTP 401"), "{all}");
    assert!(
        !all.contains("re_wrong_key_1234"),
        "the key is never printed"
    );
    assert!(all.contains("run the same command again"), "{all}");
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
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains(KEY.1), "the key is redacted");
    let request: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(request["url"], format!("{}/emails/batch", fake.uri()));
    assert_eq!(request["headers"]["Authorization"], "Bearer [redacted]");
    assert_eq!(
        request["headers"]["Idempotency-Key"]
            .as_str()
            .unwrap()
            .len(),
        32
    );
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| {
            let r: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            r["body"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 3, "{sizes:?}");
    let ws2 = profile(&fake, "", 1);
    assert!(
        send(&ws2, &[], &["--dry-run", "out"])
            .ok()
            .contains("Sent: 1")
    );
}
