//! Mailgun's messages endpoint in batch mode, as documented at
//! <https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tags> ("Send an
//! email": `POST /v3/{domain}/messages`, HTTP Basic `api:KEY`, a form with `from`, repeated
//! `to`, `subject`, `text`, `html`, `h:` headers, `o:tag` (at most 3), `v:` variables and
//! `recipient-variables`, a JSON object keyed by plain address whose values replace
//! `%recipient.KEY%`; answer: 200 `{id, message}`),
//! <https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending>
//! (1000 recipients a request) and
//! <https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses> (400 with
//! `{message}`, 401, 404 for an unknown domain, 429, 500). The fake fills each recipient's
//! message as Mailgun does, in header values too (as django-anymail relies on; Mailgun
//! documents it for the body and subject only).

use serde_json::{Map, Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_only_refused_failed, assert_refused_key_stops_at_once,
    assert_retried_once_and_all_sent, dry_run_without_credentials, first_then, ledger, send,
    unsubscribe_url, workspace,
};

const KEY: (&str, &str) = ("MAILGUN_API_KEY", "mg-test-key-0000");

/// `Basic base64("api:mg-test-key-0000")`.
const AUTHORIZATION: &str = "Basic YXBpOm1nLXRlc3Qta2V5LTAwMDA=";

const PATH: &str = "/v3/mg.example.org/messages";

/// A form body's fields, in order; a field may repeat.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn all<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    match all(form, name)[..] {
        [value] => value,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// The address in "Name <address>".
fn addr_spec(to: &str) -> &str {
    match (to.rfind('<'), to.rfind('>')) {
        (Some(a), Some(b)) if a < b => &to[a + 1..b],
        _ => to.trim(),
    }
}

/// What Mailgun makes of `text` for a recipient: each `%recipient.KEY%` replaced.
fn fill(text: &str, vars: &Value) -> String {
    let mut out = text.to_string();
    for (key, value) in vars.as_object().unwrap() {
        out = out.replace(&format!("%recipient.{key}%"), value.as_str().unwrap());
    }
    out
}

/// Each recipient's message as Mailgun would deliver it: address → field → filled value
/// (subject, text, html, and every `h:` and `v:` field).
fn messages(form: &[(String, String)]) -> Map<String, Value> {
    let vars: Value = serde_json::from_str(one(form, "recipient-variables")).unwrap();
    all(form, "to")
        .iter()
        .map(|to| {
            let address = addr_spec(to).to_string();
            let own = &vars[&address];
            let filled: Map<String, Value> = form
                .iter()
                .filter(|(k, _)| {
                    ["subject", "text", "html"].contains(&k.as_str())
                        || k.starts_with("h:")
                        || k.starts_with("v:")
                })
                .map(|(k, v)| (k.clone(), fill(v, own).into()))
                .collect();
            (address, filled.into())
        })
        .collect()
}

fn refusal(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"message": message}))
}

/// What Mailgun refuses of a batch request, or `None`.
fn invalid(r: &Request, form: &[(String, String)]) -> Option<String> {
    let content_type = r.headers.get("content-type")?.to_str().ok()?;
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Some(format!("unexpected content type {content_type}"));
    }
    let to = all(form, "to");
    if to.is_empty() || to.len() > 1000 {
        return Some("'to' parameter is missing or has more than 1000 recipients".into());
    }
    if all(form, "from").len() != 1 || all(form, "subject").len() != 1 {
        return Some("'from' and 'subject' parameters are required".into());
    }
    if all(form, "o:tag").len() > 3 {
        return Some("too many tags".into());
    }
    let vars: Value = serde_json::from_str(all(form, "recipient-variables").first()?).ok()?;
    for address in to.iter().map(|t| addr_spec(t)) {
        if !vars[address].is_object() {
            return Some(format!("no recipient-variables for {address}"));
        }
    }
    // Every %recipient.KEY% has a value for every recipient.
    for (address, message) in messages(form) {
        for (field, value) in message.as_object()? {
            if value.as_str()?.contains("%recipient.") {
                return Some(format!(
                    "{field} for {address} refers to a missing variable"
                ));
            }
        }
    }
    None
}

/// Mailgun's answer: 401 for a wrong key, 400 for a request it refuses (or one with a
/// recipient in `refuse`), else 200 `{id, message}`.
fn mailgun(refuse: &'static [&'static str]) -> impl wiremock::Respond {
    let count = std::sync::atomic::AtomicUsize::new(0);
    answer(move |r: &Request| {
        if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTHORIZATION) {
            return ResponseTemplate::new(401).set_body_json(json!({"Error": "unauthorized"}));
        }
        let form = form(&r.body);
        if let Some(problem) = invalid(r, &form) {
            return refusal(400, &problem);
        }
        if all(&form, "to")
            .iter()
            .any(|to| refuse.contains(&addr_spec(to)))
        {
            return refusal(
                400,
                "'to' parameter is not a valid address. please check documentation",
            );
        }
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("<20261125.{n}.fake@mg.example.org>"),
            "message": "Queued. Thank you."
        }))
    })
}

fn profile(fake: &Fake, extra: &str, n: usize) -> crate::common::Workspace {
    workspace(
        "mailgun",
        &fake.uri(),
        &format!(
            "api_key_env = \"{}\"\ndomain = \"mg.example.org\"\n{extra}",
            KEY.0
        ),
        n,
    )
}

fn mount(fake: &Fake, responder: impl wiremock::Respond + 'static) {
    fake.on_post(PATH, responder);
}

#[test]
fn one_template_for_the_batch_and_each_readers_own_variables() {
    let fake = Fake::start();
    mount(&fake, mailgun(&[]));
    let ws = profile(&fake, "batch_size = 2", 3);
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Mailgun API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "3 readers, 2 per request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.headers["authorization"].to_str().unwrap(), AUTHORIZATION);
    }
    let forms: Vec<_> = requests.iter().map(|r| form(&r.body)).collect();
    let first = forms
        .iter()
        .find(|f| all(f, "to").iter().any(|to| to.contains("reader0@")))
        .unwrap();
    assert_eq!(one(first, "from"), "Efus <newsletter@example.org>");
    assert_eq!(one(first, "h:Reply-To"), "contact@example.org");
    assert_eq!(all(first, "o:tag"), ["2020-06"]);
    assert!(
        all(first, "to").contains(&"Mariusz Czepczyński <reader0@example.org>"),
        "{:?}",
        all(first, "to")
    );
    assert!(one(first, "html").contains("%recipient.bltn"), "a template");
    assert!(one(first, "text").contains("%recipient.bltn"), "a template");
    assert!(!one(first, "html").contains("&lt;b&gt;&amp;&lt;/b&gt;"));
    assert_eq!(
        one(first, "h:List-Unsubscribe"),
        "%recipient.h:List-Unsubscribe%",
        "each reader's own, from their variables (django-anymail's way)"
    );

    let delivered: Map<String, Value> = forms.iter().flat_map(|f| messages(f)).collect();
    assert_eq!(delivered.len(), 3, "every reader in one request or another");
    let reader0 = &delivered["reader0@example.org"];
    // Filled by Mailgun, the template is the reader's own message: the name escaped in the
    // HTML, as written in the text, their own unsubscribe link in both and in the header.
    let html = reader0["html"].as_str().unwrap();
    let text = reader0["text"].as_str().unwrap();
    assert_first_readers_message(reader0["subject"].as_str().unwrap(), html, text);
    let link = unsubscribe_url("reader0@example.org");
    assert!(text.contains(&link), "the unsubscribe link in the text");
    assert!(
        html.contains(&link.replace('&', "&amp;")),
        "and in the HTML"
    );
    // Their own List-Unsubscribe; the others the same for the whole batch.
    assert_list_headers(
        reader0["h:List-Unsubscribe"].as_str().unwrap(),
        one(first, "h:List-Unsubscribe-Post"),
        one(first, "h:List-Id"),
        "reader0@example.org",
    );
    let id = reader0["v:bulletin-message-id"].as_str().unwrap();
    assert!(
        id.starts_with("<2020-06.") && id.ends_with("@example.org>"),
        "{id}"
    );
    let reader1 = &delivered["reader1@example.org"];
    assert!(reader1["text"].as_str().unwrap().contains("Reader1"));
    assert!(
        reader1["h:List-Unsubscribe"]
            .as_str()
            .unwrap()
            .contains(&unsubscribe_url("reader1@example.org"))
    );

    assert_all_sent_and_not_again(&fake, &ws, &[KEY], 3, |_, reply| {
        reply.contains("id <20261125.")
    });
}

#[test]
fn a_refused_address_is_found_by_splitting_and_fails_alone() {
    // Mailgun refuses the whole request and does not say for whom: bulletin halves it until
    // the reader at fault is alone. Before, all four failed for good.
    let fake = Fake::start();
    mount(&fake, mailgun(&["reader1@example.org"]));
    let ws = profile(&fake, "", 4);
    let out = send(&ws, &[KEY], &[]);
    assert_eq!(
        out.code(),
        3,
        "a refused reader leaves a reader unsent: exit 3"
    );
    let stdout = out.stdout();
    assert!(stdout.contains("Sent: 3\n"), "{stdout}");
    assert_only_refused_failed(
        &ws,
        4,
        &["reader1@example.org"],
        &["Mailgun answered HTTP 400: 'to' parameter is not a valid address"],
    );
    let sizes: Vec<usize> = fake
        .requests()
        .iter()
        .map(|r| all(&form(&r.body), "to").len())
        .collect();
    assert_eq!(sizes, [4, 2, 2, 1, 1], "halved down to the one at fault");
    // Each reader other than the one at fault was in exactly one accepted request.
    let held = ledger(ws.path());
    assert_eq!(held.values().filter(|(s, _)| s == "sent").count(), 3);
}

#[test]
fn an_answer_lost_after_mailgun_took_the_request_is_reported_uncertain() {
    let fake = Fake::start();
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"id": "<slow@mg.example.org>", "message": "Queued. Thank you."}))
        .set_delay(std::time::Duration::from_secs(3));
    mount(&fake, first_then(slow, mailgun(&[])));
    let ws = profile(&fake, "timeout = 1", 3);
    let stdout = send(&ws, &[KEY], &[]).ok();
    assert!(
        stdout.contains("Sent: 3\n") && stdout.contains("Uncertain (may have two copies): 3"),
        "{stdout}"
    );
    assert_eq!(fake.requests().len(), 2);
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Uncertain: 3"), "{status}");
}

#[test]
fn a_wrong_domain_or_endpoint_stops_the_run_and_fails_nobody_for_good() {
    for wrong in [
        refusal(404, "Domain not found: mg.example.org"),
        // What Mailgun answers on a path that is not the messages API.
        ResponseTemplate::new(200).set_body_string("Mailgun Magnificent API"),
    ] {
        let fake = Fake::start();
        mount(&fake, answer(move |_| wrong.clone()));
        let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 3);
        let out = send(&ws, &[KEY], &[]);
        assert_eq!(out.code(), 3);
        let all = format!("{}{}", out.stdout(), out.stderr());
        assert!(all.contains("check domain = \"mg.example.org\""), "{all}");
        assert!(all.contains("region"), "{all}");
        assert_eq!(fake.requests().len(), 1, "no more requests after the first");
        for (who, (state, _)) in ledger(ws.path()) {
            assert!(
                state != "sent" && state != "failed_permanent",
                "{who}: {state}"
            );
        }
    }
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    for first in [
        refusal(429, "Too many requests").insert_header("Retry-After", "1"),
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    ] {
        let fake = Fake::start();
        mount(&fake, first_then(first, mailgun(&[])));
        let ws = profile(&fake, "", 3);
        assert_retried_once_and_all_sent(&fake, &ws, &[KEY], 3, 2);
    }
}

#[test]
fn a_refused_key_stops_at_once_and_names_the_variable() {
    let fake = Fake::start();
    mount(&fake, mailgun(&[]));
    let ws = profile(&fake, "batch_size = 1\nconcurrency = 1", 5);
    let wrong = (KEY.0, "mg-wrong-key-1234");
    let out = send(&ws, &[wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["MAILGUN_API_KEY"],
        "mg-wrong-key-1234",
        "HTTP 401: unauthorized",
    );
}

#[test]
fn a_dry_run_writes_the_requests_with_the_key_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "batch_size = 2", 3);
    let files = assert_dry_run(&fake, &ws, &[KEY], 3, 2, |body| {
        // The form's fields as [name, value] pairs: a `to` for each reader.
        body.as_array()
            .unwrap()
            .iter()
            .filter(|field| field[0] == "to")
            .count()
    });
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(request["headers"]["Authorization"], "Basic [redacted]");
    }

    // A domain in the EU region goes to Mailgun's EU host; no key is needed for a dry run.
    let ws2 = profile(&fake, "region = \"eu\"", 1);
    let config: String = ws2
        .read("bulletin.toml")
        .lines()
        .filter(|l| !l.starts_with(&format!("endpoint = \"{}\"", fake.uri())))
        .map(|l| format!("{l}\n"))
        .collect();
    ws2.write("bulletin.toml", &config);
    let request = dry_run_without_credentials(&ws2);
    assert_eq!(
        request["url"],
        "https://api.eu.mailgun.net/v3/mg.example.org/messages"
    );
}
