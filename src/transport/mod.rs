//! Transports: messages in, outcomes out. SMTP ([`smtp`]) and the providers' HTTP APIs
//! ([`api`]) deliver for real; the file transport ([`file`](mod@file)) writes `.eml` files for
//! `--dry-run` and tests. [`open`] chooses and makes the one a profile names.
//!
//! A transport takes a [`Batch`]: one message for SMTP, up to a provider's documented limit
//! for an API, each message in the [`Form`] the transport asked for (a message in another
//! form is a permanent failure, never an empty request). Whether a failure is worth retrying
//! is a property of the error ([`Failure::kind`]): the send loop decides what to do with it.
//!
//! Transports must not touch the send loop or the ledger (they import neither module) nor
//! compose messages: what they take once per issue arrives as plain
//! values ([`OpenOptions`]).

pub mod api;
pub mod file;
pub mod smtp;
pub mod stub;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::api::{brevo, mailgun, mailjet, postmark, resend, sendgrid, ses};
use crate::clock::Clock;
use crate::config::{Config, Profile};
use crate::message::{Form, Letterhead, Outgoing, Template};
use crate::values::{Secret, SecretError};

/// The server took the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The server's reply ("250 2.0.0 Ok: queued as 4F1A2", "accepted, request 8c1e…"), or
    /// where a file went.
    pub reply: String,
}

/// What kind of failure, for deciding what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Try again later: 4xx SMTP replies (421, 450, 451, 454…), HTTP 5xx, a connection that
    /// failed before the message went out.
    Transient,
    /// The message went out but its answer never came (a timeout, a connection dropped after
    /// the request or the message's final "." was sent): it may have been delivered. Worth
    /// trying again, but the reader may then get two copies, unless the provider takes an
    /// idempotency key ([`Transport::idempotent`]) or shows it accepted the first
    /// ([`Transport::look_up`]); the send loop records them as uncertain.
    Lost,
    /// Not delivered because another message of the same request was refused, and the whole
    /// request with it: nothing is wrong with this one, which goes again without the other.
    Bystander,
    /// Try again after this long: the provider said so (HTTP 429 with Retry-After).
    Throttled(Duration),
    /// This recipient will not get it: 5xx SMTP replies (550 no such user…), HTTP 4xx.
    Permanent,
    /// The server cannot be reached at all; other messages will fail the same way.
    Unreachable,
    /// The server refused our credentials: stop everything.
    Auth,
}

impl Kind {
    /// True when the same message may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Kind::Transient | Kind::Throttled(_) | Kind::Lost)
    }
}

/// The server did not take the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reply}")]
pub struct Failure {
    pub kind: Kind,
    /// The server's reply, or what went wrong on the way.
    pub reply: String,
}

/// Messages that go out in one delivery: one SMTP transaction, or one API request.
#[derive(Debug)]
pub struct Batch {
    /// The same for the same issue and recipients, across retries and runs: providers that
    /// take an idempotency key get this one, so a retried request is not delivered twice.
    pub key: String,
    pub messages: Vec<Outgoing>,
}

/// What a delivery of a batch came to: each message's outcome in the batch's order, or one
/// failure for the whole batch (nothing was delivered).
pub type BatchResult = Result<Vec<Result<Accepted, Failure>>, Failure>;

/// Something that delivers messages.
pub trait Transport: Send + Sync + 'static {
    /// Delivers one message.
    fn send(&self, message: &Outgoing) -> impl Future<Output = Result<Accepted, Failure>> + Send;

    /// Delivers a batch of at most [`Transport::batch_limit`] messages.
    fn send_batch(&self, batch: &Batch) -> impl Future<Output = BatchResult> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(batch.messages.len());
            for message in &batch.messages {
                outcomes.push(self.send(message).await);
            }
            Ok(outcomes)
        }
    }

    /// The most messages one delivery carries.
    fn batch_limit(&self) -> usize {
        1
    }

    /// What each message must carry: the MIME bytes (SMTP, SES), or its parts (JSON APIs).
    fn form(&self) -> Form {
        Form::Mime
    }

    /// Whether a batch sent again with the same [`Batch::key`] is never delivered twice: the
    /// provider takes an idempotency key (Brevo, Resend).
    fn idempotent(&self) -> bool {
        false
    }

    /// After a delivery of `batch` whose answer was lost ([`Kind::Lost`]), before sending it
    /// again: what the provider shows of it, message by message (`Some` for one it shows
    /// accepted). `None` for each where the provider cannot be asked, or does not show it.
    fn look_up(&self, batch: &Batch) -> impl Future<Output = Vec<Option<Accepted>>> + Send {
        let n = batch.messages.len();
        async move { vec![None; n] }
    }

    /// How to name it to a person: "SMTP smtp.example.org:587 (STARTTLS)".
    fn describe(&self) -> String;
}

/// How fast a transport may be driven: deliveries in flight at once, and the most the
/// server takes in a time (messages for SMTP, requests for an API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub concurrency: usize,
    pub rate: Option<(u32, Duration)>,
}

impl Pacing {
    /// One delivery at a time, as fast as it goes: writing files.
    pub const ONE_AT_A_TIME: Pacing = Pacing {
        concurrency: 1,
        rate: None,
    };
}

/// What [`open`] needs besides the profile.
pub struct OpenOptions {
    /// Send nothing: write `.eml` files (SMTP), or the requests a provider would get (API),
    /// into this folder.
    pub dry_run: Option<PathBuf>,
    /// The workspace: relative paths in a profile (a CA file) start here.
    pub root: PathBuf,
    /// The sender and the issue, for providers that take them once.
    pub letterhead: Letterhead,
    /// The issue as one template, for providers that fill it for many readers.
    pub template: Template,
    /// Where providers read the time (a request's signature).
    pub clock: Arc<dyn Clock>,
}

/// Why the transport a profile names cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("bulletin.toml has no profile \"{name}\"; name one of: {}", known.join(", "))]
    NoProfile { name: String, known: Vec<String> },
    /// The SMTP password is not in the environment.
    #[error(transparent)]
    Password(#[from] SecretError),
    #[error(transparent)]
    Smtp(#[from] smtp::SmtpError),
    #[error("profiles.{profile}: {source}")]
    Provider {
        profile: String,
        #[source]
        source: api::ProviderError,
    },
}

/// The transport the profile `name` of `config` says, ready to send: SMTP or a provider's
/// API, or for a dry run the file transport (SMTP, and a profile that does not exist) or the
/// provider's requests written to files.
pub fn open(
    config: &Config,
    name: &str,
    options: OpenOptions,
) -> Result<AnyTransport, TransportError> {
    let OpenOptions {
        dry_run,
        root,
        letterhead,
        template,
        clock,
    } = options;
    let Some(profile) = config.profiles.get(name) else {
        // A dry run needs no relay: it has always written .eml files, profile or not.
        return match dry_run {
            Some(dir) => Ok(AnyTransport::File(file::FileTransport { dir })),
            None => Err(TransportError::NoProfile {
                name: name.to_string(),
                known: config.profiles.keys().cloned().collect(),
            }),
        };
    };
    let context = api::Context {
        letterhead: &letterhead,
        template: &template,
        clock,
        dry_run: dry_run.is_some(),
    };
    let (provider, common) = match profile {
        Profile::Smtp(smtp) => {
            return Ok(match dry_run {
                Some(dir) => AnyTransport::File(file::FileTransport { dir }),
                None => {
                    let password = smtp.password_env.as_deref().map(Secret::from_env);
                    AnyTransport::Smtp(Box::new(smtp::SmtpTransport::new(
                        smtp,
                        password.transpose()?,
                        &root,
                    )?))
                }
            });
        }
        Profile::Brevo(s) => (boxed(brevo::Brevo::new(s, &context)), &s.common),
        Profile::Mailjet(s) => (boxed(mailjet::Mailjet::new(s, &context)), &s.common),
        Profile::Postmark(s) => (boxed(postmark::Postmark::new(s, &context)), &s.common),
        Profile::Mailgun(s) => (boxed(mailgun::Mailgun::new(s, &context)), &s.common),
        Profile::Resend(s) => (boxed(resend::Resend::new(s, &context)), &s.common),
        Profile::Sendgrid(s) => (boxed(sendgrid::SendGrid::new(s, &context)), &s.common),
        Profile::Ses(s) => (boxed(ses::Ses::new(s, &context)), &s.common),
    };
    let in_profile = |source| TransportError::Provider {
        profile: name.to_string(),
        source,
    };
    let provider = provider.map_err(in_profile)?;
    Ok(match dry_run {
        Some(dir) => AnyTransport::ApiDryRun(api::DryRun::new(provider, dir)),
        None => AnyTransport::Api(
            api::ApiTransport::new(provider, common.pacing(), common.timeout())
                .map_err(in_profile)?,
        ),
    })
}

fn boxed<P: api::Provider>(
    made: Result<P, api::ProviderError>,
) -> Result<Box<dyn api::Provider>, api::ProviderError> {
    Ok(Box::new(made?))
}

/// One of the transports, as [`open`] makes them; a [`Transport`] itself.
pub enum AnyTransport {
    /// Boxed: a pool and a relay are much bigger than the others.
    Smtp(Box<smtp::SmtpTransport>),
    Api(api::ApiTransport),
    ApiDryRun(api::DryRun),
    File(file::FileTransport),
}

impl AnyTransport {
    /// How fast the send loop may drive it: the profile's pool or concurrency and rate; one
    /// at a time for a dry run.
    pub fn pacing(&self) -> Pacing {
        match self {
            AnyTransport::Smtp(t) => t.pacing(),
            AnyTransport::Api(t) => t.pacing(),
            AnyTransport::ApiDryRun(_) | AnyTransport::File(_) => Pacing::ONE_AT_A_TIME,
        }
    }
}

impl Transport for AnyTransport {
    async fn send(&self, message: &Outgoing) -> Result<Accepted, Failure> {
        match self {
            AnyTransport::Smtp(t) => t.send(message).await,
            AnyTransport::Api(t) => t.send(message).await,
            AnyTransport::ApiDryRun(t) => t.send(message).await,
            AnyTransport::File(t) => t.send(message).await,
        }
    }

    async fn send_batch(&self, batch: &Batch) -> BatchResult {
        match self {
            AnyTransport::Smtp(t) => t.send_batch(batch).await,
            AnyTransport::Api(t) => t.send_batch(batch).await,
            AnyTransport::ApiDryRun(t) => t.send_batch(batch).await,
            AnyTransport::File(t) => t.send_batch(batch).await,
        }
    }

    fn batch_limit(&self) -> usize {
        match self {
            AnyTransport::Smtp(t) => t.batch_limit(),
            AnyTransport::Api(t) => t.batch_limit(),
            AnyTransport::ApiDryRun(t) => t.batch_limit(),
            AnyTransport::File(t) => t.batch_limit(),
        }
    }

    fn form(&self) -> Form {
        match self {
            AnyTransport::Smtp(t) => t.form(),
            AnyTransport::Api(t) => t.form(),
            AnyTransport::ApiDryRun(t) => t.form(),
            AnyTransport::File(t) => t.form(),
        }
    }

    fn idempotent(&self) -> bool {
        match self {
            AnyTransport::Smtp(t) => t.idempotent(),
            AnyTransport::Api(t) => t.idempotent(),
            AnyTransport::ApiDryRun(t) => t.idempotent(),
            AnyTransport::File(t) => t.idempotent(),
        }
    }

    async fn look_up(&self, batch: &Batch) -> Vec<Option<Accepted>> {
        match self {
            AnyTransport::Api(t) => t.look_up(batch).await,
            AnyTransport::Smtp(_) | AnyTransport::ApiDryRun(_) | AnyTransport::File(_) => {
                vec![None; batch.messages.len()]
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            AnyTransport::Smtp(t) => t.describe(),
            AnyTransport::Api(t) => t.describe(),
            AnyTransport::ApiDryRun(t) => t.describe(),
            AnyTransport::File(t) => t.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::merge::{FieldTable, Prepared};

    /// The sample's settings with `profiles` after them.
    fn config(profiles: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bulletin.toml");
        let text = std::fs::read_to_string(sample).unwrap() + "\n" + profiles;
        let path = dir.path().join("bulletin.toml");
        std::fs::write(&path, text).unwrap();
        let config = crate::config::load(&path).unwrap();
        (dir, config)
    }

    fn options(dry_run: Option<PathBuf>, root: &std::path::Path) -> OpenOptions {
        let empty = || Prepared::text("", &FieldTable::default());
        OpenOptions {
            dry_run,
            root: root.to_path_buf(),
            letterhead: Letterhead {
                from: "news@example.org".parse().unwrap(),
                reply_to: None,
                tag: "2020-06".into(),
            },
            template: Template::new(empty(), empty(), empty()),
            clock: Arc::new(SystemClock),
        }
    }

    const PROFILES: &str = "[profiles.api]\ntransport = \"postmark\"\napi_key_env = \"BULLETIN_TEST_OPEN_KEY_NOT_SET\"\nconcurrency = 3\nrate = \"20/s\"\n\n\
        [profiles.relay]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nsecurity = \"none\"\npool = 2\n\n\
        [profiles.locked]\ntransport = \"smtp\"\nhost = \"smtp.example.org\"\nusername = \"news\"\npassword_env = \"BULLETIN_TEST_OPEN_PASSWORD_NOT_SET\"\n";

    #[test]
    fn opens_the_transport_a_profile_names() {
        let (dir, config) = config(PROFILES);
        let out = Some(dir.path().join("out"));
        let smtp = open(&config, "relay", options(None, dir.path())).unwrap();
        assert!(matches!(smtp, AnyTransport::Smtp(_)));
        assert_eq!(
            smtp.pacing(),
            Pacing {
                concurrency: 2,
                rate: None
            }
        );
        assert_eq!(smtp.describe(), "SMTP 127.0.0.1:25 (no encryption)");
        assert_eq!((smtp.form(), smtp.batch_limit()), (Form::Mime, 1));
        // A dry run reads no secret, and goes one request at a time.
        let dry = open(&config, "api", options(out.clone(), dir.path())).unwrap();
        assert!(matches!(dry, AnyTransport::ApiDryRun(_)));
        assert_eq!(dry.pacing(), Pacing::ONE_AT_A_TIME);
        assert_eq!((dry.form(), dry.batch_limit()), (Form::Values, 500));
        // Sending for real, as fast as the profile says.
        assert_eq!(
            config.profiles["api"].api().unwrap().pacing(),
            Pacing {
                concurrency: 3,
                rate: Some((20, Duration::from_secs(1)))
            }
        );
        let eml = open(&config, "locked", options(out.clone(), dir.path())).unwrap();
        assert!(
            matches!(eml, AnyTransport::File(_)),
            "an SMTP dry run writes .eml files"
        );
        let nowhere = open(&config, "nowhere", options(out, dir.path())).unwrap();
        assert!(matches!(nowhere, AnyTransport::File(_)));
    }

    #[test]
    fn says_which_profile_and_variable_are_missing() {
        let (dir, config) = config(PROFILES);
        let Err(err) = open(&config, "nowhere", options(None, dir.path())) else {
            panic!("no such profile")
        };
        assert_eq!(
            err.to_string(),
            "bulletin.toml has no profile \"nowhere\"; name one of: api, default, locked, relay"
        );
        let Err(err) = open(&config, "api", options(None, dir.path())) else {
            panic!("no key")
        };
        assert!(
            matches!(&err, TransportError::Provider { profile, .. } if profile == "api"),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(
                "profiles.api: the environment variable BULLETIN_TEST_OPEN_KEY_NOT_SET is not set"
            ),
            "{err}"
        );
        // The SMTP password is named without a profile, as it always was.
        let Err(err) = open(&config, "locked", options(None, dir.path())) else {
            panic!("no password")
        };
        assert!(matches!(err, TransportError::Password(_)), "{err:?}");
        assert!(
            err.to_string().starts_with(
                "the environment variable BULLETIN_TEST_OPEN_PASSWORD_NOT_SET is not set"
            ),
            "{err}"
        );
    }
}
