//! The benchmark's data paths, one process each (run by `bench/proxy.sh`):
//!
//! - `kernel`: the crate's [`Proxy`], nftables DNAT;
//! - `userspace`: the candidate it was measured against, a tokio proxy
//!   that accepts on each frontend, connects to a backend (in turn), and
//!   copies both ways with `splice(2)` through a pipe (no copy into user
//!   memory). TCP only: TCP decided the choice (docs/benchmarks.md);
//! - `apply-latency`: how long `Proxy::apply` takes for tables of growing
//!   size.
//!
//! `dataplane MODE key=value...`; `kernel` and `userspace` print `ready`
//! and serve until their standard input closes.

use std::collections::BTreeMap;
use std::io::{BufRead, ErrorKind};
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use driftless_proxy::{Protocol, Proxy, ProxyConfig, ServicePort, ServiceTable};
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("usage: dataplane kernel|userspace|apply-latency key=value...")?;
    let options: BTreeMap<String, String> = args.filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect();
    let get = |key: &str| options.get(key).cloned().ok_or_else(|| format!("missing {key}="));
    let list = |key: &str| -> Result<Vec<SocketAddrV4>, Box<dyn std::error::Error>> {
        get(key)?.split(',').map(|a| a.parse().map_err(|e| format!("{key}: {a}: {e}").into())).collect()
    };
    match mode.as_str() {
        "kernel" => {
            let mut config = ProxyConfig::new(get("service_cidr")?.parse()?, get("pod_cidr")?.parse()?, get("bridge")?);
            config.table = get("table").unwrap_or_else(|_| "driftless_bench".into());
            if let Ok(addresses) = get("node_addresses") {
                config.node_addresses = addresses.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            let mut proxy = Proxy::start(config)?;
            let port = ServicePort {
                name: "bench/web:http".into(),
                protocol: Protocol::Tcp,
                frontends: list("frontends")?.into_iter().map(SocketAddr::from).collect(),
                backends: list("backends")?.into_iter().map(SocketAddr::from).collect(),
                session_affinity: None,
            };
            proxy.apply(&ServiceTable { peers: Vec::new(), ports: vec![port] })?;
            serve_until_stdin_closes();
            proxy.shutdown()?;
        }
        "userspace" => {
            let frontends = list("frontends")?;
            let backends = list("backends")?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async move {
                let next = Arc::new(AtomicUsize::new(0));
                let backends = Arc::new(backends);
                let mut tasks = tokio::task::JoinSet::new();
                for frontend in frontends {
                    let listener = TcpListener::bind(frontend).await?;
                    let (next, backends) = (next.clone(), backends.clone());
                    tasks.spawn(accept_loop(listener, backends, next));
                }
                let stdin = tokio::task::spawn_blocking(serve_until_stdin_closes);
                tokio::select! {
                    _ = stdin => {},
                    _ = tasks.join_next() => {},
                }
                tasks.shutdown().await;
                Ok::<_, std::io::Error>(())
            })?;
        }
        "apply-latency" => {
            let mut config = ProxyConfig::new(get("service_cidr")?.parse()?, get("pod_cidr")?.parse()?, get("bridge")?);
            config.table = "driftless_bench_apply".into();
            if let Ok(nft) = get("nft") {
                config.nft = nft.into();
            }
            let sizes: Vec<usize> = get("sizes").unwrap_or_else(|_| "10,100,1000,5000".into()).split(',').map(str::parse).collect::<Result<_, _>>()?;
            apply_latency(config, &sizes)?;
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

fn serve_until_stdin_closes() {
    println!("ready");
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        line.clear();
    }
}

// === userspace candidate ===

async fn accept_loop(listener: TcpListener, backends: Arc<Vec<SocketAddrV4>>, next: Arc<AtomicUsize>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                connections.spawn(async move {
                    let Ok(upstream) = TcpStream::connect(backend).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let _ = tokio::try_join!(pump(&client, &upstream), pump(&upstream, &client));
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Moves bytes from `from` to `to` through a pipe with `splice(2)` until
/// `from` reaches end of file, then shuts down `to`'s write side.
async fn pump(from: &TcpStream, to: &TcpStream) -> std::io::Result<()> {
    let (pipe_out, pipe_in) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket.
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || Ok(rustix::pipe::splice(from.as_fd(), None, &pipe_in, None, 1 << 16, flags)?)) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if filled == 0 {
            let _ = rustix::net::shutdown(to.as_fd(), rustix::net::Shutdown::Write);
            return Ok(());
        }
        let mut left = filled;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || Ok(rustix::pipe::splice(&pipe_out, None, to.as_fd(), None, left, flags)?)) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

// === apply latency ===

fn apply_latency(config: ProxyConfig, sizes: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    let hosts: Vec<_> = config.service_cidr.hosts().collect();
    let pods: Vec<_> = config.pod_cidr.hosts().skip(1).collect();
    println!("| service ports (3 backends each) | first apply | one port's backends changed | unchanged (no nft run) |");
    println!("|---|---|---|---|");
    for &n in sizes {
        let mut proxy = Proxy::start(config.clone())?;
        let mut ports: Vec<ServicePort> = (0..n)
            .map(|i| ServicePort {
                name: format!("bench/svc-{i}:http"),
                protocol: Protocol::Tcp,
                frontends: vec![SocketAddr::from((hosts[i % hosts.len()], 1000 + (i / hosts.len()) as u16))],
                backends: (0..3).map(|b| SocketAddr::from((pods[(i * 3 + b) % pods.len()], 8080 + ((i * 3 + b) / pods.len()) as u16))).collect(),
                session_affinity: None,
            })
            .collect();
        let time = |proxy: &mut Proxy, ports: &[ServicePort]| -> Result<Duration, Box<dyn std::error::Error>> {
            let started = Instant::now();
            proxy.apply(&ServiceTable { peers: Vec::new(), ports: ports.to_vec() })?;
            Ok(started.elapsed())
        };
        let first = time(&mut proxy, &ports)?;
        let mut changed = Vec::new();
        for round in 0..5u16 {
            ports[n / 2].backends[0].set_port(9000 + round);
            changed.push(time(&mut proxy, &ports)?);
        }
        changed.sort();
        let same = time(&mut proxy, &ports)?;
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        println!("| {n} | {} | {} (median of 5) | {} |", ms(first), ms(changed[2]), ms(same));
        proxy.shutdown()?;
    }
    Ok(())
}
