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
