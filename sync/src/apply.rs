//! What applying a revision changes in the store: every declared object
//! created or updated (with the API server's defaults, and the fields it
//! allocates carried over from the live object), and every object git no
//! longer declares pruned, all in one batch.

use std::collections::{BTreeMap, BTreeSet};

use driftless_model::k8s_openapi::api::core::v1::Pod;
use driftless_model::{Kind, Object, ObjectRef, defaults};
use driftless_store::{Batch, Key, Op, Store};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// The annotation on every object the sync applied: the commit that last
/// changed it, `<short id> <subject>`. Its presence marks an object as
/// declared by git, and so prunable.
pub const MANAGED: &str = driftless_controllers::deployment::SOURCE_COMMIT;

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It is new.
    Create,
    /// Its declared content changed.
    Update,
    /// Git no longer declares it.
    Delete,
}

impl Change {
    /// `create`, `update`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
        }
    }

    /// The change a word names (`update` for anything unknown).
    pub fn parse(word: &str) -> Change {
        match word {
            "create" => Change::Create,
            "delete" => Change::Delete,
            _ => Change::Update,
        }
    }
}

/// One object's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Action {
    /// What happens.
    pub change: Change,
    /// `Kind namespace/name`.
    pub object: String,
}

/// Kinds whose objects a namespace holds.
const NAMESPACED: [&str; 16] = [
    "Pod",
    "ReplicaSet",
    "ReplicationController",
    "Deployment",
    "StatefulSet",
    "ControllerRevision",
    "Service",
    "Endpoints",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Event",
    "EndpointSlice",
    "Lease",
];

fn key_of(object_ref: &ObjectRef) -> Key {
    Key::new(object_ref.kind.name(), object_ref.namespace.clone().unwrap_or_default(), object_ref.name.clone())
}

fn describe(key: &Key) -> String {
    if key.namespace.is_empty() { format!("{} {}", key.kind, key.name) } else { format!("{} {}/{}", key.kind, key.namespace, key.name) }
}

/// The batch that makes the store hold `desired` (objects as validated,
/// before defaults) and the actions it takes. `note` is the commit, as the
/// [`MANAGED`] annotation records it.
pub fn plan_changes<'a>(desired: impl IntoIterator<Item = (&'a ObjectRef, &'a Object)>, store: &dyn Store, note: &str, now: Timestamp) -> (Batch, Vec<Action>) {
    let mut batch = Batch::new();
    let mut actions = Vec::new();
    let mut wanted: BTreeSet<Key> = BTreeSet::new();
    let mut by_kind: BTreeMap<usize, Vec<(&ObjectRef, &Object)>> = BTreeMap::new();
    for (object_ref, object) in desired {
        let order = Kind::ALL.iter().position(|k| *k == object_ref.kind).unwrap_or(usize::MAX);
        by_kind.entry(order).or_default().push((object_ref, object));
    }
    for (object_ref, object) in by_kind.into_values().flatten() {
        let key = key_of(object_ref);
        wanted.insert(key.clone());
        let mut object = object.clone();
        defaults::apply(&mut object);
        let mut value = object.to_value();
        match store.get(&key) {
            Some(live) => {
                carry_over(&mut value, &live);
                if declared(&value) == declared(&live) && live.pointer("/metadata/deletionTimestamp").is_none() {
                    continue;
                }
                set_annotation(&mut value, MANAGED, note);
                if object_ref.kind == Kind::Pod && live.get("spec") != value.get("spec") {
                    // A pod's spec cannot change in place: replace it.
                    batch.push(Op::Delete { key: key.clone(), uid: None });
                    batch.push(Op::Create(value));
                } else {
                    batch.push(Op::Put(value));
                }
                actions.push(Action { change: Change::Update, object: describe(&key) });
            }
            None => {
                set_annotation(&mut value, MANAGED, note);
                batch.push(Op::Create(value));
                actions.push(Action { change: Change::Create, object: describe(&key) });
            }
        }
    }
    // Prune what git no longer declares, in the reverse of apply order.
    let mut pruned_namespaces = Vec::new();
    for kind in Kind::ALL.iter().rev() {
        for live in store.list(kind.name(), None).0 {
            let Some(key) = Key::of(&live) else { continue };
            if wanted.contains(&key) || annotation(&live, MANAGED).is_none() {
                continue;
            }
            if *kind == Kind::Namespace {
                pruned_namespaces.push(key.name.clone());
            }
            batch.push(delete(&live, &key, now));
            actions.push(Action { change: Change::Delete, object: describe(&key) });
        }
    }
    // A deleted namespace takes everything left in it.
    for namespace in pruned_namespaces {
        for kind in NAMESPACED {
            for live in store.list(kind, Some(&namespace)).0 {
                let Some(key) = Key::of(&live) else { continue };
                if wanted.contains(&key) || annotation(&live, MANAGED).is_some() {
                    continue;
                }
                batch.push(delete(&live, &key, now));
            }
        }
    }
    (batch, actions)
}

fn delete(live: &Value, key: &Key, now: Timestamp) -> Op {
    if key.kind == "Pod" {
        if let Ok(pod) = serde_json::from_value::<Pod>(live.clone()) {
            return driftless_controllers::pods::delete_op(&pod, now);
        }
    }
    Op::Delete { key: key.clone(), uid: live.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned) }
}

fn annotation<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.pointer("/metadata/annotations")?.get(name)?.as_str()
}

fn set_annotation(value: &mut Value, name: &str, note: &str) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if let Some(map) = annotations.as_object_mut() {
        map.insert(name.to_owned(), Value::from(note));
    }
}

/// The object as git declares it: without what the store and controllers
/// maintain.
fn declared(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"] {
            meta.remove(field);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(MANAGED);
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    value
}

/// Copies from the live object the fields the API server and controllers
/// fill in that git leaves out: a Service's cluster IPs and node ports, a
/// volume's claim, a claim's volume, a pod's node, an adopter's owner
/// reference.
fn carry_over(value: &mut Value, live: &Value) {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
    fn copy(value: &mut Value, live: &Value, pointer: &str) {
        if value.pointer(pointer).is_none_or(Value::is_null) {
            if let Some(v) = live.pointer(pointer) {
                set_pointer(value, pointer, v.clone());
            }
        }
    }
    match kind.as_str() {
        "Service" => {
            for pointer in ["/spec/clusterIP", "/spec/clusterIPs", "/spec/ipFamilies", "/spec/ipFamilyPolicy", "/spec/healthCheckNodePort"] {
                copy(value, live, pointer);
            }
            let live_ports = live.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Some(ports) = value.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for port in ports {
                    if port.get("nodePort").is_some() {
                        continue;
                    }
                    let same = live_ports.iter().find(|p| p.get("port") == port.get("port") && p.get("protocol") == port.get("protocol"));
                    if let Some(node_port) = same.and_then(|p| p.get("nodePort")) {
                        port["nodePort"] = node_port.clone();
                    }
                }
            }
        }
        "PersistentVolume" => copy(value, live, "/spec/claimRef"),
        "PersistentVolumeClaim" => copy(value, live, "/spec/volumeName"),
        // The scheduler's binding: without it every commit would replace
        // every declared pod.
        "Pod" => copy(value, live, "/spec/nodeName"),
        _ => {}
    }
    // An owner that adopted a declared object (a Deployment its declared
    // ReplicaSet) keeps it across syncs.
    copy(value, live, "/metadata/ownerReferences");
}

fn set_pointer(value: &mut Value, pointer: &str, new: Value) {
    let mut parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = value;
    for part in parts {
        if at.get(part).is_none() {
            at[part] = Value::Object(Default::default());
        }
        at = &mut at[part];
    }
    at[last] = new;
}

#[cfg(test)]
mod tests {
    use driftless_store::{SqliteStore, StoreExt};
    use serde_json::json;

    use super::*;

    fn objects(yaml: &str) -> BTreeMap<ObjectRef, Object> {
        serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|doc| {
                let value: Value = serde::Deserialize::deserialize(doc).unwrap();
                let object = Object::parse(&value).unwrap();
                (object.object_ref(), object)
            })
            .collect()
    }

    fn apply(store: &SqliteStore, yaml: &str, note: &str) -> Vec<Action> {
        let desired = objects(yaml);
        let (batch, actions) = plan_changes(&desired, store, note, Timestamp::now());
        store.apply(batch).unwrap();
        actions
    }

    const APP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team}\ndata: {k: v}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80}], selector: {app: x}}\n";

    #[test]
    fn creates_then_does_nothing_then_prunes() {
        let store = SqliteStore::in_memory();
        let actions = apply(&store, APP, "c1 first");
        assert_eq!(actions.len(), 3);
        assert!(actions.iter().all(|a| a.change == Change::Create));
        // The allocator's work on the Service survives the next sync.
        let mut svc = (*store.get(&Key::new("Service", "default", "s")).unwrap()).clone();
        svc["spec"]["clusterIP"] = json!("10.96.0.7");
        svc["spec"]["ports"][0]["nodePort"] = json!(30007);
        store.write(Op::Put(svc)).unwrap();
        let revision = store.revision();
        assert!(apply(&store, APP, "c2 again").is_empty(), "nothing changed, nothing written");
        assert_eq!(store.revision(), revision);
        let cm = store.get(&Key::new("ConfigMap", "team", "a")).unwrap();
        assert_eq!(cm["metadata"]["annotations"][MANAGED], "c1 first", "the commit that last changed it");

        let changed = APP.replace("{k: v}", "{k: w}");
        let actions = apply(&store, &changed, "c3 change");
        assert_eq!(actions, [Action { change: Change::Update, object: "ConfigMap team/a".into() }]);
        let svc = store.get(&Key::new("Service", "default", "s")).unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30007);

        // A declared pod the scheduler bound is not replaced by the next sync.
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec: {containers: [{name: c, image: busybox:1.35}]}\n";
        let with_pod = format!("{changed}---\n{pod}");
        apply(&store, &with_pod, "c3b pod");
        let mut bound = (*store.get(&Key::new("Pod", "default", "p1")).unwrap()).clone();
        bound["spec"]["nodeName"] = json!("node-1");
        let uid = bound["metadata"]["uid"].clone();
        store.write(Op::Put(bound)).unwrap();
        assert!(apply(&store, &with_pod, "c3c again").is_empty());
        assert_eq!(store.get(&Key::new("Pod", "default", "p1")).unwrap()["metadata"]["uid"], uid);

        // A controller's object in the pruned namespace goes with it.
        store
            .write(Op::Create(json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "team"}, "spec": {"containers": []}})))
            .unwrap();
        let only_service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80}], selector: {app: x}}\n";
        let actions = apply(&store, only_service, "c4 prune");
        let deleted: Vec<_> = actions.iter().filter(|a| a.change == Change::Delete).map(|a| a.object.clone()).collect();
        assert_eq!(deleted, ["Pod default/p1", "ConfigMap team/a", "Namespace team"]);
        assert!(store.get(&Key::new("Pod", "team", "p")).is_none());
        assert!(store.get(&Key::new("Service", "default", "s")).is_some());
    }
}
