//! Quoted-printable encoding of a message part, byte for byte as lettre writes a `String`
//! body (its CRLF line ends, then the `quoted_printable` crate), in two steps:
//! - **escaping** ([`escape`]): each character as it will be written — itself, or "=XX" for
//!   "=", control characters (a lone CR), bytes over 126, and a space or tab before a line
//!   end; CRLF and a lone LF end a line ("\r\n");
//! - **cutting** ([`Lines`]): the lines at most 76 characters, a soft line break ("=" at the
//!   end) after at most 75, never inside an "=XX"; a line's last piece may take all 76.
//!
//! Whether a character is escaped depends on it and at most the two after it, never on the
//! column, so the literal text of an issue is escaped once ([`Escaped`]); per reader only the
//! values and the few characters before each are ([`Part`]), and the escaped pieces are cut
//! into lines as they come, straight into the message ([`super::mime`]): the filled text and
//! its escaped form are never written whole, and the part is copied once, in runs of up to
//! 76 bytes. The crate pushed one `char` at a time onto a `String`, and our first encoder
//! still looked at every byte of the sample's 80 KB of HTML for every reader: most of a
//! send's instructions (callgrind).
//!
//! Where a long literal is cut depends only on the column it starts at (the cut looks back
//! no further than the 76th character of a line): it is cut once per column, the first time a
//! reader's values leave it there, and copied whole for every other reader whose values leave
//! it at the same column ([`Escaped::cut`]). Names differ in length by a few characters, so a
//! few columns serve a whole list; cutting line by line was a fifth of a send's CPU (perf).

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use crate::merge::{MergeValues, Prepared, Span};

/// The longest encoded line (RFC 2045), soft line break included.
const LIMIT: usize = 76;

/// A literal whose escaped form is at least this long is cut once per column it starts at
/// ([`Escaped::cut`]); a shorter one is cut as it comes, for each reader.
const CUT_ONCE_FROM: usize = 512;

/// The columns a literal is kept cut at, at most: beyond, it is cut as it comes (a list whose
/// values end at every column costs no more memory than this many copies of the literal).
const MOST_CUTS: usize = 16;

/// `text` in quoted-printable, with CRLF line ends, the plain way: escaped whole, then cut.
/// What [`Escaped::escape`] must write, and what lettre's own encoding is checked against.
#[cfg(test)]
pub fn encode_text(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut escaped = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    escape(bytes, 0..bytes.len(), &mut escaped);
    cut(&escaped)
}

/// The literal text of a document escaped once, for many readers.
#[derive(Debug)]
pub struct Escaped {
    /// For each literal: its escaped form but for its last `usize` bytes, whose escaping
    /// depends on what follows the literal.
    literals: Vec<(Vec<u8>, usize)>,
    /// How long the literals' escaped forms are together, at most.
    most: usize,
    /// The long literals' escaped forms cut into lines, by literal, for the columns they
    /// started at so far ([`Escaped::cut`]).
    cuts: Mutex<Vec<Vec<Arc<Cut>>>>,
}

/// A literal's escaped form cut into lines from a column.
#[derive(Debug)]
struct Cut {
    /// The column the literal starts at.
    from: usize,
    /// The literal in lines, as [`Lines::push`] writes it from that column.
    bytes: Vec<u8>,
    /// Where in `bytes` a line it begins starts with ".", and `bytes.len()` when it ends with
    /// a line end or a soft line break.
    starts: Vec<usize>,
    /// The column after it: the length of its last line, with what stood before it when it
    /// holds no line end.
    to: usize,
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
        // An open end's byte takes at most three once escaped ("=XX"; an LF two).
        let most = literals
            .iter()
            .map(|(done, open)| done.len() + 3 * open)
            .sum();
        let cuts = Mutex::new(vec![Vec::new(); literals.len()]);
        Escaped {
            literals,
            most,
            cuts,
        }
    }

    /// Pushes literal `n`'s escaped form (but its open end) onto `lines`: a long one from the
    /// cut made once for the column it starts at, when it starts early enough on its line
    /// that the cut looks at none of what stands before it.
    fn push_literal(&self, n: usize, lines: &mut Lines<'_>) {
        let done = &self.literals[n].0;
        let column = lines.out.len() - lines.start;
        // A cut looks back at the line's 74th and 75th characters.
        if done.len() < CUT_ONCE_FROM || column > LIMIT - 4 {
            return lines.push(done);
        }
        match self.cut(n, column) {
            Some(cut) => {
                let at = lines.out.len();
                lines.out.extend_from_slice(&cut.bytes);
                lines.start = lines.out.len() - cut.to;
                lines.starts.extend(cut.starts.iter().map(|s| at + s));
            }
            None => lines.push(done),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Arc<Cut>>>> {
        // Each change is one push: a panic leaves the list whole.
        self.cuts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Literal `n` cut into lines from `column`: made the first time, then shared; `None`
    /// once [`MOST_CUTS`] columns of it are kept.
    fn cut(&self, n: usize, column: usize) -> Option<Arc<Cut>> {
        {
            let kept = &self.kept()[n];
            if let Some(cut) = kept.iter().find(|c| c.from == column) {
                return Some(Arc::clone(cut));
            }
            if kept.len() >= MOST_CUTS {
                return None;
            }
        }
        // The line so far, as the cut sees it: nothing of it (it starts early enough).
        let mut bytes = vec![b' '; column];
        let mut starts = Vec::new();
        let mut lines = Lines {
            out: &mut bytes,
            start: 0,
            starts: &mut starts,
        };
        lines.push(&self.literals[n].0);
        let to = lines.out.len() - lines.start;
        bytes.drain(..column);
        // Only the lines that start with a dot are wanted, and one that starts where the cut
        // ends (its first byte comes after it).
        starts.retain_mut(|s| {
            *s -= column;
            bytes.get(*s).is_none_or(|&b| b == b'.')
        });
        let cut = Arc::new(Cut {
            from: column,
            bytes,
            starts,
            to,
        });
        let mut all = self.kept();
        let kept = &mut all[n];
        if kept.len() < MOST_CUTS && kept.iter().all(|c| c.from != column) {
            kept.push(Arc::clone(&cut));
        }
        Some(cut)
    }

    /// `document` (the one this was made of) filled with `values`, ready to be written in
    /// quoted-printable ([`Part::write`]).
    pub fn fill<'d>(&'d self, document: &'d Prepared, values: &impl MergeValues) -> Part<'d> {
        let mut filled = String::new();
        let spans = document.fill_spans(values, &mut filled);
        // The values, and the literals of another document, counted as open ends.
        let other: usize = spans
            .iter()
            .map(|span| match span {
                Span::Literal(n, literal) if *n >= self.literals.len() => literal.len(),
                _ => 0,
            })
            .sum();
        Part {
            escaped: self,
            spans,
            most: self.most + 3 * (filled.len() + other),
            filled,
        }
    }
}

/// A document filled for one reader, to be written in quoted-printable: its literals escaped
/// once for every reader ([`Escaped`]), its values.
#[derive(Debug)]
pub struct Part<'d> {
    escaped: &'d Escaped,
    spans: Vec<Span<'d>>,
    /// The values, escaped for where each stands ([`Prepared::fill_spans`]).
    filled: String,
    /// How long the part is once escaped, at most.
    most: usize,
}

impl Part<'_> {
    /// How long the part is in quoted-printable, at most: a soft line break ("=" and CRLF)
    /// takes three bytes after at least 73 of the escaped text; a line end is CRLF either way.
    pub fn most(&self) -> usize {
        self.most + 3 * (self.most / (LIMIT - 3))
    }

    /// Appends the part in quoted-printable to `out`: exactly `encode_text` of the filled
    /// document. The filled document is never written out, nor its escaped form: the
    /// literals' escaped forms and the values, escaped with the few characters before each
    /// (reading on into what follows them where their escaping depends on it), go straight
    /// into the lines being cut.
    ///
    /// Adds to `dots` where a line it begins (after a line end or a soft line break) starts
    /// with ".": SMTP doubles those dots ([`crate::message::MimeBytes::dot_lines`]). The
    /// part's first line is not one it begins.
    pub fn write(&self, out: &mut Vec<u8>, dots: &mut Vec<usize>) {
        // Room for a line start every 73 bytes, a full line's worth: a part of long lines
        // needs no more, one of short lines grows it a few times instead of a dozen.
        let mut starts = Vec::with_capacity(self.most() / (LIMIT - 3) + 1);
        let mut lines = Lines {
            start: out.len(),
            out,
            starts: &mut starts,
        };
        // The bytes still to escape, then the (at most) two that follow them in the document.
        let mut open = Vec::new();
        let mut escaped = Vec::new();
        for (i, span) in self.spans.iter().enumerate() {
            let bytes = span_bytes(span, &self.filled);
            let rest = match span {
                Span::Literal(n, _) => match self.escaped.literals.get(*n) {
                    Some((_, open)) => {
                        self.escaped.push_literal(*n, &mut lines);
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
            for next in &self.spans[i + 1..] {
                let wanted = rest.len() + 2 - open.len();
                let next = span_bytes(next, &self.filled);
                open.extend_from_slice(&next[..wanted.min(next.len())]);
                if open.len() == rest.len() + 2 {
                    break;
                }
            }
            escaped.clear();
            escape(&open, 0..rest.len(), &mut escaped);
            lines.push(&escaped);
        }
        dots.extend(starts.into_iter().filter(|&s| out.get(s) == Some(&b'.')));
    }

    /// The part in quoted-printable.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.most());
        self.write(&mut out, &mut Vec::new());
        out
    }
}

/// The bytes of a piece of a filled document: a literal's own, or a value's in `filled`.
fn span_bytes<'a>(span: &Span<'a>, filled: &'a str) -> &'a [u8] {
    match span {
        Span::Literal(_, literal) => literal.as_bytes(),
        Span::Value(range) => &filled.as_bytes()[range.clone()],
    }
}

/// Escaped text cut into lines as it comes, piece by piece: the same bytes as [`cut`] of the
/// pieces put together, as long as no piece ends between the CR and the LF of a line end
/// ([`escape`] writes both at once).
struct Lines<'o> {
    out: &'o mut Vec<u8>,
    /// Where the line being written starts in `out`, after a line end or a soft line break.
    start: usize,
    /// Where lines begun here start in `out`: every one cut here, and of a kept cut those
    /// that start with "." ([`Cut::starts`]).
    starts: &'o mut Vec<usize>,
}

impl Lines<'_> {
    fn push(&mut self, mut escaped: &[u8]) {
        while let Some(lf) = memchr::memchr(b'\n', escaped) {
            // Escaped text holds a CR only before an LF.
            let line = &escaped[..lf];
            self.line(line.strip_suffix(b"\r").unwrap_or(line));
            self.out.extend_from_slice(b"\r\n");
            self.start = self.out.len();
            self.starts.push(self.start);
            escaped = &escaped[lf + 1..];
        }
        self.line(escaped);
    }

    /// Appends `text` (no line end in it) to the line, cut with a soft line break where the
    /// line grows past [`LIMIT`]: then it does not end within the limit, and is cut after 75
    /// characters, less an "=XX" that would be cut.
    fn line(&mut self, mut text: &[u8]) {
        loop {
            let room = LIMIT + 1 - (self.out.len() - self.start);
            if text.len() < room {
                self.out.extend_from_slice(text);
                return;
            }
            self.out.extend_from_slice(&text[..room]);
            text = &text[room..];
            let line = &self.out[self.start..];
            let mut n = LIMIT - 1;
            if line[n - 1] == b'=' {
                n -= 1;
            } else if line[n - 2] == b'=' {
                n -= 2;
            }
            // What goes on the next line: 2 to 4 characters.
            let mut carried = [0; 4];
            let carried = &mut carried[..LIMIT + 1 - n];
            carried.copy_from_slice(&line[n..]);
            self.out.truncate(self.start + n);
            self.out.extend_from_slice(b"=\r\n");
            self.start = self.out.len();
            self.starts.push(self.start);
            self.out.extend_from_slice(carried);
        }
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

/// Escaped text cut into lines of at most [`LIMIT`] characters with soft line breaks, the
/// plain way: what [`Lines`] must write.
#[cfg(test)]
fn cut(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len() + escaped.len() / 25 + 8);
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
    out
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

    pub(super) fn lettre(text: &str) -> Vec<u8> {
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
        // Characters that exercise every rule, in random runs.
        let alphabet = ["a", "b", " ", "\t", "\r", "\n", "\r\n", "=", ".", "é", "📬"];
        let mut numbers = crate::testing::Replayable::new(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| numbers.below(n);
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
        same_bytes_on_random_documents(&alphabet, 3, 200, 0x9e37_79b9_7f4a_7c15);
    }

    #[test]
    fn long_lines_are_cut_as_the_filled_text_is() {
        // Lines of hundreds of characters (no line end but between the pieces), escapes
        // everywhere a soft line break may fall.
        let alphabet = ["=", "é", " ", "\t", "x="];
        same_bytes_on_random_documents(&alphabet, 2, 600, 0x2545_f491_4f6c_dd1d);
    }

    #[test]
    fn long_literals_cut_once_per_column_give_the_same_bytes_as_lettre() {
        // Literals long enough to be cut once per column they start at; readers whose values
        // leave them at the same columns again and again, and at more columns than are kept.
        let alphabets: [&[&str]; 2] = [
            &["=", "é", " ", "\t", "x=", "."],
            &["=", "é", " ", "\t", "\n", "\r\n", "."],
        ];
        let mut numbers = crate::testing::Replayable::new(0x5851_f42d_4c95_7f2d);
        let mut table = FieldTable::default();
        let marker = table.mark("{{subscriber.first_name}}");
        for document in 0..24 {
            let alphabet = alphabets[document % 2];
            let random = |numbers: &mut crate::testing::Replayable, len: usize| -> String {
                (0..len)
                    .map(|_| match numbers.below(12) {
                        0 => alphabet[numbers.below(alphabet.len())],
                        _ => "x",
                    })
                    .collect()
            };
            let source = [0; 3].map(|_| random(&mut numbers, 1500)).join(&marker);
            let document = Prepared::text(&source, &table);
            let escaped = Escaped::new(&document);
            let widths = 1 + numbers.below(40);
            for _ in 0..30 {
                let len = numbers.below(widths);
                let value = Value(random(&mut numbers, len));
                let filled = document.fill(&value);
                let (mut out, mut dots) = (Vec::new(), Vec::new());
                escaped.fill(&document, &value).write(&mut out, &mut dots);
                assert_eq!(
                    out,
                    super::tests::lettre(&filled),
                    "{source:?} with {:?}",
                    value.0
                );
                // The lines it says start with ".", and no other.
                assert_eq!(dots, crate::message::dot_lines(&out), "{source:?}");
            }
        }
    }

    /// Documents of random literals around three holes, each character "x" or, one time in
    /// `odds`, one of `alphabet`, filled with random values: [`Escaped`] writes them as
    /// [`encode_text`] does the filled text.
    fn same_bytes_on_random_documents(alphabet: &[&str], odds: usize, len: usize, seed: u64) {
        let mut numbers = crate::testing::Replayable::new(seed);
        let mut next = |n: usize| numbers.below(n);
        let mut table = FieldTable::default();
        let marker = table.mark("{{subscriber.first_name}}");
        for _ in 0..2000 {
            let mut random = |max: usize| -> String {
                (0..next(max))
                    .map(|_| {
                        if next(odds) == 0 {
                            alphabet[next(alphabet.len())]
                        } else {
                            "x"
                        }
                    })
                    .collect()
            };
            let mut source = String::new();
            for _ in 0..3 {
                source.push_str(&random(len));
                source.push_str(&marker);
            }
            source.push_str(&random(len));
            let document = Prepared::text(&source, &table);
            let escaped = Escaped::new(&document);
            for _ in 0..3 {
                let value = Value(random(90));
                let (mut out, mut dots) = (Vec::new(), Vec::new());
                escaped.fill(&document, &value).write(&mut out, &mut dots);
                assert_eq!(
                    out,
                    encode_text(&document.fill(&value)),
                    "{source:?} with {:?}",
                    value.0
                );
                assert_eq!(dots, crate::message::dot_lines(&out), "{source:?}");
            }
        }
    }
}
