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
        /// When the helper started, in clock ticks after boot
        /// ([`process_start_ticks`]): with its PID, this names the helper
        /// through every `exec` it makes (shim, reaper, cleanup) and tells
        /// it from a process that was given the same PID later. `None` in
        /// statuses written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shim_start_ticks: Option<u64>,
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

/// What `/proc/PID/stat` says of a process: whether it is a zombie (or
/// dead), and when it started, in clock ticks after boot (field 22). `None`
/// when there is no such process.
pub fn process_stat(pid: i32) -> Option<(bool, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<(bool, u64)> {
    // The command name (field 2) is in parentheses and may hold anything,
    // spaces and parentheses included: the fields after it are counted
    // from the last ") ".
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some((state.starts_with('Z') || state.starts_with('X'), started))
}

/// When the process `pid` started, in clock ticks after boot.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, started)| started)
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
        let running = Status::Running { pid: 42, shim_pid: 41, shim_start_ticks: Some(7), started_at: now() };
        write(dir.path(), &running).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(running));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE], "no temporary file is left behind");
    }

    #[test]
    fn reads_a_status_written_before_start_ticks_were_recorded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), r#"{"state":"running","pid":42,"shim_pid":41,"started_at":"2026-12-04T00:00:00Z"}"#).unwrap();
        let expected = Status::Running { pid: 42, shim_pid: 41, shim_start_ticks: None, started_at: "2026-12-04T00:00:00Z".into() };
        assert_eq!(read(dir.path()).unwrap(), Some(expected));
    }

    #[test]
    fn a_process_start_time_is_read_past_any_command_name() {
        let me = std::process::id() as i32;
        let (zombie, started) = process_stat(me).unwrap();
        assert!(!zombie);
        assert!(started > 0);
        assert_eq!(process_start_ticks(me), Some(started));
        assert_eq!(process_stat(i32::MAX), None);
        // The command name may hold spaces and parentheses (`prctl` sets
        // any); the line is shaped as the kernel writes it.
        let line = "16715 (a) (b c) Z 1 16715 16715 0 -1 4194560 286 476 0 0 0 0 0 0 20 0 1 0 3967760 15335424 0\n";
        assert_eq!(parse_stat(line), Some((true, 3967760)));
        assert_eq!(parse_stat("16715 (sh) S 1 2"), None);
    }
}
