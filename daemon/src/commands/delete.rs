//! `driftless delete pod NAME`: the one deletion the daemon takes outside
//! git, because it changes nothing declared: the pod's owner makes another.

use std::process::ExitCode;

use super::get::client_error;
use crate::CommandError;
use crate::cli::DeleteArgs;
use crate::connect::{block_on, client};

/// Runs `delete`.
pub fn run(args: &DeleteArgs) -> Result<ExitCode, CommandError> {
    let kind = args.resource.to_ascii_lowercase();
    if !matches!(kind.as_str(), "pod" | "pods" | "po") {
        return Err(CommandError::Usage(format!(
            "only pods can be deleted outside git; to delete {} {:?}, remove it from the repository and commit",
            args.resource, args.name
        )));
    }
    block_on(async {
        client(&args.connect).delete(&format!("/api/v1/namespaces/{}/pods/{}", args.namespace, args.name)).await.map_err(client_error)?;
        println!("pod {:?} deleted", args.name);
        Ok(ExitCode::SUCCESS)
    })
}
