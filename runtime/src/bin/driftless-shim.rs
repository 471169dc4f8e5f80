//! `driftless-shim`: runs one container and outlives the daemon that
//! started it. See `driftless_runtime::shim`. Kept apart from the
//! `driftless` binary so that it starts single-threaded and small.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use driftless_runtime::shim::{self, ShimArgs};

fn main() -> ExitCode {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("exec") {
        raw.remove(0);
        return exec(&raw);
    }
    if raw.first().map(String::as_str) == Some("cleanup") {
        raw.remove(0);
        return cleanup(&raw);
    }
    // Detach: the real helper is a child of this short-lived process, which
    // exits at once. The launcher reaps this one; the helper is reparented
    // to init, so no daemon ever collects zombie helpers, and a restarted
    // daemon finds helpers the same way as a fresh one.
    let foreground = raw.first().map(String::as_str) == Some("--foreground");
    if foreground {
        raw.remove(0);
    }
    let Some((args, within)) = helper_args(raw) else { return usage() };
    if foreground {
        return run(&args, None);
    }
    detach(&args, within)
}

/// The helper's arguments, and how long its launcher waits for its report.
fn helper_args(raw: Vec<String>) -> Option<(ShimArgs, Duration)> {
    let mut id = None;
    let mut bundle = None;
    let mut state_root = None;
    let mut dir = None;
    let mut within = Duration::from_secs(60);
    let mut args = raw.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--id", Some(v)) => id = Some(v),
            ("--bundle", Some(v)) => bundle = Some(PathBuf::from(v)),
            ("--state-root", Some(v)) => state_root = Some(PathBuf::from(v)),
            ("--dir", Some(v)) => dir = Some(PathBuf::from(v)),
            ("--report-within", Some(v)) => within = Duration::from_millis(v.parse().ok()?),
            _ => return None,
        }
    }
    Some((ShimArgs { id: id?, bundle: bundle?, state_root: state_root?, dir: dir? }, within))
}

/// Runs the helper in this process, until its container has ended.
fn run(args: &ShimArgs, report: Option<OwnedFd>) -> ExitCode {
    match shim::run(args, report) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("driftless-shim: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Forks the helper off, then waits for its report: the launcher exits once
/// the status file says Running or Failed, so the daemon needs only wait
/// for this process. A fork, not a second `exec` of this binary: loading it
/// again cost a millisecond or more of every container start.
#[allow(unsafe_code)]
fn detach(args: &ShimArgs, within: Duration) -> ExitCode {
    let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(ends) => ends,
        Err(error) => {
            eprintln!("driftless-shim: cannot make the report pipe: {error}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: nothing in this process has started a thread (the launcher
    // only parsed its arguments), so the child is a whole copy of a
    // single-threaded process and may run any code.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(write);
            ExitCode::from(wait_for_report(&read, within))
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(read);
            run(args, Some(write))
        }
        Err(error) => {
            eprintln!("driftless-shim: cannot start the helper: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The launcher's wait, as its exit code: a byte means the helper reported
/// (0); the end of the pipe, that it ended without ([`shim::UNREPORTED`]).
fn wait_for_report(read: &OwnedFd, within: Duration) -> u8 {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Whole milliseconds, rounded up: never give up before the deadline.
        let millis = PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, millis) {
            Ok(0) if Instant::now() < deadline => continue,
            Ok(0) => return shim::NOT_REPORTED_IN_TIME,
            Ok(_) => {
                let mut byte = [0u8; 1];
                return match nix::unistd::read(read.as_raw_fd(), &mut byte) {
                    Ok(1) => 0,
                    _ => shim::UNREPORTED,
                };
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => {
                eprintln!("driftless-shim: waiting for the helper's report: {error}");
                return 1;
            }
        }
    }
}

/// `driftless-shim exec --id ID --state-root DIR [--tty [--resize-fd N]]
/// -- COMMAND...`: runs a command in a running container with this
/// process's standard streams (on a terminal with `--tty`, resized by the
/// `COLUMNS ROWS` lines read from descriptor N) and exits with its status.
fn exec(args: &[String]) -> ExitCode {
    let Some(split) = args.iter().position(|a| a == "--") else { return usage() };
    let (flags, command) = (&args[..split], args[split + 1..].to_vec());
    let (mut id, mut state_root, mut resize_fd) = (None, None, None);
    let tty = flags.iter().any(|f| f == "--tty");
    let flags: Vec<&String> = flags.iter().filter(|f| *f != "--tty").collect();
    for pair in flags.chunks(2) {
        match pair {
            [flag, value] if *flag == "--id" => id = Some((*value).clone()),
            [flag, value] if *flag == "--state-root" => state_root = Some(PathBuf::from(value)),
            [flag, value] if *flag == "--resize-fd" => match value.parse() {
                Ok(fd) => resize_fd = Some(fd),
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let (Some(id), Some(state_root), false) = (id, state_root, command.is_empty()) else { return usage() };
    // A spawner that maps the resize descriptor says so in the environment
    // (an inherited descriptor 3 may be anything, a jobserver's pipe say).
    let resize_fd = resize_fd.or_else(|| std::env::var(driftless_nodeapi::EXEC_RESIZE_ENV).ok().and_then(|v| v.parse().ok()));
    match driftless_runtime::exec::run_in_this_process(&state_root, &id, command, tty, resize_fd) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(error) => {
            eprintln!("driftless-shim: {error}");
            ExitCode::from(126)
        }
    }
}

/// `driftless-shim cleanup --id ID --state-root DIR --dir DIR --pid P
/// --started-at T --code C --finished-at F [--signal S]`: run by the reaper
/// when the container has exited.
fn cleanup(args: &[String]) -> ExitCode {
    let mut fields = std::collections::HashMap::new();
    for pair in args.chunks(2) {
        match pair {
            [flag, value] if flag.starts_with("--") => {
                fields.insert(flag.trim_start_matches("--").to_owned(), value.clone());
            }
            _ => return usage(),
        }
    }
    let get = |k: &str| fields.get(k).cloned();
    let (Some(id), Some(state_root), Some(dir), Some(pid), Some(started_at), Some(code), Some(finished_at)) = (
        get("id"),
        get("state-root"),
        get("dir"),
        get("pid").and_then(|p| p.parse().ok()),
        get("started-at"),
        get("code").and_then(|c| c.parse().ok()),
        get("finished-at"),
    ) else {
        return usage();
    };
    let signal = get("signal").and_then(|s| s.parse().ok());
    let exit = driftless_runtime::Exit { code, signal, finished_at, oom_killed: false };
    let args = shim::CleanupArgs { id, state_root: state_root.into(), dir: dir.into(), pid, started_at, exit };
    match shim::cleanup(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("driftless-shim: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: driftless-shim [--foreground] [--report-within MS] --id ID --bundle DIR --state-root DIR --dir DIR");
    eprintln!("       driftless-shim exec --id ID --state-root DIR [--tty [--resize-fd N]] -- COMMAND...");
    eprintln!("       driftless-shim cleanup --id ID --state-root DIR --dir DIR --pid P --started-at T --code C --finished-at F [--signal S]");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_tells_a_report_from_a_helper_gone_or_late() {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (read, write) = pipe();
        nix::unistd::write(&write, b"r").unwrap();
        assert_eq!(wait_for_report(&read, Duration::from_secs(5)), 0, "reported");

        let (read, write) = pipe();
        drop(write);
        assert_eq!(wait_for_report(&read, Duration::from_secs(5)), shim::UNREPORTED, "the helper ended without a report");

        let (read, _write) = pipe();
        let started = Instant::now();
        assert_eq!(wait_for_report(&read, Duration::from_millis(50)), shim::NOT_REPORTED_IN_TIME);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
