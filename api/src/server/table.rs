//! Server-side printing: a `meta.k8s.io/v1` Table when the client asks for
//! one (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, as kubectl
//! does for `get`), with kubectl's columns for the kind from
//! `driftless-printers` (the columns `driftless get` prints too). Columns
//! only `-o wide` shows have priority 1; each row carries the object's
//! metadata (`PartialObjectMetadata`, or the whole object with
//! `includeObject=Object`) for kubectl's `--show-labels`, `-L` and
//! `NAMESPACE` column.
//!
//! A [`Table`] borrows the store's objects and is serialized straight to
//! bytes: a list of 1,000 pods is not copied into a second JSON tree first.
//! Its fields are declared in sorted order, the order `serde_json`'s maps
//! keep, so the bytes are those the same Table built as a `Value` gives.
//!
//! Must not touch: the store; it shapes what the handlers read.

use driftless_model::Kind;
use driftless_printers::columns;
use hyper::HeaderMap;
use serde::Serialize;
use serde_json::Value;

/// Whether the request asks for a Table.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers.get_all(hyper::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|accept| {
        accept.split(',').any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io") && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        })
    })
}

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Include {
    /// Nothing.
    None,
    /// The object's metadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    pub(crate) fn parse(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// A `meta.k8s.io/v1` Table of objects borrowed from the store.
#[derive(Debug, Serialize)]
pub(crate) struct Table<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(rename = "columnDefinitions")]
    column_definitions: Vec<Column>,
    kind: &'static str,
    metadata: ListMeta<'a>,
    rows: Vec<Row<'a>>,
}

/// A column's definition; every cell is a string, as kubectl's printers
/// give them.
#[derive(Debug, Serialize)]
struct Column {
    description: &'static str,
    format: &'static str,
    name: String,
    priority: u8,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A list's metadata: the store revision it was read at.
#[derive(Debug, Serialize)]
pub(crate) struct ListMeta<'a> {
    #[serde(rename = "resourceVersion")]
    pub(crate) resource_version: &'a str,
}

/// One object's cells, and what `includeObject` asks it to carry.
#[derive(Debug, Serialize)]
struct Row<'a> {
    cells: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<RowObject<'a>>,
}

/// What a row carries: the object's metadata, or the object.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RowObject<'a> {
    Metadata(PartialObjectMetadata<'a>),
    Object(&'a Value),
}

/// A `PartialObjectMetadata`; `metadata` is null for an object without
/// one, as before.
#[derive(Debug, Serialize)]
struct PartialObjectMetadata<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    metadata: Option<&'a Value>,
}

impl<'a> Table<'a> {
    /// The Table of `objects` of `kind`, read at `resource_version`.
    pub(crate) fn new(kind: Kind, objects: impl IntoIterator<Item = &'a Value>, resource_version: &'a str, include: Include) -> Table<'a> {
        let now = jiff::Timestamp::now();
        let rows = objects.into_iter().map(|object| Row { cells: columns::row(kind, object, true, now), object: carried(object, include) }).collect();
        Table { api_version: "meta.k8s.io/v1", column_definitions: definitions(kind), kind: "Table", metadata: ListMeta { resource_version }, rows }
    }
}

fn definitions(kind: Kind) -> Vec<Column> {
    let narrow = columns::header(kind, false);
    columns::header(kind, true)
        .into_iter()
        .map(|name| {
            let priority = if narrow.contains(&name) { 0 } else { 1 };
            let format = if name == "NAME" { "name" } else { "" };
            Column { description: "", format, name, priority, kind: "string" }
        })
        .collect()
}

fn carried(object: &Value, include: Include) -> Option<RowObject<'_>> {
    match include {
        Include::None => None,
        Include::Metadata => {
            Some(RowObject::Metadata(PartialObjectMetadata { api_version: "meta.k8s.io/v1", kind: "PartialObjectMetadata", metadata: object.get("metadata") }))
        }
        Include::Object => Some(RowObject::Object(object)),
    }
}

/// The Table of `objects` of `kind`, as a JSON value (a watch event's
/// object, or a single object's Table).
pub(crate) fn table<'a>(kind: Kind, objects: impl IntoIterator<Item = &'a Value>, resource_version: &'a str, include: Include) -> Value {
    // Strings and JSON values only: serializing them cannot fail (`json!`
    // assumes the same).
    serde_json::to_value(Table::new(kind, objects, resource_version, include)).unwrap_or_else(|error| {
        tracing::error!(%error, "a Table did not serialize");
        Value::Null
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn kubectl_s_accept_header_asks_for_a_table_and_plain_json_does_not() {
        // What kubectl 1.32 sends for `get`.
        assert!(wanted(&accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")));
        assert!(!wanted(&accept("application/json")));
        assert!(!wanted(&accept("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io")));
    }

    #[test]
    fn a_pod_table_has_kubectl_s_columns_wide_ones_at_priority_1() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}, "creationTimestamp": "2026-12-03T10:00:00Z"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2, "state": {"running": {}}}]},
        });
        let table = table(Kind::Pod, [&pod], "42", Include::Metadata);
        let names: Vec<(&str, i64)> =
            table["columnDefinitions"].as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap())).collect();
        assert_eq!(&names[..6], [("NAME", 0), ("READY", 0), ("STATUS", 0), ("RESTARTS", 0), ("AGE", 0), ("IP", 1)]);
        let cells = &table["rows"][0]["cells"];
        assert_eq!(
            (&cells[0], &cells[1], &cells[2], &cells[3], &cells[5]),
            (&json!("web-1"), &json!("1/1"), &json!("Running"), &json!("2"), &json!("10.244.0.5"))
        );
        assert_eq!(table["rows"][0]["object"]["metadata"]["labels"]["app"], "web");
        assert_eq!(table["metadata"]["resourceVersion"], "42");
    }

    #[test]
    fn a_table_serializes_to_the_bytes_of_its_json_value() {
        // What the handlers sent when they built Tables as `Value`s: the
        // same bytes, for every `includeObject`, with or without metadata.
        let pods = [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default", "labels": {"z": "1", "a": "2"}}, "status": {"phase": "Pending"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "c"}]}}),
        ];
        for include in [Include::None, Include::Metadata, Include::Object] {
            let bytes = serde_json::to_string(&Table::new(Kind::Pod, &pods, "7", include)).unwrap();
            assert_eq!(bytes, table(Kind::Pod, &pods, "7", include).to_string(), "{include:?}");
        }
        let value = table(Kind::Pod, &pods, "7", Include::Metadata);
        assert_eq!(value["rows"][1]["object"], json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": null}));
        assert!(table(Kind::Pod, &pods, "7", Include::None)["rows"][0].get("object").is_none());
        assert_eq!(table(Kind::Pod, &pods, "7", Include::Object)["rows"][0]["object"], pods[0]);
    }
}
