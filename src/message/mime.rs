//! One reader's message as MIME bytes, built with lettre: From, Reply-To, To, Subject
//! (RFC 2047 where needed), Date, Message-ID, List-Id, List-Unsubscribe and
//! List-Unsubscribe-Post, Feedback-ID when there is one, then multipart/alternative with the text part first, both UTF-8 in
//! quoted-printable, and a DKIM signature when there is a key.
//!
//! The parts arrive filled, written here in quoted-printable straight into the message
//! ([`super::qp`]: exactly the bytes lettre makes of a `String` body, which it would also
//! scan to choose an encoding it then ignores, and add each CR with `String::insert`, moving
//! the rest of the text each time).
//!
//! Without DKIM, lettre writes an issue's message once ([`Frame`]): every reader's message is
//! that one with the reader's own header lines (To, Subject, Date, Message-ID,
//! List-Unsubscribe) written by lettre in place of the first reader's, and the reader's parts
//! in place of stand-ins. So the messages of an issue share one MIME boundary, random per issue.
//!
//! The values arrive checked (no line break in anything bound for a header): this module only
//! puts them together.

use std::io::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::dkim::DkimConfig;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue, Headers,
};
use lettre::message::{Body, Mailbox, Mailboxes, MultiPart, SinglePart};

use super::MimeBytes;
use super::qp::Part;

macro_rules! text_header {
    ($name:ident, $header:literal) => {
        #[derive(Debug, Clone)]
        struct $name(String);

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($header)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(ListUnsubscribe, "List-Unsubscribe");
text_header!(ListUnsubscribePost, "List-Unsubscribe-Post");
text_header!(ListId, "List-Id");
text_header!(FeedbackId, "Feedback-ID");

/// Everything one reader's MIME message is made of.
pub(super) struct Mime<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: Mailbox,
    pub subject: String,
    pub date: SystemTime,
    pub message_id: String,
    pub list_id: &'a str,
    /// The value of List-Unsubscribe: the reader's link and the mailto.
    pub list_unsubscribe: String,
    /// The text part, to be written in quoted-printable.
    pub text: Part<'a>,
    /// The HTML part, to be written in quoted-printable.
    pub html: Part<'a>,
    /// Feedback-ID, for Gmail's feedback loop: `2020-06:newsletter:efus`.
    pub feedback_id: Option<String>,
    pub dkim: Option<&'a DkimConfig>,
    /// The issue's message as lettre writes it, made from the first reader's.
    pub frame: &'a Frames,
}

/// The bodies lettre is given in place of the parts when it writes a message without DKIM:
/// each stands where its part goes, as lettre writes a body as it is given. The last of each
/// is taken: the parts come after every header, so a header that held the same text (a
/// subject, say) comes before it.
const TEXT_HERE: &[u8] = b"\0bulletin: the text part\0";
const HTML_HERE: &[u8] = b"\0bulletin: the HTML part\0";

impl Mime<'_> {
    /// The whole message, CRLF line endings, as it goes on the wire.
    ///
    /// Without DKIM, lettre writes the message around two stand-ins, and the parts' lines are
    /// cut straight into the one buffer of the message's size: lettre would copy each part
    /// into its body, then the bodies into a buffer that grows by doubling (callgrind: a sixth
    /// of a send's instructions). DKIM signs the bodies, so lettre gets them.
    ///
    /// Quoted-printable is all ASCII: of a message built around the stand-ins, only what
    /// lettre wrote is read to know whether the whole is.
    pub fn build(self) -> Result<MimeBytes, lettre::error::Error> {
        if self.dkim.is_some() {
            return Ok(self.lettre(self.text.encode(), self.html.encode())?.into());
        }
        let around = match self.frame.get_or_try_init(|| self.frame_of_this())? {
            Some(frame) => frame.fill(&self),
            None => self.lettre(TEXT_HERE.to_vec(), HTML_HERE.to_vec())?,
        };
        let html_at = memchr::memmem::rfind(&around, HTML_HERE);
        let text_at = html_at.and_then(|at| memchr::memmem::rfind(&around[..at], TEXT_HERE));
        let (Some(text_at), Some(html_at)) = (text_at, html_at) else {
            // lettre writes a body as it is given; were it ever not to, it gets the parts.
            return Ok(self.lettre(self.text.encode(), self.html.encode())?.into());
        };
        let size = around.len() - TEXT_HERE.len() - HTML_HERE.len();
        let mut message = Vec::with_capacity(size + self.text.most() + self.html.most());
        // Where lines start with "." (for SMTP): the parts say where in the lines they begin;
        // lettre's headers and boundaries, and the first line of each part and of what
        // follows it, are read for them.
        let mut dots = Vec::new();
        message.extend_from_slice(&around[..text_at]);
        let text = message.len();
        self.text.write(&mut message, &mut dots);
        let between = message.len();
        message.extend_from_slice(&around[text_at + TEXT_HERE.len()..html_at]);
        let html = message.len();
        self.html.write(&mut message, &mut dots);
        let after = message.len();
        message.extend_from_slice(&around[html_at + HTML_HERE.len()..]);
        for (from, to) in [(0, text), (between, html), (after, message.len())] {
            // From the CRLF that may end the line before, to the first byte of the next part.
            let from = from.saturating_sub(2);
            let to = (to + 1).min(message.len());
            dots.extend(
                super::dot_lines(&message[from..to])
                    .into_iter()
                    .map(|d| from + d),
            );
        }
        dots.sort_unstable();
        dots.dedup();
        Ok(MimeBytes::built(message, around.is_ascii(), dots))
    }

    /// The frame of this reader's message: `None` if lettre did not write each of the
    /// reader's own headers once, in which case every message is written whole by lettre.
    fn frame_of_this(&self) -> Result<Option<Frame>, lettre::error::Error> {
        Ok(Frame::cut(
            self.lettre(TEXT_HERE.to_vec(), HTML_HERE.to_vec())?,
        ))
    }

    /// One of the reader's own header lines, as lettre writes it in a message: `Name: value`
    /// (encoded and folded) and CRLF.
    fn write_own(&self, own: Own, out: &mut Vec<u8>) {
        let mut headers = Headers::with_capacity(1);
        match own {
            Own::To => headers.set(header::To::from(Mailboxes::from(self.to.clone()))),
            Own::Subject => headers.set(header::Subject::from(self.subject.clone())),
            Own::Date => headers.set(header::Date::new(self.date)),
            Own::MessageId => headers.set(header::MessageId::from(self.message_id.clone())),
            Own::ListUnsubscribe => headers.set(ListUnsubscribe(self.list_unsubscribe.clone())),
        }
        // Writing to a Vec does not fail.
        let _ = write!(out, "{headers}");
    }

    /// The message as lettre writes it with these bodies (already in quoted-printable), signed
    /// when there is a DKIM key.
    fn lettre(&self, text: Vec<u8>, html: Vec<u8>) -> Result<Vec<u8>, lettre::error::Error> {
        // The envelope, which lettre would otherwise read back from the From and To it has just
        // been given, parsing both again (callgrind: 3% of a send). It is not written.
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![self.to.email.clone()])?;
        let mut builder = Message::builder()
            .envelope(envelope)
            .from(self.from.clone())
            .to(self.to.clone())
            .subject(self.subject.clone())
            .date(self.date)
            .message_id(Some(self.message_id.clone()))
            .header(ListId(self.list_id.to_string()))
            .header(ListUnsubscribe(self.list_unsubscribe.clone()))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
        if let Some(reply_to) = self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some(feedback_id) = &self.feedback_id {
            builder = builder.header(FeedbackId(feedback_id.clone()));
        }
        // Quoted-printable keeps lines under 78 characters and the text readable in source.
        let part = |content_type: ContentType, body: Vec<u8>| {
            SinglePart::builder()
                .header(content_type)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(Body::dangerous_pre_encoded(
                    body,
                    ContentTransferEncoding::QuotedPrintable,
                ))
        };
        let body = MultiPart::alternative()
            .singlepart(part(ContentType::TEXT_PLAIN, text))
            .singlepart(part(ContentType::TEXT_HTML, html));
        let mut message = builder.multipart(body)?;
        if let Some(dkim) = self.dkim {
            message.sign(dkim);
        }
        Ok(message.formatted())
    }
}

/// The headers whose values are each reader's own; the frame finds their lines by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Own {
    To,
    Subject,
    Date,
    MessageId,
    ListUnsubscribe,
}

impl Own {
    const ALL: [Own; 5] = [
        Own::To,
        Own::Subject,
        Own::Date,
        Own::MessageId,
        Own::ListUnsubscribe,
    ];

    fn name(self) -> &'static str {
        match self {
            Own::To => "To",
            Own::Subject => "Subject",
            Own::Date => "Date",
            Own::MessageId => "Message-ID",
            Own::ListUnsubscribe => "List-Unsubscribe",
        }
    }
}

/// An issue's message as lettre writes it around the parts' stand-ins, with the reader's own
/// header lines taken out: what every reader's message shares, written once. Making each
/// message with lettre cost a tenth of a send's CPU (perf, 8 connections).
pub(super) struct Frame {
    around: Vec<u8>,
    /// Where each of the reader's own header lines goes in `around`, in order.
    holes: Vec<(usize, Own)>,
}

impl Frame {
    /// `around` (lettre's message) with each of the reader's own header lines taken out,
    /// folded lines included; `None` unless each is there exactly once.
    fn cut(around: Vec<u8>) -> Option<Frame> {
        let line_end = |from: usize, to: usize| {
            memchr::memmem::find(&around[from..to], b"\r\n").map(|n| from + n + 2)
        };
        // The header block ends with its last line's CRLF, before the empty line.
        let head = memchr::memmem::find(&around, b"\r\n\r\n")? + 2;
        let mut kept = Vec::with_capacity(around.len());
        let mut holes = Vec::new();
        let mut at = 0;
        while at < head {
            let mut end = line_end(at, head)?;
            while end < head && matches!(around[end], b' ' | b'\t') {
                end = line_end(end, head)?;
            }
            let line = &around[at..end];
            let own = Own::ALL.into_iter().find(|own| {
                let name = own.name().as_bytes();
                line.starts_with(name) && line.get(name.len()) == Some(&b':')
            });
            match own {
                Some(own) => holes.push((kept.len(), own)),
                None => kept.extend_from_slice(line),
            }
            at = end;
        }
        kept.extend_from_slice(&around[head..]);
        let mut found: Vec<Own> = holes.iter().map(|(_, own)| *own).collect();
        found.sort_unstable();
        (found == Own::ALL).then_some(Frame {
            around: kept,
            holes,
        })
    }

    /// The message around the parts' stand-ins, with `mime`'s own header lines.
    fn fill(&self, mime: &Mime<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.around.len() + 512);
        let mut at = 0;
        for &(offset, own) in &self.holes {
            out.extend_from_slice(&self.around[at..offset]);
            mime.write_own(own, &mut out);
            at = offset;
        }
        out.extend_from_slice(&self.around[at..]);
        out
    }
}

/// An issue's frame: its message as lettre writes it, cut from its first reader's, with the
/// reader's own header lines taken out; `Default::default()`.
#[derive(Default)]
pub struct Frames(OnceLock<Option<Frame>>);

impl Frames {
    fn get_or_try_init<E>(
        &self,
        make: impl FnOnce() -> Result<Option<Frame>, E>,
    ) -> Result<Option<&Frame>, E> {
        if let Some(frame) = self.0.get() {
            return Ok(frame.as_ref());
        }
        let frame = make()?;
        // Two readers composed at once may both make one; the first kept is every reader's.
        Ok(self.0.get_or_init(|| frame).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::layout::Layout;
    use crate::message::qp::encode_text;
    use crate::render::{self, RenderOptions};

    /// The message with its MIME boundary (random) written as "BOUNDARY".
    fn without_boundary(message: &[u8]) -> Vec<u8> {
        let text = String::from_utf8(message.to_vec()).unwrap();
        let at = text.find("boundary=\"").unwrap() + "boundary=\"".len();
        let boundary = &text[at..at + text[at..].find('"').unwrap()];
        text.replace(boundary, "BOUNDARY").into_bytes()
    }

    #[test]
    fn the_message_is_the_one_lettre_writes_with_the_parts_in_it() {
        use std::str::FromStr;

        use crate::merge::{FieldTable, NoValues, Prepared};
        use crate::message::qp::Escaped;

        let from = Mailbox::from_str("Efus <newsletter@example.org>").unwrap();
        let reply_to = Mailbox::from_str("contact@example.org").unwrap();
        let long = format!("{}.\n.{}", "é ".repeat(100), "x".repeat(300));
        let parts = [
            ("", ""),
            ("plain", "<p>html</p>"),
            (
                ".starts with a dot\n.\n",
                "\0 NUL, \r lone CR, = and trailing blank \n",
            ),
            (long.as_str(), "bulletin: the text part"),
        ];
        for (text, html) in parts {
            let (text_doc, html_doc) = (
                Prepared::text(text, &FieldTable::default()),
                Prepared::text(html, &FieldTable::default()),
            );
            let (text_esc, html_esc) = (Escaped::new(&text_doc), Escaped::new(&html_doc));
            let text_part = || text_esc.fill(&text_doc, &NoValues);
            let html_part = || html_esc.fill(&html_doc, &NoValues);
            for with_reply_to in [false, true] {
                // One frame for the issue: its first reader's message makes it, the others'
                // are written in it, each as lettre writes it whole.
                let frames = Frames::default();
                let long_link = format!("<https://example.org/u/{}>", "t".repeat(150));
                let readers = [
                    (
                        "Réader, 1",
                        "r1@example.org",
                        "Düsseldorf \0bulletin: the HTML part\0",
                        0,
                        "<https://example.org/u/x>",
                    ),
                    (
                        "",
                        "second@example.org",
                        "Plain subject",
                        86_400,
                        long_link.as_str(),
                    ),
                    (
                        "Ђорђе Петровић-Њемачки, with a name long enough to be folded by lettre",
                        "third.reader.with.a.long.address@sub.example.org",
                        "Sujet très long qui parle de Düsseldorf, de Zürich et de Łódź, assez long pour être plié",
                        1_700_000_000,
                        "<https://example.org/u/y>, <mailto:unsubscribe@example.org?subject=unsubscribe>",
                    ),
                ];
                for (name, address, subject, seconds, unsubscribe) in readers {
                    let mime = |text, html| Mime {
                        from: &from,
                        reply_to: with_reply_to.then_some(&reply_to),
                        to: Mailbox::new(
                            Some(name.to_string()).filter(|n| !n.is_empty()),
                            address.parse().unwrap(),
                        ),
                        subject: subject.into(),
                        date: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
                        message_id: format!("<2020-06.{seconds}@example.org>"),
                        list_id: "Efus newsletter <newsletter.example.org>",
                        list_unsubscribe: unsubscribe.into(),
                        text,
                        html,
                        feedback_id: with_reply_to.then(|| "2020-06:newsletter:efus".into()),
                        dkim: None,
                        frame: &frames,
                    };
                    let built = mime(text_part(), html_part()).build().unwrap();
                    let lettre = mime(text_part(), html_part())
                        .lettre(encode_text(text), encode_text(html))
                        .unwrap();
                    assert_eq!(built.is_ascii(), built.as_bytes().is_ascii());
                    assert_eq!(
                        String::from_utf8(without_boundary(built.as_bytes())).unwrap(),
                        String::from_utf8(without_boundary(&lettre)).unwrap(),
                        "{text:?}, {html:?}, {name:?}"
                    );
                }
                assert!(
                    frames.0.get().is_some_and(Option::is_some),
                    "the frame was made"
                );
            }
        }
    }

    #[test]
    fn parts_are_encoded_exactly_as_lettre_encodes_them() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(root.join("issues/2020-06.json")).unwrap();
        let loaded = crate::issue::parse(&root.join("issues/2020-06.json"), source).unwrap();
        let layout = Layout::load(Some(&root.join("layouts/efus"))).unwrap();
        let rendered = render::render(&loaded, &layout, &RenderOptions::default()).unwrap();
        let html = rendered.html.fill(&crate::merge::NoValues);
        let long = "x".repeat(200);
        let texts = [
            html.as_str(),
            "LF\nCRLF\r\nCR\rend",
            "\nstarts and ends with LF\n",
            "a space \nand a tab\t\n= and é, ü, 📬",
            &long,
            "",
        ];
        for text in texts {
            let lettre =
                Body::new_with_encoding(text.to_string(), ContentTransferEncoding::QuotedPrintable)
                    .unwrap();
            assert!(encode_text(text) == lettre.into_vec(), "{text:?}");
        }
    }
}
