//! Postmark's bounce, spam complaint and subscription change webhooks.
//!
//! Verification: Postmark signs nothing; it documents HTTP Basic credentials put in the
//! webhook's URL (`https://user:password@example.org/webhooks/postmark`), over HTTPS, and an
//! optional allowlist of its IPs at the firewall
//! (<https://postmarkapp.com/developer/webhooks/webhooks-overview#protecting-your-webhook>).
//! Both the user name and the password are checked, in constant time.
//!
//! Events (one JSON object a request), by `RecordType`:
//! - `Bounce` (<https://postmarkapp.com/developer/webhooks/bounce-webhook>), its `Type` one of
//!   <https://postmarkapp.com/developer/api/bounce-api#bounce-types>: `HardBounce`,
//!   `BadEmailAddress`, `ManuallyDeactivated`, `SpamNotification`… suppress at once, and so
//!   does any bounce with `Inactive: true` (Postmark itself stopped sending to the address);
//!   `SoftBounce`, `Transient`, `DnsError`, `Blocked` count as soft bounces; the rest
//!   (`AutoResponder`, `OpenRelayTest`, `AddressChange`, `Subscribe`…) say nothing about the
//!   mailbox and are ignored. `Unsubscribe` and `SpamComplaint` types count as such.
//! - `SpamComplaint` (<https://postmarkapp.com/developer/webhooks/spam-complaint-webhook>): a
//!   complaint.
//! - `SubscriptionChange`
//!   (<https://postmarkapp.com/developer/webhooks/subscription-change-webhook>): with
//!   `SuppressSending: true`, by `SuppressionReason` a bounce (`HardBounce`), a complaint
//!   (`SpamComplaint`) or an unsubscribe (`ManualSuppression`: the reader used Postmark's own
//!   unsubscribe link). `SuppressSending: false` (reactivated at Postmark) lifts nothing here:
//!   staff decide that (`bulletin suppressions remove`).

use axum::body::Bytes;
use serde_json::Value;

use super::{Delivery, Refusal, Reported};
use crate::suppressions::{Kind, Provider};

/// `[serve.webhooks.postmark]`: `username` and `password_env` (HTTP Basic, in the URL).
pub type Config = super::BasicConfig;

/// The Postmark endpoint: its credentials checked, then its events read.
pub type Receiver = super::BasicReceiver<Events>;

/// How Postmark's requests read: one event a request.
pub struct Events;

impl super::ReadEvents for Events {
    const PROVIDER: Provider = Provider::Postmark;

    fn read(body: &Bytes) -> Result<Delivery, Refusal> {
        let event: Value = super::json(body)?;
        Ok(Delivery {
            reports: reports(&event)?,
            ..Delivery::default()
        })
    }
}

/// What one Postmark event reports.
fn reports(event: &Value) -> Result<Vec<Reported>, Refusal> {
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let record = text("RecordType")
        .ok_or_else(|| Refusal::Malformed("no RecordType: not a Postmark webhook".into()))?;
    // Postmark's own id of the bounce, or of the message and moment for a subscription change.
    let reference = match event.get("ID") {
        Some(Value::Number(n)) => Some(format!("{record}:{n}")),
        Some(Value::String(s)) => Some(format!("{record}:{s}")),
        _ => text("MessageID").map(|m| format!("{record}:{m}:{}", text("ChangedAt").unwrap_or(""))),
    };
    let one = |address: Option<&str>, kind: Kind, reason: String| {
        let address =
            address.ok_or_else(|| Refusal::Malformed(format!("a {record} without its address")))?;
        Ok(vec![Reported::new(
            address,
            kind,
            Some(reason),
            reference.clone(),
        )])
    };
    match record {
        "Bounce" => {
            let kind_name = text("Type").unwrap_or("Unknown");
            let inactive = event.get("Inactive").and_then(Value::as_bool) == Some(true);
            let kind = match kind_name {
                "HardBounce"
                | "BadEmailAddress"
                | "ManuallyDeactivated"
                | "SpamNotification"
                | "DMARCPolicy" => Some(Kind::Bounce),
                "SpamComplaint" => Some(Kind::Complaint),
                "Unsubscribe" => Some(Kind::Unsubscribe),
                "SoftBounce" | "Transient" | "DnsError" | "Blocked" | "Undeliverable" => {
                    Some(Kind::SoftBounce)
                }
                _ => None,
            };
            // Postmark deactivated the address: it sends there no more, nor should we.
            let kind = match kind {
                Some(Kind::SoftBounce) | None if inactive => Some(Kind::Bounce),
                other => other,
            };
            let Some(kind) = kind else {
                return Ok(Vec::new());
            };
            let details = [text("Description"), text("Details")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let reason = format!(
                "{kind_name}{}: {details}",
                if inactive { ", inactive" } else { "" }
            );
            one(
                text("Email"),
                kind,
                reason.trim_end_matches(": ").to_string(),
            )
        }
        "SpamComplaint" => one(text("Email"), Kind::Complaint, "SpamComplaint".into()),
        "SubscriptionChange" => {
            if event.get("SuppressSending").and_then(Value::as_bool) != Some(true) {
                return Ok(Vec::new());
            }
            let why = text("SuppressionReason").unwrap_or("");
            let kind = match why {
                "HardBounce" => Kind::Bounce,
                "SpamComplaint" => Kind::Complaint,
                _ => Kind::Unsubscribe,
            };
            one(
                text("Recipient"),
                kind,
                format!("SubscriptionChange: {why}"),
            )
        }
        // Deliveries, opens, clicks: nothing to suppress.
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Vec<(String, Kind)> {
        reports(&serde_json::from_str(json).unwrap())
            .unwrap()
            .into_iter()
            .map(|r| (r.address, r.kind))
            .collect()
    }

    #[test]
    fn bounce_types_complaints_and_subscription_changes() {
        let bounce = |t: &str, inactive: bool| {
            format!(
                r#"{{"RecordType":"Bounce","ID":4323372036854775807,"Type":"{t}","Email":"john@example.com","Inactive":{inactive},"Description":"d"}}"#
            )
        };
        let john = "john@example.com".to_string();
        assert_eq!(
            read(&bounce("HardBounce", true)),
            [(john.clone(), Kind::Bounce)]
        );
        assert_eq!(
            read(&bounce("SoftBounce", false)),
            [(john.clone(), Kind::SoftBounce)]
        );
        assert_eq!(
            read(&bounce("SoftBounce", true)),
            [(john.clone(), Kind::Bounce)]
        );
        assert_eq!(read(&bounce("AutoResponder", false)), []);
        assert_eq!(
            read(r#"{"RecordType":"SpamComplaint","ID":42,"Email":"john@example.com"}"#),
            [(john.clone(), Kind::Complaint)]
        );
        let change = |suppress: bool, why: &str| {
            format!(
                r#"{{"RecordType":"SubscriptionChange","MessageID":"m","ChangedAt":"2020-02-01T10:53:34.416071Z","Recipient":"john@example.com","SuppressSending":{suppress},"SuppressionReason":"{why}"}}"#
            )
        };
        assert_eq!(
            read(&change(true, "ManualSuppression")),
            [(john.clone(), Kind::Unsubscribe)]
        );
        assert_eq!(read(&change(true, "HardBounce")), [(john, Kind::Bounce)]);
        assert_eq!(read(&change(false, "ManualSuppression")), []);
        assert_eq!(read(r#"{"RecordType":"Delivery","Recipient":"a@b.c"}"#), []);
        assert!(reports(&serde_json::json!({"Type": "HardBounce"})).is_err());
    }
}
