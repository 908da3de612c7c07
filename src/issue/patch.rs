//! Takes a problem serde found out of an issue's JSON, so that the next parse finds the next
//! one: every problem of a file is reported in one run (issue 12). An unknown field or a
//! wrong value is dropped; where the format requires a value, a stand-in takes its place.

use serde_json::{Value, json};

/// One step of a path as serde_path_to_error writes it.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    if path == "." || path.is_empty() {
        return Some(out);
    }
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key == "?" {
            return None;
        }
        if !key.is_empty() {
            out.push(Step::Key(key.to_string()));
        }
        if !rest.is_empty() {
            for idx in rest.split('[') {
                out.push(Step::Index(idx.trim_end_matches(']').parse().ok()?));
            }
        }
    }
    Some(out)
}

/// A value that passes where a required field (or a list element) was wrong or missing.
fn stand_in(key: &str) -> Option<Value> {
    Some(match key {
        "title" | "label" | "alt" => json!("-"),
        "date" => json!("2000-01-01"),
        "sections" => json!([]),
        "kind" => json!("text"),
        "url" => json!("https://example.org/"),
        "src" => json!("https://example.org/image.png"),
        // Dropping a start that cannot be read would make its end complain of no start.
        "start" => json!("2000-01-01 00:00 UTC"),
        _ => return None,
    })
}

/// An element that passes in a list named `list`.
fn element(list: &str) -> Option<Value> {
    Some(match list {
        "sections" => json!({"kind": "text"}),
        "items" => json!({}),
        "bullets" => json!("-"),
        _ => return None,
    })
}

/// Quoted name in serde's message: "unknown field `x`, expected …" → `x`.
fn quoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Removes what the error at `path` (serde's `message`) is about from `doc`; false when it
/// cannot, and the parse must stop there.
pub fn patch(doc: &mut Value, path: &str, message: &str) -> bool {
    let Some(mut steps) = steps(path) else {
        return false;
    };
    if let Some(name) = quoted(message, "missing field ") {
        // The path is the object's; give it the field.
        let Some(target) = walk(doc, &steps) else {
            return false;
        };
        return match (target.as_object_mut(), stand_in(name)) {
            (Some(obj), Some(v)) if !obj.contains_key(name) => {
                obj.insert(name.to_string(), v);
                true
            }
            _ => false,
        };
    }
    let Some(last) = steps.pop() else {
        return false;
    };
    let Some(parent) = walk(doc, &steps) else {
        return false;
    };
    let list_name = match steps.last() {
        Some(Step::Key(k)) => k.clone(),
        _ => String::new(),
    };
    match (last, parent) {
        (Step::Key(key), Value::Object(obj)) => match stand_in(&key) {
            Some(v) if !message.starts_with("unknown field") => {
                if obj.get(&key) == Some(&v) {
                    return false;
                }
                obj.insert(key, v);
                true
            }
            _ => obj.remove(&key).is_some(),
        },
        (Step::Index(i), Value::Array(arr)) if i < arr.len() => match element(&list_name) {
            Some(v) if arr[i] != v => {
                arr[i] = v;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn walk<'a>(doc: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut node = doc;
    for step in steps {
        node = match step {
            Step::Key(k) => node.get_mut(k.as_str())?,
            Step::Index(i) => node.get_mut(*i)?,
        };
    }
    Some(node)
}
