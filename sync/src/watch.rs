//! Noticing new commits on a local repository: `notify` on the git folder
//! (refs, packed refs, HEAD). Events only wake the sync loop, which reads
//! the branch itself, so a missed or duplicated event costs nothing but
//! latency; the loop also polls as a fallback.

use std::path::Path;
use std::sync::mpsc::Sender;

use notify::{RecursiveMode, Watcher};

use crate::{SyncError, Trigger};

/// Keeps the watch alive; dropping it stops watching.
pub(crate) struct RefWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `git_dir` and sends [`Trigger::Changed`] on any change there
/// outside the object database.
pub(crate) fn watch(git_dir: &Path, triggers: Sender<Trigger>) -> Result<RefWatch, SyncError> {
    let err = |source| SyncError::Watch { path: git_dir.display().to_string(), source };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = event.paths.iter().any(|p| {
            let s = p.to_string_lossy();
            !s.contains("/objects/") && !s.ends_with(".lock") || s.contains("/refs/")
        });
        if relevant {
            let _ = triggers.send(Trigger::Changed);
        }
    })
    .map_err(err)?;
    watcher.watch(git_dir, RecursiveMode::NonRecursive).map_err(err)?;
    let refs = git_dir.join("refs");
    if refs.exists() {
        watcher.watch(&refs, RecursiveMode::Recursive).map_err(err)?;
    }
    Ok(RefWatch { _watcher: watcher })
}
