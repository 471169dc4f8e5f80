//! Edits on hand-written files: comments, quoting, flow and block styles,
//! several documents, lists, JSON. Each test states the exact new text, so
//! a byte changed outside the edited field fails it.

use serde_json::{Value, json};

use super::*;

fn place(file: &str, index: usize) -> Place {
    Place { file: file.into(), index, prefix: String::new() }
}

/// Edits document `index` of `text` with `change` applied to its value as
/// the loader reads it.
fn apply(file: &str, text: &str, index: usize, change: impl FnOnce(&mut Value)) -> Result<String, WriteError> {
    let docs = driftless_manifest::parse_file(std::sync::Arc::from(file), text).unwrap();
    let doc = docs.iter().find(|d| d.origin.index() == index && d.origin.prefix().is_empty()).unwrap();
    let mut new = doc.value.clone();
    change(&mut new);
    edit(text, &place(file, index), &doc.value, &new)
}

const DEPLOYMENT: &str = "\
# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep in sync with the Service
  labels: {app: web, tier: \"front\"}
spec:
  replicas: 2 # scaled by hand
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: 'busybox:1.35'
        args: [sleep, \"1000\"]
        env:
        - name: A
          value: \"1\"
        - {name: B, value: two}
      - name: sidecar
        image: busybox:1.35
---
# Another object, untouched.
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
";

#[test]
fn a_scalar_changes_where_it_stands() {
    let out = apply("web.yaml", DEPLOYMENT, 0, |v| v["spec"]["replicas"] = json!(5)).unwrap();
    assert_eq!(out, DEPLOYMENT.replace("replicas: 2 # scaled", "replicas: 5 # scaled"));
}

#[test]
fn strings_keep_their_quotes() {
    let out = apply("web.yaml", DEPLOYMENT, 0, |v| {
        v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:1.36");
        v["spec"]["template"]["spec"]["containers"][1]["image"] = json!("busybox:1.36");
        v["metadata"]["labels"]["tier"] = json!("back");
    })
    .unwrap();
    let expected = DEPLOYMENT
        .replace("image: 'busybox:1.35'", "image: 'busybox:1.36'")
        .replace("  image: busybox:1.35\n---", "  image: busybox:1.36\n---")
        .replace("tier: \"front\"", "tier: \"back\"");
    assert_eq!(out, expected);
}

#[test]
fn new_fields_follow_their_siblings() {
    let out = apply("web.yaml", DEPLOYMENT, 0, |v| {
        v["spec"]["paused"] = json!(true);
        v["spec"]["template"]["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": "2026-12-03T20:00:00Z"});
        v["metadata"]["labels"]["team"] = json!("a");
    })
    .unwrap();
    let expected = DEPLOYMENT
        .replace("labels: {app: web, tier: \"front\"}", "labels: {app: web, tier: \"front\", team: a}")
        .replace(
            "        app: web\n    spec:",
            "        app: web\n      annotations:\n        kubectl.kubernetes.io/restartedAt: 2026-12-03T20:00:00Z\n    spec:",
        )
        .replace("        image: busybox:1.35\n---", "        image: busybox:1.35\n  paused: true\n---");
    assert_eq!(out, expected);
}

#[test]
fn list_items_are_matched_by_name() {
    // Set B, drop A, add C: env items keep their own styles.
    let out = apply("web.yaml", DEPLOYMENT, 0, |v| {
        v["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "B", "value": "three"}, {"name": "C", "value": "on"}]);
    })
    .unwrap();
    let expected = DEPLOYMENT.replace(
        "        - name: A\n          value: \"1\"\n        - {name: B, value: two}\n",
        "        - {name: B, value: three}\n        - name: C\n          value: \"on\"\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn removing_fields_removes_their_lines_only() {
    let out = apply("web.yaml", DEPLOYMENT, 0, |v| {
        let container = v["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap();
        container.remove("name");
        container.remove("args");
        v["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap().remove(1);
    })
    .unwrap();
    let expected = DEPLOYMENT
        .replace("      - name: app\n        image: 'busybox:1.35'\n        args: [sleep, \"1000\"]\n", "      - image: 'busybox:1.35'\n")
        .replace("      - name: sidecar\n        image: busybox:1.35\n", "");
    assert_eq!(out, expected);
}

#[test]
fn other_documents_and_comments_are_untouched() {
    let out = apply("web.yaml", DEPLOYMENT, 1, |v| v["spec"]["ports"][0]["port"] = json!(8080)).unwrap();
    assert_eq!(out, DEPLOYMENT.replace("[{port: 80}]", "[{port: 8080}]"));
}

#[test]
fn indented_sequences_and_four_space_files() {
    let text = "kind: ConfigMap\nmetadata:\n    name: c\ndata:\n    a: \"1\"\nitems:\n    - x\n";
    let out = apply("c.yaml", text, 0, |v| {
        v["metadata"]["labels"] = json!({"app": "c"});
        v["more"] = json!(["z"]);
    })
    .unwrap();
    assert_eq!(out, format!("{text}more:\n    - z\n").replace("    name: c\n", "    name: c\n    labels:\n        app: c\n"));
}

#[test]
fn block_scalars_stay_blocks() {
    let text = "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  run.sh: |\n    echo one\n    echo two\n  # trailing comment\n";
    let out = apply("c.yaml", text, 0, |v| v["data"]["run.sh"] = json!("echo three\n")).unwrap();
    assert_eq!(out, text.replace("    echo one\n    echo two\n", "    echo three\n"));
}

#[test]
fn empty_values_and_files_without_a_final_newline() {
    let text = "kind: ConfigMap\nmetadata:\n  name: c\n  labels:\ndata: {}";
    let out = apply("c.yaml", text, 0, |v| {
        v["metadata"]["labels"] = json!({"a": "b"});
        v["data"] = json!({"k": "v"});
        v["immutable"] = json!(false);
    })
    .unwrap();
    assert_eq!(out, "kind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    a: b\ndata: {k: v}\nimmutable: false\n");
}

#[test]
fn json_files_stay_json() {
    let text = "{\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"c\"},\n  \"data\": {\"a\": \"1\"}\n}\n";
    let out = apply("c.json", text, 0, |v| {
        v["data"]["a"] = json!("2");
        v["data"]["b"] = json!("on");
        v["metadata"].as_object_mut().unwrap().insert("labels".into(), json!({"x": "y"}));
    })
    .unwrap();
    assert_eq!(
        out,
        "{\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"c\", \"labels\": {\"x\":\"y\"}},\n  \"data\": {\"a\": \"2\", \"b\": \"on\"}\n}\n"
    );
    serde_json::from_str::<Value>(&out).unwrap();
}

#[test]
fn items_of_a_list() {
    let text =
        "apiVersion: v1\nkind: List\nitems:\n- kind: ConfigMap\n  metadata: {name: a}\n- kind: ConfigMap\n  metadata: {name: b}\n  data:\n    k: v # note\n";
    let docs = driftless_manifest::parse_file(std::sync::Arc::from("l.yaml"), text).unwrap();
    let mut new = docs[1].value.clone();
    new["data"]["k"] = json!("w");
    let at = Place { file: "l.yaml".into(), index: 0, prefix: "/items/1".into() };
    assert_eq!(edit(text, &at, &docs[1].value, &new).unwrap(), text.replace("k: v # note", "k: w # note"));
}

#[test]
fn merge_keys_are_overridden_not_rewritten() {
    let text = "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  <<: &base {a: \"1\"}\n  b: \"2\"\n";
    let out = apply("c.yaml", text, 0, |v| v["data"]["a"] = json!("9")).unwrap();
    assert_eq!(out, format!("{text}  a: \"9\"\n"));
    let err = apply("c.yaml", text, 0, |v| {
        v["data"].as_object_mut().unwrap().remove("a");
    })
    .unwrap_err();
    assert!(err.to_string().contains("merge key"), "{err}");
}

#[test]
fn windows_line_endings_are_kept() {
    let text = "kind: ConfigMap\r\nmetadata:\r\n  name: c\r\ndata:\r\n  a: x\r\n";
    let out = apply("c.yaml", text, 0, |v| v["data"]["b"] = json!("z")).unwrap();
    assert_eq!(out, format!("{text}  b: z\r\n"));
}

#[test]
fn a_value_that_would_read_differently_is_refused_not_written() {
    // An anchored value used elsewhere: changing it here would change both.
    let text = "kind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: &v x\n  b: *v\n";
    let err = apply("c.yaml", text, 0, |v| v["data"]["b"] = json!("y")).unwrap_err();
    assert!(err.to_string().starts_with("c.yaml:6: cannot edit in place"), "{err}");
}
