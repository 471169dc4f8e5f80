//! Unit tests of table building and matching: host and path rules
//! (including the Kubernetes specification's path-matching examples, row by
//! row), precedence, backend resolution as kube-proxy does it, the ingress
//! class filter, and TLS Secrets, good and malformed.

use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Secret, Service};
use driftless_model::k8s_openapi::api::networking::v1::Ingress;
use serde_json::{Value, json};

use super::host::{HostPattern, normalize_request_host, parse_pattern};
use super::path::{matches, normalize};
use super::*;

fn ingress(value: Value) -> Ingress {
    serde_json::from_value(value).unwrap()
}

/// A Service `name` in `default` with one TCP port 80 named `http` and
/// ready endpoint 10.0.0.`n`:8080 (`n` from the name's length, so each
/// service has its own address).
fn service_with_endpoints(name: &str, n: u8) -> (Service, Endpoints) {
    let service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let endpoints = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [{"addresses": [{"ip": format!("10.0.0.{n}")}], "ports": [{"name": "http", "port": 8080}]}]
    }))
    .unwrap();
    (service, endpoints)
}

fn backend(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"number": 80}}})
}

/// An Ingress with rules `(host, path, pathType, service)`.
fn rules_ingress(name: &str, rules: &[(Option<&str>, &str, &str, &str)]) -> Ingress {
    let rules: Vec<Value> = rules
        .iter()
        .map(|(host, path, kind, service)| {
            let mut rule = json!({"http": {"paths": [{"path": path, "pathType": kind, "backend": backend(service)}]}});
            if let Some(host) = host {
                rule["host"] = json!(host);
            }
            rule
        })
        .collect();
    ingress(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"rules": rules}}))
}

/// Builds a table from Ingresses over services `a`..`f`, asserting no
/// warnings.
fn table(ingresses: &[Ingress]) -> IngressTable {
    let (table, warnings) = table_with_warnings(ingresses);
    assert_eq!(warnings, Vec::<String>::new());
    table
}

fn table_with_warnings(ingresses: &[Ingress]) -> (IngressTable, Vec<String>) {
    let (services, endpoints): (Vec<_>, Vec<_>) =
        ["a", "b", "c", "d", "e", "f"].iter().enumerate().map(|(i, name)| service_with_endpoints(name, i as u8 + 1)).unzip();
    IngressTable::build(DEFAULT_CLASS, ingresses, &services, &endpoints, &[])
}

/// The service a request goes to, or `-` for none.
fn to(table: &IngressTable, host: &str, path: &str) -> String {
    table.route(host, path).map_or_else(|| "-".to_owned(), |route| route.backend.service().to_owned())
}

#[test]
fn kubernetes_path_matching_examples() {
    // https://kubernetes.io/docs/concepts/services-networking/ingress/#examples
    // Each row: the rules (path, type), the request path, and whether (and
    // by which rule) it matches. Rules route to services a, b, c in order.
    type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
    let rows: &[Row<'_>] = &[
        (&[("/", "Prefix")], "/anything/at/all", Some("a")),
        (&[("/foo", "Exact")], "/foo", Some("a")),
        (&[("/foo", "Exact")], "/bar", None),
        (&[("/foo", "Exact")], "/foo/", None),
        (&[("/foo/", "Exact")], "/foo", None),
        (&[("/foo", "Prefix")], "/foo", Some("a")),
        (&[("/foo", "Prefix")], "/foo/", Some("a")),
        (&[("/foo/", "Prefix")], "/foo", Some("a")),
        (&[("/foo/", "Prefix")], "/foo/", Some("a")),
        (&[("/aaa/bb", "Prefix")], "/aaa/bbb", None),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb", Some("a")),
        (&[("/aaa/bbb/", "Prefix")], "/aaa/bbb", Some("a")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/", Some("a")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", Some("a")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),
        (&[("/", "Prefix"), ("/aaa", "Prefix")], "/aaa/ccc", Some("b")),
        (&[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/aaa/bbb", Some("c")),
        (&[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")], "/ccc", Some("a")),
        (&[("/aaa", "Prefix")], "/ccc", None),
        (&[("/foo", "Prefix"), ("/foo", "Exact")], "/foo", Some("b")),
    ];
    for (rules, request, expected) in rows {
        let services = ["a", "b", "c"];
        let rules: Vec<_> = rules.iter().zip(services).map(|((path, kind), service)| (None, *path, *kind, service)).collect();
        let table = table(&[rules_ingress("paths", &rules)]);
        let got = table.route("example.com", request).map(|route| route.backend.service().to_owned());
        assert_eq!(got.as_deref(), *expected, "rules {rules:?}, request {request}");
    }
}

#[test]
fn prefix_matching_is_element_wise() {
    let prefix = |rule: &str, path: &str| matches(PathMatch::Prefix, &normalize(PathMatch::Prefix, rule), path);
    assert!(prefix("/", "/"));
    assert!(prefix("/", ""));
    assert!(prefix("/foo", "/foo/bar/baz"));
    assert!(!prefix("/foo", "/foobar"));
    assert!(!prefix("/foo/bar", "/foo"));
    assert!(prefix("/foo//", "/foo"));
    assert!(!prefix("/Foo", "/foo"), "paths are case-sensitive");
    let exact = |rule: &str, path: &str| matches(PathMatch::Exact, &normalize(PathMatch::Exact, rule), path);
    assert!(exact("/", "/"));
    assert!(!exact("/foo", "/FOO"));
}

#[test]
fn implementation_specific_is_prefix() {
    let table = table(&[rules_ingress("i", &[(None, "/api", "ImplementationSpecific", "a")])]);
    assert_eq!(to(&table, "x", "/api/v1"), "a");
    assert_eq!(to(&table, "x", "/apiv1"), "-");
    assert_eq!(table.route("x", "/api").unwrap().path, Some(("/api", PathMatch::Prefix)));
}

#[test]
fn host_patterns() {
    assert_eq!(parse_pattern(None), Ok(HostPattern::Any));
    assert_eq!(parse_pattern(Some("")), Ok(HostPattern::Any));
    assert_eq!(parse_pattern(Some("Foo.Example.COM")), Ok(HostPattern::Exact("foo.example.com".into())));
    assert_eq!(parse_pattern(Some("*.example.com")), Ok(HostPattern::Wildcard("example.com".into())));
    assert!(parse_pattern(Some("a.*.example.com")).is_err());
    assert!(parse_pattern(Some("*")).is_err());
    assert!(parse_pattern(Some("bad host")).is_err());
    assert!(parse_pattern(Some("a..b")).is_err());
}

#[test]
fn request_hosts_are_normalized() {
    assert_eq!(normalize_request_host("Example.COM:8080"), "example.com");
    assert_eq!(normalize_request_host("example.com."), "example.com");
    assert_eq!(normalize_request_host("example.com"), "example.com");
    assert_eq!(normalize_request_host("[::1]:443"), "::1");
    assert_eq!(normalize_request_host("[::1]"), "::1");
    assert_eq!(normalize_request_host("127.0.0.1:80"), "127.0.0.1");
    assert_eq!(normalize_request_host(""), "");
}

#[test]
fn exact_wildcard_and_any_hosts() {
    let table = table(&[rules_ingress(
        "hosts",
        &[(Some("a.example.com"), "/", "Prefix", "a"), (Some("*.example.com"), "/", "Prefix", "b"), (None, "/", "Prefix", "c")],
    )]);
    assert_eq!(to(&table, "a.example.com", "/"), "a", "an exact host beats a wildcard");
    assert_eq!(to(&table, "A.Example.Com:8443", "/x"), "a", "case and port do not matter");
    assert_eq!(to(&table, "b.example.com", "/"), "b");
    assert_eq!(to(&table, "a.b.example.com", "/"), "c", "a wildcard covers exactly one label");
    assert_eq!(to(&table, "example.com", "/"), "c", "a wildcard needs a label");
    assert_eq!(to(&table, "other.test", "/"), "c");
    assert_eq!(to(&table, "", "/"), "c", "no Host header at all");
}

#[test]
fn a_host_without_a_matching_path_falls_through() {
    let table = table(&[rules_ingress(
        "fall",
        &[(Some("a.example.com"), "/api", "Prefix", "a"), (Some("*.example.com"), "/web", "Prefix", "b"), (None, "/", "Prefix", "c")],
    )]);
    assert_eq!(to(&table, "a.example.com", "/api/x"), "a");
    assert_eq!(to(&table, "a.example.com", "/web"), "b");
    assert_eq!(to(&table, "a.example.com", "/other"), "c");
}

#[test]
fn no_match_without_default_backend_is_none() {
    let table = table(&[rules_ingress("one", &[(Some("a.example.com"), "/", "Prefix", "a")])]);
    assert!(table.route("b.example.com", "/").is_none());
    assert!(IngressTable::empty(DEFAULT_CLASS).route("a", "/").is_none());
}

#[test]
fn default_backend_answers_what_no_rule_matches() {
    let with_default = ingress(json!({
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"defaultBackend": backend("d"), "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend("a")}]}}]}
    }));
    let table = table(&[with_default]);
    assert_eq!(to(&table, "a.example.com", "/x"), "a");
    let route = table.route("b.example.com", "/x").unwrap();
    assert_eq!((route.backend.service(), route.path, route.ingress), ("d", None, "default/d"));
}

#[test]
fn rules_from_all_ingresses_merge_oldest_first() {
    let mut old = rules_ingress("zz-old", &[(Some("h.test"), "/", "Prefix", "a"), (Some("h.test"), "/shared", "Exact", "a")]);
    old.metadata.creation_timestamp = Some(time("2024-01-01T00:00:00Z"));
    let mut new = rules_ingress("aa-new", &[(Some("h.test"), "/api", "Prefix", "b"), (Some("h.test"), "/shared", "Exact", "b")]);
    new.metadata.creation_timestamp = Some(time("2024-06-01T00:00:00Z"));
    let (table, warnings) = table_with_warnings(&[new, old]);
    assert_eq!(to(&table, "h.test", "/api/v1"), "b", "paths of both ingresses are merged");
    assert_eq!(to(&table, "h.test", "/"), "a");
    assert_eq!(to(&table, "h.test", "/shared"), "a", "the older ingress keeps a conflicting path");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("default/aa-new") && warnings[0].contains("default/zz-old"), "{warnings:?}");
}

#[test]
fn without_timestamps_namespace_and_name_decide() {
    let first = rules_ingress("a", &[(None, "/", "Prefix", "a")]);
    let second = rules_ingress("b", &[(None, "/", "Prefix", "b")]);
    let (table, warnings) = table_with_warnings(&[second, first]);
    assert_eq!(to(&table, "x", "/"), "a");
    assert_eq!(warnings.len(), 1);
}

#[test]
fn a_second_default_backend_is_reported() {
    let one = ingress(json!({"metadata": {"name": "one"}, "spec": {"defaultBackend": backend("a")}}));
    let two = ingress(json!({"metadata": {"name": "two"}, "spec": {"defaultBackend": backend("b")}}));
    let (table, warnings) = table_with_warnings(&[two, one]);
    assert_eq!(to(&table, "x", "/"), "a");
    assert_eq!(warnings, ["ingress default/two: defaultBackend: ignored, the older ingress default/one already has a default backend"]);
}

#[test]
fn ingress_class_selects_ingresses() {
    let named = |name: &str, class: Option<&str>, annotation: Option<&str>| {
        let mut value = json!({"metadata": {"name": name}, "spec": {"rules": [{"host": format!("{name}.test"), "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend("a")}]}}]}});
        if let Some(class) = class {
            value["spec"]["ingressClassName"] = json!(class);
        }
        if let Some(annotation) = annotation {
            value["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": annotation});
        }
        ingress(value)
    };
    let ingresses = [
        named("ours", Some("driftless"), None),
        named("unnamed", None, None),
        named("theirs", Some("nginx"), None),
        named("annotated", None, Some("nginx")),
        named("annotated-ours", None, Some("driftless")),
        named("field-wins", Some("driftless"), Some("nginx")),
    ];
    let table = table(&ingresses);
    for (host, served) in [("ours", true), ("unnamed", true), ("theirs", false), ("annotated", false), ("annotated-ours", true), ("field-wins", true)] {
        assert_eq!(table.route(&format!("{host}.test"), "/").is_some(), served, "{host}");
    }
    let (other, _) = IngressTable::build("nginx", &ingresses, &[], &[], &[]);
    assert!(other.route("theirs.test", "/").is_some());
    assert!(other.route("ours.test", "/").is_none());
    assert_eq!(other.class(), "nginx");
}

#[test]
fn backends_resolve_as_kube_proxy_does() {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "metrics", "port": 9090},
            {"name": "dns", "port": 53, "protocol": "UDP"}
        ]}
    }))
    .unwrap();
    let endpoints: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "subsets": [
            {"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}], "notReadyAddresses": [{"ip": "10.1.0.3"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}]},
            {"addresses": [{"ip": "10.1.0.4"}], "ports": [{"name": "http", "port": 8081}]},
            {"addresses": [{"ip": "fd00::5"}], "ports": [{"name": "http", "port": 8080}]}
        ]
    }))
    .unwrap();
    let port = |port: Value| json!({"service": {"name": "web", "port": port}});
    let shop = ingress(json!({"metadata": {"name": "shop", "namespace": "shop"}, "spec": {"rules": [{"http": {"paths": [
        {"path": "/by-number", "pathType": "Prefix", "backend": port(json!({"number": 80}))},
        {"path": "/by-name", "pathType": "Prefix", "backend": port(json!({"name": "http"}))},
        {"path": "/metrics", "pathType": "Prefix", "backend": port(json!({"name": "metrics"}))},
        {"path": "/missing-port", "pathType": "Prefix", "backend": port(json!({"number": 81}))},
        {"path": "/udp", "pathType": "Prefix", "backend": port(json!({"number": 53}))}
    ]}}]}}));
    let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[shop], &[service], &[endpoints], &[]);
    let endpoints = |path: &str| -> Vec<String> { table.route("x", path).unwrap().backend.endpoints().iter().map(ToString::to_string).collect() };
    let http = ["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.4:8081", "[fd00::5]:8080"];
    assert_eq!(endpoints("/by-number"), http, "ready addresses only, each subset with its own port");
    assert_eq!(endpoints("/by-name"), http);
    assert_eq!(endpoints("/metrics"), ["10.1.0.1:9100", "10.1.0.2:9100"]);
    assert_eq!(endpoints("/missing-port"), Vec::<String>::new());
    assert_eq!(endpoints("/udp"), Vec::<String>::new());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("has no TCP port 81"), "{warnings:?}");
    assert!(warnings[1].contains("has no TCP port 53"), "{warnings:?}");
    assert_eq!(table.route("x", "/by-number").unwrap().backend.to_string(), "shop/web:80");
    assert_eq!(table.backends().len(), 5);
}

#[test]
fn unnamed_ports_match_unnamed_endpoint_ports() {
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": 3000}]}})).unwrap();
    let endpoints: Endpoints = serde_json::from_value(json!({"metadata": {"name": "s"},
        "subsets": [{"addresses": [{"ip": "10.2.0.1"}], "ports": [{"port": 3000}]}]}))
    .unwrap();
    let one = ingress(json!({"metadata": {"name": "one"}, "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}));
    let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[one], &[service], &[endpoints], &[]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(table.route("x", "/").unwrap().backend.endpoints(), ["10.2.0.1:3000".parse().unwrap()]);
}

#[test]
fn missing_services_and_unsupported_backends() {
    let broken = ingress(json!({"metadata": {"name": "broken"}, "spec": {"rules": [
        {"host": "bad host", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("a")}]}},
        {"http": {"paths": [
            {"path": "/gone", "pathType": "Prefix", "backend": backend("gone")},
            {"path": "/resource", "pathType": "Prefix", "backend": {"resource": {"kind": "Bucket", "name": "b"}}},
            {"path": "/odd", "pathType": "Regex", "backend": backend("a")},
            {"path": "relative", "pathType": "Prefix", "backend": backend("a")},
            {"path": "/noport", "pathType": "Prefix", "backend": {"service": {"name": "a"}}}
        ]}}
    ]}}));
    let (table, warnings) = table_with_warnings(&[broken]);
    assert_eq!(to(&table, "x", "/gone"), "gone", "a missing service stays routed, to a 503");
    assert!(table.route("x", "/gone").unwrap().backend.endpoints().is_empty());
    for path in ["/resource", "/odd", "/relative", "/noport"] {
        assert_eq!(to(&table, "x", path), "-", "{path}");
    }
    let expected = [
        "rules[0]: skipped: host \"bad host\" is not a valid DNS name",
        "paths[0]: service default/gone not found",
        "paths[1]: skipped: only service backends",
        "paths[2]: skipped: unknown pathType \"Regex\"",
        "paths[3]: skipped: path \"relative\" does not start with /",
        "paths[4]: skipped: service a names no port",
    ];
    assert_eq!(warnings.len(), expected.len(), "{warnings:?}");
    for (warning, expected) in warnings.iter().zip(expected) {
        assert!(warning.contains(expected), "{warning:?} should say {expected:?}");
    }
}

#[test]
fn a_backend_is_shared_by_the_rules_naming_it() {
    let table = table(&[rules_ingress("s", &[(None, "/x", "Prefix", "a"), (None, "/y", "Prefix", "a")])]);
    let x = table.route("h", "/x").unwrap().backend as *const Backend;
    let y = table.route("h", "/y").unwrap().backend as *const Backend;
    assert_eq!(x, y);
    assert_eq!(table.backends().len(), 1);
    assert_eq!(table.rule_count(), 2);
}

#[test]
fn round_robin_starts_at_each_endpoint_in_turn() {
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})).unwrap();
    let endpoints: Endpoints = serde_json::from_value(json!({"metadata": {"name": "s"},
        "subsets": [{"addresses": [{"ip": "10.3.0.1"}, {"ip": "10.3.0.2"}, {"ip": "10.3.0.3"}], "ports": [{"port": 80}]}]}))
    .unwrap();
    let one = ingress(json!({"metadata": {"name": "one"}, "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}));
    let (table, _) = IngressTable::build(DEFAULT_CLASS, &[one], &[service], &[endpoints], &[]);
    let backend = table.route("x", "/").unwrap().backend;
    let starts: Vec<usize> = (0..6).map(|_| backend.next_start()).collect();
    assert_eq!(starts, [0, 1, 2, 0, 1, 2]);
}

mod tls {
    //! TLS Secrets: certificates by host (exact, wildcard, default) and
    //! malformed Secrets skipped with a warning.

    use super::*;

    fn certificate(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn secret(name: &str, type_: &str, crt: &str, key: &str) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "type": type_,
            "stringData": {"tls.crt": crt, "tls.key": key}
        }))
        .unwrap()
    }

    fn tls_ingress(name: &str, tls: Value) -> Ingress {
        ingress(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"defaultBackend": backend("a"), "tls": tls}}))
    }

    fn served(table: &IngressTable, sni: Option<&str>) -> Option<Vec<u8>> {
        table.certificate(sni).map(|key| key.end_entity_cert().unwrap().to_vec())
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::pem_slice_iter(pem.as_bytes()).next().unwrap().unwrap().to_vec()
    }

    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn certificates_by_sni_name() {
        let (a_crt, a_key) = certificate(&["a.example.com"]);
        let (w_crt, w_key) = certificate(&["*.example.com"]);
        let secrets = [secret("a", "kubernetes.io/tls", &a_crt, &a_key), secret("w", "kubernetes.io/tls", &w_crt, &w_key)];
        let one = tls_ingress("one", json!([{"hosts": ["a.example.com"], "secretName": "a"}, {"hosts": ["*.example.com"], "secretName": "w"}]));
        let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[one], &[], &[], &secrets);
        assert_eq!(warnings.len(), 1, "only the missing service: {warnings:?}");
        assert_eq!(served(&table, Some("a.example.com")), Some(der(&a_crt)));
        assert_eq!(served(&table, Some("A.EXAMPLE.COM")), Some(der(&a_crt)));
        assert_eq!(served(&table, Some("b.example.com")), Some(der(&w_crt)));
        assert_eq!(served(&table, Some("other.test")), Some(der(&a_crt)), "unknown names get the first certificate");
        assert_eq!(served(&table, None), Some(der(&a_crt)));
        assert_eq!(table.certificate_count(), 2);
    }

    #[test]
    fn a_tls_entry_without_hosts_is_the_default() {
        let (a_crt, a_key) = certificate(&["a.example.com"]);
        let (d_crt, d_key) = certificate(&["default.test"]);
        let secrets = [secret("a", "kubernetes.io/tls", &a_crt, &a_key), secret("d", "kubernetes.io/tls", &d_crt, &d_key)];
        let one = tls_ingress("one", json!([{"hosts": ["a.example.com"], "secretName": "a"}, {"secretName": "d"}]));
        let (table, _) = IngressTable::build(DEFAULT_CLASS, &[one], &[], &[], &secrets);
        assert_eq!(served(&table, Some("a.example.com")), Some(der(&a_crt)));
        assert_eq!(served(&table, Some("x.test")), Some(der(&d_crt)));
    }

    #[test]
    fn no_certificates_means_no_handshake() {
        let table = IngressTable::empty(DEFAULT_CLASS);
        assert!(served(&table, Some("a.example.com")).is_none());
        assert!(!table.has_default_certificate());
    }

    #[test]
    fn malformed_secrets_are_skipped_with_a_warning() {
        let (a_crt, a_key) = certificate(&["a.example.com"]);
        let (_, other_key) = certificate(&["other.test"]);
        let secrets = [
            secret("opaque", "Opaque", &a_crt, &a_key),
            secret("garbage", "kubernetes.io/tls", "not a certificate", &a_key),
            secret("no-key", "kubernetes.io/tls", &a_crt, ""),
            secret("bad-key", "kubernetes.io/tls", &a_crt, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            secret("mismatch", "kubernetes.io/tls", &a_crt, &other_key),
            secret("bad-der", "kubernetes.io/tls", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", &a_key),
        ];
        let names = ["opaque", "garbage", "no-key", "bad-key", "mismatch", "bad-der", "absent"];
        let tls: Vec<Value> = names.iter().map(|name| json!({"hosts": [format!("{name}.test")], "secretName": name})).collect();
        let one = tls_ingress("one", json!(tls));
        let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[one], &[], &[], &secrets);
        let warnings: Vec<&String> = warnings.iter().filter(|w| w.contains("tls[")).collect();
        assert_eq!(warnings.len(), names.len(), "{warnings:#?}");
        for (warning, expected) in warnings.iter().zip([
            "has type Opaque, not kubernetes.io/tls",
            "tls.crt holds no certificate",
            "no tls.key",
            "tls.key",
            "do not make a usable certificate",
            "do not make a usable certificate",
            "secret default/absent not found",
        ]) {
            assert!(warning.contains(expected), "{warning:?} should say {expected:?}");
        }
        assert_eq!(table.certificate_count(), 0);
        assert!(served(&table, Some("opaque.test")).is_none());
    }

    #[test]
    fn a_tls_host_keeps_its_first_certificate() {
        let (a_crt, a_key) = certificate(&["a.example.com"]);
        let (b_crt, b_key) = certificate(&["a.example.com"]);
        let secrets = [secret("a", "kubernetes.io/tls", &a_crt, &a_key), secret("b", "kubernetes.io/tls", &b_crt, &b_key)];
        let mut old = tls_ingress("old", json!([{"hosts": ["a.example.com"], "secretName": "a"}]));
        old.metadata.creation_timestamp = Some(time("2024-01-01T00:00:00Z"));
        let mut new = tls_ingress("new", json!([{"hosts": ["a.example.com"], "secretName": "b"}]));
        new.metadata.creation_timestamp = Some(time("2024-02-01T00:00:00Z"));
        let (table, warnings) = IngressTable::build(DEFAULT_CLASS, &[new, old], &[], &[], &secrets);
        assert_eq!(served(&table, Some("a.example.com")), Some(der(&a_crt)));
        assert!(warnings.iter().any(|w| w.contains("already has the certificate of secret a from ingress default/old")), "{warnings:?}");
    }
}

fn time(text: &str) -> driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    serde_json::from_value(json!(text)).unwrap()
}
