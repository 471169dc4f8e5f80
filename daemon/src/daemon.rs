//! `driftless up`: the daemon. It opens the store, sets up the node
//! (bridge, routes, runtime), registers the Node, starts the controllers,
//! the node agent, the sync loop and the API, and runs until SIGTERM or
//! SIGINT. On the way out it stops taking work, lets reconciles in flight
//! finish (bounded), and leaves pods running: the next daemon on the same
//! data folder adopts them (`driftless reset` stops them for good).

pub(crate) mod agent;
mod config;
mod forge;
mod images;
mod network;
mod node;
mod peers;
pub(crate) mod pki;
mod rollback;
pub mod writes;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use driftless_api::{ApiState, SOCKET};
use driftless_controllers::Context;
use driftless_controllers::cronjob::CronJobController;
use driftless_controllers::daemonset::DaemonSetController;
use driftless_controllers::deployment::DeploymentController;
use driftless_controllers::endpoints::EndpointsController;
use driftless_controllers::gc::GarbageCollector;
use driftless_controllers::job::JobController;
use driftless_controllers::replicaset::{Flavor, ReplicaSetController};
use driftless_controllers::runner::{self, Reconciler, RunOptions};
use driftless_controllers::scheduler::Scheduler;
use driftless_controllers::services::{AddressPools, ServiceAllocator};
use driftless_controllers::statefulset::StatefulSetController;
use driftless_controllers::storage::{ClaimBinder, VolumeReclaimer};
use driftless_model::Kind;
use driftless_runtime::node::Node;

use driftless_store::{SqliteStore, Store};
use driftless_sync::{Source, SourceConfig, Syncer, Trigger};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::DaemonConfig;

use crate::CommandError;

/// How long shutdown waits for tasks to finish.
const GRACE: Duration = Duration::from_secs(10);

/// The most threads the daemon's blocking calls (store writes, git, the
/// proxy's rebuilds, pod starts) use at once; more calls queue. Unbounded,
/// as tokio's default of 512 is, a burst of a hundred pod starts grew the
/// pool to 20-40 threads, each keeping a stack and a glibc per-thread
/// malloc cache after the burst: 1-4 MiB of the daemon's anonymous memory
/// after five to ten rounds of churn, for no faster start on two cores
/// (docs/benchmarks.md). What waits for long keeps off this pool: a pod's
/// stop (its grace period) runs on a thread of its own, the API's `sync`
/// waits as a future, and pod starts take at most
/// [`driftless_controllers::kubelet::MAX_STARTS`] of these threads.
const MAX_BLOCKING: usize = 8;

/// Runs the daemon until a signal; blocks.
pub fn run(config: DaemonConfig) -> Result<(), CommandError> {
    in_data_dir(config, "driftless", serve)
}

/// Runs `serve` on the configuration's data folder (made, locked for this
/// process alone, its configuration saved for `driftless reset`) on a
/// runtime of two workers; blocks. `up` and `agent` both run this way.
fn in_data_dir<F: std::future::Future<Output = Result<(), CommandError>>>(
    config: DaemonConfig,
    threads: &str,
    serve: impl FnOnce(DaemonConfig) -> F,
) -> Result<(), CommandError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| CommandError::Io { path: config.data_dir.clone(), source })?;
    let _lock = config::lock(&config.data_dir)?;
    config.save()?;
    // Blocking threads come in bursts (a hundred pods started or stopped
    // at once); once idle for two seconds, not tokio's ten, they go with
    // their stacks. At most MAX_BLOCKING of them: see there.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_secs(2))
        .max_blocking_threads(MAX_BLOCKING)
        .enable_all()
        .thread_name(threads)
        .build()
        .map_err(|source| CommandError::Io { path: "tokio runtime".into(), source })?;
    let result = runtime.block_on(serve(config));
    // Blocking calls still in flight (a pod stopping through its grace
    // period) are abandoned: the next run finishes them, as every step
    // is idempotent.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// etcd's address and credentials, when the store is there.
fn etcd_config(config: &DaemonConfig) -> Result<Option<driftless_store::EtcdConfig>, CommandError> {
    let Some(url) = &config.store else { return Ok(None) };
    let mut etcd = driftless_store::EtcdConfig::parse(url).map_err(daemon_error)?;
    etcd.writer = Some(identity(config));
    if let Some((ca, cert, key)) = &config.etcd_tls {
        let read = |path: &std::path::PathBuf| std::fs::read(path).map_err(|source| CommandError::Io { path: path.clone(), source });
        etcd.tls = Some(driftless_store::EtcdTls { ca: read(ca)?, cert: read(cert)?, key: read(key)? });
    }
    Ok(Some(etcd))
}

/// The instance's name among those sharing an etcd store: its data folder,
/// whose lock lets one process at a time be it, so a leader key or write
/// marker of this name is an earlier run's of this same instance.
fn identity(config: &DaemonConfig) -> String {
    format!("{}@{}", config.data_dir.display(), config.node_name)
}

/// On etcd, several instances may share the store: this one waits to be
/// elected, serving the API from the store meanwhile, then fences the
/// store (a deposed leader's writes fail) and watches for the loss of its
/// lease, on which it stops at once, as kube-controller-manager does.
///
/// Returns the standby API's stop: the daemon's own API replaces it on the
/// same socket, and then it stops, so the socket never goes unanswered.
async fn lead(config: &DaemonConfig, etcd: &driftless_store::EtcdConfig, store: &Arc<driftless_store::EtcdStore>) -> Result<CancellationToken, CommandError> {
    let identity = identity(config);
    let mut election = driftless_store::election::Election::new(etcd, &identity).await.map_err(daemon_error)?;
    election.reclaim().await.map_err(daemon_error)?;
    // With a leader in place, this instance stands by serving the API from
    // the store; with none (the usual start), it is elected at once.
    let standby = CancellationToken::new();
    let socket = config.data_dir.join(SOCKET);
    let mut serving = None;
    if let Ok(Some(leader)) = election.leader().await {
        tracing::info!(%leader, "standing by: another instance leads");
        eprintln!("driftless: up: standing by while {leader} leads (API at {})", socket.display());
        let mut api = ApiState::of_store(store.clone());
        api.shutdown = standby.clone();
        serving = Some(tokio::spawn(driftless_api::serve_unix(socket.clone(), api)));
    }
    let (leadership, mut lost) = election.campaign().await.map_err(daemon_error)?;
    drop(serving);
    store.fence(Some(leadership.fence()));
    tracing::info!(identity = %leadership.identity, revision = leadership.revision, "leading: every store write is fenced on the leader key");
    // On a thread of its own: the daemon's runtime may be busy (a
    // blocking store write holds a worker), and stepping down must not
    // wait for it.
    let watching = tokio::runtime::Builder::new_current_thread().build().map_err(|source| CommandError::Io { path: "leadership runtime".into(), source })?;
    std::thread::Builder::new()
        .name("leadership".into())
        .spawn(move || {
            watching.block_on(async move {
                while lost.changed().await.is_ok() {
                    if !*lost.borrow() {
                        tracing::error!("lost the leader lease; stopping so the new leader runs alone");
                        eprintln!("driftless: up: lost leadership; exiting");
                        std::process::exit(3);
                    }
                }
            })
        })
        .map_err(|source| CommandError::Io { path: "leadership thread".into(), source })?;
    // Keep the election (its client) for the daemon's life.
    std::mem::forget(election);
    Ok(standby)
}

async fn serve(config: DaemonConfig) -> Result<(), CommandError> {
    let mut standby = None;
    let store: Arc<dyn Store> = match etcd_config(&config)? {
        None => Arc::new(open_embedded_store(&config)?),
        Some(etcd) => {
            tracing::info!(endpoints = ?etcd.endpoints, prefix = %etcd.prefix, "the store is on etcd");
            let connect = etcd.clone();
            // Connecting runs a runtime of the store's own: not on ours.
            let store =
                tokio::task::spawn_blocking(move || driftless_store::EtcdStore::connect(&connect)).await.map_err(daemon_error)?.map_err(daemon_error)?;
            let store = Arc::new(store);
            standby = Some(lead(&config, &etcd, &store).await?);
            store
        }
    };
    std::fs::create_dir_all(config.node_dir()).map_err(|source| CommandError::Io { path: config.node_dir(), source })?;
    let _node_lock = config::lock_node(&config.node_dir())?;
    let ctx = Context::new(store.clone(), "driftless", &config.node_name);
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let running = if config.no_local_node {
        tracing::info!("a pure control plane: no node of its own");
        None
    } else {
        Some(node::start(&config, &ctx, &mut tasks, &cancel, None).await?)
    };
    let shared = running.as_ref().map(|r| r.runtime.clone());
    let volumes = config.node_dir().join("volumes");
    spawn(&mut tasks, ReplicaSetController::new(ctx.clone(), Flavor::ReplicaSet), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, ReplicaSetController::new(ctx.clone(), Flavor::ReplicationController), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, DeploymentController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, StatefulSetController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, JobController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, CronJobController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, DaemonSetController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, Scheduler::new(ctx.clone()), &store, &cancel, RunOptions { concurrency: 1, ..RunOptions::default() });
    spawn(&mut tasks, ClaimBinder::new(ctx.clone(), volumes.clone()), &store, &cancel, RunOptions { concurrency: 1, ..RunOptions::default() });
    spawn(&mut tasks, VolumeReclaimer::new(ctx.clone(), volumes), &store, &cancel, RunOptions::default());
    spawn(&mut tasks, GarbageCollector::new(ctx.clone()), &store, &cancel, RunOptions { debounce: Duration::from_millis(50), ..RunOptions::default() });
    let service_cidr: ipnet::Ipv4Net = config.service_cidr.parse().map_err(daemon_error)?;
    let pools = AddressPools { service_cidr, reserved: vec![config.dns_address()?], load_balancers: config.lb_pool.clone() };
    spawn(&mut tasks, ServiceAllocator::new(ctx.clone(), pools), &store, &cancel, RunOptions { concurrency: 1, ..RunOptions::default() });
    spawn(&mut tasks, EndpointsController::new(ctx.clone()), &store, &cancel, RunOptions::default());
    let grace = config.node_monitor_grace_period.unwrap_or(driftless_controllers::lifecycle::GRACE);
    if grace <= driftless_controllers::node::HEARTBEAT {
        return Err(CommandError::Usage(format!(
            "--node-monitor-grace-period {grace:?} must be longer than the nodes' heartbeat ({:?}), or every node would flap to Unknown",
            driftless_controllers::node::HEARTBEAT
        )));
    }
    tasks.spawn(driftless_controllers::lifecycle::run(ctx.clone(), grace, cancel.clone()));
    let toleration = config.default_toleration.unwrap_or(driftless_controllers::eviction::DEFAULT_TOLERATION);
    tasks.spawn(driftless_controllers::eviction::run(ctx.clone(), toleration, cancel.clone()));
    tasks.spawn(driftless_controllers::podgc::run(ctx.clone(), cancel.clone()));
    if let Some(cluster) = &config.cluster_cidr {
        let cluster: ipnet::Ipv4Net = cluster.parse().map_err(|e| CommandError::Usage(format!("--cluster-cidr {cluster}: {e}")))?;
        let mask = config.node_cidr_mask_size;
        if mask < cluster.prefix_len() || mask > 30 {
            return Err(CommandError::Usage(format!("--node-cidr-mask-size {mask}: must be between the cluster CIDR's /{} and /30", cluster.prefix_len())));
        }
        tasks.spawn(driftless_controllers::nodeipam::run(ctx.clone(), cluster, mask, cancel.clone()));
    }
    let metrics = driftless_nodeapi::Metrics::new();
    let resolution = config.metric_resolution.unwrap_or(driftless_controllers::metrics::INTERVAL);
    if let Some(shared) = &shared {
        tasks.spawn(driftless_controllers::metrics::sample(ctx.clone(), shared.clone(), config.node_name.clone(), metrics.clone(), resolution, cancel.clone()));
    }
    let hpa_period = config.hpa_sync_period.unwrap_or(driftless_controllers::hpa::controller::SYNC_PERIOD);
    // The sync thread's channel: made here so the autoscaler can record
    // its rescales in the ledger through it.
    let (sync_tx, sync_rx) = std::sync::mpsc::channel();
    let ledger_tx = std::sync::Mutex::new(sync_tx.clone());
    let record: driftless_controllers::hpa::controller::RescaleHook = Box::new(move |rescale| {
        let _ = ledger_tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(driftless_sync::Trigger::Record(rescale_entry(&rescale)));
    });
    let autoscaler = driftless_controllers::hpa::controller::HorizontalController::new(ctx.clone(), metrics.clone(), hpa_period, Some(record));
    spawn(&mut tasks, autoscaler, &store, &cancel, RunOptions { concurrency: 1, ..RunOptions::default() });

    // The sync loop blocks on git: a thread of its own.
    let source = Source::open(SourceConfig {
        repo: config.repo.clone(),
        branch: config.branch.clone(),
        path: config.path.clone(),
        mirror_dir: config.data_dir.join("source"),
    })
    .map_err(daemon_error)?;
    let ledger = source.repository_path().to_path_buf();
    let write_target = writes::target(ledger.clone(), source.branch(), source.path(), source.is_remote(), config.data_dir.join(driftless_secrets::KEYS_FILE));
    let interval = config.interval.unwrap_or(if source.is_remote() { Duration::from_secs(15) } else { Duration::from_secs(2) });
    let write_hint = format!("commit to {} (branch {}, path {:?})", config.repo, source.branch(), config.path);
    let syncer_branch = source.branch().to_owned();
    let planned = driftless_ui::Repo {
        path: ledger.clone(),
        branch: source.branch().to_owned(),
        manifests: source.path().to_owned(),
        age_keys: Some(config.data_dir.join(driftless_secrets::KEYS_FILE)),
    };
    let age_keys = config.data_dir.join(driftless_secrets::KEYS_FILE);
    let mut syncer = Syncer::new(source, store.clone(), ctx.events.clone(), config.allow_empty, interval).age_keys(age_keys);
    if let Some(keys) = &config.verify_commits {
        let mode = match config.verify_commits_mode {
            crate::cli::VerifyMode::Head => driftless_signatures::Mode::Head,
            crate::cli::VerifyMode::All => driftless_signatures::Mode::Range,
        };
        syncer = syncer.verify(driftless_sync::Verify { keys: keys.clone(), mode });
    }
    if let Some(notifier) = forge::notifier(&config, cancel.clone())? {
        syncer = syncer.observe(forge::sync_observer(notifier.clone()));
        tasks.spawn(forge::forward_rollouts(store.clone(), notifier, syncer_branch.clone(), cancel.clone()));
    }
    if let Some(server) = forge::webhooks(&config, &syncer_branch, sync_tx.clone(), cancel.clone()).await? {
        tasks.spawn(async move {
            let _ = server.await;
        });
    }
    let wake = sync_tx.clone();
    let sync_thread = std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || syncer.run(sync_rx, wake))
        .map_err(|source| CommandError::Io { path: "sync thread".into(), source })?;

    let writes = Arc::new(writes::DaemonWrites { writer: driftless_write::Writer::new(write_target), store: store.clone(), sync: sync_tx.clone() });
    // The first verb should not pay for validating the whole head.
    tasks.spawn_blocking({
        let writes = writes.clone();
        move || {
            if let Err(error) = writes.writer.warm() {
                tracing::debug!(%error, "the write path could not read the branch yet");
            }
        }
    });
    let settings = rollback::Settings { all: config.rollback_on_failure, branch_prefix: config.rollback_branch.clone() };
    for kind in [Kind::Deployment, Kind::StatefulSet] {
        let reconciler = rollback::Rollback::new(kind, ctx.clone(), writes.clone(), settings.clone());
        spawn(&mut tasks, reconciler, &store, &cancel, RunOptions { concurrency: 1, ..RunOptions::default() });
    }
    let state = ApiState {
        store: store.clone(),
        node: shared.clone(),
        node_name: shared.is_some().then(|| config.node_name.clone()),
        metrics: Some(metrics.clone()),
        sync: Some(sync_tx.clone()),
        ledger: Some(ledger),
        images: Some(Arc::new(images::DaemonImages::new(config.node_dir(), config.insecure_registries.clone()))),
        writes: Some(writes.clone()),
        tokens: match config.listen {
            Some(_) => Some(Arc::new(pki::tokens(&config.tokens_path())?)),
            None => None,
        },
        write_hint,
        shutdown: cancel.clone(),
    };
    let socket = config.data_dir.join(SOCKET);
    // Bound here, before serving: from this line the socket is answered by
    // this API, so a standby's may stop.
    let listener = driftless_api::bind_unix(&socket).map_err(|source| CommandError::Io { path: socket.clone(), source })?;
    if let Some(standby) = standby.take() {
        standby.cancel();
    }
    tasks.spawn({
        let (state, socket) = (state.clone(), socket.clone());
        async move {
            if let Err(error) = driftless_api::serve_unix_on(listener, state).await {
                tracing::error!(%error, socket = %socket.display(), "API server failed");
            }
        }
    });
    if let Some(address) = &config.listen {
        let tls = listener_tls(&config)?;
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| CommandError::Io { path: address.into(), source })?;
        tracing::info!(%address, "serving the API over HTTPS, and the dashboard at /ui/");
        let mut dashboard = driftless_ui::UiState::new(state.clone());
        dashboard.repo = Some(planned);
        let dashboard = driftless_ui::router(dashboard);
        tasks.spawn(async move {
            if let Err(error) = driftless_api::serve_tls(listener, tls, state, Some(dashboard)).await {
                tracing::error!(%error, "HTTPS API server failed");
            }
        });
    }
    tracing::info!(socket = %socket.display(), repo = %config.repo, node = %config.node_name, "driftless is up");
    eprintln!("driftless: up: syncing {} into {} (API at {})", config.repo, config.data_dir.display(), socket.display());

    wait_for_signal().await;
    tracing::info!("shutting down; pods keep running for the next daemon to adopt");
    cancel.cancel();
    let _ = sync_tx.send(Trigger::Stop);
    if tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("tasks still running after {GRACE:?}; leaving them");
        tasks.abort_all();
    }
    let _ = tokio::task::spawn_blocking(move || sync_thread.join()).await;
    let _ = std::fs::remove_file(&socket);
    // Dropping the node leaves its pods running (only stop_pod stops one).
    // It owns a runtime for netlink, which may not be dropped here.
    let _ = tokio::task::spawn_blocking(move || {
        drop(shared);
        drop(running);
    })
    .await;
    Ok(())
}

/// The HTTPS listener's TLS: the certificate the user gave, else the one
/// made under the data folder for the node's names.
fn listener_tls(config: &DaemonConfig) -> Result<Arc<rustls::ServerConfig>, CommandError> {
    let (chain, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &std::path::PathBuf| std::fs::read(path).map_err(|source| CommandError::Io { path: path.clone(), source });
            (read(cert)?, read(key)?)
        }
        _ => {
            let made = pki::serving(&config.data_dir, &config.tls_names()?)?;
            (made.chain, made.key)
        }
    };
    driftless_api::tls::server_config(&chain, &key).map_err(|e| CommandError::Usage(format!("the API's certificate: {e}")))
}

/// The ledger entry of an autoscaler's rescale: a status change beside
/// the syncs (`driftless history`), not a commit.
fn rescale_entry(rescale: &driftless_controllers::hpa::controller::Rescale) -> driftless_sync::LedgerEntry {
    let (kind, name) = rescale.target.split_once('/').unwrap_or((rescale.target.as_str(), ""));
    let now = jiff::Timestamp::now().as_second();
    driftless_sync::LedgerEntry {
        subject: format!("{} {} → {}: {}", rescale.target, rescale.from, rescale.to, rescale.reason),
        author: format!("HorizontalPodAutoscaler {}/{}", rescale.autoscaler.namespace, rescale.autoscaler.name),
        time: now,
        synced_at: now,
        result: "autoscaled".into(),
        actions: vec![driftless_sync::Action {
            change: driftless_sync::Change::Update,
            object: format!("{kind} {}/{name}", rescale.autoscaler.namespace),
            effect: "scales".into(),
        }],
        ..Default::default()
    }
}

fn spawn<R: Reconciler>(tasks: &mut JoinSet<()>, reconciler: Arc<R>, store: &Arc<dyn Store>, cancel: &CancellationToken, options: RunOptions) {
    tasks.spawn(runner::run(reconciler, store.clone(), options, cancel.clone()));
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The embedded store, refused with the way out when it is damaged, or
/// set aside first and started empty with `--rebuild-store`.
fn open_embedded_store(config: &DaemonConfig) -> Result<SqliteStore, CommandError> {
    let path = config.data_dir.join("store.db");
    if config.rebuild_store {
        let suffix = format!("damaged-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        for file in ["store.db", "store.db-wal", "store.db-shm", "store.db.id"] {
            let from = config.data_dir.join(file);
            if from.exists() {
                let to = config.data_dir.join(format!("{file}.{suffix}"));
                std::fs::rename(&from, &to).map_err(|source| CommandError::Io { path: from.clone(), source })?;
                tracing::warn!(from = %from.display(), to = %to.display(), "--rebuild-store: the old store is kept aside");
            }
        }
    }
    SqliteStore::open(&path).map_err(|error| match error {
        driftless_store::StoreError::Damaged { .. } => CommandError::Usage(format!(
            "the store cannot be trusted, so nothing was started (the pods already running are untouched): {error}\n\
             To recover, start again with --rebuild-store: the damaged files are kept aside as store.db.damaged-<time>, the store is rebuilt \
             from git, and the pods the node finds are replaced once (docs/ARCHITECTURE.md, \"Recovering the store\")."
        )),
        other => daemon_error(other),
    })
}

fn daemon_error(error: impl std::fmt::Display) -> CommandError {
    CommandError::Usage(error.to_string())
}

/// Kills the containers of helper processes (shims, reapers) that work
/// under `node_dir`, found by their command lines, until none is left or
/// `patience` runs out; how many containers it killed. A reaper names its
/// container's init with `--pid`; killing it lets the reaper clean up as
/// for any exit. A shim still creating its container is killed itself: it
/// carries its fork server's command line (`serve --state-root
/// NODE/state ...`), and so does the server, a killed daemon's gone with
/// it or about to be.
fn stop_stray_helpers(node_dir: &Path, patience: std::time::Duration) -> usize {
    let needle = format!("{}/", node_dir.to_string_lossy().trim_end_matches('/'));
    let deadline = std::time::Instant::now() + patience;
    let mut killed = std::collections::HashSet::new();
    loop {
        let mut found = false;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            if !args.iter().any(|a| a.starts_with(&needle)) || !args.first().is_some_and(|a| a.contains("driftless-")) {
                continue;
            }
            found = true;
            let init = args.iter().position(|a| a == "--pid").and_then(|i| args.get(i + 1)).and_then(|p| p.parse::<i32>().ok());
            let target = init.unwrap_or(pid);
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(target), nix::sys::signal::Signal::SIGKILL).is_ok() && init.is_some() {
                killed.insert(target);
            }
        }
        if !found || std::time::Instant::now() >= deadline {
            return killed.len();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `driftless reset`: stops every pod the data folder's node has, removes
/// the bridge and routes, and with `purge` the folder itself.
pub fn reset(data_dir: &Path, purge: bool) -> Result<(), CommandError> {
    let config = DaemonConfig::load(data_dir)?;
    let _lock = config::lock(data_dir)?;
    if config.no_local_node || config.pod_cidr.is_empty() {
        // A pure control plane (or an agent never given its CIDR) made no
        // node: only its store goes.
        forget(data_dir, purge);
        eprintln!("driftless: reset: no node in {}; removed its store", data_dir.display());
        return Ok(());
    }
    let node_config = config.node_config()?;
    let run_dir = node_config.run_dir.clone();
    let node = Node::new(node_config).map_err(daemon_error)?;
    let pods = node.pod_uids();
    for uid in &pods {
        if let Err(error) = node.stop(uid) {
            eprintln!("driftless: warning: stopping pod {uid}: {error}");
        }
    }
    // A daemon killed while it was starting a container left a helper
    // that finishes the start after the pods above were listed: hunt down
    // this folder's helpers until none is left.
    let stray = stop_stray_helpers(&config.node_dir().join("node"), std::time::Duration::from_secs(5));
    if stray > 0 {
        eprintln!("driftless: reset: stopped {stray} containers a killed daemon was still starting");
    }
    // Whatever is still in the node's cgroups (a container frozen by a
    // kill that was itself cut short) goes too.
    let left = driftless_runtime::cgroups::kill_remaining(&config.cgroup_root);
    if left > 0 {
        eprintln!("driftless: reset: killed {left} processes left in the node's cgroups");
    }
    // A daemon killed without its clean shutdown left the proxy's table.
    let _ = std::process::Command::new("nft").args(["delete", "table", "ip", &config.nft_table]).stderr(std::process::Stdio::null()).status();
    node.delete_bridge().map_err(daemon_error)?;
    // The pods are gone, and their volatile state with its tmpfs.
    if let Err(error) = driftless_runtime::volatile::unmount(&run_dir) {
        eprintln!("driftless: warning: {error}");
    }
    eprintln!("driftless: reset: stopped {} pods, removed {} and the routes", pods.len(), config.bridge);
    forget(data_dir, purge);
    Ok(())
}

/// Removes the store (it would bring the pods back on the next `up`), or
/// with `purge` the whole data folder.
fn forget(data_dir: &Path, purge: bool) {
    if purge {
        let _ = std::fs::remove_dir_all(data_dir);
    } else {
        for file in ["store.db", "store.db-wal", "store.db-shm"] {
            let _ = std::fs::remove_file(data_dir.join(file));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::stop_stray_helpers;

    /// A process named like a helper (a copy of `tail -f`) whose arguments
    /// name a file under `dir`: what a shim still starting looks like.
    fn fake_helper(bin: &std::path::Path, dir: &std::path::Path) -> std::process::Child {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/x"), "").unwrap();
        Command::new(bin).arg("-f").arg(dir.join("state/x")).spawn().unwrap()
    }

    #[test]
    fn stray_helpers_of_this_folder_are_stopped_and_others_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("driftless-fake-helper");
        std::fs::copy("/usr/bin/tail", &bin).unwrap();
        let ours = tmp.path().join("data/node");
        let mut stray = fake_helper(&bin, &ours);
        let mut other = fake_helper(&bin, &tmp.path().join("data/node2"));
        assert_eq!(stop_stray_helpers(&ours, Duration::from_secs(5)), 0, "no container init was named");
        assert!(stray.wait().unwrap().code().is_none(), "the stray helper was killed");
        assert!(other.try_wait().unwrap().is_none(), "another folder's helper runs on");
        let _ = other.kill();
        let _ = other.wait();
    }
}
