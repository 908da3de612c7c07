//! Postmark: the batch endpoint, up to 500 messages a request, each message whole (its own
//! subject, HTML, text and List-Unsubscribe headers), on a broadcast message stream:
//! Postmark requires newsletters to go through a broadcast stream, never the transactional one.
//!
//! API reference: <https://postmarkapp.com/developer/api/email-api#send-batch-emails>;
//! answers and error codes: <https://postmarkapp.com/developer/api/overview#response-codes>.
//! Postmark has no idempotency key. Each message carries the request's key in its metadata
//! (`bulletin-batch`), so that after an answer lost on the way the outbound message search
//! (<https://postmarkapp.com/developer/api/messages-api>, `GET /messages/outbound` with a
//! `metadata_bulletin-batch` filter, up to 500 a page: one batch) says which messages
//! Postmark accepted before any is sent again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::Item;
use super::template::{Document, Fill, cut, values};
use super::{
    Answer, Auth, Body, Common, Context, Json, Provider, ProviderError, Request, RequestError,
    SettingsError, recipient,
};
use crate::message::{Form, Letterhead, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "postmark"`.
pub const TRANSPORT: &str = "postmark";

/// A Postmark profile's settings, as `bulletin.toml` writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
    /// The broadcast message stream ([`DEFAULT_STREAM`] unless named otherwise).
    pub message_stream: Option<String>,
}

impl Settings {
    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate(TRANSPORT)
    }
}

/// Postmark's own address.
pub const ENDPOINT: &str = "https://api.postmarkapp.com";

/// "Up to 500 messages" per batch call (and 50 MB, which 500 newsletters stay well under).
pub const BATCH_LIMIT: usize = 500;

/// The stream newsletters go through unless the profile names another broadcast stream.
pub const DEFAULT_STREAM: &str = "broadcast";

/// The metadata key that carries the request's key, to find its messages again.
const BATCH: &str = "bulletin-batch";

pub struct Postmark {
    endpoint: String,
    token: Secret,
    token_env: String,
    stream: String,
    letterhead: Letterhead,
    /// The sender and the reply-to address as every message gives them, written once.
    from: String,
    reply_to: Option<String>,
    /// The HTML and text, filled for each message as the request is written.
    html: Document,
    text: Document,
    limit: usize,
}

impl Postmark {
    pub fn new(settings: &Settings, context: &Context) -> Result<Postmark, ProviderError> {
        let common = &settings.common;
        let [_, html, text] = cut(context.template)?;
        Ok(Postmark {
            html,
            text,
            endpoint: common.endpoint(ENDPOINT),
            token: context.secret(&common.api_key_env)?,
            token_env: common.api_key_env.clone(),
            stream: settings
                .message_stream
                .clone()
                .unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            letterhead: context.letterhead.clone(),
            from: context.letterhead.from.to_string(),
            reply_to: context.letterhead.reply_to.as_ref().map(|r| r.to_string()),
            limit: common.batch_limit(BATCH_LIMIT),
        })
    }

    /// One message as the batch endpoint takes it, borrowing the message's parts.
    fn message<'a>(
        &'a self,
        m: &'a Outgoing,
        batch_key: &'a str,
    ) -> Result<Message<'a>, RequestError> {
        let filled = values(m, self.html.holes)?;
        Ok(Message {
            from: &self.from,
            to: recipient(m).to_string(),
            subject: &filled.subject,
            html_body: self.html.fill(&filled.values),
            text_body: self.text.fill(&filled.values),
            headers: filled
                .headers
                .iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            tag: &self.letterhead.tag,
            message_stream: &self.stream,
            metadata: Metadata {
                message_id: &m.message_id,
                batch: batch_key,
            },
            reply_to: self.reply_to.as_deref(),
        })
    }
}

/// A message of a batch request, as Postmark's reference names its fields.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Message<'a> {
    from: &'a str,
    to: String,
    subject: &'a str,
    html_body: Fill<'a>,
    text_body: Fill<'a>,
    headers: Vec<Header<'a>>,
    tag: &'a str,
    message_stream: &'a str,
    metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
}

/// `{"Name", "Value"}`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Header<'a> {
    name: &'a str,
    value: &'a str,
}

/// The message's ID and the request's key, to find the message again.
#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(rename = "bulletin-message-id")]
    message_id: &'a str,
    #[serde(rename = "bulletin-batch")]
    batch: &'a str,
}

impl Provider for Postmark {
    fn name(&self) -> &'static str {
        "Postmark"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Values
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let messages = batch
            .messages
            .iter()
            .map(|m| Ok(Box::new(self.message(m, &batch.key)?) as Box<dyn Item>))
            .collect::<Result<Vec<_>, RequestError>>()?;
        Ok(Request {
            url: format!("{}/email/batch", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Header {
                name: "X-Postmark-Server-Token",
                value: self.token.clone(),
            },
            body: Body::Json(Json::array(messages)),
        })
    }

    /// A 200 answer is an array with one result per message, in order: `ErrorCode` 0 and a
    /// `MessageID` for each accepted one, another code (406 inactive recipient, 300 invalid
    /// address…) and a `Message` for each refused one.
    fn outcomes(&self, _batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        if answer.status != 200 {
            return None;
        }
        // A count that differs from the batch's is caught by the shared transport.
        Some(answer.json()?.as_array()?.iter().map(result).collect())
    }

    /// The outbound messages whose metadata holds the batch's key, on the stream.
    fn look_up(&self, batch: &Batch) -> Vec<Request<'static>> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("count", &BATCH_LIMIT.to_string())
            .append_pair("offset", "0")
            .append_pair(&format!("metadata_{BATCH}"), &batch.key)
            .append_pair("messagestream", &self.stream)
            .finish();
        vec![Request {
            url: format!("{}/messages/outbound?{query}", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Header {
                name: "X-Postmark-Server-Token",
                value: self.token.clone(),
            },
            body: Body::None,
        }]
    }

    /// `{"TotalCount", "Messages": [{"MessageID", "Metadata": {…}, …}]}`: a message found
    /// with our message's ID in its metadata was accepted.
    fn found(&self, batch: &Batch, answers: &[Option<Answer>]) -> Vec<Option<Accepted>> {
        let json = answers
            .first()
            .and_then(|a| a.as_ref()?.json())
            .unwrap_or(Value::Null);
        let listed = json
            .get("Messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        batch
            .messages
            .iter()
            .map(|m| {
                let hit = listed.iter().find(|l| {
                    l.pointer("/Metadata/bulletin-message-id")
                        .and_then(Value::as_str)
                        == Some(m.message_id.as_str())
                })?;
                let id = hit.get("MessageID").and_then(Value::as_str).unwrap_or("");
                Some(Accepted {
                    reply: format!(
                        "accepted by Postmark, MessageID {id} (found by its search after the answer was lost; not sent again)"
                    ),
                })
            })
            .collect()
    }

    fn credentials(&self) -> String {
        format!("the server token in {}", self.token_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

fn result(r: &Value) -> Result<Accepted, Failure> {
    let code = r.get("ErrorCode").and_then(Value::as_i64).unwrap_or(-1);
    let message = r.get("Message").and_then(Value::as_str).unwrap_or("");
    if code == 0 {
        let id = r.get("MessageID").and_then(Value::as_str).unwrap_or("");
        return Ok(Accepted {
            reply: format!("accepted by Postmark, MessageID {id}"),
        });
    }
    Err(Failure {
        // Refusals in a batch answer concern the recipient or the message (an inactive
        // recipient, an invalid address): sending again will not change them.
        kind: Kind::Permanent,
        reply: format!("Postmark error {code}: {message}"),
    })
}
