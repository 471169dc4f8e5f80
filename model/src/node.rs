//! What a node owns of its Node object: its status, its pod CIDR and its
//! own labels. When a node posts itself again (the in-process node's
//! heartbeat, an agent through the API), everything else is kept: taints
//! from the node lifecycle or a user, `unschedulable`, labels others set.
//! One decision for both paths.
//!
//! Must not touch: the store (callers write what this returns).

use serde_json::{Value, json};

/// `posted` (the node's own view of its Node) merged onto `existing`
/// (the stored one, if any), with the `resourceVersion` it was merged onto:
/// written as an update, it fails rather than undo a change made since
/// (a cordon between the read and the write).
pub fn refreshed(existing: Option<&Value>, mut posted: Value) -> Value {
    let Some(existing) = existing else { return posted };
    if let Some(version) = existing.pointer("/metadata/resourceVersion") {
        posted["metadata"]["resourceVersion"] = version.clone();
    }
    let mut spec = existing.get("spec").cloned().unwrap_or_else(|| json!({}));
    for field in ["podCIDR", "podCIDRs"] {
        if let Some(value) = posted.pointer(&format!("/spec/{field}")) {
            spec[field] = value.clone();
        }
    }
    posted["spec"] = spec;
    if let Some(old) = existing.pointer("/metadata/labels").and_then(Value::as_object) {
        let mut merged = old.clone();
        if let Some(own) = posted.pointer("/metadata/labels").and_then(Value::as_object) {
            merged.extend(own.clone());
        }
        posted["metadata"]["labels"] = Value::Object(merged);
    }
    posted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_posting_itself_keeps_what_others_set() {
        let stored = json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "tier": "db"}},
            "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": true, "taints": [{"key": "dedicated", "effect": "NoSchedule"}]},
        });
        let posted = json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux"}},
            "spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]},
            "status": {"phase": "Running"},
        });
        let merged = refreshed(Some(&stored), posted.clone());
        assert_eq!(merged["spec"]["taints"][0]["key"], "dedicated");
        assert_eq!(merged["spec"]["unschedulable"], true);
        assert_eq!(merged["spec"]["podCIDR"], "10.244.2.0/24");
        assert_eq!(merged["metadata"]["labels"]["tier"], "db");
        assert_eq!(merged["metadata"]["labels"]["kubernetes.io/os"], "linux");
        assert_eq!(merged["status"]["phase"], "Running");
        assert_eq!(refreshed(None, posted.clone()), posted);
    }
}
