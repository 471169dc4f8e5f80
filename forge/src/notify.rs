//! Notifications out: what the sync did (applied, refused, rolled back),
//! posted to every configured URL as Flux's generic-hmac provider would.
//!
//! The body is Flux's event JSON ([`Event`]), sent with
//! `Content-Type: application/json` and, when a secret is given,
//! `X-Signature: sha256=<hex HMAC-SHA256 of the body>`
//! (<https://fluxcd.io/flux/components/notification/providers/#generic-webhook-with-hmac>).
//! [`Notifier::send`] never blocks and never fails: each URL has a bounded
//! queue that drops its oldest entry when full, and its own task that posts
//! with retries ([`deliver`]). Must not touch the sync loop's state, and
//! must not log URLs beyond scheme and host, nor the signature.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::{ForgeError, sign};

mod deliver;
pub mod event;
mod queue;

pub use event::{Event, ObjectRef, Reason, Severity, revision};

use deliver::{Counters, HttpClient, Payload, Target, Worker};
use queue::Queue;

/// Bounds of the notification queue and its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Events waiting per URL; when full the oldest is dropped.
    pub queue: usize,
    /// Attempts per event and URL, the first included.
    pub attempts: u32,
    /// Wait after the first failed attempt; doubled after each.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Deadline of one attempt: connect, send, and read the status.
    pub attempt_timeout: Duration,
}

impl Default for NotifyOptions {
    /// 256 queued per URL, 5 attempts, 0.5 s doubling to 30 s, 10 s each.
    fn default() -> Self {
        NotifyOptions {
            queue: 256,
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// What the notifier has done so far, summed over URLs (an event sent to
/// two URLs counts twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyCounts {
    /// Accepted by the receiver (2xx).
    pub sent: u64,
    /// Refused (4xx other than 429) or out of attempts.
    pub failed: u64,
    /// Pushed out of a full queue before being tried.
    pub dropped: u64,
    /// Attempts that failed and were tried again.
    pub retries: u64,
}

/// The handle the daemon sends events through. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<Shared>,
}

struct Shared {
    queues: Vec<Arc<Queue<Payload>>>,
    secret: Option<Vec<u8>>,
    counters: Arc<Counters>,
}

impl Notifier {
    /// Starts one delivery task per URL, owned by the returned handle's
    /// task, which ends once `cancel` fires (events still queued are
    /// dropped). Must be called within a tokio runtime.
    ///
    /// http:// and https:// URLs are accepted; https verifies the receiver
    /// against the system's root certificates, and start fails when there
    /// are none. An empty secret is refused: sign with a real one or none.
    pub fn start(
        urls: Vec<String>,
        secret: Option<Vec<u8>>,
        options: NotifyOptions,
        cancel: CancellationToken,
    ) -> Result<(Notifier, JoinHandle<()>), ForgeError> {
        if secret.as_ref().is_some_and(Vec::is_empty) {
            return Err(ForgeError::EmptySecret);
        }
        if options.queue == 0 || options.attempts == 0 {
            return Err(ForgeError::Config("notifications need a queue and at least one attempt"));
        }
        let targets = urls.iter().enumerate().map(|(i, url)| target(i + 1, url)).collect::<Result<Vec<_>, _>>()?;
        let client = client(targets.iter().any(|t| t.uri.scheme() == Some(&http::uri::Scheme::HTTPS)))?;
        let counters = Arc::new(Counters::default());
        let mut workers = JoinSet::new();
        let mut queues = Vec::with_capacity(targets.len());
        for target in targets {
            let queue = Arc::new(Queue::new(options.queue));
            queues.push(queue.clone());
            let span = info_span!("notify", target = %target.label);
            let worker = Worker { target, queue, client: client.clone(), options, counters: counters.clone(), cancel: cancel.clone() };
            workers.spawn(worker.run().instrument(span));
        }
        let handle = tokio::spawn(async move { while workers.join_next().await.is_some() {} });
        Ok((Notifier { shared: Arc::new(Shared { queues, secret, counters }) }, handle))
    }

    /// Queues `event` for every URL and returns at once. Never blocks, never
    /// fails: a full queue drops its oldest event (counted in `dropped`).
    pub fn send(&self, event: &Event) {
        let shared = &self.shared;
        if shared.queues.is_empty() {
            return;
        }
        let body = match serde_json::to_vec(event) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                // Cannot happen for this type (string keys only); counted if it does.
                warn!(%error, "notification could not be serialized");
                shared.counters.failed.fetch_add(shared.queues.len() as u64, Ordering::Relaxed);
                crate::notify::tally("failed", shared.queues.len() as u64);
                return;
            }
        };
        let signature = shared.secret.as_deref().and_then(|key| HeaderValue::try_from(format!("sha256={}", sign::hex_hmac_sha256(key, &body))).ok());
        let payload = Payload { body, signature };
        for queue in &shared.queues {
            if queue.push(payload.clone()) {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                crate::notify::tally("dropped", 1);
            }
        }
    }

    /// The counters now.
    pub fn counts(&self) -> NotifyCounts {
        let c = &self.shared.counters;
        NotifyCounts {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }
}

fn target(index: usize, url: &str) -> Result<Target, ForgeError> {
    let bad = |reason| ForgeError::BadUrl { index, reason };
    let uri: Uri = url.parse().map_err(|_| bad("not a url"))?;
    let scheme = uri.scheme_str().ok_or(bad("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme is not http or https"));
    }
    let authority = uri.authority().ok_or(bad("no host"))?;
    if authority.as_str().contains('@') {
        // Credentials in the URL would be logged with it and sent in clear.
        return Err(bad("user-info in the url is not supported; use the secret"));
    }
    let label = format!("{scheme}://{}", authority.as_str());
    Ok(Target { uri, label })
}

/// One client for every receiver, with rustls on ring. The system's roots
/// are loaded only when some URL is https, so an http-only setup works on
/// a machine without a CA bundle.
fn client(https: bool) -> Result<HttpClient, ForgeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if https {
        builder.with_provider_and_native_roots(provider).map_err(ForgeError::RootCertificates)?
    } else {
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ForgeError::Tls)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector))
}

/// Counts notifications in the process's metrics
/// (`driftless_notifications_total`), beside this notifier's own counts.
pub(crate) fn tally(result: &'static str, count: u64) {
    driftless_telemetry::metrics().notifications.get_or_create(&driftless_telemetry::ResultLabel { result }).inc_by(count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_echoed() {
        assert_eq!(target(1, "http://127.0.0.1:9000/hook?token=abc").unwrap().label, "http://127.0.0.1:9000");
        assert!(target(1, "https://example.com/x").is_ok());
        for (url, reason) in [("ftp://example.com/", "scheme"), ("/relative", "scheme"), ("http://user:pw@example.com/", "user-info"), ("not a url", "url")] {
            let error = target(3, url).unwrap_err().to_string();
            assert!(error.contains("#3") && error.contains(reason), "{url}: {error}");
            assert!(!error.contains("pw"), "{error}");
        }
    }

    #[tokio::test]
    async fn start_refuses_an_empty_secret() {
        let result = Notifier::start(vec![], Some(vec![]), NotifyOptions::default(), CancellationToken::new());
        assert!(matches!(result, Err(ForgeError::EmptySecret)));
    }
}
