//! `edit`: the object's document as git holds it goes to the user's
//! editor, and what they save becomes the commit. When the document is
//! still as they opened it, their text goes in verbatim (their comments
//! too); when the branch moved meanwhile, their changes are carried onto
//! the new document field by field, and refused when someone else changed
//! the same fields.
//!
//! Must not touch: the editor or the terminal (the CLI runs them), or any
//! other document of the file.

use std::sync::Arc;

use driftless_model::ObjectRef;
use git2::Repository;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::WriteError;
use crate::change::{Target, changed_pointers, declared, load};
use crate::verb::display;
use crate::yaml::{self, Place};

/// A document opened for editing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// The file, relative to the repository root.
    pub file: String,
    /// The document's first line in the file.
    pub line: usize,
    /// The document's text.
    pub text: String,
    /// The commit it was read at.
    pub commit: String,
}

/// The text of the document declaring `object` at the watched branch's
/// head (an item of a `List` is shown as a document of its own).
pub fn open(target: &Target, object: &ObjectRef) -> Result<Opened, WriteError> {
    let repository = Repository::open(&target.repo)?;
    let git = driftless_manifest::GitRepo::open(&target.repo)?;
    let head = repository.find_reference(&target.head_ref())?.peel_to_commit()?.id().to_string();
    let loaded = load(&git, &head, target)?;
    let (place, text, value) = declared(&loaded, object, &target.path, &head)?;
    let (line, text) = match yaml::document_range(&text, place.index).filter(|_| place.prefix.is_empty()) {
        Some(range) => (text[..range.start].matches('\n').count() + 1, text[range].to_owned()),
        None => (1, yaml::new_document(&value)),
    };
    Ok(Opened { file: place.file, line, text, commit: head })
}

/// Reads one document the user saved: its value, or why not (with the
/// line, as the editor showed it).
fn parse(text: &str, what: &str) -> Result<Value, WriteError> {
    let invalid = |line: u32, why: String| WriteError::Invalid { errors: vec![format!("{what}:{line}: {why}")] };
    let docs = driftless_manifest::parse_file(Arc::from(what), text).map_err(|e| invalid(e.pos.line, e.message))?;
    let mut docs = docs.into_iter();
    match (docs.next(), docs.next()) {
        (Some(doc), None) if doc.origin.prefix().is_empty() => Ok(doc.value),
        (None, _) => Err(WriteError::NoChange("Edit cancelled, the file was empty".into())),
        _ => Err(invalid(1, "edit one object; use `apply -f` for more".into())),
    }
}

/// The new text of `text` (the file at the head, where `place` declares
/// `object` as `current`) with the user's edit from `opened` to `edited`.
pub(crate) fn prepare(
    object: &ObjectRef,
    place: &Place,
    text: &str,
    current: &Value,
    current_commit: &str,
    opened: &str,
    edited: &str,
) -> Result<String, WriteError> {
    let before = parse(opened, "the document as opened")?;
    let after = parse(edited, "the edited document")?;
    if before == after {
        return Err(WriteError::NoChange("Edit cancelled, no changes made.".into()));
    }
    let identity = |v: &Value| {
        let kind = driftless_model::kind_of(v).ok();
        (kind, v.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned), v.pointer("/metadata/name").cloned())
    };
    let (kind, namespace, name) = identity(&after);
    let same_namespace =
        namespace.as_deref().unwrap_or("default") == object.namespace.as_deref().unwrap_or("default") || (namespace.is_none() && object.namespace.is_none());
    if kind != Some(object.kind) || !same_namespace || name.as_ref().and_then(Value::as_str) != Some(object.name.as_str()) {
        return Err(WriteError::Verb(format!(
            "the edit changes the kind, name or namespace of {}; that is another object: use `apply -f` and `delete`",
            display(object)
        )));
    }
    // Still as opened, as a whole document: the user's text goes in as
    // they wrote it.
    let as_opened = yaml::document_range(text, place.index).filter(|_| place.prefix.is_empty()).is_some_and(|r| text[r] == *opened);
    if as_opened && *current == before {
        return yaml::replace_document(text, place, edited, &after);
    }
    // Moved on: carry the user's changes, field by field, unless the same
    // fields changed there too.
    let mut merged = current.clone();
    for pointer in changed_pointers(&before, &after) {
        if current.pointer(&pointer) != before.pointer(&pointer) {
            return Err(WriteError::Conflict { field: pointer, commit: current_commit.to_owned() });
        }
        set_pointer(&mut merged, &pointer, after.pointer(&pointer).cloned());
    }
    if merged == *current {
        return Err(WriteError::NoChange(format!("{} already is as edited", display(object))));
    }
    yaml::edit(text, place, current, &merged)
}

/// Sets (or with `None` removes) the value at a JSON pointer whose parents
/// exist (the pointers come from comparing two values, and `prepare` has
/// checked that the current value agrees with the opened one along them).
fn set_pointer(root: &mut Value, pointer: &str, value: Option<Value>) {
    let keys: Vec<String> = pointer.split('/').skip(1).map(|k| k.replace("~1", "/").replace("~0", "~")).collect();
    let Some((last, path)) = keys.split_last() else {
        if let Some(value) = value {
            *root = value;
        }
        return;
    };
    let mut at = root;
    for key in path {
        let next = match at {
            Value::Object(map) => map.entry(key.clone()).or_insert_with(|| Value::Object(Default::default())),
            Value::Array(items) => match key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
        at = next;
    }
    match (at, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(last.clone(), v);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(v)) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = v;
            }
        }
        _ => {}
    }
}
