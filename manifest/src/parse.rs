//! One file's text to documents.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use crate::document::FileText;
use crate::go_escapes;
use crate::{Document, Origin, Pos, SyntaxError};

/// Parses one file into its documents. `.json` files are read as one JSON
/// value, anything else as a stream of YAML documents. Empty and
/// comment-only documents are skipped; `kind: List` (and any `...List` with
/// `items`) is expanded into its items.
pub fn parse_file(path: Arc<str>, text: &str) -> Result<Vec<Document>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (values, rewritten) = if path.to_ascii_lowercase().ends_with(".json") { (parse_json(text)?, None) } else { parse_yaml_as_go_yaml(text)? };
    let text = rewritten.as_deref().unwrap_or(text);

    // Positions are computed from the text only when someone asks for one.
    let file = Arc::new(FileText::new(path, text, values.len()));
    let mut documents = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let origin = Origin::new(file.clone(), index, Arc::from(""));
        let value = match value {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(message) => return Err(SyntaxError { pos: origin.position(""), message }),
        };
        expand(origin, value, &mut documents)?;
    }
    Ok(documents)
}

fn expand(origin: Origin, value: Value, out: &mut Vec<Document>) -> Result<(), SyntaxError> {
    let Value::Object(mut object) = value else {
        return Err(SyntaxError { pos: origin.position(""), message: format!("expected a Kubernetes object (a mapping), found {}", describe(&value)) });
    };
    let is_list = object.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) && object.get("items").is_some_and(Value::is_array);
    if !is_list {
        out.push(Document { value: Value::Object(object), origin });
        return Ok(());
    }
    let Some(Value::Array(items)) = object.remove("items") else { return Ok(()) };
    for (i, item) in items.into_iter().enumerate() {
        let item_origin = Origin::new(origin.file_text(), origin.index(), Arc::from(format!("/items/{i}")));
        if !item.is_object() {
            return Err(SyntaxError {
                pos: item_origin.position(""),
                message: format!("list item {i} is not a Kubernetes object (a mapping), found {}", describe(&item)),
            });
        }
        out.push(Document { value: item, origin: item_origin });
    }
    Ok(())
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Each document's value, or a message for one that parses as YAML but has
/// no JSON form.
type Documents = Vec<Result<Value, String>>;

/// The documents as go-yaml reads them, and the text they were parsed from
/// when go-yaml's `\'` escape had to be rewritten (same length, same lines).
fn parse_yaml_as_go_yaml(text: &str) -> Result<(Documents, Option<String>), SyntaxError> {
    if let Some(pos) = crate::limits::yaml_events_past_bound(text) {
        let message = format!(
            "more than {} YAML nodes in one file (this is the first past the bound); refused before it is parsed whole",
            crate::limits::MAX_YAML_EVENTS
        );
        return Err(SyntaxError { pos, message });
    }
    let mut rewritten: Option<String> = None;
    for _ in 0..=go_escapes::MAX_REWRITES {
        let error = match parse_yaml(rewritten.as_deref().unwrap_or(text)) {
            Ok(mut values) => {
                if rewritten.is_some() {
                    values.iter_mut().flatten().for_each(go_escapes::restore);
                }
                return Ok((values, rewritten));
            }
            Err(error) => error,
        };
        let (syntax, offset) = error;
        let retry = go_escapes::is_unknown_escape(&syntax.message)
            && go_escapes::may_rewrite(text)
            && offset.is_some_and(|offset| go_escapes::rewrite_at(rewritten.get_or_insert_with(|| text.to_owned()), offset));
        if !retry {
            return Err(syntax);
        }
    }
    Err(SyntaxError { pos: Pos { line: 1, col: 1 }, message: format!("more than {} `\\'` escapes in one file", go_escapes::MAX_REWRITES) })
}

/// The documents, or the syntax error and the byte offset it points at.
fn parse_yaml(text: &str) -> Result<Documents, (SyntaxError, Option<usize>)> {
    let mut values = Vec::new();
    for deserializer in serde_yaml_ng::Deserializer::from_str(text) {
        let mut yaml = Yaml::deserialize(deserializer).map_err(|e| (yaml_error(&e), e.location().map(|l| l.index())))?;
        if let Err(e) = yaml.apply_merge() {
            values.push(Err(e.to_string()));
            continue;
        }
        values.push(to_json(yaml));
    }
    crate::yaml11::apply(text, &mut values);
    Ok(values)
}

fn parse_json(text: &str) -> Result<Documents, SyntaxError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| SyntaxError {
        pos: Pos { line: clamp(e.line()), col: clamp(e.column()) },
        message: explained(e.to_string().split(" at line ").next().unwrap_or_default()),
    })?;
    Ok(vec![Ok(value)])
}

fn yaml_error(error: &serde_yaml_ng::Error) -> SyntaxError {
    let pos = error.location().map(|l| Pos { line: clamp(l.line()), col: clamp(l.column()) }).unwrap_or(Pos { line: 1, col: 1 });
    // The message repeats the position; it is already in `pos`.
    let message = error.to_string();
    let message = explained(message.split(" at line ").next().unwrap_or(&message));
    SyntaxError { pos, message }
}

/// The parsers' bounds, said as what the file did (see `limits.rs`).
fn explained(message: &str) -> String {
    match message {
        "recursion limit exceeded" => "nested more than 128 levels deep (recursion limit exceeded)".to_owned(),
        "repetition limit exceeded" => {
            "its aliases expand to more than 100 times what the document writes (repetition limit exceeded: an alias bomb)".to_owned()
        }
        other => other.to_owned(),
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n.max(1)).unwrap_or(u32::MAX)
}

/// A YAML value's JSON form, as the API server's YAML decoder makes it:
/// scalar keys become strings, tags are dropped.
fn to_json(yaml: Yaml) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{n} has no JSON form"))?
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(mapping) => {
            let mut object = serde_json::Map::with_capacity(mapping.len());
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Null => "null".to_owned(),
                    _ => return Err("mapping keys must be strings".to_owned()),
                };
                object.insert(key, to_json(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(path: &str, text: &str) -> Result<Vec<Document>, SyntaxError> {
        parse_file(Arc::from(path), text)
    }

    #[test]
    fn multi_document_files_skip_empty_documents() {
        let docs = parse("a.yaml", "---\n# nothing\n---\nkind: A\n---\n---\nkind: B\nx: 1\n").unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d.kind().unwrap()).collect();
        assert_eq!(kinds, ["A", "B"]);
        assert_eq!(docs[0].start(), Pos { line: 4, col: 1 });
        assert_eq!(docs[1].position("/x"), Pos { line: 8, col: 1 });
    }

    #[test]
    fn go_yaml_single_quote_escapes_read_as_kubectl_reads_them() {
        // Flow style, a trailing comma and a comment, as in the docs' examples.
        let text = "kind: ConfigMap # settings\ndata: {\n  greeting: \"it\\'s \\\"quoted\\\"\\n\",\n  \"o\\'key\": \"a\\'b\\'c\",\n}\nnext: 1\n";
        let docs = parse("c.yaml", text).unwrap();
        assert_eq!(docs[0].value["data"]["greeting"], "it's \"quoted\"\n");
        assert_eq!(docs[0].value["data"]["o'key"], "a'b'c");
        // Lines are where they were.
        assert_eq!(docs[0].position("/next"), Pos { line: 6, col: 1 });
        assert_eq!(docs[0].position("/data/greeting").line, 3);
        // Other unknown escapes stay errors, at their line.
        let error = parse("c.yaml", "a: \"it\\'s\"\nb: \"\\q\"\n").unwrap_err();
        assert_eq!(error.pos.line, 2, "{error:?}");
        assert!(error.message.contains("unknown escape"), "{error:?}");
        // Single-quoted and plain scalars keep their backslashes.
        let docs = parse("c.yaml", "a: 'x\\'''\nb: x\\'y\n").unwrap();
        assert_eq!(docs[0].value["a"], "x\\'");
        assert_eq!(docs[0].value["b"], "x\\'y");
    }

    #[test]
    fn comment_only_and_empty_files_have_no_documents() {
        assert!(parse("a.yaml", "# just a comment\n").unwrap().is_empty());
        assert!(parse("a.yaml", "").unwrap().is_empty());
        assert!(parse("a.json", "  \n").unwrap().is_empty());
    }

    #[test]
    fn lists_expand_with_positions() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: A\n  metadata: {name: a}\n- kind: B\n  spec:\n    x: 1\n";
        let docs = parse("l.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].kind(), Some("B"));
        assert_eq!(docs[1].start(), Pos { line: 6, col: 3 });
        assert_eq!(docs[1].position("/spec/x"), Pos { line: 8, col: 5 });
    }

    #[test]
    fn syntax_errors_carry_the_parser_position() {
        let err = parse("bad.yaml", "kind: Pod\nmetadata:\n  name: [unclosed\n").unwrap_err();
        assert!(err.pos.line >= 3, "{err:?}");
        let err = parse("bad.json", "{\"kind\": \"Pod\",\n \"spec\": }").unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(err.message.starts_with("expected value"), "{}", err.message);
    }

    #[test]
    fn non_objects_are_refused() {
        let err = parse("a.yaml", "kind: A\n---\n- 1\n- 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 1 });
        assert_eq!(err.message, "expected a Kubernetes object (a mapping), found a sequence");
    }

    #[test]
    fn merge_keys_and_scalar_keys() {
        let docs = parse("m.yaml", "base: &b {x: 1}\nobj:\n  <<: *b\n  y: 2\n1: one\n").unwrap();
        assert_eq!(docs[0].value["obj"]["x"], 1);
        assert_eq!(docs[0].value["1"], "one");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = parse("f.yaml", &text);
            let _ = parse("f.json", &text);
        }

        #[test]
        fn never_panics_on_yamlish_text(text in "([a-z:\\-\\[\\]{}&*!|>?#'\" ,\n]|  |---\n){0,80}") {
            let _ = parse("f.yaml", &text);
        }
    }
}
