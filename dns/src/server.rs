//! Starting and stopping the server: binds every listen address (UDP and
//! TCP) before anything runs, so a bind error is returned, then serves
//! until shut down or dropped: TCP on the caller's tokio runtime, and each
//! UDP socket (one per core, sharing the address) on a thread of its own
//! with a single-threaded runtime, as knotd has a thread per UDP worker.
//! On the caller's multi-threaded runtime two receive loops could land on
//! one worker thread while the other idled; dnsperf's runs then spread
//! from 0.93 to 1.03 of knotd's rate (docs/benchmarks.md, "Issue 21").
//!
//! The zone lives in an `ArcSwap`: [`DnsHandle::set_zone`] replaces the
//! whole snapshot at once, and a query holds the snapshot it started with,
//! so it sees the old zone or the new one, never a mix.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::forward::Forwarder;
use crate::handler::Handler;
use crate::{DnsConfig, DnsError, Zone};

/// How long a TCP connection may stay idle between queries.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`DnsHandle::shutdown`] waits for the server to stop before it
/// aborts it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The cluster DNS server. See [`DnsServer::start`].
#[derive(Debug)]
pub struct DnsServer;

impl DnsServer {
    /// Binds every address of `config.listen` over UDP and TCP and starts
    /// answering on the current tokio runtime, with an empty zone (the
    /// apex and its SOA) until [`DnsHandle::set_zone`] gives it one.
    ///
    /// Fails, with nothing left running, if there is no runtime, the
    /// domain is invalid, or an address cannot be bound.
    pub fn start(config: DnsConfig) -> Result<DnsHandle, DnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DnsError::NoRuntime)?;
        if config.listen.is_empty() {
            return Err(DnsError::NoListenAddress);
        }
        let first = Zone::empty(&config.domain)?.with_ttl(config.ttl).with_serial(1);
        let domain = first.domain();
        let zone = Arc::new(ArcSwap::from_pointee(first));

        let mut sockets = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            sockets.push(bind_pair(addr)?);
        }
        let local_addrs: Vec<SocketAddr> = sockets.iter().map(|bound| bound.local).collect();

        let _entered = runtime.enter();
        let forwarder = Forwarder::new(&config.upstreams, config.upstream_timeout).map(Arc::new);
        let handler = Handler { zone: Arc::clone(&zone), forwarder };
        // UDP: our own receive loops (udp.rs); TCP: hickory's ServerFuture.
        let mut tcp_server = hickory_server::ServerFuture::new(handler.clone());
        let cancel = tcp_server.shutdown_token().clone();
        let handler = Arc::new(handler);
        let span = info_span!("dns", domain = %domain, listen = ?local_addrs);
        let mut tasks = JoinSet::new();
        // If anything below fails, the UDP threads already started stop.
        let started = cancel.clone().drop_guard();
        for Bound { udp, tcp, local } in sockets {
            let bind_error = |protocol| move |source| DnsError::Bind { addr: local, protocol, source };
            for socket in udp {
                socket.set_nonblocking(true).map_err(bind_error("udp"))?;
                let worker = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DnsError::Runtime)?;
                let registered = {
                    let _entered = worker.enter();
                    tokio::net::UdpSocket::from_std(socket)
                };
                let worker = Worker(Some(worker));
                let socket = registered.map_err(bind_error("udp"))?;
                let serve = crate::udp::serve(socket, Arc::clone(&handler), cancel.clone()).instrument(span.clone());
                let (done, stopped) = tokio::sync::oneshot::channel::<()>();
                std::thread::Builder::new()
                    .name(format!("dns-udp-{}", tasks.len()))
                    .spawn(move || {
                        let mut worker = worker;
                        if let Some(runtime) = worker.0.take() {
                            runtime.block_on(serve);
                            // Forwards still waiting upstream are dropped
                            // with it.
                            drop(runtime);
                        }
                        drop(done);
                    })
                    .map_err(DnsError::Runtime)?;
                // The handle waits for the thread through this task.
                tasks.spawn_on(
                    async move {
                        let _ = stopped.await;
                    },
                    &runtime,
                );
            }
            tcp_server.register_listener_std(tcp, TCP_IDLE_TIMEOUT).map_err(bind_error("tcp"))?;
        }
        tasks.spawn_on(
            async move {
                if let Err(error) = tcp_server.block_until_done().await {
                    warn!(%error, "the dns server's tcp listeners stopped");
                }
            }
            .instrument(span),
            &runtime,
        );
        started.disarm();
        Ok(DnsHandle { zone, domain, ttl: config.ttl, serial: AtomicU32::new(1), local_addrs, cancel, tasks })
    }
}

/// A UDP worker's runtime until its thread takes it. Dropped here only if
/// the server did not start, maybe inside the caller's runtime, where a
/// runtime must be shut down in the background.
struct Worker(Option<tokio::runtime::Runtime>);

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The sockets of one listen address.
struct Bound {
    /// One per core, sharing the address with `SO_REUSEPORT`, so that the
    /// kernel spreads queries over as many receive loops.
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
    local: SocketAddr,
}

/// Binds UDP on `addr`, then TCP on the same address and port (for port 0,
/// the port UDP got, trying again if TCP has it in use), then the other
/// UDP sockets of the group.
fn bind_pair(addr: SocketAddr) -> Result<Bound, DnsError> {
    const ATTEMPTS: usize = 16;
    let sockets = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let udp_error = |addr| move |source| DnsError::Bind { addr, protocol: "udp", source };
    for attempt in 1..=ATTEMPTS {
        let first = bind_udp(addr).map_err(udp_error(addr))?;
        let local = first.local_addr().map_err(udp_error(addr))?;
        match TcpListener::bind(local) {
            Ok(tcp) => {
                let mut udp = vec![first];
                for _ in 1..sockets {
                    udp.push(bind_udp(local).map_err(udp_error(local))?);
                }
                return Ok(Bound { udp, tcp, local });
            }
            Err(error) if addr.port() == 0 && attempt < ATTEMPTS && error.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(source) => return Err(DnsError::Bind { addr: local, protocol: "tcp", source }),
        }
    }
    unreachable!("the last attempt returns")
}

/// A UDP socket on `addr` that others of this user may share
/// (`SO_REUSEPORT`).
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A running DNS server: swap its zone, ask where it listens, stop it.
/// Dropping the handle stops the server too (without waiting).
#[derive(Debug)]
pub struct DnsHandle {
    zone: Arc<ArcSwap<Zone>>,
    domain: String,
    ttl: u32,
    serial: AtomicU32,
    local_addrs: Vec<SocketAddr>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl DnsHandle {
    /// The addresses the server answers on (UDP and TCP each), in the
    /// order of `DnsConfig::listen`, with the ports actually bound.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Replaces the served zone with `zone`, atomically: a query sees the
    /// old snapshot or this one. Records get the configured TTL and the SOA
    /// a serial one higher than the last.
    ///
    /// Fails if `zone` was built for another domain than the server's.
    pub fn set_zone(&self, zone: Zone) -> Result<(), DnsError> {
        let zone_domain = zone.domain();
        if zone_domain != self.domain {
            return Err(DnsError::DomainMismatch { zone: zone_domain, server: self.domain.clone() });
        }
        let serial = self.serial.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        debug!(serial, names = zone.name_count(), skipped = zone.skipped().len(), "serving a new zone");
        self.zone.store(Arc::new(zone.with_ttl(self.ttl).with_serial(serial)));
        Ok(())
    }

    /// The snapshot being served now.
    pub fn zone(&self) -> Arc<Zone> {
        self.zone.load_full()
    }

    /// Stops accepting queries and waits (at most a few seconds, then
    /// aborts) until the server has stopped and its sockets are closed.
    /// Queries in flight are dropped unanswered.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!("the dns server did not stop in {DRAIN_TIMEOUT:?}; aborting it");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

impl Drop for DnsHandle {
    fn drop(&mut self) {
        // Dropping the JoinSet aborts what is still running.
        self.cancel.cancel();
    }
}
