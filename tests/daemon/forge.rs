//! The forge loop through `driftless up` on a remote repository: a push
//! announced by a webhook (the forges' documented payloads, signed with
//! openssl as the forge would) syncs at once instead of at the next poll;
//! bad signatures are refused; every applied or refused commit is posted to
//! a receiver as a signed, Flux-shaped event; logs are JSON lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;

const SECRET: &str = "It's a Secret to Everybody";

fn settings(version: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: \"{version}\"\n")
}

/// HMAC-SHA256 in hex, by openssl: not the daemon's own code.
fn openssl_hmac(body: &[u8]) -> String {
    let mut child = Command::new("openssl").args(["dgst", "-sha256", "-hmac", SECRET, "-r"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// POSTs `body` with `headers`; the status code.
fn post(address: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// A documented payload, pointed at this push.
fn payload(fixture: &str, branch_in_fixture: &str, after: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../forge/tests/fixtures").join(fixture);
    let text = std::fs::read_to_string(path).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["ref"], format!("refs/heads/{branch_in_fixture}"), "the fixture's shape");
    value["ref"] = Value::from("refs/heads/main");
    value["after"] = Value::from(after);
    serde_json::to_vec_pretty(&value).unwrap()
}

/// One request a receiver got.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A notification receiver on 127.0.0.1: answers 200 to every request,
/// keep-alive included, and hands each to the test.
fn receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            headers.push((name.trim().to_owned(), value.trim().to_owned()));
                        }
                    }
                    let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    if tx.send(Received { headers, body }).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, rx)
}

/// The next notification with `reason`, skipping others.
fn next_with(notifications: &mpsc::Receiver<Received>, reason: &str) -> (Received, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.checked_duration_since(Instant::now()).expect("a notification in time");
        let received = notifications.recv_timeout(left).expect("a notification in time");
        let event: Value = serde_json::from_slice(&received.body).unwrap();
        if event["reason"] == reason {
            return (received, event);
        }
    }
}

#[test]
fn a_signed_webhook_syncs_at_once_and_every_sync_is_notified() {
    let mut cluster = Cluster::new(&[("apps/settings.yaml", &settings("1"))]);
    let remote = cluster.dir.path().join("remote.git");
    let out = Command::new("git").args(["clone", "-q", "--bare"]).arg(&cluster.repo).arg(&remote).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let remote_arg = remote.to_str().unwrap().to_owned();
    let secret = cluster.dir.path().join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let hooks = format!("127.0.0.1:{}", crate::ports::free_port());
    let (receiver_address, notifications) = receiver();
    let notify = format!("http://{receiver_address}/driftless");
    // A poll slower than the whole test: only the webhook can sync in time.
    let url = format!("file://{}", remote.display());
    cluster.start_from(
        &url,
        &["--interval", "600s", "--webhook-listen", &hooks, "--webhook-secret-file", secret.to_str().unwrap(), "--notify", &notify, "--log-format", "json"],
    );
    let (first, event) = next_with(&notifications, "ReconciliationSucceeded");
    let initial = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{initial}"), "{event:#}");
    assert_eq!(event["involvedObject"]["kind"], "Repository", "{event:#}");
    assert_eq!(event["severity"], "info");
    assert_eq!(event["reportingController"], "driftless");
    let signature = first.header("X-Signature").expect("signed").to_owned();
    assert_eq!(signature, format!("sha256={}", openssl_hmac(&first.body)), "the signature is HMAC-SHA256 of the body under the secret");

    // A push, announced the way Gitea announces it.
    let v2 = cluster.commit(&[("apps/settings.yaml", &settings("2"))], "settings 2");
    cluster.git(&["push", "-q", &remote_arg, "main"]);
    let body = payload("gitea-push.json", "develop", &v2);
    let signed = |body: &[u8]| {
        vec![("X-Gitea-Event", "push".to_owned()), ("X-Hub-Signature-256", format!("sha256={}", openssl_hmac(body))), ("X-Gitea-Signature", openssl_hmac(body))]
    };

    // Unsigned, and signed with another secret: refused, nothing synced.
    assert_eq!(post(&hooks, "/hooks/gitea", &[("X-Gitea-Event", "push".to_owned())], &body), 401);
    assert_eq!(
        post(&hooks, "/hooks/gitea", &[("X-Gitea-Event", "push".to_owned()), ("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))], &body),
        401
    );
    let version = || cluster.get("/api/v1/namespaces/default/configmaps/settings")["data"]["version"].as_str().unwrap_or_default().to_owned();
    assert_eq!(version(), "1", "no sync without a verified push (the poll is 600 s)");

    let posted = Instant::now();
    assert_eq!(post(&hooks, "/hooks/gitea", &signed(&body), &body), 202);
    cluster.wait_for("the pushed commit", Duration::from_secs(10), || (version() == "2").then_some(()));
    eprintln!("webhook to applied: {:?}", posted.elapsed());
    let (_, event) = next_with(&notifications, "ReconciliationSucceeded");
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{v2}"), "{event:#}");

    // A push of another branch is accepted and ignored.
    let other = payload("gitea-push.json", "develop", &v2);
    let other = String::from_utf8(other).unwrap().replace("refs/heads/main", "refs/heads/feature").into_bytes();
    assert_eq!(post(&hooks, "/hooks/gitea", &signed(&other), &other), 202);

    // GitLab sends the secret itself as its token; an invalid commit is
    // refused and the refusal is posted with the file and line.
    let bad = cluster.commit(
        &[("apps/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: {major: 3}\n")],
        "a map for a string",
    );
    cluster.git(&["push", "-q", &remote_arg, "main"]);
    let body = payload("gitlab-push.json", "master", &bad);
    assert_eq!(post(&hooks, "/hooks/gitlab", &[("X-Gitlab-Event", "Push Hook".to_owned()), ("X-Gitlab-Token", "not the secret".to_owned())], &body), 401);
    assert_eq!(post(&hooks, "/hooks/gitlab", &[("X-Gitlab-Event", "Push Hook".to_owned()), ("X-Gitlab-Token", SECRET.to_owned())], &body), 202);
    let (refused, event) = next_with(&notifications, "SyncRefused");
    assert_eq!(event["severity"], "error");
    assert_eq!(event["metadata"]["revision"], format!("main@sha1:{bad}"), "{event:#}");
    let message = event["message"].as_str().unwrap();
    assert!(message.contains("apps/settings.yaml:6:") && message.contains(&format!("still running {}", &v2[..7])), "{message}");
    assert_eq!(refused.header("X-Signature"), Some(format!("sha256={}", openssl_hmac(&refused.body)).as_str()));
    assert_eq!(version(), "2");

    // The daemon's logs are JSON lines; the sync's span names the commit.
    let log = cluster.daemon_log();
    let lines: Vec<Value> = log.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("each log line is JSON")).collect();
    assert!(!lines.is_empty(), "{log}");
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "refusing commit" && l["span"]["commit"].as_str().is_some_and(|c| bad.starts_with(c))),
        "a refusal logged in the sync span of {bad}:\n{log}"
    );
}

#[test]
fn a_failed_rollout_and_its_automatic_rollback_are_notified() {
    let good = crate::cluster::web(1, "1", "{type: RollingUpdate}")
        .replace("metadata:\n  name: web\n", "metadata:\n  name: web\n  annotations: {driftless.dev/rollback: on-failure}\n");
    let mut cluster = Cluster::new(&[("apps/web.yaml", &good)]);
    let (receiver_address, notifications) = receiver();
    let notify = format!("http://{receiver_address}/driftless");
    cluster.start_with(&["--notify", &notify]);
    cluster.wait_ready("web-", 1, Duration::from_secs(30));
    let (unsigned, _) = next_with(&notifications, "ReconciliationSucceeded");
    assert!(unsigned.header("X-Signature").is_none(), "no secret, no signature");

    // An image nothing serves (a closed loopback port): past the Deployment's
    // 8 s progress deadline, the daemon reverts it.
    let broken = cluster.commit(&[("apps/web.yaml", &good.replace("image: busybox:1.35", "image: 127.0.0.1:9/none/broken:1"))], "web: new image");
    // Gathered in arrival order: the revert may be synced before or after
    // its RolledBack event is recorded.
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = |seen: &[Value], cluster: &Cluster| {
        let rolled = seen.iter().any(|e| e["reason"] == "RolledBack");
        let head = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
        let synced = seen.iter().any(|e| e["reason"] == "ReconciliationSucceeded" && e["metadata"]["revision"] == format!("main@sha1:{head}"));
        rolled && synced && head != broken && seen.iter().any(|e| e["reason"] == "RolloutFailed")
    };
    while !done(&seen, &cluster) {
        let left = deadline.checked_duration_since(Instant::now()).unwrap_or_else(|| panic!("notifications so far: {seen:#?}"));
        let received = notifications.recv_timeout(left).unwrap_or_else(|_| panic!("notifications so far: {seen:#?}"));
        seen.push(serde_json::from_slice(&received.body).unwrap());
    }
    let failed = seen.iter().find(|e| e["reason"] == "RolloutFailed").unwrap();
    assert_eq!(failed["severity"], "error");
    assert_eq!(failed["involvedObject"]["kind"], "Deployment", "{failed:#}");
    assert_eq!(failed["involvedObject"]["name"], "web", "{failed:#}");
    assert_eq!(failed["involvedObject"]["apiVersion"], "apps/v1", "{failed:#}");
    let rolled = seen.iter().find(|e| e["reason"] == "RolledBack").unwrap();
    let message = rolled["message"].as_str().unwrap();
    assert!(message.contains(&broken[..7]) && message.contains("ProgressDeadlineExceeded"), "{message}");
}
