//! The patches kubectl sends, applied to an object's document as git
//! holds it: JSON patch (RFC 6902) and JSON merge patch (RFC 7396) through
//! the `json-patch` crate, and Kubernetes' strategic merge patch, which no
//! crate implements: maps merge, `null` removes, lists of objects merge by
//! their merge key (`containers` by `name`, `volumeMounts` by `mountPath`,
//! as Kubernetes' types declare them), other lists are replaced, and the
//! `$patch: delete|replace` and `$setElementOrder` directives are honoured.
//!
//! Must not touch: files; the result is a value the YAML editor writes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::WriteError;

/// How a patch is to be read (its `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// The type a `Content-Type` names.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }
}

/// The merge key of a list field, as Kubernetes' types declare it
/// (`patchMergeKey`), for the fields the write path meets.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "conditions" => "type",
        _ => return None,
    })
}

/// What a live object becomes when its declared document changes from
/// `before` to `after`: the difference, as JSON patch operations, applied
/// to `live` one by one (an operation the live object cannot take is
/// skipped), so what the server owns (status, uid, defaults) stays. A dry
/// run answers with it, as the API server answers with the object it
/// would store.
pub fn carried(live: &Value, before: &Value, after: &Value) -> Value {
    let mut result = live.clone();
    for operation in json_patch::diff(before, after).0 {
        let _ = json_patch::patch(&mut result, std::slice::from_ref(&operation));
    }
    result
}

/// Applies `patch` to `document`.
pub fn apply(kind: PatchType, document: &Value, patch: &Value) -> Result<Value, WriteError> {
    let mut out = document.clone();
    match kind {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| WriteError::Verb(format!("not a JSON patch: {e}")))?;
            json_patch::patch(&mut out, &patch).map_err(|e| WriteError::Verb(format!("the JSON patch does not apply: {e}")))?;
        }
        PatchType::Merge => json_patch::merge(&mut out, patch),
        PatchType::StrategicMerge => strategic(&mut out, patch)?,
    }
    Ok(out)
}

fn strategic(target: &mut Value, patch: &Value) -> Result<(), WriteError> {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made a mapping");
    for (key, value) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Array(items) => match merge_key(key) {
                Some(merge_key) if items.iter().all(Value::is_object) => {
                    let current = map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                    merge_list(current, items, merge_key, key)?;
                }
                _ => {
                    map.insert(key.clone(), value.clone());
                }
            },
            Value::Object(_) => strategic(map.entry(key.clone()).or_insert(Value::Null), value)?,
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// Merges `items` into the list `current` by `key`: an item naming an
/// existing one is merged into it (or removes it with `$patch: delete`),
/// a new one is appended.
fn merge_list(current: &mut Value, items: &[Value], key: &str, field: &str) -> Result<(), WriteError> {
    if !current.is_array() {
        *current = Value::Array(Vec::new());
    }
    let list = current.as_array_mut().expect("made a list");
    for item in items {
        let id = item.get(key).ok_or_else(|| WriteError::Verb(format!("an item of {field} in the patch has no {key}")))?;
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match list.iter().position(|existing| existing.get(key) == Some(id)) {
            Some(i) if delete => {
                list.remove(i);
            }
            Some(i) => strategic(&mut list[i], item)?,
            None if delete => {}
            None => {
                let mut new = Value::Null;
                strategic(&mut new, item)?;
                list.push(new);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "httpd", "image": "busybox:1.35", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "busybox:1.35"},
            ]}}},
        })
    }

    #[test]
    fn kubectl_set_image_merges_the_container_by_name() {
        // What `kubectl set image deployment/web httpd=busybox:1.36` sends.
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "busybox:1.36", "name": "httpd"}]}}}});
        let out = apply(PatchType::StrategicMerge, &deployment(), &patch).unwrap();
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0], json!({"name": "httpd", "image": "busybox:1.36", "env": [{"name": "A", "value": "1"}]}));
        assert_eq!(containers[1]["image"], "busybox:1.35");
    }

    #[test]
    fn directives_delete_items_and_null_removes_keys() {
        let patch = json!({
            "metadata": {"labels": {"app": null, "tier": "front"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "httpd"}],
                "containers": [{"name": "sidecar", "$patch": "delete"}, {"name": "httpd", "env": [{"name": "B", "value": "2"}]}],
            }}},
        });
        let out = apply(PatchType::StrategicMerge, &deployment(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
    }

    #[test]
    fn merge_and_json_patches_as_their_rfcs_say() {
        let out = apply(PatchType::Merge, &deployment(), &json!({"metadata": {"labels": {"tier": "front"}}, "spec": {"paused": true}})).unwrap();
        assert_eq!((out["metadata"]["labels"]["tier"].as_str(), out["spec"]["paused"].as_bool()), (Some("front"), Some(true)));
        let out = apply(PatchType::Json, &deployment(), &json!([{"op": "replace", "path": "/spec/replicas", "value": 4}])).unwrap();
        assert_eq!(out["spec"]["replicas"], 4);
        assert!(apply(PatchType::Json, &deployment(), &json!([{"op": "replace", "path": "/spec/nothing/here", "value": 4}])).is_err());
        assert_eq!(PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"), Some(PatchType::StrategicMerge));
    }
}
