//! A YAML (or JSON) file as SOPS sees it: documents of mappings, sequences
//! and scalars, each with the byte range it was written at, plus the
//! comments, attached where SOPS's YAML store puts them.
//!
//! Built from `saphyr-parser` events. The parser counts characters and its
//! scalar spans are loose (a quoted scalar's span runs over a comment that
//! follows it, a block scalar's starts at its content and ends at the next
//! token), so every range here is recomputed in bytes and ends at the
//! scalar's last character. This module only reads; it never decides what
//! is encrypted (that is `walk` and `metadata`).

use driftless_manifest::text::CharOffsets;
use saphyr_parser::{Event, Parser, ScalarStyle};

mod comments;

use comments::{Container, attach, collect_items, find_comments};

/// A parse failure, at a 1-based line and column.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// A scalar as read, and where it was written: `text[start..end]`,
/// quotes included; a block scalar runs from its `|` or `>` to its last
/// non-blank character.
#[derive(Debug)]
pub(crate) struct Scalar {
    pub value: String,
    pub style: ScalarStyle,
    /// The tag, as (handle, suffix): `!!str` is `("tag:yaml.org,2002:", "str")`.
    pub tag: Option<(String, String)>,
    pub start: usize,
    pub end: usize,
    /// Inside a flow collection, where a plain scalar cannot hold `[`, `]`, `,`.
    pub flow: bool,
}

/// A node of a document.
#[derive(Debug)]
pub(crate) enum Node {
    Scalar(Scalar),
    Map(Map),
    Seq(Seq),
    /// An alias (`*name`), at its byte offset.
    Alias(usize),
}

/// A mapping. `id` indexes [`Document::comments`].
#[derive(Debug)]
pub(crate) struct Map {
    pub id: usize,
    pub entries: Vec<Entry>,
    pub flow: bool,
    pub end: usize,
}

/// One mapping entry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub key: Scalar,
    pub value: Node,
}

/// A sequence. `id` indexes [`Document::comments`].
#[derive(Debug)]
pub(crate) struct Seq {
    pub id: usize,
    pub items: Vec<Node>,
    pub flow: bool,
    pub end: usize,
}

/// A comment: `text[start]` is its `#`, `text[start + 1..end]` its value
/// (what SOPS calls the comment, without the `#`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Comment {
    pub start: usize,
    pub end: usize,
}

/// A comment's place in its container: before the item `before`, or after
/// the last one when `before` is the number of items.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attached {
    pub before: usize,
    pub comment: Comment,
}

/// One YAML document.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub root: Option<Node>,
    /// The comments of each container, by its id, in source order.
    pub comments: Vec<Vec<Attached>>,
}

impl Node {
    /// The byte offset the node starts at.
    pub(crate) fn start(&self) -> usize {
        match self {
            Node::Scalar(s) => s.start,
            Node::Map(m) => m.entries.first().map_or(m.end, |e| e.key.start),
            Node::Seq(s) => s.items.first().map_or(s.end, Node::start),
            Node::Alias(at) => *at,
        }
    }

    /// The byte offset just past the node's last character.
    pub(crate) fn end(&self) -> usize {
        match self {
            Node::Scalar(s) => s.end,
            Node::Map(m) => m.end,
            Node::Seq(s) => s.end,
            Node::Alias(at) => *at + 1,
        }
    }
}

impl Document {
    /// The top-level entry named `key`, when the root is a mapping.
    pub(crate) fn top_level(&self, key: &str) -> Option<&Entry> {
        match &self.root {
            Some(Node::Map(map)) => map.entries.iter().find(|e| e.key.value == key),
            _ => None,
        }
    }
}

/// Line starts of a text, for 1-based line and column numbers.
pub(crate) struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    pub(crate) fn new(text: &'t str) -> Lines<'t> {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    /// The 1-based line and column (in characters) of byte `at`.
    pub(crate) fn position(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= at).max(1);
        let start = self.starts[line - 1];
        let col = self.text.get(start..at).map_or(at - start, |s| s.chars().count()) + 1;
        (line, col)
    }
}

/// Parses every document of `text`.
pub(crate) fn parse(text: &str) -> Result<Vec<Document>, ParseError> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder { text, documents: Vec::new(), stack: Vec::new(), root: None, containers: Vec::new(), scalars: Vec::new(), document_start: 0 };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| ParseError { line: e.marker().line(), col: e.marker().col() + 1, message: e.info().to_owned() })?;
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index());
        let at = |message: &str| {
            let (line, col) = Lines::new(text).position(start);
            ParseError { line, col, message: message.to_owned() }
        };
        match event {
            Event::DocumentStart(_) => {
                builder.stack.clear();
                builder.root = None;
                builder.containers.clear();
                builder.scalars.clear();
            }
            Event::DocumentEnd => builder.finish_document(end),
            Event::Scalar(value, style, _, tag) => {
                let flow = builder.in_flow();
                let (start, end) = scalar_range(text, start, end, style);
                let tag = tag.map(|t| (t.handle.clone(), t.suffix.clone()));
                builder.scalars.push((start, end));
                builder.place(Node::Scalar(Scalar { value: value.into_owned(), style, tag, start, end, flow })).map_err(at)?;
            }
            Event::Alias(_) => builder.place(Node::Alias(start)).map_err(at)?,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if matches!(builder.stack.last(), Some(Frame::Map { key: None, .. })) {
                    return Err(at("a mapping or sequence used as a key is not supported"));
                }
                let flow = text.as_bytes().get(start).is_some_and(|b| matches!(b, b'{' | b'['));
                let id = builder.containers.len();
                let parent = builder.stack.last().map(Frame::id);
                let depth = builder.stack.len();
                builder.containers.push(Container { parent, depth, column: None, flow });
                builder.stack.push(match event {
                    Event::MappingStart(..) => Frame::Map { id, flow, entries: Vec::new(), key: None },
                    _ => Frame::Seq { id, flow, items: Vec::new() },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match builder.stack.pop() {
                    Some(Frame::Map { id, flow, entries, .. }) => {
                        let end = if flow { end } else { entries.last().map_or(start, |e| e.value.end().max(e.key.end)) };
                        Node::Map(Map { id, entries, flow, end })
                    }
                    Some(Frame::Seq { id, flow, items }) => {
                        let end = if flow { end } else { items.last().map_or(start, Node::end) };
                        Node::Seq(Seq { id, items, flow, end })
                    }
                    None => return Err(at("unbalanced collection")),
                };
                builder.place(node).map_err(at)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(builder.documents)
}

enum Frame {
    Map { id: usize, flow: bool, entries: Vec<Entry>, key: Option<Scalar> },
    Seq { id: usize, flow: bool, items: Vec<Node> },
}

impl Frame {
    fn id(&self) -> usize {
        match self {
            Frame::Map { id, .. } | Frame::Seq { id, .. } => *id,
        }
    }
}

struct Builder<'t> {
    text: &'t str,
    documents: Vec<Document>,
    stack: Vec<Frame>,
    root: Option<Node>,
    containers: Vec<Container>,
    /// Every scalar's range, so comments are never looked for inside one.
    scalars: Vec<(usize, usize)>,
    /// Where the open document's text starts (the previous one's end).
    document_start: usize,
}

impl Builder<'_> {
    fn in_flow(&self) -> bool {
        self.stack.iter().any(|f| matches!(f, Frame::Map { flow: true, .. } | Frame::Seq { flow: true, .. }))
    }

    /// Puts a finished node in its parent, or makes it the root.
    fn place(&mut self, node: Node) -> Result<(), &'static str> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push(Entry { key: k, value: node }),
                None => match node {
                    Node::Scalar(s) => *key = Some(s),
                    Node::Alias(_) => return Err("an alias used as a key is not supported"),
                    _ => return Err("a mapping or sequence used as a key is not supported"),
                },
            },
        }
        Ok(())
    }

    /// Closes the document whose `DocumentEnd` event is at byte `end`.
    fn finish_document(&mut self, end: usize) {
        let root = self.root.take();
        let mut document = Document { comments: vec![Vec::new(); self.containers.len()], root };
        if let Some(root) = &document.root {
            let mut starts = Vec::new();
            collect_items(self.text, root, &mut self.containers, &mut starts);
            starts.sort_by_key(|s| s.at);
            let range = (self.document_start, end);
            for comment in find_comments(self.text, &self.scalars, range) {
                if let Some((container, before)) = attach(self.text, comment, &self.containers, &starts) {
                    document.comments[container].push(Attached { before, comment });
                }
            }
        }
        self.documents.push(document);
        self.document_start = end;
    }
}

/// A scalar's byte range: quotes included, ending at the closing quote; a
/// block scalar from its indicator to its last non-blank character; a
/// plain scalar without trailing blanks.
fn scalar_range(text: &str, start: usize, end: usize, style: ScalarStyle) -> (usize, usize) {
    let bytes = text.as_bytes();
    match style {
        ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted => {
            let quote = bytes.get(start).copied().unwrap_or(b'"');
            let mut i = start + 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' if quote == b'"' => i += 2,
                    b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b if b == quote => return (start, i + 1),
                    _ => i += 1,
                }
            }
            (start, end.min(bytes.len()))
        }
        ScalarStyle::Literal | ScalarStyle::Folded => {
            let indicator = if style == ScalarStyle::Literal { b'|' } else { b'>' };
            let header = bytes[..start.min(bytes.len())].iter().rposition(|b| *b == indicator).unwrap_or(start);
            let mut last = end.min(bytes.len());
            while last > start && bytes[last - 1].is_ascii_whitespace() {
                last -= 1;
            }
            (header, last.max(header + 1))
        }
        _ => {
            let mut last = end.min(bytes.len());
            if let Some(hash) = text[start..last].find(" #") {
                last = start + hash;
            }
            while last > start && matches!(bytes[last - 1], b' ' | b'\t' | b'\r' | b'\n') {
                last -= 1;
            }
            (start, last)
        }
    }
}

/// The offset where the line holding `at` starts.
pub(crate) fn line_start(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// The offset just past the newline ending the line holding `at`.
pub(crate) fn line_end(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[at..].iter().position(|b| *b == b'\n').map_or(text.len(), |i| at + i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_exact() {
        let text = "a: \"q\" # c\nb: 'x''y'\nc: |\n  line\n\n# after\nd: plain  # c\n";
        let documents = parse(text).unwrap();
        let Some(Node::Map(map)) = &documents[0].root else { panic!() };
        let ranges: Vec<&str> = map.entries.iter().map(|e| &text[e.value.start()..e.value.end()]).collect();
        assert_eq!(ranges, ["\"q\"", "'x''y'", "|\n  line", "plain"]);
    }

    #[test]
    fn positions_count_characters() {
        let lines = Lines::new("é: x\nb: y\n");
        assert_eq!(lines.position(4), (1, 4));
        assert_eq!(lines.position(6), (2, 1));
    }
}
