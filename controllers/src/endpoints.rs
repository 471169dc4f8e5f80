//! The Endpoints controller: for every Service with a selector, an
//! Endpoints object of the same name listing the matching pods' addresses,
//! ready ones in `addresses` and the others in `notReadyAddresses` (all in
//! `addresses` with `publishNotReadyAddresses`), with each service port's
//! target port resolved by number or by the pods' container port name.
//! Services without a selector keep the Endpoints git declares.

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::sync::Arc;

use driftless_model::KindOf;
use driftless_model::k8s_openapi::api::core::v1::{Pod, Service};
use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use driftless_store::{Batch, Key, Op, Store, WatchEvent};
use serde_json::{Value, json};

use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError, owner, pods};

/// The controller.
pub struct EndpointsController {
    ctx: Context,
}

impl EndpointsController {
    /// An Endpoints controller.
    pub fn new(ctx: Context) -> Arc<EndpointsController> {
        Arc::new(EndpointsController { ctx })
    }
}

/// The port a service port reaches on `pod`: its target port as a number,
/// or the container port of that name.
fn target_port(target: &IntOrString, pod: &Pod) -> Option<i32> {
    match target {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

/// The Endpoints `subsets` for `service` over `pods`: one subset per
/// distinct set of resolved ports, as the API server groups them.
pub fn subsets(service: &Service, pods: &[Pod]) -> Vec<Value> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let service_name = service.metadata.name.clone().unwrap_or_default();
    // Per distinct port set: (ready addresses, not-ready addresses, ports).
    type Group = (Vec<Value>, Vec<Value>, Vec<Value>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else { continue };
        if pod.metadata.deletion_timestamp.is_some() || pods::is_terminal(pod) {
            continue;
        }
        let mut ports = Vec::new();
        for port in spec.ports.iter().flatten() {
            let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
            let Some(number) = target_port(&target, pod) else { continue };
            let mut p = json!({"port": number, "protocol": port.protocol.clone().unwrap_or_else(|| "TCP".into())});
            if let Some(name) = &port.name {
                p["name"] = Value::from(name.clone());
            }
            if let Some(app) = &port.app_protocol {
                p["appProtocol"] = Value::from(app.clone());
            }
            ports.push(p);
        }
        if ports.is_empty() && !spec.ports.as_ref().is_none_or(Vec::is_empty) {
            continue;
        }
        let mut address = json!({
            "ip": ip,
            "targetRef": {"kind": "Pod", "name": pod.metadata.name, "namespace": pod.metadata.namespace, "uid": pod.metadata.uid},
        });
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            address["nodeName"] = Value::from(node);
        }
        let pod_spec = pod.spec.clone().unwrap_or_default();
        if let (Some(hostname), Some(subdomain)) = (&pod_spec.hostname, &pod_spec.subdomain)
            && *subdomain == service_name
        {
            address["hostname"] = Value::from(hostname.clone());
        }
        let group_key = serde_json::to_string(&ports).unwrap_or_default();
        let group = groups.entry(group_key).or_insert_with(|| (Vec::new(), Vec::new(), ports.clone()));
        if pods::is_ready(pod) || publish_not_ready {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_values()
        .map(|(mut ready, mut not_ready, ports)| {
            let by_ip = |a: &Value, b: &Value| a["ip"].as_str().cmp(&b["ip"].as_str());
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            let mut subset = json!({});
            if !ready.is_empty() {
                subset["addresses"] = Value::from(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = Value::from(not_ready);
            }
            if !ports.is_empty() {
                subset["ports"] = Value::from(ports);
            }
            subset
        })
        .collect()
}

fn selector_of(service: &Value) -> Option<BTreeMap<String, String>> {
    let selector = service.pointer("/spec/selector")?.as_object()?;
    let map: BTreeMap<String, String> = selector.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect();
    (!map.is_empty()).then_some(map)
}

impl Reconciler for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoints"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::Service)
    }

    /// Services with a selector.
    fn keys(&self, store: &dyn Store) -> Vec<Key> {
        store.list(Kind::Service, None).0.iter().filter(|s| selector_of(s).is_some()).filter_map(|v| Key::of(v)).collect()
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        match event.key.kind {
            // A pod's labels, address or readiness may change which
            // Services list it, before and after: every Service of its
            // namespace with a selector looks again (cheap at one node's
            // scale).
            Kind::Pod => {
                store.list(Kind::Service, Some(&event.key.namespace)).0.iter().filter(|s| selector_of(s).is_some()).filter_map(|v| Key::of(v)).collect()
            }
            // Someone else's write to an Endpoints of the same name is
            // undone.
            Kind::Endpoints => vec![Key::new(Kind::Service, event.key.namespace.clone(), event.key.name.clone())],
            _ => vec![],
        }
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let endpoints_key = Key::new(Kind::Endpoints, key.namespace.clone(), key.name.clone());
        let existing = store.get(&endpoints_key);
        let managed = existing.as_ref().is_some_and(|e| owner::controller_of(e).is_some_and(|o| o.kind == Kind::Service.name()));
        let service_value = store.get(key);
        let selector = service_value.as_ref().and_then(|s| selector_of(s));
        let (Some(service_value), Some(selector)) = (service_value, selector) else {
            // No Service, or one without a selector: an Endpoints we made
            // goes; one git declares stays.
            if managed {
                let uid = existing.as_ref().and_then(|e| e.pointer("/metadata/uid")).and_then(Value::as_str).map(str::to_owned);
                store.apply(Batch::one(Op::Delete { key: endpoints_key, uid }))?;
            }
            return Ok(Action::AwaitChange);
        };
        if existing.is_some() && !managed {
            // git declares this Endpoints: it is not ours to write.
            return Ok(Action::AwaitChange);
        }
        let service = Service::from_json(&service_value).map_err(|e| ReconcileError::Malformed(format!("Service: {e}")))?;
        let selected: Vec<Pod> = store
            .list(Kind::Pod, Some(&key.namespace))
            .0
            .iter()
            .filter(|p| {
                let labels: BTreeMap<String, String> = p
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                    .unwrap_or_default();
                driftless_model::selector::matches_map(&selector, &labels)
            })
            .filter_map(|p| Pod::from_json(p).ok())
            .collect();
        let subsets = subsets(&service, &selected);
        let mut labels = service.metadata.labels.clone().unwrap_or_default();
        labels.insert("endpoints.kubernetes.io/managed-by".into(), "endpoint-controller".into());
        let object = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": key.name,
                "namespace": key.namespace,
                "labels": labels,
                "ownerReferences": [owner::reference(Kind::Service, &service.metadata)],
            },
            "subsets": subsets,
        });
        let unchanged =
            existing.as_ref().is_some_and(|e| e.get("subsets") == object.get("subsets") && e.pointer("/metadata/labels") == object.pointer("/metadata/labels"));
        if !unchanged {
            store.apply(Batch::one(Op::Put(object)))?;
        }
        Ok(Action::AwaitChange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Sim;

    #[tokio::test]
    async fn lists_ready_and_not_ready_pods_with_named_target_ports() {
        let sim = Sim::new();
        sim.apply_yaml(
            "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9090, targetPort: 9100}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: app:1, ports: [{name: http, containerPort: 8080}]}]}
",
        );
        sim.settle().await;
        let controller = EndpointsController::new(sim.ctx.clone());
        let key = Key::new(Kind::Service, "default", "web");
        controller.reconcile(&key).await.unwrap();
        let ep = sim.get(Kind::Endpoints, "default", "web");
        let subset = &ep["subsets"][0];
        assert_eq!(subset["addresses"].as_array().unwrap().len(), 2);
        let ports: Vec<(i64, &str)> = subset["ports"].as_array().unwrap().iter().map(|p| (p["port"].as_i64().unwrap(), p["name"].as_str().unwrap())).collect();
        assert_eq!(ports, [(8080, "http"), (9100, "metrics")], "named target ports resolve through the pods");
        assert_eq!(ep["metadata"]["ownerReferences"][0]["kind"], "Service");

        // A pod that stops being ready moves to notReadyAddresses.
        let pod = sim.pods().remove(0);
        let status = json!({"phase": "Running", "podIP": "10.244.0.9", "conditions": [{"type": "Ready", "status": "False"}]});
        sim.store().apply(Batch::one(Op::Status { key: driftless_store::key_of(&pod), uid: None, status })).unwrap();
        controller.reconcile(&key).await.unwrap();
        let ep = sim.get(Kind::Endpoints, "default", "web");
        assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 1);
        assert_eq!(ep["subsets"][0]["notReadyAddresses"].as_array().unwrap().len(), 1);
        let revision = sim.store().revision();
        controller.reconcile(&key).await.unwrap();
        assert_eq!(sim.store().revision(), revision, "nothing written when nothing changed");
    }
}
