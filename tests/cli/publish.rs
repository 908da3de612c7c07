//! `bulletin publish`: the web edition as a static site, run as a user would, in a workspace
//! with the sample issue, a French issue with images and a second English issue. Every page
//! written is read with an HTML parser (scraper) and every link and image in it followed to a
//! file of the site; the feed is read with Python's feedparser, an independent parser.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use scraper::{Html, Selector};
use serde_json::Value;

use crate::browser::{ChromeDriver, eval, printed_pages, serious_axe_violations, set_width};
use crate::common::{Workspace, repo};

/// The site's address in the tests' bulletin.toml.
const BASE: &str = "https://news.example.net/archive/";

const ARCHIVE: &str = "[archive]\nbase_url = \"https://news.example.net/archive\"\n";

/// A French issue with an item's image and an image in its Markdown, in the sample's layout.
const FRENCH: &str = r#"{
  "title": "Lettre d’information — juillet 2020",
  "preheader": "Nos webconférences et un nouveau rapport d’activité.",
  "date": "2020-07-01",
  "language": "fr",
  "layout": "../layouts/efus",
  "sections": [
    { "kind": "text", "body": "Bonjour {{subscriber.first_name | default: \"à toutes et à tous\"}},\n\n![La couverture du rapport d’activité 2019](images/activity-report-2019.png)" },
    { "kind": "news", "heading": "Actualités", "items": [
      { "title": "Un nouveau rapport", "image": { "src": "images/essen.png", "alt": "La ville d’Essen" },
        "body": "Lisez [le rapport](https://example.org/rapport).",
        "link": { "label": "Lire le rapport", "url": "https://example.org/rapport" } }
    ] }
  ]
}"#;

/// A second English issue, without images of its own, whose greeting has no fallback.
const SEPTEMBER: &str = r#"{
  "title": "September news",
  "preheader": "A short one before the autumn.",
  "date": "2020-09-02",
  "layout": "../layouts/efus",
  "sections": [
    { "kind": "text", "body": "Dear {{subscriber.first_name}}, here is the September news." }
  ]
}"#;

/// The sample and the two issues above, in a workspace whose bulletin.toml has `[archive]`.
fn three_issues() -> Workspace {
    let ws = Workspace::with_sample();
    ws.write("bulletin.toml", ARCHIVE);
    ws.write("issues/2020-07.json", FRENCH);
    ws.write("issues/2020-09.json", SEPTEMBER);
    ws
}

/// Every file of the folder, relative to it, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Each file's inode and modification time: a file written again (atomically, so replaced)
/// changes both.
fn stamps(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    files(dir)
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(dir.join(&f)).unwrap();
            (f, (m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// The HTML pages of the site (not bulletin's own records in .bulletin/).
fn pages(site: &Path) -> Vec<PathBuf> {
    files(site)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x == "html") && !f.starts_with(".bulletin"))
        .collect()
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

fn meta(doc: &Html, property: &str) -> Option<String> {
    let css = format!("meta[property=\"{property}\"], meta[name=\"{property}\"]");
    select(doc, &css)
        .first()
        .and_then(|m| m.value().attr("content"))
        .map(str::to_string)
}

/// The file of the site a link of `page` leads to, or `None` for a link out of the site
/// (another host, mailto:, an anchor). A link to a folder leads to its index.html, and a full
/// address under [`BASE`] to the file it is on the site.
fn target(site: &Path, page: &Path, link: &str) -> Option<PathBuf> {
    let (rel, from) = if let Some(rest) = link.strip_prefix(BASE) {
        (rest.to_string(), PathBuf::new())
    } else if link.starts_with('#') || url::Url::parse(link).is_ok() {
        return None;
    } else {
        (
            link.to_string(),
            page.parent().unwrap_or(Path::new("")).to_path_buf(),
        )
    };
    let rel = rel.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(rel)
        .decode_utf8()
        .unwrap()
        .into_owned();
    let mut path = PathBuf::new();
    for part in from.join(&decoded).components() {
        match part {
            std::path::Component::ParentDir => {
                assert!(
                    path.pop(),
                    "{}: {link} leads out of the site",
                    page.display()
                );
            }
            std::path::Component::Normal(p) => path.push(p),
            _ => {}
        }
    }
    if decoded.is_empty() || decoded.ends_with('/') || site.join(&path).is_dir() {
        path.push("index.html");
    }
    Some(path)
}

/// Follows every link, image, stylesheet, canonical and link-preview address of every page
/// to a file of the site; returns how many it followed.
fn assert_links_resolve(site: &Path) -> usize {
    let mut followed = 0;
    for page in pages(site) {
        let doc = Html::parse_document(&std::fs::read_to_string(site.join(&page)).unwrap());
        let attrs = [
            ("a[href]", "href"),
            ("link[href]", "href"),
            ("img[src]", "src"),
            ("[background]", "background"),
            ("meta[property=\"og:url\"]", "content"),
            ("meta[property=\"og:image\"]", "content"),
            ("meta[name=\"twitter:image\"]", "content"),
        ];
        for (css, attr) in attrs {
            for el in select(&doc, css) {
                let link = el.value().attr(attr).unwrap();
                if let Some(file) = target(site, &page, link) {
                    assert!(
                        site.join(&file).is_file(),
                        "{}: {link} leads to {}, which the site does not have",
                        page.display(),
                        file.display()
                    );
                    followed += 1;
                }
            }
        }
    }
    followed
}

/// What no page of the site may hold: the unsubscribe link, "View in browser", merge-field
/// syntax, the sample reader's values.
fn assert_no_readers_data(site: &Path) {
    for page in pages(site) {
        let html = std::fs::read_to_string(site.join(&page)).unwrap();
        for word in [
            "nsubscribe",
            "désabonner",
            "View in browser",
            "Voir dans le navigateur",
            "You receive",
            "{{",
            "alex.morgan",
            "Alex",
            "SAMPLE",
        ] {
            assert!(!html.contains(word), "{} holds {word:?}", page.display());
        }
    }
}

#[test]
fn publishes_a_page_a_print_version_and_the_images_of_every_issue() {
    let ws = three_issues();
    let run = ws.run(&["publish"]);
    let out = run.ok();
    for slug in ["2020-06", "2020-07", "2020-09"] {
        assert!(out.contains(&format!("published {slug}")), "{out}");
    }
    assert!(
        out.contains("Upload site/ to https://news.example.net/archive/"),
        "{out}"
    );
    // The greeting without a fallback is named, with what to write.
    let err = run.stderr();
    assert!(
        err.contains("issues/2020-09.json: {{subscriber.first_name}} has no fallback"),
        "{err}"
    );

    let site = ws.path().join("site");
    let all = files(&site);
    for f in [
        "index.html",
        "feed.xml",
        "sitemap.xml",
        ".bulletin/manifest.json",
        "2020-06/index.html",
        "2020-06/print.html",
        "2020-06/images/solidify.png",
        "2020-06/logo.png",
        "2020-07/index.html",
        "2020-07/print.html",
        "2020-07/images/essen.png",
        "2020-07/images/activity-report-2019.png",
        "2020-09/index.html",
        "2020-09/print.html",
    ] {
        assert!(all.contains(&PathBuf::from(f)), "no {f} in {all:#?}");
    }
    // The copies are the files.
    assert_eq!(
        std::fs::read(site.join("2020-07/images/essen.png")).unwrap(),
        std::fs::read(ws.path().join("issues/images/essen.png")).unwrap()
    );
    // Every link and image of every page is a file of the site.
    let followed = assert_links_resolve(&site);
    assert!(followed > 30, "only {followed} links followed");
    assert_no_readers_data(&site);

    // The sample's page: the title is its one h1, with link previews' addresses in full.
    let page = Html::parse_document(&ws.read("site/2020-06/index.html"));
    let h1: Vec<String> = select(&page, "h1")
        .iter()
        .map(|h| h.text().collect())
        .collect();
    assert_eq!(
        h1,
        ["Efus newsletter — June 2020: weekly webconferences and events"]
    );
    assert_eq!(
        select(&page, "title")[0].text().collect::<String>(),
        "Efus newsletter — June 2020: weekly webconferences and events"
    );
    assert_eq!(
        meta(&page, "og:url").as_deref(),
        Some("https://news.example.net/archive/2020-06/")
    );
    assert_eq!(
        meta(&page, "og:image").as_deref(),
        Some("https://news.example.net/archive/2020-06/images/webconferences.png")
    );
    assert_eq!(meta(&page, "og:type").as_deref(), Some("article"));
    assert_eq!(
        meta(&page, "og:description").as_deref(),
        Some("Weekly webconferences, news from our projects and three online events in June.")
    );
    assert_eq!(
        meta(&page, "twitter:card").as_deref(),
        Some("summary_large_image")
    );
    let canonical = select(&page, "link[rel=canonical]");
    assert_eq!(
        canonical[0].value().attr("href"),
        Some("https://news.example.net/archive/2020-06/")
    );
    for css in [
        "header a[href=\"../index.html\"]",
        "header a[href=\"print.html\"]",
        "main",
        "footer",
        "meta[name=viewport]",
    ] {
        assert_eq!(select(&page, css).len(), 1, "{css}");
    }
    assert!(ws.read("site/2020-06/index.html").contains("Dear member,"));

    // The print version: the same content, no navigation, links written out in print.
    let print_html = ws.read("site/2020-06/print.html");
    let print = Html::parse_document(&print_html);
    assert!(select(&print, "header, nav, footer").is_empty());
    assert_eq!(select(&print, "h1").len(), 1);
    assert!(print_html.contains(r#"a[href^="http"]::after { content: " (" attr(href) ")";"#));
    assert!(print_html.contains("break-inside: avoid"));
    assert!(select(&print, ".item").len() >= 5);

    // The French page is in French, and the list writes its date as its email does.
    let french = Html::parse_document(&ws.read("site/2020-07/index.html"));
    let html = select(&french, "html")[0];
    assert_eq!(html.value().attr("lang"), Some("fr"));
    assert_eq!(
        meta(&french, "og:image").as_deref(),
        Some("https://news.example.net/archive/2020-07/images/activity-report-2019.png")
    );
    assert!(
        ws.read("site/2020-07/index.html")
            .contains("Version imprimable")
    );
    assert!(
        ws.read("site/2020-07/index.html")
            .contains("Bonjour à toutes et à tous")
    );

    // The list: newest first, each with its date in its language and its preheader.
    let list = Html::parse_document(&ws.read("site/index.html"));
    let items = select(&list, "main li");
    let titles: Vec<String> = items
        .iter()
        .map(|li| select_in(li, "h2").trim().to_string())
        .collect();
    assert_eq!(
        titles,
        [
            "September news",
            "Lettre d’information — juillet 2020",
            "Efus newsletter — June 2020: weekly webconferences and events"
        ]
    );
    assert_eq!(items[1].value().attr("lang"), Some("fr"));
    assert_eq!(select_in(&items[1], "time"), "1 juillet 2020");
    assert_eq!(select_in(&items[2], "time"), "3 June 2020");
    assert!(select_in(&items[2], ".summary").starts_with("Weekly webconferences"));
    assert_eq!(select(&list, "h1").len(), 1);

    // The sitemap: the list and every page, by full address.
    let sitemap = ws.read("site/sitemap.xml");
    for url in ["", "2020-06/", "2020-07/", "2020-09/"] {
        assert!(
            sitemap.contains(&format!("<loc>{BASE}{url}</loc>")),
            "{sitemap}"
        );
    }
}

/// The text of the first element matching `css` inside `el`.
fn select_in(el: &scraper::ElementRef<'_>, css: &str) -> String {
    el.select(&Selector::parse(css).unwrap())
        .next()
        .map(|e| e.text().collect())
        .unwrap_or_default()
}

#[test]
fn the_feed_is_atom_that_feedparser_reads() {
    let ws = three_issues();
    ws.run(&["publish"]).ok();
    let read = Command::new("python3")
        .arg(repo().join("tests/servers/read_feed.py"))
        .arg(ws.path().join("site/feed.xml"))
        .output()
        .expect("python3 with feedparser: run `bash tests/setup.sh`");
    assert!(
        read.status.success(),
        "python3 with feedparser: run `bash tests/setup.sh`\n{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let feed: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(feed["bozo"], false, "{feed:#}");
    assert_eq!(feed["version"], "atom10");
    assert_eq!(feed["feed"]["id"], BASE);
    assert_eq!(feed["feed"]["title"], "Efus · Newsletter");
    assert!(
        feed["feed"]["updated"]
            .as_str()
            .is_some_and(|u| u.len() >= 20)
    );
    let links = feed["feed"]["links"].as_array().unwrap();
    assert!(links.contains(&serde_json::json!({"rel": "self", "href": format!("{BASE}feed.xml"), "type": "application/atom+xml"})), "{links:?}");
    assert!(
        links.contains(&serde_json::json!({"rel": "alternate", "href": BASE, "type": "text/html"})),
        "{links:?}"
    );

    let entries = feed["entries"].as_array().unwrap();
    let ids: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "https://news.example.net/archive/2020-09/",
            "https://news.example.net/archive/2020-07/",
            "https://news.example.net/archive/2020-06/"
        ]
    );
    let june = &entries[2];
    assert_eq!(
        june["title"],
        "Efus newsletter — June 2020: weekly webconferences and events"
    );
    assert_eq!(june["link"], "https://news.example.net/archive/2020-06/");
    assert_eq!(
        june["summary"],
        "Weekly webconferences, news from our projects and three online events in June."
    );
    assert!(june["updated"].as_str().is_some());
    assert!(
        june["published"]
            .as_str()
            .unwrap()
            .starts_with("2020-06-03")
    );
    let content = &june["content"][0];
    assert_eq!(content["type"], "text/html");
    assert_eq!(content["base"], "https://news.example.net/archive/2020-06/");
    // The whole issue, its images at their full addresses on the site.
    let value = content["value"].as_str().unwrap();
    assert!(value.contains("SOLIDIFY"), "{value}");
    assert!(
        value.contains("https://news.example.net/archive/2020-06/images/solidify.png"),
        "{value}"
    );
    assert!(!value.contains("nsubscribe") && !value.contains("{{"));
}

#[test]
fn a_second_publish_writes_nothing_and_an_edit_rewrites_only_its_issue() {
    let ws = three_issues();
    ws.run(&["publish"]).ok();
    let site = ws.path().join("site");
    let before = stamps(&site);

    let again = ws.run(&["publish"]).ok();
    for slug in ["2020-06", "2020-07", "2020-09"] {
        assert!(again.contains(&format!("unchanged {slug}")), "{again}");
    }
    assert!(again.contains("0 issues published, 3 unchanged"), "{again}");
    assert!(!again.contains("wrote"), "{again}");
    assert_eq!(
        stamps(&site),
        before,
        "a publish with no change wrote files"
    );

    // A new title for the French issue: its page and print version, and what lists it.
    let edited = FRENCH.replace("juillet 2020", "juillet et août 2020");
    ws.write("issues/2020-07.json", &edited);
    let out = ws.run(&["publish"]).ok();
    assert!(out.contains("published 2020-07"), "{out}");
    assert!(out.contains("unchanged 2020-06"), "{out}");
    assert!(out.contains("unchanged 2020-09"), "{out}");
    let after = stamps(&site);
    let changed: Vec<String> = after
        .iter()
        .filter(|(f, s)| before.get(*f) != Some(s))
        .map(|(f, _)| f.display().to_string())
        .collect();
    // The sitemap too, unless the two publishes fell in the same second (it says when pages
    // changed, to the second).
    let mut expected = vec![
        ".bulletin/content/2020-07.html",
        ".bulletin/manifest.json",
        "2020-07/index.html",
        "2020-07/print.html",
        "feed.xml",
        "index.html",
    ];
    if changed.iter().any(|c| c == "sitemap.xml") {
        expected.push("sitemap.xml");
    }
    assert_eq!(changed, expected);
    assert!(ws.read("site/index.html").contains("juillet et août 2020"));
    // The page keeps its address.
    assert!(
        ws.read("site/2020-07/index.html")
            .contains("juillet et août 2020")
    );
}

#[test]
fn an_issue_whose_file_is_gone_stays_until_prune() {
    let ws = three_issues();
    ws.run(&["publish"]).ok();
    std::fs::remove_file(ws.path().join("issues/2020-09.json")).unwrap();

    let out = ws.run(&["publish"]).ok();
    assert!(out.contains("kept      2020-09"), "{out}");
    assert!(
        out.contains("issues/2020-09.json is gone; --prune takes its page off"),
        "{out}"
    );
    assert!(ws.path().join("site/2020-09/index.html").is_file());
    assert!(ws.read("site/index.html").contains("September news"));
    assert!(ws.read("site/sitemap.xml").contains("2020-09/"));
    assert_links_resolve(&ws.path().join("site"));

    let out = ws.run(&["publish", "--prune"]).ok();
    assert!(
        out.contains("removed   2020-09  (issues/2020-09.json is gone)"),
        "{out}"
    );
    assert!(out.contains("1 removed"), "{out}");
    assert!(!ws.path().join("site/2020-09").exists());
    assert!(!ws.read("site/index.html").contains("September news"));
    assert!(!ws.read("site/sitemap.xml").contains("2020-09/"));
    assert!(!ws.read("site/feed.xml").contains("2020-09/"));
    assert!(ws.path().join("site/2020-07/index.html").is_file());
    assert_links_resolve(&ws.path().join("site"));
}

#[test]
fn an_issue_that_fails_is_reported_as_render_reports_it_and_keeps_its_page() {
    let ws = three_issues();
    ws.run(&["publish"]).ok();
    let good = ws.read("site/2020-07/index.html");
    ws.write(
        "issues/2020-07.json",
        &FRENCH.replace("\"date\": \"2020-07-01\"", "\"date\": \"2020-13-01\""),
    );
    let rendered = ws.run(&["render", "issues/2020-07.json"]);
    let said = rendered.bad_input();

    let run = ws.run(&["publish"]);
    let err = run.bad_input();
    assert!(
        err.contains(said.trim()),
        "render said:\n{said}\npublish said:\n{err}"
    );
    let out = run.stdout();
    assert!(
        out.contains("failed    2020-07  (its last published page stays)"),
        "{out}"
    );
    assert!(out.contains("unchanged 2020-06"), "{out}");
    assert!(
        out.contains("0 issues published, 2 unchanged, 1 failed"),
        "{out}"
    );
    assert_eq!(ws.read("site/2020-07/index.html"), good);
    assert!(ws.read("site/index.html").contains("juillet 2020"));
}

#[test]
fn the_list_of_issues_is_paged_past_fifty() {
    let ws = Workspace::empty();
    ws.write("bulletin.toml", ARCHIVE);
    let first = chrono::NaiveDate::from_ymd_opt(2001, 1, 1).unwrap();
    for i in 0..51 {
        let date = first + chrono::Days::new(i * 7);
        ws.write(
            &format!("issues/{date}.json"),
            &format!(
                r#"{{"title": "Issue {i}", "preheader": "Number {i}.", "date": "{date}",
                "sections": [{{"kind": "text", "body": "Issue number {i}."}}]}}"#
            ),
        );
    }
    let out = ws.run(&["publish"]).ok();
    assert!(out.contains("51 issues published"), "{out}");
    let site = ws.path().join("site");
    let one = Html::parse_document(&ws.read("site/index.html"));
    let two = Html::parse_document(&ws.read("site/page/2/index.html"));
    assert_eq!(select(&one, "main li").len(), 50);
    let last: Vec<String> = select(&two, "main li h2")
        .iter()
        .map(|h| h.text().collect::<String>().trim().to_string())
        .collect();
    assert_eq!(last, ["Issue 0"], "the oldest issue is on page 2");
    assert_eq!(
        select_in(&select(&one, "main li")[0], "h2").trim(),
        "Issue 50"
    );
    // Older from the first page, newer from the second, both files of the site.
    let older = select(&one, "a[rel=next]");
    assert_eq!(older[0].value().attr("href"), Some("page/2/index.html"));
    assert_eq!(older[0].text().collect::<String>(), "Older issues");
    let newer = select(&two, "a[rel=prev]");
    assert_eq!(newer[0].value().attr("href"), Some("../../index.html"));
    assert_eq!(newer[0].text().collect::<String>(), "Newer issues");
    assert!(select(&one, "a[rel=prev]").is_empty());
    assert!(select(&two, "a[rel=next]").is_empty());
    assert_links_resolve(&site);
    assert!(
        ws.read("site/sitemap.xml")
            .contains("<loc>https://news.example.net/archive/page/2/</loc>")
    );
    // The feed carries the newest ten.
    assert_eq!(ws.read("site/feed.xml").matches("<entry>").count(), 10);

    // One issue fewer, and the second page goes.
    std::fs::remove_file(ws.path().join("issues/2001-01-01.json")).unwrap();
    ws.run(&["publish", "--prune"]).ok();
    assert!(!site.join("page/2/index.html").exists());
    assert!(
        select(
            &Html::parse_document(&ws.read("site/index.html")),
            "a[rel=next]"
        )
        .is_empty()
    );
}

#[test]
fn without_the_sites_address_links_are_relative_and_the_feed_is_skipped() {
    let ws = Workspace::with_sample();
    ws.write("bulletin.toml", "[sender]\nfrom = \"not yet\"\n");
    ws.write("issues/2020-07.json", FRENCH);
    let run = ws.run(&["publish"]);
    let out = run.ok();
    assert!(out.contains("site/ is ready to upload"), "{out}");
    let err = run.stderr();
    assert!(err.contains("no feed.xml or sitemap.xml"), "{err}");
    assert!(
        err.contains("[archive]\n  base_url = \"https://example.org/newsletter/\""),
        "{err}"
    );
    let site = ws.path().join("site");
    assert!(!site.join("feed.xml").exists() && !site.join("sitemap.xml").exists());
    let page = Html::parse_document(&ws.read("site/2020-06/index.html"));
    assert!(select(&page, "link[rel=canonical]").is_empty());
    assert_eq!(meta(&page, "og:url"), None);
    assert!(assert_links_resolve(&site) > 20);
    assert_no_readers_data(&site);
    // The sample's own web_url is not the site: the page is.
    assert!(
        !ws.read("site/2020-06/index.html")
            .contains("View in browser")
    );
}

#[test]
fn named_issues_and_another_folder() {
    let ws = three_issues();
    let out = ws
        .run(&["publish", "issues/2020-07.json", "--out", "public"])
        .ok();
    assert!(
        out.contains("published 2020-07  public/2020-07/index.html"),
        "{out}"
    );
    assert!(!out.contains("2020-06"), "{out}");
    assert!(ws.path().join("public/2020-07/print.html").is_file());
    assert!(!ws.path().join("public/2020-06").exists());
    assert!(!ws.path().join("site").exists());

    // An issue file the site's own files would clash with is refused, by name.
    ws.write("issues/page.json", SEPTEMBER);
    let run = ws.run(&["publish", "issues/page.json"]);
    let err = run.bad_input();
    assert!(
        err.contains("issues/page.json: \"page\" cannot name a page of the site"),
        "{err}"
    );
}

#[test]
fn check_warns_when_the_site_does_not_have_the_images_yet() {
    let ws = Workspace::with_sample();
    ws.write("bulletin.toml", ARCHIVE);
    let report = ws
        .run(&["check", "--offline", "issues/2020-06.json"])
        .stdout();
    assert!(
        report.contains("warning: issues/2020-06.json: the email reads its images from the issue's page on the site, and site/2020-06/ does not have logo.png and 4 more yet: run bulletin publish, then upload site/ to https://news.example.net/archive/ (with --offline, check did not ask the site whether they are online)"),
        "{report}"
    );
    ws.run(&["publish"]).ok();
    let report = ws
        .run(&["check", "--offline", "issues/2020-06.json"])
        .stdout();
    assert!(!report.contains("run bulletin publish"), "{report}");
}

#[test]
fn the_help_teaches_publish() {
    let ws = Workspace::empty();
    let help = ws.run(&["publish", "--help"]).ok();
    for words in [
        "Publish the issues as a website",
        "--prune",
        "Examples:",
        "bulletin publish issues/2020-06.json",
        "base_url = \"https://example.org/newsletter/\"",
    ] {
        assert!(help.contains(words), "{words} not in\n{help}");
    }
    assert!(ws.run(&["--help"]).ok().contains("publish"));
}

/// The pages in a real Chromium at 375 and 600 px: nothing scrolls sideways and every image
/// loads.
#[test]
fn the_pages_fit_a_phone_and_show_their_images_in_chromium() {
    let ws = three_issues();
    ws.run(&["publish"]).ok();
    let site = ws.path().join("site");
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        for page in [
            "2020-06/index.html",
            "2020-07/index.html",
            "2020-06/print.html",
            "index.html",
        ] {
            c.goto(&format!("file://{}", site.join(page).display()))
                .await
                .unwrap();
            for width in [375, 600] {
                set_width(&c, width, 900).await;
                let wide = eval(
                    &c,
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                )
                .await;
                assert_eq!(wide, 0, "{page} scrolls sideways at {width} px");
                let broken = eval(
                    &c,
                    "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)",
                )
                .await;
                assert_eq!(broken, serde_json::json!([]), "{page} at {width} px");
            }
            let violations = serious_axe_violations(&c).await;
            assert!(violations.is_empty(), "{page}: {violations:#?}");
        }
        c.close().await.unwrap();
    });
}

/// Text as a PDF reader extracts it, one string a page, with the links' addresses the print
/// stylesheet writes after them taken out and the spacing made single: comparable with the
/// page's own text.
fn without_written_out_links(page: &str) -> String {
    let flat = page.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(flat.len());
    let mut rest = flat.as_str();
    while let Some(at) = ["(http", "(mailto:"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
    {
        out.push_str(rest[..at].trim_end());
        rest = match rest[at..].find(')') {
            Some(end) => &rest[at + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// An issue of twelve long stories, one a row: pages must break somewhere, and where they
/// fall in the text is left to the print stylesheet.
fn long_issue() -> String {
    let paragraph = "The network's members met online to compare what their cities learned \
        this spring, from keeping public spaces open and safe to supporting the people who \
        were hit hardest by the crisis, and agreed to share their notes before the autumn.";
    let items: Vec<String> = (1..=12)
        .map(|n| {
            format!(
                r#"{{ "title": "Story {n}: what the cities learned", "body": "{paragraph}\n\n{paragraph}\n\n{paragraph} Story {n} ends here.", "link": {{ "label": "Read more", "url": "https://example.org/stories/{n}" }} }}"#
            )
        })
        .collect();
    format!(
        r#"{{ "title": "October news", "date": "2020-10-07", "layout": "../layouts/efus",
  "sections": [ {{ "kind": "news", "heading": "Stories", "items": [{}] }} ] }}"#,
        items.join(",")
    )
}

#[test]
fn the_print_version_keeps_every_item_on_one_page() {
    let ws = three_issues();
    ws.write("issues/2020-10.json", &long_issue());
    ws.run(&["publish"]).ok();
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        let sample = ws.path().join("site/2020-06/print.html");
        let printed = assert_items_kept_whole(&c, &sample, 10).await;
        // The addresses are written out on paper.
        let all = printed
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            all.contains("Read more (https://example.org/news/weekly-webconferences)"),
            "{all}"
        );
        let long = ws.path().join("site/2020-10/print.html");
        assert_items_kept_whole(&c, &long, 12).await;
        c.close().await.unwrap();
    });
}

/// Prints the page at `print` in Chromium, finds each of its (at least `at_least`) items'
/// first and last words on one printed page, and returns the pages' text.
async fn assert_items_kept_whole(
    c: &fantoccini::Client,
    print: &Path,
    at_least: usize,
) -> Vec<String> {
    c.goto(&format!("file://{}", print.display()))
        .await
        .unwrap();
    // Each item's first and last words, as the page has them on paper (where the print
    // stylesheet leaves out the "Add to calendar" lines).
    let items = eval(
        c,
        "document.querySelectorAll('.calendar').forEach(e => e.style.display = 'none');
         return [...document.querySelectorAll('.item')]
           .filter(e => !e.querySelector('.item'))
           .map(e => e.innerText.split(/\\s+/).filter(Boolean))
           .filter(w => w.length >= 8)
           .map(w => [w.slice(0, 4).join(' '), w.slice(-4).join(' ')])",
    )
    .await;
    let items: Vec<(String, String)> = serde_json::from_value(items).unwrap();
    assert!(items.len() >= at_least, "{}: {items:?}", print.display());
    let printed = printed_pages(c).await;
    assert!(printed.len() >= 3, "{} pages", printed.len());
    let pages: Vec<String> = printed
        .iter()
        .map(|p| without_written_out_links(p))
        .collect();
    for (first, last) in &items {
        let start = pages.iter().position(|p| p.contains(first.as_str()));
        let start = start.unwrap_or_else(|| panic!("\"{first}\" is on no page: {pages:#?}"));
        let end = pages[start..]
            .iter()
            .position(|p| p.contains(last.as_str()))
            .map(|n| start + n)
            .unwrap_or_else(|| panic!("\"{last}\" is on no page from {start} on: {pages:#?}"));
        assert_eq!(
            start,
            end,
            "{}: the item from \"{first}\" to \"{last}\" runs from page {} to page {}",
            print.display(),
            start + 1,
            end + 1
        );
    }
    printed
}
