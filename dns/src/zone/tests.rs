//! Unit tests of zone building and lookup: objects in, answers out, no
//! sockets.

use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RecordType};
use serde_json::json;

use super::{Lookup, Zone};

fn service(value: serde_json::Value) -> Service {
    serde_json::from_value(value).unwrap()
}

fn endpoints(value: serde_json::Value) -> Endpoints {
    serde_json::from_value(value).unwrap()
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// A small cluster: a ClusterIP service with two named ports, a dual-stack
/// one, a headless StatefulSet service with three endpoints (one not
/// ready), its pods, an ExternalName service.
fn cluster() -> Zone {
    let services = [
        service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [
                {"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}, {"port": 9000}]}})),
        service(json!({"metadata": {"name": "dual", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11", "fd00:96::11"]}})),
        service(json!({"metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}})),
        service(json!({"metadata": {"name": "ext", "namespace": "apps"},
            "spec": {"type": "ExternalName", "externalName": "db.example.org"}})),
        service(json!({"metadata": {"name": "alias", "namespace": "apps"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}})),
    ];
    let endpoints = [endpoints(json!({"metadata": {"name": "nginx", "namespace": "default"},
        "subsets": [{
            "addresses": [{"ip": "10.244.0.5", "hostname": "web-0"}, {"ip": "10.244.0.6"}],
            "notReadyAddresses": [{"ip": "10.244.0.7", "hostname": "web-2"}],
            "ports": [{"name": "web", "port": 8080}]}]}))];
    let pods = [
        pod(json!({"metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"hostname": "web-0", "subdomain": "nginx", "containers": []},
            "status": {"podIP": "10.244.0.5", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})),
        pod(json!({"metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"hostname": "web-1", "subdomain": "nginx", "containers": []},
            "status": {"podIP": "10.244.0.8", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})),
        pod(json!({"metadata": {"name": "web-2", "namespace": "default"},
            "spec": {"hostname": "web-2", "subdomain": "nginx", "containers": []},
            "status": {"podIP": "10.244.0.7", "phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}})),
        pod(json!({"metadata": {"name": "done", "namespace": "default"},
            "spec": {"containers": []}, "status": {"podIP": "10.244.0.9", "phase": "Succeeded"}})),
    ];
    Zone::build("cluster.local", &services, &endpoints, &pods).unwrap()
}

/// The rcode and the answer, authority and additional records as text.
fn ask(zone: &Zone, name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>, Vec<String>, Vec<String>) {
    let name = LowerName::new(&Name::from_ascii(name).unwrap());
    match zone.lookup(&name, qtype) {
        Lookup::Forward => (ResponseCode::Unknown(0xfff), vec!["forward".into()], vec![], vec![]),
        Lookup::Local(local) => (
            local.rcode,
            local.answer_records().map(|r| r.to_string()).collect(),
            local.authority.iter().map(|r| r.record_type().to_string()).collect(),
            local.additionals.iter().map(|r| r.to_string()).collect(),
        ),
    }
}

fn answers(zone: &Zone, name: &str, qtype: RecordType) -> Vec<String> {
    let (rcode, answers, _, _) = ask(zone, name, qtype);
    assert_eq!(rcode, ResponseCode::NoError, "{name} {qtype}");
    answers
}

#[test]
fn cluster_ip_service_has_its_address_and_reverse_name() {
    let zone = cluster();
    assert_eq!(answers(&zone, "web.default.svc.cluster.local.", RecordType::A), ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]);
    assert_eq!(answers(&zone, "10.0.96.10.in-addr.arpa.", RecordType::PTR), ["10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]);
}

#[test]
fn names_are_case_insensitive_as_the_request_lowers_them() {
    let zone = cluster();
    assert_eq!(answers(&zone, "WEB.Default.SVC.cluster.LOCAL.", RecordType::A).len(), 1);
}

#[test]
fn dual_stack_service_has_a_and_aaaa() {
    let zone = cluster();
    assert_eq!(answers(&zone, "dual.default.svc.cluster.local.", RecordType::A), ["dual.default.svc.cluster.local. 5 IN A 10.96.0.11"]);
    assert_eq!(answers(&zone, "dual.default.svc.cluster.local.", RecordType::AAAA), ["dual.default.svc.cluster.local. 5 IN AAAA fd00:96::11"]);
    assert_eq!(
        answers(&zone, "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", RecordType::PTR),
        ["1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.default.svc.cluster.local."]
    );
}

#[test]
fn srv_for_named_ports_of_a_cluster_ip_service() {
    let zone = cluster();
    let (rcode, answers, _, additionals) = ask(&zone, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(answers, ["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(additionals, ["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]);
    assert_eq!(answers_of(&zone, "_dns._udp.web.default.svc.cluster.local."), 1);
    // The unnamed port has no SRV; the protocol must match.
    assert_eq!(ask(&zone, "_dns._tcp.web.default.svc.cluster.local.", RecordType::SRV).0, ResponseCode::NXDomain);
}

fn answers_of(zone: &Zone, name: &str) -> usize {
    answers(zone, name, RecordType::SRV).len()
}

#[test]
fn headless_service_answers_its_ready_endpoints() {
    let zone = cluster();
    assert_eq!(
        answers(&zone, "nginx.default.svc.cluster.local.", RecordType::A),
        ["nginx.default.svc.cluster.local. 5 IN A 10.244.0.5", "nginx.default.svc.cluster.local. 5 IN A 10.244.0.6",]
    );
    // Endpoint names: the hostname, or the dashed address without one.
    assert_eq!(answers(&zone, "web-0.nginx.default.svc.cluster.local.", RecordType::A), ["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5"]);
    assert_eq!(answers(&zone, "10-244-0-6.nginx.default.svc.cluster.local.", RecordType::A), ["10-244-0-6.nginx.default.svc.cluster.local. 5 IN A 10.244.0.6"]);
    assert_eq!(answers(&zone, "5.0.244.10.in-addr.arpa.", RecordType::PTR), ["5.0.244.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local."]);
}

#[test]
fn headless_srv_has_one_record_per_ready_endpoint_and_their_addresses() {
    let zone = cluster();
    let (_, answers, _, additionals) = ask(&zone, "_web._tcp.nginx.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        answers,
        [
            "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 8080 10-244-0-6.nginx.default.svc.cluster.local.",
            "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 50 8080 web-0.nginx.default.svc.cluster.local.",
        ]
    );
    assert_eq!(additionals, ["10-244-0-6.nginx.default.svc.cluster.local. 5 IN A 10.244.0.6", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5",]);
}

#[test]
fn not_ready_endpoints_are_published_only_when_the_service_says_so() {
    let zone = cluster();
    assert_eq!(ask(&zone, "web-2.nginx.default.svc.cluster.local.", RecordType::A).0, ResponseCode::NXDomain);

    let services = [service(json!({"metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}}))];
    let eps = [endpoints(json!({"metadata": {"name": "nginx", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "notReadyAddresses": [{"ip": "10.244.0.7", "hostname": "web-2"}]}]}))];
    let zone = Zone::build("cluster.local", &services, &eps, &[]).unwrap();
    assert_eq!(answers(&zone, "nginx.default.svc.cluster.local.", RecordType::A).len(), 2);
    assert_eq!(answers(&zone, "web-2.nginx.default.svc.cluster.local.", RecordType::A).len(), 1);
}

#[test]
fn pods_with_hostname_and_subdomain_resolve_under_their_headless_service() {
    let zone = cluster();
    // web-1 is not in the Endpoints yet, but it is Ready and names the
    // headless service as its subdomain.
    assert_eq!(answers(&zone, "web-1.nginx.default.svc.cluster.local.", RecordType::A), ["web-1.nginx.default.svc.cluster.local. 5 IN A 10.244.0.8"]);
    assert_eq!(answers(&zone, "8.0.244.10.in-addr.arpa.", RecordType::PTR), ["8.0.244.10.in-addr.arpa. 5 IN PTR web-1.nginx.default.svc.cluster.local."]);
    // Pods are not service endpoints: only Endpoints make the service's A set.
    assert_eq!(answers(&zone, "nginx.default.svc.cluster.local.", RecordType::A).len(), 2);
}

#[test]
fn a_subdomain_without_a_headless_service_gives_no_hostname_record() {
    let pods = [pod(json!({"metadata": {"name": "p", "namespace": "default"},
        "spec": {"hostname": "p", "subdomain": "nothing", "containers": []},
        "status": {"podIP": "10.244.1.1", "conditions": [{"type": "Ready", "status": "True"}]}}))];
    let zone = Zone::build("cluster.local", &[], &[], &pods).unwrap();
    assert_eq!(ask(&zone, "p.nothing.default.svc.cluster.local.", RecordType::A).0, ResponseCode::NXDomain);
    // Its pod record is there all the same.
    assert_eq!(answers(&zone, "10-244-1-1.default.pod.cluster.local.", RecordType::A).len(), 1);
}

#[test]
fn pod_records_are_verified_against_the_pods() {
    let zone = cluster();
    assert_eq!(answers(&zone, "10-244-0-8.default.pod.cluster.local.", RecordType::A), ["10-244-0-8.default.pod.cluster.local. 5 IN A 10.244.0.8"]);
    // No pod has that address, and a finished pod has none any more.
    assert_eq!(ask(&zone, "10-244-9-9.default.pod.cluster.local.", RecordType::A).0, ResponseCode::NXDomain);
    assert_eq!(ask(&zone, "10-244-0-9.default.pod.cluster.local.", RecordType::A).0, ResponseCode::NXDomain);
    // Right address, wrong namespace.
    assert_eq!(ask(&zone, "10-244-0-8.apps.pod.cluster.local.", RecordType::A).0, ResponseCode::NXDomain);
}

#[test]
fn external_name_is_a_cname_whatever_is_asked() {
    let zone = cluster();
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
        assert_eq!(answers(&zone, "ext.apps.svc.cluster.local.", qtype), ["ext.apps.svc.cluster.local. 5 IN CNAME db.example.org."]);
    }
    let name = LowerName::new(&Name::from_ascii("ext.apps.svc.cluster.local.").unwrap());
    let Lookup::Local(local) = zone.lookup(&name, RecordType::A) else { panic!("not local") };
    assert_eq!(local.chase.unwrap().to_string(), "db.example.org.");
    // A CNAME inside the cluster is followed one step, from the zone.
    assert_eq!(
        answers(&zone, "alias.apps.svc.cluster.local.", RecordType::A),
        ["alias.apps.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.", "web.default.svc.cluster.local. 5 IN A 10.96.0.10",]
    );
}

#[test]
fn nodata_for_names_that_exist_and_nxdomain_for_names_that_do_not() {
    let zone = cluster();
    for (name, qtype) in [
        ("web.default.svc.cluster.local.", RecordType::AAAA),
        ("web.default.svc.cluster.local.", RecordType::TXT),
        // Empty non-terminals: only names below them have records.
        ("default.svc.cluster.local.", RecordType::A),
        ("svc.cluster.local.", RecordType::A),
        ("_tcp.web.default.svc.cluster.local.", RecordType::SRV),
        ("default.pod.cluster.local.", RecordType::A),
        ("cluster.local.", RecordType::A),
    ] {
        let (rcode, answers, authority, _) = ask(&zone, name, qtype);
        assert_eq!((rcode, answers.len(), authority), (ResponseCode::NoError, 0, vec!["SOA".to_owned()]), "{name} {qtype}");
    }
    for name in ["nope.default.svc.cluster.local.", "web.nope.svc.cluster.local.", "x.web.default.svc.cluster.local.", "nope.cluster.local."] {
        let (rcode, answers, authority, _) = ask(&zone, name, RecordType::A);
        assert_eq!((rcode, answers.len(), authority), (ResponseCode::NXDomain, 0, vec!["SOA".to_owned()]), "{name}");
    }
}

#[test]
fn apex_answers_its_soa() {
    let zone = cluster();
    let soa = answers(&zone, "cluster.local.", RecordType::SOA);
    assert_eq!(soa, ["cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"]);
    let zone = zone.with_ttl(30).with_serial(7);
    assert_eq!(
        answers(&zone, "cluster.local.", RecordType::SOA),
        ["cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30"]
    );
    assert_eq!(answers(&zone, "web.default.svc.cluster.local.", RecordType::A), ["web.default.svc.cluster.local. 30 IN A 10.96.0.10"]);
}

#[test]
fn only_owned_reverse_names_are_answered_the_rest_is_forwarded() {
    let zone = cluster();
    for (name, qtype) in [
        ("example.com.", RecordType::A),
        ("99.0.96.10.in-addr.arpa.", RecordType::PTR),
        ("0.96.10.in-addr.arpa.", RecordType::PTR),
        ("local.", RecordType::SOA),
    ] {
        assert_eq!(ask(&zone, name, qtype).1, ["forward"], "{name}");
    }
    // An owned reverse name with another type is NODATA with a reverse SOA.
    let (rcode, answers, authority, _) = ask(&zone, "10.0.96.10.in-addr.arpa.", RecordType::A);
    assert_eq!((rcode, answers.len(), authority), (ResponseCode::NoError, 0, vec!["SOA".to_owned()]));
}

#[test]
fn objects_that_cannot_be_named_are_skipped_and_listed() {
    let services = [
        service(json!({"metadata": {"name": "bad", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.300"}})),
        service(json!({"metadata": {"name": "h", "namespace": "default"}, "spec": {"clusterIP": "None"}})),
    ];
    let eps = [endpoints(json!({"metadata": {"name": "h", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.244.0.5", "hostname": "not.a.label"}, {"ip": "nope"}]}]}))];
    let zone = Zone::build("cluster.local", &services, &eps, &[]).unwrap();
    assert_eq!(zone.skipped().len(), 3, "{:?}", zone.skipped());
    // The service names still exist.
    assert_eq!(ask(&zone, "bad.default.svc.cluster.local.", RecordType::A).0, ResponseCode::NoError);
}

#[test]
fn the_domain_must_be_a_domain() {
    assert!(Zone::build("", &[], &[], &[]).is_err());
    assert!(Zone::build(".", &[], &[], &[]).is_err());
    assert!(Zone::build("clu ster.local", &[], &[], &[]).is_err());
    let zone = Zone::build("Cluster.Example.", &[], &[], &[]).unwrap();
    assert_eq!(zone.domain(), "cluster.example");
}

#[test]
fn building_is_deterministic() {
    assert_eq!(cluster().zone_file(), cluster().zone_file());
    let file = cluster().zone_file();
    assert!(file.starts_with("$ORIGIN cluster.local.\ncluster.local. 5 IN SOA"), "{file}");
    assert!(file.contains("web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.0.5"));
    assert!(!file.contains("in-addr.arpa"));
}

/// Found by the `dns_zone` fuzz target: a domain of 247 bytes is a valid
/// name, but the SOA's `hostmaster.<domain>` is not, and building
/// panicked. It is refused as a domain instead.
#[test]
fn a_domain_too_long_for_the_zone_s_own_names_is_refused() {
    let domain = format!("{}.{}.{}.{}", "a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(62));
    let Err(error) = Zone::build(&domain, &[], &[], &[] as &[Pod]) else { panic!("refused") };
    assert!(error.to_string().contains("too long"), "{error}");
    assert!(Zone::build("cluster.local", &[], &[], &[] as &[Pod]).is_ok());
}
