//! The store side of the engine: what a plan writes, and the property that
//! holds `driftless plan` and the daemon to one decision.

use driftless_model::Kind;
use std::collections::BTreeMap;

use driftless_diff::{Revision, plan};
use driftless_model::Object;
use driftless_store::{SqliteStore, StoreExt};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::json;

use super::*;

fn objects(yaml: &str) -> BTreeMap<ObjectRef, Object> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|value| !value.is_null())
        .map(|value| {
            let object = Object::parse(&value).unwrap();
            (object.object_ref(), object)
        })
        .collect()
}

fn apply(store: &SqliteStore, desired: &BTreeMap<ObjectRef, Object>, note: &str) -> Vec<Action> {
    let plan = plan(desired, &StoreLive::new(store));
    assert!(plan.is_applicable(), "{:?}", plan.refused);
    let (batch, actions) = batch_for(&plan, store, note, Timestamp::now());
    store.apply(batch).unwrap();
    actions
}

const APP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team}\ndata: {k: v}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80}], selector: {app: x}}\n";

#[test]
fn creates_then_does_nothing_then_prunes() {
    let store = SqliteStore::in_memory();
    let actions = apply(&store, &objects(APP), "c1 first");
    assert_eq!(actions.len(), 3);
    assert!(actions.iter().all(|a| a.change == Change::Create));
    // The allocator's work on the Service survives the next sync.
    let mut svc = (*store.get(&Key::new(Kind::Service, "default", "s")).unwrap()).clone();
    svc["spec"]["clusterIP"] = json!("10.96.0.7");
    svc["spec"]["ports"][0]["nodePort"] = json!(30007);
    store.write(Op::Put(svc)).unwrap();
    let revision = store.revision();
    assert!(apply(&store, &objects(APP), "c2 again").is_empty(), "nothing changed, nothing written");
    assert_eq!(store.revision(), revision);
    let cm = store.get(&Key::new(Kind::ConfigMap, "team", "a")).unwrap();
    assert_eq!(cm["metadata"]["annotations"][MANAGED], "c1 first", "the commit that last changed it");

    let changed = APP.replace("{k: v}", "{k: w}");
    let actions = apply(&store, &objects(&changed), "c3 change");
    assert_eq!(actions, [Action { change: Change::Update, object: "ConfigMap team/a".into(), effect: "in place".into() }]);
    let svc = store.get(&Key::new(Kind::Service, "default", "s")).unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.7");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30007);

    // A declared pod the scheduler bound is not replaced by the next sync.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec: {containers: [{name: c, image: busybox:1.35}]}\n";
    let with_pod = format!("{changed}---\n{pod}");
    apply(&store, &objects(&with_pod), "c3b pod");
    let mut bound = (*store.get(&Key::new(Kind::Pod, "default", "p1")).unwrap()).clone();
    bound["spec"]["nodeName"] = json!("node-1");
    let uid = bound["metadata"]["uid"].clone();
    store.write(Op::Put(bound)).unwrap();
    assert!(apply(&store, &objects(&with_pod), "c3c again").is_empty());
    assert_eq!(store.get(&Key::new(Kind::Pod, "default", "p1")).unwrap()["metadata"]["uid"], uid);

    // A changed pod is replaced: a new uid.
    let actions = apply(&store, &objects(&with_pod.replace("busybox:1.35", "busybox:1.36")), "c3d image");
    assert_eq!(actions[0].change, Change::Replace);
    assert_ne!(store.get(&Key::new(Kind::Pod, "default", "p1")).unwrap()["metadata"]["uid"], uid);

    // A controller's object in the pruned namespace goes with it.
    store.write(Op::Create(json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "team"}, "spec": {"containers": []}}))).unwrap();
    let only_service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort, ports: [{port: 80}], selector: {app: x}}\n";
    let actions = apply(&store, &objects(only_service), "c4 prune");
    let deleted: Vec<_> = actions.iter().filter(|a| a.change == Change::Delete).map(|a| a.object.clone()).collect();
    assert_eq!(deleted, ["Pod default/p1", "ConfigMap team/a", "Namespace team"]);
    assert!(store.get(&Key::new(Kind::Pod, "team", "p")).is_none());
    assert!(store.get(&Key::new(Kind::Service, "default", "s")).is_some());
}

/// What the controllers do to declared objects between syncs: the
/// allocator gives Services addresses and node ports, the scheduler binds
/// pods, the binder binds claims, the kubelet writes statuses and removes
/// pods whose grace period is over.
fn controllers_run(store: &SqliteStore) {
    let mut batch = Batch::new();
    for (n, svc) in store.list(Kind::Service, None).0.iter().enumerate() {
        let mut svc = (**svc).clone();
        if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
            continue;
        }
        if svc.pointer("/spec/clusterIP").is_none() {
            svc["spec"]["clusterIP"] = json!(format!("10.96.0.{}", 10 + n));
            svc["spec"]["clusterIPs"] = json!([format!("10.96.0.{}", 10 + n)]);
        }
        let node_port = svc.pointer("/spec/type").and_then(Value::as_str) == Some("NodePort");
        for port in svc["spec"]["ports"].as_array_mut().into_iter().flatten() {
            if node_port && port.get("nodePort").is_none() {
                port["nodePort"] = json!(30100 + n);
            }
        }
        batch.push(Op::Put(svc));
    }
    for pod in store.list(Kind::Pod, None).0 {
        let key = Key::of(&pod).unwrap();
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            batch.push(Op::Delete { key, uid: None });
            continue;
        }
        let mut bound = (*pod).clone();
        bound["spec"]["nodeName"] = json!("node-1");
        batch.push(Op::Put(bound));
        batch.push(Op::Status { key, uid: None, status: json!({"phase": "Running"}) });
    }
    for claim in store.list(Kind::PersistentVolumeClaim, None).0 {
        let mut bound = (*claim).clone();
        if bound.pointer("/spec/volumeName").is_none() {
            bound["spec"]["volumeName"] = json!(format!("pvc-{}", bound["metadata"]["name"].as_str().unwrap_or("")));
        }
        batch.push(Op::Put(bound));
    }
    store.apply(batch).unwrap();
}

/// Generated manifest sets: a small universe of objects, each present or
/// not, with the fields that decide create, update, scale, roll, replace,
/// refusal and prune taking a few values each.
fn manifests() -> impl Strategy<Value = String> {
    let namespace = prop_oneof![Just(None), Just(Some("team"))];
    (
        (any::<bool>(), namespace.clone(), 0..3u8),
        (any::<bool>(), 0..3u8),
        (any::<bool>(), prop_oneof![Just("ClusterIP"), Just("NodePort"), Just("None")], 80..82u16),
        (any::<bool>(), 0..2u8, 1..4u8, any::<bool>()),
        (any::<bool>(), 0..2u8),
        (any::<bool>(), prop_oneof![Just("1Gi"), Just("2Gi")], any::<bool>()),
        (any::<bool>(), any::<bool>(), 1..3u8),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|(cm, secret, svc, deploy, pod, pvc, sts, sc)| {
            let mut docs = Vec::new();
            let ns = cm.1;
            if ns.is_some() {
                docs.push("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n".to_owned());
            }
            if cm.0 {
                let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
                docs.push(format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: conf{ns}}}\ndata: {{greeting: hello-{}}}\n", cm.2));
            }
            if secret.0 {
                docs.push(format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData: {{password: pw-{}}}\n", secret.1));
            }
            if svc.0 {
                let (kind, ip) = match svc.1 {
                    "None" => ("ClusterIP", ", clusterIP: None"),
                    other => (other, ""),
                };
                docs.push(format!(
                    "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: {kind}{ip}, selector: {{app: web}}, ports: [{{port: {}}}]}}\n",
                    svc.2
                ));
            }
            if deploy.0 {
                let label = if deploy.3 { "web" } else { "web2" };
                docs.push(format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {}\n  selector: {{matchLabels: {{app: {label}}}}}\n  template:\n    metadata: {{labels: {{app: {label}}}}}\n    spec: {{containers: [{{name: c, image: \"busybox:1.3{}\"}}]}}\n",
                    deploy.2, deploy.1
                ));
            }
            if pod.0 {
                docs.push(format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: solo}}\nspec: {{containers: [{{name: c, image: \"busybox:1.3{}\"}}]}}\n", pod.1));
            }
            if pvc.0 {
                let mode = if pvc.2 { "ReadWriteOnce" } else { "ReadWriteMany" };
                docs.push(format!(
                    "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data}}\nspec: {{accessModes: [{mode}], resources: {{requests: {{storage: {}}}}}}}\n",
                    pvc.1
                ));
            }
            if sts.0 {
                let service = if sts.1 { "db" } else { "db2" };
                docs.push(format!(
                    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  serviceName: {service}\n  replicas: {}\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec: {{containers: [{{name: c, image: \"busybox:1.35\"}}]}}\n",
                    sts.2
                ));
            }
            if sc.0 {
                let provisioner = if sc.1 { "driftless.dev/local-path" } else { "example.com/other" };
                docs.push(format!("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: fast}}\nprovisioner: {provisioner}\n"));
            }
            docs.join("---\n")
        })
}

/// What a plan decides, object by object: the verb, the effect and the
/// refused fields.
fn decisions(plan: &Plan) -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<_> = plan.actions.iter().map(|a| (a.object.to_string(), a.change.verb(), a.change.effect())).collect();
    out.extend(plan.refused.iter().map(|r| (format!("{} {}", r.object, r.pointer), "refuse", "")));
    out
}

/// The store writes a batch makes, as (verb, key): what the daemon does.
fn writes(batch: &Batch) -> Vec<(&'static str, String)> {
    batch
        .ops
        .iter()
        .map(|op| match op {
            Op::Create(v) => ("create", Key::of(v).unwrap().to_string()),
            Op::Put(v) => ("put", Key::of(v).unwrap().to_string()),
            Op::Update(v) => ("update", Key::of(v).unwrap().to_string()),
            Op::Delete { key, .. } => ("delete", key.to_string()),
            Op::Status { key, .. } => ("status", key.to_string()),
        })
        .collect()
}

/// The writes an action promises.
fn promised(action: &driftless_diff::Action, store: &SqliteStore) -> Vec<(&'static str, String)> {
    let key = key_of(&action.object).to_string();
    match action.change {
        PlanChange::Create => vec![("create", key)],
        PlanChange::Update { .. } => vec![("put", key)],
        PlanChange::Replace { .. } => vec![("delete", key.clone()), ("create", key)],
        PlanChange::Delete => {
            let live = store.get(&key_of(&action.object)).unwrap();
            let graceful = action.object.kind == Kind::Pod && live.pointer("/spec/nodeName").is_some();
            // A pruned namespace also takes what controllers made in it;
            // the simulated controllers make nothing there.
            vec![(if graceful { "update" } else { "delete" }, key)]
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// For any two revisions: the plan `driftless plan` shows between them
    /// decides what the daemon, running the first, decides for the second;
    /// the batch writes exactly the plan's verbs on the plan's objects;
    /// and once applied, planning again finds nothing to do.
    #[test]
    fn plan_is_what_the_daemon_does(first in manifests(), second in manifests()) {
        let (a, b) = (objects(&first), objects(&second));
        let store = SqliteStore::in_memory();
        apply(&store, &a, "aaaaaaa first");
        controllers_run(&store);

        let reviewed = plan(&b, &Revision::new(&a));
        let live = StoreLive::new(&store);
        let daemon = plan(&b, &live);
        prop_assert_eq!(decisions(&reviewed), decisions(&daemon));
        if !daemon.is_applicable() {
            return Ok(());
        }
        let (batch, ledger) = batch_for(&daemon, &store, "bbbbbbb second", Timestamp::now());
        let expected: Vec<_> = daemon.actions.iter().flat_map(|a| promised(a, &store)).collect();
        prop_assert_eq!(writes(&batch), expected);
        prop_assert_eq!(ledger.len(), daemon.actions.len());
        store.apply(batch).unwrap();
        controllers_run(&store);
        let again = plan(&b, &StoreLive::new(&store));
        prop_assert!(again.is_empty(), "{:?}", decisions(&again));
        for object_ref in b.keys() {
            prop_assert!(store.get(&key_of(object_ref)).is_some(), "{} missing", object_ref);
        }
    }
}
