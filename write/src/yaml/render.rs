//! Writing new values as YAML text that Driftless reads back as the same
//! value: scalars plain when the daemon's own reader (go-yaml's YAML 1.1
//! readings included) gives back the same string, double-quoted
//! otherwise; collections in block style at a given indentation, or in flow
//! style inside flow collections and JSON files.

use std::sync::Arc;

use serde_json::Value;

/// How new text is laid out, learnt from the file being edited.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Spaces a nested mapping is indented by.
    pub unit: usize,
    /// Spaces a block sequence's `-` is indented from its key (0 for
    /// kubectl's `containers:\n- name`, 2 for `containers:\n  - name`).
    pub seq_offset: usize,
    /// The file is JSON: everything is written as JSON.
    pub json: bool,
}

/// Whether `text`, written plain as a mapping value, is read back by the
/// daemon's loader as exactly the string `text`.
fn reads_back_plain(text: &str) -> bool {
    if text.is_empty() || text.trim() != text || text.contains(['\n', '\r', '\t', '#', '"', '\'', '`']) || text.contains(": ") || text.ends_with(':') {
        return false;
    }
    if text.starts_with(['-', '?', ':', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '%', '@']) && text != "-" {
        // `-x` reads as a string, but `- x` would not: be safe.
        return false;
    }
    let doc = format!("v: {text}\n");
    match driftless_manifest::parse_file(Arc::from("check.yaml"), &doc) {
        Ok(docs) => docs.first().and_then(|d| d.value.get("v")).and_then(Value::as_str) == Some(text),
        Err(_) => false,
    }
}

/// Whether `text` may be written plain inside a flow collection.
fn reads_back_in_flow(text: &str) -> bool {
    !text.contains([',', '[', ']', '{', '}']) && reads_back_plain(text)
}

/// A string in double quotes (JSON's escapes are YAML's).
pub(crate) fn double_quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

/// A scalar (or empty collection) written inline. `quote` is the style the
/// old value was written in, kept for strings: `Some('"')`, `Some('\'')`
/// or `None` for plain.
pub(crate) fn inline(value: &Value, quote: Option<char>, flow: bool, layout: Layout) -> String {
    if layout.json {
        return serde_json::to_string(value).unwrap_or_default();
    }
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => match quote {
            Some('\'') if !s.contains(['\n', '\r']) && !s.chars().any(char::is_control) => format!("'{}'", s.replace('\'', "''")),
            Some(_) => double_quoted(s),
            None if (if flow { reads_back_in_flow(s) } else { reads_back_plain(s) }) => s.clone(),
            None => double_quoted(s),
        },
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Array(items) => format!("[{}]", items.iter().map(|v| inline(v, None, true, layout)).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            ordered(map).into_iter().map(|(k, v)| format!("{}: {}", key(k, true, layout), inline(v, None, true, layout))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A mapping key.
pub(crate) fn key(text: &str, flow: bool, layout: Layout) -> String {
    if layout.json {
        return double_quoted(text);
    }
    let plain = if flow { reads_back_in_flow(text) } else { reads_back_plain(text) };
    if plain && !text.contains(':') { text.to_owned() } else { double_quoted(text) }
}

/// Whether a value is written inline in block style (scalars and empty
/// collections) rather than on lines of its own.
pub(crate) fn is_inline(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => true,
    }
}

/// A multi-line string as a literal block scalar whose content lines are
/// indented by `indent`, when its text allows one (no trailing spaces to
/// lose, a clean end); `None` otherwise.
pub(crate) fn literal(text: &str, indent: usize) -> Option<String> {
    if !text.contains('\n') || text.starts_with([' ', '\t']) || text.ends_with("\n\n") || text.chars().any(|c| c.is_control() && c != '\n') {
        return None;
    }
    let (body, chomp) = match text.strip_suffix('\n') {
        Some(body) => (body, ""),
        None => (text, "-"),
    };
    if body.lines().any(|l| l.ends_with([' ', '\t'])) {
        return None;
    }
    let pad = " ".repeat(indent);
    let lines: Vec<String> = body.split('\n').map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect();
    Some(format!("|{chomp}\n{}", lines.join("\n")))
}

/// A scalar as the value of a block entry or item whose content would be
/// indented by `indent`: a literal block for multi-line strings, else
/// inline.
fn block_scalar(value: &Value, indent: usize, layout: Layout) -> String {
    match value {
        Value::String(s) if s.contains('\n') => literal(s, indent).unwrap_or_else(|| double_quoted(s)),
        _ => inline(value, None, false, layout),
    }
}

/// A mapping's entries in the order Kubernetes writes them: identity
/// first (`apiVersion`, `kind`, `metadata`, `name`), then the rest.
fn ordered(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    const FIRST: [&str; 5] = ["apiVersion", "kind", "metadata", "name", "namespace"];
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()));
    entries
}

/// A non-empty collection in block style, every line indented by at least
/// `indent` and ending in a newline.
pub(crate) fn block(value: &Value, indent: usize, layout: Layout) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match value {
        Value::Object(map) => {
            for (k, v) in ordered(map) {
                out.push_str(&pad);
                out.push_str(&key(k, false, layout));
                out.push(':');
                out.push_str(&after_key(v, indent, layout));
                out.push('\n');
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                out.push_str(&after_dash(item, indent, layout));
                out.push('\n');
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other, None, false, layout));
            out.push('\n');
        }
    }
    out
}

/// What follows `key:` for a value under a key indented by `indent`.
pub(crate) fn after_key(value: &Value, indent: usize, layout: Layout) -> String {
    if is_inline(value) {
        return format!(" {}", block_scalar(value, indent + layout.unit, layout));
    }
    let nested = if value.is_array() { indent + layout.seq_offset } else { indent + layout.unit };
    format!("\n{}", block(value, nested, layout).trim_end_matches('\n'))
}

/// What follows `-` for an item whose dash is indented by `indent`.
pub(crate) fn after_dash(value: &Value, indent: usize, layout: Layout) -> String {
    if is_inline(value) {
        return format!(" {}", block_scalar(value, indent + 2, layout));
    }
    let text = block(value, indent + 2, layout);
    format!(" {}", text[indent + 2..].trim_end_matches('\n'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LAYOUT: Layout = Layout { unit: 2, seq_offset: 0, json: false };

    #[test]
    fn strings_are_plain_only_when_they_read_back() {
        assert_eq!(inline(&json!("busybox:1.36"), None, false, LAYOUT), "busybox:1.36");
        assert_eq!(inline(&json!("128Mi"), None, false, LAYOUT), "128Mi");
        // go-yaml's YAML 1.1 readings: these would not stay strings.
        for text in ["on", "yes", "1.36", "0400", "null", "~", "true", "1e3", ""] {
            assert_eq!(inline(&json!(text), None, false, LAYOUT), double_quoted(text), "{text}");
        }
        assert_eq!(inline(&json!("a: b"), None, false, LAYOUT), "\"a: b\"");
        assert_eq!(inline(&json!("it's"), Some('\''), false, LAYOUT), "'it''s'");
        assert_eq!(inline(&json!(5), Some('"'), false, LAYOUT), "5");
        assert_eq!(inline(&json!("a,b"), None, true, LAYOUT), "\"a,b\"");
    }

    #[test]
    fn blocks_nest_with_the_layout() {
        let value = json!({"name": "app", "env": [{"name": "A", "value": "1"}], "ports": []});
        assert_eq!(block(&value, 4, LAYOUT), "    name: app\n    env:\n    - name: A\n      value: \"1\"\n    ports: []\n");
        let indented = Layout { seq_offset: 2, ..LAYOUT };
        assert_eq!(block(&value, 0, indented), "name: app\nenv:\n  - name: A\n    value: \"1\"\nports: []\n");
        assert_eq!(after_dash(&json!({"a": 1, "b": 2}), 2, LAYOUT), " a: 1\n    b: 2");
        assert_eq!(after_key(&json!("x\ny\n"), 2, LAYOUT), " |\n    x\n    y");
    }

    #[test]
    fn json_files_get_json() {
        let json_layout = Layout { json: true, ..LAYOUT };
        assert_eq!(inline(&json!({"a": "on"}), None, true, json_layout), "{\"a\":\"on\"}");
        assert_eq!(key("a", true, json_layout), "\"a\"");
    }
}
