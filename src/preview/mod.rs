//! `bulletin preview`: a local web server that shows an issue as an inbox would — subject and
//! preheader, the HTML at desktop and phone widths, the plain text — and follows the files as
//! they are saved.
//!
//! Renders are kept in memory (`site`); a new render replaces the shown one only when it
//! succeeds, and the page is told after the new render is in place (`server`'s event
//! stream). A failed render is shown over the last good one. The watcher (`watch`) renders
//! again when an issue, body file, image or layout file changes. The server answers only to
//! the host names it knows, and beyond loopback serves a subscriber list's readers only with
//! the key it was started with (`server::Guard`). This stage renders through
//! [`crate::edition`], as every command does; it writes no file and prints nothing (the
//! command reports), and names no command-line flag in its errors.

mod server;
mod site;
mod watch;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

pub use server::contained;
pub use site::Outcome;
pub use watch::{WatchError, is_scratch_file};

use site::Site;

/// The port tried first.
pub const DEFAULT_PORT: u16 = 4510;
/// How many ports after the asked one are tried when it is taken.
const PORT_TRIES: u16 = 20;

/// What to preview and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The issue to show; without one, the page lists the issues in `issues_dir`.
    pub issue: Option<PathBuf>,
    /// Where issue files are listed from.
    pub issues_dir: PathBuf,
    /// A layout folder that overrides the issues' own choice.
    pub layout: Option<PathBuf>,
    /// The workspace's web edition: issues without `web_url` link to their page there.
    pub archive: Option<crate::config::Archive>,
    /// The address to listen on: loopback unless the user asks otherwise.
    pub bind: IpAddr,
    /// The port tried first.
    pub port: u16,
    /// Poll the files instead of relying on the system's change notifications.
    pub poll: bool,
    /// A subscriber list: the page can show the issue as one of its readers would see it.
    pub list: Option<PathBuf>,
    /// Host names to answer to besides loopback's and this machine's (a name the machine has
    /// on the network, or in a hosts file).
    pub hosts: Vec<String>,
}

/// What can stop a preview from starting.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no free port on {bind} from {first} to {last}")]
    NoPort { bind: IpAddr, first: u16, last: u16 },
    #[error("cannot listen on {addr}: {}", crate::diag::io_reason(source))]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("cannot start the preview server: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the issue file {} does not exist", .0.display())]
    NoIssue(PathBuf),
    #[error("cannot make the preview's key: {0}")]
    Key(String),
}

/// A preview whose port is open, ready to serve.
pub struct Running {
    listener: TcpListener,
    site: Arc<Site>,
    poll: bool,
    guard: server::Guard,
    /// The address to give: on loopback, `http://127.0.0.1:PORT/…`; beyond loopback, the
    /// machine's address on the network, with the key that reader data needs.
    pub url: String,
    /// Beyond loopback, the same pages at a loopback address (for the browser on this
    /// machine), with the key; `None` on loopback.
    pub local_url: Option<String>,
    /// The port that was asked for, when it was taken and another was used.
    pub asked_port_taken: Option<u16>,
}

impl Running {
    /// True when other machines can reach the preview.
    pub fn on_network(&self) -> bool {
        self.local_url.is_some()
    }
}

/// Opens the port (the asked one, or the next free one) and renders nothing yet.
pub fn start(opts: Options) -> Result<Running, PreviewError> {
    if let Some(issue) = &opts.issue
        && !issue.is_file()
    {
        return Err(PreviewError::NoIssue(issue.clone()));
    }
    let (listener, port) = bind_first_free(opts.bind, opts.port)?;
    let on_network = !opts.bind.is_loopback();
    let key = if on_network { Some(new_key()?) } else { None };
    let guard = server::Guard::new(opts.bind, &opts.hosts, key.clone());
    let site = Arc::new(
        Site::new(opts.issues_dir, opts.issue, opts.layout, opts.list).with_archive(opts.archive),
    );
    let path = site
        .single_slug()
        .map(|s| format!("issue/{s}/"))
        .unwrap_or_default();
    let query = key.map(|k| format!("?key={k}")).unwrap_or_default();
    let at = |host: &str| format!("http://{host}:{port}/{path}{query}");
    let (url, local_url) = if on_network {
        (
            at(&network_host(opts.bind)),
            Some(at(&loopback_host(opts.bind))),
        )
    } else {
        (at(&url_host(opts.bind)), None)
    };
    Ok(Running {
        listener,
        site,
        poll: opts.poll,
        guard,
        url,
        local_url,
        asked_port_taken: (port != opts.port).then_some(opts.port),
    })
}

/// A key that cannot be guessed: 128 random bits, as 32 hexadecimal digits.
fn new_key() -> Result<String, PreviewError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| PreviewError::Key(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An address as written in a URL: `[…]` around IPv6.
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// The loopback address of the family the preview listens on.
fn loopback_host(bind: IpAddr) -> String {
    match bind {
        IpAddr::V6(_) => "[::1]".into(),
        IpAddr::V4(_) => "127.0.0.1".into(),
    }
}

/// Where other machines reach the preview: the address it listens on; for "every address"
/// (`0.0.0.0`, `::`), the one this machine's traffic leaves from, else its name.
fn network_host(bind: IpAddr) -> String {
    if !bind.is_unspecified() {
        return url_host(bind);
    }
    // Connecting a UDP socket sends nothing: it only asks the system which address its route
    // to a (documentation-only) address would leave from.
    let probe = match bind {
        IpAddr::V4(_) => ("0.0.0.0:0", "192.0.2.1:9"),
        IpAddr::V6(_) => ("[::]:0", "[2001:db8::1]:9"),
    };
    let outgoing = std::net::UdpSocket::bind(probe.0)
        .and_then(|s| s.connect(probe.1).map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback());
    match outgoing {
        Some(ip) => url_host(ip),
        None => hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| loopback_host(bind)),
    }
}

/// The asked port if it is free, else the next free one.
fn bind_first_free(bind: IpAddr, first: u16) -> Result<(TcpListener, u16), PreviewError> {
    let last = first.saturating_add(PORT_TRIES);
    for port in first..=last {
        let addr = SocketAddr::new(bind, port);
        match TcpListener::bind(addr) {
            Ok(l) => {
                let port = l.local_addr().map(|a| a.port()).unwrap_or(port);
                return Ok((l, port));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(source) => return Err(PreviewError::Listen { addr, source }),
        }
    }
    Err(PreviewError::NoPort { bind, first, last })
}

impl Running {
    /// Serves until Ctrl-C. Each render's outcome (the first, and each after a change) is
    /// passed to `report`.
    ///
    /// Ctrl-C is heard on a thread of its own, and stops the preview at once: the server's
    /// threads are left to end with the process rather than waited for (issue 13: a render in
    /// progress held Ctrl-C up for 1.5 s and more). The preview writes nothing, so nothing is
    /// left half-done; open event streams are simply closed.
    pub fn run(self, report: impl Fn(Outcome) + Send + Sync + 'static) -> Result<(), PreviewError> {
        let (stop_tx, stop) = mpsc::channel::<Stop>();
        listen_for_ctrl_c(stop_tx.clone())?;
        self.site.report_to(Arc::new(report));
        if let Some(slug) = self.site.single_slug() {
            // Render now, so that problems show at once and the first page load is instant.
            self.site.state(&slug);
        }
        watch::start(Arc::clone(&self.site), self.poll)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(PreviewError::Runtime)?;
        self.listener
            .set_nonblocking(true)
            .map_err(PreviewError::Runtime)?;
        let app = server::routes(self.site, self.guard);
        let std_listener = self.listener;
        runtime.spawn(async move {
            let served = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(listener) => axum::serve(listener, app)
                    .await
                    .map_err(PreviewError::Runtime),
                Err(e) => Err(PreviewError::Runtime(e)),
            };
            let _ = stop_tx.send(Stop::Served(served));
        });
        let result = match stop.recv() {
            Ok(Stop::Served(served)) => served,
            Ok(Stop::CtrlC) | Err(_) => Ok(()),
        };
        runtime.shutdown_background();
        result
    }
}

/// Why the preview stops.
enum Stop {
    CtrlC,
    /// The server ended by itself, which only an error makes it do.
    Served(Result<(), PreviewError>),
}

/// Waits for Ctrl-C on a thread (and a small runtime) of its own, which nothing else keeps
/// busy, and says so on `stop`.
fn listen_for_ctrl_c(stop: mpsc::Sender<Stop>) -> Result<(), PreviewError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PreviewError::Runtime)?;
    std::thread::Builder::new()
        .name("bulletin-ctrl-c".into())
        .spawn(move || {
            if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
                let _ = stop.send(Stop::CtrlC);
            }
        })
        .map_err(PreviewError::Runtime)?;
    Ok(())
}
