//! The scheduler's filters and scores: which nodes can run a pod, and
//! which of those suits it best. Pure functions of the pod, the node and
//! the pods already bound there.

use std::collections::BTreeMap;

use driftless_model::Quantity;
use driftless_model::k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint};

fn parse(q: Option<&driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<Quantity> {
    q.and_then(|q| q.0.parse::<Quantity>().ok())
}

pub use driftless_model::requests::{Requests, requests};

/// What a node offers: millicores, bytes, pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allocatable {
    /// CPU in millicores.
    pub cpu: i128,
    /// Memory in bytes.
    pub memory: i128,
    /// Pods.
    pub pods: i128,
}

/// A node's allocatable resources.
pub fn allocatable(node: &Node) -> Allocatable {
    let a = node.status.as_ref().and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    Allocatable {
        cpu: parse(a.and_then(|a| a.get("cpu"))).map_or(0, |q| q.millis()),
        memory: parse(a.and_then(|a| a.get("memory"))).map_or(0, |q| q.value()),
        pods: parse(a.and_then(|a| a.get("pods"))).map_or(110, |q| q.value()),
    }
}

/// Why a node cannot run a pod, in the words of the scheduler's message
/// (`0/1 nodes are available: 1 Insufficient cpu.`).
pub fn unfit(pod: &Pod, node: &Node, on_node: &[&Pod]) -> Option<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return Some("node(s) were not ready".into());
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        return Some("node(s) were unschedulable".into());
    }
    if let Some(reason) = placement_unfit(&spec, node) {
        return Some(reason);
    }
    let have = allocatable(node);
    let want = requests(pod);
    let used = on_node.iter().map(|p| requests(p)).fold(Requests::default(), |a, b| Requests { cpu: a.cpu + b.cpu, memory: a.memory + b.memory });
    if i128::try_from(on_node.len()).unwrap_or(i128::MAX) + 1 > have.pods {
        return Some("Too many pods".into());
    }
    if want.cpu > 0 && used.cpu + want.cpu > have.cpu {
        return Some("Insufficient cpu".into());
    }
    if want.memory > 0 && used.memory + want.memory > have.memory {
        return Some("Insufficient memory".into());
    }
    let ports = host_ports(pod);
    if !ports.is_empty() && on_node.iter().any(|other| host_ports(other).iter().any(|p| ports.iter().any(|q| ports_conflict(p, q)))) {
        return Some("node(s) didn't have free ports for the requested pod ports".into());
    }
    None
}

/// Why a node's taints, labels or name rule out a pod with `spec` (its
/// tolerations, node selector and required node affinity), whatever the
/// node's resources: what the DaemonSet controller asks of every node.
pub fn placement_unfit(spec: &PodSpec, node: &Node) -> Option<String> {
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    for taint in node.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten() {
        if (taint.effect == "NoSchedule" || taint.effect == "NoExecute") && !tolerated(taint, &tolerations) {
            return Some(format!("node(s) had untolerated taint {{{}: {}}}", taint.key, taint.value.as_deref().unwrap_or("")));
        }
    }
    affinity_unfit(spec, node)
}

/// Why a node's labels or name rule out a pod with `spec` (its node
/// selector and required node affinity).
pub fn affinity_unfit(spec: &PodSpec, node: &Node) -> Option<String> {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let required = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    if let Some(required) = required {
        let name = node.metadata.name.clone().unwrap_or_default();
        if !required.node_selector_terms.iter().any(|term| term_matches(term, &labels, &name)) {
            return Some("node(s) didn't match Pod's node affinity/selector".into());
        }
    }
    None
}

fn tolerated(taint: &Taint, tolerations: &[driftless_model::k8s_openapi::api::core::v1::Toleration]) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// Whether `toleration` tolerates `taint` (Kubernetes' rule: an empty key
/// with `Exists` tolerates everything, an empty effect every effect).
pub(crate) fn tolerates(toleration: &driftless_model::k8s_openapi::api::core::v1::Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().is_none_or(|k| k.is_empty()) || toleration.key.as_deref() == Some(taint.key.as_str());
    let value = match toleration.operator.as_deref() {
        Some("Exists") => true,
        _ => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    };
    effect && key && value
}

fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = term.match_expressions.iter().flatten().all(|e| requirement(e, labels.get(&e.key).map(String::as_str)));
    let fields = term.match_fields.iter().flatten().all(|e| e.key == "metadata.name" && requirement(e, Some(name)));
    let empty = term.match_expressions.as_ref().is_none_or(Vec::is_empty) && term.match_fields.as_ref().is_none_or(Vec::is_empty);
    !empty && exprs && fields
}

fn requirement(e: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = e.values.clone().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match e.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b),
        "Lt" => matches!((value.and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b),
        _ => false,
    }
}

/// `(hostIP, protocol, hostPort)` of every container port with a host port.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            Some((p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()), p.protocol.clone().unwrap_or_else(|| "TCP".into()), port))
        })
        .collect()
}

fn ports_conflict(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.1 == b.1 && a.2 == b.2 && (a.0 == b.0 || a.0 == "0.0.0.0" || b.0 == "0.0.0.0")
}

/// A node's score for a pod by its resources, 0 to 100, higher is
/// better: the free share of CPU and memory after placing it (least
/// allocated). Spreading and pod affinity score beside it (`spread.rs`).
pub fn score(pod: &Pod, node: &Node, on_node: &[&Pod]) -> i64 {
    let have = allocatable(node);
    let want = requests(pod);
    let used = on_node.iter().map(|p| requests(p)).fold(want, |a, b| Requests { cpu: a.cpu + b.cpu, memory: a.memory + b.memory });
    let free = |have: i128, used: i128| if have <= 0 { 0 } else { ((have - used).max(0) * 100 / have) as i64 };
    (free(have.cpu, used.cpu) + free(have.memory, used.memory)) / 2
}

#[cfg(test)]
mod tests {
    use driftless_model::k8s_openapi::api::core::v1::{
        Container, ContainerPort, NodeCondition, NodeSpec, NodeStatus, PodSpec, ResourceRequirements, Toleration,
    };
    use driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(cpu: &str, memory: &str) -> Node {
        Node {
            metadata: ObjectMeta { name: Some("n1".into()), labels: Some(BTreeMap::from([("disk".into(), "ssd".into())])), ..Default::default() },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([("cpu".into(), Q(cpu.into())), ("memory".into(), Q(memory.into())), ("pods".into(), Q("3".into()))])),
                conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        }
    }

    fn pod(cpu: &str, host_port: Option<i32>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements { requests: Some(BTreeMap::from([("cpu".into(), Q(cpu.into()))])), ..Default::default() }),
                    ports: host_port.map(|p| vec![ContainerPort { container_port: 80, host_port: Some(p), ..Default::default() }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resources_ports_selectors_and_taints_filter() {
        let n = node("2", "1Gi");
        assert_eq!(unfit(&pod("1500m", None), &n, &[]), None);
        let big = pod("1500m", None);
        assert_eq!(unfit(&pod("600m", None), &n, &[&big]).as_deref(), Some("Insufficient cpu"));
        let a = pod("1m", Some(8080));
        assert!(unfit(&pod("1m", Some(8080)), &n, &[&a]).unwrap().contains("free ports"));
        assert_eq!(unfit(&pod("1m", Some(8081)), &n, &[&a]), None);
        let (x, y, z) = (pod("1m", None), pod("1m", None), pod("1m", None));
        assert_eq!(unfit(&pod("1m", None), &n, &[&x, &y, &z]).as_deref(), Some("Too many pods"));

        let mut picky = pod("1m", None);
        picky.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([("disk".into(), "hdd".into())]));
        assert!(unfit(&picky, &n, &[]).unwrap().contains("selector"));

        let mut tainted = node("2", "1Gi");
        tainted.spec.as_mut().unwrap().taints =
            Some(vec![Taint { key: "dedicated".into(), value: Some("db".into()), effect: "NoSchedule".into(), ..Default::default() }]);
        assert!(unfit(&pod("1m", None), &tainted, &[]).unwrap().contains("untolerated taint"));
        let mut tolerant = pod("1m", None);
        tolerant.spec.as_mut().unwrap().tolerations =
            Some(vec![Toleration { key: Some("dedicated".into()), operator: Some("Exists".into()), ..Default::default() }]);
        assert_eq!(unfit(&tolerant, &tainted, &[]), None);
    }

    #[test]
    fn less_loaded_nodes_score_higher() {
        let n = node("2", "1Gi");
        let busy = pod("1500m", None);
        assert!(score(&pod("100m", None), &n, &[]) > score(&pod("100m", None), &n, &[&busy]));
    }
}
