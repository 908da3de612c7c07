//! `bulletin preview`: the real server, driven by a real headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`, installed by tests/setup.sh), and
//! raw HTTP requests for what a browser would tidy up before sending (`..` in paths).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{ChromeDriver, eval, free_port, wait_until};
use crate::common::Workspace;

/// A running `bulletin preview`, stopped (by PID) when dropped.
struct Preview {
    child: Child,
    url: String,
    stderr_lines: std::sync::mpsc::Receiver<String>,
}

impl Preview {
    fn start(ws: &Workspace, args: &[&str]) -> Preview {
        let preview = Preview::start_via(ws, &[], args);
        assert!(
            preview.url.starts_with("http://127.0.0.1:"),
            "{}",
            preview.url
        );
        preview
    }

    /// `bulletin preview ARGS` run through `wrapper` (a program and its arguments, e.g.
    /// `setpriv …`), or directly when `wrapper` is empty.
    fn start_via(ws: &Workspace, wrapper: &[&str], args: &[&str]) -> Preview {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_bulletin"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_bulletin")),
        };
        let mut child = command
            .arg("preview")
            .args(args)
            .arg("--no-open")
            .current_dir(ws.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bulletin preview");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, stderr_lines) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut url = String::new();
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(u) = line.strip_prefix("Preview: ") {
                url = u.to_string();
                break;
            }
        }
        assert!(url.starts_with("http://"), "no address printed");
        Preview {
            child,
            url,
            stderr_lines,
        }
    }

    fn port(&self) -> u16 {
        self.host_port().1
    }

    /// The host and port of the printed address.
    fn host_port(&self) -> (String, u16) {
        let authority = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        let (host, port) = authority.rsplit_once(':').unwrap();
        (host.to_string(), port.parse().unwrap())
    }

    /// The stderr lines printed so far.
    fn stderr(&self) -> Vec<String> {
        self.stderr_lines.try_iter().collect()
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 GET, exactly as written (browsers and HTTP clients would remove `..`).
fn raw_get(port: u16, path: &str) -> (u16, String) {
    raw_get_as(port, path, "127.0.0.1")
}

/// The same, with another Host header.
fn raw_get_as(port: u16, path: &str, host: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn files_outside_the_issue_and_layout_folders_are_not_served() {
    let ws = Workspace::with_sample();
    ws.write("secret.txt", "not for the web");
    ws.write("issues/.env", "not for the web either");
    std::fs::create_dir_all(ws.path().join("issues/empty")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        ws.path().join("secret.txt"),
        ws.path().join("issues/link.txt"),
    )
    .unwrap();
    let preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    let port = preview.port();
    let base = "/issue/2020-06";

    assert_eq!(
        raw_get(port, &format!("{base}/files/images/essen.png")).0,
        200
    );
    assert_eq!(raw_get(port, &format!("{base}/layout/logo.png")).0, 200);
    assert_eq!(raw_get(port, &format!("{base}/layout/theme.toml")).0, 200);
    for path in [
        "/files/../../secret.txt",
        "/files/%2e%2e/%2e%2e/secret.txt",
        "/files/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/files/images/..%2f..%2f..%2fsecret.txt",
        "/files/.env",
        "/files/%2eenv",
        "/files/%2fetc%2fpasswd",
        "/files/link.txt",
        "/files/empty",
        "/files/images",
        "/files/",
        "/layout/../../secret.txt",
        "/layout/%2e%2e/%2e%2e/secret.txt",
    ] {
        let (status, body) = raw_get(port, &format!("{base}{path}"));
        assert_eq!(status, 404, "{path} answered {status}");
        assert!(!body.contains("not for the web"), "{path} leaked the file");
    }
    assert_eq!(raw_get(port, "/issue/nope/").0, 404);
    // A page elsewhere that points its own name at 127.0.0.1 gets nothing.
    let (status, body) = raw_get_as(
        port,
        &format!("{base}/files/images/essen.png"),
        "evil.example:80",
    );
    assert_eq!(status, 403);
    assert!(!body.contains("PNG"));
    assert_eq!(
        raw_get_as(port, &format!("{base}/"), &format!("localhost:{port}")).0,
        200
    );
    assert_eq!(raw_get(port, "/issue/..%2fsecret/").0, 404);
}

#[test]
fn ctrl_c_stops_the_preview_cleanly() {
    let ws = Workspace::with_sample();
    let mut preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    assert_eq!(raw_get(preview.port(), "/issue/2020-06/").0, 200);
    let pid = preview.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = preview.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "preview still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        TcpStream::connect(("127.0.0.1", preview.port())).is_err(),
        "port still open"
    );
}

/// Sends SIGINT (what Ctrl-C sends) to the preview and returns how long it took to exit,
/// asserting that it exited with 0 and closed its port.
fn interrupt(preview: &mut Preview) -> Duration {
    let pid = preview.child.id().to_string();
    let sent = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = preview.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "preview still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        TcpStream::connect(("127.0.0.1", preview.port())).is_err(),
        "port still open"
    );
    took
}

#[test]
fn ctrl_c_stops_at_once_even_in_the_middle_of_a_render() {
    // Issue 13: Ctrl-C took 1.5–1.8 s to stop the preview. The signal waited for the server's
    // threads, which a render (of a big issue, or on a slow machine) kept busy.
    let ws = Workspace::with_sample();
    let paragraph =
        "Words that make the email longer and **longer**, with [a link](https://example.com/p). ";
    let body = vec![paragraph.repeat(3); 5000].join("\\n\\n");
    for slug in ["big-1", "big-2"] {
        ws.write(
            &format!("issues/{slug}.json"),
            &crate::common::issue_with(&format!(r#"{{"kind": "text", "body": "{body}"}}"#)),
        );
    }
    let mut timings = Vec::new();

    // Idle, and with a page's event stream open.
    let mut preview = Preview::start(&ws, &["--port", &free_port().to_string()]);
    assert_eq!(raw_get(preview.port(), "/").0, 200);
    timings.push(("idle", interrupt(&mut preview)));
    let mut preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", preview.port())).unwrap();
    write!(
        stream,
        "GET /issue/2020-06/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    timings.push(("with an event stream open", interrupt(&mut preview)));
    drop(stream);

    // Two big issues opened at once, each a render of a second or more: Ctrl-C during them.
    let mut preview = Preview::start(&ws, &["--port", &free_port().to_string()]);
    let port = preview.port();
    let started = Instant::now();
    for slug in ["big-1", "big-2"] {
        std::thread::spawn(move || raw_get(port, &format!("/issue/{slug}/state.json")));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent_after = started.elapsed();
    let during = interrupt(&mut preview);
    timings.push(("during two renders", during));
    for (when, took) in &timings {
        eprintln!("Ctrl-C {when}: stopped after {} ms", took.as_millis());
    }
    // How long the renders take here, for comparison: the page of one big issue, alone.
    let mut preview = Preview::start(&ws, &["--port", &free_port().to_string()]);
    let alone = Instant::now();
    raw_get(preview.port(), "/issue/big-1/state.json");
    let render = alone.elapsed();
    eprintln!(
        "one big render takes {} ms here; Ctrl-C came {} ms after the two started",
        render.as_millis(),
        sent_after.as_millis()
    );
    interrupt(&mut preview);
    // Generous: stopping is an exit, not a wait for the renders (which take over a second).
    assert!(
        during < Duration::from_millis(500),
        "Ctrl-C took {} ms during a render",
        during.as_millis()
    );
}

#[test]
fn a_taken_port_moves_to_the_next_free_one() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ws = Workspace::with_sample();
    let preview = Preview::start(&ws, &["issues/2020-06.json", "--port", &port.to_string()]);
    assert_ne!(preview.port(), port);
    assert!(preview.port() > port && preview.port() <= port + 20);
    let (status, body) = raw_get(preview.port(), "/issue/2020-06/state.json");
    assert_eq!(status, 200);
    assert!(body.contains("\"rendered\":true"), "{body}");
    let warned = preview.stderr().join("\n");
    assert!(
        warned.contains(&format!(
            "warning: port {port} is taken; using the next free one"
        )),
        "{warned}"
    );
}

#[test]
fn without_an_issue_the_index_lists_issues_newest_first() {
    let ws = Workspace::with_sample();
    ws.write(
        "issues/2020-07.json",
        &crate::common::issue_with(r#"{"kind": "text", "body": "July"}"#)
            .replace("Test issue", "July issue")
            .replace("2020-06-03", "2020-07-01"),
    );
    let preview = Preview::start(&ws, &["--port", &free_port().to_string()]);
    let (status, body) = raw_get(preview.port(), "/");
    assert_eq!(status, 200);
    let july = body.find("July issue").expect("July listed");
    let june = body.find("Efus newsletter").expect("June listed");
    assert!(july < june, "not newest first");
    assert!(body.contains("href=\"/issue/2020-07/\""));
    let (status, body) = raw_get(preview.port(), "/issue/2020-07/state.json");
    assert_eq!(status, 200);
    assert!(body.contains("\"subject\":\"July issue\""), "{body}");
}

/// Replaces a file the way vim and many IDEs save: write a new file, rename it over the old.
fn save_by_rename(ws: &Workspace, rel: &str, contents: &str) {
    let tmp = ws.write(&format!("{rel}.tmp~"), contents);
    std::fs::rename(tmp, ws.path().join(rel)).unwrap();
}

#[test]
fn live_preview_in_headless_chromium() {
    let ws = Workspace::with_sample();
    ws.write(
        "subscribers.csv",
        "email,first_name,name\nana@example.org,Ana,Ana Martin\nbo@example.org,Bo,Bo Berg\n",
    );
    let preview = Preview::start(
        &ws,
        &[
            "issues/2020-06.json",
            "--port",
            &free_port().to_string(),
            "--list",
            "subscribers.csv",
        ],
    );
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        c.goto(&preview.url).await.unwrap();
        let subject = "return document.getElementById('subject').textContent";
        wait_until(
            &c,
            subject,
            json!("Efus newsletter — June 2020: weekly webconferences and events"),
        )
        .await;
        // The email is in the frames, with its images served from the issue's folder.
        let frame_text = "const d = document.getElementById('desktop').contentDocument; \
                          return d && d.body ? d.body.innerText.includes('SOLIDIFY') : false";
        wait_until(&c, frame_text, json!(true)).await;
        let images_loaded = "const d = document.getElementById('desktop').contentDocument; \
                             return [...d.images].every(i => i.complete && i.naturalWidth > 0)";
        wait_until(&c, images_loaded, json!(true)).await;
        if let Ok(path) = std::env::var("BULLETIN_PREVIEW_SCREENSHOT") {
            std::fs::write(path, c.screenshot().await.unwrap()).unwrap();
        }

        // A marker on the page survives the update: the page changes without a reload.
        eval(&c, "window.bulletinMarker = 'same page'; return true").await;
        let sample = ws.read("issues/2020-06.json");
        save_by_rename(
            &ws,
            "issues/2020-06.json",
            &sample.replace("Efus newsletter — June 2020", "Efus newsletter — July 2020"),
        );
        let took = wait_until(
            &c,
            subject,
            json!("Efus newsletter — July 2020: weekly webconferences and events"),
        )
        .await;
        eprintln!("title change seen in the page after {} ms", took.as_millis());
        assert_eq!(eval(&c, "return window.bulletinMarker").await, json!("same page"));

        // Broken JSON: the overlay shows the CLI's message over the last good render.
        let broken = sample.replacen("\"date\": \"2020-06-03\",", "\"date\": \"2020-06-03\"", 1);
        std::fs::write(ws.path().join("issues/2020-06.json"), &broken).unwrap();
        let overlay_shown = "return !document.getElementById('overlay').hidden";
        wait_until(&c, overlay_shown, json!(true)).await;
        let shown = eval(&c, "return document.getElementById('error').textContent").await;
        let cli = ws.run(&["render", "issues/2020-06.json"]).bad_input();
        assert_eq!(shown.as_str().unwrap().trim(), cli.trim());
        assert!(cli.starts_with("error: issues/2020-06.json:"), "{cli}");
        assert_eq!(
            eval(&c, subject).await,
            json!("Efus newsletter — July 2020: weekly webconferences and events"),
            "the last good render must stay visible"
        );
        wait_until(&c, frame_text, json!(true)).await;

        // Fixing the file clears the overlay.
        std::fs::write(ws.path().join("issues/2020-06.json"), &sample).unwrap();
        wait_until(&c, overlay_shown, json!(false)).await;
        wait_until(
            &c,
            subject,
            json!("Efus newsletter — June 2020: weekly webconferences and events"),
        )
        .await;

        // A layout file change is followed too (the theme of the sample's layout).
        let theme = ws.read("layouts/efus/theme.toml");
        save_by_rename(&ws, "layouts/efus/theme.toml", &theme.replace("10 rue des Montiboeufs", "12 rue des Montiboeufs"));
        let footer = "const d = document.getElementById('desktop').contentDocument; \
                      return d && d.body ? d.body.innerText.includes('12 rue des Montiboeufs') : false";
        wait_until(&c, footer, json!(true)).await;

        // At phone width the email has no horizontal scroll.
        wait_until(&c, frame_text.replace("desktop", "phone").as_str(), json!(true)).await;
        let widths = eval(
            &c,
            "const f = document.getElementById('phone'); const d = f.contentDocument; \
             return [f.clientWidth, d.documentElement.scrollWidth, d.body.scrollWidth]",
        )
        .await;
        let widths: Vec<u64> = serde_json::from_value(widths).unwrap();
        assert_eq!(widths[0], 375, "phone frame is {} px", widths[0]);
        assert!(widths[1] <= 375 && widths[2] <= 375, "horizontal scroll at 375 px: {widths:?}");

        // Dark mode shows the email as clients that invert colours do, images put back.
        c.find(Locator::Id("dark")).await.unwrap().click().await.unwrap();
        let dark = eval(
            &c,
            "const f = document.getElementById('phone'); \
             return [getComputedStyle(f).filter, !!f.contentDocument.getElementById('bulletin-dark')]",
        )
        .await;
        assert_eq!(dark, json!(["invert(1) hue-rotate(180deg)", true]));

        // A reader picked from the list: the email as Bo sees it.
        let greeting = "const d = document.getElementById('desktop').contentDocument; \
                        return d && d.body ? d.body.innerText.includes('Dear Bo,') : false";
        assert_eq!(eval(&c, greeting).await, json!(false));
        c.find(Locator::Id("reader"))
            .await
            .unwrap()
            .select_by_value("1")
            .await
            .unwrap();
        wait_until(&c, greeting, json!(true)).await;

        // The plain-text tab shows the text part.
        c.find(Locator::Css("button[data-view=text]")).await.unwrap().click().await.unwrap();
        let text = eval(&c, "return document.getElementById('text').textContent").await;
        assert!(text.as_str().unwrap().contains("UPCOMING EVENTS\n==============="));
        assert!(text.as_str().unwrap().contains("Dear Bo,"), "the text follows the reader");
        c.close().await.unwrap();
    });
    drop(preview);
}

/// Whether every email frame shown lies wholly inside the window (left edge not cut off,
/// right edge not past the window) and the page itself needs no sideways scroll: `true`, or
/// what is wrong.
const FRAMES_FIT: &str = "\
    const w = document.documentElement.clientWidth; \
    const wrong = []; \
    for (const id of ['desktop', 'phone', 'text']) { \
      const e = document.getElementById(id); \
      if (e.closest('[hidden]')) continue; \
      const r = e.getBoundingClientRect(); \
      if (r.width === 0) { wrong.push(id + ' has no width'); continue; } \
      if (r.left < -0.5 || r.right > w + 0.5) wrong.push(id + ' spans ' + r.left + '..' + r.right + ' in a window of ' + w); \
    } \
    const page = document.documentElement.scrollWidth; \
    if (page > w) wrong.push('the page is ' + page + ' px wide in a window of ' + w); \
    return wrong.length ? wrong.join('; ') : true";

#[test]
fn the_page_fits_the_window_from_desktop_to_phone_width() {
    let ws = Workspace::with_sample();
    let preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        c.goto(&preview.url).await.unwrap();
        let loaded = "return ['desktop', 'phone'].every(id => { \
                        const d = document.getElementById(id).contentDocument; \
                        return d && d.body && d.body.innerText.includes('SOLIDIFY'); })";
        wait_until(&c, loaded, json!(true)).await;
        // An editor and a browser side by side, a laptop, a tablet, a phone.
        for width in [1280, 960, 768, 390] {
            c.set_window_size(width, 900).await.unwrap();
            let inner = eval(&c, "return window.innerWidth").await;
            eprintln!("window {width} px: {inner} px inside");
            wait_until(&c, FRAMES_FIT, json!(true)).await;
            // For looking at it: BULLETIN_PREVIEW_SCREENSHOTS=DIR keeps preview-WIDTH.png.
            if let Ok(dir) = std::env::var("BULLETIN_PREVIEW_SCREENSHOTS") {
                let path = std::path::Path::new(&dir).join(format!("preview-{width}.png"));
                std::fs::write(path, c.screenshot().await.unwrap()).unwrap();
            }
        }

        // The plain text as written: 72 columns, never wrapped again by the page (the longest
        // line that is not a lone address takes one row), and all of it visible without
        // scrolling where the window has the room; an address longer than a line (an event's
        // calendar links) is broken at the edge rather than push the text sideways.
        c.find(Locator::Css("button[data-view=text]")).await.unwrap().click().await.unwrap();
        let unwrapped = "const p = document.getElementById('text'); \
                         const text = p.textContent; \
                         const prose = text.split('\\n').filter(l => !/^\\s*https?:\\/\\/\\S+$/.test(l)); \
                         const longest = Math.max(...prose.map(l => [...l].length)); \
                         const line = prose.find(l => [...l].length === longest); \
                         const at = text.indexOf(line); \
                         const r = document.createRange(); \
                         r.setStart(p.firstChild, at); r.setEnd(p.firstChild, at + line.length); \
                         const rows = new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; \
                         const addresses = text.split('\\n').some(l => [...l].length > 72); \
                         return [longest, rows, addresses, p.scrollWidth <= p.clientWidth]";
        for width in [1280, 960, 768] {
            c.set_window_size(width, 900).await.unwrap();
            wait_until(&c, FRAMES_FIT, json!(true)).await;
            assert_eq!(
                eval(&c, unwrapped).await,
                json!([72, 1, true, true]),
                "at {width} px"
            );
        }
        c.set_window_size(390, 900).await.unwrap();
        wait_until(&c, FRAMES_FIT, json!(true)).await;
        c.close().await.unwrap();
    });
    drop(preview);
}

#[test]
fn a_preview_of_a_broken_file_says_there_is_nothing_to_show_yet() {
    let ws = Workspace::with_sample();
    let sample = ws.read("issues/2020-06.json");
    ws.write(
        "issues/2020-06.json",
        &sample.replacen("\"date\": \"2020-06-03\",", "\"date\": \"2020-06-03\"", 1),
    );
    let preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        c.goto(&preview.url).await.unwrap();
        wait_until(
            &c,
            "return !document.getElementById('overlay').hidden",
            json!(true),
        )
        .await;
        let hint = eval(&c, "return document.getElementById('overlay').innerText").await;
        let hint = hint.as_str().unwrap();
        assert!(hint.contains("no good render yet"), "{hint}");
        assert!(!hint.contains("stays visible"), "{hint}");

        // Once fixed, the email shows and the hint is the usual one the next time it breaks.
        std::fs::write(ws.path().join("issues/2020-06.json"), &sample).unwrap();
        wait_until(
            &c,
            "return document.getElementById('overlay').hidden",
            json!(true),
        )
        .await;
        std::fs::write(
            ws.path().join("issues/2020-06.json"),
            sample.replacen("\"date\": \"2020-06-03\",", "\"date\": \"2020-06-03\"", 1),
        )
        .unwrap();
        wait_until(
            &c,
            "return !document.getElementById('overlay').hidden",
            json!(true),
        )
        .await;
        let hint = eval(&c, "return document.getElementById('overlay').innerText").await;
        assert!(hint.as_str().unwrap().contains("stays visible"), "{hint}");
        c.close().await.unwrap();
    });
    drop(preview);
}

/// Text only the marked layout writes, in both parts of the email.
const MARKER: &str = "MARKED-LAYOUT-7Q";

/// A layout folder whose footer carries [`MARKER`], an image of its own and the unsubscribe
/// link, and whose theme has a text colour that `check` warns about (naming this folder).
fn marked_layout(ws: &Workspace) {
    ws.write(
        "marked/footer.mjml.hbs",
        &format!(
            r#"<mj-section><mj-column><mj-image src="badge.png" alt="The marked layout's badge" width="40px" /><mj-text>{MARKER} <a href="{{{{unsubscribe_url}}}}">unsubscribe</a></mj-text></mj-column></mj-section>"#
        ),
    );
    ws.write(
        "marked/footer.txt.hbs",
        &format!("{MARKER}\nunsubscribe: {{{{unsubscribe_url}}}}\n"),
    );
    // The organisation is named: the built-in theme's would be a placeholder (issue 13).
    ws.write(
        "marked/theme.toml",
        "name = \"The Marked Society\"\n[colors]\ntext = \"#999999\"\n",
    );
    ws.write("marked/badge.png", "not really a PNG");
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
fn preview_check_render_and_send_use_the_same_layout_and_the_same_rules() {
    // Issue 11: the four commands each loaded and rendered the issue their own way, and send
    // had no --layout: what was previewed and checked was not always what went out.
    let secret = (
        "BULLETIN_UNSUBSCRIBE_SECRET",
        "test-secret-not-for-production",
    );
    let ws = Workspace::for_sending(
        "[profiles.dry]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\n",
    );
    ws.write("subscribers.csv", "email,first_name\nana@example.org,Ana\n");
    marked_layout(&ws);
    let issue = "issues/2020-06.json";
    let published = "https://example.org/newsletter/2020-06/";
    let send = |extra: &[&str]| {
        let mut args = vec!["send", issue, "--layout", "marked", "--profile", "dry"];
        args.extend_from_slice(extra);
        ws.run_with(&args, &[secret])
    };

    // render: the marked layout, its image found from the output folder.
    ws.run(&["render", issue, "--layout", "marked"]).ok();
    let html = ws.read("out/2020-06.html");
    assert!(html.contains(MARKER), "render used another layout");
    assert!(ws.read("out/2020-06.txt").contains(MARKER));
    assert!(html.contains("src=\"../marked/badge.png\""), "{html}");

    // check: the marked layout's theme is the one looked at, and nothing else is wrong.
    let run = ws.run(&["check", issue, "--layout", "marked", "--offline"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        run.stdout()
            .contains("warning: marked/theme.toml: colors.text: colors.text (#999999)"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .ends_with("0 errors, 2 warnings (links not checked)\n"),
        "{}",
        run.stdout()
    );

    // preview: the email shown is drawn with the marked layout, its image served from it.
    let preview = Preview::start(
        &ws,
        &[
            issue,
            "--layout",
            "marked",
            "--port",
            &free_port().to_string(),
        ],
    );
    let (status, shown) = raw_get(preview.port(), "/issue/2020-06/email.html");
    assert_eq!(status, 200);
    assert!(shown.contains(MARKER), "preview used another layout");
    assert!(shown.contains("src=\"layout/badge.png\""));
    assert_eq!(
        raw_get(preview.port(), "/issue/2020-06/layout/badge.png").0,
        200
    );
    drop(preview);

    // send: the message that goes out is drawn with the marked layout, its image published.
    let out = send(&["--list", "subscribers.csv", "--dry-run", "eml"]).ok();
    assert!(out.contains("Sent: 1"), "{out}");
    let eml: Vec<std::path::PathBuf> = std::fs::read_dir(ws.path().join("eml"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(eml.len(), 1, "{eml:?}");
    let raw = std::fs::read(&eml[0]).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let sent_html = msg.body_html(0).unwrap();
    assert!(sent_html.contains(MARKER), "send used another layout");
    assert!(msg.body_text(0).unwrap().contains(MARKER));
    assert!(
        sent_html.contains(&format!("src=\"{published}badge.png\"")),
        "the layout's image is not published in the sent message"
    );

    // The same rules: with the images not published, check fails and send refuses, with the
    // same findings, for a list and for a test send alike, and nothing is written.
    let unpublished = ws
        .read(issue)
        .replace(&format!("  \"images_url\": \"{published}\",\n"), "");
    ws.write(issue, &unpublished);
    let run = ws.run(&["check", issue, "--layout", "marked", "--offline"]);
    assert_eq!(run.code(), 1);
    let found = error_lines(&run.stdout());
    assert!(
        found.iter().any(|l| l.contains(
            "marked/footer.mjml.hbs: the layout's image badge.png is a file in the layout folder"
        )),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|l| l.contains("the image images/essen.png is a file next to the issue")),
        "{found:?}"
    );
    assert_eq!(found.len(), 5, "{found:?}");
    for extra in [
        &["--list", "subscribers.csv", "--dry-run", "refused"][..],
        &["--to", "me@example.org", "--dry-run", "refused"][..],
    ] {
        let err = send(extra).bad_input();
        assert_eq!(error_lines(&err), found, "send and check disagree");
        assert!(err.contains("nothing sent"), "{err}");
        assert!(!ws.path().join("refused").exists(), "something was written");
    }

    // Without --layout, both take the issue's own layout, and refuse its logo alike.
    let run = ws.run(&["check", issue, "--offline"]);
    let found = error_lines(&run.stdout());
    assert!(
        found
            .iter()
            .any(|l| l.contains("layouts/efus/theme.toml: logo.src: the layout's logo logo.png")),
        "{found:?}"
    );
    let err = ws
        .run_with(
            &["send", issue, "--profile", "dry", "--to", "me@example.org"],
            &[secret],
        )
        .bad_input();
    assert_eq!(error_lines(&err), found);
}

#[test]
fn layout_edits_show_when_the_issue_was_picked_in_the_page() {
    // Issue 13: with plain `bulletin preview`, the layout folder was watched only once the
    // issue file itself had been saved; 0 of 10 theme saves showed before that.
    let ws = Workspace::with_sample();
    let preview = Preview::start(&ws, &["--port", &free_port().to_string()]);
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        c.goto(&preview.url).await.unwrap();
        // Picked on the index page, as a newcomer does.
        c.find(Locator::Css("a[href=\"/issue/2020-06/\"]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let footer_has = |text: &str| {
            format!(
                "const d = document.getElementById('desktop').contentDocument; \
                 return d && d.body ? d.body.innerText.includes('{text}') : false"
            )
        };
        wait_until(&c, &footer_has("10 rue des Montiboeufs"), json!(true)).await;
        // Each save of the theme shows, the first one included; the issue is never saved.
        let theme = ws.read("layouts/efus/theme.toml");
        for n in 11..14 {
            let street = format!("{n} rue des Montiboeufs");
            save_by_rename(
                &ws,
                "layouts/efus/theme.toml",
                &theme.replace("10 rue des Montiboeufs", &street),
            );
            let took = wait_until(&c, &footer_has(&street), json!(true)).await;
            eprintln!("theme save {n} seen after {} ms", took.as_millis());
        }
        // A template of the layout, too.
        ws.write(
            "layouts/efus/footer.txt.hbs",
            "A FOOTER OF OUR OWN\n{{unsubscribe_url}}\n",
        );
        c.find(Locator::Css("button[data-view=text]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_until(
            &c,
            "return document.getElementById('text').textContent.includes('A FOOTER OF OUR OWN')",
            json!(true),
        )
        .await;
        c.close().await.unwrap();
    });
    drop(preview);
}

/// Waits (up to 15 s) for a stderr line containing `text`; returns every line read.
fn wait_for_stderr(preview: &Preview, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains(text)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match preview.stderr_lines.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("no stderr line with {text:?}; got:\n{}", lines.join("\n")),
        }
    }
    lines
}

/// Waits (up to 15 s) until the issue's state.json contains `text`.
fn wait_for_state(port: u16, slug: &str, text: &str) -> Duration {
    let start = Instant::now();
    loop {
        let (_, body) = raw_get(port, &format!("/issue/{slug}/state.json"));
        if body.contains(text) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "state.json never had {text:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The inodes of the folders a process watches through inotify, from /proc/PID/fdinfo.
#[cfg(target_os = "linux")]
fn watched_inodes(pid: u32) -> Vec<u64> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let info = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for line in info.lines().filter(|l| l.starts_with("inotify wd:")) {
            let ino = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ino:"))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .expect("an inode in the inotify line");
            out.push(ino);
        }
    }
    out
}

/// The inodes of every folder below `dir`, `dir` included, links not followed.
#[cfg(target_os = "linux")]
fn folder_inodes(dir: &std::path::Path) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut out = vec![std::fs::metadata(dir).unwrap().ino()];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(folder_inodes(&entry.path()));
        }
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn the_watcher_never_follows_a_link_out_of_the_workspace() {
    // Issue 13: `ln -s /etc issues/etclink` had the preview watch all of /etc (as root), or
    // stop with "Permission denied" (as anyone else).
    let ws = Workspace::with_sample();
    ws.write("bulletin.toml", "");
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("a/b")).unwrap();
    std::os::unix::fs::symlink("/etc", ws.path().join("issues/etclink")).unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("issues/elsewhere")).unwrap();
    // A link that stays in the workspace is followed, to where it leads.
    std::os::unix::fs::symlink("../layouts", ws.path().join("issues/layouts")).unwrap();
    let mut preview = Preview::start(
        &ws,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    // The watches are in place before the server answers.
    wait_for_state(preview.port(), "2020-06", "\"rendered\":true");
    let watched = watched_inodes(preview.child.id());
    let ours = folder_inodes(ws.path());
    eprintln!("{} folders watched", watched.len());
    assert!(!watched.is_empty());
    let strays = watched.iter().filter(|i| !ours.contains(i)).count();
    assert_eq!(strays, 0, "watching {strays} folders outside the workspace");
    let mut lines = wait_for_stderr(&preview, "not watching issues/elsewhere");
    lines.extend(wait_for_stderr(&preview, "not watching issues/etclink"));
    let warned = lines.join("\n");
    assert!(
        warned.contains(
            "warning: not watching issues/etclink: it is a link to /etc, outside the workspace"
        ),
        "{warned}"
    );
    // And it is still serving, and following the issue.
    let sample = ws.read("issues/2020-06.json");
    save_by_rename(
        &ws,
        "issues/2020-06.json",
        &sample.replace("June 2020", "July 2020"),
    );
    wait_for_state(preview.port(), "2020-06", "July 2020");
    assert!(
        preview.child.try_wait().unwrap().is_none(),
        "the preview stopped"
    );
}

#[cfg(unix)]
#[test]
fn an_unreadable_folder_is_skipped_with_a_warning_and_the_preview_goes_on() {
    // Issue 13: an unreadable `issues/locked/` made the preview print its address and exit 1
    // ("cannot watch the files: … Permission denied").
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::with_sample();
    let locked = ws.path().join("issues/locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads any folder whatever its mode; without the two capabilities that let it,
    // it cannot, as anyone else could not. `setpriv` (util-linux) takes them away.
    let privileged = std::fs::read_dir(&locked).is_ok();
    let wrapper: &[&str] = if privileged {
        &[
            "setpriv",
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
        ]
    } else {
        &[]
    };
    eprintln!("running as a privileged user: {privileged}; wrapper: {wrapper:?}");
    let mut preview = Preview::start_via(
        &ws,
        wrapper,
        &["issues/2020-06.json", "--port", &free_port().to_string()],
    );
    let lines = wait_for_stderr(&preview, "not watching");
    let warned = lines.join("\n");
    assert!(
        warned.contains("warning: not watching issues/locked: permission denied"),
        "{warned}"
    );
    assert!(
        preview.child.try_wait().unwrap().is_none(),
        "the preview stopped"
    );
    let sample = ws.read("issues/2020-06.json");
    save_by_rename(
        &ws,
        "issues/2020-06.json",
        &sample.replace("June 2020", "July 2020"),
    );
    let took = wait_for_state(preview.port(), "2020-06", "July 2020");
    eprintln!("the change was seen after {} ms", took.as_millis());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The `key=…` part of an address's query.
fn key_of(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("key="))
        .map(str::to_string)
}

#[test]
fn on_the_network_the_host_check_stays_and_readers_need_the_printed_key() {
    // Issue 13: `--bind 0.0.0.0` turned the Host check off silently, and /readers.json handed
    // the list's names and addresses to anyone on the network or to any DNS-rebinding page,
    // while the printed address still said 127.0.0.1.
    let ws = Workspace::with_sample();
    ws.write(
        "subscribers.csv",
        "email,first_name,name\nana@example.org,Ana,Ana Martin\n",
    );
    let preview = Preview::start_via(
        &ws,
        &[],
        &[
            "issues/2020-06.json",
            "--bind",
            "0.0.0.0",
            "--port",
            &free_port().to_string(),
            "--list",
            "subscribers.csv",
        ],
    );
    let (host, port) = preview.host_port();
    eprintln!("printed: {}", preview.url);
    assert!(
        host != "127.0.0.1" && host != "0.0.0.0" && host != "localhost",
        "the printed address is not the network's: {}",
        preview.url
    );
    let key = key_of(&preview.url).expect("a key in the printed address");
    assert!(key.len() >= 22, "a short key: {key}");
    let warned = wait_for_stderr(&preview, "visible to your network").join("\n");
    assert!(
        warned.contains("warning: the preview is visible to your network"),
        "{warned}"
    );
    let base = "/issue/2020-06";
    // A DNS-rebinding page names its own host: refused, whatever it asks for.
    for path in ["/", "/state.json", "/readers.json", "/email.html?as=0"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, body) =
            raw_get_as(port, &format!("{base}{path}{sep}key={key}"), "evil.example");
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.contains("Ana"), "{path} leaked a reader");
    }
    // The address printed, this machine's name and loopback are answered.
    let machine = hostname_of_this_machine();
    for name in [
        host.clone(),
        machine.clone(),
        "127.0.0.1".into(),
        "localhost".into(),
    ] {
        let (status, _) = raw_get_as(port, &format!("{base}/"), &format!("{name}:{port}"));
        assert_eq!(status, 200, "Host {name}");
    }
    // The issue itself is for colleagues to see; readers only with the key.
    let (status, body) = raw_get(port, &format!("{base}/readers.json"));
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("Ana"));
    let (status, body) = raw_get(port, &format!("{base}/readers.json?key=wrong{key}"));
    assert_eq!(status, 403, "{body}");
    let (status, body) = raw_get(port, &format!("{base}/readers.json?key={key}"));
    assert_eq!(status, 200);
    assert!(body.contains("Ana Martin <ana@example.org>"), "{body}");
    for part in ["email.html", "email.txt"] {
        let (status, body) = raw_get(port, &format!("{base}/{part}?as=0"));
        assert_eq!(status, 403, "{part}: {body}");
        assert!(!body.contains("Ana"), "{part} leaked a reader");
        let (status, body) = raw_get(port, &format!("{base}/{part}?as=0&key={key}"));
        assert_eq!(status, 200);
        assert!(body.contains("Ana"), "{part}: {body}");
    }
    assert_eq!(raw_get(port, &format!("{base}/email.html")).0, 200);

    // In a browser: the address printed shows the reader picker; without the key, the page
    // says where the readers went.
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        c.goto(&preview.url).await.unwrap();
        let greeting = "const d = document.getElementById('desktop').contentDocument; \
                        return d && d.body ? d.body.innerText.includes('Dear Ana,') : false";
        wait_until(
            &c,
            "return !document.getElementById('reader-box').hidden",
            json!(true),
        )
        .await;
        c.find(Locator::Id("reader"))
            .await
            .unwrap()
            .select_by_value("0")
            .await
            .unwrap();
        wait_until(&c, greeting, json!(true)).await;
        c.goto(&preview.url.replace(&format!("key={key}"), ""))
            .await
            .unwrap();
        wait_until(
            &c,
            "return document.getElementById('reader-note').textContent.includes('key')",
            json!(true),
        )
        .await;
        assert_eq!(
            eval(
                &c,
                "return document.getElementById('reader').options.length"
            )
            .await,
            json!(1)
        );
        c.close().await.unwrap();
    });
}

/// This machine's name, as `hostname` prints it.
fn hostname_of_this_machine() -> String {
    let out = Command::new("hostname").output().expect("hostname");
    String::from_utf8_lossy(&out.stdout).trim().to_lowercase()
}

#[test]
fn host_adds_a_name_the_preview_answers_to() {
    let ws = Workspace::with_sample();
    let preview = Preview::start(
        &ws,
        &[
            "issues/2020-06.json",
            "--host",
            "News.Lan",
            "--port",
            &free_port().to_string(),
        ],
    );
    let port = preview.port();
    assert_eq!(
        raw_get_as(port, "/issue/2020-06/", &format!("news.lan:{port}")).0,
        200
    );
    assert_eq!(raw_get_as(port, "/issue/2020-06/", "news.lan.").0, 200);
    assert_eq!(raw_get_as(port, "/issue/2020-06/", "other.lan").0, 403);
    // On loopback, reader data needs no key: nobody else can reach it.
    assert!(key_of(&preview.url).is_none(), "{}", preview.url);
}

/// Waits (up to 15 s) until the issue's email contains `text`; returns how long that took.
fn wait_for_email(port: u16, slug: &str, text: &str) -> Duration {
    let start = Instant::now();
    loop {
        let (_, body) = raw_get(port, &format!("/issue/{slug}/email.html"));
        if body.contains(text) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the email never had {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn native_and_polling_watchers_follow_the_layout_and_folders_made_later() {
    // Each folder is watched on its own (issue 13), so a folder made after the preview started
    // must be watched once it is there, with notifications and with --poll alike.
    for mode in [None, Some("--poll")] {
        let ws = Workspace::with_sample();
        let port = free_port().to_string();
        let mut args = vec!["issues/2020-06.json", "--port", &port];
        args.extend(mode);
        let preview = Preview::start(&ws, &args);
        let port = preview.port();
        wait_for_email(port, "2020-06", "10 rue des Montiboeufs");
        let theme = ws.read("layouts/efus/theme.toml");
        save_by_rename(
            &ws,
            "layouts/efus/theme.toml",
            &theme.replace("10 rue des Montiboeufs", "11 rue des Montiboeufs"),
        );
        let took = wait_for_email(port, "2020-06", "11 rue des Montiboeufs");
        eprintln!("{mode:?}: theme save seen after {} ms", took.as_millis());

        // A new folder with a body file, then the issue pointing at it.
        ws.write("issues/2020-07/intro.md", "FIRST WORDS of a new folder.\n");
        let sample = ws.read("issues/2020-06.json").replacen(
            "\"body_file\": \"2020-06/czepczynski.md\"",
            "\"body_file\": \"2020-07/intro.md\"",
            1,
        );
        save_by_rename(&ws, "issues/2020-06.json", &sample);
        wait_for_email(port, "2020-06", "FIRST WORDS");
        // Now a change inside the new folder alone.
        std::thread::sleep(Duration::from_millis(300));
        save_by_rename(
            &ws,
            "issues/2020-07/intro.md",
            "SECOND WORDS of a new folder.\n",
        );
        let took = wait_for_email(port, "2020-06", "SECOND WORDS");
        eprintln!(
            "{mode:?}: a save in a folder made later seen after {} ms",
            took.as_millis()
        );
        drop(preview);
    }
}
