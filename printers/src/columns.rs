//! kubectl's columns for each kind, computed from the object's JSON.

use driftless_model::Kind;
use jiff::Timestamp;
use serde_json::Value;

use crate::age;

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `v.pointer(pointer)`, without its allocations: `pointer` copies each
/// token of the path into two new strings to unescape it, 40 to 60
/// allocations for a pod's row, and a Table has a row for every pod.
/// Paths with escapes (`~1`) or through arrays are left to `pointer`.
fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    let Some(path) = pointer.strip_prefix('/').filter(|_| !pointer.contains('~')) else { return v.pointer(pointer) };
    let mut target = v;
    for token in path.split('/') {
        target = match target {
            Value::Object(map) => map.get(token)?,
            Value::Array(_) => return v.pointer(pointer),
            _ => return None,
        };
    }
    Some(target)
}

fn n(v: &Value, pointer: &str) -> i64 {
    at(v, pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(text: String) -> String {
    if text.is_empty() { "<none>".into() } else { text }
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    at(v, pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// Access modes as kubectl abbreviates them (`RWO,ROX`).
pub fn join_modes(modes: &[Value]) -> String {
    modes
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A pod's STATUS column, as kubectl computes it.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(at(pod, "/status/reason"));
    if reason.is_empty() {
        reason = s(at(pod, "/status/phase"));
    }
    let mut running = false;
    for c in arr(pod, "/status/containerStatuses").iter().rev() {
        if let Some(r) = at(c, "/state/waiting/reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            reason = r.to_owned();
        } else if let Some(r) = at(c, "/state/terminated/reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            reason = r.to_owned();
        } else if let Some(t) = at(c, "/state/terminated") {
            reason = match t.get("signal").and_then(Value::as_i64) {
                Some(sig) if sig != 0 => format!("Signal:{sig}"),
                _ => format!("ExitCode:{}", n(t, "/exitCode")),
            };
        } else if at(c, "/state/running").is_some() && c.get("ready").and_then(Value::as_bool) == Some(true) {
            running = true;
        }
    }
    if reason == "Completed" && running {
        let ready = arr(pod, "/status/conditions").iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        reason = if ready { "Running".into() } else { "NotReady".into() };
    }
    if at(pod, "/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    if reason.is_empty() { "Pending".into() } else { reason }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(node) => format!("{}:{node}/{protocol}", n(p, "/port")),
                None => format!("{}/{protocol}", n(p, "/port")),
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn external_ip(svc: &Value) -> String {
    let kind = at(svc, "/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
    let mut ips: Vec<String> = arr(svc, "/spec/externalIPs").iter().filter_map(Value::as_str).map(str::to_owned).collect();
    match kind {
        "ExternalName" => s(at(svc, "/spec/externalName")),
        "LoadBalancer" => {
            ips.extend(
                arr(svc, "/status/loadBalancer/ingress").iter().filter_map(|i| i.get("ip").or(i.get("hostname"))).filter_map(Value::as_str).map(str::to_owned),
            );
            if ips.is_empty() { "<pending>".into() } else { ips.join(",") }
        }
        _ => or_none(ips.join(",")),
    }
}

fn endpoints(ep: &Value) -> String {
    let mut all = Vec::new();
    for subset in arr(ep, "/subsets") {
        let ports: Vec<i64> = arr(subset, "/ports").iter().map(|p| n(p, "/port")).collect();
        for address in arr(subset, "/addresses") {
            let ip = s(address.get("ip"));
            if ports.is_empty() {
                all.push(ip.clone());
            }
            for port in &ports {
                all.push(format!("{ip}:{port}"));
            }
        }
    }
    if all.is_empty() {
        return "<none>".into();
    }
    let more = all.len().saturating_sub(3);
    let shown = all[..all.len().min(3)].join(",");
    if more > 0 { format!("{shown} + {more} more...") } else { shown }
}

fn involved(event: &Value) -> String {
    let o = &event["involvedObject"];
    format!("{}/{}", s(o.get("kind")).to_ascii_lowercase(), s(o.get("name")))
}

fn condition_status(v: &Value, kind: &str) -> Option<String> {
    arr(v, "/status/conditions").iter().find(|c| c["type"] == kind).map(|c| s(c.get("status")))
}

/// The LABELS column (`--show-labels`): `k=v` pairs in key order.
pub fn labels(v: &Value) -> String {
    let labels = at(v, "/metadata/labels").and_then(Value::as_object);
    or_none(labels.map(|m| m.iter().map(|(k, x)| format!("{k}={}", s(Some(x)))).collect::<Vec<_>>().join(",")).unwrap_or_default())
}

/// A Job's STATUS column, as kubectl 1.32 computes it.
fn job_status(v: &Value) -> String {
    let has = |kind: &str| condition_status(v, kind).as_deref() == Some("True");
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if at(v, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    status.to_owned()
}

fn job_completions(v: &Value) -> String {
    let succeeded = n(v, "/status/succeeded");
    match (at(v, "/spec/completions").and_then(Value::as_i64), at(v, "/spec/parallelism").and_then(Value::as_i64)) {
        (Some(completions), _) => format!("{succeeded}/{completions}"),
        (None, Some(parallelism)) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
        _ => format!("{succeeded}/1"),
    }
}

fn job_duration(v: &Value, now: Timestamp) -> String {
    let time = |pointer: &str| at(v, pointer).and_then(Value::as_str).and_then(|t| t.parse::<Timestamp>().ok());
    match (time("/status/startTime"), time("/status/completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => age::human(now.as_second() - start.as_second()),
        (Some(start), Some(end)) => age::human(end.as_second() - start.as_second()),
    }
}

/// The header of `kind`'s table.
pub fn header(kind: Kind, wide: bool) -> Vec<String> {
    let cols: &[&str] = match kind {
        Kind::Pod if wide => &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        Kind::Pod => &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        Kind::Deployment if wide => &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        Kind::Deployment => &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        Kind::ReplicaSet | Kind::ReplicationController if wide => &["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        Kind::ReplicaSet | Kind::ReplicationController => &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        Kind::StatefulSet if wide => &["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
        Kind::StatefulSet => &["NAME", "READY", "AGE"],
        Kind::DaemonSet if wide => {
            &["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
        Kind::DaemonSet => &["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        Kind::CronJob if wide => &["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        Kind::CronJob => &["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
        Kind::Job if wide => &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        Kind::Job => &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        Kind::Service if wide => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
        Kind::Service => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        Kind::Endpoints => &["NAME", "ENDPOINTS", "AGE"],
        Kind::ConfigMap => &["NAME", "DATA", "AGE"],
        Kind::Secret => &["NAME", "TYPE", "DATA", "AGE"],
        Kind::PersistentVolumeClaim => &["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"],
        Kind::PersistentVolume => {
            &["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        }
        Kind::StorageClass => &["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"],
        Kind::Node if wide => &["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        Kind::Node => &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        Kind::Namespace => &["NAME", "STATUS", "AGE"],
        Kind::Event => &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        Kind::HorizontalPodAutoscaler => &["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
        Kind::Ingress => &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        Kind::ControllerRevision => &["NAME", "CONTROLLER", "REVISION", "AGE"],
        Kind::Lease => &["NAME", "HOLDER", "AGE"],
    };
    cols.iter().map(|c| (*c).to_owned()).collect()
}

/// An HPA's TARGETS, as kubectl 1.32 writes them: `cpu: 45%/50%` for
/// each resource metric (`<unknown>` before the first measurement), at
/// most three and then `+ N more...`.
fn hpa_targets(v: &Value) -> String {
    let current = arr(v, "/status/currentMetrics");
    let specs = arr(v, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let mut shown: Vec<String> = Vec::new();
    for (i, metric) in specs.iter().enumerate().take(3) {
        let field = if metric["type"] == "ContainerResource" { "containerResource" } else { "resource" };
        let Some(source) = metric.get(field) else {
            shown.push("<unknown>".into());
            continue;
        };
        let now = current.get(i).and_then(|c| c.get(field)).and_then(|r| r.get("current"));
        let target = &source["target"];
        let (now, wanted) = match target.get("averageUtilization").and_then(Value::as_i64) {
            Some(percent) => (now.and_then(|c| c.get("averageUtilization")).and_then(Value::as_i64).map(|u| format!("{u}%")), format!("{percent}%")),
            None => (now.and_then(|c| c.get("averageValue")).map(|q| s(Some(q))), s(target.get("averageValue"))),
        };
        shown.push(format!("{}: {}/{wanted}", s(source.get("name")), now.unwrap_or_else(|| "<unknown>".into())));
    }
    if specs.len() > 3 {
        shown.push(format!("+ {} more...", specs.len() - 3));
    }
    shown.join(", ")
}

fn containers_and_images(spec: Option<&Value>) -> (String, String) {
    let containers = spec.and_then(|s| s.get("containers")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| s(c.get("name"))).collect();
    let images: Vec<String> = containers.iter().map(|c| s(c.get("image"))).collect();
    (names.join(","), images.join(","))
}

fn selector_text(selector: Option<&Value>) -> String {
    let Some(selector) = selector else { return "<none>".into() };
    let labels = selector.get("matchLabels").unwrap_or(selector);
    let mut parts: Vec<String> = labels.as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(Some(v)))).collect()).unwrap_or_default();
    for expr in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let values: Vec<String> = expr.get("values").and_then(Value::as_array).into_iter().flatten().map(|v| s(Some(v))).collect();
        parts.push(format!("{} {} ({})", s(expr.get("key")), s(expr.get("operator")).to_ascii_lowercase(), values.join(",")));
    }
    or_none(parts.join(","))
}

/// One row of `kind`'s table.
pub fn row(kind: Kind, v: &Value, wide: bool, now: Timestamp) -> Vec<String> {
    let name = s(at(v, "/metadata/name"));
    let created = age::since(at(v, "/metadata/creationTimestamp"), now);
    let mut row: Vec<String> = match kind {
        Kind::Pod => {
            let statuses = arr(v, "/status/containerStatuses");
            let total = arr(v, "/spec/containers").len();
            let ready = statuses.iter().filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true)).count();
            let restarts: i64 = statuses.iter().map(|c| n(c, "/restartCount")).sum();
            let mut row = vec![name, format!("{ready}/{total}"), pod_status(v), restarts.to_string(), created];
            if wide {
                row.push(or_none(s(at(v, "/status/podIP"))));
                row.push(or_none(s(at(v, "/spec/nodeName"))));
                row.push("<none>".into());
                row.push("<none>".into());
            }
            row
        }
        Kind::Deployment => {
            let replicas = n(v, "/spec/replicas");
            let mut row = vec![
                name,
                format!("{}/{replicas}", n(v, "/status/readyReplicas")),
                n(v, "/status/updatedReplicas").to_string(),
                n(v, "/status/availableReplicas").to_string(),
                created,
            ];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/template/spec"));
                row.extend([c, i, selector_text(at(v, "/spec/selector"))]);
            }
            row
        }
        Kind::ReplicaSet | Kind::ReplicationController => {
            let mut row =
                vec![name, n(v, "/spec/replicas").to_string(), n(v, "/status/replicas").to_string(), n(v, "/status/readyReplicas").to_string(), created];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/template/spec"));
                row.extend([c, i, selector_text(at(v, "/spec/selector"))]);
            }
            row
        }
        Kind::StatefulSet => {
            let mut row = vec![name, format!("{}/{}", n(v, "/status/readyReplicas"), n(v, "/spec/replicas")), created];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/template/spec"));
                row.extend([c, i]);
            }
            row
        }
        Kind::DaemonSet => {
            let selector = at(v, "/spec/template/spec/nodeSelector").and_then(Value::as_object);
            let node_selector = selector.map(|m| m.iter().map(|(k, x)| format!("{k}={}", s(Some(x)))).collect::<Vec<_>>().join(",")).unwrap_or_default();
            let mut row = vec![
                name,
                n(v, "/status/desiredNumberScheduled").to_string(),
                n(v, "/status/currentNumberScheduled").to_string(),
                n(v, "/status/numberReady").to_string(),
                n(v, "/status/updatedNumberScheduled").to_string(),
                n(v, "/status/numberAvailable").to_string(),
                node_selector,
                created,
            ];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/template/spec"));
                row.extend([c, i, selector_text(at(v, "/spec/selector"))]);
            }
            row
        }
        Kind::CronJob => {
            let last = at(v, "/status/lastScheduleTime").map_or_else(String::new, |t| age::since(Some(t), now));
            let mut row = vec![
                name,
                s(at(v, "/spec/schedule")),
                s(at(v, "/spec/timeZone")),
                // kubectl's printBoolPtr.
                if at(v, "/spec/suspend").and_then(Value::as_bool).unwrap_or(false) { "True" } else { "False" }.to_owned(),
                arr(v, "/status/active").len().to_string(),
                last,
                created,
            ];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/jobTemplate/spec/template/spec"));
                row.extend([c, i, selector_text(at(v, "/spec/jobTemplate/spec/selector"))]);
            }
            row
        }
        Kind::Job => {
            let mut row = vec![name, job_status(v), job_completions(v), job_duration(v, now), created];
            if wide {
                let (c, i) = containers_and_images(at(v, "/spec/template/spec"));
                row.extend([c, i, selector_text(at(v, "/spec/selector"))]);
            }
            row
        }
        Kind::Service => {
            let cluster_ip = s(at(v, "/spec/clusterIP"));
            let mut row =
                vec![name, s(at(v, "/spec/type")), if cluster_ip.is_empty() { "<none>".into() } else { cluster_ip }, external_ip(v), service_ports(v), created];
            if wide {
                row.push(selector_text(at(v, "/spec/selector")));
            }
            row
        }
        Kind::Endpoints => vec![name, endpoints(v), created],
        Kind::ConfigMap => {
            let count = v.get("data").and_then(Value::as_object).map_or(0, |m| m.len()) + v.get("binaryData").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, count.to_string(), created]
        }
        Kind::Secret => {
            let count = v.get("data").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, s(v.get("type")), count.to_string(), created]
        }
        Kind::PersistentVolumeClaim => vec![
            name,
            s(at(v, "/status/phase")),
            s(at(v, "/spec/volumeName")),
            s(at(v, "/status/capacity/storage")),
            join_modes(arr(v, "/status/accessModes")),
            s(at(v, "/spec/storageClassName")),
            "<unset>".into(),
            created,
        ],
        Kind::PersistentVolume => {
            let claim = at(v, "/spec/claimRef").map(|c| format!("{}/{}", s(c.get("namespace")), s(c.get("name")))).unwrap_or_default();
            vec![
                name,
                s(at(v, "/spec/capacity/storage")),
                join_modes(arr(v, "/spec/accessModes")),
                s(at(v, "/spec/persistentVolumeReclaimPolicy")),
                s(at(v, "/status/phase")),
                claim,
                s(at(v, "/spec/storageClassName")),
                "<unset>".into(),
                String::new(),
                created,
            ]
        }
        Kind::StorageClass => {
            let default = at(v, "/metadata/annotations/storageclass.kubernetes.io~1is-default-class").and_then(Value::as_str) == Some("true");
            vec![
                if default { format!("{name} (default)") } else { name },
                s(v.get("provisioner")),
                s(v.get("reclaimPolicy")),
                s(v.get("volumeBindingMode")),
                v.get("allowVolumeExpansion").and_then(Value::as_bool).unwrap_or(false).to_string(),
                created,
            ]
        }
        Kind::Node => {
            let mut ready = condition_status(v, "Ready").map_or("Unknown".to_owned(), |s| if s == "True" { "Ready".into() } else { "NotReady".into() });
            // kubectl's printer: a cordoned node says so.
            if at(v, "/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                ready.push_str(",SchedulingDisabled");
            }
            let mut row = vec![name, ready, "<none>".into(), created, s(at(v, "/status/nodeInfo/kubeletVersion"))];
            if wide {
                let internal = arr(v, "/status/addresses").iter().find(|a| a["type"] == "InternalIP").map(|a| s(a.get("address"))).unwrap_or_default();
                row.extend([
                    internal,
                    "<none>".into(),
                    s(at(v, "/status/nodeInfo/osImage")),
                    s(at(v, "/status/nodeInfo/kernelVersion")),
                    s(at(v, "/status/nodeInfo/containerRuntimeVersion")),
                ]);
            }
            row
        }
        Kind::Namespace => {
            let phase = s(at(v, "/status/phase"));
            vec![name, if phase.is_empty() { "Active".into() } else { phase }, created]
        }
        Kind::Event => {
            let mut last = age::since(v.get("lastTimestamp"), now);
            let count = n(v, "/count");
            if count > 1 {
                last = format!("{last} (x{count} over {})", age::since(v.get("firstTimestamp"), now));
            }
            vec![last, s(v.get("type")), s(v.get("reason")), involved(v), s(v.get("message"))]
        }
        Kind::HorizontalPodAutoscaler => vec![
            name,
            format!("{}/{}", s(at(v, "/spec/scaleTargetRef/kind")), s(at(v, "/spec/scaleTargetRef/name"))),
            hpa_targets(v),
            n(v, "/spec/minReplicas").to_string(),
            n(v, "/spec/maxReplicas").to_string(),
            n(v, "/status/currentReplicas").to_string(),
            created,
        ],
        Kind::Ingress => {
            let hosts: Vec<String> = arr(v, "/spec/rules").iter().map(|r| r.get("host").and_then(Value::as_str).unwrap_or("*").to_owned()).collect();
            let address: Vec<String> = arr(v, "/status/loadBalancer/ingress").iter().map(|i| s(i.get("ip").or(i.get("hostname")))).collect();
            let ports = if arr(v, "/spec/tls").is_empty() { "80" } else { "80, 443" };
            vec![name, or_none(s(at(v, "/spec/ingressClassName"))), or_none(hosts.join(",")), address.join(","), ports.into(), created]
        }
        Kind::ControllerRevision => {
            let owner = arr(v, "/metadata/ownerReferences")
                .first()
                .map(|o| format!("{}/{}", s(o.get("kind")).to_ascii_lowercase(), s(o.get("name"))))
                .unwrap_or_default();
            vec![name, owner, n(v, "/revision").to_string(), created]
        }
        Kind::Lease => vec![name, s(at(v, "/spec/holderIdentity")), created],
    };
    for cell in &mut row {
        if cell.is_empty() {
            *cell = "<none>".into();
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn at_finds_what_pointer_finds() {
        let v = json!({"a": {"b": [{"c": 1}], "x~y": 2, "p/q": 3, "": {"": 4}}, "s": "t"});
        for path in ["", "/", "/a", "/a/b", "/a/b/0", "/a/b/0/c", "/a/b/01", "/a/b/x", "/a/x~0y", "/a/p~1q", "/a/missing", "/s/t", "a", "/a//", "/a/"] {
            assert_eq!(at(&v, path), v.pointer(path), "{path:?}");
        }
    }

    #[test]
    fn pod_status_follows_kubectl() {
        let waiting = json!({"status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        assert_eq!(pod_status(&waiting), "ImagePullBackOff");
        let running = json!({"status": {"phase": "Running", "containerStatuses": [{"ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod_status(&running), "Running");
        let deleting = json!({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
        let oom = json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}});
        assert_eq!(pod_status(&oom), "OOMKilled");
    }

    #[test]
    fn jobs_show_status_completions_and_duration() {
        let job = json!({"metadata": {"name": "pi"}, "spec": {"completions": 3, "parallelism": 2},
            "status": {"succeeded": 3, "startTime": "2026-12-01T10:00:00Z", "completionTime": "2026-12-01T10:00:42Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        let row = row(Kind::Job, &job, false, Timestamp::now());
        assert_eq!(row[..4], ["pi", "Complete", "3/3", "42s"]);
        let queue = json!({"metadata": {"name": "q"}, "spec": {"parallelism": 3}});
        assert_eq!(row_of(&queue)[..4], ["q", "Running", "0/1 of 3", "<none>"]);
    }

    fn row_of(v: &Value) -> Vec<String> {
        row(Kind::Job, v, false, Timestamp::now())
    }

    #[test]
    fn services_show_ports_and_addresses() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}});
        let row = row(Kind::Service, &svc, false, Timestamp::now());
        assert_eq!(row[..5], ["web", "NodePort", "10.96.0.5", "<none>", "80:30080/TCP"]);
    }

    #[test]
    fn hpa_targets_as_kubectl_writes_them() {
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        let memory = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let hpa = json!({"spec": {"metrics": [cpu, memory]}});
        assert_eq!(hpa_targets(&hpa), "cpu: <unknown>/50%, memory: <unknown>/100Mi");
        let measured = json!({"spec": hpa["spec"], "status": {"currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "45m"}}},
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "12Mi"}}}]}});
        assert_eq!(hpa_targets(&measured), "cpu: 45%/50%, memory: 12Mi/100Mi");
    }
}
