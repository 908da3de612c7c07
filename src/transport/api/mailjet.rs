//! Mailjet: Send API v3.1, up to 50 messages a request, each message whole (its own subject,
//! HTML, text and List-Unsubscribe headers), grouped in a campaign named after the issue.
//! A request may succeed for some messages and fail for others; Mailjet then answers HTTP 400
//! with a result for each message, in order.
//!
//! API reference: <https://dev.mailjet.com/email/guides/send-api-v31/> and
//! <https://dev.mailjet.com/reference/email/send-emails/>; answers:
//! <https://dev.mailjet.com/docs/email-api/email_api_overview/status_codes>. Mailjet has no
//! idempotency key. Each message carries its Message-ID as `CustomID`, so that after an answer
//! lost on the way the message resource (`GET /v3/REST/message?CustomID=…`, one request a
//! message: <https://dev.mailjet.com/email/reference/messages/>) says which messages Mailjet
//! took before any is sent again. Mailjet's own guide warns that a message can take a moment
//! to appear there: one not found goes again, and its reader is reported uncertain.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::Item;
use super::template::{Document, Fill, cut, values};
use super::{
    Answer, Auth, Body, Common, Context, Headers, Json, Provider, ProviderError, Request,
    RequestError, SettingsError, needed,
};
use crate::message::{Form, Letterhead, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "mailjet"`.
pub const TRANSPORT: &str = "mailjet";

/// A Mailjet profile's settings, as `bulletin.toml` writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
    /// The environment variable holding the secret key (the API key is in `api_key_env`).
    pub secret_env: Option<String>,
}

impl Settings {
    /// The variable holding the secret key, which Mailjet needs.
    pub fn secret_env(&self) -> Result<&str, SettingsError> {
        needed(
            &self.secret_env,
            TRANSPORT,
            "secret_env",
            "\"MJ_APIKEY_PRIVATE\"",
        )
    }

    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.secret_env()?;
        self.common.validate(TRANSPORT)
    }
}

/// Mailjet's own address.
pub const ENDPOINT: &str = "https://api.mailjet.com";

/// "v3.1, where the limit is 50 messages per call".
pub const BATCH_LIMIT: usize = 50;

pub struct Mailjet {
    endpoint: String,
    key: Secret,
    key_env: String,
    secret: Secret,
    secret_env: String,
    letterhead: Letterhead,
    /// The sender and the reply-to address as every message gives them.
    from: Value,
    reply_to: Option<Value>,
    /// The HTML and text, filled for each message as the request is written.
    html: Document,
    text: Document,
    limit: usize,
}

impl Mailjet {
    pub fn new(settings: &Settings, context: &Context) -> Result<Mailjet, ProviderError> {
        let common = &settings.common;
        let secret_env = settings.secret_env()?;
        let [_, html, text] = cut(context.template)?;
        Ok(Mailjet {
            html,
            text,
            endpoint: common.endpoint(ENDPOINT),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            secret: context.secret(secret_env)?,
            secret_env: secret_env.to_string(),
            letterhead: context.letterhead.clone(),
            from: address(
                &context.letterhead.from.email,
                context.letterhead.from.name.as_deref(),
            ),
            reply_to: context
                .letterhead
                .reply_to
                .as_ref()
                .map(|r| address(&r.email, r.name.as_deref())),
            limit: common.batch_limit(BATCH_LIMIT),
        })
    }

    /// One message as the send API takes it, borrowing the message's parts.
    fn message<'a>(&'a self, m: &'a Outgoing) -> Result<Message<'a>, RequestError> {
        let filled = values(m, self.html.holes)?;
        Ok(Message {
            from: &self.from,
            to: [address(&m.envelope.to, filled.to_name.as_deref())],
            subject: &filled.subject,
            text_part: self.text.fill(&filled.values),
            html_part: self.html.fill(&filled.values),
            // List-Id is on Mailjet's list of forbidden headers (error send-0011 for the
            // message): Mailjet sets it itself. List-Unsubscribe and List-Unsubscribe-Post
            // are allowed.
            headers: Headers::of(m, |name| name != "List-Id"),
            custom_campaign: &self.letterhead.tag,
            // Echoed in Mailjet's events, to match them with the ledger.
            custom_id: &m.message_id,
            reply_to: self.reply_to.as_ref(),
        })
    }
}

/// A message of a send request, as Mailjet's reference names its fields.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Message<'a> {
    from: &'a Value,
    to: [Value; 1],
    subject: &'a str,
    text_part: Fill<'a>,
    #[serde(rename = "HTMLPart")]
    html_part: Fill<'a>,
    headers: Headers<'a>,
    custom_campaign: &'a str,
    #[serde(rename = "CustomID")]
    custom_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a Value>,
}

/// `{"Email", "Name"}`, the name left out when there is none.
fn address(email: &lettre::Address, name: Option<&str>) -> Value {
    let mut a = json!({"Email": email.to_string()});
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        a["Name"] = name.into();
    }
    a
}

impl Provider for Mailjet {
    fn name(&self) -> &'static str {
        "Mailjet"
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
            .map(|m| Ok(Box::new(self.message(m)?) as Box<dyn Item>))
            .collect::<Result<Vec<_>, RequestError>>()?;
        Ok(Request {
            url: format!("{}/v3.1/send", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Basic {
                user: self.key.expose().to_string(),
                password: self.secret.clone(),
            },
            body: Body::Json(Json::object(&serde_json::Map::new(), "Messages", messages)?),
        })
    }

    /// An answer with `Messages` has a result for each message, in order ("the messages'
    /// order is preserved"): `Status` "success" with `To[0].MessageUUID` and `MessageID`, or
    /// "error" with `Errors`. All successes come with HTTP 200; any error makes it HTTP 400
    /// with the others' successes in it, so a 400 is read message by message too. An answer
    /// without `Messages` (401, 429, a malformed request) is left to the shared rules.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        let success = (200..300).contains(&answer.status);
        if !success && answer.status != 400 {
            return None;
        }
        let json = answer.json();
        let Some(results) = json
            .as_ref()
            .and_then(|j| j.get("Messages"))
            .and_then(Value::as_array)
        else {
            // A 2xx that does not say which message went: the shared rule retries it.
            return success.then(Vec::new);
        };
        if results.len() != batch.messages.len() {
            return if success { Some(Vec::new()) } else { None };
        }
        Some(results.iter().map(result).collect())
    }

    /// Mailjet's errors are `{"ErrorCode": "mj-0002", "ErrorMessage": "Malformed JSON…"}`.
    fn error_message(&self, answer: &Answer) -> String {
        let message = super::error_message(&answer.body);
        match answer
            .json()
            .as_ref()
            .and_then(|j| j.get("ErrorCode"))
            .and_then(Value::as_str)
        {
            Some(code) => format!("{code}: {message}"),
            None => message,
        }
    }

    /// One request a message: the messages with its `CustomID`.
    fn look_up(&self, batch: &Batch) -> Vec<Request<'static>> {
        batch
            .messages
            .iter()
            .map(|m| {
                let query: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("CustomID", &m.message_id)
                    .finish();
                Request {
                    url: format!("{}/v3/REST/message?{query}", self.endpoint),
                    headers: Vec::new(),
                    auth: Auth::Basic {
                        user: self.key.expose().to_string(),
                        password: self.secret.clone(),
                    },
                    body: Body::None,
                }
            })
            .collect()
    }

    /// `{"Count", "Data": [{"ID", "Status", …}], "Total"}`: a message is found when its
    /// request's answer lists one.
    fn found(&self, batch: &Batch, answers: &[Option<Answer>]) -> Vec<Option<Accepted>> {
        (0..batch.messages.len())
            .map(|i| {
                let ours = batch.messages[i].message_id.as_str();
                let json = answers.get(i)?.as_ref()?.json()?;
                // A listed message that says its CustomID must say ours (in case the filter
                // was not applied: never take another message for this one).
                let first = json
                    .get("Data")?
                    .as_array()?
                    .iter()
                    .find(|d| {
                        d.get("CustomID")
                            .is_none_or(|c| c.as_str() == Some(ours))
                    })?
                    .clone();
                let id = first.get("ID").map(Value::to_string).unwrap_or_default();
                Some(Accepted {
                    reply: format!(
                        "accepted by Mailjet, MessageID {id} (found by its CustomID after the answer was lost; not sent again)"
                    ),
                })
            })
            .collect()
    }

    fn credentials(&self) -> String {
        format!(
            "the API key in {} and the secret key in {}",
            self.key_env, self.secret_env
        )
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

fn result(r: &Value) -> Result<Accepted, Failure> {
    if r.get("Status").and_then(Value::as_str) == Some("success") {
        let to = r.pointer("/To/0");
        let uuid = to
            .and_then(|t| t.get("MessageUUID"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // A 64-bit integer, beyond what a double holds exactly: written as it came.
        let id = to
            .and_then(|t| t.get("MessageID"))
            .map(Value::to_string)
            .unwrap_or_default();
        return Ok(Accepted {
            reply: format!("accepted by Mailjet, MessageUUID {uuid}, MessageID {id}"),
        });
    }
    let errors: Vec<&Value> = r
        .get("Errors")
        .and_then(Value::as_array)
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    let describe = |e: &Value| {
        let code = e.get("ErrorCode").and_then(Value::as_str).unwrap_or("?");
        let message = e.get("ErrorMessage").and_then(Value::as_str).unwrap_or("");
        let related = match e.get("ErrorRelatedTo") {
            Some(Value::Array(fields)) => fields
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            Some(Value::String(field)) => field.clone(),
            _ => String::new(),
        };
        if related.is_empty() {
            format!("Mailjet error {code}: {message}")
        } else {
            format!("Mailjet error {code}: {message} ({related})")
        }
    };
    let reply = if errors.is_empty() {
        "Mailjet refused the message without saying why".to_string()
    } else {
        errors
            .iter()
            .map(|e| describe(e))
            .collect::<Vec<_>>()
            .join("; ")
    };
    // A message's errors concern the message (an invalid address, a forbidden header, a
    // sender not validated): sending it again will not change them, unless Mailjet itself
    // failed (a 5xx for that message).
    let server = errors
        .iter()
        .any(|e| e.get("StatusCode").and_then(Value::as_u64).unwrap_or(0) >= 500);
    Err(Failure {
        kind: if server {
            Kind::Transient
        } else {
            Kind::Permanent
        },
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_message_of_a_mixed_answer() {
        let ok = json!({"Status": "success", "CustomID": "", "To": [{"Email": "a@example.org", "MessageUUID": "1ab2", "MessageID": 70650219165027410u64, "MessageHref": "https://api.mailjet.com/v3/REST/message/70650219165027410"}]});
        assert_eq!(
            result(&ok).unwrap().reply,
            "accepted by Mailjet, MessageUUID 1ab2, MessageID 70650219165027410"
        );
        let refused = json!({"Status": "error", "Errors": [{"ErrorIdentifier": "88b5", "ErrorCode": "send-0011", "StatusCode": 400, "ErrorMessage": "Header is forbidden.", "ErrorRelatedTo": ["Headers[\"List-Id\"]"]}]});
        let f = result(&refused).unwrap_err();
        assert_eq!(f.kind, Kind::Permanent);
        assert_eq!(
            f.reply,
            "Mailjet error send-0011: Header is forbidden. (Headers[\"List-Id\"])"
        );
        let failed = json!({"Status": "error", "Errors": [{"ErrorCode": "mj-0004", "StatusCode": 500, "ErrorMessage": "Internal error", "ErrorRelatedTo": "Messages"}]});
        assert_eq!(result(&failed).unwrap_err().kind, Kind::Transient);
    }
}
