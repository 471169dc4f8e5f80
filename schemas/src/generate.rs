//! Derives the committed schemas from the object model.
//!
//! `schemars` gives the shape of each `k8s-openapi` type; this module makes
//! it strict and precise where the derived schema is loose: unknown
//! properties are forbidden, int-or-string and quantity fields get real types,
//! 32-bit integers get their bounds, and the root pins `apiVersion` and `kind`.

use driftless_model::Kind;
use serde_json::{Map, Value, json};

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// The quantity grammar, as the API server's `resource.ParseQuantity`
/// accepts it.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Fields `k8s-openapi` marks required that the API server defaults, so
/// manifests (Kubernetes' own examples among them) leave them out.
const DEFAULTED: &[(&str, &str)] = &[
    // Defaults to "True" (Kubernetes 1.33's `SetDefaults_PodFailurePolicyOnPodConditionsPattern`).
    ("io.k8s.api.batch.v1.PodFailurePolicyOnPodConditionsPattern", "status"),
];

/// The strict schema of one kind.
pub fn schema(kind: Kind) -> Value {
    let mut schema = kind.raw_json_schema();
    if let Some(definitions) = schema.get_mut("definitions").and_then(Value::as_object_mut) {
        if let Some(def) = definitions.get_mut(QUANTITY) {
            retype(def, json!([{"type": "string", "pattern": QUANTITY_PATTERN}, {"type": "number"}]));
        }
        if let Some(def) = definitions.get_mut(INT_OR_STRING) {
            retype(def, json!([{"type": "integer"}, {"type": "string"}]));
        }
        for (definition, field) in DEFAULTED {
            if let Some(required) = definitions.get_mut(*definition).and_then(|d| d.get_mut("required")).and_then(Value::as_array_mut) {
                required.retain(|f| f != field);
            }
        }
    }
    tighten(&mut schema);
    if let Some(root) = schema.as_object_mut() {
        pin_type_fields(root, kind);
    }
    schema
}

/// The file content of one kind's schema: pretty JSON with a final newline.
pub fn render(kind: Kind) -> String {
    let mut text = serde_json::to_string_pretty(&schema(kind)).unwrap_or_default();
    text.push('\n');
    text
}

/// Replaces the open-ended schema of a scalar wrapper type by an `anyOf` of
/// the JSON types it accepts, keeping its description.
fn retype(def: &mut Value, any_of: Value) {
    let description = def.get("description").cloned();
    let mut replacement = Map::new();
    if let Some(description) = description {
        replacement.insert("description".into(), description);
    }
    replacement.insert("anyOf".into(), any_of);
    *def = Value::Object(replacement);
}

/// Forbids unlisted properties on every object schema and bounds 32-bit
/// integers, recursively.
fn tighten(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            if map.get("format").and_then(Value::as_str) == Some("int32") {
                map.insert("minimum".into(), json!(i32::MIN));
                map.insert("maximum".into(), json!(i32::MAX));
            }
            map.values_mut().for_each(tighten);
        }
        Value::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

fn pin_type_fields(root: &mut Map<String, Value>, kind: Kind) {
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut) {
        for (field, expected) in [("apiVersion", kind.api_version()), ("kind", kind.name())] {
            if let Some(Value::Object(property)) = properties.get_mut(field) {
                property.insert("enum".into(), json!([expected]));
            }
        }
    }
    root.insert("required".into(), json!(["apiVersion", "kind", "metadata"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_closed_and_wrappers_typed() {
        let schema = schema(Kind::Deployment);
        let defs = &schema["definitions"];
        assert_eq!(defs["io.k8s.api.apps.v1.DeploymentSpec"]["additionalProperties"], false);
        assert_eq!(defs[INT_OR_STRING]["anyOf"][0]["type"], "integer");
        assert_eq!(defs[QUANTITY]["anyOf"][1]["type"], "number");
        // Maps keep their open value schema.
        let labels = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"];
        assert_eq!(labels["additionalProperties"]["type"], "string");
        assert_eq!(schema["properties"]["kind"]["enum"][0], "Deployment");
    }
}
