//! What a pod asks of a node: its CPU and memory requests as the scheduler
//! counts them, which the dashboard shows against each node's allocatable
//! too. One reading for both.

use k8s_openapi::api::core::v1::Pod;

use crate::Quantity;

fn parse(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<Quantity> {
    q.and_then(|q| q.0.parse::<Quantity>().ok())
}

/// What a pod asks for: millicores, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// CPU in millicores.
    pub cpu: i128,
    /// Memory in bytes.
    pub memory: i128,
}

/// A pod's requests as the scheduler counts them: the sum over containers,
/// or the largest init container's if that is more.
pub fn requests(pod: &Pod) -> Requests {
    let Some(spec) = &pod.spec else { return Requests::default() };
    let of = |c: &k8s_openapi::api::core::v1::Container| {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        Requests { cpu: parse(r.and_then(|r| r.get("cpu"))).map_or(0, |q| q.millis()), memory: parse(r.and_then(|r| r.get("memory"))).map_or(0, |q| q.value()) }
    };
    let mut sum = Requests::default();
    for c in &spec.containers {
        let r = of(c);
        sum.cpu += r.cpu;
        sum.memory += r.memory;
    }
    for c in spec.init_containers.iter().flatten() {
        let r = of(c);
        sum.cpu = sum.cpu.max(r.cpu);
        sum.memory = sum.memory.max(r.memory);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_add_up_and_the_largest_init_container_counts_alone() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"spec": {
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}],
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "32Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m", "memory": "16Mi"}}}
        ]}}))
        .unwrap();
        assert_eq!(requests(&pod), Requests { cpu: 1000, memory: 64 << 20 });
    }
}
