//! Watching the files a preview depends on, and re-rendering when one changes.
//!
//! Folders are watched, not files: editors that save by writing a new file and renaming it
//! over the old one (vim, many IDEs) replace the file a file-watch would follow. Events are
//! debounced (one save is several events), editors' temporary and backup files are ignored,
//! and the whole issue is rendered again: it is small, and incremental cleverness breaks.
//! Polling instead of native notifications is the caller's choice, for file systems that have
//! none. This file decides when to render again; it does not render (the site does) or print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use notify_debouncer_full::notify::{
    self, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode,
};
use notify_debouncer_full::{
    DebounceEventResult, Debouncer, NoCache, RecommendedCache, new_debouncer, new_debouncer_opt,
};

use super::site::Site;

/// Quiet time after the last event before rendering.
const DEBOUNCE: Duration = Duration::from_millis(80);
/// How often polling looks at the files.
const POLL_EVERY: Duration = Duration::from_millis(150);

enum Backend {
    Native(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, NoCache>),
}

impl Backend {
    fn watch(&mut self, path: &Path) -> notify::Result<()> {
        match self {
            Backend::Native(d) => d.watch(path, RecursiveMode::Recursive),
            Backend::Poll(d) => d.watch(path, RecursiveMode::Recursive),
        }
    }
}

/// What can stop the watcher from starting.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch the files: {0}")]
    Start(#[source] notify::Error),
    #[error("cannot watch {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("cannot start the file watcher: {0}")]
    Thread(#[source] std::io::Error),
}

/// Starts watching the site's folders on a thread of its own; watching stops with the process.
pub fn start(site: Arc<Site>, poll: bool) -> Result<(), WatchError> {
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let mut backend = if poll {
        let config = notify::Config::default()
            .with_poll_interval(POLL_EVERY)
            .with_compare_contents(true);
        Backend::Poll(
            new_debouncer_opt(DEBOUNCE, Some(DEBOUNCE / 4), tx, NoCache, config)
                .map_err(WatchError::Start)?,
        )
    } else {
        Backend::Native(new_debouncer(DEBOUNCE, Some(DEBOUNCE / 4), tx).map_err(WatchError::Start)?)
    };
    let mut watched = BTreeSet::new();
    watch_new_roots(&site, &mut backend, &mut watched)?;
    std::thread::Builder::new()
        .name("bulletin-watch".into())
        .spawn(move || {
            for result in rx {
                let Ok(events) = result else { continue };
                // Reading files (as rendering does) is reported too: only changes count.
                let relevant = events
                    .iter()
                    .filter(|e| !matches!(e.kind, EventKind::Access(_) | EventKind::Other))
                    .flat_map(|e| e.paths.iter())
                    .any(|p| !is_scratch_file(p));
                if relevant {
                    site.render_all();
                    // A render may have switched to another layout folder.
                    let _ = watch_new_roots(&site, &mut backend, &mut watched);
                }
            }
        })
        .map_err(WatchError::Thread)?;
    Ok(())
}

fn watch_new_roots(
    site: &Site,
    backend: &mut Backend,
    watched: &mut BTreeSet<PathBuf>,
) -> Result<(), WatchError> {
    for root in site.watch_roots() {
        if watched.iter().any(|w| root.starts_with(w)) {
            continue;
        }
        backend.watch(&root).map_err(|source| WatchError::Folder {
            path: root.clone(),
            source,
        })?;
        watched.insert(root);
    }
    Ok(())
}

/// Editors' swap, backup and temporary files, which change without the issue changing.
pub fn is_scratch_file(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return false;
    };
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp")
        || name.ends_with(".crswap")
        || (name.starts_with('#') && name.ends_with('#'))
        || name.starts_with(".#")
        || name.starts_with(".bulletin-")
        || name == "4913" // vim probes whether it may write in the folder with this name
        || name == ".DS_Store"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_scratch_files_are_ignored() {
        for name in [
            "a.json~",
            ".a.json.swp",
            "#a.json#",
            ".#a.json",
            "4913",
            "x.tmp",
        ] {
            assert!(is_scratch_file(Path::new(name)), "{name}");
        }
        for name in ["2020-06.json", "essen.md", "theme.toml", "news.mjml.hbs"] {
            assert!(!is_scratch_file(Path::new(name)), "{name}");
        }
    }
}
