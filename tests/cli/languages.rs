//! An issue in each built-in language: the layout's own words in that language (none left in
//! English), dates in CLDR's long format for the language, the language's colon and list
//! separator in the text part; a language bulletin has no data for is a warning, not silence.

use crate::common::{Workspace, flat};

/// Every language the default layout has words for (`layouts/default/labels.toml`): the 24
/// official languages of the EU, then Arabic, Hebrew, Persian, Urdu, Turkish, Ukrainian,
/// Russian, Chinese and Japanese.
const BUILT_IN: &[&str] = &[
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "it", "lt", "lv",
    "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv", "ar", "he", "fa", "ur", "tr", "uk", "ru", "zh",
    "ja",
];

/// The words the layout writes itself, by label key.
const WORDS: &[&str] = &[
    "newsletter",
    "view_in_browser",
    "online",
    "register",
    "information",
    "date_tbc",
    "why",
    "unsubscribe",
    "read_more",
    "add_to_calendar",
    "calendar_file",
];

/// Where a language writes the same word as English, and that is right in the language (each
/// checked: German and Italian say "Newsletter", many say "Online").
const SAME_AS_ENGLISH: &[(&str, &str)] = &[
    ("cs", "online"),
    ("da", "online"),
    ("de", "newsletter"),
    ("de", "online"),
    ("hr", "online"),
    ("hu", "online"),
    ("it", "newsletter"),
    ("it", "online"),
    ("nl", "online"),
    ("pl", "newsletter"),
    ("pl", "online"),
    ("pt", "online"),
    ("ro", "online"),
    ("sk", "online"),
    ("sv", "online"),
];

/// An issue that makes the layout write every word it has and every kind of date: the issue's
/// date, an event with a time range and zone, an agenda range, an agenda entry without a date,
/// a link without words (the layout's "Read more").
fn issue(language: &str) -> String {
    format!(
        r#"{{
  "title": "T",
  "date": "2020-06-03",
  "language": "{language}",
  "web_url": "https://example.org/w",
  "sections": [
    {{"kind": "news", "items": [{{"title": "N", "link": {{"label": "", "url": "https://example.org/n"}}}}]}},
    {{"kind": "events", "items": [
      {{"title": "E", "start": "2020-06-04 10:00 Europe/Paris", "end": "2020-06-04 11:30", "online": true, "registration": "https://example.org/r"}},
      {{"title": "F", "start": "2020-11-25 09:00 Europe/Paris", "venue": "Palais des Congrès", "city": "Nice"}}]}},
    {{"kind": "agenda", "items": [
      {{"title": "A", "date": "2020-11-25", "until": "2020-11-27", "info": "https://example.org/i"}},
      {{"title": "B"}}]}}
  ]
}}"#
    )
}

/// Renders `issue(language)` in a workspace that publishes a site (so that the events'
/// calendar links include the `.ics` file, and its word); returns (visible HTML text, text
/// part, stderr).
fn render(language: &str) -> (String, String, String) {
    let ws = Workspace::empty();
    ws.write(
        "bulletin.toml",
        "[archive]\nbase_url = \"https://example.org/newsletter/\"\n",
    );
    ws.write("issue.json", &issue(language));
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let html = ws.read("out/issue.html");
    (
        flat(&visible(&html)),
        flat(&ws.read("out/issue.txt")),
        run.stderr(),
    )
}

/// The visible text of the HTML's body, tags dropped (each one a space), entities decoded.
fn visible(html: &str) -> String {
    let body = &html[html.find("<body").unwrap_or(0)..];
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match (in_tag, c) {
            (false, '<') => in_tag = true,
            (true, '>') => {
                in_tag = false;
                out.push(' ');
            }
            (false, c) => out.push(c),
            _ => {}
        }
    }
    out.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The built-in labels, as the layout ships them.
fn labels() -> toml::Table {
    let path = crate::common::repo().join("layouts/default/labels.toml");
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

fn label<'a>(labels: &'a toml::Table, language: &str, key: &str) -> &'a str {
    labels[language][key].as_str().unwrap()
}

/// `phrase` as words of `text`: not inside a longer word ("Information" is not in
/// "Informations").
fn has_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The words of a label as they read once merge fields are filled: "You receive this
/// newsletter as" for `why`.
fn readable(value: &str) -> String {
    value
        .split("{{")
        .next()
        .unwrap_or(value)
        .trim_end_matches(['\u{2068}', ' '])
        .to_string()
}

#[test]
fn the_built_in_languages_are_the_ones_labels_toml_has_each_with_every_word() {
    let labels = labels();
    let mut tables: Vec<&str> = labels
        .keys()
        .map(String::as_str)
        .filter(|k| !k.contains('-'))
        .collect();
    tables.sort();
    let mut expected = BUILT_IN.to_vec();
    expected.sort();
    assert_eq!(tables, expected);
    for language in BUILT_IN {
        for key in WORDS {
            let value = labels[*language].get(*key).and_then(|v| v.as_str());
            assert!(
                value.is_some_and(|v| !v.trim().is_empty()),
                "labels.toml: [{language}] has no {key}"
            );
            let same = value == Some(label(&labels, "en", key));
            let allowed = SAME_AS_ENGLISH.contains(&(*language, *key));
            assert!(
                *language == "en" || same == allowed,
                "[{language}] {key} = {value:?}: {}",
                if same {
                    "the English word; translate it, or list it in SAME_AS_ENGLISH if it is right"
                } else {
                    "translated: drop it from SAME_AS_ENGLISH"
                }
            );
        }
    }
}

#[test]
fn an_issue_in_each_built_in_language_has_no_english_word_of_the_layout_left() {
    let labels = labels();
    // English month and day names of the dates the issue has, and the languages that write
    // the same name (German "November").
    let english_dates: [(&str, &[&str]); 4] = [
        ("June", &[]),
        ("November", &["de"]),
        ("Thursday", &[]),
        ("Wednesday", &[]),
    ];
    for language in BUILT_IN {
        let (html, text, stderr) = render(language);
        assert!(
            !stderr.contains("warning"),
            "{language}: unexpected warning\n{stderr}"
        );
        for key in WORDS {
            let own = readable(label(&labels, language, key));
            let english = readable(label(&labels, "en", key));
            for (part, rendered) in [("HTML", &html), ("text", &text)] {
                // The layout writes each of its words in the language…
                let shown = rendered.contains(&flat(&own));
                assert!(
                    shown,
                    "{language} {part}: {key} {own:?} missing from\n{rendered}"
                );
                // …and none in English.
                if *language != "en" && own != english {
                    assert!(
                        !has_words(rendered, &english),
                        "{language} {part}: English {key} {english:?} left in\n{rendered}"
                    );
                }
            }
        }
        if *language != "en" {
            for (name, same) in english_dates {
                if same.contains(language) {
                    continue;
                }
                assert!(
                    !has_words(&html, name) && !has_words(&text, name),
                    "{language}: an English date ({name}) in\n{html}\n{text}"
                );
            }
        }
    }
}

/// The issue's date, an agenda range, an event's time range with its zone, in CLDR's long
/// formats. The German, Hungarian, Chinese and Japanese strings were checked against
/// unicode-org/cldr-json (`<locale>/ca-gregorian.json`: `dateFormats`,
/// `dateTimeFormats-atTime`, `intervalFormats.yMMMd` and `.Hm`); the others are what ICU4X
/// writes from the same data, read against each language's usual way of writing dates.
#[test]
fn dates_are_cldrs_long_dates_for_the_language() {
    let cases: &[(&str, [&str; 3])] = &[
        (
            "en",
            // en-GB, the default layout's locale for "en".
            [
                "3 June 2020",
                "25–27 November 2020",
                "Thursday, 4 June 2020 at 10:00–11:30 CEST",
            ],
        ),
        (
            "en-US",
            [
                "June 3, 2020",
                "November 25–27, 2020",
                "Thursday, June 4, 2020 at 10:00\u{202f}AM – 11:30\u{202f}AM GMT+2",
            ],
        ),
        (
            "fr",
            [
                "3 juin 2020",
                "25–27 novembre 2020",
                "jeudi 4 juin 2020 à 10:00–11:30 UTC+2",
            ],
        ),
        (
            "de",
            [
                "3. Juni 2020",
                "25.–27. November 2020",
                "Donnerstag, 4. Juni 2020 um 10:00–11:30 MESZ",
            ],
        ),
        (
            "es",
            [
                "3 de junio de 2020",
                "25–27 de noviembre de 2020",
                "jueves, 4 de junio de 2020 a las 10:00–11:30 CEST",
            ],
        ),
        (
            "it",
            [
                "3 giugno 2020",
                "25–27 novembre 2020",
                "giovedì 4 giugno 2020 alle ore 10:00–11:30 CEST",
            ],
        ),
        (
            "pl",
            [
                "3 czerwca 2020",
                "25–27 listopada 2020",
                "czwartek, 4 czerwca 2020 10:00–11:30 CEST",
            ],
        ),
        (
            "hu",
            [
                "2020. június 3.",
                "2020. november 25–27.",
                "2020. június 4., csütörtök 10:00–11:30 CEST",
            ],
        ),
        (
            "ar",
            [
                "3 يونيو 2020",
                "25–27 نوفمبر 2020",
                "الخميس، 4 يونيو 2020 في 10:00 ص – 11:30 ص غرينتش\u{200e}+2",
            ],
        ),
        (
            "he",
            [
                "3 ביוני 2020",
                "25–27 בנובמבר 2020",
                "יום חמישי, 4 ביוני 2020 בשעה 10:00–11:30 GMT\u{200e}+2\u{200e}",
            ],
        ),
        (
            "ja",
            [
                "2020年6月3日",
                "2020年11月25日～27日",
                "2020年6月4日木曜日 10:00～11:30 GMT+2",
            ],
        ),
        (
            "zh",
            [
                "2020年6月3日",
                "2020年11月25日至27日",
                "2020年6月4日星期四 GMT+2 10:00–11:30",
            ],
        ),
    ];
    for (language, expected) in cases {
        let ws = Workspace::empty();
        ws.write("issue.json", &issue(language));
        ws.run(&["render", "issue.json"]).ok();
        let html = ws.read("out/issue.html");
        let text = ws.read("out/issue.txt");
        for want in expected {
            assert!(
                text.contains(want),
                "{language}: {want:?} not in the text:\n{text}"
            );
            assert!(html.contains(want), "{language}: {want:?} not in the HTML");
        }
    }
}

#[test]
fn bare_tags_get_their_own_dates_and_words() {
    // These fell back to English without a word before CLDR (issue 12).
    for (language, date) in [
        ("ar", "3 يونيو 2020"),
        ("he", "3 ביוני 2020"),
        ("fa", "۳ ژوئن ۲۰۲۰"),
        ("ur", "3 جون، 2020"),
        ("ja", "2020年6月3日"),
        ("zh", "2020年6月3日"),
        ("pt-BR", "3 de junho de 2020"),
    ] {
        let (html, text, stderr) = render(language);
        assert!(text.contains(date), "{language}: {date} not in {text}");
        assert!(html.contains(date), "{language}: {date} not in {html}");
        assert!(!stderr.contains("warning"), "{language}: {stderr}");
    }
    let (_, text, _) = render("pt-BR");
    assert!(text.contains("Inscreva-se"), "{text}");
    let (_, text, _) = render("pt-PT");
    assert!(text.contains("Anular a subscrição"), "{text}");
}

#[test]
fn the_text_part_uses_the_languages_punctuation() {
    let ws = Workspace::empty();
    for language in ["fr", "ar", "ja"] {
        ws.write(&format!("{language}.json"), &issue(language));
        ws.run(&["render", &format!("{language}.json")]).ok();
    }
    // French: a narrow no-break space before the colon.
    let fr = ws.read("out/fr.txt");
    assert!(
        fr.contains("S’inscrire\u{202f}: https://example.org/r"),
        "{fr}"
    );
    assert!(fr.contains("Palais des Congrès, Nice"), "{fr}");
    // Arabic: the Arabic comma between venue and city, each Latin name isolated so that it
    // keeps its place in a right-to-left line.
    let ar = ws.read("out/ar.txt");
    assert!(
        ar.contains("\u{2068}Palais des Congrès\u{2069}، \u{2068}Nice\u{2069}"),
        "{ar}"
    );
    assert!(ar.contains("سجّل: https://example.org/r"), "{ar}");
    let ar_html = ws.read("out/ar.html");
    assert!(ar_html.contains("\u{2068}Palais des Congrès\u{2069}، \u{2068}Nice\u{2069}"));
    // Japanese: the full-width colon, no space.
    let ja = ws.read("out/ja.txt");
    assert!(ja.contains("参加登録：https://example.org/r"), "{ja}");
    assert!(ja.contains("Palais des Congrès、Nice"), "{ja}");
}

#[test]
fn a_language_without_data_is_a_warning_that_names_the_fallback() {
    let ws = Workspace::empty();
    ws.write("issue.json", &issue("tlh"));
    let run = ws.run(&["render", "issue.json"]);
    run.ok();
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "warning: no locale data for \"tlh\" in CLDR: dates and times are written as for \"en-GB\" instead"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: the layout has no words for \"tlh\""),
        "{stderr}"
    );
    assert!(ws.read("out/issue.txt").contains("3 June 2020"));

    // check reports the same, at the issue's "language", as warnings that do not fail it.
    let check = ws.run(&["check", "issue.json", "--offline"]);
    let out = format!("{}{}", check.stdout(), check.stderr());
    assert!(
        out.contains("issue.json:4:") && out.contains("no locale data for \"tlh\""),
        "{out}"
    );
    assert!(out.contains("warning: issue.json:4:"), "{out}");
    assert!(out.contains("the layout has no words for \"tlh\""), "{out}");

    // A language CLDR knows but the layout does not: only the words are missing.
    ws.write("sw.json", &issue("sw"));
    let run = ws.run(&["render", "sw.json"]);
    run.ok();
    assert!(!run.stderr().contains("no locale data"), "{}", run.stderr());
    assert!(
        run.stderr().contains("no words for \"sw\""),
        "{}",
        run.stderr()
    );
    assert!(ws.read("out/sw.txt").contains("3 Juni 2020"));
}

#[test]
fn a_workspace_changes_one_word_without_copying_the_dictionary() {
    let ws = Workspace::empty();
    ws.write("issue.json", &issue("fr"));
    ws.write(
        "layout/theme.toml",
        "[labels.fr]\nunsubscribe = \"Ne plus recevoir cette lettre\"\n\n[labels.tlh]\nregister = \"qoj\"\n",
    );
    ws.run(&["render", "issue.json", "--layout", "layout"]).ok();
    let text = ws.read("out/issue.txt");
    assert!(text.contains("Ne plus recevoir cette lettre"), "{text}");
    assert!(text.contains("S’inscrire"), "the other words stay: {text}");

    // The layout's own words for a language bulletin does not know: no warning about them.
    ws.write("tlh.json", &issue("tlh"));
    let run = ws.run(&["render", "tlh.json", "--layout", "layout"]);
    run.ok();
    assert!(!run.stderr().contains("no words"), "{}", run.stderr());
    assert!(
        ws.read("out/tlh.txt")
            .contains("qoj: https://example.org/r")
    );
}

#[test]
fn a_layouts_own_date_patterns_still_win_for_their_language() {
    let ws = Workspace::empty();
    ws.write("issue.json", &issue("en"));
    ws.write("fr.json", &issue("fr"));
    // A theme copied before dates came from CLDR.
    ws.write(
        "layout/theme.toml",
        "[labels.en]\ndate_long = \"%A %-d %B %Y\"\ndate_short = \"%-d %B %Y\"\ntime = \"%H:%M\"\n",
    );
    ws.run(&["render", "issue.json", "--layout", "layout"]).ok();
    let text = ws.read("out/issue.txt");
    assert!(
        text.contains("Thursday 4 June 2020, 10:00–11:30 CEST"),
        "{text}"
    );
    // English patterns are not French ones.
    ws.run(&["render", "fr.json", "--layout", "layout"]).ok();
    let fr = ws.read("out/fr.txt");
    assert!(fr.contains("jeudi 4 juin 2020 à 10:00–11:30 UTC+2"), "{fr}");
}
