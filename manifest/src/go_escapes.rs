//! go-yaml's one escape that YAML lacks: `\'` in a double-quoted scalar
//! means `'`. kubectl and the API server read manifests with go-yaml, so a
//! file they accept must not be a syntax error here; libyaml (under
//! `serde_yaml_ng`) and `saphyr-parser` both refuse it.
//!
//! Where the parser reports an unknown escape and the text holds `\'`, the
//! two bytes become a two-byte placeholder, so every byte offset and line
//! stays where it was, and the placeholder turns back into `'` in the parsed
//! values. Owns only that rewrite; it never touches any other escape.

use serde_json::Value;

/// Two bytes in UTF-8, as `\'` is. A file that already holds this character
/// is never rewritten (its escapes stay errors rather than being misread).
const PLACEHOLDER: char = '\u{07FF}';

/// How many escapes one file may have rewritten; each costs a parse.
pub(crate) const MAX_REWRITES: usize = 256;

/// Whether a parser's message is the unknown-escape error.
pub(crate) fn is_unknown_escape(message: &str) -> bool {
    message.contains("unknown escape character")
}

/// Replaces the `\'` the parser stopped at (`offset` is where it points,
/// the backslash or the quote after it) with the placeholder; `false` when
/// there is none there or the file cannot be rewritten safely.
pub(crate) fn rewrite_at(text: &mut String, offset: usize) -> bool {
    let start = [offset, offset.saturating_sub(1)].into_iter().find(|&i| text.get(i..).is_some_and(|rest| rest.starts_with("\\'")));
    let Some(start) = start else { return false };
    text.replace_range(start..start + 2, PLACEHOLDER.encode_utf8(&mut [0; 4]));
    true
}

/// Whether the original text may be rewritten at all.
pub(crate) fn may_rewrite(original: &str) -> bool {
    !original.contains(PLACEHOLDER)
}

/// Turns placeholders back into `'` in every string and key of `value`.
pub(crate) fn restore(value: &mut Value) {
    match value {
        Value::String(s) if s.contains(PLACEHOLDER) => *s = s.replace(PLACEHOLDER, "'"),
        Value::Array(items) => items.iter_mut().for_each(restore),
        Value::Object(map) if map.keys().any(|k| k.contains(PLACEHOLDER)) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                restore(&mut item);
                map.insert(key.replace(PLACEHOLDER, "'"), item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(restore),
        _ => {}
    }
}
