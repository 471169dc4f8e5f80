//! A service port without endpoints refuses at once, TCP and UDP, from
//! the host and from pods; never a hang.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use driftless_proxy::{Protocol, Proxy, ServiceTable};

use crate::net::{TestNet, at, http_get, service};

const AT_ONCE: Duration = Duration::from_secs(1);

fn tcp_refused(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(started.elapsed()),
        other => Err(format!("{addr}: {other:?}")),
    }
}

fn udp_refused(addr: SocketAddr) -> Result<Duration, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    socket.connect(addr).unwrap();
    let started = Instant::now();
    socket.send(b"anyone?").unwrap();
    match socket.recv(&mut [0u8; 64]) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(started.elapsed()),
        other => Err(format!("{addr}: {other:?}")),
    }
}

#[test]
fn a_port_without_backends_refuses_tcp_and_udp_at_once_from_host_and_pods() {
    let mut net = TestNet::new();
    let web = net.http_backend("web-a");
    let client = net.pod("client");
    let cluster_ip = at(net.service_ip(10), 80);
    let node_port = at([127, 0, 0, 1].into(), net.node_port(0));
    let dns = at(net.service_ip(10), 53);
    // Something on the host listens on the ClusterIP's port: the refusal
    // must come before the kernel would hand the connection to it.
    let squatter = TcpListener::bind(SocketAddr::from(cluster_ip)).unwrap();
    squatter.set_nonblocking(true).unwrap();

    let mut proxy = Proxy::start(net.config()).unwrap();
    let empty = ServiceTable {
        peers: Vec::new(),
        ports: vec![service("default/web:http", Protocol::Tcp, &[cluster_ip, node_port], &[]), service("default/web:dns", Protocol::Udp, &[dns], &[])],
    };
    proxy.apply(&empty).unwrap();

    net.assert_routed();
    for frontend in [cluster_ip, node_port] {
        let took = tcp_refused(frontend.into()).unwrap();
        assert!(took < AT_ONCE, "{frontend} took {took:?}");
        let took = TestNet::in_pod(&client, move || tcp_refused(frontend.into())).unwrap();
        assert!(took < AT_ONCE, "{frontend} from a pod took {took:?}");
    }
    assert!(squatter.accept().is_err(), "the host listener got the connection");
    assert!(udp_refused(dns.into()).unwrap() < AT_ONCE);
    assert!(TestNet::in_pod(&client, move || udp_refused(dns.into())).unwrap() < AT_ONCE);

    // A backend appears: served. It goes again: refused again.
    let with_backend = ServiceTable { peers: Vec::new(), ports: vec![service("default/web:http", Protocol::Tcp, &[cluster_ip, node_port], &[at(web.ip, 80)])] };
    proxy.apply(&with_backend).unwrap();
    assert_eq!(http_get(cluster_ip.into()).unwrap(), "web-a");
    assert_eq!(http_get(node_port.into()).unwrap(), "web-a");
    proxy.apply(&empty).unwrap();
    assert!(tcp_refused(cluster_ip.into()).unwrap() < AT_ONCE);
    proxy.shutdown().unwrap();
}
