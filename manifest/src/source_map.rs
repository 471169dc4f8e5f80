//! Where every field of a YAML document was written.
//!
//! `serde_yaml_ng` gives values but forgets positions, so a second, event
//! level pass with `saphyr-parser` records the position of every key and
//! sequence item under the JSON pointer that names it in the value. Both
//! parsers implement YAML 1.2; when they disagree on a malformed file the
//! map is simply missing, and positions fall back to the document start.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::Pos;

/// Positions of one YAML document, by JSON pointer (`""` is the root).
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Pos>,
}

impl SourceMap {
    /// The position of `pointer`, or of its nearest recorded ancestor, or of
    /// line 1 when nothing is recorded.
    pub fn find(&self, pointer: &str) -> Pos {
        let mut current = pointer;
        loop {
            if let Some(pos) = self.positions.get(current) {
                return *pos;
            }
            match current.rfind('/') {
                Some(i) => current = &current[..i],
                None => return Pos { line: 1, col: 1 },
            }
        }
    }

    /// The number of positions recorded.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

enum Frame {
    Map {
        pointer: String,
        key: Option<String>,
    },
    Seq {
        pointer: String,
        next: usize,
    },
    /// A mapping or sequence used as a key: skipped, with its depth.
    Skip(usize),
}

/// What the event walk reports: each YAML document, and each node of it
/// under the JSON pointer it will have in the document's value.
pub(crate) trait Visitor {
    /// A new document starts.
    fn document(&mut self);
    /// A mapping key was written at `pos` for the field `pointer`.
    fn key(&mut self, pointer: &str, pos: Pos);
    /// A value (scalar, mapping, sequence or alias) starts at `pos`.
    /// `plain` is the text of an untagged plain scalar.
    fn value(&mut self, pointer: &str, pos: Pos, plain: Option<&str>);
}

/// Walks the events of every YAML document of `text`, reporting nodes by
/// JSON pointer; `None` when the event parser rejects the text.
pub(crate) fn walk(text: &str, visitor: &mut impl Visitor) -> Option<()> {
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let pos = Pos { line: u32::try_from(span.start.line()).unwrap_or(u32::MAX), col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX) };
        match event {
            Event::DocumentStart(_) => {
                stack.clear();
                visitor.document();
            }
            Event::Scalar(text, style, _, tag) => {
                if let Some(Frame::Map { pointer, key: key @ None }) = stack.last_mut() {
                    let field = format!("{pointer}/{}", escape(&text));
                    visitor.key(&field, pos);
                    *key = Some(field);
                } else {
                    let plain = (style == ScalarStyle::Plain && tag.is_none()).then_some(&*text);
                    place_value(&mut stack, visitor, pos, plain);
                }
            }
            Event::Alias(_) => {
                if let Some(Frame::Map { key: key @ None, .. }) = stack.last_mut() {
                    *key = Some(String::from("\u{0}alias"));
                } else {
                    place_value(&mut stack, visitor, pos, None);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                match stack.last_mut() {
                    Some(Frame::Skip(depth)) => *depth += 1,
                    Some(Frame::Map { key: key @ None, .. }) => {
                        // A complex key: Kubernetes has none; skip it.
                        *key = Some(String::from("\u{0}complex"));
                        stack.push(Frame::Skip(1));
                    }
                    _ => {
                        let pointer = place_value(&mut stack, visitor, pos, None);
                        stack.push(if is_map { Frame::Map { pointer, key: None } } else { Frame::Seq { pointer, next: 0 } });
                    }
                }
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.last_mut() {
                Some(Frame::Skip(depth)) if *depth > 1 => *depth -= 1,
                _ => {
                    stack.pop();
                }
            },
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Some(())
}

/// Reports a value at the next slot of the innermost container and returns
/// its pointer.
fn place_value(stack: &mut [Frame], visitor: &mut impl Visitor, pos: Pos, plain: Option<&str>) -> String {
    let pointer = match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { key, .. }) => key.take().unwrap_or_default(),
        Some(Frame::Seq { pointer, next }) => {
            let item = format!("{pointer}/{next}");
            *next += 1;
            item
        }
        Some(Frame::Skip(_)) => return String::from("\u{0}skip"),
    };
    visitor.value(&pointer, pos, plain);
    pointer
}

/// Collects one [`SourceMap`] per document.
#[derive(Default)]
struct Maps(Vec<SourceMap>);

impl Visitor for Maps {
    fn document(&mut self) {
        self.0.push(SourceMap::default());
    }

    fn key(&mut self, pointer: &str, pos: Pos) {
        // The field's position is where its key is written.
        if let Some(map) = self.0.last_mut() {
            map.positions.entry(pointer.to_owned()).or_insert(pos);
        }
    }

    fn value(&mut self, pointer: &str, pos: Pos, _plain: Option<&str>) {
        // A value only fills in positions nothing else claimed (the root,
        // sequence items).
        if let Some(map) = self.0.last_mut() {
            map.positions.entry(pointer.to_owned()).or_insert(pos);
        }
    }
}

/// Builds one map per YAML document of `text`, or `None` when the event
/// parser rejects the text.
pub(crate) fn build(text: &str) -> Option<Vec<SourceMap>> {
    let mut maps = Maps::default();
    walk(text, &mut maps)?;
    Some(maps.0)
}

/// Escapes a key as one JSON pointer segment (RFC 6901).
pub(crate) fn escape(key: &str) -> String {
    if key.contains(['~', '/']) { key.replace('~', "~0").replace('/', "~1") } else { key.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn records_keys_and_items() {
        let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  containers:
  - name: a
    image: busybox
  - name: b
";
        let maps = build(text).unwrap();
        assert_eq!(maps.len(), 1);
        let map = &maps[0];
        assert_eq!(map.find(""), p(1, 1));
        assert_eq!(map.find("/metadata/name"), p(4, 3));
        assert_eq!(map.find("/metadata/labels/app.kubernetes.io~1name"), p(6, 5));
        assert_eq!(map.find("/spec/containers/0"), p(9, 5));
        assert_eq!(map.find("/spec/containers/1/name"), p(11, 5));
        assert_eq!(map.find("/spec/containers/0/image"), p(10, 5));
        // Unknown fields resolve to their nearest ancestor.
        assert_eq!(map.find("/spec/containers/1/ports/0"), p(11, 5));
    }

    #[test]
    fn one_map_per_document() {
        let maps = build("a: 1\n---\n# only a comment\n---\nb:\n  c: 2\n").unwrap();
        assert_eq!(maps.len(), 3);
        assert!(maps[1].len() <= 1, "an empty document has at most its (null) root");
        assert_eq!(maps[2].find("/b/c"), p(6, 3));
    }

    #[test]
    fn flow_style_and_json() {
        let maps = build("{\"spec\": {\"ports\": [{\"port\": 80}]}}").unwrap();
        assert_eq!(maps[0].find("/spec/ports/0/port"), p(1, 22));
    }

    #[test]
    fn anchors_and_complex_keys_do_not_confuse_the_walk() {
        let text = "base: &b {x: 1}\n? [a, b]\n: skipped\nafter: *b\nlast: 2\n";
        let map = &build(text).unwrap()[0];
        assert_eq!(map.find("/after"), p(4, 1));
        assert_eq!(map.find("/last"), p(5, 1));
    }
}
