//! OpenAPI v3, as kube-apiserver publishes it (`/openapi/v3`: an index of
//! group-versions, each a document at `/openapi/v3/apis/apps/v1?hash=`),
//! built from the same JSON Schemas validation uses (`driftless-schemas`,
//! generated from the object model), so `kubectl explain
//! deployment.spec.strategy` reads what Driftless checks. Each kind's
//! schema carries `x-kubernetes-group-version-kind`, which kubectl looks
//! kinds up by.
//!
//! `/openapi/v2` is the same model as one Swagger 2.0 document, in JSON
//! only: client-go's own reader asks for gnostic's protobuf encoding, which
//! is answered 406 (kubectl 1.32 reads v3 first and needs neither); tools
//! that read the JSON (Python's client, validators) get it.
//!
//! Must not touch: the store; everything here is fixed at build time.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use driftless_model::Kind;
use driftless_schemas::SchemaSet;
use serde_json::{Map, Value, json};

/// A kind's schema name, as Kubernetes' OpenAPI names it
/// (`io.k8s.api.apps.v1.Deployment`).
fn schema_name(kind: Kind) -> String {
    let group = match kind.group() {
        "" => "core",
        group => group.split('.').next().unwrap_or(group),
    };
    format!("io.k8s.api.{group}.{}.{}", kind.version(), kind.name())
}

/// `api/v1` or `apis/apps/v1`.
fn group_version_path(kind: Kind) -> String {
    match kind.group() {
        "" => format!("api/{}", kind.version()),
        group => format!("apis/{group}/{}", kind.version()),
    }
}

/// Every group-version's document, built once.
fn documents() -> &'static BTreeMap<String, (Value, String)> {
    static DOCUMENTS: OnceLock<BTreeMap<String, (Value, String)>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let mut schemas: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for kind in Kind::ALL.iter().copied() {
            let Some(text) = SchemaSet::text(kind) else { continue };
            // JSON Schema's definitions become OpenAPI's components.
            let Ok(Value::Object(mut root)) = serde_json::from_str::<Value>(&text.replace("#/definitions/", "#/components/schemas/")) else { continue };
            let definitions = root.remove("definitions");
            root.remove("$schema");
            root.remove("title");
            root.insert("x-kubernetes-group-version-kind".into(), json!([{"group": kind.group(), "kind": kind.name(), "version": kind.version()}]));
            let components = schemas.entry(group_version_path(kind)).or_default();
            if let Some(Value::Object(definitions)) = definitions {
                components.extend(definitions);
            }
            components.insert(schema_name(kind), Value::Object(root));
        }
        schemas
            .into_iter()
            .map(|(path, components)| {
                // Only kinds with a schema: an operation must not refer to
                // a definition the document lacks.
                let kinds = Kind::ALL.iter().copied().filter(|k| group_version_path(*k) == path && SchemaSet::text(*k).is_some());
                let paths: Map<String, Value> = kinds.flat_map(operations).collect();
                let document = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": concat!("v1.33.0-driftless.", env!("CARGO_PKG_VERSION"))},
                    "paths": paths,
                    "components": {"schemas": components},
                });
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                document.to_string().hash(&mut hasher);
                (path, (document, format!("{:016X}", hasher.finish())))
            })
            .collect()
    })
}

/// A kind's paths and operations as kube-apiserver publishes them: kubectl
/// finds a resource's kind by the `x-kubernetes-group-version-kind` of
/// its operations, and which query parameters (`dryRun`,
/// `fieldValidation`) a write takes from their parameters.
fn operations(kind: Kind) -> Vec<(String, Value)> {
    let gvk = json!({"group": kind.group(), "version": kind.version(), "kind": kind.name()});
    let schema = json!({"$ref": format!("#/components/schemas/{}", schema_name(kind))});
    let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}});
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let writes = json!([query("dryRun"), query("fieldManager"), query("fieldValidation")]);
    let operation = |action: &str, parameters: &Value| json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": parameters, "responses": ok});
    let base = format!("/{}", group_version_path(kind));
    let (collection, object) = if kind.namespaced() {
        (format!("{base}/namespaces/{{namespace}}/{}", kind.plural()), format!("{base}/namespaces/{{namespace}}/{}/{{name}}", kind.plural()))
    } else {
        (format!("{base}/{}", kind.plural()), format!("{base}/{}/{{name}}", kind.plural()))
    };
    vec![
        (collection, json!({"get": operation("list", &json!([])), "post": operation("post", &writes)})),
        (object, json!({"get": operation("get", &json!([])), "patch": operation("patch", &writes), "delete": operation("delete", &json!([query("dryRun")]))})),
    ]
}

/// `/openapi/v3`: where each group-version's document is.
pub(crate) fn index() -> Value {
    let paths: Map<String, Value> =
        documents().iter().map(|(path, (_, hash))| (path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}))).collect();
    json!({"paths": paths})
}

/// The document of `path` (`apis/apps/v1`).
pub(crate) fn document(path: &str) -> Option<&'static Value> {
    documents().get(path.trim_matches('/')).map(|(document, _)| document)
}

/// `/openapi/v2`: every group-version's schemas as Swagger 2.0
/// `definitions` and their operations as `paths`, converted from the v3
/// documents so the two never disagree.
pub(crate) fn swagger() -> &'static Value {
    static SWAGGER: OnceLock<Value> = OnceLock::new();
    SWAGGER.get_or_init(|| {
        let mut definitions = Map::new();
        let mut paths = Map::new();
        for (document, _) in documents().values() {
            if let Some(Value::Object(schemas)) = document.pointer("/components/schemas") {
                definitions.extend(schemas.iter().map(|(name, schema)| (name.clone(), v2_refs(schema))));
            }
            if let Some(Value::Object(operations)) = document.get("paths") {
                paths.extend(operations.iter().map(|(path, item)| (path.clone(), v2_path_item(item))));
            }
        }
        json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": concat!("v1.33.0-driftless.", env!("CARGO_PKG_VERSION"))},
            "paths": paths,
            "definitions": definitions,
        })
    })
}

/// A schema with its references pointing at v2's `definitions`.
fn v2_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match (key.as_str(), value) {
                ("$ref", Value::String(target)) => (key.clone(), Value::String(target.replace("#/components/schemas/", "#/definitions/"))),
                _ => (key.clone(), v2_refs(value)),
            })
            .collect(),
        Value::Array(items) => items.iter().map(v2_refs).collect(),
        other => other.clone(),
    }
}

/// A v3 path item as v2 writes it: parameters carry their type inline,
/// responses their schema without a media type.
fn v2_path_item(item: &Value) -> Value {
    let Value::Object(operations) = item else { return item.clone() };
    let converted = operations.iter().map(|(method, operation)| {
        let mut operation = operation.clone();
        if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
            for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::Object(schema)) = parameter.remove("schema") {
                    parameter.extend(schema);
                }
            }
        }
        if let Some(Value::Object(responses)) = operation.get_mut("responses") {
            for response in responses.values_mut().filter_map(Value::as_object_mut) {
                if let Some(schema) = response.remove("content").and_then(|c| c.pointer("/application~1json/schema").cloned()) {
                    response.insert("schema".into(), v2_refs(&schema));
                }
            }
        }
        operation["produces"] = json!(["application/json"]);
        (method.clone(), operation)
    });
    Value::Object(converted.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_version_has_its_kinds_with_their_group_version_kind() {
        let index = index();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        let apps = document("apis/apps/v1").unwrap();
        let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        // References point into the same document.
        let strategy = deployment.pointer("/properties/spec").unwrap().to_string();
        assert!(strategy.contains("#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"), "{strategy}");
        assert!(apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentStrategy"].is_object());
        assert!(document("api/v1").unwrap()["components"]["schemas"]["io.k8s.api.core.v1.Pod"].is_object());
        assert!(document("apis/nothing/v1").is_none());
    }

    #[test]
    fn swagger_has_every_kind_with_references_into_its_definitions() {
        let swagger = swagger();
        assert_eq!(swagger["swagger"], "2.0");
        let deployment = &swagger["definitions"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
        let text = swagger.to_string();
        assert!(!text.contains("#/components/"), "a v3 reference left in v2");
        // Every reference resolves.
        for target in text.split("\"$ref\":\"#/definitions/").skip(1).filter_map(|rest| rest.split('"').next()) {
            assert!(swagger["definitions"].get(target).is_some(), "{target} is referenced and not defined");
        }
        let get = &swagger["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"];
        assert_eq!(get["responses"]["200"]["schema"]["$ref"], "#/definitions/io.k8s.api.apps.v1.Deployment");
        let patch = &swagger["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["parameters"][0]["type"], "string");
        assert!(swagger["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    }
}
