//! Watching the files a preview depends on, and re-rendering when one changes.
//!
//! Folders are watched, not files: editors that save by writing a new file and renaming it
//! over the old one (vim, many IDEs) replace the file a file-watch would follow. A save that
//! says it is finished (a file closed after writing, or renamed into place) is rendered at
//! once (a file just made, 10 ms later: its rename may follow), and the events around it are
//! taken together; any other change waits for the files to be quiet (one save is several
//! events), editors' temporary and backup files are ignored, and the whole issue is rendered
//! again: it is small, and incremental cleverness breaks.
//! Polling instead of native notifications is the caller's choice, for file systems that have
//! none.
//!
//! Which folders: those the site names ([`Site::watch_roots`]: the issues' folders and the
//! layout folders in use) and every folder below them, looked at again after *every* render,
//! whoever asked for it (issue 13: with the issue picked in the page, the layout folder was
//! only watched once the issue file had been saved). Each folder is watched on its own, so
//! that one that cannot be watched (unreadable, or past the system's limit) is skipped and
//! reported, and the others are still watched (issue 13: one unreadable folder stopped the
//! preview). A link is never followed out of the folders the preview serves or the workspace
//! around them (issue 13: a link to `/etc` in `issues/` had all of `/etc` watched), and hidden
//! folders (`.git`, `.bulletin`) are left out.
//!
//! This file decides when to render again and what to watch; it does not render (the site
//! does) or print (the command reports, through the site's reporter).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};

use super::site::{Outcome, Site};

/// Quiet time after the last event of a change that has not said it is finished (below, [`Heard`]
/// and [`classify`]) before rendering: a write still under way, a file removed or made.
const QUIET: Duration = Duration::from_millis(80);
/// How long a file just made and closed waits before rendering: it is most often an editor's
/// new version of a file, about to be renamed over it (gedit, Kate, JetBrains' IDEs), and the
/// rename, which follows at once, is then taken with it in one render rather than after a
/// render of the files as they were.
const JUST_MADE: Duration = Duration::from_millis(10);
/// How often polling looks at the files.
const POLL_EVERY: Duration = Duration::from_millis(150);

enum Backend {
    Native(RecommendedWatcher),
    Poll(PollWatcher),
}

impl Backend {
    /// Watches one folder, not the folders below it: those are watched one by one.
    fn watch(&mut self, path: &Path) -> notify::Result<()> {
        match self {
            Backend::Native(w) => w.watch(path, RecursiveMode::NonRecursive),
            Backend::Poll(w) => w.watch(path, RecursiveMode::NonRecursive),
        }
    }

    fn unwatch(&mut self, path: &Path) {
        let _ = match self {
            Backend::Native(w) => w.unwatch(path),
            Backend::Poll(w) => w.unwatch(path),
        };
    }
}

/// What can stop the watcher from starting. A folder that cannot be watched does not: it is
/// reported ([`Outcome::NotWatched`]) and the preview goes on.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch the files: {0}")]
    Start(#[source] notify::Error),
    #[error("cannot start the file watcher: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the watcher thread hears: a file event, or that a render happened (and may have
/// brought a new issue or layout folder to watch).
enum Heard {
    File(notify::Result<Event>),
    Rendered,
}

/// What one file event says about rendering again.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// Nothing that shows: a file read (as rendering does), an editor's scratch file.
    None,
    /// A file is whole and in place: written and closed, or renamed there. Render now.
    Finished,
    /// Something changed that may not be finished (a write under way, a file removed or made,
    /// or events lost): render once the files have been quiet for [`QUIET`].
    Unfinished,
}

/// Sorts a file event. Saving a file in place is written, then closed; saving it by renaming
/// a new file over it ends with the rename. Either end is a file whole on disk, so the render
/// starts at once, rather than after a quiet time that every save would pay (issue 17: 80 ms
/// of debounce was half of the time from save to page). Anything else waits for quiet, as
/// every event did before: system notifications that do not tell closes (polling, macOS,
/// Windows), a file truncated and not yet written again, the gap in vim's save between the
/// old file renamed away and the new one closed.
fn classify(event: &Event) -> Change {
    let ours = |p: &PathBuf| !is_scratch_file(p);
    match event.kind {
        // Reading files (as rendering does) is reported too.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) if event.paths.iter().any(ours) => {
            Change::Finished
        }
        EventKind::Access(_) => Change::None,
        // A rename's last path is where the file went: there, it is whole. Renamed away (to a
        // backup name, say), the file is missing until its new version is closed.
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            match event.paths.last() {
                Some(to) if ours(to) => Change::Finished,
                _ if event.paths.iter().any(ours) => Change::Unfinished,
                _ => Change::None,
            }
        }
        // The system's queue overflowed: events were lost, and the files must be looked at.
        EventKind::Other if event.need_rescan() => Change::Unfinished,
        EventKind::Other => Change::None,
        _ if event.paths.iter().any(ours) => Change::Unfinished,
        _ => Change::None,
    }
}

/// Starts watching the site's folders on a thread of its own; watching stops with the process.
pub fn start(site: Arc<Site>, poll: bool) -> Result<(), WatchError> {
    let (tx, rx) = mpsc::channel::<Heard>();
    let files = tx.clone();
    let on_file = move |r: notify::Result<Event>| {
        let _ = files.send(Heard::File(r));
    };
    let mut backend = if poll {
        let config = notify::Config::default()
            .with_poll_interval(POLL_EVERY)
            .with_compare_contents(true)
            .with_follow_symlinks(false);
        Backend::Poll(PollWatcher::new(on_file, config).map_err(WatchError::Start)?)
    } else {
        Backend::Native(
            RecommendedWatcher::new(on_file, notify::Config::default())
                .map_err(WatchError::Start)?,
        )
    };
    site.after_render(Box::new(move || {
        let _ = tx.send(Heard::Rendered);
    }));
    let mut watching = Watching::default();
    watching.update(&site, &mut backend);
    std::thread::Builder::new()
        .name("bulletin-watch".into())
        .spawn(move || follow(&site, &rx, &mut watching, &mut backend))
        .map_err(WatchError::Thread)?;
    Ok(())
}

/// Renders on the first event that finishes a change, or once an unfinished change has been
/// quiet for [`QUIET`]; events that arrive while a render runs are taken together, and bring
/// one render more after it (the render may have read the files before they changed).
fn follow(site: &Site, rx: &mpsc::Receiver<Heard>, watching: &mut Watching, backend: &mut Backend) {
    // When an unfinished change is rendered if nothing else comes first.
    let mut due: Option<Instant> = None;
    // Files made since the last render.
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        let first = match due {
            None => match rx.recv() {
                Ok(heard) => Some(heard),
                Err(_) => return,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(heard) => Some(heard),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let mut render = first.is_none();
        let mut rendered = false;
        // Whatever else has arrived by now is part of the same moment: one render for it all.
        for heard in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match heard {
                Heard::Rendered => rendered = true,
                Heard::File(Ok(event)) => {
                    if matches!(event.kind, EventKind::Remove(_)) {
                        watching.forget(&event.paths);
                    }
                    if matches!(event.kind, EventKind::Create(_)) {
                        made.extend(event.paths.iter().cloned());
                    }
                    let just_made = matches!(event.kind, EventKind::Access(_))
                        && event.paths.iter().any(|p| made.contains(p));
                    let metadata = matches!(event.kind, EventKind::Modify(ModifyKind::Metadata(_)));
                    match classify(&event) {
                        Change::Finished if just_made => due = Some(Instant::now() + JUST_MADE),
                        Change::Finished => render = true,
                        // Permissions or times changed (vim sets them after writing a new
                        // file): no file is half-written, so no later render than one due.
                        Change::Unfinished if metadata => {
                            due = due.or(Some(Instant::now() + QUIET));
                        }
                        Change::Unfinished => due = Some(Instant::now() + QUIET),
                        Change::None => {}
                    }
                }
                Heard::File(Err(_)) => {}
            }
        }
        if render {
            // This render reads every file as it is now, the unfinished ones too.
            due = None;
            made.clear();
            site.render_all();
        }
        if render || rendered {
            // After each render the folders are looked at again: a new folder, or another
            // layout, is watched from then on.
            watching.update(site, backend);
        }
    }
}

/// The folders being watched, and those already reported as not watched.
#[derive(Default)]
struct Watching {
    folders: BTreeSet<PathBuf>,
    reported: BTreeSet<PathBuf>,
}

impl Watching {
    /// Watches every folder the site needs now that is not watched yet, and stops watching
    /// those it no longer needs. Each folder that cannot be watched is reported once.
    fn update(&mut self, site: &Site, backend: &mut Backend) {
        let roots = site.watch_roots();
        let (wanted, mut skipped) = folders_under(&roots, site.workspace_root().as_deref());
        let gone: Vec<PathBuf> = self
            .folders
            .iter()
            .filter(|f| !wanted.contains(*f))
            .cloned()
            .collect();
        for folder in gone {
            backend.unwatch(&folder);
            self.folders.remove(&folder);
        }
        let new: Vec<PathBuf> = wanted
            .into_iter()
            .filter(|f| !self.folders.contains(f))
            .collect();
        let (watched, failed) = watch_each(&new, |f| backend.watch(f));
        self.folders.extend(watched);
        skipped.extend(failed);
        for (path, reason) in skipped {
            if self.reported.insert(path.clone()) {
                site.report(Outcome::NotWatched { path, reason });
            }
        }
    }

    /// Folders that were removed: their watch went with them, and a folder made again under
    /// the same name must be watched anew.
    fn forget(&mut self, paths: &[PathBuf]) {
        for p in paths {
            self.folders.remove(p);
        }
    }
}

/// Watches each folder with `watch`; returns those watched, and those that could not be, with
/// the reason. One failure does not stop the others.
fn watch_each(
    folders: &[PathBuf],
    mut watch: impl FnMut(&Path) -> notify::Result<()>,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut watched = Vec::new();
    let mut failed = Vec::new();
    for folder in folders {
        match watch(folder) {
            Ok(()) => watched.push(folder.clone()),
            Err(e) => failed.push((folder.clone(), reason(&e))),
        }
    }
    (watched, failed)
}

/// A watch error in plain words.
fn reason(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) => crate::diag::io_reason(io),
        notify::ErrorKind::MaxFilesWatch => {
            "the system's limit of watched folders is reached".to_string()
        }
        notify::ErrorKind::PathNotFound => "no such folder".to_string(),
        _ => e.to_string(),
    }
}

/// Every folder at or below `roots` (canonical paths), sorted, with those left out and why:
/// hidden folders are left out silently; a folder that cannot be read, and a link to a folder
/// outside the roots and outside `workspace`, are reported. Links to folders inside them are
/// followed to where they lead, which is watched once.
fn folders_under(
    roots: &[PathBuf],
    workspace: Option<&Path>,
) -> (BTreeSet<PathBuf>, BTreeMap<PathBuf, String>) {
    let inside = |p: &Path| {
        roots.iter().any(|r| p.starts_with(r)) || workspace.is_some_and(|w| p.starts_with(w))
    };
    let mut found = BTreeSet::new();
    let mut skipped = BTreeMap::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(dir) = stack.pop() {
        if !found.insert(dir.clone()) {
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                found.remove(&dir);
                skipped.insert(dir, crate::diag::io_reason(&e));
                continue;
            }
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_symlink() {
                // Where the link leads, and only if that is a folder of ours.
                match path.canonicalize() {
                    Ok(target) if target.is_dir() && inside(&target) => stack.push(target),
                    Ok(target) if target.is_dir() => {
                        skipped.insert(
                            path,
                            format!(
                                "it is a link to {}, outside the workspace, which the preview does not follow",
                                target.display()
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    (found, skipped)
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

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    #[test]
    fn a_save_renders_at_its_close_or_rename_and_anything_else_after_quiet() {
        use notify::event::{CreateKind, DataChange, RemoveKind};
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = |mode| EventKind::Modify(ModifyKind::Name(mode));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        // Written in place: truncated and written (unfinished), then closed (finished).
        assert_eq!(classify(&event(written, &["i/a.json"])), Change::Unfinished);
        assert_eq!(classify(&event(closed, &["i/a.json"])), Change::Finished);
        // A new file renamed over the old one is finished once it is there.
        assert_eq!(
            classify(&event(renamed(RenameMode::To), &["i/a.json"])),
            Change::Finished
        );
        assert_eq!(
            classify(&event(
                renamed(RenameMode::Both),
                &["i/.a.json.tmp~", "i/a.json"]
            )),
            Change::Finished
        );
        // vim: the old file renamed to its backup is missing until the new one is closed.
        assert_eq!(
            classify(&event(renamed(RenameMode::From), &["i/a.json"])),
            Change::Unfinished
        );
        assert_eq!(
            classify(&event(
                renamed(RenameMode::Both),
                &["i/a.json", "i/a.json~"]
            )),
            Change::Unfinished
        );
        assert_eq!(
            classify(&event(EventKind::Create(CreateKind::File), &["i/a.json"])),
            Change::Unfinished
        );
        assert_eq!(
            classify(&event(EventKind::Remove(RemoveKind::File), &["i/a.json"])),
            Change::Unfinished
        );
        // Editors' scratch files, and files read (as rendering does), are nothing.
        assert_eq!(classify(&event(closed, &["i/.a.json.swp"])), Change::None);
        assert_eq!(classify(&event(written, &["i/4913"])), Change::None);
        assert_eq!(
            classify(&event(
                renamed(RenameMode::Both),
                &["i/a.json~", "i/a.json.tmp"]
            )),
            Change::None
        );
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(classify(&event(read, &["i/a.json"])), Change::None);
        // Lost events: look again.
        let lost = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(classify(&lost), Change::Unfinished);
    }

    /// A workspace with issues/ (images/, a hidden .git/), layouts/efus/, and a folder outside.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in [
            "ws/issues/images",
            "ws/issues/.git/objects",
            "ws/layouts/efus/sections",
            "outside/deep",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        (dir, root)
    }

    #[test]
    fn every_folder_below_the_roots_is_watched_but_hidden_ones() {
        let (_dir, root) = tree();
        let ws = root.join("ws");
        let (found, skipped) = folders_under(&[ws.join("issues"), ws.join("layouts/efus")], None);
        let found: Vec<_> = found.iter().map(|p| p.strip_prefix(&ws).unwrap()).collect();
        assert_eq!(
            found,
            [
                Path::new("issues"),
                Path::new("issues/images"),
                Path::new("layouts/efus"),
                Path::new("layouts/efus/sections"),
            ]
        );
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_only_inside_the_workspace() {
        let (_dir, root) = tree();
        let ws = root.join("ws");
        std::os::unix::fs::symlink(root.join("outside"), ws.join("issues/out")).unwrap();
        std::os::unix::fs::symlink(ws.join("layouts"), ws.join("issues/layouts")).unwrap();
        std::os::unix::fs::symlink("/etc", ws.join("issues/etclink")).unwrap();
        let (found, skipped) = folders_under(&[ws.join("issues")], Some(&ws));
        assert!(found.iter().all(|p| p.starts_with(&ws)), "{found:?}");
        assert!(
            found.contains(&ws.join("layouts/efus/sections")),
            "{found:?}"
        );
        let skipped: Vec<_> = skipped.keys().cloned().collect();
        assert_eq!(skipped, [ws.join("issues/etclink"), ws.join("issues/out")]);
        // Without a workspace around them, the roots alone are inside.
        let (found, _) = folders_under(&[ws.join("issues")], None);
        assert!(!found.iter().any(|p| p.starts_with(ws.join("layouts"))));
    }

    #[test]
    fn a_folder_that_cannot_be_watched_is_skipped_and_the_others_are_watched() {
        // An injected failure, for what root's tests cannot make happen with permissions
        // (tests/cli/preview.rs does it for real, with the capabilities taken away).
        let folders: Vec<PathBuf> = ["issues", "issues/locked", "issues/images"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let (watched, failed) = watch_each(&folders, |f| {
            if f.ends_with("locked") {
                Err(notify::Error::io(std::io::Error::from(
                    std::io::ErrorKind::PermissionDenied,
                )))
            } else {
                Ok(())
            }
        });
        assert_eq!(
            watched,
            [PathBuf::from("issues"), PathBuf::from("issues/images")]
        );
        assert_eq!(
            failed,
            [(
                PathBuf::from("issues/locked"),
                "permission denied".to_string()
            )]
        );
    }
}
