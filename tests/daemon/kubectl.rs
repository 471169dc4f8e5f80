//! The real `kubectl` (v1.32, installed on every machine of this project's
//! kind) against `driftless up --listen` over HTTPS, with the kubeconfig
//! `driftless kubeconfig` prints: the daemon's CA trusted, a token from
//! the tokens file, and that token's identity as the author of the
//! commits its writes make.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::cluster::{Cluster, web};

const GRACE: &str = "31ada4fd-adec-460c-809a-9e56ceb75269";
const TOKENS: &str = "\
# token,user,uid,\"groups\"
31ada4fd-adec-460c-809a-9e56ceb75269,grace,grace@example.invalid,\"devs\"
0123456789abcdef0123456789abcdef,ci,ci-bot
";

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed on this project's machines")
}

fn kubectl_ok(kubeconfig: &Path, cache: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, cache, args);
    assert!(out.status.success(), "kubectl {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubectl_reaches_the_api_over_https_with_a_generated_kubeconfig() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    let address = format!("127.0.0.1:{port}");
    cluster.start_with(&["--listen", &address, "--token-file", tokens.to_str().unwrap()]);
    cluster.wait_ready("web-", 2, Duration::from_secs(30));

    let kubeconfig = cluster.dir.path().join("kubeconfig");
    let printed = cluster.cli_ok(&["kubeconfig", "--user", "grace"]);
    assert!(printed.contains(&format!("server: https://{address}")) && printed.contains("certificate-authority-data:"), "{printed}");
    assert!(printed.contains(GRACE) && printed.contains("current-context: grace@driftless"), "{printed}");
    std::fs::write(&kubeconfig, &printed).unwrap();
    let cache = cluster.dir.path().join("kube-cache");

    // Reads, with the CA verified (no --insecure-skip-tls-verify).
    let version: serde_json::Value = serde_json::from_str(&kubectl_ok(&kubeconfig, &cache, &["version", "-o", "json"])).unwrap();
    assert!(version["serverVersion"]["gitVersion"].as_str().is_some_and(|v| v.contains("driftless")), "{version}");
    let pods = kubectl_ok(&kubeconfig, &cache, &["get", "pods", "-o", "name"]);
    assert_eq!(pods.lines().filter(|l| l.starts_with("pod/web-")).count(), 2, "{pods}");
    let ready = kubectl_ok(&kubeconfig, &cache, &["get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}"]);
    assert_eq!(ready, "2");

    // A wrong token is refused as the API server refuses it.
    let wrong = cluster.dir.path().join("wrong-kubeconfig");
    std::fs::write(&wrong, printed.replace(GRACE, "not-a-token-of-anyone-at-all")).unwrap();
    let out = kubectl(&wrong, &cache, &["get", "pods"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"), "{}", String::from_utf8_lossy(&out.stderr));

    // A write over HTTPS is a commit by the token's identity, whatever the
    // request claims.
    let server = format!("https://{address}");
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["scale", "deploy/web", "--replicas", "3", "--author", "Mallory <m@example.invalid>", "--server", &server, "--token", GRACE])
        .arg("--certificate-authority")
        .arg(cluster.data.join("pki/ca.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cluster.git(&["log", "-1", "--format=%an <%ae>|%s"]).trim(), "grace <grace@example.invalid>|scale deployment/web to 3");
    cluster.wait_ready("web-", 3, Duration::from_secs(30));
}
