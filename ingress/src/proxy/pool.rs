//! Connections to backend endpoints: HTTP/1.1 over TCP, kept alive and
//! reused per endpoint address.
//!
//! A connection goes back to the pool only once the response body it
//! carried has been read to its end ([`PooledBody`]); one whose body was
//! dropped halfway, or that carried an upgrade, is closed. An idle
//! connection is kept for [`IDLE_TIMEOUT`], at most [`MAX_IDLE_PER_ENDPOINT`]
//! per address, and a sweep (run by the server) closes the expired ones.
//! A pooled connection the backend has meanwhile closed gives the request
//! back unsent (hyper's `try_send_request`), so it goes on a fresh one.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// How long an idle backend connection is kept for reuse.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How many idle connections are kept per endpoint address.
pub(crate) const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// How long a pooled connection may take to be ready again once its last
/// response was read (it is usually at once).
const READY_TIMEOUT: Duration = Duration::from_secs(1);

/// The backend connections of one server.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<Idle>,
    connect_timeout: Duration,
    /// Connection tasks: owned by the server, on the worker's runtime.
    tasks: TaskTracker,
}

#[derive(Debug, Default)]
struct Idle {
    closed: bool,
    by_endpoint: HashMap<SocketAddr, Vec<(SendRequest<Incoming>, Instant)>>,
}

/// Why a request could not be sent to an endpoint.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made; the request was not sent and is given
    /// back for the next endpoint.
    Connect(io::Error, Box<Request<Incoming>>),
    /// The request was (maybe partly) sent and the exchange failed.
    Failed(hyper::Error),
}

impl Pool {
    pub(crate) fn new(connect_timeout: Duration, tasks: TaskTracker) -> Pool {
        Pool { inner: Arc::new(Inner { idle: Mutex::default(), connect_timeout, tasks }) }
    }

    /// Sends `request` to `endpoint` on an idle connection if one is still
    /// open, else on a new one. The response's body hands the connection
    /// back once read; for an upgrade, the connection is never reused.
    pub(crate) async fn send(&self, endpoint: SocketAddr, mut request: Request<Incoming>) -> Result<Response<PooledBody>, SendError> {
        let upgrade = request.headers().contains_key(hyper::header::UPGRADE);
        while let Some(mut sender) = self.take_idle(endpoint) {
            // Usually ready at once; right after its last response it may
            // take the connection's task a moment to notice.
            if !sender.is_ready() && !matches!(tokio::time::timeout(READY_TIMEOUT, sender.ready()).await, Ok(Ok(()))) {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(endpoint, sender, response, upgrade)),
                Err(mut error) => match error.take_message() {
                    // Closed before the request went out: try another.
                    Some(unsent) => request = unsent,
                    None => return Err(SendError::Failed(error.into_error())),
                },
            }
        }
        let mut sender = match self.connect(endpoint).await {
            Ok(sender) => sender,
            Err(error) => return Err(SendError::Connect(error, Box::new(request))),
        };
        match sender.try_send_request(request).await {
            Ok(response) => Ok(self.wrap(endpoint, sender, response, upgrade)),
            Err(mut error) => match error.take_message() {
                Some(unsent) => {
                    let error = io::Error::new(io::ErrorKind::ConnectionAborted, error.into_error());
                    Err(SendError::Connect(error, Box::new(unsent)))
                }
                None => Err(SendError::Failed(error.into_error())),
            },
        }
    }

    fn wrap(&self, endpoint: SocketAddr, sender: SendRequest<Incoming>, response: Response<Incoming>, upgrade: bool) -> Response<PooledBody> {
        let reuse = !upgrade && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS;
        let give_back = reuse.then(|| GiveBack { pool: self.clone(), endpoint, sender });
        let mut give_back = give_back;
        response.map(|body| {
            // A body that is already over hands the connection back now.
            if body.is_end_stream()
                && let Some(give_back) = give_back.take()
            {
                give_back.pool.put(give_back.endpoint, give_back.sender);
            }
            PooledBody { body, give_back }
        })
    }

    fn take_idle(&self, endpoint: SocketAddr) -> Option<SendRequest<Incoming>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = idle.by_endpoint.get_mut(&endpoint)?;
        while let Some((sender, since)) = list.pop() {
            if !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
        }
        None
    }

    fn put(&self, endpoint: SocketAddr, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.closed {
            return;
        }
        let list = idle.by_endpoint.entry(endpoint).or_default();
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push((sender, Instant::now()));
        }
    }

    /// Closes the idle connections that expired or that the backend closed.
    pub(crate) fn sweep(&self) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.by_endpoint.retain(|_, list| {
            list.retain(|(sender, since)| !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT);
            !list.is_empty()
        });
    }

    /// Closes every idle connection and keeps none from now on (shutdown).
    pub(crate) fn close(&self) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.closed = true;
        idle.by_endpoint.clear();
    }

    /// How many idle connections the pool holds (for tests and logs).
    pub(crate) fn idle_count(&self) -> usize {
        let idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.by_endpoint.values().map(Vec::len).sum()
    }

    async fn connect(&self, endpoint: SocketAddr) -> io::Result<SendRequest<Incoming>> {
        let timeout = self.inner.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(endpoint)).await {
            Ok(stream) => stream?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))),
        };
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| io::Error::new(io::ErrorKind::ConnectionAborted, error))?;
        // Ends when the backend closes, or when the worker's runtime is
        // dropped (the server stopped).
        self.inner.tasks.spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                debug!(%endpoint, %error, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Hands a backend connection back to its pool.
#[derive(Debug)]
struct GiveBack {
    pool: Pool,
    endpoint: SocketAddr,
    sender: SendRequest<Incoming>,
}

/// A backend's response body, streamed through as it arrives; its
/// connection goes back to the pool when the body ends, and is closed if
/// the body is dropped before.
#[derive(Debug)]
pub(crate) struct PooledBody {
    body: Incoming,
    give_back: Option<GiveBack>,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        let finished = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            // An error: the connection is not reusable.
            Poll::Ready(Some(Err(_))) => {
                this.give_back = None;
                false
            }
            Poll::Pending => false,
        };
        if finished && let Some(give_back) = this.give_back.take() {
            give_back.pool.put(give_back.endpoint, give_back.sender);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
