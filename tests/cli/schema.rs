//! The published JSON Schema stays the one generated from the issue types.

use crate::common::{Workspace, repo};

#[test]
fn checked_in_schema_equals_the_generated_one() {
    let printed = Workspace::empty().run(&["schema"]).ok();
    let checked_in = std::fs::read_to_string(repo().join(bulletin::issue::SCHEMA_PATH)).unwrap();
    assert!(
        printed == checked_in,
        "schema/issue.schema.json is out of date: run `cargo run -- schema > schema/issue.schema.json`"
    );
}

#[test]
fn schema_knows_the_issue_fields() {
    let schema: serde_json::Value =
        serde_json::from_str(&Workspace::empty().run(&["schema"]).ok()).unwrap();
    let required = schema["required"].as_array().unwrap();
    for field in ["title", "date", "sections"] {
        assert!(required.iter().any(|r| r == field), "{field} not required");
    }
    let item = &schema["$defs"]["Item"]["properties"];
    for field in [
        "title",
        "image",
        "body_file",
        "start",
        "registration",
        "until",
        "info",
    ] {
        assert!(item.get(field).is_some(), "Item has no {field}");
    }
    assert_eq!(
        schema["$defs"]["Image"]["required"],
        serde_json::json!(["src", "alt"])
    );
}

#[test]
fn the_sample_names_the_schema() {
    let sample: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("issues/2020-06.json")).unwrap())
            .unwrap();
    let named = sample["$schema"].as_str().unwrap();
    assert!(
        repo().join("issues").join(named).is_file(),
        "{named} does not resolve"
    );
}
