//! Pod specs: containers, ports, environment, resources, probes, volumes.
//! The same rules serve bare pods and every workload's pod template.

use std::collections::{BTreeMap, HashMap, HashSet};

use driftless_model::Quantity;
use driftless_model::k8s_openapi::api::core::v1 as core;
use driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::{int_or_name_port, non_negative, one_of, port_number};
use crate::names;
use crate::{Issues, Ptr};

/// Where a pod spec appears, which changes a few rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// A bare Pod.
    Pod,
    /// The template of a controller that restarts pods forever.
    Template,
    /// The template of a Job: pods that run to completion.
    JobTemplate,
}

/// The volume sources Driftless' runtime can provide.
const SUPPORTED_VOLUMES: &[&str] = &["emptyDir", "hostPath", "configMap", "secret", "persistentVolumeClaim", "downwardAPI", "projected"];

/// Checks a pod spec. `claim_volumes` are volumes a StatefulSet adds from
/// its `volumeClaimTemplates`, which the template may mount by name.
pub(crate) fn pod_spec(spec: &core::PodSpec, at: &Ptr, context: Context, claim_volumes: &[&str], issues: &mut Issues) {
    let mut volumes = volumes(spec.volumes.as_deref().unwrap_or_default(), &at.key("volumes"), issues);
    volumes.extend(claim_volumes.iter().map(|v| (*v).to_owned()));

    if spec.containers.is_empty() {
        issues.error(&at.key("containers"), "must have at least one container");
    }
    let mut container_names = HashSet::new();
    let lists = [("initContainers", spec.init_containers.as_deref().unwrap_or_default()), ("containers", &spec.containers)];
    let mut host_ports = HashMap::new();
    for (list, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            let at = at.key(list).idx(i);
            if !container_names.insert(c.name.as_str()) {
                issues.error(&at.key("name"), format!("duplicate container name {:?}", c.name));
            }
            // Init containers run before the others: their host ports
            // cannot conflict with the app containers'.
            let ports = if list == "containers" { Some(&mut host_ports) } else { None };
            container(c, &at, &volumes, ports, issues);
        }
    }

    match (&spec.restart_policy, context) {
        (Some(policy), _) => {
            one_of(issues, &at.key("restartPolicy"), policy, &["Always", "OnFailure", "Never"]);
            if context == Context::Template && policy != "Always" {
                issues.error(&at.key("restartPolicy"), format!("unsupported value {policy:?}: only \"Always\" is supported in a pod template"));
            }
            if context == Context::JobTemplate && policy == "Always" {
                issues.error(&at.key("restartPolicy"), "unsupported value \"Always\": a Job's pods must be \"OnFailure\" or \"Never\"");
            }
        }
        (None, Context::JobTemplate) => issues.error(at, "missing required field \"restartPolicy\": a Job's pods must be \"OnFailure\" or \"Never\""),
        (None, _) => {}
    }
    if let Some(policy) = &spec.dns_policy {
        one_of(issues, &at.key("dnsPolicy"), policy, &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]);
        let nameservers = spec.dns_config.as_ref().and_then(|c| c.nameservers.as_ref()).is_some_and(|n| !n.is_empty());
        if policy == "None" && !nameservers {
            issues.error(&at.key("dnsConfig"), "must provide at least one DNS nameserver when dnsPolicy is None");
        }
    }
    for (i, server) in spec.dns_config.iter().flat_map(|c| c.nameservers.iter().flatten()).enumerate() {
        if let Err(message) = names::ip(server) {
            issues.error(&at.key("dnsConfig").key("nameservers").idx(i), message);
        }
    }
    if let Some(seconds) = spec.termination_grace_period_seconds {
        non_negative(issues, &at.key("terminationGracePeriodSeconds"), seconds);
    }
    if let Some(seconds) = spec.active_deadline_seconds {
        if context == Context::Template {
            issues.error(&at.key("activeDeadlineSeconds"), "not allowed in a pod template: it would kill every pod the controller starts");
        } else if seconds <= 0 {
            issues.error(&at.key("activeDeadlineSeconds"), format!("{seconds}: must be greater than 0"));
        }
    }
    if let Some(hostname) = &spec.hostname {
        issues.check(&at.key("hostname"), names::dns1123_label(hostname));
    }
    if let Some(subdomain) = &spec.subdomain {
        issues.check(&at.key("subdomain"), names::dns1123_label(subdomain));
    }
    super::meta::labels(spec.node_selector.as_ref(), &at.key("nodeSelector"), issues);
    for (i, toleration) in spec.tolerations.iter().flatten().enumerate() {
        let at = at.key("tolerations").idx(i);
        // An empty operator means Equal, an empty effect all effects.
        if let Some(op) = toleration.operator.as_deref().filter(|o| !o.is_empty()) {
            one_of(issues, &at.key("operator"), op, &["Exists", "Equal"]);
            if op == "Exists" && toleration.value.as_deref().is_some_and(|v| !v.is_empty()) {
                issues.error(&at.key("operator"), "value must be empty when `operator` is 'Exists'");
            }
        }
        if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
            one_of(issues, &at.key("effect"), effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]);
        }
    }
    if let Some(sc) = &spec.security_context {
        let at = at.key("securityContext");
        for (field, value) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group), ("fsGroup", sc.fs_group)] {
            if let Some(v) = value {
                non_negative(issues, &at.key(field), v);
            }
        }
        if let Some(profile) = &sc.seccomp_profile {
            seccomp_profile(profile, &at.key("seccompProfile"), issues);
        }
    }
}

/// The API server's rules for a seccomp profile, then the node's: it has
/// no profile folder, so a `Localhost` profile could never load.
fn seccomp_profile(profile: &core::SeccompProfile, at: &Ptr, issues: &mut Issues) {
    one_of(issues, &at.key("type"), &profile.type_, &["RuntimeDefault", "Unconfined", "Localhost"]);
    match (profile.type_.as_str(), &profile.localhost_profile) {
        ("Localhost", None) => issues.error(&at.key("localhostProfile"), "must be set when seccomp type is Localhost"),
        ("Localhost", Some(_)) => issues.error(
            &at.key("type"),
            "\"Localhost\": not supported by Driftless: its nodes load no profile files (use RuntimeDefault, the default here, or Unconfined)",
        ),
        (_, Some(_)) => issues.error(&at.key("localhostProfile"), "can only be set when seccomp type is Localhost"),
        (_, None) => {}
    }
}

/// Checks the volume list and returns the names it declares.
fn volumes(volumes: &[core::Volume], at: &Ptr, issues: &mut Issues) -> HashSet<String> {
    let mut declared = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let at = at.idx(i);
        issues.check(&at.key("name"), names::dns1123_label(&volume.name));
        if !declared.insert(volume.name.clone()) {
            issues.error(&at.key("name"), format!("duplicate volume name {:?}", volume.name));
        }
        // The set fields of the volume other than its name are its sources.
        let value = serde_json::to_value(volume).unwrap_or_default();
        let sources: Vec<&String> = value.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| *k != "name").collect();
        match sources.as_slice() {
            [] => issues.error(&at, "must specify a volume type"),
            [source] if !SUPPORTED_VOLUMES.contains(&source.as_str()) => {
                issues.error(&at.key(source), format!("volume type {source:?} is not supported by Driftless (supported: {})", SUPPORTED_VOLUMES.join(", ")))
            }
            [_] => {}
            [_, second, ..] => issues.error(&at.key(second), "may not specify more than 1 volume type"),
        }
        if let Some(host) = &volume.host_path {
            host_path(&host.path, &at.key("hostPath").key("path"), issues);
            if let Some(kind) = &host.type_ {
                let allowed = ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"];
                one_of(issues, &at.key("hostPath").key("type"), kind, &allowed);
            }
        }
        if let Some(dir) = &volume.empty_dir {
            if let Some(medium) = &dir.medium
                && !medium.starts_with("HugePages")
            {
                one_of(issues, &at.key("emptyDir").key("medium"), medium, &["", "Memory", "HugePages"]);
            }
            if let Some(limit) = &dir.size_limit {
                quantity(limit, &at.key("emptyDir").key("sizeLimit"), issues);
            }
        }
        let projections = [
            ("configMap", volume.config_map.as_ref().map(|c| (c.items.as_deref(), c.default_mode))),
            ("secret", volume.secret.as_ref().map(|s| (s.items.as_deref(), s.default_mode))),
        ];
        for (source, projection) in projections {
            let Some((items, mode)) = projection else { continue };
            let at = at.key(source);
            if let Some(mode) = mode {
                file_mode(mode, &at.key("defaultMode"), issues);
            }
            key_to_path(items.unwrap_or_default(), &at, issues);
        }
        if let Some(secret) = &volume.secret
            && secret.secret_name.as_deref().is_none_or(str::is_empty)
        {
            issues.error(&at.key("secret").key("secretName"), "missing required field \"secretName\"");
        }
        if let Some(claim) = &volume.persistent_volume_claim {
            issues.check(&at.key("persistentVolumeClaim").key("claimName"), names::dns1123_subdomain(&claim.claim_name));
        }
        if let Some(downward) = &volume.downward_api {
            downward_files(downward.items.as_deref().unwrap_or_default(), &at.key("downwardAPI"), issues);
        }
        if let Some(projected) = &volume.projected {
            projected_volume(projected, &at.key("projected"), issues);
        }
    }
    declared
}

/// The `items` of a configMap or secret volume or projection.
fn key_to_path(items: &[core::KeyToPath], at: &Ptr, issues: &mut Issues) {
    for (j, item) in items.iter().enumerate() {
        let at = at.key("items").idx(j);
        issues.check(&at.key("key"), names::config_key(&item.key));
        issues.check(&at.key("path"), names::relative_path(&item.path));
        if let Some(mode) = item.mode {
            file_mode(mode, &at.key("mode"), issues);
        }
    }
}

/// The `items` of a downwardAPI volume or projection.
fn downward_files(items: &[core::DownwardAPIVolumeFile], at: &Ptr, issues: &mut Issues) {
    for (j, file) in items.iter().enumerate() {
        let at = at.key("items").idx(j);
        issues.check(&at.key("path"), names::relative_path(&file.path));
        if file.field_ref.is_some() == file.resource_field_ref.is_some() {
            issues.error(&at, "must specify exactly one of `fieldRef` and `resourceFieldRef`");
        }
        if let Some(selector) = &file.resource_field_ref {
            let at = at.key("resourceFieldRef");
            if selector.container_name.as_deref().is_none_or(str::is_empty) {
                issues.error(&at, "missing required field \"containerName\": a volume must name the container whose resources it shows");
            }
            one_of(issues, &at.key("resource"), &selector.resource, RESOURCE_FIELDS);
        }
    }
}

/// What a `resourceFieldRef` may show.
const RESOURCE_FIELDS: &[&str] = &["limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage"];

/// A projected volume: the sources the node writes (configMap, secret,
/// downwardAPI), one per entry, with no two files at one path.
fn projected_volume(projected: &core::ProjectedVolumeSource, at: &Ptr, issues: &mut Issues) {
    if let Some(mode) = projected.default_mode {
        file_mode(mode, &at.key("defaultMode"), issues);
    }
    let mut paths: HashMap<String, Ptr> = HashMap::new();
    for (i, source) in projected.sources.iter().flatten().enumerate() {
        let at = at.key("sources").idx(i);
        let value = serde_json::to_value(source).unwrap_or_default();
        let kinds: Vec<&String> = value.as_object().into_iter().flat_map(|o| o.keys()).collect();
        match kinds.as_slice() {
            [] => issues.error(&at, "must specify one of configMap, secret, downwardAPI"),
            [_, second, ..] => issues.error(&at.key(second), "may not specify more than 1 projection type"),
            [_] => {}
        }
        if source.service_account_token.is_some() {
            issues.error(
                &at.key("serviceAccountToken"),
                "not supported by Driftless yet: service account tokens need identities the API does not issue yet; mount a Secret instead",
            );
        }
        if source.cluster_trust_bundle.is_some() {
            issues.error(&at.key("clusterTrustBundle"), "not supported by Driftless: it has no ClusterTrustBundle objects");
        }
        let mut file = |path: &str, at: Ptr, issues: &mut Issues| {
            if paths.insert(path.to_owned(), at.clone()).is_some() {
                issues.error(&at, format!("{path:?}: conflicting duplicate paths"));
            }
        };
        if let Some(cm) = &source.config_map {
            key_to_path(cm.items.as_deref().unwrap_or_default(), &at.key("configMap"), issues);
            for (j, item) in cm.items.iter().flatten().enumerate() {
                file(&item.path, at.key("configMap").key("items").idx(j).key("path"), issues);
            }
        }
        if let Some(secret) = &source.secret {
            key_to_path(secret.items.as_deref().unwrap_or_default(), &at.key("secret"), issues);
            for (j, item) in secret.items.iter().flatten().enumerate() {
                file(&item.path, at.key("secret").key("items").idx(j).key("path"), issues);
            }
        }
        if let Some(downward) = &source.downward_api {
            downward_files(downward.items.as_deref().unwrap_or_default(), &at.key("downwardAPI"), issues);
            for (j, item) in downward.items.iter().flatten().enumerate() {
                file(&item.path, at.key("downwardAPI").key("items").idx(j).key("path"), issues);
            }
        }
    }
}

/// A hostPath must be given and must not climb with `..` (Kubernetes does
/// not require it to be absolute: Windows paths are valid).
pub(crate) fn host_path(path: &str, at: &Ptr, issues: &mut Issues) {
    if path.is_empty() {
        issues.error(at, "missing required field \"path\"");
    } else if path.split(['/', '\\']).any(|part| part == "..") {
        issues.error(at, format!("{path:?}: must not contain '..'"));
    }
}

fn file_mode(mode: i32, at: &Ptr, issues: &mut Issues) {
    if !(0..=0o777).contains(&mode) {
        issues.error(at, format!("{mode}: must be a number between 0 and 0777 (octal), both inclusive"));
    }
}

fn container(
    c: &core::Container,
    at: &Ptr,
    volumes: &HashSet<String>,
    mut host_ports: Option<&mut HashMap<(String, i32, String), String>>,
    issues: &mut Issues,
) {
    issues.check(&at.key("name"), names::dns1123_label(&c.name));
    match c.image.as_deref() {
        None | Some("") => issues.error(at, "missing required field \"image\""),
        Some(image) if image.trim() != image || image.contains(char::is_whitespace) => {
            issues.error(&at.key("image"), format!("{image:?}: must not contain whitespace"))
        }
        Some(_) => {}
    }
    if let Some(policy) = &c.image_pull_policy {
        one_of(issues, &at.key("imagePullPolicy"), policy, &["Always", "IfNotPresent", "Never"]);
    }

    let mut port_names = HashSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let at = at.key("ports").idx(i);
        port_number(issues, &at.key("containerPort"), port.container_port);
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
        one_of(issues, &at.key("protocol"), &protocol, &["TCP", "UDP", "SCTP"]);
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            port_number(issues, &at.key("hostPort"), host_port);
            let host_ip = port.host_ip.clone().unwrap_or_default();
            let previous = host_ports.as_deref_mut().and_then(|seen| seen.insert((host_ip, host_port, protocol.clone()), c.name.clone()));
            if let Some(other) = previous {
                issues.error(&at.key("hostPort"), format!("duplicate hostPort {host_port}/{protocol} (also used by container {other:?})"));
            }
        }
        if let Some(name) = &port.name {
            issues.check(&at.key("name"), names::iana_svc_name(name));
            if !port_names.insert(name.as_str()) {
                issues.error(&at.key("name"), format!("duplicate port name {name:?}"));
            }
        }
    }

    for (i, var) in c.env.iter().flatten().enumerate() {
        let at = at.key("env").idx(i);
        issues.check(&at.key("name"), names::env_var_name(&var.name));
        if let Some(from) = &var.value_from {
            if var.value.as_deref().is_some_and(|v| !v.is_empty()) {
                issues.error(&at.key("valueFrom"), "may not be specified when `value` is not empty");
            }
            let sources = [from.config_map_key_ref.is_some(), from.secret_key_ref.is_some(), from.field_ref.is_some(), from.resource_field_ref.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                issues.error(&at.key("valueFrom"), "must specify exactly one of `configMapKeyRef`, `secretKeyRef`, `fieldRef`, `resourceFieldRef`");
            }
            if let Some(r) = &from.config_map_key_ref {
                issues.check(&at.key("valueFrom").key("configMapKeyRef").key("key"), names::config_key(&r.key));
            }
            if let Some(r) = &from.secret_key_ref {
                issues.check(&at.key("valueFrom").key("secretKeyRef").key("key"), names::config_key(&r.key));
            }
            if let Some(r) = &from.resource_field_ref {
                one_of(issues, &at.key("valueFrom").key("resourceFieldRef").key("resource"), &r.resource, RESOURCE_FIELDS);
            }
        }
    }
    for (i, from) in c.env_from.iter().flatten().enumerate() {
        if from.config_map_ref.is_some() == from.secret_ref.is_some() {
            issues.error(&at.key("envFrom").idx(i), "must specify exactly one of `configMapRef` and `secretRef`");
        }
    }

    if let Some(resources) = &c.resources {
        resource_requirements(resources, &at.key("resources"), issues);
    }

    let ports: Vec<&str> = c.ports.iter().flatten().filter_map(|p| p.name.as_deref()).collect();
    let probes = [("livenessProbe", &c.liveness_probe), ("readinessProbe", &c.readiness_probe), ("startupProbe", &c.startup_probe)];
    for (field, probe) in probes {
        if let Some(probe) = probe {
            self::probe(probe, field, &ports, &at.key(field), issues);
        }
    }

    let mut mount_paths = HashSet::new();
    for (i, mount) in c.volume_mounts.iter().flatten().enumerate() {
        let at = at.key("volumeMounts").idx(i);
        if !volumes.contains(&mount.name) {
            issues.error(&at.key("name"), format!("volume {:?} not found in the pod's volumes", mount.name));
        }
        if mount.mount_path.is_empty() {
            issues.error(&at.key("mountPath"), "missing required field \"mountPath\"");
        } else if !mount_paths.insert(mount.mount_path.as_str()) {
            issues.error(&at.key("mountPath"), format!("{:?}: must be unique", mount.mount_path));
        }
        if let Some(sub_path) = &mount.sub_path {
            issues.check(&at.key("subPath"), names::relative_path(sub_path));
        }
    }
    if let Some(sc) = &c.security_context {
        let at = at.key("securityContext");
        for (field, value) in [("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)] {
            if let Some(v) = value {
                non_negative(issues, &at.key(field), v);
            }
        }
        if let Some(profile) = &sc.seccomp_profile {
            seccomp_profile(profile, &at.key("seccompProfile"), issues);
        }
    }
}

fn probe(probe: &core::Probe, field: &str, ports: &[&str], at: &Ptr, issues: &mut Issues) {
    let handlers = [probe.exec.is_some(), probe.http_get.is_some(), probe.tcp_socket.is_some(), probe.grpc.is_some()];
    match handlers.iter().filter(|h| **h).count() {
        0 => issues.error(at, "must specify a handler type (exec, httpGet, tcpSocket or grpc)"),
        1 => {}
        _ => issues.error(at, "may not specify more than 1 handler type"),
    }
    let port = probe.http_get.as_ref().map(|h| (&h.port, "httpGet")).or(probe.tcp_socket.as_ref().map(|t| (&t.port, "tcpSocket")));
    if let Some((port, handler)) = port {
        let at = at.key(handler).key("port");
        int_or_name_port(issues, &at, port);
        use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        if let IntOrString::String(name) = port
            && !ports.contains(&name.as_str())
        {
            issues.warn(&at, format!("no container port is named {name:?}: the probe will fail"));
        }
    }
    if let Some(http) = &probe.http_get
        && let Some(scheme) = &http.scheme
    {
        one_of(issues, &at.key("httpGet").key("scheme"), scheme, &["HTTP", "HTTPS"]);
    }
    // Zero is allowed everywhere: the API server defaults it (period 10,
    // timeout 1, thresholds 1 and 3).
    for (name, value) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("periodSeconds", probe.period_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
        ("terminationGracePeriodSeconds", probe.termination_grace_period_seconds.map(|v| v as i32)),
    ] {
        if let Some(v) = value.filter(|v| *v < 0) {
            issues.error(&at.key(name), format!("{v}: must be greater than or equal to 0"));
        }
    }
    if field != "readinessProbe"
        && let Some(v) = probe.success_threshold.filter(|v| *v > 1)
    {
        issues.error(&at.key("successThreshold"), format!("{v}: must be 1"));
    }
}

fn resource_requirements(resources: &core::ResourceRequirements, at: &Ptr, issues: &mut Issues) {
    let parsed = |map: &Option<BTreeMap<String, K8sQuantity>>, field: &str, issues: &mut Issues| {
        let mut out = BTreeMap::new();
        for (name, value) in map.iter().flatten() {
            let at = at.key(field).key(name);
            resource_name(name, &at, issues);
            if let Some(q) = quantity(value, &at, issues) {
                out.insert(name.clone(), q);
            }
        }
        out
    };
    let limits = parsed(&resources.limits, "limits", issues);
    let requests = parsed(&resources.requests, "requests", issues);
    for (name, request) in &requests {
        if let Some(limit) = limits.get(name).filter(|limit| request > *limit) {
            issues.error(&at.key("requests").key(name), format!("{request}: must be less than or equal to {name} limit of {limit}"));
        }
    }
}

fn resource_name(name: &str, at: &Ptr, issues: &mut Issues) {
    let standard = ["cpu", "memory", "ephemeral-storage", "storage"];
    if standard.contains(&name) || name.starts_with("hugepages-") || name.contains('/') {
        if name.contains('/') {
            issues.check(at, names::qualified_name(name));
        }
        return;
    }
    issues.error(at, format!("{name:?}: must be a standard resource type (cpu, memory, ephemeral-storage, hugepages-<size>) or fully qualified"));
}

/// Parses a quantity and rejects negative values; `None` when unusable.
pub(crate) fn quantity(value: &K8sQuantity, at: &Ptr, issues: &mut Issues) -> Option<Quantity> {
    match value.0.parse::<Quantity>() {
        Ok(q) if q.nanos() < 0 => {
            issues.error(at, format!("{:?}: must be greater than or equal to 0", value.0));
            None
        }
        Ok(q) => Some(q),
        Err(e) => {
            issues.error(at, format!("{:?}: {e}", value.0));
            None
        }
    }
}
