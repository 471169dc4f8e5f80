//! Reaching the daemon from a client command: its socket in the data
//! folder, or `--server` over HTTPS with a token; and the small runtime client
//! commands run on.

use driftless_api::client::Endpoint;
use driftless_api::{Client, SOCKET};

use crate::CommandError;
use crate::cli::ConnectArgs;

/// The client `args` describe.
pub(crate) fn client(args: &ConnectArgs) -> Client {
    match &args.server {
        Some(server) => {
            let address = server.trim_start_matches("https://").trim_end_matches('/').to_owned();
            let ca = args.certificate_authority.clone().unwrap_or_else(|| crate::daemon::pki::ca_path(&args.data_dir));
            Client::new(Endpoint::Https { address, token: args.token.clone(), ca })
        }
        None => Client::new(Endpoint::Unix(args.data_dir.join(SOCKET))),
    }
}

/// Runs a client command's future to completion.
pub(crate) fn block_on<T>(future: impl std::future::Future<Output = Result<T, CommandError>>) -> Result<T, CommandError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| CommandError::Io { path: "tokio runtime".into(), source })?;
    runtime.block_on(future)
}
