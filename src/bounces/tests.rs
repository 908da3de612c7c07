//! Each report shape of tests/fixtures/bounces/, read; and reports recorded against a ledger.

use super::parse::{Action, Form, Report, parse, report_id};
use super::*;
use crate::suppressions::Kind;

const READER: &str = "ana.martin@reader.example";
const ORIGINAL: &str = "2020-06.5f2a9c0e1b3d4f6a7b8c9d0e@example.org";

/// A fixture with the reader and the original Message-ID filled in.
fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("%RECIPIENT%", READER)
        .replace("%MESSAGE_ID%", ORIGINAL)
        .into_bytes()
}

fn dsn(name: &str) -> parse::Dsn {
    match parse(&fixture(name)) {
        Report::Dsn(dsn) => dsn,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn standard_dsns_give_each_recipient_with_action_status_and_the_original_message_id() {
    for (name, status, kind) in [
        ("postfix-hard.eml", "5.1.1", Kind::Bounce),
        ("gmail-hard.eml", "5.1.1", Kind::Bounce),
        ("postfix-delayed.eml", "4.4.1", Kind::SoftBounce),
        ("yahoo-soft.eml", "4.7.0", Kind::SoftBounce),
    ] {
        let dsn = dsn(name);
        assert_eq!(dsn.form, Form::Standard, "{name}");
        assert_eq!(dsn.original_message_id.as_deref(), Some(ORIGINAL), "{name}");
        assert_eq!(dsn.recipients.len(), 1, "{name}");
        let r = &dsn.recipients[0];
        assert_eq!(r.final_recipient, READER, "{name}");
        assert_eq!(r.status.as_deref(), Some(status), "{name}");
        assert_eq!(r.kind(), Some(kind), "{name}");
        let reason = r.reason().unwrap();
        assert!(reason.contains(status), "{name}: {reason}");
        assert!(!reason.contains('\n'), "{name}: {reason}");
    }
    let postfix = dsn("postfix-hard.eml");
    assert_eq!(postfix.recipients[0].action, Action::Failed);
    assert_eq!(
        postfix.recipients[0].original_recipient.as_deref(),
        Some(READER)
    );
    // A folded Diagnostic-Code is read as one line.
    assert!(
        postfix.recipients[0]
            .diagnostic
            .as_deref()
            .unwrap()
            .ends_with("Recipient address rejected: User unknown in virtual mailbox table")
    );
    assert_eq!(
        dsn("postfix-delayed.eml").recipients[0].action,
        Action::Delayed
    );
}

#[test]
fn plain_text_bounces_of_exim_qmail_and_exchange_are_read() {
    for (name, status, kind) in [
        ("exim-hard.eml", "5.1.1", Kind::Bounce),
        ("exim-delay.eml", "4.2.2", Kind::SoftBounce),
        ("qmail-hard.eml", "5.1.1", Kind::Bounce),
        ("exchange-ndr.eml", "5.1.10", Kind::Bounce),
    ] {
        let dsn = dsn(name);
        assert_eq!(dsn.form, Form::Text, "{name}");
        assert_eq!(dsn.recipients.len(), 1, "{name}: {:?}", dsn.recipients);
        let r = &dsn.recipients[0];
        assert_eq!(r.final_recipient, READER, "{name}");
        assert_eq!(r.status.as_deref(), Some(status), "{name}");
        assert_eq!(r.kind(), Some(kind), "{name}");
        let exim_delay = name == "exim-delay.eml";
        // Exim's delay warning returns no copy of the message.
        let expected = (!exim_delay).then_some(ORIGINAL);
        assert_eq!(dsn.original_message_id.as_deref(), expected, "{name}");
    }
    let exchange = dsn("exchange-ndr.eml");
    assert!(
        exchange.recipients[0]
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("RESOLVER.ADR.RecipientNotFound")
    );
}

#[test]
fn an_abuse_report_is_a_complaint_and_other_feedback_is_not() {
    let Report::Arf(arf) = parse(&fixture("arf-abuse.eml")) else {
        panic!("not read as a feedback report");
    };
    assert_eq!(arf.feedback_type, "abuse");
    assert_eq!(arf.original_rcpt_to.as_deref(), Some(READER));
    assert_eq!(arf.original_to.as_deref(), Some(READER));
    assert_eq!(arf.original_message_id.as_deref(), Some(ORIGINAL));
    assert_eq!(arf.kind(), Some(Kind::Complaint));
    let Report::Arf(other) = parse(&fixture("arf-not-spam.eml")) else {
        panic!("not read as a feedback report");
    };
    assert_eq!(other.kind(), None);
}

#[test]
fn replies_auto_replies_and_success_reports_are_not_bounces() {
    for name in ["auto-reply.eml", "human.eml"] {
        assert_eq!(parse(&fixture(name)), Report::NotABounce, "{name}");
    }
    // A report of delivery is a DSN, about nobody to suppress.
    let success = dsn("success-dsn.eml");
    assert_eq!(success.recipients[0].action, Action::Delivered);
    assert_eq!(success.recipients[0].kind(), None);
    assert_eq!(parse(b""), Report::NotABounce);
    assert_eq!(parse(b"\xff\xfe not a message"), Report::NotABounce);
}

#[test]
fn a_report_is_known_by_its_message_id_or_its_digest() {
    assert_eq!(
        report_id(&fixture("postfix-hard.eml")),
        "<20200603071244.4F1A2C0E3B@mx1.example.org>"
    );
    let without = b"From: MAILER-DAEMON@x.example\r\nSubject: x\r\n\r\nbody\r\n";
    let id = report_id(without);
    assert!(id.starts_with("sha256:") && id.len() == 39, "{id}");
    assert_eq!(report_id(without), id);
}

/// A ledger in which `2020-06` went to READER (with ORIGINAL as its Message-ID) and to
/// bo@reader.example, and `2020-05` to READER before.
fn ledger(dir: &Path) -> PathBuf {
    use crate::ledger::{Holder, Outcome, RecipientKey, RunRequest};
    let path = dir.join("ledger.sqlite");
    let mut l = Ledger::open(&path).unwrap();
    let holder = Holder {
        host: "h".into(),
        pid: 1,
    };
    let at = |s| DateTime::from_timestamp(1_591_000_000 + s, 0).unwrap();
    for (i, issue) in ["2020-05", "2020-06"].into_iter().enumerate() {
        let now = at(i64::try_from(i).unwrap() * 100);
        let run = l
            .start_run(
                &RunRequest {
                    issue,
                    content_hash: "x",
                    subject: "s",
                    holder: &holder,
                    force: false,
                },
                now,
                |_| true,
            )
            .unwrap()
            .run;
        let people: Vec<RecipientKey> = [READER, "bo@reader.example"]
            .iter()
            .map(|a| RecipientKey::from(&a.parse::<lettre::Address>().unwrap()))
            .collect();
        l.claim(issue, run, &people, false, now).unwrap();
        let sent = |id: String| Outcome::Sent {
            message_id: id,
            reply: "250".into(),
            uncertain: false,
        };
        l.record(
            issue,
            &[
                (
                    people[0].clone(),
                    sent(match issue {
                        "2020-06" => format!("<{ORIGINAL}>"),
                        _ => "<old@example.org>".into(),
                    }),
                ),
                (people[1].clone(), sent(format!("<{issue}.bo@example.org>"))),
            ],
            now,
        )
        .unwrap();
    }
    path
}

fn options(dry_run: bool) -> Options {
    Options {
        dry_run,
        rule: SoftRule {
            limit: 3,
            window: chrono::TimeDelta::days(30),
        },
        now: DateTime::from_timestamp(1_591_200_000, 0).unwrap(),
    }
}

#[test]
fn reports_are_recorded_against_the_reader_and_issue_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(dir.path());
    let store = dir.path().join("suppressions.sqlite");
    let mut p = Processor::open(&ledger, &store, options(false)).unwrap();
    // By Message-ID: the issue it came back from, not the reader's latest.
    assert!(p.take(&fixture("postfix-hard.eml")).unwrap());
    // By address, when the report names no Message-ID of ours: the latest issue.
    let by_address = String::from_utf8(fixture("exim-delay.eml"))
        .unwrap()
        .replace(READER, "bo@reader.example");
    assert!(p.take(by_address.as_bytes()).unwrap());
    // About someone never sent to: left alone.
    let stranger = String::from_utf8(fixture("qmail-hard.eml"))
        .unwrap()
        .replace(READER, "zed@elsewhere.example")
        .replace(ORIGINAL, "not-ours@elsewhere.example");
    assert!(!p.take(stranger.as_bytes()).unwrap());
    assert!(!p.take(&fixture("human.eml")).unwrap());
    // Read again: recorded once.
    assert!(p.take(&fixture("postfix-hard.eml")).unwrap());
    let s = &p.summary;
    assert_eq!(
        (s.messages, s.hard, s.soft, s.not_bounces, s.not_in_ledger),
        (5, 2, 1, 1, 1)
    );
    assert_eq!((s.recorded, s.already_recorded), (2, 1));
    let outcomes: Vec<_> = s
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {}",
                f.address,
                f.kind,
                f.issue.as_deref().unwrap_or("-"),
                f.outcome
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "ana.martin@reader.example bounce 2020-06 recorded",
            "bo@reader.example soft-bounce 2020-06 recorded",
            "zed@elsewhere.example bounce - not in the ledger",
            "ana.martin@reader.example bounce 2020-06 already recorded",
        ]
    );
    let store = Store::open(&store).unwrap();
    assert_eq!(store.state(READER).unwrap(), Some(Kind::Bounce));
    assert_eq!(store.state("bo@reader.example").unwrap(), None);
    let events = store.since(0, 10).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].source, "bounces");
    assert_eq!(events[0].issue.as_deref(), Some("2020-06"));
    assert!(events[0].reason.as_deref().unwrap().contains("5.1.1"));
}

#[test]
fn a_dry_run_records_nothing_and_needs_a_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(dir.path());
    let store = dir.path().join("suppressions.sqlite");
    let mut p = Processor::open(&ledger, &store, options(true)).unwrap();
    assert!(!p.take(&fixture("arf-abuse.eml")).unwrap());
    assert_eq!(p.summary.complaints, 1);
    assert_eq!(p.summary.findings[0].outcome, "dry run");
    assert!(!store.exists());
    let Err(e) = Processor::open(&dir.path().join("none.sqlite"), &store, options(false)) else {
        panic!("opened without a ledger")
    };
    assert!(
        e.to_string().contains("in the workspace you send from"),
        "{e}"
    );
}
