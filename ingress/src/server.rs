//! Starting and stopping the server: binds every listen address before
//! anything runs, so a bind error is returned, then serves on worker
//! threads of its own until shut down or dropped.
//!
//! Each worker is one thread with a single-threaded tokio runtime and its
//! own listener on every address (`SO_REUSEPORT`, so the kernel spreads
//! connections over the workers), its own backend connection pool, and
//! every task of its connections: a proxied request, its exchange with the
//! backend and the response coming back all stay in the client
//! connection's task, as in an nginx worker. On a shared multi-threaded
//! runtime each request crossed between the client connection's task and
//! a backend connection's task, often across threads, and served 0.6×
//! nginx's requests/s (docs/benchmarks.md, "Issue 21").
//!
//! The table lives in an `ArcSwap` all workers share:
//! [`IngressHandle::set_table`] replaces the whole snapshot at once, and
//! each request (and TLS handshake) holds the snapshot it started with, so
//! requests in flight finish on the old table while the next ones see the
//! new.
//!
//! Tasks: the accept loops (and the pools' sweeps) run until `graceful`;
//! connections, HTTP/2 streams and upgrade tunnels are spawned on a
//! `TaskTracker` (shared by the workers, each task on its own worker's
//! runtime). Two tokens stop them: `graceful` stops accepting
//! and lets connections finish what they are doing, `stop` ends everything
//! at once; a worker's thread ends, dropping whatever it still runs, when
//! the tracker is closed and empty or at `stop`.

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
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{Instrument, Span, debug, info_span, warn};

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

/// One worker before its thread starts: its runtime, and its listeners
/// already registered with that runtime.
struct Worker {
    /// Taken by the worker's thread; dropped here only if the server did
    /// not start, maybe inside the caller's runtime, where a runtime must
    /// be shut down in the background.
    runtime: Option<tokio::runtime::Runtime>,
    listeners: Vec<(TcpListener, SocketAddr, &'static str)>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl IngressServer {
    /// Binds every address of `config.http` and `config.https`, once per
    /// worker (`config.workers`), and starts serving on the workers'
    /// threads, with an empty table (every request a 404, every TLS
    /// handshake refused) until [`IngressHandle::set_table`] gives it one.
    /// Needs no runtime of the caller's.
    ///
    /// Fails, with nothing left running, if there is no address, an
    /// address cannot be bound, or a worker's runtime cannot be made.
    pub fn start(config: IngressConfig) -> Result<IngressHandle, IngressError> {
        if config.http.is_empty() && config.https.is_empty() {
            return Err(IngressError::NoListenAddress);
        }
        let workers = config.workers.max(1);
        // The first worker binds each address as asked (a port of 0 picks
        // one); the others bind the port it got.
        let mut bound: Vec<Vec<(std::net::TcpListener, SocketAddr, &'static str)>> = (0..workers).map(|_| Vec::new()).collect();
        let (mut http_addrs, mut https_addrs) = (Vec::new(), Vec::new());
        for (addrs, scheme) in [(&config.http, "http"), (&config.https, "https")] {
            for &addr in addrs {
                let mut local = addr;
                for listeners in &mut bound {
                    let listener = bind(local, workers > 1).map_err(|source| IngressError::Bind { addr, scheme, source })?;
                    local = listener.local_addr().map_err(|source| IngressError::Bind { addr, scheme, source })?;
                    listeners.push((listener, local, scheme));
                }
                if scheme == "https" { https_addrs.push(local) } else { http_addrs.push(local) }
            }
        }
        let mut ready = Vec::with_capacity(workers);
        for listeners in bound {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(IngressError::Runtime)?;
            // Dropped with the worker (or with `ready` on an error below).
            let mut worker = Worker { runtime: Some(runtime), listeners: Vec::new() };
            let registered = {
                let Some(runtime) = &worker.runtime else { unreachable!("just made") };
                let _entered = runtime.enter();
                let mut registered = Vec::with_capacity(listeners.len());
                for (listener, local, scheme) in listeners {
                    let listener = TcpListener::from_std(listener).map_err(|source| IngressError::Bind { addr: local, scheme, source })?;
                    registered.push((listener, local, scheme));
                }
                registered
            };
            worker.listeners = registered;
            ready.push(worker);
        }

        let table = Arc::new(ArcSwap::from_pointee(IngressTable::empty(crate::DEFAULT_CLASS)));
        let tls = TlsAcceptor::from(Arc::new(tls::server_config(table.clone())?));
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let graceful = CancellationToken::new();
        let listening = TaskTracker::new();
        let running = TaskTracker::new();
        let parent = Span::current();
        let mut pools = Vec::with_capacity(workers);
        for (index, worker) in ready.into_iter().enumerate() {
            let pool = Pool::new(config.connect_timeout);
            pools.push(pool.clone());
            let shared = Arc::new(Shared { table: table.clone(), pool, response_timeout: config.response_timeout, tasks: tasks.clone() });
            let mut builder = auto::Builder::new(TrackedExecutor(tasks.clone()));
            // `half_close`: while a request is in flight, hyper does not
            // read ahead on the client's connection to notice it closing.
            // That read made it allocate a new 8 KiB buffer per request,
            // the request still holding the old one (docs/benchmarks.md,
            // "Ingress"). A client that goes away is noticed when its
            // answer is written; a client that only shuts down its sending
            // side still gets its answer, as RFC 9112 §9.6 allows.
            builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout).keep_alive(true).half_close(true);
            builder.http2().timer(TokioTimer::new());
            // A token of the worker's own: every connection polls it, and
            // polling takes its lock, which the workers then do not share.
            let serving =
                Arc::new(Serving { builder, shared, graceful: graceful.child_token(), stop: stop.clone(), handshake_timeout: config.header_read_timeout });
            let span = info_span!(parent: &parent, "ingress_worker", worker = index);
            let tokens = (listening.token(), running.token());
            let tls = tls.clone();
            let spawned = std::thread::Builder::new().name(format!("ingress-{index}")).spawn(move || worker.run(serving, tls, tokens, span));
            if let Err(error) = spawned {
                // The workers already started close their listeners and end.
                graceful.cancel();
                stop.cancel();
                return Err(IngressError::Runtime(error));
            }
        }
        listening.close();
        running.close();
        Ok(IngressHandle { table, tasks, pools, http_addrs, https_addrs, graceful, stop, listening, running, drain_timeout: config.drain_timeout })
    }
}

impl Worker {
    /// The worker's thread: its accept loops and pool sweep until
    /// `graceful`, then its connections until every connection of the
    /// server is done (the tracker closed by `shutdown`) or `stop`.
    fn run(mut self, serving: Arc<Serving>, tls: TlsAcceptor, tokens: (TaskTrackerToken, TaskTrackerToken), span: Span) {
        let (listening, _running) = tokens;
        let Some(runtime) = self.runtime.take() else { return };
        let listeners = std::mem::take(&mut self.listeners);
        runtime.block_on(
            async move {
                let mut loops = JoinSet::new();
                for (listener, local, scheme) in listeners {
                    let acceptor = (scheme == "https").then(|| tls.clone());
                    let span = info_span!("ingress", scheme, listen = %local);
                    loops.spawn(accept_loop(listener, local, acceptor, serving.clone()).instrument(span));
                }
                let pool = serving.shared.pool.clone();
                let graceful = serving.graceful.clone();
                loops.spawn(async move {
                    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
                    loop {
                        tokio::select! {
                            _ = interval.tick() => pool.sweep(),
                            () = graceful.cancelled() => break,
                        }
                    }
                });
                while loops.join_next().await.is_some() {}
                // Every listener of this worker is closed.
                drop(listening);
                tokio::select! {
                    () = serving.shared.tasks.wait() => {}
                    () = serving.stop.cancelled() => {}
                }
            }
            .instrument(span),
        );
        // Dropping the runtime drops whatever tasks it still had.
        drop(runtime);
    }
}

/// A listening socket on `addr` with a deep backlog and `SO_REUSEADDR`
/// (so a restarted daemon can bind again at once), and `SO_REUSEPORT`
/// when several workers listen on the address (the kernel lets only
/// sockets of the same user share it).
fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
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
    /// Ends the worker's thread, and with its runtime every task on it.
    stop: CancellationToken,
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
        let peer_ip = hyper::header::HeaderValue::from_str(&peer.ip().to_string()).expect("an IP address is a header value");
        let local_port = hyper::header::HeaderValue::from(local.port());
        let client = Client { peer, proto, peer_ip, local_port, deadline: Default::default() };
        let tasks = serving.shared.tasks.clone();
        let serving = serving.clone();
        let tls = tls.clone();
        let connection = async move {
            match tls {
                None => serve(stream, client, &serving).await,
                Some(acceptor) => serve_tls(stream, acceptor, client, &serving).await,
            }
        };
        tasks.spawn(connection.in_current_span());
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
    let peer = client.peer;
    let client = Arc::new(client);
    let service = hyper::service::service_fn(move |request| proxy::handle(shared.clone(), client.clone(), request));
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
        debug!(%peer, %error, "client connection ended with an error");
    }
}

/// A running ingress server: swap its table, ask where it listens, stop
/// it. Dropping the handle stops the server too, without waiting.
#[derive(Debug)]
pub struct IngressHandle {
    table: Arc<ArcSwap<IngressTable>>,
    tasks: TaskTracker,
    pools: Vec<Pool>,
    http_addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    graceful: CancellationToken,
    stop: CancellationToken,
    /// Empty once every worker's listeners are closed.
    listening: TaskTracker,
    /// Empty once every worker's thread has ended.
    running: TaskTracker,
    drain_timeout: Duration,
}

impl IngressHandle {
    /// Replaces the served table with `table`, atomically: a request or
    /// TLS handshake sees the old snapshot or this one, never a mix, and
    /// requests in flight finish on the one they started with.
    pub fn set_table(&self, table: IngressTable) {
        debug!(rules = table.rule_count(), backends = table.backends().len(), certificates = table.certificate_count(), "serving a new ingress table");
        self.table.store(Arc::new(table));
    }

    /// The table being served now.
    pub fn table(&self) -> Arc<IngressTable> {
        self.table.load_full()
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

    /// How many idle backend connections are kept for reuse now, over
    /// every worker.
    pub fn idle_backend_connections(&self) -> usize {
        self.pools.iter().map(Pool::idle_count).sum()
    }

    /// Stops accepting connections and closes the listeners, lets the
    /// requests in flight finish (on the table they started with) for up to
    /// `IngressConfig::drain_timeout`, then closes whatever is left
    /// (upgraded connections included) and waits for the workers to stop.
    pub async fn shutdown(self) {
        self.graceful.cancel();
        self.listening.wait().await;
        for pool in &self.pools {
            pool.close();
        }
        let tasks = self.tasks.clone();
        tasks.close();
        if tokio::time::timeout(self.drain_timeout, tasks.wait()).await.is_err() {
            warn!(left = tasks.len(), "requests still in flight after {:?}; closing their connections", self.drain_timeout);
            self.stop.cancel();
            if tokio::time::timeout(STOP_TIMEOUT, tasks.wait()).await.is_err() {
                warn!(left = tasks.len(), "ingress tasks did not stop");
            }
        }
        self.stop.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.running.wait()).await.is_err() {
            warn!("ingress workers did not stop");
        }
    }
}

impl Drop for IngressHandle {
    fn drop(&mut self) {
        // The tokens end the accept loops (closing the listeners) and
        // every connection task; each worker's thread then ends.
        self.graceful.cancel();
        self.stop.cancel();
        for pool in &self.pools {
            pool.close();
        }
    }
}
