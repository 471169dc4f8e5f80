//! The `driftless-agent` binary: `driftless agent` alone, for the machines
//! that join a control plane as nodes, as kubelet is a binary apart from
//! kube-apiserver. The same code runs under either name; this one leaves
//! out what a node never runs (git, the store, the controllers of the
//! control plane, validation and its schemas, the dashboard, the CLI's
//! other commands), so a node's binary is smaller and less of it is
//! resident (docs/benchmarks.md, "Several nodes").

use std::process::ExitCode;

use clap::Parser;
use driftless::cli::{AgentArgs, LogFormat};
use driftless::process;

/// Runs this machine as a node of a Driftless control plane, until SIGTERM
/// or SIGINT: its pods, their status and streams, the cluster DNS and the
/// service proxy (`driftless agent`, the same flags).
#[derive(Debug, Parser)]
#[command(name = "driftless-agent", version)]
struct AgentCli {
    #[command(flatten)]
    agent: AgentArgs,
    /// How logs are written to standard error: text for people, json (one
    /// object a line, with the spans it happened in) for log collectors.
    #[arg(long, value_enum, env = "DRIFTLESS_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    process::limit_malloc_arenas();
    let cli = AgentCli::parse();
    process::init_logging(cli.log_format);
    driftless::exit_code(driftless::commands::agent::run(&cli.agent))
}
