//! The outcome of validating a set of manifests.

use std::collections::BTreeMap;
use std::fmt;

use driftless_manifest::Origin;
use driftless_model::{Object, ObjectRef};
use serde::Serialize;

use crate::{Diagnostic, Severity};

/// A valid object and where it was written.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The typed object, as written (no defaults applied).
    pub object: Object,
    /// Where it was written, for locating later findings.
    pub origin: Origin,
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects found, plus one for each file that could not be parsed.
    pub resources: usize,
    /// Files read.
    pub files: usize,
    /// Objects without errors.
    pub valid: usize,
    /// Objects (or unparseable files) with at least one error.
    pub invalid: usize,
    /// Error diagnostics.
    pub errors: usize,
    /// Warning diagnostics.
    pub warnings: usize,
}

/// `N resources in M files: V valid, I invalid`.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
        write!(f, "{} in {}: {} valid, {} invalid", plural(self.resources, "resource"), plural(self.files, "file"), self.valid, self.invalid)?;
        if self.warnings > 0 {
            write!(f, " ({})", plural(self.warnings, "warning"))?;
        }
        Ok(())
    }
}

/// Everything validation found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Findings, by file (in load order), then line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// The counts.
    pub summary: Summary,
    /// The objects without errors, by identity.
    pub objects: BTreeMap<ObjectRef, Entry>,
}

impl Report {
    /// Whether nothing was found that the API server would reject.
    pub fn is_valid(&self) -> bool {
        self.summary.errors == 0
    }

    /// The error diagnostics.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// An error about a field of one of [`Report::objects`], found after
    /// validation (a change the API server refuses as an update), located
    /// where the object's file writes the field (or its nearest written
    /// ancestor). An object not in the report is placed at `(unknown)`.
    pub fn error_at(&self, object: &ObjectRef, pointer: &str, message: &str) -> Diagnostic {
        let (file, pos) = match self.objects.get(object) {
            Some(entry) => (entry.origin.file().clone(), entry.origin.position(pointer)),
            None => (std::sync::Arc::from("(unknown)"), driftless_manifest::Pos { line: 1, col: 1 }),
        };
        let mut diagnostic = Diagnostic::new(Severity::Error, file, pos, message);
        diagnostic.object = Some(object.kind_name());
        diagnostic.field = Some(driftless_model::field_path(pointer));
        diagnostic
    }

    /// The report as JSON: `{"diagnostics": [...], "summary": {...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "diagnostics": self.diagnostics, "summary": self.summary })
    }
}
