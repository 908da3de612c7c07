//! One recipient's email, as bytes ready for any transport.
//!
//! A [`Composer`] is made once per issue from the rendered issue and the workspace settings;
//! [`Composer::compose`] then fills the prepared templates for one subscriber (a cheap
//! substitution) and builds the MIME message with lettre: From, Reply-To, To, Subject
//! (RFC 2047 where needed), Date, a Message-ID that is the same for the same issue and
//! recipient (a retry is recognisable), multipart/alternative with the text part first, both
//! UTF-8 with a transfer encoding that keeps lines short, List-Unsubscribe (the reader's own
//! https link and the mailto), List-Unsubscribe-Post (RFC 8058 one-click), List-Id, and a DKIM
//! signature when configured, covering the List-Unsubscribe headers.
//!
//! Data never becomes a header it was not meant to be: a CR or LF in any value that lands in
//! a header (a subject filled with a name, a name in To) is an error.

mod qp;

use std::time::SystemTime;

use hmac::{KeyInit, Mac};
use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig};
use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use crate::audience::Subscriber;
use crate::config::Secret;
use crate::merge::{FieldKey, MergeValues};
use crate::render::Rendered;

/// How readers unsubscribe, with the secret that signs their tokens.
#[derive(Clone)]
pub struct Unsubscribe {
    /// An https URL with `{token}` and optionally `{email}`.
    pub url: String,
    pub mailto: Address,
    pub secret: Secret,
}

impl Unsubscribe {
    /// The reader's token: an HMAC-SHA256 of their lower-case address, so that nobody can
    /// make a working link for someone else.
    pub fn token(&self, address: &Address) -> String {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(address.to_string().to_lowercase().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// The reader's unsubscribe link.
    pub fn url_for(&self, address: &Address) -> String {
        let email =
            percent_encoding::utf8_percent_encode(address.as_ref(), crate::merge::URL_COMPONENT)
                .to_string();
        self.url
            .replace("{token}", &self.token(address))
            .replace("{email}", &email)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything about the message that is the same for every reader of an issue.
pub struct Composer {
    pub rendered: Rendered,
    /// The issue's slug: part of each Message-ID.
    pub issue: String,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// "Efus newsletter <newsletter.efus.eu>"
    pub list_id: String,
    pub unsubscribe: Unsubscribe,
    /// Prefix the subject with "[TEST] " (a test send).
    pub test: bool,
    pub dkim: Option<DkimConfig>,
    /// The holes of [`Composer::template`], numbered once; `Default::default()`.
    pub slots: std::sync::OnceLock<crate::merge::Slots>,
}

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

/// One reader's message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: Address,
    pub to: Address,
    pub message_id: String,
    /// The whole message, CRLF line endings, as it goes on the wire ([`Form::Mime`]; empty
    /// otherwise).
    pub bytes: Vec<u8>,
    /// The message's parts ([`Form::Parts`] and [`Form::Values`]).
    pub parts: Option<Parts>,
}

/// A reader's message in pieces, for APIs that build the MIME message themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    /// The reader's name, when the list has one.
    pub to_name: Option<String>,
    pub subject: String,
    /// The filled HTML and text ([`Form::Parts`]; empty for [`Form::Values`]).
    pub html: String,
    pub text: String,
    /// The reader's value for each hole of the issue's [`Template`] ([`Form::Values`]).
    pub values: Vec<String>,
    /// List-Unsubscribe, List-Unsubscribe-Post and List-Id, with their values.
    pub headers: Vec<(&'static str, String)>,
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

/// The issue's HTML, text and subject in a provider's template language, with a hole for each
/// merge field (see [`crate::merge::Prepared::with_tokens`]); [`Parts::values`] fill them.
#[derive(Debug, Clone)]
pub struct Template {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// How many holes there are; each reader's `values` has as many.
    pub holes: usize,
}

/// Why a message could not be built for a reader.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "{field} for {to} has a line break in it; a header cannot hold one (check the subscriber list and the title)"
    )]
    LineBreak { field: &'static str, to: String },
    #[error("cannot build the message for {to}: {reason}")]
    Build { to: String, reason: String },
}

/// Merge values for one reader: their columns, and their own unsubscribe link.
struct Reader<'a> {
    subscriber: &'a Subscriber,
    unsubscribe_url: String,
}

impl MergeValues for Reader<'_> {
    fn value(&self, key: &FieldKey) -> Option<&str> {
        match key {
            FieldKey::UnsubscribeUrl => Some(&self.unsubscribe_url),
            other => self.subscriber.value(other),
        }
    }
}

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

/// Headers that must be signed for receivers to honour one-click unsubscribe (RFC 8058).
pub fn dkim_config(
    selector: &str,
    domain: &str,
    key: lettre::message::dkim::DkimSigningKey,
) -> DkimConfig {
    // Not Content-Type: lettre signs it as it was before the multipart boundary was set, so
    // verifiers (dkimpy) reject the signature.
    let headers = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ]
    .into_iter()
    .map(HeaderName::new_from_ascii_str)
    .collect();
    DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    )
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
            self.from.email.domain()
        )
    }

    /// The sender and the issue, as APIs take them once.
    pub fn letterhead(&self) -> Letterhead {
        Letterhead {
            from: self.from.clone(),
            reply_to: self.reply_to.clone(),
            tag: self.issue.clone(),
        }
    }

    /// The issue in a provider's template language: each hole written as `token(n)`. The
    /// holes are numbered as [`Form::Values`] messages carry their values.
    pub fn template(&self, token: impl Fn(usize) -> String) -> Template {
        let mut slots = crate::merge::Slots::default();
        let subject = self.rendered.subject.with_tokens(&mut slots, &token);
        let html = self.rendered.html.with_tokens(&mut slots, &token);
        let text = self.rendered.text.with_tokens(&mut slots, &token);
        Template {
            subject: self.subject_prefix().to_string() + &subject,
            html,
            text,
            holes: slots.len(),
        }
    }

    /// The holes of the template, numbered as [`Composer::template`] numbers them (in order of
    /// appearance, whatever the token).
    fn slots(&self) -> &crate::merge::Slots {
        self.slots.get_or_init(|| {
            let mut slots = crate::merge::Slots::default();
            for part in [
                &self.rendered.subject,
                &self.rendered.html,
                &self.rendered.text,
            ] {
                part.with_tokens(&mut slots, &|_| String::new());
            }
            slots
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
        let unsubscribe_url = self.unsubscribe.url_for(&subscriber.address);
        let reader = Reader {
            subscriber,
            unsubscribe_url: unsubscribe_url.clone(),
        };
        let subject = format!(
            "{}{}",
            self.subject_prefix(),
            self.rendered.subject.fill(&reader)
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
            .filter(|n| !n.trim().is_empty())
            .cloned();
        if name.as_deref().is_some_and(|n| n.contains(['\r', '\n'])) {
            return Err(line_break("the name"));
        }
        let message_id = self.message_id(&subscriber.address);
        let list_unsubscribe = format!(
            "<{unsubscribe_url}>, <mailto:{}?subject=unsubscribe>",
            self.unsubscribe.mailto
        );
        if list_unsubscribe.contains(['\r', '\n']) {
            return Err(line_break("the unsubscribe link"));
        }
        let list_headers = || {
            vec![
                ("List-Unsubscribe", list_unsubscribe.clone()),
                (
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".to_string(),
                ),
                ("List-Id", self.list_id.clone()),
            ]
        };
        match form {
            Form::Mime => {}
            Form::Parts | Form::Values => {
                let (html, text, values) = if form == Form::Parts {
                    (
                        self.rendered.html.fill(&reader),
                        self.rendered.text.fill(&reader),
                        Vec::new(),
                    )
                } else {
                    (String::new(), String::new(), self.slots().values(&reader))
                };
                return Ok(Outgoing {
                    from: self.from.email.clone(),
                    to: subscriber.address.clone(),
                    message_id,
                    bytes: Vec::new(),
                    parts: Some(Parts {
                        to_name: name,
                        subject,
                        html,
                        text,
                        values,
                        headers: list_headers(),
                    }),
                });
            }
        }
        let email = self.rendered.fill(&reader);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, subscriber.address.clone()))
            .subject(subject)
            .date(date)
            .message_id(Some(message_id.clone()))
            .header(ListId(self.list_id.clone()))
            .header(ListUnsubscribe(list_unsubscribe))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        // Quoted-printable keeps lines under 78 characters and the text readable in source.
        let part = |content_type: lettre::message::header::ContentType, body: String| {
            SinglePart::builder()
                .header(content_type)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(quoted_printable(&body))
        };
        let body = MultiPart::alternative()
            .singlepart(part(
                lettre::message::header::ContentType::TEXT_PLAIN,
                email.text,
            ))
            .singlepart(part(
                lettre::message::header::ContentType::TEXT_HTML,
                email.html,
            ));
        let mut message = builder.multipart(body).map_err(|e| ComposeError::Build {
            to: to_text.clone(),
            reason: e.to_string(),
        })?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Outgoing {
            from: self.from.email.clone(),
            to: subscriber.address.clone(),
            message_id,
            bytes: message.formatted(),
            parts: None,
        })
    }
}

/// A part's body in quoted-printable: the bytes lettre makes of a `String` body, made faster
/// (see [`qp`]). lettre also scans the text to choose an encoding it then ignores, and
/// adds each CR with `String::insert`, moving the rest of the text each time: on the sample's
/// 70 KB of HTML, about a quarter of a send's CPU time (perf).
fn quoted_printable(text: &str) -> Body {
    Body::dangerous_pre_encoded(
        qp::encode_text(text),
        ContentTransferEncoding::QuotedPrintable,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::str::FromStr;

    use mail_parser::MessageParser;

    use super::*;
    use crate::layout::Layout;
    use crate::render::{self, RenderOptions};

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
            unsubscribe: Unsubscribe {
                url: "https://example.org/unsubscribe?email={email}&token={token}".into(),
                mailto: Address::from_str("unsubscribe@example.org").unwrap(),
                secret: Secret::from_env("PATH").unwrap(),
            },
            test,
            dkim: None,
            slots: Default::default(),
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
        let raw = String::from_utf8(out.bytes.clone()).unwrap();
        for line in raw.split("\r\n") {
            assert!(line.len() <= 998, "line too long for SMTP");
        }
        let msg = MessageParser::default().parse(&out.bytes).unwrap();
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
            Some(c.message_id(&out.to).trim_matches(['<', '>']))
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
        // The reader's own unsubscribe link, in the footer and in the headers.
        let token = c.unsubscribe.token(&out.to);
        assert_eq!(token.len(), 32);
        let link =
            format!("https://example.org/unsubscribe?email=mariusz%40example.pl&token={token}");
        assert!(text.contains(&link), "{text}");
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
        for (first_name, name, field) in
            [(injected, "X", "the subject"), ("X", injected, "the name")]
        {
            let err = c
                .compose(
                    &subscriber("x@example.org", first_name, name),
                    SystemTime::UNIX_EPOCH,
                )
                .unwrap_err();
            assert_eq!(
                err,
                ComposeError::LineBreak {
                    field,
                    to: "x@example.org".into()
                }
            );
        }
        // HTML in a name is text in the HTML part.
        let out = c
            .compose(
                &subscriber("x@example.org", "<b>Bold</b>", "X"),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let msg = MessageParser::default().parse(&out.bytes).unwrap();
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
        let raw = String::from_utf8(out.bytes).unwrap();
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
    fn a_test_send_says_so_in_the_subject() {
        let c = composer(true);
        let out = c
            .compose(
                &subscriber("me@example.org", "Me", ""),
                SystemTime::UNIX_EPOCH,
            )
            .unwrap();
        let msg = MessageParser::default().parse(&out.bytes).unwrap();
        assert!(msg.subject().unwrap().starts_with("[TEST] Efus newsletter"));
        assert!(
            out.message_id.contains(".test@"),
            "a test send is not taken for the real one"
        );
    }

    #[test]
    fn parts_are_encoded_exactly_as_lettre_encodes_them() {
        let html = composer(false).rendered.html.fill(&crate::merge::NoValues);
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
            assert!(
                quoted_printable(text).into_vec() == lettre.into_vec(),
                "{text:?}"
            );
        }
    }
}
