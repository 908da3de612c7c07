//! One reader's message as MIME bytes, built with lettre: From, Reply-To, To, Subject
//! (RFC 2047 where needed), Date, Message-ID, List-Id, List-Unsubscribe and
//! List-Unsubscribe-Post, Feedback-ID when there is one, then multipart/alternative with the text part first, both UTF-8 in
//! quoted-printable, and a DKIM signature when there is a key.
//!
//! The parts arrive in quoted-printable ([`super::qp`]: exactly the bytes lettre makes of a
//! `String` body, which it would also scan to choose an encoding it then ignores, and add
//! each CR with `String::insert`, moving the rest of the text each time).
//!
//! The values arrive checked (no line break in anything bound for a header): this module only
//! puts them together.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::dkim::DkimConfig;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

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
    /// The text part, already in quoted-printable.
    pub text: Vec<u8>,
    /// The HTML part, already in quoted-printable.
    pub html: Vec<u8>,
    /// Feedback-ID, for Gmail's feedback loop: `2020-06:newsletter:efus`.
    pub feedback_id: Option<String>,
    pub dkim: Option<&'a DkimConfig>,
}

impl Mime<'_> {
    /// The whole message, CRLF line endings, as it goes on the wire.
    pub fn build(self) -> Result<Vec<u8>, lettre::error::Error> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(self.to)
            .subject(self.subject)
            .date(self.date)
            .message_id(Some(self.message_id))
            .header(ListId(self.list_id.to_string()))
            .header(ListUnsubscribe(self.list_unsubscribe))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
        if let Some(reply_to) = self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        if let Some(feedback_id) = self.feedback_id {
            builder = builder.header(FeedbackId(feedback_id));
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
            .singlepart(part(ContentType::TEXT_PLAIN, self.text))
            .singlepart(part(ContentType::TEXT_HTML, self.html));
        let mut message = builder.multipart(body)?;
        if let Some(dkim) = self.dkim {
            message.sign(dkim);
        }
        Ok(message.formatted())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::layout::Layout;
    use crate::render::{self, RenderOptions};

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
            assert!(
                crate::message::qp::encode_text(text) == lettre.into_vec(),
                "{text:?}"
            );
        }
    }
}
