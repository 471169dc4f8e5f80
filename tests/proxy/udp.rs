//! UDP through a ClusterIP and a loopback NodePort, from the host and from
//! a pod; a flow keeps its backend while it is busy and is balanced anew
//! once it has been idle for the proxy's UDP timeout.

use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

use driftless_proxy::{Protocol, Proxy, ServiceTable};

use crate::net::{TestNet, at, poll, service, udp_ask};

/// The conntrack entry of a flow from local port `sport` to `frontend`.
fn conntrack_entry(frontend: SocketAddrV4, sport: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap();
    let (dst, dport, sport) = (format!("dst={}", frontend.ip()), format!("dport={}", frontend.port()), format!("sport={sport}"));
    table
        .lines()
        .find(|l| l.contains(" udp ") && l.contains(&dst) && l.split_whitespace().any(|w| w == dport) && l.split_whitespace().any(|w| w == sport))
        .map(str::to_owned)
}

#[test]
fn udp_reaches_backends_and_an_idle_flow_is_balanced_anew() {
    let mut net = TestNet::new();
    let a = net.pod("dns-a");
    let b = net.pod("dns-b");
    net.udp_backend(&a);
    net.udp_backend(&b);
    let client = net.pod("client");
    let cluster_ip = at(net.service_ip(53), 53);
    let node_port = at([127, 0, 0, 1].into(), net.node_port(1));
    let mut config = net.config();
    config.udp_idle_timeout = Duration::from_secs(2);
    let mut proxy = Proxy::start(config).unwrap();
    let table = |backend: SocketAddrV4| ServiceTable {
        peers: Vec::new(),
        ports: vec![service("kube-system/dns:dns", Protocol::Udp, &[cluster_ip, node_port], &[backend])],
    };
    proxy.apply(&table(at(a.ip, 5353))).unwrap();

    net.assert_routed();
    assert_eq!(TestNet::in_pod(&client, move || udp_ask(&UdpSocket::bind("0.0.0.0:0").unwrap(), cluster_ip.into())).unwrap(), "dns-a");
    assert_eq!(udp_ask(&UdpSocket::bind("0.0.0.0:0").unwrap(), node_port.into()).unwrap(), "dns-a");
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    assert_eq!(udp_ask(&socket, cluster_ip.into()).unwrap(), "dns-a");

    // dns-a is replaced; the flow in use keeps going to it.
    proxy.apply(&table(at(b.ip, 5353))).unwrap();
    assert_eq!(udp_ask(&socket, cluster_ip.into()).unwrap(), "dns-a");
    let sport = socket.local_addr().unwrap().port();
    let entry = conntrack_entry(cluster_ip, sport).expect("the flow is tracked");
    let left: u64 = entry.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(left <= 2, "the flow has the proxy's 2 s timeout, not conntrack's default: {entry}");

    // Once idle for the timeout, conntrack forgets it, and the next
    // datagram from the same socket is balanced anew.
    poll(|| conntrack_entry(cluster_ip, sport).is_none().then_some(()), "the idle flow to expire");
    assert_eq!(udp_ask(&socket, cluster_ip.into()).unwrap(), "dns-b");
    proxy.shutdown().unwrap();
}

#[test]
fn a_udp_client_that_sent_before_the_service_had_rules_reaches_it_once_it_has() {
    let mut net = TestNet::new();
    let a = net.pod("dns-a");
    net.udp_backend(&a);
    let cluster_ip = at(net.service_ip(53), 53);
    let mut proxy = Proxy::start(net.config()).unwrap();
    net.assert_routed();

    // Before the service is in the table its address is only the host's
    // own (routed local on lo): the datagram finds no listener, and
    // conntrack remembers the flow as not NATed.
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    assert!(udp_ask(&socket, cluster_ip.into()).is_err());
    let sport = socket.local_addr().unwrap().port();
    assert!(conntrack_entry(cluster_ip, sport).is_some(), "the un-NATed flow is tracked");

    // The service arrives with a backend: the same socket reaches it, as
    // the proxy forgot the flow NAT never saw.
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![service("kube-system/dns:dns", Protocol::Udp, &[cluster_ip], &[at(a.ip, 5353)])] }).unwrap();
    assert_eq!(udp_ask(&socket, cluster_ip.into()).unwrap(), "dns-a");
    proxy.shutdown().unwrap();
}
