//! How fast an HPA may move: `spec.behavior`'s stabilization windows and
//! rate policies, as upstream's `horizontal.go` applies them after the
//! metrics have proposed a count, with the conditions it reports.
//!
//! Stabilization: a proposal to scale up is lowered to the lowest
//! proposal within the scale-up window, one to scale down raised to the
//! highest within the scale-down window (300 s by default), so one noisy
//! sample does not move the workload. Rates: each policy allows a change
//! relative to the count at the start of its period (the scale events
//! within it are remembered), `selectPolicy` picks the largest change
//! (`Max`), the smallest (`Min`) or none (`Disabled`), and min/max bound
//! the result.
//!
//! Must not touch: the store or the clock; times are Unix seconds given by
//! the caller, and the history is the caller's to keep.

use driftless_model::k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// One policy: at most `value` pods, or `value` percent, per `period`
/// seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Pods, else percent.
    pub pods: bool,
    /// How many pods, or what percentage.
    pub value: i32,
    /// The period in seconds.
    pub period: i64,
}

/// How a direction's policies combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the biggest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One direction's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Seconds of proposals the stabilization looks back over.
    pub window: i64,
    /// How the policies combine.
    pub select: Select,
    /// The policies.
    pub policies: Vec<Policy>,
}

/// Both directions' rules, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behavior {
    /// Scaling up.
    pub up: Rules,
    /// Scaling down.
    pub down: Rules,
}

impl Behavior {
    /// The rules `behavior` gives, each field Kubernetes' default when
    /// unset: up with no window and the larger of 4 pods or 100 % per
    /// 15 s; down with a 300 s window and 100 % per 15 s.
    pub fn of(behavior: Option<&HorizontalPodAutoscalerBehavior>) -> Behavior {
        let up_default = Rules {
            window: 0,
            select: Select::Max,
            policies: vec![Policy { pods: true, value: 4, period: 15 }, Policy { pods: false, value: 100, period: 15 }],
        };
        let down_default = Rules { window: 300, select: Select::Max, policies: vec![Policy { pods: false, value: 100, period: 15 }] };
        Behavior { up: rules(behavior.and_then(|b| b.scale_up.as_ref()), up_default), down: rules(behavior.and_then(|b| b.scale_down.as_ref()), down_default) }
    }

    /// The longest period of any policy: how long scale events matter.
    pub fn longest_period(&self) -> i64 {
        self.up.policies.iter().chain(&self.down.policies).map(|p| p.period).max().unwrap_or(0)
    }

    /// The longest window: how long proposals matter.
    pub fn longest_window(&self) -> i64 {
        self.up.window.max(self.down.window)
    }
}

fn rules(given: Option<&HPAScalingRules>, default: Rules) -> Rules {
    let Some(given) = given else { return default };
    let select = match given.select_policy.as_deref() {
        Some("Min") => Select::Min,
        Some("Disabled") => Select::Disabled,
        Some(_) => Select::Max,
        None => default.select,
    };
    let policies = match &given.policies {
        Some(policies) if !policies.is_empty() => {
            policies.iter().map(|p| Policy { pods: p.type_ == "Pods", value: p.value, period: i64::from(p.period_seconds) }).collect()
        }
        _ => default.policies,
    };
    Rules { window: given.stabilization_window_seconds.map_or(default.window, i64::from), select, policies }
}

/// A proposal made at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// When.
    pub at: i64,
    /// The count proposed.
    pub replicas: i32,
}

/// A change made at `at`: pods added (scale-up events) or removed
/// (scale-down events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    /// When.
    pub at: i64,
    /// How many pods.
    pub change: i32,
}

/// A condition's reason and message, in upstream's words.
pub type Reason = (&'static str, &'static str);

/// `desired` after the stabilization window of its direction, given
/// earlier proposals; records `desired` among them (dropping those older
/// than either window). The reason is `AbleToScale`'s when it changed.
pub fn stabilize(history: &mut Vec<Proposal>, behavior: &Behavior, current: i32, desired: i32, now: i64) -> (i32, Option<Reason>) {
    let (window, up) = if desired >= current { (behavior.up.window, true) } else { (behavior.down.window, false) };
    let mut stabilized = desired;
    for proposal in history.iter().filter(|p| p.at > now - window) {
        stabilized = if up { stabilized.min(proposal.replicas) } else { stabilized.max(proposal.replicas) };
    }
    history.retain(|p| p.at >= now - behavior.longest_window());
    history.push(Proposal { at: now, replicas: desired });
    let reason = (stabilized != desired).then_some(if up {
        ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation")
    } else {
        ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
    });
    (stabilized, reason)
}

fn changed_within(events: &[ScaleEvent], period: i64, now: i64) -> i32 {
    events.iter().filter(|e| e.at > now - period).map(|e| e.change).sum()
}

/// The most pods the scale-up rules allow now.
pub fn scale_up_limit(current: i32, added: &[ScaleEvent], rules: &Rules, now: i64) -> i32 {
    let pick: fn(i32, i32) -> i32 = match rules.select {
        Select::Disabled => return current,
        Select::Min => |a: i32, b: i32| a.min(b),
        Select::Max => |a: i32, b: i32| a.max(b),
    };
    let mut limit: Option<i32> = None;
    for policy in &rules.policies {
        let start = current - changed_within(added, policy.period, now);
        let proposed = if policy.pods {
            start + policy.value
        } else {
            // Rounded up, or a small workload could never grow.
            (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32
        };
        limit = Some(limit.map_or(proposed, |l| pick(l, proposed)));
    }
    limit.unwrap_or(current)
}

/// The fewest pods the scale-down rules allow now.
pub fn scale_down_limit(current: i32, removed: &[ScaleEvent], rules: &Rules, now: i64) -> i32 {
    let pick: fn(i32, i32) -> i32 = match rules.select {
        Select::Disabled => return current,
        // The smallest change down is the highest count.
        Select::Min => |a: i32, b: i32| a.max(b),
        Select::Max => |a: i32, b: i32| a.min(b),
    };
    let mut limit: Option<i32> = None;
    for policy in &rules.policies {
        let start = current + changed_within(removed, policy.period, now);
        let proposed = if policy.pods { start - policy.value } else { (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32 };
        limit = Some(limit.map_or(proposed, |l| pick(l, proposed)));
    }
    limit.unwrap_or(current)
}

/// The count to set: `desired` within the rates and `bounds` (the HPA's
/// min and max), and the `ScalingLimited` reason (limited when the count
/// is not `desired`).
pub fn limit(
    behavior: &Behavior,
    current: i32,
    desired: i32,
    bounds: std::ops::RangeInclusive<i32>,
    added: &[ScaleEvent],
    removed: &[ScaleEvent],
    now: i64,
) -> (i32, Reason) {
    let (min, max) = (*bounds.start(), *bounds.end());
    if desired > current {
        let rate = scale_up_limit(current, added, &behavior.up, now).max(current);
        let (allowed, reason) = if max > rate {
            (rate, ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"))
        } else {
            (max, ("TooManyReplicas", "the desired replica count is more than the maximum replica count"))
        };
        if desired > allowed {
            return (allowed, reason);
        }
    } else if desired < current {
        let rate = scale_down_limit(current, removed, &behavior.down, now).min(current);
        let (allowed, reason) = if min < rate {
            (rate, ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"))
        } else {
            (min, ("TooFewReplicas", "the desired replica count is less than the minimum replica count"))
        };
        if desired < allowed {
            return (allowed, reason);
        }
    }
    (desired, ("DesiredWithinRange", "the desired count is within the acceptable range"))
}
