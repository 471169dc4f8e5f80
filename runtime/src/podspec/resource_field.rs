//! The downward API's `resourceFieldRef`: a container's CPU or memory
//! request or limit, as kubelet reports it (`ExtractResourceValueByContainerName`):
//! a limit the container does not set is the node's capacity, the value
//! is divided by `divisor` (default 1) and rounded up.

use driftless_model::Quantity;
use driftless_model::k8s_openapi::api::core::v1 as core;

use super::{NodeSettings, TranslateError};

/// The value of `selector` for the container `default_container` (when the
/// selector names none) of `spec`.
pub(crate) fn value(
    spec: &core::PodSpec,
    default_container: &str,
    selector: &core::ResourceFieldSelector,
    node: &NodeSettings,
) -> Result<String, TranslateError> {
    let name = selector.container_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(default_container);
    let container = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .ok_or_else(|| TranslateError::Config(format!("resourceFieldRef: container {name:?} not found in the pod")))?;
    let resources = container.resources.clone().unwrap_or_default();
    let quantity = |map: &Option<std::collections::BTreeMap<String, driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity>>, key: &str| {
        map.as_ref().and_then(|m| m.get(key)).and_then(|q| q.0.parse::<Quantity>().ok())
    };
    let divisor = match &selector.divisor {
        Some(d) => d.0.parse::<Quantity>().map_err(|e| TranslateError::Refused(format!("resourceFieldRef divisor {:?}: {e}", d.0)))?,
        None => "1".parse::<Quantity>().map_err(|e| TranslateError::Refused(e.to_string()))?,
    };
    let (amount, is_cpu) = match selector.resource.as_str() {
        "limits.cpu" => (quantity(&resources.limits, "cpu").map_or(i128::from(node.cpus) * 1_000_000_000, |q| q.nanos()), true),
        "requests.cpu" => (quantity(&resources.requests, "cpu").map_or(0, |q| q.nanos()), true),
        "limits.memory" => (quantity(&resources.limits, "memory").map_or(i128::from(node.memory) * 1_000_000_000, |q| q.nanos()), false),
        "requests.memory" => (quantity(&resources.requests, "memory").map_or(0, |q| q.nanos()), false),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => {
            let key = "ephemeral-storage";
            let map = if selector.resource.starts_with("limits") { &resources.limits } else { &resources.requests };
            let q = quantity(map, key).ok_or_else(|| {
                TranslateError::Refused(format!(
                    "resourceFieldRef {:?}: not set on container {name:?}, and this node reports no ephemeral storage",
                    selector.resource
                ))
            })?;
            (q.nanos(), false)
        }
        other => return Err(TranslateError::Refused(format!("resourceFieldRef {other:?} is not supported"))),
    };
    // kubelet divides milli-units for CPU and whole units otherwise.
    let (amount, per) = if is_cpu { (div_ceil(amount, 1_000_000), divisor.millis()) } else { (div_ceil(amount, 1_000_000_000), divisor.value()) };
    if per <= 0 {
        return Err(TranslateError::Refused(format!("resourceFieldRef divisor {:?} must be greater than 0", selector.divisor.as_ref().map(|d| d.0.clone()))));
    }
    Ok(div_ceil(amount, per).to_string())
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

    fn spec(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> core::PodSpec {
        let map = |pairs: &[(&str, &str)]| Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), K8sQuantity((*v).to_owned()))).collect());
        core::PodSpec {
            containers: vec![core::Container {
                name: "app".into(),
                resources: Some(core::ResourceRequirements { limits: map(limits), requests: map(requests), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn get(spec: &core::PodSpec, resource: &str, divisor: Option<&str>) -> String {
        let node = NodeSettings { cpus: 4, memory: 8 << 30, ..NodeSettings::default() };
        let selector = core::ResourceFieldSelector { container_name: None, resource: resource.into(), divisor: divisor.map(|d| K8sQuantity(d.into())) };
        value(spec, "app", &selector, &node).unwrap()
    }

    #[test]
    fn values_are_divided_and_rounded_up_and_unset_limits_are_the_nodes() {
        let set = spec(&[("cpu", "500m"), ("memory", "64Mi")], &[("cpu", "250m"), ("memory", "32Mi")]);
        assert_eq!(get(&set, "limits.cpu", None), "1");
        assert_eq!(get(&set, "limits.cpu", Some("1m")), "500");
        assert_eq!(get(&set, "requests.cpu", Some("100m")), "3");
        assert_eq!(get(&set, "limits.memory", None), (64u64 << 20).to_string());
        assert_eq!(get(&set, "requests.memory", Some("1Mi")), "32");
        let unset = spec(&[], &[]);
        assert_eq!(get(&unset, "limits.cpu", None), "4");
        assert_eq!(get(&unset, "limits.memory", Some("1Gi")), "8");
        assert_eq!(get(&unset, "requests.cpu", None), "0");
    }
}
