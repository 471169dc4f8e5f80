//! Posting queued notifications to one receiver, with retries and
//! exponential back-off.
//!
//! Retries what may pass next time (connection errors, timeouts, 429, 5xx)
//! and gives up at once on what will not (other 4xx, 3xx). Each attempt has
//! its own deadline; the wait between attempts doubles from
//! `first_backoff` up to `max_backoff`, or follows the receiver's
//! `Retry-After` when that is longer. Owns one receiver's loop; must not log
//! the URL's path or query (they often carry tokens) or the signature.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::NotifyOptions;
use super::queue::Queue;

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One serialized event, signed once for every receiver.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    pub(crate) body: Bytes,
    pub(crate) signature: Option<HeaderValue>,
}

/// The counters every receiver's loop adds to.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) retries: AtomicU64,
}

/// Where one receiver is and what it is called in logs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) uri: Uri,
    /// `scheme://host:port`, nothing after: safe to log.
    pub(crate) label: String,
}

/// Everything one receiver's loop needs.
pub(crate) struct Worker {
    pub(crate) target: Target,
    pub(crate) queue: Arc<Queue<Payload>>,
    pub(crate) client: HttpClient,
    pub(crate) options: NotifyOptions,
    pub(crate) counters: Arc<Counters>,
    pub(crate) cancel: CancellationToken,
}

impl Worker {
    /// Delivers queued events one at a time, in order, until cancelled.
    /// What is still queued at cancellation is dropped.
    pub(crate) async fn run(self) {
        loop {
            let payload = tokio::select! {
                _ = self.cancel.cancelled() => return,
                payload = self.queue.pop() => payload,
            };
            if !self.deliver(&payload).await {
                return;
            }
        }
    }

    /// Posts one event until it is accepted, refused, or out of attempts.
    /// Returns false when cancelled while waiting.
    async fn deliver(&self, payload: &Payload) -> bool {
        for attempt in 1..=self.options.attempts {
            let outcome = tokio::select! {
                _ = self.cancel.cancelled() => return false,
                outcome = self.attempt(payload) => outcome,
            };
            match outcome {
                Attempt::Delivered => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    crate::notify::tally("sent", 1);
                    debug!(attempt, "notification delivered");
                    return true;
                }
                Attempt::Refused(status) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    crate::notify::tally("failed", 1);
                    warn!(%status, "notification refused, not retrying");
                    return true;
                }
                Attempt::Retry { reason, after } => {
                    if attempt == self.options.attempts {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        crate::notify::tally("failed", 1);
                        warn!(attempt, %reason, "notification failed, giving up");
                        return true;
                    }
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff(attempt, &self.options).max(after.unwrap_or_default()).min(self.options.max_backoff);
                    debug!(attempt, %reason, ?wait, "notification failed, retrying");
                    tokio::select! {
                        _ = self.cancel.cancelled() => return false,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        true
    }

    async fn attempt(&self, payload: &Payload) -> Attempt {
        let mut request = Request::new(Full::new(payload.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.target.uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static("driftless"));
        // Flux's generic providers name the sending component here.
        headers.insert("gotk-component", HeaderValue::from_static("driftless"));
        if let Some(signature) = &payload.signature {
            headers.insert("x-signature", signature.clone());
        }
        match tokio::time::timeout(self.options.attempt_timeout, self.client.request(request)).await {
            Err(_elapsed) => Attempt::Retry { reason: "timed out".to_owned(), after: None },
            Ok(Err(error)) => Attempt::Retry { reason: error_chain(&error), after: None },
            Ok(Ok(response)) => classify(response.status(), response.headers().get(RETRY_AFTER)),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Attempt {
    Delivered,
    Refused(StatusCode),
    Retry { reason: String, after: Option<Duration> },
}

fn classify(status: StatusCode, retry_after: Option<&HeaderValue>) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        // Only the delta-seconds form; an HTTP date falls back to our back-off.
        let after = retry_after.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        Attempt::Retry { reason: status.to_string(), after }
    } else {
        Attempt::Refused(status)
    }
}

/// The wait after failed attempt `attempt` (from 1): `first_backoff`
/// doubled each time, capped at `max_backoff`. No jitter: one daemon sends,
/// there is no herd to spread.
pub(crate) fn backoff(attempt: u32, options: &NotifyOptions) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    options.first_backoff.saturating_mul(factor).min(options.max_backoff)
}

/// The client error and its causes on one line (hyper's top-level message
/// alone is just "client error (Connect)").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let options = NotifyOptions::default();
        let waits: Vec<_> = (1..=8).map(|n| backoff(n, &options).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff(u32::MAX, &options), options.max_backoff);
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(classify(StatusCode::OK, None), Attempt::Delivered);
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Attempt::Delivered);
        assert_eq!(classify(StatusCode::BAD_REQUEST, None), Attempt::Refused(StatusCode::BAD_REQUEST));
        assert_eq!(classify(StatusCode::UNAUTHORIZED, None), Attempt::Refused(StatusCode::UNAUTHORIZED));
        assert_eq!(classify(StatusCode::MOVED_PERMANENTLY, None), Attempt::Refused(StatusCode::MOVED_PERMANENTLY));
        assert!(matches!(classify(StatusCode::SERVICE_UNAVAILABLE, None), Attempt::Retry { after: None, .. }));
        let seven = HeaderValue::from_static("7");
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(&seven)),
            Attempt::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
    }
}
