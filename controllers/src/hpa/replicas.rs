//! How many replicas one metric asks for: upstream's replica calculator
//! (`pkg/controller/podautoscaler/replica_calculator.go`) as pure
//! functions of the pods, their samples and the target, so its rules can
//! be tested against the algorithm's documented examples.
//!
//! The rules, in upstream's order: deleted and failed pods are ignored;
//! pending pods, and for CPU pods not yet ready (or whose sample predates
//! a window after becoming ready, during their first 5 minutes), are
//! unready; pods without a sample are missing. The ratio of the ready
//! pods' usage to the target decides, within a 10 % tolerance; when pods
//! are missing or unready the ratio is recomputed conservatively (missing
//! pods at 100 % of target when scaling down and 0 % when scaling up,
//! unready pods at 0 % when scaling up), and the count stays if the
//! conservative ratio would reverse or cancel the move.
//!
//! Must not touch: the store or the clock; the caller passes `now`.

use std::collections::BTreeMap;

/// Upstream's default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const TOLERANCE: f64 = 0.1;
/// A pod's first minutes, when CPU samples taken before it was ready for
/// a whole window are set aside (`--horizontal-pod-autoscaler-cpu-initialization-period`).
pub const CPU_INITIALIZATION_PERIOD: i64 = 300;
/// How long after start an unready pod counts as never having been ready
/// (`--horizontal-pod-autoscaler-initial-readiness-delay`).
pub const INITIAL_READINESS_DELAY: i64 = 30;

/// What the calculator needs to know of a pod. Times are Unix seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    /// Being deleted.
    pub deleting: bool,
    /// `status.phase`.
    pub phase: String,
    /// The Ready condition: its status and last transition.
    pub ready: Option<(bool, i64)>,
    /// `status.startTime`.
    pub start_time: Option<i64>,
}

/// One pod's sample: its usage (milli-units: millicores, or
/// thousandths of a byte), when it was taken, and over what window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Usage in milli-units.
    pub value: i64,
    /// When the window ended.
    pub timestamp: i64,
    /// The window's length in seconds.
    pub window: i64,
}

/// Where a pod's sample goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Counted.
    Ready,
    /// Not counted, or counted as 0 % when scaling up.
    Unready,
    /// No sample: counted as 100 % or 0 % of target, against the move.
    Missing,
    /// Deleted or failed: never counted.
    Ignored,
}

/// The group of `pod`, whose sample is `sample`; `cpu` applies the
/// readiness rules that CPU's start-up burst needs.
pub fn group(pod: &PodFacts, sample: Option<&Sample>, cpu: bool, now: i64) -> Group {
    if pod.deleting || pod.phase == "Failed" {
        return Group::Ignored;
    }
    if pod.phase == "Pending" {
        return Group::Unready;
    }
    let Some(sample) = sample else { return Group::Missing };
    if !cpu {
        return Group::Ready;
    }
    let (Some((ready, transition)), Some(start)) = (pod.ready, pod.start_time) else { return Group::Unready };
    let unready = if start + CPU_INITIALIZATION_PERIOD > now {
        !ready || sample.timestamp < transition + sample.window
    } else {
        !ready && start + INITIAL_READINESS_DELAY > transition
    };
    if unready { Group::Unready } else { Group::Ready }
}

/// What a metric's calculation gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// The replica count this metric asks for.
    pub replicas: i32,
    /// For `Utilization` targets: the ready pods' usage as a percentage
    /// of their requests (what `status.currentMetrics` reports).
    pub utilization: Option<i32>,
    /// The ready pods' average usage, in milli-units.
    pub average: i64,
}

/// Why a metric gave no proposal, in upstream's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalculationError {
    /// Every pod was unready, missing or ignored.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// The target has no pods.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// A `Utilization` target over pods that do not all request the
    /// resource.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// `cpu` or `memory`.
        resource: String,
        /// The container without a request.
        container: String,
        /// Its pod.
        pod: String,
    },
    /// Requests summed to nothing over the pods with samples.
    #[error("no metrics returned matched known pods")]
    NoRequests,
}

/// A pod as the calculator sees it: its facts, its sample, and (for a
/// `Utilization` target) its request in milli-units.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInput {
    /// The pod's name.
    pub name: String,
    /// What decides its group.
    pub facts: PodFacts,
    /// Its usage, if the node sampled it.
    pub sample: Option<Sample>,
    /// The sum of its containers' requests; `Err(container)` names one
    /// without a request.
    pub request: Result<i64, String>,
}

/// What the metric is measured against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// A percentage of the pods' requests.
    Utilization(i32),
    /// An average per pod, in milli-units.
    AverageValue(i64),
}

/// The replicas one resource metric asks for, with `current` running.
pub fn replicas(pods: &[PodInput], current: i32, target: Target, resource: &str, now: i64) -> Result<Proposal, CalculationError> {
    if pods.is_empty() {
        return Err(CalculationError::NoPods);
    }
    let cpu = resource == "cpu";
    let mut usage: BTreeMap<&str, i64> = BTreeMap::new();
    let (mut ready, mut unready, mut missing) = (0usize, Vec::new(), Vec::new());
    for pod in pods {
        match group(&pod.facts, pod.sample.as_ref(), cpu, now) {
            Group::Ignored => {}
            Group::Unready => unready.push(pod.name.as_str()),
            Group::Missing => missing.push(pod.name.as_str()),
            Group::Ready => {
                ready += 1;
                usage.insert(&pod.name, pod.sample.map_or(0, |s| s.value));
            }
        }
    }
    let mut requests: BTreeMap<&str, i64> = BTreeMap::new();
    if let Target::Utilization(_) = target {
        for pod in pods {
            match &pod.request {
                Ok(request) => requests.insert(&pod.name, *request),
                Err(container) => {
                    return Err(CalculationError::MissingRequest { resource: resource.to_owned(), container: container.clone(), pod: pod.name.clone() });
                }
            };
        }
    }
    if usage.is_empty() {
        return Err(CalculationError::NoMetrics);
    }
    let ratio = |usage: &BTreeMap<&str, i64>| -> Result<(f64, Option<i32>, i64), CalculationError> {
        match target {
            Target::Utilization(percent) => {
                let (mut used, mut requested, mut counted) = (0i64, 0i64, 0i64);
                for (name, value) in usage {
                    if let Some(request) = requests.get(name) {
                        used += value;
                        requested += request;
                        counted += 1;
                    }
                }
                if requested == 0 {
                    return Err(CalculationError::NoRequests);
                }
                let utilization = (used * 100 / requested) as i32;
                Ok((f64::from(utilization) / f64::from(percent), Some(utilization), used / counted))
            }
            Target::AverageValue(per_pod) => {
                // Upstream divides in integers first, then compares.
                let average = usage.values().sum::<i64>() / usage.len() as i64;
                Ok((average as f64 / per_pod as f64, None, average))
            }
        }
    };
    let (usage_ratio, utilization, average) = ratio(&usage)?;
    let proposal = |replicas| Proposal { replicas, utilization, average };
    let scale_up_with_unready = !unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((usage_ratio * ready as f64).ceil() as i32));
    }
    // Missing pods count against the move: at their whole target when
    // scaling down, at nothing when scaling up.
    for name in &missing {
        let value = if usage_ratio < 1.0 {
            match target {
                Target::Utilization(_) => requests.get(name).copied().unwrap_or(0),
                Target::AverageValue(per_pod) => per_pod,
            }
        } else {
            0
        };
        usage.insert(name, value);
    }
    if scale_up_with_unready {
        for name in &unready {
            usage.insert(name, 0);
        }
    }
    let (new_ratio, _, _) = ratio(&usage)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE || (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0) {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * usage.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}
