//! What loading produces: files, their documents, and positions.

use std::fmt;
use std::sync::{Arc, OnceLock};

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

/// One manifest file as read, not yet parsed. Loading returns these so that
/// a consumer can parse, use and drop one file at a time.
#[derive(Clone, Debug)]
pub struct RawFile {
    /// The path as shown to the user.
    pub path: Arc<str>,
    /// The file's bytes (none for a file too large to read).
    pub bytes: Vec<u8>,
    /// The size of a file over [`crate::limits::MAX_FILE_BYTES`], which
    /// was not read.
    too_large: Option<u64>,
}

impl RawFile {
    /// A file read whole.
    pub fn new(path: Arc<str>, bytes: Vec<u8>) -> RawFile {
        RawFile { path, bytes, too_large: None }
    }

    /// A file of `size` bytes, over the bound, that was not read: it
    /// parses as an error at its first line.
    pub(crate) fn too_large(path: Arc<str>, size: u64) -> RawFile {
        RawFile { path, bytes: Vec::new(), too_large: Some(size) }
    }

    /// Whether the file was too large to read.
    pub fn is_too_large(&self) -> bool {
        self.too_large.is_some()
    }

    /// Parses the file into its documents.
    pub fn parse(self) -> SourceFile {
        match self.too_large {
            Some(size) => {
                SourceFile { path: self.path, outcome: Err(SyntaxError { pos: Pos { line: 1, col: 1 }, message: crate::limits::file_too_large(size) }) }
            }
            None => crate::fs::from_bytes(self.path, &self.bytes),
        }
    }
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

/// One object as written in a file: its JSON value and where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// The object's value, with YAML merge keys applied.
    pub value: Value,
    /// Where the object was written.
    pub origin: Origin,
}

impl Document {
    /// The file the object came from.
    pub fn file(&self) -> &Arc<str> {
        &self.origin.file.path
    }

    /// Where the object starts.
    pub fn start(&self) -> Pos {
        self.origin.position("")
    }

    /// Where the field at `pointer` was written (see [`Origin::position`]).
    pub fn position(&self, pointer: &str) -> Pos {
        self.origin.position(pointer)
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

/// Where an object was written: a file, the YAML document within it, and
/// the object's place in that document. Cheap to clone; positions are
/// computed from the file's text on first use, so loading and validating
/// files that need no diagnostics never pays for them.
#[derive(Clone, Debug)]
pub struct Origin {
    file: Arc<FileText>,
    /// The 0-based index of the YAML document within the file.
    index: usize,
    /// `""` for a plain document, `/items/N` for an item of a `kind: List`.
    prefix: Arc<str>,
}

impl Origin {
    pub(crate) fn new(file: Arc<FileText>, index: usize, prefix: Arc<str>) -> Self {
        Origin { file, index, prefix }
    }

    /// The file, as the user named it or relative to the repository root.
    pub fn file(&self) -> &Arc<str> {
        &self.file.path
    }

    pub(crate) fn file_text(&self) -> Arc<FileText> {
        self.file.clone()
    }

    /// The 0-based index of the YAML document within the file.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `""` for a plain document, `/items/N` for an item of a `kind: List`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where the field at `pointer` (a JSON pointer into the object, such as
    /// `/spec/replicas`) was written. A field the map does not know (one
    /// brought in by a merge key, or that does not exist) resolves to its
    /// nearest written ancestor.
    pub fn position(&self, pointer: &str) -> Pos {
        let full = format!("{}{}", self.prefix, pointer);
        match self.file.maps().and_then(|maps| maps.get(self.index)) {
            Some(map) => map.find(&full),
            None => Pos { line: 1, col: 1 },
        }
    }
}

/// A file's text, shared by its documents, with its source maps built on
/// first use.
pub(crate) struct FileText {
    pub(crate) path: Arc<str>,
    text: Box<str>,
    /// How many YAML documents the value parser saw; the position parser's
    /// maps are used only when it saw as many.
    documents: usize,
    maps: OnceLock<Option<Vec<SourceMap>>>,
}

impl FileText {
    pub(crate) fn new(path: Arc<str>, text: &str, documents: usize) -> Self {
        FileText { path, text: text.into(), documents, maps: OnceLock::new() }
    }

    fn maps(&self) -> Option<&Vec<SourceMap>> {
        self.maps.get_or_init(|| crate::source_map::build(&self.text).filter(|maps| maps.len() == self.documents)).as_ref()
    }
}

impl std::fmt::Debug for FileText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileText").field("path", &self.path).field("documents", &self.documents).finish_non_exhaustive()
    }
}
