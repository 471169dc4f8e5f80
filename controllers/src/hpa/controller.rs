//! The HorizontalPodAutoscaler controller, as upstream's `horizontal.go`
//! runs it every sync period: read the target's replicas and pods, ask
//! each metric how many replicas it wants ([`super::replicas`]), keep the
//! largest, bound it by the stabilization windows, rates and min/max
//! ([`super::behavior`]), set the target's `spec.replicas` when it
//! differs, and report the status, conditions and events in upstream's
//! words.
//!
//! The count it sets lives in the store only: git's declared count is
//! set aside by the engine while the HPA exists (`driftless-diff`'s
//! `autoscaled`), so the two never fight.
//!
//! Must not touch: any field of the target but `spec.replicas`, or git.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec};
use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use driftless_model::{Kind, Quantity, selector};
use driftless_nodeapi::Metrics;
use driftless_store::{Batch, Key, Op, StoreExt};
use serde_json::{Value, json};

use super::behavior::{self, Behavior, Proposal, ScaleEvent};
use super::replicas::{self, PodFacts, PodInput, Sample, Target};
use crate::context::rfc3339;
use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError};

/// Upstream's default sync period
/// (`--horizontal-pod-autoscaler-sync-period`).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);

/// What the controller remembers of one HPA between syncs, as upstream
/// keeps it in memory: recent proposals and scale events.
#[derive(Debug, Default)]
struct Memory {
    proposals: Vec<Proposal>,
    added: Vec<ScaleEvent>,
    removed: Vec<ScaleEvent>,
}

/// A rescale the controller made, for the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rescale {
    /// The HPA.
    pub autoscaler: Key,
    /// The target, `Deployment/web`.
    pub target: String,
    /// The count before.
    pub from: i32,
    /// The count set.
    pub to: i32,
    /// Why, in upstream's words (`cpu resource utilization (percentage of
    /// request) above target`).
    pub reason: String,
}

/// Told of each rescale (the daemon records them in the ledger).
pub type RescaleHook = Box<dyn Fn(Rescale) + Send + Sync>;

/// The controller.
pub struct HorizontalController {
    ctx: Context,
    metrics: Metrics,
    period: Duration,
    memory: Mutex<HashMap<Key, Memory>>,
    on_rescale: Option<RescaleHook>,
}

impl HorizontalController {
    /// A controller reading `metrics`, syncing each HPA every `period`,
    /// telling `on_rescale` of each rescale.
    pub fn new(ctx: Context, metrics: Metrics, period: Duration, on_rescale: Option<RescaleHook>) -> Arc<HorizontalController> {
        Arc::new(HorizontalController { ctx, metrics, period, memory: Mutex::default(), on_rescale })
    }
}

/// One metric's outcome: the replicas it asks for and its status entry.
struct Measured {
    replicas: i32,
    status: Value,
    /// Its name in events (`cpu resource utilization (percentage of
    /// request)`).
    name: String,
}

/// What the calculator needs of `pod` for `resource` (in `container`, or
/// the whole pod).
fn input(pod: &Pod, metrics: &Metrics, resource: &str, container: Option<&str>) -> PodInput {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().flatten().find(|c| c.type_ == "Ready").map(|c| {
        let transition = c.last_transition_time.as_ref().map_or(0, |t| t.0.as_second());
        (c.status == "True", transition)
    });
    let facts = PodFacts {
        deleting: pod.metadata.deletion_timestamp.is_some(),
        phase: status.phase.clone().unwrap_or_default(),
        ready,
        start_time: status.start_time.as_ref().map(|t| t.0.as_second()),
    };
    let cpu = resource == "cpu";
    let sample = metrics.pod(&format!("{namespace}/{name}")).and_then(|window| {
        let used: Vec<u64> = window
            .containers
            .iter()
            .filter(|(c, _)| container.is_none_or(|want| want == c))
            .map(|(_, usage)| if cpu { usage.nanocores / 1_000_000 } else { usage.memory_bytes.saturating_mul(1000) })
            .collect();
        (!used.is_empty()).then(|| Sample { value: used.iter().sum::<u64>() as i64, timestamp: window.timestamp_ms / 1000, window: window.window_ms / 1000 })
    });
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let mut request = Ok(0i64);
    for c in containers.iter().filter(|c| container.is_none_or(|want| want == c.name)) {
        let asked = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(resource)).and_then(|q| q.0.parse::<Quantity>().ok());
        request = match (request, asked) {
            (Ok(sum), Some(q)) => Ok(sum + q.millis() as i64),
            (Ok(_), None) => Err(c.name.clone()),
            (error, _) => error,
        };
    }
    PodInput { name, facts, sample, request }
}

impl HorizontalController {
    /// How many replicas `metric` asks for over `pods`.
    fn measure(&self, metric: &MetricSpec, pods: &[Pod], current: i32, now: i64) -> Result<Measured, String> {
        let (source, container) = match (metric.type_.as_str(), &metric.resource, &metric.container_resource) {
            ("Resource", Some(r), _) => ((r.name.clone(), r.target.clone()), None),
            ("ContainerResource", _, Some(c)) => ((c.name.clone(), c.target.clone()), Some(c.container.clone())),
            (other, _, _) => return Err(format!("the HPA controller has no metrics for {other} metrics")),
        };
        let (resource, target_spec) = source;
        let target = match (target_spec.type_.as_str(), target_spec.average_utilization, &target_spec.average_value) {
            ("Utilization", Some(percent), _) => Target::Utilization(percent),
            ("AverageValue", _, Some(value)) => Target::AverageValue(value.0.parse::<Quantity>().map_err(|e| e.to_string())?.millis() as i64),
            (kind, _, _) => return Err(format!("invalid {resource} target type {kind}")),
        };
        let inputs: Vec<PodInput> = pods.iter().map(|p| input(p, &self.metrics, &resource, container.as_deref())).collect();
        let what = match target {
            Target::Utilization(_) => "utilization",
            Target::AverageValue(_) => "usage",
        };
        let proposal = replicas::replicas(&inputs, current, target, &resource, now).map_err(|e| format!("failed to get {resource} {what}: {e}"))?;
        let average = if resource == "cpu" { format!("{}m", proposal.average) } else { (proposal.average / 1000).to_string() };
        let mut current_value = json!({"averageValue": average});
        if let Some(utilization) = proposal.utilization {
            current_value["averageUtilization"] = json!(utilization);
        }
        let (status, name) = match &container {
            None => (
                json!({"type": "Resource", "resource": {"name": resource, "current": current_value}}),
                match target {
                    Target::Utilization(_) => format!("{resource} resource utilization (percentage of request)"),
                    Target::AverageValue(_) => format!("{resource} resource"),
                },
            ),
            Some(c) => (
                json!({"type": "ContainerResource", "containerResource": {"name": resource, "container": c, "current": current_value}}),
                format!("{resource} container resource utilization (percentage of request)"),
            ),
        };
        Ok(Measured { replicas: proposal.replicas, status, name })
    }
}

/// Sets condition `kind` in `conditions`, keeping its transition time
/// unless its status changes.
fn set_condition(conditions: &mut Vec<Value>, kind: &str, status: bool, reason: &str, message: &str, now: &str) {
    let status = if status { "True" } else { "False" };
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => conditions.push(json!({"type": kind, "status": status, "lastTransitionTime": now, "reason": reason, "message": message})),
    }
}

impl Reconciler for HorizontalController {
    fn name(&self) -> &'static str {
        "horizontal-pod-autoscaler"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::HorizontalPodAutoscaler)
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(value) = store.get(key) else {
            self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
            return Ok(Action::AwaitChange);
        };
        let hpa = HorizontalPodAutoscaler::from_json(&value).map_err(|e| ReconcileError::Malformed(format!("HorizontalPodAutoscaler: {e}")))?;
        let spec = hpa.spec.clone().unwrap_or_default();
        let now = self.ctx.now();
        let (now_s, now_text) = (now.as_second(), rfc3339(now));
        let old_status = value.get("status").cloned().unwrap_or(json!({}));
        let mut conditions: Vec<Value> = old_status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        let record = |kind: EventType, reason: &str, message: &str| self.ctx.events.record(&value, kind, reason, message);

        let reference = &spec.scale_target_ref;
        let kind =
            Kind::from_name(&reference.kind).filter(|k| matches!(k, Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet | Kind::ReplicationController));
        let target = kind.and_then(|k| store.get(&Key::new(k, key.namespace.as_str(), reference.name.as_str())));
        let Some(target) = target else {
            let plural = kind.map_or_else(|| reference.kind.to_lowercase(), |k| k.plural().to_owned());
            let message = format!("the HPA controller was unable to get the target's current scale: {plural}/scale \"{}\" not found", reference.name);
            set_condition(&mut conditions, "AbleToScale", false, "FailedGetScale", &message, &now_text);
            record(EventType::Warning, "FailedGetScale", &message);
            self.write_status(key, &hpa, &old_status, json!({"currentReplicas": 0, "desiredReplicas": 0, "conditions": conditions}))?;
            return Ok(Action::Requeue(self.period));
        };
        set_condition(&mut conditions, "AbleToScale", true, "SucceededGetScale", "the HPA controller was able to get the target's current scale", &now_text);
        let current = target.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1) as i32;
        let (min, max) = (spec.min_replicas.unwrap_or(1), spec.max_replicas);
        let mut metric_statuses: Vec<Value> = Vec::new();
        let mut reason_for_scale = String::new();

        let desired = if current == 0 && min != 0 {
            set_condition(
                &mut conditions,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                &now_text,
            );
            0
        } else if current > max {
            reason_for_scale = "Current number of replicas above Spec.MaxReplicas".into();
            max
        } else if current < min {
            reason_for_scale = "Current number of replicas below Spec.MinReplicas".into();
            min
        } else {
            // A ReplicationController's selector is a plain map; the
            // others' a LabelSelector. An unreadable one selects nothing.
            let raw = target.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            let selects = |labels: &std::collections::BTreeMap<String, String>| match kind {
                Some(Kind::ReplicationController) => {
                    serde_json::from_value(raw.clone()).is_ok_and(|map| !labels.is_empty() && selector::matches_map(&map, labels))
                }
                _ => serde_json::from_value::<LabelSelector>(raw.clone()).is_ok_and(|s| selector::matches(&s, labels)),
            };
            let pods: Vec<Pod> = store
                .api::<Pod>()
                .list(Some(&key.namespace))
                .into_iter()
                .filter(|p| selects(p.metadata.labels.as_ref().unwrap_or(&Default::default())))
                .collect();
            let mut best: Option<Measured> = None;
            let mut failure: Option<String> = None;
            for metric in spec.metrics.iter().flatten() {
                match self.measure(metric, &pods, current, now_s) {
                    Ok(measured) => {
                        metric_statuses.push(measured.status.clone());
                        if best.as_ref().is_none_or(|b| measured.replicas > b.replicas) {
                            best = Some(measured);
                        }
                    }
                    Err(error) => failure = Some(error),
                }
            }
            match (best, failure) {
                (None, failure) => {
                    let error = failure.unwrap_or_else(|| "no metrics to compute a replica count from".into());
                    let message = format!("the HPA was unable to compute the replica count: {error}");
                    set_condition(&mut conditions, "ScalingActive", false, "FailedGetResourceMetric", &message, &now_text);
                    record(EventType::Warning, "FailedGetResourceMetric", &error);
                    record(
                        EventType::Warning,
                        "FailedComputeMetricsReplicas",
                        &format!("invalid metrics (1 invalid out of {}), first error is: {error}", spec.metrics.iter().flatten().count()),
                    );
                    self.write_status(
                        key,
                        &hpa,
                        &old_status,
                        json!({"currentReplicas": current, "desiredReplicas": current, "conditions": conditions, "currentMetrics": metric_statuses}),
                    )?;
                    return Ok(Action::Requeue(self.period));
                }
                (Some(best), failure) => {
                    let message = format!("the HPA was able to successfully calculate a replica count from {}", best.name);
                    set_condition(&mut conditions, "ScalingActive", true, "ValidMetricFound", &message, &now_text);
                    // A metric that could not be read may be the one that
                    // would have kept the count: never scale down then.
                    let proposed = if failure.is_some() && best.replicas < current { current } else { best.replicas };
                    reason_for_scale = if proposed > current { format!("{} above target", best.name) } else { "All metrics below target".into() };
                    let behavior = Behavior::of(spec.behavior.as_ref());
                    let mut memory = self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let memory = memory.entry(key.clone()).or_default();
                    // A new controller (or daemon) does not scale down at
                    // once: the window starts with today's count.
                    if memory.proposals.is_empty() {
                        memory.proposals.push(Proposal { at: now_s, replicas: current });
                    }
                    let (stabilized, stabilization) = behavior::stabilize(&mut memory.proposals, &behavior, current, proposed, now_s);
                    let (reason, message) = stabilization.unwrap_or(("ReadyForNewScale", "recommended size matches current size"));
                    set_condition(&mut conditions, "AbleToScale", true, reason, message, &now_text);
                    let keep = behavior.longest_period();
                    memory.added.retain(|e| e.at > now_s - keep);
                    memory.removed.retain(|e| e.at > now_s - keep);
                    let (limited, (reason, message)) = behavior::limit(&behavior, current, stabilized, min..=max, &memory.added, &memory.removed, now_s);
                    set_condition(&mut conditions, "ScalingLimited", limited != stabilized, reason, message, &now_text);
                    limited
                }
            }
        };

        let mut status = json!({"currentReplicas": current, "desiredReplicas": desired, "conditions": conditions});
        if !metric_statuses.is_empty() {
            status["currentMetrics"] = json!(metric_statuses);
        }
        if let Some(last) = old_status.get("lastScaleTime") {
            status["lastScaleTime"] = last.clone();
        }
        let rescale = desired != current && !(current == 0 && min != 0);
        if rescale {
            let mut scaled = (*target).clone();
            scaled["spec"]["replicas"] = json!(desired);
            store.apply(Batch::one(Op::Update(scaled)))?;
            {
                let mut memory = self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let memory = memory.entry(key.clone()).or_default();
                if desired > current {
                    memory.added.push(ScaleEvent { at: now_s, change: desired - current });
                } else {
                    memory.removed.push(ScaleEvent { at: now_s, change: current - desired });
                }
            }
            let message = format!("the HPA controller was able to update the target scale to {desired}");
            if let Some(c) = status["conditions"].as_array_mut() {
                set_condition(c, "AbleToScale", true, "SucceededRescale", &message, &now_text);
            }
            status["lastScaleTime"] = json!(now_text);
            record(EventType::Normal, "SuccessfulRescale", &format!("New size: {desired}; reason: {reason_for_scale}"));
            tracing::info!(hpa = %key, target = %reference.name, from = current, to = desired, reason = %reason_for_scale, "rescaled");
            if let Some(hook) = &self.on_rescale {
                let target = format!("{}/{}", reference.kind, reference.name);
                hook(Rescale { autoscaler: key.clone(), target, from: current, to: desired, reason: reason_for_scale.clone() });
            }
        }
        self.write_status(key, &hpa, &old_status, status)?;
        Ok(Action::Requeue(self.period))
    }
}

impl HorizontalController {
    /// Writes `status` unless it is what is stored.
    fn write_status(&self, key: &Key, hpa: &HorizontalPodAutoscaler, old: &Value, mut status: Value) -> Result<(), ReconcileError> {
        if let Some(generation) = hpa.metadata.generation {
            status["observedGeneration"] = json!(generation);
        }
        if &status == old {
            return Ok(());
        }
        self.ctx.store.apply(Batch::one(Op::Status { key: key.clone(), uid: hpa.metadata.uid.clone(), status }))?;
        Ok(())
    }
}
