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
//! send the same commands ourselves and escape it in one pass that copies whole runs of lines
//! (memchr finds the lines that start with "."). Other messages (8-bit, or an address that
//! needs SMTPUTF8) go through lettre's `send`, which knows those extensions.
//!
//! What the relay cannot take at all is found before a command is sent ([`unsendable`]): an
//! address whose part before the @ is not ASCII (`jörg@…`) travels only over SMTPUTF8
//! (RFC 6531), and a relay that does not offer it will never take that message (issue 14:
//! lettre's refusal read as temporary, retried on every run). Domains are already in ASCII
//! form ([`crate::message`] converts them), so they never need it.
//!
//! `went` is raised as the message goes out (before its final "." on our path, before
//! lettre's `send` on the other): a connection lost after that may have left the message with
//! the relay.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use lettre::address::Envelope;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::Extension;
use lettre::transport::smtp::response::Response;

use crate::audience::idn;

/// Why this relay can never take the message, whatever is tried again: the extension it
/// would need and does not offer (in its answer to EHLO). `None` when it can.
pub(super) fn unsendable(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
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
    if !message.is_ascii() && !offers(Extension::EightBitMime) {
        return Some(
            "the message is not ASCII and the relay does not offer 8BITMIME, which it would need"
                .into(),
        );
    }
    None
}

/// Sends `message` to the envelope's recipients, the commands in one write when `pipelining`;
/// the relay's reply to the end of the data. Raises `went` once the message may have reached
/// the relay.
pub(super) async fn transmit(
    conn: &mut AsyncSmtpConnection,
    pipelining: bool,
    envelope: &Envelope,
    message: &[u8],
    went: &AtomicBool,
) -> Result<Response, Error> {
    let text = match std::str::from_utf8(message) {
        Ok(text) if text.is_ascii() && ascii_envelope(envelope) => text,
        _ => {
            went.store(true, Ordering::SeqCst);
            return conn.send(envelope, message).await;
        }
    };
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
    conn.command(data_block(text)).await
}

/// The data block as one string of the right size: lettre's `command` writes what it is
/// given as a string, and a `Display` alone would grow one by doubling through 100 KB.
fn data_block(text: &str) -> String {
    use std::fmt::Write;
    let dots = memchr::memmem::find_iter(text.as_bytes(), b"\r\n.").count();
    let mut block = String::with_capacity(text.len() + dots + 6);
    // Writing into a String cannot fail.
    let _ = write!(block, "{}", DataBlock(text));
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

/// What follows DATA: the message with a second "." before every line that starts with one
/// (RFC 5321, 4.5.2), then the line with a lone "." that ends it, exactly as lettre writes it.
struct DataBlock<'a>(&'a str);

impl fmt::Display for DataBlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut written = 0;
        for at in memchr::memmem::find_iter(text.as_bytes(), b"\r\n.") {
            // Up to and including the LF; the line's own "." follows with the next run.
            f.write_str(&text[written..at + 2])?;
            f.write_str(".")?;
            written = at + 2;
        }
        f.write_str(&text[written..])?;
        f.write_str("\r\n.\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::{DataBlock, data_block};

    #[test]
    fn lines_that_start_with_a_dot_get_a_second_one() {
        let cases = [
            ("Subject: x\r\n\r\nbody", "Subject: x\r\n\r\nbody\r\n.\r\n"),
            (".first", "..first\r\n.\r\n"),
            ("a\r\n.\r\n.b\r\n", "a\r\n..\r\n..b\r\n\r\n.\r\n"),
            ("a\r\n..b", "a\r\n...b\r\n.\r\n"),
            // Only CRLF starts a line, as in lettre's own escaping.
            ("a\n.b\r.c", "a\n.b\r.c\r\n.\r\n"),
            ("", "\r\n.\r\n"),
        ];
        for (message, wire) in cases {
            assert_eq!(DataBlock(message).to_string(), wire, "{message:?}");
            assert_eq!(data_block(message), wire, "{message:?}");
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
