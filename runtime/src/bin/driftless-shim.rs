//! `driftless-shim`: runs one container and outlives the daemon that
//! started it. See `driftless_runtime::shim`. Kept apart from the
//! `driftless` binary so that it starts single-threaded and small.

use std::path::PathBuf;
use std::process::ExitCode;

use driftless_runtime::shim::{self, ShimArgs};

fn main() -> ExitCode {
    let mut id = None;
    let mut bundle = None;
    let mut state_root = None;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--id", Some(v)) => id = Some(v),
            ("--bundle", Some(v)) => bundle = Some(PathBuf::from(v)),
            ("--state-root", Some(v)) => state_root = Some(PathBuf::from(v)),
            ("--dir", Some(v)) => dir = Some(PathBuf::from(v)),
            _ => return usage(),
        }
    }
    let (Some(id), Some(bundle), Some(state_root), Some(dir)) = (id, bundle, state_root, dir) else {
        return usage();
    };
    match shim::run(&ShimArgs { id, bundle, state_root, dir }) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("driftless-shim: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: driftless-shim --id ID --bundle DIR --state-root DIR --dir DIR");
    ExitCode::from(2)
}
