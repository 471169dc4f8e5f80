//! The helper that runs one container: `driftless-shim`.
//!
//! It is forked single-threaded for every container by the fork server
//! ([`crate::forkserver`]), becomes the
//! leader of its own session so that it survives the daemon, and makes
//! itself a child subreaper so the container's init process (and anything
//! that process orphans) is its child to reap. Then it:
//! 1. creates and starts the container with `libcontainer`, its output
//!    going into pipes;
//! 2. records `Running` in the status file;
//! 3. `exec`s the small, statically linked `driftless-reaper` in its own
//!    place (see the `driftless_reaper` crate and [`crate::reaper_binary`]),
//!    which copies the output into the CRI log and reaps
//!    the init process;
//! 4. comes back (the reaper `exec`s `driftless-shim cleanup`) to delete the
//!    container, which removes its cgroups and state;
//! 5. records `Exited` with the code or signal.
//!
//! If the reaper cannot be started, the helper does steps 3 and 4 itself.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

use crate::status::{self, Exit, Status};

/// The helper's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimArgs {
    /// The container id.
    pub id: String,
    /// The OCI bundle (holding `config.json`).
    pub bundle: PathBuf,
    /// `libcontainer`'s state root, shared by the node's containers.
    pub state_root: PathBuf,
    /// The container's folder, for its status file and log.
    pub dir: PathBuf,
}

/// The log file's name in the container's folder.
pub const LOG_FILE: &str = "container.log";

/// How long output copiers may run after the init process exits (a
/// background process the container left behind may hold its pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// Why the helper failed before the container ran.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A system call the helper needs failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Errno,
    },
    /// `libcontainer` could not create or start the container.
    #[error("container {id}: {source}")]
    Container {
        /// The container.
        id: String,
        /// Why (boxed: libcontainer's error is large, and every result of
        /// the helper would carry its size).
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    /// A file of the container's folder could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> ShimError {
    move |source| ShimError::Sys { what, source }
}

/// Runs the container to completion. The returned error has also been
/// recorded as `Failed` in the status file when that was possible.
///
/// `report`, when given, is the write end of the daemon's report pipe (see
/// [`crate::forkserver`]): one byte goes down it once the status says
/// Running or Failed, and it is closed. `mounts` are the container's
/// mounts handed over for the helper's own mount namespace
/// ([`crate::helper_ns`]), attached before anything else.
pub fn run(args: &ShimArgs, report: Option<OwnedFd>, mounts: Vec<(PathBuf, OwnedFd)>) -> Result<Exit, ShimError> {
    let mut report = Report(report);
    let attached = crate::helper_ns::attach(mounts).map_err(sys("attach the container's mounts in a mount namespace of its own"));
    match attached.and_then(|()| run_inner(args, &mut report)) {
        Ok(exit) => Ok(exit),
        Err(error) => {
            let failed = Status::Failed { message: error.to_string() };
            let _ = status::write(&args.dir, &failed);
            report.send();
            Err(error)
        }
    }
}

/// The daemon's report pipe, until the helper has reported.
struct Report(Option<OwnedFd>);

impl Report {
    fn send(&mut self) {
        if let Some(fd) = self.0.take() {
            // A daemon that is gone (killed) reads nothing: no matter.
            let _ = nix::unistd::write(&fd, b"r");
        }
    }
}

fn run_inner(args: &ShimArgs, report: &mut Report) -> Result<Exit, ShimError> {
    // A session of its own: the daemon's death (its terminal's SIGHUP, a
    // Ctrl-C to its process group) never reaches the helper or the
    // container. Already being a leader (EPERM) is fine.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("become a child subreaper"))?;

    let log_path = args.dir.join(LOG_FILE);
    let (out_read, out_write) = nix::unistd::pipe().map_err(sys("create the stdout pipe"))?;
    let (err_read, err_write) = nix::unistd::pipe().map_err(sys("create the stderr pipe"))?;

    let container_error = |source| ShimError::Container { id: args.id.clone(), source: Box::new(source) };
    let mut container = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(&args.state_root)
        .map_err(container_error)?
        .with_stdout(out_write)
        .with_stderr(err_write)
        .with_executor(DefaultExecutor {})
        .validate_id()
        .map_err(container_error)?
        .as_init(&args.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(container_error)?;
    container.start().map_err(container_error)?;
    let Some(pid) = container.pid() else {
        return Err(ShimError::Sys { what: "find the container's process", source: Errno::ESRCH });
    };
    let started_at = status::now();
    let shim_pid = std::process::id() as i32;
    let running = Status::Running { pid: pid.as_raw(), shim_pid, shim_start_ticks: status::process_start_ticks(shim_pid), started_at: started_at.clone() };
    status::write(&args.dir, &running).map_err(|source| ShimError::Io { path: args.dir.join(status::FILE), source })?;
    report.send();

    // Nothing of libcontainer is needed until the container exits: become
    // the small reaper (same process, same children) to save memory.
    let handover = hand_over(args, pid, &started_at, &log_path, [&out_read, &err_read]);
    tracing::warn!(id = %args.id, error = %handover, "could not become the reaper; watching the container from the helper");

    let log = crate::log::LogWriter::open(&log_path, crate::log::MAX_BYTES, crate::log::MAX_FILES)
        .map_err(|source| ShimError::Io { path: log_path.clone(), source })?;
    let log = Arc::new(Mutex::new(log));
    let copiers = [(out_read, "stdout"), (err_read, "stderr")].map(|(fd, stream)| {
        let log = log.clone();
        std::thread::spawn(move || crate::log::copy(File::from(fd), stream, &log))
    });
    let ended = driftless_reaper::reap::reap(pid);
    let exit = Exit { code: ended.code, signal: ended.signal, finished_at: ended.finished_at, oom_killed: false };
    let deadline = std::time::Instant::now() + DRAIN;
    for copier in copiers {
        while !copier.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let exited =
        CleanupArgs { id: args.id.clone(), state_root: args.state_root.clone(), dir: args.dir.clone(), pid: pid.as_raw(), started_at, exit: exit.clone() };
    cleanup(&exited)?;
    Ok(exit)
}

/// Replaces this process with `driftless-reaper`; returns only on failure.
fn hand_over(args: &ShimArgs, pid: Pid, started_at: &str, log: &std::path::Path, pipes: [&OwnedFd; 2]) -> std::io::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return error,
    };
    let reaper = match crate::reaper_binary::install(&args.state_root, &exe) {
        Ok(reaper) => reaper,
        Err(error) => return error,
    };
    for fd in pipes {
        // The pipes must survive the exec; they are still close-on-exec.
        if let Err(error) = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())) {
            return error.into();
        }
    }
    std::process::Command::new(reaper)
        // One malloc arena: the reaper's two copier threads would otherwise
        // each get their own, which costs resident memory on every pod.
        .env("MALLOC_ARENA_MAX", "1")
        .arg("--pid")
        .arg(pid.as_raw().to_string())
        .arg("--stdout-fd")
        .arg(pipes[0].as_raw_fd().to_string())
        .arg("--stderr-fd")
        .arg(pipes[1].as_raw_fd().to_string())
        .arg("--log")
        .arg(log)
        .arg("--")
        .arg(&exe)
        .arg("cleanup")
        .arg("--id")
        .arg(&args.id)
        .arg("--state-root")
        .arg(&args.state_root)
        .arg("--dir")
        .arg(&args.dir)
        .arg("--pid")
        .arg(pid.as_raw().to_string())
        .arg("--started-at")
        .arg(started_at)
        .exec()
}

/// What the helper's `cleanup` mode needs to finish a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanupArgs {
    /// The container id.
    pub id: String,
    /// `libcontainer`'s state root.
    pub state_root: PathBuf,
    /// The container's folder.
    pub dir: PathBuf,
    /// Its init process, while it ran.
    pub pid: i32,
    /// When it started.
    pub started_at: String,
    /// How it ended.
    pub exit: Exit,
}

/// Deletes the exited container (its cgroups and libcontainer state) and
/// only then records `Exited`, so that `Exited` means cleaned up.
pub fn cleanup(args: &CleanupArgs) -> Result<(), ShimError> {
    let mut exit = args.exit.clone();
    match libcontainer::container::Container::load(args.state_root.join(&args.id)) {
        Ok(mut container) => {
            // The cgroup holds the OOM count only until it is deleted.
            if let Ok(config) = container.spec() {
                exit.oom_killed = oom_killed(&config.cgroup_path);
            }
            if let Err(error) = container.delete(true) {
                tracing::warn!(id = %args.id, %error, "could not delete the container after it exited");
            }
        }
        Err(error) => tracing::warn!(id = %args.id, %error, "could not load the container to delete it"),
    }
    let exited = Status::Exited { pid: args.pid, started_at: args.started_at.clone(), exit };
    status::write(&args.dir, &exited).map_err(|source| ShimError::Io { path: args.dir.join(status::FILE), source })
}

/// Whether the memory cgroup at `path` (relative to the controller's root)
/// counted an OOM kill: `oom_kill` in `memory.oom_control` under cgroup v1,
/// in `memory.events` under v2.
fn oom_killed(path: &std::path::Path) -> bool {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let count = |file: PathBuf| {
        std::fs::read_to_string(file).ok().and_then(|text| text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse::<u64>().ok()))
    };
    let v1 = count(std::path::Path::new("/sys/fs/cgroup/memory").join(relative).join("memory.oom_control"));
    let v2 = count(std::path::Path::new("/sys/fs/cgroup").join(relative).join("memory.events"));
    v1.or(v2).is_some_and(|n| n > 0)
}
