//! TCP through every kind of frontend, from the host and from pods:
//! spread across backends, hairpin, and backend changes that leave open
//! connections alone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use driftless_proxy::{Protocol, Proxy, ServiceTable};

use crate::net::{TestNet, at, http_get, service};

fn spread(addr: SocketAddr, requests: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..requests {
        let body = http_get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}"));
        *seen.entry(body).or_insert(0) += 1;
    }
    seen
}

#[test]
fn every_frontend_reaches_every_backend_from_the_host_in_turn() {
    let mut net = TestNet::new();
    let backends: Vec<_> = ["web-a", "web-b", "web-c"].iter().map(|n| net.http_backend(n)).collect();
    let (cluster_ip, node_port, lb) = (at(net.service_ip(10), 80), net.node_port(0), at(net.load_balancer_ip(), 8080));
    let frontends = [cluster_ip, at([127, 0, 0, 1].into(), node_port), at(net.gateway, node_port), lb];
    let mut proxy = Proxy::start(net.config()).unwrap();
    let port = service("default/web:http", Protocol::Tcp, &frontends, &backends.iter().map(|b| at(b.ip, 80)).collect::<Vec<_>>());
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![port] }).unwrap();

    net.assert_routed();
    for frontend in frontends {
        let seen = spread(frontend.into(), 9);
        // numgen inc: strictly in turn, so 9 requests are 3 for each.
        assert_eq!(seen.values().copied().collect::<Vec<_>>(), [3, 3, 3], "{frontend}: {seen:?}");
    }
    proxy.shutdown().unwrap();
}

#[test]
fn a_port_past_sixteen_endpoints_takes_them_in_turn_through_a_map() {
    // Up to 16 endpoints a service picks with a rule each (above); past
    // that with a verdict map. 17 endpoints: one pod serving 17 ports.
    let mut net = TestNet::new();
    let pod = net.pod("many");
    let mut dirs = Vec::new();
    let backends: Vec<_> = (8001..=8017).map(|p| at(pod.ip, p)).collect();
    for backend in &backends {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), format!("{}\n", backend.port())).unwrap();
        net.spawn(&pod, &["busybox", "httpd", "-f", "-p", &backend.port().to_string(), "-h", dir.path().to_str().unwrap()]);
        crate::net::poll(|| http_get((*backend).into()).ok().map(|_| ()), "httpd serving");
        dirs.push(dir);
    }
    let cluster_ip = at(net.service_ip(11), 80);
    let mut proxy = Proxy::start(net.config()).unwrap();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![service("default/many:http", Protocol::Tcp, &[cluster_ip], &backends)] }).unwrap();
    net.assert_routed();
    let seen = spread(cluster_ip.into(), 34);
    assert_eq!(seen.len(), 17, "{seen:?}");
    assert!(seen.values().all(|&n| n == 2), "{seen:?}");
    proxy.shutdown().unwrap();
}

#[test]
fn a_first_apply_of_hundreds_of_ports_serves_each_and_then_changes_one() {
    // 400 ports of two backends: 1200 new chains, filled in batches side
    // by side before the transaction that dispatches to them.
    let mut net = TestNet::new();
    let (a, b) = (net.http_backend("web-a"), net.http_backend("web-b"));
    let frontend = |i: u16| at(net.service_ip(20 + (i / 100) as u8), 1000 + i % 100);
    let mut ports: Vec<_> =
        (0..400).map(|i| service(&format!("default/many-{i}:http"), Protocol::Tcp, &[frontend(i)], &[at(a.ip, 80), at(b.ip, 80)])).collect();
    let mut proxy = Proxy::start(net.config()).unwrap();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: ports.clone() }).unwrap();
    net.assert_routed();
    for i in [0, 1, 99, 100, 257, 399] {
        let seen = spread(frontend(i).into(), 2);
        assert_eq!(seen.values().copied().collect::<Vec<_>>(), [1, 1], "port {i}: {seen:?}");
    }
    ports[257].backends.truncate(1);
    proxy.apply(&ServiceTable { peers: Vec::new(), ports }).unwrap();
    assert_eq!(spread(frontend(257).into(), 3).keys().collect::<Vec<_>>(), ["web-a"]);
    assert_eq!(spread(frontend(258).into(), 2).len(), 2, "the others are untouched");
    proxy.shutdown().unwrap();
}

#[test]
fn pods_reach_cluster_ips_and_node_ports_and_a_pod_reaches_itself() {
    let mut net = TestNet::new();
    let a = net.http_backend("web-a");
    let b = net.http_backend("web-b");
    let client = net.pod("client");
    let (cluster_ip, node_port) = (at(net.service_ip(10), 80), at(net.gateway, net.node_port(0)));
    let hairpin = at(net.service_ip(11), 80);
    let mut proxy = Proxy::start(net.config()).unwrap();
    let web = service("default/web:http", Protocol::Tcp, &[cluster_ip, node_port], &[at(a.ip, 80), at(b.ip, 80)]);
    let only_a = service("default/only-a:http", Protocol::Tcp, &[hairpin], &[at(a.ip, 80)]);
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![web, only_a] }).unwrap();

    net.assert_routed();
    for frontend in [cluster_ip, node_port] {
        let seen = TestNet::in_pod(&client, move || spread(frontend.into(), 6));
        assert_eq!(seen.keys().map(String::as_str).collect::<Vec<_>>(), ["web-a", "web-b"], "{frontend}: {seen:?}");
    }
    // Hairpin: web-a reaches a service whose one backend is web-a itself
    // (masqueraded, or it would drop a packet from its own address).
    let body = TestNet::in_pod(&a, move || http_get(hairpin.into()));
    assert_eq!(body.unwrap(), "web-a");
    proxy.shutdown().unwrap();
}

#[test]
fn a_removed_backend_keeps_its_open_connections_and_gets_no_new_ones() {
    let mut net = TestNet::new();
    let a = net.pod("echo-a");
    let b = net.pod("echo-b");
    net.echo_backend(&a);
    net.echo_backend(&b);
    let frontend = at(net.service_ip(10), 7000);
    let mut proxy = Proxy::start(net.config()).unwrap();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![service("default/echo:tcp", Protocol::Tcp, &[frontend], &[at(a.ip, 7000)])] }).unwrap();

    net.assert_routed();
    let open = TcpStream::connect_timeout(&frontend.into(), Duration::from_secs(1)).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut reader = BufReader::new(open.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "echo-a");

    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![service("default/echo:tcp", Protocol::Tcp, &[frontend], &[at(b.ip, 7000)])] }).unwrap();
    // The open connection still talks to echo-a ...
    (&open).write_all(b"still there?\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "still there?");
    // ... and new ones go to echo-b.
    for _ in 0..3 {
        let fresh = TcpStream::connect_timeout(&frontend.into(), Duration::from_secs(1)).unwrap();
        fresh.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut first = String::new();
        BufReader::new(fresh).read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "echo-b");
    }
    // Even with no backends at all, the open connection lives on.
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![service("default/echo:tcp", Protocol::Tcp, &[frontend], &[])] }).unwrap();
    (&open).write_all(b"and now?\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "and now?");
    proxy.shutdown().unwrap();
}
