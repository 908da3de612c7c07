//! Mailjet's Send API v3.1, as documented at <https://dev.mailjet.com/email/guides/send-api-v31/>
//! (request: `POST /v3.1/send` with HTTP Basic auth, API key and secret key, and a JSON body
//! `{"Messages": [...]}` of at most 50 messages, each with From {Email, Name}, To
//! [{Email, Name}], ReplyTo, Subject, TextPart, HTMLPart, Headers, CustomCampaign, CustomID;
//! List-Id among the forbidden headers; answer: a result for each message in order, `Status`
//! "success" with `To[].MessageUUID/MessageID` or "error" with `Errors`, HTTP 400 when any
//! message failed) and <https://dev.mailjet.com/docs/email-api/email_api_overview/status_codes>
//! (401 for bad credentials, 429, 500).

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_own_unsubscribe, assert_refused_key_stops_at_once, assert_retried_once_and_all_sent,
    dry_run_without_credentials, first_then, ledger, send, unsubscribe_url, workspace,
};

const PATH: &str = "/v3.1/send";

const KEY: (&str, &str) = ("MJ_APIKEY_PUBLIC", "mj-test-key-0000");
const SECRET_KEY: (&str, &str) = ("MJ_APIKEY_PRIVATE", "mj-test-secret-1111");
/// `Basic base64("mj-test-key-0000:mj-test-secret-1111")`.
const BASIC: &str = "Basic bWotdGVzdC1rZXktMDAwMDptai10ZXN0LXNlY3JldC0xMTEx";

/// Headers a message may not set (the guide's list, in part: those we could be tempted to).
const FORBIDDEN: [&str; 8] = [
    "from",
    "sender",
    "subject",
    "to",
    "cc",
    "bcc",
    "list-id",
    "message-id",
];

fn global_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "ErrorIdentifier": "06df1144-c6f3-4ca7-8885-7ec5d4344113",
        "ErrorCode": code,
        "StatusCode": status,
        "ErrorMessage": message,
    }))
}

fn message_error(code: &str, message: &str, related: &str) -> Value {
    json!({"Status": "error", "Errors": [{
        "ErrorIdentifier": "88b5ca9f-5f1f-42e7-a45e-9ecbad0c285e",
        "ErrorCode": code,
        "StatusCode": 400,
        "ErrorMessage": message,
        "ErrorRelatedTo": [related],
    }]})
}

/// Mailjet's answer: 401 without the right credentials; a global 400 for a body it cannot
/// read; else a result for each message: an error for a malformed message, a forbidden
/// header or a recipient in `refused`, success for the others; HTTP 400 if any failed.
fn mailjet(refused: &'static [&'static str]) -> impl wiremock::Respond {
    answer(move |r: &Request| {
        if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(BASIC) {
            return global_error(
                401,
                "mj-0015",
                "API key authentication/authorization failure. You may be unauthorized to access the API or your API key may be expired. Visit API keys management section to check your keys.",
            );
        }
        if r.headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return global_error(
                400,
                "mj-0002",
                "Malformed JSON, please review the syntax and properties types.",
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
            return global_error(
                400,
                "mj-0002",
                "Malformed JSON, please review the syntax and properties types.",
            );
        };
        let Some(messages) = body["Messages"].as_array().filter(|m| !m.is_empty()) else {
            return global_error(400, "mj-0007", "Array must not be empty: Messages");
        };
        if messages.len() > 50 {
            return global_error(400, "mj-0008", "Too many elements: Messages");
        }
        let mut failed = false;
        let results: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let to = m["To"].as_array().cloned().unwrap_or_default();
                let email = to.first().and_then(|t| t["Email"].as_str()).unwrap_or("");
                let error = if m["From"]["Email"].as_str().is_none() {
                    Some(message_error(
                        "mj-0003",
                        "Missing mandatory property.",
                        "From.Email",
                    ))
                } else if to.is_empty() || to.len() > 50 {
                    Some(message_error(
                        "send-0015",
                        "Too many or no recipients.",
                        "To",
                    ))
                } else if m["TextPart"].as_str().is_none() && m["HTMLPart"].as_str().is_none() {
                    Some(message_error(
                        "send-0003",
                        "At least \"HTMLPart\", \"TextPart\" or \"TemplateID\" must be provided.",
                        "HTMLPart",
                    ))
                } else if let Some(name) = m["Headers"].as_object().and_then(|h| {
                    h.keys()
                        .find(|k| FORBIDDEN.contains(&k.to_lowercase().as_str()))
                }) {
                    Some(message_error(
                        "send-0011",
                        "Header is forbidden.",
                        &format!("Headers[\"{name}\"]"),
                    ))
                } else if refused.contains(&email) {
                    Some(message_error(
                        "mj-0013",
                        &format!("\"{email}\" is an invalid email address."),
                        "To[0].Email",
                    ))
                } else {
                    None
                };
                failed |= error.is_some();
                error.unwrap_or_else(|| {
                    json!({"Status": "success", "CustomID": m["CustomID"], "To": [{
                        "Email": email,
                        "MessageUUID": format!("uuid-{i}-{email}"),
                        "MessageID": 576460752303423487u64 - i as u64,
                        "MessageHref": "https://api.mailjet.com/v3/REST/message/576460752303423487",
                    }], "Cc": [], "Bcc": []})
                })
            })
            .collect();
        ResponseTemplate::new(if failed { 400 } else { 200 })
            .set_body_json(json!({"Messages": results}))
    })
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "mailjet",
        &fake.uri(),
        &format!(
            "api_key_env = \"{}\"\nsecret_env = \"{}\"\n{extra}",
            KEY.0, SECRET_KEY.0
        ),
        n,
    )
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.on_post(PATH, responder);
}

#[test]
fn messages_carry_each_readers_own_message_without_list_id() {
    let fake = Fake::start();
    mount(&fake, mailjet(&[]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let stdout = send(&ws, &[KEY, SECRET_KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Mailjet API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.headers.get("accept").unwrap(), "application/json");
    }
    let messages: Vec<Value> = fake
        .json_bodies()
        .into_iter()
        .flat_map(|b| b["Messages"].as_array().unwrap().clone())
        .collect();
    assert_eq!(messages.len(), 3);
    let first = messages
        .iter()
        .find(|m| m["To"][0]["Email"] == "reader0@example.org")
        .unwrap();
    assert_eq!(
        first["To"],
        json!([{"Email": "reader0@example.org", "Name": "Mariusz Czepczyński"}])
    );
    assert_eq!(
        first["From"],
        json!({"Email": "newsletter@example.org", "Name": "Efus"})
    );
    assert_eq!(first["ReplyTo"], json!({"Email": "contact@example.org"}));
    assert_eq!(first["CustomCampaign"], "2020-06");
    let custom_id = first["CustomID"].as_str().unwrap();
    assert!(
        custom_id.starts_with("<2020-06.") && custom_id.ends_with("@example.org>"),
        "our Message-ID: {custom_id}"
    );
    assert_first_readers_message(
        first["Subject"].as_str().unwrap(),
        first["HTMLPart"].as_str().unwrap(),
        first["TextPart"].as_str().unwrap(),
    );
    let headers = first["Headers"].as_object().unwrap();
    assert_own_unsubscribe(
        headers["List-Unsubscribe"].as_str().unwrap(),
        "reader0@example.org",
    );
    assert_eq!(
        headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        !headers.contains_key("List-Id"),
        "Mailjet forbids List-Id: {headers:?}"
    );
    let second = messages
        .iter()
        .find(|m| m["To"][0]["Email"] == "reader1@example.org")
        .unwrap();
    assert!(
        second["Headers"]["List-Unsubscribe"]
            .as_str()
            .unwrap()
            .contains(&unsubscribe_url("reader1@example.org"))
    );

    assert_all_sent_and_not_again(&fake, &ws, &[KEY, SECRET_KEY], 3, |who, reply| {
        reply.contains(&format!("-{who}")) && reply.contains("MessageID 5764607523034234")
    });
}

#[test]
fn a_refused_message_in_a_400_answer_fails_alone_and_the_others_are_sent() {
    let fake = Fake::start();
    mount(&fake, mailjet(&["reader1@example.org"]));
    let ws = profile(&fake, "", 3);
    let out = send(&ws, &[KEY, SECRET_KEY], &[]);
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
    assert!(stdout.contains("Mailjet error mj-0013"), "{stdout}");
    let held = ledger(ws.path());
    assert_eq!(held["reader1@example.org"].0, "failed_permanent");
    assert!(
        held["reader1@example.org"]
            .1
            .contains("is an invalid email address"),
        "{:?}",
        held["reader1@example.org"]
    );
    assert_eq!(held["reader0@example.org"].0, "sent");
    assert!(
        held["reader2@example.org"]
            .1
            .contains("MessageUUID uuid-2-")
    );
    assert_eq!(fake.requests().len(), 1, "one request for three readers");
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    for first in [
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(json!({"ErrorMessage": "Too many requests", "StatusCode": 429})),
        global_error(500, "mj-0004", "Internal Server Error"),
    ] {
        let fake = Fake::start();
        mount(&fake, first_then(first, mailjet(&[])));
        let ws = profile(&fake, "", 3);
        assert_retried_once_and_all_sent(&fake, &ws, &[KEY, SECRET_KEY], 3, 2);
    }
}

#[test]
fn refused_credentials_stop_at_once_and_name_both_variables() {
    let fake = Fake::start();
    mount(&fake, mailjet(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (SECRET_KEY.0, "mj-wrong-secret-1234");
    let out = send(&ws, &[KEY, wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["MJ_APIKEY_PUBLIC", "MJ_APIKEY_PRIVATE"],
        "mj-wrong-secret-1234",
        "HTTP 401",
    );
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("mj-0015"), "Mailjet's error code: {all}");
    assert!(!all.contains(KEY.1), "nor is the key printed");
}

#[test]
fn a_dry_run_writes_the_requests_with_the_credentials_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[KEY, SECRET_KEY], 3, 2, |body| {
        body["Messages"].as_array().unwrap().len()
    });
    for (text, request) in &files {
        assert!(!text.contains(&BASIC[6..]), "the credentials are redacted");
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["Authorization"], "Basic [redacted]");
    }
    // Without the credentials in the environment, a dry run still works.
    dry_run_without_credentials(&profile(&fake, "", 1));
}

/// Mailjet's message resource (<https://dev.mailjet.com/email/reference/messages/>: `GET
/// /v3/REST/message` with Basic auth, filtered by `CustomID`; answer `{"Count", "Data": [{"ID",
/// "Status", …}], "Total"}`), over the `CustomID`s the fake accepted in `accepted`.
fn messages(accepted: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> impl wiremock::Respond {
    answer(move |r: &Request| {
        if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(BASIC) {
            return global_error(401, "mj-0001", "Unauthorized");
        }
        let custom_id = r
            .url
            .query_pairs()
            .find(|(k, _)| k == "CustomID")
            .map(|(_, v)| v.into_owned());
        let data: Vec<Value> = accepted
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, id)| Some(*id) == custom_id.as_ref())
            .map(|(i, _)| json!({"ID": 70650219165027410u64 + i as u64, "Status": "sent"}))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"Count": data.len(), "Data": data, "Total": data.len()}))
    })
}

#[test]
fn messages_whose_answer_was_lost_are_found_by_their_custom_id_and_not_sent_again() {
    // Mailjet takes the request, but its answer comes after bulletin stopped waiting (1 s).
    // Before sending again, bulletin asks for each message by its CustomID. Before, 50
    // readers got a second copy, unreported.
    let fake = Fake::start();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = std::sync::Arc::clone(&accepted);
    let inner = mailjet(&[]);
    mount(
        &fake,
        answer(move |r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            for m in body["Messages"].as_array().unwrap() {
                kept.lock()
                    .unwrap()
                    .push(m["CustomID"].as_str().unwrap().to_string());
            }
            wiremock::Respond::respond(&inner, r).set_delay(std::time::Duration::from_secs(3))
        }),
    );
    fake.mount(
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path("/v3/REST/message"))
            .respond_with(messages(std::sync::Arc::clone(&accepted))),
    );
    let ws = profile(&fake, "timeout = 1", 3);
    let stdout = send(&ws, &[KEY, SECRET_KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3\n"), "{stdout}");
    assert!(!stdout.contains("Uncertain"), "{stdout}");
    let methods: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(
        methods,
        ["POST", "GET", "GET", "GET"],
        "one look-up a message"
    );
    assert_eq!(accepted.lock().unwrap().len(), 3, "each reader once");
    for (who, (state, reply)) in ledger(ws.path()) {
        assert_eq!(state, "sent", "{who}");
        assert!(reply.contains("found by its CustomID"), "{who}: {reply}");
    }
}
