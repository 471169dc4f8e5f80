//! Removing the cgroup folders the node made above its containers (a
//! pod's parent, the node's root): each container's own cgroup goes with
//! the container, but the folders above it stay until removed here.

use std::path::Path;

/// Removes `path` (relative to each hierarchy, like `/driftless/<uid>`)
/// and the empty folders below it, deepest first, in every mounted
/// hierarchy (each cgroup v1 controller, and the unified one). A folder
/// that still holds a process stays: that is a leak to report, not to
/// hide.
pub fn remove(path: &str) {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return;
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for hierarchy in hierarchies.flatten() {
        let dir = hierarchy.path().join(relative);
        if dir.is_dir() {
            remove_tree(&dir);
        }
    }
}

/// [`remove`], tried again until `path` is gone from every hierarchy or
/// `patience` has passed: a process killed a moment ago leaves its cgroup
/// only once the kernel has finished tearing it down. Whether it is gone.
pub fn remove_waiting(path: &str, patience: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + patience;
    loop {
        remove(path);
        let relative = path.trim_start_matches('/');
        let left = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().any(|h| h.path().join(relative).is_dir());
        if !left {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    match std::fs::remove_dir(dir) {
        // Busy: a process is still in it (or, for a shared root, another
        // daemon's pod is): the caller checks what it must.
        Err(error) if error.raw_os_error() == Some(libc_ebusy()) => tracing::debug!(dir = %dir.display(), "cgroup folder still in use"),
        Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot remove a cgroup folder"),
        Ok(()) => {}
    }
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}
