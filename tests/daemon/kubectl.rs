//! The real `kubectl` (v1.32, installed on every machine of this project's
//! kind) against `driftless up --listen` over HTTPS, with the kubeconfig
//! `driftless kubeconfig` prints: the daemon's CA trusted, a token from
//! the tokens file, and that token's identity as the author of the
//! commits its writes make.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::cluster::{Cluster, web};
use crate::documented_examples::{Forward, GAME_DEMO};

const GRACE: &str = "31ada4fd-adec-460c-809a-9e56ceb75269";
const TOKENS: &str = "\
# token,user,uid,\"groups\"
31ada4fd-adec-460c-809a-9e56ceb75269,grace,grace@example.invalid,\"devs\"
0123456789abcdef0123456789abcdef,ci,ci-bot
5f0e8a1c3b7d4e2f9a6c8b0d1e3f5a7c,vera,vera@example.invalid,\"driftless:view\"
";
const VERA: &str = "5f0e8a1c3b7d4e2f9a6c8b0d1e3f5a7c";

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

/// Runs `args` on a pseudo-terminal of 37 rows and 123 columns, resizes
/// it to 50 by 140 once the command has printed `size 37 123`, then types
/// a newline; returns everything the terminal showed.
fn in_terminal(args: &[String]) -> String {
    const DRIVER: &str = r#"
import fcntl, os, select, struct, subprocess, sys, termios, time
def size(fd, rows, cols): fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
master, slave = os.openpty()
size(master, 37, 123)
def controlling():
    os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0)
child = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling)
os.close(slave)
seen, resized, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try: data = os.read(master, 4096)
        except OSError: break
        if not data: break
        seen += data
    if not resized and b"size 37 123" in seen:
        size(master, 50, 140); os.kill(child.pid, 28); os.write(master, b"\n"); resized = True
    if child.poll() is not None and not ready: break
child.kill(); child.wait()
sys.stdout.write(seen.decode(errors="replace"))
"#;
    let out = Command::new("python3").arg("-c").arg(DRIVER).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_ok(kubeconfig: &Path, cache: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, cache, args);
    assert!(out.status.success(), "kubectl {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kubectl_reaches_the_api_over_https_with_a_generated_kubeconfig() {
    let port = crate::ports::free_port();
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n";
    let login = "apiVersion: v1\nkind: Secret\nmetadata: {name: login}\nstringData: {password: hunter2-in-the-clear}\n";
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}")), ("apps/settings.yaml", settings), ("apps/login.yaml", login)]);
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
    let ready = kubectl_ok(&kubeconfig, &cache, &["get", "deployment", "web", "--subresource=status", "-o", "jsonpath={.status.readyReplicas}"]);
    assert_eq!(ready, "2", "the status subresource");

    // Tables as on a cluster: the server's columns (the ones `driftless
    // get` prints), wide columns with -o wide, kubectl's own NAMESPACE and
    // LABELS columns from the rows' metadata.
    let table = kubectl_ok(&kubeconfig, &cache, &["get", "pods"]);
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{table}");
    assert!(lines[1..].iter().all(|l| l[0].starts_with("web-") && l[1..4] == ["1/1", "Running", "0"]), "{table}");
    assert_eq!(table.lines().next(), cluster.cli_ok(&["get", "pods"]).lines().next(), "one column implementation");
    let wide = kubectl_ok(&kubeconfig, &cache, &["get", "deployments", "-o", "wide"]);
    let wide: Vec<Vec<&str>> = wide.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(wide[0], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
    assert_eq!((wide[1][0], wide[1][1], wide[1][5], wide[1][6], wide[1][7]), ("web", "2/2", "httpd", "busybox:1.35", "app=web"));
    let all = kubectl_ok(&kubeconfig, &cache, &["get", "pods", "-A", "--show-labels"]);
    let header: Vec<&str> = all.lines().next().unwrap().split_whitespace().collect();
    assert_eq!((header[0], header[header.len() - 1]), ("NAMESPACE", "LABELS"), "{all}");
    assert!(all.lines().skip(1).all(|l| l.starts_with("default ") && l.contains("app=web")), "{all}");
    let nodes = kubectl_ok(&kubeconfig, &cache, &["get", "nodes"]);
    assert!(nodes.starts_with("NAME") && nodes.lines().nth(1).is_some_and(|l| l.starts_with("node-1 ") && l.contains("Ready")), "{nodes}");
    // The node renews its Lease, as a kubelet does.
    let leases = kubectl_ok(&kubeconfig, &cache, &["get", "leases", "-n", "kube-node-lease"]);
    assert!(leases.starts_with("NAME") && leases.lines().nth(1).is_some_and(|l| l.split_whitespace().take(2).eq(["node-1", "node-1"])), "{leases}");
    let resources = kubectl_ok(&kubeconfig, &cache, &["api-resources"]);
    let deployments: Vec<&str> = resources.lines().find(|l| l.starts_with("deployments ")).unwrap_or_default().split_whitespace().collect();
    assert_eq!(deployments, ["deployments", "deploy", "apps/v1", "true", "Deployment"], "{resources}");
    let one = kubectl_ok(&kubeconfig, &cache, &["get", "deployment", "web"]);
    assert!(one.lines().nth(1).is_some_and(|l| l.starts_with("web ") && l.contains("2/2")), "{one}");

    // exec over WebSocket (v5.channel.k8s.io): output, errors, exit code,
    // stdin; and cp, which is tar over exec.
    let pod = pods.lines().next().unwrap().trim_start_matches("pod/").to_owned();
    let out = kubectl(&kubeconfig, &cache, &["exec", &pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("err\n"), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cat = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["exec", "-i", &pod, "--", "sh", "-c", "tr a-z A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        cat.stdin.take().unwrap().write_all(b"through stdin\n").unwrap();
    }
    let out = cat.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "THROUGH STDIN\n");
    let copied = cluster.dir.path().join("copied-index.html");
    kubectl_ok(&kubeconfig, &cache, &["cp", &format!("{pod}:/tmp/www/index.html"), copied.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "version 1\n");

    // exec -it on a terminal: the container's terminal takes kubectl's
    // size at the start and again when kubectl's terminal is resized.
    let script = "i=0; until [ \"$(stty size)\" = \"37 123\" ] || [ $i -gt 200 ]; do sleep 0.05; i=$((i+1)); done; echo size $(stty size); \
                  read line; i=0; until [ \"$(stty size)\" = \"50 140\" ] || [ $i -gt 200 ]; do sleep 0.05; i=$((i+1)); done; echo size $(stty size)";
    let mut args = vec!["kubectl".to_owned(), "--kubeconfig".into(), kubeconfig.display().to_string(), "--cache-dir".into(), cache.display().to_string()];
    args.extend(["exec", "-it", pod.as_str(), "--", "sh", "-c", script].map(str::to_owned));
    let seen = in_terminal(&args);
    assert!(seen.contains("size 37 123") && seen.contains("size 50 140"), "{seen}");

    // port-forward: kubectl tunnels SPDY in a WebSocket, or upgrades to
    // SPDY with WebSockets turned off; each connection reaches the port on
    // the pod's own loopback, so a server bound to 127.0.0.1 in the pod is
    // reached too (9090 here: nothing outside the pod can reach it).
    kubectl_ok(&kubeconfig, &cache, &["exec", &pod, "--", "httpd", "-p", "127.0.0.1:9090", "-h", "/tmp/www"]);
    let forward = |port: &str, websockets: &str| {
        let mut command = Command::new("kubectl");
        command.arg("--kubeconfig").arg(&kubeconfig).arg("--cache-dir").arg(&cache);
        command.args(["port-forward", &format!("pod/{pod}"), &format!(":{port}")]).env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets);
        Forward::spawn(command)
    };
    for (port, websockets) in [("8080", "true"), ("8080", "false"), ("9090", "true")] {
        let forwarded = forward(port, websockets);
        assert!(forwarded.line.starts_with("Forwarding from 127.0.0.1:") && forwarded.line.ends_with(&format!(" -> {port}")), "{}", forwarded.line);
        for _ in 0..2 {
            let page = crate::cluster::try_http_get("127.0.0.1", forwarded.port, "/index.html");
            assert_eq!(page.as_deref().map(str::trim), Ok("version 1"), "port {port}, websockets {websockets}");
        }
    }
    let nothing = forward("9999", "true");
    assert!(crate::cluster::try_http_get("127.0.0.1", nothing.port, "/").is_err());
    drop(nothing);

    // describe (events by field selector), logs, wait, rollout status.
    let described = kubectl_ok(&kubeconfig, &cache, &["describe", "deployment", "web"]);
    assert!(described.contains("Replicas:") && described.contains("ScalingReplicaSet"), "{described}");
    let described = kubectl_ok(&kubeconfig, &cache, &["describe", "pod", &pod]);
    assert!(described.contains("Status:       Running") && described.contains("Started"), "{described}");
    assert!(described.lines().any(|l| l.trim_start().starts_with("Container ID:") && l.contains("driftless://")), "{described}");
    // The image by repository and manifest digest, as containerd reports it.
    assert!(described.lines().any(|l| l.trim_start().starts_with("Image ID:") && l.contains("docker.io/library/busybox@sha256:")), "{described}");
    let logs = kubectl(&kubeconfig, &cache, &["logs", &pod, "--tail=5"]);
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));
    kubectl_ok(&kubeconfig, &cache, &["wait", "--for=condition=Available", "deployment/web", "--timeout=30s"]);
    let status = kubectl_ok(&kubeconfig, &cache, &["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    // explain reads the OpenAPI v3 documents made from the same schemas
    // validation uses.
    let explained = kubectl_ok(&kubeconfig, &cache, &["explain", "deployment.spec.strategy"]);
    assert!(explained.contains("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1"), "{explained}");
    assert!(explained.contains("FIELD: strategy <DeploymentStrategy>"), "{explained}");
    assert!(explained.contains("The deployment strategy to use to replace existing pods with new ones."), "{explained}");
    // The same model as Swagger 2.0, in JSON, for tools that still read it.
    let swagger: serde_json::Value = serde_json::from_str(&kubectl_ok(&kubeconfig, &cache, &["get", "--raw", "/openapi/v2"])).unwrap();
    assert_eq!(swagger["swagger"], "2.0");
    assert_eq!(
        swagger.pointer("/definitions/io.k8s.api.apps.v1.Deployment/x-kubernetes-group-version-kind/0/kind").and_then(|v| v.as_str()),
        Some("Deployment")
    );

    // create -f and apply -f write new objects, and apply's patch edits a
    // declared one (the ConfigMap of Kubernetes' documentation).
    let game = cluster.dir.path().join("game.yaml");
    std::fs::write(&game, GAME_DEMO).unwrap();
    let out = kubectl_ok(&kubeconfig, &cache, &["create", "-f", game.to_str().unwrap()]);
    assert_eq!(out.trim(), "configmap/game-demo created");
    assert_eq!(cluster.git(&["log", "-1", "--format=%an|%s"]).trim(), "grace|create configmap/game-demo");
    let stored = cluster.get("/api/v1/namespaces/default/configmaps/game-demo");
    assert_eq!(stored.pointer("/data/player_initial_lives").and_then(|v| v.as_str()), Some("3"));
    std::fs::write(&game, GAME_DEMO.replace("player_initial_lives: \"3\"", "player_initial_lives: \"5\"").replace("game-demo", "game-two")).unwrap();
    let out = kubectl_ok(&kubeconfig, &cache, &["apply", "-f", game.to_str().unwrap()]);
    assert_eq!(out.trim(), "configmap/game-two created");
    std::fs::write(&game, GAME_DEMO.replace("player_initial_lives: \"3\"", "player_initial_lives: \"7\"").replace("game-demo", "game-two")).unwrap();
    // kubectl diff and apply --dry-run=server: the object as it would be,
    // and no commit.
    let head = cluster.git(&["rev-parse", "HEAD"]);
    let diff = kubectl(&kubeconfig, &cache, &["diff", "-f", game.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "{shown}{}", String::from_utf8_lossy(&diff.stderr));
    assert!(shown.contains("-  player_initial_lives: \"5\"") && shown.contains("+  player_initial_lives: \"7\""), "{shown}");
    let dry = kubectl_ok(&kubeconfig, &cache, &["apply", "-f", game.to_str().unwrap(), "--dry-run=server", "-o", "jsonpath={.data.player_initial_lives}"]);
    assert_eq!(dry, "7");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), head, "a dry run commits nothing");
    let out = kubectl_ok(&kubeconfig, &cache, &["apply", "-f", game.to_str().unwrap()]);
    assert_eq!(out.trim(), "configmap/game-two configured");
    let file = cluster.git(&["show", "HEAD:apps/default/configmap-game-two.yaml"]);
    assert!(file.contains("player_initial_lives: \"7\"") && !file.contains("last-applied"), "{file}");
    // Server-side apply: creates what is absent, then sets the fields the
    // applied configuration names; both are commits by the caller.
    let three = cluster.dir.path().join("game-three.yaml");
    std::fs::write(&three, GAME_DEMO.replace("game-demo", "game-three")).unwrap();
    let out = kubectl_ok(&kubeconfig, &cache, &["apply", "--server-side", "-f", three.to_str().unwrap()]);
    assert_eq!(out.trim(), "configmap/game-three serverside-applied");
    std::fs::write(&three, GAME_DEMO.replace("game-demo", "game-three").replace("player_initial_lives: \"3\"", "player_initial_lives: \"9\"")).unwrap();
    let out = kubectl_ok(&kubeconfig, &cache, &["apply", "--server-side", "-f", three.to_str().unwrap()]);
    assert_eq!(out.trim(), "configmap/game-three serverside-applied");
    assert!(cluster.git(&["log", "-1", "--format=%an|%s"]).starts_with("grace|kubectl apply configmap/game-three"), "{}", cluster.git(&["log", "-1"]));
    let file = cluster.git(&["show", "HEAD:apps/default/configmap-game-three.yaml"]);
    assert!(file.contains("player_initial_lives: \"9\""), "{file}");
    // Only the changed line moved.
    assert_eq!(cluster.git(&["diff", "--numstat", "HEAD~1", "HEAD"]).trim(), "1\t1\tapps/default/configmap-game-three.yaml");
    // kubectl edit: the live object in the editor, its patch committed.
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["edit", "configmap", "game-two"])
        .env("KUBE_EDITOR", "sed -i -e 's/player_initial_lives: \"7\"/player_initial_lives: \"9\"/'")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "configmap/game-two edited");
    assert_eq!(cluster.git(&["log", "-1", "--format=%an|%s"]).trim(), "grace|kubectl edit configmap/game-two");
    let file = cluster.git(&["show", "HEAD:apps/default/configmap-game-two.yaml"]);
    assert!(file.contains("player_initial_lives: \"9\"") && !file.contains("resourceVersion"), "{file}");

    // A wrong token is refused as the API server refuses it.
    let wrong = cluster.dir.path().join("wrong-kubeconfig");
    std::fs::write(&wrong, printed.replace(GRACE, "not-a-token-of-anyone-at-all")).unwrap();
    let out = kubectl(&wrong, &cache, &["get", "pods"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"), "{}", String::from_utf8_lossy(&out.stderr));

    // A read-only token (group driftless:view) reads and is refused writes
    // as RBAC's view role is, with nothing committed.
    let viewer = cluster.dir.path().join("viewer-kubeconfig");
    std::fs::write(&viewer, printed.replace(GRACE, VERA)).unwrap();
    assert!(kubectl_ok(&viewer, &cache, &["get", "deployments"]).contains("web"));
    let at = cluster.git(&["rev-parse", "HEAD"]);
    let out = kubectl(&viewer, &cache, &["scale", "deployment/web", "--replicas=4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("Forbidden") && stderr.contains("read-only"), "{stderr}");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), at, "nothing committed");
    // It reads no Secret, listed or one by one, as the view role reads
    // none; a writer does.
    for args in [&["get", "secrets"][..], &["get", "secret", "login", "-o", "yaml"][..], &["get", "secrets", "-A", "-o", "json"][..]] {
        let out = kubectl(&viewer, &cache, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("Forbidden") && stderr.contains("do not read Secrets"), "{args:?}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("aHVudGVyMi1pbi10aGUtY2xlYXI"), "{args:?} leaked the value");
    }
    assert!(kubectl_ok(&kubeconfig, &cache, &["get", "secret", "login", "-o", "yaml"]).contains("aHVudGVyMi1pbi10aGUtY2xlYXI"));
    // `driftless plan --live` as a reviewer with that token: the live
    // Secret comes back redacted.
    let live = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(cluster.data.join("pki/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {VERA}"), "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"objects": [{"kind": "Secret", "namespace": "default", "name": "login"}]}"#])
        .arg(format!("https://{address}/driftless/v1/live"))
        .output()
        .unwrap();
    let live = String::from_utf8_lossy(&live.stdout);
    assert!(live.contains("\"login\"") && !live.contains("aHVudGVyMi1pbi10aGUtY2xlYXI") && !live.contains("hunter2"), "{live}");

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

    // kubectl's own writes are commits too: scale (the scale subresource),
    // a server-side dry run committing nothing, delete of a declared
    // object; a derived object is refused naming its owner.
    let at = cluster.git(&["rev-parse", "HEAD"]);
    let out = kubectl_ok(&kubeconfig, &cache, &["scale", "deployment/web", "--replicas=5", "--dry-run=server"]);
    assert!(out.contains("deployment.apps/web scaled (server dry run)"), "{out}");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]), at, "a dry run commits nothing");
    let out = kubectl_ok(&kubeconfig, &cache, &["scale", "deployment", "web", "--replicas=2"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert_eq!(cluster.git(&["log", "-1", "--format=%an|%s|%(trailers:key=Driftless-Verb,valueonly)"]).trim(), "grace|scale deployment/web to 2|scale");
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    // kubectl's patches are commits of the fields they change: label,
    // set image; and rollout undo is the revert of the commit behind the
    // revision.
    let out = kubectl_ok(&kubeconfig, &cache, &["label", "deployment", "web", "tier=front"]);
    assert_eq!(out.trim(), "deployment.apps/web labeled");
    assert_eq!(cluster.git(&["log", "-1", "--format=%an|%s"]).trim(), "grace|kubectl label deployment/web");
    assert!(cluster.git(&["show", "HEAD:apps/web.yaml"]).contains("tier: front"));
    let layout = crate::images::busybox_layout();
    cluster.cli_ok(&["image", "import", layout.to_str().unwrap(), "--name", "localhost/busybox"]);
    let out = kubectl_ok(&kubeconfig, &cache, &["set", "image", "deployment/web", "httpd=localhost/busybox:1.35"]);
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let set_image = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let diff: Vec<String> = cluster
        .git(&["show", "--format=", "-U0", &set_image])
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .map(str::to_owned)
        .collect();
    assert_eq!(diff, ["-        image: busybox:1.35", "+        image: localhost/busybox:1.35"]);
    let image_of = |cluster: &Cluster| {
        cluster.pods().iter().map(|p| p.pointer("/spec/containers/0/image").and_then(|i| i.as_str()).unwrap_or("").to_owned()).collect::<Vec<_>>()
    };
    cluster.wait_for("pods on the new image", Duration::from_secs(60), || {
        let images = image_of(&cluster);
        (images.len() == 2 && images.iter().all(|i| i == "localhost/busybox:1.35") && cluster.pods().iter().all(crate::cluster::is_ready)).then_some(())
    });
    let history = kubectl_ok(&kubeconfig, &cache, &["rollout", "history", "deployment/web"]);
    assert!(history.contains(&set_image[..7]), "{history}");
    let out = kubectl_ok(&kubeconfig, &cache, &["rollout", "undo", "deployment/web"]);
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    let body = cluster.git(&["log", "-1", "--format=%an|%B"]);
    assert!(body.starts_with("grace|Revert \"kubectl set image deployment/web\"") && body.contains(&format!("This reverts commit {set_image}.")), "{body}");
    cluster.wait_for("pods back on the old image", Duration::from_secs(60), || {
        let images = image_of(&cluster);
        (images.len() == 2 && images.iter().all(|i| i == "busybox:1.35") && cluster.pods().iter().all(crate::cluster::is_ready)).then_some(())
    });

    let out = kubectl_ok(&kubeconfig, &cache, &["rollout", "restart", "deployment/web"]);
    assert_eq!(out.trim(), "deployment.apps/web restarted");
    assert!(cluster.git(&["show", "HEAD:apps/web.yaml"]).contains("kubectl.kubernetes.io/restartedAt:"));
    kubectl_ok(&kubeconfig, &cache, &["rollout", "status", "deployment/web", "--timeout=60s"]);
    // The old pods are gone and both new ones serve (what `get -w` below
    // lists).
    cluster.wait_for("the restarted pods alone, ready", Duration::from_secs(60), || {
        let pods = cluster.pods();
        (pods.len() == 2 && pods.iter().all(crate::cluster::is_ready)).then_some(())
    });

    let all = kubectl_ok(&kubeconfig, &cache, &["get", "all"]);
    assert!(all.contains("pod/web-") && all.contains("deployment.apps/web") && all.contains("replicaset.apps/web-"), "{all}");
    let out = kubectl_ok(&kubeconfig, &cache, &["delete", "configmap", "settings"]);
    assert_eq!(out.trim(), "configmap \"settings\" deleted");
    assert_eq!(cluster.git(&["log", "-1", "--format=%an|%s"]).trim(), "grace|delete configmap/settings");
    assert!(!cluster.repo.join("apps/settings.yaml").exists());
    let replicaset = kubectl_ok(&kubeconfig, &cache, &["get", "rs", "-o", "name"]);
    let out = kubectl(&kubeconfig, &cache, &["delete", replicaset.lines().next().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("made by deployment/web: change that instead"), "{}", String::from_utf8_lossy(&out.stderr));

    // get -w: the server's Table rows, one per change, as they come.
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods", "-w"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    drop(lines_rx);
    reader.join().unwrap();
    assert!(seen.first().is_some_and(|h| h.split_whitespace().collect::<Vec<_>>() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]), "{seen:?}");
    assert!(seen[1..].iter().all(|l| l.starts_with("web-") && l.contains("Running")), "{seen:?}");
}

/// A pod that prints a line every 0.2 s until told to stop, then exits 4.
const COUNTER: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: counter}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: counter
    image: busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'i=0; until [ -f /tmp/stop ]; do echo tick $i; i=$((i+1)); sleep 0.2; done; echo bye >&2; exit 4']
";

#[test]
fn kubectl_attach_follows_a_containers_output_to_its_exit() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/counter.yaml", COUNTER)]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    cluster.start_with(&["--listen", &format!("127.0.0.1:{port}"), "--token-file", tokens.to_str().unwrap()]);
    cluster.wait_for("the counter to run", Duration::from_secs(30), || {
        cluster.pods().iter().any(|p| p.pointer("/status/phase").and_then(|v| v.as_str()) == Some("Running")).then_some(())
    });
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.cli_ok(&["kubeconfig", "--user", "grace"])).unwrap();
    let cache = cluster.dir.path().join("kube-cache");

    let refused = kubectl(&kubeconfig, &cache, &["attach", "-i", "counter"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not keep containers' standard input open"), "{refused:?}");

    let mut attach = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["attach", "counter"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = attach.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(20)).expect("a line of output through attach");
    assert!(first.starts_with("tick "), "{first}");
    kubectl_ok(&kubeconfig, &cache, &["exec", "counter", "--", "touch", "/tmp/stop"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = attach.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "attach did not end with the container");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut attach.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("bye"), "the container's stderr, on kubectl's: {stderr}");
    assert_eq!(status.code(), Some(4), "{stderr}");
}

#[test]
fn kubectl_cordons_drains_and_uncordons_a_node() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS).unwrap();
    cluster.start_with(&["--listen", &format!("127.0.0.1:{port}"), "--token-file", tokens.to_str().unwrap()]);
    let before: Vec<String> = cluster.wait_ready("web-", 2, Duration::from_secs(30)).iter().map(crate::cluster::name).collect();
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.cli_ok(&["kubeconfig", "--user", "grace"])).unwrap();
    let cache = cluster.dir.path().join("kube-cache");

    let out = kubectl_ok(&kubeconfig, &cache, &["cordon", "node-1"]);
    assert!(out.contains("node/node-1 cordoned"), "{out}");
    let nodes = kubectl_ok(&kubeconfig, &cache, &["get", "nodes", "--no-headers"]);
    assert_eq!(nodes.split_whitespace().nth(1), Some("Ready,SchedulingDisabled"), "{nodes}");

    // Drained: its pods are evicted (the Eviction API) and gone; their
    // replacements wait, as the one node takes no pods.
    let out = kubectl_ok(&kubeconfig, &cache, &["drain", "node-1", "--ignore-daemonsets", "--timeout=60s"]);
    assert!(out.contains("node/node-1 drained"), "{out}");
    let pods = cluster.pods();
    assert!(pods.iter().all(|p| !before.contains(&crate::cluster::name(p))), "the evicted pods are gone");
    assert!(pods.iter().all(|p| p.pointer("/spec/nodeName").is_none()), "nothing is placed on a cordoned node");

    let out = kubectl_ok(&kubeconfig, &cache, &["uncordon", "node-1"]);
    assert!(out.contains("node/node-1 uncordoned"), "{out}");
    cluster.wait_ready("web-", 2, Duration::from_secs(60));
}
