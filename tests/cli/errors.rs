//! Bad input: one clear message naming the file, line:column and JSON path; exit 1; and no
//! output file written.

use crate::common::{Workspace, issue_with};

/// Writes `issue` as `issue.json`, renders it, expects exit 1 and no output; returns stderr.
fn fails(issue: &str) -> String {
    let ws = Workspace::empty();
    ws.write("issue.json", issue);
    let err = ws.run(&["render", "issue.json"]).bad_input();
    assert!(
        !ws.path().join("out/issue.html").exists(),
        "output written despite the error"
    );
    err
}

#[test]
fn invalid_json_names_line_and_column() {
    let err = fails("{\n  \"title\": \"A\",\n  \"date\": \"2020-06-03\"\n  \"sections\": []\n}");
    assert!(
        err.starts_with("error: issue.json:4:3: invalid JSON: expected `,` or `}`"),
        "{err}"
    );
}

#[test]
fn missing_field_names_the_path() {
    let err = fails(&issue_with(
        r#"{"kind": "news", "items": [{"title": "T", "image": {"src": "https://example.org/a.png"}}]}"#,
    ));
    assert!(
        err.contains("issue.json:5:52: sections[0].items[0].image: the image has no \"alt\" text"),
        "{err}"
    );
    let err = fails("{\"date\": \"2020-06-03\", \"sections\": []}");
    assert!(
        err.contains("issue.json:1:1: missing field \"title\""),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_path() {
    let err = fails(&issue_with(r#"{"kind": "news", "columns": "two"}"#));
    assert!(
        err.contains(
            "issue.json:5:29: sections[0].columns: invalid type: string \"two\", expected u8"
        ),
        "{err}"
    );
}

#[test]
fn unknown_field_is_refused() {
    let err = fails(&issue_with(
        r#"{"kind": "news", "items": [{"titel": "T"}]}"#,
    ));
    assert!(err.contains("issue.json:5:38: sections[0].items[0].titel: unknown field \"titel\", expected one of \"title\","), "{err}");
}

#[test]
fn invalid_date_names_the_path() {
    let err = fails(&issue_with(
        r#"{"kind": "agenda", "items": [{"title": "T", "date": "2020-02-30"}]}"#,
    ));
    assert!(err.contains("issue.json:5:"), "{err}");
    assert!(
        err.contains("sections[0].items[0].date: \"2020-02-30\" is not a date: February 2020 has no day 30; write YYYY-MM-DD — the nearest valid date is \"2020-02-29\""),
        "{err}"
    );
    let err = fails(&issue_with("").replace("2020-06-03", "June 3rd"));
    assert!(
        err.contains("issue.json:3:11: date: \"June 3rd\" is not a date; write it as YYYY-MM-DD"),
        "{err}"
    );
}

#[test]
fn invalid_time_zone_names_the_path_and_a_fix() {
    let err = fails(&issue_with(
        r#"{"kind": "events", "items": [{"title": "T", "start": "2020-06-04 10:00 Europe/Pariss", "end": "2020-06-04 11:30"}]}"#,
    ));
    assert!(
        err.contains("sections[0].items[0].start: \"Europe/Pariss\" is not an IANA time zone; use a name such as \"Europe/Paris\""),
        "{err}"
    );
    // The start is the one problem: its end is not said to lack one.
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
}

#[test]
fn time_skipped_by_daylight_saving_is_refused() {
    let err = fails(&issue_with(
        r#"{"kind": "events", "items": [{"title": "T", "start": "2020-03-29 02:30 Europe/Paris"}]}"#,
    ));
    assert!(
        err.contains(
            "2020-03-29 02:30 does not exist in Europe/Paris (clocks go forward that night)"
        ),
        "{err}"
    );
}

#[test]
fn image_without_alt_text_is_refused() {
    let err = fails(&issue_with(
        r#"{"kind": "news", "items": [{"title": "T", "image": {"src": "https://example.org/a.png", "alt": " "}}]}"#,
    ));
    assert!(
        err.contains("sections[0].items[0].image.alt: the image has empty alt text"),
        "{err}"
    );
}

#[test]
fn unknown_section_kind_lists_the_layout_kinds() {
    let err = fails(&issue_with(
        "    {\"kind\": \"news\"},\n    {\"kind\": \"newz\"}",
    ));
    assert!(
        err.contains("issue.json:6:14: sections[1].kind: unknown section kind \"newz\"; the layout provides: about, agenda, events, news, text"),
        "{err}"
    );
}

#[test]
fn missing_body_file_names_the_file() {
    let err = fails(&issue_with(r#"{"kind": "text", "body_file": "nope.md"}"#));
    assert!(
        err.contains(
            "sections[0].body_file: cannot read body file ./nope.md: no such file or folder"
        ),
        "{err}"
    );
}

#[test]
fn missing_local_image_names_the_file() {
    let err = fails(&issue_with(
        r#"{"kind": "news", "items": [{"image": {"src": "img/x.png", "alt": "X"}}]}"#,
    ));
    assert!(
        err.contains("sections[0].items[0].image.src: image file ./img/x.png not found"),
        "{err}"
    );
}

#[test]
fn malformed_url_is_refused() {
    let err = fails(&issue_with(
        r#"{"kind": "about", "cta": {"label": "Join", "url": "example.org/join"}}"#,
    ));
    assert!(
        err.contains("sections[0].cta.url: \"example.org/join\" is not a valid URL"),
        "{err}"
    );
}

#[test]
fn bad_merge_field_is_refused() {
    let err = fails(&issue_with(r#"{"kind": "text", "body": "Dear {{name}},"}"#));
    assert!(
        err.contains("sections[0].body: unknown merge field in \"{{name}}\""),
        "{err}"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let err = fails(&issue_with(
        r#"{"kind": "text", "body_file": "a.md"}, {"kind": "text", "body_file": "b.md"}"#,
    ));
    assert!(
        err.contains("sections[0].body_file") && err.contains("sections[1].body_file"),
        "{err}"
    );
}

/// A workspace with a one-section issue and a layout folder holding one file.
fn with_layout_file(rel: &str, contents: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "Hi"}"#),
    );
    ws.write(&format!("layout/{rel}"), contents);
    ws
}

#[test]
fn handlebars_error_names_template_file_and_line() {
    let ws = with_layout_file(
        "sections/text.mjml.hbs",
        "<mj-section>\n<mj-column>\n{{#if body_html}}\n</mj-column>\n",
    );
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout"])
        .bad_input();
    assert!(err.contains("layout/sections/text.mjml.hbs:"), "{err}");
    assert!(
        err.contains("template error: invalid Handlebars syntax; look for a {{#if}}"),
        "{err}"
    );
}

#[test]
fn invalid_mjml_is_reported_with_its_line() {
    let ws = with_layout_file(
        "sections/text.mjml.hbs",
        "<mj-section><mj-column><mj-text>{{{body_html}}}</mj-column></mj-section>\n",
    );
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout"])
        .bad_input();
    assert!(
        err.contains("error: the layout produced invalid MJML at line"),
        "{err}"
    );
    assert!(
        err.contains("hint: add --mjml to write the generated MJML"),
        "{err}"
    );
    // With --mjml, the generated document is kept for the person fixing the layout.
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout", "--mjml"])
        .bad_input();
    assert!(
        err.contains("hint: the generated MJML is in out/issue.mjml"),
        "{err}"
    );
    assert!(ws.read("out/issue.mjml").contains("<mj-text><p"));
    assert!(!ws.path().join("out/issue.html").exists());
}

#[test]
fn invalid_theme_names_file_and_line() {
    let ws = with_layout_file("theme.toml", "[colors]\ntext = #333\n");
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout"])
        .bad_input();
    assert!(
        err.contains("layout/theme.toml:2:8: invalid theme"),
        "{err}"
    );
}

#[test]
fn missing_issue_file_is_bad_input() {
    let err = Workspace::empty().run(&["render", "nope.json"]).bad_input();
    assert_eq!(
        err.trim(),
        "error: cannot read issue file nope.json: no such file or folder"
    );
}

#[test]
fn a_failed_render_leaves_the_previous_output_alone() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "First"}"#),
    );
    ws.run(&["render", "issue.json"]).ok();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body_file": "missing.md"}"#),
    );
    ws.run(&["render", "issue.json"]).bad_input();
    assert!(ws.read("out/issue.html").contains("First"));
    let leftovers: Vec<_> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn usage_errors_exit_2() {
    let ws = Workspace::empty();
    assert_eq!(ws.run(&["render"]).code(), 2);
    assert_eq!(ws.run(&["frobnicate"]).code(), 2);
    assert_eq!(
        ws.run(&["render", "x.json", "--subscriber", "novalue"])
            .code(),
        2
    );
    assert_eq!(ws.run(&["--help"]).code(), 0);
}

/// Issue 12: every problem after the JSON parses is reported in one run, in file order, each
/// once, with file:line:col; a file saved with a byte-order mark (Notepad) is read.
#[test]
fn every_problem_is_reported_in_one_run_in_file_order() {
    let issue = "\u{feff}{
  \"title\": \"Eight problems\",
  \"date\": \"2020-13-40\",
  \"langage\": \"fr\",
  \"web_url\": \"efus.eu\",
  \"sections\": [
    {\"kind\": \"news\", \"columns\": 3, \"items\": [
      {\"titel\": \"T\", \"image\": {\"src\": \"images/missing.png\", \"alt\": \" \"}},
      {\"title\": \"E\", \"start\": \"2020-06-04 10:00 Europe/Pariss\"}
    ]},
    {\"kind\": \"about\", \"bullets\": [\"a\", 3], \"cta\": {\"label\": \"Join\", \"url\": \"ftp://x\"}},
    {\"kind\": \"agenda\", \"items\": [{\"title\": \"A\", \"date\": \"2020-06-10\", \"until\": \"2020-06-01\", \"online\": \"yes\"}]}
  ]
}";
    let err = fails(issue);
    let expected = [
        "issue.json:3:11: date: \"2020-13-40\" is not a date: there is no month 13",
        "issue.json:4:14: langage: unknown field \"langage\"",
        "issue.json:5:14: web_url: \"efus.eu\" is not a valid URL",
        "issue.json:7:33: sections[0].columns: 3 columns",
        "issue.json:8:17: sections[0].items[0].titel: unknown field \"titel\"",
        "issue.json:8:39: sections[0].items[0].image.src: image file",
        "issue.json:8:68: sections[0].items[0].image.alt: the image has empty alt text",
        "issue.json:9:31: sections[0].items[1].start: \"Europe/Pariss\" is not an IANA time zone",
        "issue.json:11:40: sections[1].bullets[1]: invalid type: integer",
        "issue.json:11:76: sections[1].cta.url: \"ftp://x\" uses the scheme \"ftp\"",
        "issue.json:12:80: sections[2].items[0].until: the range ends (2020-06-01) before it starts (2020-06-10)",
        "issue.json:12:104: sections[2].items[0].online: invalid type: string \"yes\", expected a boolean",
    ];
    let mut at = 0;
    for e in expected {
        let found = err[at..]
            .find(e)
            .unwrap_or_else(|| panic!("{e:?} missing or out of order in\n{err}"));
        at += found + e.len();
    }
    assert_eq!(err.matches("error: ").count(), expected.len(), "{err}");
}
