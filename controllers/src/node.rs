//! The local node as a Node object: its capacity (CPUs, memory, 110 pods),
//! labels and addresses, registered at start and kept Ready by a heartbeat,
//! so the scheduler can place pods on it.

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::time::Duration;

use driftless_store::{Batch, Key, Op, Store};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Context;
use crate::context::rfc3339;

/// How often the node's Ready condition is renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// What the node says about itself.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Its name (`kubernetes.io/hostname`).
    pub name: String,
    /// Its address, as pods and users reach it.
    pub address: String,
    /// CPUs.
    pub cpus: u64,
    /// Memory in bytes.
    pub memory: u64,
    /// The pod CIDR it hands addresses from.
    pub pod_cidr: String,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations it publishes (an agent's serving CA).
    pub annotations: BTreeMap<String, String>,
    /// Why it cannot run pods yet (an agent waiting for its pod CIDR):
    /// posted as Ready False with this message.
    pub not_ready: Option<String>,
    /// The port its agent serves pod streams on, when the control plane
    /// reaches them over the network
    /// (`status.daemonEndpoints.kubeletEndpoint.Port`).
    pub streams_port: Option<u16>,
}

impl NodeInfo {
    /// This machine's CPUs and memory, from `/proc`.
    pub fn of_this_machine(name: &str, address: &str, pod_cidr: &str) -> NodeInfo {
        let (cpus, memory) = (Self::cpus_of_this_machine(), Self::memory_of_this_machine());
        NodeInfo {
            name: name.to_owned(),
            address: address.to_owned(),
            cpus,
            memory,
            pod_cidr: pod_cidr.to_owned(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            not_ready: None,
            streams_port: None,
        }
    }

    /// This machine's CPUs (what the Node reports as capacity).
    pub fn cpus_of_this_machine() -> u64 {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
    }

    /// This machine's memory in bytes, from `/proc/meminfo` (0 if unknown).
    pub fn memory_of_this_machine() -> u64 {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(0, |kib| kib * 1024)
    }

    /// The Node as this node posts it: Ready (heartbeat `now`, Ready
    /// since `ready_since`), with its capacity, addresses and labels.
    pub fn object(&self, now: &str, ready_since: &str) -> Value {
        let mut labels = json!({
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        });
        for (k, v) in &self.labels {
            labels[k] = Value::from(v.clone());
        }
        let resources = json!({"cpu": self.cpus.to_string(), "memory": format!("{}Ki", self.memory / 1024), "pods": "110"});
        let ready = json!({
            "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "driftless is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": ready_since,
        });
        let mut node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [ready],
                "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": self.name}],
                "nodeInfo": {
                    "kubeletVersion": concat!("driftless-", env!("CARGO_PKG_VERSION")),
                    "containerRuntimeVersion": "libcontainer://0.7",
                    "operatingSystem": "linux",
                    "architecture": std::env::consts::ARCH,
                    "kernelVersion": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
                    "osImage": "", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": "",
                },
            },
        });
        // A node waiting for the control plane to give it a range posts
        // none (the one it is given is kept).
        if self.pod_cidr.is_empty() {
            node["spec"] = json!({});
        }
        if let Some(why) = &self.not_ready {
            node["status"]["conditions"][0] = json!({
                "type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": why,
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            });
        }
        if !self.annotations.is_empty() {
            node["metadata"]["annotations"] = json!(self.annotations);
        }
        if let Some(port) = self.streams_port {
            node["status"]["daemonEndpoints"] = json!({"kubeletEndpoint": {"Port": port}});
        }
        node
    }
}

/// Writes the Node object (created or refreshed). Refreshing keeps what
/// others put in its spec and labels (`driftless_model::node::refreshed`).
pub fn register(ctx: &Context, info: &NodeInfo) -> Result<(), driftless_store::StoreError> {
    // Conditional on the Node read: a change made meanwhile (a cordon) is
    // kept by merging again.
    let mut tries = 0;
    loop {
        match register_once(ctx, info) {
            Err(error) if error.is_conflict() && tries < 5 => tries += 1,
            outcome => return outcome,
        }
    }
}

fn register_once(ctx: &Context, info: &NodeInfo) -> Result<(), driftless_store::StoreError> {
    let key = Key::new(Kind::Node, "", info.name.clone());
    let existing = ctx.store.get(&key);
    let now = rfc3339(ctx.now());
    // Ready since it was last Ready (a node that was Unknown is Ready from
    // now).
    let since = existing
        .as_deref()
        .and_then(|n| n.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready" && c["status"] == "True").cloned())
        .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| now.clone());
    let object = driftless_model::node::refreshed(existing.as_deref(), info.object(&now, &since));
    let status = object["status"].clone();
    let mut batch = Batch::one(if existing.is_some() { Op::Update(object) } else { Op::Create(object) });
    batch.push(Op::Status { key, uid: None, status });
    ctx.store.apply(batch)?;
    Ok(())
}

/// Renews the node's heartbeat until `cancel` fires.
pub async fn heartbeat(ctx: Context, info: NodeInfo, cancel: CancellationToken) {
    crate::periodic::every(HEARTBEAT, "node heartbeat", cancel, move || {
        // Both, even when one fails.
        let registered = register(&ctx, &info);
        let renewed = crate::lifecycle::renew_lease(&ctx, &info.name);
        registered.and(renewed)
    })
    .await;
}

/// Whether a store holds a Ready node named `name`.
pub fn is_ready(store: &dyn Store, name: &str) -> bool {
    store
        .get(&Key::new(Kind::Node, "", name))
        .and_then(|n| n.pointer("/status/conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}
