//! `/metrics`: a real Prometheus scrapes the daemon over HTTPS with a
//! bearer token, and its queries see what happened: the revision running,
//! pods by phase, syncs and refusals, reconciles, DNS answers and proxy
//! applies. `promtool` checks the exposition itself.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, web};

const TOKEN: &str = "5c0a8f1e2b7d4c3a9e6f0b1d2c3e4f5a";

/// A Prometheus server of the test's own, killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, target: &str, ca: &Path) -> Prometheus {
        let token = dir.join("prometheus.token");
        std::fs::write(&token, TOKEN).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: driftless\n  scheme: https\n  authorization:\n    credentials_file: {}\n  tls_config:\n    ca_file: {}\n  static_configs:\n  - targets: ['{target}']\n",
                token.display(),
                ca.display()
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", crate::ports::free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("Debian's prometheus (scripts/setup.sh installs it)");
        Prometheus { child, address }
    }

    /// The instant vector of `query`, or `None` while Prometheus is not up.
    fn query(&self, query: &str) -> Option<Vec<Value>> {
        let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let body = http_get(&self.address, &format!("/api/v1/query?query={encoded}"))?;
        let value: Value = serde_json::from_str(&body).ok()?;
        value.pointer("/data/result").and_then(Value::as_array).cloned()
    }

    /// The one sample of `query` once it has one.
    fn value(&self, query: &str) -> Option<f64> {
        let result = self.query(query)?;
        result.first()?.pointer("/value/1")?.as_str()?.parse().ok()
    }
}

/// A plain HTTP/1.0 GET to a loopback address.
fn http_get(address: &str, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned()).or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}

#[test]
fn prometheus_scrapes_what_the_daemon_did() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{TOKEN},prometheus,prometheus\n")).unwrap();
    let address = format!("127.0.0.1:{port}");
    cluster.start_with(&["--listen", &address, "--token-file", tokens.to_str().unwrap()]);
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let head = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();

    // A DNS answer to count, from the cluster DNS the daemon routed local.
    let dig =
        Command::new("dig").args([&format!("@{}", cluster.dns()), "+short", "+time=2", "+tries=1", "kubernetes.default.svc.cluster.local"]).output().unwrap();
    assert!(dig.status.success(), "{}", String::from_utf8_lossy(&dig.stderr));
    // A refused commit to count.
    cluster.commit(&[("apps/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  n: {a: 1}\n")], "a map where a string goes");
    cluster.wait_for("the refusal", Duration::from_secs(10), || cluster.cli_ok(&["status"]).contains("Refused:").then_some(()));

    // The exposition itself is valid for Prometheus' own checker.
    let text = cluster.get_text("/metrics");
    let mut promtool = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    // promtool reads the classic text format, where a counter's HELP names
    // its `_total` sample; OpenMetrics names the family without it. That
    // lint is the only finding allowed: a parse error is not.
    let findings: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(findings.iter().all(|l| l.ends_with("_total no help text")) && !said.contains("parsing error"), "promtool: {said}\n{text}");

    let prometheus = Prometheus::start(cluster.dir.path(), &address, &cluster.data.join("pki/ca.crt"));
    let info = cluster
        .wait_for("Prometheus to scrape the running revision", Duration::from_secs(60), || prometheus.query("driftless_sync_info").filter(|r| !r.is_empty()));
    assert_eq!(info[0].pointer("/metric/revision").and_then(Value::as_str), Some(head.as_str()), "{info:?}");
    assert_eq!(info[0].pointer("/metric/branch").and_then(Value::as_str), Some("main"), "{info:?}");
    assert_eq!(prometheus.value("sum(kube_pod_status_phase{phase=\"Running\"})"), Some(2.0));
    assert_eq!(prometheus.value("driftless_refused_commits_total"), Some(1.0));
    assert!(prometheus.value("driftless_sync_duration_seconds_count{result=\"applied\"}").unwrap_or(0.0) >= 1.0);
    assert!(prometheus.value("gotk_reconcile_duration_seconds_count{kind=\"Repository\",name=\"main\"}").unwrap_or(0.0) >= 2.0);
    assert!(prometheus.value("sum(controller_runtime_reconcile_total{controller=\"deployment\"})").unwrap_or(0.0) >= 1.0);
    assert!(prometheus.value("sum(coredns_dns_responses_total)").unwrap_or(0.0) >= 1.0);
    assert!(prometheus.value("sum(driftless_proxy_rule_applies_total{result=\"applied\"})").unwrap_or(0.0) >= 1.0);
    assert_eq!(prometheus.value("sum(kube_pod_container_status_restarts_total)"), Some(0.0));
    assert_eq!(prometheus.value("up{job=\"driftless\"}"), Some(1.0), "the scrape itself succeeded");
}
