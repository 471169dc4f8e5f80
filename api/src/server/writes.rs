//! kubectl's writes, each made a commit by the write path (the same
//! requests `driftless` verbs send): the `scale` subresource (`kubectl
//! scale`: GET, and PATCH or PUT of an `autoscaling/v1` Scale) and DELETE
//! of a declared object (`kubectl delete`). Each answers as the API server
//! would, after the commit is made and synced; `?dryRun=All` commits
//! nothing.
//!
//! Must not touch: the store's objects (the sync applies the commit) or
//! git (the write path's business).

use driftless_model::Kind;
use driftless_store::{Key, Store};
use serde_json::{Value, json};

use super::ApiState;
use super::driftless::commit;
use crate::ApiError;
use crate::auth::Caller;

/// Kinds with a `scale` subresource.
pub(crate) fn scalable(kind: Kind) -> bool {
    matches!(kind, Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::ReplicationController)
}

fn object(store: &dyn Store, kind: Kind, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let key = Key::new(kind, if kind.namespaced() { namespace } else { "" }, name);
    store.get(&key).map(|v| (*v).clone()).ok_or_else(|| ApiError::NotFound(format!("{}.{} {name:?} not found", kind.plural(), kind.group())))
}

/// The `autoscaling/v1` Scale of a workload.
pub(crate) fn scale_of(kind: Kind, workload: &Value) -> Value {
    let selector = workload.pointer("/spec/selector");
    // A ReplicationController's selector is a plain map; the others' are
    // label selectors.
    let labels = selector.and_then(|s| if kind == Kind::ReplicationController { Some(s) } else { s.get("matchLabels") });
    let selector_text = labels
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    let meta = &workload["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": workload.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": workload.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector_text},
    })
}

/// The replicas a Scale write asks for: a whole Scale (PUT), a merge or
/// strategic merge patch (`{"spec":{"replicas":N}}`), or a JSON patch
/// replacing `/spec/replicas`.
fn wanted_replicas(content_type: &str, body: &[u8]) -> Result<i64, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("a Scale write must set spec.replicas: {why}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let replicas = if content_type.starts_with("application/json-patch+json") {
        value
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .find(|op| op["path"] == "/spec/replicas" && (op["op"] == "replace" || op["op"] == "add"))
            .map(|op| &op["value"])
    } else {
        value.pointer("/spec/replicas")
    };
    let replicas = replicas.and_then(Value::as_i64).ok_or_else(|| bad("no integer spec.replicas"))?;
    if replicas < 0 {
        return Err(ApiError::Invalid(format!("spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0")));
    }
    Ok(replicas)
}

/// A write naming a `resourceVersion` must be made on that version, as
/// the API server requires (409 otherwise).
fn check_version(kind: Kind, name: &str, current: &Value, given: &Value) -> Result<(), ApiError> {
    let Some(version) = given.pointer("/metadata/resourceVersion").and_then(Value::as_str) else { return Ok(()) };
    if current.pointer("/metadata/resourceVersion").and_then(Value::as_str) == Some(version) {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "Operation cannot be fulfilled on {}.{} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
        kind.plural(),
        kind.group()
    )))
}

/// What a dry run asks for (`?dryRun=All`).
fn dry_run(query: &super::Query) -> bool {
    query.get("dryRun").is_some_and(|d| d == "All")
}

/// PATCH or PUT of `KIND/NAME/scale`.
pub(crate) async fn scale(
    state: &ApiState,
    caller: Option<&Caller>,
    (kind, namespace, name): (Kind, &str, &str),
    query: &super::Query,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let replicas = wanted_replicas(content_type, body)?;
    let current = object(&*state.store, kind, namespace, name)?;
    let given = serde_json::from_slice::<Value>(body).unwrap_or_default();
    check_version(kind, name, &current, &given)?;
    let dry = dry_run(query);
    let request = json!({
        "kind": kind.name(), "namespace": namespace, "name": name,
        "change": {"verb": {"verb": "scale", "replicas": replicas}},
        "dry_run": dry,
    });
    commit(state, caller, request).await?;
    let mut after = object(&*state.store, kind, namespace, name)?;
    if dry {
        after["spec"]["replicas"] = json!(replicas);
    }
    Ok(scale_of(kind, &after))
}

/// Server-side apply's patch type (`kubectl apply --server-side`).
const SERVER_SIDE_APPLY: &str = "apply";

/// The patch types kubectl sends, by `Content-Type`.
fn patch_type(content_type: &str) -> Result<&'static str, ApiError> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "application/json-patch+json" => Ok("json"),
        "application/merge-patch+json" => Ok("merge"),
        "application/strategic-merge-patch+json" => Ok("strategic-merge"),
        "application/apply-patch+yaml" => Ok(SERVER_SIDE_APPLY),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (not {other:?})"
        ))),
    }
}

/// PATCH of an object (`kubectl label`, `annotate`, `set image`, `rollout
/// restart|pause|resume|undo`): the patch is applied to the document git
/// holds and committed; the answer is the object as the sync then applied
/// it.
pub(crate) async fn patch(
    state: &ApiState,
    caller: Option<&Caller>,
    (kind, namespace, name): (Kind, &str, &str),
    query: &super::Query,
    (content_type, command): (&str, &str),
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut patch_type = patch_type(content_type)?;
    let mut patch: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the patch is not JSON: {e}")))?;
    if patch_type == SERVER_SIDE_APPLY {
        if patch.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return Err(ApiError::BadRequest(format!("the name of the object ({}) does not match the name on the URL ({name})", patch["metadata"]["name"])));
        }
        // Applying what does not exist creates it, as a file of its own.
        if object(&*state.store, kind, namespace, name).is_err() {
            return create(state, caller, (kind, Some(namespace)), query, body).await;
        }
        // The applied configuration sets the fields it names and leaves the
        // rest (there are no field managers: git's history records who set
        // what).
        for field in ["resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink"] {
            if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove(field);
            }
        }
        if let Some(map) = patch.as_object_mut() {
            map.remove("status");
        }
        patch_type = "strategic-merge";
    }
    let current = object(&*state.store, kind, namespace, name)?;
    check_version(kind, name, &current, &patch)?;
    let dry = dry_run(query);
    let request = json!({
        "kind": kind.name(), "namespace": namespace, "name": name,
        "change": {"patch": {"patch_type": patch_type, "patch": patch, "command": command}},
        "dry_run": dry,
    });
    let mut reply = commit(state, caller, request).await?;
    // A dry run answers with the object it would make (`kubectl diff`).
    match reply.get_mut("object") {
        Some(object) if dry => Ok(object.take()),
        _ => object(&*state.store, kind, namespace, name),
    }
}

/// POST of a new object (`kubectl create -f`, and `kubectl apply` of an
/// object that does not exist yet): written to the repository as a
/// document of its own, in one commit; the answer is the object as the
/// sync applied it.
pub(crate) async fn create(
    state: &ApiState,
    caller: Option<&Caller>,
    (kind, namespace): (Kind, Option<&str>),
    query: &super::Query,
    body: &[u8],
) -> Result<Value, ApiError> {
    let mut given: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the object is not JSON: {e}")))?;
    let Some(meta) = given.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(ApiError::Invalid("metadata.name: Required value: name is required".into()));
    };
    // What the API server owns is not written to git.
    for field in ["resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink"] {
        meta.remove(field);
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    if kind.namespaced() {
        let namespace = namespace.unwrap_or("default");
        match meta.get("namespace").and_then(Value::as_str) {
            Some(given) if given != namespace => {
                return Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({given}) does not match the namespace sent on the request ({namespace})"
                )));
            }
            _ => {
                meta.insert("namespace".into(), json!(namespace));
            }
        }
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Invalid("metadata.name: Required value: name is required".into()))?;
    if let Some(map) = given.as_object_mut() {
        map.remove("status");
    }
    let namespace = given.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
    if state.store.get(&Key::new(kind, namespace.clone(), name.clone())).is_some() {
        return Err(ApiError::AlreadyExists(format!("{}.{} {name:?} already exists", kind.plural(), kind.group())));
    }
    let dry = dry_run(query);
    let request = json!({"change": {"apply": {"verb": "create", "documents": [given.clone()]}}, "dry_run": dry});
    commit(state, caller, request).await?;
    if dry {
        return Ok(given);
    }
    object(&*state.store, kind, &namespace, &name)
}

/// DELETE of a declared object: its document goes from git, in one commit.
pub(crate) async fn delete(
    state: &ApiState,
    caller: Option<&Caller>,
    (kind, namespace, name): (Kind, &str, &str),
    query: &super::Query,
) -> Result<Value, ApiError> {
    let current = object(&*state.store, kind, namespace, name)?;
    let namespace = if kind.namespaced() { namespace } else { "" };
    let request = json!({
        "change": {"delete": {"objects": [[kind.name(), namespace, name]]}},
        "dry_run": dry_run(query),
    });
    commit(state, caller, request).await?;
    Ok(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": kind.group(), "kind": kind.plural(), "uid": current["metadata"]["uid"]},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_write_reads_replicas_from_each_form_kubectl_sends() {
        assert_eq!(wanted_replicas("application/merge-patch+json", br#"{"spec":{"replicas":3}}"#).unwrap(), 3);
        assert_eq!(wanted_replicas("application/strategic-merge-patch+json", br#"{"spec":{"replicas":0}}"#).unwrap(), 0);
        assert_eq!(wanted_replicas("application/json-patch+json", br#"[{"op":"replace","path":"/spec/replicas","value":5}]"#).unwrap(), 5);
        let put = br#"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{"replicas":2}}"#;
        assert_eq!(wanted_replicas("application/json", put).unwrap(), 2);
        assert!(matches!(wanted_replicas("application/merge-patch+json", br#"{"spec":{"replicas":-1}}"#), Err(ApiError::Invalid(_))));
        assert!(matches!(wanted_replicas("application/merge-patch+json", br#"{"spec":{}}"#), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn a_scale_names_the_selector_as_text() {
        let deployment = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let scale = scale_of(Kind::Deployment, &deployment);
        assert_eq!((scale["spec"]["replicas"].as_i64(), scale["status"]["selector"].as_str()), (Some(2), Some("app=web")));
        let rc = json!({"metadata": {"name": "old"}, "spec": {"selector": {"app": "old"}}});
        assert_eq!(scale_of(Kind::ReplicationController, &rc)["status"]["selector"], "app=old");
    }
}
