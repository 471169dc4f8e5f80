//! The `driftless` binary: parses arguments, sets up logging, runs the
//! command and turns its outcome into an exit code. Everything else lives in
//! the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = driftless::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTLESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libcgroups=error,libcontainer=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    driftless::run(cli)
}
