//! Problems in an issue file, each with the file, line:column and JSON path it concerns.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::locate;
use crate::diag::{io_reason, line_col};

/// One thing wrong in an issue file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line and column, where known.
    pub position: Option<(usize, usize)>,
    /// Where in the document, e.g. `sections[2].items[0].start`; empty for the whole file.
    pub json_path: String,
    pub message: String,
}

impl Problem {
    /// A problem with the value at `json_path`, located in `source`.
    pub fn at(file: &Path, source: &str, json_path: &str, message: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            position: locate(source, json_path),
            json_path: json_path.to_string(),
            message: message.into(),
        }
    }

    /// Turns what serde reports (syntax, types, missing fields, our own field checks) into a
    /// problem a writer can act on.
    pub fn from_serde(
        file: &Path,
        source: &str,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let json_path = err.path().to_string();
        // serde_path_to_error says "." for the root and "?" where it could not follow.
        // A path never shows "?" (issue 12: `sections[7].cta.?`): the steps it could follow.
        let json_path = match json_path.as_str() {
            "." | "?" => String::new(),
            _ => json_path
                .split('.')
                .filter(|step| *step != "?")
                .collect::<Vec<_>>()
                .join("."),
        };
        let inner = err.into_inner();
        let position = match (inner.line(), inner.column()) {
            (0, _) => None,
            // serde_json points just past the offending token; for a whole-value error the
            // value's own start is clearer when we can find it.
            (l, c) => Some((l, c.max(1))),
        };
        let raw = strip_position(&inner.to_string());
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("invalid JSON: {raw}")
        } else {
            reword(&raw)
        };
        let position = if inner.is_data() {
            locate(source, &json_path).or(position)
        } else {
            position.or_else(|| Some(line_col(source, source.len())))
        };
        Problem {
            file: file.to_path_buf(),
            position,
            json_path,
            message,
        }
    }
}

impl Problem {
    /// A JSON syntax error: the one error reported for a file that is not JSON.
    pub fn syntax(file: &Path, source: &str, err: &serde_json::Error) -> Self {
        Problem {
            file: file.to_path_buf(),
            position: Some((err.line(), err.column().max(1))).filter(|(l, _)| *l > 0),
            json_path: String::new(),
            message: format!("invalid JSON: {}", strip_position(&err.to_string())),
        }
        .or_end_of(source)
    }

    /// Text after the issue's closing brace.
    pub fn trailing(file: &Path, source: &str, err: &serde_json::Error) -> Self {
        Problem {
            file: file.to_path_buf(),
            position: Some((err.line(), err.column())).filter(|(l, _)| *l > 0),
            json_path: String::new(),
            message: "invalid JSON: there is more text after the issue's closing brace".into(),
        }
        .or_end_of(source)
    }

    fn or_end_of(mut self, source: &str) -> Self {
        if self.position.is_none() {
            self.position = Some(line_col(source, source.len()));
        }
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((l, c)) = self.position {
            write!(f, ":{l}:{c}")?;
        }
        if !self.json_path.is_empty() {
            write!(f, ": {}", self.json_path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything that can go wrong reading an issue.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("cannot read issue file {}: {}", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl From<Problem> for IssueError {
    fn from(p: Problem) -> Self {
        IssueError::Invalid(vec![p])
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// serde_json appends " at line L column C"; we print the position ourselves.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// serde's wording, made plainer: backticks become quotes, and the common mistakes get a hint.
fn reword(raw: &str) -> String {
    let plain = raw.replace('`', "\"");
    if plain == "missing field \"alt\"" {
        return "the image has no \"alt\" text; every image needs one that says what it shows, \
                for readers who cannot see it"
            .into();
    }
    if let Some(rest) = plain.strip_prefix("unknown field ") {
        return format!("unknown field {rest}");
    }
    plain
}
