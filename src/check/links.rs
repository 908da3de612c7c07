//! Do the email's links and remote images answer? Each URL is asked once, several at a time
//! but only a few per host (a small web server should not take a newsletter check for an
//! attack), with a timeout; HEAD first, GET where a server refuses HEAD.
//!
//! The only part of `check` that touches the network; it never decides whether an issue may
//! be sent (a link that does not answer is an error finding like any other).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::{Finding, IMAGE_BYTES, path_of};
use crate::issue::{LoadedIssue, Problem};

/// How links are checked.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// How long one request may take.
    pub timeout: Duration,
    /// Requests at the same time, in all.
    pub concurrency: usize,
    /// Requests at the same time to one host.
    pub per_host: usize,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            timeout: Duration::from_secs(10),
            concurrency: 16,
            per_host: 2,
        }
    }
}

/// A URL to check, and where the issue has it.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub json_path: String,
    pub image: bool,
}

/// Every distinct http(s) link and remote image of the email (merge fields left empty, so
/// per-recipient links such as the unsubscribe link are not among them).
pub fn targets(loaded: &LoadedIssue, html: &str) -> Vec<Target> {
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for (attr, image) in [("href=\"", false), ("src=\"", true)] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let Some(end) = rest.find('"') else { continue };
            let url = super::html::unescape(&rest[..end]);
            if url.starts_with("http://") || url.starts_with("https://") {
                *found.entry(url).or_insert(image) &= image;
            }
        }
    }
    found
        .into_iter()
        .map(|(url, image)| {
            let mut json_path = path_of(loaded, &url);
            if json_path.is_empty() && image {
                // An image made absolute with `images_url`: the issue has its file name.
                let name = url.rsplit('/').next().unwrap_or(&url);
                json_path = path_of(loaded, name);
            }
            Target {
                json_path,
                url,
                image,
            }
        })
        .collect()
}

/// What stops links from being checked at all (a link that fails is a finding, not this).
#[derive(Debug, thiserror::Error)]
pub enum LinkCheckError {
    #[error("cannot start the link checker: {0}")]
    Runtime(#[source] std::io::Error),
}

/// [`check`] on a runtime of its own, for callers that are not async.
pub fn check_blocking(
    loaded: &LoadedIssue,
    theme_file: &Path,
    targets: Vec<Target>,
    opts: &LinkOptions,
    on_done: impl Fn() + Send + Sync + 'static,
) -> Result<Vec<Finding>, LinkCheckError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LinkCheckError::Runtime)?;
    Ok(runtime.block_on(check(loaded, theme_file, targets, opts, on_done)))
}

/// Checks every target; `on_done` is called after each one (for a progress bar). A link that
/// is not in the issue came from the layout: its findings name `theme_file`.
pub async fn check(
    loaded: &LoadedIssue,
    theme_file: &Path,
    targets: Vec<Target>,
    opts: &LinkOptions,
    on_done: impl Fn() + Send + Sync + 'static,
) -> Vec<Finding> {
    let client = match reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .user_agent(concat!(
            "bulletin/",
            env!("CARGO_PKG_VERSION"),
            " (link check)"
        ))
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::error(Problem {
                file: loaded.path.clone(),
                position: None,
                json_path: String::new(),
                message: format!("cannot check links: {e}"),
            })];
        }
    };
    let all = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let on_done = Arc::new(on_done);
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let host = url::Url::parse(&target.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let per_host = Arc::clone(
            hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(opts.per_host.max(1)))),
        );
        let (all, client, on_done) = (Arc::clone(&all), client.clone(), Arc::clone(&on_done));
        let timeout = opts.timeout;
        tasks.spawn(async move {
            let _host = per_host.acquire_owned().await;
            let _slot = all.acquire_owned().await;
            let verdict = probe(&client, &target, timeout).await;
            on_done();
            (target, verdict)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by(|a, b| a.0.url.cmp(&b.0.url));
    results
        .into_iter()
        .filter_map(|(target, verdict)| {
            let (severity_is_error, message) = verdict?;
            let problem = if target.json_path.is_empty() {
                Problem {
                    file: theme_file.to_path_buf(),
                    position: None,
                    json_path: String::new(),
                    message,
                }
            } else {
                loaded.problem(&target.json_path, message)
            };
            Some(if severity_is_error {
                Finding::error(problem)
            } else {
                Finding::warning(problem)
            })
        })
        .collect()
}

/// What is wrong with one URL, if anything: (is it an error, message).
async fn probe(
    client: &reqwest::Client,
    target: &Target,
    timeout: Duration,
) -> Option<(bool, String)> {
    let url = &target.url;
    let head = client.head(url).send().await;
    let response = match head {
        // Some servers refuse HEAD: ask them again with GET.
        Ok(r)
            if matches!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
            ) =>
        {
            match client.get(url).send().await {
                Ok(r) => r,
                Err(e) => return Some((true, unreachable(url, &e, timeout))),
            }
        }
        Ok(r) => r,
        Err(e) => return Some((true, unreachable(url, &e, timeout))),
    };
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        return Some((true, format!("{url} answers {}", describe(status))));
    }
    // Read the header itself: for a HEAD response there is no body to measure.
    let length = response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if target.image
        && let Some(len) = length
        && len > IMAGE_BYTES
    {
        return Some((
            false,
            format!(
                "the image {url} is {:.1} MB; images over 1 MB make the email slow to open on phones",
                len as f64 / (1024.0 * 1024.0)
            ),
        ));
    }
    None
}

fn describe(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn unreachable(url: &str, e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("{url} did not answer within {} s", timeout.as_secs_f32())
    } else if e.is_connect() {
        format!("{url} cannot be reached: the host does not resolve or refuses connections")
    } else if e.is_redirect() {
        format!("{url} redirects too many times")
    } else {
        format!("{url} cannot be checked: {e}")
    }
}
