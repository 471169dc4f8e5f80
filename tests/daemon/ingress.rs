//! Ingress from git: host rules (exact and wildcard), Prefix and Exact
//! paths with the longest first, the default backend, 503 for a backend
//! without endpoints, an Ingress of another class left alone, and TLS
//! terminated with the certificate a `kubernetes.io/tls` Secret holds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;

pub(crate) fn app(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.35
        command: [sh, -c, 'mkdir -p /tmp/www/b && echo {name} > /tmp/www/index.html && echo {name} > /tmp/www/b/index.html && exec httpd -f -p 8080 -h /tmp/www']
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: svc-{name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: web, port: 80, targetPort: http}}]
"
    )
}

fn b64(bytes: &[u8]) -> String {
    // Small and local: the test needs base64 for one Secret.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(*chunk.get(1).unwrap_or(&0)) << 8 | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A test CA and a certificate it signed for `host`: (CA PEM, cert PEM, key PEM).
fn certificates(host: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "driftless test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// GET `path` with `Host: host` from the Ingress: (status, body).
pub(crate) fn get(address: &str, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    parse(&response)
}

fn parse(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.trim().to_owned()))
}

/// GET `/` over TLS with SNI `host`, trusting only `ca`.
fn get_tls(address: &str, host: &str, ca: &str) -> Option<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().ok()?.with_root_certificates(roots).with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).ok()?;
    let connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let socket = TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    write!(tls, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    // A peer closing without close_notify is still a complete answer here.
    let _ = tls.read_to_end(&mut response);
    parse(&response)
}

use rustls_pki_types::pem::PemObject;

#[test]
fn ingress_routes_by_host_and_path_and_terminates_tls() {
    let (ca, cert, key) = certificates("secure.example.test");
    let secret = format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: secure-tls}}
type: kubernetes.io/tls
data:
  tls.crt: {}
  tls.key: {}
",
        b64(cert.as_bytes()),
        b64(key.as_bytes())
    );
    let ingress = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: site}
spec:
  ingressClassName: driftless
  tls: [{hosts: [secure.example.test], secretName: secure-tls}]
  defaultBackend: {service: {name: svc-b, port: {name: web}}}
  rules:
  - host: a.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: svc-b, port: {name: web}}}}
      - {path: /empty, pathType: Exact, backend: {service: {name: svc-empty, port: {number: 80}}}}
  - host: '*.wild.test'
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}]
  - host: secure.example.test
    http:
      paths: [{path: /, pathType: Exact, backend: {service: {name: svc-a, port: {number: 80}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: elsewhere}
spec:
  ingressClassName: other
  rules:
  - host: other.example.test
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80}]
";
    let mut cluster = Cluster::new(&[("apps/a.yaml", &app("a")), ("apps/b.yaml", &app("b")), ("apps/ingress.yaml", ingress), ("apps/secret.yaml", &secret)]);
    cluster.start();
    cluster.wait_ready("a-", 1, Duration::from_secs(30));
    cluster.wait_ready("b-", 1, Duration::from_secs(30));
    let http = cluster.ingress_http.clone();
    cluster.wait_for("the Ingress to route", Duration::from_secs(15), || {
        (get(&http, "a.example.test", "/") == Some((200, "a".to_owned())) && get(&http, "a.example.test", "/b/") == Some((200, "b".to_owned()))).then_some(())
    });
    // The longest prefix wins; prefixes match whole segments.
    assert_eq!(get(&http, "a.example.test", "/b/").unwrap(), (200, "b".to_owned()));
    assert_eq!(get(&http, "A.Example.Test:80", "/").unwrap(), (200, "a".to_owned()), "hosts match without case or port");
    assert_eq!(get(&http, "a.example.test", "/bb").unwrap().0, 404, "/bb is not under the /b prefix: it goes to / on svc-a, which has no /bb");
    // A wildcard matches one label.
    assert_eq!(get(&http, "x.wild.test", "/").unwrap(), (200, "a".to_owned()));
    assert_eq!(get(&http, "y.x.wild.test", "/").unwrap(), (200, "b".to_owned()), "two labels: the default backend");
    // No rule: the default backend; Exact paths only match exactly.
    assert_eq!(get(&http, "unknown.test", "/").unwrap(), (200, "b".to_owned()));
    // A backend without endpoints: 503, at once.
    assert_eq!(get(&http, "a.example.test", "/empty").unwrap().0, 503);
    // Another class's Ingress is not served here.
    assert_eq!(get(&http, "other.example.test", "/").unwrap(), (200, "b".to_owned()), "not routed by the other class's rule");

    // TLS with the Secret's certificate, for its host.
    let https = cluster.ingress_https.clone();
    let answer = cluster.wait_for("TLS", Duration::from_secs(10), || get_tls(&https, "secure.example.test", &ca));
    assert_eq!(answer, (200, "a".to_owned()));

    let table = cluster.cli_ok(&["get", "ingress"]);
    let row = table.lines().find(|l| l.starts_with("site")).unwrap();
    assert!(row.contains("driftless") && row.contains("a.example.test"), "{table}");
    let node = cluster.pod_cidr.replace(".0/24", ".1");
    cluster.wait_for("the Ingress's address", Duration::from_secs(10), || {
        let ing = cluster.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/site");
        (ing["status"]["loadBalancer"]["ingress"][0]["ip"] == node.as_str()).then_some(())
    });
}
