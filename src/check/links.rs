//! Do the email's links and remote images answer? Each URL is asked once, several at a time
//! but only a few per host (a small web server should not take a newsletter check for an
//! attack), with a timeout; HEAD first, GET where a server refuses HEAD.
//!
//! A URL that is not one (`http://host:99999/`) is not asked: the issue's own check reports it
//! once (issue 13: it came twice, the second time as "builder error"); nor is a placeholder
//! address of the starter, which `check` reports as one. A link the issue does
//! not have is looked for in the layout folder, and its finding points there; a link only
//! the built-in layout has (its placeholder social link) is not asked, and `check` reports it
//! as a placeholder to replace. While a link takes more than a second, [`Waiting`] names it
//! for the progress bar.
//!
//! The only part of `check` that touches the network; it never decides whether an issue may
//! be sent (a link that does not answer is an error finding like any other).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::{Finding, IMAGE_BYTES, path_of, place};
use crate::issue::{LoadedIssue, Problem};
use crate::layout::Layout;

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

/// A URL to check, and where the issue (or the layout folder) has it.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// Where the issue has it; empty when the layout put it in the email.
    pub json_path: String,
    /// Where the layout folder has it, when the issue does not: the file, line and column.
    pub in_layout: Option<(PathBuf, (usize, usize))>,
    pub image: bool,
}

/// Every distinct http(s) link and remote image of the email that the issue or the layout
/// folder has (merge fields left empty, so per-recipient links such as the unsubscribe link
/// are not among them). URLs that do not parse are left to the issue's own check, and links
/// only the built-in layout has to the placeholder check.
pub fn targets(loaded: &LoadedIssue, layout: &Layout, html: &str) -> Vec<Target> {
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for (attr, image) in [("href=\"", false), ("src=\"", true)] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let Some(end) = rest.find('"') else { continue };
            let url = super::html::unescape(&rest[..end]);
            if (url.starts_with("http://") || url.starts_with("https://"))
                && url::Url::parse(&url).is_ok()
                && !super::placeholders::is_placeholder_url(&url)
            {
                *found.entry(url).or_insert(image) &= image;
            }
        }
    }
    found
        .into_iter()
        .filter_map(|(url, image)| {
            let mut json_path = path_of(loaded, &url);
            if json_path.is_empty() && image {
                // An image made absolute with `images_url`: the issue has its file name.
                let name = url.rsplit('/').next().unwrap_or(&url);
                json_path = path_of(loaded, name);
            }
            let in_layout = if json_path.is_empty() {
                Some(place::in_layout(layout, &url)?)
            } else {
                None
            };
            Some(Target {
                json_path,
                in_layout,
                url,
                image,
            })
        })
        .collect()
}

/// Hears when each link's request starts and ends (a progress bar).
pub trait Progress: Send + Sync + 'static {
    fn started(&self, url: &str);
    fn finished(&self, url: &str);
}

/// The links being asked, each since when: which one the checker is waiting on.
#[derive(Debug, Default)]
pub struct Waiting {
    asked: Mutex<Vec<(String, Instant)>>,
    done: std::sync::atomic::AtomicUsize,
}

impl Waiting {
    /// The link asked longest ago, if it has been waited on for `at_least` at `now`.
    pub fn longest(&self, now: Instant, at_least: Duration) -> Option<(String, Duration)> {
        let asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked
            .iter()
            .map(|(url, since)| (url, now.saturating_duration_since(*since)))
            .filter(|(_, waited)| *waited >= at_least)
            .max_by_key(|(_, waited)| *waited)
            .map(|(url, waited)| (url.clone(), waited))
    }

    /// How many links have been answered (or given up on).
    pub fn done(&self) -> usize {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn asked_at(&self, url: &str, at: Instant) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        asked.push((url.to_string(), at));
    }
}

impl Progress for Waiting {
    fn started(&self, url: &str) {
        self.asked_at(url, Instant::now());
    }
    fn finished(&self, url: &str) {
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = asked.iter().position(|(u, _)| u == url) {
            asked.remove(i);
        }
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
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
    targets: Vec<Target>,
    opts: &LinkOptions,
    progress: Arc<dyn Progress>,
) -> Result<Vec<Finding>, LinkCheckError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LinkCheckError::Runtime)?;
    Ok(runtime.block_on(check(loaded, targets, opts, progress)))
}

/// Checks every target; `progress` hears when each one is asked and answered. A finding
/// points where the issue has the link (in a body file, at its line), else where the layout
/// folder has it.
pub async fn check(
    loaded: &LoadedIssue,
    targets: Vec<Target>,
    opts: &LinkOptions,
    progress: Arc<dyn Progress>,
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
        let (all, client, progress) = (Arc::clone(&all), client.clone(), Arc::clone(&progress));
        let timeout = opts.timeout;
        tasks.spawn(async move {
            let _host = per_host.acquire_owned().await;
            let _slot = all.acquire_owned().await;
            progress.started(&target.url);
            let verdict = probe(&client, &target, timeout).await;
            progress.finished(&target.url);
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
    let mut findings = results
        .into_iter()
        .filter_map(|(target, verdict)| {
            let (severity_is_error, message) = verdict?;
            let problem = match &target.in_layout {
                Some((file, position)) if target.json_path.is_empty() => Problem {
                    file: file.clone(),
                    position: Some(*position),
                    json_path: String::new(),
                    message,
                },
                _ => place::at_needle(loaded, &target.json_path, &target.url, message),
            };
            Some(if severity_is_error {
                Finding::error(problem)
            } else {
                Finding::warning(problem)
            })
        })
        .collect::<Vec<Finding>>();
    place::explain(loaded.source(), &mut findings);
    findings
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_waited_on_longest_is_named_after_a_second() {
        let waiting = Waiting::default();
        let t0 = Instant::now();
        waiting.asked_at("https://a.example/slow", t0);
        waiting.asked_at("https://b.example/quick", t0 + Duration::from_millis(900));
        assert_eq!(
            waiting.longest(t0 + Duration::from_millis(800), Duration::from_secs(1)),
            None
        );
        let named = waiting.longest(t0 + Duration::from_millis(1500), Duration::from_secs(1));
        assert_eq!(
            named,
            Some((
                "https://a.example/slow".to_string(),
                Duration::from_millis(1500)
            ))
        );
        waiting.finished("https://a.example/slow");
        assert_eq!(waiting.done(), 1);
        assert_eq!(
            waiting.longest(t0 + Duration::from_millis(2000), Duration::from_secs(1)),
            Some((
                "https://b.example/quick".to_string(),
                Duration::from_millis(1100)
            ))
        );
    }
}
