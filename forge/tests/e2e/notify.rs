//! The notifier against a receiver on 127.0.0.1: the body is Flux's event
//! JSON signed as generic-hmac, 503s are retried until accepted, other 4xx
//! are not, and a receiver that never answers never blocks `send`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use driftless_forge::hooks::verify;
use driftless_forge::notify::{Event, ObjectRef, Reason, Severity};
use driftless_forge::{Forge, ForgeError, Notifier, NotifyCounts, NotifyOptions};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{eventually, hmac_hex, within};

const SECRET: &[u8] = b"e2e-notify-secret";

/// What the receiver saw for one request.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver answering requests with `statuses` in turn (the last one
/// repeats), reporting each request it saw.
async fn receiver(statuses: Vec<StatusCode>) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let statuses = Arc::new(statuses);
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (tx, statuses, next) = (tx.clone(), statuses.clone(), next.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (tx, statuses, next) = (tx.clone(), statuses.clone(), next.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let i = next.fetch_add(1, Ordering::SeqCst).min(statuses.len() - 1);
                        let status = statuses[i];
                        let _ = tx.send(Seen { status, headers: parts.headers, body });
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, rx)
}

fn event() -> Event {
    Event::new(
        ObjectRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into(), api_version: "apps/v1".into() },
        Severity::Info,
        Reason::ReconciliationSucceeded,
        "applied main@sha1:0c1f3a9",
    )
    .with_revision("main", "0c1f3a9e5d8b7c6a5f4e3d2c1b0a9f8e7d6c5b4a")
}

fn quick() -> NotifyOptions {
    NotifyOptions {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(5),
        ..NotifyOptions::default()
    }
}

#[tokio::test]
async fn a_signed_flux_event_arrives() {
    let (addr, mut seen) = receiver(vec![StatusCode::OK]).await;
    let cancel = CancellationToken::new();
    let (notifier, task) = Notifier::start(vec![format!("http://{addr}/flux?token=x")], Some(SECRET.to_vec()), quick(), cancel.clone()).unwrap();
    notifier.send(&event());
    let request = within("the event arrives", seen.recv()).await.unwrap();
    assert_eq!(request.headers.get("content-type").unwrap(), "application/json");
    // The signature, checked independently of the code under test...
    let signature = request.headers.get("x-signature").unwrap().to_str().unwrap();
    assert_eq!(signature, format!("sha256={}", hmac_hex(SECRET, &request.body)));
    // ...and accepted by our own receiving side as a generic (Flux) delivery.
    assert_eq!(verify(&request.headers, &request.body, SECRET), Ok(Forge::Generic));
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(json["involvedObject"], serde_json::json!({ "kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1" }));
    assert_eq!(json["severity"], "info");
    assert_eq!(json["reason"], "ReconciliationSucceeded");
    assert_eq!(json["message"], "applied main@sha1:0c1f3a9");
    assert_eq!(json["metadata"]["revision"], "main@sha1:0c1f3a9e5d8b7c6a5f4e3d2c1b0a9f8e7d6c5b4a");
    assert_eq!(json["reportingController"], "driftless");
    let timestamp = json["timestamp"].as_str().unwrap();
    assert!(timestamp.parse::<jiff::Timestamp>().is_ok() && timestamp.ends_with('Z'), "{timestamp}");
    eventually("sent counted", || notifier.counts().sent == 1).await;
    cancel.cancel();
    within("the notifier stops", task).await.unwrap();
    assert_eq!(notifier.counts(), NotifyCounts { sent: 1, ..NotifyCounts::default() });
}

#[tokio::test]
async fn no_secret_no_signature() {
    let (addr, mut seen) = receiver(vec![StatusCode::NO_CONTENT]).await;
    let cancel = CancellationToken::new();
    let (notifier, _task) = Notifier::start(vec![format!("http://{addr}/")], None, quick(), cancel.clone()).unwrap();
    notifier.send(&event());
    let request = within("the event arrives", seen.recv()).await.unwrap();
    assert!(request.headers.get("x-signature").is_none());
    cancel.cancel();
}

#[tokio::test]
async fn two_503s_then_accepted_arrives_once() {
    let (addr, mut seen) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE, StatusCode::SERVICE_UNAVAILABLE, StatusCode::OK]).await;
    let cancel = CancellationToken::new();
    let (notifier, _task) = Notifier::start(vec![format!("http://{addr}/")], Some(SECRET.to_vec()), quick(), cancel.clone()).unwrap();
    let started = Instant::now();
    notifier.send(&event());
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let request = within("an attempt arrives", seen.recv()).await.unwrap();
        bodies.push((request.status, request.body));
    }
    // The same bytes each time; only the last was accepted: it arrived once.
    assert!(bodies.iter().all(|(_, body)| *body == bodies[0].1));
    assert_eq!(bodies.iter().filter(|(status, _)| status.is_success()).count(), 1);
    // Waited 20 ms then 40 ms between attempts.
    assert!(started.elapsed() >= Duration::from_millis(60), "{:?}", started.elapsed());
    eventually("sent counted", || notifier.counts().sent == 1).await;
    assert_eq!(notifier.counts(), NotifyCounts { sent: 1, retries: 2, ..NotifyCounts::default() });
    assert!(seen.try_recv().is_err(), "no fourth attempt");
    cancel.cancel();
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let (addr, mut seen) = receiver(vec![StatusCode::BAD_REQUEST, StatusCode::OK]).await;
    let cancel = CancellationToken::new();
    let (notifier, _task) = Notifier::start(vec![format!("http://{addr}/")], None, quick(), cancel.clone()).unwrap();
    notifier.send(&event());
    within("the attempt arrives", seen.recv()).await.unwrap();
    eventually("failed counted", || notifier.counts().failed == 1).await;
    // The next event goes through: one refusal does not stop the loop.
    notifier.send(&event());
    within("the next event arrives", seen.recv()).await.unwrap();
    eventually("sent counted", || notifier.counts().sent == 1).await;
    assert_eq!(notifier.counts(), NotifyCounts { sent: 1, failed: 1, ..NotifyCounts::default() });
    cancel.cancel();
}

#[tokio::test]
async fn an_unreachable_receiver_fails_after_the_attempts() {
    // A port that was free a moment ago: connections are refused.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let cancel = CancellationToken::new();
    let options = NotifyOptions { attempts: 3, ..quick() };
    let (notifier, _task) = Notifier::start(vec![format!("http://{addr}/")], None, options, cancel.clone()).unwrap();
    notifier.send(&event());
    eventually("failed counted", || notifier.counts().failed == 1).await;
    assert_eq!(notifier.counts(), NotifyCounts { failed: 1, retries: 2, ..NotifyCounts::default() });
    cancel.cancel();
}

#[tokio::test]
async fn a_receiver_that_never_answers_never_blocks_send() {
    // Accepts connections and never reads or answers them.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = accepted_tx.send(stream);
        }
    });
    let cancel = CancellationToken::new();
    let options = NotifyOptions { queue: 8, attempt_timeout: Duration::from_secs(30), ..NotifyOptions::default() };
    let (notifier, task) = Notifier::start(vec![format!("http://{addr}/")], Some(SECRET.to_vec()), options, cancel.clone()).unwrap();
    notifier.send(&event());
    // The first attempt is now stuck on a receiver that says nothing.
    let _held = within("the notifier connects", accepted.recv()).await.unwrap();
    let started = Instant::now();
    for _ in 0..1000 {
        notifier.send(&event());
    }
    // 1000 sends against a stuck receiver: no waiting on it, just the queue.
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let counts = notifier.counts();
    assert_eq!(counts.dropped, 1000 - 8, "{counts:?}");
    assert_eq!(counts.sent + counts.failed, 0);
    // Cancelling ends the stuck attempt and the task promptly.
    cancel.cancel();
    within("the notifier stops while an attempt hangs", task).await.unwrap();
}

#[tokio::test]
async fn bad_urls_are_refused_at_start() {
    let cancel = CancellationToken::new();
    for url in ["ftp://127.0.0.1/", "127.0.0.1:9000/hook", "http://user:secret@127.0.0.1/"] {
        let result = Notifier::start(vec!["http://127.0.0.1:9/".into(), url.into()], None, quick(), cancel.clone());
        match result {
            Err(ForgeError::BadUrl { index: 2, .. }) => {}
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[tokio::test]
async fn https_urls_start_or_say_why() {
    // https needs the system's roots: with them the notifier starts, without
    // them start says so instead of failing on the first event.
    let cancel = CancellationToken::new();
    match Notifier::start(vec!["https://127.0.0.1:9/".into()], None, quick(), cancel.clone()) {
        Ok(_) | Err(ForgeError::RootCertificates(_)) => {}
        Err(other) => panic!("unexpected: {other}"),
    }
    cancel.cancel();
}
