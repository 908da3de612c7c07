//! Postmark's batch endpoint, as documented at
//! <https://postmarkapp.com/developer/api/email-api#send-batch-emails> (request: a JSON array
//! of messages with From, To, Subject, HtmlBody, TextBody, Headers [{Name, Value}], Tag,
//! MessageStream; `X-Postmark-Server-Token` header; answer: HTTP 200 with an array holding
//! `ErrorCode`, `Message`, `MessageID` for each message in order, refused ones included) and
//! <https://postmarkapp.com/developer/api/overview#response-codes> (401 for a bad token, 422
//! with `{ErrorCode, Message}`, 429, 500).

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_refused_key_stops_at_once, assert_retried_once_and_all_sent,
    dry_run_without_credentials, first_then, ledger, send, workspace,
};

const TOKEN: (&str, &str) = ("POSTMARK_SERVER_TOKEN", "pm-test-token-0000");

const PATH: &str = "/email/batch";

/// Postmark's answer to a well-formed batch: each message accepted, or refused when its
/// recipient is in `inactive` (ErrorCode 406, as Postmark answers for a suppressed address).
fn postmark(inactive: &'static [&'static str]) -> impl wiremock::Respond {
    answer(move |r: &Request| {
        if r.headers
            .get("X-Postmark-Server-Token")
            .and_then(|v| v.to_str().ok())
            != Some(TOKEN.1)
        {
            return ResponseTemplate::new(401).set_body_json(
                json!({"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid."}),
            );
        }
        let Ok(Value::Array(messages)) = serde_json::from_slice::<Value>(&r.body) else {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"ErrorCode": 402, "Message": "Invalid JSON"}));
        };
        let results: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let to = m["To"].as_str().unwrap_or("");
                if inactive.iter().any(|a| to.contains(a)) {
                    json!({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive.", "To": to})
                } else {
                    json!({"ErrorCode": 0, "Message": "OK", "MessageID": format!("pm-{i}-{}", to.len()), "SubmittedAt": "2026-11-25T10:00:00Z", "To": to})
                }
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(Value::Array(results))
    })
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "postmark",
        &fake.uri(),
        &format!("api_key_env = \"{}\"\n{extra}", TOKEN.0),
        n,
    )
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.on_post(PATH, responder);
}

#[test]
fn batches_carry_each_readers_own_message_on_the_broadcast_stream() {
    let fake = Fake::start();
    mount(&fake, postmark(&[]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let out = send(&ws, &[TOKEN], &[]);
    let stdout = out.ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Postmark API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.headers.get("content-type").unwrap().to_str().unwrap(),
            "application/json"
        );
        assert_eq!(
            r.headers.get("accept").unwrap().to_str().unwrap(),
            "application/json"
        );
    }
    let messages: Vec<Value> = fake
        .json_bodies()
        .into_iter()
        .flat_map(|b| b.as_array().unwrap().clone())
        .collect();
    assert_eq!(messages.len(), 3);
    let first = messages
        .iter()
        .find(|m| m["To"].as_str().unwrap().contains("reader0@example.org"))
        .unwrap();
    assert_eq!(first["To"], "Mariusz Czepczyński <reader0@example.org>");
    assert_eq!(first["From"], "Efus <newsletter@example.org>");
    assert_eq!(first["ReplyTo"], "contact@example.org");
    assert_eq!(first["MessageStream"], "broadcast");
    assert_eq!(first["Tag"], "2020-06");
    assert_first_readers_message(
        first["Subject"].as_str().unwrap(),
        first["HtmlBody"].as_str().unwrap(),
        first["TextBody"].as_str().unwrap(),
    );
    let headers: Vec<(String, String)> = first["Headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["Name"].as_str().unwrap().to_string(),
                h["Value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
    };
    assert_list_headers(
        &header("List-Unsubscribe"),
        &header("List-Unsubscribe-Post"),
        &header("List-Id"),
        "reader0@example.org",
    );

    assert_all_sent_and_not_again(&fake, &ws, &[TOKEN], 3, |_, reply| {
        reply.contains("MessageID pm-")
    });
}

#[test]
fn a_refused_recipient_is_a_permanent_failure_and_the_others_are_sent() {
    let fake = Fake::start();
    mount(&fake, postmark(&["reader1@example.org"]));
    let ws = profile(&fake, "", 3);
    let out = send(&ws, &[TOKEN], &[]);
    assert_eq!(
        out.code(),
        3,
        "a failed recipient leaves a reader unsent: exit 3"
    );
    let stdout = out.stdout();
    assert!(
        stdout.contains("Sent: 2") && stdout.contains("Failed: 1"),
        "{stdout}"
    );
    assert!(stdout.contains("Postmark error 406"), "{stdout}");
    let held = ledger(ws.path());
    assert_eq!(held["reader1@example.org"].0, "failed_permanent");
    assert!(held["reader1@example.org"].1.contains("inactive"));
    assert_eq!(held["reader0@example.org"].0, "sent");
    assert_eq!(fake.requests().len(), 1, "one request for three readers");
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    for first in [
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(json!({"ErrorCode": 429, "Message": "Rate limit exceeded"})),
        ResponseTemplate::new(503).set_body_string("Service Unavailable"),
    ] {
        let fake = Fake::start();
        // The first answer goes wrong; the next ones are Postmark's usual.
        mount(&fake, first_then(first, postmark(&[])));
        let ws = profile(&fake, "", 3);
        assert_retried_once_and_all_sent(&fake, &ws, &[TOKEN], 3, 2);
    }
}

#[test]
fn a_refused_token_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    mount(&fake, postmark(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (TOKEN.0, "wrong-token-1234");
    let out = send(&ws, &[wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["POSTMARK_SERVER_TOKEN"],
        "wrong-token-1234",
        "HTTP 401",
    );
}

#[test]
fn a_dry_run_writes_the_requests_with_the_token_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[TOKEN], 3, 2, |body| {
        body.as_array().unwrap().len()
    });
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["X-Postmark-Server-Token"], "[redacted]");
    }
    // Without the token in the environment, a dry run still works.
    dry_run_without_credentials(&profile(&fake, "", 1));
}

#[test]
fn the_report_is_json_for_scripts() {
    let fake = Fake::start();
    mount(&fake, postmark(&["reader1@example.org"]));
    let ws = profile(&fake, "", 3);
    let out = send(&ws, &[TOKEN], &["--json"]);
    assert_eq!(out.code(), 3);
    // Standard output is the JSON report alone; the plan went to standard error.
    let report: Value = serde_json::from_str(&out.stdout()).expect("JSON on stdout");
    assert!(out.stderr().contains("Recipients: 3"), "{}", out.stderr());
    assert_eq!(report["sent"], 2);
    assert_eq!(report["failed"][0]["email"], "reader1@example.org");
    assert_eq!(report["failed"][0]["permanent"], true);
    assert!(report["stopped"].is_null());
    let status = ws.run(&["status", "issues/2020-06.json", "--json"]);
    let status: Value = serde_json::from_str(&status.stdout()).expect("JSON status");
    assert_eq!(status["sent"], 2);
    assert_eq!(status["failed_permanent"], 1);
}

#[test]
fn a_test_send_goes_through_the_api_whole_and_is_not_recorded() {
    let fake = Fake::start();
    mount(&fake, postmark(&[]));
    let ws = profile(&fake, "", 0);
    let out = ws.run_with(
        &[
            "send",
            "issues/2020-06.json",
            "--profile",
            "api",
            "--to",
            "me@example.org",
        ],
        &[TOKEN, super::SECRET],
    );
    assert!(out.ok().contains("test sent to me@example.org"));
    let bodies = fake.json_bodies();
    assert_eq!(bodies.len(), 1);
    let m = &bodies[0][0];
    assert!(
        m["Subject"]
            .as_str()
            .unwrap()
            .starts_with("[TEST] Efus newsletter")
    );
    assert!(m["HtmlBody"].as_str().unwrap().contains("<html"));
    assert!(!m["TextBody"].as_str().unwrap().is_empty());
    assert!(!ws.path().join(".bulletin/ledger.sqlite").exists());
}

/// Postmark's outbound message search (<https://postmarkapp.com/developer/api/messages-api>:
/// `GET /messages/outbound` with `count` and `offset` required, filters such as
/// `metadata_KEY=VALUE` and `messagestream`; answer `{TotalCount, Messages: [{MessageID, To,
/// Metadata, MessageStream, …}]}`), over the messages the fake accepted in `accepted`.
fn search(accepted: std::sync::Arc<std::sync::Mutex<Vec<Value>>>) -> impl wiremock::Respond {
    answer(move |r: &Request| {
        if r.headers
            .get("X-Postmark-Server-Token")
            .and_then(|v| v.to_str().ok())
            != Some(TOKEN.1)
        {
            return ResponseTemplate::new(401).set_body_json(json!({"ErrorCode": 10}));
        }
        let query: std::collections::HashMap<String, String> =
            r.url.query_pairs().into_owned().collect();
        let count: usize = match query.get("count").and_then(|c| c.parse().ok()) {
            Some(n) if n <= 500 && query.contains_key("offset") => n,
            _ => {
                return ResponseTemplate::new(422)
                    .set_body_json(json!({"ErrorCode": 600, "Message": "count and offset are required; count at most 500"}));
            }
        };
        let found: Vec<Value> = accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|m| {
                query.iter().all(|(k, v)| match k.strip_prefix("metadata_") {
                    Some(key) => m["Metadata"][key] == *v,
                    None if k == "messagestream" => m["MessageStream"] == *v,
                    None => true,
                })
            })
            .take(count)
            .map(|m| {
                json!({"MessageID": format!("pm-{}", m["To"].as_str().unwrap().len()), "To": [{"Email": m["To"]}],
                       "Metadata": m["Metadata"], "MessageStream": m["MessageStream"], "Status": "Sent"})
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"TotalCount": found.len(), "Messages": found}))
    })
}

#[test]
fn a_batch_whose_answer_was_lost_is_found_by_the_search_and_not_sent_again() {
    // Postmark takes the batch, but its answer comes after bulletin stopped waiting (1 s).
    // Before sending again, bulletin searches for the batch's messages by their metadata,
    // finds them, and records them sent once. Before, the batch went again unreported.
    let fake = Fake::start();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let kept = std::sync::Arc::clone(&accepted);
    let inner = postmark(&[]);
    mount(
        &fake,
        answer(move |r: &Request| {
            let messages: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
            kept.lock().unwrap().extend(messages);
            wiremock::Respond::respond(&inner, r).set_delay(std::time::Duration::from_secs(3))
        }),
    );
    fake.mount(
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/messages/outbound"))
            .respond_with(search(std::sync::Arc::clone(&accepted))),
    );
    let ws = profile(&fake, "timeout = 1", 3);
    let out = send(&ws, &[TOKEN], &[]);
    let stdout = out.ok();
    assert!(stdout.contains("Sent: 3\n"), "{stdout}");
    assert!(!stdout.contains("Uncertain"), "{stdout}");
    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "GET"], "searched, not sent again");
    let search = &requests[1].url;
    let key = fake.json_bodies_of_posts()[0][0]["Metadata"]["bulletin-batch"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        search
            .query_pairs()
            .any(|(k, v)| k == "metadata_bulletin-batch" && v == key),
        "{search}"
    );
    for (who, (state, reply)) in ledger(ws.path()) {
        assert_eq!(state, "sent", "{who}");
        assert!(reply.contains("found by its search"), "{who}: {reply}");
    }
    assert_eq!(accepted.lock().unwrap().len(), 3, "each reader once");
}

#[test]
fn a_batch_whose_answer_was_lost_and_not_found_goes_again_as_uncertain() {
    // The search does not show the batch yet (or cannot be asked): it goes again, and its
    // readers are reported as possibly having two copies.
    let fake = Fake::start();
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!([]))
        .set_delay(std::time::Duration::from_secs(3));
    mount(&fake, first_then(slow, postmark(&[])));
    fake.mount(
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/messages/outbound"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"TotalCount": 0, "Messages": []})),
            ),
    );
    let ws = profile(&fake, "timeout = 1", 2);
    let stdout = send(&ws, &[TOKEN], &[]).ok();
    assert!(
        stdout.contains("Sent: 2\n") && stdout.contains("Uncertain (may have two copies): 2"),
        "{stdout}"
    );
    let methods: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["POST", "GET", "POST"]);
}
