//! What a node's agent writes through the API, as a kubelet does: its own
//! Node, status included (`PUT /api/v1/nodes/{name}`), its Lease
//! (`PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}`),
//! the status of the pods bound to it (`PUT .../pods/{name}/status`), the
//! removal of those pods once their containers have stopped (`DELETE
//! .../pods/{name}` with a uid precondition), and events (`POST
//! .../events`, `PUT .../events/{name}`). Only that node may, as
//! Kubernetes' Node authorizer and NodeRestriction admission allow: a
//! caller `system:node:<name>` in group `system:nodes` (or root on the
//! daemon's own socket). They go to the store, never to git: they are what
//! the node observes, not what anyone declares.
//!
//! Must not touch: declared objects, pods bound to other nodes, or any
//! part of a Node the node does not own (`driftless_model::node::refreshed`
//! keeps the rest).

use axum::http::Method;
use driftless_model::Kind;
use driftless_store::{Batch, Key, Op, StoreError};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::server::ApiState;

/// Where node Leases live.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Whether a node's agent may try `method` on `path`: the writes this
/// module serves (each then checks the object is the node's own).
pub(super) fn node_may_try(method: &Method, path: &str) -> bool {
    let Ok(target) = super::parse_path(path) else { return false };
    match (method, target) {
        (&Method::PUT, super::Target::Object { resource, .. }) => matches!(resource, Kind::Node | Kind::Lease | Kind::Event),
        (&Method::PUT, super::Target::Sub { resource: Kind::Pod, sub, .. }) => sub == "status",
        (&Method::POST, super::Target::Collection { resource: Kind::Event, namespace: Some(_) }) => true,
        (&Method::DELETE, super::Target::Object { resource: Kind::Pod, .. }) => true,
        _ => false,
    }
}

/// The node `caller` is, `None` for root on the daemon's socket, or 403
/// for anyone else: the writes here are a kubelet's.
fn as_node<'c>(caller: Option<&'c Caller>, what: &str) -> Result<Option<&'c str>, ApiError> {
    let Some(caller) = caller else { return Ok(None) };
    match caller.node() {
        Some(node) => Ok(Some(node)),
        None => Err(ApiError::Forbidden(format!(
            "User {:?} cannot write {what}: the node running the pod does (as system:node:<name> in group {})",
            caller.user,
            crate::auth::NODES_GROUP
        ))),
    }
}

/// The live pod at `key`, if `node` (when a node asks) runs it.
fn bound_pod(state: &ApiState, key: &Key, node: Option<&str>) -> Result<std::sync::Arc<Value>, ApiError> {
    let live = state.store.get(key).ok_or_else(|| ApiError::NotFound(format!("pods {:?} not found", key.name)))?;
    let bound = live.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    match node {
        Some(node) if node != bound => Err(ApiError::Forbidden(format!("node {node:?} cannot write pod {:?}: it is bound to {bound:?}", key.name))),
        _ => Ok(live),
    }
}

/// 409 unless `live` is the object of `uid` (when given), as a
/// DeleteOptions' precondition asks.
pub(super) fn precondition(live: &Value, uid: Option<&str>) -> Result<(), ApiError> {
    let held = live.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
    match uid {
        Some(uid) if uid != held => Err(ApiError::Conflict(format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {held}"))),
        _ => Ok(()),
    }
}

pub(super) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(key) => ApiError::NotFound(format!("{key} not found")),
        error @ StoreError::Conflict { .. } => ApiError::Conflict(error.to_string()),
        error @ StoreError::AlreadyExists(_) => ApiError::AlreadyExists(error.to_string()),
        error => ApiError::Internal(error.to_string()),
    }
}

/// Applies `batch` off the API's workers; the object at `key` after it.
async fn write(state: &ApiState, batch: Batch, key: Key) -> Result<Option<Value>, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        store.apply(batch).map_err(store_error)?;
        Ok(store.get(&key).map(|v| (*v).clone()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

fn parse(body: &[u8], kind: Kind) -> Result<Value, ApiError> {
    let posted: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not a {} in JSON: {e}", kind.name())))?;
    if posted.get("kind").and_then(Value::as_str) != Some(kind.name()) {
        return Err(ApiError::BadRequest(format!("the body must be a {}", kind.name())));
    }
    Ok(posted)
}

/// Puts `posted` in the request's `namespace` as kube-apiserver does: a
/// namespaced object without one takes the path's, one naming another is
/// refused; a cluster-scoped object has none.
fn in_namespace(posted: &mut Value, kind: Kind, namespace: &str) -> Result<(), ApiError> {
    let Some(metadata) = posted.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(ApiError::BadRequest(format!("the {} has no metadata", kind.name())));
    };
    if !kind.namespaced() {
        metadata.remove("namespace");
        return Ok(());
    }
    match metadata.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            metadata.insert("namespace".into(), Value::from(namespace));
            Ok(())
        }
        Some(theirs) if theirs == namespace => Ok(()),
        Some(_) => Err(ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request".into())),
    }
}

/// `PUT .../pods/{name}/status` by the node the pod is bound to: the
/// status as the node observes it, on condition that the pod is still the
/// one of the body's uid (a pod replaced under the same name keeps its
/// own).
pub(super) async fn pod_status(state: &ApiState, caller: Option<&Caller>, namespace: &str, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let node = as_node(caller, "pod status")?;
    let posted = parse(body, Kind::Pod)?;
    let key = Key::new(Kind::Pod, namespace, name);
    let live = bound_pod(state, &key, node)?;
    let uid = posted.pointer("/metadata/uid").or_else(|| live.pointer("/metadata/uid")).and_then(Value::as_str).map(str::to_owned);
    let status = posted.get("status").cloned().ok_or_else(|| ApiError::BadRequest("the body has no status".into()))?;
    let stored = write(state, Batch::one(Op::Status { key: key.clone(), uid, status }), key).await?;
    stored.ok_or_else(|| ApiError::NotFound(format!("pods {name:?} not found")))
}

/// `DELETE .../pods/{name}` by the node the pod is bound to: the pod's
/// containers have stopped, and the object goes at once (a kubelet's
/// delete with grace 0), on condition of `preconditions.uid` if given.
pub(super) async fn remove_pod(state: &ApiState, caller: Option<&Caller>, namespace: &str, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let node = as_node(caller, "pod removals")?;
    let key = Key::new(Kind::Pod, namespace, name);
    let live = bound_pod(state, &key, node)?;
    let options: Value =
        if body.is_empty() { Value::Null } else { serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("DeleteOptions: {e}")))? };
    let uid = options.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned);
    precondition(&live, uid.as_deref())?;
    write(state, Batch::one(Op::Delete { key: key.clone(), uid }), key).await?;
    Ok((*live).clone())
}

/// `DELETE /api/v1/nodes/{name}` (an operator's, as `kubectl delete
/// node`): the Node goes from the store; the pods bound to it are then
/// removed by pod garbage collection, and its Lease by the owner
/// references. The object as it was.
pub(super) async fn delete_node(state: &ApiState, name: &str) -> Result<Value, ApiError> {
    let key = Key::new(Kind::Node, "", name);
    let live = state.store.get(&key).ok_or_else(|| ApiError::NotFound(format!("nodes {name:?} not found")))?;
    let uid = live.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
    write(state, Batch::one(Op::Delete { key: key.clone(), uid }), key).await?;
    Ok((*live).clone())
}

/// `PATCH /api/v1/nodes/{name}` (an operator's: `kubectl cordon`,
/// `taint`, `label`): a JSON merge patch, or a strategic merge patch read
/// as one (a Node's patchable lists, taints, are replaced whole either
/// way), or a JSON patch; applied to the stored Node. Its status stays
/// the node's. The Node as stored.
pub(super) async fn patch_node(state: &ApiState, name: &str, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let key = Key::new(Kind::Node, "", name);
    let patch: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    // The node's heartbeat may write between the read and the write: the
    // write is conditional on what was read, and tried again.
    for _ in 0..5 {
        let live = state.store.get(&key).ok_or_else(|| ApiError::NotFound(format!("nodes {name:?} not found")))?;
        let mut patched = (*live).clone();
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => {
                let patch: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| ApiError::BadRequest(format!("JSON patch: {e}")))?;
                json_patch::patch(&mut patched, &patch).map_err(|e| ApiError::Invalid(format!("JSON patch: {e}")))?;
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" | "" => json_patch::merge(&mut patched, &patch),
            other => return Err(ApiError::UnsupportedMediaType(format!("{other} is not a patch type this server takes for nodes"))),
        }
        if patched.pointer("/metadata/name") != live.pointer("/metadata/name") {
            return Err(ApiError::Invalid("a patch may not rename the node".into()));
        }
        patched["status"] = live.get("status").cloned().unwrap_or(Value::Null);
        patched["metadata"]["resourceVersion"] = live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        match write(state, Batch::one(Op::Update(patched)), key.clone()).await {
            Err(ApiError::Conflict(_)) => continue,
            Err(error) => return Err(error),
            Ok(stored) => return stored.ok_or_else(|| ApiError::NotFound(format!("nodes {name:?} not found"))),
        }
    }
    Err(ApiError::Conflict(format!("node {name:?} kept changing; try again")))
}

/// `POST .../events` or `PUT .../events/{name}` by a node: what its
/// kubelet saw happen.
pub(super) async fn event(state: &ApiState, caller: Option<&Caller>, namespace: &str, name: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    as_node(caller, "events")?;
    let mut posted = parse(body, Kind::Event)?;
    let named = posted.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned);
    let name = match (name, named) {
        (Some(path), Some(body)) if path != body => return Err(ApiError::BadRequest(format!("the body names event {body:?}, the path {path:?}"))),
        (Some(name), _) => name.to_owned(),
        (None, Some(name)) => name,
        (None, None) => return Err(ApiError::BadRequest("the event has no metadata.name".into())),
    };
    in_namespace(&mut posted, Kind::Event, namespace)?;
    let key = Key::new(Kind::Event, namespace, name);
    let stored = write(state, Batch::one(Op::Put(posted)), key.clone()).await?;
    stored.ok_or_else(|| ApiError::Internal(format!("{key} vanished once written")))
}

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
    let mut posted = parse(body, kind)?;
    if posted.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::BadRequest(format!("the body must be the {} named {name:?} of the path", kind.name())));
    }
    if kind == Kind::Lease && namespace != LEASE_NAMESPACE {
        return Err(ApiError::Forbidden(format!("nodes write their Lease in {LEASE_NAMESPACE}, not {namespace}")));
    }
    in_namespace(&mut posted, kind, namespace)?;
    let key = Key::new(kind, namespace, name);
    if kind != Kind::Node {
        let stored = write(state, Batch::one(Op::Put(posted)), key.clone()).await?;
        return stored.ok_or_else(|| ApiError::Internal(format!("{key} vanished once written")));
    }
    // What others set on the Node (cordon, taints, labels) is kept: the
    // write is conditional on the Node it was merged onto.
    for _ in 0..5 {
        let existing = state.store.get(&key);
        let node = driftless_model::node::refreshed(existing.as_deref(), posted.clone());
        let status = node.get("status").cloned();
        let mut batch = Batch::one(if existing.is_some() { Op::Update(node) } else { Op::Create(node) });
        if let Some(status) = status {
            batch.push(Op::Status { key: key.clone(), uid: None, status });
        }
        match write(state, batch, key.clone()).await {
            Err(ApiError::Conflict(_) | ApiError::AlreadyExists(_) | ApiError::NotFound(_)) => continue,
            Err(error) => return Err(error),
            Ok(stored) => return stored.ok_or_else(|| ApiError::Internal(format!("{key} vanished once written"))),
        }
    }
    Err(ApiError::Conflict(format!("node {name:?} kept changing; try again")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use driftless_store::SqliteStore;
    use serde_json::json;

    use super::*;

    fn state() -> ApiState {
        ApiState::of_store(Arc::new(SqliteStore::in_memory()))
    }

    /// Found by the request fuzz target: a Lease without a namespace was
    /// stored in the default namespace and answered 500 ("vanished").
    #[tokio::test]
    async fn a_lease_takes_the_namespace_of_its_path_and_a_different_one_is_refused() {
        let state = state();
        let path = (Kind::Lease, LEASE_NAMESPACE, "node-1");
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1"}});
        let stored = put(&state, None, path, lease.to_string().as_bytes()).await.unwrap();
        assert_eq!(stored.pointer("/metadata/namespace"), Some(&json!(LEASE_NAMESPACE)));

        let mut elsewhere = lease.clone();
        elsewhere["metadata"]["namespace"] = json!("default");
        let error = put(&state, None, path, elsewhere.to_string().as_bytes()).await.unwrap_err();
        assert!(matches!(&error, ApiError::BadRequest(why) if why.contains("does not match the namespace sent")), "{error:?}");
    }

    #[tokio::test]
    async fn a_node_has_no_namespace_and_an_event_keeps_the_path_s() {
        let state = state();
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "namespace": "default"}});
        let stored = put(&state, None, (Kind::Node, "", "node-1"), node.to_string().as_bytes()).await.unwrap();
        assert_eq!(stored.pointer("/metadata/namespace"), None);

        let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "other"}, "reason": "Pulled"});
        let error = event_of(&state, "default", &event).await.unwrap_err();
        assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
    }

    async fn event_of(state: &ApiState, namespace: &str, body: &Value) -> Result<Value, ApiError> {
        event(state, None, namespace, None, body.to_string().as_bytes()).await
    }
}
