//! Amazon SES notifications, delivered by Amazon SNS to an HTTPS subscription.
//!
//! Verification (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>,
//! the string that is signed at
//! <https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message-verify-message-signature.html>):
//! SNS signs each message with RSA, over SHA1 (`SignatureVersion` 1) or SHA256 (2), the
//! signed text being the message's fields as `Name\nvalue\n` in a fixed order: `Message`,
//! `MessageId`, `Subject` (if present), `Timestamp`, `TopicArn`, `Type` for a notification;
//! `Message`, `MessageId`, `SubscribeURL`, `Timestamp`, `Token`, `TopicArn`, `Type` for a
//! subscription or unsubscribe confirmation. The certificate is fetched from
//! `SigningCertURL`, which must be HTTPS on an SNS host (`sns.<region>.amazonaws.com`):
//! TLS to Amazon's host is what vouches for it. Certificates are kept by URL.
//! Messages of a topic not listed in `topic_arns` are refused (403) before any certificate
//! is fetched, as AWS advises.
//!
//! A `SubscriptionConfirmation` is confirmed by a GET of its `SubscribeURL` (the same host
//! rule) only once its signature verifies and only for a listed topic
//! (<https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html>).
//!
//! A `Notification`'s `Message` is the SES notification, JSON in a string
//! (<https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html>; event publishing's
//! `eventType` is read as `notificationType`,
//! <https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html>):
//! a `Bounce` with `bounceType` "Permanent" is a bounce for each of `bouncedRecipients`,
//! "Transient" or "Undetermined" a soft bounce; a `Complaint` is a complaint for each of
//! `complainedRecipients`. The SNS `MessageId` is the id a retry is known by.
//!
//! Tests cannot reach Amazon: `certificate_hosts` replaces Amazon's hosts with others, and a
//! loopback host among them (`127.0.0.1`, `::1`, `localhost`) may then be reached over plain
//! HTTP, which nothing else may. It is explicit in bulletin.toml, `serve --check` reports it
//! as not Amazon's, and its default is Amazon's alone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use serde_json::Value;

use super::{Delivery, Receive, Refusal, Reported, SettingsError};
use crate::suppressions::{Kind, Provider};

/// Amazon's SNS hosts, `*` being one DNS label (the region).
pub const AMAZON_HOSTS: [&str; 2] = ["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"];

/// The largest certificate taken (Amazon's are under 2 KB).
const CERTIFICATE_LIMIT: usize = 64 * 1024;

/// How many certificates are kept (SNS rotates them rarely, one per region).
const CACHE_LIMIT: usize = 32;

/// `[serve.webhooks.ses]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `/webhooks/ses`.
    pub path: Option<String>,
    /// The SNS topics SES publishes to: only their messages are taken and their
    /// subscriptions confirmed.
    pub topic_arns: Vec<String>,
    /// Where SNS certificates and subscription URLs may be: Amazon's SNS hosts unless set.
    /// For tests: a loopback host, then also over plain HTTP.
    pub certificate_hosts: Option<Vec<String>>,
}

impl Config {
    pub fn open(&self) -> Result<Receiver, SettingsError> {
        let provider = Provider::Ses;
        if self.topic_arns.is_empty()
            || self
                .topic_arns
                .iter()
                .any(|arn| !arn.starts_with("arn:") || arn.split(':').count() != 6)
        {
            return Err(SettingsError::rule(
                provider,
                "topic_arns must list the SNS topics SES notifies, e.g. [\"arn:aws:sns:eu-west-1:123456789012:bulletin-bounces\"]",
            ));
        }
        let hosts = match &self.certificate_hosts {
            None => AMAZON_HOSTS.iter().map(|h| h.to_string()).collect(),
            Some(hosts) => {
                let plain = |h: &String| {
                    !h.is_empty()
                        && h.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | ':')
                        })
                        && !h.contains("://")
                };
                if hosts.is_empty() || !hosts.iter().all(plain) {
                    return Err(SettingsError::rule(
                        provider,
                        "certificate_hosts must list host names without scheme, port or path (leave it out for Amazon's)",
                    ));
                }
                hosts.iter().map(|h| h.to_ascii_lowercase()).collect()
            }
        };
        let client = reqwest::Client::builder()
            // A redirect could lead off the allowed hosts.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(4))
            .build()
            .map_err(|e| SettingsError::rule(provider, format!("no HTTP client: {e}")))?;
        Ok(Receiver {
            path: super::path(provider, &self.path)?,
            topics: self.topic_arns.clone(),
            hosts,
            client,
            keys: Mutex::new(HashMap::new()),
        })
    }
}

pub struct Receiver {
    path: String,
    topics: Vec<String>,
    hosts: Vec<String>,
    client: reqwest::Client,
    /// Public keys by certificate URL.
    keys: Mutex<HashMap<String, RsaPublicKey>>,
}

/// An SNS message, as posted.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    subject: Option<String>,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
}

impl Message {
    /// The text SNS signs, or `None` for a type it does not sign this way.
    fn signed_text(&self) -> Option<String> {
        let mut fields: Vec<(&str, &str)> =
            vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref()?));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", self.token.as_deref()?));
            }
            _ => return None,
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", &self.kind));
        Some(
            fields
                .into_iter()
                .map(|(name, value)| format!("{name}\n{value}\n"))
                .collect(),
        )
    }
}

impl Receiver {
    /// Whether `url` may be fetched: HTTPS on an allowed host, or plain HTTP on an allowed
    /// loopback host (tests), and nothing else.
    fn allowed(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let listed = self
            .hosts
            .iter()
            .any(|pattern| host_matches(pattern, &host));
        match url.scheme() {
            "https" => listed && url.username().is_empty(),
            "http" => listed && crate::values::is_loopback(&host),
            _ => false,
        }
    }

    /// The public key of the certificate at `url`, fetched once.
    async fn key(&self, url: &str, now: DateTime<Utc>) -> Result<RsaPublicKey, Refusal> {
        if let Some(key) = self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(url) {
            return Ok(key.clone());
        }
        let unavailable =
            |why: String| Refusal::Unavailable(format!("the signing certificate: {why}"));
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("answered {}", response.status())));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.to_string()))?
        {
            pem.extend_from_slice(&chunk);
            if pem.len() > CERTIFICATE_LIMIT {
                return Err(Refusal::Forbidden("the signing certificate is too large"));
            }
        }
        let key = public_key(&pem, now).ok_or(Refusal::Forbidden(
            "the signing certificate is not a valid RSA certificate",
        ))?;
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= CACHE_LIMIT {
            keys.clear();
        }
        keys.insert(url.to_string(), key.clone());
        Ok(key)
    }
}

/// `host` matches `pattern`, `*` standing for one DNS label.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter().zip(&h).all(|(p, h)| {
            if *p == "*" {
                !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            } else {
                p == h
            }
        })
}

/// The RSA public key of a PEM certificate valid at `now`.
fn public_key(pem: &[u8], now: DateTime<Utc>) -> Option<RsaPublicKey> {
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(pem).ok()?;
    let validity = &cert.tbs_certificate.validity;
    let now = now.timestamp();
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
    let (from, until) = (secs(&validity.not_before), secs(&validity.not_after));
    if now < i64::try_from(from).ok()? || now > i64::try_from(until).ok()? {
        return None;
    }
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    RsaPublicKey::from_public_key_der(&spki).ok()
}

/// Whether `signature` signs `text` with `key`, by `version`'s hash.
fn verifies(key: &RsaPublicKey, version: &str, text: &str, signature: &[u8]) -> bool {
    match version {
        "1" => {
            let hash = <sha1::Sha1 as sha1::Digest>::digest(text.as_bytes());
            key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &hash, signature)
                .is_ok()
        }
        "2" => {
            let hash = <rsa::sha2::Sha256 as rsa::sha2::Digest>::digest(text.as_bytes());
            key.verify(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &hash, signature)
                .is_ok()
        }
        _ => false,
    }
}

impl Receive for Receiver {
    const PROVIDER: Provider = Provider::Ses;

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        let amazon: Vec<String> = AMAZON_HOSTS.iter().map(|h| h.to_string()).collect();
        let hosts = if self.hosts == amazon {
            "certificates from Amazon's SNS hosts".to_string()
        } else {
            format!(
                "certificates from {} (NOT Amazon's: for tests only)",
                self.hosts.join(", ")
            )
        };
        format!(
            "SNS signature; topics {}; {hosts}; no secret",
            self.topics.join(", ")
        )
    }

    async fn receive(
        &self,
        _headers: &HeaderMap,
        body: &Bytes,
        now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        let message: Message = super::json(body)?;
        if !self.topics.contains(&message.topic_arn) {
            return Err(Refusal::Forbidden("a topic not in topic_arns"));
        }
        let text = message.signed_text().ok_or_else(|| {
            Refusal::Malformed(format!("an SNS message of type {}", message.kind))
        })?;
        if !self.allowed(&message.signing_cert_url) {
            return Err(Refusal::Forbidden(
                "SigningCertURL is not on an SNS host over HTTPS",
            ));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(message.signature.trim())
            .map_err(|_| Refusal::Unauthorized("the signature is not base64"))?;
        let key = self.key(&message.signing_cert_url, now).await?;
        if !verifies(&key, &message.signature_version, &text, &signature) {
            return Err(Refusal::Unauthorized("the signature does not verify"));
        }
        match message.kind.as_str() {
            "SubscriptionConfirmation" => {
                let url = message.subscribe_url.as_deref().unwrap_or_default();
                if !self.allowed(url) {
                    return Err(Refusal::Forbidden(
                        "SubscribeURL is not on an SNS host over HTTPS",
                    ));
                }
                let answer = self.client.get(url).send().await.map_err(|e| {
                    Refusal::Unavailable(format!("confirming the subscription: {e}"))
                })?;
                if !answer.status().is_success() {
                    return Err(Refusal::Unavailable(format!(
                        "confirming the subscription: answered {}",
                        answer.status()
                    )));
                }
                Ok(Delivery {
                    note: Some(format!("subscription to {} confirmed", message.topic_arn)),
                    ..Delivery::default()
                })
            }
            "UnsubscribeConfirmation" => Ok(Delivery {
                note: Some(format!(
                    "unsubscribed from {} (nothing done)",
                    message.topic_arn
                )),
                ..Delivery::default()
            }),
            _ => match serde_json::from_str::<Value>(&message.message) {
                Ok(notification) => Ok(Delivery {
                    reports: reports(&notification, &message.message_id),
                    ..Delivery::default()
                }),
                // A test message published by hand: signed and ours, but not SES's.
                Err(_) => Ok(Delivery {
                    note: Some("a notification that is not SES's: ignored".into()),
                    ..Delivery::default()
                }),
            },
        }
    }
}

/// What an SES notification reports: one event for each recipient it names.
fn reports(notification: &Value, message_id: &str) -> Vec<Reported> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let kind = text(notification, "notificationType").or_else(|| text(notification, "eventType"));
    let (kind, body, recipients, reason) = match kind.as_deref() {
        Some("Bounce") => {
            let Some(bounce) = notification.get("bounce") else {
                return Vec::new();
            };
            let kind = match bounce.get("bounceType").and_then(Value::as_str) {
                Some("Permanent") => Kind::Bounce,
                _ => Kind::SoftBounce,
            };
            let reason = [text(bounce, "bounceType"), text(bounce, "bounceSubType")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (kind, bounce, "bouncedRecipients", reason)
        }
        Some("Complaint") => {
            let Some(complaint) = notification.get("complaint") else {
                return Vec::new();
            };
            let reason = text(complaint, "complaintFeedbackType")
                .map_or_else(|| "complaint".to_string(), |t| format!("complaint {t}"));
            (Kind::Complaint, complaint, "complainedRecipients", reason)
        }
        _ => return Vec::new(),
    };
    body.get(recipients)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let address = text(r, "emailAddress")?;
            let words = match text(r, "diagnosticCode") {
                Some(code) => format!("{reason}: {code}"),
                None => reason.clone(),
            };
            // SES may write "Name <address>"; the address is what is between the brackets.
            let address = match (address.rfind('<'), address.rfind('>')) {
                (Some(a), Some(b)) if a < b => address[a + 1..b].to_string(),
                _ => address,
            };
            Some(Reported::new(
                &address,
                kind,
                Some(words),
                Some(message_id.to_string()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(hosts: Option<Vec<&str>>) -> Receiver {
        Config {
            path: None,
            topic_arns: vec!["arn:aws:sns:us-west-2:123456789012:MyTopic".into()],
            certificate_hosts: hosts.map(|h| h.into_iter().map(String::from).collect()),
        }
        .open()
        .unwrap()
    }

    #[test]
    fn certificates_come_from_amazon_over_https_unless_a_loopback_host_is_named() {
        let amazon = receiver(None);
        assert!(
            amazon.allowed("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem")
        );
        assert!(amazon.allowed("https://sns.cn-north-1.amazonaws.com.cn/x.pem"));
        for bad in [
            "http://sns.us-west-2.amazonaws.com/x.pem",
            "https://sns.us-west-2.amazonaws.com.evil.org/x.pem",
            "https://evil.org/sns.us-west-2.amazonaws.com/x.pem",
            "https://sns.a.b.amazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "https://sns.us-west-2.amazonaws.com@evil.org/x.pem",
            "http://127.0.0.1:8000/x.pem",
            "file:///etc/passwd",
        ] {
            assert!(!amazon.allowed(bad), "{bad}");
        }
        let local = receiver(Some(vec!["127.0.0.1"]));
        assert!(local.allowed("http://127.0.0.1:8000/x.pem"));
        assert!(!local.allowed("https://sns.us-west-2.amazonaws.com/x.pem"));
        // Plain HTTP is for loopback only, even when listed.
        let remote = receiver(Some(vec!["certs.example.org"]));
        assert!(!remote.allowed("http://certs.example.org/x.pem"));
        assert!(remote.allowed("https://certs.example.org/x.pem"));
        assert!(local.describe().contains("NOT Amazon's"));
    }

    #[test]
    fn the_signed_text_follows_the_type() {
        let message: Message = serde_json::from_str(
            r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"hi","Timestamp":"2012-05-02T00:54:06.655Z","SignatureVersion":"1","Signature":"s","SigningCertURL":"u"}"#,
        )
        .unwrap();
        assert_eq!(
            message.signed_text().unwrap(),
            "Message\nhi\nMessageId\nm\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\nt\nType\nNotification\n"
        );
    }

    #[test]
    fn bounces_and_complaints_of_ses() {
        let bounce: Value = serde_json::from_str(
            r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"jane@example.com","diagnosticCode":"smtp; 550 user unknown"},{"emailAddress":"\"Ric\" <richard@example.com>"}]}}"#,
        )
        .unwrap();
        let got = reports(&bounce, "m1");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].address.as_str(), got[0].kind),
            ("jane@example.com", Kind::Bounce)
        );
        assert_eq!(
            got[0].reason.as_deref(),
            Some("Permanent General: smtp; 550 user unknown")
        );
        assert_eq!(got[1].address, "richard@example.com");
        let soft: Value = serde_json::from_str(
            r#"{"eventType":"Bounce","bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"a@x.org"}]}}"#,
        )
        .unwrap();
        assert_eq!(reports(&soft, "m")[0].kind, Kind::SoftBounce);
        let complaint: Value = serde_json::from_str(
            r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"a@x.org"}],"complaintFeedbackType":"abuse"}}"#,
        )
        .unwrap();
        assert_eq!(reports(&complaint, "m")[0].kind, Kind::Complaint);
        assert!(reports(&serde_json::json!({"notificationType":"Delivery"}), "m").is_empty());
    }
}
