//! The test network: a bridge, a pod range and a service range of the
//! test's own, pods as network namespaces with processes in them, and a
//! guard that removes all of it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use driftless_proxy::{Protocol, ProxyConfig, ServicePort};
use driftless_runtime::network::{Bridge, PodInterface, delete_local_route, ensure_local_route, local_route_exists, route_exists};
use ipnet::Ipv4Net;

use crate::DEADLINE;

/// Picking a range and creating it happen under this lock, so tests of
/// one run never pick the same range.
static ALLOCATE: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A netlink connection and the runtime that drives it.
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

/// A pod: a network namespace attached to the bridge.
#[derive(Clone, Debug)]
pub(crate) struct Pod {
    pub(crate) netns: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) name: String,
}

/// One test's network, removed on drop.
pub(crate) struct TestNet {
    pub(crate) index: u8,
    pub(crate) bridge: String,
    pub(crate) pod_cidr: Ipv4Net,
    pub(crate) service_cidr: Ipv4Net,
    pub(crate) gateway: Ipv4Addr,
    pods: Vec<Pod>,
    links: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    children: Vec<Child>,
    dirs: Vec<tempfile::TempDir>,
    net: Netlink,
    routed: bool,
}

impl TestNet {
    /// A bridge `dlpX` with 10.245.X.1/25 (the upper half of the /24 is
    /// for links that stand for "elsewhere") and 10.98.X.0/24 routed local on
    /// lo, X free on this machine. Both routes are asserted before return.
    pub(crate) fn new() -> TestNet {
        assert!(nix::unistd::geteuid().is_root(), "proxy tests need root (CI runs as root)");
        let _lock = ALLOCATE.lock().unwrap_or_else(|e| e.into_inner());
        let net = Netlink::new();
        let seed = std::process::id().wrapping_mul(7).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed) * 13);
        let index = (0..250)
            .map(|i| ((seed + i) % 250 + 1) as u8)
            .find(|&x| {
                let pod: Ipv4Net = format!("10.245.{x}.0/25").parse().unwrap();
                let svc: Ipv4Net = format!("10.98.{x}.0/24").parse().unwrap();
                let routes = std::fs::read_to_string("/proc/net/route").unwrap();
                let hex = |ip: Ipv4Addr| format!("{:08X}", u32::from_le_bytes(ip.octets()));
                !routes.contains(&hex(pod.network()))
                    && !net.run(local_route_exists(&net.handle, svc)).unwrap()
                    && !std::path::Path::new(&format!("/sys/class/net/dlp{x}")).exists()
            })
            .expect("a free test range");
        let bridge = format!("dlp{index}");
        let pod_cidr: Ipv4Net = format!("10.245.{index}.0/25").parse().unwrap();
        let service_cidr: Ipv4Net = format!("10.98.{index}.0/24").parse().unwrap();
        let gateway = Ipv4Addr::new(10, 245, index, 1);
        let mut this = TestNet {
            index,
            bridge,
            pod_cidr,
            service_cidr,
            gateway,
            pods: vec![],
            links: vec![],
            stop: Default::default(),
            threads: vec![],
            children: vec![],
            dirs: vec![],
            net,
            routed: false,
        };
        this.net.run(Bridge::ensure(&this.net.handle, &this.bridge, pod_cidr, gateway)).unwrap();
        this.net.run(ensure_local_route(&this.net.handle, service_cidr)).unwrap();
        this.routed = true;
        this.assert_routed();
        this
    }

    /// The safety precondition of every send: both ranges stay local.
    pub(crate) fn assert_routed(&self) {
        assert!(route_exists(self.pod_cidr, &self.bridge).unwrap(), "{} is not routed to {}", self.pod_cidr, self.bridge);
        assert!(self.net.run(local_route_exists(&self.net.handle, self.service_cidr)).unwrap(), "{} is not local", self.service_cidr);
    }

    /// The proxy configuration for this network, with a table of its own.
    pub(crate) fn config(&self) -> ProxyConfig {
        let mut config = ProxyConfig::new(self.service_cidr, self.pod_cidr, self.bridge.clone());
        config.table = format!("driftless_t{}_{}", std::process::id(), self.index);
        config.node_addresses = vec![self.gateway];
        config
    }

    /// `10.98.X.last`.
    pub(crate) fn service_ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 98, self.index, last)
    }

    /// A NodePort-style port unique to this network.
    pub(crate) fn node_port(&self, offset: u16) -> u16 {
        30000 + u16::from(self.index) * 10 + offset
    }

    /// A LoadBalancer-style address on loopback: 127.0.0.(100 + X % 150).
    pub(crate) fn load_balancer_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 100 + self.index % 150)
    }

    /// A new pod: namespace `dlpX-i`, address 10.245.X.(10 + i).
    pub(crate) fn pod(&mut self, name: &str) -> Pod {
        let i = self.pods.len() as u8;
        let netns = format!("dlp{}-{i}", self.index);
        let ip = Ipv4Addr::new(10, 245, self.index, 10 + i);
        let pod = Pod { netns: netns.clone(), ip, name: name.to_owned() };
        self.pods.push(pod.clone());
        run(Command::new("ip").args(["netns", "add", &netns]));
        let bridge = Bridge { name: self.bridge.clone(), index: bridge_index(&self.bridge), cidr: self.pod_cidr, gateway: self.gateway };
        let path = PathBuf::from("/run/netns").join(&netns);
        self.net.run(PodInterface::attach(&bridge, &path, &netns, ip)).unwrap();
        pod
    }

    /// A namespace that stands for "elsewhere": not on the bridge but
    /// behind a veth pair of its own, 10.245.X.129/30 on the host and
    /// .130 inside. Returns it as a pod at .130.
    pub(crate) fn elsewhere(&mut self) -> Pod {
        let netns = format!("dlp{}-out", self.index);
        let link = format!("dlpo{}", self.index);
        let pod = Pod { netns: netns.clone(), ip: Ipv4Addr::new(10, 245, self.index, 130), name: "elsewhere".into() };
        self.pods.push(pod.clone());
        run(Command::new("ip").args(["netns", "add", &netns]));
        self.links.push(link.clone());
        run(Command::new("ip").args(["link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &netns]));
        run(Command::new("ip").args(["addr", "add", &format!("10.245.{}.129/30", self.index), "dev", &link]));
        run(Command::new("ip").args(["link", "set", &link, "up"]));
        let inside = |args: &[&str]| run(Command::new("ip").args(["netns", "exec", &netns, "ip"]).args(args));
        inside(&["addr", "add", &format!("10.245.{}.130/30", self.index), "dev", "eth0"]);
        inside(&["link", "set", "eth0", "up"]);
        inside(&["link", "set", "lo", "up"]);
        pod
    }

    /// Runs `args` inside the pod's namespace until the test ends.
    pub(crate) fn spawn(&mut self, pod: &Pod, args: &[&str]) {
        let child =
            Command::new("ip").args(["netns", "exec", &pod.netns]).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.children.push(child);
    }

    /// busybox httpd on port 80 answering with the pod's name; returns
    /// once it answers at the pod's address.
    pub(crate) fn http_backend(&mut self, name: &str) -> Pod {
        let pod = self.pod(name);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), format!("{name}\n")).unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        self.dirs.push(dir);
        self.spawn(&pod, &["busybox", "httpd", "-f", "-p", "80", "-h", &root]);
        let addr = SocketAddr::from((pod.ip, 80));
        poll(|| http_get(addr).ok().filter(|b| b == name).map(|_| ()), &format!("{name} serving HTTP"));
        pod
    }

    /// A TCP backend on port 7000 that says its name, then echoes.
    pub(crate) fn echo_backend(&mut self, pod: &Pod) {
        let script = format!("echo {}; exec cat", pod.name);
        self.spawn(pod, &["socat", "TCP4-LISTEN:7000,fork,reuseaddr", &format!("SYSTEM:{script}")]);
        let addr = SocketAddr::from((pod.ip, 7000));
        poll(|| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok().map(|_| ()), "the echo backend");
    }

    /// A UDP backend on port 5353 answering each datagram with its name:
    /// a socket in the pod's namespace, served by a thread of the test.
    /// (socat's `UDP-RECVFROM,fork` was tried: its children share the
    /// socket and swallow datagrams meant for the parent, about one in four
    /// in quick succession.)
    pub(crate) fn udp_backend(&mut self, pod: &Pod) {
        let socket = TestNet::in_pod(pod, || UdpSocket::bind("0.0.0.0:5353").unwrap());
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let (stop, name) = (self.stop.clone(), pod.name.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(format!("{name}\n").as_bytes(), peer);
                }
            }
        }));
        let addr = SocketAddr::from((pod.ip, 5353));
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        poll(|| udp_ask(&socket, addr).ok().filter(|n| *n == pod.name).map(|_| ()), "the UDP backend");
    }

    /// Runs `f` on a thread inside the pod's network namespace: sockets
    /// made there belong to the pod.
    pub(crate) fn in_pod<T: Send + 'static>(pod: &Pod, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = PathBuf::from("/run/netns").join(&pod.netns);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

fn bridge_index(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).unwrap().trim().parse().unwrap()
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Nothing here may panic: a panic while a failing test unwinds
        // aborts the process and leaves everything behind.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for pod in &self.pods {
            // socat's forked children do not die with their parent.
            let _ = Command::new("ip").args(["netns", "pids", &pod.netns]).output().map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
            let _ = self.net.run(PodInterface::detach(&self.net.handle, &PodInterface::host_name(&pod.netns)));
            let _ = Command::new("ip").args(["netns", "del", &pod.netns]).status();
        }
        for link in &self.links {
            let _ = Command::new("ip").args(["link", "del", link]).status();
        }
        let _ = self.net.run(Bridge::delete(&self.net.handle, &self.bridge));
        if self.routed {
            let _ = self.net.run(delete_local_route(&self.net.handle, self.service_cidr));
        }
        // A proxy that was leaked (a test bug) must not leave its table.
        let table = format!("driftless_t{}_{}", std::process::id(), self.index);
        let _ = Command::new("nft").args(["delete", "table", "ip", &table]).stderr(Stdio::null()).status();
    }
}

/// Calls `f` until it returns something, or fails the test at the deadline.
pub(crate) fn poll<T>(mut f: impl FnMut() -> Option<T>, what: &str) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.0 GET; returns the body, trimmed.
pub(crate) fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split("\r\n\r\n").nth(1).ok_or_else(|| std::io::Error::other(format!("no body in {response:?}")))?;
    Ok(body.trim().to_owned())
}

/// Sends one datagram and returns the answer, trimmed.
pub(crate) fn udp_ask(socket: &UdpSocket, addr: SocketAddr) -> std::io::Result<String> {
    // The backend forks for every datagram: give it time on a busy machine.
    socket.set_read_timeout(Some(Duration::from_secs(3)))?;
    socket.connect(addr)?;
    socket.send(b"who?")?;
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
}

/// A service port.
pub(crate) fn service(name: &str, protocol: Protocol, frontends: &[SocketAddrV4], backends: &[SocketAddrV4]) -> ServicePort {
    ServicePort {
        name: name.to_owned(),
        protocol,
        frontends: frontends.iter().map(|&f| f.into()).collect(),
        backends: backends.iter().map(|&b| b.into()).collect(),
        session_affinity: None,
    }
}

/// `ip:port`.
pub(crate) fn at(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}
