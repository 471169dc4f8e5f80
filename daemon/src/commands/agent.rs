//! `driftless agent`: checks its flags and runs a node joined to a
//! control plane (`crate::daemon::agent`).
//!
//! Must not touch: the node itself (the daemon module runs it).

use std::process::ExitCode;

use driftless_api::Client;
use driftless_api::client::Endpoint;

use crate::cli::AgentArgs;
use crate::daemon::DaemonConfig;
use crate::error::CommandError;

/// Runs until SIGINT or SIGTERM.
pub fn run(args: &AgentArgs) -> Result<ExitCode, CommandError> {
    let address = args
        .server
        .strip_prefix("https://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .ok_or_else(|| CommandError::Usage(format!("--server {:?}: the control plane's API as https://HOST:PORT", args.server)))?;
    let config = DaemonConfig::for_agent(args)?;
    let client = Client::new(Endpoint::Https { address, token: Some(args.token.clone()), ca: args.certificate_authority.clone() });
    crate::daemon::agent::run(config, client, args.server.clone(), args.token.clone())?;
    Ok(ExitCode::SUCCESS)
}
