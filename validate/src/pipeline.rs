//! The validation pipeline: per document, then across documents.

use driftless_manifest::limits::MAX_OBJECTS;
use driftless_manifest::{Document, Origin, RawFile, SourceFile};
use driftless_model::{Object, ObjectRef, kind_of};
use driftless_schemas::SchemaSet;
use serde_json::Value;

use crate::report::{Entry, Report};
use crate::{Diagnostic, Issues, Ptr, Severity, field_path, references, rules};

/// What one document yielded, before cross-document checks. Its JSON value
/// is gone by then: the typed object carries what later checks need.
#[derive(Clone)]
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

/// What one file yielded on its own: a syntax error, or its documents each
/// checked alone. A pure function of the file's path and bytes.
#[derive(Clone)]
pub(crate) enum FileChecks {
    Unreadable(Diagnostic),
    Documents(Vec<Checked>),
}

fn check_file(file: SourceFile) -> (std::sync::Arc<str>, FileChecks) {
    let checked = match file.outcome {
        Err(error) => FileChecks::Unreadable(Diagnostic::new(Severity::Error, file.path.clone(), error.pos, error.message)),
        // Past the bound on its own: its objects are not checked (each
        // would be held typed).
        Ok(documents) if documents.len() > MAX_OBJECTS => {
            let over = documents[MAX_OBJECTS].origin.position("");
            FileChecks::Unreadable(Diagnostic::new(Severity::Error, file.path.clone(), over, too_many_objects(documents.len())))
        }
        Ok(documents) => FileChecks::Documents(documents.into_iter().map(check_document).collect()),
    };
    (file.path, checked)
}

/// Validates every document of `files`, each on its own and then as a set.
/// Files are taken one at a time and each document's raw value is freed as
/// soon as it is checked, so memory stays bounded by the typed objects kept
/// (pass a lazy iterator, e.g. `raw.into_iter().map(RawFile::parse)`).
pub fn validate(files: impl IntoIterator<Item = SourceFile>) -> Report {
    finish(files.into_iter().map(check_file))
}

/// [`validate`] with each file opened (parsed, decrypted: `open`) and
/// checked on its own by a few threads, one per core up to
/// [`MAX_WORKERS`]: each file's checks depend on nothing but its path and
/// bytes, so the report is the same as [`validate`]'s on the same files.
/// Files are taken in order and the work stops once the files taken hold
/// more than [`MAX_OBJECTS`] objects, so that a revision past the bound is
/// refused at the same file, having held no more than the bound (and the
/// few files in flight) typed.
pub fn validate_files(files: Vec<RawFile>, open: &(dyn Fn(RawFile) -> SourceFile + Sync)) -> Report {
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(MAX_WORKERS).min(files.len());
    if workers <= 1 {
        return validate(files.into_iter().map(open));
    }
    let count = files.len();
    let files: Vec<std::sync::Mutex<Option<RawFile>>> = files.into_iter().map(|f| std::sync::Mutex::new(Some(f))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let held = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<(std::sync::Arc<str>, FileChecks)>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let work = || {
            let mut done = Vec::new();
            while held.load(std::sync::atomic::Ordering::Relaxed) <= MAX_OBJECTS {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(file) = files.get(index).and_then(|f| f.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()) else { break };
                let checked = check_file(open(file));
                // Counted as `finish` counts toward the bound: documents
                // checked, not files refused.
                let objects = match &checked.1 {
                    FileChecks::Documents(documents) => documents.len(),
                    FileChecks::Unreadable(_) => 0,
                };
                held.fetch_add(objects, std::sync::atomic::Ordering::Relaxed);
                done.push((index, checked));
            }
            done
        };
        let threads: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        for thread in threads {
            match thread.join() {
                Ok(done) => done.into_iter().for_each(|(index, checked)| results[index] = Some(checked)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Every file before the first one not taken was checked: the workers
    // take them in order.
    finish(results.into_iter().map_while(|checked| checked))
}

/// The most threads [`validate_files`] uses.
pub const MAX_WORKERS: usize = 4;

/// Validation that remembers what each file yielded on its own, so that
/// validating a revision that differs from the last in a few files checks
/// only those again, then the whole set as [`validate`] does. The report
/// is the same as [`validate`]'s on the same files (each file's checks
/// depend on nothing but its path and bytes); the write path validates
/// every change whole this way in a fraction of the time.
///
/// It holds each file's bytes and typed objects (about 5 KiB an object),
/// only the latest version per path.
#[derive(Default)]
pub struct Validator {
    files: std::collections::HashMap<std::sync::Arc<str>, (Vec<u8>, FileChecks)>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Validates `files` whole, checking again only files whose path or
    /// bytes it has not seen.
    pub fn validate(&mut self, files: &[RawFile]) -> Report {
        self.validate_with(files, &RawFile::parse)
    }

    /// [`Validator::validate`], parsing each file with `open` (one that
    /// decrypts SOPS files, say). The cache is of the bytes as given, so
    /// `open` must give the same result for the same bytes.
    pub fn validate_with(&mut self, files: &[RawFile], open: &dyn Fn(RawFile) -> SourceFile) -> Report {
        let mut seen = std::collections::HashSet::with_capacity(files.len());
        let mut each = Vec::with_capacity(files.len());
        for file in files {
            seen.insert(file.path.clone());
            match self.files.get(&file.path) {
                // A file too large to read has no bytes to compare: it is
                // judged again (at once: it is not read) and not kept.
                _ if file.is_too_large() => {
                    self.files.remove(&file.path);
                    each.push(check_file(open(file.clone())));
                }
                Some((bytes, checked)) if *bytes == file.bytes => each.push((file.path.clone(), checked.clone())),
                _ => {
                    let (path, checked) = check_file(open(file.clone()));
                    self.files.insert(path.clone(), (file.bytes.clone(), checked.clone()));
                    each.push((path, checked));
                }
            }
        }
        // Files gone from the revision are forgotten.
        self.files.retain(|path, _| seen.contains(path));
        finish(each.into_iter())
    }
}

/// The cross-document checks and the report, over each file's own results.
fn finish(files: impl Iterator<Item = (std::sync::Arc<str>, FileChecks)>) -> Report {
    let mut report = Report::default();
    let mut file_rank = std::collections::HashMap::new();
    let mut checked = Vec::new();
    for (path, outcome) in files {
        file_rank.insert(path.clone(), report.summary.files);
        report.summary.files += 1;
        match outcome {
            FileChecks::Unreadable(diagnostic) => {
                report.summary.resources += 1;
                report.summary.invalid += 1;
                report.diagnostics.push(diagnostic);
            }
            FileChecks::Documents(documents) if checked.len() + documents.len() > MAX_OBJECTS => {
                // The rest of the revision is not judged: it is refused
                // whole at this file.
                let over = documents[MAX_OBJECTS - checked.len()].origin.position("");
                let declared = checked.len() + documents.len();
                report.summary.resources += 1;
                report.summary.invalid += 1;
                report.diagnostics.push(Diagnostic::new(Severity::Error, path, over, too_many_objects(declared)));
                break;
            }
            FileChecks::Documents(documents) => checked.extend(documents),
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

/// The error of a revision that declares `declared` objects, over
/// [`MAX_OBJECTS`], at the first object past the bound.
fn too_many_objects(declared: usize) -> String {
    format!(
        "more than {MAX_OBJECTS} objects: {declared} by the end of this file (this is the first past the bound); a revision may declare at most {MAX_OBJECTS} and is refused whole"
    )
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
