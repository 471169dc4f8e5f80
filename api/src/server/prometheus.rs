//! `/metrics`: the daemon's Prometheus metrics (docs/metrics.md), those
//! recorded as things happen (`driftless-telemetry`) and, read from the
//! store at the scrape, the state kube-state-metrics would report: pods by
//! phase, container restarts, and the revision running.
//!
//! Must not touch: the store (it only reads) or any recorder.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use driftless_model::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::ApiState;

/// The phases kube-state-metrics reports, each pod 1 in its own.
const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodPhase {
    namespace: String,
    pod: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodContainer {
    namespace: String,
    pod: String,
    container: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Revision {
    repository: String,
    branch: String,
    path: String,
    revision: String,
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    let store = state.store.clone();
    let text = tokio::task::spawn_blocking(move || driftless_telemetry::render(|registry| scrape(&*store, registry))).await.unwrap_or_default();
    ([(CONTENT_TYPE, driftless_telemetry::CONTENT_TYPE)], text).into_response()
}

/// The store's state, as gauges of this instant.
fn scrape(store: &dyn driftless_store::Store, registry: &mut Registry) {
    let phases: Family<PodPhase, Gauge> = Family::default();
    let mut restarts = Vec::new();
    let text = |value: &Value, pointer: &str| value.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
    for pod in store.list(Kind::Pod, None).0.iter() {
        let (namespace, name) = (text(pod, "/metadata/namespace"), text(pod, "/metadata/name"));
        let phase = text(pod, "/status/phase");
        for candidate in PHASES {
            let labels = PodPhase { namespace: namespace.clone(), pod: name.clone(), phase: candidate };
            phases.get_or_create(&labels).set(i64::from(phase == candidate));
        }
        for status in pod.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten() {
            let labels = PodContainer { namespace: namespace.clone(), pod: name.clone(), container: text(status, "/name") };
            restarts.push((labels, status.get("restartCount").and_then(Value::as_u64).unwrap_or(0)));
        }
    }
    registry.register("kube_pod_status_phase", "The pods' current phase (kube-state-metrics' name)", phases);
    // The kubelet counts restarts; a counter made fresh each scrape carries
    // its count, as kube-state-metrics exposes it.
    let family: Family<PodContainer, Counter> = Family::default();
    for (labels, count) in restarts {
        family.get_or_create(&labels).inc_by(count);
    }
    registry.register("kube_pod_container_status_restarts", "The containers' restarts (kube-state-metrics' name)", family);
    let sync = driftless_sync::Syncer::status(store);
    if let Some(applied) = &sync.applied {
        let labels = Revision { repository: sync.repo.clone(), branch: sync.branch.clone(), path: sync.path.clone(), revision: applied.id.clone() };
        // kube-state-metrics' shape for info: a gauge of 1 named `_info`,
        // which the classic text format reads too (OpenMetrics' `info`
        // type is not).
        let info: Family<Revision, Gauge> = Family::default();
        info.get_or_create(&labels).set(1);
        registry.register("driftless_sync_info", "The revision running", info);
        let committed: Gauge = Gauge::default();
        committed.set(applied.time);
        registry.register("driftless_sync_applied_commit_timestamp_seconds", "When the running revision was committed", committed);
    }
}
