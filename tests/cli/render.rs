//! `bulletin render` on the sample and on small issues: what a reader of the email sees.

use crate::common::{Workspace, flat, issue_with};

/// Renders the sample in a fresh workspace; returns (html, text).
fn render_sample(extra: &[&str]) -> (String, String) {
    let ws = Workspace::with_sample();
    let mut args = vec!["render", "issues/2020-06.json"];
    args.extend_from_slice(extra);
    ws.run(&args).ok();
    (ws.read("out/2020-06.html"), ws.read("out/2020-06.txt"))
}

/// Every fact the sample must carry, as a reader would search for it.
const SAMPLE_FACTS: &[&str] = &[
    // header
    "View in browser",
    // webconferences
    "Over 1,000 people",
    "since the start of the sanitary crisis",
    "weekly",
    "all our work topics",
    "dedicated web page",
    "suggest topics",
    // case studies
    "case studies",
    "local and regional authorities responded to security issues during the crisis",
    "thematic groups",
    "Members only",
    // SOLIDIFY
    "SOLIDIFY",
    "Led by Efus and concluded in March 2020",
    "supervised drug consumption rooms as a harm-reduction tool",
    "foster acceptance",
    "among residents",
    "updated online",
    // LOUD
    "LOUD",
    "Young Leaders for Inclusion",
    "22 April 2020",
    "alternative narrative campaigns against discrimination",
    "Maria Lozano",
    // BRIDGE
    "BRIDGE",
    "Building resilience to reduce polarisation and growing extremism",
    "Düsseldorf (DE) on 23–24 April",
    "cancelled because of lockdown measures",
    "23 April, 30 April and 7 May 2020",
    // Covid-19 and technology
    "Covid-19 and technology",
    "AI-driven tools",
    "fundamental rights",
    // Mariusz Czepczyński
    "Mariusz Czepczyński",
    "Gdansk, Tübingen and Rome Tor Vergata",
    "former chief advisor to the Mayor of Gdansk",
    "PACTESUR",
    "protecting public spaces against terrorist threats",
    "consequences of the crisis for public spaces",
    // activity report
    "2019 activity report",
    "thematic projects, working groups, network life and international activities",
    // Essen
    "Essen (DE) opened a supervised drug consumption room",
    "In 2001",
    "harm-reduction policy",
    "still reduces drug use in public spaces",
    // events, with dates computed from the data
    "Emergency planning, a key tool in health crisis management?",
    "Thursday, 4 June 2020 at 10:00",
    "Two experts",
    "Registration is free but mandatory",
    "LOUD webinar n°4",
    "Wednesday, 24 June 2020 at 11:00",
    "alternative discourse campaign",
    "Gifty Boachie, data strategist",
    "Technologies based on artificial intelligence in urban security: predictive policing",
    "Thursday, 25 June 2020 at 11:00",
    "26 May",
    "Using technologies to control the pandemic: could privacy also be a victim of Covid-19?",
    "CEST",
    // about
    "the only European network of local and regional authorities dedicated to crime prevention and urban security",
    "more than 250",
    "international partners",
    "European cooperation projects",
    "Support to design, implement and evaluate local policies",
    "Trainings and study visits",
    // agenda
    "Coordination meeting of the partnership on public spaces of the European Urban Agenda",
    "Date to be confirmed",
    "25–27 November 2020",
    "Security, Democracy and Cities",
    "Nice, France",
    // footer
    "10 rue des Montiboeufs",
    "LinkedIn",
    "Unsubscribe",
];

/// The visible text of an HTML document, roughly: tags dropped, entities decoded.
fn visible(html: &str) -> String {
    let body = &html[html.find("<body").unwrap_or(0)..];
    let mut out = String::new();
    let mut tag: Option<String> = None;
    for c in body.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                // Inline elements join their neighbours; any other tag separates words.
                let name = name.trim_start_matches('/');
                let inline = ["strong", "em", "a ", "a", "span", "time"]
                    .iter()
                    .any(|t| name == *t || name.starts_with(&format!("{} ", t.trim())));
                if !inline {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => out.push(c),
        }
    }
    let decoded = out
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    flat(&decoded)
}

#[test]
fn every_fact_of_the_sample_is_in_the_html_and_the_text() {
    let (html, text) = render_sample(&[]);
    let (html, text) = (visible(&html), flat(&text));
    let missing_html: Vec<_> = SAMPLE_FACTS.iter().filter(|f| !html.contains(*f)).collect();
    let missing_text: Vec<_> = SAMPLE_FACTS.iter().filter(|f| !text.contains(*f)).collect();
    assert!(
        missing_html.is_empty(),
        "missing from the HTML: {missing_html:?}"
    );
    assert!(
        missing_text.is_empty(),
        "missing from the text: {missing_text:?}"
    );
}

#[test]
fn render_prints_paths_and_sizes_and_writes_both_parts() {
    let ws = Workspace::with_sample();
    let out = ws
        .run(&["render", "issues/2020-06.json", "--out", "public"])
        .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("public/2020-06.html  ") && lines[0].ends_with(" KB"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("public/2020-06.txt  ") && lines[1].ends_with(" KB"),
        "{out}"
    );
    assert!(
        ws.read("public/2020-06.html")
            .starts_with("<!doctype html>")
    );
}

#[test]
fn sample_html_stays_under_gmail_clipping_size() {
    let (html, _) = render_sample(&[]);
    assert!(html.len() < 102 * 1024, "HTML is {} bytes", html.len());
}

#[test]
fn html_is_a_responsive_email() {
    let (html, _) = render_sample(&[]);
    // Two-column rows stack on phones: columns are 100% wide unless the screen is wider
    // than the breakpoint, where the media query makes them 50%.
    let query = html
        .find("@media only screen and (min-width:480px)")
        .expect("no mobile media query");
    let rules = &html[query..query + html[query..].find("</style>").unwrap()];
    assert!(
        rules.contains(".mj-column-per-50 { width:50% !important;"),
        "{rules}"
    );
    assert!(html.contains("https://example.org/newsletter/2020-06"));
    assert!(
        rules.contains(".mj-column-per-100 { width:100% !important;"),
        "{rules}"
    );
    assert!(html.contains("class=\"mj-outlook-group-fix mj-column-per-50 item\""));
    // lang and dir on the document and again inside the body, which webmails keep.
    assert!(html.contains("<html lang=\"en\" dir=\"ltr\""));
    let body = &html[html.find("<body").unwrap()..];
    assert!(body.contains("lang=\"en\" dir=\"ltr\""));
    // A hidden preheader, presentation tables, alt on every image.
    let preheader = body
        .find("Weekly webconferences, news from our projects")
        .expect("the preheader is in the body");
    let holder = &body[body[..preheader].rfind('<').unwrap()..preheader];
    assert!(
        holder.contains("display:none"),
        "the preheader is shown: {holder}"
    );
    // Hidden without the white-on-white text spam filters score as hidden text.
    assert!(!holder.contains("color:#ffffff"), "{holder}");
    assert!(html.contains("role=\"presentation\""));
    for img in html.split("<img").skip(1) {
        let tag = &img[..img.find('>').unwrap()];
        assert!(
            tag.contains("alt=\"") && !tag.contains("alt=\"\""),
            "image without alt: {tag}"
        );
    }
}

#[test]
fn local_images_are_found_from_the_output_folder() {
    let ws = Workspace::with_sample();
    ws.run(&["render", "issues/2020-06.json", "--out", "deep/er/out"])
        .ok();
    let html = ws.read("deep/er/out/2020-06.html");
    let srcs: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .filter(|s| !s.starts_with("http"))
        .collect();
    assert!(srcs.len() >= 4, "{srcs:?}");
    assert!(
        srcs.iter().any(|s| s.ends_with("layouts/efus/logo.png")),
        "no logo: {srcs:?}"
    );
    for src in srcs {
        assert!(
            ws.path().join("deep/er/out").join(src).is_file(),
            "{src} does not resolve"
        );
    }
}

#[test]
fn images_url_makes_image_paths_absolute() {
    let ws = Workspace::with_sample();
    let sample = ws.read("issues/2020-06.json").replacen(
        "\"language\": \"en\",",
        "\"language\": \"en\",\n  \"images_url\": \"https://cdn.example.org/2020-06/\",",
        1,
    );
    ws.write("issues/2020-06.json", &sample);
    ws.run(&["render", "issues/2020-06.json"]).ok();
    let html = ws.read("out/2020-06.html");
    assert!(html.contains("src=\"https://cdn.example.org/2020-06/images/webconferences.png\""));
}

#[test]
fn text_part_reads_well() {
    let (_, text) = render_sample(&[]);
    for line in text.lines() {
        // Only a URL, which must not be broken, may stand alone on a longer line.
        let is_url = line.split_whitespace().count() == 1 && line.contains("://");
        assert!(
            line.chars().count() <= 72 || is_url,
            "line over 72 characters: {line:?}"
        );
    }
    // Headings stand out, links are written in full and once, the preheader is not repeated.
    assert!(text.contains("UPCOMING EVENTS\n==============="));
    assert!(text.contains("Register: https://example.org/events/2020-06-04-emergency-planning"));
    assert!(
        text.contains("dedicated web page\n(https://example.org/webconferences)")
            || text.contains("dedicated web page (https://example.org/webconferences)")
    );
    assert_eq!(
        text.matches("webconferences@example.org").count(),
        1,
        "mailto link written twice"
    );
    assert!(!text.contains("Weekly webconferences, news from our projects"));
    assert!(!text.contains('<'), "HTML in the text part");
}

#[test]
fn merge_fields_show_sample_values_and_subscriber_overrides() {
    let (html, text) = render_sample(&[]);
    assert!(html.contains("Dear Alex,"));
    assert!(text.contains("Dear Alex,"));
    let (html, text) = render_sample(&[
        "--subscriber",
        "first_name=Zoë",
        "--subscriber",
        "email=zoe@example.org",
    ]);
    assert!(html.contains("Dear Zoë,") && text.contains("Dear Zoë,"));
    // The layout's own merge field (footer) is filled too.
    assert!(flat(&html).contains("You receive this newsletter as zoe@example.org."));
    assert!(text.contains("You receive this newsletter as zoe@example.org."));
    let (html, text) = render_sample(&["--subscriber", "first_name="]);
    assert!(html.contains("Dear member,") && text.contains("Dear member,"));
}

#[test]
fn merge_fields_in_item_body_and_layout_fall_back_when_empty() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "news", "items": [{"title": "Hi", "body": "Hello {{subscriber.first_name | default: \"friend\"}}!"}]}"#,
        ),
    );
    ws.write(
        "mine/footer.mjml.hbs",
        r#"<mj-section><mj-column><mj-text>Signed for {{subscriber.city | default: "everyone"}} — <a href="{{unsubscribe_url}}">bye</a></mj-text></mj-column></mj-section>"#,
    );
    ws.write(
        "mine/footer.txt.hbs",
        "Signed for {{subscriber.city | default: \"everyone\"}}\nbye: {{unsubscribe_url}}\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["render", "issue.json", "--layout", "mine"];
        args.extend_from_slice(extra);
        ws.run(&args).ok();
        (ws.read("out/issue.html"), ws.read("out/issue.txt"))
    };
    let (html, text) = run(&[
        "--subscriber",
        "first_name=Ada",
        "--subscriber",
        "city=Nice",
    ]);
    assert!(html.contains("Hello Ada!") && text.contains("Hello Ada!"));
    assert!(html.contains("Signed for Nice") && text.contains("Signed for Nice"));
    let (html, text) = run(&["--subscriber", "first_name=", "--subscriber", "city="]);
    assert!(html.contains("Hello friend!") && text.contains("Hello friend!"));
    assert!(html.contains("Signed for everyone") && text.contains("Signed for everyone"));
}

#[test]
fn merge_values_are_escaped_in_html_and_plain_in_text() {
    let ws = Workspace::with_sample();
    ws.run(&[
        "render",
        "issues/2020-06.json",
        "--subscriber",
        "first_name=<b>Tom & \"Jerry\"</b>",
    ])
    .ok();
    let html = ws.read("out/2020-06.html");
    assert!(html.contains("Dear &lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;,"));
    assert!(!html.contains("<b>Tom"));
    assert!(
        ws.read("out/2020-06.txt")
            .contains("Dear <b>Tom & \"Jerry\"</b>,")
    );
}

#[test]
fn unsubscribe_link_is_a_placeholder_filled_per_recipient() {
    let (html, text) = render_sample(&[
        "--subscriber",
        "unsubscribe_url=https://example.org/u/abc?x=1&y=2",
    ]);
    assert!(html.contains("href=\"https://example.org/u/abc?x=1&amp;y=2\""));
    assert!(text.contains("Unsubscribe: https://example.org/u/abc?x=1&y=2"));
}

/// An issue with one event, rendered in `language`; returns the text and the visible HTML.
fn event_text(language: &str, start: &str, end: Option<&str>) -> String {
    let ws = Workspace::empty();
    let end = end
        .map(|e| format!(r#", "end": "{e}""#))
        .unwrap_or_default();
    let issue = issue_with(&format!(
        r#"{{"kind": "events", "items": [{{"title": "Meeting", "start": "{start}"{end}, "online": true}}]}}"#
    ))
    .replace("\"date\"", &format!("\"language\": \"{language}\",\n  \"date\""));
    ws.write("event.json", &issue);
    ws.run(&["render", "event.json"]).ok();
    format!(
        "TEXT: {}\nHTML: {}",
        flat(&ws.read("out/event.txt")),
        visible(&ws.read("out/event.html"))
    )
}

/// Asserts that both parts of `rendered` (from `event_text`) show `expected`.
fn shows(rendered: &str, expected: &str) {
    for part in rendered.lines() {
        assert!(part.contains(expected), "{expected:?} not in {part}");
    }
}

#[test]
fn event_times_are_right_on_both_sides_of_a_daylight_saving_change() {
    // Clocks went forward in Paris on 29 March 2020 and back on 25 October 2020.
    let before = event_text("en", "2020-03-28 10:00 Europe/Paris", None);
    let after = event_text("en", "2020-03-29 10:00 Europe/Paris", None);
    shows(&before, "Saturday, 28 March 2020 at 10:00 CET");
    shows(&after, "Sunday, 29 March 2020 at 10:00 CEST");
    let autumn = event_text(
        "en",
        "2020-10-25 10:00 Europe/Paris",
        Some("2020-10-25 11:30"),
    );
    shows(&autumn, "Sunday, 25 October 2020 at 10:00–11:30 CET");
    // Another zone keeps its own offset and name.
    let london = event_text("en", "2020-06-04 09:00 Europe/London", None);
    shows(&london, "Thursday, 4 June 2020 at 09:00 BST");
}

#[test]
fn event_times_follow_the_issue_language() {
    let fr = event_text(
        "fr",
        "2020-06-04 10:00 Europe/Paris",
        Some("2020-06-04 11:30"),
    );
    // CLDR's French has no abbreviation for Central European time: the offset is written.
    shows(&fr, "jeudi 4 juin 2020 à 10:00–11:30 UTC+2");
    shows(&fr, "En ligne");
    let de = event_text("de", "2020-12-03 18:00 Europe/Berlin", None);
    shows(&de, "Donnerstag, 3. Dezember 2020 um 18:00 MEZ");
}

#[test]
fn a_french_issue_is_marked_french_and_translated() {
    let ws = Workspace::empty();
    let issue = issue_with(
        r#"{"kind": "agenda", "heading": "Agenda", "items": [
             {"type": "Conférence", "title": "Sécurité, démocratie et villes", "date": "2020-11-25", "until": "2020-11-27", "place": "Nice"},
             {"type": "Réunion", "title": "Coordination"}]}"#,
    )
    .replace("\"date\": \"2020-06-03\"", "\"date\": \"2020-06-03\",\n  \"language\": \"fr\"");
    ws.write("fr.json", &issue);
    ws.run(&["render", "fr.json"]).ok();
    let html = ws.read("out/fr.html");
    assert!(html.contains("<html lang=\"fr\""));
    assert!(html.contains("25–27 novembre 2020"));
    assert!(html.contains("Date à confirmer"));
    // The typographic apostrophe, as French writes it.
    assert!(flat(&html).contains("Lettre d’information · 3 juin 2020"));
}

#[test]
fn a_right_to_left_language_sets_dir() {
    let ws = Workspace::empty();
    let issue = issue_with(r#"{"kind": "text", "body": "مرحبا"}"#).replace(
        "\"date\": \"2020-06-03\"",
        "\"date\": \"2020-06-03\",\n  \"language\": \"ar\"",
    );
    ws.write("ar.json", &issue);
    ws.run(&["render", "ar.json"]).ok();
    let html = ws.read("out/ar.html");
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\""));
}

#[test]
fn body_file_supplies_long_text() {
    let ws = Workspace::empty();
    ws.write(
        "texts/long.md",
        "A *long* story\nwith [a link](https://example.org/x).\n",
    );
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "news", "items": [{"title": "T", "body_file": "texts/long.md"}]}"#),
    );
    ws.run(&["render", "issue.json"]).ok();
    assert!(ws.read("out/issue.html").contains("A <em>long</em> story"));
    assert!(
        ws.read("out/issue.txt")
            .contains("A long story with a link (https://example.org/x).")
    );
}

#[test]
fn body_text_replaces_the_markdown_in_the_text_part_only() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "news", "items": [{"title": "T", "body": "| a | b |", "body_text": "A table, in words."}]}"#,
        ),
    );
    ws.run(&["render", "issue.json"]).ok();
    assert!(ws.read("out/issue.txt").contains("A table, in words."));
    assert!(!ws.read("out/issue.html").contains("A table, in words."));
}

#[test]
fn a_layout_adds_a_section_kind_without_code() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "quote", "body": "Cities are for people.", "heading": "Jan Gehl"}"#,
        ),
    );
    ws.write(
        "layout/sections/quote.mjml.hbs",
        "<mj-section><mj-column><mj-text><blockquote>{{{body_html}}}<cite>{{heading}}</cite></blockquote></mj-text></mj-column></mj-section>",
    );
    ws.write(
        "layout/sections/quote.txt.hbs",
        "> {{body_text}}\n  — {{heading}}\n",
    );
    ws.run(&["render", "issue.json", "--layout", "layout"]).ok();
    assert!(ws.read("out/issue.html").contains("<blockquote><p style="));
    assert!(
        ws.read("out/issue.txt")
            .contains("> Cities are for people.\n  — Jan Gehl")
    );
}

#[test]
fn a_theme_override_changes_only_its_keys() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "Hi"}"#),
    );
    ws.write(
        "layout/theme.toml",
        "name = \"Eurocities Test\"\n[colors]\nbackground = \"#abcdef\"\n",
    );
    ws.run(&["render", "issue.json", "--layout", "layout"]).ok();
    let html = ws.read("out/issue.html");
    assert!(html.contains("Eurocities Test"));
    assert!(html.contains("#abcdef"));
    assert!(html.contains("#1d4f91"), "default colours lost");
}

#[test]
fn a_workspace_layout_folder_is_picked_up() {
    let ws = Workspace::empty();
    ws.write(
        "issues/a.json",
        &issue_with(r#"{"kind": "text", "body": "Hi"}"#),
    );
    ws.write("layouts/default/theme.toml", "name = \"Workspace Org\"\n");
    ws.run(&["render", "issues/a.json"]).ok();
    assert!(ws.read("out/a.html").contains("Workspace Org"));
}

#[test]
fn snapshot_of_the_sample_html() {
    let (html, _) = render_sample(&[]);
    insta::assert_snapshot!("sample_html", html);
}

#[test]
fn snapshot_of_the_sample_text() {
    let (_, text) = render_sample(&[]);
    insta::assert_snapshot!("sample_text", text);
}

#[test]
fn merge_fields_work_in_short_fields_and_survive_upper_case_headings() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "events", "heading": "For {{subscriber.first_name}}", "items": [
                 {"start": "2020-06-04 10:00 Europe/Paris", "venue": "Town hall of {{subscriber.city | default: \"your city\"}}", "tag": "For {{subscriber.first_name}}"}]}"#,
        ),
    );
    ws.run(&["render", "issue.json", "--subscriber", "first_name=Ana"])
        .ok();
    let text = ws.read("out/issue.txt");
    assert!(text.contains("FOR Ana\n"), "{text}");
    assert!(text.contains("Town hall of your city"), "{text}");
    let html = ws.read("out/issue.html");
    assert!(html.contains(">For Ana</p>"), "tag not filled");
    assert!(!html.contains("{{"), "a merge field left as written");
}

#[test]
fn a_broken_date_pattern_in_a_theme_is_an_error_not_a_crash() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "Hi"}"#),
    );
    ws.write("layout/theme.toml", "[labels.en]\ndate_short = \"%Q\"\n");
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout"])
        .bad_input();
    assert!(
        err.contains("error: theme.toml: labels.en.date_short: \"%Q\" is not a date pattern"),
        "{err}"
    );
    // A date has no hour: chrono would fail (and bulletin panic) at the first event's date.
    ws.write("layout/theme.toml", "[labels.en]\ndate_long = \"%A %H\"\n");
    let err = ws
        .run(&["render", "issue.json", "--layout", "layout"])
        .bad_input();
    assert!(
        err.contains(
            "error: theme.toml: labels.en.date_long: \"%A %H\" is not a date pattern: %H is not \
             a field of a date"
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn markdown_links_that_are_not_links_are_warnings() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "See [the programme](https://efus example/p)."}"#),
    );
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    assert!(
        run.stderr().contains(
            "warning: issue.json:5:26: sections[0].body: \"[the programme](https://efus example/p)\" \
             is not read as a link"
        ),
        "{}",
        run.stderr()
    );
}

#[test]
fn unknown_merge_fields_are_warnings() {
    let ws = Workspace::empty();
    ws.write(
        "issue.json",
        &issue_with(r#"{"kind": "text", "body": "Hi {{subscriber.first_nme}}."}"#),
    );
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let err = run.stderr();
    assert!(
        err.contains("warning: issue.json:5:26: sections[0].body: the merge field {{subscriber.first_nme}} is not a field readers have"),
        "{err}"
    );
    assert!(err.contains("did you mean first_name?"), "{err}");
}

#[test]
fn unknown_merge_fields_in_body_files_and_behind_json_escapes_are_warnings() {
    // What the issue's file does not show as written: a body read from its own file, and a
    // field whose braces are JSON escapes.
    let ws = Workspace::empty();
    ws.write("story.md", "Hello {{subscriber.citty}}.\n");
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "text", "body_file": "story.md"},
{"kind": "text", "body": "Bye \u007b{subscriber.townn}}."}"#,
        ),
    );
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let err = run.stderr();
    assert!(
        err.contains("the merge field {{subscriber.citty}} is not a field readers have"),
        "{err}"
    );
    assert!(
        err.contains(
            "sections[1].body: the merge field {{subscriber.townn}} is not a field readers have"
        ),
        "{err}"
    );
    // Fallbacks, whose quotes the JSON escapes: the field beside a known one is found.
    ws.write(
        "issue.json",
        &issue_with(
            r#"{"kind": "text", "body": "Dear {{subscriber.first_name | default: \"member\"}} of {{subscriber.regionn | default: \"x\"}}."}"#,
        ),
    );
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let err = run.stderr();
    assert!(
        err.contains("sections[0].body: the merge field {{subscriber.regionn"),
        "{err}"
    );
    assert_eq!(err.matches("merge field").count(), 1, "{err}");
}
