//! Mailgun's webhooks.
//!
//! Verification
//! (<https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>):
//! the JSON body carries `signature: {timestamp, token, signature}`, where `signature` is the
//! hex HMAC-SHA256 of the timestamp followed by the token, keyed with the account's HTTP
//! webhook signing key; compared in constant time (the MAC's own `verify_slice`). A subaccount's
//! event also carries `parent-signature`, made with the primary account's key: either one
//! verifying with the configured key is enough. Mailgun advises refusing timestamps far from
//! the current time and tokens seen before: a timestamp more than [`super::TOLERANCE`] away is
//! refused, and a token already taken records nothing again.
//!
//! Events (`event-data`, one a request;
//! <https://documentation.mailgun.com/docs/mailgun/user-manual/events/>): `failed` with
//! `severity: "permanent"` is a bounce, with `"temporary"` a soft bounce; `complained` a
//! complaint; `unsubscribed` an unsubscribe. Its `id` is the id a retry is known by.

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{Delivery, Receive, Refusal, Reported, SettingsError};
use crate::suppressions::{Kind, Provider};
use crate::values::Secret;

/// `[serve.webhooks.mailgun]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `/webhooks/mailgun`.
    pub path: Option<String>,
    /// The environment variable holding the HTTP webhook signing key.
    pub signing_key_env: String,
}

impl Config {
    pub fn open(&self) -> Result<Receiver, SettingsError> {
        let provider = Provider::Mailgun;
        Ok(Receiver {
            path: super::path(provider, &self.path)?,
            key: super::secret(provider, "signing_key_env", &self.signing_key_env)?,
            key_env: self.signing_key_env.clone(),
        })
    }
}

pub struct Receiver {
    path: String,
    key: Secret,
    key_env: String,
}

/// The body's `signature` object.
#[derive(Deserialize)]
struct Signature {
    timestamp: Value,
    token: String,
    signature: String,
    #[serde(rename = "parent-signature")]
    parent_signature: Option<String>,
}

impl Receiver {
    /// Whether `hex` is the HMAC of `timestamp` then `token` with the signing key.
    fn signs(&self, timestamp: &str, token: &str, hex: &str) -> bool {
        let Some(given) = super::hex(hex) else {
            return false;
        };
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(self.key.expose().as_bytes()) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

impl Receive for Receiver {
    const PROVIDER: Provider = Provider::Mailgun;

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        format!("HMAC signature; signing key from {}: set", self.key_env)
    }

    async fn receive(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        // The signature is inside the body: a body that is not JSON has none to check.
        let delivery: Value = super::json(body)
            .map_err(|_| Refusal::Unauthorized("no signature (the body is not Mailgun's JSON)"))?;
        let signature: Signature = delivery
            .get("signature")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .ok_or(Refusal::Unauthorized("no signature in the body"))?;
        // Mailgun writes the timestamp as a string; a number is read the same way.
        let timestamp = match &signature.timestamp {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(Refusal::Unauthorized(
                    "the signature's timestamp is not a time",
                ));
            }
        };
        let verified = self.signs(&timestamp, &signature.token, &signature.signature)
            || signature
                .parent_signature
                .as_deref()
                .is_some_and(|p| self.signs(&timestamp, &signature.token, p));
        if !verified {
            return Err(Refusal::Unauthorized("the signature does not verify"));
        }
        let stamp: i64 = timestamp
            .parse()
            .map_err(|_| Refusal::Unauthorized("the signature's timestamp is not a time"))?;
        if !super::fresh(stamp, now) {
            return Err(Refusal::Unauthorized("the timestamp is stale"));
        }
        let data = delivery
            .get("event-data")
            .ok_or_else(|| Refusal::Malformed("no event-data".into()))?;
        Ok(Delivery {
            reports: report(data)?.into_iter().collect(),
            once: Some(signature.token),
            note: None,
        })
    }
}

/// What one Mailgun event reports, if anything.
fn report(data: &Value) -> Result<Option<Reported>, Refusal> {
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    let event =
        text("event").ok_or_else(|| Refusal::Malformed("event-data without its event".into()))?;
    let kind = match (event, text("severity")) {
        ("failed", Some("permanent")) => Kind::Bounce,
        ("failed", _) => Kind::SoftBounce,
        ("complained", _) => Kind::Complaint,
        ("unsubscribed", _) => Kind::Unsubscribe,
        _ => return Ok(None),
    };
    let status = data.get("delivery-status");
    let status_text = |key: &str| status.and_then(|s| s.get(key)).and_then(Value::as_str);
    let code = status
        .and_then(|s| s.get("code"))
        .map(Value::to_string)
        .filter(|c| c != "null");
    let words = [
        Some(event.to_string()),
        text("severity").map(str::to_string),
        text("reason").map(str::to_string),
        code,
        status_text("message").map(str::to_string),
        status_text("description").map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .filter(|w| !w.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let address = text("recipient")
        .ok_or_else(|| Refusal::Malformed(format!("a {event} event without its recipient")))?;
    Ok(Some(Reported::new(
        address,
        kind,
        Some(words),
        text("id").map(str::to_string),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_by_severity_complaints_and_unsubscribes() {
        let kind = |json: &str| {
            report(&serde_json::from_str(json).unwrap())
                .unwrap()
                .map(|r| r.kind)
        };
        assert_eq!(
            kind(r#"{"event":"failed","severity":"permanent","recipient":"a@x.org"}"#),
            Some(Kind::Bounce)
        );
        assert_eq!(
            kind(r#"{"event":"failed","severity":"temporary","recipient":"a@x.org"}"#),
            Some(Kind::SoftBounce)
        );
        assert_eq!(
            kind(r#"{"event":"complained","recipient":"a@x.org"}"#),
            Some(Kind::Complaint)
        );
        assert_eq!(
            kind(r#"{"event":"unsubscribed","recipient":"a@x.org"}"#),
            Some(Kind::Unsubscribe)
        );
        assert_eq!(kind(r#"{"event":"delivered","recipient":"a@x.org"}"#), None);
    }
}
