//! The cluster DNS server's answer to any datagram a client could send,
//! through the UDP loop's own reading, handler and encoding (upstreams
//! aside): a reply is a response to that query's id, within the largest
//! payload the server ever sends, and parses as a DNS message.
#![no_main]

use std::sync::{Arc, OnceLock};

use driftless_dns::Zone;
use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// The zone of Kubernetes' DNS documentation's examples: a Service with
/// named ports, a headless one with hostnames behind it (one not ready),
/// its pods, and an ExternalName.
fn zone() -> Arc<Zone> {
    static ZONE: OnceLock<Arc<Zone>> = OnceLock::new();
    Arc::clone(ZONE.get_or_init(|| {
        let services: Vec<Service> = serde_json::from_value(json!([
            {"metadata": {"name": "my-svc", "namespace": "my-namespace"}, "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
                "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}},
            {"metadata": {"name": "subdomain", "namespace": "default"}, "spec": {"clusterIP": "None", "ports": [{"name": "foo", "port": 1234}]}},
            {"metadata": {"name": "my-service", "namespace": "prod"}, "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}},
        ]))
        .unwrap();
        let endpoints: Vec<Endpoints> = serde_json::from_value(json!([
            {"metadata": {"name": "subdomain", "namespace": "default"}, "subsets": [{
                "addresses": [{"ip": "10.244.0.5", "hostname": "busybox-1"}, {"ip": "10.244.0.6"}],
                "notReadyAddresses": [{"ip": "10.244.0.7", "hostname": "busybox-2"}],
                "ports": [{"name": "foo", "port": 1234}]}]},
        ]))
        .unwrap();
        let pods: Vec<Pod> = serde_json::from_value(json!([
            {"metadata": {"name": "busybox1", "namespace": "default"}, "spec": {"hostname": "busybox-1", "subdomain": "subdomain", "containers": []},
                "status": {"podIP": "10.244.0.5", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
        ]))
        .unwrap();
        Arc::new(Zone::build("cluster.local", &services, &endpoints, &pods).unwrap())
    }))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|bytes: &[u8]| {
    let from = "10.244.0.9:40000".parse().unwrap();
    let Some(reply) = runtime().block_on(driftless_dns::answer_datagram(zone(), bytes, from)) else { return };
    assert!(reply.len() <= 1232, "a {}-byte reply: over the largest UDP payload sent", reply.len());
    assert_eq!(reply[..2], bytes[..2], "a reply to another id");
    let reply = Message::from_vec(&reply).expect("a reply that does not parse");
    assert_eq!(reply.message_type(), MessageType::Response);
});
