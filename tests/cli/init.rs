//! `bulletin init`: a workspace from nothing, that renders at once; `--layout-copy`; and a
//! folder that already holds one of its files, which is left exactly as it was.

use std::path::Path;

use crate::common::{Workspace, flat};

/// What each section of the starter issue says, as a reader finds it in both parts.
const STARTER_FACTS: &[&str] = &[
    // text, with the greeting's merge field filled by render's sample subscriber
    "Dear Alex,",
    "Open with two or three sentences on what this issue brings.",
    // news: two columns, one with the placeholder image
    "A story with an image",
    "A story without an image",
    "Two columns sit side by side on a computer",
    // events: online and in a place, times spelled out
    "The name of an online event",
    "10:00–11:30",
    "Registration is free",
    "The name of an event in a place",
    "Name of the venue",
    // agenda: a day, a range and an undated entry
    "An event on one day",
    "An event over several days",
    "City, Country",
    "An event whose date is not fixed yet",
    "Date to be confirmed",
    // about
    "Say who you are in two sentences.",
    "What members get, one point per bullet",
    "Become a member",
];

/// The files below `dir`, relative and sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
    out.sort();
    out
}

/// The starter issue's path among the lines init printed.
fn starter_issue(stdout: &str, prefix: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}issues/")) && l.ends_with(".json"))
        .unwrap_or_else(|| panic!("no issue listed in:\n{stdout}"))
        .to_string()
}

#[test]
fn init_makes_a_workspace_that_renders_every_section_kind() {
    let ws = Workspace::empty();
    let run = ws.run(&["init"]);
    let out = run.ok();
    let issue = starter_issue(&out, "");
    for file in [
        "bulletin.toml",
        "issues/images/placeholder.png",
        "schema/issue.schema.json",
        "subscribers.example.csv",
        ".gitignore",
    ] {
        assert!(out.lines().any(|l| l == file), "{file} not listed:\n{out}");
        assert!(ws.path().join(file).is_file(), "{file} not written");
    }
    assert!(
        run.stderr()
            .contains(&format!("Next: bulletin preview {issue}")),
        "{}",
        run.stderr()
    );

    let source = ws.read(&issue);
    assert!(source.contains("\"$schema\": \"../schema/issue.schema.json\""));
    assert!(!source.contains("TODO"));
    assert_eq!(
        ws.read("schema/issue.schema.json"),
        ws.run(&["schema"]).ok()
    );
    let gitignore = ws.read(".gitignore");
    for line in ["out/", ".bulletin/", "*.eml"] {
        assert!(gitignore.lines().any(|l| l == line), "{gitignore}");
    }
    let csv = ws.read("subscribers.example.csv");
    assert!(csv.starts_with("email,first_name,name,language,status\n"));
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.contains(",unsubscribed"));

    ws.run(&["render", &issue]).ok();
    let slug = Path::new(&issue).file_stem().unwrap().to_string_lossy();
    let html = flat(&ws.read(&format!("out/{slug}.html")));
    let text = flat(&ws.read(&format!("out/{slug}.txt")));
    for fact in STARTER_FACTS {
        assert!(html.contains(fact), "HTML lacks {fact:?}");
        assert!(text.contains(fact), "text lacks {fact:?}");
    }
    assert!(html.contains("images/placeholder.png"));
    assert!(
        html.contains("Your organisation"),
        "the default theme's name"
    );

    // The starter's one error before sending is the one send refuses it for (issue 11: check
    // used to pass an issue that send refused): its image is a file nobody could see in an
    // inbox until it is published and "images_url" says where.
    let run = ws.run(&["check", &issue, "--offline"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let check = run.stdout();
    assert!(
        check.contains("): the image images/placeholder.png is a file next to the issue")
            && check.contains("set \"images_url\"")
            && check.ends_with("1 error, 0 warnings (links not checked)\n"),
        "{check}"
    );
    // Published, the starter passes the checks a newcomer runs before sending, with no error.
    let published = ws.read(&issue).replacen(
        "\"language\": \"en\",",
        "\"language\": \"en\",\n  \"images_url\": \"https://example.org/newsletter/\",",
        1,
    );
    ws.write(&issue, &published);
    let check = ws.run(&["check", &issue, "--offline"]).ok();
    assert!(
        check.ends_with("0 errors, 0 warnings (links not checked)\n")
            || check == "no problems found (links not checked)\n",
        "{check}"
    );
    // The workspace's settings load as sending will read them.
    bulletin::config::load(&ws.path().join("bulletin.toml")).expect("bulletin.toml loads");
}

#[test]
fn init_creates_the_folder_and_names_paths_from_where_it_ran() {
    let ws = Workspace::empty();
    let run = ws.run(&["init", "news"]);
    let out = run.ok();
    assert!(out.lines().all(|l| l.starts_with("news/")), "{out}");
    let issue = starter_issue(&out, "news/");
    let inside = issue.strip_prefix("news/").unwrap();
    assert!(
        run.stderr()
            .contains(&format!("Next: cd news && bulletin preview {inside}")),
        "{}",
        run.stderr()
    );
    assert!(ws.path().join("news/bulletin.toml").is_file());
    ws.run(&["render", &issue]).ok();
}

#[test]
fn layout_copy_writes_the_default_layout_and_render_uses_it() {
    let ws = Workspace::empty();
    let out = ws.run(&["init", "--layout-copy"]).ok();
    for file in [
        "layouts/default/email.mjml.hbs",
        "layouts/default/email.txt.hbs",
        "layouts/default/sections/news.mjml.hbs",
        "layouts/default/theme.toml",
        "layouts/default/VERSION",
    ] {
        assert!(out.lines().any(|l| l == file), "{file} not listed:\n{out}");
    }
    assert_eq!(
        ws.read("layouts/default/VERSION").trim(),
        env!("CARGO_PKG_VERSION")
    );
    let theme = ws.read("layouts/default/theme.toml");
    assert!(theme.contains("name = \"Your organisation\""));
    ws.write(
        "layouts/default/theme.toml",
        &theme.replace(
            "name = \"Your organisation\"",
            "name = \"The Copied Layout Society\"",
        ),
    );
    let issue = starter_issue(&out, "");
    ws.run(&["render", &issue]).ok();
    let slug = Path::new(&issue).file_stem().unwrap().to_string_lossy();
    let html = ws.read(&format!("out/{slug}.html"));
    assert!(html.contains("The Copied Layout Society"));
}

#[test]
fn init_never_replaces_a_file_and_then_writes_nothing() {
    let ws = Workspace::empty();
    ws.write("news/bulletin.toml", "# mine\n");
    ws.write("news/.gitignore", "target/\n");
    let before = listing(ws.path());
    let err = ws.run(&["init", "news"]).bad_input();
    assert!(
        err.contains("error: news/bulletin.toml already exists\n"),
        "{err}"
    );
    assert!(
        err.contains("error: news/.gitignore already exists\n"),
        "{err}"
    );
    assert!(
        err.contains("another folder, e.g. bulletin init news-2"),
        "{err}"
    );
    assert_eq!(listing(ws.path()), before);
    assert_eq!(ws.read("news/bulletin.toml"), "# mine\n");
}
