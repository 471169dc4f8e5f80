//! TLS termination with SNI, against a CA made by the test: clients trust
//! only that CA, each host gets its own certificate, unknown names get the
//! default one (or no handshake at all), a swapped table swaps
//! certificates, and HTTP/2 is offered over ALPN.

use std::sync::Arc;

use driftless_model::k8s_openapi::api::core::v1::Secret;
use hyper::StatusCode;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A certificate authority made for one test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

/// A leaf certificate: its PEM chain and key, and its DER to compare with
/// what a server presents.
struct Leaf {
    crt: String,
    key: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "driftless ingress test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa { der: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { crt: cert.pem(), key: key.serialize_pem(), der: cert.der().clone() }
    }

    /// A client trusting this CA only, offering `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config =
            ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

fn tls_secret(name: &str, leaf: &Leaf) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": leaf.crt, "tls.key": leaf.key}
    }))
    .unwrap()
}

/// Connects to the HTTPS listener naming `sni`.
async fn handshake(ingress: &driftless_ingress::IngressHandle, connector: &TlsConnector, sni: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let stream = TcpStream::connect(ingress.https_addrs()[0]).await.unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    bounded("the handshake", connector.connect(name, stream)).await
}

fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// The rustls error behind a failed handshake.
fn rustls_error(error: &std::io::Error) -> &rustls::Error {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).unwrap_or_else(|| panic!("not a rustls error: {error:?}"))
}

/// Two backends behind two TLS hosts, each with its certificate from
/// `ca`, and a wildcard host with a third.
async fn two_hosts(ca: &TestCa) -> (Cluster, [Leaf; 3], [TestBackend; 2]) {
    let (alpha, _) = TestBackend::start("alpha", 2).await;
    let (beta, _) = TestBackend::start("beta", 3).await;
    let leaves = [ca.leaf(&["a.example.test"]), ca.leaf(&["b.example.test"]), ca.leaf(&["*.wild.test"])];
    let mut cluster = Cluster::default();
    cluster.service("alpha", &[alpha.addr], &[]).service("beta", &[beta.addr], &[]);
    cluster.secrets = vec![tls_secret("a-tls", &leaves[0]), tls_secret("b-tls", &leaves[1]), tls_secret("wild-tls", &leaves[2])];
    cluster.ingress(json!({"metadata": {"name": "sites", "namespace": "default"}, "spec": {
        "tls": [
            {"hosts": ["a.example.test"], "secretName": "a-tls"},
            {"hosts": ["b.example.test"], "secretName": "b-tls"},
            {"hosts": ["*.wild.test"], "secretName": "wild-tls"}
        ],
        "rules": [
            {"host": "a.example.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("alpha")}]}},
            {"host": "b.example.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("beta")}]}},
            {"host": "*.wild.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("beta")}]}}
        ]
    }}));
    (cluster, leaves, [alpha, beta])
}

#[tokio::test]
async fn each_sni_name_gets_its_certificate() {
    let ca = TestCa::new();
    let (cluster, leaves, _backends) = two_hosts(&ca).await;
    let ingress = start(cluster.table());
    let client = ca.client(&[b"http/1.1"]);
    for (host, leaf, backend) in [("a.example.test", &leaves[0], "alpha"), ("b.example.test", &leaves[1], "beta"), ("x.wild.test", &leaves[2], "beta")] {
        let stream = handshake(&ingress, &client, host).await.unwrap_or_else(|error| panic!("{host}: {error}"));
        assert_eq!(presented(&stream), leaf.der, "{host}");
        let answer = Connection::over(stream).await.send(get(host, "/")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.backend(), backend, "{host}");
        assert_eq!(answer.seen("x-forwarded-proto"), ["https"]);
        assert_eq!(answer.seen("x-forwarded-port"), [ingress.https_addrs()[0].port().to_string()]);
    }
}

#[tokio::test]
async fn unknown_names_get_the_default_certificate() {
    let ca = TestCa::new();
    let (cluster, _, _backends) = two_hosts(&ca).await;
    let ingress = start(cluster.table());
    let client = ca.client(&[b"http/1.1"]);
    // The server answers with the first certificate, which the client
    // rejects for this name: proof of which one was served.
    for unknown in ["c.other.test", "a.b.wild.test"] {
        let error = handshake(&ingress, &client, unknown).await.unwrap_err();
        match rustls_error(&error) {
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { presented, .. }) => {
                assert!(presented.len() == 1 && presented[0].contains("a.example.test"), "{unknown}: {presented:?}");
            }
            other => panic!("{unknown}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_certificate_means_no_handshake() {
    let ca = TestCa::new();
    let (mut cluster, _, _backends) = two_hosts(&ca).await;
    cluster.secrets.clear();
    let (table, warnings) = cluster.table_with_warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let ingress = start(table);
    let error = handshake(&ingress, &ca.client(&[b"http/1.1"]), "a.example.test").await.unwrap_err();
    assert!(matches!(rustls_error(&error), rustls::Error::AlertReceived(_)), "{error:?}");
    // Plain HTTP still routes.
    assert_eq!(fetch(http_addr(&ingress), "a.example.test", "/").await.backend(), "alpha");
}

#[tokio::test]
async fn a_malformed_secret_is_skipped_and_the_others_served() {
    let ca = TestCa::new();
    let (mut cluster, leaves, _backends) = two_hosts(&ca).await;
    let mut broken = tls_secret("a-tls", &leaves[0]);
    broken.string_data.as_mut().unwrap().insert("tls.key".into(), leaves[1].key.clone());
    cluster.secrets[0] = broken;
    let (table, warnings) = cluster.table_with_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("secret default/a-tls"), "{warnings:?}");
    let ingress = start(table);
    let client = ca.client(&[b"http/1.1"]);
    let stream = handshake(&ingress, &client, "b.example.test").await.unwrap();
    assert_eq!(presented(&stream), leaves[1].der);
    // a.example.test now gets the default: b's certificate, the first left.
    let error = handshake(&ingress, &client, "a.example.test").await.unwrap_err();
    assert!(matches!(rustls_error(&error), rustls::Error::InvalidCertificate(_)), "{error:?}");
}

#[tokio::test]
async fn a_swapped_table_swaps_certificates() {
    let ca = TestCa::new();
    let (mut cluster, leaves, _backends) = two_hosts(&ca).await;
    let ingress = start(cluster.table());
    let client = ca.client(&[b"http/1.1"]);
    assert_eq!(presented(&handshake(&ingress, &client, "a.example.test").await.unwrap()), leaves[0].der);
    let renewed = ca.leaf(&["a.example.test"]);
    cluster.secrets[0] = tls_secret("a-tls", &renewed);
    ingress.set_table(cluster.table());
    assert_eq!(presented(&handshake(&ingress, &client, "a.example.test").await.unwrap()), renewed.der);
}

#[tokio::test]
async fn http2_over_alpn() {
    let ca = TestCa::new();
    let (cluster, _, _backends) = two_hosts(&ca).await;
    let ingress = start(cluster.table());
    let stream = handshake(&ingress, &ca.client(&[b"h2", b"http/1.1"]), "b.example.test").await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let mut driver = tokio::task::JoinSet::new();
    driver.spawn(async move {
        let _ = connection.await;
    });
    for _ in 0..3 {
        let request = hyper::Request::get("https://b.example.test/h2").body(full_request(Default::default())).unwrap();
        let answer = read(bounded("the h2 response", sender.send_request(request)).await.unwrap()).await;
        assert_eq!(answer.backend(), "beta");
        assert_eq!(answer.seen("host"), ["b.example.test"]);
        assert_eq!(answer.seen("x-forwarded-proto"), ["https"]);
    }
}
