//! The workspace's `bulletin.toml`: who sends, how readers unsubscribe, and the transport
//! profiles. Parsed once into typed, checked values (addresses, rates, security modes).
//!
//! A profile's `transport = "…"` chooses its settings type: SMTP's is here ([`Smtp`]), each
//! provider's is in its own module under [`crate::transport::api`], with its rules. This
//! module reads and checks; it opens no connection and reads no secret until asked.
//!
//! Secrets are not in the file: a profile names the environment variable that holds each one
//! (`password_env`), and [`Secret`] reads it when needed. A secret never prints (its Debug and
//! Display say `[redacted]`) and is never written anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::transport::api::{
    Common, SettingsError, brevo, mailgun, mailjet, postmark, resend, sendgrid, ses,
};
pub use crate::values::{Dkim, Rate, RateError, Secret, SecretError, is_loopback};

/// The name of the workspace settings file.
pub const FILE_NAME: &str = "bulletin.toml";

/// `bulletin.toml`, checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sender: Sender,
    pub unsubscribe: Unsubscribe,
    /// `bulletin serve`, the public side; every setting has a default.
    #[serde(default)]
    pub serve: Serve,
    /// Where `send` pulls the suppressions a `bulletin serve` elsewhere recorded.
    #[serde(default)]
    pub suppressions: Option<RemoteSuppressions>,
    /// `bulletin publish`, the web edition; without it nothing is published.
    #[serde(default)]
    pub archive: Option<Archive>,
    /// `bulletin bounces`: the bounce mailbox of SMTP sends.
    #[serde(default)]
    pub bounces: Option<crate::bounces::Settings>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl Config {
    /// The Feedback-ID the profile `name`'s messages carry: its own (SMTP), or `[sender]`'s.
    pub fn feedback_id(&self, name: &str) -> Option<&FeedbackId> {
        match self.profiles.get(name) {
            Some(profile) => profile.feedback_id(&self.sender),
            None => self.sender.feedback_id.as_ref(),
        }
    }

    /// How the profile `name` has bulletin sign its messages (DKIM), if it does.
    pub fn dkim(&self, name: &str) -> Option<&Dkim> {
        self.profiles.get(name).and_then(Profile::dkim)
    }
}

/// Who the newsletter comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// "Efus <newsletter@efus.eu>"
    #[serde(deserialize_with = "mailbox")]
    pub from: Mailbox,
    #[serde(default, deserialize_with = "optional_mailbox")]
    pub reply_to: Option<Mailbox>,
    /// The List-Id header: "Efus newsletter <newsletter.efus.eu>".
    pub list_id: String,
    /// Gmail's feedback loop: `Feedback-ID: <issue slug>:<this>` (see [`FeedbackId`]).
    pub feedback_id: Option<FeedbackId>,
}

/// The sender's part of a Feedback-ID header, for Gmail's feedback loop (Postmaster Tools):
/// one to three fields separated by colons, the last the sender's identifier, e.g.
/// `"newsletter:efus"`. The issue's slug goes in front as the campaign field, so the header
/// reads `Feedback-ID: 2020-06:newsletter:efus` (Gmail's `CampaignID:CustomerID:MailTypeID:
/// SenderId`, at most four fields). Fields are letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FeedbackId(String);

/// Text that cannot be the sender's part of a Feedback-ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "feedback_id = \"{0}\" is not a Feedback-ID; write one to three fields of letters, digits, '.', '_' or '-' separated by colons, the last naming the sender, e.g. \"newsletter:efus\" (the issue's slug is put in front)"
)]
pub struct FeedbackIdError(pub String);

impl TryFrom<String> for FeedbackId {
    type Error = FeedbackIdError;
    fn try_from(s: String) -> Result<Self, FeedbackIdError> {
        let field = |f: &str| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        let fields = s.split(':').count();
        if (1..=3).contains(&fields) && s.split(':').all(field) {
            Ok(FeedbackId(s))
        } else {
            Err(FeedbackIdError(s))
        }
    }
}

impl FeedbackId {
    /// The header's value for the issue `slug`: `2020-06:newsletter:efus`.
    pub fn for_issue(&self, slug: &str) -> String {
        format!("{slug}:{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How each reader unsubscribes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    /// An https URL with `{token}` in it: the reader's address, sealed
    /// ([`crate::message::unsubscribe`]). Never `{email}`: the address stays out of the link.
    pub url: String,
    /// An address for List-Unsubscribe's mailto.
    pub mailto: lettre::Address,
    /// The environment variable holding the secret that seals each reader's token.
    pub secret_env: String,
}

/// `bulletin serve`: where it listens and where it keeps what readers asked. What the
/// settings must hold together (the path and the unsubscribe URL) is checked by
/// [`crate::serve::Settings`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    /// The address the server listens on, behind the TLS reverse proxy.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// The suppression store, relative to the workspace.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The path requests arrive at, with `{token}` as its last segment; by default the path
    /// of `unsubscribe.url` (a proxy that rewrites paths needs it).
    pub path: Option<String>,
    /// The environment variable holding the bearer token of the export
    /// (`GET /suppressions/export`), which senders elsewhere pull from; no export without it.
    pub export_token_env: Option<String>,
    /// `[serve.webhooks.<provider>]`: the providers' bounce and complaint webhooks, each
    /// provider's settings in its module.
    #[serde(default)]
    pub webhooks: crate::serve::webhooks::Config,
    /// `[serve.bounces]`: when soft bounces suppress.
    #[serde(default)]
    pub bounces: crate::serve::webhooks::Bounces,
    /// Requests per client on the links' paths ("600/min" by default), or "off".
    #[serde(default)]
    pub rate_limit: crate::serve::limit::RateLimit,
    /// Requests a client may make at once before the rate applies (by default the rate's
    /// count).
    pub rate_limit_burst: Option<u32>,
    /// The reverse proxies whose forwarding header names the client (loopback by default).
    #[serde(default = "crate::serve::limit::loopback")]
    pub trusted_proxies: Vec<crate::serve::limit::Net>,
    /// The header they write it in: "X-Forwarded-For" (the default) or "Forwarded".
    #[serde(default)]
    pub client_ip_header: crate::serve::limit::ClientIpHeader,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            listen: default_listen(),
            store: default_store(),
            path: None,
            export_token_env: None,
            webhooks: Default::default(),
            bounces: Default::default(),
            rate_limit: Default::default(),
            rate_limit_burst: None,
            trusted_proxies: crate::serve::limit::loopback(),
            client_ip_header: Default::default(),
        }
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8480))
}

fn default_store() -> PathBuf {
    Path::new(crate::workspace::STATE_DIR).join("suppressions.sqlite")
}

/// `[suppressions]`: the export of a `bulletin serve` run elsewhere (`[serve]
/// export_token_env` there), which `send` pulls before every send, and refuses to send
/// without when it cannot (fail closed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSuppressions {
    /// `https://news.example.org/suppressions/export`.
    #[serde(deserialize_with = "export_url")]
    pub remote: url::Url,
    /// The environment variable holding the export's bearer token.
    pub token_env: String,
}

fn export_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if u.scheme() == "https" || u.host_str().is_some_and(is_loopback) => Ok(u),
        Ok(_) => Err(serde::de::Error::custom(format!(
            "\"{s}\" must be an https URL (the token and readers' addresses travel over it), e.g. \"https://news.example.org/suppressions/export\""
        ))),
        Err(e) => Err(serde::de::Error::custom(format!(
            "\"{s}\" is not a URL ({e}); write it in full, e.g. \"https://news.example.org/suppressions/export\""
        ))),
    }
}

/// `[archive]`: where `bulletin publish` writes the web edition and where it is read. When
/// it is set, an issue without `web_url` or `images_url` gets its page on the site for both
/// ([`crate::edition`]), so "View in browser" and the images work with no hand-edited field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// The site's address, e.g. `https://example.org/newsletter/`; always ends with `/`.
    #[serde(deserialize_with = "base_url")]
    pub base_url: url::Url,
    /// The folder `publish` writes, relative to the workspace (default `site`).
    #[serde(default = "default_site")]
    pub folder: PathBuf,
}

impl Archive {
    /// An archive at `base_url` (made to end with `/`), written to the default folder.
    pub fn new(mut base_url: url::Url) -> Archive {
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Archive {
            base_url,
            folder: default_site(),
        }
    }

    /// The address of the issue `slug`'s page (its folder): `https://example.org/newsletter/2020-06/`.
    pub fn issue_url(&self, slug: &str) -> String {
        let segment = percent_encoding::utf8_percent_encode(slug, SLUG_SEGMENT);
        format!("{}{segment}/", self.base_url)
    }
}

/// What a slug keeps as it is in a URL path segment.
const SLUG_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn default_site() -> PathBuf {
    PathBuf::from("site")
}

fn base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.query().is_none() => {
            Ok(Archive::new(u).base_url)
        }
        Ok(_) => Err(serde::de::Error::custom(format!(
            "\"{s}\" is not a site address; write the https URL the site is read at, without ?query, e.g. \"https://example.org/newsletter/\""
        ))),
        Err(e) => Err(serde::de::Error::custom(format!(
            "\"{s}\" is not a URL ({e}); write it in full, e.g. \"https://example.org/newsletter/\""
        ))),
    }
}

/// The `[archive]` table of the workspace's `bulletin.toml`, if the file exists and has one;
/// read alone, so that `render`, `check` and `preview` work while the sending settings are
/// still being written.
pub fn archive(root: &Path) -> Result<Option<Archive>, ConfigError> {
    #[derive(Deserialize)]
    struct OnlyArchive {
        #[serde(default)]
        archive: Option<Archive>,
    }
    let path = root.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Read {
                path,
                reason: crate::diag::io_reason(&e),
            });
        }
    };
    // The other tables are not looked at: a mistake in them is `send`'s and `serve`'s to report.
    let only: OnlyArchive = toml::from_str(&text).map_err(|e| invalid(&path, &text, &e))?;
    Ok(only.archive)
}

fn invalid(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e
        .span()
        .map(|s| crate::diag::line_col(text, s.start))
        .unwrap_or((1, 1));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: e.message().to_string(),
    }
}

/// How messages leave: one transport with its settings. Each provider's settings, and what
/// they must hold, belong to the provider's module ([`crate::transport::api`]); this only
/// reads `transport = "…"` and hands the rest to the type it names.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum Profile {
    Smtp(Smtp),
    /// Brevo, transactional email API v3.
    Brevo(brevo::Settings),
    /// Mailjet, Send API v3.1.
    Mailjet(mailjet::Settings),
    /// SendGrid, v3 mail send.
    Sendgrid(sendgrid::Settings),
    /// Postmark, batch endpoint on a broadcast stream.
    Postmark(postmark::Settings),
    /// Mailgun, messages endpoint.
    Mailgun(mailgun::Settings),
    /// Amazon SES v2, raw MIME.
    Ses(ses::Settings),
    /// Resend, batch endpoint.
    Resend(resend::Settings),
}

impl Profile {
    /// The provider's name as written in `transport = "…"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Profile::Smtp(_) => "smtp",
            Profile::Brevo(_) => brevo::TRANSPORT,
            Profile::Mailjet(_) => mailjet::TRANSPORT,
            Profile::Sendgrid(_) => sendgrid::TRANSPORT,
            Profile::Postmark(_) => postmark::TRANSPORT,
            Profile::Mailgun(_) => mailgun::TRANSPORT,
            Profile::Ses(_) => ses::TRANSPORT,
            Profile::Resend(_) => resend::TRANSPORT,
        }
    }

    /// The Feedback-ID the profile's messages carry: its own (SMTP), or the sender's.
    pub fn feedback_id<'a>(&'a self, sender: &'a Sender) -> Option<&'a FeedbackId> {
        match self {
            Profile::Smtp(smtp) => smtp.feedback_id.as_ref(),
            _ => None,
        }
        .or(sender.feedback_id.as_ref())
    }

    /// Whether messages go with a VERP envelope sender (SMTP's `verp = true`).
    pub fn verp(&self) -> bool {
        matches!(self, Profile::Smtp(smtp) if smtp.verp)
    }

    /// DKIM signing by bulletin, where the profile has it.
    pub fn dkim(&self) -> Option<&Dkim> {
        match self {
            Profile::Smtp(smtp) => smtp.dkim.as_ref(),
            Profile::Ses(ses) => ses.dkim.as_ref(),
            _ => None,
        }
    }

    /// The settings every provider shares, for a provider profile.
    pub fn api(&self) -> Option<&Common> {
        Some(match self {
            Profile::Smtp(_) => return None,
            Profile::Brevo(s) => &s.common,
            Profile::Mailjet(s) => &s.common,
            Profile::Sendgrid(s) => &s.common,
            Profile::Postmark(s) => &s.common,
            Profile::Mailgun(s) => &s.common,
            Profile::Ses(s) => &s.common,
            Profile::Resend(s) => &s.common,
        })
    }

    /// Whether the settings make sense together, beyond what each field's type says: for a
    /// provider, what its module asks ([`crate::transport::api`]).
    fn validate(&self) -> Result<(), SettingsError> {
        match self {
            // SMTP's rules name more than one field; `load` checks them.
            Profile::Smtp(_) => Ok(()),
            Profile::Brevo(s) => s.validate(),
            Profile::Mailjet(s) => s.validate(),
            Profile::Sendgrid(s) => s.validate(),
            Profile::Postmark(s) => s.validate(),
            Profile::Mailgun(s) => s.validate(),
            Profile::Ses(s) => s.validate(),
            Profile::Resend(s) => s.validate(),
        }
    }
}

/// An SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: Option<String>,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// SMTP connections in parallel.
    #[serde(default = "default_pool")]
    pub pool: u32,
    /// The most messages the relay takes.
    pub rate: Option<Rate>,
    /// A CA certificate (PEM) to trust, for a private relay.
    pub ca_file: Option<PathBuf>,
    /// Messages per connection before it is renewed.
    #[serde(default = "default_per_connection")]
    pub messages_per_connection: u32,
    pub dkim: Option<Dkim>,
    /// Feedback-ID for this relay's messages, in place of `[sender]`'s.
    pub feedback_id: Option<FeedbackId>,
    /// VERP: each message's envelope sender is `<local>+<slug>.<tag>@<domain>` of the
    /// `[sender] from` address, so that `bulletin bounces` knows the reader and issue of a
    /// bounce without its Message-ID ([`crate::message::verp`]). Providers set their own
    /// return path: only SMTP profiles have it.
    #[serde(default)]
    pub verp: bool,
}

fn default_pool() -> u32 {
    4
}

fn default_per_connection() -> u32 {
    100
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on this machine.
    None,
}

fn mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let s = String::deserialize(d)?;
    Mailbox::from_str(&s).map_err(|_| {
        serde::de::Error::custom(format!(
            "\"{s}\" is not an address; write \"Name <name@example.org>\" or \"name@example.org\""
        ))
    })
}

fn optional_mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Mailbox>, D::Error> {
    mailbox(d).map(Some)
}

/// A problem with `bulletin.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Rule { path: PathBuf, message: String },
    /// A provider profile whose settings do not go together.
    #[error("{}: profiles.{name}: {source}", path.display())]
    Profile {
        path: PathBuf,
        name: String,
        #[source]
        source: SettingsError,
    },
}

/// Reads and checks `bulletin.toml`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        reason: crate::diag::io_reason(&e),
    })?;
    let config: Config = toml::from_str(&text).map_err(|e| invalid(path, &text, &e))?;
    let rule = |message: String| ConfigError::Rule {
        path: path.to_path_buf(),
        message,
    };
    if !config.unsubscribe.url.starts_with("https://")
        || !config.unsubscribe.url.contains("{token}")
    {
        return Err(rule(
            "unsubscribe.url must be an https URL with {token} in it, so that each reader's link is their own".into(),
        ));
    }
    // An error, not a warning: the reader's address in clear is readable by every server and
    // log the link passes through, and spam filters score it (issue 14). {token} now carries
    // the address, so the page has all it needs without it.
    if config.unsubscribe.url.contains("{email}") {
        return Err(rule(format!(
            "unsubscribe.url has {{email}} in it; the reader's address must not be in their link (anyone the link passes can read it, and spam filters score it). \
             {{token}} carries the address, sealed, and the unsubscribe page opens it with the same secret: write e.g. url = \"{}\"",
            suggested_url(&config.unsubscribe.url)
        )));
    }
    for (name, profile) in &config.profiles {
        profile.validate().map_err(|source| ConfigError::Profile {
            path: path.to_path_buf(),
            name: name.clone(),
            source,
        })?;
        let Profile::Smtp(smtp) = profile else {
            continue;
        };
        if smtp.username.is_some() != smtp.password_env.is_some() {
            return Err(rule(format!(
                "profiles.{name}: username and password_env go together (the password itself stays in the environment)"
            )));
        }
        if smtp.security == Security::None && smtp.username.is_some() && !is_loopback(&smtp.host) {
            return Err(rule(format!(
                "profiles.{name}: security = \"none\" would send the password unencrypted to {}; use starttls or tls (\"none\" is only for a relay on this machine)",
                smtp.host
            )));
        }
        if smtp.pool == 0 {
            return Err(rule(format!("profiles.{name}: pool must be at least 1")));
        }
    }
    Ok(config)
}

/// The URL without `{email}`: the same site and path, the token alone.
fn suggested_url(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or(url);
    let base = base.replace("{token}", "").replace("{email}", "");
    format!("{}/{{token}}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_archive_is_read_alone_and_its_address_ends_with_a_slash() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(archive(dir.path()).unwrap(), None, "no bulletin.toml");
        // The sending settings may be unfinished: render and preview still find the archive.
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[sender]\nfrom = \"not yet\"\n\n[archive]\nbase_url = \"https://example.org/news\"\n",
        )
        .unwrap();
        let found = archive(dir.path()).unwrap().unwrap();
        assert_eq!(found.base_url.as_str(), "https://example.org/news/");
        assert_eq!(found.folder, PathBuf::from("site"));
        assert_eq!(
            found.issue_url("2020-06"),
            "https://example.org/news/2020-06/"
        );
        assert_eq!(
            found.issue_url("été 2020"),
            "https://example.org/news/%C3%A9t%C3%A9%202020/"
        );
    }

    #[test]
    fn a_wrong_archive_address_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[archive]\nbase_url = \"example.org/news\"\n",
        )
        .unwrap();
        let e = archive(dir.path()).unwrap_err().to_string();
        assert!(e.contains(":2:"), "{e}");
        assert!(e.contains("https://example.org/newsletter/"), "{e}");
    }

    const GOOD: &str = r#"
[sender]
from = "Efus <newsletter@example.org>"
reply_to = "contact@example.org"
list_id = "Efus newsletter <newsletter.example.org>"

[unsubscribe]
url = "https://example.org/unsubscribe/{token}"
mailto = "unsubscribe@example.org"
secret_env = "BULLETIN_UNSUBSCRIBE_SECRET"

[profiles.default]
transport = "smtp"
host = "smtp.example.org"
port = 587
username = "newsletter@example.org"
password_env = "BULLETIN_SMTP_PASSWORD"
rate = "10/s"
"#;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn reads_a_workspace_config() {
        let c = load_text(GOOD).unwrap();
        assert_eq!(c.sender.from.email.to_string(), "newsletter@example.org");
        assert_eq!(c.sender.from.name.as_deref(), Some("Efus"));
        let Profile::Smtp(smtp) = &c.profiles["default"] else {
            panic!("an SMTP profile")
        };
        assert_eq!(smtp.security, Security::Starttls);
        assert_eq!(
            smtp.rate,
            Some(Rate {
                messages: 10,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(smtp.pool, 4);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = load_text(&GOOD.replace("rate = \"10/s\"", "rate = \"fast\"")).unwrap_err();
        let text = err.to_string();
        // Inside a profile, serde can only point at the profile table.
        assert!(
            text.contains("bulletin.toml:12:1: \"fast\" is not a rate"),
            "{text}"
        );
        let err = load_text(&GOOD.replace("Efus <newsletter@example.org>", "Efus newsletter"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"Efus newsletter\" is not an address"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_password_over_an_unencrypted_remote_connection() {
        let err =
            load_text(&GOOD.replace("port = 587", "port = 25\nsecurity = \"none\"")).unwrap_err();
        assert!(
            err.to_string()
                .contains("would send the password unencrypted"),
            "{err}"
        );
        let local = GOOD
            .replace("port = 587", "port = 2525\nsecurity = \"none\"")
            .replace("smtp.example.org", "127.0.0.1");
        assert!(load_text(&local).is_ok());
    }

    #[test]
    fn provider_profiles_say_what_they_miss_and_what_they_cannot_use() {
        let with = |profile: &str| load_text(&format!("{GOOD}\n[profiles.api]\n{profile}\n"));
        let c = with("transport = \"postmark\"\napi_key_env = \"POSTMARK_SERVER_TOKEN\"").unwrap();
        assert_eq!(c.profiles["api"].kind(), "postmark");
        assert_eq!(c.profiles["api"].api().unwrap().concurrency, 4);
        let err = with("transport = \"mailgun\"\napi_key_env = \"K\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("transport = \"mailgun\" needs domain"),
            "{err}"
        );
        let err = with("transport = \"ses\"\napi_key_env = \"K\"\nsecret_env = \"S\"").unwrap_err();
        assert!(err.to_string().contains("needs region"), "{err}");
        let err =
            with("transport = \"postmark\"\napi_key_env = \"K\"\nregion = \"eu\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("region means nothing to transport = \"postmark\""),
            "{err}"
        );
        let err = with(
            "transport = \"resend\"\napi_key_env = \"K\"\nendpoint = \"http://api.example.org\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unencrypted"), "{err}");
        assert!(
            with(
                "transport = \"resend\"\napi_key_env = \"K\"\nendpoint = \"http://127.0.0.1:8080\""
            )
            .is_ok()
        );
        let err = with("transport = \"sparkpost\"\napi_key_env = \"K\"").unwrap_err();
        assert!(err.to_string().contains("sparkpost"), "{err}");
    }

    #[test]
    fn each_provider_refuses_what_it_does_not_take_and_checks_its_own_rules() {
        let with = |profile: &str| load_text(&format!("{GOOD}\n[profiles.api]\n{profile}\n"));
        let refused = |profile: &str| with(profile).unwrap_err().to_string();
        let err = refused("transport = \"postmark\"\napi_key_env = \"K\"\ntitel = 1");
        assert!(
            err.ends_with(
                "bulletin.toml: profiles.api: titel means nothing to transport = \"postmark\"; remove it"
            ),
            "{err}"
        );
        let err = refused(
            "transport = \"resend\"\napi_key_env = \"K\"\n[profiles.api.dkim]\ndomain = \"d\"\nselector = \"s\"\nprivate_key_file = \"k\"",
        );
        assert!(
            err.contains("profiles.api: dkim means nothing to transport = \"resend\""),
            "{err}"
        );
        let err = refused(
            "transport = \"mailgun\"\napi_key_env = \"K\"\ndomain = \"mg.example.org\"\nregion = \"asia\"",
        );
        assert!(
            err.contains("region = \"asia\" is not a Mailgun region; write \"us\" or \"eu\""),
            "{err}"
        );
        let err = refused("transport = \"sendgrid\"\napi_key_env = \"K\"\nregion = \"us\"");
        assert!(err.contains("is not a SendGrid region"), "{err}");
        let err = refused("transport = \"mailjet\"\napi_key_env = \"K\"");
        assert!(
            err.contains(
                "profiles.api: transport = \"mailjet\" needs secret_env (e.g. secret_env = \"MJ_APIKEY_PRIVATE\")"
            ),
            "{err}"
        );
        let err = refused("transport = \"brevo\"\napi_key_env = \"K\"\nconcurrency = 0");
        assert!(
            err.contains("profiles.api: concurrency must be at least 1"),
            "{err}"
        );
        let err = refused("transport = \"brevo\"\napi_key_env = \"K\"\nbatch_size = 0");
        assert!(
            err.contains("profiles.api: batch_size must be at least 1"),
            "{err}"
        );
        // What serde checks still says where: the profile's table.
        let err = refused("transport = \"brevo\"\napi_key_env = \"K\"\nrate = \"fast\"");
        assert!(
            err.contains("bulletin.toml:20:1: \"fast\" is not a rate"),
            "{err}"
        );
        let err = refused("transport = \"brevo\"");
        assert!(err.contains("missing field `api_key_env`"), "{err}");
        // And a good one reads into the provider's own settings.
        let c = with(
            "transport = \"ses\"\napi_key_env = \"K\"\nsecret_env = \"S\"\nregion = \"eu-west-1\"\nrate = \"14/s\"\nconfiguration_set = \"news\"",
        )
        .unwrap();
        let Profile::Ses(ses) = &c.profiles["api"] else {
            panic!("an SES profile")
        };
        assert_eq!(ses.region().unwrap(), "eu-west-1");
        assert_eq!(ses.configuration_set.as_deref(), Some("news"));
        assert_eq!(ses.common.rate.map(|r| r.messages), Some(14));
        assert!(ses.common.unused.is_empty());
    }

    #[test]
    fn the_readers_address_stays_out_of_the_unsubscribe_link() {
        let old = GOOD.replace(
            "https://example.org/unsubscribe/{token}",
            "https://example.org/unsubscribe?email={email}&token={token}",
        );
        let err = load_text(&old).unwrap_err().to_string();
        assert!(
            err.contains("bulletin.toml: unsubscribe.url has {email} in it")
                && err.contains("{token} carries the address, sealed")
                && err.ends_with("url = \"https://example.org/unsubscribe/{token}\""),
            "{err}"
        );
        let no_token = GOOD.replace("/{token}", "/");
        let err = load_text(&no_token).unwrap_err().to_string();
        assert!(err.contains("with {token} in it"), "{err}");
    }

    #[test]
    fn feedback_id_from_the_sender_or_the_profile() {
        let c =
            load_text(&GOOD.replace("list_id =", "feedback_id = \"newsletter:efus\"\nlist_id ="))
                .unwrap();
        let id = c.feedback_id("default").unwrap();
        assert_eq!(id.for_issue("2020-06"), "2020-06:newsletter:efus");
        // A dry run without the profile still has the sender's.
        assert_eq!(c.feedback_id("none"), Some(id));
        // A relay's own wins.
        let c = load_text(&format!("{GOOD}feedback_id = \"relay.efus\"\n")).unwrap();
        assert_eq!(c.feedback_id("default").unwrap().as_str(), "relay.efus");
        assert_eq!(load_text(GOOD).unwrap().feedback_id("default"), None);
        for bad in ["", "a:b:c:d", "news letter", "a::b", "ü", "a:"] {
            let err = load_text(
                &GOOD.replace("list_id =", &format!("feedback_id = \"{bad}\"\nlist_id =")),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("is not a Feedback-ID"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        // PATH is set wherever tests run; its value must not come out.
        let s = Secret::from_env("PATH").unwrap();
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), std::env::var("PATH").unwrap());
        let missing = Secret::from_env("BULLETIN_TEST_SECRET_MISSING").unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("BULLETIN_TEST_SECRET_MISSING is not set")
        );
    }
}

#[cfg(test)]
mod sample {
    #[test]
    fn the_repository_sample_config_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(super::FILE_NAME);
        let config = super::load(&path).unwrap();
        assert!(config.profiles.contains_key("default"));
    }
}
