//! `driftless-shim`: the daemon's fork server (`serve`), whose helpers each
//! run one container and outlive the daemon, and the helper's other modes
//! (`exec`, `cleanup`). See `driftless_runtime::forkserver` and
//! `driftless_runtime::shim`. Kept apart from the `driftless` binary so
//! that it starts single-threaded and small.

use std::path::PathBuf;
use std::process::ExitCode;

use driftless_runtime::forkserver;
use driftless_runtime::shim::{self, ShimArgs};

fn main() -> ExitCode {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    match raw.first().map(String::as_str) {
        Some(forkserver::SERVE) => {
            return match raw.as_slice() {
                [_, s, state_root, c, containers] if s == "--state-root" && c == "--containers" => {
                    forkserver::serve(&forkserver::Bounds { state_root: state_root.into(), containers: containers.into() })
                }
                _ => usage(),
            };
        }
        Some("exec") => {
            raw.remove(0);
            return exec(&raw);
        }
        Some("cleanup") => {
            raw.remove(0);
            return cleanup(&raw);
        }
        Some("--foreground") => raw.remove(0),
        _ => return usage(),
    };
    // A helper in the foreground, for a person debugging a bundle: the
    // daemon's helpers come from the fork server.
    let Some(args) = helper_args(raw) else { return usage() };
    match shim::run(&args, None, Vec::new()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("driftless-shim: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The helper's arguments.
fn helper_args(raw: Vec<String>) -> Option<ShimArgs> {
    let mut id = None;
    let mut bundle = None;
    let mut state_root = None;
    let mut dir = None;
    let mut args = raw.into_iter();
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--id", Some(v)) => id = Some(v),
            ("--bundle", Some(v)) => bundle = Some(PathBuf::from(v)),
            ("--state-root", Some(v)) => state_root = Some(PathBuf::from(v)),
            ("--dir", Some(v)) => dir = Some(PathBuf::from(v)),
            _ => return None,
        }
    }
    Some(ShimArgs { id: id?, bundle: bundle?, state_root: state_root?, dir: dir? })
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
    eprintln!("usage: driftless-shim serve --state-root DIR --containers DIR   (the daemon's fork server; requests on standard input)");
    eprintln!("       driftless-shim --foreground --id ID --bundle DIR --state-root DIR --dir DIR");
    eprintln!("       driftless-shim exec --id ID --state-root DIR [--tty [--resize-fd N]] -- COMMAND...");
    eprintln!("       driftless-shim cleanup --id ID --state-root DIR --dir DIR --pid P --started-at T --code C --finished-at F [--signal S]");
    ExitCode::from(2)
}
