//! The engine's decisions, on small object sets.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::Revision;

fn objects(values: &[Value]) -> BTreeMap<ObjectRef, Object> {
    values.iter().map(|v| Object::parse(v).unwrap()).map(|o| (o.object_ref(), o)).collect()
}

/// The plan from revision `from` to revision `to`, as `driftless plan`
/// makes it.
fn between(from: &BTreeMap<ObjectRef, Object>, to: &BTreeMap<ObjectRef, Object>) -> Plan {
    plan(to, &Revision::new(from))
}

fn deployment(image: &str, replicas: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

fn secret(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": password, "user": "admin"}})
}

#[test]
fn scale_only_does_not_roll() {
    let plan = between(&objects(&[deployment("busybox:1.35", 2)]), &objects(&[deployment("busybox:1.35", 5)]));
    let Change::Update { effect, fields } = &plan.actions[0].change else { panic!("{plan:?}") };
    assert_eq!(*effect, Effect::Scales);
    assert_eq!(fields[0].path, "spec.replicas");
}

#[test]
fn template_changes_roll() {
    let plan = between(&objects(&[deployment("busybox:1.35", 2)]), &objects(&[deployment("busybox:1.36", 3)]));
    let Change::Update { effect, fields } = &plan.actions[0].change else { panic!("{plan:?}") };
    assert_eq!(*effect, Effect::RollsPods);
    let paths: Vec<_> = fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["spec.replicas", "spec.template.spec.containers[0].image"]);
    assert_eq!(plan.summary(), Summary { update: 1, rolls_pods: 1, ..Summary::default() });
}

#[test]
fn creates_in_apply_order_deletes_in_reverse() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let plan = between(&objects(&[cm.clone(), deployment("a:1", 1)]), &objects(&[ns]));
    let order: Vec<_> = plan.actions.iter().map(|a| (a.object.kind, a.change.clone())).collect();
    assert_eq!(order, [(Kind::Namespace, Change::Create), (Kind::Deployment, Change::Delete), (Kind::ConfigMap, Change::Delete),]);
}

#[test]
fn secret_values_never_appear_but_changes_do() {
    let plan = between(&objects(&[secret("hunter2")]), &objects(&[secret("correct-horse")]));
    let text = format!("{plan:?}");
    for leaked in ["hunter2", "correct-horse", "aHVudGVyMg", "Y29ycmVjdC1ob3JzZQ", "YWRtaW4"] {
        assert!(!text.contains(leaked), "{leaked} leaked: {text}");
    }
    let Change::Update { fields, .. } = &plan.actions[0].change else { panic!() };
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].path, "data.password");
    assert_eq!(fields[0].after, Some(json!(REDACTED_CHANGED)));
    // What the daemon writes still holds the value.
    assert!(plan.actions[0].write().unwrap().to_string().contains("Y29ycmVjdC1ob3JzZQ"));
}

#[test]
fn identical_sets_plan_nothing() {
    let set = objects(&[deployment("a:1", 1), secret("x")]);
    assert!(between(&set, &set).is_empty());
}

/// A live side as a store holds it, for the tests that need allocated
/// fields and bookkeeping.
struct Stored(BTreeMap<ObjectRef, Arc<Value>>);

impl Live for Stored {
    fn get(&self, object: &ObjectRef) -> Option<LiveObject<'_>> {
        self.0.get(object).map(|v| LiveObject::Stored(v.clone()))
    }

    fn declared(&self) -> Vec<ObjectRef> {
        self.0.keys().cloned().collect()
    }
}

fn stored(set: &BTreeMap<ObjectRef, Object>, edit: impl Fn(&ObjectRef, &mut Value)) -> Stored {
    Stored(
        set.iter()
            .map(|(r, o)| {
                let mut value = applied(o);
                value["metadata"]["uid"] = json!(format!("uid-{}", r.name));
                value["metadata"]["annotations"] = json!({driftless_model::annotations::SOURCE_COMMIT: "abc1234 first"});
                value["status"] = json!({"phase": "Running"});
                edit(r, &mut value);
                (r.clone(), Arc::new(value))
            })
            .collect(),
    )
}

#[test]
fn allocated_fields_and_bookkeeping_are_not_changes() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}});
    let set = objects(&[svc, pod]);
    let live = stored(&set, |r, v| match r.kind {
        Kind::Service => {
            v["spec"]["clusterIP"] = json!("10.96.0.7");
            v["spec"]["ports"][0]["nodePort"] = json!(30007);
        }
        Kind::Pod => v["spec"]["nodeName"] = json!("node-1"),
        _ => {}
    });
    let plan = plan(&set, &live);
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn immutable_fields_are_refused_and_pods_replaced() {
    let mut changed = deployment("a:1", 1);
    changed["spec"]["selector"]["matchLabels"]["tier"] = json!("front");
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
    let plan = between(&objects(&[deployment("a:1", 1)]), &objects(&[changed]));
    assert!(!plan.is_applicable());
    assert_eq!(plan.refused[0].to_string(), "Deployment/web: spec.selector: field is immutable");
    assert_eq!(plan.refused[0].pointer, "/spec/selector");

    let pod = |image: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}});
    let plan = between(&objects(&[pod("a:1")]), &objects(&[pod("a:2")]));
    assert!(plan.is_applicable());
    assert!(matches!(&plan.actions[0].change, Change::Replace { .. }), "{plan:?}");
    assert_eq!(plan.summary().replace, 1);
}

#[test]
fn an_object_being_deleted_is_made_again() {
    let set = objects(&[json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})]);
    let live = stored(&set, |_, v| v["metadata"]["deletionTimestamp"] = json!("2026-12-03T10:00:00Z"));
    let plan = plan(&set, &live);
    assert!(matches!(&plan.actions[0].change, Change::Replace { .. }), "{plan:?}");
}

#[test]
fn namespaces_cascade() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let plan = between(&objects(&[ns]), &BTreeMap::new());
    assert!(plan.actions[0].cascades());
}

fn autoscaler(target: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web-hpa"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "minReplicas": 1, "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}})
}

#[test]
fn an_autoscaler_owns_its_targets_replicas() {
    // Running 3 (the HPA's count); a commit declares 5: nothing runs
    // differently, and the plan says why.
    let running = objects(&[deployment("busybox:1.35", 3), autoscaler("web")]);
    let plan = between(&running, &objects(&[deployment("busybox:1.35", 5), autoscaler("web")]));
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(plan.held.len(), 1);
    assert_eq!(plan.held[0].to_string(), "replicas of Deployment/web owned by HPA web-hpa: declared 5 ignored, running 3");
    assert!(crate::render::text(&plan, false).contains("No changes.\n= replicas of Deployment/web owned by HPA web-hpa"));
    assert_eq!(crate::render::json(&plan)["held"][0]["running"], 3);
    // A template change rolls out at the running count.
    let plan = between(&running, &objects(&[deployment("busybox:1.36", 5), autoscaler("web")]));
    let Change::Update { effect, fields } = &plan.actions[0].change else { panic!("{plan:?}") };
    assert_eq!(*effect, Effect::RollsPods);
    assert_eq!(fields.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["spec.template.spec.containers[0].image"]);
    assert_eq!(plan.actions[0].write().and_then(|w| w.pointer("/spec/replicas")), Some(&json!(3)));
    // Without the HPA, git's count is the count again.
    let plan = between(&running, &objects(&[deployment("busybox:1.35", 5)]));
    let scaled = plan.actions.iter().find(|a| a.object.kind == Kind::Deployment).unwrap();
    assert!(matches!(&scaled.change, Change::Update { effect: Effect::Scales, .. }), "{plan:?}");
    assert!(plan.held.is_empty());
    // An HPA for another workload owns nothing here.
    let plan = between(&objects(&[deployment("busybox:1.35", 3), autoscaler("api")]), &objects(&[deployment("busybox:1.35", 5), autoscaler("api")]));
    assert!(matches!(&plan.actions[0].change, Change::Update { effect: Effect::Scales, .. }), "{plan:?}");
}

#[test]
fn a_shown_secret_has_no_values_left() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": {LAST_APPLIED: "{\"data\":{\"a\":\"c2VjcmV0\"}}"}},
        "data": {"a": "c2VjcmV0"}, "stringData": {"b": "plain"}});
    let shown = redacted(Kind::Secret, &secret).to_string();
    assert!(!shown.contains("c2VjcmV0") && !shown.contains("plain"), "{shown}");
    assert!(shown.contains("\"a\":\"(redacted)\"") && shown.contains("\"b\":\"(redacted)\""), "{shown}");
    let map = json!({"kind": "ConfigMap", "data": {"a": "1"}});
    assert_eq!(redacted(Kind::ConfigMap, &map), map);
}
