//! ConfigMaps in git reach running pods: a configMap volume's files change
//! in place (atomically) when the ConfigMap's commit is applied, without a
//! restart, as with kubelet's volume sync.

use std::time::Duration;

use crate::cluster::{Cluster, http_get, name, pod_ip};

fn manifests(greeting: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: site}}
data:
  index.html: '{greeting}'
---
apiVersion: v1
kind: Pod
metadata: {{name: site}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: busybox:1.35
    command: [httpd, -f, -p, '8080', -h, /www]
    volumeMounts: [{{name: www, mountPath: /www, readOnly: true}}]
  volumes:
  - name: www
    configMap: {{name: site}}
"
    )
}

#[test]
fn a_changed_configmap_reaches_the_running_pod_without_a_restart() {
    let mut cluster = Cluster::new(&[("apps/site.yaml", &manifests("first"))]);
    cluster.start();
    let pod = cluster.wait_ready("site", 1, Duration::from_secs(30)).remove(0);
    let ip = pod_ip(&pod);
    let uid = pod["metadata"]["uid"].clone();
    assert_eq!(cluster.wait_for("the page", Duration::from_secs(10), || http_get(&ip, 8080, "/")).trim(), "first");

    cluster.commit(&[("apps/site.yaml", &manifests("second"))], "site: new greeting");
    cluster.wait_for("the new page", Duration::from_secs(20), || http_get(&ip, 8080, "/").filter(|b| b.trim() == "second"));
    let now = cluster.pods().remove(0);
    assert_eq!(name(&now), "site");
    assert_eq!(now["metadata"]["uid"], uid, "the same pod");
    assert_eq!(now["status"]["containerStatuses"][0]["restartCount"], 0, "not restarted");
}
