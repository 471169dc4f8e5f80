//! What the DNS end-to-end tests share: a cluster of fixtures, the server
//! started on loopback, clients (hickory's, raw messages, Debian's dig) and
//! a fake upstream server of our own. Everything is on 127.0.0.0/8, and
//! everything started here stops when its guard is dropped, even when a
//! test fails.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use driftless_dns::{DnsConfig, DnsHandle, DnsServer, Zone};
use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use hickory_client::client::{Client, ClientHandle};
use hickory_client::proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_client::proto::rr::rdata::{A, PTR, SOA};
use hickory_client::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::udp::UdpClientStream;
use hickory_client::proto::xfer::DnsResponse;
use hickory_server::ServerFuture;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use serde_json::json;
use tokio::task::JoinSet;

/// How long any one query of a test may take.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn service(value: serde_json::Value) -> Service {
    serde_json::from_value(value).unwrap()
}

pub(crate) fn endpoints(value: serde_json::Value) -> Endpoints {
    serde_json::from_value(value).unwrap()
}

pub(crate) fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// The test cluster:
/// - `web.default` ClusterIP 10.96.0.10, ports `http` 80/TCP and 9000 (unnamed);
/// - `dual.default` 10.96.0.11 and fd00:96::11;
/// - `nginx.default` headless: endpoints web-0 (10.244.0.5, hostname),
///   10.244.0.6 (no hostname), web-2 (10.244.0.7, not ready); port `web`
///   8080; pods web-0 and web-1 (10.244.0.8, Ready, not yet an endpoint);
/// - `ext.apps` ExternalName db.example.org;
/// - `big.default` headless with 40 endpoints, `huge.default` with 100.
pub(crate) fn cluster() -> Zone {
    let mut services = vec![
        service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80}, {"port": 9000}]}})),
        service(json!({"metadata": {"name": "dual", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11", "fd00:96::11"]}})),
        service(json!({"metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}})),
        service(json!({"metadata": {"name": "ext", "namespace": "apps"},
            "spec": {"type": "ExternalName", "externalName": "db.example.org"}})),
    ];
    let mut eps = vec![endpoints(json!({"metadata": {"name": "nginx", "namespace": "default"},
        "subsets": [{
            "addresses": [{"ip": "10.244.0.5", "hostname": "web-0"}, {"ip": "10.244.0.6"}],
            "notReadyAddresses": [{"ip": "10.244.0.7", "hostname": "web-2"}],
            "ports": [{"name": "web", "port": 8080}]}]}))];
    for (name, count) in [("big", 40), ("huge", 100)] {
        services.push(service(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": "None"}})));
        let addresses: Vec<_> = (0..count).map(|i| json!({"ip": format!("10.245.{}.{}", count, i + 1)})).collect();
        eps.push(endpoints(json!({"metadata": {"name": name, "namespace": "default"}, "subsets": [{"addresses": addresses}]})));
    }
    let ready = json!([{"type": "Ready", "status": "True"}]);
    let pods = [
        pod(json!({"metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"hostname": "web-0", "subdomain": "nginx", "containers": []},
            "status": {"podIP": "10.244.0.5", "phase": "Running", "conditions": ready}})),
        pod(json!({"metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"hostname": "web-1", "subdomain": "nginx", "containers": []},
            "status": {"podIP": "10.244.0.8", "phase": "Running", "conditions": ready}})),
    ];
    Zone::build("cluster.local", &services, &eps, &pods).unwrap()
}

/// The server under test, on a free port of 127.0.0.1, serving `zone`.
/// Dropping it stops the server.
pub(crate) fn start(zone: Zone, upstreams: Vec<SocketAddr>) -> DnsHandle {
    let config = DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], upstreams, upstream_timeout: Duration::from_secs(1), ..DnsConfig::default() };
    let dns = DnsServer::start(config).unwrap();
    dns.set_zone(zone).unwrap();
    dns
}

pub(crate) fn addr(dns: &DnsHandle) -> SocketAddr {
    dns.local_addrs()[0]
}

pub(crate) fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A hickory client over UDP or TCP whose background task is aborted when
/// it is dropped.
pub(crate) struct TestClient {
    client: Client,
    background: JoinSet<()>,
}

impl TestClient {
    pub(crate) async fn udp(server: SocketAddr) -> TestClient {
        let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new()).with_timeout(Some(QUERY_TIMEOUT)).build();
        let (client, background) = Client::connect(stream).await.unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = background.await;
        });
        TestClient { client, background: tasks }
    }

    pub(crate) async fn tcp(server: SocketAddr) -> TestClient {
        let (stream, handle) = TcpClientStream::new(server, None, Some(QUERY_TIMEOUT), TokioRuntimeProvider::new());
        let (client, background) = Client::new(stream, handle, None).await.unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = background.await;
        });
        TestClient { client, background: tasks }
    }

    pub(crate) async fn query(&mut self, text: &str, qtype: RecordType) -> DnsResponse {
        let query = self.client.query(name(text), DNSClass::IN, qtype);
        tokio::time::timeout(QUERY_TIMEOUT, query).await.expect("query timed out").unwrap()
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.background.abort_all();
    }
}

/// The records of a section as text, `name ttl IN TYPE rdata`.
pub(crate) fn texts(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.to_string()).collect()
}

/// Records as text without their TTLs, for answers relayed from upstream
/// (whose cache counts the TTL down).
pub(crate) fn without_ttl(records: &[String]) -> Vec<String> {
    records
        .iter()
        .map(|record| {
            let mut fields: Vec<&str> = record.split_whitespace().collect();
            fields.remove(1);
            fields.join(" ")
        })
        .collect()
}

/// Sends one hand-made query over UDP (`edns` the payload size offered,
/// none without EDNS) and returns the parsed response and its size.
pub(crate) async fn raw_udp(server: SocketAddr, text: &str, qtype: RecordType, edns: Option<u16>) -> (Message, usize) {
    let mut message = Message::new();
    message.set_id(4242).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    message.add_query(Query::query(name(text), qtype));
    if let Some(size) = edns {
        let mut options = Edns::new();
        options.set_max_payload(size);
        message.set_edns(options);
    }
    raw_udp_message(server, &message.to_vec().unwrap()).await
}

pub(crate) async fn raw_udp_message(server: SocketAddr, bytes: &[u8]) -> (Message, usize) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0; 65535];
    let (len, _) = tokio::time::timeout(QUERY_TIMEOUT, socket.recv_from(&mut buffer)).await.expect("no answer").unwrap();
    (Message::from_vec(&buffer[..len]).unwrap(), len)
}

/// What Debian's dig printed for one query.
pub(crate) struct Dig {
    pub(crate) output: String,
}

impl Dig {
    /// Runs `dig @server -p port ARGS` with a bounded wait; the process is
    /// killed if the test stops first.
    pub(crate) async fn run(server: SocketAddr, args: &[&str]) -> Dig {
        let mut command = tokio::process::Command::new("dig");
        command
            .arg(format!("@{}", server.ip()))
            .arg("-p")
            .arg(server.port().to_string())
            .args(["+time=2", "+tries=1"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = match tokio::time::timeout(Duration::from_secs(20), command.output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => panic!("cannot run dig ({error}): scripts/setup.sh installs bind9-dnsutils"),
            Err(_) => panic!("dig did not finish"),
        };
        Dig { output: String::from_utf8_lossy(&output.stdout).into_owned() }
    }

    /// The `status:` of the header line.
    pub(crate) fn status(&self) -> &str {
        let rest = self.output.split("status: ").nth(1).unwrap_or_else(|| panic!("no status in:\n{}", self.output));
        rest.split(',').next().unwrap()
    }

    /// The header flags (`qr`, `aa`, `rd`, `ra`, `tc`).
    pub(crate) fn flags(&self) -> Vec<&str> {
        let rest = self.output.split(";; flags: ").nth(1).unwrap_or_else(|| panic!("no flags in:\n{}", self.output));
        rest.split(';').next().unwrap().split_whitespace().collect()
    }

    /// The records of one section (`ANSWER`, `AUTHORITY`, `ADDITIONAL`),
    /// whitespace normalised: `name ttl IN TYPE rdata`.
    pub(crate) fn section(&self, section: &str) -> Vec<String> {
        let header = format!(";; {section} SECTION:\n");
        let Some(rest) = self.output.split(&header).nth(1) else { return Vec::new() };
        rest.lines().take_while(|line| !line.is_empty()).map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    }
}

/// A fake upstream DNS server on 127.0.0.1, answering fixed records:
/// - `example.test.` A 127.0.0.10;
/// - `db.example.org.` A 127.0.0.20 (the ExternalName's target);
/// - `nodata.example.test.` NOERROR, no records, SOA;
/// - `99.0.96.10.in-addr.arpa.` PTR `upstream.example.test.`;
/// - anything else NXDOMAIN with an SOA.
///
/// Dropping it stops it.
pub(crate) struct FakeUpstream {
    pub(crate) addr: SocketAddr,
    _server: JoinSet<()>,
}

impl FakeUpstream {
    pub(crate) async fn start() -> FakeUpstream {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let mut server = ServerFuture::new(Upstream);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _ = server.block_until_done().await;
        });
        FakeUpstream { addr, _server: tasks }
    }
}

struct Upstream;

#[async_trait]
impl RequestHandler for Upstream {
    async fn handle_request<R: ResponseHandler>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let query = request.request_info().unwrap().query;
        let owner = Name::from(query.name());
        let soa = Record::from_rdata(name("example.test."), 60, RData::SOA(SOA::new(name("ns.example.test."), name("admin.example.test."), 1, 60, 60, 60, 60)));
        let is = |text: &str| query.name() == &LowerName::new(&name(text));
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        let mut answers = Vec::new();
        let mut authority = Vec::new();
        if is("example.test.") && query.query_type() == RecordType::A {
            answers.push(Record::from_rdata(owner, 60, RData::A(A::new(127, 0, 0, 10))));
        } else if is("db.example.org.") && query.query_type() == RecordType::A {
            answers.push(Record::from_rdata(owner, 60, RData::A(A::new(127, 0, 0, 20))));
        } else if is("99.0.96.10.in-addr.arpa.") && query.query_type() == RecordType::PTR {
            answers.push(Record::from_rdata(owner, 60, RData::PTR(PTR(name("upstream.example.test.")))));
        } else if is("nodata.example.test.") || is("example.test.") || is("db.example.org.") {
            authority.push(soa);
        } else {
            header.set_response_code(ResponseCode::NXDomain);
            authority.push(soa);
        }
        let message = MessageResponseBuilder::from_message_request(request).build(header, answers.iter(), [].iter(), authority.iter(), [].iter());
        response.send_response(message).await.unwrap()
    }
}

/// Asserts that `text` answers `qtype` with `expected` over UDP, from the
/// hickory client, authoritatively.
pub(crate) async fn assert_answers(client: &mut TestClient, text: &str, qtype: RecordType, expected: &[&str]) -> DnsResponse {
    let response = client.query(text, qtype).await;
    assert_eq!(response.response_code(), ResponseCode::NoError, "{text} {qtype}");
    assert!(response.header().authoritative(), "{text} {qtype}: AA not set");
    assert_eq!(texts(response.answers()), expected, "{text} {qtype}");
    response
}
