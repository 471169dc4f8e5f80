//! The status file the helper keeps for its container: how the daemon (or
//! a daemon restarted after a crash) learns what the container is doing.
//!
//! Written atomically (temporary file, then rename), so a reader sees the
//! previous state or the next, never half of one.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How a container's init process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, or 128 + the signal number when killed by a signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// When the helper reaped it (RFC 3339).
    pub finished_at: String,
    /// Whether the kernel's OOM killer killed a process of the container
    /// (its memory cgroup counted an `oom_kill`).
    #[serde(default)]
    pub oom_killed: bool,
}

impl Exit {
    /// The reason Kubernetes gives a terminated container.
    pub fn reason(&self) -> &'static str {
        match (self.oom_killed, self.code) {
            (true, _) => "OOMKilled",
            (false, 0) => "Completed",
            (false, _) => "Error",
        }
    }
}

/// What the helper reports about its container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    /// The container's process is running.
    Running {
        /// Its PID in the host's PID namespace.
        pid: i32,
        /// The helper's PID.
        shim_pid: i32,
        /// When it started (RFC 3339).
        started_at: String,
    },
    /// The container's process has ended.
    Exited {
        /// Its PID, while it was running.
        pid: i32,
        /// When it started (RFC 3339).
        started_at: String,
        /// How it ended.
        exit: Exit,
    },
    /// The helper could not start the container.
    Failed {
        /// Why, in the runtime's words.
        message: String,
    },
}

/// The file name of the status file inside a container's folder.
pub const FILE: &str = "status.json";

/// Reads the status in `dir`, `None` while there is none yet.
pub fn read(dir: &Path) -> std::io::Result<Option<Status>> {
    match std::fs::read(dir.join(FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the status in `dir` atomically; durably too, except `Running`.
pub fn write(dir: &Path, status: &Status) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
    // How a container ended must survive a power cut (restart policies and
    // Jobs act on it). That it runs need not: the loss that would drop it
    // stops the container too, and every container start waits for it
    // (a quarter of a millisecond here, more on a busy disk).
    if !matches!(status, Status::Running { .. }) {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(FILE))
}

/// Now, as RFC 3339 with nanoseconds, the form Kubernetes and CRI logs use.
pub fn now() -> String {
    driftless_reaper::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let running = Status::Running { pid: 42, shim_pid: 41, started_at: now() };
        write(dir.path(), &running).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(running));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temporary file is left behind");
    }
}
