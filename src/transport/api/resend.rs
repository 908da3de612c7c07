//! Resend: the batch endpoint, up to 100 emails a request, each email whole (its own subject,
//! HTML, text and List-Unsubscribe headers), with an `Idempotency-Key`: a batch retried after a
//! timeout, a 5xx or a crash, within Resend's 24 hours, is answered with the first answer and
//! not delivered again.
//!
//! Each request asks for `x-batch-validation: permissive`: Resend then queues the valid
//! emails and lists the invalid ones by index in `errors`, instead of refusing the whole
//! batch for one bad address (<https://resend.com/changelog/batch-validation-modes>).
//!
//! API reference: <https://resend.com/docs/api-reference/emails/send-batch-emails>;
//! idempotency: <https://resend.com/docs/dashboard/emails/idempotency-keys>;
//! errors: <https://resend.com/docs/api-reference/errors>;
//! rate limits: <https://resend.com/docs/api-reference/rate-limit>;
//! tags: <https://resend.com/docs/dashboard/emails/tags>.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::Item;
use super::template::{Document, Fill, cut, values};
use super::{
    Answer, Auth, Body, Common, Context, Headers, Json, Provider, ProviderError, Request,
    RequestError, SettingsError, recipient,
};
use crate::message::{Form, Outgoing};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "resend"`.
pub const TRANSPORT: &str = "resend";

/// A Resend profile's settings, as `bulletin.toml` writes them (the shared ones only).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
}

impl Settings {
    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.common.validate(TRANSPORT)
    }
}

/// Resend's own address.
pub const ENDPOINT: &str = "https://api.resend.com";

/// "Trigger up to 100 batch emails at once."
pub const BATCH_LIMIT: usize = 100;

pub struct Resend {
    endpoint: String,
    key: Secret,
    key_env: String,
    /// The sender, the reply-to address and the tag as every email gives them.
    from: String,
    reply_to: Option<String>,
    tag: String,
    /// The HTML and text, filled for each email as the request is written.
    html: Document,
    text: Document,
    limit: usize,
}

impl Resend {
    pub fn new(settings: &Settings, context: &Context) -> Result<Resend, ProviderError> {
        let common = &settings.common;
        let [_, html, text] = cut(context.template)?;
        Ok(Resend {
            html,
            text,
            endpoint: common.endpoint(ENDPOINT),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            from: context.letterhead.from.to_string(),
            reply_to: context.letterhead.reply_to.as_ref().map(|r| r.to_string()),
            tag: super::tag_value(&context.letterhead.tag),
            limit: common.batch_limit(BATCH_LIMIT),
        })
    }

    /// One email as the batch endpoint takes it, borrowing the message's parts.
    fn email<'a>(&'a self, m: &'a Outgoing) -> Result<Email<'a>, RequestError> {
        let filled = values(m, self.html.holes)?;
        Ok(Email {
            from: &self.from,
            to: [recipient(m).to_string()],
            subject: &filled.subject,
            html: self.html.fill(&filled.values),
            text: self.text.fill(&filled.values),
            // Header values must be strings, which ours are.
            headers: Headers::of(m, |_| true),
            tags: [Tag {
                name: "issue",
                value: &self.tag,
            }],
            reply_to: self.reply_to.as_deref(),
        })
    }
}

/// An email of a batch request, as Resend's reference names its fields.
#[derive(Serialize)]
struct Email<'a> {
    from: &'a str,
    to: [String; 1],
    subject: &'a str,
    html: Fill<'a>,
    text: Fill<'a>,
    headers: Headers<'a>,
    tags: [Tag<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
}

#[derive(Serialize)]
struct Tag<'a> {
    name: &'a str,
    value: &'a str,
}

impl Provider for Resend {
    fn name(&self) -> &'static str {
        "Resend"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Values
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let emails = batch
            .messages
            .iter()
            .map(|m| Ok(Box::new(self.email(m)?) as Box<dyn Item>))
            .collect::<Result<Vec<_>, RequestError>>()?;
        Ok(Request {
            url: format!("{}/emails/batch", self.endpoint),
            // The same key for the same issue and readers: a retry (this run's or the next
            // one's) of a batch Resend already took is not delivered twice.
            headers: vec![
                ("Idempotency-Key".to_string(), batch.key.clone()),
                ("x-batch-validation".to_string(), "permissive".to_string()),
            ],
            auth: Auth::Bearer(self.key.clone()),
            body: Body::Json(Json::array(emails)),
        })
    }

    /// A 200 answer holds `{"data": [{"id"}…]}`, one per email queued, in the request's
    /// order, and (permissive validation) `{"errors": [{"index", "message"}…]}` for the
    /// emails refused: each is that reader's own failure. Errors whose meaning the shared
    /// rules would get wrong are judged here (see `error`).
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        if answer.status == 409 && error_name(answer).as_deref() == Some(REPLAYED) {
            // The same readers' batch went out under this key in the last 24 hours and Resend
            // handled it; it changed since (the issue was edited after an attempt whose answer
            // was lost). Resend keeps a key only for a request it handled, so the readers have
            // the earlier version: recorded as sent, never as refused (issue 14).
            return Some(super::accept_all(
                batch,
                &format!(
                    "accepted by Resend in an earlier request with the same Idempotency-Key, before the issue changed (Resend answered {REPLAYED}): this reader has the earlier version, and was not sent this one"
                ),
            ));
        }
        if answer.status != 200 {
            return error(answer).map(|f| batch.messages.iter().map(|_| Err(f.clone())).collect());
        }
        let json = answer.json()?;
        let ids = json.get("data")?.as_array()?.clone();
        let mut refused: Vec<(usize, String)> = json
            .get("errors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| {
                        let index = usize::try_from(e.get("index")?.as_u64()?).ok()?;
                        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                        Some((index, message.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        refused.retain(|(i, _)| *i < batch.messages.len());
        let mut ids = ids.iter();
        Some(
            (0..batch.messages.len())
                .map(|i| match refused.iter().find(|(at, _)| *at == i) {
                    Some((_, message)) => Err(Failure {
                        kind: Kind::Permanent,
                        reply: format!("Resend refused this email: {message}"),
                    }),
                    None => {
                        let id = ids
                            .next()
                            .and_then(|d| d.get("id"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        Ok(Accepted {
                            reply: format!("accepted by Resend, id {id}"),
                        })
                    }
                })
                .collect(),
        )
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn credentials(&self) -> String {
        format!("the API key in {}", self.key_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// Resend's answer to a key it has handled for another request body.
const REPLAYED: &str = "invalid_idempotent_request";

/// The `name` of a Resend error answer: `validation_error`, `invalid_idempotent_request`…
fn error_name(answer: &Answer) -> Option<String> {
    Some(answer.json()?.get("name")?.as_str()?.to_string())
}

/// The errors Resend names whose HTTP status alone would mislead the shared rules; `None`
/// for the others (429 `rate_limit_exceeded` waits `retry-after`, 401 stops the run, 422
/// fails the batch…).
fn error(answer: &Answer) -> Option<Failure> {
    let body = answer.json()?;
    let name = body.get("name").and_then(Value::as_str)?;
    let message = body.get("message").and_then(Value::as_str).unwrap_or("");
    let reply = |advice: &str| {
        format!(
            "Resend answered HTTP {} {name}: {message}{advice}",
            answer.status
        )
    };
    let failure = match name {
        // Waiting seconds does not bring the quota back, and every other batch would be
        // refused the same way: stop the run; those not sent are sent by the next run, once
        // the quota allows (or the plan is changed).
        "daily_quota_exceeded" | "monthly_quota_exceeded" | "email_above_quota" => Failure {
            kind: Kind::Unreachable,
            reply: reply(
                "; the account's sending quota is used up: run the same command again when it is renewed",
            ),
        },
        // The first request with this key is still being handled: ask again, same key.
        "concurrent_idempotent_requests" => Failure {
            kind: Kind::Transient,
            reply: reply(""),
        },
        _ => return None,
    };
    Some(failure)
}

#[cfg(test)]
mod tests {
    use super::super::tag_value;

    #[test]
    fn tag_values_keep_to_the_allowed_characters() {
        assert_eq!(tag_value("2020-06"), "2020-06");
        assert_eq!(tag_value("été 2026/n°3"), "_t__2026_n_3");
        assert_eq!(tag_value(""), "_");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }
}
