//! Placement rules that count pods across nodes, as Kubernetes' scheduler
//! plugins PodTopologySpread and InterPodAffinity do:
//!
//! - `topologySpreadConstraints`: a node whose domain (its value of the
//!   `topologyKey` label) would hold more than `maxSkew` matching pods
//!   above the emptiest eligible domain is unfit when
//!   `whenUnsatisfiable: DoNotSchedule`, and scores lower when
//!   `ScheduleAnyway`. A pod with none is spread by hostname over the pods
//!   of its own owner (the system default constraint, scored only).
//! - `podAffinity` / `podAntiAffinity`: a required term rules a node out
//!   unless (affinity) or if (anti-affinity) a matching pod runs in the
//!   node's domain, the incoming pod's terms and the running pods'
//!   anti-affinity alike; preferred terms add or take their weight.
//!
//! Owns: counting pods per domain and these verdicts. Must not touch:
//! per-node fit (resources, taints, selectors: `filter.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, TopologySpreadConstraint};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::filter;

/// The cluster as placing one pod sees it.
pub struct Cluster<'a> {
    /// Every node.
    pub nodes: &'a [Node],
    /// Every pod bound to a node and not finished.
    pub bound: &'a [Arc<Pod>],
}

fn labels_of_pod(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// The node's value of `key`, its domain for a constraint on that key.
fn domain<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn selects(selector: Option<&LabelSelector>, pod: &Pod) -> bool {
    // No selector selects nothing, as Kubernetes reads these fields.
    selector.is_some_and(|s| driftless_model::selector::matches(s, &labels_of_pod(pod)))
}

impl Cluster<'_> {
    fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| node_name(n) == name)
    }

    /// The domain of the node `pod` is bound to.
    fn domain_of_pod(&self, pod: &Pod, key: &str) -> Option<String> {
        let node = pod.spec.as_ref()?.node_name.as_deref()?;
        domain(self.node(node)?, key).map(str::to_owned)
    }

    /// Running pods (not leaving) in `namespaces` that `selector` selects,
    /// counted per domain of `key`.
    fn counts(&self, key: &str, selector: Option<&LabelSelector>, namespaces: &[String]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for pod in self.bound.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            if !namespaces.iter().any(|ns| Some(ns.as_str()) == pod.metadata.namespace.as_deref()) || !selects(selector, pod) {
                continue;
            }
            if let Some(domain) = self.domain_of_pod(pod, key) {
                *counts.entry(domain).or_default() += 1;
            }
        }
        counts
    }

    /// The domains of the nodes a constraint may use for `pod` (Kubernetes'
    /// default `nodeAffinityPolicy: Honor`: those the pod may run on).
    fn eligible(&self, pod: &Pod, key: &str) -> Vec<String> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut domains: Vec<String> =
            self.nodes.iter().filter(|n| filter::affinity_unfit(&spec, n).is_none()).filter_map(|n| domain(n, key).map(str::to_owned)).collect();
        domains.sort();
        domains.dedup();
        domains
    }

    /// The skew placing `pod` on `node` would make under `constraint`, or
    /// `None` when the node has no domain for it.
    fn skew(&self, pod: &Pod, node: &Node, constraint: &TopologySpreadConstraint) -> Option<i64> {
        let key = constraint.topology_key.as_str();
        let here = domain(node, key)?;
        let namespace = vec![pod.metadata.namespace.clone().unwrap_or_else(|| "default".into())];
        let counts = self.counts(key, constraint.label_selector.as_ref(), &namespace);
        let count = |d: &str| counts.get(d).copied().unwrap_or(0) as i64;
        let eligible = self.eligible(pod, key);
        let mut minimum = eligible.iter().map(|d| count(d)).min().unwrap_or(0);
        if constraint.min_domains.is_some_and(|m| (eligible.len() as i32) < m) {
            minimum = 0;
        }
        let own = i64::from(selects(constraint.label_selector.as_ref(), pod));
        Some(count(here) + own - minimum)
    }

    /// Why `node` is ruled out for `pod` by spreading or pod (anti-)affinity.
    pub fn unfit(&self, pod: &Pod, node: &Node) -> Option<String> {
        let spec = pod.spec.clone().unwrap_or_default();
        for constraint in spec.topology_spread_constraints.iter().flatten().filter(|c| c.when_unsatisfiable == "DoNotSchedule") {
            match self.skew(pod, node, constraint) {
                None => return Some(format!("node(s) didn't match pod topology spread constraints (missing required label {})", constraint.topology_key)),
                Some(skew) if skew > i64::from(constraint.max_skew) => return Some("node(s) didn't match pod topology spread constraints".into()),
                Some(_) => {}
            }
        }
        let affinity = spec.affinity.as_ref();
        let own_namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        for term in
            affinity.and_then(|a| a.pod_affinity.as_ref()).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()).into_iter().flatten()
        {
            if !self.term_met(term, &own_namespace, node) {
                // The first pod of a group that wants its own company may
                // go anywhere, as Kubernetes allows.
                let alone = self.matching(term, &own_namespace).next().is_none() && selects(term.label_selector.as_ref(), pod);
                if !alone {
                    return Some("node(s) didn't match pod affinity rules".into());
                }
            }
        }
        for term in affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .into_iter()
            .flatten()
        {
            if self.term_met(term, &own_namespace, node) {
                return Some("node(s) didn't match pod anti-affinity rules".into());
            }
        }
        // Running pods that will not have this one beside them.
        for other in self.bound.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            let other_namespace = other.metadata.namespace.clone().unwrap_or_else(|| "default".into());
            let terms = other
                .spec
                .as_ref()
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
            for term in terms.into_iter().flatten() {
                let namespaces = term_namespaces(term, &other_namespace);
                let same_domain = domain(node, &term.topology_key).is_some_and(|d| self.domain_of_pod(other, &term.topology_key).as_deref() == Some(d));
                if same_domain && namespaces.contains(&own_namespace) && selects(term.label_selector.as_ref(), pod) {
                    return Some("node(s) didn't satisfy existing pods anti-affinity rules".into());
                }
            }
        }
        None
    }

    fn matching<'p>(&'p self, term: &'p PodAffinityTerm, namespace: &str) -> impl Iterator<Item = &'p Pod> {
        let namespaces = term_namespaces(term, namespace);
        self.bound.iter().map(|p| &**p).filter(move |p| {
            p.metadata.deletion_timestamp.is_none()
                && namespaces.iter().any(|ns| Some(ns.as_str()) == p.metadata.namespace.as_deref())
                && selects(term.label_selector.as_ref(), p)
        })
    }

    /// Whether a pod `term` selects runs in `node`'s domain of its key.
    fn term_met(&self, term: &PodAffinityTerm, namespace: &str, node: &Node) -> bool {
        let Some(here) = domain(node, &term.topology_key) else { return false };
        self.matching(term, namespace).any(|p| self.domain_of_pod(p, &term.topology_key).as_deref() == Some(here))
    }

    /// The spreading and affinity score of each of `candidates` for `pod`,
    /// 0 to 100 each (higher is better), in their order.
    pub fn scores(&self, pod: &Pod, candidates: &[&Node]) -> Vec<i64> {
        let spec = pod.spec.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let soft: Vec<&TopologySpreadConstraint> =
            spec.topology_spread_constraints.iter().flatten().filter(|c| c.when_unsatisfiable == "ScheduleAnyway").collect();
        // How crowded each candidate's domains are with the pod's group.
        let crowding: Vec<i64> = candidates
            .iter()
            .map(|node| {
                if spec.topology_spread_constraints.as_ref().is_some_and(|c| !c.is_empty()) {
                    soft.iter()
                        .map(|c| {
                            let counts = self.counts(&c.topology_key, c.label_selector.as_ref(), std::slice::from_ref(&namespace));
                            domain(node, &c.topology_key).and_then(|d| counts.get(d)).copied().unwrap_or(0) as i64
                        })
                        .sum()
                } else {
                    self.siblings_on(pod, node_name(node))
                }
            })
            .collect();
        let most = crowding.iter().copied().max().unwrap_or(0);
        // Preferred pod (anti-)affinity: the weights of the terms met.
        let preferred: Vec<i64> = candidates.iter().map(|node| self.preferred(pod, &namespace, node)).collect();
        let (low, high) = (preferred.iter().copied().min().unwrap_or(0), preferred.iter().copied().max().unwrap_or(0));
        crowding
            .iter()
            .zip(&preferred)
            .map(|(crowd, pref)| {
                let spread = if most == 0 { 100 } else { 100 * (most - crowd) / most };
                let affinity = if high == low { 0 } else { 100 * (pref - low) / (high - low) };
                spread + affinity
            })
            .collect()
    }

    /// Pods of `pod`'s owner on the node named `node` (the default
    /// spreading of a workload's replicas by hostname).
    fn siblings_on(&self, pod: &Pod, node: &str) -> i64 {
        let Some(owner) = crate::owner::controller_of_meta(&pod.metadata).map(|o| o.uid.clone()) else { return 0 };
        self.bound
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| crate::owner::controller_of_meta(&p.metadata).is_some_and(|o| o.uid == owner))
            .count() as i64
    }

    fn preferred(&self, pod: &Pod, namespace: &str, node: &Node) -> i64 {
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let with = affinity.and_then(|a| a.pod_affinity.as_ref()).and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref());
        let without = affinity.and_then(|a| a.pod_anti_affinity.as_ref()).and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref());
        let plus: i64 = with.into_iter().flatten().filter(|w| self.term_met(&w.pod_affinity_term, namespace, node)).map(|w| i64::from(w.weight)).sum();
        let minus: i64 = without.into_iter().flatten().filter(|w| self.term_met(&w.pod_affinity_term, namespace, node)).map(|w| i64::from(w.weight)).sum();
        plus - minus
    }
}

/// The namespaces a term looks in: its own list, or the pod's namespace.
fn term_namespaces(term: &PodAffinityTerm, own: &str) -> Vec<String> {
    match &term.namespaces {
        Some(list) if !list.is_empty() => list.clone(),
        _ => vec![own.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use driftless_model::k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};
    use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;

    fn node(name: &str, zone: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("kubernetes.io/hostname".into(), name.into()), ("topology.kubernetes.io/zone".into(), zone.into())])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        }
    }

    fn pod(name: &str, node: Option<&str>, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}}, "spec": spec})).unwrap()
    }

    fn fits(cluster: &Cluster<'_>, incoming: &Pod) -> Vec<String> {
        cluster.nodes.iter().filter(|n| cluster.unfit(incoming, n).is_none()).map(|n| node_name(n).to_owned()).collect()
    }

    #[test]
    fn do_not_schedule_keeps_the_skew_within_max_skew() {
        let nodes = [node("a", "z1"), node("b", "z1"), node("c", "z2")];
        let bound = [pod("w1", Some("a"), json!({})), pod("w2", Some("a"), json!({})), pod("w3", Some("b"), json!({}))];
        let cluster = Cluster { nodes: &nodes, bound: &bound.map(Arc::new) };
        let by_host = json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        // a has 2, b 1, c 0: only c keeps the skew at 1.
        assert_eq!(fits(&cluster, &pod("new", None, by_host)), ["c"]);
        let by_zone = json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        assert_eq!(fits(&cluster, &pod("new", None, by_zone)), ["c"], "z1 has 3, z2 none");
        let loose = json!({"topologySpreadConstraints": [
            {"maxSkew": 3, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        assert_eq!(fits(&cluster, &pod("new", None, loose)), ["a", "b", "c"]);
    }

    #[test]
    fn schedule_anyway_and_the_default_prefer_the_emptiest_domain() {
        let nodes = [node("a", "z1"), node("b", "z1"), node("c", "z2")];
        let bound = [pod("w1", Some("a"), json!({})), pod("w2", Some("a"), json!({})), pod("w3", Some("b"), json!({}))];
        let cluster = Cluster { nodes: &nodes, bound: &bound.map(Arc::new) };
        let soft = json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]});
        let candidates: Vec<&Node> = nodes.iter().collect();
        assert_eq!(cluster.scores(&pod("new", None, soft), &candidates), [0, 50, 100]);
    }

    #[test]
    fn pod_anti_affinity_keeps_replicas_apart_and_affinity_together() {
        let nodes = [node("a", "z1"), node("b", "z1"), node("c", "z2")];
        let apart = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}});
        let bound = [pod("w1", Some("a"), apart.clone())];
        let cluster = Cluster { nodes: &nodes, bound: &bound.map(Arc::new) };
        assert_eq!(fits(&cluster, &pod("w2", None, apart.clone())), ["b", "c"]);
        // A pod without the rule is kept away by w1's own anti-affinity.
        assert_eq!(fits(&cluster, &pod("plain", None, json!({}))), ["b", "c"]);
        let together = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app": "web"}}}]}}});
        let bound = [pod("w1", Some("c"), json!({}))];
        let cluster = Cluster { nodes: &nodes, bound: &bound.map(Arc::new) };
        assert_eq!(fits(&cluster, &pod("w2", None, together.clone())), ["c"]);
        // The first of its group goes anywhere.
        let empty = Cluster { nodes: &nodes, bound: &[] };
        assert_eq!(fits(&empty, &pod("w1", None, together)), ["a", "b", "c"]);
    }
}
