//! One message over an open connection: MAIL FROM, RCPT TO, DATA.
//!
//! When the relay offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go out in one
//! write and their replies are read in order: one round trip instead of three before the
//! message itself. Every reply is checked, not only the last: a refused MAIL or RCPT is that
//! command's failure, as without pipelining, and the message is never sent after a refusal
//! (even if a relay answered DATA with 354 regardless). The replies not yet read then do not
//! matter: a connection on which anything failed is never used again ([`super::pool`]), which
//! is also what happens without pipelining (no RSET: a fresh connection is cheaper to trust).
//!
//! lettre's `send` escapes the message byte by byte into a new buffer: about a quarter of
//! bulletin's CPU time in a send, measured with perf. For the usual message, all ASCII, we
//! send the same commands ourselves, and the message goes out as it is, in the runs of lines
//! between those that start with ".", each such line given its second "." on the way:
//! written by us on the stream under the connection ([`super::relay::Wire`]) in one vectored
//! write, copied nowhere. Under STARTTLS, where only lettre may write, the runs are put
//! together in one block that lettre's `command` copies again (a string, as it takes them).
//! Other messages (8-bit, or an address that needs SMTPUTF8) go through lettre's `send`,
//! which knows those extensions. Whether a message is ASCII, and where its lines start with
//! ".", come with it ([`MimeBytes`], found as it was built): it is not read again here.
//!
//! What the relay cannot take at all is found before a command is sent ([`unsendable`]): an
//! address whose part before the @ is not ASCII (`jörg@…`) travels only over SMTPUTF8
//! (RFC 6531), and a relay that does not offer it will never take that message (issue 14:
//! lettre's refusal read as temporary, retried on every run). Domains are already in ASCII
//! form ([`crate::message`] converts them), so they never need it.
//!
//! `went` is raised as the message goes out (before its final "." on our path, before
//! lettre's `send` on the other): a connection lost after that may have left the message with
//! the relay. When our own write of the message fails, its end never went: the relay cannot
//! have taken it ([`Error::Write`]).

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::Extension;
use lettre::transport::smtp::response::Response;
use tokio::io::AsyncWriteExt;

use super::relay::Wire;
use crate::audience::idn;
use crate::message::MimeBytes;

/// Why a message did not go through.
#[derive(Debug)]
pub(super) enum Error {
    /// What lettre said: the relay's refusal, or the connection lost under a command.
    Smtp(lettre::transport::smtp::Error),
    /// Our own write of the message failed: its end (the line with a lone ".") never went.
    Write(io::Error),
}

impl From<lettre::transport::smtp::Error> for Error {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Error::Smtp(e)
    }
}

/// Why this relay can never take the message, whatever is tried again: the extension it
/// would need and does not offer (in its answer to EHLO). `None` when it can.
pub(super) fn unsendable(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &MimeBytes,
) -> Option<String> {
    let offers = |extension| conn.server_info().supports_feature(extension);
    let unicode = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .find(|a| !AsRef::<str>::as_ref(*a).is_ascii());
    if let Some(address) = unicode
        && !offers(Extension::SmtpUtfEight)
    {
        return Some(format!(
            "{} cannot be sent through this relay: its part before the @ is not ASCII, which needs SMTPUTF8, and the relay does not offer it",
            idn::display(address)
        ));
    }
    if !offers(Extension::EightBitMime) && !message.is_ascii() {
        return Some(
            "the message is not ASCII and the relay does not offer 8BITMIME, which it would need"
                .into(),
        );
    }
    None
}

/// Sends `message` to the envelope's recipients, the commands in one write when `pipelining`,
/// the message on `wire` when there is one; the relay's reply to the end of the data. Raises
/// `went` once the message may have reached the relay.
pub(super) async fn transmit(
    conn: &mut AsyncSmtpConnection,
    wire: Option<&mut Wire>,
    pipelining: bool,
    envelope: &Envelope,
    message: &MimeBytes,
    went: &AtomicBool,
) -> Result<Response, Error> {
    if !(message.is_ascii() && ascii_envelope(envelope)) {
        went.store(true, Ordering::SeqCst);
        return Ok(conn.send(envelope, message.as_bytes()).await?);
    }
    let mail = Mail::new(envelope.from().cloned(), vec![]);
    if pipelining {
        let mut commands = mail.to_string();
        for to in envelope.to() {
            commands.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
        }
        commands.push_str(&Data.to_string());
        // The first reply is MAIL's; an error returns before the others are read (see the
        // module's comment).
        conn.command(commands).await?;
        for _ in envelope.to() {
            conn.read_response().await?;
        }
        conn.read_response().await?;
    } else {
        conn.command(mail).await?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        conn.command(Data).await?;
    }
    went.store(true, Ordering::SeqCst);
    match wire {
        Some(wire) => {
            write_data(wire, message).await.map_err(Error::Write)?;
            Ok(conn.read_response().await?)
        }
        None => {
            // ASCII is UTF-8: the block is always a string.
            let block = String::from_utf8(data_block(message))
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            Ok(conn.command(block).await?)
        }
    }
}

/// Writes what follows DATA ([`data_pieces`]) on `wire`, in as few writes as it takes.
async fn write_data(wire: &mut Wire, message: &MimeBytes) -> io::Result<()> {
    let pieces = data_pieces(message);
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = wire.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    wire.flush().await
}

/// What follows DATA, in pieces: the message with a second "." before every line that starts
/// with one (RFC 5321, 4.5.2), then the line with a lone "." that ends it, exactly as lettre
/// writes it. Only CRLF starts a line, as in lettre's own escaping. The message says where
/// those lines are ([`MimeBytes::dot_lines`], found as it was built): the pieces are the runs
/// of lines between them, each followed by the "." it needs.
fn data_pieces(message: &MimeBytes) -> Vec<&[u8]> {
    let bytes = message.as_bytes();
    let mut pieces: Vec<&[u8]> = Vec::with_capacity(8);
    if bytes.first() == Some(&b'.') {
        pieces.push(b".");
    }
    let mut written = 0;
    for &dot in message.dot_lines() {
        // Up to the line's own ".", which follows with the next run.
        pieces.push(&bytes[written..dot]);
        pieces.push(b".");
        written = dot;
    }
    pieces.push(&bytes[written..]);
    pieces.push(b"\r\n.\r\n");
    pieces
}

/// What follows DATA ([`data_pieces`]) in one block, for lettre's `command`.
fn data_block(message: &MimeBytes) -> Vec<u8> {
    let pieces = data_pieces(message);
    let mut block = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        block.extend_from_slice(piece);
    }
    block
}

/// Whether a reply to EHLO offers `keyword` (one of its lines after the first, which greets).
pub(super) fn offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
    })
}

fn ascii_envelope(envelope: &Envelope) -> bool {
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii)
}

#[cfg(test)]
mod tests {
    use super::data_block;

    /// lettre's escaping (its `ClientCodec`, private), byte by byte, and the end of the data.
    fn lettre(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut after_cr, mut line_start) = (false, true);
        for &b in message {
            out.push(b);
            if b == b'.' && line_start {
                out.push(b'.');
            }
            line_start = b == b'\n' && after_cr;
            after_cr = b == b'\r';
        }
        out.extend_from_slice(b"\r\n.\r\n");
        out
    }

    #[test]
    fn lines_that_start_with_a_dot_get_a_second_one() {
        let cases = [
            ("Subject: x\r\n\r\nbody", "Subject: x\r\n\r\nbody\r\n.\r\n"),
            (".first", "..first\r\n.\r\n"),
            ("a\r\n.\r\n.b\r\n", "a\r\n..\r\n..b\r\n\r\n.\r\n"),
            ("a\r\n..b", "a\r\n...b\r\n.\r\n"),
            // Only CRLF starts a line, as in lettre's own escaping.
            ("a\n.b\r.c", "a\n.b\r.c\r\n.\r\n"),
            ("\n.a\r\r\n.", "\n.a\r\r\n..\r\n.\r\n"),
            ("", "\r\n.\r\n"),
        ];
        for (message, wire) in cases {
            assert_eq!(lettre(message.as_bytes()), wire.as_bytes(), "{message:?}");
            assert_eq!(
                data_block(&message.as_bytes().to_vec().into()),
                wire.as_bytes(),
                "{message:?}"
            );
        }
    }

    #[test]
    fn the_same_bytes_as_lettre_on_random_text() {
        let alphabet: [&[u8]; 6] = [b"a", b".", b"\r", b"\n", b"\r\n", b"\r\n."];
        let mut numbers = crate::testing::Replayable::new(0x0123_4567_89ab_cdef);
        let mut next = |n: usize| numbers.below(n);
        for _ in 0..3000 {
            let len = next(300);
            let message: Vec<u8> = (0..len)
                .flat_map(|_| alphabet[next(alphabet.len())].iter().copied())
                .collect();
            assert_eq!(
                data_block(&message.clone().into()),
                lettre(&message),
                "{message:?}"
            );
        }
    }
}

#[cfg(test)]
mod ehlo_tests {
    use lettre::transport::smtp::response::{Category, Code, Detail, Response, Severity};

    use super::offers;

    #[test]
    fn pipelining_is_read_from_the_reply_to_ehlo() {
        let reply = |lines: &[&str]| {
            Response::new(
                Code::new(
                    Severity::PositiveCompletion,
                    Category::MailSystem,
                    Detail::Zero,
                ),
                lines.iter().map(|l| l.to_string()).collect(),
            )
        };
        let postfix = reply(&["mx.example.org", "SIZE 10240000", "pipelining", "8BITMIME"]);
        assert!(offers(&postfix, "PIPELINING"));
        let without = reply(&["mx.example.org", "SIZE 10240000", "8BITMIME"]);
        assert!(!offers(&without, "PIPELINING"));
        // The greeting line names the host, which may be anything.
        assert!(!offers(&reply(&["PIPELINING"]), "PIPELINING"));
    }
}
