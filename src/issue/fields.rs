//! Fields a layout declares for its own section kinds (issue 12: a `jobs` kind needs
//! `company`, `role`, `remote`…, not misused `title`, `type` and `info`).
//!
//! The declaration ([`CustomFields`]) is data the caller hands in — the layout module reads
//! it from the layout's `fields.toml` — so that this stage still knows nothing of layouts.
//! Here the declared fields are taken out of each section and item of their kind before the
//! typed parse, checked against their declared type, and kept as [`FieldValue`]s on the
//! [`super::Section`] or [`super::Item`]. Never renders.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Link, Problem};
use crate::merge::MergeText;

/// The type of a declared field, as written in `fields.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// One line of text (merge fields allowed).
    String,
    /// Text in Markdown, drawn as HTML and as text.
    Markdown,
    Bool,
    /// A day, YYYY-MM-DD, written out in the issue's language.
    Date,
    /// An absolute http(s) or mailto URL.
    Url,
    Number,
}

impl FieldType {
    /// Every type by the name `fields.toml` gives it.
    pub const NAMES: [(&'static str, FieldType); 6] = [
        ("string", FieldType::String),
        ("markdown", FieldType::Markdown),
        ("bool", FieldType::Bool),
        ("date", FieldType::Date),
        ("url", FieldType::Url),
        ("number", FieldType::Number),
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("string", |(n, _)| n)
    }

    /// The JSON Schema of a value of this type.
    fn schema(self) -> Value {
        match self {
            FieldType::String | FieldType::Markdown => serde_json::json!({"type": "string"}),
            FieldType::Bool => serde_json::json!({"type": "boolean"}),
            FieldType::Number => serde_json::json!({"type": "number"}),
            FieldType::Date => {
                serde_json::json!({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"})
            }
            FieldType::Url => serde_json::json!({"type": "string", "format": "uri"}),
        }
    }
}

/// One declared field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub ty: FieldType,
    pub required: bool,
    /// What the field is for, shown by editors.
    pub description: Option<String>,
}

/// The fields of one kind: on the section itself and on each of its items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindFields {
    pub section: BTreeMap<String, FieldSpec>,
    pub items: BTreeMap<String, FieldSpec>,
}

/// The fields a layout declares, by section kind, and the file that declares them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomFields {
    pub kinds: BTreeMap<String, KindFields>,
    /// The declaring file, as shown to people (`layouts/dev/fields.toml`).
    pub declared_in: String,
}

/// The value of a declared field, checked against its type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(MergeText),
    Markdown(MergeText),
    Bool(bool),
    Date(NaiveDate),
    Url(Link),
    Number(serde_json::Number),
}

impl Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Text(t) | FieldValue::Markdown(t) => s.serialize_str(t.as_str()),
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::Date(d) => s.serialize_str(&d.to_string()),
            FieldValue::Url(u) => s.serialize_str(u.as_str()),
            FieldValue::Number(n) => n.serialize(s),
        }
    }
}

/// Declared fields of a section or an item, by name.
pub type Fields = BTreeMap<String, FieldValue>;

/// Where the declared fields of one section or item are in the document.
pub(super) struct Taken {
    /// JSON path of the section or item, e.g. `sections[2].items[0]`.
    pub path: String,
    pub fields: Fields,
}

impl CustomFields {
    /// True when the layout declares nothing.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// A sentence listing the fields a kind's sections (or items) may have besides the
    /// built-in ones, and where they are declared: added to "unknown field" errors.
    pub fn hint(&self, kind: &str, items: bool) -> Option<String> {
        let kf = self.kinds.get(kind)?;
        let specs = if items { &kf.items } else { &kf.section };
        if specs.is_empty() {
            return None;
        }
        let names: Vec<String> = specs
            .iter()
            .map(|(n, s)| format!("\"{n}\" ({})", s.ty.name()))
            .collect();
        Some(format!(
            "the layout declares for a \"{kind}\" {}: {} (in {})",
            if items { "item" } else { "section" },
            names.join(", "),
            self.declared_in
        ))
    }

    /// Takes the declared fields out of every section (and its items) of a declared kind in
    /// `doc`, checks them, and returns them by JSON path. Problems (wrong type, missing
    /// required field) are pushed with the path of the field.
    pub(super) fn take(
        &self,
        doc: &mut Value,
        problem: &dyn Fn(&str, String) -> Problem,
        out: &mut Vec<Problem>,
    ) -> Vec<Taken> {
        let mut taken = Vec::new();
        let Some(sections) = doc.get_mut("sections").and_then(Value::as_array_mut) else {
            return taken;
        };
        for (si, section) in sections.iter_mut().enumerate() {
            let Some(obj) = section.as_object_mut() else {
                continue;
            };
            let Some(kf) = obj
                .get("kind")
                .and_then(Value::as_str)
                .and_then(|k| self.kinds.get(k))
            else {
                continue;
            };
            let sp = format!("sections[{si}]");
            let fields = take_from(obj, &kf.section, &sp, problem, out);
            taken.push(Taken {
                path: sp.clone(),
                fields,
            });
            if let Some(items) = obj.get_mut("items").and_then(Value::as_array_mut) {
                for (ii, item) in items.iter_mut().enumerate() {
                    if let Some(io) = item.as_object_mut() {
                        let ip = format!("{sp}.items[{ii}]");
                        let fields = take_from(io, &kf.items, &ip, problem, out);
                        taken.push(Taken { path: ip, fields });
                    }
                }
            }
        }
        taken
    }

    /// Adds the declared fields to the issue's JSON Schema: as properties of sections and
    /// items (so that editors complete them), and, per kind, which of them are required.
    pub fn extend_schema(&self, schema: &mut Value) {
        if self.is_empty() {
            return;
        }
        let defs_key = if schema.get("$defs").is_some() {
            "$defs"
        } else {
            "definitions"
        };
        let Some(defs) = schema.get_mut(defs_key).and_then(Value::as_object_mut) else {
            return;
        };
        for (def, items) in [("Section", false), ("Item", true)] {
            let Some(props) = defs
                .get_mut(def)
                .and_then(|d| d.get_mut("properties"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (kind, kf) in &self.kinds {
                let specs = if items { &kf.items } else { &kf.section };
                for (name, spec) in specs {
                    let mut s = spec.ty.schema();
                    let what = format!(
                        "{} field of a \"{kind}\" {} (declared by the layout in {}).",
                        spec.ty.name(),
                        if items { "item" } else { "section" },
                        self.declared_in
                    );
                    let desc = match &spec.description {
                        Some(d) => format!("{d} — {what}"),
                        None => what,
                    };
                    s["description"] = Value::String(desc);
                    props.entry(name.clone()).or_insert(s);
                }
            }
        }
        // Required fields, per kind.
        let mut rules = Vec::new();
        for (kind, kf) in &self.kinds {
            let section_req: Vec<&String> = kf
                .section
                .iter()
                .filter(|(_, s)| s.required)
                .map(|(n, _)| n)
                .collect();
            let item_req: Vec<&String> = kf
                .items
                .iter()
                .filter(|(_, s)| s.required)
                .map(|(n, _)| n)
                .collect();
            if section_req.is_empty() && item_req.is_empty() {
                continue;
            }
            let mut then = Map::new();
            if !section_req.is_empty() {
                then.insert("required".into(), serde_json::json!(section_req));
            }
            if !item_req.is_empty() {
                then.insert(
                    "properties".into(),
                    serde_json::json!({"items": {"items": {"required": item_req}}}),
                );
            }
            rules.push(serde_json::json!({
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": then,
            }));
        }
        if let Some(section) = defs.get_mut("Section").and_then(Value::as_object_mut)
            && !rules.is_empty()
        {
            section.insert("allOf".into(), Value::Array(rules));
        }
        // Editors offer the layout's kinds too.
        if let Some(examples) = defs
            .get_mut("Section")
            .and_then(|d| d.pointer_mut("/properties/kind/examples"))
            .and_then(Value::as_array_mut)
        {
            for kind in self.kinds.keys() {
                if !examples.iter().any(|e| e == kind) {
                    examples.push(Value::String(kind.clone()));
                }
            }
        }
    }
}

fn take_from(
    obj: &mut Map<String, Value>,
    specs: &BTreeMap<String, FieldSpec>,
    path: &str,
    problem: &dyn Fn(&str, String) -> Problem,
    out: &mut Vec<Problem>,
) -> Fields {
    let mut fields = Fields::new();
    for (name, spec) in specs {
        let fp = format!("{path}.{name}");
        match obj.remove(name) {
            None | Some(Value::Null) => {
                if spec.required {
                    out.push(problem(
                        path,
                        format!(
                            "missing field \"{name}\" ({}), which the layout requires",
                            spec.ty.name()
                        ),
                    ));
                }
            }
            Some(v) => match value_of(spec.ty, v) {
                Ok(v) => {
                    fields.insert(name.clone(), v);
                }
                Err(e) => out.push(problem(&fp, e)),
            },
        }
    }
    fields
}

/// A JSON value checked against a declared type.
fn value_of(ty: FieldType, v: Value) -> Result<FieldValue, String> {
    let expected = |what: &str| format!("expected {what}, found {}", describe(&v));
    match (ty, &v) {
        (FieldType::String | FieldType::Markdown, Value::String(s)) => {
            let text = MergeText::try_from(s.clone())?;
            Ok(if ty == FieldType::String {
                FieldValue::Text(text)
            } else {
                FieldValue::Markdown(text)
            })
        }
        (FieldType::Bool, Value::Bool(b)) => Ok(FieldValue::Bool(*b)),
        (FieldType::Number, Value::Number(n)) => Ok(FieldValue::Number(n.clone())),
        (FieldType::Date, Value::String(s)) => super::time::parse_day(s)
            .map(FieldValue::Date)
            .map_err(|e| e.to_string()),
        (FieldType::Url, Value::String(s)) => Link::try_from(s.clone()).map(FieldValue::Url),
        (FieldType::String | FieldType::Markdown, _) => Err(expected("a string")),
        (FieldType::Bool, _) => Err(expected("true or false")),
        (FieldType::Number, _) => Err(expected("a number")),
        (FieldType::Date, _) => Err(expected("a date, \"YYYY-MM-DD\"")),
        (FieldType::Url, _) => Err(expected("a URL")),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
