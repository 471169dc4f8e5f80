//! The semantic rules the API server applies to one object, beyond its
//! schema: name formats, selectors that match their templates, port ranges,
//! unique names, fields required by other fields.
//!
//! Each module checks one area and reports into [`Issues`] with a pointer to
//! the field. Rules read typed objects: a value that reached them has passed
//! its schema.

mod autoscaling;
mod config;
mod ingress;
mod meta;
mod pod;
mod selector;
mod service;
mod storage;
mod workloads;

use driftless_model::{Kind, Object};
use serde_json::Value;

use crate::{Issues, Ptr};

/// Checks that need the raw value, before it is read into a typed object
/// (whose reader would fail with a less precise message).
pub fn check_raw(kind: Kind, value: &Value, issues: &mut Issues) {
    if kind == Kind::Secret {
        config::secret_base64(value, issues);
    }
}

/// Rewrites a raw value the way the API server's decoding would before any
/// check: today, line breaks inside Secret base64 values.
pub fn normalize_raw(kind: Kind, value: &mut Value) {
    if kind == Kind::Secret {
        config::unwrap_secret_base64(value);
    }
}

/// Runs every rule that applies to `object`.
pub fn check(object: &Object, issues: &mut Issues) {
    meta::object_meta(object, issues);
    let spec = Ptr::root().key("spec");
    match object {
        Object::Namespace(_) => {}
        Object::Pod(pod) => {
            if let Some(s) = required(pod.spec.as_ref(), &Ptr::root(), "spec", issues) {
                pod::pod_spec(s, &spec, pod::Context::Pod, &[], issues);
            }
        }
        Object::ReplicationController(rc) => workloads::replication_controller(rc, issues),
        Object::ReplicaSet(rs) => workloads::replica_set(rs, issues),
        Object::Deployment(d) => workloads::deployment(d, issues),
        Object::StatefulSet(s) => workloads::stateful_set(s, issues),
        Object::Job(j) => workloads::job(j, issues),
        Object::CronJob(c) => workloads::cron_job(c, issues),
        Object::DaemonSet(d) => workloads::daemon_set(d, issues),
        Object::Service(s) => service::service(s, issues),
        Object::Endpoints(e) => service::endpoints(e, issues),
        Object::ConfigMap(c) => config::config_map(c, issues),
        Object::Secret(s) => config::secret(s, issues),
        Object::PersistentVolume(pv) => storage::persistent_volume(pv, issues),
        Object::PersistentVolumeClaim(pvc) => {
            if let Some(s) = required(pvc.spec.as_ref(), &Ptr::root(), "spec", issues) {
                storage::claim_spec(s, &spec, issues);
            }
        }
        Object::StorageClass(sc) => storage::storage_class(sc, issues),
        Object::HorizontalPodAutoscaler(h) => autoscaling::hpa(h, issues),
        Object::Ingress(i) => ingress::ingress(i, issues),
        // The kind check refuses these before any rule runs.
        Object::Node(_) | Object::ControllerRevision(_) | Object::Event(_) | Object::Lease(_) => {}
    }
}

/// The value of a required field, or `None` after reporting it missing at
/// its parent.
pub(crate) fn required<'a, T>(value: Option<&'a T>, parent: &Ptr, field: &str, issues: &mut Issues) -> Option<&'a T> {
    if value.is_none() {
        issues.error(parent, format!("missing required field {field:?}"));
    }
    value
}

/// Reports `value` when it is not one of `allowed`.
pub(crate) fn one_of(issues: &mut Issues, at: &Ptr, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        let list: Vec<_> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        issues.error(at, format!("unsupported value {value:?}: supported values: {}", list.join(", ")));
    }
}

/// Reports a negative number.
pub(crate) fn non_negative(issues: &mut Issues, at: &Ptr, value: i64) {
    if value < 0 {
        issues.error(at, format!("{value}: must be greater than or equal to 0"));
    }
}

/// Reports a port outside 1-65535.
pub(crate) fn port_number(issues: &mut Issues, at: &Ptr, port: i32) {
    if !(1..=65535).contains(&port) {
        issues.error(at, format!("{port}: must be between 1 and 65535, inclusive"));
    }
}

/// Reports an int-or-string port (`targetPort`, probe ports) that is
/// neither a valid number nor a valid port name.
pub(crate) fn int_or_name_port(issues: &mut Issues, at: &Ptr, port: &driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) {
    use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => port_number(issues, at, *n),
        IntOrString::String(name) => issues.check(at, crate::names::iana_svc_name(name)),
    }
}
