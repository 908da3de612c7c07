//! The plain-text part after Handlebars: blank lines tidied, long lines wrapped at 72
//! columns (never inside a URL), list items indented under their marker. Also the small
//! helpers templates use: `upper`, in the language's own rules (Turkish dotted İ,
//! Greek capitals without accents, from CLDR through ICU4X), and `underline`, as wide as
//! the text is on screen (a Japanese character takes two columns, a bidi isolate none).

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson,
    handlebars_helper,
};
use icu_locale::LanguageIdentifier;
use textwrap::core::{Word, display_width};
use textwrap::wrap_algorithms::wrap_first_fit;

/// Where text lines are wrapped.
pub const WIDTH: usize = 72;

// It takes any value (a missing one is empty), so that a layout need not guard each call.
// An underline never runs past the wrap width, even under a title that wraps.
handlebars_helper!(underline: |s: Json, c: Json| {
    as_text(c).repeat(textwrap::core::display_width(&as_text(s)).min(WIDTH))
});

/// `{{upper heading}}`: capitals as the language writes them. Merge-field markers
/// keep their case: they are filled later. Any value is taken; a missing one is empty.
struct Upper {
    language: LanguageIdentifier,
}

impl HelperDef for Upper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let text = h.param(0).map(|p| as_text(p.value())).unwrap_or_default();
        let mapper = icu_casemap::CaseMapper::new();
        let upper = crate::merge::map_outside_fields(&text, |t| {
            mapper.uppercase_to_string(t, &self.language).into_owned()
        });
        Ok(ScopedJson::Derived(serde_json::Value::String(upper)))
    }
}

fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Helpers for both registries: `upper` (in the rules of `language`, a BCP 47 tag) and
/// `underline` (a line of `c` as wide as `s`).
pub fn register_helpers(registry: &mut Handlebars<'_>, language: &str) {
    let language = icu_locale::Locale::try_from_str(language)
        .map(|l| l.id)
        .unwrap_or(icu_locale::langid!("und"));
    registry.register_helper("upper", Box::new(Upper { language }));
    registry.register_helper("underline", Box::new(underline));
}

/// Trailing spaces dropped, runs of blank lines made one, long lines wrapped.
pub fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() && blank_run > 0 {
            out.push('\n');
        }
        blank_run = 0;
        wrap_line(line, &mut out);
    }
    out
}

fn wrap_line(line: &str, out: &mut String) {
    if line.chars().count() <= WIDTH {
        out.push_str(line);
        out.push('\n');
        return;
    }
    let prefix_len = list_prefix_len(line);
    let (prefix, rest) = line.split_at(prefix_len);
    let hang = " ".repeat(prefix.chars().count());
    // Words are never split, at a hyphen or anywhere: "harm-reduction" and URLs stay whole.
    // This is what `textwrap::wrap` does with words between ASCII spaces, no hyphenation,
    // words never broken and first fit, done with textwrap's first fit less its pass that
    // splits words: with nowhere to split, that pass gave each word back as it came, measured
    // again, for a third of the cost of the whole text part. `wrapped_as_textwrap_wraps`
    // holds the two together, and `words_are_found_as_textwrap_finds_them` the words.
    let words: Vec<Word<'_>> = ascii_space_words(rest).collect();
    let widths = [prefix, &hang].map(|indent| WIDTH.saturating_sub(display_width(indent)) as f64);
    let mut at = 0;
    for (i, words) in wrap_first_fit(&words, &widths).into_iter().enumerate() {
        if words.is_empty() {
            // textwrap gives an empty line here, without its indent.
            out.push('\n');
            continue;
        }
        let len: usize = words
            .iter()
            .map(|w| w.word.len() + w.whitespace.len())
            .sum();
        let text = rest[at..at + len].trim_end();
        let indent = if i == 0 { prefix } else { hang.as_str() };
        // The line trimmed at its end, as a whole.
        if text.is_empty() {
            out.push_str(indent.trim_end());
        } else {
            out.push_str(indent);
            out.push_str(text);
        }
        out.push('\n');
        at += len;
    }
}

/// The words of `line` as `WordSeparator::AsciiSpace` finds them: a new word wherever a
/// character other than a space follows a space, each with its run of spaces. A word of
/// printable ASCII is as wide as it is long, which textwrap finds out again a character at
/// a time, through its test for escape sequences and Unicode's width table (about 400
/// instructions a word); any other word is measured by textwrap.
fn ascii_space_words(line: &str) -> impl Iterator<Item = Word<'_>> {
    let bytes = line.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start == bytes.len() {
            return None;
        }
        // A space is one byte, never part of another character, so the byte after one
        // starts a character.
        let end = (start + 1..bytes.len())
            .find(|&at| bytes[at - 1] == b' ' && bytes[at] != b' ')
            .unwrap_or(bytes.len());
        let piece = &line[start..end];
        start = end;
        let word = piece.trim_end_matches(' ');
        Some(if word.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            Word {
                word,
                whitespace: &piece[word.len()..],
                penalty: "",
                width: word.len(),
            }
        } else {
            Word::from(piece)
        })
    })
}

/// Length of the indentation and list marker ("  - ", "3. ") that starts a line.
fn list_prefix_len(line: &str) -> usize {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    let marker = ["- ", "* ", "• "]
        .iter()
        .find(|m| rest.starts_with(*m))
        .map(|m| m.len())
        .or_else(|| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            (digits > 0 && rest[digits..].starts_with(". ")).then_some(digits + 2)
        })
        .unwrap_or(0);
    indent + marker
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_72_but_never_breaks_a_url() {
        let url = format!("https://example.org/{}", "a".repeat(80));
        let line = format!("{} {url} end", "word ".repeat(20));
        let text = tidy(&line);
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH || l == url, "{l:?}");
        }
        assert!(text.lines().any(|l| l == url));
    }

    #[test]
    fn list_items_hang_under_their_marker() {
        let text = tidy(&format!("- {}", "word ".repeat(30)));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("- word"));
        assert!(lines[1].starts_with("  word"));
    }

    fn upper(language: &str, text: &str) -> String {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        register_helpers(&mut registry, language);
        registry
            .render_template("{{upper t}}", &serde_json::json!({ "t": text }))
            .unwrap()
    }

    #[test]
    fn capitals_follow_the_language() {
        assert_eq!(upper("en", "Events in Izmir"), "EVENTS IN IZMIR");
        assert_eq!(upper("tr", "Etkinlikler İzmir'de"), "ETKİNLİKLER İZMİR'DE");
        assert_eq!(upper("el", "Πληροφορίες"), "ΠΛΗΡΟΦΟΡΙΕΣ");
        assert_eq!(upper("de", "Straße"), "STRASSE");
        assert_eq!(upper("ar", "الأحداث"), "الأحداث");
    }

    #[test]
    fn underlines_are_as_wide_as_the_text_on_screen() {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        register_helpers(&mut registry, "ja");
        let line = |t: &str| {
            registry
                .render_template("{{underline t \"=\"}}", &serde_json::json!({ "t": t }))
                .unwrap()
        };
        assert_eq!(line("イベント"), "========");
        assert_eq!(line("\u{2068}Nice\u{2069}"), "====");
    }

    /// The wrap above, against `textwrap::wrap` with the options it stands for.
    #[test]
    fn wrapped_as_textwrap_wraps() {
        let url = format!("https://example.org/{}", "a".repeat(80));
        let lines = [
            format!("{} {url} end", "word ".repeat(20)),
            format!("- {}", "word ".repeat(30)),
            format!("   12. {}", "harm-reduction  and   spaces ".repeat(6)),
            format!("  * {url} {url}"),
            format!(
                "{}\u{a0}tail\tand tab {}",
                "élan ".repeat(15),
                "イベント ".repeat(12)
            ),
            format!("• {}", "\u{2068}Nice\u{2069} 🙂 ".repeat(14)),
            format!("{}{url}", "x ".repeat(35)),
            "a".repeat(100),
            format!("- {}", "a".repeat(100)),
        ];
        for line in &lines {
            let line = line.trim_end();
            let prefix = &line[..list_prefix_len(line)];
            let hang = " ".repeat(prefix.chars().count());
            let options = textwrap::Options::new(WIDTH)
                .break_words(false)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .initial_indent(prefix)
                .subsequent_indent(&hang);
            let mut expected = String::new();
            for l in textwrap::wrap(&line[prefix.len()..], options) {
                expected.push_str(l.trim_end());
                expected.push('\n');
            }
            let mut wrapped = String::new();
            wrap_line(line, &mut wrapped);
            assert_eq!(wrapped, expected, "{line:?}");
            let one_word = !line[prefix.len()..].contains(' ');
            assert!(
                one_word || wrapped.lines().count() > 1,
                "{line:?} was not wrapped"
            );
        }
    }

    /// The words found for the wrap are textwrap's, widths included.
    #[test]
    fn words_are_found_as_textwrap_finds_them() {
        let lines = [
            "",
            " ",
            "one",
            "  two  spaces   here ",
            " lead",
            "tail   ",
            "élan vital  イベント\u{a0}no-break 🙂 \u{2068}Nice\u{2069}",
            "tab\there \u{1b}[31mred\u{1b}[0m and ~`{}| ASCII!",
            "a\u{7f}b c\u{0}d",
        ];
        for line in lines {
            let ours: Vec<Word<'_>> = ascii_space_words(line).collect();
            let theirs: Vec<Word<'_>> = textwrap::WordSeparator::AsciiSpace
                .find_words(line)
                .collect();
            assert_eq!(ours, theirs, "{line:?}");
        }
    }

    #[test]
    fn blank_lines_are_tidied() {
        assert_eq!(tidy("a  \n\n\n\nb\n\n"), "a\n\nb\n");
    }
}
