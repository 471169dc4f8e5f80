//! The defaults the Kubernetes API server fills in, applied to typed objects.
//!
//! Two manifests that differ only in spelled-out defaults (`replicas: 1`,
//! `protocol: TCP`, `cpu: 1000m` against `cpu: "1"`) describe the same object;
//! the plan compares objects after [`apply`] so such differences make no
//! noise, and the daemon stores objects in this form. The values follow the
//! API server's `SetDefaults_*` functions for Kubernetes 1.33, restricted to
//! fields of the supported kinds.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::{Object, Quantity};

/// Fills in every default of `object` in place. Applying it twice changes
/// nothing the second time.
pub fn apply(object: &mut Object) {
    let kind = object.kind();
    if kind.namespaced() {
        let meta = object.metadata_mut();
        if meta.namespace.as_deref().is_none_or(str::is_empty) {
            meta.namespace = Some(crate::DEFAULT_NAMESPACE.to_owned());
        }
    }
    match object {
        Object::Pod(pod) => {
            if let Some(spec) = &mut pod.spec {
                pod_spec(spec);
                requests_from_limits(spec);
            }
        }
        Object::ReplicationController(rc) => {
            if let Some(spec) = &mut rc.spec {
                spec.replicas.get_or_insert(1);
                spec.min_ready_seconds.get_or_insert(0);
                if let Some(template) = &mut spec.template {
                    // An RC without a selector selects its template's labels.
                    if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
                        spec.selector = template.metadata.as_ref().and_then(|m| m.labels.clone());
                    }
                    pod_template(template);
                }
            }
        }
        Object::ReplicaSet(rs) => {
            if let Some(spec) = &mut rs.spec {
                spec.replicas.get_or_insert(1);
                spec.min_ready_seconds.get_or_insert(0);
                if let Some(template) = &mut spec.template {
                    pod_template(template);
                }
            }
        }
        Object::Deployment(deployment) => {
            if let Some(spec) = &mut deployment.spec {
                deployment_spec(spec);
            }
        }
        Object::StatefulSet(sts) => {
            if let Some(spec) = &mut sts.spec {
                stateful_set_spec(spec);
            }
        }
        Object::DaemonSet(set) => {
            if let Some(spec) = &mut set.spec {
                daemon_set_spec(spec);
            }
        }
        Object::Job(job) => {
            if let Some(spec) = &mut job.spec {
                job_spec(spec);
            }
        }
        Object::CronJob(cron) => {
            if let Some(spec) = &mut cron.spec {
                spec.concurrency_policy.get_or_insert_with(|| "Allow".to_owned());
                spec.suspend.get_or_insert(false);
                spec.successful_jobs_history_limit.get_or_insert(3);
                spec.failed_jobs_history_limit.get_or_insert(1);
                if let Some(job) = &mut spec.job_template.spec {
                    job_spec(job);
                }
            }
        }
        Object::Service(service) => {
            if let Some(spec) = &mut service.spec {
                service_spec(spec);
            }
        }
        Object::Secret(secret) => {
            secret.type_.get_or_insert_with(|| "Opaque".to_owned());
            // The API server folds stringData into data on write.
            if let Some(strings) = secret.string_data.take() {
                let data = secret.data.get_or_insert_with(BTreeMap::new);
                for (key, value) in strings {
                    data.insert(key, ByteString(value.into_bytes()));
                }
            }
        }
        Object::PersistentVolumeClaim(pvc) => {
            if let Some(spec) = &mut pvc.spec {
                pvc_spec(spec);
            }
        }
        Object::PersistentVolume(pv) => {
            if let Some(spec) = &mut pv.spec {
                spec.persistent_volume_reclaim_policy.get_or_insert_with(|| "Retain".to_owned());
                spec.volume_mode.get_or_insert_with(|| "Filesystem".to_owned());
                canonical_map(&mut spec.capacity);
            }
        }
        Object::StorageClass(class) => {
            class.reclaim_policy.get_or_insert_with(|| "Delete".to_owned());
            class.volume_binding_mode.get_or_insert_with(|| "Immediate".to_owned());
        }
        Object::HorizontalPodAutoscaler(hpa) => {
            if let Some(spec) = &mut hpa.spec {
                spec.min_replicas.get_or_insert(1);
                // No metrics means 80% average CPU utilization.
                if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
                    spec.metrics = Some(vec![default_cpu_metric()]);
                }
            }
        }
        Object::Namespace(_) | Object::ConfigMap(_) | Object::Endpoints(_) | Object::Ingress(_) => {}
        // Written by the daemon, never declared: nothing to default.
        Object::Node(_) | Object::ControllerRevision(_) | Object::Event(_) | Object::Lease(_) => {}
    }
}

fn default_cpu_metric() -> k8s_openapi::api::autoscaling::v2::MetricSpec {
    use k8s_openapi::api::autoscaling::v2::{MetricSpec, MetricTarget, ResourceMetricSource};
    MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: "cpu".to_owned(),
            target: MetricTarget { type_: "Utilization".to_owned(), average_utilization: Some(80), ..Default::default() },
        }),
        ..Default::default()
    }
}

fn deployment_spec(spec: &mut apps::DeploymentSpec) {
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    spec.min_ready_seconds.get_or_insert(0);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".to_owned());
    if kind == "RollingUpdate" {
        let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
        rolling.max_surge.get_or_insert_with(|| IntOrString::String("25%".to_owned()));
        rolling.max_unavailable.get_or_insert_with(|| IntOrString::String("25%".to_owned()));
    }
    pod_template(&mut spec.template);
}

fn stateful_set_spec(spec: &mut apps::StatefulSetSpec) {
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    spec.min_ready_seconds.get_or_insert(0);
    spec.pod_management_policy.get_or_insert_with(|| "OrderedReady".to_owned());
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".to_owned());
    if kind == "RollingUpdate" {
        let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
        rolling.partition.get_or_insert(0);
    }
    let retention = spec.persistent_volume_claim_retention_policy.get_or_insert_with(Default::default);
    retention.when_deleted.get_or_insert_with(|| "Retain".to_owned());
    retention.when_scaled.get_or_insert_with(|| "Retain".to_owned());
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        if let Some(claim_spec) = &mut claim.spec {
            pvc_spec(claim_spec);
        }
    }
    pod_template(&mut spec.template);
}

fn pvc_spec(spec: &mut core::PersistentVolumeClaimSpec) {
    spec.volume_mode.get_or_insert_with(|| "Filesystem".to_owned());
    if let Some(resources) = &mut spec.resources {
        canonical_map(&mut resources.requests);
        canonical_map(&mut resources.limits);
    }
}

fn service_spec(spec: &mut core::ServiceSpec) {
    let kind = spec.type_.get_or_insert_with(|| "ClusterIP".to_owned()).clone();
    let affinity = spec.session_affinity.get_or_insert_with(|| "None".to_owned());
    if affinity == "ClientIP" {
        let config = spec.session_affinity_config.get_or_insert_with(Default::default);
        config.client_ip.get_or_insert_with(Default::default).timeout_seconds.get_or_insert(10800);
    }
    for port in spec.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".to_owned());
        port.target_port.get_or_insert(IntOrString::Int(port.port));
    }
    if kind == "ExternalName" {
        return;
    }
    spec.internal_traffic_policy.get_or_insert_with(|| "Cluster".to_owned());
    let external_ips = spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty());
    if kind == "NodePort" || kind == "LoadBalancer" || external_ips {
        spec.external_traffic_policy.get_or_insert_with(|| "Cluster".to_owned());
    }
    if kind == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }
}

/// `SetDefaults_DaemonSet`: rolling updates one node at a time.
fn daemon_set_spec(spec: &mut apps::DaemonSetSpec) {
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".to_owned());
    if kind == "RollingUpdate" {
        let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
        rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
        rolling.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.min_ready_seconds.get_or_insert(0);
    pod_template(&mut spec.template);
}

/// `SetDefaults_Job`: one pod to one completion unless told otherwise, six
/// retries, pods replaced once they have failed or are terminating.
fn job_spec(spec: &mut k8s_openapi::api::batch::v1::JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    spec.backoff_limit.get_or_insert(if spec.backoff_limit_per_index.is_some() { i32::MAX } else { 6 });
    spec.completion_mode.get_or_insert_with(|| "NonIndexed".to_owned());
    spec.suspend.get_or_insert(false);
    for pattern in spec.pod_failure_policy.iter_mut().flat_map(|p| p.rules.iter_mut()).flat_map(|r| r.on_pod_conditions.iter_mut().flatten()) {
        if pattern.status.is_empty() {
            pattern.status = "True".to_owned();
        }
    }
    let replacement = if spec.pod_failure_policy.is_some() { "Failed" } else { "TerminatingOrFailed" };
    spec.pod_replacement_policy.get_or_insert_with(|| replacement.to_owned());
    pod_template(&mut spec.template);
}

fn pod_template(template: &mut core::PodTemplateSpec) {
    if let Some(spec) = &mut template.spec {
        pod_spec(spec);
    }
}

/// Pod defaults, shared by bare pods and every workload's template.
pub fn pod_spec(spec: &mut core::PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".to_owned());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".to_owned());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name.get_or_insert_with(|| "default-scheduler".to_owned());
    spec.security_context.get_or_insert_with(Default::default);
    spec.enable_service_links.get_or_insert(true);
    for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
        container(c);
    }
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = &mut volume.config_map {
            cm.default_mode.get_or_insert(0o644);
        }
        if let Some(secret) = &mut volume.secret {
            secret.default_mode.get_or_insert(0o644);
        }
        if let Some(downward) = &mut volume.downward_api {
            downward.default_mode.get_or_insert(0o644);
            for item in downward.items.iter_mut().flatten() {
                if let Some(field) = &mut item.field_ref {
                    field.api_version.get_or_insert_with(|| "v1".to_owned());
                }
            }
        }
        if let Some(projected) = &mut volume.projected {
            projected.default_mode.get_or_insert(0o644);
            for source in projected.sources.iter_mut().flatten() {
                for item in source.downward_api.iter_mut().flat_map(|d| d.items.iter_mut().flatten()) {
                    if let Some(field) = &mut item.field_ref {
                        field.api_version.get_or_insert_with(|| "v1".to_owned());
                    }
                }
            }
        }
        if let Some(dir) = &mut volume.empty_dir
            && let Some(limit) = &mut dir.size_limit
        {
            canonical(limit);
        }
        if let Some(host) = &mut volume.host_path {
            host.type_.get_or_insert_with(String::new);
        }
    }
}

fn container(c: &mut core::Container) {
    c.image_pull_policy.get_or_insert_with(|| default_pull_policy(c.image.as_deref().unwrap_or("")).to_owned());
    c.termination_message_path.get_or_insert_with(|| "/dev/termination-log".to_owned());
    c.termination_message_policy.get_or_insert_with(|| "File".to_owned());
    for port in c.ports.iter_mut().flatten() {
        port.protocol.get_or_insert_with(|| "TCP".to_owned());
    }
    for var in c.env.iter_mut().flatten() {
        if let Some(field) = var.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            field.api_version.get_or_insert_with(|| "v1".to_owned());
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        // The API server treats 0 as unset for these.
        for (field, default) in
            [(&mut probe.timeout_seconds, 1), (&mut probe.period_seconds, 10), (&mut probe.success_threshold, 1), (&mut probe.failure_threshold, 3)]
        {
            if field.unwrap_or(0) == 0 {
                *field = Some(default);
            }
        }
        if let Some(http) = &mut probe.http_get {
            http.scheme.get_or_insert_with(|| "HTTP".to_owned());
            http.path.get_or_insert_with(|| "/".to_owned());
        }
    }
    if let Some(resources) = &mut c.resources {
        canonical_map(&mut resources.limits);
        canonical_map(&mut resources.requests);
    }
}

/// Requests default to limits for every resource with a limit, in Pods
/// only: the API server does not do this to templates (`SetDefaults_Pod`,
/// "not a v1.PodTemplate"), so a template's hash, and whether a change rolls
/// pods, never depend on it.
fn requests_from_limits(spec: &mut core::PodSpec) {
    for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
        let Some(resources) = &mut c.resources else { continue };
        if let Some(limits) = &resources.limits {
            let requests = resources.requests.get_or_insert_with(BTreeMap::new);
            for (name, limit) in limits {
                requests.entry(name.clone()).or_insert_with(|| limit.clone());
            }
        }
    }
}

/// The pull policy Kubernetes picks when a container names none: `Always`
/// for `:latest` or an untagged image, `IfNotPresent` otherwise (a digest
/// counts as a tag).
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    // A tag follows the last ':' that comes after the last '/', so that a
    // registry port (`localhost:5000/app`) is not mistaken for a tag.
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    match last_segment.split_once(':') {
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
        None if digest => "IfNotPresent",
        None => "Always",
    }
}

fn canonical_map(map: &mut Option<BTreeMap<String, K8sQuantity>>) {
    for quantity in map.iter_mut().flat_map(|m| m.values_mut()) {
        canonical(quantity);
    }
}

fn canonical(quantity: &mut K8sQuantity) {
    // Invalid quantities are left as written; validation reports them.
    if let Ok(parsed) = quantity.0.parse::<Quantity>() {
        quantity.0 = parsed.canonical();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(value: serde_json::Value) -> serde_json::Value {
        let mut object = Object::parse(&value).unwrap();
        apply(&mut object);
        let once = object.to_value();
        apply(&mut object);
        assert_eq!(object.to_value(), once, "defaulting must be idempotent");
        once
    }

    #[test]
    fn deployment_defaults() {
        let value = defaulted(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.35",
                                        "ports": [{"containerPort": 80}],
                                        "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}]}}}
        }));
        assert_eq!(value["metadata"]["namespace"], "default");
        assert_eq!(value["spec"]["replicas"], 1);
        assert_eq!(value["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"]["limits"]["cpu"], "1");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        // Templates keep requests as written; only Pods get them from limits.
        assert!(c["resources"].get("requests").is_none(), "{c}");
        assert_eq!(value["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn service_target_port_defaults_to_port() {
        let value = defaulted(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}
        }));
        assert_eq!(value["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(value["spec"]["externalTrafficPolicy"], "Cluster");
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let value = defaulted(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"}
        }));
        assert_eq!(value["data"]["password"], "aHVudGVyMg==");
        assert_eq!(value["type"], "Opaque");
        assert!(value.get("stringData").is_none());
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.35"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/app:v2"), "IfNotPresent");
        assert_eq!(default_pull_policy("app@sha256:abcd"), "IfNotPresent");
    }
}
