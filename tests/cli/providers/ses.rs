//! Amazon SES v2 `SendEmail` with raw content, as documented at
//! <https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html> (request: `POST
//! /v2/email/outbound-emails`, JSON `{"Content": {"Raw": {"Data": base64}}, "EmailTags":
//! [{"Name", "Value"}], "ConfigurationSetName"}`; answer: 200 `{"MessageId"}`; errors:
//! `MessageRejected` 400, `SendingPausedException` 400, `TooManyRequestsException` 429, and
//! from <https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html>
//! `ThrottlingException` 400 ("the request was denied due to request throttling"), the type
//! in the `x-amzn-ErrorType` header and a JSON `message`),
//! <https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html> (tag names and
//! values: ASCII letters, digits, `_` and `-`, up to 256) and AWS Signature Version 4
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>): the fake
//! computes the signature itself, from the canonical request and the test's secret key,
//! without the signing crate bulletin uses, and answers 403 when it differs, as SES does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::{Request, ResponseTemplate};

use super::{
    Fake, answer, assert_all_sent_and_not_again, assert_dry_run, assert_first_readers_message,
    assert_list_headers, assert_refused_key_stops_at_once, assert_retried_once_and_all_sent,
    dry_run_without_credentials, first_then, ledger, send, workspace,
};

const PATH: &str = "/v2/email/outbound-emails";

const ACCESS_KEY: (&str, &str) = ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
const SECRET_KEY: (&str, &str) = (
    "AWS_SECRET_ACCESS_KEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
);
const REGION: &str = "eu-west-1";

/// A fake SES account: it checks each request's signature and body as SES would, and keeps
/// the raw messages it "sent".
#[derive(Default)]
struct Account {
    sent: Mutex<Vec<Vec<u8>>>,
    /// Messages to this address are refused (`MessageRejected`).
    rejected: Option<&'static str>,
}

fn error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", kind)
        .set_body_json(json!({ "message": message }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// SES's refusal of a request's signature: the error type and message of a 403.
struct Refused(&'static str, &'static str);

/// Checks the request's AWS Signature V4 as the service does: rebuilds the canonical request
/// from what arrived, signs it with the secret key, and compares.
fn check_signature(r: &Request) -> Result<(), Refused> {
    let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
    let missing = || {
        Refused(
            "IncompleteSignatureException",
            "Authorization header requires Credential, SignedHeaders and Signature",
        )
    };
    let auth = header("authorization").ok_or_else(missing)?;
    let fields = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(missing)?;
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .ok_or_else(missing)
    };
    let (credential, signed, signature) = (
        field("Credential")?,
        field("SignedHeaders")?,
        field("Signature")?,
    );
    let [access_key, date, region, service, "aws4_request"] =
        credential.split('/').collect::<Vec<_>>()[..]
    else {
        return Err(missing());
    };
    if access_key != ACCESS_KEY.1 {
        return Err(Refused(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let amz_date = header("x-amz-date").ok_or_else(missing)?;
    assert_eq!((region, service), (REGION, "ses"), "the credential scope");
    assert_eq!(date, &amz_date[..8], "the scope's date is the request's");
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc();
    assert!(
        (bulletin::clock::now() - when).num_seconds().abs() < 300,
        "signed just now"
    );
    let names: Vec<&str> = signed.split(';').collect();
    for needed in ["content-type", "host", "x-amz-date"] {
        assert!(names.contains(&needed), "{needed} is signed: {signed}");
    }
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        r.method,
        r.url.path(),
        r.url.query().unwrap_or("")
    );
    for name in &names {
        let value = header(name).unwrap_or_else(|| panic!("signed header {name} not sent"));
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical.push_str(&format!("{name}:{value}\n"));
    }
    canonical.push_str(&format!("\n{signed}\n{}", hex(&Sha256::digest(&r.body))));
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", SECRET_KEY.1).as_bytes(), date);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex(&hmac(&key, &to_sign)) != signature {
        return Err(Refused(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(())
}

fn tag_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The raw message in a request, decoded.
fn raw(body: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(body["Content"]["Raw"]["Data"].as_str().unwrap())
        .unwrap()
}

impl Account {
    fn new(rejected: Option<&'static str>) -> Arc<Account> {
        Arc::new(Account {
            rejected,
            ..Default::default()
        })
    }

    fn answer(&self, r: &Request) -> ResponseTemplate {
        if let Err(Refused(kind, message)) = check_signature(r) {
            return error(403, kind, message);
        }
        assert_eq!(
            r.headers.get("content-type").unwrap().to_str().unwrap(),
            "application/json"
        );
        let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
            return error(400, "BadRequestException", "Invalid JSON");
        };
        for tag in body["EmailTags"].as_array().unwrap() {
            if !tag_ok(tag["Name"].as_str().unwrap()) || !tag_ok(tag["Value"].as_str().unwrap()) {
                return error(400, "BadRequestException", "Invalid tag name or value");
            }
        }
        let bytes = raw(&body);
        let text = String::from_utf8(bytes.clone()).expect("7-bit content");
        assert!(text.lines().all(|l| l.len() <= 1000), "no line over 1,000");
        let Some(message) = mail_parser::MessageParser::default().parse(&bytes) else {
            return error(400, "MessageRejected", "Could not parse the message");
        };
        let to = message.to().unwrap().first().unwrap().address().unwrap();
        if self.rejected == Some(to) {
            return error(
                400,
                "MessageRejected",
                &format!(
                    "Email address is not verified. The following identities failed the check in region EU-WEST-1: {to}"
                ),
            );
        }
        let mut sent = self.sent.lock().unwrap();
        sent.push(bytes.clone());
        ResponseTemplate::new(200)
            .set_body_json(json!({"MessageId": format!("0102-fake-{:03}", sent.len())}))
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
        "ses",
        &fake.uri(),
        &format!(
            "api_key_env = \"{}\"\nsecret_env = \"{}\"\nregion = \"{REGION}\"\n{extra}",
            ACCESS_KEY.0, SECRET_KEY.0
        ),
        n,
    )
}

const KEYS: [(&str, &str); 2] = [ACCESS_KEY, SECRET_KEY];

#[test]
fn each_reader_gets_their_own_signed_raw_message() {
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, answers(&account));
    let ws = profile(&fake, "configuration_set = \"newsletter\"", 3);
    let stdout = send(&ws, &KEYS, &[]).ok();
    assert!(stdout.contains("Sent: 3"), "{stdout}");
    assert!(stdout.contains("Amazon SES API"), "{stdout}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "one message a request");
    for r in &requests {
        assert_eq!(r.method.as_str(), "POST");
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={}/", ACCESS_KEY.1)),
            "{auth}"
        );
        assert!(
            auth.contains(&format!("/{REGION}/ses/aws4_request")),
            "{auth}"
        );
    }
    let bodies = fake.json_bodies();
    for body in &bodies {
        assert_eq!(
            body["EmailTags"],
            json!([{"Name": "issue", "Value": "2020-06"}])
        );
        assert_eq!(body["ConfigurationSetName"], "newsletter");
    }
    let messages: Vec<Vec<u8>> = bodies.iter().map(raw).collect();
    let parsed: Vec<_> = messages
        .iter()
        .map(|m| mail_parser::MessageParser::default().parse(m).unwrap())
        .collect();
    let first = parsed
        .iter()
        .find(|m| m.to().unwrap().first().unwrap().address() == Some("reader0@example.org"))
        .unwrap();
    let to = first.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Mariusz Czepczyński"));
    assert_eq!(
        first.from().unwrap().first().unwrap().address(),
        Some("newsletter@example.org")
    );
    assert_list_headers(
        first.header_raw("List-Unsubscribe").unwrap(),
        first.header_raw("List-Unsubscribe-Post").unwrap().trim(),
        first.header_raw("List-Id").unwrap(),
        "reader0@example.org",
    );
    assert_first_readers_message(
        first.subject().unwrap(),
        &first.body_html(0).unwrap(),
        &first.body_text(0).unwrap(),
    );

    assert_all_sent_and_not_again(&fake, &ws, &KEYS, 3, |_, reply| {
        reply.contains("MessageId 0102-fake-")
    });
}

#[test]
fn bulletins_dkim_signature_reaches_ses_intact() {
    // The message goes to SES byte for byte as built: the DKIM signature bulletin made
    // verifies on what SES received (dkimpy, against the test's public key).
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, answers(&account));
    let ws = profile(
        &fake,
        "[profiles.api.dkim]\ndomain = \"example.org\"\nselector = \"news\"\nprivate_key_file = \"dkim.key\"",
        2,
    );
    let key = ws.path().join("dkim.key");
    let public = ws.path().join("dkim.pub.der");
    for args in [
        vec![
            "genrsa",
            "-traditional",
            "-out",
            key.to_str().unwrap(),
            "2048",
        ],
        vec![
            "rsa",
            "-pubout",
            "-outform",
            "DER",
            "-in",
            key.to_str().unwrap(),
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let made = std::process::Command::new("openssl")
            .args(&args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(made.success());
    }
    send(&ws, &KEYS, &[]).ok();
    let sent = account.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let mut files = Vec::new();
    for (i, message) in sent.iter().enumerate() {
        let file = ws.path().join(format!("received-{i}.eml"));
        std::fs::write(&file, message).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(message)
            .unwrap();
        let signature = parsed
            .header_raw("DKIM-Signature")
            .expect("a DKIM signature");
        assert!(
            signature.contains("d=example.org") && signature.contains("s=news"),
            "{signature}"
        );
        files.push(file);
    }
    let verified = std::process::Command::new("python3")
        .arg(crate::common::repo().join("tests/servers/dkim_verify.py"))
        .arg(&public)
        .args(&files)
        .output()
        .expect("python3 with dkimpy: run `bash tests/setup.sh`");
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn a_rejected_message_is_a_permanent_failure_and_the_others_are_sent() {
    let fake = Fake::start();
    let account = Account::new(Some("reader1@example.org"));
    mount(&fake, answers(&account));
    let ws = profile(&fake, "", 3);
    let out = send(&ws, &KEYS, &[]);
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
    let held = ledger(ws.path());
    assert_eq!(held["reader1@example.org"].0, "failed_permanent");
    assert!(
        held["reader1@example.org"]
            .1
            .contains("HTTP 400: MessageRejected: Email address is not verified"),
        "{:?}",
        held["reader1@example.org"]
    );
    assert_eq!(held["reader0@example.org"].0, "sent");
    assert_eq!(held["reader2@example.org"].0, "sent");
    assert_eq!(fake.requests().len(), 3, "a rejection is not retried");
}

#[test]
fn throttled_and_failing_servers_are_waited_out_and_nobody_gets_two() {
    for first in [
        // SES's 429 says nothing of how long to wait.
        error(
            429,
            "TooManyRequestsException",
            "Maximum sending rate exceeded.",
        ),
        // SES's other way of saying "slow down" (CommonErrors): a 400. Before, the reader
        // was recorded as failed for good.
        error(400, "ThrottlingException", "Rate exceeded"),
        error(
            503,
            "ServiceUnavailable",
            "Service is unable to handle request.",
        ),
    ] {
        let fake = Fake::start();
        let account = Account::new(None);
        mount(&fake, first_then(first, answers(&account)));
        let ws = profile(&fake, "concurrency = 1", 2);
        // The refused request, the same again, the other.
        assert_retried_once_and_all_sent(&fake, &ws, &KEYS, 2, 3);
        assert_eq!(account.sent.lock().unwrap().len(), 2, "nobody twice");
    }
}

#[test]
fn a_wrong_secret_fails_the_signature_and_stops_at_once_naming_both_variables() {
    let fake = Fake::start();
    let account = Account::new(None);
    mount(&fake, answers(&account));
    let ws = profile(&fake, "concurrency = 1", 5);
    let wrong = (SECRET_KEY.0, "wrong/secret/key/1234567890");
    let out = send(&ws, &[ACCESS_KEY, wrong], &[]);
    assert_refused_key_stops_at_once(
        &out,
        &fake,
        &ws,
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        "wrong/secret/key/1234567890",
        "HTTP 403",
    );
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("SignatureDoesNotMatch"), "{all}");
    assert!(account.sent.lock().unwrap().is_empty());
}

#[test]
fn paused_sending_stops_the_run_and_a_later_run_sends_the_rest() {
    let fake = Fake::start();
    let account = Account::new(None);
    let paused = Arc::new(AtomicBool::new(false));
    // The account is paused after its first message (a reputation review), once.
    let review = AtomicBool::new(true);
    let (inner, pause) = (Arc::clone(&account), Arc::clone(&paused));
    mount(
        &fake,
        answer(move |r: &Request| {
            if pause.load(Ordering::SeqCst) {
                return error(
                    400,
                    "SendingPausedException",
                    "Email sending is disabled for your account.",
                );
            }
            let answer = inner.answer(r);
            if review.swap(false, Ordering::SeqCst) {
                pause.store(true, Ordering::SeqCst);
            }
            answer
        }),
    );
    let ws = profile(&fake, "concurrency = 1", 4);
    let out = send(&ws, &KEYS, &[]);
    assert_eq!(out.code(), 3);
    let all = format!("{}{}", out.stdout(), out.stderr());
    assert!(all.contains("SendingPausedException"), "{all}");
    assert!(all.contains("sending is paused"), "{all}");
    assert!(all.contains("run the same command again"), "{all}");
    assert_eq!(fake.requests().len(), 2, "nothing more after the pause");
    let held = ledger(ws.path());
    assert_eq!(held.values().filter(|(s, _)| s == "sent").count(), 1);
    assert!(
        held.values().all(|(s, _)| s != "failed_permanent"),
        "nobody is given up on: {held:?}"
    );

    paused.store(false, Ordering::SeqCst);
    // Resumed: the next run sends the other three, and only them.
    let again = send(&ws, &KEYS, &[]).ok();
    assert!(again.contains("Sent: 3"), "{again}");
    assert_eq!(account.sent.lock().unwrap().len(), 4);
}

#[test]
fn a_dry_run_writes_the_requests_with_the_signature_redacted() {
    let fake = Fake::start();
    let ws = profile(&fake, "", 2);
    // One request a message.
    let files = assert_dry_run(&fake, &ws, &KEYS, 2, 1, |_| 1);
    for (_, request) in &files {
        assert_eq!(request["url"], format!("{}{PATH}", fake.uri()));
        assert_eq!(
            request["headers"]["Authorization"],
            "AWS4-HMAC-SHA256 [redacted]"
        );
        let message = raw(&request["body"]);
        assert!(
            String::from_utf8_lossy(&message)
                .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        );
    }
    // Without the keys in the environment, a dry run still works.
    dry_run_without_credentials(&profile(&fake, "", 1));
}
