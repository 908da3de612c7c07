//! Brevo (formerly Sendinblue): the transactional email endpoint with `messageVersions`, up
//! to 1000 versions a request, one version per reader with their own subject, HTML, text and
//! List-Unsubscribe header; the sender, the tag and the headers every reader shares
//! are given once.
//!
//! API reference: <https://developers.brevo.com/reference/sendtransacemail>; batches:
//! <https://developers.brevo.com/docs/batch-send-transactional-emails>; idempotency:
//! <https://developers.brevo.com/docs/heterogenous-versions-batch-emails>; rate-limit
//! headers: <https://developers.brevo.com/docs/limit-headers>.
//!
//! A request sent again with an `idempotencyKey` Brevo has seen in the last 30 minutes is
//! not processed again and is answered `400 duplicate_parameter` (the idempotency guide's
//! "Time-to-live and error handling"): the first request was accepted, so its readers are
//! recorded as sent, never as refused. A request refused whole (`400 invalid_parameter`)
//! is pinned on the readers its message quotes, else the send loop splits it to find them.
//!
//! Not documented by Brevo, done as django-anymail does: `headers` inside a version (the
//! reader's own List-Unsubscribe), and `messageIds` in the order of the versions.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Answer, Auth, Body, Common, Context, Provider, ProviderError, Request, RequestError,
    SettingsError, header_object,
};
use crate::message::{Form, Letterhead, Outgoing};
use crate::transport::{Accepted, Batch, Failure};
use crate::values::Secret;

/// `transport = "brevo"`.
pub const TRANSPORT: &str = "brevo";

/// A Brevo profile's settings, as `bulletin.toml` writes them (the shared ones only).
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

/// Brevo's own address.
pub const ENDPOINT: &str = "https://api.brevo.com";

/// "Send up to 1000 email messages in one API call" (the batch guide); one recipient per
/// version keeps us under the reference's 2000 recipients per request.
pub const BATCH_LIMIT: usize = 1000;

/// The longest recipient name a version takes ("name max 70 chars"); a longer one would get
/// the whole request refused.
const NAME_LIMIT: usize = 70;

pub struct Brevo {
    endpoint: String,
    key: Secret,
    key_env: String,
    letterhead: Letterhead,
    limit: usize,
}

impl Brevo {
    pub fn new(settings: &Settings, context: &Context) -> Result<Brevo, ProviderError> {
        let common = &settings.common;
        Ok(Brevo {
            endpoint: common.endpoint(ENDPOINT),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            letterhead: context.letterhead.clone(),
            limit: common.batch_limit(BATCH_LIMIT),
        })
    }

    /// The request body: what every reader shares once, a version for each reader.
    fn body(&self, batch: &Batch) -> Result<Value, RequestError> {
        let versions = batch
            .messages
            .iter()
            .map(version)
            .collect::<Result<Vec<_>, _>>()?;
        let first = batch.messages.first().map(Outgoing::parts).transpose()?;
        let mut body = json!({
            "sender": address(&self.letterhead.from),
            // Brevo customises htmlContent and textContent per version only when they are
            // also given at the top, so the first reader's stand in; every version has its own.
            "subject": first.map(|p| p.subject.as_str()).unwrap_or_default(),
            "htmlContent": first.map(|p| p.html.as_str()).unwrap_or_default(),
            "textContent": first.map(|p| p.text.as_str()).unwrap_or_default(),
            "tags": [self.letterhead.tag],
            "headers": self.shared_headers(batch),
            "messageVersions": versions,
        });
        if let Some(reply_to) = &self.letterhead.reply_to {
            body["replyTo"] = address(reply_to);
        }
        Ok(body)
    }

    /// The idempotency key, and the headers that are the same for every reader (List-Id,
    /// List-Unsubscribe-Post).
    fn shared_headers(&self, batch: &Batch) -> Value {
        let mut headers = batch
            .messages
            .first()
            .map(|m| header_object(m, |name| name != "List-Unsubscribe"))
            .unwrap_or_default();
        headers.insert("idempotencyKey".into(), idempotency_key(batch).into());
        Value::Object(headers)
    }
}

/// The code of a Brevo error answer: `invalid_parameter`, `duplicate_parameter`…
fn code(answer: &Answer) -> Option<String> {
    answer
        .json()?
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Brevo's answer to a request whose `idempotencyKey` it has already processed.
const DUPLICATE: &str = "duplicate_parameter";

/// `{"email", "name"}`, the name left out when there is none.
fn address(mailbox: &lettre::message::Mailbox) -> Value {
    let mut a = json!({"email": mailbox.email.to_string()});
    if let Some(name) = mailbox.name.as_deref().filter(|n| !n.is_empty()) {
        a["name"] = name.into();
    }
    a
}

/// One reader's version: their address, subject, HTML, text and List-Unsubscribe.
fn version(m: &Outgoing) -> Result<Value, RequestError> {
    let parts = m.parts()?;
    let mut to = json!({"email": m.envelope.to.to_string()});
    if let Some(name) = parts.to_name.as_deref() {
        to["name"] = name.chars().take(NAME_LIMIT).collect::<String>().into();
    }
    // `headers` in a version is not in Brevo's reference nor its SDKs; django-anymail sends
    // it (merge_headers) and Brevo accepts it. It is the only way to give each reader their
    // own List-Unsubscribe in one request.
    let headers = header_object(m, |name| name == "List-Unsubscribe");
    Ok(json!({
        "to": [to],
        "subject": parts.subject,
        "htmlContent": parts.html,
        "textContent": parts.text,
        "headers": headers,
    }))
}

/// Brevo's `idempotencyKey` is a UUID: one made from the batch's key and its messages' IDs,
/// so that it is the same for the same request across retries and runs, and differs for a
/// test send to the same readers (whose Message-IDs say so).
fn idempotency_key(batch: &Batch) -> String {
    let mut h = Sha256::new();
    h.update(batch.key.as_bytes());
    for m in &batch.messages {
        h.update([0]);
        h.update(m.message_id.as_bytes());
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    // Shaped as a version 4 UUID, in case Brevo checks.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Provider for Brevo {
    fn name(&self) -> &'static str {
        "Brevo"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Parts
    }

    fn request(&self, batch: &Batch) -> Result<Request, RequestError> {
        Ok(Request {
            url: format!("{}/v3/smtp/email", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Header {
                name: "api-key",
                value: self.key.clone(),
            },
            body: Body::Json(self.body(batch)?),
        })
    }

    /// Brevo takes or refuses a request whole: a 201 holds `messageIds`, one per version
    /// (in the versions' order, as django-anymail reads them; not documented). Without as
    /// many IDs as readers, each is recorded with the answer as a whole.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        if answer.status == 400 && code(answer).as_deref() == Some(DUPLICATE) {
            // Every request carries an idempotencyKey, and no request names a reader twice:
            // the duplicate is the key, whose first request Brevo accepted.
            return Some(super::accept_all(
                batch,
                &format!(
                    "accepted by Brevo in an earlier request with the same idempotencyKey {} (Brevo answered {DUPLICATE}: it did not send it again)",
                    idempotency_key(batch)
                ),
            ));
        }
        if !(200..300).contains(&answer.status) {
            return None;
        }
        let json = answer.json().unwrap_or(Value::Null);
        let ids: Vec<&str> = json
            .get("messageIds")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.len() == batch.messages.len() {
            return Some(
                ids.iter()
                    .map(|id| {
                        Ok(Accepted {
                            reply: format!("accepted by Brevo, messageId {id}"),
                        })
                    })
                    .collect(),
            );
        }
        let reply = match json.get("messageId").and_then(Value::as_str) {
            Some(id) => format!("accepted by Brevo, messageId {id}"),
            None => format!(
                "accepted by Brevo (HTTP {}, {} message IDs for {} readers)",
                answer.status,
                ids.len(),
                batch.messages.len()
            ),
        };
        Some(super::accept_all(batch, &reply))
    }

    /// `Retry-After` if there is one, else `x-sib-ratelimit-reset`: the seconds until the
    /// limit resets (not a date).
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        super::retry_after_header(&answer.headers).or_else(|| {
            let seconds: f64 = answer
                .header("x-sib-ratelimit-reset")?
                .trim()
                .parse()
                .ok()?;
            (seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds.min(3600.0)))
        })
    }

    /// Brevo's errors are `{"code": "invalid_parameter", "message": "email is not valid in to"}`.
    fn error_message(&self, answer: &Answer) -> String {
        let message = super::error_message(&answer.body);
        match code(answer) {
            Some(code) => format!("{code}: {message}"),
            None => message,
        }
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn credentials(&self) -> String {
        format!("the API key (v3, not an SMTP key) in {}", self.key_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn batch(key: &str, ids: &[&str]) -> Batch {
        Batch {
            key: key.into(),
            messages: ids
                .iter()
                .map(|id| Outgoing {
                    envelope: crate::message::Envelope {
                        from: "news@example.org".parse().unwrap(),
                        to: "ann@example.org".parse().unwrap(),
                    },
                    message_id: id.to_string(),
                    payload: crate::message::Payload::Mime(Vec::new()),
                })
                .collect(),
        }
    }

    #[test]
    fn the_idempotency_key_is_a_uuid_the_same_for_the_same_request() {
        let k = idempotency_key(&batch("k1", &["<a@x>", "<b@x>"]));
        assert_eq!(k.len(), 36);
        assert_eq!(k.as_bytes()[14], b'4', "{k}");
        assert_eq!(k, idempotency_key(&batch("k1", &["<a@x>", "<b@x>"])));
        assert_ne!(k, idempotency_key(&batch("k1", &["<a.test@x>", "<b@x>"])));
        assert_ne!(k, idempotency_key(&batch("k2", &["<a@x>", "<b@x>"])));
    }

    #[test]
    fn waits_as_the_rate_limit_headers_say() {
        let provider = |headers: HeaderMap| Answer {
            status: 429,
            headers,
            body: Vec::new(),
        };
        let mut h = HeaderMap::new();
        h.insert("x-sib-ratelimit-reset", "12".parse().unwrap());
        let brevo = Brevo {
            endpoint: ENDPOINT.into(),
            key: Secret::placeholder(),
            key_env: "BREVO_API_KEY".into(),
            letterhead: Letterhead {
                from: "news@example.org".parse().unwrap(),
                reply_to: None,
                tag: "2020-06".into(),
            },
            limit: BATCH_LIMIT,
        };
        assert_eq!(
            brevo.retry_after(&provider(h.clone())),
            Some(Duration::from_secs(12))
        );
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            brevo.retry_after(&provider(h)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(brevo.retry_after(&provider(HeaderMap::new())), None);
    }
}
