//! Finds where a JSON path (`sections[2].items[0].start`) stands in an issue's source text,
//! so that problems found after parsing still point at a line and column.

use jsonc_parser::ast::Value;
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions, parse_to_ast};

use crate::diag::line_col;

/// One step of a JSON path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `sections[2].items[0].start` into keys and indexes.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// The 1-based line and column of the value at `path`, or of the deepest part of the path
/// that exists (a missing field is reported where its object is).
pub fn locate(source: &str, path: &str) -> Option<(usize, usize)> {
    let parsed = parse_to_ast(source, &CollectOptions::default(), &ParseOptions::default()).ok()?;
    let mut node = parsed.value?;
    for step in steps(path) {
        let start = node.range().start;
        let next = match (step, node) {
            (Step::Key(k), Value::Object(obj)) => obj
                .properties
                .into_iter()
                .find(|p| p.name.as_str() == k)
                .map(|p| p.value),
            (Step::Index(i), Value::Array(arr)) => arr.elements.into_iter().nth(i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return Some(line_col(source, start)),
        }
    }
    Some(line_col(source, node.range().start))
}

/// Every string in a JSON value, with its JSON path (`sections[2].items[0].title`), in
/// document order.
pub fn strings(value: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect_strings(value, String::new(), &mut out);
    out
}

fn collect_strings(value: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => out.push((path, s.clone())),
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect_strings(v, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect_strings(v, p, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let src =
            "{\n  \"sections\": [\n    {\"kind\": \"news\"},\n    {\"kind\": \"nope\"}\n  ]\n}";
        assert_eq!(locate(src, "sections[1].kind"), Some((4, 14)));
        assert_eq!(locate(src, "sections[0]"), Some((3, 5)));
        // A missing key points at its object.
        assert_eq!(locate(src, "sections[0].title"), Some((3, 5)));
    }
}
