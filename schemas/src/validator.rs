//! Applies the embedded schemas to manifest values.

use std::sync::OnceLock;

use driftless_model::Kind;
use include_dir::{Dir, include_dir};
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

static FILES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/json");

/// One way a value breaks its kind's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending field (`/spec/replicas`), or to the
    /// object missing a required field.
    pub pointer: String,
    /// What is wrong, in lower case with no trailing period.
    pub message: String,
}

/// Why a schema could not be used. These are defects of the build, not of the
/// input: the schemas are embedded and tested.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SchemaError {
    /// No schema file is embedded for the kind.
    #[error("no schema is embedded for {0}")]
    Missing(Kind),
    /// The embedded file is not a usable JSON Schema.
    #[error("the embedded schema for {kind} does not compile: {message}")]
    Compile {
        /// The kind whose schema is broken.
        kind: Kind,
        /// The parser's or compiler's message.
        message: String,
    },
}

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

/// The schemas of every supported kind, each compiled on first use and kept
/// for the life of the process.
pub struct SchemaSet {
    compiled: Vec<OnceLock<Result<Compiled, SchemaError>>>,
}

impl SchemaSet {
    /// The set built from the schemas embedded in this binary.
    pub fn embedded() -> &'static SchemaSet {
        static SET: OnceLock<SchemaSet> = OnceLock::new();
        SET.get_or_init(|| SchemaSet { compiled: Kind::DECLARABLE.iter().map(|_| OnceLock::new()).collect() })
    }

    /// The schema file's text for a kind, as embedded.
    pub fn text(kind: Kind) -> Option<&'static str> {
        FILES.get_file(crate::file_name(kind)).and_then(|f| f.contents_utf8())
    }

    fn compiled(&self, kind: Kind) -> Result<&Compiled, SchemaError> {
        let index = Kind::DECLARABLE.iter().position(|k| *k == kind).ok_or(SchemaError::Missing(kind))?;
        self.compiled[index].get_or_init(|| compile(kind)).as_ref().map_err(Clone::clone)
    }

    /// Every violation of `value` against the schema of `kind`, in document
    /// order of the pointers.
    pub fn validate(&self, kind: Kind, value: &Value) -> Result<Vec<Violation>, SchemaError> {
        let compiled = self.compiled(kind)?;
        if compiled.validator.is_valid(value) {
            return Ok(Vec::new());
        }
        let mut violations = Vec::new();
        for error in compiled.validator.iter_errors(value) {
            let pointer = error.instance_path().as_str().to_owned();
            let schema_path = error.schema_path().as_str();
            match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    let known = known_properties(&compiled.schema, schema_path);
                    for name in unexpected {
                        violations.push(Violation { pointer: format!("{pointer}/{}", escape(name)), message: unknown_field(name, &known) });
                    }
                }
                ValidationErrorKind::Required { property } => violations.push(Violation { pointer, message: format!("missing required field {property}") }),
                ValidationErrorKind::AnyOf { .. } if schema_path.contains("resource.Quantity") => violations.push(Violation {
                    pointer,
                    message: format!("invalid quantity {}: must be a number with an optional suffix (500m, 2, 1.5Gi, 1e3)", error.instance()),
                }),
                ValidationErrorKind::AnyOf { .. } if schema_path.contains("intstr.IntOrString") => {
                    violations.push(Violation { pointer, message: format!("{} must be an integer or a string", error.instance()) })
                }
                // A Secret's values must not reach any output, and the
                // crate's messages quote the offending value.
                _ if kind == Kind::Secret && (pointer.starts_with("/data/") || pointer.starts_with("/stringData/")) => {
                    violations.push(Violation { pointer, message: secret_message(error.kind()) })
                }
                _ => violations.push(Violation { pointer, message: error.to_string() }),
            }
        }
        violations.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        Ok(violations)
    }
}

fn compile(kind: Kind) -> Result<Compiled, SchemaError> {
    let text = SchemaSet::text(kind).ok_or(SchemaError::Missing(kind))?;
    let schema: Value = serde_json::from_str(text).map_err(|e| SchemaError::Compile { kind, message: e.to_string() })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| SchemaError::Compile { kind, message: e.to_string() })?;
    Ok(Compiled { schema, validator })
}

/// The property names of the object schema an `additionalProperties` error
/// came from.
fn known_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    let object_path = schema_path.strip_suffix("/additionalProperties").unwrap_or(schema_path);
    schema.pointer(object_path).and_then(|s| s.get("properties")).and_then(Value::as_object).map(|props| props.keys().cloned().collect()).unwrap_or_default()
}

fn unknown_field(name: &str, known: &[String]) -> String {
    let suggestion = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .or_else(|| known.iter().map(|k| (strsim::damerau_levenshtein(k, name), k)).filter(|(distance, _)| *distance <= 2).min().map(|(_, k)| k));
    match suggestion {
        Some(k) => format!("unknown field \"{name}\" (did you mean \"{k}\"?)"),
        None => format!("unknown field \"{name}\""),
    }
}

/// A message about a Secret value that does not quote it.
fn secret_message(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Type { .. } => "must be a string (value not shown: secret data)".to_owned(),
        _ => "invalid value (not shown: secret data)".to_owned(),
    }
}

/// Escapes a key for use as one JSON pointer segment (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violations(kind: Kind, value: Value) -> Vec<Violation> {
        SchemaSet::embedded().validate(kind, &value).unwrap()
    }

    #[test]
    fn misspelt_fields_are_errors_with_a_suggestion() {
        let found = violations(
            Kind::StatefulSet,
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                "spec": {"ServiceName": "db", "selector": {}, "template": {}}
            }),
        );
        assert_eq!(
            found,
            vec![Violation { pointer: "/spec/ServiceName".into(), message: "unknown field \"ServiceName\" (did you mean \"serviceName\"?)".into() }]
        );
    }

    #[test]
    fn wrapper_types_get_clear_messages() {
        let found = violations(
            Kind::Pod,
            json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}},
                         "ports": [{"containerPort": "http"}]}]}
            }),
        );
        let messages: Vec<_> = found.iter().map(|v| (v.pointer.as_str(), v.message.as_str())).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0].0, "/spec/containers/0/ports/0/containerPort");
        assert_eq!(messages[1].0, "/spec/containers/0/resources/limits/cpu");
        assert!(messages[1].1.starts_with("invalid quantity \"lots\""), "{}", messages[1].1);
    }

    #[test]
    fn secret_values_are_never_quoted() {
        let found = violations(
            Kind::Secret,
            json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "stringData": {"pin": 493_817}, "data": {"token": ["x"]}
            }),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        for v in &found {
            assert!(!v.message.contains("493817") && !v.message.contains("\"x\""), "{v:?}");
            assert!(v.message.contains("value not shown"), "{v:?}");
        }
    }

    #[test]
    fn required_fields_and_numbers() {
        let found = violations(
            Kind::Deployment,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"replicas": 3_000_000_000u64, "template": {}}
            }),
        );
        let messages: Vec<_> = found.iter().map(|v| v.message.as_str()).collect();
        assert!(messages.contains(&"missing required field \"selector\""), "{messages:?}");
        assert!(found.iter().any(|v| v.pointer == "/spec/replicas"), "{found:?}");
    }
}
