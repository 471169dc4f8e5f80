//! Deletion as the API server does it: graceful for pods a node runs.

use driftless_model::Kind;
use jiff::Timestamp;
use serde_json::Value;

use crate::{Key, Op};

/// The grace period of a pod that names none (`terminationGracePeriodSeconds`).
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// The write that deletes `live` (an object as stored): a pod bound to a
/// node is marked for graceful deletion (`deletionTimestamp` and
/// `deletionGracePeriodSeconds`), and the node removes it once its
/// containers have stopped; anything else, and a pod no node runs, is
/// removed at once. `None` for a value without kind or name.
pub fn delete_op(live: &Value, now: Timestamp) -> Option<Op> {
    let key = Key::of(live)?;
    let uid = live.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
    let scheduled = live.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    if key.kind != Kind::Pod || !scheduled {
        return Some(Op::Delete { key, uid });
    }
    let mut deleting = live.clone();
    if let Some(meta) = deleting.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("deletionTimestamp").is_none_or(Value::is_null)
    {
        let grace = live.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(DEFAULT_GRACE_SECONDS);
        meta.insert("deletionTimestamp".into(), Value::from(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
    }
    Some(Op::Update(deleting))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pods_on_a_node_are_deleted_gracefully() {
        let now: Timestamp = "2026-12-03T10:00:00.5Z".parse().unwrap();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"},
                         "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 5}});
        let Some(Op::Update(marked)) = delete_op(&pod, now) else { panic!() };
        assert_eq!(marked["metadata"]["deletionTimestamp"], "2026-12-03T10:00:00Z");
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 5);

        let pending = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}});
        assert!(matches!(delete_op(&pending, now), Some(Op::Delete { uid: Some(u), .. }) if u == "u"));
        let config = json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
        assert!(matches!(delete_op(&config, now), Some(Op::Delete { uid: None, .. })));
    }
}
