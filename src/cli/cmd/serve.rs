//! `bulletin serve`: the unsubscribe pages and one-click unsubscribes, recorded in the
//! workspace's suppression store; `--check` checks the settings and exits.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::cli::{Error, note, say};
use crate::config;
use crate::serve::{self, Options, Settings};
use crate::suppressions::Store;

/// Answer readers' unsubscribe links (run it behind your HTTPS reverse proxy).
///
/// A GET on a link shows a page with one button; a POST unsubscribes at once (RFC 8058
/// one-click, as Gmail and Yahoo require). Every unsubscribe and resubscribe is kept in the
/// suppression store ([serve] store, .bulletin/suppressions.sqlite by default), which
/// `bulletin send` honours. Settings: [serve] listen, store and path in bulletin.toml; the
/// secret of [unsubscribe] secret_env must be set.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin serve --check\n  bulletin serve\n  bulletin serve --listen 127.0.0.1:9000"
)]
pub struct Args {
    /// Check the settings and the secret, print them, and exit (0 fine, 1 not).
    #[arg(long)]
    pub check: bool,
    /// Listen here in place of [serve] listen (port 0: any free port).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub listen: Option<SocketAddr>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let config_path = root.join(config::FILE_NAME);
    let config = config::load(&config_path)?;
    let settings = Settings::from_config(&config, &config_path, &root, args.listen)?;
    if args.check {
        return check(&settings);
    }
    let opts = Options {
        settings,
        log: Arc::new(|line: &str| {
            note(&format!(
                "{} {line}",
                crate::clock::now().format("%Y-%m-%dT%H:%M:%SZ")
            ))
        }),
    };
    crate::cli::runtime()?.block_on(serve::serve(
        opts,
        |addr| note(&format!("bulletin serve: listening on http://{addr}")),
        stop(),
    ))?;
    note("bulletin serve: stopped");
    Ok(())
}

/// What `--check` prints: the settings as they will be used.
fn check(settings: &Settings) -> Result<(), Error> {
    let store = if settings.store.is_file() {
        let events = Store::open(&settings.store)?.events()?;
        format!("{} ({events} events)", settings.store.display())
    } else {
        format!(
            "{} (created on the first request)",
            settings.store.display()
        )
    };
    let export = match settings.export_token {
        Some(_) => "GET /suppressions/export, token set",
        None => "off (set [serve] export_token_env to let senders elsewhere pull suppressions)",
    };
    say(&format!(
        "listen:  {}\npath:    {} (and {}/resubscribe)\nstore:   {store}\nsecret:  set\nexport:  {export}\nok\n",
        settings.listen, settings.path, settings.path
    ));
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (systemd's stop): requests in progress are answered first.
async fn stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
