//! `driftless cordon`, `uncordon` and `drain`: a node taken out of (or put
//! back into) scheduling, and emptied of its pods, as kubectl does it: a
//! merge patch of `spec.unschedulable`, then an Eviction of each pod (a
//! graceful delete; their controllers make them again elsewhere), waiting
//! until they are gone.
//!
//! Must not touch: DaemonSet pods (their controller would put them back on
//! the node), or pods no controller owns unless `--force` (nothing would
//! make them again), as kubectl refuses them.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{Value, json};

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::{DrainArgs, NodeTarget};
use crate::connect::{block_on, client};

fn set_unschedulable(connect: &crate::cli::ConnectArgs, node: &str, on: bool) -> Result<(), CommandError> {
    let patch = json!({"spec": {"unschedulable": if on { Value::Bool(true) } else { Value::Null }}});
    let path = format!("/api/v1/nodes/{node}");
    block_on(async { client(connect).patch(&path, "application/merge-patch+json", &patch).await.map_err(client_error) })?;
    Ok(())
}

/// `cordon` (`on`) or `uncordon`.
pub fn cordon(args: &NodeTarget, on: bool) -> Result<ExitCode, CommandError> {
    set_unschedulable(&args.connect, &args.node, on)?;
    println!("node/{} {}", args.node, if on { "cordoned" } else { "uncordoned" });
    Ok(ExitCode::SUCCESS)
}

fn owner_kind(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?.as_array()?.iter().find(|o| o["controller"] == true).and_then(|o| o["kind"].as_str())
}

fn name_of(pod: &Value) -> String {
    format!(
        "{}/{}",
        pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(""),
        pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    )
}

/// `drain`.
pub fn drain(args: &DrainArgs) -> Result<ExitCode, CommandError> {
    set_unschedulable(&args.connect, &args.node, true)?;
    println!("node/{} cordoned", args.node);
    let field = format!("spec.nodeName={}", args.node);
    let path = format!("/api/v1/pods{}", form_query(&[("fieldSelector", Some(&field))]));
    let pods = block_on(async { client(&args.connect).get(&path).await.map_err(client_error) })?;
    let pods: Vec<Value> = pods["items"].as_array().cloned().unwrap_or_default();
    let (daemons, others): (Vec<&Value>, Vec<&Value>) = pods.iter().partition(|p| owner_kind(p) == Some("DaemonSet"));
    let unowned: Vec<String> = others.iter().filter(|p| owner_kind(p).is_none()).map(|p| name_of(p)).collect();
    if !unowned.is_empty() && !args.force {
        return Err(CommandError::Usage(format!(
            "cannot drain node {:?}: these pods have no controller to make them again (use --force to delete them anyway): {}",
            args.node,
            unowned.join(", ")
        )));
    }
    if !daemons.is_empty() {
        println!("Warning: ignoring DaemonSet-managed Pods: {}", daemons.iter().map(|p| name_of(p)).collect::<Vec<_>>().join(", "));
    }
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    for pod in &others {
        let (namespace, name) = (pod["metadata"]["namespace"].as_str().unwrap_or("default"), pod["metadata"]["name"].as_str().unwrap_or(""));
        let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace}});
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction");
        block_on(async { client(&args.connect).post(&path, &eviction).await.map_err(client_error) })?;
        println!("evicting pod {}", name_of(pod));
        waiting.insert(pod["metadata"]["uid"].as_str().unwrap_or("").to_owned());
    }
    // Gone: no pod of those uids left (a replacement of the same name,
    // a StatefulSet's, is another pod).
    let deadline = Instant::now() + args.timeout;
    loop {
        let now = block_on(async { client(&args.connect).get(&path).await.map_err(client_error) })?;
        let left: Vec<String> = now["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["uid"].as_str().is_some_and(|uid| waiting.contains(uid)))
            .map(name_of)
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(CommandError::Usage(format!("node {:?}: pods still there after {:?}: {}", args.node, args.timeout, left.join(", "))));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    for pod in &others {
        println!("pod/{} evicted", pod["metadata"]["name"].as_str().unwrap_or(""));
    }
    println!("node/{} drained", args.node);
    Ok(ExitCode::SUCCESS)
}
