//! Forwarding: names outside the cluster domain go to a fake upstream on
//! loopback, keeping its response code; a dead or silent upstream is a
//! SERVFAIL within the configured bound.

use std::time::{Duration, Instant};

use hickory_client::proto::op::ResponseCode;
use hickory_client::proto::rr::RecordType;

use crate::support::{Dig, FakeUpstream, TestClient, addr, cluster, start, texts, without_ttl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_are_forwarded_with_the_upstream_rcode() {
    let upstream = FakeUpstream::start().await;
    let dns = start(cluster(), vec![upstream.addr]);
    let mut client = TestClient::udp(addr(&dns)).await;

    let response = client.query("example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NoError);
    assert!(!response.header().authoritative(), "forwarded answers are not authoritative");
    assert!(response.header().recursion_available());
    assert!(response.header().recursion_desired());
    assert_eq!(without_ttl(&texts(response.answers())), ["example.test. IN A 127.0.0.10"]);

    let response = client.query("missing.example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NXDomain);
    assert!(response.answers().is_empty());
    assert_eq!(response.name_servers().len(), 1, "the upstream's SOA");

    let response = client.query("nodata.example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NoError);
    assert!(response.answers().is_empty());

    // Cluster names still answer with authority, and RA is set on them too.
    let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
    assert!(response.header().authoritative() && response.header().recursion_available());

    let dig = Dig::run(addr(&dns), &["example.test", "A"]).await;
    assert_eq!(dig.status(), "NOERROR");
    assert_eq!(dig.flags(), ["qr", "rd", "ra"]);
    assert_eq!(without_ttl(&dig.section("ANSWER")), ["example.test. IN A 127.0.0.10"]);
    let dig = Dig::run(addr(&dns), &["missing.example.test", "A"]).await;
    assert_eq!(dig.status(), "NXDOMAIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_names_without_a_record_are_forwarded() {
    let upstream = FakeUpstream::start().await;
    let dns = start(cluster(), vec![upstream.addr]);
    let dig = Dig::run(addr(&dns), &["-x", "10.96.0.99"]).await;
    assert_eq!(dig.status(), "NOERROR");
    assert!(!dig.flags().contains(&"aa"));
    assert_eq!(without_ttl(&dig.section("ANSWER")), ["99.0.96.10.in-addr.arpa. IN PTR upstream.example.test."]);
    // One we own is answered here.
    let dig = Dig::run(addr(&dns), &["-x", "10.96.0.10"]).await;
    assert!(dig.flags().contains(&"aa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_a_prompt_servfail() {
    // A port nothing listens on (the kernel refuses at once).
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dns = start(cluster(), vec![closed]);
    let mut client = TestClient::udp(addr(&dns)).await;
    let started = Instant::now();
    let response = client.query("example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_a_servfail_within_the_timeout() {
    // Bound and open, never answering.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = start(cluster(), vec![silent.local_addr().unwrap()]);
    let mut client = TestClient::udp(addr(&dns)).await;
    let started = Instant::now();
    let response = client.query("example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::ServFail);
    // upstream_timeout is 1 s in these tests.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(3), "took {took:?}");

    let dig = Dig::run(addr(&dns), &["example.test", "A"]).await;
    assert_eq!(dig.status(), "SERVFAIL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_upstreams_other_names_are_refused() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    let response = client.query("example.test.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::Refused);
    assert!(!response.header().recursion_available());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_does_not_hold_up_cluster_names() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = start(cluster(), vec![silent.local_addr().unwrap()]);
    let mut waiting = TestClient::udp(addr(&dns)).await;
    let mut client = TestClient::udp(addr(&dns)).await;
    let forwarded = tokio::spawn(async move { waiting.query("example.test.", RecordType::A).await.response_code() });
    // While that waits for upstream (1 s), cluster names answer at once.
    let started = Instant::now();
    for _ in 0..20 {
        let response = client.query("web.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(response.answers().len(), 1);
    }
    assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());
    assert_eq!(forwarded.await.unwrap(), ResponseCode::ServFail);
}
