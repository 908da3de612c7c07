//! A provider send killed with SIGKILL in the middle, then resumed: every recipient is in an
//! accepted request, and only those the resumed run reports as uncertain (their batch was in
//! flight at the kill) can be in two. The fake provider is Postmark's (see `postmark.rs`), run
//! in the test process, so it outlives the killed `bulletin`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use super::{Fake, SECRET, answer, workspace};

#[test]
fn kill_9_in_the_middle_of_a_provider_send_then_resume() {
    let fake = Fake::start();
    fake.on_post(
        "/email/batch",
        answer(|r: &Request| {
            let messages: Vec<Value> = serde_json::from_slice(&r.body).unwrap_or_default();
            let results: Vec<Value> = messages
                .iter()
                .map(|m| json!({"ErrorCode": 0, "Message": "OK", "MessageID": "x", "To": m["To"]}))
                .collect();
            // A provider takes a moment to answer: long enough to kill a run mid-way.
            ResponseTemplate::new(200)
                .set_body_json(Value::Array(results))
                .set_delay(Duration::from_millis(60))
        }),
    );
    let ws = workspace(
        "postmark",
        &fake.uri(),
        "api_key_env = \"POSTMARK_SERVER_TOKEN\"\nbatch_size = 50\nconcurrency = 2",
        0,
    );
    // A small issue keeps 5,000 messages quick to build.
    ws.write(
        "issues/2020-06.json",
        &crate::common::issue_with(
            r#"{"kind": "text", "body": "Hello {{subscriber.first_name}}."}"#,
        ),
    );
    let mut list = String::from("email,first_name\n");
    for i in 0..5000 {
        list.push_str(&format!("r{i}@example.org,R{i}\n"));
    }
    ws.write("subscribers.csv", &list);
    let env = [SECRET, ("POSTMARK_SERVER_TOKEN", "token")];
    let mut first = Command::new(env!("CARGO_BIN_EXE_bulletin"))
        .args(["send", "issues/2020-06.json", "--profile", "api"])
        .args(["--list", "subscribers.csv", "--yes"])
        .current_dir(ws.path())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.requests().len() < 20 {
        assert!(Instant::now() < deadline, "the send never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap(); // SIGKILL: no chance to record anything more
    first.wait().unwrap();
    let before = fake.requests().len();
    assert!(before < 100, "the send finished before it could be killed");

    let resumed = super::send(&ws, &env, &[]);
    let stderr = resumed.stderr();
    assert_eq!(resumed.code(), 0, "{}\n{stderr}", resumed.stdout());
    let status = ws.run(&["status", "issues/2020-06.json"]).ok();
    assert!(status.contains("Sent: 5000\n"), "{status}");

    // From the provider's side: who was in a request, how many times.
    let mut requested = BTreeMap::<String, usize>::new();
    for body in fake.json_bodies() {
        for m in body.as_array().unwrap() {
            *requested
                .entry(m["To"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(requested.len(), 5000, "everyone was in a request");
    let twice: Vec<&String> = requested
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(who, _)| who)
        .collect();
    assert!(requested.values().all(|n| *n <= 2));
    let conn = rusqlite::Connection::open(ws.path().join(".bulletin/ledger.sqlite")).unwrap();
    let uncertain: Vec<String> = conn
        .prepare("SELECT recipient FROM deliveries WHERE uncertain = 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for who in &twice {
        assert!(
            uncertain.iter().any(|u| who.contains(u.as_str())),
            "{who} was in two requests but not reported uncertain"
        );
    }
    // The resumed run said how many were in flight; at most two batches of 50 were.
    assert!(stderr.contains("were in flight"), "{stderr}");
    assert!(uncertain.len() <= 100, "{} uncertain", uncertain.len());
    eprintln!(
        "killed after {before} requests; {} uncertain, {} in two requests",
        uncertain.len(),
        twice.len()
    );
}
