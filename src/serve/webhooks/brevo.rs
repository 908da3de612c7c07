//! Brevo's transactional (and marketing) webhooks.
//!
//! Verification (<https://developers.brevo.com/docs/secured-webhooks>): Brevo signs nothing;
//! it documents a user name and password put in the webhook's URL
//! (`https://user:password@example.org/webhooks/brevo`, sent as HTTP Basic), or a bearer
//! token given when the webhook is created (`"auth": {"type": "bearer", "token": "…"}`, sent
//! as `Authorization: Bearer …`), besides an allowlist of its IP ranges. Either one is set
//! here, never both; compared in constant time.
//!
//! Events (<https://developers.brevo.com/docs/transactional-webhooks>,
//! <https://developers.brevo.com/docs/marketing-webhooks>; one JSON object a request, or an
//! array of them for a batched webhook, <https://developers.brevo.com/docs/batch-webhooks>),
//! by `event`: `hard_bounce` and `invalid_email` (no such mailbox) are bounces; `blocked`
//! (Brevo refused to send: the address is on its blocklist, after an earlier hard bounce,
//! unsubscribe or complaint) is a bounce too, as Brevo itself sends there no more;
//! `soft_bounce` a soft bounce; `spam` (and `complaint`) a complaint; `unsubscribed` (and the
//! marketing webhook's `unsubscribe`) an unsubscribe. A retry is known by `message-id`, the
//! event and its `ts_event`.

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{Basic, Delivery, Receive, Refusal, Reported, SettingsError};
use crate::suppressions::{Kind, Provider};
use crate::values::Secret;

/// `[serve.webhooks.brevo]`: `username` and `password_env`, or `token_env`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Default `/webhooks/brevo`.
    pub path: Option<String>,
    /// The user name put in the webhook's URL.
    pub username: Option<String>,
    /// The environment variable holding the password put in the webhook's URL.
    pub password_env: Option<String>,
    /// The environment variable holding the bearer token given to Brevo.
    pub token_env: Option<String>,
}

impl Config {
    pub fn open(&self) -> Result<Receiver, SettingsError> {
        let provider = Provider::Brevo;
        let auth = match (&self.username, &self.password_env, &self.token_env) {
            (Some(user), Some(password_env), None) => {
                Auth::Basic(Basic::open(provider, user, password_env)?)
            }
            (None, None, Some(token_env)) => Auth::Bearer {
                token: super::secret(provider, "token_env", token_env)?,
                token_env: token_env.clone(),
            },
            _ => {
                return Err(SettingsError::rule(
                    provider,
                    "set username and password_env (credentials in the webhook's URL) or token_env (a bearer token), one of the two",
                ));
            }
        };
        Ok(Receiver {
            path: super::path(provider, &self.path)?,
            auth,
        })
    }
}

enum Auth {
    Basic(Basic),
    Bearer { token: Secret, token_env: String },
}

pub struct Receiver {
    path: String,
    auth: Auth,
}

impl Receive for Receiver {
    const PROVIDER: Provider = Provider::Brevo;

    fn challenge(&self) -> Option<&'static str> {
        Some(match self.auth {
            Auth::Basic(_) => Basic::CHALLENGE,
            Auth::Bearer { .. } => "Bearer",
        })
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        match &self.auth {
            Auth::Basic(basic) => basic.describe(),
            Auth::Bearer { token_env, .. } => {
                format!("bearer token from {token_env}: set")
            }
        }
    }

    async fn receive(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        _now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        let authorised = match &self.auth {
            Auth::Basic(basic) => basic.check(headers),
            Auth::Bearer { token, .. } => super::authorization(headers, "Bearer")
                .is_some_and(|given| super::same_secret(given.trim().as_bytes(), token)),
        };
        if !authorised {
            return Err(Refusal::Unauthorized("wrong or missing credentials"));
        }
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

/// What one Brevo event reports, if anything.
fn report(event: &Value) -> Option<Reported> {
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let name = text("event")?;
    let kind = match name {
        "hard_bounce" | "invalid_email" | "blocked" => Kind::Bounce,
        "soft_bounce" => Kind::SoftBounce,
        "spam" | "complaint" => Kind::Complaint,
        "unsubscribed" | "unsubscribe" => Kind::Unsubscribe,
        _ => return None,
    };
    let words = [Some(name), text("reason")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    let reference = text("message-id").map(|id| {
        let at = event
            .get("ts_event")
            .map(Value::to_string)
            .unwrap_or_default();
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
            kind(r#"{"event":"hard_bounce","email":"a@x.org"}"#),
            Some(Kind::Bounce)
        );
        assert_eq!(
            kind(r#"{"event":"soft_bounce","email":"a@x.org"}"#),
            Some(Kind::SoftBounce)
        );
        assert_eq!(
            kind(r#"{"event":"spam","email":"a@x.org"}"#),
            Some(Kind::Complaint)
        );
        assert_eq!(
            kind(r#"{"event":"unsubscribed","email":"a@x.org"}"#),
            Some(Kind::Unsubscribe)
        );
        assert_eq!(kind(r#"{"event":"delivered","email":"a@x.org"}"#), None);
        assert_eq!(kind(r#"{"event":"hard_bounce"}"#), None);
    }

    #[test]
    fn one_way_to_authenticate() {
        let config = |toml: &str| toml::from_str::<Config>(toml).unwrap().open();
        assert!(config("username = \"u\"").is_err());
        assert!(config("username = \"u\"\npassword_env = \"PATH\"\ntoken_env = \"PATH\"").is_err());
        assert!(config("token_env = \"PATH\"").is_ok());
    }
}
