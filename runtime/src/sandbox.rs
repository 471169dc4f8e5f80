//! Pod sandboxes: the network, IPC and UTS namespaces a pod's containers
//! share, kept alive by bind mounts of their namespace files instead of a
//! pause process.
//!
//! Creating them needs `unshare(2)` in a task that then ends, so it runs on a
//! thread of its own, made for it and gone after (network, IPC and UTS
//! namespaces belong to a thread, not to its process); removing them is a
//! lazy unmount, safe from anywhere.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// The namespaces a pod's containers share, by their `/proc/*/ns` names.
pub const SHARED: [&str; 3] = ["net", "ipc", "uts"];

/// Why a sandbox could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// A file or folder could not be made or removed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The thread that creates namespaces could not be started or ended
    /// abnormally.
    #[error("creating the namespaces of {}: {message}", dir.display())]
    Thread {
        /// The sandbox folder.
        dir: PathBuf,
        /// What happened.
        message: String,
    },
}

/// A pod's shared namespaces, as files in one folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    /// The sandbox whose namespace files live in `dir` (it may not exist).
    pub fn at(dir: impl Into<PathBuf>) -> Sandbox {
        Sandbox { dir: dir.into() }
    }

    /// Creates the namespaces, with `hostname` set in the new UTS
    /// namespace. It takes a thread, not a process: starting a helper
    /// binary to do it cost a millisecond or more of every pod start.
    pub fn create(dir: impl Into<PathBuf>, hostname: &str) -> Result<Sandbox, SandboxError> {
        let dir = dir.into();
        // What a daemon killed while making this sandbox left (one or two
        // namespaces mounted) goes first: a namespace file that is still
        // mounted cannot be created again (EPERM), and the pod would never
        // start.
        Sandbox::at(&dir).remove()?;
        let (target, name) = (dir.clone(), hostname.to_owned());
        // A thread of its own: it leaves this process's namespaces for the
        // new ones and must never run anything else afterwards.
        let made = std::thread::Builder::new()
            .name("sandbox".into())
            .spawn(move || create_in_this_thread(&target, &name))
            .map_err(|source| SandboxError::Io { path: dir.clone(), source })?;
        match made.join() {
            Ok(result) => result.map(|()| Sandbox { dir }),
            Err(_) => Err(SandboxError::Thread { dir, message: "the thread panicked".into() }),
        }
    }

    /// The folder holding the namespace files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one shared namespace (`net`, `ipc`, `uts`).
    pub fn namespace(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    /// Whether the namespaces are mounted (they survive daemon restarts).
    pub fn exists(&self) -> bool {
        SHARED.iter().all(|ns| self.namespace(ns).exists())
    }

    /// Unmounts and removes the namespace files; the namespaces go away with
    /// their last user. Removing a sandbox that is gone is fine.
    pub fn remove(&self) -> Result<(), SandboxError> {
        for ns in SHARED {
            let path = self.namespace(ns);
            match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                Err(source) => return Err(SandboxError::Sys { what: format!("unmount {}", path.display()), source }),
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SandboxError::Io { path, source: e }),
                _ => {}
            }
        }
        match std::fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::Io { path: self.dir.clone(), source: e }),
            _ => Ok(()),
        }
    }
}

/// Moves the calling thread into new network, IPC and UTS namespaces, sets
/// the hostname and bind-mounts each namespace file into `dir`, so the
/// namespaces outlive the thread. The thread must end afterwards.
fn create_in_this_thread(dir: &Path, hostname: &str) -> Result<(), SandboxError> {
    let sys = |what: &str| {
        let what = what.to_owned();
        move |source| SandboxError::Sys { what, source }
    };
    std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io { path: dir.to_path_buf(), source })?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS).map_err(sys("unshare net, ipc and uts namespaces"))?;
    nix::unistd::sethostname(hostname).map_err(sys("set the hostname"))?;
    for ns in SHARED {
        let target = dir.join(ns);
        std::fs::File::create(&target).map_err(|source| SandboxError::Io { path: target.clone(), source })?;
        // `thread-self`: `self` would name the process's first thread, whose
        // namespaces are the daemon's.
        let source = format!("/proc/thread-self/ns/{ns}");
        nix::mount::mount(Some(source.as_str()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(sys(&format!("bind-mount {source} on {}", target.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_has_namespaces_of_its_own_and_leaves_the_process_in_its() {
        use std::os::unix::fs::MetadataExt;
        let ns_of = |path: &Path| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).unwrap();
        let before: Vec<_> = SHARED.iter().map(|ns| ns_of(Path::new(&format!("/proc/self/ns/{ns}")))).collect();
        let hostname = nix::unistd::gethostname().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::create(dir.path().join("ns"), "sandboxed").unwrap();
        assert!(sandbox.exists());
        for (ns, own) in SHARED.iter().zip(&before) {
            assert_ne!(&ns_of(&sandbox.namespace(ns)), own, "{ns}: the sandbox has a namespace of its own");
            assert_eq!(&ns_of(Path::new(&format!("/proc/self/ns/{ns}"))), own, "{ns}: this process stays in its own");
            assert_eq!(&ns_of(Path::new(&format!("/proc/thread-self/ns/{ns}"))), own, "{ns}: so does this thread");
        }
        assert_eq!(nix::unistd::gethostname().unwrap(), hostname, "the host's name is untouched");
        sandbox.remove().unwrap();
    }

    /// `parent/ns` with one namespace of this process bind-mounted, as a
    /// daemon killed while making a sandbox leaves it.
    fn half_made(parent: &Path, which: &str) -> PathBuf {
        let ns = parent.join("ns");
        std::fs::create_dir(&ns).unwrap();
        std::fs::write(ns.join(which), "").unwrap();
        let source = format!("/proc/self/ns/{which}");
        nix::mount::mount(Some(source.as_str()), &ns.join(which), None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        ns
    }

    #[test]
    fn a_half_made_sandbox_is_removed_whole() {
        // What a daemon killed while making a sandbox leaves: one namespace
        // of the three bind-mounted (this process's own uts namespace here).
        let dir = tempfile::tempdir().unwrap();
        let ns = half_made(dir.path(), "uts");
        let sandbox = Sandbox::at(&ns);
        assert!(!sandbox.exists(), "not a whole sandbox");
        sandbox.remove().unwrap();
        assert!(!ns.exists());
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(!mounts.contains(&ns.display().to_string()), "the namespace stays mounted");
        // Removing it again is fine.
        sandbox.remove().unwrap();
    }

    #[test]
    fn a_sandbox_is_made_over_a_half_made_one() {
        // The daemon killed after mounting the network namespace, before
        // the other two: making the sandbox again must not trip over it.
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let ns = half_made(dir.path(), "net");
        let sandbox = Sandbox::create(&ns, "again").unwrap();
        assert!(sandbox.exists());
        let ino = |path: &Path| std::fs::metadata(path).unwrap().ino();
        assert_ne!(ino(&sandbox.namespace("net")), ino(Path::new("/proc/self/ns/net")), "a network namespace of its own");
        sandbox.remove().unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        assert!(!mounts.contains(&ns.display().to_string()), "nothing stays mounted");
    }
}
