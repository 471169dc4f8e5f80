//! The `driftless` binary: parses arguments, sets up the process, runs the
//! command and turns its outcome into an exit code. Everything else lives in
//! the library.

use std::process::ExitCode;

use clap::Parser;
use driftless::process;

fn main() -> ExitCode {
    // Parsing starts no thread, so what follows still runs before any.
    let cli = driftless::cli::Cli::parse();
    if matches!(cli.command, driftless::cli::Command::Up(_) | driftless::cli::Command::Agent(_)) {
        // Only what stays up trades malloc's speed for memory: `validate`
        // and `plan` parse files on one thread per core, and with one
        // arena they spent half their time waiting on its lock.
        process::limit_malloc_arenas();
    } else {
        process::die_on_broken_pipe();
    }
    process::init_logging(cli.log_format);
    driftless::run(cli)
}
