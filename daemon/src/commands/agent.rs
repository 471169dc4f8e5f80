//! `driftless agent`: a node joining a control plane through its HTTPS API
//! with a node token (`system:node:<name>` in group `system:nodes`), as a
//! kubelet joins kube-apiserver.
//!
//! This is its first part (issue 19): it registers the node and keeps it
//! alive, writing its Node (with its status) and renewing its Lease in
//! `kube-node-lease` every 10 s; the control plane's node lifecycle marks
//! it Unknown and tainted when it stops. Running the pods bound to it comes
//! next, and until then the command is hidden from `--help`.
//!
//! Must not touch: any object but its own Node and Lease (the API refuses
//! them to a node token anyway).

use std::process::ExitCode;

use driftless_api::Client;
use driftless_api::client::Endpoint;
use driftless_controllers::context::rfc3339;
use driftless_controllers::lifecycle::lease_object;
use driftless_controllers::node::{HEARTBEAT, NodeInfo};
use serde_json::Value;

use crate::cli::AgentArgs;
use crate::error::CommandError;

/// Runs until SIGINT or SIGTERM.
pub fn run(args: &AgentArgs) -> Result<ExitCode, CommandError> {
    let address = args
        .server
        .strip_prefix("https://")
        .map(|a| a.trim_end_matches('/').to_owned())
        .ok_or_else(|| CommandError::Usage(format!("--server {:?}: the control plane's API as https://HOST:PORT", args.server)))?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| CommandError::Io { path: "tokio runtime".into(), source })?;
    let client = Client::new(Endpoint::Https { address: address.clone(), token: Some(args.token.clone()), ca: args.certificate_authority.clone() });
    let info = NodeInfo::of_this_machine(&args.node_name, &args.node_ip, &args.pod_cidr);
    runtime.block_on(async move {
        let since = rfc3339(jiff::Timestamp::now());
        let mut tick = tokio::time::interval(HEARTBEAT);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|source| CommandError::Io { path: "SIGTERM".into(), source })?;
        let mut joined = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
            let now = jiff::Timestamp::now();
            let span = tracing::info_span!("heartbeat", node = %info.name);
            let _entered = span.enter();
            let node = match client.put(&format!("/api/v1/nodes/{}", info.name), &info.object(&rfc3339(now), &since)).await {
                Ok(node) => node,
                Err(error) => {
                    tracing::warn!(%error, "posting the node's status failed");
                    continue;
                }
            };
            let uid = node.pointer("/metadata/uid").and_then(Value::as_str);
            let lease = lease_object(&info.name, now, uid);
            if let Err(error) = client.put(&format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}", info.name), &lease).await {
                tracing::warn!(%error, "renewing the node's lease failed");
                continue;
            }
            if !joined {
                joined = true;
                eprintln!("driftless: agent: node {} joined https://{address}", info.name);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
