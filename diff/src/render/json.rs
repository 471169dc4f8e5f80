//! JSON for tools.

use serde_json::{Value, json as j};

use crate::{Change, Plan};

/// `{"summary": {...}, "actions": [{"action", "kind", "namespace", "name",
/// "effect" or "reason", "fields"}], "refused": [{"object", "pointer",
/// "message"}], "held": [{"object", "autoscaler", "declared",
/// "running"}]}`; values are normalized and Secret values redacted.
pub fn json(plan: &Plan) -> Value {
    let actions: Vec<Value> = plan
        .actions
        .iter()
        .map(|action| {
            let mut entry = serde_json::to_value(&action.change).unwrap_or_default();
            if let Some(map) = entry.as_object_mut() {
                map.insert("kind".into(), j!(action.object.kind.name()));
                map.insert("apiVersion".into(), j!(action.object.kind.api_version()));
                map.insert("namespace".into(), j!(action.object.namespace));
                map.insert("name".into(), j!(action.object.name));
                if action.cascades() {
                    map.insert("cascade".into(), j!(true));
                }
                if matches!(action.change, Change::Create) {
                    map.insert("object".into(), action.after.clone().unwrap_or_default());
                }
            }
            entry
        })
        .collect();
    j!({ "summary": plan.summary(), "actions": actions, "refused": plan.refused, "held": plan.held })
}
