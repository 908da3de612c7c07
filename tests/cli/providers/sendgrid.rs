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
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_only_refused_failed, assert_own_unsubscribe,
    assert_refused_key_stops_at_once, assert_retried_once_and_all_sent,
    dry_run_without_credentials, first_then, ledger, send, unsubscribe_url, workspace,
};

const KEY: (&str, &str) = ("SENDGRID_API_KEY", "SG.test-key-0000");

const PATH: &str = "/v3/mail/send";

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
        // The errors name the field of the personalization at fault, as SendGrid's do.
        let personalizations = body["personalizations"].as_array().unwrap();
        if let Some(i) = personalizations
            .iter()
            .position(|p| refuse.contains(&p["to"][0]["email"].as_str().unwrap_or("")))
        {
            return error(
                400,
                "Does not contain a valid address.",
                Some(&format!("personalizations.{i}.to.0.email")),
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
    fake.on_post(PATH, responder);
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
    // Filled by SendGrid, the template is the reader's own message: the name escaped in
    // the HTML, as written in the text, their own unsubscribe link in both.
    let own_html = substituted(html, first);
    let own_text = substituted(text, first);
    assert_first_readers_message(first["subject"].as_str().unwrap(), &own_html, &own_text);
    let link = unsubscribe_url("reader0@example.org");
    assert!(own_text.contains(&link), "the unsubscribe link in the text");
    assert!(
        own_html.contains(&link.replace('&', "&amp;")),
        "and in the HTML"
    );
    assert!(!own_html.contains("-bltn") && !own_text.contains("-bltn"));
    let headers = &first["headers"];
    assert_list_headers(
        headers["List-Unsubscribe"].as_str().unwrap(),
        headers["List-Unsubscribe-Post"].as_str().unwrap(),
        headers["List-Id"].as_str().unwrap(),
        "reader0@example.org",
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
    assert_own_unsubscribe(
        other["headers"]["List-Unsubscribe"].as_str().unwrap(),
        "reader1@example.org",
    );
    assert!(substituted(text, other).contains("Reader1"));

    assert_all_sent_and_not_again(&fake, &ws, &[KEY], 3, |_, reply| {
        reply.contains("X-Message-Id sg-batch-")
    });
}

#[test]
fn a_refused_address_fails_alone_and_the_others_of_its_request_go_again_without_it() {
    // SendGrid refuses the request whole, and its error names the personalization at fault.
    let fake = Fake::start();
    mount(&fake, sendgrid(&["reader3@example.org"]));
    let ws = profile(&fake, "", 5);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(
        out.code(),
        3,
        "a refused reader leaves a reader unsent: exit 3"
    );
    let stdout = out.stdout();
    assert!(stdout.contains("Sent: 4\n"), "{stdout}");
    assert_only_refused_failed(
        &ws,
        5,
        &["reader3@example.org"],
        &[
            "HTTP 400",
            "Does not contain a valid address. (personalizations.3.to.0.email)",
        ],
    );
    let sizes: Vec<usize> = fake
        .json_bodies()
        .iter()
        .map(|b| recipients(b).len())
        .collect();
    assert_eq!(
        sizes,
        [5, 4],
        "the others again at once, without the one named"
    );
    // --only-failed sends the one at fault alone: nobody else is in its request.
    let again = send(&ws, &[KEY], &["--only-failed"]);
    assert_eq!(again.code(), 3);
    let last = fake.json_bodies().pop().unwrap();
    assert_eq!(recipients(&last), ["reader3@example.org"]);
}

#[test]
fn an_answer_lost_after_sendgrid_took_the_request_is_reported_uncertain() {
    // SendGrid takes the request, but its answer comes after bulletin stopped waiting (a
    // timeout of 1 s): without an idempotency key, the request goes again, and its readers
    // may have two copies. Before, status said "uncertain 0".
    let fake = Fake::start();
    let slow = ResponseTemplate::new(202)
        .insert_header("X-Message-Id", "sg-slow")
        .set_delay(std::time::Duration::from_secs(3));
    mount(&fake, first_then(slow, sendgrid(&[])));
    let ws = profile(&fake, "timeout = 1", 3);
    let out = send(&ws, &[KEY], &[]);
    let stdout = out.ok();
    assert!(stdout.contains("Sent: 3\n"), "{stdout}");
    assert!(
        stdout.contains("Uncertain (may have two copies): 3"),
        "{stdout}"
    );
    assert!(
        out.stderr().contains("status --uncertain"),
        "{}",
        out.stderr()
    );
    assert_eq!(fake.requests().len(), 2, "the request went again");
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Uncertain: 3"), "{status}");
    let csv = ws
        .run(&["status", "issues/2020-06.json", "--uncertain", "--csv"])
        .ok();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains("reader0@example.org,sent,1,"), "{csv}");
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
    assert_eq!(out.code(), 3);
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
    // The fake stands in for SendGrid's servers, whose reset header is the real time.
    #[allow(clippy::disallowed_methods)]
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
        mount(&fake, first_then(first, sendgrid(&[])));
        let ws = profile(&fake, "", 3);
        let started = std::time::Instant::now();
        assert_retried_once_and_all_sent(&fake, &ws, &[KEY], 3, 2);
        let took = started.elapsed();
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
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["SENDGRID_API_KEY"],
        "SG.wrong-key-1234",
        "HTTP 401",
    );
}

#[test]
fn a_dry_run_writes_the_requests_with_the_key_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[KEY], 3, 2, |body| recipients(body).len());
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["Authorization"], "Bearer [redacted]");
    }

    // An EU account goes to SendGrid's EU host; no key is needed for a dry run.
    let ws2 = profile(&fake, "region = \"eu\"", 1);
    let config = ws2.read("bulletin.toml");
    let config: String = config
        .lines()
        .filter(|l| !l.starts_with(&format!("endpoint = \"{}\"", fake.uri())))
        .map(|l| format!("{l}\n"))
        .collect();
    ws2.write("bulletin.toml", &config);
    let request = dry_run_without_credentials(&ws2);
    assert_eq!(request["url"], "https://api.eu.sendgrid.com/v3/mail/send");
}
