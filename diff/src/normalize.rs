//! One canonical form per meaning, for both sides of every comparison.
//!
//! This is the only place that decides which parts of an object are the
//! user's declaration and which belong to the API server, the controllers
//! or the daemon's bookkeeping: `driftless plan`, the sync loop and the
//! ledger all compare through it.

use driftless_model::annotations::SOURCE_COMMIT;
use driftless_model::{Kind, Object, defaults};
use serde_json::Value;

/// Metadata the API server owns; a manifest that carries it (one exported
/// with `kubectl get -o yaml`, say) means nothing by it.
const SERVER_METADATA: &[&str] =
    &["creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp", "generation", "managedFields", "resourceVersion", "selfLink", "uid"];

/// The object as the daemon stores it: the API server's defaults filled in
/// and quantities in canonical form (nothing removed).
pub fn applied(object: &Object) -> Value {
    let mut object = object.clone();
    defaults::apply(&mut object);
    object.to_value()
}

/// The canonical form of an object: API defaults filled in, quantities in
/// canonical form, `status`, server-owned metadata and the daemon's
/// source-commit annotation dropped. Maps come out sorted (serde_json's
/// default map is ordered), so key order never shows.
pub fn normalize(object: &Object) -> Value {
    let mut value = applied(object);
    strip(&mut value);
    value
}

/// The canonical form of an object as a store holds it: read back as the
/// typed object (so fields are spelled as the model spells them), defaults
/// filled in, then stripped as [`normalize`] does. A value that does not
/// read as its kind is only stripped.
pub fn normalize_stored(kind: Kind, value: &Value) -> Value {
    let mut value = match Object::from_value(kind, value) {
        Ok(object) => applied(&object),
        Err(_) => value.clone(),
    };
    strip(&mut value);
    value
}

/// Drops what is not the user's declaration: `status`, server-owned
/// metadata, the source-commit annotation, and annotations left empty.
pub(crate) fn strip(value: &mut Value) {
    let Some(map) = value.as_object_mut() else { return };
    map.remove("status");
    let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    for field in SERVER_METADATA {
        meta.remove(*field);
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove(SOURCE_COMMIT);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_meaning_normalizes_equal() {
        let terse = Object::parse(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.35",
                                      "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}}}]}}}
        }))
        .unwrap();
        let verbose = Object::parse(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": "default", "name": "web", "uid": "x", "resourceVersion": "9", "annotations": {}},
            "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate"},
                     "template": {"spec": {"containers": [{"image": "busybox:1.35", "name": "c",
                                      "imagePullPolicy": "IfNotPresent",
                                      "resources": {"limits": {"memory": "1024Mi", "cpu": "1"}}}],
                                           "restartPolicy": "Always"},
                                  "metadata": {"labels": {"app": "web"}}},
                     "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 1}
        }))
        .unwrap();
        assert_eq!(normalize(&terse), normalize(&verbose));
    }

    #[test]
    fn a_stored_object_normalizes_as_its_declaration() {
        let declared = Object::parse(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})).unwrap();
        let mut stored = applied(&declared);
        stored["metadata"]["uid"] = json!("u-1");
        stored["metadata"]["annotations"] = json!({SOURCE_COMMIT: "abc1234 first"});
        assert_eq!(normalize_stored(Kind::ConfigMap, &stored), normalize(&declared));
    }
}
