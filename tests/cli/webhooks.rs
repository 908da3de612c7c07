//! The providers' webhooks run for real: `bulletin serve` on loopback, each provider's
//! documented payload authenticated or signed with a secret or key the test makes (200, and
//! the store says what it reported), and the same with a wrong secret, a tampered body or a
//! stale timestamp (refused, nothing recorded); soft bounces below and at the limit; the SNS
//! subscription confirmed only for a valid signature and a listed topic, against a local
//! server standing in for Amazon's certificate host; and a reader bounced through a webhook
//! whom the next `bulletin send` skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};

use crate::common::Workspace;
use crate::serve::{Server, Smtp};

const SECRET: (&str, &str) = (
    "BULLETIN_UNSUBSCRIBE_SECRET",
    "test-secret-not-for-production",
);

/// A webhook request to the running `bulletin serve`.
trait Post {
    /// POSTs `body` with `headers` to `path`: (status, response headers and body).
    fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String);
}

impl Post for Server {
    fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        s.write_all(request.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        (status, out)
    }
}

/// The sample workspace with `settings` (TOML tables) after its bulletin.toml.
fn workspace(settings: &str) -> Workspace {
    let ws = Workspace::for_sending("");
    let config = ws.read("bulletin.toml");
    ws.write("bulletin.toml", &format!("{config}\n{settings}"));
    ws
}

/// Every event in the store: (address, kind, source, reason).
fn events(ws: &Workspace) -> Vec<(String, String, String, String)> {
    let path = ws.path().join(".bulletin/suppressions.sqlite");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT address, kind, source, coalesce(reason, '') FROM events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The store's current suppressions, as `bulletin suppressions list` prints them: (address,
/// kind, source).
fn listed(ws: &Workspace) -> Vec<(String, String, String)> {
    ws.run(&["suppressions", "list"])
        .ok()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

fn basic(user: &str, password: &str) -> (&'static str, String) {
    (
        "Authorization",
        format!("Basic {}", B64.encode(format!("{user}:{password}"))),
    )
}

fn now() -> i64 {
    bulletin::clock::now().timestamp()
}

/// The log names no reader and holds no secret.
fn assert_log_is_clean(server: &Server, secrets: &[&str]) {
    let log = server.log();
    assert!(!log.contains("@example"), "an address in the log:\n{log}");
    for secret in secrets {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
}

const POSTMARK_PASSWORD: &str = "pm-webhook-password";

/// Postmark's bounce webhook example (its documentation's), as Postmark posts it.
fn postmark_bounce(kind: &str, email: &str, id: u64) -> String {
    format!(
        r#"{{
  "RecordType": "Bounce",
  "ID": {id},
  "Type": "{kind}",
  "TypeCode": 1,
  "Name": "Hard bounce",
  "Tag": "Test",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "ServerID": 23,
  "MessageStream": "broadcast",
  "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
  "Details": "Test bounce details",
  "Email": "{email}",
  "From": "sender@example.com",
  "BouncedAt": "2019-11-05T16:33:54.9070259Z",
  "DumpAvailable": true,
  "Inactive": true,
  "CanActivate": true,
  "Subject": "Test subject",
  "Content": "<Full dump of bounce>"
}}"#
    )
}

#[test]
fn postmark_takes_its_basic_credentials_and_nothing_else() {
    let ws = workspace(
        "[serve.webhooks.postmark]\nusername = \"postmark\"\npassword_env = \"TEST_POSTMARK_PASSWORD\"\n",
    );
    let server = Server::start_with_env(&ws, &[], &[("TEST_POSTMARK_PASSWORD", POSTMARK_PASSWORD)]);
    let body = postmark_bounce("HardBounce", "ana@example.org", 4323372036854775807);
    let path = "/webhooks/postmark";
    for wrong in [
        vec![basic("postmark", "guess")],
        vec![basic("someone", POSTMARK_PASSWORD)],
        vec![("Authorization", format!("Bearer {POSTMARK_PASSWORD}"))],
        vec![],
    ] {
        let (status, answer) = server.post(path, &wrong, body.as_bytes());
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{answer}"
        );
    }
    assert!(events(&ws).is_empty());

    let right = [basic("postmark", POSTMARK_PASSWORD)];
    let (status, answer) = server.post(path, &right, body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let got = events(&ws);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str(), got[0].2.as_str()),
        ("ana@example.org", "bounce", "postmark")
    );
    assert!(
        got[0]
            .3
            .starts_with("HardBounce, inactive: The server was unable"),
        "{got:?}"
    );

    // Postmark retries a delivery it got no answer to: recorded once.
    let (status, _) = server.post(path, &right, body.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(events(&ws).len(), 1);

    // A spam complaint, and a subscription change from Postmark's own unsubscribe link.
    let complaint = r#"{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","TypeCode":512,"Email":"bo@example.org","MessageStream":"broadcast"}"#;
    assert_eq!(server.post(path, &right, complaint.as_bytes()).0, 200);
    let change = r#"{"RecordType":"SubscriptionChange","MessageID":"883953f4","ServerID":23,"MessageStream":"broadcast","ChangedAt":"2020-02-01T10:53:34.416071Z","Recipient":"cy@example.org","Origin":"Recipient","SuppressSending":true,"SuppressionReason":"ManualSuppression","Tag":"welcome-email","Metadata":{}}"#;
    assert_eq!(server.post(path, &right, change.as_bytes()).0, 200);
    assert_eq!(
        listed(&ws),
        [
            ("ana@example.org".into(), "bounce".into(), "postmark".into()),
            (
                "bo@example.org".into(),
                "complaint".into(),
                "postmark".into()
            ),
            (
                "cy@example.org".into(),
                "unsubscribe".into(),
                "postmark".into()
            ),
        ]
    );

    // Authenticated, but not Postmark's JSON; or over the body limit (1 MiB).
    let (status, _) = server.post(path, &right, b"RecordType=Bounce");
    assert_eq!(status, 400);
    let big = format!("{{\"Pad\":\"{}\"}}", "x".repeat(1024 * 1024));
    let (status, _) = server.post(path, &right, big.as_bytes());
    assert_eq!(status, 413);
    assert_eq!(events(&ws).len(), 3);
    assert_log_is_clean(&server, &[POSTMARK_PASSWORD]);
}

/// SendGrid's verification key for a signing key the test makes: base64 of its DER.
fn sendgrid_key(signing: &p256::ecdsa::SigningKey) -> String {
    // SubjectPublicKeyInfo of a P-256 key: the algorithm's fixed prefix, then the point.
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    der.extend_from_slice(signing.verifying_key().to_encoded_point(false).as_bytes());
    B64.encode(der)
}

fn sendgrid_headers(
    signing: &p256::ecdsa::SigningKey,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    use p256::ecdsa::signature::Signer;
    let signed = [timestamp.to_string().as_bytes(), body].concat();
    let signature: p256::ecdsa::Signature = signing.sign(&signed);
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            B64.encode(signature.to_der().as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        ),
    ]
}

#[test]
fn sendgrid_takes_its_signature_over_timestamp_and_body() {
    let signing = p256::ecdsa::SigningKey::from_slice(&[0x5a; 32]).unwrap();
    let other = p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap();
    let key = sendgrid_key(&signing);
    let ws = workspace("[serve.webhooks.sendgrid]\nverification_key_env = \"TEST_SENDGRID_KEY\"\n");
    let server = Server::start_with_env(&ws, &[], &[("TEST_SENDGRID_KEY", &key)]);
    let path = "/webhooks/sendgrid";
    // SendGrid's event examples, batched as it posts them.
    let body = br#"[
  {"email":"ana@example.org","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"bounce","category":"cat facts","sg_event_id":"6g4ZI7SA-xmRDv57GoPIPw==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","reason":"500 unknown recipient","status":"5.0.0","type":"bounce","bounce_classification":"Invalid Address"},
  {"email":"bo@example.org","timestamp":1513299569,"event":"spamreport","sg_event_id":"37nvH5QBz858KGVYCM4uOA==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1"},
  {"email":"cy@example.org","timestamp":1513299569,"event":"group_unsubscribe","asm_group_id":10,"sg_event_id":"ahSCB7xYcXFb-hEaawsPRw==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.2"},
  {"email":"di@example.org","timestamp":1513299569,"event":"bounce","type":"blocked","reason":"421 try later","status":"4.0.0","sg_event_id":"x","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.3"},
  {"email":"ed@example.org","timestamp":1513299569,"event":"delivered","sg_event_id":"y","sg_message_id":"z"}
]"#;
    let t = now();
    let mut tampered = body.to_vec();
    tampered[20] = b'b'; // ana@ → bna@
    let refused = [
        (sendgrid_headers(&other, t, body), body.to_vec()),
        (sendgrid_headers(&signing, t, body), tampered),
        (sendgrid_headers(&signing, t - 3600, body), body.to_vec()),
        (
            sendgrid_headers(&signing, t, body)[1..].to_vec(),
            body.to_vec(),
        ),
    ];
    for (headers, body) in &refused {
        let (status, answer) = server.post(path, headers, body);
        assert_eq!(status, 401, "{answer}");
    }
    assert!(events(&ws).is_empty());

    let (status, answer) = server.post(path, &sendgrid_headers(&signing, t, body), body);
    assert_eq!(status, 200, "{answer}");
    let got: Vec<(String, String)> = events(&ws).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        got,
        [
            ("ana@example.org".into(), "bounce".into()),
            ("bo@example.org".into(), "complaint".into()),
            ("cy@example.org".into(), "unsubscribe".into()),
            ("di@example.org".into(), "soft-bounce".into()),
        ]
    );
    assert_eq!(
        events(&ws)[0].3,
        "bounce bounce 5.0.0 500 unknown recipient"
    );
    // Di's one blocked message suppresses nothing yet.
    assert_eq!(listed(&ws).len(), 3);
    assert_log_is_clean(&server, &[&key]);
}

const MAILGUN_KEY: &str = "mailgun-signing-key-made-by-the-test";

/// Mailgun's webhook body for `event_data`, signed with `key` at `timestamp`.
fn mailgun_body(key: &str, timestamp: i64, token: &str, event_data: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"{{"signature":{{"timestamp":"{timestamp}","token":"{token}","signature":"{signature}"}},"event-data":{event_data}}}"#
    )
}

/// Mailgun's "failed" example, for `recipient` with `severity`.
fn mailgun_failed(id: &str, recipient: &str, severity: &str) -> String {
    format!(
        r#"{{"id":"{id}","timestamp":1521472262.908181,"log-level":"error","event":"failed","severity":"{severity}","reason":"suppress-bounce","recipient":"{recipient}","recipient-domain":"example.org","delivery-status":{{"attempt-no":1,"message":"","code":605,"description":"Not delivering to previously bounced address","session-seconds":0.0}},"message":{{"headers":{{"to":"{recipient}","message-id":"20130503192659.13651.20287@mg.example.com","from":"Bob <bob@mg.example.com>","subject":"Test permanent_fail webhook"}}}}}}"#
    )
}

#[test]
fn mailgun_takes_its_hmac_fresh_and_once() {
    let ws = workspace("[serve.webhooks.mailgun]\nsigning_key_env = \"TEST_MAILGUN_KEY\"\n");
    let server = Server::start_with_env(&ws, &[], &[("TEST_MAILGUN_KEY", MAILGUN_KEY)]);
    let path = "/webhooks/mailgun";
    let event = mailgun_failed("G9Bn5sl1TC6nu79C8C0bwg", "ana@example.org", "permanent");
    let t = now();
    let token = "8b41a6e3c3d8cbb1d2b8f8a9a4a3e4c5b6a7f8e9d0c1b2a3f4";
    let good = mailgun_body(MAILGUN_KEY, t, token, &event);
    let refused = [
        mailgun_body("another key", t, token, &event),
        good.replace(&format!("\"{t}\""), &format!("\"{}\"", t + 1)),
        mailgun_body(MAILGUN_KEY, t - 3600, token, &event),
        event.clone(),
        "not json".to_string(),
    ];
    for body in &refused {
        let (status, answer) = server.post(path, &[], body.as_bytes());
        assert_eq!(status, 401, "{answer}");
    }
    assert!(events(&ws).is_empty());

    let (status, answer) = server.post(path, &[], good.as_bytes());
    assert_eq!(status, 200, "{answer}");
    // The signature covers the timestamp and token only: Mailgun's body is not signed, so a
    // token already taken is not taken again, whatever comes with it.
    let replayed = good.replace("ana@example.org", "bo@example.org");
    let (status, _) = server.post(path, &[], replayed.as_bytes());
    assert_eq!(status, 200);
    let got = events(&ws);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("ana@example.org", "bounce")
    );
    assert!(
        got[0].3.contains("permanent suppress-bounce 605"),
        "{got:?}"
    );

    let complained = r#"{"id":"-Agny091SquKnsrW2NEKUA","timestamp":1521233123.501324,"log-level":"warn","event":"complained","recipient":"bo@example.org"}"#;
    let unsubscribed = r#"{"id":"Ase7i2zsRYeDXztHGENqRA","timestamp":1521243339.873676,"log-level":"info","event":"unsubscribed","recipient":"cy@example.org"}"#;
    for (i, data) in [complained, unsubscribed].into_iter().enumerate() {
        let body = mailgun_body(MAILGUN_KEY, now(), &format!("token{i}"), data);
        assert_eq!(server.post(path, &[], body.as_bytes()).0, 200);
    }
    let kinds: Vec<String> = listed(&ws).into_iter().map(|l| l.1).collect();
    assert_eq!(kinds, ["bounce", "complaint", "unsubscribe"]);
    assert_log_is_clean(&server, &[MAILGUN_KEY]);
}

#[test]
fn soft_bounces_suppress_at_the_limit() {
    let ws = workspace(
        "[serve.bounces]\nsoft_limit = 3\nsoft_window_days = 30\n\n[serve.webhooks.mailgun]\nsigning_key_env = \"TEST_MAILGUN_KEY\"\n",
    );
    let server = Server::start_with_env(&ws, &[], &[("TEST_MAILGUN_KEY", MAILGUN_KEY)]);
    let soft = |n: usize| {
        let event = mailgun_failed(&format!("event{n}"), "ana@example.org", "temporary");
        let body = mailgun_body(MAILGUN_KEY, now(), &format!("token{n}"), &event);
        server.post("/webhooks/mailgun", &[], body.as_bytes()).0
    };
    assert_eq!(soft(1), 200);
    assert_eq!(soft(2), 200);
    assert!(listed(&ws).is_empty(), "two soft bounces suppress nothing");
    assert_eq!(soft(3), 200);
    assert_eq!(
        listed(&ws),
        [("ana@example.org".into(), "bounce".into(), "mailgun".into())]
    );
    let got = events(&ws);
    assert_eq!(got.len(), 4);
    assert!(
        got[3]
            .3
            .starts_with("3 soft bounces in 30 days; the last: failed temporary"),
        "{got:?}"
    );
    assert!(server.logged("suppressed as a bounce"), "{}", server.log());
    let out = ws
        .run_with(
            &["serve", "--check"],
            &[SECRET, ("TEST_MAILGUN_KEY", MAILGUN_KEY)],
        )
        .ok();
    assert!(
        out.contains("a soft bounce suppresses at the 3rd within 30 days"),
        "{out}"
    );
}

#[test]
fn brevo_takes_a_bearer_token_and_batches() {
    let token = "brevo-token-made-by-the-test";
    let ws = workspace("[serve.webhooks.brevo]\ntoken_env = \"TEST_BREVO_TOKEN\"\n");
    let server = Server::start_with_env(&ws, &[], &[("TEST_BREVO_TOKEN", token)]);
    let path = "/webhooks/brevo";
    // Brevo's transactional hard_bounce example.
    let one = r#"{"event":"hard_bounce","email":"ana@example.org","id":123456,"date":"2020-10-09 00:00:00","ts":1604933619,"message-id":"<202010091440.89416541@smtp-relay.mailin.fr>","ts_event":1604933654,"subject":"My first Transactional","tag":"[\"transactionalTag\"]","sending_ip":"185.41.28.109","ts_epoch":1604933654,"tags":["myFirstTransactional"],"reason":"unknown user"}"#;
    for wrong in [
        vec![("Authorization", "Bearer brevo-token-guessed".to_string())],
        vec![basic("brevo", token)],
        vec![],
    ] {
        assert_eq!(server.post(path, &wrong, one.as_bytes()).0, 401);
    }
    assert!(events(&ws).is_empty());
    let right = [("Authorization", format!("Bearer {token}"))];
    assert_eq!(server.post(path, &right, one.as_bytes()).0, 200);
    let batch = r#"[
 {"event":"soft_bounce","email":"bo@example.org","message-id":"<2@x>","ts_event":1604933655,"reason":"mailbox full"},
 {"event":"spam","email":"cy@example.org","message-id":"<3@x>","ts_event":1604933656},
 {"event":"unsubscribed","email":"di@example.org","message-id":"<4@x>","ts_event":1604933657},
 {"event":"opened","email":"ed@example.org","message-id":"<5@x>","ts_event":1604933658}
]"#;
    assert_eq!(server.post(path, &right, batch.as_bytes()).0, 200);
    let got: Vec<(String, String, String)> =
        events(&ws).into_iter().map(|e| (e.0, e.1, e.3)).collect();
    assert_eq!(
        got,
        [
            (
                "ana@example.org".into(),
                "bounce".into(),
                "hard_bounce: unknown user".into()
            ),
            (
                "bo@example.org".into(),
                "soft-bounce".into(),
                "soft_bounce: mailbox full".into()
            ),
            ("cy@example.org".into(), "complaint".into(), "spam".into()),
            (
                "di@example.org".into(),
                "unsubscribe".into(),
                "unsubscribed".into()
            ),
        ]
    );
    assert_eq!(server.post(path, &right, b"[{").0, 400);
    assert_log_is_clean(&server, &[token]);
}

#[test]
fn mailjet_takes_its_basic_credentials_and_arrays() {
    let ws = workspace(
        "[serve.webhooks.mailjet]\npath = \"/hooks/mj\"\nusername = \"mailjet\"\npassword_env = \"TEST_MAILJET_PASSWORD\"\n",
    );
    let password = "mj-password-made-by-the-test";
    let server = Server::start_with_env(&ws, &[], &[("TEST_MAILJET_PASSWORD", password)]);
    // Mailjet's bounce, spam and unsub examples, grouped as an array.
    let body = r#"[
 {"event":"bounce","time":1430812195,"MessageID":13792286917004336,"Message_GUID":"1ab23cd4-e567-8901-2345-6789f0gh1i2j","email":"ana@example.org","mj_campaign_id":0,"mj_contact_id":0,"customcampaign":"","CustomID":"helloworld","Payload":"","blocked":false,"hard_bounce":true,"error_related_to":"recipient","error":"user unknown"},
 {"event":"bounce","time":1430812196,"MessageID":13792286917004337,"email":"bo@example.org","blocked":false,"hard_bounce":false,"error_related_to":"recipient","error":"quota exceeded"},
 {"event":"spam","time":1430812197,"MessageID":13792286917004338,"email":"cy@example.org","mj_campaign_id":1,"mj_contact_id":2,"customcampaign":"","source":"JMRPP"},
 {"event":"unsub","time":1430812198,"MessageID":13792286917004339,"email":"di@example.org","mj_list_id":1,"ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0"}
]"#;
    assert_eq!(
        server
            .post(
                "/webhooks/mailjet",
                &[basic("mailjet", password)],
                body.as_bytes()
            )
            .0,
        404
    );
    for wrong in [vec![basic("mailjet", "guess")], vec![]] {
        assert_eq!(server.post("/hooks/mj", &wrong, body.as_bytes()).0, 401);
    }
    assert!(events(&ws).is_empty());
    assert_eq!(
        server
            .post("/hooks/mj", &[basic("mailjet", password)], body.as_bytes())
            .0,
        200
    );
    let got: Vec<(String, String)> = events(&ws).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        got,
        [
            ("ana@example.org".into(), "bounce".into()),
            ("bo@example.org".into(), "soft-bounce".into()),
            ("cy@example.org".into(), "complaint".into()),
            ("di@example.org".into(), "unsubscribe".into()),
        ]
    );
    assert_log_is_clean(&server, &[password]);
}

/// Svix's headers for `body`, signed with `key` as `id` at `timestamp`.
fn svix_headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let signature = B64.encode(mac.finalize().into_bytes());
    vec![
        ("svix-id", id.to_string()),
        ("svix-timestamp", timestamp.to_string()),
        // As while a secret is rotated: an old signature first, then the current one.
        (
            "svix-signature",
            format!("v1,Zm9yZ2VkIHNpZ25hdHVyZQ== v1,{signature}"),
        ),
    ]
}

#[test]
fn resend_takes_its_svix_signature_fresh_and_once() {
    let key = b"resend-secret-made-by-the-test!!";
    let secret = format!("whsec_{}", B64.encode(key));
    let ws = workspace("[serve.webhooks.resend]\nsecret_env = \"TEST_RESEND_SECRET\"\n");
    let server = Server::start_with_env(&ws, &[], &[("TEST_RESEND_SECRET", &secret)]);
    let path = "/webhooks/resend";
    // Resend's email.bounced example.
    let body = br#"{"type":"email.bounced","created_at":"2024-11-22T23:41:12.126Z","data":{"broadcast_id":"8b146471-e88e-4322-86af-016cd36fd216","created_at":"2024-11-22T23:41:11.894719+00:00","email_id":"56761188-7520-42d8-8898-ff6fc54ce618","from":"Acme <onboarding@resend.dev>","to":["ana@example.org"],"subject":"Sending this example","bounce":{"message":"The recipient's email address is on the suppression list because it has a recent history of producing hard bounces.","subType":"Suppressed","type":"Permanent"}}}"#;
    let t = now();
    let mut tampered = body.to_vec();
    let at = body.windows(3).position(|w| w == b"ana").unwrap();
    tampered[at] = b'b';
    let refused = [
        (
            svix_headers(b"another secret", "msg_1", t, body),
            body.to_vec(),
        ),
        (svix_headers(key, "msg_1", t, body), tampered),
        (svix_headers(key, "msg_1", t - 600, body), body.to_vec()),
        (
            svix_headers(key, "msg_1", t, body)[1..].to_vec(),
            body.to_vec(),
        ),
    ];
    for (headers, body) in &refused {
        let (status, answer) = server.post(path, headers, body);
        assert_eq!(status, 401, "{answer}");
    }
    assert!(events(&ws).is_empty());
    let (status, answer) = server.post(path, &svix_headers(key, "msg_1", t, body), body);
    assert_eq!(status, 200, "{answer}");
    // Replayed within the tolerance: answered, not recorded again.
    assert_eq!(
        server
            .post(path, &svix_headers(key, "msg_1", t, body), body)
            .0,
        200
    );
    let complained = br#"{"type":"email.complained","created_at":"2024-11-22T23:41:12.126Z","data":{"created_at":"2024-11-22T23:41:11.894719+00:00","email_id":"56761188","from":"Acme <onboarding@resend.dev>","to":["bo@example.org"],"subject":"Sending this example"}}"#;
    assert_eq!(
        server
            .post(
                path,
                &svix_headers(key, "msg_2", now(), complained),
                complained
            )
            .0,
        200
    );
    let got = events(&ws);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("ana@example.org", "bounce")
    );
    assert!(
        got[0].3.starts_with("Permanent Suppressed The recipient"),
        "{got:?}"
    );
    assert_eq!(
        (got[1].0.as_str(), got[1].1.as_str()),
        ("bo@example.org", "complaint")
    );
    assert_log_is_clean(&server, &[&secret]);
}

/// A stand-in for Amazon's certificate host: serves `/cert.pem`, answers any other GET 200,
/// and keeps every path asked for.
struct CertHost {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl CertHost {
    fn start(pem: String) -> CertHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // The rest of the head.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(path.clone());
                let body = if path == "/cert.pem" {
                    pem.clone()
                } else {
                    "<ConfirmSubscriptionResponse/>".into()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        CertHost { port, asked }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// An RSA key and its self-signed certificate, made by openssl: (key PEM, certificate PEM).
fn rsa_certificate(dir: &std::path::Path) -> (String, String) {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=sns.us-east-1.amazonaws.com"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl: run `bash tests/setup.sh`");
    assert!(made.success());
    (
        std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
    )
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:bulletin-bounces";

/// An SNS message of `fields` (name, value), signed as SNS documents with `key`.
fn sns_message(key: &rsa::RsaPrivateKey, version: &str, fields: &[(&str, String)]) -> String {
    use rsa::Pkcs1v15Sign;
    let kind = &fields.iter().find(|f| f.0 == "Type").unwrap().1;
    let order: &[&str] = if kind == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let text: String = order
        .iter()
        .filter_map(|name| fields.iter().find(|f| f.0 == *name))
        .map(|(name, value)| format!("{name}\n{value}\n"))
        .collect();
    let signature = if version == "1" {
        let hash = <sha1::Sha1 as sha1::Digest>::digest(text.as_bytes());
        key.sign(Pkcs1v15Sign::new::<sha1::Sha1>(), &hash).unwrap()
    } else {
        let hash = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(text.as_bytes());
        key.sign(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &hash)
            .unwrap()
    };
    let mut json = serde_json::Map::new();
    for (name, value) in fields {
        json.insert(name.to_string(), serde_json::Value::String(value.clone()));
    }
    json.insert("SignatureVersion".into(), version.into());
    json.insert("Signature".into(), B64.encode(signature).into());
    serde_json::Value::Object(json).to_string()
}

#[test]
fn ses_through_sns_verifies_the_signature_and_confirms_only_listed_topics() {
    use rsa::pkcs8::DecodePrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let (key_pem, cert_pem) = rsa_certificate(dir.path());
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem).unwrap();
    let host = CertHost::start(cert_pem);
    let ws = workspace(&format!(
        "[serve.webhooks.ses]\ntopic_arns = [\"{TOPIC}\"]\ncertificate_hosts = [\"127.0.0.1\"]\n"
    ));
    let server = Server::start_with_env(&ws, &[], &[]);
    let path = "/webhooks/ses";
    let cert = format!("http://127.0.0.1:{}/cert.pem", host.port);
    let confirm = format!(
        "http://127.0.0.1:{}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37",
        host.port
    );
    let subscription = |topic: &str, cert: &str| {
        vec![
            ("Type", "SubscriptionConfirmation".to_string()),
            ("MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b".into()),
            ("Token", "2336412f37".into()),
            ("TopicArn", topic.to_string()),
            (
                "Message",
                format!(
                    "You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
                ),
            ),
            ("SubscribeURL", confirm.clone()),
            ("Timestamp", "2012-04-26T20:45:04.751Z".into()),
            ("SigningCertURL", cert.to_string()),
        ]
    };
    let headers = [(
        "x-amz-sns-message-type",
        "SubscriptionConfirmation".to_string(),
    )];

    // Another topic, signed right: refused before any certificate is fetched.
    let other = "arn:aws:sns:us-east-1:123456789012:someone-elses";
    let (status, answer) = server.post(
        path,
        &headers,
        sns_message(&key, "2", &subscription(other, &cert)).as_bytes(),
    );
    assert_eq!(status, 403, "{answer}");
    // A certificate elsewhere than the allowed hosts: refused, not fetched.
    let elsewhere = subscription(TOPIC, "http://198.51.100.7/cert.pem");
    assert_eq!(
        server
            .post(
                path,
                &headers,
                sns_message(&key, "2", &elsewhere).as_bytes()
            )
            .0,
        403
    );
    assert!(host.asked().is_empty(), "{:?}", host.asked());
    // Its SubscribeURL changed after signing: the certificate is fetched, nothing confirmed.
    let mut forged: serde_json::Value =
        serde_json::from_str(&sns_message(&key, "2", &subscription(TOPIC, &cert))).unwrap();
    forged["SubscribeURL"] = format!(
        "http://127.0.0.1:{}/?Action=ConfirmSubscription&TopicArn=x",
        host.port
    )
    .into();
    let (status, answer) = server.post(path, &headers, forged.to_string().as_bytes());
    assert_eq!(status, 401, "{answer}");
    assert_eq!(host.asked(), ["/cert.pem"]);
    // The real one: confirmed by a GET of its SubscribeURL.
    let (status, answer) = server.post(
        path,
        &headers,
        sns_message(&key, "2", &subscription(TOPIC, &cert)).as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    let asked = host.asked();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked[1].starts_with("/?Action=ConfirmSubscription&TopicArn="),
        "{asked:?}"
    );
    assert!(
        server.logged(&format!("subscription to {TOPIC} confirmed")),
        "{}",
        server.log()
    );

    // SES's bounce notification example, as SNS delivers it (SignatureVersion 1 and 2).
    let bounce = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","reportingMTA":"dns; email.example.com","bouncedRecipients":[{"emailAddress":"jane@example.com","status":"5.1.1","action":"failed","diagnosticCode":"smtp; 550 5.1.1 <jane@example.com>... User"}],"bounceSubType":"General","timestamp":"2016-01-27T14:59:38.237Z","feedbackId":"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000","remoteMtaIp":"127.0.2.0"},"mail":{"timestamp":"2016-01-27T14:59:38.237Z","source":"john@example.com","sourceArn":"arn:aws:ses:us-east-1:888888888888:identity/example.com","sourceIp":"127.0.3.0","sendingAccountId":"123456789012","messageId":"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000","destination":["jane@example.com"]}}"#;
    let complaint = r#"{"notificationType":"Complaint","complaint":{"userAgent":"AnyCompany Feedback Loop (V0.01)","complainedRecipients":[{"emailAddress":"richard@example.com"}],"complaintFeedbackType":"abuse","arrivalDate":"2016-01-27T14:59:38.237Z","timestamp":"2016-01-27T14:59:38.237Z","feedbackId":"000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"},"mail":{"timestamp":"2016-01-27T14:59:38.237Z","messageId":"000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000","source":"john@example.com","destination":["richard@example.com"]}}"#;
    let notification = |id: &str, message: &str| {
        vec![
            ("Type", "Notification".to_string()),
            ("MessageId", id.to_string()),
            ("TopicArn", TOPIC.to_string()),
            ("Message", message.to_string()),
            ("Timestamp", "2016-01-27T14:59:38.300Z".into()),
            ("SigningCertURL", cert.clone()),
            (
                "UnsubscribeURL",
                "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".into(),
            ),
        ]
    };
    let signed = sns_message(&key, "2", &notification("n-1", bounce));
    let tampered = signed.replace("jane@example.com", "ann@example.com");
    assert_eq!(server.post(path, &[], tampered.as_bytes()).0, 401);
    assert!(events(&ws).is_empty());
    assert_eq!(server.post(path, &[], signed.as_bytes()).0, 200);
    let signed = sns_message(&key, "1", &notification("n-2", complaint));
    assert_eq!(server.post(path, &[], signed.as_bytes()).0, 200);
    let got = events(&ws);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str(), got[0].2.as_str()),
        ("jane@example.com", "bounce", "ses")
    );
    assert_eq!(
        got[0].3,
        "Permanent General: smtp; 550 5.1.1 <jane@example.com>... User"
    );
    assert_eq!(
        (got[1].0.as_str(), got[1].1.as_str()),
        ("richard@example.com", "complaint")
    );
    // The certificate was fetched once.
    assert_eq!(host.asked().iter().filter(|p| *p == "/cert.pem").count(), 1);
    assert_eq!(server.post(path, &[], b"{\"Type\":").0, 400);
    assert_log_is_clean(&server, &[]);

    // --check says the certificate host is not Amazon's.
    let out = ws.run_with(&["serve", "--check"], &[SECRET]).ok();
    assert!(out.contains("NOT Amazon's: for tests only"), "{out}");
}

#[test]
fn webhook_settings_are_checked_once_and_name_their_variables_not_their_values() {
    let ws = workspace(
        "[serve.webhooks.postmark]\nusername = \"postmark\"\npassword_env = \"TEST_POSTMARK_PASSWORD\"\n\n[serve.webhooks.resend]\nsecret_env = \"TEST_RESEND_SECRET\"\n",
    );
    let err = ws.run_with(&["serve", "--check"], &[SECRET]).bad_input();
    assert!(
        err.contains("serve.webhooks.postmark.password_env")
            && err.contains("TEST_POSTMARK_PASSWORD is not set"),
        "{err}"
    );
    let env = [
        SECRET,
        ("TEST_POSTMARK_PASSWORD", POSTMARK_PASSWORD),
        ("TEST_RESEND_SECRET", "not-a-whsec"),
    ];
    let err = ws.run_with(&["serve", "--check"], &env).bad_input();
    assert!(
        err.contains("TEST_RESEND_SECRET does not hold a signing secret"),
        "{err}"
    );
    assert!(!err.contains("not-a-whsec"), "{err}");
    let env = [
        SECRET,
        ("TEST_POSTMARK_PASSWORD", POSTMARK_PASSWORD),
        ("TEST_RESEND_SECRET", "whsec_c2VjcmV0"),
    ];
    let out = ws.run_with(&["serve", "--check"], &env).ok();
    assert!(
        out.contains("postmark POST /webhooks/postmark (basic auth: user \"postmark\", password from TEST_POSTMARK_PASSWORD: set)")
            && out.contains("resend   POST /webhooks/resend (Svix signature; secret from TEST_RESEND_SECRET: set)"),
        "{out}"
    );
    assert!(
        !out.contains(POSTMARK_PASSWORD) && !out.contains("c2VjcmV0"),
        "{out}"
    );

    let config = ws.read("bulletin.toml");
    ws.write(
        "bulletin.toml",
        &format!("{config}\n[serve.webhooks.mailgun]\nsigning_key = \"inline\"\n"),
    );
    let err = ws.run_with(&["serve", "--check"], &env).bad_input();
    assert!(err.contains("unknown field `signing_key`"), "{err}");
    ws.write(
        "bulletin.toml",
        &format!("{config}\n[serve.bounces]\nsoft_limit = 0\n"),
    );
    let err = ws.run_with(&["serve", "--check"], &env).bad_input();
    assert!(
        err.contains("serve.bounces: soft_limit must be at least 1"),
        "{err}"
    );
    ws.write(
        "bulletin.toml",
        &config.replace(
            "[serve.webhooks.resend]",
            "[serve.webhooks.resend]\npath = \"/webhooks/postmark\"",
        ),
    );
    let err = ws.run_with(&["serve", "--check"], &env).bad_input();
    assert!(
        err.contains("path = \"/webhooks/postmark\" is already taken"),
        "{err}"
    );
}

/// The issue's end to end: a reader bounced through a webhook is skipped by the next send.
#[test]
fn a_reader_bounced_through_a_webhook_gets_no_next_issue() {
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let ws = workspace(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\n\
         [serve.webhooks.postmark]\nusername = \"postmark\"\npassword_env = \"TEST_POSTMARK_PASSWORD\"\n",
        smtp.port
    ));
    ws.write(
        "subscribers.csv",
        "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n",
    );
    {
        let server =
            Server::start_with_env(&ws, &[], &[("TEST_POSTMARK_PASSWORD", POSTMARK_PASSWORD)]);
        let body = postmark_bounce("HardBounce", "Bo@Example.org", 1);
        let (status, _) = server.post(
            "/webhooks/postmark",
            &[basic("postmark", POSTMARK_PASSWORD)],
            body.as_bytes(),
        );
        assert_eq!(status, 200);
    }
    let out = ws
        .run_with(
            &[
                "send",
                "issues/2020-06.json",
                "--profile",
                "test",
                "--list",
                "subscribers.csv",
                "--yes",
            ],
            &[SECRET],
        )
        .ok();
    assert!(
        out.contains("Recipients: 2") && out.contains("Skipped:    1 bounced"),
        "{out}"
    );
    let got = smtp.received();
    let to: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(to, ["ana@example.org", "cy@example.org"]);
}
