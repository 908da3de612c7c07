//! A layout's own section kind with its own fields (issue 12): declared in the layout's
//! `fields.toml`, checked in the issue, given to the templates, offered by the schema.

use crate::common::{Workspace, flat};

const FIELDS: &str = r#"
[kinds.jobs.section]
posted = { type = "date", description = "When the offers were collected" }

[kinds.jobs.items]
company = { type = "string", required = true }
role = { type = "string", required = true }
remote = { type = "bool" }
closes = "date"
url = { type = "url", required = true }
"#;

const MJML: &str = r#"{{> heading}}
<mj-section><mj-column><mj-text>
<p class="posted">Collected {{posted}} ({{posted_iso}})</p>
{{#each items}}<p><a href="{{url}}">{{role}} at {{company}}</a>{{#if remote}} (remote){{/if}}{{#if closes}}, closes {{closes}}{{/if}}</p>
{{/each}}
</mj-text></mj-column></mj-section>
"#;

const TEXT: &str = r#"{{> heading}}
Collected {{posted}}
{{#each items}}
- {{role}} at {{company}}{{#if remote}} (remote){{/if}}{{#if closes}}, closes {{closes}}{{/if}}: {{url}}
{{/each}}
"#;

fn workspace(items: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write("layouts/dev/fields.toml", FIELDS);
    ws.write("layouts/dev/sections/jobs.mjml.hbs", MJML);
    ws.write("layouts/dev/sections/jobs.txt.hbs", TEXT);
    ws.write(
        "issue.json",
        &format!(
            r#"{{
  "title": "Dev weekly",
  "date": "2020-06-03",
  "language": "fr",
  "layout": "layouts/dev",
  "sections": [
    {{"kind": "jobs", "heading": "Jobs", "posted": "2020-06-01", "items": [
{items}
    ]}}
  ]
}}"#
        ),
    );
    ws
}

const GOOD: &str = r#"      {"company": "Acme", "role": "Rust engineer", "remote": true, "closes": "2020-07-14", "url": "https://acme.example/jobs/1"},
      {"company": "Initech", "role": "SRE", "url": "https://initech.example/sre"}"#;

#[test]
fn declared_fields_reach_the_html_and_the_text() {
    let ws = workspace(GOOD);
    ws.run(&["render", "issue.json"]).ok();
    let html = ws.read("out/issue.html");
    assert!(
        html.contains(r#"<a href="https://acme.example/jobs/1">Rust engineer at Acme</a> (remote), closes 14 juillet 2020"#),
        "{html}"
    );
    assert!(
        html.contains("Collected 1 juin 2020 (2020-06-01)"),
        "{html}"
    );
    assert!(html.contains("SRE at Initech</a></p>"), "{html}");
    let text = flat(&ws.read("out/issue.txt"));
    assert!(
        text.contains(
            "- Rust engineer at Acme (remote), closes 14 juillet 2020: https://acme.example/jobs/1"
        ),
        "{text}"
    );
    assert!(
        text.contains("- SRE at Initech: https://initech.example/sre"),
        "{text}"
    );
}

#[test]
fn a_misspelt_field_names_the_layouts_fields_and_their_file() {
    let ws = workspace(
        r#"      {"compnay": "Acme", "company": "Acme", "role": "Dev", "url": "https://acme.example/"}"#,
    );
    let err = ws.run(&["render", "issue.json"]).bad_input();
    assert!(
        err.contains("sections[0].items[0].compnay: unknown field \"compnay\""),
        "{err}"
    );
    assert!(
        err.contains("the layout declares for a \"jobs\" item: \"closes\" (date), \"company\" (string), \"remote\" (bool), \"role\" (string), \"url\" (url)"),
        "{err}"
    );
    assert!(err.contains("fields.toml"), "{err}");
}

#[test]
fn declared_fields_are_typed_and_required() {
    let ws = workspace(
        r#"      {"company": "Acme", "remote": "yes", "closes": "2020-02-30", "url": "acme"}"#,
    );
    let err = ws.run(&["render", "issue.json"]).bad_input();
    for expected in [
        "sections[0].items[0]: missing field \"role\" (string), which the layout requires",
        "sections[0].items[0].remote: expected true or false, found a string",
        "sections[0].items[0].closes: \"2020-02-30\" is not a date",
        "sections[0].items[0].url: \"acme\" is not a valid URL",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn the_schema_completes_declared_fields() {
    let ws = workspace(GOOD);
    // The workspace's layout by default…
    ws.write("layouts/default/fields.toml", FIELDS);
    ws.write("layouts/default/sections/jobs.mjml.hbs", MJML);
    ws.write("layouts/default/sections/jobs.txt.hbs", TEXT);
    for args in [&["schema"][..], &["schema", "--layout", "layouts/dev"][..]] {
        let schema: serde_json::Value = serde_json::from_str(&ws.run(args).ok()).unwrap();
        let item = &schema["$defs"]["Item"]["properties"];
        assert_eq!(item["company"]["type"], "string", "{args:?}");
        assert_eq!(item["remote"]["type"], "boolean");
        assert_eq!(item["closes"]["format"], "date");
        assert_eq!(item["url"]["format"], "uri");
        assert_eq!(
            schema["$defs"]["Section"]["properties"]["posted"]["format"],
            "date"
        );
        let rules = schema["$defs"]["Section"]["allOf"].to_string();
        assert!(rules.contains(r#""const":"jobs""#), "{rules}");
        assert!(
            rules.contains(r#""required":["company","role","url"]"#),
            "{rules}"
        );
    }
    // …and without a layout, the built-in fields alone.
    let plain: serde_json::Value =
        serde_json::from_str(&Workspace::empty().run(&["schema"]).ok()).unwrap();
    assert!(
        plain["$defs"]["Item"]["properties"]
            .get("company")
            .is_none()
    );
}

#[test]
fn a_layout_declaring_fields_for_a_kind_it_cannot_draw_is_refused() {
    let ws = workspace(GOOD);
    ws.write(
        "layouts/dev/fields.toml",
        "[kinds.job.items]\ncompany = \"strin\"\n",
    );
    let err = ws.run(&["render", "issue.json"]).bad_input();
    assert!(err.contains("unknown type \"strin\""), "{err}");
    ws.write(
        "layouts/dev/fields.toml",
        "[kinds.job.items]\ncompany = \"string\"\n",
    );
    let err = ws.run(&["render", "issue.json"]).bad_input();
    assert!(
        err.contains("section kind \"job\", which the layout does not draw"),
        "{err}"
    );
}
