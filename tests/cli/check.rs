//! `bulletin check`: each finding with a fixture that triggers it and one that does not; link
//! checks against a small HTTP server the test starts on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Run, Workspace};

/// An issue with everything a clean check needs (preheader, unsubscribe via the default
/// layout), and `sections` inside.
fn clean_issue(sections: &str) -> String {
    format!(
        r#"{{
  "title": "Network news, June 2020",
  "preheader": "What the network did this month.",
  "date": "2020-06-03",
  "sections": [
{sections}
  ]
}}"#
    )
}

/// An organisation's details, as `bulletin init` asks for them in the workspace's theme, with
/// no footer links of its own: the built-in layout's placeholders are errors otherwise.
const ORG_THEME: &str = "name = \"The Network\"\n[footer]\naddress = \"The Network · 10 Main Street · 75020 Paris · France\"\nsocial = []\n";

/// Runs `bulletin check issue.json ARGS` on `issue` in a fresh workspace (plus `files`) whose
/// theme (`layouts/default/theme.toml`) has the organisation's details.
fn check_with(issue: &str, files: &[(&str, &str)], args: &[&str]) -> Run {
    let ws = Workspace::empty();
    ws.write("issue.json", issue);
    ws.write("layouts/default/theme.toml", ORG_THEME);
    for (path, contents) in files {
        ws.write(path, contents);
    }
    let mut all = vec!["check", "issue.json"];
    all.extend_from_slice(args);
    ws.run(&all)
}

fn offline(issue: &str) -> Run {
    check_with(issue, &[], &["--offline"])
}

/// A layout whose footer has no links of its own, so that only the issue's links are checked
/// (this machine reaches no site but its own).
const NO_SOCIAL: &[(&str, &str)] = &[("layout/theme.toml", ORG_THEME)];

const PLAIN: &str = r#"{"kind": "text", "body": "Hello."}"#;

#[test]
fn a_clean_issue_has_no_findings() {
    let run = offline(&clean_issue(PLAIN));
    assert_eq!(run.ok(), "no problems found (links not checked)\n");
}

#[test]
fn the_sample_passes_offline_once_its_images_are_published() {
    // Published as a send needs it ("images_url" set), the sample has nothing to fix.
    let ws = Workspace::for_sending("");
    let out = ws
        .run(&["check", "issues/2020-06.json", "--offline", "--strict"])
        .ok();
    assert_eq!(out, "no problems found (links not checked)\n");
    // As in the repository, its images and its layout's logo are files, which send refuses
    // to send: check says so (issue 11: it used to find no problem).
    let ws = Workspace::with_sample();
    let run = ws.run(&["check", "issues/2020-06.json", "--offline"]);
    assert_eq!(run.code(), 1);
    let out = run.stdout();
    for src in [
        "images/webconferences.png",
        "images/solidify.png",
        "images/activity-report-2019.png",
        "images/essen.png",
    ] {
        assert!(
            out.lines().any(|l| l.contains("image.src, in the ")
                && l.contains(&format!("): the image {src} is a file next to the issue"))),
            "{src}: {out}"
        );
    }
    assert!(
        out.contains("layouts/efus/theme.toml: logo.src: the layout's logo logo.png is a file"),
        "{out}"
    );
    assert!(
        out.ends_with("5 errors, 0 warnings (links not checked)\n"),
        "{out}"
    );
}

#[test]
fn what_render_rejects_is_an_error() {
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body_file": "missing.md"}"#,
    ));
    let out = run.stdout();
    assert_eq!(run.code(), 1);
    assert!(
        out.contains("error: issue.json:6:31: sections[0].body_file, in the 1st section (text): cannot read body file"),
        "{out}"
    );
    assert!(
        out.ends_with("1 error, 0 warnings (links not checked)\n"),
        "{out}"
    );
    let run = offline(&clean_issue(r#"{"kind": "nope"}"#));
    assert!(run.stdout().contains("unknown section kind \"nope\""));
}

#[test]
fn images_without_alt_text_are_errors() {
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "![](https://example.org/chart.png)"}"#,
    ));
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("sections[0].body, in the 1st section (text): the image https://example.org/chart.png has no alt text"),
        "{}",
        run.stdout()
    );
    // Once, at its text field: not again from the rendered HTML (issue 12).
    assert_eq!(
        run.stdout().matches("no alt text").count(),
        1,
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "![A rising chart](https://example.org/chart.png)"}"#,
    ));
    assert!(!run.stdout().contains("alt text"), "{}", run.stdout());
    // An issue image without alt never gets this far: the issue format requires it.
    let run = offline(&clean_issue(
        r#"{"kind": "news", "items": [{"title": "T", "image": {"src": "https://example.org/a.png"}}]}"#,
    ));
    assert!(
        run.stdout().contains("the image has no \"alt\" text"),
        "{}",
        run.stdout()
    );
}

#[test]
fn malformed_urls_in_markdown_are_errors() {
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "See [the page](example.org/page)."}"#,
    ));
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("sections[0].body, in the 1st section (text): a link \"example.org/page\" is not a valid URL"),
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "See [the page](https://example.org/page)."}"#,
    ));
    assert_eq!(run.code(), 0, "{}", run.stdout());
}

#[test]
fn placeholder_text_is_an_error() {
    let run = offline(&clean_issue(
        r#"{"kind": "news", "items": [{"title": "TODO: title", "body": "Text."}]}"#,
    ));
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("sections[0].items[0].title, in the 1st section (news), 1st item (\"TODO: title\"): placeholder text left: \"TODO: title\""),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_layout_without_unsubscribe_link_is_an_error() {
    let footer = "<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>";
    let run = check_with(
        &clean_issue(PLAIN),
        &[
            ("layout/footer.mjml.hbs", footer),
            ("layout/footer.txt.hbs", "Bye\n"),
        ],
        &["--offline", "--layout", "layout"],
    );
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("error: layout/footer.mjml.hbs: the email has no unsubscribe link"),
        "{}",
        run.stdout()
    );
}

#[test]
fn html_size_is_checked_against_gmail_clipping() {
    let paragraph = "Words that make the email longer and longer. ".repeat(20);
    let big = |paragraphs: usize| {
        let body = vec![paragraph.as_str(); paragraphs].join("\\n\\n");
        clean_issue(&format!(r#"{{"kind": "text", "body": "{body}"}}"#))
    };
    let warn = offline(&big(95));
    assert_eq!(warn.code(), 0);
    assert!(
        warn.stdout()
            .contains("close to Gmail's 102 KB clipping limit"),
        "{}",
        warn.stdout()
    );
    let error = offline(&big(120));
    assert_eq!(error.code(), 1);
    assert!(
        error
            .stdout()
            .contains("over Gmail's 102 KB limit: Gmail will cut the email"),
        "{}",
        error.stdout()
    );
}

#[test]
fn subject_findings() {
    let with_title = |t: &str| offline(&clean_issue(PLAIN).replace("Network news, June 2020", t));
    let long =
        with_title("A subject line that goes on and on well past what any inbox will show whole");
    assert!(
        long.stdout()
            .contains("title: the subject is 75 characters"),
        "{}",
        long.stdout()
    );
    let caps = with_title("NETWORK NEWS FOR JUNE");
    assert!(
        caps.stdout().contains("the subject is in capitals"),
        "{}",
        caps.stdout()
    );
    let bangs = with_title("Network news!!!");
    assert!(
        bangs.stdout().contains("the subject has \"!!!\""),
        "{}",
        bangs.stdout()
    );
    for run in [&long, &caps, &bangs] {
        assert_eq!(run.code(), 0, "warnings alone exit 0");
    }
    assert!(
        with_title("EU news for June")
            .stdout()
            .starts_with("no problems")
    );
    // Merge fields count as the reader sees them, not as written.
    let merged = with_title(
        "{{subscriber.first_name | default: \\\"friend\\\"}}, your June news from the network",
    );
    assert!(
        merged.stdout().starts_with("no problems"),
        "{}",
        merged.stdout()
    );
}

#[test]
fn missing_preheader_is_a_warning() {
    let run = offline(&clean_issue(PLAIN).replace(
        "  \"preheader\": \"What the network did this month.\",\n",
        "",
    ));
    assert!(
        run.stdout()
            .contains("warning: issue.json:1:1: no preheader: inboxes will show the first words"),
        "{}",
        run.stdout()
    );
}

#[test]
fn events_before_the_issue_date_are_warnings() {
    let event = |start: &str| {
        offline(&clean_issue(&format!(
            r#"{{"kind": "events", "items": [{{"title": "Meeting", "start": "{start}", "online": true}}]}}"#
        )))
    };
    let before = event("2020-06-01 10:00 Europe/Paris");
    assert!(before.stdout().contains("sections[0].items[0].start, in the 1st section (events), 1st item (\"Meeting\"): the event starts on 2020-06-01, before the issue's date (2020-06-03)"), "{}", before.stdout());
    assert!(
        event("2020-06-04 10:00 Europe/Paris")
            .stdout()
            .starts_with("no problems")
    );
}

#[test]
fn agenda_out_of_order_is_a_warning() {
    let agenda = |a: &str, b: &str| {
        offline(&clean_issue(&format!(
            r#"{{"kind": "agenda", "items": [{{"title": "A", "date": "{a}"}}, {{"title": "No date"}}, {{"title": "B", "date": "{b}"}}]}}"#
        )))
    };
    let wrong = agenda("2020-07-01", "2020-06-10");
    assert!(wrong.stdout().contains("sections[0].items[2].date, in the 1st section (agenda), 3rd item (\"B\"): the agenda is not in date order: 2020-06-10 comes after 2020-07-01 (items[0])"), "{}", wrong.stdout());
    assert!(
        agenda("2020-06-10", "2020-07-01")
            .stdout()
            .starts_with("no problems")
    );
}

#[test]
fn vague_link_text_is_a_warning() {
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "The programme is [here](https://example.org/p)."}"#,
    ));
    assert!(
        run.stdout()
            .contains("the link text \"here\" does not say where it goes"),
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r#"{"kind": "about", "body": "Us.", "cta": {"label": "Click here", "url": "https://example.org/join"}}"#,
    ));
    assert!(
        run.stdout().contains(
            "sections[0].cta.label, in the 1st section (about): the link text \"Click here\""
        ),
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "Read [the programme](https://example.org/p)."}"#,
    ));
    assert!(run.stdout().starts_with("no problems"), "{}", run.stdout());
}

#[test]
fn images_without_width_are_warnings() {
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "![A chart](https://example.org/chart.png)"}"#,
    ));
    assert!(run.stdout().contains("warning: issue.json:6:26: sections[0].body, in the 1st section (text): the image https://example.org/chart.png has no width"), "{}", run.stdout());
    // Images of items are sized by the layout.
    let run = offline(&clean_issue(
        r#"{"kind": "news", "items": [{"title": "T", "image": {"src": "https://example.org/chart.png", "alt": "A chart"}}]}"#,
    ));
    assert!(run.stdout().starts_with("no problems"), "{}", run.stdout());
}

#[test]
fn low_contrast_theme_colours_are_warnings() {
    let run = check_with(
        &clean_issue(PLAIN),
        &[(
            "layout/theme.toml",
            &format!("{ORG_THEME}[colors]\ntext = \"#999999\"\n"),
        )],
        &["--offline", "--layout", "layout"],
    );
    assert!(run.stdout().contains("warning: layout/theme.toml: colors.text: colors.text (#999999) on colors.surface (#ffffff) has a contrast of 2.8:1"), "{}", run.stdout());
    let run = check_with(
        &clean_issue(PLAIN),
        &[(
            "layout/theme.toml",
            &format!("{ORG_THEME}[colors]\ntext = \"#333333\"\n"),
        )],
        &["--offline", "--layout", "layout"],
    );
    assert!(run.stdout().starts_with("no problems"), "{}", run.stdout());
}

#[test]
fn headings_that_skip_a_level_are_warnings() {
    let run = offline(&clean_issue(
        r##"{"kind": "text", "heading": "Intro", "body": "# Details\n\nText."}"##,
    ));
    assert!(
        run.stdout()
            .contains("the heading \"Details\" (h4) comes after an h2"),
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r##"{"kind": "news", "heading": "News", "items": [{"title": "Story", "body": "# Details\n\nText."}]}"##,
    ));
    assert!(run.stdout().starts_with("no problems"), "{}", run.stdout());
}

#[test]
fn a_template_error_is_a_finding_with_its_file_and_line() {
    let run = check_with(
        &clean_issue(PLAIN),
        &[(
            "layout/sections/text.mjml.hbs",
            "<mj-section>\n{{#if body_html}}\n",
        )],
        &["--offline", "--layout", "layout", "--json"],
    );
    assert_eq!(run.code(), 1);
    let finding: serde_json::Value = serde_json::from_str(run.stdout().trim()).unwrap();
    assert_eq!(finding["file"], "layout/sections/text.mjml.hbs");
    assert!(finding["line"].is_number());
    assert!(run.stderr().contains("1 error, 0 warnings"));
}

#[test]
fn strict_makes_warnings_fail_and_json_prints_one_object_per_finding() {
    let issue = clean_issue(PLAIN).replace("Network news, June 2020", "NEWS!!!");
    let run = check_with(&issue, &[], &["--offline", "--strict"]);
    assert_eq!(run.code(), 1);
    let run = check_with(&issue, &[], &["--offline", "--json"]);
    assert_eq!(run.code(), 0);
    let objects: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2, "{}", run.stdout());
    assert_eq!(objects[0]["severity"], "warning");
    assert_eq!(objects[0]["file"], "issue.json");
    assert_eq!(objects[0]["path"], "title");
    assert_eq!(objects[0]["line"], 2);
    assert!(
        run.stderr()
            .contains("0 errors, 2 warnings (links not checked)")
    );
}

/// A small HTTP server on 127.0.0.1 with one behaviour per path; it records each request.
struct Site {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request = String::new();
                    reader.read_line(&mut request).unwrap_or(0);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let mut parts = request.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    log.lock().unwrap().push(format!("{method} {path}"));
                    let route = path.split('?').next().unwrap_or("");
                    let response = match (method, route) {
                        (_, "/ok") => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string(),
                        (_, "/moved") => "HTTP/1.1 301 Moved Permanently\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n".to_string(),
                        (_, "/missing") => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                        ("HEAD", "/nohead") => "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_string(),
                        ("GET", "/nohead") => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
                        ("HEAD", "/big.png") => "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2500000\r\n\r\n".to_string(),
                        ("HEAD", "/small.png") => "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2500\r\n\r\n".to_string(),
                        (_, "/slow") => {
                            std::thread::sleep(Duration::from_secs(4));
                            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string()
                        }
                        _ => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_string(),
                    };
                    // Each answer closes its connection, and says so.
                    let response = response.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                    let mut stream = stream;
                    let _ = stream.write_all(response.as_bytes());
                });
            }
        });
        Site { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many requests were exactly `request` ("HEAD /ok?a=b").
    fn hits(&self, request: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| *h == request)
            .count()
    }
}

#[test]
fn links_are_checked_against_a_real_server() {
    let site = Site::start();
    let body = format!(
        "[The programme]({ok}), [the report]({moved}), [the page]({missing}), \
         [the form]({nohead}), [the slow page]({slow}) and [the programme again]({ok}).",
        ok = site.url("/ok?lang=en&year=2020"),
        moved = site.url("/moved"),
        missing = site.url("/missing"),
        nohead = site.url("/nohead"),
        slow = site.url("/slow"),
    );
    let issue = clean_issue(&format!(
        r#"{{"kind": "text", "body": "{body}", "cta": {{"label": "Join us", "url": "{join}"}}}},
    {{"kind": "news", "items": [{{"title": "Pictures", "image": {{"src": "{big}", "alt": "A large photo"}}}},
                                {{"title": "More", "image": {{"src": "{small}", "alt": "A small photo"}}}}]}}"#,
        big = site.url("/big.png"),
        small = site.url("/small.png"),
        join = site.url("/missing?form=join"),
    ));
    let run = check_with(&issue, NO_SOCIAL, &["--timeout", "1", "--layout", "layout"]);
    let out = run.stdout();
    assert_eq!(run.code(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "sections[0].body, in the 1st section (text): {} answers 404 Not Found",
            site.url("/missing")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "sections[0].body, in the 1st section (text): {} did not answer within 1 s",
            site.url("/slow")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "sections[1].items[0].image.src, in the 2nd section (news), 1st item (\"Pictures\"): the image {} is 2.4 MB",
            site.url("/big.png")
        )),
        "{out}"
    );
    // A query string reaches the server as written (Handlebars writes `=` as `&#x3D;`).
    assert!(
        out.contains(&format!(
            "sections[0].cta.url, in the 1st section (text): {} answers 404 Not Found",
            site.url("/missing?form=join")
        )),
        "{out}"
    );
    for fine in ["/ok?lang=en&year=2020", "/moved", "/nohead", "/small.png"] {
        assert!(
            !out.contains(&format!("{} ", site.url(fine))),
            "{fine} reported: {out}"
        );
    }
    assert!(
        out.ends_with("3 errors, 1 warning (8 links checked)\n"),
        "{out}"
    );
    // Each URL is asked once, and GET only where HEAD is refused.
    assert_eq!(site.hits("HEAD /ok?lang=en&year=2020"), 1);
    assert_eq!(site.hits("HEAD /ok"), 1, "the redirect of /moved");
    assert_eq!(site.hits("GET /ok"), 0);
    assert_eq!(site.hits("HEAD /nohead"), 1);
    assert_eq!(site.hits("GET /nohead"), 1);
    assert_eq!(site.hits("HEAD /missing"), 1);
    assert_eq!(
        site.hits("GET /missing"),
        0,
        "a dead link is not asked twice"
    );
}

#[test]
fn unreachable_hosts_are_errors_and_offline_skips_the_network() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issue = clean_issue(&format!(
        r#"{{"kind": "text", "body": "See [the closed page](http://127.0.0.1:{port}/x)."}}"#
    ));
    let run = check_with(&issue, NO_SOCIAL, &["--timeout", "2", "--layout", "layout"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("cannot be reached: the host does not resolve or refuses connections"),
        "{}",
        run.stdout()
    );
    let run = check_with(&issue, &[], &["--offline"]);
    assert_eq!(run.code(), 0);
}

#[test]
fn an_image_file_in_markdown_needs_images_url_like_the_items_images() {
    let issue = clean_issue(r#"{"kind": "text", "body": "![A chart](images/chart.png)"}"#);
    let run = offline(&issue);
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains(
            "sections[0].body, in the 1st section (text): the image images/chart.png is a file \
             next to the issue, which readers cannot see in an email: publish the images and set \
             \"images_url\""
        ),
        "{}",
        run.stdout()
    );
    // With images_url, it is a URL under it, as the items' images are, and may go out.
    let published = issue.replacen(
        "\"date\"",
        "\"images_url\": \"https://cdn.example.org/n/\",\n  \"date\"",
        1,
    );
    let run = offline(&published);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        run.stdout()
            .contains("the image https://cdn.example.org/n/images/chart.png has no width"),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_malformed_url_is_reported_once_online_too() {
    // Issue 13: online, a malformed URL was reported twice, the second time as "builder error".
    let issue =
        clean_issue(r#"{"kind": "text", "body": "See [the page](http://127.0.0.1:99999/page)."}"#);
    let run = check_with(&issue, NO_SOCIAL, &["--timeout", "1", "--layout", "layout"]);
    let out = run.stdout();
    assert_eq!(run.code(), 1, "{out}");
    assert_eq!(
        out.matches("127.0.0.1:99999").count(),
        1,
        "reported more than once:\n{out}"
    );
    assert!(!out.contains("builder error"), "{out}");
    assert!(out.contains("is not a valid URL"), "{out}");
}

#[test]
fn an_empty_section_is_a_warning() {
    // Issue 13: a section with nothing in it went out as a lone heading, unflagged.
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "Hello."},
    {"kind": "events", "heading": "Upcoming events"},
    {"kind": "news", "heading": "Our projects", "items": []},
    {"kind": "text", "body": "   "}"#,
    ));
    let out = run.stdout();
    assert_eq!(run.code(), 0, "warnings only: {out}");
    for (path, words) in [
        (
            "sections[1]",
            "the 2nd section (events, \"Upcoming events\")",
        ),
        ("sections[2]", "the 3rd section (news, \"Our projects\")"),
        ("sections[3]", "the 4th section (text)"),
    ] {
        assert!(
            out.contains(&format!(
                "warning: issue.json:{}: {path}, in {words}: the section is empty",
                match path {
                    "sections[1]" => "7:5",
                    "sections[2]" => "8:5",
                    _ => "9:5",
                }
            )),
            "{path}:\n{out}"
        );
    }
    assert!(!out.contains("sections[0], in"), "{out}");
}

#[test]
fn findings_in_a_body_file_point_at_its_line_and_column() {
    // Issue 13: they pointed at the issue's "body_file" line instead.
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &clean_issue(r#"{"kind": "text", "heading": "Essen", "body_file": "essen/story.md"}"#),
    );
    ws.write(
        "essen/story.md",
        "Essen opened its first room in 2001.\n\nThe full story is [here](https://efus.eu/essen).\n\nTODO: add the figures.\n\n![](https://efus.eu/chart.png)\n",
    );
    let out = ws.run(&["check", "issue.json", "--offline"]).stdout();
    for line in [
        "warning: essen/story.md:3:19: sections[0].body_file, in the 1st section (text, \"Essen\"): the link text \"here\" does not say where it goes",
        "error: essen/story.md:5:1: sections[0].body_file, in the 1st section (text, \"Essen\"): placeholder text left: \"TODO: add the figures.\"",
        "error: essen/story.md:7:1: sections[0].body_file, in the 1st section (text, \"Essen\"): the image https://efus.eu/chart.png has no alt text",
        "warning: essen/story.md:7:21: sections[0].body_file, in the 1st section (text, \"Essen\"): the image https://efus.eu/chart.png has no width",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "{line}\nnot in:\n{out}"
        );
    }
}

#[test]
fn a_placeholder_excerpt_keeps_whole_words() {
    // Issue 13: the excerpt was cut mid-word ("ree days of workshops. TODO: …").
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "Our network met in Lyon for three days of workshops. TODO: say what the mayors decided about the shared budget for next year and who will lead it."}"#,
    ));
    let out = run.stdout();
    let excerpt = out
        .split("placeholder text left: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no excerpt in:\n{out}"));
    let text = "Our network met in Lyon for three days of workshops. TODO: say what the mayors decided about the shared budget for next year and who will lead it.";
    let words: Vec<&str> = text.split_whitespace().collect();
    let inner = excerpt.trim_start_matches("… ").trim_end_matches(" …");
    for word in inner.split_whitespace() {
        assert!(
            words.contains(&word),
            "{word:?} is not a whole word: {excerpt}"
        );
    }
    assert!(inner.contains("TODO: say what"), "{excerpt}");
    assert!(
        excerpt.starts_with("… ") && excerpt.ends_with(" …"),
        "{excerpt}"
    );
}

#[test]
fn findings_say_in_words_which_section_and_item_they_are_about() {
    // Issue 13: "sections[1].items[0]" means nothing to a writer; the path stays, for tools.
    let issue = clean_issue(
        r#"{"kind": "text", "body": "Hello."},
    {"kind": "news", "heading": "Our projects", "items": [
      {"title": "SOLIDIFY", "link": {"label": "here", "url": "https://efus.eu/solidify"}}]}"#,
    );
    let out = offline(&issue).stdout();
    assert!(
        out.contains(
            "warning: issue.json:8:47: sections[1].items[0].link.label, in the 2nd section (news, \"Our projects\"), 1st item (\"SOLIDIFY\"): the link text \"here\""
        ),
        "{out}"
    );
    let run = check_with(&issue, &[], &["--offline", "--json"]);
    let finding: serde_json::Value =
        serde_json::from_str(run.stdout().lines().next().unwrap()).unwrap();
    assert_eq!(finding["path"], "sections[1].items[0].link.label");
    assert_eq!(
        finding["where"],
        "the 2nd section (news, \"Our projects\"), 1st item (\"SOLIDIFY\")"
    );
}

#[test]
fn the_progress_bar_names_the_link_it_waits_for() {
    // Issue 13: the bar showed "0/1" for as long as a slow link took, without saying which.
    let site = Site::start();
    let slow = site.url("/slow");
    let issue = clean_issue(&format!(
        r#"{{"kind": "text", "body": "See [the slow page]({slow})."}}"#
    ));
    let ws = Workspace::empty();
    ws.write("issue.json", &issue);
    for (path, contents) in NO_SOCIAL {
        ws.write(path, contents);
    }
    // On a terminal: `script` (util-linux) gives the command one and records what it shows.
    let command = format!(
        "{} check issue.json --layout layout --timeout 6",
        env!("CARGO_BIN_EXE_bulletin")
    );
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(ws.path())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains(&format!("waiting for {slow}")),
        "the slow link is not named:\n{shown:?}"
    );
    assert!(
        shown.contains("no problems found") || shown.contains("error"),
        "{shown:?}"
    );
}

#[test]
fn online_findings_point_only_at_files_the_user_has() {
    // Issue 13: with the network on, the built-in theme's own link was reported as
    // "theme.toml (built-in default layout): https://example.org cannot be reached", which no
    // user can fix. A link of the user's layout folder points at its line there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = check_with(&clean_issue(PLAIN), &[], &["--timeout", "2"]);
    let out = run.stdout();
    assert!(!out.contains("built-in default layout"), "{out}");
    assert!(!out.contains("cannot be reached"), "{out}");
    let theme = format!(
        "# Our links.\n[footer]\nsocial = [\n  {{ name = \"Website\", url = \"http://127.0.0.1:{closed}/\" }},\n]\n"
    );
    let run = check_with(
        &clean_issue(PLAIN),
        &[("layout/theme.toml", &theme)],
        &["--timeout", "2", "--layout", "layout"],
    );
    let out = run.stdout();
    assert!(
        out.contains(&format!(
            "error: layout/theme.toml:4:30: http://127.0.0.1:{closed}/ cannot be reached"
        )),
        "{out}"
    );
}

#[test]
fn the_built_in_layouts_organisation_is_a_placeholder_until_the_workspace_names_its_own() {
    // Issue 13: an issue drawn with the built-in theme alone passed, while its email read
    // "Your organisation · 1 Example Street · 00000 City · Country", words in no file of the
    // user's. They are errors about the issue, saying which file and key to write.
    let ws = Workspace::empty();
    ws.write("issue.json", &clean_issue(PLAIN));
    let run = ws.run(&["check", "issue.json", "--offline", "--strict"]);
    let out = run.stdout();
    assert_eq!(run.code(), 1, "{out}");
    for (shown, what, key) in [
        ("Your organisation", "organisation's name", "name"),
        (
            "Your organisation · 1 Example Street · 00000 City · Country",
            "postal address",
            "address under [footer]",
        ),
        (
            "https://example.org",
            "website and social links",
            "social under [footer]",
        ),
    ] {
        let line = format!(
            "error: issue.json: the email shows \"{shown}\", the built-in layout's placeholder for your {what}: write yours as {key} in layouts/default/theme.toml in your workspace (bulletin init writes it)"
        );
        assert!(out.lines().any(|l| l == line), "{line}\nnot in:\n{out}");
    }
    assert!(
        out.ends_with("3 errors, 0 warnings (links not checked)\n"),
        "{out}"
    );

    // A layout folder of the user's names the file to write them in; what it sets is not
    // reported, what it leaves to the built-in theme is.
    ws.write("mine/theme.toml", "name = \"The Network\"\n");
    let out = ws
        .run(&["check", "issue.json", "--offline", "--layout", "mine"])
        .stdout();
    assert!(!out.contains("organisation's name"), "{out}");
    assert!(
        out.contains("the built-in layout's placeholder for your postal address: write yours as address under [footer] in mine/theme.toml"),
        "{out}"
    );

    // Placeholders written in the user's own theme are reported there, at their line and key.
    ws.write(
        "mine/theme.toml",
        "# Ours.\nname = \"The Network\"\n\n[footer]\naddress = \"The Network · 1 Example Street · 00000 City · Country\"\nsocial = [{ name = \"Website\", url = \"https://your-organisation.example\" }]\n",
    );
    let out = ws
        .run(&["check", "issue.json", "--offline", "--layout", "mine"])
        .stdout();
    assert!(
        out.contains("error: mine/theme.toml:5:11: footer.address: \"The Network · 1 Example Street · 00000 City · Country\" is a placeholder postal address"),
        "{out}"
    );
    assert!(
        out.contains("error: mine/theme.toml:6:37: footer.social[0].url: \"https://your-organisation.example\" is a placeholder address: put your own"),
        "{out}"
    );
    assert!(
        out.ends_with("2 errors, 0 warnings (links not checked)\n"),
        "{out}"
    );
}

#[test]
fn markdown_links_that_are_not_links_are_errors() {
    // Issue 12: a space in the URL, and Markdown leaves the brackets in the email.
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "See [the programme](https://efus example/p)."}"#,
    ));
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert!(
        run.stdout().contains(
            "error: issue.json:6:26: sections[0].body, in the 1st section (text): \
             \"[the programme](https://efus example/p)\" is not read as a link"
        ),
        "{}",
        run.stdout()
    );
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "See [the programme](htps//example.org/p)."}"#,
    ));
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(
        run.stdout().matches("is not a valid URL").count(),
        1,
        "{}",
        run.stdout()
    );
}

#[test]
fn unknown_merge_fields_are_errors() {
    // Issue 12: a misspelt field wrote "Hi " and nothing else.
    let run = offline(&clean_issue(
        r#"{"kind": "text", "body": "Hi {{subscriber.first_nme}}, and {{subscriber.first_name}}."}"#,
    ));
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let out = run.stdout();
    assert!(
        out.contains("error: issue.json:6:26: sections[0].body, in the 1st section (text): the merge field {{subscriber.first_nme}} is not a field readers have"),
        "{out}"
    );
    assert!(out.contains("did you mean first_name?"), "{out}");
    assert!(out.contains("email, first_name, name"), "{out}");
    assert_eq!(out.matches("merge field").count(), 1, "{out}");
}
