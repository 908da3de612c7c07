//! Quoted-printable encoding of a message part, byte for byte as lettre writes a `String`
//! body (its CRLF line ends, then the `quoted_printable` crate), in two steps:
//! - **escaping** ([`escape`]): each character as it will be written — itself, or "=XX" for
//!   "=", control characters (a lone CR), bytes over 126, and a space or tab before a line
//!   end; CRLF and a lone LF end a line ("\r\n");
//! - **cutting** ([`cut`]): the lines at most 76 characters, a soft line break ("=" at the
//!   end) after at most 75, never inside an "=XX"; a line's last piece may take all 76.
//!
//! Whether a character is escaped depends on it and at most the two after it, never on the
//! column, so the literal text of an issue is escaped once ([`Escaped`]); per reader only the
//! values and the few characters before each are (the filled text is never written whole),
//! then the lines are cut straight into the message ([`super::mime`]), which copies runs of
//! 75 bytes. The crate pushed one `char` at a time onto a `String`, and our first encoder
//! still looked at every byte of the sample's 80 KB of HTML for every reader: most of a
//! send's instructions (callgrind).

use std::ops::Range;

use crate::merge::{MergeValues, Prepared, Span};

/// The longest encoded line (RFC 2045), soft line break included.
const LIMIT: usize = 76;

/// `text` in quoted-printable, with CRLF line ends: what [`Escaped::encode`] must equal, and
/// what lettre's own encoding is checked against.
#[cfg(test)]
pub fn encode_text(text: &str) -> Vec<u8> {
    escape_text(text).cut()
}

/// `text` escaped for quoted-printable, its lines not yet cut.
#[cfg(test)]
pub fn escape_text(text: &str) -> Uncut {
    let bytes = text.as_bytes();
    let mut escaped = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    escape(bytes, 0..bytes.len(), &mut escaped);
    Uncut(escaped)
}

/// The literal text of a document escaped once, for many readers.
#[derive(Debug, Clone)]
pub struct Escaped {
    /// For each literal: its escaped form but for its last `usize` bytes, whose escaping
    /// depends on what follows the literal.
    literals: Vec<(Vec<u8>, usize)>,
    /// How long the literals' escaped forms are together, at most: with the reader's values,
    /// the size of the buffer that escapes a message part without growing.
    most: usize,
}

impl Escaped {
    pub fn new(document: &Prepared) -> Escaped {
        let literals: Vec<(Vec<u8>, usize)> = document
            .literals()
            .map(|literal| {
                let bytes = literal.as_bytes();
                let open = open_end(bytes);
                let mut escaped = Vec::with_capacity(bytes.len() + bytes.len() / 8);
                escape(bytes, 0..bytes.len() - open, &mut escaped);
                (escaped, open)
            })
            .collect();
        let most = literals
            .iter()
            .map(|(done, open)| done.len() + 3 * open)
            .sum();
        Escaped { literals, most }
    }

    /// `document` (the one this was made of) filled with `values`, in quoted-printable:
    /// exactly `encode_text(&document.fill(values))`.
    #[cfg(test)]
    pub fn encode(&self, document: &Prepared, values: &impl MergeValues) -> Vec<u8> {
        let mut out = Vec::new();
        self.escape(document, values).cut_into(&mut out);
        out
    }

    /// `document` (the one this was made of) filled with `values` and escaped, its lines not
    /// yet cut. The filled document is never written out whole: the literals' escaped forms
    /// are copied, and only the values and the few characters before each are escaped,
    /// reading on into what follows them where their escaping depends on it.
    pub fn escape(&self, document: &Prepared, values: &impl MergeValues) -> Uncut {
        let mut filled = String::new();
        let spans = document.fill_spans(values, &mut filled);
        // Each byte of a value or an open end takes at most three once escaped ("=XX"; an LF
        // two); the literals of another document are counted in the same way.
        let foreign: usize = spans
            .iter()
            .filter_map(|s| match s {
                Span::Literal(n, literal) if *n >= self.literals.len() => Some(literal.len()),
                _ => None,
            })
            .sum();
        let mut escaped = Vec::with_capacity(self.most + 3 * (filled.len() + foreign));
        // The bytes still to escape, then the (at most) two that follow them in the document.
        let mut open = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            let bytes = span_bytes(span, &filled);
            let rest = match span {
                Span::Literal(n, _) => match self.literals.get(*n) {
                    Some((done, open)) => {
                        escaped.extend_from_slice(done);
                        &bytes[bytes.len() - open..]
                    }
                    // Made of another document: correct, only slower.
                    None => bytes,
                },
                Span::Value(_) => bytes,
            };
            if rest.is_empty() {
                continue;
            }
            open.clear();
            open.extend_from_slice(rest);
            for next in &spans[i + 1..] {
                let wanted = rest.len() + 2 - open.len();
                let next = span_bytes(next, &filled);
                open.extend_from_slice(&next[..wanted.min(next.len())]);
                if open.len() == rest.len() + 2 {
                    break;
                }
            }
            escape(&open, 0..rest.len(), &mut escaped);
        }
        Uncut(escaped)
    }
}

/// The bytes of a piece of a filled document: a literal's own, or a value's in `filled`.
fn span_bytes<'a>(span: &Span<'a>, filled: &'a str) -> &'a [u8] {
    match span {
        Span::Literal(_, literal) => literal.as_bytes(),
        Span::Value(range) => &filled.as_bytes()[range.clone()],
    }
}

/// A message part escaped for quoted-printable, its lines not yet cut.
#[derive(Debug, Clone)]
pub struct Uncut(Vec<u8>);

impl Uncut {
    /// How long the part is once cut, at most: a soft line break ("=" and CRLF) takes three
    /// bytes, after at least 73 of the escaped text; a line end is CRLF either way.
    pub fn most(&self) -> usize {
        self.0.len() + 3 * (self.0.len() / (LIMIT - 3))
    }

    /// Appends the part, its lines cut, to `out` ([`cut`]).
    pub fn cut_into(&self, out: &mut Vec<u8>) {
        cut(&self.0, out);
    }

    /// The part, its lines cut.
    pub fn cut(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.most());
        self.cut_into(&mut out);
        out
    }
}

/// How many of the last bytes of `literal` are escaped according to what follows it: a CR
/// (is an LF next?), a space or tab (does its line end next?), and a space or tab before a
/// final CR.
fn open_end(literal: &[u8]) -> usize {
    match literal {
        [.., b' ' | b'\t', b'\r'] => 2,
        [.., b' ' | b'\t' | b'\r'] => 1,
        _ => 0,
    }
}

/// Appends `text[range]` escaped to `out`, reading what follows the range in `text` where a
/// character's escaping depends on it; the end of `text` ends the last line.
fn escape(text: &[u8], range: Range<usize>, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let end = range.end;
    let mut i = range.start;
    while i < end {
        // Runs of characters written as they are, at once.
        let run = text[i..end]
            .iter()
            .position(|&b| !PLAIN[usize::from(b)])
            .unwrap_or(end - i);
        out.extend_from_slice(&text[i..i + run]);
        i += run;
        if i == end {
            break;
        }
        let byte = text[i];
        let next = text.get(i + 1).copied();
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            // The CR of a CRLF: the LF writes the line end.
            b'\r' if next == Some(b'\n') => {}
            b' ' | b'\t' => {
                let line_ends = match next {
                    None | Some(b'\n') => true,
                    Some(b'\r') => text.get(i + 2) == Some(&b'\n'),
                    Some(_) => false,
                };
                if line_ends {
                    out.extend_from_slice(if byte == b' ' { b"=20" } else { b"=09" });
                } else {
                    out.push(byte);
                }
            }
            _ => out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]),
        }
        i += 1;
    }
}

/// Escaped text cut into lines of at most [`LIMIT`] characters with soft line breaks,
/// appended to `out`.
fn cut(escaped: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', escaped).chain(std::iter::once(escaped.len()));
    for end in ends {
        let line = &escaped[start..end];
        let last = end == escaped.len();
        start = end + 1;
        // Escaped text holds a CR only before an LF.
        let mut rest = line.strip_suffix(b"\r").unwrap_or(line);
        while rest.len() > LIMIT {
            // Room for 75 and the "=", less an "=XX" that would be cut.
            let mut n = LIMIT - 1;
            if rest[n - 1] == b'=' {
                n -= 1;
            } else if rest[n - 2] == b'=' {
                n -= 2;
            }
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"=\r\n");
            rest = &rest[n..];
        }
        out.extend_from_slice(rest);
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Characters written as they are, but for a space or tab before a line end: printable ASCII
/// but "=". Blanks are not here, so that [`escape`] looks at what follows them.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'!';
    while b <= b'~' {
        table[b as usize] = b != b'=';
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;

    use super::encode_text;

    fn lettre(text: &str) -> Vec<u8> {
        Body::new_with_encoding(text.to_string(), ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(|_| unreachable!("quoted-printable takes any text"))
            .into_vec()
    }

    #[test]
    fn the_same_bytes_as_lettre_on_edge_cases() {
        let long = "x".repeat(200);
        let blanks = format!("{} \r\n{}\t\n", "y".repeat(75), "z".repeat(74));
        let escapes = format!("{}=é=\r{}", "w".repeat(73), "=".repeat(30));
        let texts = [
            "",
            "plain",
            "LF\nCRLF\r\nCR\rend\r",
            "\nstarts and ends with LF\n",
            "a space \nand a tab\t\n= and é, ü, 📬 ",
            "\r\r\n\n\r",
            &long,
            &blanks,
            &escapes,
        ];
        for text in texts {
            assert_eq!(encode_text(text), lettre(text), "{text:?}");
        }
    }

    #[test]
    fn the_same_bytes_as_lettre_on_random_text() {
        // Characters that exercise every rule, in random runs (a fixed linear congruential
        // sequence, so that a failure can be replayed).
        let alphabet = ["a", "b", " ", "\t", "\r", "\n", "\r\n", "=", ".", "é", "📬"];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        for _ in 0..3000 {
            let len = next(400);
            let text: String = (0..len)
                .map(|_| {
                    if next(3) == 0 {
                        alphabet[next(alphabet.len())]
                    } else {
                        "x"
                    }
                })
                .collect();
            assert_eq!(encode_text(&text), lettre(&text), "{text:?}");
        }
    }
}

#[cfg(test)]
mod template_tests {
    use super::{Escaped, encode_text};
    use crate::merge::{FieldKey, FieldTable, MergeValues, Prepared};

    struct Value(String);

    impl MergeValues for Value {
        fn value(&self, _: &FieldKey) -> Option<&str> {
            Some(&self.0)
        }
    }

    #[test]
    fn literals_escaped_once_give_the_same_bytes_as_the_filled_text() {
        // Random literals and values around holes, blanks, CRs and LFs at every edge.
        let alphabet = ["a", " ", "\t", "\r", "\n", "\r\n", "=", ".", "é"];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let mut table = FieldTable::default();
        let marker = table.mark("{{subscriber.first_name}}");
        for _ in 0..2000 {
            let mut random = |max: usize| -> String {
                (0..next(max))
                    .map(|_| {
                        if next(3) == 0 {
                            alphabet[next(alphabet.len())]
                        } else {
                            "x"
                        }
                    })
                    .collect()
            };
            let mut source = String::new();
            for _ in 0..3 {
                source.push_str(&random(200));
                source.push_str(&marker);
            }
            source.push_str(&random(200));
            let document = Prepared::text(&source, &table);
            let escaped = Escaped::new(&document);
            for _ in 0..3 {
                let value = Value(random(90));
                assert_eq!(
                    escaped.encode(&document, &value),
                    encode_text(&document.fill(&value)),
                    "{source:?} with {:?}",
                    value.0
                );
            }
        }
    }
}
