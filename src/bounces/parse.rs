//! One message of the bounce mailbox, read into a typed [`Report`]: a delivery status
//! notification (RFC 3464, `multipart/report; report-type=delivery-status`), a complaint in
//! the Abuse Reporting Format (RFC 5965, `report-type=feedback-report`), one of the common
//! plain-text bounces that predate or ignore RFC 3464 (Exim, qmail and Yahoo's qmail-style
//! text, Microsoft Exchange's NDR text with `X-MS-Exchange-…` headers), or not a bounce.
//!
//! MIME is mail-parser's; what is read here is only what the RFCs put inside the report
//! parts (fields in blocks separated by blank lines, each block read by mail-parser's header
//! parser) and, for the plain-text forms, the lines that name the failed address, the status
//! and the original message's Message-ID.
//!
//! Pure: no ledger, no store, no I/O.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::suppressions::Kind;

/// What one message of the bounce mailbox is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification, standard or in one of the common plain-text forms.
    Dsn(Dsn),
    /// A feedback report (a complaint, when its type is `abuse`).
    Arf(Arf),
    /// Anything else: an auto-reply, a newsletter, a person's message.
    NotABounce,
}

/// A delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub recipients: Vec<Recipient>,
    /// The Message-ID of the message that bounced (without angle brackets), from the
    /// returned headers or message.
    pub original_message_id: Option<String>,
    /// Where it was read from.
    pub form: Form,
}

/// How a DSN was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// RFC 3464: a `message/delivery-status` part (Postfix, Gmail, Yahoo, Exchange Online…).
    Standard,
    /// Plain text (Exim, qmail, Microsoft's NDR without a status part).
    Text,
}

/// What a DSN says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address the report is about (`Final-Recipient`, or the address a plain-text
    /// bounce names); empty when a plain-text bounce names none.
    pub final_recipient: String,
    /// `Original-Recipient`, when given.
    pub original_recipient: Option<String>,
    pub action: Action,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, or the line of a plain-text bounce that carries the reply.
    pub diagnostic: Option<String>,
}

/// RFC 3464's `Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
    /// Missing or not one of the above.
    Unknown,
}

/// A feedback report (RFC 5965).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arf {
    /// `abuse`, `fraud`, `virus`, `other`, `not-spam`, `auth-failure`…, in lower case.
    pub feedback_type: String,
    /// `Original-Rcpt-To`, when the reporter gives it.
    pub original_rcpt_to: Option<String>,
    /// The To address of the reported message, when its headers are returned.
    pub original_to: Option<String>,
    /// The Message-ID of the reported message (without angle brackets).
    pub original_message_id: Option<String>,
}

impl Recipient {
    /// A failure with a 5.x.x status (or none) is a hard bounce; a 4.x.x failure or a delay
    /// a soft one; a delivery, relay or expansion nothing.
    pub fn kind(&self) -> Option<Kind> {
        let class = self.status.as_deref().and_then(|s| s.chars().next());
        match (self.action, class) {
            (Action::Delayed, _) => Some(Kind::SoftBounce),
            (Action::Failed, Some('4')) => Some(Kind::SoftBounce),
            (Action::Failed, _) => Some(Kind::Bounce),
            (Action::Unknown, Some('5')) => Some(Kind::Bounce),
            (Action::Unknown, Some('4')) => Some(Kind::SoftBounce),
            _ => None,
        }
    }

    /// The status and the diagnostic, as the store's reason.
    pub fn reason(&self) -> Option<String> {
        let text = match (&self.status, &self.diagnostic) {
            (Some(s), Some(d)) if d.contains(s.as_str()) => d.clone(),
            (Some(s), Some(d)) => format!("{s} {d}"),
            (Some(s), None) => s.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => return None,
        };
        Some(shorten(&text, 300))
    }
}

impl Arf {
    /// An `abuse` report (the reader pressed "this is spam") is a complaint; other feedback
    /// types are not about a reader's wish.
    pub fn kind(&self) -> Option<Kind> {
        (self.feedback_type == "abuse").then_some(Kind::Complaint)
    }
}

/// Reads one message.
pub fn parse(raw: &[u8]) -> Report {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Report::NotABounce;
    };
    if let Some(arf) = feedback_report(&msg) {
        return Report::Arf(arf);
    }
    if let Some(dsn) = standard_dsn(&msg) {
        return Report::Dsn(dsn);
    }
    match text_bounce(&msg) {
        Some(dsn) => Report::Dsn(dsn),
        None => Report::NotABounce,
    }
}

/// What the store keeps a report under, so that reading it again records nothing twice: its
/// own Message-ID, or a digest of its bytes when it has none.
pub fn report_id(raw: &[u8]) -> String {
    let id = MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.message_id().map(|id| format!("<{id}>")));
    id.unwrap_or_else(|| {
        let digest = Sha256::digest(raw);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    })
}

/// The addresses the message itself was delivered to, where a VERP address shows
/// ([`crate::message::verp`]): its `Delivered-To`, `X-Original-To` and `To` fields, in that
/// order.
pub fn delivered_to(raw: &[u8]) -> Vec<String> {
    let Some(headers) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for name in ["delivered-to", "x-original-to"] {
        found.extend(
            headers
                .headers_raw()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| bare_address(v)),
        );
    }
    if let Some(to) = headers.to() {
        found.extend(to.iter().filter_map(|a| a.address()).map(str::to_string));
    }
    found
}

/// Every part of the message whose content type is `ctype/subtype`.
fn parts_of<'m, 'x>(
    msg: &'m Message<'x>,
    ctype: &'m str,
    subtypes: &'m [&'m str],
) -> impl Iterator<Item = &'m mail_parser::MessagePart<'x>> + 'm {
    msg.parts.iter().filter(move |part| {
        part.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case(ctype)
                && c.subtype()
                    .is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)))
        })
    })
}

/// The fields of a report part (`message/delivery-status`, `message/feedback-report`): blocks
/// of header fields separated by blank lines, each block's fields as (lower-case name,
/// unfolded value).
fn field_blocks(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let mut blocks = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        // mail-parser reads a block of fields as a message with no body.
        let block = format!("{}\n\n", block.trim_matches('\n'));
        let Some(parsed) = MessageParser::default().parse_headers(block.as_bytes()) else {
            continue;
        };
        let fields: Vec<(String, String)> = parsed
            .headers_raw()
            .map(|(name, value)| (name.to_ascii_lowercase(), one_line(value)))
            .collect();
        if !fields.is_empty() {
            blocks.push(fields);
        }
    }
    blocks
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `rfc822; ana@example.org` → `ana@example.org`.
fn typed_address(value: &str) -> String {
    let address = match value.split_once(';') {
        Some((_, address)) => address,
        None => value,
    };
    bare_address(address)
}

/// An address without its angle brackets and white space.
fn bare_address(text: &str) -> String {
    text.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// `<id@host>` → `id@host`.
fn bare_id(text: &str) -> Option<String> {
    let id = text
        .split_whitespace()
        .next()?
        .trim_start_matches('<')
        .trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_string())
}

/// The headers of the original message, as a report returns them: a `message/rfc822` part
/// (`message/global`), or a `text/rfc822-headers` part.
fn original_headers<'m, 'x>(msg: &'m Message<'x>) -> Option<Message<'m>> {
    for part in &msg.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let ctype = ct.ctype().to_ascii_lowercase();
        let returned = matches!(
            (ctype.as_str(), subtype.as_str()),
            (
                "message",
                "rfc822" | "global" | "rfc822-headers" | "global-headers"
            ) | ("text", "rfc822-headers" | "global-headers")
        );
        if !returned {
            continue;
        }
        let bytes: &[u8] = match &part.body {
            PartType::Message(inner) => inner.raw_message(),
            _ => part.contents(),
        };
        if let Some(headers) = MessageParser::default().parse_headers(bytes)
            && (headers.message_id().is_some() || headers.to().is_some())
        {
            return Some(headers);
        }
    }
    None
}

fn original_message_id(msg: &Message) -> Option<String> {
    original_headers(msg).and_then(|h| h.message_id().and_then(bare_id))
}

/// RFC 3464: the `message/delivery-status` part's per-recipient fields.
fn standard_dsn(msg: &Message) -> Option<Dsn> {
    let part = parts_of(
        msg,
        "message",
        &["delivery-status", "global-delivery-status"],
    )
    .next()?;
    let blocks = field_blocks(part.contents());
    // The first block is the message's (Reporting-MTA…); each later one is a recipient's.
    let recipients: Vec<Recipient> = blocks
        .iter()
        .filter_map(|fields| {
            let final_recipient = field(fields, "final-recipient")?;
            let status = field(fields, "status").and_then(status_code);
            Some(Recipient {
                final_recipient: typed_address(final_recipient),
                original_recipient: field(fields, "original-recipient").map(typed_address),
                action: action(field(fields, "action").unwrap_or("")),
                status,
                diagnostic: field(fields, "diagnostic-code").map(|d| shorten(d, 300)),
            })
        })
        .collect();
    if recipients.is_empty() {
        return None;
    }
    Some(Dsn {
        recipients,
        original_message_id: original_message_id(msg),
        form: Form::Standard,
    })
}

fn action(value: &str) -> Action {
    // "failed (bad destination mailbox address)": the word first.
    let word = value
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match word.as_str() {
        "failed" => Action::Failed,
        "delayed" => Action::Delayed,
        "delivered" => Action::Delivered,
        "relayed" => Action::Relayed,
        "expanded" => Action::Expanded,
        _ => Action::Unknown,
    }
}

/// The first enhanced status code (RFC 3463: class 2, 4 or 5, subject, detail) in `text`.
fn status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .find(|w| {
            let mut parts = w.split('.');
            let class = parts.next().unwrap_or("");
            let (Some(subject), Some(detail), None) = (parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            matches!(class, "2" | "4" | "5")
                && (1..=3).contains(&subject.len())
                && (1..=3).contains(&detail.len())
                && subject
                    .chars()
                    .chain(detail.chars())
                    .all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
}

/// A basic SMTP reply code (`550`, `421`) standing as a word in `text`, when it has no
/// enhanced code: its class as an enhanced status (`5.0.0`, `4.0.0`).
fn reply_class(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 3 && (w.starts_with('5') || w.starts_with('4')))
        .map(|w| format!("{}.0.0", &w[..1]))
}

/// RFC 5965: the `message/feedback-report` part, and the reported message's headers.
fn feedback_report(msg: &Message) -> Option<Arf> {
    let part = parts_of(msg, "message", &["feedback-report"]).next()?;
    let blocks = field_blocks(part.contents());
    let fields: Vec<(String, String)> = blocks.into_iter().flatten().collect();
    let feedback_type = field(&fields, "feedback-type")?.trim().to_ascii_lowercase();
    let original = original_headers(msg);
    Some(Arf {
        feedback_type,
        original_rcpt_to: field(&fields, "original-rcpt-to").map(bare_address),
        original_to: original
            .as_ref()
            .and_then(|h| h.to().and_then(|to| to.first()?.address()))
            .map(str::to_string),
        original_message_id: original
            .as_ref()
            .and_then(|h| h.message_id().and_then(bare_id)),
    })
}

/// Lines that start the returned copy of the original message in plain-text bounces: what
/// comes after is the original's, not the report's.
const ORIGINAL_MARKERS: &[&str] = &[
    "this is a copy of the message",            // Exim
    "below this line is a copy of the message", // qmail, Yahoo
    "original message headers",                 // Exchange
    "----- original message -----",
    "------ original message ------",
    "the original message was received",
    "----- transcript of session follows -----",
    "included is a copy of the message",
];

/// Words of a plain-text bounce, beside a sender that sends bounces.
const BOUNCE_WORDS: &[&str] = &[
    "mail delivery software",
    "could not be delivered",
    "couldn't be delivered",
    "wasn't able to deliver",
    "was not able to deliver",
    "unable to deliver",
    "delivery has failed",
    "not yet been delivered",
    "delivery to the following recipient",
    "permanent error",
    "undeliverable",
    "undelivered mail",
    "returned mail",
    "failure notice",
    "delivery status notification",
    "delivery incomplete",
    "message delayed",
];

/// Words that say the delivery is still being tried.
const DELAY_WORDS: &[&str] = &[
    "has not yet been delivered",
    "not yet been delivered",
    "will continue trying",
    "will keep trying",
    "still trying",
    "delivery delayed",
    "message delayed",
    "warning: message",
    "temporary failure",
    "temporary error",
    "this is a temporary error",
];

/// Who sends bounces: the mailer daemon, the postmaster, an empty return path, or a bounce
/// header of Exim (`X-Failed-Recipients`) or Exchange (`X-MS-Exchange-Message-Is-Ndr`).
fn from_a_mailer(msg: &Message) -> bool {
    let from = msg
        .from()
        .and_then(|f| f.first())
        .map(|a| {
            format!("{} {}", a.name().unwrap_or(""), a.address().unwrap_or("")).to_ascii_lowercase()
        })
        .unwrap_or_default();
    let daemon = [
        "mailer-daemon",
        "mailer daemon",
        "postmaster",
        "mail delivery",
    ]
    .iter()
    .any(|w| from.contains(w));
    let null_sender = msg
        .header_raw("Return-Path")
        .is_some_and(|r| r.trim() == "<>");
    daemon
        || null_sender
        || msg.header_raw("X-Failed-Recipients").is_some()
        || msg.header_raw("X-MS-Exchange-Message-Is-Ndr").is_some()
}

/// A plain-text bounce: Exim's ("This message was created automatically by mail delivery
/// software…"), qmail's and Yahoo's ("I'm afraid I wasn't able to deliver…", "<addr>:" and
/// the reply), Microsoft's NDR text ("Delivery has failed to these recipients or groups",
/// "Remote Server returned '550 5.1.1 …'").
fn text_bounce(msg: &Message) -> Option<Dsn> {
    if !from_a_mailer(msg) {
        return None;
    }
    let body: String = msg
        .text_bodies()
        .filter_map(|p| p.text_contents())
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\r\n", "\n");
    let subject = msg.subject().unwrap_or("").to_ascii_lowercase();
    let lower = body.to_ascii_lowercase();
    if !BOUNCE_WORDS
        .iter()
        .any(|w| lower.contains(w) || subject.contains(w))
    {
        return None;
    }
    // The report's own text ends where the copy of the original begins.
    let end = ORIGINAL_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(body.len());
    let (report, rest) = body.split_at(end);
    let report_lower = report.to_ascii_lowercase();

    let delayed = DELAY_WORDS
        .iter()
        .any(|w| report_lower.contains(w) || subject.contains(w))
        && !report_lower.contains("permanent error");

    let mut addresses: Vec<String> = msg
        .header_raw("X-Failed-Recipients")
        .map(|v| {
            v.split(',')
                .map(bare_address)
                .filter(|a| a.contains('@'))
                .collect()
        })
        .unwrap_or_default();
    if addresses.is_empty() {
        addresses = named_addresses(report);
    }
    let diagnostic_line = report
        .lines()
        .map(str::trim)
        .find(|line| status_code(line).is_some() || reply_class(line).is_some())
        .map(|line| shorten(line.trim_matches(['\'', '"']), 300));
    let status = diagnostic_line
        .as_deref()
        .and_then(|line| status_code(line).or_else(|| reply_class(line)));
    let original_message_id = original_message_id(msg).or_else(|| quoted_message_id(rest));
    if addresses.is_empty() && original_message_id.is_none() {
        return None;
    }
    let action = if delayed {
        Action::Delayed
    } else {
        Action::Failed
    };
    let recipient = |final_recipient: String| Recipient {
        final_recipient,
        original_recipient: None,
        action,
        status: status.clone(),
        diagnostic: diagnostic_line.clone(),
    };
    let recipients = if addresses.is_empty() {
        vec![recipient(String::new())]
    } else {
        addresses.into_iter().map(recipient).collect()
    };
    Some(Dsn {
        recipients,
        original_message_id,
        form: Form::Text,
    })
}

/// The addresses a plain-text bounce names as failed: a line that is an address alone,
/// `<address>:` (qmail), or an address before a colon or a space (Exim's indented list,
/// Exchange's "name (address)").
fn named_addresses(report: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in report.lines() {
        let line = line.trim();
        let candidate = line
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
            .map(|w| w.trim_end_matches(':'))
            .map(bare_address)
            .find(|w| plausible_address(w));
        // Only a line that is about the address, not prose that quotes one in passing.
        let about =
            line.starts_with('<') || line.split_whitespace().count() <= 3 || line.ends_with(':');
        if let Some(address) = candidate
            && about
            && !found.iter().any(|a| a.eq_ignore_ascii_case(&address))
        {
            found.push(address);
        }
    }
    found
}

fn plausible_address(word: &str) -> bool {
    let Some((local, domain)) = word.rsplit_once('@') else {
        return false;
    };
    let daemon = ["mailer-daemon", "postmaster"]
        .iter()
        .any(|d| local.eq_ignore_ascii_case(d));
    !local.is_empty() && domain.contains('.') && !daemon && word.parse::<lettre::Address>().is_ok()
}

/// A `Message-ID:` header line in the returned copy of the original message.
fn quoted_message_id(copy: &str) -> Option<String> {
    copy.lines().find_map(|line| {
        let line = line.trim_start();
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("message-id") {
            bare_id(value)
        } else {
            None
        }
    })
}

/// A header value on one line, its runs of white space single spaces.
fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, on one line.
fn shorten(text: &str, max: usize) -> String {
    let line = one_line(text);
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
