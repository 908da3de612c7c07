//! Quoted-printable encoding of a message part, byte for byte as lettre writes a `String`
//! body (its CRLF line ends, then the `quoted_printable` crate), in one pass that copies runs
//! of plain characters at once. The crate pushes one `char` at a time onto a `String`; on the
//! sample's 70 KB of HTML that was the largest cost of a send (perf against smtp-sink).
//!
//! Lines are at most 76 characters with their soft line break ("=" at the end); CRLF and a
//! lone LF end a line; a space or tab before a line end, "=", control characters (a lone CR)
//! and bytes over 126 are written as "=XX".

/// The longest encoded line, soft line break included (RFC 2045).
const LIMIT: usize = 76;

/// `text` in quoted-printable, with CRLF line ends.
pub fn encode_text(text: &str) -> Vec<u8> {
    let input = text.as_bytes();
    let mut out = Encoder {
        // Soft line breaks add 4%, and HTML's `=` (each "=3D") as much again: room for
        // both, so that 80 KB of HTML is not copied once more to grow (callgrind: an eighth of
        // a send's instructions).
        out: Vec::with_capacity(input.len() + input.len() / 8),
        on_line: 0,
        backup: 0,
    };
    let mut was_cr = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'\n' {
            // CRLF, or a lone LF that lettre would have made one.
            out.line_end();
            was_cr = false;
            i += 1;
            continue;
        }
        if was_cr {
            out.append(b"=0D");
            was_cr = false;
        }
        if byte == b'\r' {
            was_cr = true;
            i += 1;
            continue;
        }
        if LIMIT - out.on_line >= 3 && plain(byte) {
            // As the crate does: a run of plain characters up to 2 short of the limit.
            let max = LIMIT - out.on_line - 2;
            let window = &input[i..input.len().min(i + max)];
            let run = window
                .iter()
                .position(|&b| !plain(b))
                .unwrap_or(window.len());
            out.out.extend_from_slice(&window[..run]);
            out.on_line += run;
            out.backup = out.out.len();
            i += run;
            continue;
        }
        out.byte(byte);
        i += 1;
    }
    if was_cr {
        out.append(b"=0D");
    } else {
        out.escape_trailing_blank();
    }
    out.out
}

/// Characters written as they are (except a space or tab before a line end).
fn plain(byte: u8) -> bool {
    PLAIN[usize::from(byte)]
}

/// [`plain`] for each byte: one load instead of three comparisons in the hottest loop.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        table[b as usize] = b != b'=';
        b += 1;
    }
    table[b'\t' as usize] = true;
    table
};

struct Encoder {
    out: Vec<u8>,
    /// Characters on the current output line.
    on_line: usize,
    /// Where the last unit written starts: a soft line break may go there.
    backup: usize,
}

impl Encoder {
    fn line_end(&mut self) {
        self.escape_trailing_blank();
        self.out.extend_from_slice(b"\r\n");
        self.on_line = 0;
    }

    fn byte(&mut self, byte: u8) {
        if plain(byte) {
            self.append(&[byte]);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            self.append(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }

    /// Writes one unit (a character or an "=XX"), after a soft line break if it would not fit.
    fn append(&mut self, unit: &[u8]) {
        if self.on_line + unit.len() > LIMIT {
            if self.on_line == LIMIT {
                // No room for the "=": the break goes before the last unit written.
                let (at, end) = (self.backup, self.out.len());
                self.on_line = end - at;
                self.out.extend_from_slice(b"=\r\n");
                self.out.copy_within(at..end, at + 3);
                self.out[at..at + 3].copy_from_slice(b"=\r\n");
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.on_line = 0;
            }
        }
        self.out.extend_from_slice(unit);
        self.on_line += unit.len();
        self.backup = self.out.len() - unit.len();
    }

    /// A space or tab may not end a line: it is written as "=20" or "=09".
    fn escape_trailing_blank(&mut self) {
        let escaped: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.out.pop();
        self.on_line -= 1;
        self.append(escaped);
    }
}

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
