//! sessionAffinity ClientIP: a client sticks to one backend until its
//! timeout passes, then is balanced anew.

use std::process::Command;
use std::time::Duration;

use driftless_proxy::{Protocol, Proxy, ServiceTable};

use crate::net::{TestNet, at, http_get, poll, service};

#[test]
fn a_client_sticks_to_its_backend_until_the_affinity_timeout() {
    let mut net = TestNet::new();
    let backends: Vec<_> = ["web-a", "web-b", "web-c"].iter().map(|n| net.http_backend(n)).collect();
    let client = net.pod("client");
    let frontend = at(net.service_ip(10), 80);
    let config = net.config();
    let table_name = config.table.clone();
    let mut proxy = Proxy::start(config).unwrap();
    let mut port = service("default/web:http", Protocol::Tcp, &[frontend], &backends.iter().map(|b| at(b.ip, 80)).collect::<Vec<_>>());
    port.session_affinity = Some(Duration::from_secs(2));
    proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![port] }).unwrap();

    net.assert_routed();
    let host: Vec<String> = (0..8).map(|_| http_get(frontend.into()).unwrap()).collect();
    assert!(host.iter().all(|b| *b == host[0]), "{host:?}");
    let pod: Vec<String> = TestNet::in_pod(&client, move || (0..8).map(|_| http_get(frontend.into()).unwrap()).collect());
    assert!(pod.iter().all(|b| *b == pod[0]), "{pod:?}");
    assert_ne!(host[0], pod[0], "each new client is balanced in turn");

    // When the timeout has passed, the sets are empty and the host's next
    // connection is balanced again: the next backend in turn.
    let sets = || String::from_utf8(Command::new("nft").args(["list", "sets", "table", "ip", &table_name]).output().unwrap().stdout).unwrap();
    assert!(sets().contains("elements = {"), "{}", sets());
    poll(|| (!sets().contains("elements = {")).then_some(()), "the affinity entries to time out");
    let after = http_get(frontend.into()).unwrap();
    assert!(after != host[0] && after != pod[0], "{after} after {host:?} and {pod:?}");
    proxy.shutdown().unwrap();
}
