//! What a transport receives: one reader's message, as an [`Envelope`] (who from, who to), a
//! Message-ID, and a [`Payload`] in exactly the [`Form`] the transport asked for — the whole
//! MIME message, the message in [`Parts`] for an API that builds the MIME itself, or the
//! reader's [`Filled`] values for the holes of the issue's [`Template`].
//!
//! This module owns building messages: [`Composer`] (made once per issue, it fills the issue
//! for each reader), the MIME message itself (`mime`, quoted-printable in `qp`), DKIM
//! ([`dkim`]: loading the key, the headers it signs) and each reader's unsubscribe link
//! (`unsubscribe`). What a provider takes once per issue, the [`Letterhead`] and the
//! [`Template`], is made here too and handed to transports as plain values.
//!
//! It must not touch transports (no `crate::transport`), the ledger or the send loop: it
//! builds messages and never sends one.

mod compose;
pub mod dkim;
mod mime;
mod qp;
pub mod unsubscribe;
pub mod verp;

use std::fmt;

use lettre::Address;
use lettre::message::Mailbox;

pub use compose::{ComposeError, Composer, PerIssue, Template, TemplateText};
pub use dkim::{DkimError, dkim_config, load as load_dkim};
pub use unsubscribe::Unsubscribe;
pub(crate) use unsubscribe::hex;

/// What a transport needs of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The whole MIME message (SMTP; APIs that take raw MIME).
    Mime,
    /// The filled subject, HTML and text, and the headers (JSON APIs, one message each).
    Parts,
    /// The filled subject and the headers, and the reader's values for the holes of the
    /// issue's [`Template`] (APIs that fill one template for many recipients).
    Values,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Mime => "MIME bytes",
            Form::Parts => "parts",
            Form::Values => "template values",
        })
    }
}

/// Who a message is from and to, as the transport gives them to the server (SMTP's MAIL
/// FROM and RCPT TO); the headers are in the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub from: Address,
    pub to: Address,
}

/// One reader's message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub envelope: Envelope,
    /// `<2020-06.5f2a…@example.org>`: the same for the same issue and reader.
    pub message_id: String,
    pub payload: Payload,
}

/// A message's content, in one [`Form`].
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The whole message, CRLF line endings, as it goes on the wire.
    Mime(MimeBytes),
    /// The message in pieces, for an API that builds the MIME message itself.
    Parts(Parts),
    /// The reader's values for the holes of the issue's [`Template`].
    Values(Filled),
}

/// A whole MIME message, CRLF line endings, as it goes on the wire, with what SMTP needs to
/// know of it: whether it is all ASCII (a message that is not needs 8BITMIME), and where its
/// lines that start with "." are (SMTP doubles those dots). Both are found as the message is
/// built, so that a transport need not read it again to find out.
#[derive(Debug, Clone, PartialEq)]
pub struct MimeBytes {
    bytes: Vec<u8>,
    ascii: bool,
    dots: Vec<usize>,
}

impl MimeBytes {
    /// `bytes`, which the caller knows to be all ASCII or not, with the ".", in order, of
    /// every line that starts with one after a CRLF ([`MimeBytes::dot_lines`]).
    pub(crate) fn built(bytes: Vec<u8>, ascii: bool, dots: Vec<usize>) -> MimeBytes {
        debug_assert_eq!(ascii, bytes.is_ascii(), "told wrong whether it is ASCII");
        debug_assert_eq!(
            dots,
            dot_lines(&bytes),
            "told wrong where lines start with a dot"
        );
        MimeBytes { bytes, ascii, dots }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether every byte of the message is ASCII.
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// Where each line that starts with "." after a CRLF has it, in order: only a CRLF starts
    /// a line, as SMTP's transparency (RFC 5321, 4.5.2) reads it. The first byte of the
    /// message is not counted (a header name; never a ".").
    pub fn dot_lines(&self) -> &[usize] {
        &self.dots
    }
}

impl From<Vec<u8>> for MimeBytes {
    /// Any bytes, read to find out whether they are ASCII and where lines start with ".".
    fn from(bytes: Vec<u8>) -> MimeBytes {
        let ascii = bytes.is_ascii();
        let dots = dot_lines(&bytes);
        MimeBytes { bytes, ascii, dots }
    }
}

/// Where each line of `bytes` that starts with "." after a CRLF has it.
pub(crate) fn dot_lines(bytes: &[u8]) -> Vec<usize> {
    static LINE_DOT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n."));
    LINE_DOT.find_iter(bytes).map(|at| at + 2).collect()
}

/// A reader's message in pieces, for APIs that build the MIME message themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    /// The reader's name, when the list has one.
    pub to_name: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// List-Unsubscribe, List-Unsubscribe-Post and List-Id, with their values.
    pub headers: Vec<(&'static str, String)>,
}

/// A reader's values for the issue's [`Template`], for APIs that fill one template for many
/// readers.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    /// The reader's name, when the list has one.
    pub to_name: Option<String>,
    /// Their own subject, filled (providers substitute in bodies; the subject is per reader).
    pub subject: String,
    /// Their value for each hole of the template, in the template's numbering
    /// ([`TemplateText::holes`] of them).
    pub values: Vec<String>,
    /// List-Unsubscribe, List-Unsubscribe-Post and List-Id, with their values.
    pub headers: Vec<(&'static str, String)>,
}

/// A message whose payload is not in the form a transport takes: the message was composed
/// for another transport.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the message to {to} was built as {got}, and this transport takes {wanted}")]
pub struct PayloadError {
    pub to: Address,
    pub wanted: Form,
    pub got: Form,
}

impl Payload {
    /// The form this payload is in.
    pub fn form(&self) -> Form {
        match self {
            Payload::Mime(_) => Form::Mime,
            Payload::Parts(_) => Form::Parts,
            Payload::Values(_) => Form::Values,
        }
    }
}

impl Outgoing {
    fn wrong(&self, wanted: Form) -> PayloadError {
        PayloadError {
            to: self.envelope.to.clone(),
            wanted,
            got: self.payload.form(),
        }
    }

    /// The MIME bytes, for a transport that takes [`Form::Mime`].
    pub fn mime(&self) -> Result<&[u8], PayloadError> {
        self.mime_bytes().map(MimeBytes::as_bytes)
    }

    /// The MIME bytes and whether they are ASCII, for a transport that takes [`Form::Mime`].
    pub fn mime_bytes(&self) -> Result<&MimeBytes, PayloadError> {
        match &self.payload {
            Payload::Mime(bytes) => Ok(bytes),
            _ => Err(self.wrong(Form::Mime)),
        }
    }

    /// The parts, for a transport that takes [`Form::Parts`].
    pub fn parts(&self) -> Result<&Parts, PayloadError> {
        match &self.payload {
            Payload::Parts(parts) => Ok(parts),
            _ => Err(self.wrong(Form::Parts)),
        }
    }

    /// The template values, for a transport that takes [`Form::Values`].
    pub fn filled(&self) -> Result<&Filled, PayloadError> {
        match &self.payload {
            Payload::Values(filled) => Ok(filled),
            _ => Err(self.wrong(Form::Values)),
        }
    }

    /// The reader's name, when the list has one and the payload carries it apart (in MIME
    /// bytes it is inside the To header).
    pub fn to_name(&self) -> Option<&str> {
        match &self.payload {
            Payload::Mime(_) => None,
            Payload::Parts(p) => p.to_name.as_deref(),
            Payload::Values(v) => v.to_name.as_deref(),
        }
    }

    /// The headers the payload carries apart (none for MIME bytes, which hold them).
    pub fn headers(&self) -> &[(&'static str, String)] {
        match &self.payload {
            Payload::Mime(_) => &[],
            Payload::Parts(p) => &p.headers,
            Payload::Values(v) => &v.headers,
        }
    }
}

/// What is the same in every reader's message, for APIs that take it once: the sender and
/// the issue's slug (a tag or campaign name).
#[derive(Debug, Clone)]
pub struct Letterhead {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The issue's slug: "2020-06".
    pub tag: String,
}
