//! What a node's agent writes through the API, as a kubelet does: its own
//! Node, status included (`PUT /api/v1/nodes/{name}`), and its Lease
//! (`PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}`).
//! Only that node may, as Kubernetes' Node authorizer and NodeRestriction
//! admission allow: a caller `system:node:<name>` in group `system:nodes`
//! (or root on the daemon's own socket). They go to the store, never to
//! git: they are what the node observes, not what anyone declares.
//!
//! Must not touch: declared objects, or any part of a Node the node does
//! not own (`driftless_model::node::refreshed` keeps the rest).

use driftless_model::Kind;
use driftless_store::{Batch, Key, Op};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::server::ApiState;

/// Where node Leases live.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Whether `caller` may write the Node or Lease named `name`.
fn allowed(caller: Option<&Caller>, kind: Kind, name: &str) -> Result<(), ApiError> {
    let Some(caller) = caller else { return Ok(()) };
    match caller.node() {
        Some(node) if node == name => Ok(()),
        Some(node) => Err(ApiError::Forbidden(format!("node {node:?} cannot write the {} of node {name:?}", kind.name()))),
        None => Err(ApiError::Forbidden(format!(
            "User {:?} cannot write {} objects: nodes write their own (as system:node:<name> in group {})",
            caller.user,
            kind.name(),
            crate::auth::NODES_GROUP
        ))),
    }
}

/// Creates or replaces the caller's own Node or Lease; the object as
/// stored.
pub(super) async fn put(state: &ApiState, caller: Option<&Caller>, (kind, namespace, name): (Kind, &str, &str), body: &[u8]) -> Result<Value, ApiError> {
    allowed(caller, kind, name)?;
    let posted: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not a {} in JSON: {e}", kind.name())))?;
    if posted.get("kind").and_then(Value::as_str) != Some(kind.name()) || posted.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::BadRequest(format!("the body must be the {} named {name:?} of the path", kind.name())));
    }
    if kind == Kind::Lease && namespace != LEASE_NAMESPACE {
        return Err(ApiError::Forbidden(format!("nodes write their Lease in {LEASE_NAMESPACE}, not {namespace}")));
    }
    let store = state.store.clone();
    let key = Key::new(kind, namespace, name);
    let stored = tokio::task::spawn_blocking(move || {
        let mut batch = Batch::new();
        match kind {
            Kind::Node => {
                let node = driftless_model::node::refreshed(store.get(&key).as_deref(), posted);
                let status = node.get("status").cloned();
                batch.push(Op::Put(node));
                if let Some(status) = status {
                    batch.push(Op::Status { key: key.clone(), uid: None, status });
                }
            }
            _ => {
                batch.push(Op::Put(posted));
            }
        }
        store.apply(batch).map_err(|e| ApiError::Internal(e.to_string()))?;
        store.get(&key).map(|v| (*v).clone()).ok_or_else(|| ApiError::Internal(format!("{key} vanished once written")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(stored)
}
