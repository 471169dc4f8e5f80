//! Field-level comparison of two normalized values.

use serde::Serialize;
use serde_json::Value;

/// One field whose value differs. A field present on one side only has
/// `None` on the other; a whole subtree that appears or disappears is one
/// change at its root.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Dotted path (`spec.template.spec.containers[0].image`).
    pub path: String,
    /// The value before, if the field existed.
    pub before: Option<Value>,
    /// The value after, if the field exists.
    pub after: Option<Value>,
}

/// Every leaf-most difference between `before` and `after`, in document
/// order.
pub(crate) fn changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(before), Some(after), &mut out);
    out
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                walk(join(&path, key), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (None, None) => {}
        (before, after) => out.push(FieldChange { path, before: before.cloned(), after: after.cloned() }),
    }
}

fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_leaf_changes_with_paths() {
        let before = json!({"spec": {"replicas": 2, "template": {"containers": [{"image": "a"}]}}, "metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        let after = json!({"spec": {"replicas": 3, "template": {"containers": [{"image": "b"}, {"image": "c"}]}}, "metadata": {"labels": {"app.kubernetes.io/name": "y"}}});
        let paths: Vec<_> = changes(&before, &after).into_iter().map(|c| c.path).collect();
        assert_eq!(
            paths,
            ["metadata.labels[\"app.kubernetes.io/name\"]", "spec.replicas", "spec.template.containers[0].image", "spec.template.containers[1]",]
        );
    }
}
