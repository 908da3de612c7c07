//! Email service providers' HTTP APIs, behind one [`Provider`] interface: a provider module
//! says how a batch of messages becomes one request (URL, headers, body) and how the answer
//! becomes each message's outcome; [`ApiTransport`] does the rest, the same for all: the
//! HTTP client, credentials, timeouts, and the rules every provider shares (429 → wait as
//! told, 5xx → retry, an answer lost after the request went out → [`Kind::Lost`], other 4xx →
//! the request refused whole, pinned on the readers its error names if it names any,
//! 401/403 → stop and name the environment variable). A provider that can be asked what it
//! accepted says how ([`Provider::look_up`]). Adding a provider is one small module, which
//! owns its settings (`Settings`, as `bulletin.toml` writes them, and their rules) besides
//! its requests.
//!
//! [`DryRun`] writes the requests a send would make, credentials redacted, and sends nothing.
//!
//! Providers are made from their settings and plain values ([`Context`]: the issue's
//! [`Letterhead`] and [`Template`], the clock). They know nothing of the ledger, the
//! subscriber list, the send loop or how messages are composed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Deserializer};

pub mod body;
pub mod brevo;
pub mod mailgun;
pub mod mailjet;
pub mod postmark;
pub mod resend;
pub mod sendgrid;
pub mod ses;
pub mod template;

pub use body::Json;

use super::{Accepted, Batch, BatchResult, Failure, Kind, Pacing, Transport};
use crate::clock::Clock;
use crate::message::{Form, Letterhead, Outgoing, PayloadError, Template};
use crate::values::{Rate, Secret, SecretError, is_loopback};

/// How long one request may take, from connecting to the last byte of the answer, unless
/// the profile says otherwise (`timeout`, in seconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait after a 429 that does not say.
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(5);

/// The settings every provider takes, flattened into each provider's `Settings`.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// The environment variable holding the API key (SES: the access key ID; Postmark: the
    /// server token).
    pub api_key_env: String,
    /// The API's address instead of the provider's own (a proxy, a test server): https, or
    /// http on this machine.
    pub endpoint: Option<url::Url>,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The most API requests the provider takes (SES: messages).
    pub rate: Option<Rate>,
    /// Fewer messages per request than the provider allows.
    pub batch_size: Option<u32>,
    /// Seconds one request may take before its answer counts as lost ([`REQUEST_TIMEOUT`]
    /// unless set).
    pub timeout: Option<f64>,
    /// The settings written in the profile that its provider does not take (another
    /// provider's, or a typo), refused by [`Common::validate`]. serde cannot deny unknown
    /// fields beside a flattened struct, and this way the refusal names the provider.
    #[serde(flatten, deserialize_with = "keys")]
    pub unused: Vec<String>,
}

fn default_concurrency() -> u32 {
    4
}

/// The keys of a table, whatever their values.
fn keys<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let table = BTreeMap::<String, serde::de::IgnoredAny>::deserialize(d)?;
    Ok(table.into_keys().collect())
}

impl Common {
    /// Settings for the key in `api_key_env`, all else as the provider has it.
    pub fn new(api_key_env: &str) -> Common {
        Common {
            api_key_env: api_key_env.to_string(),
            endpoint: None,
            concurrency: default_concurrency(),
            rate: None,
            batch_size: None,
            timeout: None,
            unused: Vec::new(),
        }
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(REQUEST_TIMEOUT, |s| Duration::from_secs_f64(s.min(3600.0)))
    }

    /// The rules every provider shares: nothing it does not take, an endpoint that keeps the
    /// key encrypted, at least one request at a time and one message a request.
    pub fn validate(&self, transport: &'static str) -> Result<(), SettingsError> {
        if let Some(field) = self.unused.first() {
            return Err(SettingsError::Unused {
                transport,
                field: field.clone(),
            });
        }
        if let Some(url) = &self.endpoint {
            let local = url.host_str().is_some_and(is_loopback);
            if url.scheme() != "https" && !(url.scheme() == "http" && local) {
                return Err(SettingsError::Unencrypted {
                    endpoint: url.to_string(),
                });
            }
        }
        if self.concurrency == 0 {
            return Err(SettingsError::Zero {
                field: "concurrency",
            });
        }
        if self.batch_size == Some(0) {
            return Err(SettingsError::Zero {
                field: "batch_size",
            });
        }
        if self.timeout.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(SettingsError::Timeout);
        }
        Ok(())
    }

    /// The profile's `endpoint`, or the provider's own address; no trailing slash.
    pub fn endpoint(&self, default: &str) -> String {
        self.endpoint
            .as_ref()
            .map_or(default, |u| u.as_str())
            .trim_end_matches('/')
            .to_string()
    }

    /// The batch size: the provider's limit, or fewer if the profile says so.
    pub fn batch_limit(&self, documented: usize) -> usize {
        self.batch_size
            .map_or(documented, |n| (n as usize).min(documented))
            .max(1)
    }

    /// How fast the provider may be driven.
    pub fn pacing(&self) -> Pacing {
        Pacing {
            concurrency: self.concurrency as usize,
            rate: self.rate.map(|r| (r.messages, r.per)),
        }
    }
}

/// Settings of a provider profile that do not go together. The profile's name is the
/// caller's to add.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("transport = \"{transport}\" needs {field} (e.g. {field} = {example})")]
    Needs {
        transport: &'static str,
        field: &'static str,
        /// A value to show, as TOML: `"mg.example.org"`.
        example: &'static str,
    },
    #[error("{field} means nothing to transport = \"{transport}\"; remove it")]
    Unused {
        transport: &'static str,
        field: String,
    },
    #[error("region = \"{region}\" is not a {provider} region; write {choices}")]
    Region {
        provider: &'static str,
        region: String,
        /// `"us" or "eu"`.
        choices: &'static str,
    },
    #[error(
        "endpoint {endpoint} would send the API key unencrypted; use https (http only for a server on this machine)"
    )]
    Unencrypted { endpoint: String },
    #[error("{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("timeout must be a number of seconds above 0")]
    Timeout,
}

/// The value of a setting the provider needs, or the error that says so.
pub fn needed<'a>(
    value: &'a Option<String>,
    transport: &'static str,
    field: &'static str,
    example: &'static str,
) -> Result<&'a str, SettingsError> {
    value.as_deref().ok_or(SettingsError::Needs {
        transport,
        field,
        example,
    })
}

/// What a provider is made from besides its settings: the issue as every reader shares it,
/// the clock, and whether this is a dry run.
pub struct Context<'a> {
    pub letterhead: &'a Letterhead,
    /// The issue as one template, for providers that fill it for many readers.
    pub template: &'a Template,
    pub clock: Arc<dyn Clock>,
    /// A dry run reads no secrets: credentials that are not set are left out.
    pub dry_run: bool,
}

impl Context<'_> {
    /// The secret in the environment variable `var` (a placeholder in a dry run, if unset).
    pub fn secret(&self, var: &str) -> Result<Secret, SecretError> {
        match Secret::from_env(var) {
            Err(_) if self.dry_run => Ok(Secret::placeholder()),
            other => other,
        }
    }
}

/// Why a provider cannot be made ready to send.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot start the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("cannot write the issue as the provider's template: {0}")]
    Template(&'static str),
}

/// Why a batch cannot become a request. Every message of the batch fails with it, for good:
/// it would not be different another time.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("the message to {to} has {values} merge values for a template with {holes} holes")]
    Holes {
        to: lettre::Address,
        values: usize,
        holes: usize,
    },
    #[error("{provider} takes one message a request, not {count}")]
    OneAtATime {
        provider: &'static str,
        count: usize,
    },
    #[error(
        "not sent: this reader's merge values take {size} bytes, and {provider} takes at most {limit} per recipient (substitutions); shorten their fields in the subscriber list"
    )]
    TooBig {
        provider: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("no message to send")]
    Empty,
    #[error("cannot write the request: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot build the request to {url}: {source}")]
    Build {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot sign the request to {provider}: {source}")]
    Sign {
        provider: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One provider's API: how batches become requests and answers become outcomes.
pub trait Provider: Send + Sync + 'static {
    /// "Postmark".
    fn name(&self) -> &'static str;

    /// The most messages one request carries: the provider's documented limit.
    fn batch_limit(&self) -> usize;

    /// What each message must carry.
    fn form(&self) -> Form;

    /// The request that delivers `batch` (at most `batch_limit` messages). Its body borrows
    /// the batch's messages: it is written when the request goes, and again for a retry.
    fn request<'a>(&'a self, batch: &'a Batch) -> Result<Request<'a>, RequestError>;

    /// Each message's outcome, when the answer says (a 2xx, or an error answer that lists
    /// messages). `None` leaves the answer to the rules all providers share.
    fn outcomes(&self, batch: &Batch, answer: &Answer) -> Option<Vec<Result<Accepted, Failure>>>;

    /// Signs a request that is otherwise complete (Amazon SES: AWS Signature V4).
    fn sign(&self, _request: &mut reqwest::Request) -> Result<(), RequestError> {
        Ok(())
    }

    /// How long the provider asks us to wait, from a 429 answer.
    fn retry_after(&self, answer: &Answer) -> Option<Duration> {
        retry_after_header(&answer.headers)
    }

    /// The provider's explanation in an error answer.
    fn error_message(&self, answer: &Answer) -> String {
        error_message(&answer.body)
    }

    /// The messages of `batch` that a refusal of the whole request (a 4xx other than 401,
    /// 403, 429) names as the cause, by index: the readers at fault. Empty when it names
    /// none. By default, the messages whose address the provider's explanation quotes.
    fn culprits(&self, batch: &Batch, answer: &Answer) -> Vec<usize> {
        named_in(batch, &self.error_message(answer))
    }

    /// Whether the provider takes an idempotency key, so that the same batch sent again is
    /// not delivered twice (see [`Transport::idempotent`]).
    fn idempotent(&self) -> bool {
        false
    }

    /// The requests that ask the provider which messages of `batch` (sent before, answer
    /// lost) it accepted; none when it cannot be asked.
    fn look_up(&self, _batch: &Batch) -> Vec<Request<'static>> {
        Vec::new()
    }

    /// From the answers to [`Provider::look_up`]'s requests, in their order (`None` for one
    /// that failed): each message of `batch` the provider shows accepted.
    fn found(&self, batch: &Batch, _answers: &[Option<Answer>]) -> Vec<Option<Accepted>> {
        vec![None; batch.messages.len()]
    }

    /// The environment variables that hold the credentials, to name when they are refused.
    fn credentials(&self) -> String;

    /// Where requests go: `https://api.postmarkapp.com`.
    fn endpoint(&self) -> String;
}

/// An HTTP request, credentials apart.
#[derive(Debug)]
pub struct Request<'a> {
    pub url: String,
    /// Headers other than the credentials.
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
    pub body: Body<'a>,
}

/// A request's body.
#[derive(Debug)]
pub enum Body<'a> {
    /// `application/json`, written from the batch when the request goes ([`Json`]).
    Json(Json<'a>),
    /// `application/x-www-form-urlencoded`, a field may repeat.
    Form(Vec<(String, String)>),
    /// None: the request is a GET (a look-up), its question in the URL.
    None,
}

/// How a request carries credentials.
#[derive(Debug)]
pub enum Auth {
    /// `Authorization: Bearer KEY`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: Secret },
    /// A header of the provider's own: `X-Postmark-Server-Token: KEY`.
    Header { name: &'static str, value: Secret },
    /// Added by [`Provider::sign`].
    Signed,
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A tag value as Resend (and Amazon SES) take it: ASCII letters, digits, `_` and `-`, at most
/// 256 characters; anything else becomes `_` ("2020-06" stays as it is).
pub fn tag_value(text: &str) -> String {
    let value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect();
    if value.is_empty() {
        "_".to_string()
    } else {
        value
    }
}

/// The messages of `batch` whose address `text` quotes (not as part of a longer address):
/// the readers a provider's explanation names.
pub fn named_in(batch: &Batch, text: &str) -> Vec<usize> {
    let text = text.to_lowercase();
    let part_of_address = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    batch
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            let address = m.envelope.to.to_string().to_lowercase();
            text.match_indices(&address).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + address.len()..].chars().next();
                // An address ends before a dot that ends the sentence.
                let after_ok = match after {
                    Some('.') => text[at + address.len() + 1..]
                        .chars()
                        .next()
                        .is_none_or(|c| !part_of_address(c)),
                    other => other.is_none_or(|c| !part_of_address(c)),
                };
                before.is_none_or(|c| !part_of_address(c)) && after_ok
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// Each message of `batch` as the answer to a request refused whole because of `culprits`:
/// they fail with `failure`, the others are [`Kind::Bystander`]s, to go again without them.
pub fn pinned_on(
    batch: &Batch,
    culprits: &[usize],
    failure: &Failure,
) -> Vec<Result<Accepted, Failure>> {
    (0..batch.messages.len())
        .map(|i| {
            Err(match culprits.contains(&i) {
                true => failure.clone(),
                false => Failure {
                    kind: Kind::Bystander,
                    reply: format!(
                        "not sent: the request was refused for another reader ({})",
                        failure.reply
                    ),
                },
            })
        })
        .collect()
}

/// Every message of `batch` accepted with the same reply (a provider that accepts or refuses
/// a request whole, and gives one ID for it).
pub fn accept_all(batch: &Batch, reply: &str) -> Vec<Result<Accepted, Failure>> {
    batch
        .messages
        .iter()
        .map(|_| {
            Ok(Accepted {
                reply: reply.to_string(),
            })
        })
        .collect()
}

/// The reader's mailbox, `Name <address>`: their address, with their name from the list
/// when it has one.
pub fn recipient(m: &Outgoing) -> lettre::message::Mailbox {
    let name = m.to_name().map(str::to_string);
    lettre::message::Mailbox::new(name, m.envelope.to.clone())
}

/// A message's headers (List-Unsubscribe, List-Unsubscribe-Post, List-Id) that `keep`
/// accepts, as a JSON object `{name: value}`, for the providers that take headers so;
/// empty for a message in MIME bytes.
pub fn header_object(
    m: &Outgoing,
    keep: impl Fn(&str) -> bool,
) -> serde_json::Map<String, serde_json::Value> {
    m.headers()
        .iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, value)| (name.to_string(), value.as_str().into()))
        .collect()
}

/// A message's headers that `keep` accepts, written as a JSON object `{name: value}` from
/// the message itself (what [`header_object`] copies).
pub struct Headers<'a> {
    headers: &'a [(&'static str, String)],
    keep: fn(&str) -> bool,
}

impl<'a> Headers<'a> {
    pub fn of(m: &'a Outgoing, keep: fn(&str) -> bool) -> Headers<'a> {
        Headers {
            headers: m.headers(),
            keep,
        }
    }
}

impl serde::Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.headers.iter().filter(|(n, _)| (self.keep)(n)) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The `Retry-After` header, in seconds (or an HTTP date, which we treat as "a minute").
pub fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s.min(3600.0))),
        _ => Some(Duration::from_secs(60)),
    }
}

/// The message in a JSON error answer (`message`, `Message`, `error`, `errors[0].message`…),
/// or the start of the body.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["message", "Message", "ErrorMessage", "error", "detail"] {
            if let Some(text) = json.get(key).and_then(|v| v.as_str()) {
                return text.to_string();
            }
        }
        if let Some(text) = json
            .pointer("/errors/0/message")
            .or_else(|| json.pointer("/error/message"))
            .and_then(|v| v.as_str())
        {
            return text.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A streamed request's body, and where its chunks go as it is written.
type ToWrite<'a> = (&'a Json<'a>, body::Chunks);

/// A provider's API as a [`Transport`].
pub struct ApiTransport {
    provider: Box<dyn Provider>,
    client: reqwest::Client,
    pacing: Pacing,
}

impl ApiTransport {
    /// The transport for `provider`, driven as fast as `pacing` allows, each request given
    /// `timeout` to answer.
    pub fn new(
        provider: Box<dyn Provider>,
        pacing: Pacing,
        timeout: Duration,
    ) -> Result<ApiTransport, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(20))
            .user_agent(concat!("bulletin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ProviderError::Client)?;
        Ok(ApiTransport {
            provider,
            client,
            pacing,
        })
    }

    /// Requests in flight at once and the provider's rate, as the profile says.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// The request as reqwest sends it, and, for a body too big to hold whole, where its
    /// chunks go: the caller writes them ([`Json::produce`]) while the request is sent.
    fn build<'a>(
        &self,
        request: &'a Request<'a>,
    ) -> Result<(reqwest::Request, Option<ToWrite<'a>>), RequestError> {
        let mut builder = match request.body {
            Body::None => self.client.get(&request.url),
            _ => self.client.post(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        builder = match &request.auth {
            Auth::Bearer(key) => builder.bearer_auth(key.expose()),
            Auth::Basic { user, password } => builder.basic_auth(user, Some(password.expose())),
            Auth::Header { name, value } => builder.header(*name, value.expose()),
            Auth::Signed => builder,
        };
        let mut streamed = None;
        builder = match &request.body {
            Body::Json(json) => {
                let builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/json");
                let len = json.len()?;
                // A signature covers the body's bytes: a signed request has them whole
                // (Amazon SES: one message a request).
                if len > body::STREAM_ABOVE && !matches!(request.auth, Auth::Signed) {
                    let (body, chunks) = body::Streamed::new(len);
                    streamed = Some((json, chunks));
                    builder.body(reqwest::Body::wrap(body))
                } else {
                    builder.body(json.to_vec()?)
                }
            }
            Body::Form(fields) => builder.form(fields),
            Body::None => builder.header(reqwest::header::ACCEPT, "application/json"),
        };
        let mut built = builder.build().map_err(|source| RequestError::Build {
            url: request.url.clone(),
            source,
        })?;
        self.provider.sign(&mut built)?;
        Ok((built, streamed))
    }

    /// The outcome of an answer the provider left to the shared rules.
    fn judge(&self, batch: &Batch, answer: &Answer) -> BatchResult {
        let name = self.provider.name();
        let status = answer.status;
        if (200..300).contains(&status) {
            return Ok(accept_all(
                batch,
                &format!("accepted by {name} (HTTP {status})"),
            ));
        }
        let message = self.provider.error_message(answer);
        let reply = format!("{name} answered HTTP {status}: {message}");
        let kind = match status {
            401 | 403 => {
                return Err(Failure {
                    kind: Kind::Auth,
                    reply: format!(
                        "{reply}; check {} (the key may be wrong, revoked, or lack the right to send)",
                        self.provider.credentials()
                    ),
                });
            }
            429 => Kind::Throttled(
                self.provider
                    .retry_after(answer)
                    .unwrap_or(DEFAULT_THROTTLE),
            ),
            408 | 500..=599 => Kind::Transient,
            _ => {
                // Refused whole: pinned on the readers the answer names, if it names some
                // and not all; else the send loop finds them.
                let failure = Failure {
                    kind: Kind::Permanent,
                    reply,
                };
                let culprits = self.provider.culprits(batch, answer);
                return match culprits.len() {
                    0 => Err(failure),
                    // Every reader named: each fails for their own part of it.
                    n if n == batch.messages.len() => Ok(vec![Err(failure); n]),
                    _ => Ok(pinned_on(batch, &culprits, &failure)),
                };
            }
        };
        Err(Failure { kind, reply })
    }

    /// One request, and its answer whole; a request that got none is a failure.
    async fn exchange(&self, request: Request<'_>) -> Result<Answer, Failure> {
        let permanent = |e: RequestError| Failure {
            kind: Kind::Permanent,
            reply: e.to_string(),
        };
        let (built, streamed) = self.build(&request).map_err(permanent)?;
        let name = self.provider.name();
        let sent = self.client.execute(built);
        let response = match streamed {
            None => sent.await,
            Some((json, chunks)) => {
                // The body is written as the connection takes it. When the answer comes
                // first (a refusal before the body was read), the rest is not written.
                tokio::pin!(sent);
                let produce = json.produce(chunks);
                tokio::pin!(produce);
                tokio::select! {
                    biased;
                    response = &mut sent => response,
                    () = &mut produce => sent.await,
                }
            }
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(network_failure(name, &e)),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            // The request was answered, but its answer did not arrive whole.
            Err(e) => {
                return Err(Failure {
                    kind: Kind::Lost,
                    reply: format!("no complete answer from {name}: {}", reason(&e)),
                });
            }
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

impl Transport for ApiTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        let batch = Batch {
            key: message.message_id.clone(),
            messages: vec![message.clone()],
        };
        let mut outcomes = self.send_batch(&batch).await?;
        outcomes.pop().unwrap_or_else(|| {
            Err(Failure {
                kind: Kind::Transient,
                reply: format!("{} said nothing about the message", self.provider.name()),
            })
        })
    }

    async fn send_batch(&self, batch: &Batch) -> BatchResult {
        let request = self.provider.request(batch).map_err(|e| Failure {
            kind: Kind::Permanent,
            reply: e.to_string(),
        })?;
        let answer = self.exchange(request).await?;
        let status = answer.status;
        match self.provider.outcomes(batch, &answer) {
            Some(outcomes) if outcomes.len() == batch.messages.len() => Ok(outcomes),
            Some(_) => Err(Failure {
                // Not knowing which message went is not knowing whether any did: retry the
                // whole batch, which the idempotency key (where there is one) makes safe,
                // and where there is none, its readers may get two.
                kind: if (200..300).contains(&status) {
                    Kind::Lost
                } else {
                    Kind::Transient
                },
                reply: format!(
                    "{} answered HTTP {status} for a different number of messages than were sent",
                    self.provider.name()
                ),
            }),
            None => self.judge(batch, &answer),
        }
    }

    fn batch_limit(&self) -> usize {
        self.provider.batch_limit()
    }

    fn form(&self) -> Form {
        self.provider.form()
    }

    fn idempotent(&self) -> bool {
        self.provider.idempotent()
    }

    async fn look_up(&self, batch: &Batch) -> Vec<Option<Accepted>> {
        let requests = self.provider.look_up(batch);
        if requests.is_empty() {
            return vec![None; batch.messages.len()];
        }
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            // Not knowing is not finding: what no answer shows goes again, uncertain.
            answers.push(
                self.exchange(request)
                    .await
                    .ok()
                    .filter(|a| (200..300).contains(&a.status)),
            );
        }
        let mut found = self.provider.found(batch, &answers);
        found.resize(batch.messages.len(), None);
        found
    }

    fn describe(&self) -> String {
        let n = self.provider.batch_limit();
        format!(
            "{} API {} ({n} {} per request)",
            self.provider.name(),
            self.provider.endpoint(),
            if n == 1 { "message" } else { "messages" }
        )
    }
}

/// A request that got no answer: the provider cannot be reached (a wrong endpoint, no
/// network: nothing went out), the connection could not be made in time (nothing went out
/// either: worth another try), or the request went out and its answer did not come (a
/// timeout, a connection reset): the provider may have accepted it.
fn network_failure(name: &str, e: &reqwest::Error) -> Failure {
    let reason = reason(e);
    if e.is_connect() && !e.is_timeout() {
        Failure {
            kind: Kind::Unreachable,
            reply: format!("cannot reach {name}: {reason}"),
        }
    } else if e.is_connect() {
        Failure {
            kind: Kind::Transient,
            reply: format!("cannot reach {name} in time: {reason}"),
        }
    } else {
        Failure {
            kind: Kind::Lost,
            reply: format!("no answer from {name}, which may have accepted the request: {reason}"),
        }
    }
}

/// An error with its causes, as one line.
fn reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

/// Writes each request a send would make into a folder, credentials redacted, and sends
/// nothing.
pub struct DryRun {
    provider: Box<dyn Provider>,
    dir: PathBuf,
    count: AtomicUsize,
}

impl DryRun {
    pub fn new(provider: Box<dyn Provider>, dir: PathBuf) -> DryRun {
        DryRun {
            provider,
            dir,
            count: AtomicUsize::new(0),
        }
    }
}

/// A request as a person reads it: method, URL, headers with the credentials redacted, body.
pub fn redacted(request: &Request) -> Result<serde_json::Value, serde_json::Error> {
    let mut headers = serde_json::Map::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone().into());
    }
    let auth = match &request.auth {
        Auth::Bearer(_) => Some(("Authorization", "Bearer [redacted]")),
        Auth::Basic { .. } => Some(("Authorization", "Basic [redacted]")),
        Auth::Header { name, .. } => Some((*name, "[redacted]")),
        Auth::Signed => Some(("Authorization", "AWS4-HMAC-SHA256 [redacted]")),
    };
    if let Some((name, value)) = auth {
        headers.insert(name.to_string(), value.into());
    }
    let body = match &request.body {
        Body::None => serde_json::Value::Null,
        Body::Json(json) => serde_json::from_slice(&json.to_vec()?)?,
        Body::Form(fields) => fields
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect::<Vec<_>>()
            .into(),
    };
    let method = match request.body {
        Body::None => "GET",
        _ => "POST",
    };
    Ok(serde_json::json!({
        "method": method,
        "url": request.url,
        "headers": headers,
        "body": body,
    }))
}

impl Transport for DryRun {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        let batch = Batch {
            key: message.message_id.clone(),
            messages: vec![message.clone()],
        };
        let mut outcomes = self.send_batch(&batch).await?;
        outcomes
            .pop()
            .unwrap_or_else(|| unreachable!("one message, one outcome"))
    }

    async fn send_batch(&self, batch: &Batch) -> BatchResult {
        let failure = |kind, reply| Failure { kind, reply };
        let request = self
            .provider
            .request(batch)
            .map_err(|e| failure(Kind::Permanent, e.to_string()))?;
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let path = self.dir.join(format!("request-{n:05}.json"));
        let text = redacted(&request)
            .and_then(|r| serde_json::to_vec_pretty(&r))
            .map_err(|e| failure(Kind::Permanent, e.to_string()))?;
        crate::output::write_atomic(&path, &text)
            .map_err(|e| failure(Kind::Unreachable, e.to_string()))?;
        Ok(accept_all(
            batch,
            &format!("dry run: written to {}", path.display()),
        ))
    }

    fn batch_limit(&self) -> usize {
        self.provider.batch_limit()
    }

    fn form(&self) -> Form {
        self.provider.form()
    }

    fn describe(&self) -> String {
        format!(
            "dry run: {} API requests written to {}",
            self.provider.name(),
            self.dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Envelope, Parts, Payload};

    #[test]
    fn reads_retry_after_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after_header(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_header(&h), Some(Duration::from_secs(60)));
        assert_eq!(retry_after_header(&HeaderMap::new()), None);
    }

    fn batch_to(addresses: &[&str]) -> Batch {
        Batch {
            key: "k".into(),
            messages: addresses
                .iter()
                .map(|a| Outgoing {
                    envelope: Envelope {
                        from: "news@example.org".parse().unwrap(),
                        to: a.parse().unwrap(),
                    },
                    message_id: format!("<{a}>"),
                    payload: Payload::Mime(Vec::new().into()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_refusal_is_pinned_on_the_addresses_it_quotes_and_only_those() {
        let batch = batch_to(&["ann@example.org", "nn@example.org", "bob@example.org"]);
        assert_eq!(
            named_in(&batch, "email is not valid in to: NN@example.org."),
            [1],
            "not ann@example.org, which contains it; a closing dot is not part of it"
        );
        assert_eq!(
            named_in(
                &batch,
                "'bob@example.org' and <ann@example.org> are refused"
            ),
            [0, 2]
        );
        assert!(named_in(&batch, "to parameter is not a valid address").is_empty());
        let failure = Failure {
            kind: Kind::Permanent,
            reply: "refused".into(),
        };
        let pinned = pinned_on(&batch, &[1], &failure);
        assert_eq!(pinned[1], Err(failure));
        assert!(matches!(&pinned[0], Err(f) if f.kind == Kind::Bystander));
        assert!(matches!(&pinned[2], Err(f) if f.kind == Kind::Bystander));
    }

    #[test]
    fn finds_the_message_in_error_answers() {
        assert_eq!(
            error_message(br#"{"ErrorCode":10,"Message":"Bad key"}"#),
            "Bad key"
        );
        assert_eq!(
            error_message(br#"{"errors":[{"message":"bad from","field":"from"}]}"#),
            "bad from"
        );
        assert_eq!(error_message(b"  Forbidden \n"), "Forbidden");
    }

    fn to_ann(payload: Payload) -> Outgoing {
        Outgoing {
            envelope: Envelope {
                from: "news@example.org".parse().unwrap(),
                to: "ann@example.org".parse().unwrap(),
            },
            message_id: "<1@example.org>".into(),
            payload,
        }
    }

    #[test]
    fn the_recipient_and_headers_come_from_the_parts_when_there_are_some() {
        let bare = to_ann(Payload::Mime(Vec::new().into()));
        assert_eq!(recipient(&bare).to_string(), "ann@example.org");
        assert!(header_object(&bare, |_| true).is_empty());
        let full = to_ann(Payload::Parts(Parts {
            to_name: Some("Ann Example".into()),
            subject: "Hello".into(),
            html: String::new(),
            text: String::new(),
            headers: vec![
                ("List-Unsubscribe", "<mailto:u@example.org>".into()),
                ("List-Id", "<news.example.org>".into()),
            ],
        }));
        assert_eq!(
            recipient(&full).to_string(),
            "Ann Example <ann@example.org>"
        );
        let kept = header_object(&full, |name| name != "List-Id");
        assert_eq!(
            serde_json::Value::Object(kept),
            serde_json::json!({"List-Unsubscribe": "<mailto:u@example.org>"})
        );
    }

    /// Each kind of provider, made for a dry run (no secrets needed).
    fn providers() -> Vec<Box<dyn Provider>> {
        use crate::clock::SystemClock;
        use crate::merge::{FieldTable, Prepared};
        let letterhead = Letterhead {
            from: "news@example.org".parse().unwrap(),
            reply_to: None,
            tag: "2020-06".into(),
        };
        let empty = || Prepared::text("", &FieldTable::default());
        let template = Template::new(empty(), empty(), empty());
        let context = Context {
            letterhead: &letterhead,
            template: &template,
            clock: Arc::new(SystemClock),
            dry_run: true,
        };
        let common = || Common::new("BULLETIN_TEST_KEY_NOT_SET");
        let postmark = postmark::Settings {
            common: common(),
            message_stream: None,
        };
        let sendgrid = sendgrid::Settings {
            common: common(),
            region: None,
        };
        let ses = ses::Settings {
            common: common(),
            secret_env: Some("BULLETIN_TEST_SECRET_NOT_SET".into()),
            region: Some("eu-west-1".into()),
            configuration_set: None,
            dkim: None,
        };
        vec![
            Box::new(postmark::Postmark::new(&postmark, &context).unwrap()),
            Box::new(sendgrid::SendGrid::new(&sendgrid, &context).unwrap()),
            Box::new(ses::Ses::new(&ses, &context).unwrap()),
        ]
    }

    #[test]
    fn the_batch_size_reads_well_for_one_message() {
        let describe = |provider: Box<dyn Provider>| {
            ApiTransport::new(provider, Pacing::ONE_AT_A_TIME, REQUEST_TIMEOUT)
                .unwrap()
                .describe()
        };
        let mut all = providers();
        assert!(
            describe(all.remove(2)).ends_with("(1 message per request)"),
            "SES"
        );
        assert!(describe(all.remove(0)).ends_with("(500 messages per request)"));
    }

    #[test]
    fn a_message_in_another_form_is_a_typed_error_not_an_empty_request() {
        let wrong = [
            Payload::Parts(Parts {
                to_name: None,
                subject: "Hello".into(),
                html: String::new(),
                text: String::new(),
                headers: Vec::new(),
            }),
            Payload::Mime(b"Subject: Hello\r\n\r\nHi\r\n".to_vec().into()),
        ];
        for provider in providers() {
            let payload = match provider.form() {
                Form::Parts | Form::Values => wrong[1].clone(),
                Form::Mime => wrong[0].clone(),
            };
            let got = payload.form();
            let batch = Batch {
                key: "k".into(),
                messages: vec![to_ann(payload)],
            };
            let Err(RequestError::Payload(e)) = provider.request(&batch) else {
                panic!("{} took a message in {got}", provider.name())
            };
            assert_eq!((e.wanted, e.got), (provider.form(), got));
            assert_eq!(
                e.to_string(),
                format!(
                    "the message to ann@example.org was built as {got}, and this transport takes {}",
                    provider.form()
                )
            );
        }
        // Through a transport, every message of the batch fails for good with it.
        let dir = tempfile::tempdir().unwrap();
        let dry = DryRun::new(providers().remove(0), dir.path().to_path_buf());
        let batch = Batch {
            key: "k".into(),
            messages: vec![to_ann(wrong[1].clone())],
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let failure = runtime.block_on(dry.send_batch(&batch)).unwrap_err();
        assert_eq!(failure.kind, Kind::Permanent);
        assert!(
            failure
                .reply
                .contains("this transport takes template values"),
            "{failure}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
