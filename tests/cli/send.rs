//! `bulletin send` and `bulletin status` against a real SMTP server (aiosmtpd, started by the
//! test on 127.0.0.1 and stopped by PID), with the received messages parsed by an independent
//! MIME parser (mail-parser).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mail_parser::MessageParser;

use crate::common::{Run, Workspace, repo};

const SECRET: (&str, &str) = (
    "BULLETIN_UNSUBSCRIBE_SECRET",
    "test-secret-not-for-production",
);

/// aiosmtpd keeping what it accepts in a folder; stopped when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    fn start(dir: &Path, extra: &[&str]) -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .arg(repo().join("tests/servers/smtp_server.py"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd: run `bash tests/setup.sh`");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the SMTP server did not start (is aiosmtpd installed?)"
        );
        SmtpServer {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// Every message received, as (recipient, raw bytes), in order of arrival.
    fn received(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                let rcpt = name.split_once('-').unwrap().1.to_string();
                (rcpt, std::fs::read(&p).unwrap())
            })
            .collect()
    }

    /// What the client said for each message received, by recipient: the MAIL FROM address
    /// and its parameters ("newsletter@example.org SMTPUTF8 BODY=8BITMIME").
    fn envelopes(&self) -> BTreeMap<String, String> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "envelope"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let mut lines = text.lines();
                let mail = lines.next().unwrap().trim().to_string();
                (lines.next().unwrap().to_string(), mail)
            })
            .collect()
    }

    /// How many SMTP sessions (connections) the server has seen.
    fn sessions(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("session-")
            })
            .count()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A workspace with the sample, its images published (images_url), a profile for the test
/// server, and a subscriber list as Excel writes it (BOM, semicolons, CRLF).
fn workspace(port: u16) -> Workspace {
    workspace_with_pool(port, 2)
}

/// The same, with `pool` SMTP connections.
fn workspace_with_pool(port: u16, pool: u32) -> Workspace {
    let ws = Workspace::for_sending(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\npool = {pool}\n"
    ));
    ws.write(
        "subscribers.csv",
        "\u{feff}email;first_name;name;status\r\n\
         ana@example.org;Ana;Ana Martin;subscribed\r\n\
         bo@example.org;Bo;Bo Berg;unsubscribed\r\n\
         not-an-address;X;X;\r\n\
         ANA@example.org;Ana;Ana again;\r\n\
         mariusz@example.pl;Mariusz;Mariusz Czepczyński;\r\n\
         tom@example.org;<b>Tom</b> & Jerry;Tom;\r\n",
    );
    ws
}

/// The ledger records no delivery of the sample issue.
fn assert_nothing_recorded(ws: &Workspace) {
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("nothing sent yet"), "{status}");
}

fn send(ws: &Workspace, extra: &[&str]) -> Run {
    let mut args = vec!["send", "issues/2020-06.json", "--profile", "test"];
    args.extend_from_slice(extra);
    ws.run_with(&args, &[SECRET])
}

#[test]
fn a_list_is_sent_once_to_each_subscribed_address_with_correct_messages() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert!(out.contains("Recipients: 3"), "{out}");
    assert!(
        out.contains("Skipped:    1 duplicate") && out.contains("Skipped:    1 unsubscribed"),
        "{out}"
    );
    assert!(
        out.contains("line 4: \"not-an-address\" is not an email address"),
        "{out}"
    );
    assert!(out.contains("Sent: 3\n"), "{out}");

    let got = server.received();
    let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["ana@example.org", "mariusz@example.pl", "tom@example.org"]
    );

    let parser = MessageParser::default();
    for (rcpt, raw) in &got {
        let msg = parser.parse(raw).unwrap();
        assert_eq!(
            msg.subject(),
            Some("Efus newsletter — June 2020: weekly webconferences and events")
        );
        assert_eq!(
            msg.from().unwrap().first().unwrap().address(),
            Some("newsletter@example.org")
        );
        assert!(msg.message_id().unwrap().ends_with("@example.org"));
        let text = msg.body_text(0).unwrap();
        let html = msg.body_html(0).unwrap();
        let unsubscribe = msg.header_raw("List-Unsubscribe").unwrap();
        // The link holds the reader's address sealed in the token, never in clear (issue 14).
        assert!(
            unsubscribe.contains("https://example.org/unsubscribe/")
                && unsubscribe.contains("mailto:")
        );
        let token = unsubscribe
            .split("https://example.org/unsubscribe/")
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap();
        let opened =
            bulletin::message::unsubscribe::open(&bulletin::config::Secret::new(SECRET.1), token)
                .unwrap();
        assert_eq!(opened.address.to_string(), rcpt.to_lowercase());
        assert_eq!(
            opened.issue.as_deref(),
            Some("2020-06"),
            "the issue it came in"
        );
        assert!(!unsubscribe.contains(&rcpt.replace('@', "%40")));
        assert_eq!(
            msg.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        // The reader's own link is in the footer too, and differs per reader.
        let link = unsubscribe
            .split('<')
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap();
        assert!(text.contains(link), "{rcpt}: text footer lacks {link}");
        assert!(
            html.contains(&link.replace('&', "&amp;")),
            "{rcpt}: HTML footer lacks {link}"
        );
        assert!(html.contains("src=\"https://example.org/newsletter/2020-06/images/"));
        // Body lines stay under 78 characters on the wire (headers are folded where they
        // can be; a long URL cannot be, and may go to SMTP's limit of 998).
        let wire = String::from_utf8_lossy(raw);
        let (headers, body) = wire.split_once("\r\n\r\n").unwrap();
        assert!(
            body.split("\r\n").all(|l| l.len() <= 78),
            "{rcpt}: long body line"
        );
        assert!(
            headers.split("\r\n").all(|l| l.len() <= 998),
            "{rcpt}: header line over 998"
        );
        match rcpt.as_str() {
            "mariusz@example.pl" => {
                assert_eq!(
                    msg.to().unwrap().first().unwrap().name(),
                    Some("Mariusz Czepczyński")
                );
                assert!(text.contains("Dear Mariusz,") && html.contains("Dear Mariusz,"));
            }
            "tom@example.org" => {
                assert!(
                    html.contains("Dear &lt;b&gt;Tom&lt;/b&gt; &amp; Jerry,"),
                    "HTML in a name is escaped"
                );
                assert!(text.contains("Dear <b>Tom</b> & Jerry,"));
            }
            _ => assert!(text.contains("Dear Ana,")),
        }
    }

    // The ledger knows; a second run sends nobody a second copy.
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Sent: 3\n"), "{status}");
    let again = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert!(again.contains("Sent: 0\nAlready sent before: 3"), "{again}");
    assert_eq!(server.received().len(), 3);
}

#[test]
fn a_rejected_recipient_fails_alone_and_a_flaky_relay_is_retried() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(
        received.path(),
        &["--reject", "mariusz@example.pl", "--flaky", "2"],
    );
    let ws = workspace(server.port);
    let run = send(&ws, &["--list", "subscribers.csv", "--yes"]);
    let out = run.stdout();
    assert_eq!(run.code(), 3, "a reader remains unsent: {out}");
    assert!(out.contains("Sent: 2\n"), "{out}");
    assert!(
        out.contains("mariusz@example.pl: permanent error (550)"),
        "{out}"
    );
    assert_eq!(
        server.received().len(),
        2,
        "the 451s were retried, nobody got two copies"
    );
    let csv = ws
        .run(&["status", "issues/2020-06.json", "--failed", "--csv"])
        .ok();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "email,state,attempts,reply");
    assert!(
        lines[1].starts_with("mariusz@example.pl,failed (permanent),1,"),
        "{csv}"
    );
    assert_eq!(lines.len(), 2, "{csv}");
}

#[test]
fn commands_are_pipelined_where_the_relay_offers_it_and_a_refused_recipient_fails_alone() {
    for (offers, how) in [(true, "pipelined"), (false, "lock-step")] {
        let received = tempfile::tempdir().unwrap();
        let mut flags = vec!["--reject", "mariusz@example.pl"];
        if !offers {
            flags.push("--no-pipelining");
        }
        let server = SmtpServer::start(received.path(), &flags);
        let ws = workspace(server.port);
        let run = send(&ws, &["--list", "subscribers.csv", "--yes"]);
        let out = run.stdout();
        assert_eq!(run.code(), 3, "a reader remains unsent: {out}");
        assert!(out.contains("Sent: 2\n"), "{out}");
        assert!(
            out.contains("mariusz@example.pl: permanent error (550)"),
            "{out}"
        );
        let got = server.received();
        let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
        rcpts.sort();
        assert_eq!(
            rcpts,
            ["ana@example.org", "tom@example.org"],
            "one copy each"
        );
        // MAIL FROM, RCPT TO and DATA in one write only where the relay offers it.
        for path in std::fs::read_dir(received.path()).unwrap() {
            let path = path.unwrap().path();
            if path.extension().is_some_and(|e| e == "envelope") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(text.lines().nth(2), Some(how), "{}", path.display());
            }
        }
        let csv = ws
            .run(&["status", "issues/2020-06.json", "--failed", "--csv"])
            .ok();
        assert!(
            csv.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("mariusz@example.pl,failed (permanent),1,")),
            "{csv}"
        );
    }
}

#[test]
fn a_refused_sender_in_a_pipelined_transaction_is_retried_and_sends_nothing_twice() {
    let received = tempfile::tempdir().unwrap();
    // 451 to MAIL FROM: the relay then answers RCPT and DATA with 503, and nothing may follow.
    let server = SmtpServer::start(received.path(), &["--refuse-mail", "2"]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert_each_reader_got_one_copy(&server, &ws, &out);
}

/// The sample list went out once to each subscribed reader, and the ledger says so.
fn assert_each_reader_got_one_copy(server: &SmtpServer, ws: &Workspace, out: &str) {
    assert!(out.contains("Sent: 3\n"), "{out}");
    let got = server.received();
    let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["ana@example.org", "mariusz@example.pl", "tom@example.org"]
    );
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(
        status.contains("Sent: 3\n") && status.contains("Failed: 0 permanent"),
        "{status}"
    );
}

#[test]
fn a_relay_that_answers_421_and_closes_is_retried_on_a_new_connection() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--flaky", "2", "--flaky-code", "421"]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert_each_reader_got_one_copy(&server, &ws, &out);
    assert!(
        server.sessions() >= 3,
        "the two closed connections were replaced, not reused"
    );
}

#[test]
fn a_relay_that_answers_454_to_auth_is_retried_and_not_taken_for_a_wrong_password() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(
        received.path(),
        &[
            "--auth",
            "newsletter:right-password",
            "--flaky",
            "2",
            "--flaky-code",
            "454",
        ],
    );
    let ws = workspace(server.port);
    // A password without TLS is allowed for a relay on this machine.
    let config = ws.read("bulletin.toml")
        + "username = \"newsletter\"\npassword_env = \"TEST_SMTP_PASSWORD\"\n";
    ws.write("bulletin.toml", &config);
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
            &[SECRET, ("TEST_SMTP_PASSWORD", "right-password")],
        )
        .ok();
    assert_each_reader_got_one_copy(&server, &ws, &out);
    assert!(
        server.sessions() >= 3,
        "the two connections refused at AUTH were replaced"
    );
}

#[test]
fn a_connection_is_renewed_after_messages_per_connection() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace_with_pool(server.port, 1);
    let config = ws.read("bulletin.toml") + "messages_per_connection = 3\n";
    ws.write("bulletin.toml", &config);
    list_of(&ws, 7);
    let out = send(&ws, &["--list", "many.csv", "--yes"]).ok();
    assert!(out.contains("Sent: 7\n"), "{out}");
    assert_eq!(server.received().len(), 7);
    assert_eq!(
        server.sessions(),
        3,
        "3 + 3 + 1 messages, one connection at a time"
    );
}

#[test]
fn lines_that_start_with_a_dot_arrive_whole() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    // A line of "." alone would end the message early if it were not escaped on the wire.
    ws.write(
        "issues/2020-06.json",
        &crate::common::issue_with(
            r#"{"kind": "text", "body": "Hello.\n\n.One dot\n\n..Two dots\n\n.\n\nThe end."}"#,
        ),
    );
    send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    let got = server.received();
    assert_eq!(got.len(), 3);
    for (rcpt, raw) in &got {
        let msg = MessageParser::default().parse(raw).unwrap();
        let text = msg.body_text(0).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert!(
            lines.contains(&".One dot")
                && lines.contains(&"..Two dots")
                && lines.contains(&".")
                && lines.contains(&"The end."),
            "{rcpt}: {text}"
        );
    }
}

#[test]
fn dry_run_writes_eml_files_and_sends_nothing() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--list", "subscribers.csv", "--dry-run", "eml"]).ok();
    assert!(out.contains("Sent: 3"), "{out}");
    let files: Vec<String> = std::fs::read_dir(ws.path().join("eml"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(server.received().is_empty());
    assert_nothing_recorded(&ws);
}

#[test]
fn a_test_send_goes_only_to_the_given_addresses_and_is_not_recorded() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--to", "me@example.org"]).ok();
    assert!(out.starts_with("test sent to me@example.org: 250"), "{out}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    let msg = MessageParser::default().parse(&got[0].1).unwrap();
    assert!(msg.subject().unwrap().starts_with("[TEST] Efus newsletter"));
    assert_nothing_recorded(&ws);
}

#[test]
fn refusals_that_protect_readers() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    // No secret for the unsubscribe tokens: nothing is sent.
    let err = ws
        .run(&[
            "send",
            "issues/2020-06.json",
            "--profile",
            "test",
            "--list",
            "subscribers.csv",
            "--yes",
        ])
        .bad_input();
    assert!(
        err.contains("the environment variable BULLETIN_UNSUBSCRIBE_SECRET is not set"),
        "{err}"
    );
    // No terminal to confirm on, and no --yes: nothing is sent.
    let run = send(&ws, &["--list", "subscribers.csv"]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("add --yes to send without being asked")
    );
    // Local images nobody could see in an inbox.
    let with_local = ws.read("issues/2020-06.json").replace(
        "  \"images_url\": \"https://example.org/newsletter/2020-06/\",\n",
        "",
    );
    ws.write("issues/2020-06.json", &with_local);
    let err = send(&ws, &["--list", "subscribers.csv", "--yes"]).bad_input();
    assert!(err.contains("set \"images_url\""), "{err}");
    assert!(server.received().is_empty());
}

/// A list of `n` readers, r0@example.org…
fn list_of(ws: &Workspace, n: usize) {
    let mut list = String::from("email,first_name\n");
    for i in 0..n {
        list.push_str(&format!("r{i}@example.org,R{i}\n"));
    }
    ws.write("many.csv", &list);
}

/// `bulletin send` started in the background.
fn spawn_send(ws: &Workspace, list: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bulletin"))
        .args([
            "send",
            "issues/2020-06.json",
            "--profile",
            "test",
            "--list",
            list,
            "--yes",
        ])
        .current_dir(ws.path())
        .env(SECRET.0, SECRET.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn two_runs_of_one_issue_never_both_deliver() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--delay", "0.05"]);
    let ws = workspace(server.port);
    list_of(&ws, 40);
    let mut first = spawn_send(&ws, "many.csv");
    wait_until("the first message", || !server.received().is_empty());
    let second = send(&ws, &["--list", "many.csv", "--yes"]);
    assert_eq!(second.code(), 1);
    assert!(
        second.stderr().contains("is being sent by another run"),
        "{}",
        second.stderr()
    );
    assert!(first.wait().unwrap().success());
    let got = server.received();
    let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!((got.len(), rcpts.len()), (40, 40), "everyone exactly once");
}

#[test]
fn a_changed_issue_needs_force_to_continue() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--reject", "tom@example.org"]);
    let ws = workspace(server.port);
    send(&ws, &["--list", "subscribers.csv", "--yes"]);
    let changed = ws
        .read("issues/2020-06.json")
        .replace("Over 1,000 people", "Over 1,100 people");
    ws.write("issues/2020-06.json", &changed);
    let err = send(
        &ws,
        &["--list", "subscribers.csv", "--yes", "--only-failed"],
    )
    .bad_input();
    assert!(
        err.contains("changed since it was first sent") && err.contains("--force"),
        "{err}"
    );
    let run = send(
        &ws,
        &[
            "--list",
            "subscribers.csv",
            "--yes",
            "--only-failed",
            "--force",
        ],
    );
    assert!(
        run.stdout().contains("Sent: 0"),
        "tom is still rejected: {}",
        run.stdout()
    );
    assert_eq!(server.received().len(), 2, "nobody got a second copy");
}

#[test]
fn kill_9_in_the_middle_of_a_send_then_resume_delivers_to_everyone() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    // More connections keep this test short.
    let ws = workspace_with_pool(server.port, 8);
    // A small issue keeps 5,000 messages quick to write and read.
    ws.write(
        "issues/2020-06.json",
        &crate::common::issue_with(
            r#"{"kind": "text", "body": "Hello {{subscriber.first_name}}."}"#,
        ),
    );
    list_of(&ws, 5000);
    let mut first = spawn_send(&ws, "many.csv");
    wait_until("500 messages", || server.received().len() >= 500);
    first.kill().unwrap(); // SIGKILL: no chance to record anything more
    first.wait().unwrap();
    let before = server.received().len();
    assert!(before < 5000, "the send finished before it could be killed");

    let out = send(&ws, &["--list", "many.csv", "--yes"]).ok();
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Sent: 5000\n"), "{status}\n{out}");
    let uncertain: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("Uncertain: "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .unwrap_or(0);
    let got = server.received();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (r, _) in &got {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 5000, "everyone got it");
    let twice = counts.values().filter(|&&n| n > 1).count();
    assert!(counts.values().all(|&n| n <= 2));
    assert!(
        twice <= uncertain,
        "{twice} got two copies, only {uncertain} reported uncertain"
    );
    eprintln!("killed after {before} messages; {uncertain} uncertain, {twice} received twice");
}

#[test]
fn a_relay_that_is_gone_stops_the_run_with_a_resume_hint() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    drop(server); // nothing listens on its port any more
    let run = send(&ws, &["--list", "subscribers.csv", "--yes"]);
    assert_eq!(run.code(), 3, "readers remain unsent");
    assert!(
        run.stderr()
            .contains("stopped: sending cannot go on (cannot connect"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("To continue where it stopped, run the same command again.")
    );
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Sent: 0\n"), "{status}");
    // A relay that is gone is no reason to give up on anyone for good.
    assert!(status.contains("Failed: 0 permanent"), "{status}");

    // The relay is back: the same command delivers to everyone.
    let received = tempfile::tempdir().unwrap();
    let back = SmtpServer::start(received.path(), &[]);
    let config = ws.read("bulletin.toml");
    let old_port = config
        .rsplit("port = ")
        .next()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    ws.write(
        "bulletin.toml",
        &config.replace(
            &format!("port = {old_port}"),
            &format!("port = {}", back.port),
        ),
    );
    let out = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert!(out.contains("Sent: 3\n"), "{out}");
    assert_eq!(back.received().len(), 3);
}

/// A CA and a certificate for "localhost" signed by it, written to `dir`: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("relay.pem"),
        dir.join("relay.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// Sends the sample list through a relay that requires TLS (`security`) and AUTH.
fn send_over_tls(
    security: &str,
    server_flag: &str,
    trust_ca: bool,
    password: &str,
) -> (Run, usize) {
    let received = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(keys.path());
    let server = SmtpServer::start(
        received.path(),
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            server_flag,
            "--auth",
            "newsletter:right-password",
        ],
    );
    let ws = workspace(server.port);
    std::fs::copy(&ca, ws.path().join("ca.pem")).unwrap();
    let ca_line = if trust_ca {
        "ca_file = \"ca.pem\"\n"
    } else {
        ""
    };
    let config = ws.read("bulletin.toml")
        + &format!(
            "\n[profiles.secure]\ntransport = \"smtp\"\nhost = \"localhost\"\nport = {}\nsecurity = \"{security}\"\n\
         username = \"newsletter\"\npassword_env = \"TEST_SMTP_PASSWORD\"\n{ca_line}",
            server.port
        );
    ws.write("bulletin.toml", &config);
    let run = ws.run_with(
        &[
            "send",
            "issues/2020-06.json",
            "--profile",
            "secure",
            "--list",
            "subscribers.csv",
            "--yes",
        ],
        &[SECRET, ("TEST_SMTP_PASSWORD", password)],
    );
    let count = server.received().len();
    (run, count)
}

#[test]
fn starttls_and_implicit_tls_with_a_private_ca_and_auth() {
    let (run, received) = send_over_tls("starttls", "--starttls", true, "right-password");
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    assert_eq!(received, 3);
    let (run, received) = send_over_tls("tls", "--implicit-tls", true, "right-password");
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    assert_eq!(received, 3);
    // The password never shows, whatever happens.
    assert!(!run.stdout().contains("right-password") && !run.stderr().contains("right-password"));
}

#[test]
fn an_untrusted_certificate_or_a_wrong_password_stops_the_run() {
    let (run, received) = send_over_tls("starttls", "--starttls", false, "right-password");
    assert_eq!((run.code(), received), (3, 0));
    assert!(
        run.stderr().contains("stopped: sending cannot go on"),
        "{}",
        run.stderr()
    );
    let (run, received) = send_over_tls("starttls", "--starttls", true, "wrong-password");
    assert_eq!((run.code(), received), (3, 0));
    assert!(
        run.stderr()
            .contains("stopped: the credentials were refused")
            && run
                .stderr()
                .contains("check the username and the password in"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("wrong-password"));
}

#[test]
fn a_connection_dropped_during_data_is_retried_without_a_second_copy() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--drop", "2"]);
    let ws = workspace(server.port);
    let out = send(&ws, &["--list", "subscribers.csv", "--yes"]).ok();
    assert!(out.contains("Sent: 3\nSkipped"), "{out}");
    let got = server.received();
    let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["ana@example.org", "mariusz@example.pl", "tom@example.org"]
    );
}

/// A DKIM key made in the workspace by `openssl MAKE…` (`KEY` in `make` stands for the key's
/// path), as `dkim.key`; its first line; and its public half as DER, in `dkim.pub.der`.
fn dkim_key(ws: &Workspace, make: &[&str]) -> (String, PathBuf) {
    let key = ws.path().join("dkim.key");
    let args: Vec<&std::ffi::OsStr> = make
        .iter()
        .map(|a| match *a {
            "KEY" => key.as_os_str(),
            other => std::ffi::OsStr::new(other),
        })
        .collect();
    let made = Command::new("openssl")
        .args(&args)
        .stderr(Stdio::null())
        .status()
        .expect("openssl: run `bash tests/setup.sh`");
    assert!(made.success(), "openssl {make:?}");
    let public = ws.path().join("dkim.pub.der");
    let exported = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(exported.success());
    let first = ws.read("dkim.key").lines().next().unwrap().to_string();
    (first, public)
}

/// Runs dkimpy on `files` against the public key `public`; asserts each verifies.
fn assert_dkim_verifies(public: &Path, files: &[PathBuf]) {
    let verified = Command::new("python3")
        .arg(repo().join("tests/servers/dkim_verify.py"))
        .arg(public)
        .args(files)
        .output()
        .expect("python3 with dkimpy: run `bash tests/setup.sh`");
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        files.len(),
        "{report}"
    );
}

/// The headers a message's DKIM-Signature covers (its h= tag), lower case.
fn signed_headers(raw: &str) -> Vec<String> {
    let lower = raw.to_lowercase();
    let signature = &lower[lower.find("dkim-signature:").expect("signed")..];
    signature
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split(':')
        .map(|h| h.trim().to_string())
        .collect()
}

#[test]
fn dkim_keys_made_either_way_sign_messages_an_independent_verifier_accepts() {
    // Issue 14: OpenSSL 3's `openssl genrsa` writes PKCS#8, which bulletin refused.
    let kinds: [(&[&str], &str, &str); 3] = [
        (
            &["genrsa", "-out", "KEY", "2048"],
            "-----BEGIN PRIVATE KEY-----",
            "a=rsa-sha256",
        ),
        (
            &["genrsa", "-traditional", "-out", "KEY", "2048"],
            "-----BEGIN RSA PRIVATE KEY-----",
            "a=rsa-sha256",
        ),
        (
            &["genpkey", "-algorithm", "ed25519", "-out", "KEY"],
            "-----BEGIN PRIVATE KEY-----",
            "a=ed25519-sha256",
        ),
    ];
    for (make, first_line, algorithm) in kinds {
        let received = tempfile::tempdir().unwrap();
        let server = SmtpServer::start(received.path(), &[]);
        let ws = workspace(server.port);
        let (first, public) = dkim_key(&ws, make);
        assert_eq!(first, first_line, "openssl {make:?}");
        // Gmail's feedback loop, signed with the rest.
        let config = ws.read("bulletin.toml").replacen(
            "list_id =",
            "feedback_id = \"newsletter:efus\"\nlist_id =",
            1,
        ) + "\n[profiles.test.dkim]\ndomain = \"example.org\"\nselector = \"news\"\nprivate_key_file = \"dkim.key\"\n";
        ws.write("bulletin.toml", &config);
        let run = send(&ws, &["--list", "subscribers.csv", "--yes"]);
        run.ok();
        assert!(
            !run.stderr().contains("warning"),
            "d= is From's domain: {}",
            run.stderr()
        );
        let files: Vec<PathBuf> = std::fs::read_dir(received.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        assert_eq!(files.len(), 3);
        assert_dkim_verifies(&public, &files);
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains(algorithm), "{make:?}: {raw}");
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(
            msg.header_raw("Feedback-ID").map(str::trim),
            Some("2020-06:newsletter:efus")
        );
        // The one-click headers and Feedback-ID are among those signed.
        let signed = signed_headers(&raw);
        for header in [
            "list-unsubscribe",
            "list-unsubscribe-post",
            "feedback-id",
            "from",
        ] {
            assert!(signed.iter().any(|h| h == header), "{header}: {signed:?}");
        }
    }
}

#[test]
fn a_dkim_domain_that_does_not_align_with_from_is_warned_about() {
    let ws = workspace(1);
    dkim_key(&ws, &["genpkey", "-algorithm", "ed25519", "-out", "KEY"]);
    let config = ws.read("bulletin.toml")
        + "\n[profiles.test.dkim]\ndomain = \"mailer.example\"\nselector = \"news\"\nprivate_key_file = \"dkim.key\"\n";
    ws.write("bulletin.toml", &config);
    let run = send(&ws, &["--list", "subscribers.csv", "--dry-run", "eml"]);
    run.ok();
    assert!(
        run.stderr().contains(
            "warning: DKIM signs for mailer.example (profiles.test.dkim.domain), which is not the From address's domain example.org nor a parent of it"
        ),
        "{}",
        run.stderr()
    );
    // A key in a format bulletin does not read names the file and the formats it does.
    ws.write(
        "dkim.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let err = send(&ws, &["--list", "subscribers.csv", "--dry-run", "eml2"]).bad_input();
    assert!(
        err.contains("dkim.key cannot be used: it is encrypted")
            && err.contains("RSA in PKCS#8")
            && err.contains("Ed25519 in PKCS#8"),
        "{err}"
    );
}

#[test]
fn ctrl_c_finishes_what_is_in_flight_records_it_and_says_how_to_resume() {
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--delay", "0.05"]);
    let ws = workspace(server.port);
    list_of(&ws, 200);
    let run = Command::new(env!("CARGO_BIN_EXE_bulletin"))
        .args([
            "send",
            "issues/2020-06.json",
            "--profile",
            "test",
            "--list",
            "many.csv",
            "--yes",
        ])
        .current_dir(ws.path())
        .env(SECRET.0, SECRET.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first messages", || server.received().len() >= 5);
    let interrupted = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "readers remain unsent: {stderr}"
    );
    assert!(stderr.contains("stopped by Ctrl-C"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let delivered = server.received().len();
    assert!(delivered < 200, "Ctrl-C came too late to test anything");
    // Everything delivered is recorded: nothing is in flight, nothing is uncertain.
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains(&format!("Sent: {delivered}\n")), "{status}");
    assert!(
        status.contains("In flight: 0\n") && !status.contains("Uncertain"),
        "{status}"
    );
    // The same command finishes the job, with nobody twice.
    send(&ws, &["--list", "many.csv", "--yes"]).ok();
    let got = server.received();
    let mut rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!((got.len(), rcpts.len()), (200, 200));
}

/// The lines of a command's output that are error findings.
fn error_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_layout_logo_is_published_with_the_images_or_the_issue_is_refused() {
    // Issue 11: images_url made the issue's images absolute, but the layout's logo stayed a
    // relative path in every message: broken in every inbox.
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    send(&ws, &["--to", "me@example.org"]).ok();
    let got = server.received();
    assert_eq!(got.len(), 1);
    let msg = MessageParser::default().parse(&got[0].1).unwrap();
    let html = msg.body_html(0).unwrap();
    assert!(
        html.contains("src=\"https://example.org/newsletter/2020-06/logo.png\""),
        "the logo is not under images_url"
    );
    let srcs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(srcs.len() >= 5, "{srcs:?}");
    assert!(
        srcs.iter().all(|s| s.starts_with("https://")),
        "a relative image in a sent message: {srcs:?}"
    );

    // The issue's images published elsewhere (absolute URLs) and no images_url: the logo
    // alone stops the issue, in check and in send alike.
    let issue = ws
        .read("issues/2020-06.json")
        .replace(
            "  \"images_url\": \"https://example.org/newsletter/2020-06/\",\n",
            "",
        )
        .replace("\"src\": \"images/", "\"src\": \"https://example.org/img/");
    ws.write("issues/2020-06.json", &issue);
    let run = ws.run(&["check", "issues/2020-06.json", "--offline"]);
    assert_eq!(run.code(), 1);
    let found = error_lines(&run.stdout());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("error: issues/../layouts/efus/theme.toml: logo.src: the layout's logo logo.png is a file in the layout folder"),
        "{found:?}"
    );
    assert!(found[0].contains("set \"images_url\""), "{found:?}");
    for extra in [
        &["--to", "me@example.org"][..],
        &["--list", "subscribers.csv", "--yes"][..],
    ] {
        let err = send(&ws, extra).bad_input();
        assert_eq!(error_lines(&err), found, "send and check disagree");
    }
    assert_eq!(server.received().len(), 1, "a refused issue was sent");
    assert_nothing_recorded(&ws);
}

/// A list with internationalised addresses, and a name over two lines (a spreadsheet cell).
const IDN_LIST: &str = "email,first_name,name\n\
    jörg@münchen.example,Jörg,Jörg Müller\n\
    ascii@münchen.example,Ascii,Ascii\n\
    ana@example.org,Ana,\"Ana\nMartin\"\n";

#[test]
fn internationalised_domains_go_out_in_ascii_form_and_unicode_local_parts_need_smtputf8() {
    // Issue 14: both addresses failed with "Envelope contains non-ascii chars" on a relay
    // without SMTPUTF8, were recorded as temporary and retried on every run, for ever.
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--no-smtputf8"]);
    let ws = workspace(server.port);
    ws.write("idn.csv", IDN_LIST);
    let run = send(&ws, &["--list", "idn.csv", "--yes"]);
    let out = run.stdout();
    // Exit 3: the send ran, and a reader remains without the issue.
    assert_eq!(run.code(), 3, "{out}");
    assert!(out.contains("Sent: 2\n"), "{out}");
    assert!(
        out.contains(
            "jörg@münchen.example: jörg@münchen.example cannot be sent through this relay: its part before the @ is not ASCII, which needs SMTPUTF8, and the relay does not offer it (permanent)"
        ),
        "{out}"
    );
    let got = server.received();
    let rcpts: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
    let mut sorted = rcpts.clone();
    sorted.sort();
    assert_eq!(sorted, ["ana@example.org", "ascii@xn--mnchen-3ya.example"]);
    let envelopes = server.envelopes();
    assert_eq!(
        envelopes["ascii@xn--mnchen-3ya.example"], "newsletter@example.org",
        "an ASCII envelope needs no extension"
    );
    for (rcpt, raw) in &got {
        let msg = MessageParser::default().parse(raw).unwrap();
        let to = msg.to().unwrap().first().unwrap();
        assert_eq!(
            to.address(),
            Some(rcpt.as_str()),
            "the To header in ASCII form"
        );
        if rcpt == "ana@example.org" {
            // A line break in the name is folded, not a reason to fail.
            assert_eq!(to.name(), Some("Ana Martin"));
        }
        let headers = String::from_utf8_lossy(raw);
        assert!(
            !headers
                .split("\r\n\r\n")
                .next()
                .unwrap()
                .contains("münchen")
        );
    }
    // Recorded as permanent, as written in the list; a second run does not try again.
    let failed = || {
        ws.run(&["status", "issues/2020-06.json", "--failed", "--csv"])
            .ok()
    };
    let csv = failed();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("jörg@münchen.example,failed (permanent),1,"),
        "{csv}"
    );
    send(&ws, &["--list", "idn.csv", "--yes"]);
    assert_eq!(failed(), csv);
    assert_eq!(server.received().len(), 2);

    // A relay that offers SMTPUTF8 (aiosmtpd does by default) takes all three; only jörg's
    // needs it.
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    ws.write("idn.csv", IDN_LIST);
    let out = send(&ws, &["--list", "idn.csv", "--yes"]).ok();
    assert!(out.contains("Sent: 3\n"), "{out}");
    let envelopes = server.envelopes();
    let mut rcpts: Vec<&str> = envelopes.keys().map(String::as_str).collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "ana@example.org",
            "ascii@xn--mnchen-3ya.example",
            "jörg@xn--mnchen-3ya.example"
        ]
    );
    assert!(
        envelopes["jörg@xn--mnchen-3ya.example"]
            .split_whitespace()
            .any(|p| p == "SMTPUTF8"),
        "{envelopes:?}"
    );
    assert_eq!(
        envelopes["ascii@xn--mnchen-3ya.example"],
        "newsletter@example.org"
    );
    let (_, raw) = server
        .received()
        .into_iter()
        .find(|(r, _)| r.starts_with("jörg"))
        .unwrap();
    let msg = MessageParser::default().parse(&raw).unwrap();
    let to = msg.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("jörg@xn--mnchen-3ya.example"));
    assert_eq!(to.name(), Some("Jörg Müller"));
}

/// The rules SpamAssassin's report lists, with their points: (points, rule).
fn spamassassin_rules(report: &str) -> Vec<(f64, String)> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("---- "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let points = words.next()?.parse().ok()?;
            Some((points, words.next()?.to_string()))
        })
        .collect()
}

#[test]
fn spamassassin_scores_the_sample_at_zero_on_local_rules() {
    // Issue 14: the default message scored 1.7 (the preheader's low contrast, and links that
    // carried the reader's address in clear: GB_CUSTOM_HTM_URI).
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &[]);
    let ws = workspace(server.port);
    ws.write(
        "one.csv",
        "email,first_name,name\nana@example.org,Ana,Ana Martin\n",
    );
    send(&ws, &["--list", "one.csv", "--yes"]).ok();
    let got = server.received();
    assert_eq!(got.len(), 1);
    // Its own home, so that it writes its preferences nowhere else.
    let home = tempfile::tempdir().unwrap();
    let mut sa = Command::new("spamassassin")
        .args(["-L", "-t"])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spamassassin: run `bash tests/setup.sh`");
    sa.stdin.take().unwrap().write_all(&got[0].1).unwrap();
    let out = sa.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let rules = spamassassin_rules(&report);
    assert!(!rules.is_empty(), "no SpamAssassin report:\n{report}");
    // A message handed straight to a test server was relayed by nothing and received by
    // nobody: those two rules say so, and score nothing.
    let counted: Vec<&(f64, String)> = rules
        .iter()
        .filter(|(_, rule)| rule != "NO_RECEIVED" && rule != "NO_RELAYS")
        .collect();
    let score: f64 = counted.iter().map(|(points, _)| points).sum();
    let scoring: Vec<&(f64, String)> = counted.into_iter().filter(|(p, _)| *p != 0.0).collect();
    assert!(
        score <= 0.0,
        "SpamAssassin scores the sample {score:.1} on local rules: {scoring:?}\n{report}"
    );
}

#[test]
fn a_relay_that_closes_with_421_after_n_messages_is_reconnected_at_once() {
    // The relay takes 3 messages per connection, then answers 421 and closes; bulletin's
    // own limit (100) is higher. A 421 refuses the message, so it goes again at once on a
    // new connection: no backoff. Before, each 421 cost a 2 s backoff (then 4 s…).
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--per-connection", "3"]);
    let ws = workspace_with_pool(server.port, 1);
    list_of(&ws, 10);
    let started = std::time::Instant::now();
    let out = send(&ws, &["--list", "many.csv", "--yes"]).ok();
    let took = started.elapsed();
    assert!(out.contains("Sent: 10\n"), "{out}");
    assert!(!out.contains("Uncertain"), "{out}");
    assert_eq!(server.received().len(), 10, "each reader once");
    assert_eq!(server.sessions(), 4, "3 + 3 + 3 + 1 messages");
    assert!(
        took < std::time::Duration::from_secs(4),
        "three 421s waited for a backoff: {took:?}"
    );
}

#[test]
fn a_relay_that_stores_a_message_then_drops_the_connection_reports_the_reader_uncertain() {
    // The relay keeps the first message, then closes the connection before its 250: the
    // reader has it, bulletin cannot know, sends it again, and says so. Before, the second
    // copy went unreported (status: uncertain 0).
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--store-then-drop", "1"]);
    let ws = workspace_with_pool(server.port, 1);
    let run = send(&ws, &["--list", "subscribers.csv", "--yes"]);
    let out = run.ok();
    assert!(out.contains("Sent: 3\n"), "{out}");
    assert!(out.contains("Uncertain (may have two copies): 1"), "{out}");
    assert!(
        out.contains("the connection to the relay was lost after the message was sent"),
        "{out}"
    );
    let got = server.received();
    assert_eq!(got.len(), 4, "one reader has two copies");
    let twice = &got[0].0;
    assert_eq!(&got[1].0, twice, "the same reader, sent again");
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Uncertain: 1"), "{status}");
    let csv = ws
        .run(&["status", "issues/2020-06.json", "--uncertain", "--csv"])
        .ok();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with(&format!("{twice},sent,1,")), "{csv}");
}

#[test]
fn readers_failed_for_good_count_as_failed_on_a_rerun_and_the_exit_code_says_so() {
    // After a permanent failure, a rerun of the same command used to print "Already sent
    // before" for everyone, list no failure in its JSON, and exit 0.
    let received = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(received.path(), &["--reject", "mariusz@example.pl"]);
    let ws = workspace(server.port);
    let first = send(&ws, &["--list", "subscribers.csv", "--yes"]);
    assert_eq!(first.code(), 3, "{}", first.stdout());
    let again = send(&ws, &["--list", "subscribers.csv", "--yes"]);
    assert_eq!(again.code(), 3, "a reader remains unsent");
    let out = again.stdout();
    assert!(out.contains("Already sent before: 2\n"), "{out}");
    assert!(out.contains("Failed: 1\n"), "{out}");
    assert!(
        out.contains("mariusz@example.pl: permanent error (550)")
            && out.contains("(permanent, in an earlier run)"),
        "{out}"
    );
    assert!(
        again.stderr().contains("--only-failed"),
        "{}",
        again.stderr()
    );
    let json = send(&ws, &["--list", "subscribers.csv", "--yes", "--json"]);
    assert_eq!(json.code(), 3);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(report["already_sent"], 2);
    assert_eq!(report["unsent"], 1);
    assert_eq!(report["failed"][0]["email"], "mariusz@example.pl");
    assert_eq!(report["failed"][0]["earlier"], true);
    assert_eq!(server.received().len(), 2, "nobody was sent anything again");
}

#[test]
fn send_help_documents_the_exit_codes() {
    let help = Workspace::empty().run(&["send", "--help"]).ok();
    for line in [
        "0  every reader of the list has the issue",
        "1  bad input or a failed check",
        "2  usage",
        "3  the send ran, and readers remain without the issue",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
}
