//! The server's life: binding errors are returned, a zone swap is seen by
//! the very next query, a zone for another domain is refused, and shutdown
//! closes the sockets.

use std::time::Duration;

use driftless_dns::{DnsConfig, DnsError, DnsServer, Zone};
use hickory_client::proto::op::ResponseCode;
use hickory_client::proto::rr::RecordType;
use serde_json::json;

use crate::support::{TestClient, addr, service, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_zone_is_answered_by_the_next_query() {
    let dns = start(Zone::empty("cluster.local").unwrap(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NXDomain);

    let services = [service(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.10"}}))];
    dns.set_zone(Zone::build("cluster.local", &services, &[], &[]).unwrap()).unwrap();
    let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NoError);
    assert_eq!(response.answers().len(), 1);

    // The SOA serial counts the swaps.
    let response = client.query("cluster.local.", RecordType::SOA).await;
    assert!(response.answers()[0].to_string().contains(" 3 7200 1800 86400 5"), "{:?}", response.answers());

    // And back.
    dns.set_zone(Zone::empty("cluster.local").unwrap()).unwrap();
    let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_ttl_is_stamped_on_every_record() {
    let config = DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ttl: 30, ..DnsConfig::default() };
    let dns = DnsServer::start(config).unwrap();
    let services = [service(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.10"}}))];
    dns.set_zone(Zone::build("cluster.local", &services, &[], &[]).unwrap()).unwrap();
    let mut client = TestClient::udp(addr(&dns)).await;
    let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(response.answers()[0].ttl(), 30);
    let response = client.query("nope.cluster.local.", RecordType::A).await;
    assert_eq!(response.name_servers()[0].ttl(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_for_another_domain_is_refused() {
    let dns = start(Zone::empty("cluster.local").unwrap(), Vec::new());
    let error = dns.set_zone(Zone::empty("other.example").unwrap()).unwrap_err();
    assert!(matches!(error, DnsError::DomainMismatch { .. }), "{error}");
    assert_eq!(dns.zone().domain(), "cluster.local");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_is_an_error_from_start() {
    // Taken by another program (no SO_REUSEPORT).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = DnsConfig { listen: vec![udp.local_addr().unwrap()], ..DnsConfig::default() };
    let error = DnsServer::start(config).unwrap_err();
    assert!(matches!(error, DnsError::Bind { protocol: "udp", .. }), "{error}");

    // Taken by another of our servers: its UDP sockets share the port, its
    // TCP listener does not, so the second server cannot start.
    let dns = start(Zone::empty("cluster.local").unwrap(), Vec::new());
    let config = DnsConfig { listen: vec![addr(&dns)], ..DnsConfig::default() };
    let error = DnsServer::start(config).unwrap_err();
    assert!(matches!(error, DnsError::Bind { protocol: "tcp", .. }), "{error}");

    // Only TCP taken: the UDP socket bound first is released again.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = DnsConfig { listen: vec![tcp.local_addr().unwrap()], ..DnsConfig::default() };
    let error = DnsServer::start(config).unwrap_err();
    assert!(matches!(error, DnsError::Bind { protocol: "tcp", .. }), "{error}");
    std::net::UdpSocket::bind(tcp.local_addr().unwrap()).expect("the udp port is free again");

    let error = DnsServer::start(DnsConfig::default()).unwrap_err();
    assert!(matches!(error, DnsError::NoListenAddress), "{error}");
    let config = DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], domain: "not a domain".into(), ..DnsConfig::default() };
    assert!(matches!(DnsServer::start(config).unwrap_err(), DnsError::Zone(_)));
}

#[test]
fn starting_outside_a_runtime_is_an_error() {
    let config = DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..DnsConfig::default() };
    assert!(matches!(DnsServer::start(config).unwrap_err(), DnsError::NoRuntime));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_sockets() {
    let dns = start(Zone::empty("cluster.local").unwrap(), Vec::new());
    let address = addr(&dns);
    tokio::time::timeout(Duration::from_secs(10), dns.shutdown()).await.expect("shutdown is bounded");
    std::net::UdpSocket::bind(address).expect("udp is closed");
    std::net::TcpListener::bind(address).expect("tcp is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_server() {
    let dns = start(Zone::empty("cluster.local").unwrap(), Vec::new());
    let address = addr(&dns);
    drop(dns);
    // The tasks are aborted on drop; their sockets close when the runtime
    // drops them, shortly after. Poll with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while std::net::UdpSocket::bind(address).is_err() {
        assert!(tokio::time::Instant::now() < deadline, "udp socket still bound after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn the_handle_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync>() {}
    shared::<driftless_dns::DnsHandle>();
    shared::<Zone>();
}
