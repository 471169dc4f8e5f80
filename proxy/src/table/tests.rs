//! Which tables the proxy accepts, and what it says about the others.

use super::*;

fn bounds() -> Bounds<'static> {
    static NODE: [Ipv4Addr; 1] = [Ipv4Addr::new(10, 245, 0, 1)];
    Bounds { service_cidr: "10.98.0.0/16".parse().unwrap(), pod_cidr: "10.245.0.0/24".parse().unwrap(), node_addresses: &NODE }
}

fn port(name: &str, frontends: &[&str], backends: &[&str]) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol: Protocol::Tcp,
        frontends: frontends.iter().map(|f| f.parse().unwrap()).collect(),
        backends: backends.iter().map(|b| b.parse().unwrap()).collect(),
        session_affinity: None,
    }
}

fn table(ports: Vec<ServicePort>) -> ServiceTable {
    ServiceTable { peers: Vec::new(), ports }
}

#[test]
fn cluster_ip_node_port_loopback_and_load_balancer_frontends_are_accepted() {
    let t = table(vec![port("ns/web:http", &["10.98.0.10:80", "10.245.0.1:30080", "127.0.0.1:30080", "127.0.0.100:80"], &["10.245.0.2:8080"])]);
    let checked = check(&t, &bounds()).unwrap();
    assert_eq!(checked[0].frontends.len(), 4);
    assert_eq!(checked[0].backends, ["10.245.0.2:8080".parse::<SocketAddrV4>().unwrap()]);
}

#[test]
fn a_frontend_outside_the_service_cidr_is_refused_by_name() {
    let t = table(vec![port("ns/web:http", &["10.99.0.10:80"], &[])]);
    let error = check(&t, &bounds()).unwrap_err();
    assert_eq!(error.to_string(), "ns/web:http: frontend 10.99.0.10:80 is outside the service CIDR 10.98.0.0/16 and is not a node or loopback address");
}

#[test]
fn backends_must_be_pods() {
    for backend in ["10.246.0.2:80", "10.245.0.0:80", "10.245.0.255:80", "127.0.0.1:80"] {
        let t = table(vec![port("ns/web:http", &["10.98.0.10:80"], &[backend])]);
        assert!(matches!(check(&t, &bounds()), Err(TableError::ForeignBackend { .. })), "{backend}");
    }
}

#[test]
fn one_frontend_belongs_to_one_port_per_protocol() {
    let a = port("ns/a:http", &["10.98.0.10:80"], &[]);
    let b = port("ns/b:http", &["10.98.0.10:80"], &[]);
    let error = check(&table(vec![a.clone(), b.clone()]), &bounds()).unwrap_err();
    assert_eq!(error.to_string(), "10.98.0.10:80/tcp is a frontend of both ns/a:http and ns/b:http");
    // The same address and port over UDP is another frontend (DNS serves both).
    let udp = ServicePort { protocol: Protocol::Udp, ..b };
    assert!(check(&table(vec![a.clone(), udp]), &bounds()).is_ok());
    assert!(matches!(check(&table(vec![a.clone(), a]), &bounds()), Err(TableError::DuplicateName { .. })));
}

#[test]
fn ipv6_port_zero_and_bad_affinity_are_refused() {
    assert!(matches!(check(&table(vec![port("a", &["[fd00::1]:80"], &[])]), &bounds()), Err(TableError::Ipv6 { .. })));
    assert!(matches!(check(&table(vec![port("a", &["10.98.0.1:0"], &[])]), &bounds()), Err(TableError::PortZero { .. })));
    for timeout in [Duration::ZERO, Duration::from_secs(86_401)] {
        let p = ServicePort { session_affinity: Some(timeout), ..port("a", &["10.98.0.1:80"], &[]) };
        assert!(matches!(check(&table(vec![p]), &bounds()), Err(TableError::AffinityTimeout { .. })));
    }
}

#[test]
fn repeated_addresses_within_a_port_are_merged() {
    let t = table(vec![port("a", &["10.98.0.1:80", "10.98.0.1:80"], &["10.245.0.2:80", "10.245.0.2:80", "10.245.0.3:80"])]);
    let checked = check(&t, &bounds()).unwrap();
    assert_eq!((checked[0].frontends.len(), checked[0].backends.len()), (1, 2));
}
