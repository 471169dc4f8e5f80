//! `driftless agent`: a node joining a control plane through its HTTPS
//! API with a node token (`system:node:<name>` in group `system:nodes`),
//! as a kubelet joins kube-apiserver. It copies what a node needs from the
//! API (`driftless_api::RemoteStore`) and runs the same node as `up`'s
//! ([`super::node`]): the pods bound to it, their status, the service
//! network, and its Node and Lease every 10 s.
//!
//! Must not touch: anything the control plane owns. Its writes are a
//! kubelet's (the API refuses it the rest).

use std::sync::Arc;

use driftless_api::auth::{Caller, Tokens};
use driftless_api::{ApiState, Client, RemoteStore};
use driftless_controllers::Context;
use driftless_model::Kind;
use driftless_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DaemonConfig, GRACE, config, daemon_error, node, pki, wait_for_signal};
use crate::CommandError;

/// What a node reads: its pods and what they refer to (ConfigMaps,
/// Secrets, claims and volumes), and what its service network serves
/// (Services, their Endpoints, and pods for their addresses), and the
/// Nodes.
const KINDS: &[Kind] =
    &[Kind::Pod, Kind::Node, Kind::Service, Kind::Endpoints, Kind::ConfigMap, Kind::Secret, Kind::PersistentVolumeClaim, Kind::PersistentVolume];

/// How long the first copy of the control plane may take.
const FIRST_SYNC: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the node of `config` for the control plane `client` reaches,
/// until SIGTERM or SIGINT; blocks.
pub(crate) fn run(config: DaemonConfig, client: Client, server: String, token: String) -> Result<(), CommandError> {
    super::in_data_dir(config, "driftless-agent", |config| serve(config, client, server, token))
}

/// How long a node without a pod CIDR waits for the control plane to give
/// it one.
const CIDR_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Registers the node without a pod CIDR and waits for the one the control
/// plane gives it (its `--cluster-cidr`).
async fn given_pod_cidr(ctx: &Context, config: &DaemonConfig) -> Result<String, CommandError> {
    let mut info = driftless_controllers::node::NodeInfo::of_this_machine(&config.node_name, &config.host_ip()?, "");
    info.not_ready = Some("waiting for the control plane to give this node a pod CIDR".into());
    let registering = (ctx.clone(), info);
    tokio::task::spawn_blocking(move || driftless_controllers::node::register(&registering.0, &registering.1))
        .await
        .map_err(daemon_error)?
        .map_err(daemon_error)?;
    let key = driftless_store::Key::new(Kind::Node, "", config.node_name.clone());
    let deadline = tokio::time::Instant::now() + CIDR_WAIT;
    loop {
        if let Some(cidr) =
            ctx.store.get(&key).and_then(|n| n.pointer("/spec/podCIDR").and_then(serde_json::Value::as_str).map(str::to_owned)).filter(|c| !c.is_empty())
        {
            tracing::info!(%cidr, "the control plane gave this node its pod CIDR");
            return Ok(cidr);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CommandError::Usage(format!(
                "no --pod-cidr, and the control plane gave node {} none within {CIDR_WAIT:?} (is it run with --cluster-cidr?)",
                config.node_name
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn serve(config: DaemonConfig, client: Client, server: String, token: String) -> Result<(), CommandError> {
    let remote = Arc::new(RemoteStore::connect(client, KINDS).map_err(daemon_error)?);
    if !remote.synced(KINDS, FIRST_SYNC).await {
        return Err(CommandError::Usage(format!(
            "could not list {} from the control plane at {server} within {FIRST_SYNC:?} (is it up, and is the token a node's?)",
            KINDS.iter().map(|k| k.plural()).collect::<Vec<_>>().join(", ")
        )));
    }
    let store: Arc<dyn Store> = remote.clone();
    let _node_lock = config::lock_node(&config.node_dir())?;
    let ctx = Context::remote(store, "kubelet", &config.node_name).map_err(daemon_error)?;
    let mut config = config;
    if config.pod_cidr.is_empty() {
        config.pod_cidr = given_pod_cidr(&ctx, &config).await?;
        config.node_config()?;
        config.save()?;
    }
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // The pods' streams, served to the control plane: its token is the
    // one credential taken, and the certificate chains to a CA of this
    // node's data folder, which its Node publishes.
    let listen = config.listen.clone().ok_or_else(|| CommandError::Usage("the agent needs an address to serve pod streams on".into()))?;
    let serving = pki::serving(&config.data_dir, &config.tls_names()?)?;
    let ca_path = pki::ca_path(&config.data_dir);
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|source| CommandError::Io { path: ca_path, source })?;
    let tls = driftless_api::tls::server_config(&serving.chain, &serving.key).map_err(|e| CommandError::Usage(format!("the agent's certificate: {e}")))?;
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|source| CommandError::Io { path: listen.clone().into(), source })?;
    let port = listener.local_addr().map_err(|source| CommandError::Io { path: listen.clone().into(), source })?.port();
    let streams = node::Streams { port, ca_pem };
    let running = node::start(&config, &ctx, &mut tasks, &cancel, Some(streams)).await?;
    let control_plane = Caller { user: "system:kube-apiserver".into(), uid: "kube-apiserver".into(), groups: Vec::new() };
    let mut state = ApiState::of_store(ctx.store.clone());
    state.node = Some(running.runtime.clone());
    state.node_name = Some(config.node_name.clone());
    state.tokens = Some(Arc::new(Tokens::one(&token, control_plane)));
    state.shutdown = cancel.clone();
    tasks.spawn(async move {
        if let Err(error) = driftless_api::serve_tls(listener, tls, state, None).await {
            tracing::error!(%error, "the pod stream server failed");
        }
    });
    tracing::info!(%listen, "serving pod streams to the control plane");
    tracing::info!(node = %config.node_name, %server, "the agent is up");
    eprintln!("driftless: agent: node {} joined {server}", config.node_name);

    wait_for_signal().await;
    tracing::info!("shutting down; pods keep running for the next agent to adopt");
    cancel.cancel();
    if tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tasks.abort_all();
    }
    // Both own runtimes of their own, which may not be dropped here.
    let _ = tokio::task::spawn_blocking(move || {
        drop(running);
        drop(ctx);
        drop(remote);
    })
    .await;
    Ok(())
}
