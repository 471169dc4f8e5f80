//! The helper that runs one container: `driftless-shim`.
//!
//! It is started fresh (single-threaded) for every container, becomes the
//! leader of its own session so that it survives the daemon, and makes
//! itself a child subreaper so the container's init process (and anything
//! that process orphans) is its child to reap. Then it:
//! 1. creates and starts the container with `libcontainer`, its output
//!    going into pipes;
//! 2. records `Running` in the status file;
//! 3. copies the output into the CRI log, on two threads started only after
//!    `libcontainer` has finished cloning;
//! 4. reaps the init process and deletes the container, which removes its
//!    cgroups and state;
//! 5. records `Exited` with the code or signal.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

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
        /// Why.
        #[source]
        source: libcontainer::error::LibcontainerError,
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
pub fn run(args: &ShimArgs) -> Result<Exit, ShimError> {
    match run_inner(args) {
        Ok(exit) => Ok(exit),
        Err(error) => {
            let failed = Status::Failed { message: error.to_string() };
            let _ = status::write(&args.dir, &failed);
            Err(error)
        }
    }
}

fn run_inner(args: &ShimArgs) -> Result<Exit, ShimError> {
    // A session of its own: the daemon's death (its terminal's SIGHUP, a
    // Ctrl-C to its process group) never reaches the helper or the
    // container. Already being a leader (EPERM) is fine.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true).map_err(sys("become a child subreaper"))?;

    let log_path = args.dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| ShimError::Io { path: log_path.clone(), source })?;
    let log = Arc::new(Mutex::new(log));
    let (out_read, out_write) = nix::unistd::pipe().map_err(sys("create the stdout pipe"))?;
    let (err_read, err_write) = nix::unistd::pipe().map_err(sys("create the stderr pipe"))?;

    let container_error = |source| ShimError::Container { id: args.id.clone(), source };
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
    let running = Status::Running { pid: pid.as_raw(), shim_pid: std::process::id() as i32, started_at: started_at.clone() };
    status::write(&args.dir, &running).map_err(|source| ShimError::Io { path: args.dir.join(status::FILE), source })?;

    // libcontainer has finished cloning; threads are safe from here on.
    let copiers = [(out_read, "stdout"), (err_read, "stderr")].map(|(fd, stream)| {
        let log = log.clone();
        std::thread::spawn(move || crate::log::copy(File::from(fd), stream, &log))
    });

    let exit = reap(pid);
    let deadline = std::time::Instant::now() + DRAIN;
    for copier in copiers {
        while !copier.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Cleanup comes before the report, so that `Exited` means the
    // container's cgroups and libcontainer state are already gone.
    if let Err(error) = container.delete(true) {
        tracing::warn!(id = %args.id, %error, "could not delete the container after it exited");
    }
    let exited = Status::Exited { pid: pid.as_raw(), started_at, exit: exit.clone() };
    status::write(&args.dir, &exited).map_err(|source| ShimError::Io { path: args.dir.join(status::FILE), source })?;
    Ok(exit)
}

/// Reaps children until the container's init process has exited; orphans
/// reparented to the helper are reaped on the way.
fn reap(init: Pid) -> Exit {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => {
                return Exit { code, signal: None, finished_at: status::now() };
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                return Exit { code: 128 + sig as i32, signal: Some(sig as i32), finished_at: status::now() };
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            // No children left without having seen init: it was reaped
            // elsewhere, which should not happen; record it as unknown.
            Err(_) => return Exit { code: 255, signal: None, finished_at: status::now() },
        }
    }
}
