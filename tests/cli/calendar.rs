//! Calendar entries: the `.ics` files of an issue with events in three zones, each on both
//! sides of a daylight-saving change, read back by an independent parser (Python's
//! `icalendar`, installed by tests/setup.sh), and the "Add to calendar" links `bulletin render`
//! writes in the HTML and the text part, in the issue's language.
//!
//! `publish` (which will put the files on the site) is not here yet: the files come from the
//! library, as that stage will take them ([`bulletin::calendar::files_with`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Workspace, flat};

/// Events on both sides of the spring 2026 changes — Paris (CET → CEST on 29 March), New York
/// (EST → EDT on 8 March), Sydney (AEDT → AEST on 5 April) — one without an end, a title with
/// a comma and a semicolon, one with a merge field; and an agenda with a range of days and an
/// entry of one of the events.
fn issue(language: &str) -> String {
    format!(
        r#"{{
  "title": "Spring 2026",
  "date": "2026-03-01",
  "language": "{language}",
  "web_url": "https://example.org/newsletter/spring/",
  "sections": [
    {{"kind": "events", "heading": "Events", "items": [
      {{"title": "Paris before", "start": "2026-03-28 10:00 Europe/Paris", "end": "2026-03-28 11:00", "online": true,
        "registration": "https://example.org/r?event=1&lang=fr"}},
      {{"title": "Paris after; cities, safety", "start": "2026-03-29 10:00 Europe/Paris", "end": "2026-03-29 11:30",
        "venue": "Hôtel de Ville", "city": "Paris", "body": "Two *experts*, one question."}},
      {{"title": "New York before", "start": "2026-03-07 10:00 America/New_York"}},
      {{"title": "New York after", "start": "2026-03-08 10:00 America/New_York", "end": "2026-03-08 11:00"}},
      {{"title": "Sydney before", "start": "2026-04-04 10:00 Australia/Sydney", "end": "2026-04-04 11:00"}},
      {{"title": "Sydney after, for {{{{subscriber.first_name | default: \"members\"}}}}", "start": "2026-04-05 10:00 Australia/Sydney", "end": "2026-04-05 11:00"}}
    ]}},
    {{"kind": "agenda", "heading": "Agenda", "items": [
      {{"title": "Paris after; cities, safety", "type": "Meeting", "date": "2026-03-29"}},
      {{"title": "Summit", "type": "Conference", "date": "2026-04-20", "until": "2026-04-22", "place": "Nice, France",
        "info": "https://example.org/summit"}},
      {{"title": "Undated", "type": "Meeting"}}
    ]}}
  ]
}}"#
    )
}

/// Each event as the parser reads it: summary, DTSTART, DTEND (UTC instants, or days).
const EXPECTED: [(&str, &str, &str); 7] = [
    (
        "Paris before",
        "2026-03-28T09:00:00Z",
        "2026-03-28T10:00:00Z",
    ),
    (
        "Paris after; cities, safety",
        "2026-03-29T08:00:00Z",
        "2026-03-29T09:30:00Z",
    ),
    (
        "New York before",
        "2026-03-07T15:00:00Z",
        "2026-03-07T16:00:00Z",
    ),
    (
        "New York after",
        "2026-03-08T14:00:00Z",
        "2026-03-08T15:00:00Z",
    ),
    (
        "Sydney before",
        "2026-04-03T23:00:00Z",
        "2026-04-04T00:00:00Z",
    ),
    (
        "Sydney after, for members",
        "2026-04-05T00:00:00Z",
        "2026-04-05T01:00:00Z",
    ),
    ("Summit", "2026-04-20", "2026-04-23"),
];

/// Prints each VEVENT of the files named as one JSON line: its file, summary, start and end
/// (a UTC instant, or a day), location, description, and the errors the parser noted.
const READ_ICS: &str = r#"
import datetime, json, sys
from icalendar import Calendar

def when(event, key):
    value = event.decoded(key)
    if isinstance(value, datetime.datetime):
        assert value.tzinfo is not None, f"{key} is a floating time"
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()

for path in sys.argv[1:]:
    calendar = Calendar.from_ical(open(path, "rb").read())
    errors = [str(e) for c in calendar.walk() for e in c.errors]
    for event in calendar.walk("VEVENT"):
        print(json.dumps({
            "file": path.rsplit("/", 1)[-1],
            "uid": str(event["UID"]),
            "stamp": when(event, "DTSTAMP"),
            "summary": str(event["SUMMARY"]),
            "start": when(event, "DTSTART"),
            "end": when(event, "DTEND"),
            "location": str(event.get("LOCATION", "")),
            "description": str(event.get("DESCRIPTION", "")),
            "errors": errors,
        }))
"#;

/// The events of the `.ics` files at `paths`, as Python's icalendar reads them.
fn parsed(paths: &[PathBuf]) -> Vec<serde_json::Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READ_ICS)
        .args(paths)
        .output()
        .expect("python3 with icalendar: run `bash tests/setup.sh`");
    assert!(
        out.status.success(),
        "the parser failed (is icalendar installed? run `bash tests/setup.sh`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The issue written as `issue.json` in a new workspace, loaded as every command loads it.
fn loaded(
    ws: &Workspace,
    language: &str,
) -> (bulletin::issue::LoadedIssue, bulletin::layout::Layout) {
    let path = ws.write("issue.json", &issue(language));
    bulletin::edition::load(&path, None).expect("the issue loads")
}

/// Writes the calendar files under `dir` as the site will have them; returns their paths.
fn write(dir: &Path, files: &[bulletin::calendar::CalendarFile]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|f| {
            let path = dir.join(&f.name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.body).unwrap();
            path
        })
        .collect()
}

#[test]
fn every_ics_file_parses_and_gives_the_right_instants_across_daylight_saving_changes() {
    let ws = Workspace::empty();
    let (loaded, layout) = loaded(&ws, "en");
    let files = bulletin::calendar::files_with(&loaded, &layout);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "calendar/1-paris-before.ics",
            "calendar/2-paris-after-cities-safety.ics",
            "calendar/3-new-york-before.ics",
            "calendar/4-new-york-after.ics",
            "calendar/5-sydney-before.ics",
            "calendar/6-sydney-after-for-members.ics",
            "calendar/7-summit.ics",
            "calendar/agenda.ics",
        ],
        "one file per event (the agenda's entry of an event is that event), then the agenda"
    );
    // The built-in layout's words are the same here: the entry point without a layout agrees.
    assert_eq!(bulletin::calendar::files(&loaded), files);
    for f in &files {
        assert!(
            !f.body.contains("{{"),
            "{}: a merge field left in\n{}",
            f.name,
            f.body
        );
    }

    let paths = write(&ws.path().join("site/spring"), &files);
    let events = parsed(&paths);
    let (single, agenda): (Vec<_>, Vec<_>) = events.iter().partition(|e| e["file"] != "agenda.ics");
    assert_eq!(
        single.len(),
        EXPECTED.len(),
        "one event per file: {single:#?}"
    );
    assert_eq!(
        agenda.len(),
        EXPECTED.len(),
        "the agenda has each event once: {agenda:#?}"
    );
    for (events, which) in [(&single, "its own file"), (&agenda, "agenda.ics")] {
        for (event, (summary, start, end)) in events.iter().zip(EXPECTED) {
            assert_eq!(event["errors"], serde_json::json!([]), "{event:#}");
            assert_eq!(event["summary"], summary, "{which}: {event:#}");
            assert_eq!(event["start"], start, "{which}: {summary}");
            assert_eq!(event["end"], end, "{which}: {summary}");
            assert_eq!(event["stamp"], "2026-03-01T00:00:00Z", "the issue's date");
            let uid = event["uid"].as_str().unwrap();
            assert!(uid.ends_with("@example.org"), "{uid}");
        }
    }
    let uids: std::collections::BTreeSet<&str> =
        single.iter().map(|e| e["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), EXPECTED.len(), "every UID is its own");
    // Texts come back whole through the escaping.
    assert_eq!(single[0]["location"], "Online");
    assert_eq!(
        single[0]["description"],
        "Register: https://example.org/r?event=1&lang=fr"
    );
    assert_eq!(single[1]["location"], "Hôtel de Ville, Paris");
    assert_eq!(single[1]["description"], "Two experts, one question.");
    assert_eq!(single[6]["location"], "Nice, France");

    // The same issue writes the same files.
    assert_eq!(bulletin::calendar::files_with(&loaded, &layout), files);
}

/// `&amp;` and `&#x3D;` (Handlebars writes `=` so) as the browser reads them in an href.
fn unescaped(html: &str) -> String {
    html.replace("&#x3D;", "=").replace("&amp;", "&")
}

#[test]
fn render_shows_google_and_outlook_links_with_utc_times_in_html_and_text() {
    let ws = Workspace::empty();
    ws.write("issue.json", &issue("en"));
    ws.run(&["render", "issue.json"]).ok();
    let html = unescaped(&ws.read("out/issue.html"));
    let text = ws.read("out/issue.txt");
    for part in [&html, &text] {
        // Paris, winter then summer time; Sydney's summer time ends.
        for wanted in [
            "https://calendar.google.com/calendar/render?action=TEMPLATE&text=Paris%20before&dates=20260328T090000Z/20260328T100000Z&details=Register:%20https://example.org/r%3Fevent%3D1%26lang%3Dfr&location=Online",
            "&dates=20260329T080000Z/20260329T093000Z&",
            "&dates=20260403T230000Z/20260404T000000Z",
            "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose&rru=addevent&subject=New%20York%20after&startdt=2026-03-08T14:00:00Z&enddt=2026-03-08T15:00:00Z",
            "&startdt=2026-03-07T15:00:00Z&enddt=2026-03-07T16:00:00Z",
            // A merge field in a title is its fallback: no reader's name goes to Google.
            "&text=Sydney%20after%2C%20for%20members&dates=20260405T000000Z/20260405T010000Z",
            // The agenda's range is whole days.
            "&dates=20260420/20260423&",
            "&startdt=2026-04-20&enddt=2026-04-23&allday=true&",
        ] {
            assert!(part.contains(wanted), "{wanted} missing");
        }
    }
    assert!(html.contains("Add to calendar: <a href=\"https://calendar.google.com/"));
    assert!(text.contains("Add to calendar:\n- Google:\n  https://calendar.google.com/"));
    // Without a site (no [archive]), no .ics link.
    assert!(!html.contains(".ics") && !text.contains(".ics"));
    // The agenda's entry of an event has the event's links; the text part writes them once.
    assert_eq!(html.matches("&dates=20260329T080000Z/").count(), 2);
    assert_eq!(text.matches("&dates=20260329T080000Z/").count(), 1);
}

#[test]
fn with_a_site_each_event_links_its_ics_file_where_the_files_go() {
    let ws = Workspace::empty();
    ws.write(
        "bulletin.toml",
        "[archive]\nbase_url = \"https://example.org/newsletter/\"\n",
    );
    let (loaded, layout) = loaded(&ws, "en");
    ws.run(&["render", "issue.json"]).ok();
    let html = ws.read("out/issue.html");
    let text = ws.read("out/issue.txt");
    // The page of `issue.json` is https://example.org/newsletter/issue/; each event links its
    // file there, by the name the files get.
    for file in bulletin::calendar::files_with(&loaded, &layout) {
        if file.name == bulletin::calendar::AGENDA {
            continue;
        }
        let url = format!("https://example.org/newsletter/issue/{}", file.name);
        assert!(
            html.contains(&format!("<a href=\"{url}\"")),
            "{url} not linked in the HTML"
        );
        assert!(
            flat(&text).contains(&format!("- Calendar file (.ics): {url} ")),
            "{url} not in the text"
        );
    }

    // The links bulletin makes are not the writer's to check: `check` does not ask for them
    // (the .ics files are on the site only once it is published).
    let edition = bulletin::edition::prepare(&bulletin::edition::Options {
        issue: ws.path().join("issue.json"),
        layout: None,
        images: bulletin::edition::Images::Sent,
        archive: Some(bulletin::config::Archive::new(
            url::Url::parse("https://example.org/newsletter/").unwrap(),
        )),
    })
    .unwrap();
    let own = bulletin::check::own_html(&edition.rendered);
    assert!(own.contains("calendar.google.com") && own.contains(".ics"));
    let targets = bulletin::check::links::targets(&edition.issue, &edition.layout, &own);
    let urls: Vec<&str> = targets.iter().map(|t| t.url.as_str()).collect();
    assert!(urls.contains(&"https://example.org/summit"), "{urls:?}");
    for url in &urls {
        assert!(
            !url.contains("calendar.google.com")
                && !url.contains("outlook.live.com")
                && !url.ends_with(".ics"),
            "{url} would be checked"
        );
    }
}

#[test]
fn a_french_issue_says_add_to_calendar_in_french() {
    let ws = Workspace::empty();
    ws.write(
        "bulletin.toml",
        "[archive]\nbase_url = \"https://example.org/newsletter/\"\n",
    );
    ws.write("issue.json", &issue("fr"));
    ws.run(&["render", "issue.json"]).ok();
    let html = ws.read("out/issue.html");
    let text = ws.read("out/issue.txt");
    assert!(
        html.contains("Ajouter à l’agenda\u{202F}: <a href="),
        "not in the HTML"
    );
    assert!(
        html.contains(">Fichier d’agenda (.ics)</a>"),
        "not in the HTML"
    );
    assert!(
        text.contains("Ajouter à l’agenda\u{202F}:\n- Google\u{202F}:"),
        "not in the text"
    );
    assert!(!html.contains("Add to calendar") && !text.contains("Add to calendar"));
    // The calendars get the French words too.
    assert!(
        unescaped(&html).contains("&details=S%E2%80%99inscrire%E2%80%AF:%20https://example.org/r"),
        "not in the HTML"
    );
    assert!(unescaped(&html).contains("&location=En%20ligne"));
}

#[test]
fn a_layout_without_the_new_words_falls_back_to_english() {
    // A layout made before calendar entries: its own labels.toml has no add_to_calendar, and
    // its theme translates only some words. The line is still there, in English.
    let ws = Workspace::empty();
    ws.write(
        "layouts/default/labels.toml",
        "[sw]\nregister = \"Jiandikishe\"\n",
    );
    ws.write("issue.json", &issue("sw"));
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let html = ws.read("out/issue.html");
    assert!(html.contains("Jiandikishe"));
    assert!(
        html.contains("Add to calendar: <a href="),
        "not in the HTML"
    );
}
