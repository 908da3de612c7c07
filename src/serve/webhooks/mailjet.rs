//! Mailjet's Event API (event webhooks).
//!
//! Verification (<https://dev.mailjet.com/email/guides/webhooks/>; also
//! <https://documentation.mailjet.com/hc/en-us/articles/360043578154-Event-Tracking-API>):
//! Mailjet signs nothing; it recommends an HTTPS endpoint with HTTP Basic credentials in its
//! URL (`https://user:password@example.org/webhooks/mailjet`). Both are checked, in constant
//! time.
//!
//! Events (one JSON object a request, or an array of them when grouped), by `event`:
//! `bounce` with `hard_bounce: true` is a bounce, with `false` a soft bounce; `blocked`
//! (Mailjet did not send) is a bounce when the error concerns the address
//! (`error_related_to` "recipient" or "domain", or the error "preblocked": the address is on
//! Mailjet's own blocklist), and is ignored when it concerns the message or Mailjet; `spam`
//! is a complaint; `unsub` an unsubscribe. A retry is known by `MessageID`, the event and its
//! `time`.

use axum::body::Bytes;
use serde_json::Value;

use super::{Delivery, Refusal, Reported};
use crate::suppressions::{Kind, Provider};

/// `[serve.webhooks.mailjet]`: `username` and `password_env` (HTTP Basic, in the URL).
pub type Config = super::BasicConfig;

/// The Mailjet endpoint: its credentials checked, then its events read.
pub type Receiver = super::BasicReceiver<Events>;

/// How Mailjet's requests read: one event, or an array of them when grouped.
pub struct Events;

impl super::ReadEvents for Events {
    const PROVIDER: Provider = Provider::Mailjet;

    fn read(body: &Bytes) -> Result<Delivery, Refusal> {
        let delivery: Value = super::json(body)?;
        let events = match &delivery {
            Value::Array(events) => events.iter().collect(),
            event => vec![event],
        };
        Ok(Delivery {
            reports: events.into_iter().filter_map(report).collect(),
            ..Delivery::default()
        })
    }
}

/// What one Mailjet event reports, if anything.
fn report(event: &Value) -> Option<Reported> {
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let name = text("event")?;
    let related = text("error_related_to").unwrap_or("");
    let error = text("error").unwrap_or("");
    let kind = match name {
        "bounce" if event.get("hard_bounce").and_then(Value::as_bool) == Some(true) => Kind::Bounce,
        "bounce" => Kind::SoftBounce,
        "blocked" if matches!(related, "recipient" | "domain") || error == "preblocked" => {
            Kind::Bounce
        }
        "spam" => Kind::Complaint,
        "unsub" => Kind::Unsubscribe,
        _ => return None,
    };
    let words = [name, related, error, text("comment").unwrap_or("")]
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let id = event
        .get("MessageID")
        .or_else(|| event.get("mj_message_id"))
        .map(Value::to_string);
    let reference = id.map(|id| {
        let at = event.get("time").map(Value::to_string).unwrap_or_default();
        format!("{id}:{name}:{at}")
    });
    Some(Reported::new(text("email")?, kind, Some(words), reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_that_suppress() {
        let kind = |json: &str| report(&serde_json::from_str(json).unwrap()).map(|r| r.kind);
        assert_eq!(
            kind(r#"{"event":"bounce","email":"a@x.org","hard_bounce":true}"#),
            Some(Kind::Bounce)
        );
        assert_eq!(
            kind(r#"{"event":"bounce","email":"a@x.org","hard_bounce":false}"#),
            Some(Kind::SoftBounce)
        );
        assert_eq!(
            kind(
                r#"{"event":"blocked","email":"a@x.org","error_related_to":"recipient","error":"user unknown"}"#
            ),
            Some(Kind::Bounce)
        );
        assert_eq!(
            kind(
                r#"{"event":"blocked","email":"a@x.org","error_related_to":"content","error":"spam content"}"#
            ),
            None
        );
        assert_eq!(
            kind(r#"{"event":"spam","email":"a@x.org"}"#),
            Some(Kind::Complaint)
        );
        assert_eq!(
            kind(r#"{"event":"unsub","email":"a@x.org"}"#),
            Some(Kind::Unsubscribe)
        );
        assert_eq!(kind(r#"{"event":"open","email":"a@x.org"}"#), None);
    }
}
