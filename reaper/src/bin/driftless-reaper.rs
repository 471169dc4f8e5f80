//! `driftless-reaper`: watches a running container in the helper's place,
//! at a fraction of its memory. See the `driftless_reaper` library.
//!
//! Usage (by `driftless-shim` only): `driftless-reaper --pid P --stdout-fd N
//! --stderr-fd M --log PATH -- CLEANUP-COMMAND...`

use std::path::PathBuf;
use std::process::ExitCode;

use driftless_reaper::reap::{self, ReaperArgs};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else { return usage() };
    let (flags, cleanup) = (&args[..split], args[split + 1..].to_vec());
    let (mut pid, mut stdout_fd, mut stderr_fd, mut log) = (None, None, None, None);
    for pair in flags.chunks(2) {
        match pair {
            [flag, value] if flag == "--pid" => pid = value.parse().ok(),
            [flag, value] if flag == "--stdout-fd" => stdout_fd = value.parse().ok(),
            [flag, value] if flag == "--stderr-fd" => stderr_fd = value.parse().ok(),
            [flag, value] if flag == "--log" => log = Some(PathBuf::from(value)),
            _ => return usage(),
        }
    }
    let (Some(pid), Some(stdout_fd), Some(stderr_fd), Some(log)) = (pid, stdout_fd, stderr_fd, log) else {
        return usage();
    };
    let error = reap::run(&ReaperArgs { pid, stdout_fd, stderr_fd, log, cleanup });
    eprintln!("driftless-reaper: cannot run the cleanup: {error}");
    ExitCode::FAILURE
}

fn usage() -> ExitCode {
    eprintln!("usage: driftless-reaper --pid P --stdout-fd N --stderr-fd M --log PATH -- CLEANUP-COMMAND...");
    ExitCode::from(2)
}
