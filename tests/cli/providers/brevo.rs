//! Brevo's transactional email endpoint, as documented at
//! <https://developers.brevo.com/reference/sendtransacemail> (request: `POST /v3/smtp/email`
//! with an `api-key` header and a JSON body holding `sender`, `replyTo`, `subject`,
//! `htmlContent`, `textContent`, `tags`, `headers` and `messageVersions`, each version with
//! `to` [{email, name}] and its own subject and contents; answer: 201 with `messageIds`;
//! errors `{code, message}`), <https://developers.brevo.com/docs/batch-send-transactional-emails>
//! (up to 1000 versions), <https://developers.brevo.com/docs/heterogenous-versions-batch-emails>
//! (`headers.idempotencyKey`) and <https://developers.brevo.com/docs/limit-headers> (429 with
//! `x-sib-ratelimit-reset` in seconds). A version's `headers` is not documented; the fake takes
//! it as Brevo does for django-anymail. The idempotency guide's "Time-to-live and error
//! handling": a key reused within 30 minutes is not processed again, and answered 400
//! `duplicate_parameter`; the fake does that for every key it accepted.
//!
//! The HTML goes once, as a template in Brevo's template language: the batch guide's "Use the
//! params object to personalize content. Define placeholders in your HTML using
//! {{params.variableName}}", each version with its own `params`; the reference's limits on
//! them (100 KB a version, 1000 KB a request); and the help centre's "Disable auto-escaping
//! and display double curly brackets" (values are HTML-escaped unless inside `{% autoescape
//! off %}`; `{{ … }}` and `{% … %}` anywhere are the language's own). The fake renders each
//! version as Brevo does ([`render`]), stricter where Brevo is lenient: a tag it does not
//! know, or a param a version lacks, refuses the request.

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_only_refused_failed, assert_refused_key_stops_at_once,
    assert_retried_once_and_all_sent, dry_run_without_credentials, first_then, send,
    unsubscribe_url, workspace,
};

const KEY: (&str, &str) = ("BREVO_API_KEY", "xkeysib-test-key-0000");

const PATH: &str = "/v3/smtp/email";

/// The HTML a version's reader gets: `template` (Brevo's template language) rendered with
/// the version's `params`: `{{ params.NAME }}` prints the value, HTML-escaped unless inside
/// `{% autoescape off %}…{% endautoescape %}`. Anything else in `{{ }}`, `{% %}` or `{# #}`
/// is an error.
fn render(template: &str, params: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut escape = true;
    let mut rest = template;
    loop {
        let open = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, *o)))
            .min();
        let Some((at, open)) = open else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..at]);
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let inner_at = at + 2;
        let end = rest[inner_at..]
            .find(close)
            .ok_or_else(|| format!("unclosed {open} in the template"))?;
        let inner = rest[inner_at..inner_at + end].trim();
        match (open, inner) {
            ("{{", name) if name.starts_with("params.") => {
                let value = params[&name["params.".len()..]]
                    .as_str()
                    .ok_or_else(|| format!("no value for {name}"))?;
                if escape {
                    for c in value.chars() {
                        match c {
                            '<' => out.push_str("&lt;"),
                            '>' => out.push_str("&gt;"),
                            '&' => out.push_str("&amp;"),
                            '"' => out.push_str("&quot;"),
                            '\'' => out.push_str("&#x27;"),
                            c => out.push(c),
                        }
                    }
                } else {
                    out.push_str(value);
                }
            }
            ("{%", "autoescape off") => escape = false,
            ("{%", "endautoescape") => escape = true,
            _ => {
                return Err(format!(
                    "Brevo's template language has no {open} {inner} {close}"
                ));
            }
        }
        rest = &rest[inner_at + end + close.len()..];
    }
}

fn invalid(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"code": "invalid_parameter", "message": message}))
}

/// Brevo's answer: 401 without the key; 400 for a body Brevo would refuse, or for a request
/// with a recipient in `refused` (Brevo takes or refuses a request whole, and does not say
/// for whom); 400 `duplicate_parameter` for an `idempotencyKey` it accepted before; else 201
/// with a message ID for each version.
fn brevo(refused: &'static [&'static str]) -> impl wiremock::Respond {
    let keys = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
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
        let mut params_total = 0;
        for v in versions {
            // The reference: "The size of individual params in all the messageVersions shall
            // not exceed 100 KB limit and that of cumulative params shall not exceed 1000 KB".
            let size = serde_json::to_vec(&v["params"]).unwrap().len();
            params_total += size;
            if size > 100_000 || params_total > 1_000_000 {
                return invalid("params are over the size limit");
            }
            if v.get("htmlContent").is_some() {
                return invalid("the HTML goes once, as a template");
            }
            if let Err(e) = render(body["htmlContent"].as_str().unwrap(), &v["params"]) {
                return invalid(&e);
            }
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
                    return invalid("email is not valid in to");
                }
            }
        }
        let key = body["headers"]["idempotencyKey"].as_str().unwrap_or("");
        if !keys.lock().unwrap().insert(key.to_string()) {
            return ResponseTemplate::new(400).set_body_json(json!({
                "code": "duplicate_parameter",
                "message": "Request with the same idempotency key already processed"
            }));
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
    fake.on_post(PATH, responder);
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
    assert!(
        body["headers"].get("List-Unsubscribe").is_none(),
        "nobody gets another reader's link"
    );
    // The HTML once, a template with a hole for each merge field, no reader's values in it.
    let template = body["htmlContent"].as_str().unwrap();
    assert!(template.contains("<html"));
    assert!(template.contains("{{ params.bltn"), "a template");
    assert!(
        !template.contains("&lt;b&gt;&amp;&lt;/b&gt;") && !template.contains("Reader1"),
        "no reader's name in the template"
    );
    assert!(bodies.iter().all(|b| b["htmlContent"] == template));
    // Each reader's own message: the template filled with their params, as Brevo does.
    assert_eq!(
        first["to"],
        json!([{"email": "reader0@example.org", "name": "Mariusz Czepczyński"}])
    );
    let html = render(template, &first["params"]).unwrap();
    assert_first_readers_message(
        first["subject"].as_str().unwrap(),
        &html,
        first["textContent"].as_str().unwrap(),
    );
    assert!(html.contains(&unsubscribe_url("reader0@example.org")));
    // The reader's own List-Unsubscribe in their version; the others shared in the body.
    assert_list_headers(
        first["headers"]["List-Unsubscribe"].as_str().unwrap(),
        body["headers"]["List-Unsubscribe-Post"].as_str().unwrap(),
        body["headers"]["List-Id"].as_str().unwrap(),
        "reader0@example.org",
    );
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

    assert_all_sent_and_not_again(&fake, &ws, &[KEY], 3, |who, reply| {
        reply.contains(&format!("messageId <brevo.{who}@"))
    });
}

#[test]
fn template_syntax_in_the_issue_or_a_readers_name_reaches_the_reader_as_written() {
    // Brevo reads `{{`, `{%` and `{#` anywhere in the HTML as its own: the issue's literal
    // ones are printed through a param, and a reader's values are never read as a template.
    let fake = Fake::start();
    mount(&fake, brevo(&[]));
    let ws = profile(&fake, "", 2);
    let issue = ws.read("issues/2020-06.json").replace(
        "Welcome to the June issue",
        "Write {% raw %} and {# this #}, or a{ brace{",
    );
    ws.write("issues/2020-06.json", &issue);
    ws.write(
        "subscribers.csv",
        "email,first_name,name\nreader0@example.org,{{ params.bltn0 }} {% x %},Ann\nreader1@example.org,Bob,Bob\n",
    );
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(stdout.contains("Sent: 2"), "{stdout}");
    let bodies = fake.json_bodies();
    let (body, first) = version_of(&bodies, "reader0@example.org");
    let html = render(body["htmlContent"].as_str().unwrap(), &first["params"]).unwrap();
    assert!(
        html.contains("Write {% raw %} and {# this #}, or a{ brace{"),
        "the issue's text as written"
    );
    assert!(
        html.contains("Dear {{ params.bltn0 }} {% x %},"),
        "the name as written"
    );
    assert!(
        first["textContent"]
            .as_str()
            .unwrap()
            .contains("Dear {{ params.bltn0 }} {% x %},")
    );
}

#[test]
fn a_refused_address_is_found_by_splitting_and_fails_alone() {
    // Brevo refuses the request whole without naming the reader: bulletin halves it until
    // the reader at fault is alone. Before, everyone in the request failed for good.
    let fake = Fake::start();
    mount(&fake, brevo(&["reader1@example.org"]));
    let ws = profile(&fake, "", 4);
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
        &["reader1@example.org"],
        &["HTTP 400", "invalid_parameter: email is not valid in to"],
    );
    let sizes: Vec<usize> = fake
        .json_bodies()
        .iter()
        .map(|b| b["messageVersions"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 2, 2, 1, 1]);
}

#[test]
fn a_request_sent_again_after_its_answer_was_lost_is_recorded_sent_once() {
    // Brevo takes the request, its answer comes after bulletin stopped waiting; the retry
    // carries the same idempotencyKey and Brevo answers duplicate_parameter. Before, every
    // reader was recorded as failed for good, and --only-failed sent them a second copy.
    let fake = Fake::start();
    let inner = brevo(&[]);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    mount(
        &fake,
        answer(move |r: &Request| {
            let reply = wiremock::Respond::respond(&inner, r);
            match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => reply.set_delay(std::time::Duration::from_secs(3)),
                _ => reply,
            }
        }),
    );
    let ws = profile(&fake, "timeout = 1", 3);
    let out = send(&ws, &[KEY], &[]);
    let stdout = out.ok();
    assert!(stdout.contains("Sent: 3\n"), "{stdout}");
    assert!(!stdout.contains("Uncertain"), "{stdout}");
    let bodies = fake.json_bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0]["headers"]["idempotencyKey"], bodies[1]["headers"]["idempotencyKey"],
        "the same key again"
    );
    let held = super::ledger(ws.path());
    for (who, (state, reply)) in &held {
        assert_eq!(state, "sent", "{who}");
        assert!(reply.contains("duplicate_parameter"), "{who}: {reply}");
    }
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(!status.contains("Uncertain"), "{status}");
    // Nobody failed: --only-failed has nobody to send a second copy to.
    let again = send(&ws, &[KEY], &["--only-failed"]).ok();
    assert!(again.contains("Sent: 0\n"), "{again}");
    assert_eq!(fake.requests().len(), 2);
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
        mount(&fake, first_then(first, brevo(&[])));
        let ws = profile(&fake, "", 3);
        // The same batch, with the same idempotency key (in the body), is retried.
        assert_retried_once_and_all_sent(&fake, &ws, &[KEY], 3, 2);
    }
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    mount(&fake, brevo(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "xkeysib-wrong-key-1234");
    let out = send(&ws, &[wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["BREVO_API_KEY"],
        "xkeysib-wrong-key-1234",
        "HTTP 401",
    );
    assert!(
        format!("{}{}", out.stdout(), out.stderr()).contains("Key not found"),
        "Brevo's message is shown"
    );
}

#[test]
fn a_dry_run_writes_the_requests_with_the_key_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[KEY], 3, 2, |body| {
        body["messageVersions"].as_array().unwrap().len()
    });
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["api-key"], "[redacted]");
    }
    // Without the key in the environment, a dry run still works.
    dry_run_without_credentials(&profile(&fake, "", 1));
}
