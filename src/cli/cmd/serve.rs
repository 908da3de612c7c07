//! `bulletin serve`: the unsubscribe pages and one-click unsubscribes, recorded in the
//! workspace's suppression store, and the web edition beside them; `--check` checks the
//! settings, says what the site folder holds, and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Error, note, say};
use crate::config;
use crate::serve::{self, Folder, Found, Options, Settings, Site};
use crate::suppressions::Store;

/// Answer readers' unsubscribe links and providers' webhooks, and serve the web edition (run
/// it behind your HTTPS reverse proxy).
///
/// A GET on a link shows a page with one button; a POST unsubscribes at once (RFC 8058
/// one-click, as Gmail and Yahoo require). The webhooks of [serve.webhooks.<provider>] record
/// the bounces, complaints and unsubscribes providers report. Every event is kept in the
/// suppression store ([serve] store, .bulletin/suppressions.sqlite by default), which
/// `bulletin send` honours. Settings: [serve] listen, store and path, rate_limit,
/// rate_limit_burst, trusted_proxies and client_ip_header, [serve.webhooks.…] and
/// [serve.bounces] in bulletin.toml; the secret of [unsubscribe] secret_env must be set, and
/// each webhook's. The pages are in the language of the issue each link came in
/// (issues/<slug>.json), in its layout's colours and with its logo.
///
/// With [archive] in bulletin.toml, it also serves the folder `bulletin publish` writes
/// ([archive] folder, site/ by default) under the path of [archive] base_url, e.g.
/// /newsletter/ for https://example.org/newsletter/, with content types and caching headers
/// for pages, the feed, calendars and images. The links keep priority.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin serve --check\n  bulletin serve\n  bulletin serve --listen 127.0.0.1:9000\n  bulletin serve --site public/"
)]
pub struct Args {
    /// Check the settings and the secret, say what the site folder holds, and exit (0 fine,
    /// 1 not).
    #[arg(long)]
    pub check: bool,
    /// Listen here in place of [serve] listen (port 0: any free port).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub listen: Option<SocketAddr>,
    /// Serve the web edition from DIR (relative to the current folder) in place of [archive]
    /// folder: under the path of [archive] base_url, or at / without [archive]. Dotfiles and
    /// the .bulletin/ manifest are never served.
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let here = std::env::current_dir().map_err(Error::CurrentDir)?;
    let root = crate::workspace::root(&here)?;
    let config_path = root.join(config::FILE_NAME);
    let config = config::load(&config_path)?;
    let site = args.site.map(|dir| Folder::new(here.join(&dir), &dir));
    let settings = Settings::from_config(&config, &config_path, &root, args.listen, site)?;
    if args.check {
        return check(&settings);
    }
    let site = settings.site.clone();
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
        |addr| {
            note(&format!("bulletin serve: listening on http://{addr}"));
            if let Some(site) = &site {
                note(&format!("bulletin serve: {}", site_note(site)));
            }
        },
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
    let site = match &settings.site {
        Some(site) => site_state(site),
        None => "none (set [archive] base_url in bulletin.toml, or give --site DIR)".to_string(),
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
        "listen:  {}\npath:    {} (and {}/resubscribe)\nstore:   {store}\nsite:    {site}\nsecret:  set\nexport:  {export}\n\
         limit:   {}\n{hooks}\
         bounces: a soft bounce suppresses at the {} within {} days\nok\n",
        settings.listen,
        settings.path,
        settings.path,
        settings.limit.describe(),
        ordinal(rule.limit),
        rule.window.num_days()
    ));
    Ok(())
}

/// `--check`'s line on the site: its folder, its path, what the folder holds.
fn site_state(site: &Site) -> String {
    let state = match site.look() {
        Found::Missing => "not there yet: run bulletin publish; 404 until then".to_string(),
        Found::NotAFolder => "not a folder".to_string(),
        Found::Folder { files, index: true } => format!("{files} files"),
        Found::Folder {
            files,
            index: false,
        } => format!("{files} files, no index.html: run bulletin publish"),
    };
    format!("{} at {} ({state})", site.folder.shown, site.base)
}

/// The line at start: where the site is served from, or that there is none yet (said once;
/// the site is served as soon as `publish` writes it, with no restart).
fn site_note(site: &Site) -> String {
    let (shown, base) = (&site.folder.shown, &site.base);
    if !site.exists() {
        format!("no site in {shown} yet: run bulletin publish (404 at {base} until then)")
    } else if !site.folder.path.join("index.html").is_file() {
        format!("serving the site in {shown} at {base} (no index.html yet: run bulletin publish)")
    } else {
        format!("serving the site in {shown} at {base}")
    }
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
