//! Pods: containers sharing a sandbox's network, IPC and UTS namespaces,
//! on a bridge with addresses from the pod CIDR.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use driftless_runtime::network::{Bridge, Ipam, PodInterface, route_exists};
use driftless_runtime::{Sandbox, Status};
use ipnet::Ipv4Net;
use nix::sys::signal::Signal;

use crate::{DEADLINE, Node};

/// A netlink connection with the runtime that drives it. The socket must be
/// made inside the runtime, and a current-thread runtime drives it only
/// while `run` is blocking on it.
pub(crate) struct Netlink {
    runtime: tokio::runtime::Runtime,
    pub(crate) handle: rtnetlink::Handle,
}

impl Netlink {
    pub(crate) fn new() -> Netlink {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let handle = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(connection);
            handle
        });
        Netlink { runtime, handle }
    }

    pub(crate) fn run<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// Undoes everything a pod test made, in order, even when the test fails:
/// containers, the veth pair, the namespaces, the bridge.
pub(crate) struct PodCleanup<'a> {
    pub(crate) node: &'a Node,
    pub(crate) containers: Vec<String>,
    pub(crate) sandbox: Sandbox,
    pub(crate) host_veth: String,
    pub(crate) bridge: String,
}

impl Drop for PodCleanup<'_> {
    fn drop(&mut self) {
        for id in &self.containers {
            if let Ok(Some(Status::Running { .. })) = self.node.layout.status(id)
                && self.node.layout.kill(id, Signal::SIGKILL).is_ok()
            {
                let _ = self.node.layout.wait(id, DEADLINE);
            }
        }
        // Nothing here may panic: a panic while a failed test unwinds aborts
        // the process and leaves everything behind.
        if let Ok(net) = std::panic::catch_unwind(Netlink::new) {
            let _ = net.run(PodInterface::detach(&net.handle, &self.host_veth));
            let _ = self.sandbox.remove();
            let _ = net.run(Bridge::delete(&net.handle, &self.bridge));
        } else {
            let _ = self.sandbox.remove();
        }
    }
}

/// A bridge name and /24 of a test's own, away from a real node's
/// driftless0 and 10.244.0.0/24 (runtime tests run one at a time, so a
/// tag and a third octet per test keep them apart), with its IPAM.
pub(crate) fn own_network(node: &Node, tag: &str, octet_base: u32) -> (String, Ipv4Net, Ipam) {
    let id = std::process::id();
    let bridge_name = format!("dl{tag}{}", id % 100_000);
    let cidr: Ipv4Net = format!("10.244.{}.0/24", octet_base + id % 50).parse().unwrap();
    let ipam = Ipam::new(node.dir.path().join("ipam"), cidr);
    (bridge_name, cidr, ipam)
}

#[test]
fn a_two_container_pod_shares_localhost_and_is_reachable_at_its_ip() {
    let node = Node::new("pod");
    let (bridge_name, cidr, ipam) = own_network(&node, "t", 200);
    let sandbox_dir = node.dir.path().join("pods/pod-a/ns");
    let host_veth = PodInterface::host_name("default/pod-a");
    let mut cleanup =
        PodCleanup { node: &node, containers: vec![], sandbox: Sandbox::at(&sandbox_dir), host_veth: host_veth.clone(), bridge: bridge_name.clone() };

    let net = Netlink::new();
    let bridge = net.run(Bridge::ensure(&net.handle, &bridge_name, cidr, ipam.gateway())).unwrap();
    // Safety first: the pod CIDR must be routed to the bridge before any
    // pod address is used, so nothing can leave by the default route.
    assert!(route_exists(cidr, &bridge_name).unwrap(), "{cidr} is not routed to {bridge_name}");

    let sandbox = Sandbox::create(&sandbox_dir, "pod-a").unwrap();
    assert!(sandbox.exists());
    let ip = ipam.allocate("default/pod-a").unwrap();
    let interface = net.run(PodInterface::attach(&bridge, &sandbox.namespace("net"), "default/pod-a", ip)).unwrap();
    assert_eq!(interface.host_veth, host_veth);

    let mut server = node.config("pod-a-web", "exec httpd -f -p 8080 -h /www");
    server.sandbox = Some(sandbox_dir.clone());
    let mut client = node.config("pod-a-client", "hostname; for i in $(seq 1 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.05; done; exit 1");
    client.sandbox = Some(sandbox_dir.clone());
    cleanup.containers = vec![server.id.clone(), client.id.clone()];
    assert!(matches!(node.start(&server), Status::Running { .. }));
    node.start(&client);

    // The second container reaches the first on localhost, and shares its
    // hostname: one network and UTS namespace for the pod.
    let status = node.layout.wait("pod-a-client", DEADLINE).unwrap();
    let log = node.log("pod-a-client");
    assert!(matches!(status, Status::Exited { ref exit, .. } if exit.code == 0), "{status:?}\n{log}");
    assert!(log.contains(" stdout F pod-a\n"), "{log}");
    assert!(log.contains(" stdout F hello from pod-a-web"), "{log}");

    // The host reaches the pod at its address, through the bridge.
    assert!(cidr.contains(&ip) && ip != cidr.network());
    let body = http_get(SocketAddr::from((ip, 8080)));
    assert!(body.contains("hello from pod-a-web"), "{body}");
    drop(cleanup);

    assert!(!sandbox.exists(), "namespace files are unmounted and removed");
    assert!(!route_exists(cidr, &bridge_name).unwrap(), "the test's bridge is gone");
}

#[test]
fn a_pods_veth_pair_goes_with_its_namespace_and_is_deleted_when_the_namespace_is_held() {
    let node = Node::new("podnet");
    let (bridge_name, cidr, ipam) = own_network(&node, "u", 150);
    let net = Netlink::new();
    let bridge = net.run(Bridge::ensure(&net.handle, &bridge_name, cidr, ipam.gateway())).unwrap();
    assert!(route_exists(cidr, &bridge_name).unwrap(), "{cidr} is not routed to {bridge_name}");
    let exists = |veth: &str| std::path::Path::new("/sys/class/net").join(veth).exists();
    // Each undoes its pod, the last the bridge too, even when the test fails.
    let mut cleanups = Vec::new();
    for (pod, held) in [("default/pod-free", false), ("default/pod-held", true)] {
        let sandbox_dir = node.dir.path().join(pod.replace('/', "-"));
        let host_veth = PodInterface::host_name(pod);
        cleanups.push(PodCleanup {
            node: &node,
            containers: vec![],
            sandbox: Sandbox::at(&sandbox_dir),
            host_veth: host_veth.clone(),
            bridge: bridge_name.clone(),
        });
        let sandbox = Sandbox::create(&sandbox_dir, "pod").unwrap();
        let ip = ipam.allocate(pod).unwrap();
        net.run(PodInterface::attach(&bridge, &sandbox.namespace("net"), pod, ip)).unwrap();
        assert!(exists(&host_veth));
        // An open descriptor keeps a namespace alive as a process in it would.
        let holder = held.then(|| std::fs::File::open(sandbox.namespace("net")).unwrap());
        sandbox.remove().unwrap();
        let started = Instant::now();
        net.run(PodInterface::detach_after_namespace(&net.handle, &host_veth, Duration::from_millis(300))).unwrap();
        assert!(!exists(&host_veth), "{pod}: the pair is gone on return");
        if held {
            assert!(started.elapsed() >= Duration::from_millis(300), "{pod}: deleted by us, at the deadline");
        } else {
            assert!(started.elapsed() < Duration::from_millis(300), "{pod}: the kernel deleted it with the namespace");
        }
        drop(holder);
    }
    drop(cleanups);
    assert!(!route_exists(cidr, &bridge_name).unwrap(), "the test's bridge is gone");
}

/// A plain HTTP GET, retried until the deadline (the server may still be
/// binding its port).
fn http_get(addr: SocketAddr) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let attempt = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        });
        match attempt {
            Ok(response) if response.starts_with("HTTP/1") => return response,
            _ if Instant::now() > deadline => panic!("no HTTP answer from {addr}: {attempt:?}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
