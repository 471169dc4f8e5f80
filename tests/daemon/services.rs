//! Services from git, reached as Kubernetes users reach them: by name
//! from inside pods (cluster DNS, search domains), by ClusterIP, NodePort
//! and LoadBalancer address from the host; spread across ready replicas
//! only; refused at once without endpoints; a rolling update under
//! continuous requests loses none; headless and StatefulSet names, SRV and
//! ExternalName answers from the cluster DNS; and a UDP service.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, http_get, is_ready, name, pod_ip};

/// A Deployment whose pods serve their own hostname, and its Services.
fn app(replicas: u32, version: &str, readiness: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.35
        command: [sh, -c, 'mkdir -p /tmp/www && echo $(hostname) {version} > /tmp/www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /tmp/www']
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {readiness}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-np}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-lb}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: nobody}}
spec:
  selector: {{app: nothing-has-this-label}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec: {{type: ExternalName, externalName: example.com}}
"
    )
}

const HTTP_READY: &str = "{httpGet: {path: /, port: http}, periodSeconds: 1}";
const FILE_READY: &str = "{exec: {command: [cat, /tmp/ready]}, periodSeconds: 1}";

fn service(cluster: &Cluster, name: &str) -> Value {
    cluster.get(&format!("/api/v1/namespaces/default/services/{name}"))
}

fn cluster_ip(cluster: &Cluster, name: &str) -> String {
    cluster.wait_for(&format!("a ClusterIP for {name}"), Duration::from_secs(10), || {
        service(cluster, name)["spec"]["clusterIP"].as_str().filter(|ip| !ip.is_empty()).map(str::to_owned)
    })
}

fn endpoint_ips(cluster: &Cluster, name: &str) -> BTreeSet<String> {
    let Ok(ep) = cluster.try_get(&format!("/api/v1/namespaces/default/endpoints/{name}")) else { return BTreeSet::new() };
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn dig(server: &str, name: &str, kind: &str) -> String {
    let out = Command::new("dig").args([&format!("@{server}"), name, kind, "+short", "+time=2", "+tries=1"]).output().expect("dig (bind9-dnsutils) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first line (the serving pod's hostname) of `GET /` at `ip:port`.
fn who(ip: &str, port: u16) -> Option<String> {
    http_get(ip, port, "/").and_then(|b| b.split_whitespace().next().map(str::to_owned))
}

#[test]
fn services_are_reached_by_name_and_address_across_ready_replicas_only() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &app(3, "v1", HTTP_READY))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 3, Duration::from_secs(30));
    let names: BTreeSet<String> = pods.iter().map(name).collect();
    let ip = cluster_ip(&cluster, "web");
    assert!(ip.starts_with(&cluster.service_cidr[..cluster.service_cidr.len() - 4]), "{ip} is in {}", cluster.service_cidr);
    let ready = cluster.wait_for("three endpoints", Duration::from_secs(10), || {
        let ips = endpoint_ips(&cluster, "web");
        (ips.len() == 3).then_some(ips)
    });
    assert_eq!(ready, pods.iter().map(pod_ip).collect::<BTreeSet<_>>());

    // From the host, by ClusterIP: every replica answers, in turn.
    let served = cluster.wait_for("all replicas behind the ClusterIP", Duration::from_secs(10), || {
        let seen: BTreeSet<String> = (0..12).filter_map(|_| who(&ip, 80)).collect();
        (seen == names).then_some(seen)
    });
    assert_eq!(served.len(), 3);

    // NodePort on loopback, and the LoadBalancer's address.
    let node_port = service(&cluster, "web-np")["spec"]["ports"][0]["nodePort"].as_u64().expect("a node port") as u16;
    assert!((30000..=32767).contains(&node_port));
    let answer = cluster.wait_for("the NodePort", Duration::from_secs(10), || who("127.0.0.1", node_port));
    assert!(names.contains(&answer), "{answer}");
    let lb = cluster.wait_for("the load balancer address", Duration::from_secs(10), || {
        service(&cluster, "web-lb")["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().map(str::to_owned)
    });
    assert_eq!(lb, cluster.lb_address);
    let answer = cluster.wait_for("the LoadBalancer", Duration::from_secs(10), || who(&lb, 80));
    assert!(names.contains(&answer));
    let table = cluster.cli_ok(&["get", "svc"]);
    let lb_row = table.lines().find(|l| l.starts_with("web-lb")).unwrap();
    assert!(lb_row.contains(&lb) && lb_row.contains("LoadBalancer"), "{table}");

    // From inside a pod, by full name and by the short name through the
    // search domains.
    let pod = name(&pods[0]);
    for url in ["http://web.default.svc.cluster.local/", "http://web/", "http://web.default/"] {
        // (busybox's static wget crashes on -T; timeout bounds it instead)
        let out = cluster.cli_ok(&["exec", &pod, "--", "timeout", "5", "wget", "-qO-", url]);
        let host = out.split_whitespace().next().unwrap_or("");
        assert!(names.contains(host), "{url} answered {out:?}");
    }

    // No endpoints: refused at once, never a hang.
    let nobody = cluster_ip(&cluster, "nobody");
    let started = Instant::now();
    let error = TcpStream::connect_timeout(&format!("{nobody}:80").parse().unwrap(), Duration::from_secs(3)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused, "{error}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused in {:?}", started.elapsed());

    // DNS: A, SRV for the named port, ExternalName's CNAME, NXDOMAIN.
    let dns = cluster.dns();
    assert_eq!(dig(&dns, "web.default.svc.cluster.local", "A").trim(), ip);
    let srv = dig(&dns, "_http._tcp.web.default.svc.cluster.local", "SRV");
    assert!(srv.contains(" 80 web.default.svc.cluster.local."), "{srv}");
    assert_eq!(dig(&dns, "ext.default.svc.cluster.local", "CNAME").trim(), "example.com.");
    let status = Command::new("dig").args([&format!("@{dns}"), "missing.default.svc.cluster.local", "+time=2", "+tries=1"]).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("status: NXDOMAIN"));
    let reverse_out = Command::new("dig").args([&format!("@{dns}"), "-x", &ip, "+short", "+time=2", "+tries=1"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&reverse_out.stdout).trim(), "web.default.svc.cluster.local.");
}

#[test]
fn a_pod_failing_readiness_leaves_the_rotation_and_comes_back() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &app(2, "v1", FILE_READY))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let ip = cluster_ip(&cluster, "web");
    cluster.wait_for("two endpoints", Duration::from_secs(10), || (endpoint_ips(&cluster, "web").len() == 2).then_some(()));
    let (sick, healthy) = (name(&pods[0]), name(&pods[1]));
    cluster.cli_ok(&["exec", &sick, "--", "rm", "/tmp/ready"]);
    let started = Instant::now();
    cluster.wait_for("the sick pod out of the endpoints", Duration::from_secs(5), || {
        let ips = endpoint_ips(&cluster, "web");
        (ips.len() == 1 && ips.contains(&pod_ip(&pods[1]))).then_some(())
    });
    // One probe period (1 s) and the failure threshold (3) later at most.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Give the proxy its moment, then nothing goes to the sick pod.
    cluster.wait_for("traffic only to the healthy pod", Duration::from_secs(5), || {
        let seen: BTreeSet<String> = (0..10).filter_map(|_| who(&ip, 80)).collect();
        (seen.len() == 1 && seen.contains(&healthy)).then_some(())
    });
    let table = cluster.cli_ok(&["get", "pods"]);
    assert!(table.lines().any(|l| l.starts_with(&sick) && l.contains("0/1")), "{table}");
    cluster.cli_ok(&["exec", &sick, "--", "touch", "/tmp/ready"]);
    cluster.wait_for("the pod back in rotation", Duration::from_secs(10), || {
        let seen: BTreeSet<String> = (0..12).filter_map(|_| who(&ip, 80)).collect();
        (seen.len() == 2).then_some(())
    });
}

#[test]
fn a_rolling_update_under_continuous_requests_loses_none() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &app(3, "v1", HTTP_READY))]);
    cluster.start();
    cluster.wait_ready("web-", 3, Duration::from_secs(30));
    let ip = cluster_ip(&cluster, "web");
    cluster.wait_for("three endpoints", Duration::from_secs(10), || (endpoint_ips(&cluster, "web").len() == 3).then_some(()));
    // The proxy applies the Endpoints a few ms later; until then the
    // service rightly refuses. The rollout starts from a serving service.
    cluster.wait_for("the service answering", Duration::from_secs(10), || http_get(&ip, 80, "/"));
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<Result<String, String>>>> = Arc::default();
    let load = {
        let (stop, results, ip) = (stop.clone(), results.clone(), ip.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            // Bounded in count and time.
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let outcome = crate::cluster::try_http_get(&ip, 80, "/").map_err(|e| {
                    // When, to set beside the daemon's log (UTC seconds).
                    let t = std::time::UNIX_EPOCH.elapsed().unwrap();
                    format!("at :{:02}.{:06} {e}", t.as_secs() % 60, t.subsec_micros())
                });
                results.lock().unwrap().push(outcome);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    cluster.commit(&[("apps/web.yaml", &app(3, "v2", HTTP_READY))], "web v2 under load");
    let out = cluster.cli(&["rollout", "status", "deployment/web", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cluster.wait_for("only v2 answering", Duration::from_secs(20), || {
        let seen: Vec<String> = (0..9).filter_map(|_| http_get(&ip, 80, "/")).collect();
        (seen.len() == 9 && seen.iter().all(|b| b.contains("v2"))).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    let results = results.lock().unwrap();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let v1 = results.iter().filter(|r| r.as_ref().is_ok_and(|b| b.contains("v1"))).count();
    let v2 = results.iter().filter(|r| r.as_ref().is_ok_and(|b| b.contains("v2"))).count();
    eprintln!("{} requests during the rollout: {v1} v1, {v2} v2, {failed} failed", results.len());
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(v1 > 0 && v2 > 0, "requests went to both versions");
    assert_eq!(failed, 0, "no request lost during the rollout: {failures:?}\n{}", cluster.daemon_log());
}

#[test]
fn headless_and_statefulset_pods_resolve_by_name() {
    let manifests = "apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:1.35
        command: [httpd, -f, -p, '8080', -h, /]
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
";
    let mut cluster = Cluster::new(&[("apps/db.yaml", manifests)]);
    cluster.start();
    let pods = cluster.wait_ready("db-", 2, Duration::from_secs(30));
    let dns = cluster.dns();
    let ips: BTreeSet<String> = pods.iter().map(pod_ip).collect();
    let answered = cluster.wait_for("the headless service's addresses", Duration::from_secs(10), || {
        let got: BTreeSet<String> = dig(&dns, "db.default.svc.cluster.local", "A").lines().map(str::to_owned).collect();
        (got == ips).then_some(got)
    });
    assert_eq!(answered.len(), 2);
    let db0 = pods.iter().find(|p| name(p) == "db-0").unwrap();
    assert_eq!(dig(&dns, "db-0.db.default.svc.cluster.local", "A").trim(), pod_ip(db0));
    let srv = dig(&dns, "_tcp._tcp.db.default.svc.cluster.local", "SRV");
    assert!(srv.contains("db-0.db.default.svc.cluster.local.") && srv.contains("db-1.db.default.svc.cluster.local."), "{srv}");
    // From db-1, its sibling by its stable name: the full one, and the
    // short one through the search domains (ping resolves with libc's
    // resolver, as workloads do; busybox's nslookup gives up on the first
    // REFUSED for the bare name, since this cluster forwards nothing).
    let out = cluster.cli_ok(&["exec", "db-1", "--", "nslookup", "db-0.db.default.svc.cluster.local"]);
    assert!(out.contains(&pod_ip(db0)), "{out}");
    let out = cluster.cli(&["exec", "db-1", "--", "ping", "-c", "1", "-W", "1", "db-0.db"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("({})", pod_ip(db0))), "{text}");
    assert!(is_ready(db0));
}

#[test]
fn a_udp_service_reaches_its_backend() {
    let manifests = "apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox:1.35, command: [sleep, '600']}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: echo, port: 5353, protocol: UDP}]
";
    let mut cluster = Cluster::new(&[("apps/echo.yaml", manifests)]);
    cluster.start();
    let pod = cluster.wait_ready("echo", 1, Duration::from_secs(30)).remove(0);
    // busybox has no UDP server: a UDP echo runs in the pod's network
    // namespace, on the pod's own address.
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    // The pod's namespaces are on the node's tmpfs for volatile state.
    let run = nix::sys::statfs::statfs(&cluster.data.join("run")).unwrap();
    assert_eq!(run.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC, "the pods' volatile state is on a tmpfs");
    let netns = cluster.data.join("run/pods").join(uid).join("ns/net");
    let mut echo = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',5353))\nwhile True:\n  d,a=s.recvfrom(2048)\n  s.sendto(b'echo:'+d,a)"])
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(std::mem::replace(&mut echo, Command::new("true").spawn().unwrap()));
    let _ = echo.wait();
    let ip = cluster_ip(&cluster, "echo");
    cluster.wait_for("the endpoint", Duration::from_secs(10), || (endpoint_ips(&cluster, "echo").len() == 1).then_some(()));
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let target: SocketAddr = format!("{ip}:5353").parse().unwrap();
    let reply = cluster.wait_for("an echo through the ClusterIP", Duration::from_secs(10), || {
        socket.send_to(b"ping", target).ok()?;
        let mut buf = [0u8; 64];
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    assert_eq!(reply, "echo:ping");
}
