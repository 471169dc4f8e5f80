//! The hyper loop behind `POST /hooks/<name>`: accepts connections on the
//! listener it is given, bounds each delivery (rate, size, time), verifies
//! it, reads it, and calls the daemon's callback for a push of the watched
//! branch.
//!
//! Order matters and is the point of this file: path and method, then the
//! token bucket, then the declared size, then the body read under a size
//! cap and a deadline, and only then the HMAC and the JSON. Must not block
//! (the callback only sends on a channel) and must not log the secret, the
//! signature or the body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, info, info_span, warn};

use super::limit::TokenBucket;
use super::payload::{Event, parse};
use super::stats::{HookStats, Outcome};
use super::verify::verify;
use super::{HookConfig, Push};
use crate::ForgeError;

/// How long connections in flight get to finish once `cancel` fires.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `POST /hooks/<name>` on `listener` until `cancel` fires.
///
/// `on_push` is called, on the connection's task, for each verified push of
/// `config.branch`; it must not block (the daemon's only sends on a
/// channel). Returns an error only when `config` cannot work; everything a
/// client does wrong is answered, counted in `stats` and logged.
pub async fn serve(
    listener: TcpListener,
    config: HookConfig,
    on_push: Arc<dyn Fn(Push) + Send + Sync>,
    stats: Arc<HookStats>,
    cancel: CancellationToken,
) -> Result<(), ForgeError> {
    validate(&config)?;
    let shared = Arc::new(Shared { bucket: TokenBucket::new(config.rate, Instant::now()), config, on_push, stats });
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set only holds live ones.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait a little rather than spin.
                warn!(%error, "accepting a webhook connection failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if connections.len() >= shared.config.max_connections {
            debug!(%peer, "too many webhook connections, closing this one");
            continue;
        }
        connections.spawn(connection(stream, peer, shared.clone(), cancel.clone()));
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

fn validate(config: &HookConfig) -> Result<(), ForgeError> {
    if config.secret.is_empty() {
        return Err(ForgeError::EmptySecret);
    }
    if config.branch.is_empty() {
        return Err(ForgeError::Config("the watched branch is empty"));
    }
    if config.max_body == 0 {
        return Err(ForgeError::Config("max_body is zero"));
    }
    if !config.rate.is_valid() {
        return Err(ForgeError::Config("the rate limit needs a burst of at least 1 and a positive rate"));
    }
    if config.max_connections == 0 {
        return Err(ForgeError::Config("max_connections is zero"));
    }
    Ok(())
}

struct Shared {
    config: HookConfig,
    on_push: Arc<dyn Fn(Push) + Send + Sync>,
    stats: Arc<HookStats>,
    bucket: TokenBucket,
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, cancel: CancellationToken) {
    let header_timeout = shared.config.header_timeout;
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    let mut builder = http1::Builder::new();
    // The timer is what makes the header timeout fire: a client that
    // dribbles its request head is dropped after `header_timeout`.
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        debug!(%peer, %error, "webhook connection ended with an error");
    }
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    shared.stats.received();
    let Some(name) = request.uri().path().strip_prefix("/hooks/").filter(|name| valid_name(name)).map(str::to_owned) else {
        shared.stats.count(Outcome::Rejected);
        return reply(StatusCode::NOT_FOUND, json!({ "error": "not found" }));
    };
    let span = info_span!("hook", name = %name, forge = tracing::field::Empty);
    deliver(request, name, shared).instrument(span).await
}

/// A label we are willing to echo into logs and counters.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

async fn deliver(request: Request<Incoming>, name: String, shared: &Shared) -> Response<Full<Bytes>> {
    let config = &shared.config;
    if request.method() != Method::POST {
        shared.stats.count(Outcome::Rejected);
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, json!({ "error": "only POST" }));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    // Before anything costs us work, and before the body is read.
    if let Err(wait) = shared.bucket.try_take(Instant::now()) {
        shared.stats.count(Outcome::RateLimited);
        debug!("webhook rate limit reached");
        let mut response = closing(reply(StatusCode::TOO_MANY_REQUESTS, json!({ "error": "rate limited" })));
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64));
        return response;
    }
    // A declared length over the limit is refused without reading a byte of it.
    if request.body().size_hint().lower() > config.max_body as u64 {
        return too_large(shared);
    }
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(config.body_timeout, Limited::new(body, config.max_body).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => return too_large(shared),
        Ok(Err(error)) => {
            shared.stats.count(Outcome::Malformed);
            debug!(%error, "webhook body could not be read");
            return closing(reply(StatusCode::BAD_REQUEST, json!({ "error": "body not read" })));
        }
        Err(_elapsed) => {
            shared.stats.count(Outcome::Malformed);
            debug!("webhook body did not arrive in time");
            return closing(reply(StatusCode::REQUEST_TIMEOUT, json!({ "error": "body too slow" })));
        }
    };
    let forge = match verify(&parts.headers, &body, &config.secret) {
        Ok(forge) => forge,
        Err(refused) => {
            shared.stats.count(Outcome::Unauthorized);
            // The reason names headers, never their values.
            warn!(reason = %refused, "webhook delivery refused");
            return reply(StatusCode::UNAUTHORIZED, json!({ "error": "unauthorized" }));
        }
    };
    Span::current().record("forge", forge.as_str());
    let event = match parse(forge, &parts.headers, &body) {
        Ok(event) => event,
        Err(malformed) => {
            shared.stats.count(Outcome::Malformed);
            warn!(error = %malformed, "verified webhook body is not the documented json");
            return reply(StatusCode::BAD_REQUEST, json!({ "error": "malformed payload" }));
        }
    };
    let after = match &event {
        Event::Ping => {
            shared.stats.count(Outcome::Ignored);
            info!("webhook ping");
            return reply(StatusCode::OK, json!({ "ping": "ok" }));
        }
        Event::Trigger { after } => after.clone(),
        Event::Push(_) => match event.branch(&config.branch) {
            Some(pushed) => pushed.after.clone(),
            None => {
                shared.stats.count(Outcome::Ignored);
                debug!("webhook push of another ref, ignored");
                return reply(StatusCode::ACCEPTED, json!({ "triggered": false, "reason": "not the watched branch" }));
            }
        },
        Event::Other(kind) => {
            shared.stats.count(Outcome::Ignored);
            debug!(event = %kind, "webhook event not handled, ignored");
            return reply(StatusCode::ACCEPTED, json!({ "triggered": false, "reason": "not a push" }));
        }
    };
    shared.stats.count(Outcome::Accepted);
    info!(branch = %config.branch, after = after.as_deref().unwrap_or("-"), "webhook push of the watched branch");
    (shared.on_push)(Push { name, forge, branch: config.branch.clone(), after });
    reply(StatusCode::ACCEPTED, json!({ "triggered": true, "branch": config.branch }))
}

fn too_large(shared: &Shared) -> Response<Full<Bytes>> {
    shared.stats.count(Outcome::TooLarge);
    debug!(max = shared.config.max_body, "webhook body too large");
    closing(reply(StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": "body too large" })))
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Ends the connection after this response: the rest of the request body
/// was not read, so the connection cannot carry another request.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("github"));
        assert!(valid_name("my-repo_1.main"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(65)));
    }

    #[test]
    fn config_is_checked() {
        let good = HookConfig::new("s", "main");
        assert!(validate(&good).is_ok());
        assert!(matches!(validate(&HookConfig::new("", "main")), Err(ForgeError::EmptySecret)));
        assert!(validate(&HookConfig::new("s", "")).is_err());
        assert!(validate(&HookConfig { max_body: 0, ..good.clone() }).is_err());
        assert!(validate(&HookConfig { rate: crate::RateLimit { burst: 0, per_second: 1.0 }, ..good }).is_err());
    }
}
