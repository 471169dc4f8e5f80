//! `driftless describe`: one object in detail, as kubectl describes it,
//! with its events.

use std::fmt::Write;
use std::process::ExitCode;

use driftless_model::Kind;
use serde_json::Value;

use super::get::{client_error, form_query, kinds};
use crate::CommandError;
use crate::cli::DescribeArgs;
use crate::connect::{block_on, client};
use crate::print::{age, table};

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "<none>".into(),
        Some(other) => other.to_string(),
    }
}

fn map_lines(v: Option<&Value>, sep: &str) -> String {
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m.iter().map(|(k, v)| format!("{k}{sep}{}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join("\n              "),
        _ => "<none>".into(),
    }
}

/// Splits `kind/name` or takes both parts.
pub(crate) fn target(resource: &str, name: Option<&str>) -> Result<(Kind, String), CommandError> {
    let (kind, name) = match (resource.split_once('/'), name) {
        (Some((kind, name)), None) => (kind, name.to_owned()),
        (None, Some(name)) => (resource, name.to_owned()),
        _ => return Err(CommandError::Usage(format!("name the object as KIND/NAME or KIND NAME, not {resource:?}"))),
    };
    let resource = *kinds(kind)?.first().ok_or_else(|| CommandError::Usage(format!("unknown kind {kind:?}")))?;
    Ok((resource, name))
}

/// Runs `describe`: one object (`describe pod web-1`, `pod/web-1`), or
/// every object of the kind, or those the label selector picks
/// (`describe pods`, `describe pods -l app=web`), as kubectl does.
pub fn run(args: &DescribeArgs) -> Result<ExitCode, CommandError> {
    let named = args.resource.contains('/') || args.name.is_some();
    if named && args.selector.is_some() {
        return Err(CommandError::Usage("name objects or select them with -l, not both".into()));
    }
    block_on(async {
        let client = client(&args.connect);
        let (resource, names) = if named {
            let (resource, name) = target(&args.resource, args.name.as_deref())?;
            (resource, vec![name])
        } else {
            let resource = *kinds(&args.resource)?.first().ok_or_else(|| CommandError::Usage(format!("unknown kind {:?}", args.resource)))?;
            let query = form_query(&[("labelSelector", args.selector.as_deref())]);
            let list = client.get(&format!("{}{query}", resource.list_path(Some(&args.namespace)))).await.map_err(client_error)?;
            let names: Vec<String> =
                list["items"].as_array().into_iter().flatten().filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned)).collect();
            if names.is_empty() {
                eprintln!("No resources found in {} namespace.", args.namespace);
                return Ok(ExitCode::SUCCESS);
            }
            (resource, names)
        };
        let mut first = true;
        for name in &names {
            if !first {
                println!();
            }
            first = false;
            print!("{}", describe(&client, resource, &args.namespace, name).await?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One object's description, with its events.
async fn describe(client: &driftless_api::Client, resource: Kind, namespace: &str, name: &str) -> Result<String, CommandError> {
    {
        let name = name.to_owned();
        let object = client.get(&resource.object_path(namespace, &name)).await.map_err(client_error)?;
        let now = jiff::Timestamp::now();
        let mut out = String::new();
        let meta = &object["metadata"];
        let _ = writeln!(out, "Name:         {}", s(meta.get("name")));
        if resource.namespaced() {
            let _ = writeln!(out, "Namespace:    {}", s(meta.get("namespace")));
        }
        let _ = writeln!(out, "Labels:       {}", map_lines(meta.get("labels"), "="));
        let _ = writeln!(out, "Annotations:  {}", map_lines(meta.get("annotations"), ": "));
        let _ = writeln!(out, "CreationTimestamp:  {}", s(meta.get("creationTimestamp")));
        if let Some(owner) = meta.get("ownerReferences").and_then(Value::as_array).and_then(|o| o.first()) {
            let _ = writeln!(out, "Controlled By:  {}/{}", s(owner.get("kind")), s(owner.get("name")));
        }
        match resource.name() {
            "Deployment" => deployment(client, &object, &mut out).await?,
            "Pod" => pod(&object, &mut out),
            "HorizontalPodAutoscaler" => autoscaler(&object, &mut out),
            "Endpoints" => endpoints(&object, &mut out),
            "PersistentVolume" => persistent_volume(&object, &mut out),
            "PersistentVolumeClaim" => {
                let pods = client.get(&Kind::Pod.list_path(Some(namespace))).await.map_err(client_error)?;
                claim(&object, &pods, &mut out);
            }
            "Service" => {
                let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("default");
                let endpoints = client.get(&Kind::Endpoints.object_path(namespace, &name)).await.ok();
                service(&object, endpoints.as_ref(), &mut out);
            }
            _ => generic(&object, &mut out),
        }
        let uid = meta.get("uid").and_then(Value::as_str);
        let namespace = if resource.namespaced() { namespace } else { "default" };
        let field = format!("involvedObject.kind={},involvedObject.name={name}", resource.name());
        let path = format!("/api/v1/namespaces/{namespace}/events{}", form_query(&[("fieldSelector", Some(&field))]));
        let events = client.get(&path).await.map_err(client_error)?;
        let mut events: Vec<Value> = events["items"].as_array().cloned().unwrap_or_default();
        events.retain(|e| uid.is_none_or(|uid| e.pointer("/involvedObject/uid").and_then(Value::as_str) == Some(uid)));
        events.sort_by(|a, b| a["lastTimestamp"].as_str().cmp(&b["lastTimestamp"].as_str()));
        if events.is_empty() {
            out.push_str("Events:       <none>\n");
        } else {
            out.push_str("Events:\n");
            let header: Vec<String> = ["Type", "Reason", "Age", "From", "Message"].map(String::from).to_vec();
            let dashes: Vec<String> = ["----", "------", "----", "----", "-------"].map(String::from).to_vec();
            let mut rows = vec![dashes];
            for e in &events {
                let mut when = age::since(e.get("lastTimestamp"), now);
                let count = e.get("count").and_then(Value::as_i64).unwrap_or(1);
                if count > 1 {
                    when = format!("{when} (x{count} over {})", age::since(e.get("firstTimestamp"), now));
                }
                rows.push(vec![s(e.get("type")), s(e.get("reason")), when, s(e.pointer("/source/component")), s(e.get("message"))]);
            }
            for line in table::render(&header, &rows).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        Ok(out)
    }
}

fn conditions(object: &Value, out: &mut String) {
    let Some(conditions) = object.pointer("/status/conditions").and_then(Value::as_array) else { return };
    out.push_str("Conditions:\n");
    let header: Vec<String> = ["Type", "Status", "Reason"].map(String::from).to_vec();
    let mut rows = vec![["----", "------", "------"].map(String::from).to_vec()];
    for c in conditions {
        rows.push(vec![s(c.get("type")), s(c.get("status")), s(c.get("reason"))]);
    }
    for line in table::render(&header, &rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn containers(spec: Option<&Value>, statuses: Option<&Value>, out: &mut String) {
    out.push_str("Containers:\n");
    for c in spec.and_then(|s| s.get("containers")).and_then(Value::as_array).into_iter().flatten() {
        let name = s(c.get("name"));
        let _ = writeln!(out, "  {name}:");
        let _ = writeln!(out, "    Image:      {}", s(c.get("image")));
        let ports: Vec<String> =
            c.get("ports").and_then(Value::as_array).into_iter().flatten().map(|p| format!("{}/{}", s(p.get("containerPort")), s(p.get("protocol")))).collect();
        let _ = writeln!(out, "    Port:       {}", if ports.is_empty() { "<none>".into() } else { ports.join(", ") });
        if let Some(command) = c.get("command").and_then(Value::as_array) {
            let _ = writeln!(out, "    Command:    {}", command.iter().map(|a| s(Some(a))).collect::<Vec<_>>().join(" "));
        }
        let status = statuses.and_then(Value::as_array).and_then(|ss| ss.iter().find(|x| x["name"] == name.as_str()));
        if let Some(st) = status {
            let state = st.get("state").and_then(Value::as_object).and_then(|m| m.iter().next());
            if let Some((kind, detail)) = state {
                let mut kind = kind.clone();
                if let Some(first) = kind.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                let _ = writeln!(out, "    State:      {kind}");
                if let Some(reason) = detail.get("reason") {
                    let _ = writeln!(out, "      Reason:   {}", s(Some(reason)));
                }
                if let Some(message) = detail.get("message") {
                    let _ = writeln!(out, "      Message:  {}", s(Some(message)));
                }
                if let Some(started) = detail.get("startedAt") {
                    let _ = writeln!(out, "      Started:  {}", s(Some(started)));
                }
            }
            if let Some(last) = st.pointer("/lastState/terminated") {
                let _ = writeln!(out, "    Last State: Terminated\n      Reason:   {}\n      Exit Code: {}", s(last.get("reason")), s(last.get("exitCode")));
            }
            let _ = writeln!(out, "    Ready:          {}", s(st.get("ready")));
            let _ = writeln!(out, "    Restart Count:  {}", s(st.get("restartCount")));
        }
    }
}

/// kubectl's Service layout: selector, type, addresses, then each port
/// with its target, node port and endpoints.
fn service(object: &Value, endpoints: Option<&Value>, out: &mut String) {
    let spec = &object["spec"];
    let _ = writeln!(out, "Selector:     {}", map_lines(spec.get("selector"), "=").replace("\n              ", ","));
    let _ = writeln!(out, "Type:         {}", s(spec.get("type")));
    let families: Vec<String> = spec.get("ipFamilies").and_then(Value::as_array).into_iter().flatten().map(|f| s(Some(f))).collect();
    let _ = writeln!(out, "IP Family Policy:  {}", s(spec.get("ipFamilyPolicy")));
    let _ = writeln!(out, "IP Families:  {}", if families.is_empty() { "<none>".into() } else { families.join(",") });
    let _ = writeln!(out, "IP:           {}", s(spec.get("clusterIP")));
    let ips: Vec<String> = spec.get("clusterIPs").and_then(Value::as_array).into_iter().flatten().map(|f| s(Some(f))).collect();
    let _ = writeln!(out, "IPs:          {}", if ips.is_empty() { "<none>".into() } else { ips.join(",") });
    if let Some(name) = spec.get("externalName") {
        let _ = writeln!(out, "External Name:  {}", s(Some(name)));
    }
    let ingress: Vec<String> =
        object.pointer("/status/loadBalancer/ingress").and_then(Value::as_array).into_iter().flatten().map(|i| s(i.get("ip").or(i.get("hostname")))).collect();
    if !ingress.is_empty() {
        let _ = writeln!(out, "LoadBalancer Ingress:  {}", ingress.join(", "));
    }
    for port in spec.get("ports").and_then(Value::as_array).into_iter().flatten() {
        let name = port.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or("<unset>");
        let protocol = s(port.get("protocol"));
        let _ = writeln!(out, "Port:         {name}  {}/{protocol}", s(port.get("port")));
        let target = match port.get("targetPort") {
            Some(Value::String(named)) => named.clone(),
            Some(other) => other.to_string(),
            None => s(port.get("port")),
        };
        let _ = writeln!(out, "TargetPort:   {target}/{protocol}");
        if let Some(node_port) = port.get("nodePort") {
            let _ = writeln!(out, "NodePort:     {name}  {}/{protocol}", s(Some(node_port)));
        }
        let _ = writeln!(out, "Endpoints:    {}", endpoint_list(endpoints, port.get("name").and_then(Value::as_str)));
    }
    let _ = writeln!(out, "Session Affinity:  {}", s(spec.get("sessionAffinity")));
    if let Some(policy) = spec.get("externalTrafficPolicy") {
        let _ = writeln!(out, "External Traffic Policy:  {}", s(Some(policy)));
    }
    let _ = writeln!(out, "Internal Traffic Policy:  {}", s(spec.get("internalTrafficPolicy")));
}

/// The ready `ip:port`s of the Endpoints' port named `port` (any port for
/// an unnamed one), comma-separated as kubectl prints them.
fn endpoint_list(endpoints: Option<&Value>, port: Option<&str>) -> String {
    let mut out = Vec::new();
    for subset in endpoints.and_then(|e| e.get("subsets")).and_then(Value::as_array).into_iter().flatten() {
        let ports = subset.get("ports").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(number) = ports.iter().find(|p| p.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) == port).and_then(|p| p.get("port")) else {
            continue;
        };
        for address in subset.get("addresses").and_then(Value::as_array).into_iter().flatten() {
            out.push(format!("{}:{number}", s(address.get("ip"))));
        }
    }
    if out.is_empty() { "<none>".into() } else { out.join(",") }
}

/// kubectl's Endpoints layout: each subset's addresses and ports.
fn endpoints(object: &Value, out: &mut String) {
    out.push_str("Subsets:\n");
    for subset in object.get("subsets").and_then(Value::as_array).into_iter().flatten() {
        let ips = |field: &str| {
            let list: Vec<String> = subset.get(field).and_then(Value::as_array).into_iter().flatten().map(|a| s(a.get("ip"))).collect();
            if list.is_empty() { "<none>".to_owned() } else { list.join(",") }
        };
        let _ = writeln!(out, "  Addresses:          {}", ips("addresses"));
        let _ = writeln!(out, "  NotReadyAddresses:  {}", ips("notReadyAddresses"));
        out.push_str("  Ports:\n");
        let header: Vec<String> = ["Name", "Port", "Protocol"].map(String::from).to_vec();
        let mut rows = vec![["----", "----", "--------"].map(String::from).to_vec()];
        for port in subset.get("ports").and_then(Value::as_array).into_iter().flatten() {
            let name = port.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or("<unset>").to_owned();
            rows.push(vec![name, s(port.get("port")), s(port.get("protocol"))]);
        }
        for line in table::render(&header, &rows).lines() {
            let _ = writeln!(out, "    {line}");
        }
        out.push('\n');
    }
}

fn modes(object: &Value, pointer: &str) -> String {
    crate::print::columns::join_modes(object.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default())
}

/// kubectl's PersistentVolume layout.
fn persistent_volume(object: &Value, out: &mut String) {
    let spec = &object["spec"];
    let claim = spec.get("claimRef").map(|c| format!("{}/{}", s(c.get("namespace")), s(c.get("name")))).unwrap_or_default();
    let _ = writeln!(out, "StorageClass:    {}", s(spec.get("storageClassName")));
    let _ = writeln!(out, "Status:          {}", s(object.pointer("/status/phase")));
    let _ = writeln!(out, "Claim:           {claim}");
    let _ = writeln!(out, "Reclaim Policy:  {}", s(spec.get("persistentVolumeReclaimPolicy")));
    let _ = writeln!(out, "Access Modes:    {}", modes(object, "/spec/accessModes"));
    let _ = writeln!(out, "VolumeMode:      {}", s(spec.get("volumeMode")));
    let _ = writeln!(out, "Capacity:        {}", s(spec.pointer("/capacity/storage")));
    let affinity = spec.pointer("/nodeAffinity/required/nodeSelectorTerms").and_then(Value::as_array);
    match affinity {
        Some(terms) => {
            out.push_str("Node Affinity:\n  Required Terms:\n");
            for term in terms {
                for e in term.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
                    let values: Vec<String> = e.get("values").and_then(Value::as_array).into_iter().flatten().map(|v| s(Some(v))).collect();
                    let _ = writeln!(out, "    Term 0:        {} {} [{}]", s(e.get("key")), s(e.get("operator")).to_lowercase(), values.join(", "));
                }
            }
        }
        None => out.push_str("Node Affinity:   <none>\n"),
    }
    out.push_str("Source:\n");
    if let Some(host) = spec.get("hostPath") {
        out.push_str("    Type:          HostPath (bare host directory volume)\n");
        let _ = writeln!(out, "    Path:          {}", s(host.get("path")));
        let _ = writeln!(out, "    HostPathType:  {}", host.get("type").and_then(Value::as_str).unwrap_or(""));
    } else if let Some(local) = spec.get("local") {
        out.push_str("    Type:  LocalVolume (a persistent volume backed by local storage on a node)\n");
        let _ = writeln!(out, "    Path:  {}", s(local.get("path")));
    }
}

/// kubectl's PersistentVolumeClaim layout, with the pods that use it.
fn claim(object: &Value, pods: &Value, out: &mut String) {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let _ = writeln!(out, "StorageClass:  {}", s(object.pointer("/spec/storageClassName")));
    let _ = writeln!(out, "Status:        {}", s(object.pointer("/status/phase")));
    let _ = writeln!(out, "Volume:        {}", object.pointer("/spec/volumeName").and_then(Value::as_str).unwrap_or(""));
    let _ = writeln!(out, "Capacity:      {}", object.pointer("/status/capacity/storage").and_then(Value::as_str).unwrap_or(""));
    let _ = writeln!(out, "Access Modes:  {}", modes(object, "/status/accessModes"));
    let _ = writeln!(out, "VolumeMode:    {}", s(object.pointer("/spec/volumeMode")));
    let users: Vec<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p.pointer("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|v| v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str) == Some(name))
        })
        .map(|p| s(p.pointer("/metadata/name")))
        .collect();
    let _ = writeln!(out, "Used By:       {}", if users.is_empty() { "<none>".to_owned() } else { users.join("\n               ") });
}

fn pod(object: &Value, out: &mut String) {
    let _ = writeln!(out, "Node:         {}", s(object.pointer("/spec/nodeName")));
    let _ = writeln!(out, "Start Time:   {}", s(object.pointer("/status/startTime")));
    let _ = writeln!(out, "Status:       {}", crate::print::columns::pod_status(object));
    let _ = writeln!(out, "IP:           {}", s(object.pointer("/status/podIP")));
    containers(object.get("spec"), object.pointer("/status/containerStatuses"), out);
    conditions(object, out);
    let _ = writeln!(out, "QoS Class:    {}", s(object.pointer("/status/qosClass")));
}

async fn deployment(client: &driftless_api::Client, object: &Value, out: &mut String) -> Result<(), CommandError> {
    let n = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let _ = writeln!(out, "Selector:     {}", map_lines(object.pointer("/spec/selector/matchLabels"), "="));
    let _ = writeln!(
        out,
        "Replicas:     {} desired | {} updated | {} total | {} available | {} unavailable",
        n("/spec/replicas"),
        n("/status/updatedReplicas"),
        n("/status/replicas"),
        n("/status/availableReplicas"),
        n("/status/unavailableReplicas")
    );
    let _ = writeln!(out, "StrategyType: {}", s(object.pointer("/spec/strategy/type")));
    let _ = writeln!(out, "MinReadySeconds:  {}", n("/spec/minReadySeconds"));
    if let Some(r) = object.pointer("/spec/strategy/rollingUpdate") {
        let _ = writeln!(
            out,
            "RollingUpdateStrategy:  {} max unavailable, {} max surge",
            s(r.get("maxUnavailable")).trim_matches('"'),
            s(r.get("maxSurge")).trim_matches('"')
        );
    }
    if object.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        out.push_str("Paused:       true\n");
    }
    out.push_str("Pod Template:\n");
    let _ = writeln!(out, "  Labels:     {}", map_lines(object.pointer("/spec/template/metadata/labels"), "="));
    containers(object.pointer("/spec/template/spec"), None, out);
    conditions(object, out);
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
    let uid = object.pointer("/metadata/uid").cloned().unwrap_or_default();
    let sets = client.get(&format!("/apis/apps/v1/namespaces/{namespace}/replicasets")).await.map_err(client_error)?;
    let mut owned: Vec<Value> = sets["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| rs.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|o| o.iter().any(|o| o["uid"] == uid)))
        .cloned()
        .collect();
    owned.sort_by_key(|rs| {
        rs.pointer("/metadata/annotations/deployment.kubernetes.io~1revision").and_then(Value::as_str).and_then(|r| r.parse::<i64>().ok()).unwrap_or(0)
    });
    let describe = |rs: &Value| {
        format!("{} ({}/{} replicas created)", s(rs.pointer("/metadata/name")), s(rs.pointer("/status/replicas")), s(rs.pointer("/spec/replicas")))
    };
    if let Some(new) = owned.pop() {
        let old: Vec<String> = owned.iter().filter(|rs| rs.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) > 0).map(describe).collect();
        let _ = writeln!(out, "OldReplicaSets:  {}", if old.is_empty() { "<none>".into() } else { old.join(", ") });
        let _ = writeln!(out, "NewReplicaSet:   {}", describe(&new));
    }
    Ok(())
}

/// An HPA as kubectl describes it: each metric's current value against
/// its target, the bounds, the behavior, the pods and the conditions with
/// their messages.
fn autoscaler(object: &Value, out: &mut String) {
    let spec = &object["spec"];
    let status = &object["status"];
    let target_kind = s(spec.pointer("/scaleTargetRef/kind"));
    let mut lines: Vec<(String, String)> =
        vec![("Reference:".into(), format!("{target_kind}/{}", s(spec.pointer("/scaleTargetRef/name")))), ("Metrics:".into(), "( current / target )".into())];
    let current = status.get("currentMetrics").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, metric) in spec.get("metrics").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let field = if metric["type"] == "ContainerResource" { "containerResource" } else { "resource" };
        let source = &metric[field];
        let now = current.get(i).and_then(|c| c.get(field)).and_then(|r| r.get("current"));
        let name = s(source.get("name"));
        let of = if field == "containerResource" { format!(" of container \"{}\"", s(source.get("container"))) } else { String::new() };
        match source.pointer("/target/averageUtilization").and_then(Value::as_i64) {
            Some(target) => {
                let now = now
                    .and_then(|c| Some(format!("{}% ({})", c.get("averageUtilization")?.as_i64()?, s(c.get("averageValue")))))
                    .unwrap_or_else(|| "<unknown>".into());
                lines.push((format!("  resource {name}{of} on pods  (as a percentage of request):"), format!("{now} / {target}%")));
            }
            None => {
                let now = now.and_then(|c| c.get("averageValue")).map_or_else(|| "<unknown>".into(), |v| s(Some(v)));
                lines.push((format!("  resource {name}{of} on pods:"), format!("{now} / {}", s(source.pointer("/target/averageValue")))));
            }
        }
    }
    lines.push(("Min replicas:".into(), spec.get("minReplicas").and_then(Value::as_i64).unwrap_or(1).to_string()));
    lines.push(("Max replicas:".into(), s(spec.get("maxReplicas"))));
    let pods = format!("{} current / {} desired", s(status.get("currentReplicas")), s(status.get("desiredReplicas")));
    lines.push((format!("{target_kind} pods:"), pods));
    let width = lines.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 2;
    let mut behavior = String::new();
    if let Some(rules) = spec.get("behavior").and_then(Value::as_object) {
        behavior.push_str("Behavior:\n");
        for (key, title) in [("scaleUp", "Scale Up"), ("scaleDown", "Scale Down")] {
            let Some(rule) = rules.get(key) else { continue };
            let _ = writeln!(behavior, "  {title}:");
            if let Some(window) = rule.get("stabilizationWindowSeconds") {
                let _ = writeln!(behavior, "    Stabilization Window: {} seconds", s(Some(window)));
            }
            if let Some(select) = rule.get("selectPolicy") {
                let _ = writeln!(behavior, "    Select Policy: {}", s(Some(select)));
            }
            let policies = rule.get("policies").and_then(Value::as_array).cloned().unwrap_or_default();
            if !policies.is_empty() {
                behavior.push_str("    Policies:\n");
                for p in policies {
                    let _ =
                        writeln!(behavior, "      - Type: {}  Value: {}  Period: {} seconds", s(p.get("type")), s(p.get("value")), s(p.get("periodSeconds")));
                }
            }
        }
    }
    for (i, (label, value)) in lines.iter().enumerate() {
        // kubectl prints the behavior between the bounds and the pods.
        if i == lines.len() - 1 {
            out.push_str(&behavior);
        }
        let _ = writeln!(out, "{label:width$}{value}");
    }
    let Some(conditions) = status.get("conditions").and_then(Value::as_array) else { return };
    out.push_str("Conditions:\n");
    let header: Vec<String> = ["Type", "Status", "Reason", "Message"].map(String::from).to_vec();
    let mut rows = vec![["----", "------", "------", "-------"].map(String::from).to_vec()];
    for c in conditions {
        rows.push(vec![s(c.get("type")), s(c.get("status")), s(c.get("reason")), s(c.get("message"))]);
    }
    for line in table::render(&header, &rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

fn generic(object: &Value, out: &mut String) {
    for field in ["spec", "data", "status"] {
        let Some(value) = object.get(field) else { continue };
        let mut value = value.clone();
        if field == "data"
            && object.get("kind").and_then(Value::as_str) == Some("Secret")
            && let Some(map) = value.as_object_mut()
        {
            for v in map.values_mut() {
                let len = v.as_str().map_or(0, |b| b.len() * 3 / 4);
                *v = Value::from(format!("{len} bytes"));
            }
        }
        let mut title = field.to_owned();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let _ = writeln!(out, "{title}:");
        for line in serde_yaml_ng::to_string(&value).unwrap_or_default().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}
