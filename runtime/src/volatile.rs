//! The node's folder for volatile state: a tmpfs the daemon mounts in its
//! data folder, holding what lives exactly as long as the pods do (their
//! namespaces' mounts, their `/etc/hosts`, `hostname` and `resolv.conf`,
//! libcontainer's state), as containerd keeps its bundles in `/run` and
//! runc its state in `/run/runc`.
//!
//! Why not the disk: none of it may outlive a reboot (the pods do not), it
//! is small, and making a pod's ~13 files and folders on disk cost more
//! than the pod's container: on ext4 without a journal (this project's
//! machines) every new inode is checked against the ones deleted in the
//! last 30 s, so after a scale-down each file of a scale-up walked past
//! the thousands just freed (21% of the CPU of 100 pod starts, measured in
//! docs/benchmarks.md). Container logs, writable layers and volumes stay
//! on disk: they may be large, and logs outlive their container.
//!
//! Owns: mounting and unmounting that tmpfs. Must not touch what is in it
//! (the node's [`crate::node::Node`] does).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The most the tmpfs may hold: pods need ~30 KiB each (with the reaper's
/// binary, written once), so this is room for thousands, and a bound on
/// what a runaway writer can take from memory.
const SIZE: &str = "256m";

/// Why the volatile folder could not be mounted or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum VolatileError {
    /// The folder could not be made or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the mount or unmount.
    #[error("tmpfs on {}: {source}", path.display())]
    Mount {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// Mounts a tmpfs at `dir` (made if missing), unless something is mounted
/// there already: a restarted daemon finds its pods' state where it was.
/// Whether it mounted one now.
pub fn mount(dir: &Path) -> Result<bool, VolatileError> {
    std::fs::create_dir_all(dir).map_err(|source| VolatileError::Io { path: dir.to_path_buf(), source })?;
    if is_mount(dir)? {
        return Ok(false);
    }
    // Not noexec: the helper writes the reaper's binary here and execs it.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let options = format!("mode=0700,size={SIZE}");
    nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some(options.as_str()))
        .map_err(|source| VolatileError::Mount { path: dir.to_path_buf(), source })?;
    Ok(true)
}

/// Unmounts the tmpfs at `dir` (with whatever is mounted beneath it: the
/// namespaces of pods already stopped), if one is mounted there.
pub fn unmount(dir: &Path) -> Result<(), VolatileError> {
    if !dir.exists() || !is_mount(dir)? {
        return Ok(());
    }
    match nix::mount::umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(VolatileError::Mount { path: dir.to_path_buf(), source }),
    }
}

/// Whether `dir` is a mount point (the kernel's own answer, as for the
/// mounts a helper is handed: [`crate::helper_ns`]).
pub fn is_mount(dir: &Path) -> Result<bool, VolatileError> {
    crate::helper_ns::is_mount_root(dir).map_err(|source| VolatileError::Io { path: dir.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mounting needs root; the test says so and passes without it.
    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_tmpfs_is_mounted_once_and_unmounted_with_what_is_beneath_it() {
        if !root() {
            eprintln!("skipped: needs root");
            return;
        }
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("run");
        assert!(mount(&dir).unwrap(), "mounted now");
        let statfs = nix::sys::statfs::statfs(&dir).unwrap();
        assert_eq!(statfs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
        assert!(!mount(&dir).unwrap(), "a second mount over the first would hide the pods' state");
        // A namespace bind-mounted beneath, as a pod's sandbox is.
        let ns = dir.join("uts");
        std::fs::write(&ns, "").unwrap();
        nix::mount::mount(Some("/proc/self/ns/uts"), &ns, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        unmount(&dir).unwrap();
        assert!(!is_mount(&dir).unwrap());
        assert!(!ns.exists(), "what was in the tmpfs went with it");
        unmount(&dir).unwrap();
        unmount(&parent.path().join("never-made")).unwrap();
    }
}
