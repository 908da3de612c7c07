//! Where am I: every command finds its workspace by looking upward for `bulletin.toml`, as git
//! and cargo do, says which it uses when it is not the current folder, and keeps the paths
//! given on the command line relative to where the user is (issue 13).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Run, Workspace};

/// Runs `bulletin ARGS` in the folder `rel` of the workspace.
pub fn run_in(ws: &Workspace, rel: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_bulletin"))
        .args(args)
        .current_dir(ws.path().join(rel))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run bulletin");
    Run(output)
}

/// A workspace made by `bulletin init`, with a subfolder in its issues, and the starter
/// issue's file name.
fn initialised() -> (Workspace, String) {
    let ws = Workspace::empty();
    let out = ws.run(&["init"]).ok();
    let issue = out
        .lines()
        .find(|l| l.starts_with("issues/") && l.ends_with(".json"))
        .expect("a starter issue")
        .trim_start_matches("issues/")
        .to_string();
    std::fs::create_dir_all(ws.path().join("issues/2026-drafts")).unwrap();
    (ws, issue)
}

/// The absolute path of the workspace, as the command prints it.
fn shown(ws: &Workspace) -> String {
    ws.path().canonicalize().unwrap().display().to_string()
}

#[test]
fn new_from_inside_the_issues_folder_finds_the_workspace() {
    let (ws, _) = initialised();
    // Issue 13: from issues/ or any folder below it, `bulletin new` said "no issue found in
    // issues".
    let run = run_in(&ws, "issues", &["new", "--date", "2031-02-03"]);
    assert_eq!(run.ok(), "2031-02.json\n", "the path as seen from issues/");
    assert!(ws.path().join("issues/2031-02.json").is_file());
    assert!(
        run.stderr()
            .contains(&format!("using the workspace in .. ({})", shown(&ws))),
        "{}",
        run.stderr()
    );
    let run = run_in(&ws, "issues/2026-drafts", &["new", "--date", "2031-03-03"]);
    assert_eq!(run.ok(), "../2031-03.json\n");
    assert!(ws.path().join("issues/2031-03.json").is_file());
    assert!(
        run.stderr()
            .contains(&format!("using the workspace in ../.. ({})", shown(&ws))),
        "{}",
        run.stderr()
    );
    // At the top of the workspace, nothing is said about it.
    let run = ws.run(&["new", "--date", "2031-04-03"]);
    assert_eq!(run.ok(), "issues/2031-04.json\n");
    assert!(!run.stderr().contains("workspace"), "{}", run.stderr());
    // --from is where the user is.
    let run = run_in(
        &ws,
        "issues",
        &["new", "--date", "2031-05-03", "--from", "2031-04.json"],
    );
    assert_eq!(run.ok(), "2031-05.json\n");
}

#[test]
fn render_and_check_from_inside_the_issues_folder() {
    let (ws, issue) = initialised();
    let run = run_in(&ws, "issues", &["render", &issue]);
    let out = run.ok();
    let slug = issue.trim_end_matches(".json");
    // The workspace's out/, named from where the user is.
    assert!(out.starts_with(&format!("../out/{slug}.html")), "{out}");
    assert!(ws.path().join(format!("out/{slug}.html")).is_file());
    assert!(
        run.stderr()
            .contains(&format!("using the workspace in .. ({})", shown(&ws))),
        "{}",
        run.stderr()
    );
    // An --out given on the command line is where the user is.
    run_in(&ws, "issues", &["render", &issue, "--out", "mine"]).ok();
    assert!(ws.path().join(format!("issues/mine/{slug}.html")).is_file());

    let run = run_in(&ws, "issues", &["check", &issue, "--offline"]);
    assert!(
        run.stderr()
            .contains(&format!("using the workspace in .. ({})", shown(&ws))),
        "{}",
        run.stderr()
    );
    // Findings name the files as the user reaches them from here.
    assert!(
        run.stdout()
            .lines()
            .any(|l| l.contains(&format!(": {issue}:"))),
        "{}",
        run.stdout()
    );
}

#[test]
fn preview_without_a_file_from_inside_the_issues_folder() {
    let (ws, issue) = initialised();
    // Issue 13: `preview` without a file said "no issues/ folder here".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulletin"))
        .args(["preview", "--no-open", "--port", &port.to_string()])
        .current_dir(ws.path().join("issues/2026-drafts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let served = first.starts_with("Preview: ");
    let body = if served {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body
    } else {
        String::new()
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(served, "{first}{stderr}");
    assert!(
        body.contains(&format!("{issue}</span>")),
        "the workspace's issues are listed: {body}"
    );
    assert!(
        stderr.contains(&format!("using the workspace in ../.. ({})", shown(&ws))),
        "{stderr}"
    );
}

#[test]
fn outside_any_workspace_the_current_folder_is_used_as_before() {
    // The repository's sample has no bulletin.toml in its copy: issues/ here is used.
    let ws = Workspace::with_sample();
    let run = ws.run(&["new", "--date", "2020-06-20"]);
    assert_eq!(run.ok(), "issues/2020-06-20.json\n");
    assert!(!run.stderr().contains("workspace"), "{}", run.stderr());
    let empty = Workspace::empty();
    let run = empty.run(&["preview", "--no-open"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("bulletin.toml"), "{}", run.stderr());
    assert!(!Path::new(&empty.path().join("issues")).exists());
}
