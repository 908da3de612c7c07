//! The issue as a provider writes it into requests: its subject, HTML and text cut at their
//! holes once ([`cut`]), and each reader's documents written from those pieces and the
//! reader's values ([`Form::Values`](crate::message::Form::Values)) as a request is
//! serialised ([`Fill`]), never held whole.
//!
//! A reader's values are escaped for where each hole stands (`Slots::values` in
//! `crate::merge`), and the holes are numbered as compose numbers them, so a filled document is
//! byte for byte what compose would have filled for the reader (`Prepared::fill`): providers
//! that take each message whole (Postmark, Resend, Mailjet) send what they sent before, from
//! a few hundred bytes of values a reader instead of the reader's whole HTML and text.

use std::fmt;

use serde::Serialize;

use super::{ProviderError, RequestError};
use crate::message::{Filled, Outgoing, Template};

/// A piece of a document: text as it is, or a hole (its number in the template's numbering,
/// which each reader's values follow).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Hole(usize),
}

/// One document of the issue, cut at its holes.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub pieces: Vec<Piece>,
    /// How many values each reader has: the template's holes, in all three documents.
    pub holes: usize,
}

impl Document {
    /// The document filled with one reader's `values`, to write or serialise.
    pub fn fill<'a>(&'a self, values: &'a [String]) -> Fill<'a> {
        Fill {
            pieces: &self.pieces,
            values,
        }
    }
}

/// The template's subject, HTML and text, cut at their holes. The holes are written with a
/// character from a private-use area that none of the documents holds, so that every one of
/// them found is a hole.
pub fn cut(template: &Template) -> Result<[Document; 3], ProviderError> {
    let blank = template.text_with(|_| String::new());
    let documents = [&blank.subject, &blank.html, &blank.text];
    let marker = ('\u{E000}'..='\u{F8FF}')
        .chain('\u{F0000}'..='\u{FFFFD}')
        .find(|c| documents.iter().all(|d| !d.contains(*c)))
        .ok_or(ProviderError::Template(
            "it holds every private-use character, and its holes cannot be marked",
        ))?;
    let marked = template.text_with(|n| format!("{marker}{n}{marker}"));
    let document = |text: &str| Document {
        pieces: text
            .split(marker)
            .enumerate()
            .filter_map(|(i, part)| match i % 2 {
                0 => (!part.is_empty()).then(|| Piece::Text(part.to_string())),
                _ => part.parse().ok().map(Piece::Hole),
            })
            .collect(),
        holes: marked.holes,
    };
    Ok([
        document(&marked.subject),
        document(&marked.html),
        document(&marked.text),
    ])
}

/// The reader's values, checked against the template's `holes`.
pub fn values(m: &Outgoing, holes: usize) -> Result<&Filled, RequestError> {
    let filled = m.filled()?;
    if filled.values.len() != holes {
        return Err(RequestError::Holes {
            to: m.envelope.to.clone(),
            values: filled.values.len(),
            holes,
        });
    }
    Ok(filled)
}

/// A document filled for one reader, written as it is serialised.
pub struct Fill<'a> {
    pieces: &'a [Piece],
    values: &'a [String],
}

impl fmt::Display for Fill<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in self.pieces {
            match piece {
                Piece::Text(text) => f.write_str(text)?,
                Piece::Hole(n) => f.write_str(self.values.get(*n).map_or("", String::as_str))?,
            }
        }
        Ok(())
    }
}

impl Serialize for Fill<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{FieldTable, Prepared, Recipient, Slots};

    /// What compose fills for a reader is what the pieces and the reader's values write.
    #[test]
    fn a_filled_document_is_what_compose_fills() {
        let mut table = FieldTable::default();
        let html = table.mark(
            "<p title=\"{{subscriber.name}}\">Hi {{subscriber.name}} \u{E000}{ <a href=\"https://x.example/?u={{unsubscribe_url}}\">{{unsubscribe_url}}</a></p>",
        );
        let text = table.mark("Hi {{subscriber.name | default: \"you\"}}, {{unsubscribe_url}}");
        let subject = table.mark("News for {{subscriber.name}}");
        let (subject, html, text) = (
            Prepared::text(&subject, &table),
            Prepared::html(&html, &table),
            Prepared::text(&text, &table),
        );
        let template = Template::new(subject.clone(), html.clone(), text.clone());
        let [s, h, t] = cut(&template).unwrap();
        let slots = {
            // The numbering compose uses: holes in order of appearance across the three.
            let mut slots = Slots::default();
            for d in [&subject, &html, &text] {
                d.with_tokens(&mut slots, &|_| String::new());
            }
            slots
        };
        for name in ["Ann <b>&</b> \"Q\" Ünï", "", "{{ x }} {% y %}"] {
            let mut reader = Recipient::sample();
            reader.fields.insert("name".into(), name.into());
            let values = slots.values(&reader);
            assert_eq!(h.fill(&values).to_string(), html.fill(&reader), "{name}");
            assert_eq!(t.fill(&values).to_string(), text.fill(&reader), "{name}");
            assert_eq!(s.fill(&values).to_string(), subject.fill(&reader), "{name}");
        }
    }
}
