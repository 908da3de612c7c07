//! From a checked edition and the workspace's settings to what a send works with: the
//! [`Composer`] (sender, List-Id, the reader's unsubscribe link signed with the secret from
//! the environment, DKIM) and the transport the profile names, with its pacing.
//!
//! It reads secrets and the DKIM key, and opens the transport (an SMTP pool starts on the
//! tokio runtime it is called on); it sends nothing and touches no ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Tools;
use crate::clock::Clock;
use crate::config::{Config, Profile};
use crate::message::{self, Composer, DkimError, Unsubscribe};
use crate::render::Rendered;
use crate::transport::{self, AnyTransport, OpenOptions, Pacing, TransportError};
use crate::values::{Secret, SecretError};

/// How to set a send up.
pub struct Setup<'a> {
    /// The workspace's `bulletin.toml`.
    pub config: &'a Config,
    /// The profile of `config` that says how messages leave.
    pub profile: &'a str,
    /// The workspace folder: relative paths in the settings (a DKIM key) start here.
    pub root: &'a Path,
    /// Write the messages or requests into this folder instead of sending them.
    pub dry_run: Option<PathBuf>,
    /// A test send: "\[TEST\]" in the subject, its own Message-IDs.
    pub test: bool,
    pub clock: Arc<dyn Clock>,
}

/// Why a send cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Dkim(#[from] DkimError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The composer and transport for the issue `slug`, rendered once, and how fast the
/// transport may be driven. Call it on the tokio runtime the send will run on.
pub fn tools(
    setup: &Setup,
    slug: &str,
    rendered: Rendered,
) -> Result<(Tools<AnyTransport>, Pacing), SetupError> {
    let composer = composer(setup, slug, rendered)?;
    let transport = transport::open(
        setup.config,
        setup.profile,
        OpenOptions {
            dry_run: setup.dry_run.clone(),
            root: setup.root.to_path_buf(),
            letterhead: composer.letterhead(),
            template: composer.template(),
            clock: Arc::clone(&setup.clock),
        },
    )?;
    let pacing = transport.pacing();
    let tools = Tools {
        composer: Arc::new(composer),
        transport: Arc::new(transport),
        clock: Arc::clone(&setup.clock),
    };
    Ok((tools, pacing))
}

fn composer(setup: &Setup, slug: &str, rendered: Rendered) -> Result<Composer, SetupError> {
    let config = setup.config;
    let secret = Secret::from_env(&config.unsubscribe.secret_env)?;
    let dkim = match config.dkim(setup.profile) {
        Some(dkim) => Some(message::load_dkim(dkim, setup.root)?),
        None => None,
    };
    Ok(Composer {
        rendered,
        issue: slug.to_string(),
        from: config.sender.from.clone(),
        reply_to: config.sender.reply_to.clone(),
        list_id: config.sender.list_id.clone(),
        verp: config
            .profiles
            .get(setup.profile)
            .is_some_and(Profile::verp)
            .then(|| message::verp::Key::new(&secret)),
        unsubscribe: Unsubscribe::new(
            config.unsubscribe.url.clone(),
            config.unsubscribe.mailto.clone(),
            secret,
        ),
        test: setup.test,
        dkim,
        feedback_id: config.feedback_id(setup.profile).cloned(),
        per_issue: Default::default(),
    })
}
