//! The YAML 1.1 readings Kubernetes gives plain scalars that YAML 1.2 (and
//! so `serde_yaml_ng`) reads as strings.
//!
//! kubectl and the API server decode YAML with go-yaml v2, which follows
//! YAML 1.1: `defaultMode: 0400` is the octal number 256 (the Kubernetes
//! docs' own example), `on`, `yes` and `n` are booleans, `1_000` is 1000.
//! Reading those as strings would reject valid manifests and accept invalid
//! ones, so after `serde_yaml_ng` has built a document's value, every plain,
//! untagged scalar that go-yaml would read differently is replaced by what
//! go-yaml reads. Quoted scalars are never touched: `"0400"` stays a string.

use serde_json::Value;

use crate::Pos;
use crate::source_map::{self, Visitor};

/// What go-yaml v2 reads from a plain scalar, when that differs from the
/// YAML 1.2 core schema.
pub(crate) fn reading(plain: &str) -> Option<Value> {
    match plain {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Value::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(Value::Bool(false)),
        _ => {}
    }
    let (negative, digits) = match plain.as_bytes().first() {
        Some(b'-') => (true, &plain[1..]),
        Some(b'+') => (false, &plain[1..]),
        _ => (false, plain),
    };
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let binary = digits.strip_prefix("0b").filter(|b| !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1' || c == b'_'));
    let underscores = digits.contains('_') && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') && !digits.starts_with('_');
    let magnitude = if let Some(bits) = binary {
        i64::from_str_radix(&bits.replace('_', ""), 2).ok()?
    } else if leading_zero {
        let clean = digits.replace('_', "");
        // go-yaml tries base 8, then falls back to reading it as a float
        // ("09" is 9).
        i64::from_str_radix(&clean, 8).ok().or_else(|| clean.parse::<i64>().ok())?
    } else if underscores {
        digits.replace('_', "").parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(Value::from(if negative { -magnitude } else { magnitude }))
}

/// Whether `text` may hold a scalar that [`reading`] changes; a cheap scan
/// that spares most files the event walk.
pub(crate) fn may_apply(text: &str) -> bool {
    text.split(|c: char| c.is_ascii_whitespace() || matches!(c, ':' | ',' | '[' | ']' | '{' | '}' | '#')).any(|token| reading(token).is_some())
}

/// Per document, the pointers of plain scalars Kubernetes reads otherwise,
/// and what it reads.
#[derive(Default)]
struct Fixups(Vec<Vec<(String, Value)>>);

impl Visitor for Fixups {
    fn document(&mut self) {
        self.0.push(Vec::new());
    }

    fn key(&mut self, _pointer: &str, _pos: Pos) {}

    fn value(&mut self, pointer: &str, _pos: Pos, plain: Option<&str>) {
        if let (Some(text), Some(fixups)) = (plain, self.0.last_mut())
            && let Some(value) = reading(text)
        {
            fixups.push((pointer.to_owned(), value));
        }
    }
}

/// Applies the YAML 1.1 readings to the documents parsed from `text`. Does
/// nothing when the two parsers disagree on the documents.
pub(crate) fn apply(text: &str, documents: &mut [Result<Value, String>]) {
    if !may_apply(text) {
        return;
    }
    let mut fixups = Fixups::default();
    if source_map::walk(text, &mut fixups).is_none() || fixups.0.len() != documents.len() {
        return;
    }
    for (document, fixups) in documents.iter_mut().zip(fixups.0) {
        let Ok(value) = document else { continue };
        for (pointer, reading) in fixups {
            // Only a value serde_yaml_ng left as a string is replaced;
            // anything else means the two parsers saw different things.
            if let Some(slot @ Value::String(_)) = value.pointer_mut(&pointer) {
                *slot = reading;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readings_follow_go_yaml_v2() {
        assert_eq!(reading("0400"), Some(json!(256)));
        assert_eq!(reading("0644"), Some(json!(420)));
        assert_eq!(reading("09"), Some(json!(9)));
        assert_eq!(reading("-010"), Some(json!(-8)));
        assert_eq!(reading("0b101"), Some(json!(5)));
        assert_eq!(reading("1_000"), Some(json!(1000)));
        assert_eq!(reading("on"), Some(json!(true)));
        assert_eq!(reading("NO"), Some(json!(false)));
        for same in ["0", "400", "true", "0x1F", "none", "1.5", "_1", "v1", "0.5", "1e3", "Ontario"] {
            assert_eq!(reading(same), None, "{same}");
        }
    }

    #[test]
    fn plain_scalars_change_quoted_ones_do_not() {
        let text = "a: 0400\nb: '0400'\nc: on\nd: \"yes\"\ne: [0644, x]\nf: !!str 0400\n";
        let mut docs: Vec<Result<Value, String>> = vec![Ok(json!({
            "a": "0400", "b": "0400", "c": "on", "d": "yes", "e": ["0644", "x"], "f": "0400"
        }))];
        apply(text, &mut docs);
        assert_eq!(
            docs[0].as_ref().unwrap(),
            &json!({
                "a": 256, "b": "0400", "c": true, "d": "yes", "e": [420, "x"], "f": "0400"
            })
        );
    }
}
