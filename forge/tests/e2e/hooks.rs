//! The webhook server over a real socket: every documented payload, signed
//! the way its forge signs, posted by a real HTTP client; then the bounds
//! (401, 404/405, 400, 408, 413, 429) and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use driftless_forge::{Forge, ForgeError, HookConfig, HookCounts, HookStats, Push, RateLimit, serve};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{client, eventually, hmac_hex, request, within};

const SECRET: &str = "e2e-webhook-secret";

const GITHUB_PUSH: &[u8] = include_bytes!("../fixtures/github-push.json");
const GITHUB_PING: &[u8] = include_bytes!("../fixtures/github-ping.json");
const GITEA_PUSH: &[u8] = include_bytes!("../fixtures/gitea-push.json");
const GITLAB_PUSH: &[u8] = include_bytes!("../fixtures/gitlab-push.json");
const GITLAB_TAG_PUSH: &[u8] = include_bytes!("../fixtures/gitlab-tag-push.json");
const BITBUCKET_CLOUD_PUSH: &[u8] = include_bytes!("../fixtures/bitbucket-cloud-push.json");
const BITBUCKET_SERVER_PUSH: &[u8] = include_bytes!("../fixtures/bitbucket-server-refs-changed.json");

/// A running `serve` on 127.0.0.1 and what it reports.
struct Server {
    addr: SocketAddr,
    stats: Arc<HookStats>,
    pushes: mpsc::UnboundedReceiver<Push>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ForgeError>>,
}

impl Server {
    async fn start(config: HookConfig) -> Server {
        // Bound before serve runs: connections queue in the backlog, so no
        // readiness wait is needed.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, pushes) = mpsc::unbounded_channel();
        // As the daemon's: only sends on a channel.
        let on_push = Arc::new(move |push: Push| {
            let _ = tx.send(push);
        });
        let stats = Arc::new(HookStats::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, config, on_push, stats.clone(), cancel.clone()));
        Server { addr, stats, pushes, cancel, task }
    }

    async fn stop(self) -> HookCounts {
        self.cancel.cancel();
        within("serve returns after cancel", self.task).await.unwrap().unwrap();
        self.stats.snapshot()
    }
}

fn config(branch: &str) -> HookConfig {
    HookConfig::new(SECRET, branch)
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(HeaderName::from_static(name), HeaderValue::try_from(value.as_str()).unwrap());
    }
    map
}

fn github(event: &str, body: &[u8]) -> HeaderMap {
    headers(&[("x-github-event", event.into()), ("x-hub-signature-256", format!("sha256={}", hmac_hex(SECRET.as_bytes(), body)))])
}

fn gitea(body: &[u8]) -> HeaderMap {
    headers(&[
        ("x-github-event", "push".into()),
        ("x-gitea-event", "push".into()),
        ("x-gitea-signature", hmac_hex(SECRET.as_bytes(), body)),
        ("x-hub-signature-256", format!("sha256={}", hmac_hex(SECRET.as_bytes(), body))),
    ])
}

fn forgejo(body: &[u8]) -> HeaderMap {
    headers(&[
        ("x-github-event", "push".into()),
        ("x-gitea-event", "push".into()),
        ("x-forgejo-event", "push".into()),
        ("x-forgejo-signature", hmac_hex(SECRET.as_bytes(), body)),
    ])
}

fn gitlab(event: &str, token: &str) -> HeaderMap {
    headers(&[("x-gitlab-event", event.into()), ("x-gitlab-token", token.into())])
}

fn bitbucket_cloud(body: &[u8]) -> HeaderMap {
    headers(&[
        ("x-event-key", "repo:push".into()),
        ("x-hook-uuid", "cb2f8e5a-8a9a-4b0e-9f3a-1c3a3b1f2a10".into()),
        ("x-hub-signature-256", format!("sha256={}", hmac_hex(SECRET.as_bytes(), body))),
    ])
}

fn bitbucket_server(body: &[u8]) -> HeaderMap {
    headers(&[("x-event-key", "repo:refs_changed".into()), ("x-hub-signature", format!("sha256={}", hmac_hex(SECRET.as_bytes(), body)))])
}

fn generic(body: &[u8]) -> HeaderMap {
    headers(&[("x-signature", format!("sha256={}", hmac_hex(SECRET.as_bytes(), body)))])
}

/// One delivery and what the server must make of it.
struct Delivery {
    what: &'static str,
    path: &'static str,
    headers: HeaderMap,
    body: &'static [u8],
    status: StatusCode,
    /// `Some((forge, after))` when the callback must hear a push.
    push: Option<(Forge, Option<&'static str>)>,
}

async fn deliver_all(server: &mut Server, branch: &str, deliveries: Vec<Delivery>) {
    let client = client();
    for d in deliveries {
        let reply = request(&client, Method::POST, server.addr, d.path, &d.headers, d.body).await;
        assert_eq!(reply.status, d.status, "{}: {}", d.what, reply.json);
        assert_eq!(reply.headers.get("content-type").unwrap(), "application/json", "{}", d.what);
        match d.push {
            Some((forge, after)) => {
                assert_eq!(reply.json["triggered"], true, "{}", d.what);
                let push = server.pushes.try_recv().unwrap_or_else(|_| panic!("{}: callback not called", d.what));
                let name = d.path.trim_start_matches("/hooks/");
                assert_eq!(push, Push { name: name.into(), forge, branch: branch.into(), after: after.map(Into::into) }, "{}", d.what);
            }
            None => {
                assert!(server.pushes.try_recv().is_err(), "{}: callback called", d.what);
                if d.status == StatusCode::ACCEPTED {
                    assert_eq!(reply.json["triggered"], false, "{}", d.what);
                }
            }
        }
    }
}

#[tokio::test]
async fn documented_payloads_watching_master() {
    let mut server = Server::start(config("master")).await;
    let deliveries = vec![
        Delivery {
            what: "gitlab push of master",
            path: "/hooks/gitlab",
            headers: gitlab("Push Hook", SECRET),
            body: GITLAB_PUSH,
            status: StatusCode::ACCEPTED,
            push: Some((Forge::GitLab, Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7"))),
        },
        Delivery {
            what: "bitbucket server push of master",
            path: "/hooks/bitbucket-dc",
            headers: bitbucket_server(BITBUCKET_SERVER_PUSH),
            body: BITBUCKET_SERVER_PUSH,
            status: StatusCode::ACCEPTED,
            push: Some((Forge::BitbucketServer, Some("178864a7d521b6f5e720b386b2c2b0ef8563e0dc"))),
        },
        Delivery { what: "github ping", path: "/hooks/github", headers: github("ping", GITHUB_PING), body: GITHUB_PING, status: StatusCode::OK, push: None },
        Delivery {
            what: "github tag deletion (the documented push)",
            path: "/hooks/github",
            headers: github("push", GITHUB_PUSH),
            body: GITHUB_PUSH,
            status: StatusCode::ACCEPTED,
            push: None,
        },
        Delivery {
            what: "gitlab tag push",
            path: "/hooks/gitlab",
            headers: gitlab("Tag Push Hook", SECRET),
            body: GITLAB_TAG_PUSH,
            status: StatusCode::ACCEPTED,
            push: None,
        },
        Delivery {
            what: "gitea push of develop",
            path: "/hooks/gitea",
            headers: gitea(GITEA_PUSH),
            body: GITEA_PUSH,
            status: StatusCode::ACCEPTED,
            push: None,
        },
        Delivery {
            what: "bitbucket cloud push of name-of-branch",
            path: "/hooks/bitbucket",
            headers: bitbucket_cloud(BITBUCKET_CLOUD_PUSH),
            body: BITBUCKET_CLOUD_PUSH,
            status: StatusCode::ACCEPTED,
            push: None,
        },
        Delivery {
            what: "github issues event",
            path: "/hooks/github",
            headers: github("issues", b"{}"),
            body: b"{}",
            status: StatusCode::ACCEPTED,
            push: None,
        },
    ];
    deliver_all(&mut server, "master", deliveries).await;
    let counts = server.stop().await;
    assert_eq!(counts, HookCounts { received: 8, accepted: 2, ignored: 6, ..HookCounts::default() });
}

#[tokio::test]
async fn documented_payloads_watching_their_branch() {
    let mut develop = Server::start(config("develop")).await;
    let after = Some("bffeb74224043ba2feb48d137756c8a9331c449a");
    let deliveries = vec![
        Delivery {
            what: "gitea push of develop",
            path: "/hooks/gitea",
            headers: gitea(GITEA_PUSH),
            body: GITEA_PUSH,
            status: StatusCode::ACCEPTED,
            push: Some((Forge::Gitea, after)),
        },
        Delivery {
            what: "forgejo push of develop",
            path: "/hooks/forgejo",
            headers: forgejo(GITEA_PUSH),
            body: GITEA_PUSH,
            status: StatusCode::ACCEPTED,
            push: Some((Forge::Forgejo, after)),
        },
        Delivery {
            what: "generic with a ref",
            path: "/hooks/ci",
            headers: generic(GITEA_PUSH),
            body: GITEA_PUSH,
            status: StatusCode::ACCEPTED,
            push: Some((Forge::Generic, after)),
        },
        Delivery {
            what: "generic without a ref",
            path: "/hooks/ci",
            headers: generic(b""),
            body: b"",
            status: StatusCode::ACCEPTED,
            push: Some((Forge::Generic, None)),
        },
    ];
    deliver_all(&mut develop, "develop", deliveries).await;
    assert_eq!(develop.stop().await, HookCounts { received: 4, accepted: 4, ..HookCounts::default() });

    let mut cloud = Server::start(config("name-of-branch")).await;
    let deliveries = vec![Delivery {
        what: "bitbucket cloud push",
        path: "/hooks/bitbucket",
        headers: bitbucket_cloud(BITBUCKET_CLOUD_PUSH),
        body: BITBUCKET_CLOUD_PUSH,
        status: StatusCode::ACCEPTED,
        push: Some((Forge::Bitbucket, Some("709d658dc5b6d6afcd46049c2f332ee3f515a67d"))),
    }];
    deliver_all(&mut cloud, "name-of-branch", deliveries).await;
    assert_eq!(cloud.stop().await, HookCounts { received: 1, accepted: 1, ..HookCounts::default() });
}

#[tokio::test]
async fn bad_signatures_are_401_and_never_reach_the_callback() {
    let mut server = Server::start(config("master")).await;
    let client = client();
    let mut tampered = GITLAB_PUSH.to_vec();
    tampered.extend_from_slice(b" ");
    let wrong = |headers: HeaderMap, body: &'static [u8]| (headers, body);
    let cases = vec![
        ("wrong secret", wrong(headers(&[("x-signature", format!("sha256={}", hmac_hex(b"not-the-secret", GITLAB_PUSH)))]), GITLAB_PUSH)),
        ("missing signature", wrong(headers(&[("x-github-event", "push".into())]), GITLAB_PUSH)),
        ("gitlab wrong token", wrong(gitlab("Push Hook", "e2e-webhook-secreT"), GITLAB_PUSH)),
        ("gitlab no token", wrong(headers(&[("x-gitlab-event", "Push Hook".into())]), GITLAB_PUSH)),
        ("sha1 signature", wrong(headers(&[("x-event-key", "repo:refs_changed".into()), ("x-hub-signature", "sha1=00".into())]), GITLAB_PUSH)),
    ];
    for (what, (headers, body)) in cases {
        let reply = request(&client, Method::POST, server.addr, "/hooks/x", &headers, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // Signed for one body, delivered with another.
    let reply = request(&client, Method::POST, server.addr, "/hooks/x", &generic(GITLAB_PUSH), &tampered).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "tampered body");
    assert!(server.pushes.try_recv().is_err());
    assert_eq!(server.stop().await, HookCounts { received: 6, unauthorized: 6, ..HookCounts::default() });
}

#[tokio::test]
async fn paths_methods_and_malformed_bodies() {
    let server = Server::start(config("main")).await;
    let client = client();
    let none = HeaderMap::new();
    assert_eq!(request(&client, Method::GET, server.addr, "/hooks/github", &none, b"").await.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = request(&client, Method::PUT, server.addr, "/hooks/github", &none, b"").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get("allow").unwrap(), "POST");
    for path in ["/", "/hooks", "/hooks/", "/hooks/a/b", "/other/github"] {
        assert_eq!(request(&client, Method::POST, server.addr, path, &none, b"").await.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Verified, but not JSON (generic) or not the documented shape (GitHub push).
    let reply = request(&client, Method::POST, server.addr, "/hooks/ci", &generic(b"not json"), b"not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = request(&client, Method::POST, server.addr, "/hooks/github", &github("push", b"{\"ref\": 1}"), b"{\"ref\": 1}").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(server.stop().await, HookCounts { received: 9, rejected: 7, malformed: 2, ..HookCounts::default() });
}

/// Sends `head` on a fresh connection and reads what comes back until the
/// server closes it.
async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    within("the server answers and closes", stream.read_to_end(&mut response)).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn oversized_bodies_are_413_without_being_read() {
    // The default 25 MiB limit: a declared 26 MiB is refused from the head
    // alone; the test never sends the body, and the answer still comes.
    let server = Server::start(config("main")).await;
    let declared = 26 * 1024 * 1024;
    let head = format!("POST /hooks/github HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n");
    let response = raw_exchange(server.addr, &head, b"{\"ref\":").await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");

    // A chunked body declares nothing; the capped read stops it.
    let small = Server::start(HookConfig { max_body: 1024, ..config("main") }).await;
    let chunk = vec![b'x'; 4096];
    let mut body = format!("{:x}\r\n", chunk.len()).into_bytes();
    body.extend_from_slice(&chunk);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = "POST /hooks/github HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n";
    let response = raw_exchange(small.addr, head, &body).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    assert_eq!(server.stop().await, HookCounts { received: 1, too_large: 1, ..HookCounts::default() });
    assert_eq!(small.stop().await, HookCounts { received: 1, too_large: 1, ..HookCounts::default() });
}

#[tokio::test]
async fn a_body_that_never_finishes_is_408() {
    let server = Server::start(HookConfig { body_timeout: Duration::from_millis(200), ..config("main") }).await;
    // Declares 100 bytes, sends 10, then waits: the server's deadline ends it.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"POST /hooks/github HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789").await.unwrap();
    let mut response = Vec::new();
    within("the server gives up on the body", stream.read_to_end(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(server.stop().await, HookCounts { received: 1, malformed: 1, ..HookCounts::default() });
}

#[tokio::test]
async fn deliveries_past_the_burst_are_429_before_verification() {
    let rate = RateLimit { burst: 3, per_second: 0.01 };
    let mut server = Server::start(HookConfig { rate, ..config("main") }).await;
    let client = client();
    for _ in 0..3 {
        let reply = request(&client, Method::POST, server.addr, "/hooks/ci", &generic(b""), b"").await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(server.pushes.try_recv().unwrap().forge, Forge::Generic);
    }
    // Well signed or not, the bucket answers first: 429, not 401.
    for headers in [generic(b""), HeaderMap::new()] {
        let reply = request(&client, Method::POST, server.addr, "/hooks/ci", &headers, b"").await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = reply.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=100).contains(&retry_after), "{retry_after}");
    }
    assert!(server.pushes.try_recv().is_err());
    let stats = server.stats.clone();
    eventually("counters", || stats.snapshot().rate_limited == 2).await;
    assert_eq!(server.stop().await, HookCounts { received: 5, accepted: 3, rate_limited: 2, ..HookCounts::default() });
}

#[tokio::test]
async fn an_unusable_config_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = serve(listener, HookConfig::new("", "main"), Arc::new(|_| {}), Arc::new(HookStats::new()), CancellationToken::new()).await;
    assert!(matches!(result, Err(ForgeError::EmptySecret)));
}
