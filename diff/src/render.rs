//! A plan as text for a terminal, markdown for a pull request, or JSON for
//! tools. Rendering returns strings; printing is the caller's business.

mod json;
mod markdown;
mod text;

pub use json::json;
pub use markdown::markdown;
pub use text::text;

use serde_json::Value;
use similar::TextDiff;

use crate::{Action, Change, Summary};

/// `2 to create, 1 to update (1 rolls pods), 1 to replace, 0 to delete`
/// (replaces and refusals only when there are some).
pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!("{} to create, {} to update", summary.create, summary.update);
    if summary.rolls_pods > 0 {
        line.push_str(&format!(" ({} rolls pods)", summary.rolls_pods));
    }
    if summary.replace > 0 {
        line.push_str(&format!(", {} to replace", summary.replace));
    }
    line.push_str(&format!(", {} to delete", summary.delete));
    if summary.refused > 0 {
        line.push_str(&format!("; {} refused", summary.refused));
    }
    line
}

/// The heading words of an action: `update, rolls pods`, `replace: why`,
/// `delete, with everything in it`.
pub(crate) fn describe(action: &Action) -> String {
    match &action.change {
        Change::Update { effect, .. } => format!("update, {}", effect.describe()),
        Change::Replace { reason, .. } => format!("replace: {reason}"),
        Change::Delete if action.cascades() => "delete, with everything in it".to_owned(),
        other => other.verb().to_owned(),
    }
}

/// The unified diff of the YAML forms of an action's two sides.
pub(crate) fn unified(action: &Action) -> String {
    let before = action.before.as_ref().map(yaml).unwrap_or_default();
    let after = action.after.as_ref().map(yaml).unwrap_or_default();
    let name = action.object.to_string();
    TextDiff::from_lines(&before, &after).unified_diff().context_radius(3).header(&format!("a/{name}"), &format!("b/{name}")).to_string()
}

fn yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).unwrap_or_default()
}

/// A short form of a field value for one-line listings.
pub(crate) fn brief(value: Option<&Value>) -> String {
    let text = match value {
        None => return "(absent)".to_owned(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    };
    // The unified diff below shows long values whole.
    if text.len() <= 60 {
        return text;
    }
    let mut cut = 57;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use driftless_model::{Object, ObjectRef};
    use serde_json::json;

    use super::*;
    use crate::plan;

    fn set(values: &[serde_json::Value]) -> BTreeMap<ObjectRef, Object> {
        values.iter().map(|v| Object::parse(v).unwrap()).map(|o| (o.object_ref(), o)).collect()
    }

    fn sample() -> crate::Plan {
        let plan = |from: &BTreeMap<ObjectRef, Object>, to: &BTreeMap<ObjectRef, Object>| plan(to, &crate::Revision::new(from));
        let secret = |p: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": p}});
        let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"greeting": v}});
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old"}, "spec": {"ports": [{"port": 80}]}});
        plan(&set(&[secret("s3cret-one"), cm("hello"), svc]), &set(&[secret("s3cret-two"), cm("hi | there")]))
    }

    #[test]
    fn text_lists_fields_and_diffs() {
        let out = text(&sample(), false);
        assert!(out.starts_with("Plan: 0 to create, 2 to update, 1 to delete\n"), "{out}");
        assert!(out.contains("~ ConfigMap default/web (update, in place)\n    data.greeting: \"hello\" → \"hi | there\"\n"), "{out}");
        assert!(out.contains("  -  greeting: hello\n  +  greeting: hi | there\n"), "{out}");
        assert!(out.contains("- Service default/old (delete)"), "{out}");
        assert!(text(&sample(), true).contains("\u{1b}["));
    }

    #[test]
    fn markdown_has_a_table_and_collapsible_diffs() {
        let out = markdown(&sample());
        assert!(out.contains("| ✏️ | ConfigMap | default | `web` | update, **in place**: `data.greeting` |"), "{out}");
        assert!(out.contains("<details><summary>delete Service default/old</summary>"), "{out}");
        assert!(out.contains("```diff\n"), "{out}");
    }

    #[test]
    fn no_output_leaks_secret_values() {
        let plan = sample();
        let outputs = [text(&plan, false), markdown(&plan), json(&plan).to_string()];
        for out in outputs {
            for secret in ["s3cret", "czNjcmV0"] {
                assert!(!out.contains(secret), "leaked {secret}: {out}");
            }
            assert!(out.contains("(redacted, changed)"), "{out}");
        }
    }
}
