//! The translation against a fake resolver: Kubernetes' rules for command,
//! environment, volumes, probes, limits and security, and its errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use driftless_model::Object;
use serde_json::json;

use super::*;

struct Fake;

impl Resolve for Fake {
    fn image(&self, reference: &str, policy: &str, _: Option<&pull_secrets::Credentials>) -> Result<ResolvedImage, String> {
        match reference {
            "busybox:1.35" => Ok(ResolvedImage {
                layers: vec![PathBuf::from("/layers/1")],
                entrypoint: vec![],
                cmd: vec!["sh".into()],
                env: vec!["PATH=/bin:/usr/bin".into(), "HOME=/root".into()],
                working_dir: None,
                id: "docker.io/library/busybox@sha256:1".into(),
            }),
            // Built by umoci or `FROM scratch`: no Env at all.
            "plain:1" => Ok(ResolvedImage {
                layers: vec![PathBuf::from("/layers/2")],
                entrypoint: vec![],
                cmd: vec![],
                env: vec![],
                working_dir: None,
                id: String::new(),
            }),
            other => Err(format!("image {other} not found locally (pull policy {policy})")),
        }
    }
    fn config_map(&self, _ns: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        (name == "settings").then(|| [("greeting".to_owned(), b"hello".to_vec()), ("port".to_owned(), b"8080".to_vec())].into())
    }
    fn secret(&self, _ns: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        (name == "db").then(|| [("password".to_owned(), b"hunter2".to_vec())].into())
    }
    fn claim(&self, _ns: &str, name: &str) -> Option<PathBuf> {
        (name == "data").then(|| PathBuf::from("/var/lib/driftless/volumes/pv-1"))
    }
}

fn pod(spec: serde_json::Value) -> core::Pod {
    let value = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}}, "spec": spec});
    let Object::Pod(pod) = Object::parse(&value).unwrap() else { unreachable!() };
    *pod
}

fn translate_in(spec: serde_json::Value, node: &NodeSettings) -> (tempfile::TempDir, Result<PodRequest, TranslateError>) {
    let dir = tempfile::tempdir().unwrap();
    let identity = PodIdentity { uid: "uid-1".into(), ip: Some("10.244.0.7".into()) };
    let result = translate(&pod(spec), &identity, &PodDirs::under(dir.path()), node, &Fake);
    (dir, result)
}

#[test]
fn command_environment_and_expansion_follow_kubernetes() {
    let (_dir, request) = translate_in(
        json!({"containers": [{
        "name": "c", "image": "busybox:1.35",
        "command": ["sh", "-c"], "args": ["echo $(GREETING) $(POD_IP):$(port) $$(HOME)"],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "env": [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "URL", "value": "http://$(POD_IP):$(port)/"},
            {"name": "HOME", "value": "/home/web"}
        ]}]}),
        &NodeSettings::default(),
    );
    let request = request.unwrap();
    let c = &request.containers[0];
    assert_eq!(c.args, ["sh", "-c", "echo hello 10.244.0.7:8080 $(HOME)"]);
    assert_eq!(
        c.env,
        [
            "PATH=/bin:/usr/bin",
            "HOME=/home/web",
            "greeting=hello",
            "port=8080",
            "GREETING=hello",
            "POD_IP=10.244.0.7",
            "POD_NAME=web-0",
            "APP=web",
            "PASSWORD=hunter2",
            "URL=http://10.244.0.7:8080/",
        ]
    );
    assert_eq!(request.hostname, "web-0");
    assert_eq!(request.restart_policy, RestartPolicy::Always);
    assert_eq!(request.grace, Duration::from_secs(30));

    // No command: the image's entrypoint and cmd; args alone replace cmd.
    let (_dir, request) = translate_in(json!({"containers": [{"name": "c", "image": "busybox:1.35"}]}), &NodeSettings::default());
    assert_eq!(request.unwrap().containers[0].args, ["sh"]);
}

#[test]
fn an_image_without_path_gets_the_default_path_and_the_pod_can_override_it() {
    let (_dir, request) = translate_in(
        json!({"containers": [{"name": "c", "image": "plain:1", "command": ["httpd"], "env": [{"name": "MODE", "value": "x"}]}]}),
        &NodeSettings::default(),
    );
    assert_eq!(request.unwrap().containers[0].env, [format!("PATH={DEFAULT_PATH}"), "MODE=x".to_owned()]);
    let (_dir, request) = translate_in(
        json!({"containers": [{"name": "c", "image": "plain:1", "command": ["app"], "env": [{"name": "PATH", "value": "/opt/bin"}]}]}),
        &NodeSettings::default(),
    );
    assert_eq!(request.unwrap().containers[0].env, ["PATH=/opt/bin"]);
    // An image's own PATH is kept as it is.
    let (_dir, request) = translate_in(json!({"containers": [{"name": "c", "image": "busybox:1.35"}]}), &NodeSettings::default());
    assert_eq!(request.unwrap().containers[0].env, ["PATH=/bin:/usr/bin", "HOME=/root"]);
}

#[test]
fn volumes_files_and_pod_files() {
    let (dir, request) = translate_in(
        json!({
        "subdomain": "web",
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "conf", "configMap": {"name": "settings", "items": [{"key": "greeting", "path": "conf/greeting.txt", "mode": 0o600}]}},
            {"name": "creds", "secret": {"secretName": "db"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
        ],
        "containers": [{"name": "c", "image": "busybox:1.35", "volumeMounts": [
            {"name": "cache", "mountPath": "/cache", "subPath": "tmp"},
            {"name": "mem", "mountPath": "/mem"},
            {"name": "conf", "mountPath": "/etc/app"},
            {"name": "creds", "mountPath": "/creds"},
            {"name": "info", "mountPath": "/info"},
            {"name": "data", "mountPath": "/data", "readOnly": true}
        ]}]}),
        &NodeSettings::default(),
    );
    let request = request.unwrap();
    let root = dir.path();
    let conf = root.join("volumes/conf/conf/greeting.txt");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "hello");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(root.join("volumes/creds/password")).unwrap(), "hunter2");
    assert_eq!(std::fs::read_to_string(root.join("volumes/info/labels")).unwrap(), "app=\"web\"");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap(),
        "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    );
    assert!(std::fs::read_to_string(root.join("etc/hosts")).unwrap().contains("10.244.0.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n"));

    let mounts: Vec<(&str, &MountSource, bool)> = request.containers[0].mounts.iter().map(|m| (m.destination.as_str(), &m.source, m.read_only)).collect();
    assert_eq!(&mounts[..3].iter().map(|m| m.0).collect::<Vec<_>>(), &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
    assert_eq!(mounts[3], ("/cache", &MountSource::Bind(root.join("volumes/cache/tmp")), false));
    assert_eq!(mounts[4], ("/mem", &MountSource::Tmpfs { size: Some(64 << 20) }, false));
    assert!(mounts[5].2, "configMap volumes are read-only");
    assert_eq!(mounts[8], ("/data", &MountSource::Bind(PathBuf::from("/var/lib/driftless/volumes/pv-1")), true));
}

#[test]
fn probes_limits_and_security() {
    let (_dir, request) = translate_in(
        json!({"containers": [{
            "name": "c", "image": "busybox:1.35",
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTPS", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 5},
            "startupProbe": {"httpGet": {"path": "/", "port": "metrics"}}
        }]}),
        &NodeSettings::default(),
    );
    let c = &request.unwrap().containers[0];
    assert_eq!(c.memory_limit, Some(64 << 20));
    assert_eq!(c.cpu_quota, Some((50_000, 100_000)));
    assert_eq!((c.uid, c.gid, c.read_only_root), (1000, 3000, true));
    assert_eq!(c.capabilities.as_deref(), Some(&["NET_BIND_SERVICE".to_owned()][..]));
    let readiness = c.readiness.as_ref().unwrap();
    let expected = ProbeAction::HttpGet { https: true, host: None, port: 8080, path: "/healthz".into(), headers: vec![("X-Probe".into(), "1".into())] };
    assert_eq!(readiness.action, expected);
    // A port name the container does not have fails, as kubelet's does.
    let startup = c.startup.as_ref().unwrap();
    assert_eq!(startup.action, ProbeAction::Unresolvable("strconv.Atoi: parsing \"metrics\": invalid syntax".into()));
    assert_eq!(readiness.settings.period, Duration::from_secs(2));
    assert_eq!(c.liveness.as_ref().unwrap().settings.failure_threshold, 5);
}

#[test]
fn errors_carry_kubelets_reasons() {
    let node = NodeSettings::default();
    let cases = [
        (json!({"containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "Never"}]}), "ErrImageNeverPull"),
        (json!({"containers": [{"name": "c", "image": "nginx:1"}]}), "ErrImagePull"),
        (
            json!({"containers": [{"name": "c", "image": "busybox:1.35", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}]}),
            "CreateContainerConfigError",
        ),
        (
            json!({"volumes": [{"name": "s", "secret": {"secretName": "nope"}}], "containers": [{"name": "c", "image": "busybox:1.35"}]}),
            "CreateContainerConfigError",
        ),
        (json!({"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}], "containers": [{"name": "c", "image": "busybox:1.35"}]}), "CreateContainerError"),
        (json!({"containers": [{"name": "c", "image": "busybox:1.35", "securityContext": {"privileged": true}}]}), "CreateContainerError"),
    ];
    for (spec, reason) in cases {
        let (_dir, result) = translate_in(spec.clone(), &node);
        let error = result.err().unwrap_or_else(|| panic!("{spec} should fail"));
        assert_eq!(error.reason(), reason, "{spec}: {error}");
    }
    // Optional references may be missing.
    let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "nope", "optional": true}}],
                      "containers": [{"name": "c", "image": "busybox:1.35", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": true}}}]}]});
    assert!(translate_in(spec, &node).1.is_ok());
}

#[test]
fn seccomp_profiles_and_privileged() {
    let translate = |spec: serde_json::Value, node: &NodeSettings| translate_in(spec, node).1;
    let node = NodeSettings::default();
    let plain = translate(json!({"containers": [{"name": "c", "image": "busybox:1.35"}]}), &node).unwrap();
    assert_eq!(plain.containers[0].seccomp, Seccomp::RuntimeDefault, "unset means RuntimeDefault");
    // The container's profile wins over the pod's.
    let spec = json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
                      "containers": [{"name": "a", "image": "busybox:1.35"},
                                     {"name": "b", "image": "busybox:1.35", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}]});
    let request = translate(spec, &node).unwrap();
    assert_eq!([request.containers[0].seccomp, request.containers[1].seccomp], [Seccomp::Unconfined, Seccomp::RuntimeDefault]);
    let localhost = json!({"containers": [{"name": "c", "image": "busybox:1.35",
                           "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}]});
    let error = translate(localhost, &node).err().unwrap();
    assert!(error.to_string().contains("Localhost"), "{error}");
    // Privileged, where the node allows it: every capability, no filter.
    let allowing = NodeSettings { allow_privileged: true, ..NodeSettings::default() };
    let spec = json!({"containers": [{"name": "c", "image": "busybox:1.35", "securityContext": {"privileged": true}}]});
    let c = &translate(spec, &allowing).unwrap().containers[0];
    assert_eq!(c.seccomp, Seccomp::Unconfined);
    assert!(c.capabilities.as_ref().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
    assert!(c.privileged && !c.no_new_privileges);
    // no_new_privs only for `allowPrivilegeEscalation: false`.
    assert!(!plain.containers[0].no_new_privileges && !plain.containers[0].privileged);
    let spec = json!({"containers": [{"name": "c", "image": "busybox:1.35", "securityContext": {"allowPrivilegeEscalation": false}}]});
    assert!(translate(spec, &node).unwrap().containers[0].no_new_privileges);
}
