//! The `driftless` binary: parses arguments, sets up the process, runs the
//! command and turns its outcome into an exit code. Everything else lives in
//! the library.

use std::process::ExitCode;

use clap::Parser;
use driftless::process;

fn main() -> ExitCode {
    process::limit_malloc_arenas();
    let cli = driftless::cli::Cli::parse();
    if !matches!(cli.command, driftless::cli::Command::Up(_) | driftless::cli::Command::Agent(_)) {
        process::die_on_broken_pipe();
    }
    process::init_logging(cli.log_format);
    driftless::run(cli)
}
