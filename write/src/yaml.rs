//! Format-preserving edits of one document of a YAML (or JSON) file.
//!
//! Owns: turning "this document's value becomes that value" into new file
//! text that differs from the old only where the values differ
//! (`patch.rs`), on a tree of byte ranges (`tree.rs`), writing new values
//! so the daemon's loader reads them back unchanged (`render.rs`), and
//! proving it: the new text is loaded again and must give the new value
//! for the edited document and the old values for every other one.
//!
//! Must not touch: what a change means (the verbs decide the new value) or
//! git. It never re-serializes a user's file: an edit it cannot make in
//! place is an error naming the line.

mod patch;
mod render;
mod tree;

use std::sync::Arc;

use serde_json::Value;

use crate::WriteError;
use render::Layout;
use tree::{Body, Node, Tree};

/// Where a document sits in its file: the YAML document's index and, for
/// an item of a `kind: List`, `/items/N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file, relative to the repository root.
    pub file: String,
    /// The 0-based YAML document index.
    pub index: usize,
    /// `""`, or `/items/N`.
    pub prefix: String,
}

/// Learns the file's indentation habits from its first nested mapping
/// and first block sequence under a key.
fn layout(text: &str, root: &Node, json: bool) -> Layout {
    fn walk(text: &str, node: &Node, unit: &mut Option<usize>, seq: &mut Option<usize>) {
        match &node.body {
            Body::Map { flow: false, entries } => {
                for entry in entries {
                    let key_col = entry.key_start - tree::line_start(text, entry.key_start);
                    match &entry.value.body {
                        Body::Map { flow: false, entries: inner } if unit.is_none() => {
                            if let Some(first) = inner.first() {
                                let c = first.key_start - tree::line_start(text, first.key_start);
                                if c > key_col {
                                    *unit = Some(c - key_col);
                                }
                            }
                        }
                        Body::Seq { flow: false, .. } if seq.is_none() => {
                            let c = entry.value.start - tree::line_start(text, entry.value.start);
                            if c >= key_col && tree::line_start(text, entry.value.start) != tree::line_start(text, entry.key_start) {
                                *seq = Some(c - key_col);
                            }
                        }
                        _ => {}
                    }
                    walk(text, &entry.value, unit, seq);
                }
            }
            Body::Seq { items, .. } => items.iter().for_each(|i| walk(text, i, unit, seq)),
            _ => {}
        }
    }
    let (mut unit, mut seq) = (None, None);
    walk(text, root, &mut unit, &mut seq);
    Layout { unit: unit.unwrap_or(2), seq_offset: seq.unwrap_or(0), json }
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// The file's text with the document at `place` changed from `old` to
/// `new`, every other byte kept.
pub fn edit(text: &str, place: &Place, old: &Value, new: &Value) -> Result<String, WriteError> {
    let unsupported = |line: usize, why: String| WriteError::NotInPlace { file: place.file.clone(), line, why };
    let tree = Tree::parse(text).ok_or_else(|| unsupported(1, "the file's YAML could not be read for editing".into()))?;
    let root = tree.documents.get(place.index).ok_or_else(|| unsupported(1, format!("no YAML document {} in the file", place.index + 1)))?;
    let mut node = root;
    for segment in place.prefix.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().chunks(2) {
        // Only `/items/N` prefixes exist.
        let (Some(field), Some(index)) = (segment.first(), segment.get(1).and_then(|i| i.parse::<usize>().ok())) else { break };
        let Body::Map { entries, .. } = &node.body else { return Err(unsupported(line_of(text, node.start), "not a mapping".into())) };
        let Some(entry) = entries.iter().find(|e| e.key == *field) else { return Err(unsupported(line_of(text, node.start), format!("no `{field}`"))) };
        let Body::Seq { items, .. } = &entry.value.body else { return Err(unsupported(line_of(text, entry.key_start), "not a sequence".into())) };
        node = items.get(index).ok_or_else(|| unsupported(line_of(text, entry.key_start), format!("no item {index}")))?;
    }
    let json = place.file.to_ascii_lowercase().ends_with(".json");
    let mut patcher = patch::Patcher::new(text, layout(text, root, json));
    patcher.document(node, old, new).map_err(|e| unsupported(line_of(text, e.at), e.why))?;
    let mut splices = patcher.splices;
    splices.sort_by_key(|s| (s.start, s.end));
    for pair in splices.windows(2) {
        if pair[0].end > pair[1].start {
            return Err(unsupported(line_of(text, pair[1].start), "two changes overlap".into()));
        }
    }
    // A file written with CRLF line ends gets them on new lines too.
    let crlf = text.contains("\r\n");
    let mut out = text.to_owned();
    for splice in splices.iter().rev() {
        let with = if crlf { splice.with.replace("\r\n", "\n").replace('\n', "\r\n") } else { splice.with.clone() };
        out.replace_range(splice.start..splice.end, &with);
    }
    verify(text, &out, place, new)?;
    Ok(out)
}

/// Loads both texts as the daemon would and checks that only the edited
/// document changed, and to exactly `new`.
fn verify(before: &str, after: &str, place: &Place, new: &Value) -> Result<(), WriteError> {
    let path: Arc<str> = Arc::from(place.file.as_str());
    let failed = |why: String| WriteError::NotInPlace { file: place.file.clone(), line: 1, why };
    let old_docs = driftless_manifest::parse_file(path.clone(), before).map_err(|e| failed(e.message))?;
    let new_docs = driftless_manifest::parse_file(path, after).map_err(|e| failed(format!("the edit would not parse: {}", e.message)))?;
    if old_docs.len() != new_docs.len() {
        return Err(failed("the edit would change how many objects the file holds".into()));
    }
    for (o, n) in old_docs.iter().zip(&new_docs) {
        let edited = o.origin.index() == place.index && o.origin.prefix() == place.prefix;
        let expected = if edited { new } else { &o.value };
        if &n.value != expected {
            let line = n.start().line as usize;
            return Err(WriteError::NotInPlace { file: place.file.clone(), line, why: "the edit could not be made without changing other fields".into() });
        }
    }
    Ok(())
}

/// The byte range of YAML document `index` in `text`, whole lines (what
/// `edit` shows in the editor and what it replaces when saved).
pub fn document_range(text: &str, index: usize) -> Option<std::ops::Range<usize>> {
    let tree = Tree::parse(text)?;
    let root = tree.documents.get(index).filter(|d| !matches!(d.body, Body::Opaque))?;
    Some(tree::line_start(text, root.start)..tree::line_end(text, root.end.max(root.start + 1).saturating_sub(1)))
}

/// The file's text with document `place.index` replaced by `document`
/// verbatim (the user's own text, comments and all), checked to load as
/// exactly `new` with every other document unchanged.
pub fn replace_document(text: &str, place: &Place, document: &str, new: &Value) -> Result<String, WriteError> {
    let range = document_range(text, place.index).filter(|_| place.prefix.is_empty()).ok_or_else(|| WriteError::NotInPlace {
        file: place.file.clone(),
        line: 1,
        why: "the document could not be found again".into(),
    })?;
    let mut document = document.to_owned();
    if !document.ends_with('\n') {
        document.push('\n');
    }
    if text.contains("\r\n") {
        document = document.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    let mut out = text.to_owned();
    out.replace_range(range, &document);
    verify(text, &out, place, new)?;
    Ok(out)
}

/// A new object as a document of its own, in block style.
pub fn new_document(value: &Value) -> String {
    render::block(value, 0, Layout { unit: 2, seq_offset: 0, json: false })
}

/// The file's text without YAML document `index` (its separator line and
/// leading comments go with it); `None` when nothing would be left.
pub fn remove_document(file: &str, text: &str, index: usize) -> Result<Option<String>, WriteError> {
    let unsupported = |why: &str| WriteError::NotInPlace { file: file.to_owned(), line: 1, why: why.to_owned() };
    let tree = Tree::parse(text).ok_or_else(|| unsupported("the file's YAML could not be read for editing"))?;
    let documents = &tree.documents;
    let Some(root) = documents.get(index) else { return Err(unsupported("no such document")) };
    if documents.iter().filter(|d| !matches!(d.body, Body::Opaque)).count() <= 1 {
        return Ok(None);
    }
    let end = tree::line_end(text, root.end);
    let (start, end) = if index > 0 {
        (tree::line_end(text, documents[index - 1].end), end)
    } else {
        // The first document goes with the separator after it.
        let mut at = end;
        while at < text.len() && !text[at..].starts_with("---") {
            at = tree::line_end(text, at);
        }
        (0, tree::line_end(text, at))
    };
    let mut out = text.to_owned();
    out.replace_range(start..end, "");
    Ok(Some(out))
}

#[cfg(test)]
mod tests;
