//! Start, refusals, the leak guard and shutdown: the proxy programs
//! nothing without the routes that keep traffic local, refuses tables it
//! must not serve, drops traffic that would leave, and leaves nothing.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use driftless_proxy::{Protocol, Proxy, ProxyError, RouteError, ServiceTable, TableError};

use crate::net::{TestNet, at, http_get, service};

fn tables() -> String {
    String::from_utf8(Command::new("nft").args(["list", "tables"]).output().unwrap().stdout).unwrap()
}

/// Whether nftables has the table named `name` (its line exactly: another
/// test's table may be named `name` plus a digit).
fn has_table(name: &str) -> bool {
    let name = name.trim_start_matches("table ip ");
    tables().lines().any(|line| line.trim() == format!("table ip {name}"))
}

fn sysctl(bridge: &str, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{bridge}/{name}")).unwrap().trim().to_owned()
}

#[test]
fn start_refuses_unless_both_ranges_are_routed_locally() {
    let net = TestNet::new();
    let table = net.config().table;
    let mut config = net.config();
    config.bridge = "dlp-none".into();
    let error = Proxy::start(config).unwrap_err();
    assert!(matches!(error, ProxyError::Route(RouteError::PodCidr { .. })), "{error}");
    assert!(error.to_string().contains("is not routed to dlp-none"), "{error}");

    let mut config = net.config();
    config.service_cidr = format!("10.98.{}.0/25", net.index).parse().unwrap();
    let error = Proxy::start(config).unwrap_err();
    assert!(matches!(error, ProxyError::Route(RouteError::ServiceCidr(_))), "{error}");
    assert!(!has_table(&table), "nothing was installed");
}

#[test]
fn shutdown_and_drop_remove_the_table_and_restore_the_bridge() {
    let mut net = TestNet::new();
    let web = net.http_backend("web-a");
    let config = net.config();
    let table = format!("table ip {}", config.table);
    assert_eq!((sysctl(&net.bridge, "forwarding").as_str(), sysctl(&net.bridge, "route_localnet").as_str()), ("0", "0"));

    let mut proxy = Proxy::start(config.clone()).unwrap();
    proxy
        .apply(&ServiceTable { peers: Vec::new(), ports: vec![service("default/web:http", Protocol::Tcp, &[at(net.service_ip(10), 80)], &[at(web.ip, 80)])] })
        .unwrap();
    assert!(has_table(&table));
    assert_eq!((sysctl(&net.bridge, "forwarding").as_str(), sysctl(&net.bridge, "route_localnet").as_str()), ("1", "1"));
    proxy.shutdown().unwrap();
    assert!(!has_table(&table));
    assert_eq!((sysctl(&net.bridge, "forwarding").as_str(), sysctl(&net.bridge, "route_localnet").as_str()), ("0", "0"));

    // A restarted proxy replaces what a crashed one left; Drop cleans too.
    let leftover = Proxy::start(config.clone()).unwrap();
    std::mem::forget(leftover);
    let proxy = Proxy::start(config).unwrap();
    assert!(has_table(&table));
    drop(proxy);
    assert!(!has_table(&table));
}

#[test]
fn a_table_with_a_foreign_frontend_is_refused_and_the_old_one_kept() {
    let mut net = TestNet::new();
    let web = net.http_backend("web-a");
    let good = at(net.service_ip(10), 80);
    let mut proxy = Proxy::start(net.config()).unwrap();
    let port = service("default/web:http", Protocol::Tcp, &[good], &[at(web.ip, 80)]);
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![port.clone()] }).unwrap();

    let mut foreign = port.clone();
    foreign.frontends.push(at([10, 99, 0, 1].into(), 80).into());
    let error = proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![foreign] }).unwrap_err();
    assert!(matches!(error, ProxyError::Table(TableError::ForeignFrontend { .. })), "{error}");
    assert!(error.to_string().contains("frontend 10.99.0.1:80 is outside the service CIDR"), "{error}");
    net.assert_routed();
    assert_eq!(http_get(good.into()).unwrap(), "web-a", "the table before still serves");
    proxy.shutdown().unwrap();
}

#[test]
fn the_leak_guard_drops_pod_traffic_bound_for_another_interface() {
    let mut net = TestNet::new();
    let client = net.pod("client");
    let elsewhere = net.elsewhere();
    let config = net.config();
    let table = config.table.clone();
    let listener = TestNet::in_pod(&elsewhere, || UdpSocket::bind("0.0.0.0:9999").unwrap());
    listener.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let proxy = Proxy::start(config).unwrap();

    // Forwarding is on for the bridge now, and the kernel would route
    // this datagram out by the other link; the guard must drop it.
    net.assert_routed();
    let target = at(elsewhere.ip, 9999);
    TestNet::in_pod(&client, move || UdpSocket::bind("0.0.0.0:0").unwrap().send_to(b"leak?", target).unwrap());
    let dropped = || {
        let out = Command::new("nft").args(["-j", "list", "chain", "ip", &table, "filter-forward"]).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["rule"]["expr"].as_array())
            .flatten()
            .filter_map(|e| e["counter"]["packets"].as_u64())
            .sum::<u64>()
    };
    crate::net::poll(|| (dropped() > 0).then_some(()), "the guard to count the datagram");
    assert!(listener.recv_from(&mut [0u8; 16]).is_err(), "the datagram got out");
    drop(proxy);
}

#[test]
fn an_apply_of_a_few_hundred_ports_lands_in_well_under_a_second() {
    let mut net = TestNet::new();
    let web = net.http_backend("web-a");
    let mut proxy = Proxy::start(net.config()).unwrap();
    let mut ports: Vec<_> = (0..200u16)
        .map(|i| service(&format!("bulk/svc-{i}:http"), Protocol::Tcp, &[at(net.service_ip(100), 1000 + i)], &[at(web.ip, 80), at(web.ip, 81)]))
        .collect();
    let started = Instant::now();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: ports.clone() }).unwrap();
    let full = started.elapsed();
    ports[7].backends.pop();
    let started = Instant::now();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: ports.clone() }).unwrap();
    let one = started.elapsed();
    let started = Instant::now();
    proxy.apply(&ServiceTable { peers: Vec::new(), ports }).unwrap();
    let same = started.elapsed();
    eprintln!("apply of 200 ports: {full:?}; one changed: {one:?}; unchanged: {same:?}");
    assert!(full < Duration::from_secs(2) && one < Duration::from_millis(500), "full {full:?}, one {one:?}");
    net.assert_routed();
    assert_eq!(http_get(at(net.service_ip(100), 1007).into()).unwrap(), "web-a");
    proxy.shutdown().unwrap();
}
