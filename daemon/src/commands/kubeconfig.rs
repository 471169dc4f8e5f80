//! `driftless kubeconfig`: a kubeconfig for the daemon's HTTPS listener
//! (server, the CA it made, a user's token), read from the data folder,
//! so kubectl and other Kubernetes clients can use the API unchanged.
//!
//! Must not touch: the tokens file or the certificates (the daemon makes
//! them); it only reads them.

use std::process::ExitCode;

use base64::Engine;
use serde_json::json;

use crate::CommandError;
use crate::cli::KubeconfigArgs;
use crate::daemon::{DaemonConfig, pki};

/// Runs `kubeconfig`.
pub fn run(args: &KubeconfigArgs) -> Result<ExitCode, CommandError> {
    let config = DaemonConfig::load(&args.data_dir)?;
    let Some(listen) = &config.listen else {
        return Err(CommandError::Usage("the daemon serves no HTTPS: start it with `driftless up --listen 127.0.0.1:6443`".into()));
    };
    let server = match &args.server {
        Some(server) => server.clone(),
        None => {
            let address: std::net::SocketAddr = listen.parse().map_err(|e| CommandError::Usage(format!("--listen {listen}: {e}")))?;
            let host = if address.ip().is_unspecified() { "127.0.0.1".to_owned() } else { address.ip().to_string() };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            format!("https://{host}:{}", address.port())
        }
    };
    let path = config.tokens_path();
    let text = std::fs::read_to_string(&path).map_err(|source| CommandError::Io { path: path.clone(), source })?;
    let tokens = driftless_api::auth::Tokens::parse(&text).map_err(|e| CommandError::Usage(format!("{}: {e}", path.display())))?;
    let user = match &args.user {
        Some(user) => user.clone(),
        None => tokens.first_user().unwrap_or("admin").to_owned(),
    };
    let token = tokens.token_of(&user).ok_or_else(|| CommandError::Usage(format!("{} names no user {user:?}", path.display())))?;
    let mut cluster = json!({"server": server});
    // A certificate the user gave is trusted however they trust it; the
    // one the daemon made chains to its own CA.
    if config.tls_cert.is_none() {
        let ca = pki::ca_path(&config.data_dir);
        let pem = std::fs::read(&ca).map_err(|source| CommandError::Io { path: ca.clone(), source })?;
        cluster["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    let context = format!("{user}@driftless");
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "driftless", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "driftless", "user": user, "namespace": "default"}}],
        "current-context": context,
    });
    print!("{}", serde_yaml_ng::to_string(&kubeconfig).map_err(|e| CommandError::Usage(e.to_string()))?);
    Ok(ExitCode::SUCCESS)
}
