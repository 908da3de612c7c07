//! Provider webhooks: the bounces, complaints and unsubscribes each sending provider reports,
//! recorded in the suppression store ([`crate::suppressions`]) that `send` honours.
//!
//! One module per provider, each owning its settings (`[serve.webhooks.<provider>]`), the
//! verification its provider documents (cited in the module) and the reading of its events;
//! this module holds what they share:
//!
//! - A request is verified before anything in it is believed: a wrong or missing credential
//!   or signature is answered 401 (403 for an SNS topic not in the settings) and records
//!   nothing. Secrets are compared in constant time and never logged.
//! - A body that verifies but cannot be read is answered 400. Bodies over [`BODY_LIMIT`] are
//!   refused (413) before they are read.
//! - What it reports is committed (and synced) before the 200: an answered delivery is never
//!   lost, and a failure to record is answered 503 so that the provider tries again. A retry
//!   of a delivery already recorded (same provider event id) is recorded once.
//! - Hard bounces, complaints and unsubscribes suppress at once; soft bounces once
//!   `[serve.bounces] soft_limit` of them fall within `soft_window_days`.
//! - Log lines name addresses by their fingerprint, never in clear, and carry neither the
//!   providers' diagnostics (which often quote the address) nor any secret.

mod brevo;
mod mailgun;
mod mailjet;
mod postmark;
mod resend;
mod sendgrid;
mod ses;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::suppressions::{Kind, Provider, Recorded, Report, SoftRule, Source, Store, fingerprint};
use crate::values::{Secret, SecretError};

/// The largest body taken: SendGrid posts its batches at up to 768 KB, Brevo up to 500 events
/// at once; 1 MiB holds either.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How far a signed timestamp may be from this server's clock (Mailgun, SendGrid, Resend):
/// the 5 minutes of Svix (Resend's documentation) and of the Standard Webhooks
/// specification; Mailgun and SendGrid give no figure.
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// `[serve.webhooks]`: one table per provider, each optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub postmark: Option<postmark::Config>,
    pub sendgrid: Option<sendgrid::Config>,
    pub mailgun: Option<mailgun::Config>,
    pub brevo: Option<brevo::Config>,
    pub mailjet: Option<mailjet::Config>,
    pub ses: Option<ses::Config>,
    pub resend: Option<resend::Config>,
}

/// `[serve.bounces]`: when soft bounces suppress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounces {
    /// This many soft bounces of one address…
    #[serde(default = "default_soft_limit")]
    pub soft_limit: u32,
    /// …within this many days suppress it as a bounce.
    #[serde(default = "default_soft_window_days")]
    pub soft_window_days: u32,
}

impl Default for Bounces {
    fn default() -> Self {
        Bounces {
            soft_limit: default_soft_limit(),
            soft_window_days: default_soft_window_days(),
        }
    }
}

impl Bounces {
    /// The soft-bounce rule these settings make (the webhooks' and `bulletin bounces`'), or
    /// why they make none.
    pub fn rule(&self) -> Result<SoftRule, SettingsError> {
        if self.soft_limit == 0 {
            return Err(SettingsError::Bounces(
                "soft_limit must be at least 1 (1: the first soft bounce suppresses)".into(),
            ));
        }
        if self.soft_window_days == 0 {
            return Err(SettingsError::Bounces(
                "soft_window_days must be at least 1".into(),
            ));
        }
        Ok(SoftRule {
            limit: self.soft_limit,
            window: TimeDelta::days(i64::from(self.soft_window_days)),
        })
    }
}

fn default_soft_limit() -> u32 {
    3
}

fn default_soft_window_days() -> u32 {
    30
}

/// Webhook settings that do not go together, or a secret that is not set.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("serve.webhooks.{provider}.{field}: {source}")]
    Secret {
        provider: Provider,
        field: &'static str,
        #[source]
        source: SecretError,
    },
    #[error("serve.webhooks.{provider}: {message}")]
    Rule { provider: Provider, message: String },
    #[error("serve.bounces: {0}")]
    Bounces(String),
}

impl SettingsError {
    fn rule(provider: Provider, message: impl Into<String>) -> Self {
        SettingsError::Rule {
            provider,
            message: message.into(),
        }
    }
}

/// Reads the secret in the variable `name`, for `provider`'s `field`.
fn secret(provider: Provider, field: &'static str, name: &str) -> Result<Secret, SettingsError> {
    Secret::from_env(name).map_err(|source| SettingsError::Secret {
        provider,
        field,
        source,
    })
}

/// The webhooks' settings, checked, their secrets read.
#[derive(Clone)]
pub struct Settings {
    hooks: Vec<Hook>,
    pub rule: SoftRule,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("webhooks", &self.describe())
            .field("rule", &self.rule)
            .finish()
    }
}

/// One provider's endpoint, checked.
#[derive(Clone)]
enum Hook {
    Postmark(Arc<postmark::Receiver>),
    Sendgrid(Arc<sendgrid::Receiver>),
    Mailgun(Arc<mailgun::Receiver>),
    Brevo(Arc<brevo::Receiver>),
    Mailjet(Arc<mailjet::Receiver>),
    Ses(Arc<ses::Receiver>),
    Resend(Arc<resend::Receiver>),
}

impl Hook {
    fn path(&self) -> &str {
        match self {
            Hook::Postmark(r) => r.path(),
            Hook::Sendgrid(r) => r.path(),
            Hook::Mailgun(r) => r.path(),
            Hook::Brevo(r) => r.path(),
            Hook::Mailjet(r) => r.path(),
            Hook::Ses(r) => r.path(),
            Hook::Resend(r) => r.path(),
        }
    }

    fn describe(&self) -> String {
        let (provider, how) = match self {
            Hook::Postmark(r) => (Provider::Postmark, r.describe()),
            Hook::Sendgrid(r) => (Provider::Sendgrid, r.describe()),
            Hook::Mailgun(r) => (Provider::Mailgun, r.describe()),
            Hook::Brevo(r) => (Provider::Brevo, r.describe()),
            Hook::Mailjet(r) => (Provider::Mailjet, r.describe()),
            Hook::Ses(r) => (Provider::Ses, r.describe()),
            Hook::Resend(r) => (Provider::Resend, r.describe()),
        };
        format!("{:<9}POST {} ({how})", provider.as_str(), self.path())
    }
}

impl Settings {
    /// Checks `[serve.webhooks]` and `[serve.bounces]` and reads every secret they name;
    /// `taken` are the paths the unsubscribe pages answer at, which no webhook may share.
    pub fn from_config(
        config: &Config,
        bounces: &Bounces,
        taken: &[&str],
    ) -> Result<Settings, SettingsError> {
        let rule = bounces.rule()?;
        let mut hooks = Vec::new();
        if let Some(c) = &config.postmark {
            hooks.push(Hook::Postmark(Arc::new(c.open::<postmark::Events>()?)));
        }
        if let Some(c) = &config.sendgrid {
            hooks.push(Hook::Sendgrid(Arc::new(c.open()?)));
        }
        if let Some(c) = &config.mailgun {
            hooks.push(Hook::Mailgun(Arc::new(c.open()?)));
        }
        if let Some(c) = &config.brevo {
            hooks.push(Hook::Brevo(Arc::new(c.open()?)));
        }
        if let Some(c) = &config.mailjet {
            hooks.push(Hook::Mailjet(Arc::new(c.open::<mailjet::Events>()?)));
        }
        if let Some(c) = &config.ses {
            hooks.push(Hook::Ses(Arc::new(c.open()?)));
        }
        if let Some(c) = &config.resend {
            hooks.push(Hook::Resend(Arc::new(c.open()?)));
        }
        let mut seen: Vec<&str> = taken.to_vec();
        for hook in &hooks {
            let provider = hook_provider(hook);
            if seen.contains(&hook.path()) {
                return Err(SettingsError::rule(
                    provider,
                    format!(
                        "path = \"{}\" is already taken; give each webhook its own path",
                        hook.path()
                    ),
                ));
            }
            seen.push(hook.path());
        }
        Ok(Settings { hooks, rule })
    }

    /// One line per webhook that is on: the provider, its path, how requests are verified
    /// and which environment variables hold its secrets (never their values).
    pub fn describe(&self) -> Vec<String> {
        self.hooks.iter().map(Hook::describe).collect()
    }
}

fn hook_provider(hook: &Hook) -> Provider {
    match hook {
        Hook::Postmark(_) => Provider::Postmark,
        Hook::Sendgrid(_) => Provider::Sendgrid,
        Hook::Mailgun(_) => Provider::Mailgun,
        Hook::Brevo(_) => Provider::Brevo,
        Hook::Mailjet(_) => Provider::Mailjet,
        Hook::Ses(_) => Provider::Ses,
        Hook::Resend(_) => Provider::Resend,
    }
}

/// A webhook's path: `path` as set, or `/webhooks/<provider>`; checked like the unsubscribe
/// path (letters, digits, `/ - _ . ~`), so that it is matched as written.
fn path(provider: Provider, path: &Option<String>) -> Result<String, SettingsError> {
    let path = path
        .clone()
        .unwrap_or_else(|| format!("/webhooks/{}", provider.as_str()));
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !path.starts_with('/') || path.len() < 2 || !path.chars().all(plain) || path.contains("//") {
        return Err(SettingsError::rule(
            provider,
            format!(
                "path = \"{path}\" must start with / and have only letters, digits, '/', '-', '_', '.' and '~', e.g. \"/webhooks/{provider}\""
            ),
        ));
    }
    Ok(path)
}

/// What a provider's webhook said about one address, before it is checked and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub address: String,
    /// Bounce, SoftBounce, Complaint or Unsubscribe.
    pub kind: Kind,
    /// The provider's words, kept in the store (not logged: they often quote the address).
    pub reason: Option<String>,
    /// The provider's id of the event, so that a retry is recorded once.
    pub reference: Option<String>,
}

impl Reported {
    fn new(address: &str, kind: Kind, reason: Option<String>, reference: Option<String>) -> Self {
        Reported {
            address: address.trim().to_string(),
            kind,
            reason: reason.filter(|r| !r.trim().is_empty()),
            reference,
        }
    }
}

/// A delivery that verified: what it reports, and what else to say.
#[derive(Debug, Default)]
pub struct Delivery {
    pub reports: Vec<Reported>,
    /// A value that a genuine delivery carries once (Mailgun's token, Svix's message id): a
    /// second one within [`TOLERANCE`] is answered 200 and records nothing.
    pub once: Option<String>,
    /// A line for the log, for deliveries that report nothing (an SNS subscription).
    pub note: Option<String>,
}

/// Why a delivery is not taken.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no credential or signature, or a wrong one.
    Unauthorized(&'static str),
    /// 403: verified, but not for us (an SNS topic not in the settings, a certificate URL on
    /// another host).
    Forbidden(&'static str),
    /// 400: not what the provider sends.
    Malformed(String),
    /// 503: something on the way failed (a certificate that could not be fetched); the
    /// provider tries again.
    Unavailable(String),
}

/// One provider's verification and reading of its deliveries.
pub trait Receive: Send + Sync + 'static {
    const PROVIDER: Provider;
    /// What an unauthorised answer asks for in its `WWW-Authenticate` header (for HTTP
    /// clients that send credentials only when asked), if anything.
    fn challenge(&self) -> Option<&'static str> {
        None
    }

    fn path(&self) -> &str;

    /// How requests are verified and where its secrets come from, for `serve --check`.
    fn describe(&self) -> String;

    /// Verifies the request, then reads what it reports.
    fn receive(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Delivery, Refusal>> + Send;
}

/// What every webhook endpoint shares: the store (its own connection; SQLite serialises the
/// writes of the unsubscribe pages' and the webhooks'), the soft-bounce rule and the log.
struct Common {
    store: Mutex<Store>,
    rule: SoftRule,
    log: Arc<dyn Fn(&str) + Send + Sync>,
}

/// One endpoint: its provider's receiver and the values it has seen once.
struct Endpoint<R> {
    receiver: Arc<R>,
    common: Arc<Common>,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// The routes of the webhooks that are on, each `POST` at its path, with their own body
/// limit and time limit; `store` is opened again for them.
pub fn router(
    settings: &Settings,
    store: &std::path::Path,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<Router, crate::suppressions::StoreError> {
    let mut router = Router::new();
    if settings.hooks.is_empty() {
        return Ok(router);
    }
    let common = Arc::new(Common {
        store: Mutex::new(Store::open(store)?),
        rule: settings.rule,
        log,
    });
    for hook in &settings.hooks {
        router = match hook {
            Hook::Postmark(r) => router.merge(route(r, &common)),
            Hook::Sendgrid(r) => router.merge(route(r, &common)),
            Hook::Mailgun(r) => router.merge(route(r, &common)),
            Hook::Brevo(r) => router.merge(route(r, &common)),
            Hook::Mailjet(r) => router.merge(route(r, &common)),
            Hook::Ses(r) => router.merge(route(r, &common)),
            Hook::Resend(r) => router.merge(route(r, &common)),
        };
    }
    Ok(router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(guard)))
}

fn route<R: Receive>(receiver: &Arc<R>, common: &Arc<Common>) -> Router {
    let endpoint = Arc::new(Endpoint {
        receiver: receiver.clone(),
        common: common.clone(),
        seen: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(receiver.path(), post(receive::<R>))
        .with_state(endpoint)
}

/// The time limit of the unsubscribe pages, and answers never cached.
async fn guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = match tokio::time::timeout(super::REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "took too long\n").into_response(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn receive<R: Receive>(
    State(endpoint): State<Arc<Endpoint<R>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = R::PROVIDER;
    let log = |line: String| (endpoint.common.log)(&format!("webhook {provider}: {line}"));
    let now = crate::clock::now();
    let delivery = match endpoint.receiver.receive(&headers, &body, now).await {
        Ok(delivery) => delivery,
        Err(refusal) => {
            let (status, why) = match refusal {
                Refusal::Unauthorized(why) => (StatusCode::UNAUTHORIZED, why.to_string()),
                Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_string()),
                Refusal::Malformed(why) => (StatusCode::BAD_REQUEST, why),
                Refusal::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
            };
            log(format!(
                "refused ({}): {why}; nothing recorded",
                status.as_u16()
            ));
            let mut response = (status, format!("{why}\n")).into_response();
            if let Some(challenge) = endpoint.receiver.challenge()
                && status == StatusCode::UNAUTHORIZED
            {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            return response;
        }
    };
    if let Some(once) = &delivery.once
        && endpoint.seen_before(once, now)
    {
        log("a delivery already taken: nothing recorded again".into());
        return (StatusCode::OK, "ok\n").into_response();
    }
    if let Some(note) = &delivery.note {
        log(note.clone());
    }
    // An address that is not one is left out, and logged; the others are recorded.
    let (reports, bad): (Vec<Reported>, Vec<Reported>) = delivery
        .reports
        .into_iter()
        .partition(|r| r.address.parse::<lettre::Address>().is_ok());
    if !bad.is_empty() {
        log(format!(
            "{} event(s) without a valid address: skipped",
            bad.len()
        ));
    }
    if !reports.is_empty() {
        match record(&endpoint.common, provider, reports.clone(), now).await {
            Ok(outcomes) => {
                for (report, outcome) in reports.iter().zip(outcomes) {
                    log(describe(report, &outcome, endpoint.common.rule));
                }
            }
            Err(reason) => {
                log(format!("NOT recorded: {reason}"));
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "could not be recorded; try again\n",
                )
                    .into_response();
            }
        }
    }
    if let Some(once) = delivery.once {
        endpoint.remember(once, now);
    }
    (StatusCode::OK, "ok\n").into_response()
}

impl<R> Endpoint<R> {
    fn seen_before(&self, once: &str, now: DateTime<Utc>) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(once).is_some_and(|at| now - *at <= TOLERANCE * 2)
    }

    /// Remembered only once recorded: a delivery answered 503 may come again as it was.
    fn remember(&self, once: String, now: DateTime<Utc>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // Older ones can no longer verify (their timestamps are out of tolerance).
        if seen.len() >= 4096 {
            seen.retain(|_, at| now - *at <= TOLERANCE * 2);
        }
        seen.insert(once, now);
    }
}

/// A log line for one recorded report: kind and fingerprint, never the address or reason.
fn describe(report: &Reported, outcome: &Recorded, rule: SoftRule) -> String {
    let who = fingerprint(&report.address);
    match outcome {
        Recorded::Duplicate => format!("{} {who}: already recorded", report.kind),
        Recorded::Event { soft: Some(n), .. } => format!(
            "soft-bounce {who} ({n} of {} in {} days)",
            rule.limit,
            rule.window.num_days()
        ),
        Recorded::Event { soft: None, .. } => format!("{} {who}", report.kind),
        Recorded::Escalated { soft, .. } => format!(
            "soft-bounce {who}: {soft} in {} days, suppressed as a bounce",
            rule.window.num_days()
        ),
    }
}

/// Records the reports in one transaction, off the async threads.
async fn record(
    common: &Arc<Common>,
    provider: Provider,
    reports: Vec<Reported>,
    now: DateTime<Utc>,
) -> Result<Vec<Recorded>, String> {
    let common = common.clone();
    tokio::task::spawn_blocking(move || {
        let reports: Vec<Report> = reports
            .iter()
            .map(|r| Report {
                at: now,
                address: &r.address,
                kind: r.kind,
                source: Source::Webhook(provider),
                issue: None,
                reason: r.reason.as_deref(),
                reference: r.reference.as_deref(),
            })
            .collect();
        let mut store = common.store.lock().unwrap_or_else(|p| p.into_inner());
        store
            .record_reports(&reports, common.rule)
            .map_err(|e| e.reason)
    })
    .await
    .map_err(|_| "the recording task failed".to_string())?
}

/// Compares a secret with what a request gave, in constant time whatever their lengths (both
/// are hashed first, so that neither the content nor the length leaks through timing).
pub fn same_secret(given: &[u8], secret: &Secret) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(secret.expose().as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// `[serve.webhooks.<provider>]` of a provider that authenticates with a user name and
/// password put in the webhook's URL (Postmark, Mailjet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    /// Default `/webhooks/<provider>`.
    pub path: Option<String>,
    /// The user name put in the webhook's URL.
    pub username: String,
    /// The environment variable holding the password put in the webhook's URL.
    pub password_env: String,
}

impl BasicConfig {
    pub fn open<E: ReadEvents>(&self) -> Result<BasicReceiver<E>, SettingsError> {
        Ok(BasicReceiver {
            path: path(E::PROVIDER, &self.path)?,
            basic: Basic::open(E::PROVIDER, &self.username, &self.password_env)?,
            events: std::marker::PhantomData,
        })
    }
}

/// How a provider's requests read, once they are known to be its own.
pub trait ReadEvents: Send + Sync + 'static {
    const PROVIDER: Provider;
    fn read(body: &Bytes) -> Result<Delivery, Refusal>;
}

/// The endpoint of a provider that authenticates with HTTP Basic credentials: they are
/// checked, then the body is read as the provider `E` writes it.
pub struct BasicReceiver<E> {
    path: String,
    basic: Basic,
    events: std::marker::PhantomData<E>,
}

impl<E: ReadEvents> Receive for BasicReceiver<E> {
    const PROVIDER: Provider = E::PROVIDER;

    fn challenge(&self) -> Option<&'static str> {
        Some(Basic::CHALLENGE)
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn describe(&self) -> String {
        self.basic.describe()
    }

    async fn receive(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        _now: DateTime<Utc>,
    ) -> Result<Delivery, Refusal> {
        if !self.basic.check(headers) {
            return Err(Refusal::Unauthorized("wrong or missing basic credentials"));
        }
        E::read(body)
    }
}

/// HTTP Basic credentials: the user name from bulletin.toml, the password from the
/// environment. What Postmark, Mailjet and Brevo send when they are put in the webhook's URL
/// (`https://user:password@host/path`).
#[derive(Clone)]
pub struct Basic {
    pub username: String,
    pub password: Secret,
    pub password_env: String,
}

impl Basic {
    pub fn open(
        provider: Provider,
        username: &str,
        password_env: &str,
    ) -> Result<Basic, SettingsError> {
        if username.is_empty() || username.contains(':') {
            return Err(SettingsError::rule(
                provider,
                "username must be set and have no ':' (it goes in the webhook's URL as user:password)",
            ));
        }
        Ok(Basic {
            username: username.to_string(),
            password: secret(provider, "password_env", password_env)?,
            password_env: password_env.to_string(),
        })
    }

    /// Whether the request's `Authorization: Basic` header holds these credentials; user
    /// name and password are both compared, in constant time, whatever the first gives.
    pub fn check(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = authorization(headers, "Basic") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = Sha256::digest(user)
            .as_slice()
            .ct_eq(Sha256::digest(self.username.as_bytes()).as_slice());
        let password_ok = Sha256::digest(password)
            .as_slice()
            .ct_eq(Sha256::digest(self.password.expose().as_bytes()).as_slice());
        (user_ok & password_ok).into()
    }

    /// The `WWW-Authenticate` challenge that asks for Basic credentials.
    pub const CHALLENGE: &str = "Basic realm=\"bulletin webhooks\"";

    pub fn describe(&self) -> String {
        format!(
            "basic auth: user \"{}\", password from {}: set",
            self.username, self.password_env
        )
    }
}

/// The credentials of an `Authorization: <scheme> <credentials>` header.
pub fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// A header's value as text, if present and readable.
pub fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// Lower- or upper-case hex to bytes.
pub fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A JSON body, or why not.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    // Where, not what: serde's own message may quote a value, an address among them, and the
    // reason goes to the log.
    serde_json::from_slice(body).map_err(|e| {
        Refusal::Malformed(format!(
            "not the provider's JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Whether a signed Unix timestamp is within [`TOLERANCE`] of `now`.
pub fn fresh(timestamp: i64, now: DateTime<Utc>) -> bool {
    DateTime::from_timestamp(timestamp, 0).is_some_and(|t| (now - t).abs() <= TOLERANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_checked_whole() {
        let basic = Basic {
            username: "postmark".into(),
            password: Secret::new("s3cret"),
            password_env: "P".into(),
        };
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(basic.check(&with(&format!("Basic {}", b64("postmark:s3cret")))));
        assert!(basic.check(&with(&format!("basic {}", b64("postmark:s3cret")))));
        for wrong in [
            "postmark:s3cre",
            "postmark:s3cret2",
            "postmar:s3cret",
            "s3cret",
            "",
        ] {
            assert!(
                !basic.check(&with(&format!("Basic {}", b64(wrong)))),
                "{wrong}"
            );
        }
        assert!(!basic.check(&with("Bearer s3cret")));
        assert!(!basic.check(&HeaderMap::new()));
        assert!(!basic.describe().contains("s3cret"));
    }

    #[test]
    fn paths_default_to_the_provider_and_are_plain() {
        assert_eq!(
            path(Provider::Ses, &None).unwrap(),
            "/webhooks/ses".to_string()
        );
        for bad in ["webhooks", "/", "/a/{b}", "/a//b", "/a b"] {
            assert!(path(Provider::Ses, &Some(bad.into())).is_err(), "{bad}");
        }
        assert_eq!(hex("0aFf"), Some(vec![10, 255]));
        assert_eq!(hex("0g"), None);
        assert_eq!(hex("abc"), None);
    }
}
