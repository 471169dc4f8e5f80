//! Copying a container's output and reaping its init process, then handing
//! the process back to the helper for cleanup.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// How long output copiers may run after the init process exits (a
/// background process the container left behind may hold its pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// What the helper hands the reaper across `exec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaperArgs {
    /// The container's init process.
    pub pid: i32,
    /// The read ends of the container's stdout and stderr pipes.
    pub stdout_fd: i32,
    /// See `stdout_fd`.
    pub stderr_fd: i32,
    /// The log file.
    pub log: PathBuf,
    /// The helper binary to `exec` for cleanup, and its arguments.
    pub cleanup: Vec<String>,
}

/// Copies output and reaps; then replaces this process with the cleanup
/// command, with the exit appended as `--code C [--signal S]`. Returns only
/// if that `exec` fails.
pub fn run(args: &ReaperArgs) -> std::io::Error {
    let log = match crate::log::LogWriter::open(&args.log, crate::log::MAX_BYTES, crate::log::MAX_FILES) {
        Ok(writer) => Arc::new(Mutex::new(writer)),
        Err(error) => return error,
    };
    // Ownership of the pipe ends was handed over by the helper, which
    // cleared their close-on-exec flag for this purpose.
    let copiers = [(args.stdout_fd, "stdout"), (args.stderr_fd, "stderr")].map(|(fd, stream)| {
        let log = log.clone();
        let file = File::from(take_fd(fd));
        std::thread::spawn(move || crate::log::copy(file, stream, &log))
    });
    let exit = reap(Pid::from_raw(args.pid));
    let deadline = Instant::now() + DRAIN;
    for copier in copiers {
        while !copier.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let Some((program, rest)) = args.cleanup.split_first() else {
        return std::io::Error::other("no cleanup command");
    };
    let mut command = std::process::Command::new(program);
    command.args(rest).arg("--code").arg(exit.code.to_string()).arg("--finished-at").arg(&exit.finished_at);
    if let Some(signal) = exit.signal {
        command.arg("--signal").arg(signal.to_string());
    }
    command.exec()
}

/// Takes ownership of a descriptor inherited across `exec`.
#[allow(unsafe_code)]
fn take_fd(fd: i32) -> OwnedFd {
    // SAFETY: the helper opened this pipe end, cleared its close-on-exec
    // flag and passed its number on the command line precisely so that this
    // process takes it over; nothing else in this fresh process image knows
    // of it, so it is open and owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// How the container's init process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The exit code, or 128 + the signal number when killed by a signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When it was reaped (RFC 3339).
    pub finished_at: String,
}

/// Reaps children until the container's init process has exited; orphans
/// reparented to this subreaper are reaped on the way.
pub fn reap(init: Pid) -> Ended {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => {
                return Ended { code, signal: None, finished_at: crate::now() };
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                return Ended { code: 128 + sig as i32, signal: Some(sig as i32), finished_at: crate::now() };
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            // No children left without having seen init: it was reaped
            // elsewhere, which should not happen; record it as unknown.
            Err(_) => return Ended { code: 255, signal: None, finished_at: crate::now() },
        }
    }
}
