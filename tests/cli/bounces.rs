//! `bulletin bounces` against a real IMAP server: Dovecot (Debian's dovecot-imapd), started
//! by the test on a free loopback port with its own configuration, TLS with a CA the test
//! makes, a static password, and a Maildir the test fills with the reports of
//! tests/fixtures/bounces/ for the readers of a real `bulletin send` to aiosmtpd. Then the
//! same reports from a Maildir folder and an mbox file, without a server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bulletin::suppressions::{Kind, Store};
use mail_parser::MessageParser;

use crate::common::{Workspace, repo};
use crate::serve::{SECRET, Smtp};

const PASSWORD: &str = "imap-test-password";

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
        dir.join("imap.pem"),
        dir.join("imap.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Dovecot serving one user, `bounces`, over IMAPS on a free loopback port; stopped (by the
/// PID in its base_dir) when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
    /// The owner of the mail files: the current user, or `nobody` when the tests run as root
    /// (Dovecot refuses to keep mail as root).
    mail_owner: Option<(u32, u32)>,
}

impl Dovecot {
    fn start() -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (ca, cert, key) = certificates(root);
        let port = free_port();
        let as_root = id("-u") == "0";
        // Dovecot runs its login and internal processes as these users; as root, the
        // unprivileged users Debian's package creates, and mail kept by nobody.
        let (internal, group, login, uid, gid) = if as_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
            (
                "dovecot".to_string(),
                "dovecot".to_string(),
                "dovenull".to_string(),
                65534,
                65534,
            )
        } else {
            let user = id("-un");
            (
                user.clone(),
                id("-gn"),
                user,
                id("-u").parse().unwrap(),
                id("-g").parse().unwrap(),
            )
        };
        let home = root.join("mail");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(home.join("bounces/Maildir").join(sub)).unwrap();
        }
        let config = format!(
            r#"base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = bulletin-test-{port}
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {uid}
first_valid_gid = {gid}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"#,
            root = root.display(),
            cert = cert.display(),
            key = key.display(),
            home = home.display(),
        );
        let config_path = root.join("dovecot.conf");
        std::fs::write(&config_path, config).unwrap();
        let binary = ["/usr/sbin/dovecot", "dovecot"]
            .into_iter()
            .find(|b| !b.starts_with('/') || Path::new(b).exists())
            .unwrap();
        let status = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .status()
            .expect("dovecot (dovecot-imapd): run `bash tests/setup.sh`");
        let dovecot = Dovecot {
            mail_owner: as_root.then_some((uid, gid)),
            dir,
            port,
            ca,
        };
        assert!(
            status.success(),
            "dovecot did not start:\n{}",
            dovecot.log()
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "dovecot does not listen on {port}:\n{}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot.chown(&home);
        dovecot
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The user's Maildir.
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/bounces/Maildir")
    }

    /// Gives `path` (and what is in it) to the mail owner, when the tests run as root.
    fn chown(&self, path: &Path) {
        let Some((uid, gid)) = self.mail_owner else {
            return;
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                self.chown(&entry.unwrap().path());
            }
        }
    }

    /// Delivers a message into INBOX as a delivery agent does: written in tmp/, renamed
    /// into new/.
    fn deliver(&self, name: &str, raw: &str) {
        let tmp = self.maildir().join("tmp").join(name);
        std::fs::write(&tmp, raw).unwrap();
        self.chown(&tmp);
        std::fs::rename(&tmp, self.maildir().join("new").join(name)).unwrap();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid_file = self.dir.path().join("run/master.pid");
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            return;
        };
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        // Wait for it to go, so that its files can be removed.
        let started = Instant::now();
        while Path::new("/proc").join(&pid).exists() && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The messages of a Maildir folder's new/ and cur/: (file name, whether it is marked seen).
fn messages(folder: &Path) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let seen = name
                .split_once(":2,")
                .is_some_and(|(_, flags)| flags.contains('S'));
            out.push((name, seen));
        }
    }
    out.sort();
    out
}

/// A report of tests/fixtures/bounces/ about `reader`, whose message had `message_id`.
fn fixture(name: &str, reader: &str, message_id: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/bounces").join(name))
        .unwrap()
        .replace("%RECIPIENT%", reader)
        .replace("%MESSAGE_ID%", message_id)
}

/// A workspace that sent the sample issue to five readers through aiosmtpd; the Message-ID
/// each received, by reader.
fn sent_workspace(smtp: &Smtp) -> (Workspace, std::collections::BTreeMap<String, String>) {
    let ws = Workspace::for_sending(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        smtp.port
    ));
    ws.write(
        "subscribers.csv",
        "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\ndan@example.org,Dan\neve@example.org,Eve\n",
    );
    let out = send(&ws, "issues/2020-06.json");
    assert!(out.contains("Sent: 5\n"), "{out}");
    let ids = smtp
        .received()
        .into_iter()
        .map(|(reader, raw)| {
            let msg = MessageParser::default().parse(&raw[0]).unwrap();
            (reader, msg.message_id().unwrap().to_string())
        })
        .collect();
    (ws, ids)
}

fn send(ws: &Workspace, issue: &str) -> String {
    ws.run_with(
        &[
            "send",
            issue,
            "--profile",
            "test",
            "--list",
            "subscribers.csv",
            "--yes",
        ],
        &[SECRET],
    )
    .ok()
}

/// The reports the tests put in the mailbox: (file name, fixture, reader). Ana's address
/// does not exist (hard), Bo's server is slow (soft), Cy pressed "spam" (complaint), Dan's
/// bounce is Exim's plain text; Eve wrote back and is away; Zed was never sent to.
const MAILBOX: &[(&str, &str, &str)] = &[
    ("1.ana", "postfix-hard.eml", "ana@example.org"),
    ("2.bo", "postfix-delayed.eml", "bo@example.org"),
    ("3.cy", "arf-abuse.eml", "cy@example.org"),
    ("4.dan", "exim-hard.eml", "dan@example.org"),
    ("5.eve", "human.eml", "eve@example.org"),
    ("6.eve", "auto-reply.eml", "eve@example.org"),
    ("7.zed", "qmail-hard.eml", "zed@elsewhere.example"),
];

fn report_for(
    ids: &std::collections::BTreeMap<String, String>,
    fixture_name: &str,
    reader: &str,
) -> String {
    let id = ids
        .get(reader)
        .cloned()
        .unwrap_or_else(|| "unrelated@elsewhere.example".into());
    fixture(fixture_name, reader, &id)
}

fn store(ws: &Workspace) -> Store {
    Store::open(&ws.path().join(".bulletin/suppressions.sqlite")).unwrap()
}

/// The issue's test of done: hard, soft, complaint, and an unrelated message left alone.
#[test]
fn bounces_read_from_dovecot_suppress_the_readers_and_leave_the_rest_unread() {
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let (ws, ids) = sent_workspace(&smtp);
    let dovecot = Dovecot::start();
    for (name, fixture_name, reader) in MAILBOX {
        dovecot.deliver(name, &report_for(&ids, fixture_name, reader));
    }
    std::fs::copy(&dovecot.ca, ws.path().join("imap-ca.pem")).unwrap();
    let config = ws.read("bulletin.toml")
        + &format!(
            "\n[bounces]\nimap = \"imaps://bounces@localhost:{}/INBOX\"\npassword_env = \"TEST_IMAP_PASSWORD\"\nca_file = \"imap-ca.pem\"\n",
            dovecot.port
        );
    ws.write("bulletin.toml", &config);
    let env = [("TEST_IMAP_PASSWORD", PASSWORD)];
    let inbox = dovecot.maildir();

    // A dry run says what it would do, and does nothing.
    let dry = ws.run_with(&["bounces", "--dry-run"], &env).ok();
    assert!(
        dry.starts_with(
            "7 messages: 2 hard bounces, 1 soft, 1 complaint, 2 not bounces, 1 for a reader not in the ledger\n"
        ),
        "{dry}"
    );
    assert!(
        dry.contains("Dry run: nothing recorded, nothing moved."),
        "{dry}"
    );
    assert!(!ws.path().join(".bulletin/suppressions.sqlite").exists());
    assert_eq!(messages(&inbox).len(), 7);

    let out = ws.run_with(&["bounces"], &env).ok();
    assert!(
        out.starts_with(
            "7 messages: 2 hard bounces, 1 soft, 1 complaint, 2 not bounces, 1 for a reader not in the ledger\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Mailbox: imaps://bounces@localhost:{}/INBOX",
            dovecot.port
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "  ana@example.org  bounce  2020-06  recorded: smtp; 550 5.1.1 <ana@example.org>"
        ),
        "{out}"
    );
    assert!(
        out.contains("  cy@example.org  complaint  2020-06  recorded"),
        "{out}"
    );
    assert!(
        out.contains("  zed@elsewhere.example  bounce  -  not in the ledger"),
        "{out}"
    );
    assert!(out.contains("Recorded: 4\n"), "{out}");
    assert!(
        out.contains("Moved 4 messages to bulletin-handled\n"),
        "{out}"
    );
    assert!(out.contains("Left in place: 3 "), "{out}");

    // The store: hard bounces and the complaint suppress, the soft bounce is counted only.
    let s = store(&ws);
    assert_eq!(s.state("ana@example.org").unwrap(), Some(Kind::Bounce));
    assert_eq!(s.state("dan@example.org").unwrap(), Some(Kind::Bounce));
    assert_eq!(s.state("cy@example.org").unwrap(), Some(Kind::Complaint));
    assert_eq!(s.state("bo@example.org").unwrap(), None);
    assert_eq!(s.latest("bo@example.org").unwrap(), Some(Kind::SoftBounce));
    assert_eq!(s.state("zed@elsewhere.example").unwrap(), None);
    let events = s.since(0, 100).unwrap();
    assert_eq!(events.len(), 4);
    assert!(
        events
            .iter()
            .all(|e| e.source == "bounces" && e.issue.as_deref() == Some("2020-06")),
        "{events:?}"
    );

    // The mailbox: what was recorded is in the handled folder; the reply, the auto-reply
    // and the stranger's bounce are still in INBOX, unread.
    let left = messages(&inbox);
    let names: Vec<&str> = left
        .iter()
        .map(|(n, _)| n.split(':').next().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{left:?}");
    for expected in ["5.eve", "6.eve", "7.zed"] {
        assert!(names.iter().any(|n| n.starts_with(expected)), "{left:?}");
    }
    assert!(left.iter().all(|(_, seen)| !seen), "marked seen: {left:?}");
    let handled = messages(&inbox.join(".bulletin-handled"));
    assert_eq!(handled.len(), 4, "{handled:?}");

    // Again: the handled ones are gone from INBOX, the rest recorded nothing.
    let again = ws.run_with(&["bounces"], &env).ok();
    assert!(
        again.starts_with("3 messages: 0 hard bounces, 0 soft, 0 complaints, 2 not bounces, 1 for a reader not in the ledger\n"),
        "{again}"
    );
    assert!(again.contains("Recorded: 0\n"), "{again}");
    assert_eq!(store(&ws).events().unwrap(), 4);
    // A report put back in INBOX (moved back by hand) is recorded no second time.
    let handled_file = ["new", "cur"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(inbox.join(".bulletin-handled").join(sub)).unwrap())
        .map(|entry| entry.unwrap().path())
        .next()
        .unwrap();
    let sub = handled_file.parent().unwrap().file_name().unwrap();
    std::fs::rename(
        &handled_file,
        inbox.join(sub).join(handled_file.file_name().unwrap()),
    )
    .unwrap();
    let back = ws.run_with(&["bounces"], &env).ok();
    assert!(back.contains("Recorded: 0; 1 already recorded\n"), "{back}");
    assert!(
        back.contains("Moved 1 message to bulletin-handled\n"),
        "{back}"
    );
    assert_eq!(store(&ws).events().unwrap(), 4);

    // bulletin status counts them against the issue.
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(
        status.contains("Bounces and complaints: 1 soft-bounce, 1 complaint, 2 bounce\n"),
        "{status}"
    );

    // --json says the same for a script.
    let json = ws.run_with(&["bounces", "--dry-run", "--json"], &env).ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["messages"], 3, "{json}");
    assert_eq!(json["not_bounces"], 2, "{json}");
    assert_eq!(json["dry_run"], true, "{json}");

    // The next issue skips the bounced and the complaining readers.
    ws.write("issues/2020-07.json", &ws.read("issues/2020-06.json"));
    let next = send(&ws, "issues/2020-07.json");
    assert!(next.contains("Skipped:    2 bounced"), "{next}");
    assert!(next.contains("Skipped:    1 unsubscribed"), "{next}");
    assert!(next.contains("Sent: 2\n"), "{next}");
    let got = smtp.received();
    assert_eq!(got["bo@example.org"].len(), 2);
    assert_eq!(got["eve@example.org"].len(), 2);
    assert_eq!(got["ana@example.org"].len(), 1);
    assert_eq!(got["cy@example.org"].len(), 1);

    // A wrong password and an untrusted certificate stop with what to check, and name no
    // password.
    let wrong = ws
        .run_with(&["bounces"], &[("TEST_IMAP_PASSWORD", "not-the-password")])
        .bad_input();
    assert!(
        wrong.contains("the server refused the login of bounces")
            && wrong.contains("TEST_IMAP_PASSWORD"),
        "{wrong}"
    );
    assert!(!wrong.contains("not-the-password"), "{wrong}");
    ws.write(
        "bulletin.toml",
        &ws.read("bulletin.toml")
            .replace("ca_file = \"imap-ca.pem\"\n", ""),
    );
    let untrusted = ws.run_with(&["bounces"], &env).bad_input();
    assert!(
        untrusted.contains("TLS failed") && untrusted.contains("ca_file"),
        "{untrusted}"
    );
    let unset = ws.run(&["bounces"]).bad_input();
    assert!(unset.contains("TEST_IMAP_PASSWORD is not set"), "{unset}");
}

/// The same reports from a Maildir folder and from an mbox file.
#[test]
fn bounces_from_a_maildir_and_an_mbox_file() {
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let (ws, ids) = sent_workspace(&smtp);

    // Maildir: the handled ones move into .bulletin-handled/, the rest stay as they were.
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(ws.path().join("Maildir").join(sub)).unwrap();
    }
    for (name, fixture_name, reader) in &MAILBOX[..5] {
        ws.write(
            &format!("Maildir/new/{name}"),
            &report_for(&ids, fixture_name, reader),
        );
    }
    // One already read by a mail client, in cur/ with its flags.
    std::fs::rename(
        ws.path().join("Maildir/new/5.eve"),
        ws.path().join("Maildir/cur/5.eve:2,S"),
    )
    .unwrap();
    let out = ws.run(&["bounces", "--maildir", "Maildir"]).ok();
    assert!(
        out.starts_with("5 messages: 2 hard bounces, 1 soft, 1 complaint, 1 not a bounce\n"),
        "{out}"
    );
    assert!(
        out.contains("Moved 4 messages to .bulletin-handled/\n"),
        "{out}"
    );
    assert_eq!(
        messages(&ws.path().join("Maildir")),
        [("5.eve:2,S".to_string(), true)]
    );
    assert_eq!(
        messages(&ws.path().join("Maildir/.bulletin-handled")).len(),
        4
    );
    assert!(
        ws.path()
            .join("Maildir/.bulletin-handled/maildirfolder")
            .exists()
    );
    assert_eq!(store(&ws).events().unwrap(), 4);

    // mbox: the same reports, one file; read twice, recorded once, the file unchanged.
    let mut mbox = String::new();
    for (_, fixture_name, reader) in MAILBOX {
        mbox.push_str("From MAILER-DAEMON Wed Jun  3 07:13:00 2020\n");
        mbox.push_str(&report_for(&ids, fixture_name, reader));
        mbox.push('\n');
    }
    let mbox_path = ws.write("bounces.mbox", &mbox);
    let out = ws.run(&["bounces", "--mbox", "bounces.mbox"]).ok();
    assert!(
        out.starts_with(
            "7 messages: 2 hard bounces, 1 soft, 1 complaint, 2 not bounces, 1 for a reader not in the ledger\n"
        ),
        "{out}"
    );
    // The Maildir run recorded these very reports (same Message-IDs).
    assert!(out.contains("Recorded: 0; 4 already recorded\n"), "{out}");
    assert!(out.contains("The mbox file is not changed."), "{out}");
    assert_eq!(std::fs::read_to_string(&mbox_path).unwrap(), mbox);
    assert_eq!(store(&ws).events().unwrap(), 4);

    // What is not a mailbox says so.
    let err = ws.run(&["bounces", "--maildir", "issues"]).bad_input();
    assert!(err.contains("not a Maildir folder"), "{err}");
    let err = ws
        .run(&["bounces", "--mbox", "issues/2020-06.json"])
        .bad_input();
    assert!(err.contains("not an mbox file"), "{err}");
    // Nothing to read is a usage error.
    let none = ws.run(&["bounces"]);
    assert_eq!(none.code(), 2, "{}", none.stderr());
    assert!(
        none.stderr().contains("set [bounces] imap"),
        "{}",
        none.stderr()
    );
}

/// A bounce that keeps neither the original Message-ID nor the reader's address (a forward to
/// a mailbox that is gone), returned to the VERP envelope sender: matched by it.
#[test]
fn bounces_find_the_reader_and_issue_by_the_verp_address() {
    let received = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(received.path());
    let ws = Workspace::for_sending(&format!(
        "[profiles.test]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nverp = true\n",
        smtp.port
    ));
    ws.write(
        "subscribers.csv",
        "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\n",
    );
    let out = send(&ws, "issues/2020-06.json");
    assert!(out.contains("Sent: 2\n"), "{out}");
    let senders = smtp.mail_from();
    let ana = &senders["ana@example.org"];
    let tag = |sender: &str| {
        let rest = sender
            .strip_prefix("newsletter+2020-06.")
            .unwrap_or_else(|| panic!("{sender}"));
        let tag = rest
            .strip_suffix("@example.org")
            .unwrap_or_else(|| panic!("{sender}"));
        assert_eq!(tag.len(), 10, "{sender}");
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
            "{sender}"
        );
        tag.to_string()
    };
    assert_ne!(tag(ana), tag(&senders["bo@example.org"]), "{senders:?}");
    // The headers keep the plain sender.
    let raw = &smtp.received()["ana@example.org"][0];
    let msg = MessageParser::default().parse(raw).unwrap();
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("newsletter@example.org")
    );

    let report = format!(
        "Return-Path: <>\r\nDelivered-To: {ana}\r\nFrom: MAILER-DAEMON@mx.forward.example\r\nTo: {ana}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <verp-bounce-1@mx.forward.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.forward.example\r\n\r\nFinal-Recipient: rfc822; old-box@forward.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--b--\r\n"
    );
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(ws.path().join("Maildir").join(sub)).unwrap();
    }
    ws.write("Maildir/new/1.verp", &report);

    // Without the unsubscribe secret, the tag cannot be read: said, and left in place.
    let run = ws.run_with(&["bounces", "--maildir", "Maildir"], &[(SECRET.0, "")]);
    let out = run.ok();
    assert!(out.contains("1 for a reader not in the ledger"), "{out}");
    assert!(
        run.stderr().contains(
            "1 report returned to a VERP address could not be matched: BULLETIN_UNSUBSCRIBE_SECRET"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(store(&ws).events().unwrap(), 0);

    let out = ws
        .run_with(&["bounces", "--maildir", "Maildir"], &[SECRET])
        .ok();
    assert!(out.starts_with("1 message: 1 hard bounce, 0 soft"), "{out}");
    assert!(
        out.contains("ana@example.org  bounce  2020-06  recorded"),
        "{out}"
    );
    assert_eq!(store(&ws).events().unwrap(), 1);
}
