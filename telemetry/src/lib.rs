//! The daemon's metrics, in the Prometheus exposition format through the
//! official `prometheus-client` crate.
//!
//! Owns: one process-wide registry and the metric families every crate
//! records into ([`metrics`]), and encoding it, with whatever a scrape adds
//! ([`render`]). Names follow the projects users already watch where the
//! meaning is the same: controller-runtime's reconcile metrics, CoreDNS's
//! responses, kube-proxy's rule syncs, Flux's `gotk_reconcile_duration_seconds`
//! (docs/metrics.md lists them all).
//!
//! Must not touch: anything it measures. Recording is a counter increment
//! or a histogram observation; gauges of state (pods by phase, the applied
//! revision) are read from the store by the scrape itself.
//!
//! Why process-wide: the recorders are deep in crates that know nothing of
//! each other (the DNS handler, the controller runner, the sync loop), and
//! threading one handle through every constructor would put a metrics
//! parameter on APIs that are not about metrics. Tests that read a metric
//! compare before and after, never absolute values.

use std::sync::{LazyLock, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The outcome.
    pub result: &'static str,
}

/// A controller's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// The controller.
    pub controller: &'static str,
}

/// A controller's name and an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerResultLabels {
    /// The controller.
    pub controller: &'static str,
    /// `success`, `error` or `requeue`, as controller-runtime counts them.
    pub result: &'static str,
}

/// Flux's reconcile labels, for the sync of the watched branch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Always `Repository`.
    pub kind: &'static str,
    /// The branch.
    pub name: String,
    /// Always `default`.
    pub namespace: &'static str,
}

/// A DNS response code, as CoreDNS labels them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RcodeLabel {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, `FORMERR`...
    pub rcode: &'static str,
}

/// Every metric the daemon records.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Syncs of the watched branch, by result (`applied`, `refused`,
    /// `unchanged`, `error`), with their durations.
    pub sync_duration: Family<ResultLabel, Histogram>,
    /// Flux's name for the same durations.
    pub gotk_reconcile_duration: Family<ReconcileLabels, Histogram>,
    /// Commits refused whole.
    pub refused_commits: Counter,
    /// Reconciles per controller and result.
    pub reconcile_total: Family<ControllerResultLabels, Counter>,
    /// Reconcile errors per controller.
    pub reconcile_errors: Family<ControllerLabel, Counter>,
    /// Reconcile durations per controller.
    pub reconcile_time: Family<ControllerLabel, Histogram>,
    /// Image pulls by result (`pulled`, `failed`).
    pub image_pulls: Family<ResultLabel, Counter>,
    /// Image pull durations.
    pub image_pull_duration: Histogram,
    /// DNS responses by response code.
    pub dns_responses: Family<RcodeLabel, Counter>,
    /// Service proxy rule applies by result (`applied`, `failed`).
    pub proxy_applies: Family<ResultLabel, Counter>,
    /// Service proxy rule apply durations.
    pub proxy_apply_duration: Histogram,
    /// Webhook deliveries by result (`triggered`, `ignored`,
    /// `unauthorized`, `too_large`, `rate_limited`, `malformed`,
    /// `rejected`).
    pub webhook_deliveries: Family<ResultLabel, Counter>,
    /// Notifications by result (`sent`, `failed`, `dropped`).
    pub notifications: Family<ResultLabel, Counter>,
}

fn seconds() -> Histogram {
    // 1 ms to about 65 s: a reconcile, a sync and a pull all fit.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            sync_duration: Family::new_with_constructor(seconds),
            gotk_reconcile_duration: Family::new_with_constructor(seconds),
            refused_commits: Counter::default(),
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(seconds),
            image_pulls: Family::default(),
            image_pull_duration: seconds(),
            dns_responses: Family::default(),
            proxy_applies: Family::default(),
            proxy_apply_duration: seconds(),
            webhook_deliveries: Family::default(),
            notifications: Family::default(),
        };
        {
            let mut registry = metrics.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let r = &mut *registry;
            r.register_with_unit("driftless_sync_duration", "Syncs of the watched branch by result", Unit::Seconds, metrics.sync_duration.clone());
            r.register_with_unit(
                "gotk_reconcile_duration",
                "The duration of a reconciliation of the watched branch (Flux's name)",
                Unit::Seconds,
                metrics.gotk_reconcile_duration.clone(),
            );
            r.register("driftless_refused_commits", "Commits refused whole", metrics.refused_commits.clone());
            r.register("controller_runtime_reconcile", "Reconciles per controller and result", metrics.reconcile_total.clone());
            r.register("controller_runtime_reconcile_errors", "Reconcile errors per controller", metrics.reconcile_errors.clone());
            r.register_with_unit("controller_runtime_reconcile_time", "Reconcile durations per controller", Unit::Seconds, metrics.reconcile_time.clone());
            r.register("driftless_image_pulls", "Image pulls by result", metrics.image_pulls.clone());
            r.register_with_unit("driftless_image_pull_duration", "Image pull durations", Unit::Seconds, metrics.image_pull_duration.clone());
            r.register("coredns_dns_responses", "Cluster DNS responses by response code (CoreDNS's name)", metrics.dns_responses.clone());
            r.register("driftless_proxy_rule_applies", "Service proxy rule applies by result", metrics.proxy_applies.clone());
            r.register_with_unit(
                "kubeproxy_sync_proxy_rules_duration",
                "Service proxy rule apply durations (kube-proxy's name)",
                Unit::Seconds,
                metrics.proxy_apply_duration.clone(),
            );
            r.register("driftless_webhook_deliveries", "Webhook deliveries by result", metrics.webhook_deliveries.clone());
            r.register("driftless_notifications", "Notifications posted, failed after retries, or dropped", metrics.notifications.clone());
        }
        metrics
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The exposition content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics as a scrape reads them: every recorded family, then what
/// `scrape` registers (state read at this instant: gauges from the store).
pub fn render(scrape: impl FnOnce(&mut Registry)) -> String {
    let mut out = String::new();
    {
        let registry = metrics().registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    }
    let mut now = Registry::default();
    scrape(&mut now);
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &now);
    let _ = prometheus_client::encoding::text::encode_eof(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn recorded_and_scraped_families_are_one_exposition() {
        metrics().refused_commits.inc();
        metrics().reconcile_time.get_or_create(&ControllerLabel { controller: "test" }).observe(0.002);
        let text = render(|registry| {
            let pods: Family<ResultLabel, Gauge> = Family::default();
            pods.get_or_create(&ResultLabel { result: "Running" }).set(3);
            registry.register("kube_pod_status_phase", "Pods by phase", pods);
        });
        assert!(text.contains("# TYPE driftless_refused_commits counter"), "{text}");
        assert!(text.contains("driftless_refused_commits_total "), "{text}");
        assert!(text.contains("controller_runtime_reconcile_time_seconds_bucket{le=\"0.002\",controller=\"test\"} 1"), "{text}");
        assert!(text.contains("kube_pod_status_phase{result=\"Running\"} 3"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
