//! `bulletin serve`: the unsubscribe pages and one-click unsubscribes, recorded in the
//! workspace's suppression store; `--check` checks the settings and exits.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::cli::{Error, note, say};
use crate::config;
use crate::serve::{self, Options, Settings};
use crate::suppressions::Store;

/// Answer readers' unsubscribe links and providers' webhooks (run it behind your HTTPS reverse proxy).
///
/// A GET on a link shows a page with one button; a POST unsubscribes at once (RFC 8058
/// one-click, as Gmail and Yahoo require). The webhooks of [serve.webhooks.<provider>] record
/// the bounces, complaints and unsubscribes providers report. Every event is kept in the
/// suppression store ([serve] store, .bulletin/suppressions.sqlite by default), which
/// `bulletin send` honours. Settings: [serve] listen, store and path, [serve.webhooks.…] and
/// [serve.bounces] in bulletin.toml; the secret of [unsubscribe] secret_env must be set, and
/// each webhook's.
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
    let hooks = settings.webhooks.describe();
    let hooks = if hooks.is_empty() {
        "webhooks: none\n".to_string()
    } else {
        let lines: String = hooks.iter().map(|h| format!("  {h}\n")).collect();
        format!("webhooks:\n{lines}")
    };
    let rule = settings.webhooks.rule;
    say(&format!(
        "listen:  {}\npath:    {} (and {}/resubscribe)\nstore:   {store}\nsecret:  set\n{hooks}\
         bounces: a soft bounce suppresses at the {} within {} days\nok\n",
        settings.listen,
        settings.path,
        settings.path,
        ordinal(rule.limit),
        rule.window.num_days()
    ));
    Ok(())
}

/// 1st, 2nd, 3rd, 4th…
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
