//! One canonical JSON form per meaning.

use driftless_model::{Object, defaults};
use serde_json::Value;

/// Metadata the API server owns; a manifest that carries it (one exported
/// with `kubectl get -o yaml`, say) means nothing by it.
const SERVER_METADATA: &[&str] = &["creationTimestamp", "generation", "managedFields", "resourceVersion", "selfLink", "uid", "deletionTimestamp"];

/// The canonical form of an object: API defaults filled in, quantities in
/// canonical form, `status` and server-owned metadata dropped. Maps come out
/// sorted (serde_json's default map is ordered), so key order never shows.
pub fn normalize(object: &Object) -> Value {
    let mut object = object.clone();
    defaults::apply(&mut object);
    let mut value = object.to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                meta.remove(*field);
            }
        }
    }
    value
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
            "metadata": {"namespace": "default", "name": "web", "uid": "x", "resourceVersion": "9"},
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
}
