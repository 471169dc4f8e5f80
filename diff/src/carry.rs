//! The fields the API server and controllers fill in that git leaves out,
//! carried from the live object into the desired one before they are
//! compared: without this, every commit would undo the allocator's work.

use serde_json::Value;

/// Copies from `live` (as stored) into `desired` (defaults applied) what the
/// API server and controllers filled in and the manifest leaves unset: a
/// Service's cluster IPs and node ports, a volume's claim, a claim's volume,
/// a pod's node, and an adopter's owner reference. A field the manifest sets
/// is the manifest's, even when it differs.
pub(crate) fn carry_over(desired: &mut Value, live: &Value) {
    let kind = desired.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
    match kind.as_str() {
        // An ExternalName Service has no cluster IP: the API server clears
        // it when a Service becomes one.
        "Service" if desired.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") => {}
        "Service" => {
            for pointer in ["/spec/clusterIP", "/spec/clusterIPs", "/spec/ipFamilies", "/spec/ipFamilyPolicy", "/spec/healthCheckNodePort"] {
                copy(desired, live, pointer);
            }
            let live_ports = live.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Some(ports) = desired.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for port in ports {
                    if port.get("nodePort").is_some() {
                        continue;
                    }
                    let same = live_ports.iter().find(|p| p.get("port") == port.get("port") && p.get("protocol") == port.get("protocol"));
                    if let Some(node_port) = same.and_then(|p| p.get("nodePort")) {
                        port["nodePort"] = node_port.clone();
                    }
                }
            }
        }
        "PersistentVolume" => copy(desired, live, "/spec/claimRef"),
        "PersistentVolumeClaim" => copy(desired, live, "/spec/volumeName"),
        // The scheduler's binding: without it every commit would replace
        // every declared pod.
        "Pod" => copy(desired, live, "/spec/nodeName"),
        _ => {}
    }
    // An owner that adopted a declared object (a Deployment its declared
    // ReplicaSet) keeps it across syncs.
    copy(desired, live, "/metadata/ownerReferences");
}

fn copy(desired: &mut Value, live: &Value, pointer: &str) {
    if desired.pointer(pointer).is_none_or(Value::is_null)
        && let Some(v) = live.pointer(pointer)
    {
        set_pointer(desired, pointer, v.clone());
    }
}

fn set_pointer(value: &mut Value, pointer: &str, new: Value) {
    let mut parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = value;
    for part in parts {
        if at.get(part).is_none() {
            at[part] = Value::Object(Default::default());
        }
        at = &mut at[part];
    }
    at[last] = new;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocated_fields_survive_unless_the_manifest_sets_them() {
        let live = json!({"kind": "Service", "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30007}]}});
        let mut desired = json!({"kind": "Service", "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        carry_over(&mut desired, &live);
        assert_eq!(desired["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(desired["spec"]["ports"][0]["nodePort"], 30007);

        let mut headless = json!({"kind": "Service", "spec": {"clusterIP": "None", "ports": []}});
        carry_over(&mut headless, &live);
        assert_eq!(headless["spec"]["clusterIP"], "None");

        let mut external = json!({"kind": "Service", "spec": {"type": "ExternalName", "externalName": "example.org"}});
        carry_over(&mut external, &live);
        assert!(external["spec"].get("clusterIP").is_none());
    }
}
