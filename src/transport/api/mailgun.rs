//! Mailgun: batch sending on the messages endpoint, up to 1000 readers a request. The issue
//! goes once, with `%recipient.bltn0%`… in its holes, each reader once in a `to` field, and
//! their values in `recipient-variables` (keyed by address), which Mailgun substitutes for
//! each reader and which also keeps readers from seeing each other in `To:`.
//!
//! API reference: <https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tags>
//! ("Send an email": `from`, `to`, `subject`, `html`, `text`, `h:` headers, `o:tag`, `v:`
//! variables, `recipient-variables`); batch sending and its 1000 recipients:
//! <https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending>;
//! regions: <https://documentation.mailgun.com/docs/mailgun/api-reference/api-overview>;
//! answers: <https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses>.
//! Mailgun has no idempotency key and reports no per-recipient outcome: a request is
//! accepted (one ID for all) or refused whole.
//!
//! The reader's own List-Unsubscribe travels as `h:List-Unsubscribe=%recipient.h:List-Unsubscribe%`
//! with the value in their recipient variables. Mailgun documents recipient variables in the
//! message body and subject only; django-anymail (`anymail/backends/mailgun.py`,
//! `merge_headers`) sends per-recipient headers exactly this way, and we follow it. Headers
//! that are the same for every reader (List-Id, List-Unsubscribe-Post) are plain `h:` fields.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Answer, Auth, Body, Common, Context, Provider, ProviderError, Request, RequestError,
    SettingsError, needed, recipient,
};
use crate::message::{Filled, Form, Letterhead, Outgoing, TemplateText};
use crate::transport::{Accepted, Batch, Failure, Kind};
use crate::values::Secret;

/// `transport = "mailgun"`.
pub const TRANSPORT: &str = "mailgun";

/// A Mailgun profile's settings, as `bulletin.toml` writes them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: Common,
    /// The sending domain: "mg.example.org".
    pub domain: Option<String>,
    /// Where the domain lives: "us" (the default) or "eu".
    pub region: Option<String>,
}

impl Settings {
    /// The sending domain, which Mailgun needs.
    pub fn domain(&self) -> Result<&str, SettingsError> {
        needed(&self.domain, TRANSPORT, "domain", "\"mg.example.org\"")
    }

    /// Mailgun's address for the domain's region.
    pub fn default_endpoint(&self) -> &'static str {
        match self.region.as_deref() {
            Some("eu") => ENDPOINT_EU,
            _ => ENDPOINT,
        }
    }

    /// Whether the settings go together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.domain()?;
        if let Some(r) = self.region.as_deref().filter(|r| !["us", "eu"].contains(r)) {
            return Err(SettingsError::Region {
                provider: "Mailgun",
                region: r.to_string(),
                choices: "\"us\" or \"eu\"",
            });
        }
        self.common.validate(TRANSPORT)
    }
}

/// Mailgun's own address, for domains in its US region.
pub const ENDPOINT: &str = "https://api.mailgun.net";

/// The address for domains in Mailgun's EU region (`region = "eu"`).
pub const ENDPOINT_EU: &str = "https://api.eu.mailgun.net";

/// "The maximum number of recipients allowed for Batch Sending is 1,000."
pub const BATCH_LIMIT: usize = 1000;

/// The recipient variable of hole `n`.
fn variable(n: usize) -> String {
    format!("bltn{n}")
}

/// The token for hole `n`: a reference to the reader's recipient variable.
pub fn token(n: usize) -> String {
    format!("%recipient.{}%", variable(n))
}

/// The recipient variable that carries the message's ID into a `v:` variable (echoed in
/// Mailgun's events and webhooks as `user-variables`).
const MESSAGE_ID: &str = "v:bulletin-message-id";

pub struct Mailgun {
    endpoint: String,
    domain: String,
    key: Secret,
    key_env: String,
    letterhead: Letterhead,
    template: TemplateText,
    limit: usize,
}

impl Mailgun {
    pub fn new(settings: &Settings, context: &Context) -> Result<Mailgun, ProviderError> {
        let common = &settings.common;
        Ok(Mailgun {
            endpoint: common.endpoint(settings.default_endpoint()),
            domain: settings.domain()?.to_string(),
            key: context.secret(&common.api_key_env)?,
            key_env: common.api_key_env.clone(),
            letterhead: context.letterhead.clone(),
            template: context.template.text_with(token),
            limit: common.batch_limit(BATCH_LIMIT),
        })
    }

    /// `https://api.mailgun.net/v3/mg.example.org/messages`. The domain is percent-encoded:
    /// with a `/` in it, Mailgun answers 200 without sending (django-anymail's finding).
    fn url(&self) -> String {
        let domain =
            percent_encoding::utf8_percent_encode(&self.domain, crate::merge::URL_COMPONENT);
        format!("{}/v3/{domain}/messages", self.endpoint)
    }

    /// The reader's recipient variables: a value for each hole, the headers that differ
    /// from reader to reader, and the message's ID.
    fn variables(&self, m: &Outgoing, own_headers: &[&str]) -> Result<Value, RequestError> {
        let parts = m.filled()?;
        if parts.values.len() != self.template.holes {
            return Err(RequestError::Holes {
                to: m.envelope.to.clone(),
                values: parts.values.len(),
                holes: self.template.holes,
            });
        }
        let mut vars: Map<String, Value> = parts
            .values
            .iter()
            .enumerate()
            .map(|(n, v)| (variable(n), Value::from(v.as_str())))
            .collect();
        for name in own_headers {
            // Every reader gets every key: what Mailgun does with a missing one is not
            // documented.
            let value = header(parts, name).unwrap_or_default();
            vars.insert(format!("h:{name}"), value.into());
        }
        vars.insert(MESSAGE_ID.to_string(), m.message_id.clone().into());
        Ok(Value::Object(vars))
    }
}

fn header<'a>(parts: &'a Filled, name: &str) -> Option<&'a str> {
    parts
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// The batch's headers, each with its value when it is the same for every reader (`None`:
/// it differs, and goes in each reader's recipient variables).
fn shared_headers(
    messages: &[Outgoing],
) -> Result<Vec<(&'static str, Option<String>)>, RequestError> {
    let Some(first) = messages.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (name, value) in &first.filled()?.headers {
        let mut same = true;
        for m in messages {
            same &= header(m.filled()?, name) == Some(value.as_str());
        }
        out.push((*name, same.then(|| value.clone())));
    }
    Ok(out)
}

impl Provider for Mailgun {
    fn name(&self) -> &'static str {
        "Mailgun"
    }

    fn batch_limit(&self) -> usize {
        self.limit
    }

    fn form(&self) -> Form {
        Form::Values
    }

    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError> {
        let headers = shared_headers(&batch.messages)?;
        let own: Vec<&str> = headers
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        let mut fields = vec![("from".to_string(), self.letterhead.from.to_string())];
        let mut variables = Map::new();
        for m in &batch.messages {
            fields.push(("to".into(), recipient(m).to_string()));
            variables.insert(m.envelope.to.to_string(), self.variables(m, &own)?);
        }
        fields.push(("subject".into(), self.template.subject.clone()));
        fields.push(("text".into(), self.template.text.clone()));
        fields.push(("html".into(), self.template.html.clone()));
        if let Some(reply_to) = &self.letterhead.reply_to {
            fields.push(("h:Reply-To".into(), reply_to.to_string()));
        }
        for (name, value) in headers {
            let value = value.unwrap_or_else(|| format!("%recipient.h:{name}%"));
            fields.push((format!("h:{name}"), value));
        }
        fields.push(("o:tag".into(), self.letterhead.tag.clone()));
        fields.push((MESSAGE_ID.into(), format!("%recipient.{MESSAGE_ID}%")));
        fields.push((
            "recipient-variables".into(),
            serde_json::to_string(&variables)?,
        ));
        Ok(Request {
            url: self.url(),
            headers: Vec::new(),
            auth: Auth::Basic {
                user: "api".into(),
                password: self.key.clone(),
            },
            body: Body::Form(fields),
        })
    }

    /// 200 with `{id, message}`: every reader accepted under that ID. A 200 without an ID
    /// is not Mailgun's messages API (a wrong path answers "Mailgun Magnificent API"), and
    /// a 404 is a domain Mailgun does not know there: both are wrong settings that every
    /// batch would meet, so the run stops and nobody is marked as failed for good.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>> {
        let wrong_place = |what: String| {
            let failure = Failure {
                kind: Kind::Unreachable,
                reply: format!(
                    "{what}; check domain = \"{}\", region (\"eu\" for a domain in Mailgun's EU region) and endpoint in the profile",
                    self.domain
                ),
            };
            Some(
                batch
                    .messages
                    .iter()
                    .map(|_| Err(failure.clone()))
                    .collect(),
            )
        };
        match answer.status {
            200 => {
                let json = answer.json();
                match json.as_ref().and_then(|j| j.get("id")?.as_str()) {
                    Some(id) => Some(super::accept_all(
                        batch,
                        &format!("accepted by Mailgun, id {id}"),
                    )),
                    None => wrong_place(format!(
                        "Mailgun answered HTTP 200 without a message ID ({})",
                        super::error_message(&answer.body)
                    )),
                }
            }
            404 => wrong_place(format!(
                "Mailgun answered HTTP 404: {}",
                self.error_message(answer)
            )),
            _ => None,
        }
    }

    /// `{"message": …}`, or `{"Error": …}` (seen for a refused key), or the text.
    fn error_message(&self, answer: &Answer) -> String {
        answer
            .json()
            .and_then(|j| j.get("Error")?.as_str().map(str::to_string))
            .unwrap_or_else(|| super::error_message(&answer.body))
    }

    fn credentials(&self) -> String {
        format!("the API key in {}", self.key_env)
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
}
