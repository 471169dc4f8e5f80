//! Every kind of record the zone holds, asked over the wire: services,
//! headless endpoints, StatefulSet pod hostnames, SRV with their targets'
//! addresses, pod records, PTR, ExternalName CNAMEs, and the negative
//! answers (NXDOMAIN against NODATA).

use hickory_client::proto::op::ResponseCode;
use hickory_client::proto::rr::RecordType;

use crate::support::{Dig, FakeUpstream, TestClient, addr, assert_answers, cluster, start, texts, without_ttl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ip_services_answer_their_addresses() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    assert_answers(&mut client, "web.default.svc.cluster.local.", RecordType::A, &["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]).await;
    assert_answers(&mut client, "dual.default.svc.cluster.local.", RecordType::AAAA, &["dual.default.svc.cluster.local. 5 IN AAAA fd00:96::11"]).await;

    let dig = Dig::run(addr(&dns), &["web.default.svc.cluster.local", "A"]).await;
    assert_eq!(dig.status(), "NOERROR");
    assert_eq!(dig.flags(), ["qr", "aa", "rd"], "no upstream, so no RA");
    assert_eq!(dig.section("ANSWER"), ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_services_answer_their_ready_endpoints() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    assert_answers(
        &mut client,
        "nginx.default.svc.cluster.local.",
        RecordType::A,
        &["nginx.default.svc.cluster.local. 5 IN A 10.244.0.5", "nginx.default.svc.cluster.local. 5 IN A 10.244.0.6"],
    )
    .await;
    // Endpoint names: its hostname, or its dashed address.
    assert_answers(&mut client, "web-0.nginx.default.svc.cluster.local.", RecordType::A, &["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5"]).await;
    assert_answers(
        &mut client,
        "10-244-0-6.nginx.default.svc.cluster.local.",
        RecordType::A,
        &["10-244-0-6.nginx.default.svc.cluster.local. 5 IN A 10.244.0.6"],
    )
    .await;
    // The not-ready endpoint is not published.
    let response = client.query("web-2.nginx.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_pods_resolve_by_hostname_and_subdomain() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    // web-1 is Ready and names the headless service `nginx` as its
    // subdomain: it resolves before it is an endpoint.
    assert_answers(&mut client, "web-1.nginx.default.svc.cluster.local.", RecordType::A, &["web-1.nginx.default.svc.cluster.local. 5 IN A 10.244.0.8"]).await;
    let dig = Dig::run(addr(&dns), &["web-0.nginx.default.svc.cluster.local"]).await;
    assert_eq!(dig.section("ANSWER"), ["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_records_come_with_their_targets_addresses() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    let response = assert_answers(
        &mut client,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        &["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."],
    )
    .await;
    assert_eq!(texts(response.additionals()), ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]);

    let response = assert_answers(
        &mut client,
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
        &[
            "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 8080 10-244-0-6.nginx.default.svc.cluster.local.",
            "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 8080 web-0.nginx.default.svc.cluster.local.",
        ],
    )
    .await;
    assert_eq!(
        texts(response.additionals()),
        ["10-244-0-6.nginx.default.svc.cluster.local. 5 IN A 10.244.0.6", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5",]
    );

    let dig = Dig::run(addr(&dns), &["_web._tcp.nginx.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(dig.status(), "NOERROR");
    assert_eq!(dig.section("ANSWER").len(), 2);
    assert_eq!(
        dig.section("ADDITIONAL"),
        ["10-244-0-6.nginx.default.svc.cluster.local. 5 IN A 10.244.0.6", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5",]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_resolve_by_dashed_address_in_their_namespace() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    assert_answers(&mut client, "10-244-0-8.default.pod.cluster.local.", RecordType::A, &["10-244-0-8.default.pod.cluster.local. 5 IN A 10.244.0.8"]).await;
    // Verified: no pod has that address.
    let response = client.query("10-1-2-3.default.pod.cluster.local.", RecordType::A).await;
    assert_eq!(response.response_code(), ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_lookups_name_services_and_pods() {
    let dns = start(cluster(), Vec::new());
    for (ip, target) in [
        ("10.96.0.10", "web.default.svc.cluster.local."),
        ("10.244.0.5", "web-0.nginx.default.svc.cluster.local."),
        ("10.244.0.8", "web-1.nginx.default.svc.cluster.local."),
    ] {
        let dig = Dig::run(addr(&dns), &["-x", ip]).await;
        assert_eq!(dig.status(), "NOERROR", "{}", dig.output);
        assert!(dig.flags().contains(&"aa"));
        let answer = dig.section("ANSWER");
        assert_eq!(answer.len(), 1, "{}", dig.output);
        assert!(answer[0].ends_with(&format!("IN PTR {target}")), "{answer:?}");
    }
    let dig = Dig::run(addr(&dns), &["-x", "fd00:96::11"]).await;
    assert!(dig.section("ANSWER")[0].ends_with("IN PTR dual.default.svc.cluster.local."), "{}", dig.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_name_services_answer_a_cname() {
    // Without upstream: the CNAME alone, whatever type is asked.
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    for qtype in [RecordType::A, RecordType::CNAME] {
        assert_answers(&mut client, "ext.apps.svc.cluster.local.", qtype, &["ext.apps.svc.cluster.local. 5 IN CNAME db.example.org."]).await;
    }
    drop(dns);

    // With one, the target is resolved there.
    let upstream = FakeUpstream::start().await;
    let dns = start(cluster(), vec![upstream.addr]);
    let dig = Dig::run(addr(&dns), &["ext.apps.svc.cluster.local", "A"]).await;
    assert_eq!(dig.status(), "NOERROR");
    assert_eq!(without_ttl(&dig.section("ANSWER")), ["ext.apps.svc.cluster.local. IN CNAME db.example.org.", "db.example.org. IN A 127.0.0.20",]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_exist_answer_nodata_and_others_nxdomain() {
    let dns = start(cluster(), Vec::new());
    let mut client = TestClient::udp(addr(&dns)).await;
    let soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 2 7200 1800 86400 5";
    for (name, qtype) in [
        // Only an IPv4 ClusterIP.
        ("web.default.svc.cluster.local.", RecordType::AAAA),
        // Empty non-terminals: names exist below them.
        ("default.svc.cluster.local.", RecordType::A),
        ("_tcp.web.default.svc.cluster.local.", RecordType::SRV),
        ("svc.cluster.local.", RecordType::A),
        ("cluster.local.", RecordType::A),
    ] {
        let response = client.query(name, qtype).await;
        assert_eq!(response.response_code(), ResponseCode::NoError, "{name} {qtype}");
        assert!(response.header().authoritative());
        assert!(response.answers().is_empty(), "{name} {qtype}");
        assert_eq!(texts(response.name_servers()), [soa], "{name} {qtype}");
    }
    for name in ["nope.default.svc.cluster.local.", "x.web.default.svc.cluster.local.", "nope.cluster.local."] {
        let response = client.query(name, RecordType::A).await;
        assert_eq!(response.response_code(), ResponseCode::NXDomain, "{name}");
        assert!(response.header().authoritative());
        assert_eq!(texts(response.name_servers()), [soa], "{name}");
    }

    let dig = Dig::run(addr(&dns), &["web.default.svc.cluster.local", "AAAA"]).await;
    assert_eq!((dig.status(), dig.section("ANSWER").len()), ("NOERROR", 0));
    assert_eq!(dig.section("AUTHORITY"), [soa]);
    let dig = Dig::run(addr(&dns), &["nope.default.svc.cluster.local", "A"]).await;
    assert_eq!(dig.status(), "NXDOMAIN");
    assert!(dig.flags().contains(&"aa"));
    assert_eq!(dig.section("AUTHORITY"), [soa]);
    let dig = Dig::run(addr(&dns), &["cluster.local", "SOA"]).await;
    assert_eq!(dig.section("ANSWER"), [soa]);
}
