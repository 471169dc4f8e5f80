//! Workloads: per namespace, a tree from each object git declares to what
//! it made (Deployment → ReplicaSets → Pods, StatefulSet → Pods and their
//! claims, DaemonSet/Job → Pods, CronJob → Jobs → Pods, Service →
//! Endpoints → Pods, Ingress → Services), each node with its health, live
//! status, restarts, age and, for declared objects, the commit that last
//! changed it.
//!
//! Must not touch: the store (one read of the kinds it shows). The tree is
//! built by [`Tree::build`], a pure function of the objects, so that it is
//! tested without a daemon.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use driftless_model::Kind;
use driftless_store::Store;
use maud::{Markup, html};
use serde_json::Value;

use crate::health::{self, Health};

/// The kinds the page reads.
const KINDS: &[Kind] = &[
    Kind::Deployment,
    Kind::ReplicaSet,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Job,
    Kind::CronJob,
    Kind::Pod,
    Kind::Service,
    Kind::Endpoints,
    Kind::Ingress,
    Kind::PersistentVolumeClaim,
    Kind::ConfigMap,
    Kind::Secret,
    Kind::HorizontalPodAutoscaler,
    Kind::ReplicationController,
];

/// One object in the tree.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) health: Health,
    pub(crate) message: String,
    pub(crate) status: String,
    pub(crate) restarts: i64,
    pub(crate) created: Option<String>,
    /// `<short id> <subject>` of the commit that last changed it (declared
    /// objects only).
    pub(crate) commit: Option<String>,
    pub(crate) children: Vec<Item>,
}

/// The namespaces' trees.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) namespaces: BTreeMap<String, Vec<Item>>,
}

fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// What kubectl's STATUS column would say, shortly.
fn status(kind: Kind, value: &Value) -> String {
    let int = |p: &str| value.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet | Kind::ReplicationController => {
            format!("{}/{} ready", int("/status/readyReplicas"), int("/spec/replicas"))
        }
        Kind::DaemonSet => format!("{}/{} ready", int("/status/numberReady"), int("/status/desiredNumberScheduled")),
        Kind::Pod => {
            let waiting = value
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str));
            waiting.unwrap_or(text(value, "/status/phase")).to_owned()
        }
        Kind::Job => format!("{} succeeded, {} failed", int("/status/succeeded"), int("/status/failed")),
        Kind::Service => text(value, "/spec/clusterIP").to_owned(),
        Kind::PersistentVolumeClaim => text(value, "/status/phase").to_owned(),
        _ => String::new(),
    }
}

fn restarts(value: &Value) -> i64 {
    value.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["restartCount"].as_i64()).sum()
}

impl Tree {
    /// The trees of `objects` (each `(kind, object)`), rooted at the ones
    /// carrying the `managed` annotation (what git declares).
    pub(crate) fn build(objects: &[(Kind, Arc<Value>)], managed: &str) -> Tree {
        // Children by owner uid; Endpoints' pods by their targetRef uid.
        let mut owned: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_uid: HashMap<&str, usize> = HashMap::new();
        let mut by_name: HashMap<(Kind, &str, &str), usize> = HashMap::new();
        for (i, (kind, value)) in objects.iter().enumerate() {
            by_uid.insert(text(value, "/metadata/uid"), i);
            by_name.insert((*kind, text(value, "/metadata/namespace"), text(value, "/metadata/name")), i);
            for owner in value.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten() {
                if let Some(uid) = owner.get("uid").and_then(Value::as_str) {
                    owned.entry(uid).or_default().push(i);
                }
            }
        }
        let mut tree = Tree::default();
        for (i, (_, value)) in objects.iter().enumerate() {
            if value.pointer("/metadata/annotations").and_then(|a| a.get(managed)).is_none() {
                continue;
            }
            let item = Tree::item(objects, i, &owned, &by_uid, &by_name, 0);
            tree.namespaces.entry(text(value, "/metadata/namespace").to_owned()).or_default().push(item);
        }
        for items in tree.namespaces.values_mut() {
            items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        }
        tree
    }

    fn item(
        objects: &[(Kind, Arc<Value>)],
        i: usize,
        owned: &HashMap<&str, Vec<usize>>,
        by_uid: &HashMap<&str, usize>,
        by_name: &HashMap<(Kind, &str, &str), usize>,
        depth: usize,
    ) -> Item {
        let (kind, value) = (&objects[i].0, &objects[i].1);
        let namespace = text(value, "/metadata/namespace");
        let mut children: Vec<usize> = owned.get(text(value, "/metadata/uid")).cloned().unwrap_or_default();
        match kind {
            Kind::Service => children.extend(by_name.get(&(Kind::Endpoints, namespace, text(value, "/metadata/name")))),
            Kind::Endpoints => {
                for subset in value.get("subsets").and_then(Value::as_array).into_iter().flatten() {
                    for address in ["addresses", "notReadyAddresses"].iter().filter_map(|k| subset.get(*k)).filter_map(Value::as_array).flatten() {
                        children.extend(address.pointer("/targetRef/uid").and_then(Value::as_str).and_then(|uid| by_uid.get(uid)));
                    }
                }
            }
            Kind::Ingress => {
                let paths = value.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten();
                let backends =
                    paths.flat_map(|rule| rule.pointer("/http/paths").and_then(Value::as_array).into_iter().flatten()).filter_map(|p| p.get("backend"));
                let mut services: Vec<&str> = value
                    .pointer("/spec/defaultBackend")
                    .into_iter()
                    .chain(backends)
                    .filter_map(|b| b.pointer("/service/name").and_then(Value::as_str))
                    .collect();
                services.sort_unstable();
                services.dedup();
                children.extend(services.iter().filter_map(|s| by_name.get(&(Kind::Service, namespace, *s))));
            }
            Kind::Pod => {
                // A StatefulSet's pod shows the claims it mounts.
                for volume in value.pointer("/spec/volumes").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(claim) = volume.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str) {
                        children.extend(by_name.get(&(Kind::PersistentVolumeClaim, namespace, claim)));
                    }
                }
            }
            _ => {}
        }
        children.sort_unstable();
        children.dedup();
        children.retain(|c| *c != i);
        let assessment = health::assess(kind.name(), Some(value));
        Item {
            kind: *kind,
            name: text(value, "/metadata/name").to_owned(),
            health: assessment.health,
            message: assessment.message,
            status: status(*kind, value),
            restarts: restarts(value),
            created: value.pointer("/metadata/creationTimestamp").and_then(Value::as_str).map(str::to_owned),
            commit: value.pointer("/metadata/annotations").and_then(|a| a.get(driftless_sync::MANAGED)).and_then(Value::as_str).map(str::to_owned),
            // Four levels hold every chain above; more is a cycle.
            children: if depth < 4 { children.into_iter().map(|c| Tree::item(objects, c, owned, by_uid, by_name, depth + 1)).collect() } else { Vec::new() },
        }
    }

    /// Reads the kinds the page shows from `store` and builds the trees.
    pub(crate) fn read(store: &dyn Store) -> Tree {
        let mut objects = Vec::new();
        for kind in KINDS {
            objects.extend(store.list(*kind, None).0.iter().map(|v| (*kind, v.clone())));
        }
        Tree::build(&objects, driftless_sync::MANAGED)
    }

    /// The page's content.
    pub(crate) fn render(&self, now: jiff::Timestamp) -> Markup {
        html! {
            h1 { "Workloads" }
            @if self.namespaces.is_empty() {
                p.muted { "Git declares nothing yet." }
            }
            @for (namespace, items) in &self.namespaces {
                section aria-labelledby={ "ns-" (namespace) } {
                    h2 id={ "ns-" (namespace) } { "Namespace " code { (namespace) } " " (worst_badge(items)) }
                    div.table-wrap {
                        table {
                            thead { tr {
                                th scope="col" { "Object" } th scope="col" { "Health" } th scope="col" { "Status" }
                                th scope="col" { "Restarts" } th scope="col" { "Age" } th scope="col" { "Declared by" }
                            } }
                            tbody { @for item in items { (row(namespace, item, 0, now)) } }
                        }
                    }
                }
            }
        }
    }
}

fn worst_badge(items: &[Item]) -> Markup {
    let worst = health::worst(items.iter().map(|i| i.health));
    html! { span class={ "health health-" (worst.as_str()) } { (worst.as_str()) } }
}

fn row(namespace: &str, item: &Item, depth: usize, now: jiff::Timestamp) -> Markup {
    let age = driftless_printers::age::since(item.created.as_ref().map(|c| Value::from(c.as_str())).as_ref(), now);
    html! {
        tr data-kind=(item.kind.name()) data-name=(item.name) {
            th scope="row" style={ "padding-left:" (0.5 + depth as f32 * 1.5) "rem" } {
                @if depth > 0 { span aria-hidden="true" { "└ " } }
                a href=(super::object::Named::href(item.kind, namespace, &item.name)) { span.muted { (item.kind.name()) "/" } (item.name) }
            }
            td { span class={ "health health-" (item.health.as_str()) } title=(item.message) { (item.health.as_str()) } }
            td { (item.status) }
            td { @if item.kind == Kind::Pod { (item.restarts) } }
            td { (age) }
            td { @if let Some(commit) = &item.commit { code { (commit) } } }
        }
        @for child in &item.children { (row(namespace, child, depth + 1, now)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: Kind, value: Value) -> (Kind, Arc<Value>) {
        (kind, Arc::new(value))
    }

    #[test]
    fn a_deployment_leads_to_its_replica_sets_and_pods_and_a_service_to_its_endpoints() {
        let managed = driftless_sync::MANAGED;
        let objects = vec![
            object(
                Kind::Deployment,
                json!({"metadata": {"name": "web", "namespace": "default", "uid": "d1", "annotations": {managed: "abc1234 scale web"}},
                "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
            ),
            object(Kind::ReplicaSet, json!({"metadata": {"name": "web-5f7", "namespace": "default", "uid": "r1", "ownerReferences": [{"uid": "d1"}]}})),
            object(
                Kind::Pod,
                json!({"metadata": {"name": "web-5f7-x", "namespace": "default", "uid": "p1", "ownerReferences": [{"uid": "r1"}]},
                "status": {"phase": "Running", "containerStatuses": [{"restartCount": 2}]}}),
            ),
            object(
                Kind::Service,
                json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1", "annotations": {managed: "abc1234 scale web"}},
                "spec": {"clusterIP": "10.96.0.7"}}),
            ),
            object(
                Kind::Endpoints,
                json!({"metadata": {"name": "web", "namespace": "default", "uid": "e1"},
                "subsets": [{"addresses": [{"ip": "10.244.0.5", "targetRef": {"kind": "Pod", "uid": "p1"}}]}]}),
            ),
            object(
                Kind::Ingress,
                json!({"metadata": {"name": "<b>x</b>", "namespace": "default", "uid": "i1", "annotations": {managed: "abc1234 web"}},
                "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"name": "web"}}}]}}]}}),
            ),
        ];
        let tree = Tree::build(&objects, managed);
        let items = &tree.namespaces["default"];
        let roots: Vec<(Kind, &str)> = items.iter().map(|i| (i.kind, i.name.as_str())).collect();
        let mut expected = vec![(Kind::Service, "web"), (Kind::Deployment, "web"), (Kind::Ingress, "<b>x</b>")];
        expected.sort();
        assert_eq!(roots, expected, "only what git declares is a root");
        let deployment = items.iter().find(|i| i.kind == Kind::Deployment).unwrap();
        assert_eq!(deployment.commit.as_deref(), Some("abc1234 scale web"));
        assert_eq!(deployment.status, "1/1 ready");
        let pod = &deployment.children[0].children[0];
        assert_eq!((pod.name.as_str(), pod.restarts, pod.status.as_str()), ("web-5f7-x", 2, "Running"));
        let service = items.iter().find(|i| i.kind == Kind::Service).unwrap();
        assert_eq!(service.children[0].kind, Kind::Endpoints);
        assert_eq!(service.children[0].children[0].name, "web-5f7-x");
        let ingress = items.iter().find(|i| i.kind == Kind::Ingress).unwrap();
        assert_eq!(ingress.children[0].kind, Kind::Service);

        let html = tree.render(jiff::Timestamp::now()).into_string();
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"), "names are escaped: {html}");
        assert!(html.contains("<code>abc1234 scale web</code>"), "{html}");
    }
}
