//! Starting, observing and stopping containers from the daemon's side.
//!
//! Nothing here clones through `libcontainer`: creation happens in the
//! helper. Signalling a running container only reads its state and calls
//! `kill(2)`, which is safe from any process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use nix::sys::signal::Signal;

use crate::bundle::{self, BundleError, ContainerConfig};
use crate::forkserver::Reported;
use crate::status::{self, Status};

/// What a container on disk turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Its helper has not reported yet (it may be starting, or it died
    /// before reporting).
    Creating,
    /// Running, with a live helper.
    Running,
    /// The status says Running but the helper or the container's process
    /// is gone (the node rebooted, or someone killed them).
    Lost,
    /// It ended (or failed to start); the status says how.
    Finished(Status),
}

/// Whether the helper of container `id` still runs as `pid`: the process
/// exists, is no zombie, and is that container's helper, not another
/// process that was given the same pid since.
///
/// The helper is known by its start time, which stays the same through
/// its `exec`s (shim, reaper, cleanup). Its command line does not: while a
/// process is in `execve`, `/proc/PID/cmdline` reads empty, or a piece of
/// the old arguments or the new (seen: `/tmp/…/state/drift`), so a check
/// by name found a live helper gone about once in 50 container stops on a
/// busy machine, and the container was taken for lost. Statuses written
/// before start times were recorded still go by the command line.
fn helper_alive(pid: i32, start_ticks: Option<u64>, id: &str) -> bool {
    let Some((zombie, started)) = status::process_stat(pid) else { return false };
    if zombie {
        return false;
    }
    match start_ticks {
        Some(ticks) => started == ticks,
        None => {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
            cmdline.is_empty() || cmdline.windows(id.len()).any(|w| w == id.as_bytes())
        }
    }
}

/// Where a node keeps its containers: `<root>/containers/<id>/` for each
/// container's bundle, status and log, `<root>/state/` for libcontainer
/// (or a state root of its own, [`Layout::with_state_root`]).
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    state_root: PathBuf,
    shim: PathBuf,
    spawner: crate::forkserver::Spawner,
}

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle could not be written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The helper could not be started.
    #[error("cannot start {}: {source}", shim.display())]
    Spawn {
        /// The helper binary.
        shim: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper reported that the container could not start.
    #[error("container {id} failed to start: {message}")]
    StartFailed {
        /// The container.
        id: String,
        /// The helper's message.
        message: String,
    },
    /// The helper gave no news within the deadline.
    #[error("container {id} did not report within {waited:?}")]
    Timeout {
        /// The container.
        id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The container says it runs, but its process and its helper are
    /// gone (killed together, as a power loss would): no one will record
    /// its end.
    #[error("container {id}: its helper is gone without recording its end")]
    Lost {
        /// The container.
        id: String,
    },
    /// A lost container could not be cleaned up.
    #[error("container {id}: cleaning up after its helper: {source}")]
    Cleanup {
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: crate::shim::ShimError,
    },
    /// A file of the container could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root filesystem could not be mounted or unmounted.
    #[error(transparent)]
    Rootfs(crate::rootfs::RootfsError),
    /// The container's process could not be signalled.
    #[error("container {id}: cannot signal its process: {source}")]
    Signal {
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: nix::errno::Errno,
    },
    /// `libcontainer` could not load or signal the container.
    #[error("container {id}: {source}")]
    Container {
        /// The container.
        id: String,
        /// Why (boxed: libcontainer's error is large).
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
}

impl Layout {
    /// A layout under `root`, running containers with the helper binary at
    /// `shim`.
    pub fn new(root: impl Into<PathBuf>, shim: impl Into<PathBuf>) -> Layout {
        let root = root.into();
        Layout { state_root: root.join("state"), root, shim: shim.into(), spawner: Default::default() }
    }

    /// This layout with libcontainer's state in `state_root` (a node keeps
    /// it on its tmpfs, [`crate::volatile`]).
    pub fn with_state_root(self, state_root: impl Into<PathBuf>) -> Layout {
        Layout { state_root: state_root.into(), ..self }
    }

    /// The folder of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// libcontainer's state root.
    pub fn state_root(&self) -> PathBuf {
        self.state_root.clone()
    }

    /// The container's log file.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(crate::shim::LOG_FILE)
    }

    /// Writes the bundle and starts the helper, returning once the container
    /// runs (or has already ended) and its status says so.
    pub fn start(&self, config: &ContainerConfig, deadline: Duration) -> Result<Status, RuntimeError> {
        let dir = self.container_dir(&config.id);
        let bundle_dir = dir.join("bundle");
        bundle::write(&bundle_dir, config)?;
        let state_root = self.state_root();
        std::fs::create_dir_all(&state_root).map_err(|source| RuntimeError::Io { path: state_root.clone(), source })?;
        let shim_log = dir.join("shim.log");
        let spawn_error = |source| RuntimeError::Spawn { shim: self.shim.clone(), source };
        let args = crate::shim::ShimArgs { id: config.id.clone(), bundle: bundle_dir, state_root, dir };
        let bounds = crate::forkserver::Bounds { state_root: self.state_root(), containers: self.root.join("containers") };
        // The helper's mount namespace has none of the pods' mounts: its
        // container's own go with the request.
        let mounts = crate::helper_ns::handover(&config.rootfs, config.sandbox.as_deref()).map_err(spawn_error)?;
        let mut retried = false;
        // One deadline for the start, a second try included.
        let started = Instant::now();
        loop {
            let log = std::fs::File::create(&shim_log).map_err(|source| RuntimeError::Io { path: shim_log.clone(), source })?;
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_error(e.into()))?;
            self.spawner.start(&self.shim, &bounds, &args, &write, &log, &mounts).map_err(spawn_error)?;
            // Only the helper may hold the write end now: its end, or its
            // death, is what ends the wait.
            drop((write, log));
            match crate::forkserver::wait_for_report(&read, deadline.saturating_sub(started.elapsed())) {
                Ok(Reported::Yes) => break,
                // No helper, and no server: the request died queued with the
                // server (killed), never served. Once more, with another.
                Ok(Reported::Ended) if !retried && self.status(&config.id)?.is_none() && self.spawner.ended() => retried = true,
                Ok(Reported::Ended) => break,
                Ok(Reported::Late) => return Err(RuntimeError::Timeout { id: config.id.clone(), waited: deadline }),
                Err(error) => {
                    let message = format!("waiting for the helper's report: {error}; see {}", shim_log.display());
                    return Err(RuntimeError::StartFailed { id: config.id.clone(), message });
                }
            }
        }
        match self.status(&config.id)? {
            Some(Status::Failed { message }) => Err(RuntimeError::StartFailed { id: config.id.clone(), message }),
            Some(status) => Ok(status),
            None => {
                let message = format!("the helper ended before it reported; see {}", shim_log.display());
                Err(RuntimeError::StartFailed { id: config.id.clone(), message })
            }
        }
    }

    /// Every container on the node, as found on disk: what a daemon that
    /// just (re)started knows. A container whose status says Running but
    /// whose helper is gone is reported [`Observed::Lost`]: it must be
    /// cleaned up and started again, never counted as running.
    pub fn list(&self) -> Result<Vec<(String, Observed)>, RuntimeError> {
        self.ids()?
            .into_iter()
            .map(|id| {
                let observed = self.observe(&id)?;
                Ok((id, observed))
            })
            .collect()
    }

    /// The ids of the containers with a folder here, sorted, without
    /// looking at what they are.
    pub fn ids(&self) -> Result<Vec<String>, RuntimeError> {
        let dir = self.root.join("containers");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(RuntimeError::Io { path: dir, source }),
        };
        let mut ids: Vec<String> = entries.flatten().map(|entry| entry.file_name().to_string_lossy().into_owned()).collect();
        ids.sort();
        Ok(ids)
    }

    /// What the container `id` is: its status, checked against its helper.
    /// A Running status whose helper is gone is [`Observed::Lost`]; the
    /// status is read again after that finding, so a helper that wrote
    /// `Exited` and then ended is never taken for lost.
    pub fn observe(&self, id: &str) -> Result<Observed, RuntimeError> {
        Ok(match self.status(id)? {
            None => Observed::Creating,
            // While the helper runs it records how the container ends, even
            // when the container's init has just gone.
            Some(Status::Running { shim_pid, shim_start_ticks, .. }) if helper_alive(shim_pid, shim_start_ticks, id) => Observed::Running,
            Some(Status::Running { .. }) => match self.status(id)? {
                Some(Status::Running { .. }) | None => Observed::Lost,
                Some(status) => Observed::Finished(status),
            },
            Some(status) => Observed::Finished(status),
        })
    }

    /// Ends a [`Observed::Lost`] container as containerd ends a task whose
    /// shim died: its processes killed, its cgroups and state deleted, and
    /// `Exited` recorded as a SIGKILL (137), which restart policies then
    /// act on like any exit.
    pub fn finish_lost(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(Status::Running { pid, started_at, .. }) = self.status(id)? else { return Ok(()) };
        let args = crate::shim::CleanupArgs {
            id: id.to_owned(),
            state_root: self.state_root(),
            dir: self.container_dir(id),
            pid,
            started_at,
            exit: crate::status::Exit {
                code: 128 + Signal::SIGKILL as i32,
                signal: Some(Signal::SIGKILL as i32),
                finished_at: status::now(),
                oom_killed: false,
            },
        };
        crate::shim::cleanup(&args).map_err(|source| RuntimeError::Cleanup { id: id.to_owned(), source })
    }

    /// A pidfd of the helper of running container `id`: it turns readable
    /// when the helper ends, which it does once the container has ended
    /// and its exit is recorded (or when the helper is killed). `None`
    /// when the container is not running under a live helper. The helper
    /// is checked after the pidfd is open, so a reused pid is never
    /// watched in its place.
    pub fn exit_watch(&self, id: &str) -> Option<std::os::fd::OwnedFd> {
        let Ok(Some(Status::Running { shim_pid, shim_start_ticks, .. })) = self.status(id) else { return None };
        let pid = rustix::process::Pid::from_raw(shim_pid)?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
        helper_alive(shim_pid, shim_start_ticks, id).then_some(pidfd)
    }

    /// The container's status as its helper last wrote it.
    pub fn status(&self, id: &str) -> Result<Option<Status>, RuntimeError> {
        let dir = self.container_dir(id);
        status::read(&dir).map_err(|source| RuntimeError::Io { path: dir.join(status::FILE), source })
    }

    /// Sends `signal` to every process of a running container.
    ///
    /// SIGKILL goes to the container's first process alone: every container
    /// has a PID namespace of its own (`bundle.rs`), and the kernel kills
    /// everything in a PID namespace when its first process dies, `exec`ed
    /// processes included. Other signals go to each process in the
    /// container's cgroup, read from the cgroup folders. libcontainer's
    /// own kill of every process freezes the cgroup and builds a cgroup
    /// manager that parses the mount table once per controller: on a node
    /// with 100 pods that was 26,000 allocations per kill, a third of all
    /// the daemon made while pods came and went (docs/benchmarks.md), and
    /// a killer killed half-way left the container frozen.
    pub fn kill(&self, id: &str, signal: Signal) -> Result<(), RuntimeError> {
        // An ended container has nothing left to signal, and its helper may
        // be deleting its state at this moment.
        let pid = match self.status(id)? {
            Some(Status::Running { pid, .. }) => Some(pid),
            None => None,
            Some(_) => return Ok(()),
        };
        let error = |source| RuntimeError::Container { id: id.to_owned(), source: Box::new(source) };
        // A load that fails because the state is gone is fine if the
        // container ended meanwhile (its helper deletes the state first).
        let ended = || matches!(self.status(id), Ok(Some(Status::Exited { .. } | Status::Failed { .. })));
        if let (Signal::SIGKILL, Some(pid)) = (signal, pid) {
            // Not libcontainer's `kill`: after signalling, it records
            // Stopped in the container's state, and by then the helper may
            // have reaped the process and deleted that state; the kill then
            // failed with the state file not found (seen in CI).
            return match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
                Err(source) => Err(RuntimeError::Signal { id: id.to_owned(), source }),
            };
        }
        let mut container = match Container::load(self.state_root().join(id)) {
            Ok(container) => container,
            Err(_) if ended() => return Ok(()),
            Err(source) => return Err(error(source)),
        };
        if signal != Signal::SIGKILL {
            let cgroup = match container.spec() {
                Ok(spec) => spec.cgroup_path,
                Err(_) if ended() => return Ok(()),
                Err(source) => return Err(error(source)),
            };
            crate::cgroups::signal(&cgroup.to_string_lossy(), signal);
            return Ok(());
        }
        // Still being created (no status yet): libcontainer knows its
        // process, if it has one.
        match container.kill(signal, false) {
            // Its first process is gone already, and with it the namespace.
            Err(LibcontainerError::IncorrectStatus(ContainerStatus::Stopped)) => Ok(()),
            Err(_) if ended() => Ok(()),
            result => result.map_err(error),
        }
    }

    /// Mounts the container's root filesystem from image layers (lowest
    /// first) and returns where; `remove` unmounts it.
    pub fn mount_rootfs(&self, id: &str, layers: &[PathBuf]) -> Result<PathBuf, RuntimeError> {
        crate::rootfs::mount(&self.container_dir(id), layers).map_err(RuntimeError::Rootfs)
    }

    /// A command that runs `args` inside the running container `id` when
    /// spawned (with the spawner's standard streams); see [`crate::exec`].
    pub fn exec(&self, id: &str, args: &[String]) -> std::process::Command {
        crate::exec::command(&self.shim, &self.state_root(), id, args, false)
    }

    /// Like [`Layout::exec`], with the command on a pseudo-terminal
    /// (`kubectl exec -t`) relayed to the spawned process's streams.
    pub fn exec_tty(&self, id: &str, args: &[String]) -> std::process::Command {
        crate::exec::command(&self.shim, &self.state_root(), id, args, true)
    }

    /// Releases an exited container's root filesystem but keeps its folder,
    /// so its log and status stay readable (`kubectl logs --previous`).
    pub fn release(&self, id: &str) -> Result<(), RuntimeError> {
        crate::rootfs::unmount(&self.container_dir(id)).map_err(RuntimeError::Rootfs)
    }

    /// Removes an exited container's folder (bundle, status, log, writable
    /// layer), unmounting its root filesystem first.
    pub fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.container_dir(id);
        // Normally gone already (the helper deletes it before recording the
        // exit); left when that delete failed or the helper was killed.
        self.delete_state(id);
        crate::rootfs::unmount(&dir).map_err(RuntimeError::Rootfs)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::Io { path: dir, source: e }),
            _ => Ok(()),
        }
    }

    /// Deletes libcontainer's state of `id` (and so its cgroups, killing
    /// whatever still runs in them), if there is any; a state folder that
    /// libcontainer cannot load is removed as it is.
    fn delete_state(&self, id: &str) {
        let state = self.state_root().join(id);
        if !state.exists() {
            return;
        }
        match Container::load(state.clone()) {
            Ok(mut container) => {
                if let Err(error) = container.delete(true) {
                    tracing::warn!(%id, %error, "could not delete the container's state");
                }
            }
            Err(error) => {
                tracing::warn!(%id, %error, "removing container state libcontainer cannot load");
                let _ = std::fs::remove_dir_all(&state);
            }
        }
    }

    /// Deletes libcontainer's state of every container whose folder is gone
    /// (a daemon killed between removing a container's folder and its
    /// state, or a helper killed during its cleanup); how many. Run at start,
    /// before anything is created.
    pub fn collect_orphaned_state(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.state_root()) else { return 0 };
        let mut collected = 0;
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && !self.container_dir(&id).exists() {
                tracing::info!(%id, "deleting the state of a container whose folder is gone");
                self.delete_state(&id);
                collected += 1;
            }
        }
        collected
    }

    /// One look at whether the container has ended: its final status once
    /// it has, `Lost` when its helper is gone (no one is left to write that
    /// status), `None` while it runs or is made.
    pub fn ended(&self, id: &str) -> Result<Option<Status>, RuntimeError> {
        match self.observe(id)? {
            Observed::Finished(status) => Ok(Some(status)),
            Observed::Lost => Err(RuntimeError::Lost { id: id.to_owned() }),
            Observed::Running | Observed::Creating => Ok(None),
        }
    }

    /// Waits until the container has exited, polling its status.
    pub fn wait(&self, id: &str, deadline: Duration) -> Result<Status, RuntimeError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.ended(id)? {
                return Ok(status);
            }
            if started.elapsed() > deadline {
                return Err(RuntimeError::Timeout { id: id.to_owned(), waited: deadline });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PID no process has: above the kernel's limit.
    const GONE: i32 = i32::MAX;

    /// A stand-in for the fork server: a shell script.
    fn server(dir: &std::path::Path, name: &str, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_start_ends_when_no_helper_can_report() {
        let dir = tempfile::tempdir().unwrap();
        let config = ContainerConfig { id: "c-unreported".into(), rootfs: dir.path().into(), args: vec!["true".into()], ..Default::default() };
        // A server that ends at once (a broken binary): said at once, not
        // after the deadline, whether the request was queued before it
        // ended (its descriptors close with it) or found it gone.
        let layout = Layout::new(dir.path().join("node"), server(dir.path(), "ends", "exit 0"));
        let started = Instant::now();
        let error = layout.start(&config, Duration::from_secs(30)).unwrap_err();
        assert!(matches!(error, RuntimeError::StartFailed { .. } | RuntimeError::Spawn { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A server that never forks: the deadline, then the layout's end
        // takes the server with it.
        let layout = Layout::new(dir.path().join("node"), server(dir.path(), "stuck", "exec sleep 30"));
        let started = Instant::now();
        assert!(matches!(layout.start(&config, Duration::from_millis(200)), Err(RuntimeError::Timeout { .. })));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(layout);
        assert!(started.elapsed() < Duration::from_secs(5), "the stuck server was waited for");
    }

    #[test]
    fn a_container_whose_process_and_helper_are_gone_is_lost_not_waited_for() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path(), "/nonexistent/driftless-shim");
        let dir = layout.container_dir("lost-c0ffee");
        std::fs::create_dir_all(&dir).unwrap();
        let running = |shim_pid: i32, shim_start_ticks| Status::Running { pid: GONE, shim_pid, shim_start_ticks, started_at: "2026-12-04T00:00:00Z".into() };
        crate::status::write(&dir, &running(GONE, None)).unwrap();
        let started = Instant::now();
        assert!(matches!(layout.wait("lost-c0ffee", Duration::from_secs(10)), Err(RuntimeError::Lost { .. })));
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        // One whose helper lives is waited for (here, until the deadline):
        // the process that started at the time recorded.
        let mut helper = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let helper_pid = helper.id() as i32;
        let helper_started = crate::status::process_start_ticks(helper_pid);
        assert!(helper_started.is_some());
        crate::status::write(&dir, &running(helper_pid, helper_started)).unwrap();
        assert!(matches!(layout.wait("lost-c0ffee", Duration::from_millis(50)), Err(RuntimeError::Timeout { .. })));
        // A live process that is not its helper (the pid was reused: it
        // started at another time) is not.
        crate::status::write(&dir, &running(helper_pid, helper_started.map(|t| t + 1))).unwrap();
        assert!(matches!(layout.wait("lost-c0ffee", Duration::from_millis(50)), Err(RuntimeError::Lost { .. })));
        // A status from before start times were recorded goes by the
        // helper's command line, which names the container.
        let mut old_helper = std::process::Command::new("sh").args(["-c", "sleep 5; true", "lost-c0ffee"]).spawn().unwrap();
        crate::status::write(&dir, &running(old_helper.id() as i32, None)).unwrap();
        assert!(matches!(layout.wait("lost-c0ffee", Duration::from_millis(50)), Err(RuntimeError::Timeout { .. })));
        crate::status::write(&dir, &running(std::process::id() as i32, None)).unwrap();
        assert!(matches!(layout.wait("lost-c0ffee", Duration::from_millis(50)), Err(RuntimeError::Lost { .. })));
        let _ = old_helper.kill();
        let _ = old_helper.wait();
        let _ = helper.kill();
        let _ = helper.wait();
    }
}
