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
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_only_refused_failed, assert_own_unsubscribe,
    assert_refused_key_stops_at_once, assert_retried_once_and_all_sent,
    dry_run_without_credentials, first_then, ledger, send, workspace,
};

const KEY: (&str, &str) = ("RESEND_API_KEY", "re_test_key_0000");

const PATH: &str = "/emails/batch";

/// A fake Resend account: it checks each request against the documented API, remembers
/// idempotency keys as Resend does (the same key and body → the first answer again, nothing
/// sent; the same key and another body → 409), and keeps the emails it "sent".
#[derive(Default)]
struct Account {
    /// Idempotency key → (body, answer).
    keys: Mutex<HashMap<String, (Vec<u8>, Value)>>,
    /// The recipients of every email sent, once per delivery.
    delivered: Mutex<Vec<String>>,
    /// Emails to this address fail validation (strict mode: the whole batch is refused;
    /// permissive: only that email).
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
        // Strict validation (the default) refuses the batch for one invalid email;
        // permissive queues the valid ones and lists the others by index.
        let permissive = r
            .headers
            .get("x-batch-validation")
            .and_then(|v| v.to_str().ok())
            == Some("permissive");
        let mut errors = Vec::new();
        for (index, e) in emails.iter().enumerate() {
            if let Some(problem) = self.problem(e) {
                if !permissive {
                    return error(422, "validation_error", &problem);
                }
                errors.push(json!({"index": index, "message": problem}));
            }
        }
        let valid: Vec<(usize, &Value)> = emails
            .iter()
            .enumerate()
            .filter(|(i, _)| !errors.iter().any(|e| e["index"] == *i))
            .collect();
        let data: Vec<Value> = valid
            .iter()
            .map(|(i, _)| json!({"id": format!("re-{}-{i}", &key[..8])}))
            .collect();
        let reply = match permissive {
            true => json!({ "data": data, "errors": errors }),
            false => json!({ "data": data }),
        };
        let mut delivered = self.delivered.lock().unwrap();
        for (_, e) in &valid {
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

/// The account's answers, as a responder.
fn answers(account: &Arc<Account>) -> impl wiremock::Respond + use<> {
    let account = Arc::clone(account);
    answer(move |r: &Request| account.answer(r))
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.on_post(PATH, responder);
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
    mount(&fake, answers(&account));
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
    assert_first_readers_message(
        first["subject"].as_str().unwrap(),
        first["html"].as_str().unwrap(),
        first["text"].as_str().unwrap(),
    );
    let headers = &first["headers"];
    assert_list_headers(
        headers["List-Unsubscribe"].as_str().unwrap(),
        headers["List-Unsubscribe-Post"].as_str().unwrap(),
        headers["List-Id"].as_str().unwrap(),
        "reader0@example.org",
    );
    // Each reader's own link, not the first reader's.
    let other = emails
        .iter()
        .find(|e| e["to"][0].as_str().unwrap().contains("reader2@example.org"))
        .unwrap();
    assert_own_unsubscribe(
        other["headers"]["List-Unsubscribe"].as_str().unwrap(),
        "reader2@example.org",
    );

    assert_all_sent_and_not_again(&fake, &ws, &[KEY], 3, |_, reply| reply.contains("id re-"));
}

#[test]
fn an_invalid_email_fails_alone_with_permissive_batch_validation() {
    // With x-batch-validation: permissive, Resend queues the valid emails of a batch and
    // lists the invalid one by index. Before (strict, the default), one invalid email
    // refused its whole batch, and its batch-mate failed for good with it.
    let fake = Fake::start();
    let account = Account::new(Some("reader2@example.org"));
    mount(&fake, answers(&account));
    let ws = profile(&fake, "batch_size = 2", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(
        out.code(),
        3,
        "a refused reader leaves a reader unsent: exit 3"
    );
    let stdout = out.stdout();
    assert!(
        stdout.contains("Sent: 3") && stdout.contains("Failed: 1\n"),
        "{stdout}"
    );
    assert_only_refused_failed(
        &ws,
        4,
        &["reader2@example.org"],
        &["reader2@example.org is not a valid address"],
    );
    assert_eq!(fake.requests().len(), 2, "nothing is sent again");
    for r in fake.requests() {
        assert_eq!(r.headers.get("x-batch-validation").unwrap(), "permissive");
    }
    let delivered = account.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(
        !delivered.iter().any(|d| d.contains("reader2@")),
        "{delivered:?}"
    );
}

#[test]
fn throttled_and_lost_answers_are_retried_with_the_same_key_and_nobody_gets_two() {
    // First a 429 with retry-after; then a 503 sent after Resend took the batch (the answer
    // was lost on the way back): the retry carries the same key, and Resend answers it
    // without sending again.
    for lost in [false, true] {
        let fake = Fake::start();
        let account = Account::new(None);
        let inner = Arc::clone(&account);
        let first = answer(move |r: &Request| {
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
        });
        mount(&fake, first_then(first, answers(&account)));
        let ws = profile(&fake, "", 3);
        let requests = assert_retried_once_and_all_sent(&fake, &ws, &[KEY], 3, 2);
        assert_eq!(
            requests[0].headers.get("idempotency-key"),
            requests[1].headers.get("idempotency-key"),
            "with the same key"
        );
        let delivered = account.delivered.lock().unwrap().clone();
        assert_eq!(delivered.len(), 3, "nobody twice: {delivered:?}");
    }
}

#[test]
fn a_used_up_quota_stops_the_run_and_a_later_run_sends_the_rest() {
    let fake = Fake::start();
    let account = Account::new(None);
    let quota_left = Arc::new(AtomicUsize::new(1));
    let (inner, left) = (Arc::clone(&account), Arc::clone(&quota_left));
    mount(
        &fake,
        answer(move |r: &Request| {
            if left.load(Ordering::SeqCst) == 0 {
                return error(
                    429,
                    "daily_quota_exceeded",
                    "You have reached your daily email sending quota.",
                );
            }
            left.fetch_sub(1, Ordering::SeqCst);
            inner.answer(r)
        }),
    );
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(out.code(), 3);
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
fn readers_whose_batch_resend_handled_before_the_issue_changed_are_sent_not_failed() {
    // Resend takes the batch but its answer is lost (503), and the retry finds the quota used
    // up: the run stops with the readers unsent. The issue is then corrected and sent again,
    // forced: the same readers' batch carries the same key with a new body, and Resend
    // answers 409 invalid_idempotent_request. They have the first version: sent, not failed.
    let fake = Fake::start();
    let account = Account::new(None);
    let seen = Arc::new(AtomicUsize::new(0));
    let (inner, count) = (Arc::clone(&account), Arc::clone(&seen));
    mount(
        &fake,
        answer(
            move |r: &Request| match count.fetch_add(1, Ordering::SeqCst) {
                0 => {
                    inner.answer(r);
                    ResponseTemplate::new(503).set_body_string("upstream timed out")
                }
                1 => error(
                    429,
                    "daily_quota_exceeded",
                    "You have reached your daily email sending quota.",
                ),
                _ => inner.answer(r),
            },
        ),
    );
    let ws = profile(&fake, "batch_size = 2\nconcurrency = 1", 2);
    let first = send(&ws, &[KEY], &[]);
    assert_eq!(first.code(), 3, "{}", first.stderr());
    assert_eq!(
        account.delivered.lock().unwrap().len(),
        2,
        "Resend has them"
    );
    assert!(ledger(ws.path()).values().all(|(s, _)| s != "sent"));

    let issue = ws.read("issues/2020-06.json");
    ws.write(
        "issues/2020-06.json",
        &issue.replace("Welcome to the June issue", "Welcome to our June issue"),
    );
    let again = send(&ws, &[KEY], &["--force"]);
    assert_eq!(again.code(), 0, "{}{}", again.stdout(), again.stderr());
    let held = ledger(ws.path());
    assert_eq!(held.len(), 2);
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}: {reply}");
        assert!(reply.contains("earlier version"), "{who}: {reply}");
    }
    assert_eq!(
        account.delivered.lock().unwrap().len(),
        2,
        "nobody got a second copy"
    );
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, answers(&account));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "re_wrong_key_1234");
    let out = send(&ws, &[wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["RESEND_API_KEY"],
        "re_wrong_key_1234",
        "HTTP 401",
    );
}

#[test]
fn a_dry_run_writes_the_requests_with_the_key_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[KEY], 3, 2, |body| {
        body.as_array().unwrap().len()
    });
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["Authorization"], "Bearer [redacted]");
        assert_eq!(
            request["headers"]["Idempotency-Key"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
    }
    dry_run_without_credentials(&profile(&fake, "", 1));
}
