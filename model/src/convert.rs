//! Older API versions the API server still serves, read as it reads them:
//! converted to the version Driftless stores and serves (the kind table's).
//!
//! Owns the field mapping only; which versions are accepted at all is the
//! kind table's `ALSO_SERVED` list, and validation of the stored version's
//! fields stays with the schemas and rules.

use serde_json::{Value, json};

use crate::Kind;

/// A field of the older version that cannot be converted, by JSON pointer
/// into the manifest as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    /// Where, in the manifest as written.
    pub pointer: String,
    /// What is wrong, as the API server says it.
    pub message: String,
}

/// Converts `value` in place to the version the kind table stores, when it
/// is written in an older served version; does nothing otherwise.
pub fn to_stored(kind: Kind, value: &mut Value) -> Result<(), ConvertError> {
    let written = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    match (kind, written) {
        (Kind::HorizontalPodAutoscaler, "autoscaling/v1") => autoscaling_v1(value),
        _ => Ok(()),
    }
}

/// The fields of an `autoscaling/v1` HorizontalPodAutoscaler's spec.
const AUTOSCALING_V1_SPEC: &[&str] = &["scaleTargetRef", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"];

/// `autoscaling/v1` to `autoscaling/v2`, as the API server's conversion
/// does: `targetCPUUtilizationPercentage` becomes one CPU `Resource` metric
/// with that average utilization; unset, there are no metrics (and the
/// autoscaler's default of 80% CPU applies to both versions).
fn autoscaling_v1(value: &mut Value) -> Result<(), ConvertError> {
    value["apiVersion"] = json!(Kind::HorizontalPodAutoscaler.api_version());
    let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    // v2's own fields (`metrics`, `behavior`) are unknown to v1: strict
    // reading refuses them rather than letting them through the conversion.
    if let Some(field) = spec.keys().find(|k| !AUTOSCALING_V1_SPEC.contains(&k.as_str())) {
        return Err(ConvertError { pointer: format!("/spec/{field}"), message: format!("unknown field \"{field}\" in autoscaling/v1") });
    }
    let Some(target) = spec.remove("targetCPUUtilizationPercentage") else { return Ok(()) };
    let percent = match &target {
        Value::Null => return Ok(()),
        Value::Number(n) => n.as_i64().filter(|p| (1..=i64::from(i32::MAX)).contains(p)),
        _ => None,
    };
    let Some(percent) = percent else {
        return Err(ConvertError {
            pointer: "/spec/targetCPUUtilizationPercentage".to_owned(),
            message: format!("{target}: must be a whole number greater than 0"),
        });
    };
    spec.insert(
        "metrics".to_owned(),
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}}]),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_autoscaling_v1_target_becomes_a_cpu_utilization_metric() {
        let mut hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "php-apache"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
                     "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50}});
        to_stored(Kind::HorizontalPodAutoscaler, &mut hpa).unwrap();
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"], json!({"type": "Utilization", "averageUtilization": 50}));
        assert!(hpa["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(hpa["spec"]["maxReplicas"], 10);

        let mut bad = json!({"apiVersion": "autoscaling/v1", "spec": {"targetCPUUtilizationPercentage": "50%"}});
        let error = to_stored(Kind::HorizontalPodAutoscaler, &mut bad).unwrap_err();
        assert_eq!(error.pointer, "/spec/targetCPUUtilizationPercentage");

        let mut v2 = json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 3}});
        let before = v2.clone();
        to_stored(Kind::HorizontalPodAutoscaler, &mut v2).unwrap();
        assert_eq!(v2, before);
    }
}
