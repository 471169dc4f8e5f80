//! Pods pulling from a private registry (Debian's docker-registry on
//! 127.0.0.1, htpasswd auth): refused with the registry's answer without
//! a login, pulled with the pod's `imagePullSecrets`, and kubelet's
//! `Pulling`/`Pulled` events recorded.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, http_get, is_ready, name, pod_ip, web};
use crate::registry::Registry;

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: registry-login
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{\"auths\": {\"HOST\": {\"username\": \"puller\", \"password\": \"pull-pass\"}}}'
";

#[test]
fn a_private_image_is_refused_without_a_login_and_pulled_with_the_pods_pull_secret() {
    let registry = Registry::start("puller", "pull-pass");
    registry.push_busybox("puller", "pull-pass");
    let host = registry.host();
    let image = format!("{host}/library/busybox:1.35");
    let anonymous = web(1, "1", "{type: RollingUpdate}").replace("image: busybox:1.35", &format!("image: {image}"));
    let mut cluster = Cluster::new(&[("apps/web.yaml", &anonymous)]);
    cluster.start_with(&["--insecure-registry", &host]);

    // Without a login the registry refuses, and the pod says so.
    let message = cluster.wait_for("the pod waiting on its image", Duration::from_secs(30), || {
        let pod = cluster.pods().into_iter().next()?;
        let waiting = pod.pointer("/status/containerStatuses/0/state/waiting")?;
        let reason = waiting["reason"].as_str()?;
        (reason == "ErrImagePull" || reason == "ImagePullBackOff").then(|| waiting["message"].as_str().unwrap_or("").to_owned())
    });
    assert!(message.to_ascii_lowercase().contains("not authorized"), "the registry's answer reaches the user: {message}");

    // The login, as a dockerconfigjson Secret the pod template names.
    let with_login = anonymous
        .replace("      terminationGracePeriodSeconds: 1\n", "      terminationGracePeriodSeconds: 1\n      imagePullSecrets: [{name: registry-login}]\n");
    cluster.commit(&[("apps/login.yaml", &SECRET.replace("HOST", &host)), ("apps/web.yaml", &with_login)], "web: pull with the registry login");
    let pods = cluster.wait_for("one ready pod of the new template, and no other", Duration::from_secs(60), || {
        let pods = cluster.pods();
        (pods.len() == 1 && is_ready(&pods[0]) && pods[0].pointer("/spec/imagePullSecrets/0/name").and_then(Value::as_str) == Some("registry-login"))
            .then_some(pods)
    });
    assert_eq!(http_get(&pod_ip(&pods[0]), 8080, "/").unwrap().trim(), "version 1");

    let described = cluster.cli_ok(&["describe", "pod", &name(&pods[0])]);
    assert!(described.contains(&format!("Pulling image \"{image}\"")), "{described}");
    assert!(described.contains(&format!("Successfully pulled image \"{image}\" in ")), "{described}");
    // The Secret's password never shows in the ledger of what was applied.
    let ledger = cluster.git(&["log", "-p", "refs/driftless/applied"]);
    assert!(ledger.contains("registry-login") && !ledger.contains("pull-pass"), "the applied Secret is redacted");
}

/// A pod of `image` that never needs to start.
fn hostile_pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    command: [sleep, '600']
"
    )
}

#[test]
fn a_hostile_registry_fails_only_its_pods_with_the_reason_in_their_events() {
    use crate::hostile_registry::{Fault, HostileRegistry};
    let busybox = crate::images::busybox_layout();
    let registry = HostileRegistry::start(&[
        ("corrupt/busybox", &busybox, Fault::CorruptLayer),
        ("endless/busybox", &busybox, Fault::EndlessLayer),
        ("traversal/busybox", &busybox, Fault::TraversalDigest),
    ]);
    let host = registry.host();
    let cases = [
        ("corrupt", "Invalid digest. Expected sha256:"),
        ("endless", "the registry sent more than the"),
        ("traversal", "unsupported digest \"sha256:../../../../tmp/driftless-registry-escape\""),
    ];
    let mut files: Vec<(String, String)> = vec![("apps/web.yaml".into(), web(1, "1", "{type: RollingUpdate}"))];
    for (name, _) in cases {
        files.push((format!("apps/{name}.yaml"), hostile_pod(name, &format!("{host}/{name}/busybox:1.35"))));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let mut cluster = Cluster::new(&files);
    cluster.start_with(&["--insecure-registry", &host]);
    let web_pod =
        cluster.wait_for("the web pod Ready", Duration::from_secs(60), || cluster.pods().into_iter().find(|p| name(p).starts_with("web-") && is_ready(p)));

    for (pod, reason) in cases {
        let described = cluster.wait_for(&format!("{pod}'s pull failure in its events"), Duration::from_secs(60), || {
            let described = cluster.cli_ok(&["describe", "pod", pod]);
            let failed = format!("Failed to pull image \"{host}/{pod}/busybox:1.35\": pulling");
            described.lines().any(|l| l.contains("Warning") && l.contains(&failed) && l.contains(reason)).then_some(described)
        });
        assert!(described.contains("ErrImagePull") || described.contains("ImagePullBackOff"), "{described}");
    }
    assert!(!std::path::Path::new("/tmp/driftless-registry-escape").exists());
    // The pod that was running runs on, untouched.
    let pods = cluster.pods();
    let still = pods.iter().find(|p| name(p) == name(&web_pod)).expect("the web pod is still there");
    assert!(is_ready(still), "{still}");
    assert_eq!(http_get(&pod_ip(still), 8080, "/").unwrap().trim(), "version 1");
}
