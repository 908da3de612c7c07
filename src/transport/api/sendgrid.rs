//! SendGrid: v3 Mail Send, up to 1000 readers a request. The issue goes once, as a template
//! (`content`, text first, with a token such as `-bltn0-` in each hole), and each reader is
//! one personalization: their address, their filled subject, their List-Unsubscribe,
//! List-Unsubscribe-Post and List-Id headers, their values for the tokens (`substitutions`)
//! and the message's ID (`custom_args`, echoed in SendGrid's event webhook).
//!
//! API reference: <https://www.twilio.com/docs/sendgrid/api-reference/mail-send> (body,
//! regions, 202 with `X-Message-Id`); personalizations:
//! <https://www.twilio.com/docs/sendgrid/for-developers/sending-email/personalizations>;
//! limits: <https://docs.sendgrid.com/api-reference/mail-send/limitations>; errors:
//! <https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors>; rate limits:
//! <https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits>;
//! our own List-Unsubscribe:
//! <https://www.twilio.com/docs/sendgrid/ui/sending-email/list-unsubscribe>.
//! SendGrid has no idempotency key and reports no per-recipient outcome: a request is
//! accepted or refused whole. A refusal's errors name the field they are about
//! (`personalizations.3.to.0.email`): the readers of those personalizations are the ones at
//! fault, and the others go again without them.

use std::time::Duration;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    Answer, Auth, Body, Common, Context, Json, Provider, ProviderError, Request, RequestError,
    SettingsError,
};
use crate::clock::Clock;
use crate::message::{Filled, Form, Letterhead, Outgoing, TemplateText};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "sendgrid"`.
pub const TRANSPORT: &str = "sendgrid";

/// A SendGrid profile's settings, as `bulletin.toml` writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
    /// "global" (the default) or "eu", for regional subusers in the EU.
    pub region: Option<String>,
}

impl Settings {
    /// SendGrid's address for the account's region.
    pub fn default_endpoint(&self) -> &'static str {
        match self.region.as_deref() {
            Some("eu") => ENDPOINT_EU,
            _ => ENDPOINT,
        }
    }

    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(r) = self
            .region
            .as_deref()
            .filter(|r| !["global", "eu"].contains(r))
        {
            return Err(SettingsError::Region {
                provider: "SendGrid",
                region: r.to_string(),
                choices: "\"global\" or \"eu\"",
            });
        }
        self.common.validate(TRANSPORT)
    }
}

/// SendGrid's own address, for global users and subusers.
pub const ENDPOINT: &str = "https://api.sendgrid.com";

/// The address for regional subusers in the EU (`region = "eu"`); their keys work only there.
pub const ENDPOINT_EU: &str = "https://api.eu.sendgrid.com";

/// "Up to 1000 personalizations" and 1000 recipients per request; one reader each.
pub const BATCH_LIMIT: usize = 1000;

/// "The total collective size of your substitutions may not exceed 10,000 bytes per
/// personalization object."
pub const SUBSTITUTIONS_LIMIT: usize = 10_000;

/// The token for hole `n`: dashes around it, so that no token is part of another
/// (`-bltn1-` is not in `-bltn10-`), and nothing in an issue's HTML looks like it.
pub fn token(n: usize) -> String {
    format!("-bltn{n}-")
}

pub struct SendGrid {
    endpoint: String,
    key: Secret,
    key_env: String,
    letterhead: Letterhead,
    template: TemplateText,
    limit: usize,
    /// For the time until a rate limit resets.
    clock: Arc<dyn Clock>,
}

impl SendGrid {
    pub fn new(settings: &Settings, context: &Context) -> Result<SendGrid, ProviderError> {
        let common = &settings.common;
        Ok(SendGrid {
            endpoint: common.endpoint(settings.default_endpoint()),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            letterhead: context.letterhead.clone(),
            template: context.template.text_with(token),
            limit: common.batch_limit(BATCH_LIMIT),
            clock: Arc::clone(&context.clock),
        })
    }

    /// The reader's values as SendGrid's `substitutions`: token → value.
    fn substitutions(&self, m: &Outgoing) -> Result<Map<String, Value>, RequestError> {
        let parts = m.filled()?;
        if parts.values.len() != self.template.holes {
            return Err(RequestError::Holes {
                to: m.envelope.to.clone(),
                values: parts.values.len(),
                holes: self.template.holes,
            });
        }
        Ok(parts
            .values
            .iter()
            .enumerate()
            .map(|(n, v)| (token(n), Value::from(v.as_str())))
            .collect())
    }

    /// Why SendGrid would refuse this reader's substitutions (too big), if it would. The
    /// size is counted as the JSON SendGrid receives (keys, values, quotes): the docs do not
    /// say how they count, and this errs on the safe side.
    fn too_big(&self, m: &Outgoing) -> Option<RequestError> {
        let subs = self.substitutions(m).ok()?;
        let size = serde_json::to_vec(&subs).map_or(0, |b| b.len());
        (size > SUBSTITUTIONS_LIMIT).then_some(RequestError::TooBig {
            provider: "SendGrid",
            size,
            limit: SUBSTITUTIONS_LIMIT,
        })
    }

    fn personalization(&self, m: &Outgoing) -> Result<Value, RequestError> {
        let parts: &Filled = m.filled()?;
        let headers: Map<String, Value> = parts
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), Value::from(value.as_str())))
            .collect();
        Ok(json!({
            "to": [address(m.envelope.to.as_ref(), parts.to_name.as_deref())],
            "subject": parts.subject,
            // Per reader: a header's value differs from reader to reader (List-Unsubscribe),
            // and whether personalization headers merge with top-level ones is not
            // documented, so all three are here.
            "headers": headers,
            "substitutions": self.substitutions(m)?,
            "custom_args": {"bulletin_message_id": m.message_id},
        }))
    }
}

/// `{"email", "name"}`. SendGrid refuses a whole request when a name holds `,` or `;`
/// ("to.name cannot contain ; or ,"), so such a name is left out: the reader still gets
/// the issue, addressed by email only.
fn address(email: &str, name: Option<&str>) -> Value {
    match name.map(str::trim) {
        Some(n) if !n.is_empty() && !n.contains([',', ';']) => json!({"email": email, "name": n}),
        _ => json!({"email": email}),
    }
}

impl Provider for SendGrid {
    fn name(&self) -> &'static str {
        "SendGrid"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Values
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let mut personalizations = Vec::with_capacity(batch.messages.len());
        let mut refused = None;
        for m in &batch.messages {
            match self.too_big(m) {
                // Left out of the request; `outcomes` says why.
                Some(why) => refused = Some(why),
                None => personalizations.push(self.personalization(m)?),
            }
        }
        if personalizations.is_empty() {
            return Err(refused.unwrap_or(RequestError::Empty));
        }
        let from = &self.letterhead.from;
        let mut body = json!({
            "from": address(from.email.as_ref(), from.name.as_deref()),
            "content": [
                {"type": "text/plain", "value": self.template.text},
                {"type": "text/html", "value": self.template.html},
            ],
            "categories": [self.letterhead.tag],
            // SendGrid's subscription tracking adds its own List-Unsubscribe and
            // List-Unsubscribe-Post, which would clash with the reader's own.
            "tracking_settings": {"subscription_tracking": {"enable": false}},
            "personalizations": personalizations,
        });
        if let Some(reply_to) = &self.letterhead.reply_to {
            body["reply_to"] = address(reply_to.email.as_ref(), reply_to.name.as_deref());
        }
        Ok(Request {
            url: format!("{}/v3/mail/send", self.endpoint),
            headers: Vec::new(),
            auth: Auth::Bearer(self.key.clone()),
            body: Body::Json(Json::value(&body)?),
        })
    }

    /// 202 (200 in sandbox mode): every reader in the request accepted, under the request's
    /// `X-Message-Id`; readers left out for their size refused.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        if !matches!(answer.status, 200 | 202) {
            return None;
        }
        let reply = match answer.header("x-message-id") {
            Some(id) => format!("accepted by SendGrid, X-Message-Id {id}"),
            None => format!("accepted by SendGrid (HTTP {})", answer.status),
        };
        Some(
            batch
                .messages
                .iter()
                .map(|m| match self.too_big(m) {
                    Some(why) => Err(Failure {
                        kind: Kind::Permanent,
                        reply: why.to_string(),
                    }),
                    None => Ok(Accepted {
                        reply: reply.clone(),
                    }),
                })
                .collect(),
        )
    }

    /// `Retry-After` if SendGrid sends one (undocumented), else the documented
    /// `X-RateLimit-Reset`: when the limit resets, in Unix seconds.
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        super::retry_after_header(&answer.headers).or_else(|| {
            let reset = answer.header("x-ratelimit-reset")?.trim().parse().ok()?;
            Some(until_reset(reset, self.clock.now().timestamp()))
        })
    }

    /// The readers of the personalizations the errors' fields name (`personalizations.N…`),
    /// and any reader an error's message quotes.
    fn culprits(&self, batch: &Batch, answer: &Answer) -> Vec<usize> {
        // Personalization N is the N-th message not left out for its size.
        let included: Vec<usize> = (0..batch.messages.len())
            .filter(|i| self.too_big(&batch.messages[*i]).is_none())
            .collect();
        let errors = answer
            .json()
            .and_then(|j| j.get("errors").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let mut culprits: Vec<usize> = errors
            .iter()
            .filter_map(|e| {
                let field = e.get("field")?.as_str()?;
                let n: usize = field
                    .strip_prefix("personalizations.")?
                    .split(['.', '['])
                    .next()?
                    .parse()
                    .ok()?;
                included.get(n).copied()
            })
            .collect();
        culprits.extend(super::named_in(batch, &self.error_message(answer)));
        culprits.sort_unstable();
        culprits.dedup();
        culprits
    }

    /// `{"errors": [{"message", "field"}, …]}`: every message, with the field it is about.
    fn error_message(&self, answer: &Answer) -> String {
        let errors: Vec<String> = answer
            .json()
            .and_then(|j| j.get("errors").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let message = e.get("message")?.as_str()?;
                Some(match e.get("field").and_then(Value::as_str) {
                    Some(field) => format!("{message} ({field})"),
                    None => message.to_string(),
                })
            })
            .collect();
        if errors.is_empty() {
            super::error_message(&answer.body)
        } else {
            errors.join("; ")
        }
    }

    fn credentials(&self) -> String {
        format!("the API key in {}", self.key_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}

/// How long until `reset` (Unix seconds) from `now`: at least a second (the reset may be
/// this very second), at most an hour (a clock far off should not stall a send).
fn until_reset(reset: i64, now: i64) -> Duration {
    Duration::from_secs(reset.saturating_sub(now).clamp(1, 3600) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_the_rate_limit_resets() {
        assert_eq!(
            until_reset(1_700_000_007, 1_700_000_000),
            Duration::from_secs(7)
        );
        assert_eq!(
            until_reset(1_700_000_000, 1_700_000_000),
            Duration::from_secs(1)
        );
        assert_eq!(
            until_reset(1_600_000_000, 1_700_000_000),
            Duration::from_secs(1)
        );
        assert_eq!(until_reset(i64::MAX, 0), Duration::from_secs(3600));
    }

    #[test]
    fn a_name_sendgrid_would_refuse_is_left_out() {
        assert_eq!(
            address("a@example.org", Some("Smith, Ann")),
            json!({"email": "a@example.org"})
        );
        assert_eq!(
            address("a@example.org", Some("Ann Smith")),
            json!({"email": "a@example.org", "name": "Ann Smith"})
        );
    }
}
