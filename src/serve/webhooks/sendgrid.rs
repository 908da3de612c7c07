//! SendGrid's signed Event Webhook.
//!
//! Verification
//! (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>):
//! SendGrid signs each POST with ECDSA (P-256, SHA-256) over the timestamp header followed by
//! the raw body; `X-Twilio-Email-Event-Webhook-Signature` carries the signature (base64 of
//! its DER form), `X-Twilio-Email-Event-Webhook-Timestamp` the timestamp. The verification
//! key SendGrid shows once signing is on is the base64 of the public key's DER
//! (SubjectPublicKeyInfo). A timestamp more than [`super::TOLERANCE`] from this clock is
//! refused (SendGrid gives no figure), and a signature already taken is not recorded twice.
//!
//! Events (a JSON array, batched;
//! <https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event>):
//! - `bounce`: `type: "bounce"` suppresses at once; `type: "blocked"` (the receiving server
//!   refused this message for now) counts as a soft bounce;
//! - `dropped` (SendGrid did not send, for its own suppression lists): `reason` "Bounced
//!   Address" or "Invalid" is a bounce, "Spam Reporting Address" a complaint, "Unsubscribed
//!   Address" an unsubscribe; other reasons concern the message, not the address, and are
//!   ignored;
//! - `spamreport`: a complaint; `unsubscribe` and `group_unsubscribe` (from the newsletter's
//!   suppression group): an unsubscribe.
//!
//! SendGrid's `sg_event_id` changes when a delivery is retried, so the id a retry is known by
//! is the message id, the event and its timestamp.

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;
use serde_json::Value;

use super::{Delivery, Receive, Refusal, Reported, SettingsError, header_text};
use crate::suppressions::{Kind, Provider};

pub const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// `[serve.webhooks.sendgrid]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `/webhooks/sendgrid`.
    pub path: Option<String>,
    /// The environment variable holding the verification key (base64, as SendGrid shows it).
    pub verification_key_env: String,
}

impl Config {
    pub fn open(&self) -> Result<Receiver, SettingsError> {
        let provider = Provider::Sendgrid;
        let key = super::secret(provider, "verification_key_env", &self.verification_key_env)?;
        let key = key_from(key.expose()).ok_or_else(|| {
            SettingsError::rule(
                provider,
                format!(
                    "{} does not hold a verification key; set it to the base64 key SendGrid shows under Mail Settings, Signed Event Webhook Requests",
                    self.verification_key_env
                ),
            )
        })?;
        Ok(Receiver {
            path: super::path(provider, &self.path)?,
            key,
            key_env: self.verification_key_env.clone(),
        })
    }
}

/// The key from SendGrid's base64 of its DER (a PEM's header and line breaks tolerated).
fn key_from(text: &str) -> Option<VerifyingKey> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    VerifyingKey::from_public_key_der(&der).ok()
}

pub struct Receiver {
    path: String,
    key: VerifyingKey,
    key_env: String,
}

impl Receiver {
    /// Whether `signature` (base64 DER) signs `timestamp` then `body`.
    fn verifies(&self, timestamp: &str, signature: &str, body: &[u8]) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        // Signers may give either of the two equivalent s values; the low one always verifies.
        let signature = signature.normalize_s().unwrap_or(signature);
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.key.verify(&signed, &signature).is_ok()
    }
}

impl Receive for Receiver {
    const PROVIDER: Provider = Provider::Sendgrid;

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        format!(
            "ECDSA signature; verification key from {}: set",
            self.key_env
        )
    }

    async fn receive(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        let (Some(signature), Some(timestamp)) = (
            header_text(headers, SIGNATURE),
            header_text(headers, TIMESTAMP),
        ) else {
            return Err(Refusal::Unauthorized("no signature or timestamp header"));
        };
        if !self.verifies(timestamp, signature, body) {
            return Err(Refusal::Unauthorized("the signature does not verify"));
        }
        let stamp: i64 = timestamp
            .parse()
            .map_err(|_| Refusal::Unauthorized("the timestamp is not a Unix time"))?;
        if !super::fresh(stamp, now) {
            return Err(Refusal::Unauthorized("the timestamp is stale"));
        }
        let events: Vec<Value> = super::json(body)?;
        Ok(Delivery {
            reports: events.iter().filter_map(report).collect(),
            once: Some(signature.to_string()),
            note: None,
        })
    }
}

/// What one SendGrid event reports, if anything.
fn report(event: &Value) -> Option<Reported> {
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let name = text("event")?;
    let reason = text("reason");
    let kind = match (name, text("type"), reason) {
        ("bounce", Some("blocked"), _) => Kind::SoftBounce,
        ("bounce", _, _) => Kind::Bounce,
        ("dropped", _, Some(r)) if r.starts_with("Bounced Address") || r == "Invalid" => {
            Kind::Bounce
        }
        ("dropped", _, Some(r)) if r.starts_with("Spam Reporting Address") => Kind::Complaint,
        ("dropped", _, Some(r)) if r.starts_with("Unsubscribed Address") => Kind::Unsubscribe,
        ("spamreport", _, _) => Kind::Complaint,
        ("unsubscribe" | "group_unsubscribe", _, _) => Kind::Unsubscribe,
        _ => return None,
    };
    let words = [Some(name), text("type"), text("status"), reason]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let reference = format!(
        "{}:{name}:{}",
        text("sg_message_id").unwrap_or(""),
        event
            .get("timestamp")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    Some(Reported::new(
        text("email")?,
        kind,
        Some(words),
        Some(reference),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;

    use crate::serve::webhooks::hex;

    #[test]
    fn a_signature_over_timestamp_and_body_verifies_and_nothing_else_does() {
        let signing = SigningKey::from_slice(&[7u8; 32]).unwrap();
        // SubjectPublicKeyInfo of a P-256 key: the algorithm's fixed prefix, then the point.
        let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(signing.verifying_key().to_encoded_point(false).as_bytes());
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let receiver = Receiver {
            path: "/".into(),
            key: key_from(&b64(&der)).unwrap(),
            key_env: "K".into(),
        };
        let body = br#"[{"email":"a@example.com","event":"bounce"}]"#;
        let signature: Signature = signing.sign(&[b"1600000000".as_slice(), body].concat());
        let signature = b64(signature.to_der().as_bytes());
        assert!(receiver.verifies("1600000000", &signature, body));
        assert!(!receiver.verifies("1600000001", &signature, body));
        assert!(!receiver.verifies("1600000000", &signature, b"[]"));
        assert!(!receiver.verifies("1600000000", "bm9wZQ==", body));
        assert!(key_from("not a key").is_none());
    }

    #[test]
    fn events_that_suppress() {
        let kinds: Vec<Option<Kind>> = [
            r#"{"email":"a@x.org","event":"bounce","type":"bounce","reason":"550 5.1.1"}"#,
            r#"{"email":"a@x.org","event":"bounce","type":"blocked"}"#,
            r#"{"email":"a@x.org","event":"dropped","reason":"Bounced Address"}"#,
            r#"{"email":"a@x.org","event":"dropped","reason":"Spam Content"}"#,
            r#"{"email":"a@x.org","event":"spamreport"}"#,
            r#"{"email":"a@x.org","event":"group_unsubscribe","asm_group_id":1}"#,
            r#"{"email":"a@x.org","event":"delivered"}"#,
        ]
        .iter()
        .map(|e| report(&serde_json::from_str(e).unwrap()).map(|r| r.kind))
        .collect();
        assert_eq!(
            kinds,
            [
                Some(Kind::Bounce),
                Some(Kind::SoftBounce),
                Some(Kind::Bounce),
                None,
                Some(Kind::Complaint),
                Some(Kind::Unsubscribe),
                None
            ]
        );
    }
}
