//! The arithmetic of a rolling update, as Kubernetes' deployment
//! controller does it: how far the new ReplicaSet may grow (surge) and how
//! far the old ones may shrink (unavailability), with percentages rounded
//! up for surge and down for unavailability.

use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// An `IntOrString` against `total`: `3` is 3, `"25%"` is a quarter of
/// `total` rounded as asked.
pub fn scaled(value: Option<&IntOrString>, total: i32, round_up: bool, default: &str) -> i32 {
    let owned;
    let value = match value {
        Some(v) => v,
        None => {
            owned = IntOrString::String(default.to_owned());
            &owned
        }
    };
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.trim().parse::<i64>().ok()) else {
                return s.parse().unwrap_or(0);
            };
            let product = percent * i64::from(total);
            let result = if round_up { (product + 99).div_euclid(100) } else { product.div_euclid(100) };
            i32::try_from(result).unwrap_or(i32::MAX)
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `replicas`, as `ResolveFenceposts`:
/// both zero would deadlock, so unavailability becomes 1.
pub fn fenceposts(max_surge: Option<&IntOrString>, max_unavailable: Option<&IntOrString>, replicas: i32) -> (i32, i32) {
    let surge = scaled(max_surge, replicas, true, "25%").max(0);
    let unavailable = scaled(max_unavailable, replicas, false, "25%").max(0);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// `MaxUnavailable`: never more than the replicas.
pub fn max_unavailable(replicas: i32, unavailable: i32) -> i32 {
    if replicas == 0 { 0 } else { unavailable.min(replicas) }
}

/// How many replicas the new ReplicaSet should have now
/// (`NewRSNewReplicas`): grow by what the surge allows, never past the
/// deployment's replicas. `total` is the sum of every ReplicaSet's
/// `spec.replicas`.
pub fn new_rs_replicas(replicas: i32, surge: i32, total: i32, new_rs: i32) -> i32 {
    let max_total = replicas + surge;
    if total >= max_total {
        return new_rs;
    }
    let grow = (max_total - total).min(replicas - new_rs).max(0);
    new_rs + grow
}

/// How many old pods may go now (`reconcileOldReplicaSets`), given the
/// sum of every ReplicaSet's `spec.replicas` and the new ReplicaSet's
/// unavailable pods: never so many that fewer than `replicas -
/// maxUnavailable` stay available.
pub fn max_scale_down(replicas: i32, max_unavailable: i32, all_pods: i32, new_rs_unavailable: i32) -> i32 {
    let min_available = replicas - max_unavailable;
    all_pods - min_available - new_rs_unavailable
}

/// How many available old pods may be scaled away
/// (`scaleDownOldReplicaSetsForRollingUpdate`).
pub fn healthy_scale_down(replicas: i32, max_unavailable: i32, available: i32) -> i32 {
    let min_available = replicas - max_unavailable;
    (available - min_available).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn percentages_round_as_kubernetes_does() {
        // 25% of 10: surge rounds up to 3, unavailable down to 2.
        assert_eq!(fenceposts(None, None, 10), (3, 2));
        assert_eq!(fenceposts(Some(&s("30%")), Some(&s("30%")), 3), (1, 0));
        assert_eq!(fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3), (0, 1));
        assert_eq!(fenceposts(Some(&IntOrString::Int(2)), Some(&s("0%")), 5), (2, 0));
        assert_eq!(max_unavailable(2, 5), 2);
        assert_eq!(max_unavailable(0, 5), 0);
    }

    #[test]
    fn the_new_set_grows_within_the_surge() {
        // 4 replicas, surge 1: total 4 → new grows to 1.
        assert_eq!(new_rs_replicas(4, 1, 4, 0), 1);
        // Already at 5 total: no growth until old pods go.
        assert_eq!(new_rs_replicas(4, 1, 5, 1), 1);
        // Never past the replicas.
        assert_eq!(new_rs_replicas(4, 10, 4, 3), 4);
    }

    #[test]
    fn old_sets_shrink_within_unavailability() {
        // 4 replicas, maxUnavailable 1, 5 pods, the new one unavailable:
        // 5 - 3 - 1 = 1 may go.
        assert_eq!(max_scale_down(4, 1, 5, 1), 1);
        // Nothing may go while the new pods are unavailable and there is no slack.
        assert_eq!(max_scale_down(4, 0, 5, 1), 0);
        assert_eq!(healthy_scale_down(4, 1, 4), 1);
        assert_eq!(healthy_scale_down(4, 1, 3), 0);
    }
}
