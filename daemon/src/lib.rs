//! The `driftless` command line: the daemon (`up`), its clients (`get`,
//! `describe`, `logs`, `exec`, `rollout`, `history`, `status`, `sync`,
//! `delete pod`), and the commands that need no daemon (`init`, `validate`,
//! `plan`, `image`, `reset`).
//!
//! Owns: argument parsing ([`cli`]), each command's flow ([`commands`]),
//! the daemon's wiring of store, node, controllers, sync loop and API
//! ([`daemon`]), printing as kubectl prints ([`print`]), and the mapping of
//! outcomes to exit codes (0 success, 1 the input is invalid or a rollout
//! failed, 2 usage or I/O error).
//!
//! Must not touch: validation, planning, reconciling or running containers,
//! which live in their crates so the daemon and the CLI share them exactly.

pub mod cli;
pub mod commands;
mod connect;
pub mod daemon;
mod error;
pub mod print;
pub mod process;
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
        cli::Command::Diff(args) => commands::plan::diff(&args),
        cli::Command::Image(command) => commands::image::run(&command),
        cli::Command::Secrets(command) => commands::secrets::run(&command),
        cli::Command::Up(args) => commands::up::run(&args),
        cli::Command::Reset(args) => commands::up::reset(&args),
        cli::Command::Get(args) => commands::get::run(&args),
        cli::Command::Describe(args) => commands::describe::run(&args),
        cli::Command::Logs(args) => commands::logs::run(&args),
        cli::Command::Exec(args) => commands::exec::run(&args),
        cli::Command::Rollout(command) => commands::rollout::run(&command),
        cli::Command::History(args) => commands::history::run(&args),
        cli::Command::Top(command) => commands::top::run(&command),
        cli::Command::Status(args) => commands::status::run(&args),
        cli::Command::Sync(args) => commands::status::sync(&args),
        cli::Command::Delete(args) => commands::write::delete(&args),
        cli::Command::Scale(args) => commands::write::scale(&args),
        cli::Command::Edit(args) => commands::write::edit(&args),
        cli::Command::Set(command) => commands::write::set(&command),
        cli::Command::Label(args) => commands::write::metadata(&args, false),
        cli::Command::Annotate(args) => commands::write::metadata(&args, true),
        cli::Command::Apply(args) => commands::write::apply(&args),
        cli::Command::Create(command) => commands::write::create(&command),
        cli::Command::Autoscale(args) => commands::write::autoscale(&args),
        cli::Command::Rollback(args) => commands::write::rollback(&args),
        cli::Command::PortForward(args) => commands::port_forward::run(&args),
        cli::Command::Completion(args) => commands::help::completion(&args),
        cli::Command::Kubeconfig(args) => commands::kubeconfig::run(&args),
        cli::Command::Man => commands::help::man(),
        cli::Command::Agent(args) => commands::agent::run(&args),
        cli::Command::Cordon(args) => commands::node::cordon(&args, true),
        cli::Command::Uncordon(args) => commands::node::cordon(&args, false),
        cli::Command::Drain(args) => commands::node::drain(&args),
    };
    exit_code(outcome)
}

/// The exit code of a command's outcome; its error, if any, on standard
/// error.
pub fn exit_code(outcome: Result<ExitCode, CommandError>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("driftless: error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
