//! Routing over real sockets: hosts (exact and wildcard), paths (Prefix,
//! Exact, longest first), the default backend, 404 and 503 answers, round
//! robin over endpoints, retrying a refusing endpoint, the headers a
//! backend gets, and a table swap seen by the next request while a request
//! in flight finishes on the old table.

use hyper::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn hosts_route_exact_then_wildcard_then_any() {
    let (exact, _) = TestBackend::start("exact", 2).await;
    let (wild, _) = TestBackend::start("wild", 3).await;
    let (any, _) = TestBackend::start("any", 4).await;
    let mut cluster = Cluster::default();
    cluster.service("exact", &[exact.addr], &[]).service("wild", &[wild.addr], &[]).service("any", &[any.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "hosts", "namespace": "default"}, "spec": {"rules": [
        {"host": "a.example.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("exact")}]}},
        {"host": "*.example.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("wild")}]}},
        {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("any")}]}}
    ]}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    for (host, expected) in [
        ("a.example.test", "exact"),
        ("A.Example.TEST:8080", "exact"),
        ("b.example.test", "wild"),
        ("a.b.example.test", "any"),
        ("example.test", "any"),
        ("elsewhere.test", "any"),
    ] {
        assert_eq!(fetch(addr, host, "/").await.backend(), expected, "{host}");
    }
}

#[tokio::test]
async fn paths_route_longest_first_and_exact_before_prefix() {
    let (root, _) = TestBackend::start("root", 2).await;
    let (api, _) = TestBackend::start("api", 3).await;
    let (v2, _) = TestBackend::start("v2", 4).await;
    let (exact, _) = TestBackend::start("exact", 5).await;
    let mut cluster = Cluster::default();
    for backend in [&root, &api, &v2, &exact] {
        cluster.service(&backend.name, &[backend.addr], &[]);
    }
    // Two Ingresses for one host: their paths merge.
    cluster.ingress(json!({"metadata": {"name": "one", "namespace": "default"}, "spec": {"rules": [
        {"host": "app.test", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": to("root")},
            {"path": "/api", "pathType": "Prefix", "backend": to("api")}
        ]}}
    ]}}));
    cluster.ingress(json!({"metadata": {"name": "two", "namespace": "default"}, "spec": {"rules": [
        {"host": "app.test", "http": {"paths": [
            {"path": "/api/v2/", "pathType": "Prefix", "backend": to("v2")},
            {"path": "/api", "pathType": "Exact", "backend": to("exact")}
        ]}}
    ]}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    for (path, expected) in [
        ("/", "root"),
        ("/apix", "root"),
        ("/api", "exact"),
        ("/api/", "api"),
        ("/api/v1/users", "api"),
        ("/api/v2", "v2"),
        ("/api/v2/users?page=2", "v2"),
        ("/api/v2x", "api"),
    ] {
        let answer = fetch(addr, "app.test", path).await;
        assert_eq!(answer.backend(), expected, "{path}");
        assert_eq!(answer.json()["uri"], path, "the path and query reach the backend unchanged");
    }
}

#[tokio::test]
async fn default_backend_then_404() {
    let (web, _) = TestBackend::start("web", 2).await;
    let (fallback, _) = TestBackend::start("fallback", 3).await;
    let mut cluster = Cluster::default();
    cluster.service("web", &[web.addr], &[]).service("fallback", &[fallback.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"rules": [
        {"host": "web.test", "http": {"paths": [{"path": "/app", "pathType": "Prefix", "backend": to("web")}]}}
    ]}}));
    let without_default = cluster.table();
    cluster.ingress(json!({"metadata": {"name": "fallback", "namespace": "default"}, "spec": {"defaultBackend": to("fallback")}}));
    let with_default = cluster.table();

    let ingress = start(without_default);
    let addr = http_addr(&ingress);
    assert_eq!(fetch(addr, "web.test", "/app/x").await.backend(), "web");
    let answer = fetch(addr, "web.test", "/other").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(answer.text(), "404 Not Found: no ingress rule matches host \"web.test\" and path \"/other\", and no ingress has a defaultBackend\n");
    assert_eq!(fetch(addr, "nobody.test", "/app").await.status, StatusCode::NOT_FOUND);

    ingress.set_table(with_default);
    assert_eq!(fetch(addr, "web.test", "/other").await.backend(), "fallback");
    assert_eq!(fetch(addr, "nobody.test", "/app").await.backend(), "fallback");
    assert_eq!(fetch(addr, "web.test", "/app").await.backend(), "web");
}

#[tokio::test]
async fn no_ready_endpoints_is_503() {
    let (idle, _) = TestBackend::start("not-ready", 2).await;
    let mut cluster = Cluster::default();
    // The backend runs, but the Endpoints list it as not ready.
    cluster.service("starting", &[], &[idle.addr]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"rules": [
        {"host": "starting.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("starting")}]}},
        {"host": "missing.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("missing")}]}}
    ]}}));
    let (table, warnings) = cluster.table_with_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let ingress = start(table);
    let addr = http_addr(&ingress);
    let answer = fetch(addr, "starting.test", "/").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.text(), "503 Service Unavailable: service default/starting:80 has no ready endpoints\n");
    let answer = fetch(addr, "missing.test", "/").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.text(), "503 Service Unavailable: service default/missing:80 has no ready endpoints\n");
    assert_eq!(idle.requests(), 0, "a not-ready address gets no traffic");
}

#[tokio::test]
async fn refused_connections_try_the_next_endpoint_then_503() {
    let (good, _) = TestBackend::start("good", 2).await;
    let dead_one = refusing(3).await;
    let dead_two = refusing(4).await;
    let mut cluster = Cluster::default();
    cluster.service("half", &[dead_one, good.addr], &[]).service("dead", &[dead_one, dead_two], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"rules": [
        {"host": "half.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("half")}]}},
        {"host": "dead.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("dead")}]}}
    ]}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    for _ in 0..6 {
        let answer = fetch(addr, "half.test", "/").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.backend(), "good");
    }
    let answer = fetch(addr, "dead.test", "/").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.text(), "503 Service Unavailable: no endpoint of service default/dead:80 accepted a connection\n");
}

#[tokio::test]
async fn requests_spread_round_robin_over_ready_endpoints() {
    let mut backends = Vec::new();
    for n in 0..3 {
        backends.push(TestBackend::start(&format!("web-{n}"), 2 + n).await.0);
    }
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let mut cluster = Cluster::default();
    cluster.service("web", &addrs, &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to("web")}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    let mut connection = Connection::open(addr).await;
    let mut seen = Vec::new();
    for _ in 0..30 {
        seen.push(connection.send(get("any.test", "/")).await.backend());
    }
    for backend in &backends {
        let count = seen.iter().filter(|name| **name == backend.name).count();
        assert_eq!(count, 10, "{} answered {count} of 30: {seen:?}", backend.name);
    }
    // Consecutive requests go to different endpoints.
    assert!(seen.windows(2).all(|pair| pair[0] != pair[1]), "{seen:?}");
}

#[tokio::test]
async fn backends_get_forwarded_headers_and_no_hop_by_hop_ones() {
    let (web, _) = TestBackend::start("web", 2).await;
    let mut cluster = Cluster::default();
    cluster.service("web", &[web.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to("web")}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    let request = hyper::Request::get("/headers?x=1")
        .header("host", "Web.Test:8080")
        .header("x-forwarded-for", "192.0.2.7")
        .header("x-forwarded-proto", "forged")
        .header("x-forwarded-host", "forged.test")
        .header("connection", "x-client-secret")
        .header("x-client-secret", "1")
        .header("keep-alive", "timeout=5")
        .header("x-custom", "kept")
        .body(full_request(Default::default()))
        .unwrap();
    let answer = Connection::open(addr).await.send(request).await;
    assert_eq!(answer.seen("host"), ["Web.Test:8080"], "the Host header is kept as sent");
    assert_eq!(answer.seen("x-forwarded-for"), ["192.0.2.7, 127.0.0.1"]);
    assert_eq!(answer.seen("x-forwarded-proto"), ["http"]);
    assert_eq!(answer.seen("x-forwarded-host"), ["Web.Test:8080"]);
    assert_eq!(answer.seen("x-forwarded-port"), [addr.port().to_string()]);
    assert_eq!(answer.seen("x-custom"), ["kept"]);
    for hop in ["x-client-secret", "keep-alive"] {
        assert!(answer.seen(hop).is_empty(), "{hop} reached the backend");
    }
    assert_eq!(answer.json()["version"], "HTTP/1.1");
    // And the backend's hop-by-hop headers do not reach the client.
    assert_eq!(answer.headers["x-backend"], "web");
    for hop in ["x-backend-secret", "keep-alive"] {
        assert!(!answer.headers.contains_key(hop), "{hop} reached the client");
    }
}

#[tokio::test]
async fn a_swapped_table_serves_the_next_request_and_spares_the_one_in_flight() {
    let (old, mut old_events) = TestBackend::start("old", 2).await;
    let (new, _) = TestBackend::start("new", 3).await;
    let table = |service: &str, addr| {
        let mut cluster = Cluster::default();
        cluster.service(service, &[addr], &[]);
        cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"rules": [
            {"host": "swap.test", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to(service)}]}}
        ]}}));
        cluster.table()
    };
    let ingress = start(table("old", old.addr));
    let addr = http_addr(&ingress);
    assert_eq!(fetch(addr, "swap.test", "/").await.backend(), "old");

    // A request held by the old backend while the table changes.
    let mut held = Connection::open(addr).await;
    let in_flight = tokio::spawn(async move { held.send(get("swap.test", "/held")).await });
    assert_eq!(bounded("the held request", old_events.recv()).await.as_deref(), Some("held"));
    ingress.set_table(table("new", new.addr));
    assert_eq!(fetch(addr, "swap.test", "/").await.backend(), "new", "the next request sees the new table");
    old.release();
    let answer = bounded("the held answer", in_flight).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.backend(), "old", "the request in flight finishes where it started");
    assert_eq!(ingress.table().rule_count(), 1);
}

#[tokio::test]
async fn backend_connections_are_kept_alive() {
    let (web, _) = TestBackend::start("web", 2).await;
    let mut cluster = Cluster::default();
    cluster.service("web", &[web.addr], &[]);
    cluster.ingress(json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"defaultBackend": to("web")}}));
    let ingress = start(cluster.table());
    let addr = http_addr(&ingress);
    let mut connection = Connection::open(addr).await;
    for _ in 0..20 {
        assert_eq!(connection.send(get("x.test", "/")).await.status, StatusCode::OK);
    }
    assert_eq!(web.requests(), 20);
    assert_eq!(web.connections(), 1, "one backend connection serves one client's requests in turn");
    eventually("the connection back in the pool", || async { ingress.idle_backend_connections() == 1 }).await;
}
