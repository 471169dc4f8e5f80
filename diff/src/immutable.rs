//! Fields that cannot change in place, per kind, as the API server's
//! update validation decides (`ValidateXUpdate` in Kubernetes 1.33), and
//! what Driftless does instead: refuse the commit (the default, so nothing
//! running is harmed by a change Kubernetes would refuse too) or, where it
//! deliberately differs, replace the object (documented in
//! ARCHITECTURE.md).
//!
//! Works on normalized values (defaults filled, allocated fields carried
//! over), so a field the manifest leaves to its default or to an allocator
//! never reads as changed.

use driftless_model::{Kind, ObjectRef, PERSISTENT_VOLUME_SETTINGS, Quantity, field_path};
use serde::Serialize;
use serde_json::Value;

/// A change the API server would refuse, and that Driftless refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The object.
    #[serde(serialize_with = "display")]
    pub object: ObjectRef,
    /// The field, as a JSON pointer into the object (for finding its line).
    pub pointer: String,
    /// The API server's words.
    pub message: String,
}

fn display<S: serde::Serializer>(object: &ObjectRef, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(object)
}

impl Refusal {
    /// The field in dotted form (`spec.selector`).
    pub fn field(&self) -> String {
        field_path(&self.pointer)
    }
}

/// `Deployment/web: spec.selector: field is immutable`.
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.object.kind_name(), self.field(), self.message)
    }
}

/// What an update of one object must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It can be made in place.
    InPlace,
    /// Driftless deletes the object and creates it again, for this reason.
    Replace(String),
    /// The API server would refuse it.
    Refuse(Vec<(String, String)>),
}

/// The fields of a StatefulSet's spec that may change
/// (`ValidateStatefulSetUpdate`).
const STATEFULSET_MUTABLE: &[&str] =
    &["replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

/// The fields of a Job's spec that may change (`ValidateJobSpecUpdate`;
/// `completions` only with `parallelism` in an elastic Indexed Job, which
/// Driftless treats as a new run as well).
const JOB_MUTABLE: &[&str] = &["parallelism", "activeDeadlineSeconds", "backoffLimit", "suspend", "ttlSecondsAfterFinished"];

const IMMUTABLE: &str = "field is immutable";
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

/// What changing `before` into `after` (both normalized) must be.
pub(crate) fn verdict(kind: Kind, before: &Value, after: &Value) -> Verdict {
    let changed = |pointer: &str| before.pointer(pointer) != after.pointer(pointer);
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut refuse = |pointer: &str, message: &str| refused.push((pointer.to_owned(), message.to_owned()));
    match kind {
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet if changed("/spec/selector") => refuse("/spec/selector", IMMUTABLE),
        Kind::StatefulSet => {
            for key in changed_keys(before.get("spec"), after.get("spec")) {
                if !STATEFULSET_MUTABLE.contains(&key.as_str()) {
                    refuse(
                        &format!("/spec/{key}"),
                        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', \
                         'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                    );
                }
            }
        }
        Kind::PersistentVolumeClaim => {
            let without_size = |value: &Value| {
                let mut spec = value.get("spec").cloned().unwrap_or_default();
                if let Some(requests) = spec.pointer_mut("/resources/requests").and_then(Value::as_object_mut) {
                    requests.remove("storage");
                }
                if let Some(map) = spec.as_object_mut() {
                    map.remove("volumeAttributesClassName");
                }
                spec
            };
            let (old, new) = (without_size(before), without_size(after));
            for key in changed_keys(Some(&old), Some(&new)) {
                refuse(&format!("/spec/{key}"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims");
            }
            let size = |value: &Value| value.pointer("/spec/resources/requests/storage").and_then(Value::as_str).and_then(|s| s.parse::<Quantity>().ok());
            if let (Some(old), Some(new)) = (size(before), size(after))
                && new < old
            {
                refuse("/spec/resources/requests/storage", "field can not be less than previous value");
            }
        }
        Kind::PersistentVolume => {
            let source = |value: &Value| -> Value {
                let spec = value.get("spec").and_then(Value::as_object).cloned().unwrap_or_default();
                Value::Object(spec.into_iter().filter(|(k, _)| !PERSISTENT_VOLUME_SETTINGS.contains(&k.as_str())).collect())
            };
            let (old, new) = (source(before), source(after));
            if old != new {
                // Point at the source as the manifest now writes it.
                let first = |v: &Value| v.as_object().and_then(|m| m.keys().next().cloned());
                let key = first(&new).or_else(|| first(&old)).unwrap_or_default();
                refuse(&format!("/spec/{key}"), "spec.persistentvolumesource is immutable after creation");
            }
            if changed("/spec/volumeMode") {
                refuse("/spec/volumeMode", IMMUTABLE);
            }
            // Setting node affinity where there was none is allowed.
            if before.pointer("/spec/nodeAffinity").is_some() && changed("/spec/nodeAffinity") {
                refuse("/spec/nodeAffinity", IMMUTABLE);
            }
        }
        Kind::StorageClass => {
            for (field, message) in [
                ("parameters", "updates to parameters are forbidden."),
                ("provisioner", "updates to provisioner are forbidden."),
                ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
                ("volumeBindingMode", IMMUTABLE),
            ] {
                if changed(&format!("/{field}")) {
                    refuse(&format!("/{field}"), message);
                }
            }
        }
        Kind::ConfigMap | Kind::Secret => {
            if before.get("immutable") == Some(&Value::Bool(true)) {
                if changed("/immutable") {
                    refuse("/immutable", IMMUTABLE_WHEN_SET);
                }
                for field in ["data", "binaryData"] {
                    if changed(&format!("/{field}")) {
                        refuse(&format!("/{field}"), IMMUTABLE_WHEN_SET);
                    }
                }
            }
            if kind == Kind::Secret && changed("/type") {
                refuse("/type", IMMUTABLE);
            }
        }
        Kind::Service => {
            // Unset means "allocate one": the live object has the address
            // the allocator chose, a revision does not, so only a change
            // that is one whatever was allocated replaces: to or from
            // headless, or to an address named in the manifest.
            let address = |value: &Value| match value.pointer("/spec/clusterIP").and_then(Value::as_str) {
                None | Some("") => ClusterIp::Allocated,
                Some("None") => ClusterIp::Headless,
                Some(ip) => ClusterIp::Named(ip.to_owned()),
            };
            let external = after.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
            let (old, new) = (address(before), address(after));
            let replaces = match (&old, &new) {
                // Becoming ExternalName clears the address (allowed).
                _ if external => false,
                (ClusterIp::Headless, ClusterIp::Headless) => false,
                (ClusterIp::Headless, _) | (_, ClusterIp::Headless) => true,
                (ClusterIp::Named(a), ClusterIp::Named(b)) => a != b,
                (ClusterIp::Allocated, ClusterIp::Named(_)) => true,
                (_, ClusterIp::Allocated) => false,
            };
            if replaces {
                return Verdict::Replace(format!(
                    "spec.clusterIP cannot change in place ({} → {}): the Service is deleted and created again",
                    old.describe(),
                    new.describe()
                ));
            }
        }
        Kind::Job => {
            // The API server refuses changes to a Job's template and run
            // settings; Driftless runs the new spec as a new Job instead.
            let fixed: Vec<String> = changed_keys(before.get("spec"), after.get("spec")).into_iter().filter(|k| !JOB_MUTABLE.contains(&k.as_str())).collect();
            if !fixed.is_empty() {
                let fields: Vec<String> = fixed.iter().map(|k| format!("spec.{k}")).collect();
                return Verdict::Replace(format!("a Job's {} cannot change in place: the Job is deleted and runs again", fields.join(", ")));
            }
        }
        Kind::Pod if before.get("spec") != after.get("spec") => {
            return Verdict::Replace("a pod's spec cannot change in place: the pod is deleted and created again".to_owned());
        }
        _ => {}
    }
    if refused.is_empty() { Verdict::InPlace } else { Verdict::Refuse(refused) }
}

/// A Service's cluster address, as a manifest or the store has it.
enum ClusterIp {
    /// Unset: the allocator picks one.
    Allocated,
    /// `None`.
    Headless,
    /// This address.
    Named(String),
}

impl ClusterIp {
    fn describe(&self) -> String {
        match self {
            ClusterIp::Allocated => "an allocated address".to_owned(),
            ClusterIp::Headless => "None".to_owned(),
            ClusterIp::Named(ip) => ip.clone(),
        }
    }
}

/// The keys of two maps whose values differ, in order.
fn changed_keys(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = before.and_then(Value::as_object).unwrap_or(&empty);
    let new = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(kind: Kind, before: Value, after: Value) -> Vec<String> {
        match verdict(kind, &before, &after) {
            Verdict::Refuse(fields) => fields.into_iter().map(|(pointer, _)| pointer).collect(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn selectors_are_immutable() {
        let before = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1}});
        let after = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}, "replicas": 1}});
        assert_eq!(refused(Kind::Deployment, before.clone(), after), ["/spec/selector"]);
        let scaled = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 3}});
        assert_eq!(verdict(Kind::Deployment, &before, &scaled), Verdict::InPlace);
    }

    #[test]
    fn a_jobs_template_change_is_a_new_run_and_its_limits_change_in_place() {
        let before = json!({"spec": {"parallelism": 1, "backoffLimit": 6, "template": {"spec": {"containers": [{"image": "a"}]}}}});
        let limits = json!({"spec": {"parallelism": 2, "backoffLimit": 3, "template": {"spec": {"containers": [{"image": "a"}]}}}});
        assert_eq!(verdict(Kind::Job, &before, &limits), Verdict::InPlace);
        let image = json!({"spec": {"parallelism": 1, "backoffLimit": 6, "template": {"spec": {"containers": [{"image": "b"}]}}}});
        match verdict(Kind::Job, &before, &image) {
            Verdict::Replace(reason) => assert!(reason.contains("spec.template"), "{reason}"),
            other => panic!("expected a replace, got {other:?}"),
        }
    }

    #[test]
    fn statefulsets_change_only_what_kubernetes_allows() {
        let before = json!({"spec": {"serviceName": "db", "replicas": 1, "template": {"a": 1}}});
        let after = json!({"spec": {"serviceName": "db2", "replicas": 2, "template": {"a": 2}, "podManagementPolicy": "Parallel"}});
        assert_eq!(refused(Kind::StatefulSet, before, after), ["/spec/podManagementPolicy", "/spec/serviceName"]);
    }

    #[test]
    fn claims_may_only_grow() {
        let claim = |size: &str, mode: &str| json!({"spec": {"accessModes": [mode], "resources": {"requests": {"storage": size}}}});
        assert_eq!(verdict(Kind::PersistentVolumeClaim, &claim("1Gi", "ReadWriteOnce"), &claim("2Gi", "ReadWriteOnce")), Verdict::InPlace);
        assert_eq!(refused(Kind::PersistentVolumeClaim, claim("2Gi", "ReadWriteOnce"), claim("1Gi", "ReadWriteOnce")), ["/spec/resources/requests/storage"]);
        assert_eq!(refused(Kind::PersistentVolumeClaim, claim("1Gi", "ReadWriteOnce"), claim("1Gi", "ReadWriteMany")), ["/spec/accessModes"]);
    }

    #[test]
    fn volumes_keep_their_source() {
        let pv = |path: &str, policy: &str| json!({"spec": {"hostPath": {"path": path}, "persistentVolumeReclaimPolicy": policy}});
        assert_eq!(verdict(Kind::PersistentVolume, &pv("/a", "Retain"), &pv("/a", "Delete")), Verdict::InPlace);
        assert_eq!(refused(Kind::PersistentVolume, pv("/a", "Retain"), pv("/b", "Retain")), ["/spec/hostPath"]);
    }

    #[test]
    fn storage_classes_keep_parameters_and_provisioner() {
        let sc = |p: &str, expand: bool| json!({"provisioner": p, "parameters": {"x": "1"}, "allowVolumeExpansion": expand});
        assert_eq!(verdict(Kind::StorageClass, &sc("a", false), &sc("a", true)), Verdict::InPlace);
        assert_eq!(refused(Kind::StorageClass, sc("a", false), sc("b", false)), ["/provisioner"]);
    }

    #[test]
    fn immutable_config_stays_so() {
        let cm = |v: &str, immutable: Option<bool>| json!({"data": {"k": v}, "immutable": immutable});
        assert_eq!(verdict(Kind::ConfigMap, &cm("a", None), &cm("b", None)), Verdict::InPlace);
        assert_eq!(refused(Kind::ConfigMap, cm("a", Some(true)), cm("b", Some(true))), ["/data"]);
        assert_eq!(refused(Kind::ConfigMap, cm("a", Some(true)), cm("a", Some(false))), ["/immutable"]);
    }

    #[test]
    fn pods_and_cluster_ips_are_replaced() {
        let pod = |image: &str| json!({"metadata": {"labels": {"a": image}}, "spec": {"containers": [{"image": image}]}});
        assert!(matches!(verdict(Kind::Pod, &pod("a"), &pod("b")), Verdict::Replace(_)));
        let svc = |ip: &str| json!({"spec": {"clusterIP": ip}});
        assert!(matches!(verdict(Kind::Service, &svc("10.96.0.7"), &svc("None")), Verdict::Replace(_)));
        assert_eq!(verdict(Kind::Service, &svc("10.96.0.7"), &svc("10.96.0.7")), Verdict::InPlace);
        // A revision has no allocated address; becoming headless replaces
        // whatever was allocated.
        assert!(matches!(verdict(Kind::Service, &json!({"spec": {}}), &svc("None")), Verdict::Replace(_)));
        let external = json!({"spec": {"type": "ExternalName", "externalName": "example.org"}});
        assert_eq!(verdict(Kind::Service, &svc("10.96.0.7"), &external), Verdict::InPlace);
    }
}
