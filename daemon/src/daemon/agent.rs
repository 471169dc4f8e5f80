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
use driftless_api::{ApiState, Client, RemoteStore, Transform};
use driftless_controllers::Context;
use driftless_model::Kind;
use driftless_store::Store;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DaemonConfig, GRACE, config, daemon_error, node, pki, wait_for_signal};
use crate::CommandError;

/// What a node reads: its pods and what they refer to (ConfigMaps,
/// Secrets, claims and volumes), and what its service network serves
/// (Services, their Endpoints, and other nodes' pods for their DNS names,
/// kept small: [`other_nodes_pod`]), and the Nodes.
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

/// Keeps this node's pods whole and other nodes' pods as
/// [`other_nodes_pod`] leaves them.
fn keep_for(node: String) -> Transform {
    Box::new(move |kind, object| {
        if kind == Kind::Pod && object.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node.as_str()) { other_nodes_pod(object) } else { object }
    })
}

/// Another node's pod as this node keeps it: what names it, its uid and
/// version (which the copy and the kubelet compare), the node it runs on,
/// and what the cluster DNS reads of it (the zone's pod records: its
/// addresses, phase and readiness, its hostname and subdomain). Its
/// containers, volumes, owners and the rest are that node's business: a
/// node of 100 pods in a cluster of 300 held 2.2 MiB of them (heaptrack),
/// growing with the cluster. CoreDNS keeps pods the same way (its
/// `object.ToPod`), and kube-proxy reads no pods at all.
fn other_nodes_pod(mut pod: Value) -> Value {
    fn pick(from: &mut Value, fields: &[&str]) -> Value {
        let mut kept = serde_json::Map::new();
        for field in fields {
            if let Some(value) = from.get_mut(*field).map(Value::take) {
                kept.insert((*field).to_owned(), value);
            }
        }
        Value::Object(kept)
    }
    let mut status = pick(&mut pod["status"], &["phase", "podIP", "podIPs", "conditions"]);
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        conditions.retain(|c| c["type"] == "Ready");
    }
    let mut kept = pick(&mut pod, &["apiVersion", "kind"]);
    kept["metadata"] = pick(&mut pod["metadata"], &["name", "namespace", "uid", "resourceVersion", "deletionTimestamp"]);
    kept["spec"] = pick(&mut pod["spec"], &["nodeName", "hostname", "subdomain"]);
    kept["status"] = status;
    kept
}

async fn serve(config: DaemonConfig, client: Client, server: String, token: String) -> Result<(), CommandError> {
    let remote = Arc::new(RemoteStore::connect(client, KINDS, Some(keep_for(config.node_name.clone()))).map_err(daemon_error)?);
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

#[cfg(test)]
mod tests {
    use driftless_dns::Zone;
    use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
    use serde_json::json;

    use super::*;

    /// A pod as the API serves it: the spec of Kubernetes' "DNS for
    /// Services and Pods" example, with the status a kubelet writes.
    fn pod(name: &str, ip: &str, ready: &str, phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": "7",
                "labels": {"name": "busybox"}, "annotations": {"note": "x".repeat(500)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]},
            "spec": {"hostname": name.replace("busybox", "busybox-"), "subdomain": "busybox-subdomain", "nodeName": "node-b",
                "containers": [{"image": "busybox:1.28", "command": ["sleep", "3600"], "name": "busybox"}]},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.2",
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": ready}],
                "containerStatuses": [{"name": "busybox", "ready": ready == "True", "restartCount": 0, "image": "busybox:1.28", "imageID": "", "started": true}]}})
    }

    #[test]
    fn another_nodes_pod_is_kept_small_and_the_cluster_dns_answers_the_same() {
        let service: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "busybox-subdomain", "namespace": "default"},
            "spec": {"selector": {"name": "busybox"}, "clusterIP": "None", "ports": [{"name": "foo", "port": 1234}]}}))
        .unwrap();
        let endpoints: Vec<Endpoints> = Vec::new();
        let whole = [
            pod("busybox1", "10.244.1.5", "True", "Running"),
            pod("busybox2", "10.244.1.6", "False", "Running"),
            pod("busybox3", "10.244.1.7", "True", "Succeeded"),
        ];
        let keep = keep_for("node-a".into());
        let kept: Vec<Value> = whole.iter().map(|p| keep(Kind::Pod, p.clone())).collect();
        let zone = |pods: &[Value]| {
            let pods = pods.iter().map(|p| serde_json::from_value::<Pod>(p.clone()).unwrap());
            Zone::build("cluster.local", std::slice::from_ref(&service), &endpoints, pods).unwrap().zone_file()
        };
        let answers = zone(&whole);
        assert!(answers.contains("busybox-1.busybox-subdomain.default.svc.cluster.local."), "{answers}");
        assert!(answers.contains("10-244-1-6.default.pod.cluster.local."), "{answers}");
        assert_eq!(zone(&kept), answers);

        let first = &kept[0];
        assert_eq!(first["metadata"], json!({"name": "busybox1", "namespace": "default", "uid": "uid-busybox1", "resourceVersion": "7"}));
        assert_eq!(first["status"]["conditions"], json!([{"type": "Ready", "status": "True"}]));
        assert!(first["spec"].get("containers").is_none() && first["status"].get("containerStatuses").is_none());
        assert!(first.to_string().len() * 3 < whole[0].to_string().len(), "{first}");

        let own = keep_for("node-b".into());
        assert_eq!(own(Kind::Pod, whole[0].clone()), whole[0], "this node's pods are kept whole");
        let service = json!({"kind": "Service", "spec": {"nodeName": "elsewhere", "x": 1}});
        assert_eq!(keep(Kind::Service, service.clone()), service, "only pods are trimmed");
    }
}
