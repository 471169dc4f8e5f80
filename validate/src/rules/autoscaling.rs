//! HorizontalPodAutoscalers.

use driftless_model::k8s_openapi::api::autoscaling::v2 as autoscaling;

use super::{one_of, required};
use crate::names;
use crate::{Issues, Ptr};

pub(crate) fn hpa(hpa: &autoscaling::HorizontalPodAutoscaler, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(hpa.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    let target = &spec.scale_target_ref;
    let target_at = at.key("scaleTargetRef");
    if target.kind.is_empty() {
        issues.error(&target_at, "missing required field \"kind\"");
    }
    if target.name.is_empty() {
        issues.error(&target_at, "missing required field \"name\"");
    } else {
        issues.check(&target_at.key("name"), names::dns1123_subdomain(&target.name));
    }
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        issues.error(&at.key("minReplicas"), format!("{min}: must be greater than or equal to 1"));
    }
    if spec.max_replicas < 1 {
        issues.error(&at.key("maxReplicas"), format!("{}: must be greater than 0", spec.max_replicas));
    } else if spec.max_replicas < min {
        issues.error(&at.key("maxReplicas"), format!("{}: must be greater than or equal to `minReplicas` ({min})", spec.max_replicas));
    }
    for (i, metric) in spec.metrics.iter().flatten().enumerate() {
        let at = at.key("metrics").idx(i);
        one_of(issues, &at.key("type"), &metric.type_, &["Resource", "ContainerResource", "Pods", "Object", "External"]);
        let field = match metric.type_.as_str() {
            "Resource" => metric.resource.is_some(),
            "ContainerResource" => metric.container_resource.is_some(),
            "Pods" => metric.pods.is_some(),
            "Object" => metric.object.is_some(),
            "External" => metric.external.is_some(),
            _ => true,
        };
        if !field {
            issues.error(&at, format!("must populate information for the given metric source type {:?}", metric.type_));
        }
        // The node serves resource metrics only (metrics.k8s.io); an HPA
        // on a metric nobody serves would never scale, so it is refused.
        if matches!(metric.type_.as_str(), "Pods" | "Object" | "External") {
            issues.error(
                &at.key("type"),
                format!(
                    "{:?} metrics are not served by Driftless (no custom or external metrics API): use Resource or ContainerResource (cpu, memory)",
                    metric.type_
                ),
            );
        }
        let resource_name = metric
            .resource
            .as_ref()
            .map(|r| (r.name.as_str(), "resource"))
            .or(metric.container_resource.as_ref().map(|r| (r.name.as_str(), "containerResource")));
        if let Some((name, field)) = resource_name.filter(|(name, _)| !matches!(*name, "cpu" | "memory")) {
            issues.error(&at.key(field).key("name"), format!("{name:?}: Driftless measures \"cpu\" and \"memory\" only"));
        }
        if let Some(resource) = &metric.resource {
            let target_type = resource.target.type_.as_str();
            // A resource metric is a per-pod figure: `Value` is for object
            // and external metrics (the API server refuses it here too).
            one_of(issues, &at.key("resource").key("target").key("type"), target_type, &["Utilization", "AverageValue"]);
            if let Some(u) = resource.target.average_utilization.filter(|u| *u < 1) {
                issues.error(&at.key("resource").key("target").key("averageUtilization"), format!("{u}: must be greater than 0"));
            }
        }
    }
}
