//! Server-side printing: a `meta.k8s.io/v1` Table when the client asks for
//! one (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, as kubectl
//! does for `get`), with kubectl's columns for the kind from
//! `driftless-printers` (the columns `driftless get` prints too). Columns
//! only `-o wide` shows have priority 1; each row carries the object's
//! metadata (`PartialObjectMetadata`, or the whole object with
//! `includeObject=Object`) for kubectl's `--show-labels`, `-L` and
//! `NAMESPACE` column.
//!
//! Must not touch: the store; it shapes what the handlers read.

use driftless_model::Kind;
use driftless_printers::columns;
use hyper::HeaderMap;
use serde_json::{Value, json};

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

/// The Table of `objects` of `kind`.
pub(crate) fn table<'a>(kind: Kind, objects: impl IntoIterator<Item = &'a Value>, resource_version: &str, include: Include) -> Value {
    let narrow = columns::header(kind, false);
    let definitions: Vec<Value> = columns::header(kind, true)
        .iter()
        .map(|name| {
            let priority = if narrow.contains(name) { 0 } else { 1 };
            let format = if name == "NAME" { "name" } else { "" };
            json!({"name": name, "type": "string", "format": format, "description": "", "priority": priority})
        })
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|object| {
            let cells = columns::row(kind, object, true, now);
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.get("metadata").cloned().unwrap_or_default()});
                }
                Include::Object => row["object"] = object.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
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
}
