//! A [`Composer`] is made once per issue from the rendered issue and the workspace settings;
//! [`Composer::compose_as`] then fills the prepared templates for one subscriber (a cheap
//! substitution) and gives their message in the form the transport takes: MIME (with
//! List-Unsubscribe — the reader's own https link and the mailto —, List-Unsubscribe-Post for
//! RFC 8058 one-click, List-Id, a DKIM signature when configured), parts, or template values.
//! The Message-ID is the same for the same issue and recipient, so a retry is recognisable.
//! A Feedback-ID (Gmail's feedback loop) is added when the settings name one.
//!
//! Addresses go out with their domains in ASCII form (`ascii@xn--mnchen-3ya.example`), in
//! the envelope and in the headers ([`crate::audience::idn`]); a local part in Unicode stays
//! as it is, for a relay with SMTPUTF8.
//!
//! Data never becomes a header it was not meant to be: a reader's name is one line (its runs
//! of white space, line breaks among them, folded to one space: a spreadsheet cell may hold
//! two lines, issue 14), and a CR or LF in any other value that lands in a header (a subject
//! filled with a merge field) is an error.

use std::sync::OnceLock;
use std::time::SystemTime;

use lettre::Address;
use lettre::message::Mailbox;
use lettre::message::dkim::DkimConfig;
use sha2::{Digest, Sha256};

use super::mime::Mime;
use super::qp::{Escaped, Part};
use super::unsubscribe::{Unsubscribe, hex};
use super::{Envelope, Filled, Form, Letterhead, Outgoing, Parts, Payload};
use crate::audience::{Subscriber, idn};
use crate::config::FeedbackId;
use crate::merge::{MergeValues, Prepared, Slots};
use crate::render::Rendered;

/// Everything about the message that is the same for every reader of an issue. Its
/// settings are not to change once it has made a message: what every message shares is
/// worked out then, once ([`PerIssue`]).
pub struct Composer {
    pub rendered: Rendered,
    /// The issue's slug: part of each Message-ID.
    pub issue: String,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// "Efus newsletter <newsletter.efus.eu>"
    pub list_id: String,
    pub unsubscribe: Unsubscribe,
    /// Prefix the subject with `[TEST] ` (a test send).
    pub test: bool,
    pub dkim: Option<DkimConfig>,
    /// Gmail's Feedback-ID, `<issue>:<this>`, when the settings have one.
    pub feedback_id: Option<FeedbackId>,
    /// With the key of the readers' tags (an SMTP profile's `verp = true`), each message's
    /// envelope sender is its reader's VERP address ([`super::verp::envelope_sender`]), not the
    /// plain `from`. The headers are the same either way.
    pub verp: Option<super::verp::Key>,
    /// What every reader's message shares; `Default::default()`.
    pub per_issue: PerIssue,
}

/// What every reader's message of an issue shares, worked out at the first message from the
/// [`Composer`]'s settings and kept for the others.
#[derive(Default)]
pub struct PerIssue {
    /// The holes of [`Composer::template`], numbered once.
    slots: OnceLock<Slots>,
    /// The text and HTML parts' literal text in quoted-printable, escaped once for every
    /// reader's MIME message ([`super::qp::Escaped`]).
    escaped: OnceLock<[Escaped; 2]>,
    /// The issue's MIME message as lettre writes it, once for every reader's.
    frames: super::mime::Frames,
    /// What the headers say of the sender.
    sender: OnceLock<Sender>,
}

/// What every reader's message says of the sender, in ASCII as headers take it
/// (internationalised domains in IDNA).
struct Sender {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The unsubscribe mailbox of List-Unsubscribe.
    mailto: String,
    /// Feedback-ID with the issue in it.
    feedback_id: Option<String>,
}

/// Why a message could not be built for a reader.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "{field} for {to} has a line break in it; a header cannot hold one (check the subscriber list and the title)"
    )]
    LineBreak { field: &'static str, to: String },
    #[error("cannot build the message for {to}: {source}")]
    Build {
        to: String,
        #[source]
        source: lettre::error::Error,
    },
}

/// The issue as one template for many readers: its subject, HTML and text with a hole for
/// each merge field, for providers that fill the holes themselves ([`Form::Values`]). Each
/// provider writes the holes in its own template language with [`Template::text_with`].
#[derive(Debug, Clone)]
pub struct Template {
    /// "[TEST] " for a test send.
    prefix: &'static str,
    subject: Prepared,
    html: Prepared,
    text: Prepared,
}

/// A [`Template`] in one provider's template language; [`Filled::values`] fill its holes.
#[derive(Debug, Clone)]
pub struct TemplateText {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// How many holes there are; each reader's `values` has as many.
    pub holes: usize,
}

impl Template {
    /// The issue's subject, HTML and text as one template.
    pub fn new(subject: Prepared, html: Prepared, text: Prepared) -> Template {
        Template {
            prefix: "",
            subject,
            html,
            text,
        }
    }

    /// The template with hole `n` written as `token(n)`. The holes are numbered as
    /// [`Form::Values`] messages carry their values.
    pub fn text_with(&self, token: impl Fn(usize) -> String) -> TemplateText {
        let ([subject, html, text], slots) = write_holes(self.documents(), &token);
        TemplateText {
            subject: self.prefix.to_string() + &subject,
            html,
            text,
            holes: slots.len(),
        }
    }

    /// Subject, HTML and text, in the order their holes are numbered.
    fn documents(&self) -> [&Prepared; 3] {
        [&self.subject, &self.html, &self.text]
    }
}

/// The documents with hole `n` written as `token(n)`, the holes numbered in order of
/// appearance across the three: the one numbering of a template's holes and of the values
/// that fill them.
fn write_holes(
    documents: [&Prepared; 3],
    token: &impl Fn(usize) -> String,
) -> ([String; 3], Slots) {
    let mut slots = Slots::default();
    let written = documents.map(|d| d.with_tokens(&mut slots, token));
    (written, slots)
}

impl Composer {
    /// A Message-ID that is the same for the same issue and reader, on the sender's domain.
    pub fn message_id(&self, to: &Address) -> String {
        let mut h = Sha256::new();
        h.update(self.issue.as_bytes());
        h.update([0]);
        h.update(to.to_string().to_lowercase().as_bytes());
        let digest = h.finalize();
        let test = if self.test { ".test" } else { "" };
        format!(
            "<{}.{}{test}@{}>",
            self.issue,
            hex(&digest[..12]),
            idn::ascii(&self.from.email).domain()
        )
    }

    /// The sender and the issue, as APIs take them once.
    pub fn letterhead(&self) -> Letterhead {
        Letterhead {
            from: ascii_mailbox(&self.from),
            reply_to: self.reply_to.as_ref().map(ascii_mailbox),
            tag: self.issue.clone(),
        }
    }

    /// The issue as one template with holes, as providers that fill it for many readers take
    /// it once.
    pub fn template(&self) -> Template {
        Template {
            prefix: self.subject_prefix(),
            subject: self.rendered.subject.clone(),
            html: self.rendered.html.clone(),
            text: self.rendered.text.clone(),
        }
    }

    /// The holes of the template, numbered as [`Template::text_with`] numbers them (in order
    /// of appearance, whatever the token).
    fn slots(&self) -> &Slots {
        self.per_issue.slots.get_or_init(|| {
            let documents = [
                &self.rendered.subject,
                &self.rendered.html,
                &self.rendered.text,
            ];
            write_holes(documents, &|_| String::new()).1
        })
    }

    /// The text and HTML parts for `recipient`, to be written in quoted-printable.
    fn encoded_parts(&self, recipient: &impl MergeValues) -> (Part<'_>, Part<'_>) {
        let [text, html] = self.per_issue.escaped.get_or_init(|| {
            [
                Escaped::new(&self.rendered.text),
                Escaped::new(&self.rendered.html),
            ]
        });
        (
            text.fill(&self.rendered.text, recipient),
            html.fill(&self.rendered.html, recipient),
        )
    }

    fn sender(&self) -> &Sender {
        self.per_issue.sender.get_or_init(|| Sender {
            from: ascii_mailbox(&self.from),
            reply_to: self.reply_to.as_ref().map(ascii_mailbox),
            mailto: idn::ascii(&self.unsubscribe.mailto).to_string(),
            feedback_id: self.feedback_id.as_ref().map(|f| f.for_issue(&self.issue)),
        })
    }

    fn subject_prefix(&self) -> &'static str {
        if self.test { "[TEST] " } else { "" }
    }

    /// The message for one reader, dated `date`, as MIME bytes.
    pub fn compose(
        &self,
        subscriber: &Subscriber,
        date: SystemTime,
    ) -> Result<Outgoing, ComposeError> {
        self.compose_as(subscriber, date, Form::Mime)
    }

    /// The message for one reader, dated `date`, in the form a transport takes.
    pub fn compose_as(
        &self,
        subscriber: &Subscriber,
        date: SystemTime,
        form: Form,
    ) -> Result<Outgoing, ComposeError> {
        let to_text = subscriber.address.to_string();
        let unsubscribe_url = self.unsubscribe.url_for(&subscriber.address, &self.issue);
        let sender = self.sender();
        let list_unsubscribe = format!(
            "<{unsubscribe_url}>, <mailto:{}?subject=unsubscribe>",
            sender.mailto
        );
        let recipient = subscriber.recipient(Some(unsubscribe_url));
        let subject = format!(
            "{}{}",
            self.subject_prefix(),
            self.rendered.subject.fill(&recipient)
        );
        let line_break = |field| ComposeError::LineBreak {
            field,
            to: to_text.clone(),
        };
        if subject.contains(['\r', '\n']) {
            return Err(line_break("the subject"));
        }
        let name = subscriber
            .fields
            .get("name")
            .map(|n| display_name(n))
            .filter(|n| !n.is_empty());
        if list_unsubscribe.contains(['\r', '\n']) {
            return Err(line_break("the unsubscribe link"));
        }
        let message_id = self.message_id(&subscriber.address);
        let feedback_id = sender.feedback_id.clone();
        let to = idn::ascii(&subscriber.address);
        let payload = match form {
            Form::Mime => Payload::Mime({
                let (text, html) = self.encoded_parts(&recipient);
                Mime {
                    from: &sender.from,
                    reply_to: sender.reply_to.as_ref(),
                    to: Mailbox::new(name, to.clone()),
                    subject,
                    date,
                    message_id: message_id.clone(),
                    list_id: &self.list_id,
                    list_unsubscribe,
                    text,
                    html,
                    feedback_id,
                    dkim: self.dkim.as_ref(),
                    frame: &self.per_issue.frames,
                }
                .build()
                .map_err(|source| ComposeError::Build {
                    to: to_text.clone(),
                    source,
                })?
            }),
            Form::Parts => Payload::Parts(Parts {
                to_name: name,
                subject,
                html: self.rendered.html.fill(&recipient),
                text: self.rendered.text.fill(&recipient),
                headers: self.list_headers(list_unsubscribe, feedback_id),
            }),
            Form::Values => Payload::Values(Filled {
                to_name: name,
                subject,
                values: self.slots().values(&recipient),
                headers: self.list_headers(list_unsubscribe, feedback_id),
            }),
        };
        let envelope_from = match &self.verp {
            Some(key) => {
                let tag = key.tag(subscriber.address.as_ref());
                super::verp::envelope_sender(&sender.from.email, &self.issue, &tag)
            }
            None => sender.from.email.clone(),
        };
        Ok(Outgoing {
            envelope: Envelope {
                from: envelope_from,
                to,
            },
            message_id,
            payload,
        })
    }

    /// List-Unsubscribe, List-Unsubscribe-Post and List-Id, and Feedback-ID when there is
    /// one, for payloads that carry their headers apart.
    fn list_headers(
        &self,
        list_unsubscribe: String,
        feedback_id: Option<String>,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("List-Unsubscribe", list_unsubscribe),
            (
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_string(),
            ),
            ("List-Id", self.list_id.clone()),
        ];
        headers.extend(feedback_id.map(|f| ("Feedback-ID", f)));
        headers
    }
}

/// A name as one header line: every run of white space (line breaks, tabs, Unicode spaces)
/// one space, other control characters dropped, trimmed.
fn display_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mailbox with its domain in ASCII form, its name as it is.
fn ascii_mailbox(mailbox: &Mailbox) -> Mailbox {
    Mailbox::new(mailbox.name.clone(), idn::ascii(&mailbox.email))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::str::FromStr;

    use mail_parser::MessageParser;

    use super::*;
    use crate::layout::Layout;
    use crate::message::{PayloadError, dkim_config};
    use crate::render::{self, RenderOptions};
    use crate::values::Secret;

    fn composer(test: bool) -> Composer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(root.join("issues/2020-06.json"))
            .unwrap()
            .replace(
                "Efus newsletter — June 2020",
                "Efus newsletter — Düsseldorf, {{subscriber.first_name}}",
            );
        let loaded = crate::issue::parse(&root.join("issues/2020-06.json"), source).unwrap();
        let layout = Layout::load(Some(&root.join("layouts/efus"))).unwrap();
        let rendered = render::render(&loaded, &layout, &RenderOptions::default()).unwrap();
        Composer {
            rendered,
            issue: "2020-06".into(),
            from: Mailbox::from_str("Efus <newsletter@example.org>").unwrap(),
            reply_to: Some(Mailbox::from_str("contact@example.org").unwrap()),
            list_id: "Efus newsletter <newsletter.example.org>".into(),
            unsubscribe: Unsubscribe::new(
                "https://example.org/unsubscribe/{token}".into(),
                Address::from_str("unsubscribe@example.org").unwrap(),
                Secret::new("a test secret"),
            ),
            test,
            verp: None,
            dkim: None,
            feedback_id: None,
            per_issue: Default::default(),
        }
    }

    fn subscriber(email: &str, first: &str, name: &str) -> Subscriber {
        let mut fields = BTreeMap::new();
        fields.insert("email".to_string(), email.to_string());
        fields.insert("first_name".to_string(), first.to_string());
        fields.insert("name".to_string(), name.to_string());
        Subscriber {
            address: Address::from_str(email).unwrap(),
            fields,
            line: 2,
        }
    }

    #[test]
    fn a_reader_gets_a_well_formed_personal_message() {
        let c = composer(false);
        let out = c
            .compose(
                &subscriber("mariusz@example.pl", "Mariusz", "Mariusz Czepczyński"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let bytes = out.mime().unwrap();
        let raw = String::from_utf8(bytes.to_vec()).unwrap();
        for line in raw.split("\r\n") {
            assert!(line.len() <= 998, "line too long for SMTP");
        }
        let msg = MessageParser::default().parse(bytes).unwrap();
        assert_eq!(
            msg.subject(),
            Some("Efus newsletter — Düsseldorf, Mariusz: weekly webconferences and events")
        );
        // On the wire the subject is ASCII, its other words encoded (RFC 2047).
        let subject_line = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(
            subject_line.is_ascii() && subject_line.contains("=?utf-8?b?"),
            "{subject_line}"
        );
        let to = msg.to().unwrap().first().unwrap();
        assert_eq!(to.name(), Some("Mariusz Czepczyński"));
        assert_eq!(
            msg.message_id(),
            Some(c.message_id(&out.envelope.to).trim_matches(['<', '>']))
        );
        let text = msg.body_text(0).unwrap();
        let html = msg.body_html(0).unwrap();
        assert!(text.contains("Dear Mariusz,"));
        assert!(html.contains("Dear Mariusz,"));
        // Text part first, then HTML, in one multipart/alternative.
        assert!(
            raw.find("Content-Type: text/plain").unwrap()
                < raw.find("Content-Type: text/html").unwrap()
        );
        assert!(raw.contains("multipart/alternative"));
        // The reader's own unsubscribe link, in the footer and in the headers: their address
        // sealed in the token, never in clear.
        let token = c.unsubscribe.token(&out.envelope.to, "2020-06");
        let opened = crate::message::unsubscribe::open(c.unsubscribe.secret(), &token).unwrap();
        assert_eq!(opened.address, out.envelope.to);
        assert_eq!(opened.issue.as_deref(), Some("2020-06"));
        let link = format!("https://example.org/unsubscribe/{token}");
        assert!(text.contains(&link), "{text}");
        assert!(!raw.contains("mariusz%40") && !link.contains("mariusz"));
        let header = msg.header_raw("List-Unsubscribe").unwrap();
        assert!(header.contains(&link) && header.contains("mailto:unsubscribe@example.org"));
        assert_eq!(
            msg.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(
            msg.header_raw("List-Id")
                .unwrap()
                .contains("<newsletter.example.org>")
        );
        // The same reader always gets the same Message-ID; another reader another one.
        let again = c
            .compose(
                &subscriber("mariusz@example.pl", "M", "M"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(again.message_id, out.message_id);
        let other = c
            .compose(
                &subscriber("ana@example.org", "Ana", "Ana"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_ne!(other.message_id, out.message_id);
        assert!(out.message_id.ends_with("@example.org>"));
    }

    #[test]
    fn data_never_becomes_a_header() {
        let c = composer(false);
        let injected = "X\r\nBcc: victim@example.org";
        // In the subject (a merge field), a line break is an error.
        for form in [Form::Mime, Form::Parts, Form::Values] {
            let err = c
                .compose_as(
                    &subscriber("x@example.org", injected, "X"),
                    SystemTime::UNIX_EPOCH,
                    form,
                )
                .unwrap_err();
            assert!(
                matches!(
                    &err,
                    ComposeError::LineBreak { field: "the subject", to } if to == "x@example.org"
                ),
                "{err:?}"
            );
        }
        // In a name, line breaks fold to spaces: the reader gets their message, with no
        // header the data wrote.
        for form in [Form::Mime, Form::Parts, Form::Values] {
            let out = c
                .compose_as(
                    &subscriber("x@example.org", "X", injected),
                    SystemTime::UNIX_EPOCH,
                    form,
                )
                .unwrap();
            match &out.payload {
                Payload::Mime(mime) => {
                    let bytes = mime.as_bytes();
                    let msg = MessageParser::default().parse(bytes).unwrap();
                    assert!(msg.header("Bcc").is_none() && msg.bcc().is_none());
                    assert_eq!(
                        msg.to().unwrap().first().unwrap().name(),
                        Some("X Bcc: victim@example.org")
                    );
                    let raw = String::from_utf8(bytes.to_vec()).unwrap();
                    assert!(!raw.to_lowercase().contains("\r\nbcc:"), "{raw}");
                }
                _ => assert_eq!(out.to_name(), Some("X Bcc: victim@example.org")),
            }
        }
        // HTML in a name is text in the HTML part.
        let out = c
            .compose(
                &subscriber("x@example.org", "<b>Bold</b>", "X"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let msg = MessageParser::default().parse(out.mime().unwrap()).unwrap();
        assert!(
            msg.body_html(0)
                .unwrap()
                .contains("Dear &lt;b&gt;Bold&lt;/b&gt;,")
        );
        assert!(msg.body_text(0).unwrap().contains("Dear <b>Bold</b>,"));
    }

    #[test]
    fn dkim_signs_the_one_click_headers() {
        use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
        let mut c = composer(false);
        // Any 32 bytes are an Ed25519 key; a test needs no secret one.
        let key = DkimSigningKey::new(
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            DkimSigningAlgorithm::Ed25519,
        )
        .unwrap();
        c.dkim = Some(dkim_config("news", "example.org", key));
        let out = c
            .compose(
                &subscriber("ana@example.org", "Ana", "Ana"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let raw = String::from_utf8(out.mime().unwrap().to_vec()).unwrap();
        let start = raw.find("DKIM-Signature:").expect("signed");
        let signature: String = raw[start..]
            .split("\r\n")
            .take_while(|l| !l.is_empty())
            .take(8)
            .collect();
        let signed = signature
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_lowercase();
        for header in [
            "list-unsubscribe",
            "list-unsubscribe-post",
            "from",
            "subject",
        ] {
            assert!(
                signed.split(':').any(|h| h.trim() == header),
                "{header} not signed: {signed}"
            );
        }
        assert!(signature.contains("d=example.org") && signature.contains("s=news"));
    }

    #[test]
    fn a_name_over_several_lines_is_one_line() {
        let c = composer(false);
        for (name, shown) in [
            ("Anna\nMaria  Schmidt", Some("Anna Maria Schmidt")),
            ("  Dr.\r\n\tJörg\u{2028}Müller \r", Some("Dr. Jörg Müller")),
            ("Zoë\u{0}\u{1b}", Some("Zoë")),
            ("\r\n \t", None),
        ] {
            let out = c
                .compose(
                    &subscriber("x@example.org", "X", name),
                    SystemTime::UNIX_EPOCH,
                )
                .unwrap();
            let msg = MessageParser::default().parse(out.mime().unwrap()).unwrap();
            assert_eq!(msg.to().unwrap().first().unwrap().name(), shown, "{name:?}");
        }
    }

    #[test]
    fn internationalised_domains_go_out_in_ascii_form() {
        let mut c = composer(false);
        c.from = Mailbox::from_str("Efus <newsletter@bücher.example>").unwrap();
        for (written, sent) in [
            ("ascii@münchen.example", "ascii@xn--mnchen-3ya.example"),
            ("jörg@münchen.example", "jörg@xn--mnchen-3ya.example"),
        ] {
            for form in [Form::Mime, Form::Parts, Form::Values] {
                let out = c
                    .compose_as(
                        &subscriber(written, "J", "Jörg"),
                        SystemTime::UNIX_EPOCH,
                        form,
                    )
                    .unwrap();
                assert_eq!(out.envelope.to.to_string(), sent);
                assert_eq!(
                    out.envelope.from.to_string(),
                    "newsletter@xn--bcher-kva.example"
                );
                assert!(out.message_id.ends_with("@xn--bcher-kva.example>"));
                if let Payload::Mime(mime) = &out.payload {
                    let bytes = mime.as_bytes();
                    let raw = String::from_utf8(bytes.to_vec()).unwrap();
                    let headers = raw.split("\r\n\r\n").next().unwrap();
                    assert!(!headers.contains("münchen") && !headers.contains("bücher"));
                    let msg = MessageParser::default().parse(bytes).unwrap();
                    assert_eq!(msg.to().unwrap().first().unwrap().address(), Some(sent));
                    assert_eq!(
                        msg.from().unwrap().first().unwrap().address(),
                        Some("newsletter@xn--bcher-kva.example")
                    );
                }
            }
        }
        // An ASCII address comes out as written, message for message.
        let plain = composer(false)
            .compose(
                &subscriber("Ana@Example.org", "A", "Ana"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(plain.envelope.to.to_string(), "Ana@Example.org");
    }

    #[test]
    fn feedback_id_carries_the_issue_and_is_signed() {
        use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
        let c = composer(false);
        let none = c
            .compose(
                &subscriber("ana@example.org", "Ana", "Ana"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let raw = String::from_utf8(none.mime().unwrap().to_vec()).unwrap();
        assert!(!raw.contains("Feedback-ID"));
        // Settings are fixed once a composer has made a message: a new one for new settings.
        let mut c = composer(false);
        c.feedback_id = Some(FeedbackId::try_from("newsletter:efus".to_string()).unwrap());
        let key = DkimSigningKey::new(
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            DkimSigningAlgorithm::Ed25519,
        )
        .unwrap();
        c.dkim = Some(dkim_config("news", "example.org", key));
        let ana = subscriber("ana@example.org", "Ana", "Ana");
        let out = c.compose(&ana, SystemTime::UNIX_EPOCH).unwrap();
        let msg = MessageParser::default().parse(out.mime().unwrap()).unwrap();
        assert_eq!(
            msg.header_raw("Feedback-ID").map(str::trim),
            Some("2020-06:newsletter:efus")
        );
        let raw = String::from_utf8(out.mime().unwrap().to_vec())
            .unwrap()
            .to_lowercase();
        let signed = raw.split("h=").nth(1).unwrap().split(';').next().unwrap();
        assert!(
            signed.split(':').any(|h| h.trim() == "feedback-id"),
            "{signed}"
        );
        // Providers that build the message get it with the other headers.
        let parts = c
            .compose_as(&ana, SystemTime::UNIX_EPOCH, Form::Parts)
            .unwrap();
        assert!(
            parts
                .headers()
                .contains(&("Feedback-ID", "2020-06:newsletter:efus".to_string()))
        );
    }

    #[test]
    fn a_test_send_says_so_in_the_subject() {
        let c = composer(true);
        let out = c
            .compose(
                &subscriber("me@example.org", "Me", ""),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let msg = MessageParser::default().parse(out.mime().unwrap()).unwrap();
        assert!(msg.subject().unwrap().starts_with("[TEST] Efus newsletter"));
        assert!(
            out.message_id.contains(".test@"),
            "a test send is not taken for the real one"
        );
        assert!(
            c.template()
                .text_with(|n| format!("-{n}-"))
                .subject
                .starts_with("[TEST] ")
        );
    }

    #[test]
    fn each_form_carries_exactly_its_payload() {
        let c = composer(false);
        let ana = subscriber("ana@example.org", "Ana <b>", "Ana Martin");
        let date = SystemTime::UNIX_EPOCH;
        let mime = c.compose_as(&ana, date, Form::Mime).unwrap();
        let parts = c.compose_as(&ana, date, Form::Parts).unwrap();
        let values = c.compose_as(&ana, date, Form::Values).unwrap();
        for (out, form) in [
            (&mime, Form::Mime),
            (&parts, Form::Parts),
            (&values, Form::Values),
        ] {
            assert_eq!(out.payload.form(), form);
            assert_eq!(out.message_id, mime.message_id);
            assert_eq!(
                out.envelope,
                Envelope {
                    from: "newsletter@example.org".parse().unwrap(),
                    to: "ana@example.org".parse().unwrap()
                }
            );
        }
        // A transport that asks for another form gets a typed error, not an empty message.
        assert_eq!(
            mime.parts().unwrap_err(),
            PayloadError {
                to: "ana@example.org".parse().unwrap(),
                wanted: Form::Parts,
                got: Form::Mime
            }
        );
        assert!(parts.mime().is_err() && parts.filled().is_err());
        assert!(values.mime().is_err() && values.parts().is_err());
        let p = parts.parts().unwrap();
        assert_eq!(p.to_name.as_deref(), Some("Ana Martin"));
        assert_eq!(parts.headers().len(), 3);
        assert!(mime.headers().is_empty() && mime.to_name().is_none());
        // The template, its holes filled with the reader's values, is the reader's parts.
        let filled = values.filled().unwrap();
        assert_eq!(filled.subject, p.subject);
        assert_eq!(filled.headers, p.headers);
        let template = c.template().text_with(|n| format!("%{n}%"));
        assert_eq!(filled.values.len(), template.holes);
        let fill = |mut text: String| {
            // Highest first: %1% is not in %10%, but be safe whatever the count.
            for (n, value) in filled.values.iter().enumerate().rev() {
                text = text.replace(&format!("%{n}%"), value);
            }
            text
        };
        assert_eq!(fill(template.html), p.html);
        assert_eq!(fill(template.text), p.text);
        assert_eq!(fill(template.subject), p.subject);
    }
}
