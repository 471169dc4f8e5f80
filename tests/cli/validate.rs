//! `driftless validate`: exit codes, one-line diagnostics, sources.

use crate::support::{Repo, deployment, driftless_in};

#[test]
fn valid_folder_with_every_document_shape() {
    let dir = Repo::folder();
    dir.write("apps/web/deploy.yaml", &deployment("web", "busybox:1.35", 2))
        .write(
            "apps/multi.yml",
            "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        )
        .write(
            "apps/list.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n- {apiVersion: v1, kind: ServiceAccount-not, metadata: {name: x}}\n",
        )
        .write("apps/svc.json", r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}"#)
        .write("apps/empty.yaml", "")
        .write("apps/comments.yaml", "# nothing here yet\n")
        .write("apps/.drafts/broken.yaml", "this: [is not valid\n")
        .write("apps/notes.txt", "not a manifest");
    let run = driftless_in(dir.path(), &["validate", "apps"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.lines()[0],
        "apps/list.yaml:5:20: error: ServiceAccount-not/x: kind: unknown kind ServiceAccount-not (apiVersion v1); supported kinds: ConfigMap, CronJob, DaemonSet, Deployment, Endpoints, HorizontalPodAutoscaler, Ingress, Job, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ReplicaSet, ReplicationController, Secret, Service, StatefulSet, StorageClass"
    );
    assert_eq!(run.lines()[1], "6 resources in 6 files: 5 valid, 1 invalid");

    dir.write("apps/list.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n");
    let run = driftless_in(dir.path(), &["validate", "apps"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "5 resources in 6 files: 5 valid, 0 invalid\n"), "{run:?}");
}

#[test]
fn every_error_names_file_line_column_object_and_field() {
    let dir = Repo::folder();
    dir.write(
        "bad.yaml",
        "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  ServiceName: db
  replicas: many
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: busybox:1.35
        resources:
          limits: {cpu: lots}
",
    )
    .write("syntax.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n");
    let run = driftless_in(dir.path(), &["validate", "bad.yaml", "syntax.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines = run.lines();
    assert_eq!(lines[0], "bad.yaml:6:3: error: StatefulSet/db: spec.ServiceName: unknown field \"ServiceName\" (did you mean \"serviceName\"?)");
    assert_eq!(lines[1], "bad.yaml:7:3: error: StatefulSet/db: spec.replicas: \"many\" is not of type \"integer\"");
    assert!(
        lines[2].starts_with("bad.yaml:18:20: error: StatefulSet/db: spec.template.spec.containers[0].resources.limits.cpu: invalid quantity \"lots\""),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("syntax.yaml:5:1: error: "), "{}", lines[3]);
    assert_eq!(lines[4], "2 resources in 2 files: 0 valid, 2 invalid");
}

#[test]
fn json_output_matches_the_text() {
    let dir = Repo::folder();
    dir.write("a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 99}]\n");
    let run = driftless_in(dir.path(), &["validate", "-o", "json", "a.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["summary"]["invalid"], 1);
    assert_eq!(json["summary"]["errors"], 1);
    let d = &json["diagnostics"][0];
    assert_eq!((d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()), (Some("a.yaml"), Some(6), Some(22)));
    assert_eq!(d["object"], "Service/web");
    assert_eq!(d["field"], "spec.ports[0].nodePort");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = Repo::folder();
    let run = driftless_in(dir.path(), &["validate", "missing"]);
    assert_eq!((run.code, run.stderr.as_str()), (2, "driftless: error: missing: no such file or directory\n"), "{run:?}");
    let run = driftless_in(dir.path(), &["validate"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("nothing to validate"), "{run:?}");
    let run = driftless_in(dir.path(), &["validate", "--repo", "."]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.ends_with(": not a git repository\n"), "{run:?}");
    let run = driftless_in(dir.path(), &["validate", "--frobnicate"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn git_revisions_are_read_without_checkout() {
    let repo = Repo::git();
    repo.write("apps/web.yaml", &deployment("web", "busybox:1.35", 1)).write("README.md", "not a manifest");
    repo.commit("good");
    repo.write("apps/web.yaml", &deployment("web", "busybox:1.35", 1).replace("replicas: 1", "replicas: -1"));
    repo.commit("bad");
    // The working tree says something else again: it must never be read.
    repo.write("apps/web.yaml", "this is: [not yaml");

    let run = driftless_in(repo.path(), &["validate", "--repo", ".", "--path", "apps"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.lines()[0], "apps/web.yaml:6:3: error: Deployment/web: spec.replicas: -1: must be greater than or equal to 0");
    let run = driftless_in(repo.path(), &["validate", "--repo", ".", "--rev", "HEAD~1", "--path", "apps"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "1 resource in 1 file: 1 valid, 0 invalid\n"), "{run:?}");

    let run = driftless_in(repo.path(), &["validate", "--repo", ".", "--rev", "nope"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("driftless: error: revision \"nope\" not found in ."), "{run:?}");
    let run = driftless_in(repo.path(), &["validate", "--repo", ".", "--path", "elsewhere"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("driftless: error: path \"elsewhere\" does not exist at revision HEAD ("), "{run:?}");
}

#[test]
fn hostile_input_never_crashes() {
    let dir = Repo::folder();
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    dir.write("deep.yaml", &deep)
        .write("anchors.yaml", "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n")
        // YAML reads an out-of-range exponent as a string, so this one is valid.
        .write("numbers.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: numbers}\ndata: {a: 1e999999}\n")
        .write("tags.yaml", "!!binary aGVsbG8=\n")
        .write("scalar.yaml", "just a string\n")
        .write("nul.yaml", "kind: \u{0}\n");
    std::fs::write(dir.join("binary.yaml"), [0xff, 0xfe, 0x00, 0x9f, 0x92, 0x96]).unwrap();
    let run = driftless_in(dir.path(), &["validate", "."]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.ends_with("7 resources in 7 files: 1 valid, 6 invalid\n"), "{run:?}");
}
