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

/// Kills every process left in the cgroups under `path` (every hierarchy),
/// thawing a frozen one first: a container being killed by libcontainer
/// is frozen for a moment, and one whose killer was itself killed stays
/// frozen, its processes deaf to SIGKILL until thawed. For uninstalling
/// (`driftless reset`): the node's pods are the only thing there. How many
/// processes were signalled.
pub fn kill_remaining(path: &str) -> usize {
    signal_each(path, nix::sys::signal::Signal::SIGKILL, true)
}

/// Sends `signal` to every process in the cgroups under `path` (every
/// hierarchy), without freezing them first: a process forked meanwhile
/// misses this signal, as under Kubernetes, where the stop signal goes to
/// the container's first process alone and SIGKILL ends the rest. How
/// many processes were signalled.
pub fn signal(path: &str, signal: nix::sys::signal::Signal) -> usize {
    signal_each(path, signal, false)
}

fn signal_each(path: &str, signal: nix::sys::signal::Signal, thaw: bool) -> usize {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return 0;
    }
    let mut pids = std::collections::BTreeSet::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let root = hierarchy.path().join(relative);
        if root.is_dir() {
            list(&root, &mut pids, thaw);
        }
    }
    for pid in &pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), signal);
    }
    pids.len()
}

/// The processes in `dir` and the cgroups below it, thawing each first
/// when `thaw`.
fn list(dir: &Path, pids: &mut std::collections::BTreeSet<i32>, thaw: bool) {
    if thaw {
        // cgroup v1's freezer, and v2's own freeze switch.
        if dir.join("freezer.state").exists() {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        }
        if dir.join("cgroup.freeze").exists() {
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 1));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            list(&entry.path(), pids, thaw);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A process in a frozen cgroup (v1's freezer, as this machine has it):
    /// deaf to SIGKILL until thawed. `kill_remaining` thaws and kills it,
    /// and the folders then go.
    #[test]
    fn a_frozen_container_is_thawed_killed_and_its_cgroups_removed() {
        let freezer = Path::new("/sys/fs/cgroup/freezer");
        if !freezer.join("freezer.state").exists() && !freezer.is_dir() {
            eprintln!("no cgroup v1 freezer here; skipping");
            return;
        }
        let root = format!("driftless-test-freeze-{}", std::process::id());
        let leaf = freezer.join(&root).join("pod").join("c");
        std::fs::create_dir_all(&leaf).unwrap();
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        std::fs::write(leaf.join("cgroup.procs"), child.id().to_string()).unwrap();
        std::fs::write(leaf.join("freezer.state"), "FROZEN").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(leaf.join("freezer.state")).unwrap().trim() != "FROZEN" {
            assert!(std::time::Instant::now() < deadline, "the cgroup did not freeze");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        remove(&root);
        assert!(leaf.is_dir(), "a cgroup holding a process stays");

        assert_eq!(kill_remaining(&root), 1);
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed");
        assert!(remove_waiting(&root, std::time::Duration::from_secs(5)), "gone once the process is");
        assert!(!freezer.join(&root).exists());
    }
}
