//! `driftless logs`: what a container wrote, its previous instance's, or
//! followed as it writes.

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::LogsArgs;
use crate::connect::{block_on, client};

/// Runs `logs`.
pub fn run(args: &LogsArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let client = client(&args.connect);
        let tail = args.tail.map(|t| t.to_string());
        let container = super::container::pick(&client, &args.namespace, &args.pod, args.container.as_deref()).await?;
        let query = form_query(&[
            ("container", container.as_deref()),
            ("previous", args.previous.then_some("true")),
            ("follow", args.follow.then_some("true")),
            ("timestamps", args.timestamps.then_some("true")),
            ("tailLines", tail.as_deref()),
        ]);
        let path = format!("/api/v1/namespaces/{}/pods/{}/log{query}", args.namespace, args.pod);
        let mut stream = client.stream(&path).await.map_err(client_error)?;
        let mut stdout = std::io::stdout();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(client_error)?;
            if stdout.write_all(&chunk).and_then(|_| stdout.flush()).is_err() {
                // The reader went away (`| head`): done.
                break;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
