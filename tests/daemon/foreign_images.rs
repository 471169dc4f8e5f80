//! Images built by other tools than ours, run as Kubernetes would run them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::{Cluster, http_get, name, pod_ip};

/// `umoci new` writes an image config with no `Env` at all, as buildah and
/// `FROM scratch` builds often do; the layer holds busybox and its applet
/// links, so `httpd` is found only through PATH.
fn umoci_image_without_env(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let umoci = |args: &[&str]| {
        let out = Command::new("umoci").args(args).output().expect("umoci (Debian's package; scripts/setup.sh installs it)");
        assert!(out.status.success(), "umoci {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let image = format!("{}:1", layout.display());
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    umoci(&["unpack", "--image", &image, bundle.to_str().unwrap()]);
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("www")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["httpd", "sh", "env"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("www/index.html"), "made by umoci\n").unwrap();
    umoci(&["repack", "--image", &image, bundle.to_str().unwrap()]);
    layout
}

const PLAIN: &str = "apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: plain:1
    imagePullPolicy: Never
    # Not an absolute path: found through the default PATH.
    command: [httpd, -f, -p, '8080', -h, /www]
    env: [{name: GREETING, value: hello}]
";

#[test]
fn an_image_with_no_env_runs_a_command_found_through_the_default_path() {
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image_without_env(work.path());
    let blobs = std::fs::read_dir(layout.join("blobs/sha256")).unwrap();
    let configs: Vec<String> = blobs.map(|b| std::fs::read_to_string(b.unwrap().path()).unwrap_or_default()).filter(|t| t.contains("\"rootfs\"")).collect();
    assert!(configs.iter().all(|c| !c.contains("\"Env\"")), "the test image must have no Env: {configs:?}");

    let mut cluster = Cluster::new(&[("apps/plain.yaml", PLAIN)]);
    cluster.cli_ok(&["image", "import", layout.to_str().unwrap(), "--name", "plain"]);
    cluster.start();
    let pod = cluster.wait_for("the pod to run", Duration::from_secs(30), || {
        cluster.pods().into_iter().find(|p| name(p) == "plain" && p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running"))
    });
    let body = cluster.wait_for("httpd to answer", Duration::from_secs(10), || http_get(&pod_ip(&pod), 8080, "/"));
    assert_eq!(body, "made by umoci\n");
    let env = cluster.cli_ok(&["exec", "plain", "--", "env"]);
    assert!(env.lines().any(|l| l == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "{env}");
    assert!(env.lines().any(|l| l == "GREETING=hello"), "{env}");
    let pod = cluster.get("/api/v1/namespaces/default/pods/plain");
    assert_eq!(pod.pointer("/status/containerStatuses/0/restartCount"), Some(&serde_json::json!(0)), "{pod:#}");
}
