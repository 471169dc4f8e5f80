//! What loading produces: files, their documents, and positions.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::SourceMap;

/// A 1-based line and column in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A file that could not be parsed, and where the parser gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser reports the error.
    pub pos: Pos,
    /// The parser's message.
    pub message: String,
}

/// One manifest file and what was read from it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as shown to the user: as given on the command line, or
    /// relative to the repository root for git revisions.
    pub path: Arc<str>,
    /// The file's documents, or why none could be read.
    pub outcome: Result<Vec<Document>, SyntaxError>,
}

/// One object as written in a file: its JSON value and where its fields are.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file the object came from.
    pub file: Arc<str>,
    /// The 0-based index of the YAML document within the file.
    pub index: usize,
    /// The object's value, with YAML merge keys applied.
    pub value: Value,
    source_map: Arc<SourceMap>,
    /// Where this object sits in the source map's document: empty for a
    /// plain document, `/items/N` for an item of a `kind: List`.
    prefix: String,
}

impl Document {
    pub(crate) fn new(file: Arc<str>, index: usize, value: Value, source_map: Arc<SourceMap>, prefix: String) -> Self {
        Document { file, index, value, source_map, prefix }
    }

    /// Where the object starts.
    pub fn start(&self) -> Pos {
        self.position("")
    }

    /// Where the field at `pointer` (a JSON pointer into [`Self::value`],
    /// such as `/spec/replicas`) was written. A field the map does not know
    /// (one brought in by a merge key, or that does not exist) resolves to
    /// its nearest written ancestor.
    pub fn position(&self, pointer: &str) -> Pos {
        self.source_map.find(&format!("{}{}", self.prefix, pointer))
    }

    /// The `apiVersion` as written, if it is a string.
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(Value::as_str)
    }

    /// The `kind` as written, if it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// `metadata.name` as written, if it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }
}
