//! Resend's webhooks, delivered and signed by Svix.
//!
//! Verification (<https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests>, the
//! scheme itself at <https://docs.svix.com/receiving/verifying-payloads/how-manual>): the
//! headers `svix-id`, `svix-timestamp` and `svix-signature`; the signed content is
//! `{svix-id}.{svix-timestamp}.{raw body}`, HMAC-SHA256 with the secret's bytes (the base64
//! after `whsec_`); `svix-signature` holds one or more space-separated `v1,<base64>` (several
//! while a secret is rotated): one match is enough, compared in constant time. A timestamp
//! more than 5 minutes from this clock is refused (Svix's tolerance), and a `svix-id` already
//! taken records nothing again.
//!
//! Events (<https://resend.com/docs/dashboard/webhooks/event-types>): `email.bounced` with
//! `data.bounce.type` "Permanent" is a bounce, "Transient" (or "Undetermined") a soft bounce;
//! `email.complained` a complaint; each for every address of `data.to` (bulletin sends each
//! reader their own message).

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{Delivery, Receive, Refusal, Reported, SettingsError, header_text};
use crate::suppressions::{Kind, Provider};

/// `[serve.webhooks.resend]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `/webhooks/resend`.
    pub path: Option<String>,
    /// The environment variable holding the webhook's signing secret (`whsec_…`).
    pub secret_env: String,
}

impl Config {
    pub fn open(&self) -> Result<Receiver, SettingsError> {
        let provider = Provider::Resend;
        let secret = super::secret(provider, "secret_env", &self.secret_env)?;
        let key = secret
            .expose()
            .trim()
            .strip_prefix("whsec_")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                SettingsError::rule(
                    provider,
                    format!(
                        "{} does not hold a signing secret; set it to the webhook's secret as Resend shows it, whsec_ followed by base64",
                        self.secret_env
                    ),
                )
            })?;
        Ok(Receiver {
            path: super::path(provider, &self.path)?,
            key,
            secret_env: self.secret_env.clone(),
        })
    }
}

pub struct Receiver {
    path: String,
    /// The secret's bytes (never printed: the Receiver has no Debug).
    key: Vec<u8>,
    secret_env: String,
}

impl Receiver {
    /// Whether one of the `v1,<base64>` signatures signs `id.timestamp.body`.
    fn signs(&self, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&self.key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        signatures.split_whitespace().any(|one| {
            one.strip_prefix("v1,")
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .is_some_and(|given| mac.clone().verify_slice(&given).is_ok())
        })
    }
}

impl Receive for Receiver {
    const PROVIDER: Provider = Provider::Resend;

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        format!("Svix signature; secret from {}: set", self.secret_env)
    }

    async fn receive(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        let (Some(id), Some(timestamp), Some(signatures)) = (
            header_text(headers, "svix-id"),
            header_text(headers, "svix-timestamp"),
            header_text(headers, "svix-signature"),
        ) else {
            return Err(Refusal::Unauthorized(
                "no svix-id, svix-timestamp or svix-signature",
            ));
        };
        if !self.signs(id, timestamp, body, signatures) {
            return Err(Refusal::Unauthorized("the signature does not verify"));
        }
        let stamp: i64 = timestamp
            .parse()
            .map_err(|_| Refusal::Unauthorized("svix-timestamp is not a Unix time"))?;
        if !super::fresh(stamp, now) {
            return Err(Refusal::Unauthorized("the timestamp is stale"));
        }
        let event: Value = super::json(body)?;
        Ok(Delivery {
            reports: reports(&event, id)?,
            once: Some(id.to_string()),
            note: None,
        })
    }
}

/// What one Resend event reports.
fn reports(event: &Value, id: &str) -> Result<Vec<Reported>, Refusal> {
    let name = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Malformed("no type: not a Resend event".into()))?;
    let data = event.get("data");
    let bounce = data.and_then(|d| d.get("bounce"));
    let bounce_text = |key: &str| bounce.and_then(|b| b.get(key)).and_then(Value::as_str);
    let (kind, reason) = match name {
        "email.bounced" => {
            let kind = match bounce_text("type") {
                Some("Transient" | "Undetermined") => Kind::SoftBounce,
                _ => Kind::Bounce,
            };
            let words = [
                bounce_text("type"),
                bounce_text("subType"),
                bounce_text("message"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            (kind, words)
        }
        "email.complained" => (Kind::Complaint, "complained".to_string()),
        _ => return Ok(Vec::new()),
    };
    let to = match data.and_then(|d| d.get("to")) {
        Some(Value::Array(to)) => to.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(to)) => vec![to.as_str()],
        _ => Vec::new(),
    };
    if to.is_empty() {
        return Err(Refusal::Malformed(format!(
            "an {name} event without data.to"
        )));
    }
    Ok(to
        .into_iter()
        .map(|address| Reported::new(address, kind, Some(reason.clone()), Some(id.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_the_signatures_may_match_and_only_the_right_one_does() {
        let receiver = Receiver {
            path: "/".into(),
            key: b"0123456789abcdef".to_vec(),
            secret_env: "S".into(),
        };
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"0123456789abcdef").unwrap();
        mac.update(b"msg_1.1600000000.{}");
        let good = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert!(receiver.signs("msg_1", "1600000000", b"{}", &format!("v1,{good}")));
        assert!(receiver.signs(
            "msg_1",
            "1600000000",
            b"{}",
            &format!("v1,bm9wZQ== v1,{good}")
        ));
        assert!(!receiver.signs("msg_2", "1600000000", b"{}", &format!("v1,{good}")));
        assert!(!receiver.signs("msg_1", "1600000000", b"{ }", &format!("v1,{good}")));
        assert!(!receiver.signs("msg_1", "1600000000", b"{}", &format!("v2,{good}")));
    }

    #[test]
    fn bounces_by_type_and_complaints() {
        let kinds = |json: &str| {
            reports(&serde_json::from_str(json).unwrap(), "m")
                .unwrap()
                .into_iter()
                .map(|r| (r.address, r.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(
                r#"{"type":"email.bounced","data":{"to":["a@x.org"],"bounce":{"type":"Permanent","subType":"Suppressed"}}}"#
            ),
            [("a@x.org".to_string(), Kind::Bounce)]
        );
        assert_eq!(
            kinds(
                r#"{"type":"email.bounced","data":{"to":["a@x.org"],"bounce":{"type":"Transient"}}}"#
            ),
            [("a@x.org".to_string(), Kind::SoftBounce)]
        );
        assert_eq!(
            kinds(r#"{"type":"email.complained","data":{"to":["a@x.org"]}}"#),
            [("a@x.org".to_string(), Kind::Complaint)]
        );
        assert!(kinds(r#"{"type":"email.delivered","data":{"to":["a@x.org"]}}"#).is_empty());
    }
}
