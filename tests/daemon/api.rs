//! The API and the kubectl-like CLI over it: selectors, output formats,
//! watches, describe with events, logs, and the HTTPS listener behind a
//! bearer token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, name, web};

#[test]
fn the_cli_lists_watches_describes_and_reaches_tcp_with_a_token() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    let token = cluster.dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let address = format!("127.0.0.1:{port}");
    cluster.start_with(&["--listen", &address, "--token-file", token.to_str().unwrap()]);
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));

    // Selectors and output formats.
    let names = cluster.cli_ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(names.lines().count(), 2, "{names}");
    assert!(names.lines().all(|l| l.starts_with("pod/web-")), "{names}");
    assert!(cluster.cli_ok(&["get", "pods", "-l", "app in (other)", "-o", "name"]).is_empty());
    let yaml = cluster.cli_ok(&["get", "deployment", "web", "-o", "yaml"]);
    assert!(yaml.contains("kind: Deployment") && yaml.contains("availableReplicas: 2"), "{yaml}");
    let json: serde_json::Value = serde_json::from_str(&cluster.cli_ok(&["get", "pods", "-o", "json"])).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
    let all = cluster.cli_ok(&["get", "pods", "-A", "-o", "wide"]);
    assert!(all.starts_with("NAMESPACE") && all.contains("node-1"), "{all}");
    let missing = cluster.cli(&["get", "pod", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));

    // describe, with events; logs.
    let described = cluster.cli_ok(&["describe", "deployment", "web"]);
    assert!(described.contains("Replicas:     2 desired") && described.contains("ScalingReplicaSet"), "{described}");
    let pod = name(&pods[0]);
    let described = cluster.cli_ok(&["describe", "pod", &pod]);
    assert!(described.contains("Started") && described.contains("Ready:          true"), "{described}");
    assert!(described.contains("Container image \"busybox:1.35\" already present on machine"), "{described}");
    let logs = cluster.cli(&["logs", &pod]);
    assert!(logs.status.success());

    // get -w prints the rows of pods as they change.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["get", "pods", "-w"])
        .env("DRIFTLESS_DATA_DIR", &cluster.data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The initial table: header and both pods.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut initial = Vec::new();
    while initial.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            initial.push(line);
        }
    }
    assert!(initial[0].starts_with("NAME"), "{initial:?}");
    cluster.commit(&[("apps/web.yaml", &web(3, "1", "{type: RollingUpdate}"))], "web: 3 replicas");
    let existing: Vec<String> = pods.iter().map(name).collect();
    let new_row = cluster.wait_for("a watched row for the new pod", Duration::from_secs(20), || {
        let line = lines_rx.recv_timeout(Duration::from_millis(100)).ok()?;
        let first = line.split_whitespace().next()?.to_owned();
        (first.starts_with("web-") && !existing.contains(&first)).then_some(line)
    });
    assert!(new_row.contains("web-"));
    let _ = watch.kill();
    let _ = watch.wait();
    reader.join().unwrap();

    // HTTPS with the token (the daemon's own CA trusted), refused without
    // it, and refused by a client that does not trust the certificate.
    let server = format!("https://{address}");
    let ca = cluster.data.join("pki/ca.crt");
    let remote = |token: &str, ca: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(["get", "pods", "--server", &server, "--token", token, "--certificate-authority"])
            .arg(ca)
            .env_remove("DRIFTLESS_DATA_DIR")
            .output()
            .unwrap()
    };
    let out = remote("s3cret", &ca);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Running"));
    let out = remote("wrong", &ca);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
    let other = cluster.dir.path().join("other-ca.crt");
    std::fs::write(&other, rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap().cert.pem()).unwrap();
    let out = remote("s3cret", &other);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("UnknownIssuer"), "{}", String::from_utf8_lossy(&out.stderr));

    // Writes other than deleting a pod are refused with where to go instead.
    let refused = cluster.try_get("/api/v1/namespaces/default/pods/x/nonsense");
    assert!(refused.is_err());
}
