//! `metrics.k8s.io/v1beta1`, as metrics-server serves it: `PodMetrics`
//! for each pod the node sampled (each container's CPU in nanocores and
//! memory working set, over the last window, which ends at `timestamp`)
//! and `NodeMetrics` for the node, so `kubectl top pods|nodes` work unchanged.
//!
//! Must not touch: the samples (the node's sampler records them in
//! [`Metrics`]); the store is read for pods' labels and nodes' names.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use driftless_model::Kind;
use driftless_nodeapi::{Metrics, Usage};
use serde_json::{Value, json};

use super::query::Query;
use super::{ApiState, json_response, labels};
use crate::ApiError;

/// The group-version.
pub(crate) const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// The group as `/apis` lists it.
pub(crate) fn group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": "v1beta1"});
    json!({"name": "metrics.k8s.io", "versions": [version.clone()], "preferredVersion": version})
}

/// `/apis/metrics.k8s.io/v1beta1`.
pub(crate) async fn resources() -> Response {
    let resource =
        |name: &str, kind: &str, namespaced: bool| json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]});
    json_response(&json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [resource("nodes", "NodeMetrics", false), resource("pods", "PodMetrics", true)],
    }))
}

/// A CPU quantity in nanocores, as metrics-server writes it.
fn cpu(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// A memory quantity: kibibytes when whole, else bytes.
fn memory(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) { format!("{}Ki", bytes / 1024) } else { bytes.to_string() }
}

fn usage(usage: &Usage) -> Value {
    json!({"cpu": cpu(usage.nanocores), "memory": memory(usage.memory_bytes)})
}

fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// A window's length as Go prints a duration (`10.002s`).
fn window(ms: i64) -> String {
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

fn metrics_of(state: &ApiState) -> Result<&Metrics, ApiError> {
    state.metrics.as_ref().ok_or_else(|| ApiError::NotFound("this daemon runs no node, so it has no metrics".into()))
}

/// The PodMetrics of `pod`, if the node has a window for it.
fn pod_metrics(metrics: &Metrics, pod: &Value) -> Option<Value> {
    let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let window_of = metrics.pod(&format!("{namespace}/{name}"))?;
    let containers: Vec<Value> = window_of.containers.iter().map(|(name, u)| json!({"name": name, "usage": usage(u)})).collect();
    Some(json!({
        "kind": "PodMetrics", "apiVersion": GROUP_VERSION,
        "metadata": {"name": name, "namespace": namespace, "labels": pod.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                     "creationTimestamp": timestamp(jiff::Timestamp::now().as_millisecond())},
        "timestamp": timestamp(window_of.timestamp_ms),
        "window": window(window_of.window_ms),
        "containers": containers,
    }))
}

/// `.../pods` and `.../namespaces/NS/pods`, with `labelSelector`.
async fn list_pods(state: &ApiState, namespace: Option<&str>, query: &Query) -> Result<Response, ApiError> {
    let metrics = metrics_of(state)?;
    let selector = query.label_selector()?;
    let (pods, _) = state.store.list(Kind::Pod, namespace);
    let items: Vec<Value> = pods.iter().filter(|p| selector.matches(&labels(p))).filter_map(|p| pod_metrics(metrics, p)).collect();
    Ok(json_response(&json!({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})))
}

/// `GET /apis/metrics.k8s.io/v1beta1/pods`.
pub(crate) async fn all_pods(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Response {
    list_pods(&state, None, &Query::parse(query.as_deref())).await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods`.
pub(crate) async fn pods_in(State(state): State<ApiState>, Path(namespace): Path<String>, RawQuery(query): RawQuery) -> Response {
    list_pods(&state, Some(&namespace), &Query::parse(query.as_deref())).await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods/NAME`.
pub(crate) async fn pod(State(state): State<ApiState>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let found = metrics_of(&state).and_then(|metrics| {
        let pod = state.store.get(&driftless_store::Key::new(Kind::Pod, namespace.as_str(), name.as_str()));
        pod.and_then(|p| pod_metrics(metrics, &p)).ok_or_else(|| ApiError::NotFound(format!("podmetrics.metrics.k8s.io {name:?} not found")))
    });
    found.map(|m| json_response(&m)).unwrap_or_else(IntoResponse::into_response)
}

/// The NodeMetrics of `node`, if the node has a window for itself.
fn node_metrics(state: &ApiState, node: &Value) -> Option<Value> {
    let name = node.pointer("/metadata/name").and_then(Value::as_str)?;
    // A daemon samples the node it runs, and only that one.
    let window_of = state.metrics.as_ref()?.node().filter(|w| w.name == name)?;
    Some(json!({
        "kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
        "metadata": {"name": name, "labels": node.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                     "creationTimestamp": timestamp(jiff::Timestamp::now().as_millisecond())},
        "timestamp": timestamp(window_of.timestamp_ms),
        "window": window(window_of.window_ms),
        "usage": usage(&window_of.usage),
    }))
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes`.
pub(crate) async fn nodes(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Response {
    let listed = metrics_of(&state).and_then(|_| {
        let selector = Query::parse(query.as_deref()).label_selector()?;
        let items: Vec<Value> =
            state.store.list(Kind::Node, None).0.iter().filter(|n| selector.matches(&labels(n))).filter_map(|n| node_metrics(&state, n)).collect();
        Ok(json!({"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}))
    });
    listed.map(|list| json_response(&list)).unwrap_or_else(IntoResponse::into_response)
}

/// `GET /apis/metrics.k8s.io/v1beta1/nodes/NAME`.
pub(crate) async fn node(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let found = metrics_of(&state).and_then(|_| {
        let node = state.store.get(&driftless_store::Key::new(Kind::Node, "", name.as_str()));
        node.and_then(|n| node_metrics(&state, &n)).ok_or_else(|| ApiError::NotFound(format!("nodemetrics.metrics.k8s.io {name:?} not found")))
    });
    found.map(|m| json_response(&m)).unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_windows_as_metrics_server_writes_them() {
        assert_eq!(cpu(750_000_000), "750000000n");
        assert_eq!(memory(10 * 1024 * 1024), "10240Ki");
        assert_eq!(memory(1000), "1000");
        assert_eq!(window(10_002), "10.002s");
        assert_eq!(window(10_000), "10s");
        assert_eq!(window(10_500), "10.5s");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
