//! Serves a generated cluster zone for the benchmark (`bench/dns.sh`):
//! 1,000 ClusterIP services, 100 headless services with 3 ready endpoints
//! each and their StatefulSet-style pods, on the address given. Writes the
//! zone as a master file (for the reference server) and a dnsperf query
//! file mixing service A, headless A, SRV and pod-hostname questions, then
//! answers until killed or until the time limit passes.
//!
//! `serve_zone LISTEN ZONE_FILE QUERY_FILE SECONDS [WORKERS [catalog]]`
//!
//! With `catalog`, the same zone file is served by hickory's generic
//! `Catalog` and `InMemoryAuthority` instead of driftless-dns, on the same
//! kind of sockets (one `SO_REUSEPORT` UDP socket per worker), so the
//! benchmark can say what the snapshot handler is worth.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use driftless_dns::{DnsConfig, DnsServer, Zone};
use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use serde_json::json;

const SERVICES: usize = 1000;
const HEADLESS: usize = 100;
const REPLICAS: usize = 3;
const NAMESPACES: usize = 10;

fn objects() -> (Vec<Service>, Vec<Endpoints>, Vec<Pod>) {
    let mut services = Vec::new();
    let mut endpoints = Vec::new();
    let mut pods = Vec::new();
    for i in 0..SERVICES {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 10)) + i as u32);
        services.push(
            serde_json::from_value(json!({
                "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % NAMESPACES)},
                "spec": {"clusterIP": ip.to_string(), "ports": [{"name": "http", "port": 80}]}
            }))
            .unwrap(),
        );
    }
    for j in 0..HEADLESS {
        let ns = format!("ns-{}", j % NAMESPACES);
        let name = format!("db-{j}");
        services.push(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": "None", "ports": [{"name": "sql", "port": 5432}]}
            }))
            .unwrap(),
        );
        let mut addresses = Vec::new();
        for k in 0..REPLICAS {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 10)) + (j * REPLICAS + k) as u32);
            let host = format!("{name}-{k}");
            addresses.push(json!({"ip": ip.to_string(), "hostname": host}));
            pods.push(
                serde_json::from_value(json!({
                    "metadata": {"name": host, "namespace": ns},
                    "spec": {"hostname": host, "subdomain": name, "containers": []},
                    "status": {"phase": "Running", "podIP": ip.to_string(),
                               "conditions": [{"type": "Ready", "status": "True"}]}
                }))
                .unwrap(),
            );
        }
        endpoints.push(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "subsets": [{"addresses": addresses, "ports": [{"name": "sql", "port": 5432}]}]
            }))
            .unwrap(),
        );
    }
    (services, endpoints, pods)
}

/// A quarter each: service A, headless A, SRV (ClusterIP and headless),
/// pod hostname A.
fn queries() -> String {
    let mut out = String::new();
    for n in 0..4000 {
        let i = (n * 7) % SERVICES;
        let j = (n * 13) % HEADLESS;
        let (ns_i, ns_j) = (i % NAMESPACES, j % NAMESPACES);
        let line = match n % 4 {
            0 => format!("svc-{i}.ns-{ns_i}.svc.cluster.local A"),
            1 => format!("db-{j}.ns-{ns_j}.svc.cluster.local A"),
            2 if n % 8 == 2 => format!("_http._tcp.svc-{i}.ns-{ns_i}.svc.cluster.local SRV"),
            2 => format!("_sql._tcp.db-{j}.ns-{ns_j}.svc.cluster.local SRV"),
            _ => format!("db-{j}-{}.db-{j}.ns-{ns_j}.svc.cluster.local A", n % REPLICAS),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, zone_file, query_file, seconds, rest @ ..] = args.as_slice() else {
        eprintln!("usage: serve_zone LISTEN ZONE_FILE QUERY_FILE SECONDS [WORKERS]");
        std::process::exit(64);
    };
    let listen: SocketAddr = listen.parse().expect("LISTEN is an address:port");
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    let workers: usize = rest.first().map_or(2, |w| w.parse().expect("WORKERS is a number"));
    let catalog = rest.get(1).is_some_and(|mode| mode == "catalog");

    let (services, endpoints, pods) = objects();
    let zone = Zone::build("cluster.local", &services, &endpoints, &pods).expect("a valid zone");
    std::fs::write(zone_file, zone.zone_file()).expect("writing the zone file");
    std::fs::write(query_file, queries()).expect("writing the query file");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    if catalog {
        runtime.block_on(serve_catalog(listen, &zone.zone_file(), workers, seconds));
        return;
    }
    runtime.block_on(async {
        let config = DnsConfig { listen: vec![listen], ..DnsConfig::default() };
        let dns = DnsServer::start(config).expect("binding the listen address");
        dns.set_zone(zone).unwrap();
        println!("ready {}", dns.local_addrs()[0]);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        dns.shutdown().await;
    });
}

/// The zone file served by hickory's `Catalog` over an `InMemoryAuthority`.
async fn serve_catalog(listen: SocketAddr, zone_file: &str, workers: usize, seconds: u64) {
    use hickory_proto::serialize::txt::Parser;
    use hickory_server::authority::{Catalog, ZoneType};
    use hickory_server::proto::rr::LowerName;
    use hickory_server::store::in_memory::InMemoryAuthority;

    let (origin, records) = Parser::new(zone_file, None, None).parse().expect("our own zone file parses");
    let authority = InMemoryAuthority::new(origin.clone(), records, ZoneType::Primary, false).expect("a valid zone");
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&origin), vec![Arc::new(authority)]);
    let mut server = hickory_server::ServerFuture::new(catalog);
    for _ in 0..workers {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket.bind(&listen.into()).unwrap();
        server.register_socket_std(socket.into()).unwrap();
    }
    println!("ready {listen}");
    let _ = tokio::time::timeout(Duration::from_secs(seconds), server.block_until_done()).await;
}
