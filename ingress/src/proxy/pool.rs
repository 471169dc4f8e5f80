//! Connections to backend endpoints: HTTP/1.1 over TCP, kept alive and
//! reused per endpoint address, and the exchange of one request on one.
//!
//! A connection goes back to the pool only once the response body it
//! carried has been read to its end ([`BackendBody`]); one whose body was
//! dropped halfway, that carried an upgrade, or whose backend said
//! `Connection: close`, is closed. An idle connection is kept for
//! [`IDLE_TIMEOUT`], at most [`MAX_IDLE_PER_ENDPOINT`] per address, and a
//! sweep (run by the server) closes the expired ones and those the
//! backend closed.
//!
//! A kept connection the backend closes as a request goes out (its idle
//! timeout) answers nothing. A request without a body and with an
//! idempotent method is then sent again on a new connection, as RFC 9110
//! §9.2.2 allows; any other fails with a 502.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};
use tokio::net::TcpStream;

use super::body::{BackendBody, GiveBack};
use super::exchange::{Conn, ExchangeError, Outgoing};

/// How long an idle backend connection is kept for reuse.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How many idle connections are kept per endpoint address.
pub(crate) const MAX_IDLE_PER_ENDPOINT: usize = 64;

/// The backend connections of one server worker.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<Idle>,
    connect_timeout: Duration,
}

#[derive(Debug, Default)]
struct Idle {
    closed: bool,
    by_endpoint: HashMap<SocketAddr, Vec<(Conn, Instant)>>,
}

/// Why a request could not be sent to an endpoint.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made; the request was not sent and is given
    /// back for the next endpoint.
    Connect(io::Error, Box<Outgoing>),
    /// The request was (maybe partly) sent and the exchange failed.
    Failed(ExchangeError),
}

impl Pool {
    pub(crate) fn new(connect_timeout: Duration) -> Pool {
        Pool { inner: Arc::new(Inner { idle: Mutex::default(), connect_timeout }) }
    }

    /// Sends `request` to `endpoint` on an idle connection if one is still
    /// open, else on a new one, and reads the response's head. The
    /// response's body hands the connection back once read; after an
    /// upgrade, or a request that asked for one, it is never reused.
    pub(crate) async fn send(&self, endpoint: SocketAddr, mut request: Outgoing) -> Result<Response<BackendBody>, SendError> {
        let idle = self.take_idle(endpoint);
        let mut reused = idle.is_some();
        let mut conn = match idle {
            Some(conn) => conn,
            None => match self.connect(endpoint).await {
                Ok(conn) => conn,
                Err(error) => return Err(SendError::Connect(error, Box::new(request))),
            },
        };
        loop {
            match conn.exchange(&mut request).await {
                Ok(head) => {
                    let reuse = head.keep_alive && !request.upgrade && head.response.status() != StatusCode::SWITCHING_PROTOCOLS;
                    let give_back = reuse.then(|| GiveBack { pool: self.clone(), endpoint });
                    let framing = head.framing;
                    return Ok(head.response.map(|()| BackendBody::new(conn, framing, give_back)));
                }
                // The kept connection closed under the request: once more
                // on a new one, if that is safe.
                Err(ExchangeError::Closed) if reused && request.retryable => {
                    reused = false;
                    conn = match self.connect(endpoint).await {
                        Ok(conn) => conn,
                        Err(error) => return Err(SendError::Connect(error, Box::new(request))),
                    };
                }
                Err(error) => return Err(SendError::Failed(error)),
            }
        }
    }

    fn take_idle(&self, endpoint: SocketAddr) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = idle.by_endpoint.get_mut(&endpoint)?;
        while let Some((conn, since)) = list.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.is_reusable() {
                return Some(conn);
            }
        }
        None
    }

    pub(crate) fn put(&self, endpoint: SocketAddr, conn: Conn) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.closed {
            return;
        }
        let list = idle.by_endpoint.entry(endpoint).or_default();
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push((conn, Instant::now()));
        }
    }

    /// Closes the idle connections that expired or that the backend closed.
    pub(crate) fn sweep(&self) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        idle.by_endpoint.retain(|_, list| {
            list.retain(|(conn, since)| since.elapsed() < IDLE_TIMEOUT && conn.is_reusable());
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

    async fn connect(&self, endpoint: SocketAddr) -> io::Result<Conn> {
        let timeout = self.inner.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(endpoint)).await {
            Ok(stream) => stream?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))),
        };
        stream.set_nodelay(true)?;
        Ok(Conn::new(stream))
    }
}
