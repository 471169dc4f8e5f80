//! Loading manifests: from files and folders on disk, or from any git
//! revision without a checkout.
//!
//! Owns: finding manifest files (`.yaml`, `.yml`, `.json`, recursively,
//! hidden folders skipped), splitting them into documents (`---`, `kind:
//! List`, empty and comment-only documents), turning each into a JSON value,
//! and remembering where every field was written ([`SourceMap`]) so that any
//! later error can name its file, line and column. Plain scalars get the
//! YAML 1.1 readings Kubernetes (go-yaml v2) gives them: `0400` is octal,
//! `on` is a boolean.
//!
//! Must not touch: the meaning of a document. Whether `kind` is known or a
//! field is valid is `driftless-validate`'s concern; this crate only reports
//! what cannot be read at all (I/O, syntax, git).
//!
//! **Guarantee:** a file is read whole or reported as a [`SyntaxError`]; no
//! document of a file that fails to parse is returned.

mod document;
mod error;
mod fs;
mod git;
mod go_escapes;
pub mod limits;
mod parse;
mod source_map;
pub mod text;
mod yaml11;

pub use document::{Document, Origin, Pos, RawFile, SourceFile, SyntaxError};
pub use error::LoadError;
pub use fs::load_paths;
pub use git::{CommitInfo, GitRepo};
pub use parse::parse_file;
pub use source_map::SourceMap;

/// Whether a path names a manifest by its extension.
pub fn is_manifest_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}
