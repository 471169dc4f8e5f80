//! Validation: is this set of manifests something the API server would
//! accept, and what exactly is wrong where it is not.
//!
//! Owns: the validation pipeline the CLI and the daemon share ([`validate`]):
//! 1. syntax (from `driftless-manifest`),
//! 2. kind (`apiVersion`/`kind` is one Driftless runs),
//! 3. schema (strict JSON Schema from `driftless-schemas`),
//! 4. semantics the API server enforces per object ([`rules`]: names,
//!    selectors, ports, required fields...),
//! 5. the set as a whole: duplicate objects and references that cannot
//!    resolve.
//!
//! Every finding is a [`Diagnostic`] with file, line, column, object and
//! field. Errors are what the API server would reject; warnings are what it
//! would accept and then wait on (a missing ConfigMap, say).
//!
//! Must not touch: files, git or the clock. It judges what it is given.
//!
//! **Guarantee:** an object with any error is never in
//! [`Report::objects`]; the daemon refuses a revision whose report has an
//! error, so nothing half-valid is applied.

mod diagnostic;
mod issues;
mod names;
mod pipeline;
mod references;
mod report;
pub mod rules;

pub use diagnostic::{Diagnostic, Severity};
pub use driftless_model::field_path;
pub use issues::{Issue, Issues, Ptr};
pub use pipeline::{MAX_WORKERS, Validator, validate, validate_files};
pub use report::{Entry, Report, Summary};

#[cfg(test)]
mod tests;
