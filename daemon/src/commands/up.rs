//! `driftless up` and `driftless reset`.

use std::process::ExitCode;

use crate::CommandError;
use crate::cli::{ResetArgs, UpArgs};
use crate::daemon::{self, DaemonConfig};

/// Runs the daemon until a signal.
pub fn run(args: &UpArgs) -> Result<ExitCode, CommandError> {
    daemon::run(DaemonConfig::from_args(args)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Stops what a daemon left running.
pub fn reset(args: &ResetArgs) -> Result<ExitCode, CommandError> {
    daemon::reset(&args.data_dir, args.purge)?;
    Ok(ExitCode::SUCCESS)
}
