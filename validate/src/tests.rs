//! The pipeline end to end on in-memory files: what a user sees for each
//! kind of mistake.

use std::sync::Arc;

use driftless_manifest::{SourceFile, parse_file};

use crate::validate;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile { path: Arc::from(path), outcome: parse_file(Arc::from(path), text) }
}

fn lines(files: &[SourceFile]) -> Vec<String> {
    validate(files.to_vec()).diagnostics.iter().map(ToString::to_string).collect()
}

const GOOD_APP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  index.html: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: busybox:1.35
        ports:
        - {name: http, containerPort: 80}
        readinessProbe:
          httpGet: {path: /, port: http}
        volumeMounts:
        - {name: www, mountPath: /www}
      volumes:
      - name: www
        configMap: {name: web-config}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
";

#[test]
fn a_good_app_is_valid() {
    let report = validate(vec![file("apps/web.yaml", GOOD_APP)]);
    assert_eq!(report.diagnostics, vec![], "{:?}", lines(&[file("apps/web.yaml", GOOD_APP)]));
    assert_eq!(report.summary.to_string(), "3 resources in 1 file: 3 valid, 0 invalid");
    assert_eq!(report.objects.len(), 3);
}

#[test]
fn misspelt_field_names_file_line_and_field() {
    let text = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  ServiceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - {name: db, image: busybox:1.35}
";
    assert_eq!(
        lines(&[file("db.yaml", text)]),
        ["db.yaml:6:3: error: StatefulSet/db: spec.ServiceName: unknown field \"ServiceName\" (did you mean \"serviceName\"?)",]
    );
}

#[test]
fn selector_mismatch_and_bad_ports() {
    let text = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: other}
    spec:
      containers:
      - name: a
        image: busybox:1.35
        ports:
        - {containerPort: 70000}
      - name: a
        image: busybox:1.35
";
    assert_eq!(
        lines(&[file("web.yaml", text)]),
        [
            "web.yaml:10:7: error: Deployment/web: spec.template.metadata.labels: `selector` does not match template `labels`",
            "web.yaml:16:12: error: Deployment/web: spec.template.spec.containers[0].ports[0].containerPort: 70000: must be between 1 and 65535, inclusive",
            "web.yaml:17:9: error: Deployment/web: spec.template.spec.containers[1].name: duplicate container name \"a\"",
        ]
    );
}

#[test]
fn services_check_node_ports_and_names() {
    let text = "\
apiVersion: v1
kind: Service
metadata:
  name: Web
spec:
  type: ClusterIP
  ports:
  - {port: 80, nodePort: 30080}
  - {port: 81}
";
    assert_eq!(
        lines(&[file("svc.yaml", text)]),
        [
            "svc.yaml:4:3: error: Service/Web: metadata.name: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "svc.yaml:8:5: error: Service/Web: spec.ports[0]: missing required field \"name\": a service with more than one port must name each",
            "svc.yaml:8:16: error: Service/Web: spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'",
            "svc.yaml:9:5: error: Service/Web: spec.ports[1]: missing required field \"name\": a service with more than one port must name each",
        ]
    );
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  ports:\n  - {port: 80, nodePort: 80}\n";
    assert_eq!(
        lines(&[file("svc.yaml", text)]),
        ["svc.yaml:7:16: error: Service/web: spec.ports[0].nodePort: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",]
    );
}

#[test]
fn duplicates_across_files_and_dangling_references() {
    let a = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n";
    let b = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: c
    image: busybox:1.35
    env:
    - name: A
      valueFrom:
        configMapKeyRef: {name: settings, key: a}
";
    let report = validate(vec![file("a.yaml", a), file("b.yaml", b)]);
    let got: Vec<_> = report.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "b.yaml:4:3: error: ConfigMap/cfg: metadata.name: duplicate object: ConfigMap default/cfg is also declared at a.yaml:3",
            "b.yaml:8:21: warning: Pod/p: metadata.namespace: Namespace \"shop\" is not declared in these manifests: the object cannot be created until it exists",
            "b.yaml:16:9: warning: Pod/p: spec.containers[0].env[0].valueFrom.configMapKeyRef: ConfigMap \"settings\" is not declared in these manifests: the pod will not start until it exists",
        ]
    );
    assert_eq!(report.summary.to_string(), "3 resources in 2 files: 2 valid, 1 invalid (2 warnings)");
    assert!(!report.is_valid());
}

#[test]
fn unknown_kinds_syntax_errors_and_missing_names() {
    let files = [
        file("job.yaml", "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: j}\n"),
        file("old.yaml", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n"),
        file("broken.yaml", "kind: Pod\nmetadata:\n  name: [oops\n"),
        file("noname.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
    ];
    let got = lines(&files);
    assert!(
        got[0].starts_with("job.yaml:2:1: error: CronTab/j: kind: unknown kind CronTab (apiVersion stable.example.com/v1); supported kinds: ConfigMap,"),
        "{}",
        got[0]
    );
    assert_eq!(got[1], "old.yaml:1:1: error: Deployment/d: apiVersion: Deployment is served as apiVersion apps/v1, not extensions/v1beta1");
    assert!(got[2].starts_with("broken.yaml:4:1: error: ") || got[2].starts_with("broken.yaml:3:"), "{}", got[2]);
    assert_eq!(got[3], "noname.yaml:3:1: error: ConfigMap/<unnamed>: metadata: missing required field \"name\"");
    assert_eq!(validate(files.to_vec()).summary.invalid, 4);
}

#[test]
fn secrets_never_pass_bad_base64_and_need_their_keys() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: '%%%'\n";
    assert_eq!(
        lines(&[file("s.yaml", text)]),
        ["s.yaml:6:3: error: Secret/tls: data[\"tls.crt\"]: invalid value: must be base64-encoded (use stringData for plain text)",]
    );
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: x\n";
    assert_eq!(
        lines(&[file("s.yaml", text)]),
        ["s.yaml:5:1: error: Secret/tls: stringData: missing required key \"tls.key\" for a secret of type kubernetes.io/tls",]
    );
}

#[test]
fn registry_login_secrets_must_hold_json() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: pull}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: 'auths: x'\n";
    let got = lines(&[file("s.yaml", text)]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("s.yaml:6:3: error: Secret/pull: stringData[\".dockerconfigjson\"]: invalid value: <secret contents redacted>: not a JSON object"),
        "{got:?}"
    );
    assert!(!got[0].contains("auths: x"), "the message must not echo the secret: {got:?}");
    let text =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: pull}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\": {}}'\n";
    assert!(lines(&[file("s.yaml", text)]).is_empty());
}

#[test]
fn statefulset_claims_and_rolling_update_rules() {
    let text = "\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: busybox:1.35
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Never
      containers: [{name: web, image: busybox:1.35}]
";
    assert_eq!(
        lines(&[file("x.yaml", text)]),
        [
            "x.yaml:34:34: error: Deployment/web: spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0: the rollout could never make progress",
            "x.yaml:38:7: error: Deployment/web: spec.template.spec.restartPolicy: unsupported value \"Never\": only \"Always\" is supported in a pod template",
        ]
    );
}

#[test]
fn json_output_has_diagnostics_and_summary() {
    let report = validate(vec![file("a.json", "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"Bad_Name\"}}")]);
    let json = report.to_json();
    assert_eq!(json["summary"]["invalid"], 1);
    assert_eq!(json["diagnostics"][0]["field"], "metadata.name");
    assert_eq!(json["diagnostics"][0]["line"], 1);
    assert_eq!(json["diagnostics"][0]["severity"], "error");
}

mod never_panics {
    //! Property tests: the whole pipeline, rules included, survives any value
    //! in any field of a realistic manifest.

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{GOOD_APP, file};
    use crate::validate;

    fn hostile_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            "\\PC{0,20}".prop_map(Value::from),
            Just(json!("")),
            Just(json!("-")),
            Just(json!("1e999")),
            Just(json!("999999999999999999999999999999Ei")),
            Just(json!("%")),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Every JSON pointer in a value, so a mutation can target any field.
    fn pointers(value: &Value, here: String, out: &mut Vec<String>) {
        out.push(here.clone());
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| pointers(v, format!("{here}/{k}"), out)),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{here}/{i}"), out)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_field_any_value(doc in 0usize..3, target in any::<prop::sample::Index>(), replacement in hostile_value()) {
            let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(GOOD_APP)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            let mut value = documents[doc].clone();
            let mut all = Vec::new();
            pointers(&value, String::new(), &mut all);
            let pointer = target.get(&all).clone();
            match value.pointer_mut(&pointer) {
                Some(slot) if !pointer.is_empty() => *slot = replacement,
                _ => value = replacement,
            }
            let text = serde_json::to_string(&value).unwrap();
            let report = validate(vec![file("fuzz.json", &text)]);
            // A null root is an empty file; anything else is one resource.
            prop_assert!(report.summary.resources <= 1);
        }
    }
}

mod review_regressions {
    //! Cases where an earlier version disagreed with the API server.

    use super::{file, lines};

    fn pod_with(container_extra: &str, spec_extra: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec_extra}  containers:\n  - name: c\n    image: busybox:1.35\n{container_extra}")
    }

    #[test]
    fn probe_fields_of_zero_are_defaulted_not_rejected() {
        let probe = "    livenessProbe:\n      tcpSocket: {port: 80}\n      timeoutSeconds: 0\n      periodSeconds: 0\n      successThreshold: 0\n      failureThreshold: 0\n";
        assert_eq!(lines(&[file("p.yaml", &pod_with(probe, ""))]), Vec::<String>::new());
        let probe = "    livenessProbe:\n      tcpSocket: {port: 80}\n      successThreshold: 2\n";
        assert_eq!(
            lines(&[file("p.yaml", &pod_with(probe, ""))]),
            ["p.yaml:10:7: error: Pod/p: spec.containers[0].livenessProbe.successThreshold: 2: must be 1",]
        );
    }

    #[test]
    fn octal_modes_and_yaml_11_booleans_read_as_kubernetes_reads_them() {
        // The Secret volume example of the Kubernetes docs: 0400 is octal.
        let volume = "    volumeMounts: [{name: s, mountPath: /s}]\n";
        let spec = "  volumes:\n  - name: s\n    secret: {secretName: s, defaultMode: 0400}\n";
        assert_eq!(
            lines(&[file("p.yaml", &pod_with(volume, spec))]),
            [
                "p.yaml:7:14: warning: Pod/p: spec.volumes[0].secret.secretName: Secret \"s\" is not declared in these manifests: the pod will not start until it exists",
            ]
        );
        // `on` is a boolean to Kubernetes, so it is not a valid ConfigMap value.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  DEBUG: on\n  QUOTED: \"on\"\n";
        assert_eq!(lines(&[file("c.yaml", text)]), ["c.yaml:5:3: error: ConfigMap/c: data.DEBUG: true is not of type \"string\""]);
    }

    #[test]
    fn wrapped_base64_in_secret_data_is_valid() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  tls.crt: |\n    aGVsbG8g\n    d29ybGQ=\n";
        assert_eq!(lines(&[file("s.yaml", text)]), Vec::<String>::new());
    }

    #[test]
    fn secret_values_never_appear_in_diagnostics() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  pin: 493817\n";
        let got = lines(&[file("s.yaml", text)]);
        assert_eq!(got.len(), 1);
        assert!(!got[0].contains("493817"), "{}", got[0]);
        assert!(got[0].starts_with("s.yaml:5:3: error: Secret/s: stringData.pin: must be a string"), "{}", got[0]);
    }

    #[test]
    fn an_rc_selector_needs_template_labels() {
        let text = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n  selector: {app: r}\n  template:\n    spec:\n      containers: [{name: c, image: busybox:1.35}]\n";
        assert_eq!(
            lines(&[file("r.yaml", text)]),
            ["r.yaml:6:3: error: ReplicationController/r: spec.template.metadata.labels: `selector` does not match template `labels`",]
        );
    }

    #[test]
    fn a_namespace_on_a_cluster_scoped_object_is_ignored_with_a_warning() {
        let text = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast, namespace: shop}\nprovisioner: Example.COM/disk\n";
        assert_eq!(
            lines(&[file("sc.yaml", text)]),
            [
                "sc.yaml:3:24: warning: StorageClass/fast: metadata.namespace: ignored: StorageClass is cluster-scoped, so the API server clears metadata.namespace",
            ]
        );
    }

    #[test]
    fn percentages_are_digits_only_and_paths_need_not_be_absolute() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  strategy: {rollingUpdate: {maxSurge: '+5%'}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: busybox:1.35, volumeMounts: [{name: v, mountPath: data}]}]\n      volumes: [{name: v, hostPath: {path: '/var/../etc'}}]\n";
        let got = lines(&[file("d.yaml", text)]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("spec.strategy.rollingUpdate.maxSurge: \"+5%\": a valid percent string"), "{}", got[0]);
        assert!(got[1].contains("hostPath.path: \"/var/../etc\": must not contain '..'"), "{}", got[1]);
    }
}

mod api_server_agreement {
    //! Manifests in the style of Kubernetes' documentation, where an earlier
    //! version refused what the API server accepts or accepted what the
    //! node then refused.

    use super::{file, lines};
    use crate::validate;

    #[test]
    fn resource_backends_are_accepted_with_a_warning_as_the_ingress_skips_them() {
        // The Ingress documentation's resource backend example.
        let text = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-resource-backend
spec:
  defaultBackend:
    resource:
      apiGroup: k8s.example.com
      kind: StorageBucket
      name: static-assets
  rules:
    - http:
        paths:
          - path: /icons
            pathType: ImplementationSpecific
            backend:
              resource:
                apiGroup: k8s.example.com
                kind: StorageBucket
                name: icon-assets
";
        let report = validate(vec![file("ingress.yaml", text)]);
        assert!(report.is_valid(), "{:?}", lines(&[file("ingress.yaml", text)]));
        let got = lines(&[file("ingress.yaml", text)]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("ingress.yaml:7:5: warning: Ingress/ingress-resource-backend: spec.defaultBackend.resource:"), "{}", got[0]);
        assert!(
            got[1].starts_with("ingress.yaml:17:15: warning: Ingress/ingress-resource-backend: spec.rules[0].http.paths[0].backend.resource:"),
            "{}",
            got[1]
        );
        assert!(got[1].contains("not served by Driftless"), "{}", got[1]);
    }

    #[test]
    fn the_documented_jobs_are_valid_and_classic_job_mistakes_are_refused_at_their_line() {
        // "Running an example Job", and the pod failure policy example.
        let pi = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: [\"perl\",  \"-Mbignum=bpi\", \"-wle\", \"print bpi(2000)\"]
      restartPolicy: Never
  backoffLimit: 4
";
        let policy = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: job-pod-failure-policy-example
spec:
  completions: 12
  parallelism: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: docker.io/library/bash:5
        command: [\"bash\"]        # example command simulating a bug which triggers the FailJob action
        args:
        - -c
        - echo \"Hello world!\" && sleep 5 && exit 42
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes:
        containerName: main      # optional
        operator: In             # one of: In, NotIn
        values: [42]
    - action: Ignore             # one of: Ignore, FailJob, Count
      onPodConditions:
      - type: DisruptionTarget   # indicates Pod disruption
";
        for (name, text) in [("pi.yaml", pi), ("policy.yaml", policy)] {
            assert!(lines(&[file(name, text)]).is_empty(), "{name}: {:?}", lines(&[file(name, text)]));
        }
        // The mistakes: a Deployment's restart policy, a forgotten one, a
        // hand-written selector, and a failure policy on retried containers.
        let always = pi.replace("restartPolicy: Never", "restartPolicy: Always");
        assert_eq!(
            lines(&[file("pi.yaml", &always)]),
            ["pi.yaml:12:7: error: Job/pi: spec.template.spec.restartPolicy: unsupported value \"Always\": a Job's pods must be \"OnFailure\" or \"Never\""]
        );
        let forgotten = pi.replace("      restartPolicy: Never\n", "");
        let got = lines(&[file("pi.yaml", &forgotten)]);
        assert!(got.len() == 1 && got[0].starts_with("pi.yaml:7:5: error: Job/pi: spec.template.spec: missing required field \"restartPolicy\""), "{got:?}");
        let selector = pi.replace("spec:\n  template:", "spec:\n  selector: {matchLabels: {app: pi}}\n  template:");
        let got = lines(&[file("pi.yaml", &selector)]);
        assert!(got.len() == 1 && got[0].starts_with("pi.yaml:6:3: error: Job/pi: spec.selector: `selector` will be auto-generated"), "{got:?}");
        let retried = policy.replace("restartPolicy: Never", "restartPolicy: OnFailure");
        let got = lines(&[file("policy.yaml", &retried)]);
        assert!(got.iter().any(|l| l.contains("spec.podFailurePolicy: only allowed when the pod template's restartPolicy is \"Never\"")), "{got:?}");
    }

    #[test]
    fn projected_volumes_take_what_the_node_writes_and_refuse_tokens_clearly() {
        let pod = |sources: &str| {
            format!(
                "apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  containers: [{{name: c, image: busybox:1.35, volumeMounts: [{{name: all, mountPath: /all}}]}}]
  volumes:
  - name: all
    projected:
      sources:
{sources}"
            )
        };
        let good = pod("      - secret: {name: s, items: [{key: k, path: a/k}]}
      - configMap: {name: c, optional: true}
      - downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
");
        let got = lines(&[file("p.yaml", &good)]);
        assert!(got.iter().all(|l| l.contains("warning")), "{got:?}");
        let token = pod("      - serviceAccountToken: {path: token, expirationSeconds: 3600}\n");
        let got = lines(&[file("p.yaml", &token)]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("p.yaml:10:9: error: Pod/p: spec.volumes[0].projected.sources[0].serviceAccountToken: not supported by Driftless yet"),
            "{got:?}"
        );
        let twice = pod("      - secret: {name: s, items: [{key: k, path: same}]}\n      - configMap: {name: c, items: [{key: k, path: same}]}\n");
        let got = lines(&[file("p.yaml", &twice)]);
        assert!(got.iter().any(|l| l.contains("projected.sources[1].configMap.items[0].path: \"same\": conflicting duplicate paths")), "{got:?}");
    }

    #[test]
    fn the_documented_cronjob_is_valid_and_bad_schedules_are_refused_at_their_line() {
        let hello = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: \"* * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
";
        assert!(lines(&[file("cron.yaml", hello)]).is_empty(), "{:?}", lines(&[file("cron.yaml", hello)]));
        let seconds = hello.replace("\"* * * * *\"", "\"*/10 * * * * *\"");
        let got = lines(&[file("cron.yaml", &seconds)]);
        assert!(
            got.len() == 1 && got[0].starts_with("cron.yaml:6:3: error: CronJob/hello: spec.schedule: \"*/10 * * * * *\": expected exactly 5 fields"),
            "{got:?}"
        );
        let tz = hello.replace("\"* * * * *\"", "\"TZ=Etc/UTC 0 * * * *\"");
        let got = lines(&[file("cron.yaml", &tz)]);
        assert!(got.len() == 1 && got[0].contains("use timeZone field instead"), "{got:?}");
        let zone = hello.replace("spec:\n  schedule", "spec:\n  timeZone: Mars/Olympus_Mons\n  schedule");
        let got = lines(&[file("cron.yaml", &zone)]);
        assert!(
            got.len() == 1 && got[0].starts_with("cron.yaml:6:3: error: CronJob/hello: spec.timeZone: \"Mars/Olympus_Mons\": unknown time zone"),
            "{got:?}"
        );
        let always = hello.replace("restartPolicy: OnFailure", "restartPolicy: Always");
        assert!(lines(&[file("cron.yaml", &always)])[0].contains("spec.jobTemplate.spec.template.spec.restartPolicy: unsupported value \"Always\""));
    }

    #[test]
    fn the_documented_daemonset_is_valid_and_classic_daemonset_mistakes_are_refused_at_their_line() {
        let fluentd = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  namespace: kube-system
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      # these tolerations are to have the daemonset runnable on control plane nodes
      # remove them if your control plane nodes should not run pods
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      - key: node-role.kubernetes.io/master
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: quay.io/fluentd_elasticsearch/fluentd:v5.0.1
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
        volumeMounts:
        - name: varlog
          mountPath: /var/log
      # it may be desirable to set a high priority class to ensure that a DaemonSet Pod
      # preempts running Pods
      # priorityClassName: important
      terminationGracePeriodSeconds: 30
      volumes:
      - name: varlog
        hostPath:
          path: /var/log
";
        assert!(lines(&[file("ds.yaml", fluentd)]).is_empty(), "{:?}", lines(&[file("ds.yaml", fluentd)]));
        let mismatch = fluentd.replacen("        name: fluentd-elasticsearch\n    spec:", "        name: fluentd\n    spec:", 1);
        let got = lines(&[file("ds.yaml", &mismatch)]);
        assert!(got.iter().any(|l| l.starts_with("ds.yaml:") && l.contains("DaemonSet/fluentd-elasticsearch: spec.")), "{got:?}");
        let surge = fluentd.replace("spec:\n  selector:", "spec:\n  updateStrategy: {rollingUpdate: {maxSurge: 1}}\n  selector:");
        let got = lines(&[file("ds.yaml", &surge)]);
        assert!(
            got.len() == 1 && got[0].starts_with("ds.yaml:9:36: error: DaemonSet/fluentd-elasticsearch: spec.updateStrategy.rollingUpdate.maxSurge: may not be set when maxUnavailable is non-zero"),
            "{got:?}"
        );
    }

    #[test]
    fn autoscaling_v1_is_served_beside_v2_and_converted_as_the_api_server_does() {
        // The HorizontalPodAutoscaler walkthrough's object, in flow style.
        let text = "\
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: php-apache, }
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: php-apache,}
  minReplicas: 1
  maxReplicas: 10
  targetCPUUtilizationPercentage: 50  # percent of the pods' CPU requests
";
        let report = validate(vec![file("hpa.yaml", text)]);
        assert!(report.is_valid(), "{:?}", lines(&[file("hpa.yaml", text)]));
        let (_, entry) = report.objects.iter().next().unwrap();
        let value = entry.object.to_value();
        assert_eq!(value["apiVersion"], "autoscaling/v2");
        assert_eq!(value["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 50);

        let bad = text.replace("targetCPUUtilizationPercentage: 50", "targetCPUUtilizationPercentage: \"50%\"");
        assert_eq!(
            lines(&[file("hpa.yaml", &bad)]),
            ["hpa.yaml:8:3: error: HorizontalPodAutoscaler/php-apache: spec.targetCPUUtilizationPercentage: \"50%\": must be a whole number greater than 0"]
        );
        // A field of v2 only is unknown to v1, as strict reading says.
        let v2_field = text.replace("  minReplicas: 1\n", "  minReplicas: 1\n  behavior: {}\n");
        assert_eq!(
            lines(&[file("hpa.yaml", &v2_field)]),
            ["hpa.yaml:7:3: error: HorizontalPodAutoscaler/php-apache: spec.behavior: unknown field \"behavior\" in autoscaling/v1"]
        );
    }

    #[test]
    fn metrics_nobody_serves_are_refused_at_their_line() {
        // The walkthrough's queue metric ("Autoscaling on metrics not
        // related to Kubernetes objects"): nothing here serves it.
        let text = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: worker}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  - type: External
    external:
      metric:
        name: queue_messages_ready
        selector:
          matchLabels:
            queue: \"worker_tasks\"
      target:
        type: AverageValue
        averageValue: 30
";
        let found: Vec<String> = lines(&[file("hpa.yaml", text)]).into_iter().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("hpa.yaml:13:5: error:") && found[0].contains("spec.metrics[1].type: \"External\" metrics are not served by Driftless"),
            "{found:?}"
        );
        let gpu = text.replace("name: cpu", "name: nvidia.com/gpu");
        assert!(lines(&[file("hpa.yaml", &gpu)]).iter().any(|l| l.contains("spec.metrics[0].resource.name: \"nvidia.com/gpu\": Driftless measures")));
    }

    #[test]
    fn a_localhost_seccomp_profile_is_refused_at_its_line() {
        // The seccomp tutorial's audit pod: valid for the API server, but a
        // node with no profile folder cannot run it.
        let text = "\
apiVersion: v1
kind: Pod
metadata:
  name: audit-pod
  labels:
    app: audit-pod
spec:
  securityContext:
    seccompProfile:
      type: Localhost
      localhostProfile: profiles/audit.json
  containers:
  - name: test-container
    image: hashicorp/http-echo:1.0
    args:
    - \"-text=just made some syscalls!\"
    securityContext:
      allowPrivilegeEscalation: false
      seccompProfile: {type: RuntimeDefault, localhostProfile: x.json}
";
        let got = lines(&[file("pod.yaml", text)]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("pod.yaml:10:7: error: Pod/audit-pod: spec.securityContext.seccompProfile.type: \"Localhost\": not supported"),
            "{}",
            got[0]
        );
        assert!(
            got[1].contains("spec.containers[0].securityContext.seccompProfile.localhostProfile: can only be set when seccomp type is Localhost"),
            "{}",
            got[1]
        );
    }
}

/// What a report says, comparably: every diagnostic, the counts, and the
/// valid objects with their files.
fn said(report: &crate::Report) -> (Vec<String>, crate::Summary, Vec<(String, String)>) {
    let objects = report.objects.iter().map(|(r, e)| (r.to_string(), e.origin.file().to_string())).collect();
    (report.diagnostics.iter().map(ToString::to_string).collect(), report.summary, objects)
}

#[test]
fn the_incremental_validator_reports_exactly_what_a_whole_validation_does() {
    use driftless_manifest::RawFile;
    let raw = |path: &str, text: &str| RawFile::new(Arc::from(path), text.as_bytes().to_vec());
    let broken = GOOD_APP.replace("replicas: 2", "replicas: many");
    let duplicate = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata: {a: b}\n";
    let unreadable = "apiVersion: v1\nkind: [ConfigMap\n";
    let mut validator = crate::Validator::new();
    // Revisions as a branch moves: a file edited, broken, fixed, a
    // duplicate added in another file, a file that does not parse, a file
    // removed. Each is checked incrementally and whole.
    let revisions: Vec<Vec<RawFile>> = vec![
        vec![raw("a.yaml", GOOD_APP)],
        vec![raw("a.yaml", &GOOD_APP.replace("replicas: 2", "replicas: 3"))],
        vec![raw("a.yaml", &broken)],
        vec![raw("a.yaml", GOOD_APP), raw("b.yaml", duplicate)],
        vec![raw("a.yaml", GOOD_APP), raw("b.yaml", duplicate), raw("c.yaml", unreadable)],
        vec![raw("b.yaml", duplicate)],
        vec![raw("a.yaml", GOOD_APP), raw("b.yaml", duplicate)],
    ];
    for (i, files) in revisions.iter().enumerate() {
        let whole = validate(files.iter().cloned().map(RawFile::parse));
        let incremental = validator.validate(files);
        assert_eq!(said(&incremental), said(&whole), "revision {i}");
    }
    assert!(!said(&validator.validate(&revisions[3])).0.is_empty(), "the duplicate is still found when neither file changed");
}

/// Files checked side by side give the report files checked one by one
/// give: findings, their order, the objects kept.
#[test]
fn files_checked_side_by_side_report_as_one_by_one() {
    let raw = |path: &str, text: &str| driftless_manifest::RawFile::new(Arc::from(path), text.as_bytes().to_vec());
    let mut files = vec![raw("apps/good.yaml", GOOD_APP), raw("apps/broken.yaml", "kind: [unclosed\n")];
    for i in 0..40 {
        let bad = if i % 7 == 0 { "  replicas: many\n" } else { "" };
        files.push(raw(
            &format!("apps/{i:02}.yaml"),
            &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}}}\nspec:\n{bad}  selector: {{matchLabels: {{app: a}}}}\n  template:\n    metadata: {{labels: {{app: a}}}}\n    spec: {{containers: [{{name: c, image: busybox}}]}}\n"),
        ));
    }
    let one_by_one = validate(files.iter().cloned().map(driftless_manifest::RawFile::parse));
    let side_by_side = crate::validate_files(files, &driftless_manifest::RawFile::parse);
    assert!(!one_by_one.is_valid() && one_by_one.summary.valid > 30, "{}", one_by_one.summary);
    assert_eq!(side_by_side.to_json(), one_by_one.to_json());
}

/// Past the bound on objects, side by side stops taking files and refuses
/// the revision at the same file as one by one.
#[test]
fn files_checked_side_by_side_are_refused_at_the_same_file_past_the_bound() {
    let per_file = 1000;
    let list = |f: usize| -> String { (0..per_file).map(|i| format!("- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{f}-{i}}}}}\n")).collect() };
    let files: Vec<_> = (0..driftless_manifest::limits::MAX_OBJECTS / per_file + 3)
        .map(|f| {
            driftless_manifest::RawFile::new(
                Arc::from(format!("apps/{f:02}.yaml").as_str()),
                format!("apiVersion: v1\nkind: List\nitems:\n{}", list(f)).into_bytes(),
            )
        })
        .collect();
    let one_by_one = validate(files.iter().cloned().map(driftless_manifest::RawFile::parse));
    let side_by_side = crate::validate_files(files, &driftless_manifest::RawFile::parse);
    assert_eq!(one_by_one.summary.errors, 1, "{:?}", one_by_one.diagnostics.first());
    assert!(one_by_one.diagnostics[0].message.starts_with("more than 20000 objects"), "{}", one_by_one.diagnostics[0]);
    assert_eq!(side_by_side.to_json(), one_by_one.to_json());
}
