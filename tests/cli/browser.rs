//! A real headless Chromium for the tests that look at pages: Debian's `chromium` driven
//! through `chromedriver` (both installed by tests/setup.sh) with fantoccini. Used by the
//! preview tests and by the layout tests that measure where text lands (right-to-left).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver on a free port, stopped (by PID) when dropped.
pub struct ChromeDriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver not found: run `bash tests/setup.sh` (Debian packages chromium, chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn connect(&self) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("connect to chromedriver")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Evaluates `js` (a function body that returns a value) in the page.
pub async fn eval(c: &Client, js: &str) -> serde_json::Value {
    c.execute(js, vec![]).await.expect("script runs")
}

/// Waits (up to 15 s) until `js` returns `want`; returns how long that took.
pub async fn wait_until(c: &Client, js: &str, want: serde_json::Value) -> Duration {
    let start = Instant::now();
    loop {
        let got = eval(c, js).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "waited for {js} to be {want}, it is {got}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// axe-core's violations of impact "serious" or "critical" on the page `c` shows, each as
/// "rule: help (first elements)": an empty list is a page with none. axe-core is installed by
/// tests/setup.sh into target/test-tools and put into the page as a script of its own.
pub async fn serious_axe_violations(c: &Client) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools/node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `bash tests/setup.sh`", path.display()));
    let loaded = c
        .execute(
            "const s = document.createElement('script'); s.text = arguments[0]; \
             document.head.appendChild(s); return typeof axe;",
            vec![json!(source)],
        )
        .await
        .expect("axe-core loads");
    if loaded != json!("object") {
        // A page whose Content-Security-Policy forbids scripts (serve's pages) refuses the
        // script element; WebDriver's own scripts are not the page's, so axe-core runs as one.
        let loaded = c
            .execute(&format!("{source}\n;return typeof axe;"), vec![])
            .await
            .expect("axe-core loads");
        assert_eq!(loaded, json!("object"), "axe-core did not load");
    }
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                   + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}

/// Makes the page's layout `width` CSS pixels wide (the window's frame and scrollbar, if
/// any, added), the window `height` high.
pub async fn set_width(c: &Client, width: u32, height: u32) {
    let mut outer = width;
    for _ in 0..4 {
        c.set_window_size(outer, height).await.unwrap();
        let inner = eval(c, "return document.documentElement.clientWidth")
            .await
            .as_u64()
            .unwrap() as u32;
        if inner == width {
            return;
        }
        outer = outer + width - inner;
    }
    panic!("cannot make the page {width} px wide");
}

/// How far the page `c` shows is wider than its layout viewport, in CSS pixels (0: no
/// horizontal scroll), once that is `width` pixels wide.
pub async fn horizontal_overflow(c: &Client, width: u32) -> i64 {
    set_width(c, width, 900).await;
    eval(
        c,
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) \
         - document.documentElement.clientWidth",
    )
    .await
    .as_i64()
    .unwrap()
}

/// The page `c` shows printed to PDF by Chromium (A4, the page's own print styles), as the
/// text of each printed page (pdftotext, from poppler-utils, installed by tests/setup.sh).
pub async fn printed_pages(c: &Client) -> Vec<String> {
    let config = fantoccini::wd::PrintConfiguration::builder()
        .size(fantoccini::wd::PrintSize::A4)
        .build()
        .expect("print settings");
    let pdf = c.print(config).await.expect("Chromium prints the page");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("print.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext not found: run `bash tests/setup.sh` (Debian package poppler-utils)");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout)
        .split('\u{c}')
        .map(str::to_string)
        .filter(|p| !p.trim().is_empty())
        .collect()
}
