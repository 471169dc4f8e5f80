//! OpenAPI v3, as kube-apiserver publishes it (`/openapi/v3`: an index of
//! group-versions, each a document at `/openapi/v3/apis/apps/v1?hash=`),
//! built from the same JSON Schemas validation uses (`driftless-schemas`,
//! generated from the object model), so `kubectl explain
//! deployment.spec.strategy` reads what Driftless checks. Each kind's
//! schema carries `x-kubernetes-group-version-kind`, which kubectl looks
//! kinds up by.
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
                let kinds = Kind::ALL.iter().copied().filter(|k| group_version_path(*k) == path);
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
}
