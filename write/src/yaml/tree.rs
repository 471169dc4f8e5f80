//! A YAML file as a tree of nodes with the byte ranges they were written
//! at, so an edit can replace exactly the characters of one value.
//!
//! Built from `saphyr-parser` events (the parser `driftless-manifest`
//! records positions with). The parser reports character indices and, for
//! block collections and block scalars, ends at the next token; here every
//! range is in bytes and ends at the node's last character, so "the rest of
//! the line" after a value (its comment) is never part of it.

use driftless_manifest::text::CharOffsets;
use saphyr_parser::{Event, Parser, ScalarStyle};

/// One node and where it was written: `text[start..end]`.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub start: usize,
    pub end: usize,
    pub body: Body,
}

/// What a node is.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// A scalar. `empty` is a value not written at all (`key:`), which
    /// has no characters of its own.
    Scalar {
        style: ScalarStyle,
        empty: bool,
        content_col: usize,
    },
    Map {
        flow: bool,
        entries: Vec<Entry>,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
    },
    /// An alias (`*base`): its value is written elsewhere.
    Alias,
    /// Something an edit must not enter (a collection used as a key).
    Opaque,
}

/// A mapping entry: its key as read, where the key and the `:` are, and
/// the value.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_start: usize,
    pub colon: usize,
    pub value: Node,
}

/// The documents of a file, in order.
pub(crate) struct Tree {
    pub documents: Vec<Node>,
}

enum Frame {
    Map { start: usize, flow: bool, entries: Vec<Entry>, key: Option<(String, usize, usize)> },
    Seq { start: usize, flow: bool, items: Vec<Node> },
}

impl Tree {
    /// Parses `text`; `None` when the parser rejects it (the loader has
    /// already said why).
    pub(crate) fn parse(text: &str) -> Option<Tree> {
        let offsets = CharOffsets::new(text);
        let mut documents = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Node> = None;
        // Depth inside a collection used as a mapping key (skipped).
        let mut skipping = 0usize;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.ok()?;
            let start = offsets.byte(span.start.index());
            let end = offsets.byte(span.end.index());
            if skipping > 0 {
                match event {
                    Event::MappingStart(..) | Event::SequenceStart(..) => skipping += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        // The key is skipped; the value that follows is
                        // placed under it.
                        skipping -= 1;
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::DocumentStart(_) => {
                    stack.clear();
                    root = None;
                }
                Event::DocumentEnd => {
                    documents.push(root.take().unwrap_or(Node { start, end: start, body: Body::Opaque }));
                }
                Event::Scalar(value, style, _, _) => {
                    if let Some(Frame::Map { key: key @ None, .. }) = stack.last_mut() {
                        *key = Some((value.into_owned(), start, end));
                        continue;
                    }
                    let node = scalar(text, start, end, style);
                    place(text, &mut stack, &mut root, node);
                }
                Event::Alias(_) => {
                    if let Some(Frame::Map { key: key @ None, .. }) = stack.last_mut() {
                        *key = Some((String::from("\u{0}alias"), start, end));
                        continue;
                    }
                    place(text, &mut stack, &mut root, Node { start, end, body: Body::Alias });
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if let Some(Frame::Map { key: key @ None, .. }) = stack.last_mut() {
                        // A collection as a key: Kubernetes has none.
                        *key = Some((String::from("\u{0}complex"), start, start));
                        skipping = 1;
                        continue;
                    }
                    let flow = text.as_bytes().get(start).is_some_and(|b| matches!(b, b'{' | b'['));
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Map { start, flow, entries: Vec::new(), key: None },
                        _ => Frame::Seq { start, flow, items: Vec::new() },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let node = match stack.pop()? {
                        Frame::Map { start: open, flow, entries, .. } => {
                            let (first, last) = match (entries.first(), entries.last()) {
                                (Some(f), Some(l)) => (f.key_start, l.value.end),
                                _ => (open, open),
                            };
                            if flow {
                                Node { start: open, end, body: Body::Map { flow, entries } }
                            } else {
                                Node { start: first, end: last, body: Body::Map { flow, entries } }
                            }
                        }
                        Frame::Seq { start: open, flow, items } => {
                            if flow {
                                Node { start: open, end, body: Body::Seq { flow, items } }
                            } else {
                                let first = items.first().map_or(open, |i| dash_before(text, i.start).unwrap_or(i.start));
                                let last = items.last().map_or(open, |i| i.end);
                                Node { start: first, end: last, body: Body::Seq { flow, items } }
                            }
                        }
                    };
                    place(text, &mut stack, &mut root, node);
                }
                Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            }
        }
        Some(Tree { documents })
    }
}

/// A scalar's node: quoted scalars include their quotes; block scalars
/// start at their `|` or `>` and end at their last non-blank character.
fn scalar(text: &str, start: usize, end: usize, style: ScalarStyle) -> Node {
    let bytes = text.as_bytes();
    let content_col = start - line_start(text, start);
    match style {
        ScalarStyle::Literal | ScalarStyle::Folded => {
            let indicator = if style == ScalarStyle::Literal { b'|' } else { b'>' };
            let header = bytes[..start].iter().rposition(|b| *b == indicator).unwrap_or(start);
            let mut last = end.min(bytes.len());
            while last > start && bytes[last - 1].is_ascii_whitespace() {
                last -= 1;
            }
            Node { start: header, end: last.max(header + 1), body: Body::Scalar { style, empty: false, content_col } }
        }
        _ => Node { start, end, body: Body::Scalar { style, empty: start == end, content_col } },
    }
}

/// Puts a finished node in its parent (or makes it the document's root).
fn place(text: &str, stack: &mut [Frame], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Frame::Seq { items, .. }) => items.push(node),
        Some(Frame::Map { entries, key, .. }) => {
            let Some((key, key_start, key_end)) = key.take() else { return };
            let colon = text.as_bytes()[key_end.min(text.len())..].iter().position(|b| *b == b':').map_or(key_end, |i| key_end + i);
            // A value not written at all sits just after its colon.
            let node = match node.body {
                Body::Scalar { empty: true, style, content_col } => {
                    Node { start: colon + 1, end: colon + 1, body: Body::Scalar { style, empty: true, content_col } }
                }
                _ => node,
            };
            entries.push(Entry { key, key_start, colon, value: node });
        }
    }
}

pub(crate) use driftless_manifest::text::dash_before;

/// The offset where the line holding `at` starts.
pub(crate) fn line_start(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// The offset just past the newline ending the line holding `at` (the end
/// of the text when the last line has none).
pub(crate) fn line_end(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[at..].iter().position(|b| *b == b'\n').map_or(text.len(), |i| at + i + 1)
}
