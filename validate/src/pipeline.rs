//! The validation pipeline: per document, then across documents.

use driftless_manifest::{Document, Origin, SourceFile};
use driftless_model::{Object, ObjectRef, kind_of};
use driftless_schemas::SchemaSet;
use serde_json::Value;

use crate::report::{Entry, Report};
use crate::{Diagnostic, Issues, Ptr, Severity, field_path, references, rules};

/// What one document yielded, before cross-document checks. Its JSON value
/// is gone by then: the typed object carries what later checks need.
pub(crate) struct Checked {
    pub(crate) origin: Origin,
    /// `KIND/NAME` as written, for messages.
    pub(crate) label: String,
    /// The identity, when the kind is known and the name is a string.
    pub(crate) object_ref: Option<ObjectRef>,
    /// The typed object, when the document passed its schema.
    pub(crate) object: Option<Object>,
    pub(crate) issues: Issues,
}

/// Validates every document of `files`, each on its own and then as a set.
/// Files are taken one at a time and each document's raw value is freed as
/// soon as it is checked, so memory stays bounded by the typed objects kept
/// (pass a lazy iterator, e.g. `raw.into_iter().map(RawFile::parse)`).
pub fn validate(files: impl IntoIterator<Item = SourceFile>) -> Report {
    let mut report = Report::default();
    let mut file_rank = std::collections::HashMap::new();
    let mut checked = Vec::new();
    for file in files {
        file_rank.insert(file.path.clone(), report.summary.files);
        report.summary.files += 1;
        match file.outcome {
            Err(error) => {
                report.summary.resources += 1;
                report.summary.invalid += 1;
                report.diagnostics.push(Diagnostic::new(Severity::Error, file.path.clone(), error.pos, error.message));
            }
            Ok(documents) => {
                for document in documents {
                    checked.push(check_document(document));
                }
            }
        }
    }
    references::check(&mut checked);

    for item in checked {
        report.summary.resources += 1;
        let issues = item.issues.into_vec();
        let valid = !issues.iter().any(|i| i.severity == Severity::Error);
        for issue in issues {
            let pos = item.origin.position(&issue.pointer);
            let mut diagnostic = Diagnostic::new(issue.severity, item.origin.file().clone(), pos, issue.message);
            diagnostic.object = Some(item.label.clone());
            let field = field_path(&issue.pointer);
            diagnostic.field = (!field.is_empty()).then_some(field);
            report.diagnostics.push(diagnostic);
        }
        match (valid, item.object, item.object_ref) {
            (true, Some(object), Some(object_ref)) => {
                report.summary.valid += 1;
                report.objects.insert(object_ref, Entry { object, origin: item.origin });
            }
            _ => report.summary.invalid += 1,
        }
    }

    // Files keep their load order; within a file, findings go top to bottom.
    report.diagnostics.sort_by_key(|d| (file_rank.get(&d.file).copied().unwrap_or(usize::MAX), d.line, d.column));
    report.summary.errors = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    report.summary.warnings = report.diagnostics.len() - report.summary.errors;
    report
}

fn check_document(mut document: Document) -> Checked {
    // An older served version is read as its stored version (the API
    // server converts it too); a field that cannot be converted is an error
    // at its line as written.
    let mut converted = Ok(());
    if let Ok(kind) = kind_of(&document.value) {
        converted = driftless_model::convert::to_stored(kind, &mut document.value);
        rules::normalize_raw(kind, &mut document.value);
    }
    let value = &document.value;
    let kind_text = document.kind().unwrap_or("<no kind>");
    let name = document.name();
    let label = format!("{kind_text}/{}", name.unwrap_or("<unnamed>"));
    let mut issues = Issues::default();
    let mut checked = Checked { origin: document.origin.clone(), label, object_ref: None, object: None, issues: Issues::default() };

    let kind = match kind_of(value) {
        Ok(kind) => kind,
        Err(error) => {
            let at = match &error {
                driftless_model::ObjectError::MissingTypeField(field) if value.get(*field).is_none() => Ptr::root(),
                driftless_model::ObjectError::MissingTypeField(field) => Ptr::root().key(field),
                driftless_model::ObjectError::UnknownKind(driftless_model::UnknownKind::WrongVersion { .. }) => Ptr::root().key("apiVersion"),
                _ => Ptr::root().key("kind"),
            };
            issues.error(&at, error.to_string());
            checked.issues = issues;
            return checked;
        }
    };
    if let Some(name) = name {
        let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str);
        checked.object_ref = Some(ObjectRef::new(kind, namespace, name));
    }

    if let Err(error) = converted {
        issues.error(&Ptr::root().key_pointer(&error.pointer), error.message);
        checked.issues = issues;
        return checked;
    }
    match SchemaSet::embedded().validate(kind, value) {
        Ok(violations) => {
            for v in violations {
                issues.error(&Ptr::root().key_pointer(&v.pointer), v.message);
            }
        }
        Err(error) => issues.error(&Ptr::root(), error.to_string()),
    }
    rules::check_raw(kind, value, &mut issues);
    if issues.has_errors() {
        checked.issues = issues;
        return checked;
    }
    match Object::from_value(kind, value) {
        Ok(object) => {
            rules::check(&object, &mut issues);
            checked.object = Some(object);
        }
        Err(error) => issues.error(&Ptr::root(), error.to_string()),
    }
    checked.issues = issues;
    checked
}
