//! `bulletin new`: the next issue from the last one, what it keeps and drops, and the
//! files it refuses to replace.

use serde_json::Value;

use crate::common::Workspace;

fn json(ws: &Workspace, rel: &str) -> Value {
    serde_json::from_str(&ws.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn titles(section: &Value) -> Vec<&str> {
    section["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect()
}

fn sections_of<'a>(issue: &'a Value, kind: &str) -> Vec<&'a Value> {
    issue["sections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == kind)
        .collect()
}

#[test]
fn new_from_the_sample_keeps_what_is_to_come() {
    let ws = Workspace::with_sample();
    let run = ws.run(&[
        "new",
        "--date",
        "2020-06-20",
        "--from",
        "issues/2020-06.json",
    ]);
    // 2020-06 exists, so the day is added.
    assert_eq!(run.ok(), "issues/2020-06-20.json\n");
    assert!(
        run.stderr().contains(
            "kept 2 events and 4 agenda entries; dropped 1 past event and 1 past agenda entry"
        ),
        "{}",
        run.stderr()
    );

    let old = json(&ws, "issues/2020-06.json");
    let new = json(&ws, "issues/2020-06-20.json");
    assert_eq!(new["$schema"], "../schema/issue.schema.json");
    assert_eq!(new["date"], "2020-06-20");
    assert_eq!(new["title"], "TODO: subject line");
    assert_eq!(
        new["preheader"],
        "TODO: one sentence shown after the subject in the inbox"
    );
    assert_eq!(new["web_url"], "https://example.org/newsletter/2020-06-20");
    assert_eq!(new["layout"], old["layout"]);
    assert_eq!(new["language"], old["language"]);

    // Same sections, in order, with their headings and columns (1 when not written).
    let shape = |issue: &Value| -> Vec<(Value, Value, u64)> {
        issue["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let columns = s["columns"].as_u64().unwrap_or(1);
                (s["kind"].clone(), s["heading"].clone(), columns)
            })
            .collect()
    };
    assert_eq!(shape(&new), shape(&old));

    let text = sections_of(&new, "text")[0];
    assert_eq!(
        text["body"],
        "Dear {{subscriber.first_name | default: \"member\"}},\n\nTODO: introduce this issue."
    );
    let news = sections_of(&new, "news");
    assert_eq!(news.len(), 4);
    for section in news {
        assert_eq!(
            section["items"],
            serde_json::json!([{
                "title": "TODO: title",
                "body": "TODO: what happened, in two or three sentences.",
                "link": {"label": "Read more", "url": "https://example.org/TODO"}
            }])
        );
    }
    let events = sections_of(&new, "events")[0];
    assert_eq!(
        titles(events),
        [
            "LOUD webinar n°4: measuring and evaluating an alternative discourse campaign",
            "Technologies based on artificial intelligence in urban security: predictive policing",
        ]
    );
    // Kept events are kept as they were.
    assert_eq!(
        events["items"][0],
        sections_of(&old, "events")[0]["items"][1]
    );
    let agenda = sections_of(&new, "agenda")[0];
    assert_eq!(
        titles(agenda),
        [
            "Coordination meeting of the partnership on public spaces of the European Urban Agenda",
            "LOUD webinar n°4: measuring and evaluating an alternative discourse campaign",
            "Technologies based on artificial intelligence in urban security: predictive policing",
            "Security, Democracy and Cities",
        ]
    );
    assert_eq!(sections_of(&new, "about"), sections_of(&old, "about"));

    ws.run(&["render", "issues/2020-06-20.json"]).ok();
    let html = ws.read("out/2020-06-20.html");
    assert!(html.contains("TODO: title"));
    assert!(html.contains("Security, Democracy and Cities"));
    assert!(!html.contains("Emergency planning"));
}

#[test]
fn new_starts_from_the_latest_issue_by_date() {
    let ws = Workspace::with_sample();
    // Named to sort before the sample, dated after it.
    let later = ws
        .read("issues/2020-06.json")
        .replace("\"date\": \"2020-06-03\"", "\"date\": \"2020-07-01\"")
        .replace("\"About Efus\"", "\"About Efus, July\"");
    ws.write("issues/0-july.json", &later);
    let run = ws.run(&["new", "--date", "2020-08-05"]);
    assert_eq!(run.ok(), "issues/2020-08.json\n");
    let new = json(&ws, "issues/2020-08.json");
    assert_eq!(sections_of(&new, "about")[0]["heading"], "About Efus, July");
    assert_eq!(new["date"], "2020-08-05");
    // The old slug is not in the web address: it is kept.
    assert_eq!(new["web_url"], "https://example.org/newsletter/2020-06");
    // Everything but the November conference and the undated meeting is over.
    assert!(
        run.stderr().contains(
            "kept 0 events and 2 agenda entries; dropped 3 past events and 3 past agenda entries"
        ),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("warning: the section \"Upcoming events\" has nothing left to come"),
        "{}",
        run.stderr()
    );
    ws.run(&["render", "issues/2020-08.json"]).ok();
}

#[test]
fn new_refuses_to_replace_an_issue() {
    let ws = Workspace::with_sample();
    let original = ws.read("issues/2020-06.json");
    let err = ws
        .run(&["new", "--date", "2020-07-01", "2020-06"])
        .bad_input();
    assert!(
        err.contains("error: issues/2020-06.json already exists"),
        "{err}"
    );
    assert_eq!(ws.read("issues/2020-06.json"), original);

    ws.run(&["new", "--date", "2020-06-20"]).ok();
    let again = ws.run(&["new", "--date", "2020-06-20"]).bad_input();
    assert!(
        again.contains("error: issues/2020-06-20.json already exists"),
        "{again}"
    );
}

#[test]
fn new_reports_a_latest_issue_that_does_not_load() {
    let ws = Workspace::with_sample();
    let broken = ws
        .read("issues/2020-06.json")
        .replace("\"date\": \"2020-06-03\"", "\"date\": \"2020-07-01\"")
        .replace("Europe/Paris\"", "Europe/Pariss\"");
    ws.write("issues/2020-07.json", &broken);
    let err = ws.run(&["new", "--date", "2020-08-01"]).bad_input();
    assert!(err.contains("error: issues/2020-07.json:"), "{err}");
    assert!(
        err.contains("\"Europe/Pariss\" is not an IANA time zone"),
        "{err}"
    );
    assert!(!ws.path().join("issues/2020-08.json").exists());
}

#[test]
fn a_bad_date_or_slug_is_a_usage_error() {
    let ws = Workspace::with_sample();
    let run = ws.run(&["new", "--date", "2020-13-01"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("YYYY-MM-DD"), "{}", run.stderr());
    let run = ws.run(&["new", "--date", "2020-07-01", "../elsewhere"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
}

#[test]
fn new_without_issues_says_what_to_do() {
    let ws = Workspace::empty();
    let err = ws.run(&["new"]).bad_input();
    assert!(err.contains("bulletin init"), "{err}");
}
