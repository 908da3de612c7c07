//! What a newcomer is meant to replace and has not: the words of bulletin's starter (its issue,
//! the organisation's details in the workspace's theme, `bulletin.toml`) and the built-in
//! theme's organisation (name, postal address, website), each an error until it is replaced
//! (issue 13: an untouched starter passed `check --strict` while the email read "Your
//! organisation · 1 Example Street · 00000 City · Country").
//!
//! Each finding points where the placeholder is: the issue's JSON path (a body file's line),
//! the layout folder's `theme.toml` or the workspace's `bulletin.toml` at its line and key. A
//! placeholder the email shows that no file of the user's has comes from the built-in theme:
//! it is reported about the issue, with the file and key to write the real value in.
//!
//! Only words the starter and the built-in theme write are looked for, and the starter's own
//! sentences, never a whole domain: a link to example.org that someone wrote is theirs (the
//! online link check asks it), the starter's links are on `your-organisation.example`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{Finding, place, texts};
use crate::diag::line_col;
use crate::edition::Edition;
use crate::issue::Problem;

/// Words only the starter and the built-in theme write, with what to put instead.
/// The first that a text holds is the one reported.
const MARKERS: [(&str, &str); 6] = [
    (
        "Example Street",
        "a placeholder postal address: write yours (laws on bulk email, such as CAN-SPAM, require a real one)",
    ),
    (
        "00000 City",
        "a placeholder postal address: write yours (laws on bulk email, such as CAN-SPAM, require a real one)",
    ),
    (
        "your-organisation.example",
        "a placeholder address: put your own",
    ),
    (
        "Your organisation",
        "a placeholder: write your organisation's name",
    ),
    (
        "Your Organisation",
        "a placeholder: write your organisation's name",
    ),
    (
        "placeholder.png",
        "the starter's placeholder image: put your own in issues/images/ and name it here, or remove the image",
    ),
];

/// Texts of the starter issue that are fine to keep as they are: headings, labels, tags.
const KEEP: [&str; 13] = [
    "News",
    "Project",
    "Read more",
    "Upcoming events",
    "Webinar",
    "Registration is free",
    "Meeting",
    "Brussels",
    "Agenda",
    "Conference",
    "About us",
    "Become a member",
    "en",
];

/// Fields of the starter issue that are data, not words to replace.
const DATA_KEYS: [&str; 8] = [
    "$schema", "kind", "language", "date", "start", "end", "until", "src",
];

/// The starter issue's words to replace: its sentences (four words or more, looked for
/// inside any text) and its shorter texts (matched whole).
struct Starter {
    sentences: Vec<String>,
    whole: Vec<String>,
}

fn starter() -> &'static Starter {
    static STARTER: OnceLock<Starter> = OnceLock::new();
    STARTER.get_or_init(|| {
        let mut sentences = Vec::new();
        let mut whole = Vec::new();
        for (path, text) in crate::workspace::starter_texts() {
            let key = path.rsplit('.').next().unwrap_or(&path);
            if DATA_KEYS.contains(&key) || text.starts_with("http") || KEEP.contains(&text.trim()) {
                continue;
            }
            let mut long = false;
            let split = text.replace(". ", ".\n");
            for sentence in split
                .split('\n')
                .map(|s| flat(s).trim_end_matches('.').to_string())
            {
                if sentence.split(' ').count() >= 4 && !sentence.contains("{{") {
                    sentences.push(sentence);
                    long = true;
                }
            }
            if !long && !text.contains("{{") {
                whole.push(flat(&text));
            }
        }
        sentences.sort();
        sentences.dedup();
        Starter { sentences, whole }
    })
}

/// Runs of white space made one space, ends trimmed.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first placeholder in `text`: where it is (a byte offset, when known), and what to say.
fn placeholder_in(text: &str) -> Option<(Option<usize>, String)> {
    for (marker, advice) in MARKERS {
        if let Some(at) = text.find(marker) {
            let (start, end) = quoted(text, at, marker);
            let word = &text[start..end];
            return Some((Some(start), format!("\"{word}\" is {advice}")));
        }
    }
    let starter = starter();
    let plain = flat(text);
    if starter.whole.contains(&plain) {
        return Some((
            Some(text.find(plain.as_str()).unwrap_or(0)),
            format!("placeholder text left from the starter: \"{plain}\"; write your own"),
        ));
    }
    starter
        .sentences
        .iter()
        .find(|s| plain.contains(s.as_str()))
        .map(|s| {
            let first_words: String = s.split(' ').take(3).collect::<Vec<_>>().join(" ");
            (
                text.find(&first_words),
                format!("placeholder text left from the starter: \"{s}\"; write your own"),
            )
        })
}

/// What to quote of `text` for `marker` at `at`, as a byte range: a URL or address whole (as
/// far as spaces and quotes), a short text whole ("Your organisation · 1 Example Street · …"),
/// else the marker alone.
fn quoted(text: &str, at: usize, marker: &str) -> (usize, usize) {
    if marker.contains(' ') || marker.starts_with(char::is_uppercase) {
        let trimmed = text.trim();
        if trimmed.chars().count() <= 80 && !trimmed.contains('\n') {
            let start = text.len() - text.trim_start().len();
            return (start, start + trimmed.len());
        }
        return (at, at + marker.len());
    }
    let stop = |c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')' | '<' | '>' | '[' | ']');
    let start = text[..at].rfind(stop).map_or(0, |i| i + 1);
    let end = text[at..].find(stop).map_or(text.len(), |i| at + i);
    (start, end)
}

/// Every placeholder of the edition's files, and of the built-in theme in the email.
pub fn check(edition: &Edition, shown: &str, out: &mut Vec<Finding>) {
    let loaded = &edition.issue;
    for (path, text) in texts(loaded) {
        if path == "$schema" {
            continue;
        }
        if let Some((at, message)) = placeholder_in(&text) {
            let problem = match at {
                Some(at) => place::at_offset(loaded, &path, at, message),
                None => loaded.problem(&path, message),
            };
            out.push(Finding::error(problem));
        }
    }
    let theme = edition
        .layout
        .dir()
        .map(|d| d.join(crate::layout::THEME))
        .filter(|p| p.is_file());
    if let Some(theme) = &theme {
        in_toml_file(theme, out);
    }
    if let Some(config) = workspace_config(&loaded.dir) {
        in_toml_file(&config, out);
    }
    from_builtin_theme(edition, theme.as_deref(), shown, out);
}

/// The placeholders among the values of a TOML file (a theme, `bulletin.toml`), at their
/// line and key.
fn in_toml_file(file: &Path, out: &mut Vec<Finding>) {
    let Ok(source) = std::fs::read_to_string(file) else {
        return;
    };
    for (key, value, offset) in toml_strings(&source) {
        if let Some((_, message)) = placeholder_in(&value) {
            out.push(Finding::error(Problem {
                file: file.to_path_buf(),
                position: Some(line_col(&source, offset)),
                json_path: key,
                message,
            }));
        }
    }
}

/// Every string value of a TOML text: its key (`footer.social[0].url`), the value, and where
/// the value starts.
fn toml_strings(source: &str) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    if let Ok(table) = toml::de::DeTable::parse(source) {
        toml_table(table.get_ref(), "", &mut out);
    }
    out.sort_by_key(|(_, _, at)| *at);
    out
}

fn toml_table(table: &toml::de::DeTable<'_>, prefix: &str, out: &mut Vec<(String, String, usize)>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        toml_value(value, path, out);
    }
}

fn toml_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    path: String,
    out: &mut Vec<(String, String, usize)>,
) {
    match value.get_ref() {
        toml::de::DeValue::String(s) => out.push((path, s.to_string(), value.span().start)),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                toml_value(item, format!("{path}[{i}]"), out);
            }
        }
        toml::de::DeValue::Table(t) => toml_table(t, &path, out),
        _ => {}
    }
}

/// The `bulletin.toml` of the workspace an issue folder is in, as the user reaches it.
fn workspace_config(issue_dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(issue_dir).ok()?;
    let found = crate::workspace::around(&abs)?;
    let path = issue_dir.join(found.rel).join(crate::workspace::CONFIG);
    let cwd = std::env::current_dir().ok()?;
    Some(crate::workspace::from_here(&cwd, &path))
}

/// The built-in theme's organisation, where no file of the user's replaces it: the keys, and
/// what each is, in words.
const ORGANISATION: [(&str, &str); 3] = [
    ("name", "organisation's name"),
    ("footer.address", "postal address"),
    ("footer.social", "website and social links"),
];

/// What the built-in theme says of the organisation and the email shows: reported about the
/// issue, with where to write the real value.
fn from_builtin_theme(
    edition: &Edition,
    theme: Option<&Path>,
    shown: &str,
    out: &mut Vec<Finding>,
) {
    let Ok(builtin) = crate::layout::Layout::builtin() else {
        return;
    };
    let own: toml::Table = theme
        .and_then(|t| std::fs::read_to_string(t).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let write_in = match edition.layout.dir() {
        Some(dir) => dir.join(crate::layout::THEME).display().to_string(),
        None => format!(
            "{} in your workspace (bulletin init writes it)",
            crate::workspace::ORGANISATION
        ),
    };
    for (key, what) in ORGANISATION {
        if lookup(&own, key).is_some() {
            continue;
        }
        let Some(value) = lookup(builtin.theme(), key) else {
            continue;
        };
        // Texts as the email shows them; links as the link itself (a longer URL of the
        // issue's may start with the same address).
        let seen = match value {
            toml::Value::String(s) => Some(s.clone()).filter(|s| shown.contains(s.as_str())),
            toml::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.get("url").and_then(|u| u.as_str()))
                .find(|url| shown.contains(&format!("href=\"{url}\"")))
                .map(str::to_string),
            _ => None,
        };
        let Some(seen) = seen else {
            continue;
        };
        let (table, name) = key.rsplit_once('.').map_or(("", key), |(t, n)| (t, n));
        let under = if table.is_empty() {
            String::new()
        } else {
            format!(" under [{table}]")
        };
        out.push(Finding::error(Problem {
            file: edition.issue.path.clone(),
            position: None,
            json_path: String::new(),
            message: format!(
                "the email shows \"{seen}\", the built-in layout's placeholder for your {what}: \
                 write yours as {name}{under} in {write_in}"
            ),
        }));
    }
}

/// The value at a dotted key of a TOML table.
fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Whether a URL is a placeholder, which the link check need not ask (it is reported as one).
pub fn is_placeholder_url(url: &str) -> bool {
    MARKERS.iter().any(|(m, _)| url.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_sentences_are_found_and_headings_are_not() {
        let starter = starter();
        assert!(
            starter
                .sentences
                .iter()
                .any(|s| s == "Open with two or three sentences on what this issue brings"),
            "{:?}",
            starter.sentences
        );
        assert!(starter.whole.contains(&"City, Country".to_string()));
        for kept in KEEP {
            assert!(placeholder_in(kept).is_none(), "{kept}");
        }
        assert!(placeholder_in("Dear {{subscriber.first_name | default: \"reader\"}},").is_none());
        let (_, said) = placeholder_in("We met.\n\nTell what happened in two or three sentences.")
            .expect("a starter sentence");
        assert!(
            said.contains("Tell what happened in two or three sentences"),
            "{said}"
        );
        let (at, said) = placeholder_in("See https://your-organisation.example/join now").unwrap();
        assert_eq!(at, Some(4));
        assert!(
            said.starts_with("\"https://your-organisation.example/join\" is a placeholder address"),
            "{said}"
        );
    }

    #[test]
    fn toml_values_come_with_their_keys_and_places() {
        let source =
            "name = \"A\"\n[footer]\nsocial = [\n  { name = \"W\", url = \"https://x\" },\n]\n";
        let found = toml_strings(source);
        let keys: Vec<&str> = found.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["name", "footer.social[0].name", "footer.social[0].url"]
        );
        assert_eq!(line_col(source, found[2].2), (4, 23));
    }
}
