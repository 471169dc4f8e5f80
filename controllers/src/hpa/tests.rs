//! The HPA's arithmetic against the examples Kubernetes documents for it
//! ("Algorithm details" and "Configurable scaling behavior" in the
//! HorizontalPodAutoscaler walkthrough) and upstream's rules for unready
//! and missing pods.

use driftless_model::k8s_openapi::api::autoscaling::v2::{HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior};

use super::behavior::{self, Behavior, Proposal, ScaleEvent};
use super::replicas::{self, CalculationError, Group, PodFacts, PodInput, Sample, Target};

const NOW: i64 = 1_000_000;

/// A pod running and ready for an hour, sampled now.
fn ready(name: &str, usage: i64, request: i64) -> PodInput {
    PodInput {
        name: name.into(),
        facts: PodFacts { deleting: false, phase: "Running".into(), ready: Some((true, NOW - 3600)), start_time: Some(NOW - 3600) },
        sample: Some(Sample { value: usage, timestamp: NOW, window: 30 }),
        request: Ok(request),
    }
}

#[test]
fn the_ratio_of_metric_to_target_scales_the_count() {
    // "if the current metric value is 200m, and the desired value is
    // 100m, the number of replicas will be doubled ... If the current value
    // is instead 50m, you'll halve the number of replicas."
    let pods = |usage| vec![ready("a", usage, 1000), ready("b", usage, 1000)];
    assert_eq!(replicas::replicas(&pods(200), 2, Target::AverageValue(100), "cpu", NOW).unwrap().replicas, 4);
    assert_eq!(replicas::replicas(&pods(50), 2, Target::AverageValue(100), "cpu", NOW).unwrap().replicas, 1);
    // "The control plane skips any scaling action if the ratio is
    // sufficiently close to 1.0 (within ... 0.1 by default)."
    assert_eq!(replicas::replicas(&pods(109), 2, Target::AverageValue(100), "cpu", NOW).unwrap().replicas, 2);
    assert_eq!(replicas::replicas(&pods(91), 2, Target::AverageValue(100), "cpu", NOW).unwrap().replicas, 2);
    // desiredReplicas = ceil[currentReplicas * ( currentMetricValue / desiredMetricValue )]
    assert_eq!(replicas::replicas(&pods(120), 2, Target::AverageValue(100), "cpu", NOW).unwrap().replicas, 3);
}

#[test]
fn utilization_is_usage_over_requests_of_the_ready_pods() {
    // 3 pods requesting 200m, using 250m each: 125 % against a 50 %
    // target asks for ceil(3 * 2.5) = 8.
    let pods: Vec<PodInput> = ["a", "b", "c"].iter().map(|n| ready(n, 250, 200)).collect();
    let proposal = replicas::replicas(&pods, 3, Target::Utilization(50), "cpu", NOW).unwrap();
    assert_eq!((proposal.replicas, proposal.utilization, proposal.average), (8, Some(125), 250));
    // A pod without a request makes Utilization meaningless.
    let mut pods = pods;
    pods[1].request = Err("sidecar".into());
    let error = replicas::replicas(&pods, 3, Target::Utilization(50), "cpu", NOW).unwrap_err();
    assert_eq!(error.to_string(), "missing request for cpu in container sidecar of Pod b");
}

#[test]
fn missing_pods_count_against_the_move() {
    // Scaling down, a pod without metrics is taken to use 100 % of its
    // request: two ready pods at 10 % and one missing average to 40 %,
    // against a 50 % target: 0.8 -> ceil(0.8 * 3) = 3, no change.
    let mut pods = vec![ready("a", 20, 200), ready("b", 20, 200), ready("c", 0, 200)];
    pods[2].sample = None;
    assert_eq!(replicas::replicas(&pods, 3, Target::Utilization(50), "cpu", NOW).unwrap().replicas, 3);
    // Scaling up, it is taken to use nothing, and a move that reverses
    // then is no move: two ready pods at 100 % against 50 % ask for
    // ceil(2.0 * 2) = 4 of the 6, but with four missing pods at 0 % the
    // ratio is 0.67, a scale down, so the count stays.
    let mut pods: Vec<PodInput> = ["a", "b", "c", "d", "e", "f"].iter().map(|n| ready(n, 200, 200)).collect();
    for pod in &mut pods[2..] {
        pod.sample = None;
    }
    assert_eq!(replicas::replicas(&pods, 6, Target::Utilization(50), "cpu", NOW).unwrap().replicas, 6);
}

#[test]
fn unready_pods_count_as_idle_when_scaling_up_and_never_reverse_it() {
    // A pod still starting (Pending) counts as 0 % when scaling up.
    let mut pods = vec![ready("a", 200, 200), ready("b", 0, 200)];
    pods[1].facts.phase = "Pending".into();
    pods[1].sample = None;
    // Ready pod at 100 % against 50 %: 2.0; with the pending one at 0 %:
    // 1.0, within tolerance of no change, so the count stays.
    assert_eq!(replicas::replicas(&pods, 2, Target::Utilization(50), "cpu", NOW).unwrap().replicas, 2);
    // Not ready within the CPU initialization period: unready.
    let starting = PodFacts { deleting: false, phase: "Running".into(), ready: Some((false, NOW - 10)), start_time: Some(NOW - 20) };
    let sample = Sample { value: 900, timestamp: NOW, window: 30 };
    assert_eq!(replicas::group(&starting, Some(&sample), true, NOW), Group::Unready);
    // The same for memory counts: only CPU has a start-up burst.
    assert_eq!(replicas::group(&starting, Some(&sample), false, NOW), Group::Ready);
    // Ready, but the sample began before it became ready: unready.
    let just_ready = PodFacts { ready: Some((true, NOW - 10)), ..starting.clone() };
    assert_eq!(replicas::group(&just_ready, Some(&sample), true, NOW), Group::Unready);
    // Failed and deleting pods are ignored; every pod ignored is an error.
    let failed = PodFacts { phase: "Failed".into(), ..starting.clone() };
    assert_eq!(replicas::group(&failed, Some(&sample), true, NOW), Group::Ignored);
    let only = vec![PodInput { facts: failed, ..ready("x", 1, 1) }];
    assert_eq!(replicas::replicas(&only, 1, Target::Utilization(50), "cpu", NOW).unwrap_err(), CalculationError::NoMetrics);
    assert_eq!(replicas::replicas(&[], 1, Target::Utilization(50), "cpu", NOW).unwrap_err(), CalculationError::NoPods);
}

fn rules(window: Option<i32>, select: Option<&str>, policies: &[(&str, i32, i32)]) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: window,
        select_policy: select.map(str::to_owned),
        policies: Some(
            policies.iter().map(|(kind, value, period)| HPAScalingPolicy { type_: (*kind).into(), value: *value, period_seconds: *period }).collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn default_behavior_doubles_or_adds_four_and_waits_five_minutes_to_shrink() {
    let behavior = Behavior::of(None);
    assert_eq!(behavior.down.window, 300);
    // Up: the larger of +4 pods and +100 % per 15 s.
    assert_eq!(behavior::scale_up_limit(1, &[], &behavior.up, NOW), 5);
    assert_eq!(behavior::scale_up_limit(10, &[], &behavior.up, NOW), 20);
    // Having just added 5 of the 10, the period started at 5.
    assert_eq!(behavior::scale_up_limit(10, &[ScaleEvent { at: NOW - 5, change: 5 }], &behavior.up, NOW), 10);
    assert_eq!(behavior::scale_up_limit(10, &[ScaleEvent { at: NOW - 16, change: 5 }], &behavior.up, NOW), 20);
    // Down: a lower proposal waits for the window's highest.
    let mut history = vec![Proposal { at: NOW - 200, replicas: 8 }, Proposal { at: NOW - 400, replicas: 9 }];
    let (count, reason) = behavior::stabilize(&mut history, &behavior, 8, 3, NOW);
    assert_eq!(count, 8);
    assert_eq!(reason.map(|r| r.0), Some("ScaleDownStabilized"));
    assert!(history.iter().all(|p| p.at >= NOW - 300), "proposals older than every window are dropped");
    // Up is not stabilized by default.
    assert_eq!(behavior::stabilize(&mut history, &behavior, 8, 12, NOW).0, 12);
}

#[test]
fn documented_scale_down_policies_remove_at_most_the_larger_of_4_pods_or_10_percent() {
    // "scaleDown: policies: Pods 4 per 60 s, Percent 10 per 60 s ... when
    // there are 80 replicas and the target has to be scaled down to 10
    // replicas then during the first step 8 replicas will be reduced. In
    // the next iteration when the number of replicas is 72, 10% of the pods
    // is 7.2 but the number is rounded up to 8."
    let spec = HorizontalPodAutoscalerBehavior { scale_down: Some(rules(None, None, &[("Pods", 4, 60), ("Percent", 10, 60)])), scale_up: None };
    let behavior = Behavior::of(Some(&spec));
    assert_eq!(behavior.down.window, 300, "the default window stays");
    let (count, reason) = behavior::limit(&behavior, 80, 10, 1..=100, &[], &[], NOW);
    assert_eq!((count, reason.0), (72, "ScaleDownLimit"));
    // A period later, from 72: 7.2 is rounded up to 8.
    let removed = [ScaleEvent { at: NOW - 61, change: 8 }];
    assert_eq!(behavior::limit(&behavior, 72, 10, 1..=100, &[], &removed, NOW).0, 64);
    // Within the same period nothing more goes.
    let removed = [ScaleEvent { at: NOW - 30, change: 8 }];
    assert_eq!(behavior::limit(&behavior, 72, 10, 1..=100, &[], &removed, NOW).0, 72);
    // "selectPolicy: Min" picks the smaller change: 4 pods.
    let spec = HorizontalPodAutoscalerBehavior { scale_down: Some(rules(None, Some("Min"), &[("Pods", 4, 60), ("Percent", 10, 60)])), scale_up: None };
    assert_eq!(behavior::limit(&Behavior::of(Some(&spec)), 80, 10, 1..=100, &[], &[], NOW).0, 76);
    // "selectPolicy: Disabled" stops scaling down.
    let spec = HorizontalPodAutoscalerBehavior { scale_down: Some(rules(None, Some("Disabled"), &[])), scale_up: None };
    assert_eq!(behavior::limit(&Behavior::of(Some(&spec)), 80, 10, 1..=100, &[], &[], NOW).0, 80);
}

#[test]
fn min_and_max_bound_the_count_with_their_reasons() {
    let behavior = Behavior::of(None);
    assert_eq!(
        behavior::limit(&behavior, 4, 50, 1..=10, &[], &[], NOW),
        (8, ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"))
    );
    assert_eq!(
        behavior::limit(&behavior, 8, 50, 1..=10, &[], &[], NOW),
        (10, ("TooManyReplicas", "the desired replica count is more than the maximum replica count"))
    );
    assert_eq!(
        behavior::limit(&behavior, 8, 1, 2..=10, &[], &[], NOW),
        (2, ("TooFewReplicas", "the desired replica count is less than the minimum replica count"))
    );
    assert_eq!(behavior::limit(&behavior, 8, 6, 2..=10, &[], &[], NOW), (6, ("DesiredWithinRange", "the desired count is within the acceptable range")));
}
