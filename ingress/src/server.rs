//! Starting and stopping the server: binds every listen address before
//! anything runs, so a bind error is returned, then serves on the caller's
//! tokio runtime until shut down or dropped.
//!
//! The table lives in an `ArcSwap`: [`IngressHandle::set_table`] replaces
//! the whole snapshot at once, and each request (and TLS handshake) holds
//! the snapshot it started with, so requests in flight finish on the old
//! table while the next ones see the new.
//!
//! Tasks: the accept loops (and the pool's sweep) are in a `JoinSet` the
//! handle owns; connections, HTTP/2 streams, upgrade tunnels and backend
//! connections are spawned on a `TaskTracker` (a JoinSet that reaps
//! itself, without a lock per connection). Two tokens stop them: `graceful`
//! stops accepting and lets connections finish what they are doing,
//! `stop` ends everything at once.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, warn};

use crate::proxy::{self, Client, Pool, Shared};
use crate::{IngressConfig, IngressError, IngressTable, tls};

/// The listen backlog of each listener.
const BACKLOG: i32 = 1024;
/// How often idle backend connections are checked for expiry.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// After the drain timeout, how long shutdown waits for the forced stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the accept loop pauses after an accept error (out of file
/// descriptors, say) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The ingress server. See [`IngressServer::start`].
#[derive(Debug)]
pub struct IngressServer;

impl IngressServer {
    /// Binds every address of `config.http` and `config.https` and starts
    /// serving on the current tokio runtime, with an empty table (every
    /// request a 404, every TLS handshake refused) until
    /// [`IngressHandle::set_table`] gives it one.
    ///
    /// Fails, with nothing left running, if there is no runtime, no
    /// address, or an address cannot be bound.
    pub fn start(config: IngressConfig) -> Result<IngressHandle, IngressError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| IngressError::NoRuntime)?;
        if config.http.is_empty() && config.https.is_empty() {
            return Err(IngressError::NoListenAddress);
        }
        let mut listeners = Vec::new();
        for (addrs, scheme) in [(&config.http, "http"), (&config.https, "https")] {
            for &addr in addrs {
                let listener = bind(addr).map_err(|source| IngressError::Bind { addr, scheme, source })?;
                let local = listener.local_addr().map_err(|source| IngressError::Bind { addr, scheme, source })?;
                listeners.push((listener, local, scheme));
            }
        }
        let table = Arc::new(ArcSwap::from_pointee(IngressTable::empty(crate::DEFAULT_CLASS)));
        let tls = TlsAcceptor::from(Arc::new(tls::server_config(table.clone())?));

        let _entered = runtime.enter();
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let graceful = CancellationToken::new();
        let pool = Pool::new(config.connect_timeout, tasks.clone(), stop.clone());
        let shared = Arc::new(Shared { table, pool, response_timeout: config.response_timeout, tasks: tasks.clone(), stop: stop.clone() });

        let mut builder = auto::Builder::new(TrackedExecutor(tasks.clone()));
        builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let serving = Arc::new(Serving { builder, shared: shared.clone(), graceful: graceful.clone(), handshake_timeout: config.header_read_timeout });

        let mut loops = JoinSet::new();
        let (mut http_addrs, mut https_addrs) = (Vec::new(), Vec::new());
        for (listener, local, scheme) in listeners {
            let listener = TcpListener::from_std(listener).map_err(|source| IngressError::Bind { addr: local, scheme, source })?;
            let acceptor = if scheme == "https" {
                https_addrs.push(local);
                Some(tls.clone())
            } else {
                http_addrs.push(local);
                None
            };
            let span = info_span!("ingress", scheme, listen = %local);
            loops.spawn_on(accept_loop(listener, local, acceptor, serving.clone()).instrument(span), &runtime);
        }
        let pool = shared.pool.clone();
        let sweep_stop = graceful.clone();
        loops.spawn_on(
            async move {
                let mut interval = tokio::time::interval(SWEEP_INTERVAL);
                loop {
                    tokio::select! {
                        _ = interval.tick() => pool.sweep(),
                        () = sweep_stop.cancelled() => break,
                    }
                }
            },
            &runtime,
        );
        Ok(IngressHandle { shared, http_addrs, https_addrs, graceful, loops, drain_timeout: config.drain_timeout })
    }
}

/// A listening socket on `addr` with a deep backlog and `SO_REUSEADDR`
/// (so a restarted daemon can bind again at once).
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Runs hyper's tasks (HTTP/2 streams) on the server's tracker, so that
/// they are owned and stopped with it.
#[derive(Clone, Debug)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// What the accept loops share.
struct Serving {
    builder: auto::Builder<TrackedExecutor>,
    shared: Arc<Shared>,
    graceful: CancellationToken,
    handshake_timeout: Duration,
}

async fn accept_loop(listener: TcpListener, local: SocketAddr, tls: Option<TlsAcceptor>, serving: Arc<Serving>) {
    let proto = if tls.is_some() { "https" } else { "http" };
    loop {
        let accepted = tokio::select! {
            () = serving.graceful.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accept failed; pausing");
                tokio::select! {
                    () = serving.graceful.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let client = Client { peer, local, proto };
        let tasks = serving.shared.tasks.clone();
        let stop = serving.shared.stop.clone();
        let serving = serving.clone();
        let tls = tls.clone();
        let connection = async move {
            match tls {
                None => serve(stream, client, &serving).await,
                Some(acceptor) => serve_tls(stream, acceptor, client, &serving).await,
            }
        };
        tasks.spawn(
            async move {
                tokio::select! {
                    () = connection => {}
                    () = stop.cancelled() => {}
                }
            }
            .in_current_span(),
        );
    }
}

async fn serve_tls(stream: TcpStream, acceptor: TlsAcceptor, client: Client, serving: &Serving) {
    match tokio::time::timeout(serving.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve(stream, client, serving).await,
        Ok(Err(error)) => debug!(peer = %client.peer, %error, "tls handshake failed"),
        Err(_) => debug!(peer = %client.peer, "tls handshake timed out"),
    }
}

/// Serves HTTP on one client connection until it closes, or until a
/// graceful shutdown lets its request in flight finish.
async fn serve<I>(io: I, client: Client, serving: &Serving)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = serving.shared.clone();
    let service = hyper::service::service_fn(move |request| proxy::handle(shared.clone(), client, request));
    let connection = serving.builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = serving.graceful.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(peer = %client.peer, %error, "client connection ended with an error");
    }
}

/// A running ingress server: swap its table, ask where it listens, stop
/// it. Dropping the handle stops the server too, without waiting.
#[derive(Debug)]
pub struct IngressHandle {
    shared: Arc<Shared>,
    http_addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    graceful: CancellationToken,
    loops: JoinSet<()>,
    drain_timeout: Duration,
}

impl IngressHandle {
    /// Replaces the served table with `table`, atomically: a request or
    /// TLS handshake sees the old snapshot or this one, never a mix, and
    /// requests in flight finish on the one they started with.
    pub fn set_table(&self, table: IngressTable) {
        debug!(rules = table.rule_count(), backends = table.backends().len(), certificates = table.certificate_count(), "serving a new ingress table");
        self.shared.table.store(Arc::new(table));
    }

    /// The table being served now.
    pub fn table(&self) -> Arc<IngressTable> {
        self.shared.table.load_full()
    }

    /// Every address the server listens on, HTTP first then HTTPS, each in
    /// the order of the configuration, with the ports actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.http_addrs.iter().chain(&self.https_addrs).copied().collect()
    }

    /// The plain HTTP addresses, in the order of `IngressConfig::http`.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// The HTTPS addresses, in the order of `IngressConfig::https`.
    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    /// How many idle backend connections are kept for reuse now.
    pub fn idle_backend_connections(&self) -> usize {
        self.shared.pool.idle_count()
    }

    /// Stops accepting connections and closes the listeners, lets the
    /// requests in flight finish (on the table they started with) for up to
    /// `IngressConfig::drain_timeout`, then closes whatever is left
    /// (upgraded connections included) and waits for it to stop.
    pub async fn shutdown(mut self) {
        self.graceful.cancel();
        while self.loops.join_next().await.is_some() {}
        self.shared.pool.close();
        let tasks = self.shared.tasks.clone();
        tasks.close();
        if tokio::time::timeout(self.drain_timeout, tasks.wait()).await.is_err() {
            warn!(left = tasks.len(), "requests still in flight after {:?}; closing their connections", self.drain_timeout);
            self.shared.stop.cancel();
            if tokio::time::timeout(STOP_TIMEOUT, tasks.wait()).await.is_err() {
                warn!(left = tasks.len(), "ingress tasks did not stop");
            }
        }
        self.shared.stop.cancel();
    }
}

impl Drop for IngressHandle {
    fn drop(&mut self) {
        // Dropping the JoinSet aborts the accept loops (closing the
        // listeners); the tokens end every connection task.
        self.graceful.cancel();
        self.shared.stop.cancel();
        self.shared.pool.close();
    }
}
