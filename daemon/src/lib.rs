//! The `driftless` command line: `init`, `validate`, `plan` and `image`
//! today; the daemon (`up`) and its clients join as the runtime and control
//! plane land.
//!
//! Owns: argument parsing ([`cli`]), each command's flow ([`commands`]),
//! printing, and the mapping of outcomes to exit codes (0 success, 1 the
//! input is invalid, 2 usage or I/O error).
//!
//! Must not touch: validation or planning logic, which live in
//! `driftless-validate` and `driftless-diff` so the daemon and the CLI share
//! them exactly.

pub mod cli;
pub mod commands;
mod error;
mod template;

use std::process::ExitCode;

pub use error::CommandError;

/// Exit code: the input is invalid (validation errors, an invalid target
/// revision).
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage, I/O or git error; nothing was judged.
pub const EXIT_USAGE: u8 = 2;

/// Runs one command and returns the process exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    let outcome = match cli.command {
        cli::Command::Init(args) => commands::init::run(&args),
        cli::Command::Validate(args) => commands::validate::run(&args),
        cli::Command::Plan(args) => commands::plan::run(&args),
        cli::Command::Image(command) => commands::image::run(&command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("driftless: error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
