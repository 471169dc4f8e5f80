//! The node: the control plane's [`PodRuntime`] contract (from
//! `driftless-nodeapi`, whose recording fake callers test on), implemented
//! over the real runtime ([`Node`]).
//!
//! [`Node`] ties the pieces together for each pod: a sandbox, an address on
//! the node bridge, the Kubernetes `Pod` translated with kubelet's rules,
//! and a worker that keeps its containers running. Its methods block (they
//! talk netlink and wait for processes): an async caller runs them on a
//! blocking thread.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use driftless_model::k8s_openapi::api::core::v1::Pod;
use ipnet::Ipv4Net;

use crate::Layout;
use crate::lifecycle::phase::Phase;
use crate::network::{Bridge, Ipam, NetError, PodInterface, route_exists};
use crate::pod::worker::{self, Placement, PodHandle};
use crate::pod::{ContainerState, ContainerStatus, PodStatus};
use crate::podspec::{NodeSettings, PodDirs, PodIdentity, Resolve, TranslateError};
use crate::sandbox::{Sandbox, SandboxError};
pub use driftless_nodeapi::PodRuntime;

/// The most threads the pod workers' ticks may use at once: more than the
/// cores of a small node, so starts and probes overlap their waits, and
/// few, as each thread keeps a stack and, with glibc, may take an
/// allocator arena of its own (measured: 32 threads cost an agent of 100
/// pods more memory than 8, for no faster start).
const MAX_BLOCKING: usize = 8;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The data folder (`/var/lib/driftless`): containers' logs and
    /// writable layers, pods' volumes, addresses.
    pub data_dir: PathBuf,
    /// The folder for what lives exactly as long as the pods do: their
    /// namespaces' mounts, their `/etc` files, libcontainer's state. Best
    /// a tmpfs ([`crate::volatile`]; the daemon mounts one at
    /// `<data>/run`); any folder works.
    pub run_dir: PathBuf,
    /// The helper binary, `driftless-shim`.
    pub shim: PathBuf,
    /// The bridge pods attach to (`driftless0`).
    pub bridge: String,
    /// The pod CIDR (`10.244.0.0/24`).
    pub pod_cidr: Ipv4Net,
    /// The cgroup every pod goes under (by default `driftless` beneath the
    /// daemon's own, see [`default_cgroup_root`]).
    pub cgroup_root: String,
    /// The service CIDR (`10.96.0.0/16`), routed `local` on `lo` before
    /// anything runs, so no packet for a service address can leave.
    pub service_cidr: Option<Ipv4Net>,
    /// The cluster CIDR, every node's pod CIDR within it (`10.244.0.0/16`),
    /// routed `unreachable` beneath the routes to the nodes' pod CIDRs, so
    /// no pod address leaves by the default route. None on a node alone.
    pub cluster_cidr: Option<Ipv4Net>,
    /// What pods may do and which DNS they get.
    pub settings: NodeSettings,
    /// The image pull back-off: first delay and longest delay
    /// ([`PULL_BACKOFF`] is kubelet's).
    pub pull_backoff: (Duration, Duration),
}

/// How long a stopped pod's veth pair is left to the kernel (it goes with
/// the pod's network namespace) before the node deletes it itself.
const PAIR_GONE_WITHIN: Duration = Duration::from_secs(2);

/// libcontainer's state root: in the volatile folder, unless containers
/// started before that folder existed still have their state on disk
/// (they keep it there until none is left).
fn state_root(config: &NodeConfig) -> PathBuf {
    let before = config.data_dir.join("node").join("state");
    let has_containers = std::fs::read_dir(&before).into_iter().flatten().flatten().any(|e| e.path().is_dir());
    if has_containers { before } else { config.run_dir.join("state") }
}

/// The default cgroup for pods: `driftless` beneath the cgroup this
/// process runs in (its memory controller's under cgroup v1, the unified
/// one under v2), so a daemon confined by its service manager keeps its
/// pods inside its own limits.
pub fn default_cgroup_root() -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    format!("{}/driftless", own_cgroup(&own).trim_end_matches('/'))
}

/// This process's cgroup path from `/proc/self/cgroup`'s text.
fn own_cgroup(text: &str) -> &str {
    let line = |pred: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut fields = l.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            pred(controllers).then_some(path)
        })
    };
    line(&|c| c.split(',').any(|c| c == "memory")).or_else(|| line(&|c| c.is_empty())).unwrap_or("/")
}

/// Kubelet's image pull back-off: 10 s, doubling to 5 min.
pub const PULL_BACKOFF: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(300));

/// Why the node could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The pod has no uid to name it by.
    #[error("pod has no metadata.uid")]
    NoUid,
    /// The pod cannot run as written (see its reason).
    #[error("{0}")]
    Translate(#[from] TranslateError),
    /// The network could not be set up.
    #[error(transparent)]
    Network(#[from] NetError),
    /// An address could not be allocated.
    #[error(transparent)]
    Ipam(#[from] crate::network::IpamError),
    /// The sandbox could not be made or removed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The pod CIDR is not routed to the bridge, so pod traffic could leave
    /// the machine: the node refuses to run pods.
    #[error("{cidr} is not routed to {bridge}: refusing to use pod addresses")]
    Unrouted {
        /// The pod CIDR.
        cidr: Ipv4Net,
        /// The bridge.
        bridge: String,
    },
    /// The netlink connection could not be made.
    #[error("netlink: {0}")]
    Netlink(std::io::Error),
    /// The pod CIDR is not inside the cluster CIDR.
    #[error("the pod CIDR {pod_cidr} is not inside the cluster CIDR {cluster_cidr}")]
    OutsideCluster {
        /// The pod CIDR.
        pod_cidr: Ipv4Net,
        /// The cluster CIDR.
        cluster_cidr: Ipv4Net,
    },
    /// The service CIDR is not routed `local` on `lo`: the node refuses to
    /// run anything that could send to service addresses.
    #[error("{0} is not routed local on lo: refusing to run pods")]
    ServiceUnrouted(Ipv4Net),
    /// A pull of this image failed recently; the next try waits.
    #[error("Back-off pulling image {image:?}: {message}")]
    ImagePullBackOff {
        /// The image.
        image: String,
        /// The last pull's error.
        message: String,
        /// When the next pull may be tried.
        retry_in: Duration,
    },
}

impl NodeError {
    /// When the caller should ask again, for errors that pass with time.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            NodeError::ImagePullBackOff { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

/// A pod that could not start yet: what its status shows meanwhile.
struct Waiting {
    containers: Vec<String>,
    /// The container that could not be made, or every one when unknown.
    container: Option<String>,
    reason: &'static str,
    message: String,
    /// For image pulls: the failed image, failures in a row and when the
    /// next pull may happen.
    pull: Option<(String, u32, Instant)>,
}

struct RunningPod {
    worker: PodHandle,
    sandbox: Sandbox,
    host_veth: String,
}

/// The real node runtime.
pub struct Node {
    config: NodeConfig,
    layout: Layout,
    ipam: Ipam,
    bridge: Bridge,
    /// The netlink connection and the pod workers run here.
    rt: OwnRuntime,
    handle: rtnetlink::Handle,
    pods: Mutex<HashMap<String, RunningPod>>,
    waiting: Mutex<HashMap<String, Waiting>>,
    /// Pods being started now: each by one caller, with no lock held over
    /// its sandbox, address, interface and translation, so that pods start
    /// side by side. `stop` of a pod waits for its start to end.
    starting: Mutex<HashSet<String>>,
    started: Condvar,
    /// Held while a pod's sandbox and interface are made.
    setup: Mutex<()>,
    /// Told by the pod workers when a status changes.
    on_change: worker::OnChange,
    /// Pods an earlier run of the daemon left on disk (and maybe running),
    /// not yet adopted by `run_pod` nor removed by `stop_pod`.
    found: Mutex<HashSet<String>>,
}

impl Node {
    /// Sets the node up: the bridge with the pod CIDR's gateway, and a check
    /// that the CIDR is routed to it before any pod address is used.
    pub fn new(config: NodeConfig) -> Result<Node, NodeError> {
        // One thread drives the netlink connection and every pod worker's
        // task; the workers' ticks run on its blocking pool, bounded so
        // that a burst of slow starts or probes queues instead of growing
        // a thread per pod.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(MAX_BLOCKING)
            .thread_keep_alive(Duration::from_secs(5))
            .thread_name("driftless-node")
            .enable_all()
            .build()
            .map_err(NodeError::Netlink)?;
        let handle = rt.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(connection);
            Ok::<_, std::io::Error>(handle)
        });
        let handle = handle.map_err(NodeError::Netlink)?;
        let ipam = Ipam::new(config.data_dir.join("ipam"), config.pod_cidr);
        let bridge = rt.block_on(Bridge::ensure(&handle, &config.bridge, config.pod_cidr, ipam.gateway()))?;
        if !route_exists(config.pod_cidr, &config.bridge).unwrap_or(false) {
            return Err(NodeError::Unrouted { cidr: config.pod_cidr, bridge: config.bridge.clone() });
        }
        if let Some(cidr) = config.service_cidr {
            let routed = rt.block_on(async {
                crate::network::ensure_local_route(&handle, cidr).await?;
                crate::network::local_route_exists(&handle, cidr).await
            })?;
            if !routed {
                return Err(NodeError::ServiceUnrouted(cidr));
            }
        }
        if let Some(cluster) = config.cluster_cidr {
            if !cluster.contains(&config.pod_cidr) {
                return Err(NodeError::OutsideCluster { pod_cidr: config.pod_cidr, cluster_cidr: cluster });
            }
            rt.block_on(crate::network::peers::ensure_unreachable(&handle, cluster))?;
        }
        let layout = Layout::new(config.data_dir.join("node"), &config.shim).with_state_root(state_root(&config));
        layout.collect_orphaned_state();
        // Pods of an earlier run, by their folders on disk (made first, see
        // `run`) or in the volatile folder.
        let found: HashSet<String> = [config.run_dir.join("pods"), config.data_dir.join("pods")]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !found.is_empty() {
            tracing::info!(pods = found.len(), "found pods of an earlier run; they are adopted when asked for, removed otherwise");
        }
        Ok(Node {
            config,
            layout,
            ipam,
            bridge,
            rt: OwnRuntime(Some(rt)),
            handle,
            pods: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashSet::new()),
            started: Condvar::new(),
            setup: Mutex::new(()),
            on_change: worker::OnChange::default(),
            found: Mutex::new(found),
        })
    }

    /// The node's container layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Deletes the node bridge, the service CIDR's route and the node's
    /// cgroup root (for tests and uninstall); pods must be gone.
    pub fn delete_bridge(&self) -> Result<(), NodeError> {
        // A stray container reset has just killed may still be leaving its
        // cgroup: give it a moment rather than leave empty folders behind.
        if !crate::cgroups::remove_waiting(&self.config.cgroup_root, std::time::Duration::from_secs(3)) {
            tracing::warn!(root = %self.config.cgroup_root, "cgroups still in use after the pods stopped");
        }
        if let Some(cidr) = self.config.service_cidr {
            self.rt.block_on(crate::network::delete_local_route(&self.handle, cidr))?;
        }
        if let Some(cluster) = self.config.cluster_cidr {
            self.rt.block_on(crate::network::peers::set_peer_routes(&self.handle, &Default::default()))?;
            self.rt.block_on(crate::network::peers::delete_unreachable(&self.handle, cluster))?;
        }
        Ok(self.rt.block_on(Bridge::delete(&self.handle, &self.config.bridge))?)
    }

    /// Routes the pod CIDRs of the other nodes (`peers`: name, pod CIDR,
    /// address) via their addresses, and no others. A peer whose CIDR is
    /// not inside the cluster CIDR (or overlaps this node's), or whose
    /// address is a pod or service address, is left out and named in the
    /// answer: routes only ever lead to another node of this cluster.
    pub fn route_peers(&self, peers: &[(String, Ipv4Net, Ipv4Addr)]) -> Result<Vec<String>, NodeError> {
        let mut refused = Vec::new();
        let mut wanted = std::collections::BTreeSet::new();
        let Some(cluster) = self.config.cluster_cidr else {
            return Ok(peers.iter().map(|(name, ..)| format!("{name}: this node has no cluster CIDR to route other nodes' pods in")).collect());
        };
        for (name, cidr, via) in peers {
            let service = self.config.service_cidr.is_some_and(|s| s.contains(via));
            if !cluster.contains(cidr) || cidr.contains(&self.config.pod_cidr) || self.config.pod_cidr.contains(cidr) {
                refused.push(format!("{name}: pod CIDR {cidr} is not a peer's range inside the cluster CIDR {cluster}"));
            } else if cluster.contains(via) || service || via.is_loopback() || via.is_unspecified() {
                refused.push(format!("{name}: address {via} is not a node address"));
            } else {
                wanted.insert((*cidr, *via));
            }
        }
        self.rt.block_on(crate::network::peers::set_peer_routes(&self.handle, &wanted))?;
        Ok(refused)
    }

    /// Where a pod's files are: its volumes on disk, its namespaces and
    /// `/etc` files in the volatile folder. A pod started before that
    /// folder existed keeps everything on disk, where it was made.
    fn pod_dirs(&self, uid: &str) -> PodDirs {
        let data = self.config.data_dir.join("pods").join(uid);
        if data.join("ns").exists() {
            return PodDirs::under(data);
        }
        PodDirs { data, run: self.config.run_dir.join("pods").join(uid) }
    }

    /// Removes a stopped pod's folders.
    fn remove_pod_dirs(&self, uid: &str) {
        let dirs = self.pod_dirs(uid);
        let _ = std::fs::remove_dir_all(dirs.run);
        let _ = std::fs::remove_dir_all(dirs.data);
    }

    /// Stops watching every pod but leaves them running, for a daemon that
    /// exits: the next `Node` on this data folder adopts them. Dropping a
    /// `Node` does the same: only [`PodRuntime::stop_pod`] stops a pod, so
    /// a daemon that exits, however it exits, never takes its pods along.
    pub fn abandon(self) {
        drop(self);
    }

    /// Removes a pod found on disk that no worker watches: its containers
    /// (killed), interface, sandbox, address and folder.
    fn remove_found(&self, uid: &str) -> Result<(), NodeError> {
        let prefix = format!("{uid}-");
        let ids: Vec<String> = self.layout.list().unwrap_or_default().into_iter().map(|(id, _)| id).filter(|id| id.starts_with(&prefix)).collect();
        for id in &ids {
            let _ = self.layout.kill(id, nix::sys::signal::Signal::SIGKILL);
        }
        for id in &ids {
            // Only a container whose helper runs will record its end; one
            // whose creation was cut short (no status, no helper) is
            // removed at once, its state deleted with it.
            if matches!(self.layout.observe(id), Ok(crate::Observed::Running)) {
                let _ = self.layout.wait(id, Duration::from_secs(10));
            }
            let _ = self.layout.remove(id);
        }
        self.rt.block_on(PodInterface::detach(&self.handle, &PodInterface::host_name(uid)))?;
        // Removed whatever it holds: a daemon killed while making the
        // sandbox left only some of its namespaces mounted, and a sandbox
        // that is gone is fine to remove.
        Sandbox::at(self.pod_dirs(uid).run.join("ns")).remove()?;
        self.ipam.release(uid)?;
        self.remove_pod_dirs(uid);
        crate::cgroups::remove(&format!("{}/{uid}", self.config.cgroup_root));
        tracing::info!(pod = %uid, containers = ids.len(), "removed a pod left by an earlier run");
        Ok(())
    }
}

/// The contract, over the methods below; the node's own errors are passed
/// on whole (the ones callers act on, by their contract variants).
impl PodRuntime for Node {
    fn run_pod(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), driftless_nodeapi::NodeError> {
        self.run(pod, resolve).map_err(Into::into)
    }

    fn pod_status(&self, uid: &str) -> Option<PodStatus> {
        self.status(uid)
    }

    fn stop_pod(&self, uid: &str) -> Result<(), driftless_nodeapi::NodeError> {
        self.stop(uid).map_err(Into::into)
    }

    fn refresh(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), driftless_nodeapi::NodeError> {
        self.refresh_volumes(pod, resolve).map_err(Into::into)
    }

    fn log_path(&self, uid: &str, container: &str, previous: bool) -> Option<PathBuf> {
        self.log_file(uid, container, previous)
    }

    fn exec(&self, uid: &str, container: &str, args: &[String], tty: bool) -> Option<std::process::Command> {
        self.exec_command(uid, container, args, tty)
    }

    fn connect(&self, uid: &str, port: u16) -> std::io::Result<std::net::TcpStream> {
        let netns = Sandbox::at(self.pod_dirs(uid).run.join("ns")).namespace("net");
        if !netns.exists() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("pod {uid} has no network namespace on this node")));
        }
        crate::network::connect_inside(&netns, port, std::time::Duration::from_secs(5))
    }

    fn pods(&self) -> Vec<String> {
        self.pod_uids()
    }

    /// Each running container's cgroup (`<root>/<uid>/<container id>`).
    fn usage(&self, uid: &str) -> Vec<driftless_nodeapi::ContainerUsage> {
        let Some(status) = self.status(uid) else { return Vec::new() };
        let counters = crate::usage::Counters::default();
        status
            .containers
            .iter()
            .filter(|c| matches!(c.state, driftless_nodeapi::ContainerState::Running { .. }))
            .filter_map(|c| {
                let id = c.container_id.as_deref()?;
                let (cpu, memory) = counters.cgroup(&format!("{}/{uid}/{id}", self.config.cgroup_root))?;
                Some(driftless_nodeapi::ContainerUsage { name: c.name.clone(), cpu_nanoseconds: cpu, memory_working_set: memory })
            })
            .collect()
    }

    fn node_usage(&self) -> Option<driftless_nodeapi::NodeUsage> {
        crate::usage::Counters::default().machine()
    }

    fn on_status_change(&self, on_change: driftless_nodeapi::StatusChanged) {
        self.on_change.set(on_change);
    }
}

impl From<NodeError> for driftless_nodeapi::NodeError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::NoUid => driftless_nodeapi::NodeError::NoUid,
            NodeError::ImagePullBackOff { image, message, retry_in } => driftless_nodeapi::NodeError::ImagePullBackOff { image, message, retry_in },
            other => driftless_nodeapi::NodeError::Runtime(Box::new(other)),
        }
    }
}

impl Node {
    /// Runs `pod`; see [`PodRuntime::run_pod`].
    pub fn run(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), NodeError> {
        let uid = pod.metadata.uid.clone().ok_or(NodeError::NoUid)?;
        // Claimed under the locks, then started without them.
        let Some(_claim) = self.claim(&uid) else { return Ok(()) };
        if let Some(Waiting { pull: Some((image, _, retry_at)), message, reason, .. }) = self.waiting().get_mut(&uid) {
            let now = Instant::now();
            if now < *retry_at {
                // As kubelet: ErrImagePull right after the failure, then
                // ImagePullBackOff until the next try.
                *reason = "ImagePullBackOff";
                return Err(NodeError::ImagePullBackOff { image: image.clone(), message: message.clone(), retry_in: *retry_at - now });
            }
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone()).unwrap_or(name);
        let dirs = self.pod_dirs(&uid);
        let sandbox_dir = dirs.run.join("ns");
        let adopting = self.found.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
        let had_sandbox = Sandbox::at(&sandbox_dir).exists();
        let prepared = (|| -> Result<(Sandbox, Ipv4Addr, PodInterface), NodeError> {
            // One sandbox and interface made at a time: the kernel takes
            // these one at a time anyway (the mount and rtnl locks), and on
            // a busy node, side by side they only contend (measured in
            // docs/benchmarks.md). Image pulls, below, go side by side.
            let _setup = self.setup.lock().unwrap_or_else(|e| e.into_inner());
            // The pod's folder on disk first: what a restarted node finds
            // it by, even when the machine restarted and the volatile
            // folder is gone.
            std::fs::create_dir_all(&dirs.data).map_err(|source| SandboxError::Io { path: dirs.data.clone(), source })?;
            let sandbox = if had_sandbox { Sandbox::at(&sandbox_dir) } else { Sandbox::create(&sandbox_dir, &hostname)? };
            let ip = self.ipam.allocate(&uid)?;
            let existing = if adopting { self.rt.block_on(PodInterface::existing(&self.bridge, &sandbox.namespace("net"), &uid, ip))? } else { None };
            let interface = match existing {
                Some(interface) => interface,
                None => self.rt.block_on(PodInterface::attach(&self.bridge, &sandbox.namespace("net"), &uid, ip))?,
            };
            Ok((sandbox, ip, interface))
        })();
        let (sandbox, ip, interface) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                // kubelet's FailedCreatePodSandBox: the pod stays Pending,
                // its containers ContainerCreating, and says why (a full
                // disk, no address left, netlink refusing). Nothing made
                // for it is kept, unless it was adopted as found.
                if adopting {
                    self.found.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
                } else {
                    let _ = self.ipam.release(&uid);
                    if !had_sandbox {
                        let _ = Sandbox::at(&sandbox_dir).remove();
                    }
                }
                let containers = pod.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.clone()).collect();
                let message = format!("Failed to create pod sandbox: {error}");
                tracing::warn!(pod = %uid, %message, "pod cannot start yet");
                self.waiting().insert(uid, Waiting { containers, container: None, reason: "ContainerCreating", message, pull: None });
                return Err(error);
            }
        };
        let identity = PodIdentity { uid: uid.clone(), ip: Some(ip.to_string()) };
        let request = match crate::podspec::translate(pod, &identity, &dirs, &self.config.settings, &DynResolve(resolve)) {
            Ok(request) => request,
            Err(error) => {
                if adopting {
                    // Its containers may still run: leave everything as
                    // found, for the next try or for stop_pod.
                    self.found.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
                } else {
                    let _ = self.rt.block_on(PodInterface::detach(&self.handle, &interface.host_veth));
                    let _ = sandbox.remove();
                    let _ = self.ipam.release(&uid);
                }
                let containers = pod.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.clone()).collect();
                let mut waiting = self.waiting();
                let previous = waiting.remove(&uid).and_then(|w| w.pull).map_or(0, |(_, failures, _)| failures);
                let pull = match &error {
                    TranslateError::Image { image, reason: "ErrImagePull", .. } => {
                        let (first, longest) = self.config.pull_backoff;
                        let delay = first.saturating_mul(1 << previous.min(16)).min(longest);
                        Some((image.clone(), previous + 1, Instant::now() + delay))
                    }
                    _ => None,
                };
                let message = match &error {
                    TranslateError::Image { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                tracing::warn!(pod = %uid, reason = error.reason(), %message, "pod cannot start yet");
                let container = error.container().map(str::to_owned);
                waiting.insert(uid, Waiting { containers, container, reason: error.reason(), message, pull });
                return Err(error.into());
            }
        };
        let placement = Placement { sandbox: sandbox_dir, ip: Some(IpAddr::V4(ip)), cgroup_parent: format!("{}/{uid}", self.config.cgroup_root) };
        let worker = worker::start(self.rt.handle(), self.layout.clone(), placement, request, self.on_change.clone());
        // Running before it stops waiting: a status read in between sees
        // one or the other, never neither.
        self.pods.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone(), RunningPod { worker, sandbox, host_veth: interface.host_veth });
        self.waiting().remove(&uid);
        // A change its worker reported before the pod was listed here was
        // read as no status at all: have it read again.
        self.on_change.changed();
        Ok(())
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the start of `uid` for the caller, until the claim is
    /// dropped; `None` when it runs already or another caller is starting
    /// it (both are what the caller asked for).
    fn claim(&self, uid: &str) -> Option<Claim<'_>> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        if pods.contains_key(uid) {
            return None;
        }
        let mut starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        starting.insert(uid.to_owned()).then(|| Claim { node: self, uid: uid.to_owned() })
    }

    /// Waits until no caller is starting `uid`.
    fn wait_started(&self, uid: &str) {
        let starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.started.wait_while(starting, |starting| starting.contains(uid)).unwrap_or_else(|e| e.into_inner()));
    }

    /// The status of a pod; see [`PodRuntime::pod_status`].
    pub fn status(&self, uid: &str) -> Option<PodStatus> {
        if let Some(pod) = self.pods.lock().unwrap_or_else(|e| e.into_inner()).get(uid) {
            return Some(pod.worker.status());
        }
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let w = waiting.get(uid)?;
        let containers = w
            .containers
            .iter()
            .map(|name| {
                let this = w.container.as_ref().is_none_or(|c| c == name);
                let state = if this {
                    let message = match (w.reason, &w.pull) {
                        ("ImagePullBackOff", Some((image, _, _))) => format!("Back-off pulling image {image:?}: {}", w.message),
                        _ => w.message.clone(),
                    };
                    ContainerState::Waiting { reason: w.reason.to_owned(), message: Some(message) }
                } else {
                    ContainerState::Waiting { reason: "ContainerCreating".to_owned(), message: None }
                };
                ContainerStatus {
                    name: name.clone(),
                    state,
                    last_termination: None,
                    ready: false,
                    restart_count: 0,
                    probe_failures: 0,
                    probe_message: None,
                    container_id: None,
                    image_id: None,
                }
            })
            .collect();
        Some(PodStatus { phase: Phase::Pending, pod_ip: None, containers })
    }

    /// Stops a pod; see [`PodRuntime::stop_pod`].
    pub fn stop(&self, uid: &str) -> Result<(), NodeError> {
        // A start under way ends (running or waiting) before it is undone.
        self.wait_started(uid);
        self.waiting().remove(uid);
        let found = self.found.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        let Some(pod) = self.pods.lock().unwrap_or_else(|e| e.into_inner()).remove(uid) else {
            return if found { self.remove_found(uid) } else { Ok(()) };
        };
        pod.worker.stop();
        // The namespaces first: the kernel then deletes the veth pair with
        // the pod's network namespace, in its own batch. Deleting the pair
        // ourselves took 20 ms and slowed the next pod's start by 6-9 ms
        // (docs/benchmarks.md); the address is released only once the pair
        // is gone, so no new pod can meet the old one on the bridge.
        let removed = pod.sandbox.remove();
        self.rt.block_on(PodInterface::detach_after_namespace(&self.handle, &pod.host_veth, PAIR_GONE_WITHIN))?;
        removed?;
        self.ipam.release(uid)?;
        self.remove_pod_dirs(uid);
        crate::cgroups::remove(&format!("{}/{uid}", self.config.cgroup_root));
        Ok(())
    }

    /// Rewrites a pod's volumes; see [`PodRuntime::refresh`].
    pub fn refresh_volumes(&self, pod: &Pod, resolve: &dyn Resolve) -> Result<(), NodeError> {
        let uid = pod.metadata.uid.clone().ok_or(NodeError::NoUid)?;
        if !self.pods.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&uid) {
            return Ok(());
        }
        crate::podspec::refresh_volumes(pod, &self.pod_dirs(&uid).data, &self.config.settings, &DynResolve(resolve))?;
        Ok(())
    }

    /// A container's log file; see [`PodRuntime::log_path`].
    pub fn log_file(&self, uid: &str, container: &str, previous: bool) -> Option<PathBuf> {
        let path = self.layout.log_path(&self.instance(uid, container, previous)?);
        path.exists().then_some(path)
    }

    /// A command in a running container; see [`PodRuntime::exec`].
    pub fn exec_command(&self, uid: &str, container: &str, args: &[String], tty: bool) -> Option<std::process::Command> {
        let id = self.instance(uid, container, false)?;
        if !matches!(self.layout.status(&id), Ok(Some(crate::Status::Running { .. }))) {
            return None;
        }
        Some(if tty { self.layout.exec_tty(&id, args) } else { self.layout.exec(&id, args) })
    }

    /// The pods this node runs or tries to start; see [`PodRuntime::pods`].
    pub fn pod_uids(&self) -> Vec<String> {
        let mut uids: Vec<String> = self.pods.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        uids.extend(self.waiting.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned());
        uids.extend(self.found.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
        uids.extend(self.starting.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
        uids.sort();
        uids.dedup();
        uids
    }
}

/// A start of one pod under way (see [`Node::claim`]).
struct Claim<'n> {
    node: &'n Node,
    uid: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.node.starting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.uid);
        self.node.started.notify_all();
    }
}

/// The node's own runtime, dropped where tokio allows it. Dropping a
/// runtime waits for its blocking tasks (a tick may be starting a
/// container), which tokio refuses from within another runtime's task,
/// and that is where a daemon's last reference to its node goes when it
/// stops (its API's state): on SIGTERM the daemon panicked there, and
/// exited 101. There, the runtime is dropped on a thread of its own, and
/// waited for.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the runtime is there until the node is dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        let Some(runtime) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("node-shutdown".into()).spawn(move || drop(runtime)).map(|t| t.join());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let pods = std::mem::take(&mut *self.pods.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, pod) in pods {
            pod.worker.abandon();
        }
    }
}

impl Node {
    /// The container id of a container's current instance, or the one
    /// before it.
    fn instance(&self, uid: &str, container: &str, previous: bool) -> Option<String> {
        let restarts = match self.status(uid) {
            Some(status) => status.containers.iter().find(|c| c.name == container)?.restart_count,
            // A pod that finished before the daemon restarted is never run
            // again, so no worker knows it; its containers' folders are
            // still here (until the pod is deleted), and kubelet serves an
            // exited container's log the same way: the latest instance.
            None => self.last_instance_on_disk(uid, container)?,
        };
        let instance = if previous { restarts.checked_sub(1)? } else { restarts };
        Some(worker::instance_id(uid, container, instance))
    }

    /// The highest instance of a container with a folder on disk.
    fn last_instance_on_disk(&self, uid: &str, container: &str) -> Option<u32> {
        let prefix = format!("{uid}-{container}-");
        let ids = self.layout.ids().ok()?;
        ids.iter().filter_map(|id| id.strip_prefix(&prefix)?.parse::<u32>().ok()).max()
    }
}

/// Lets a `&dyn Resolve` be used where translation takes `impl Resolve`.
struct DynResolve<'a>(&'a dyn Resolve);

impl Resolve for DynResolve<'_> {
    fn image(
        &self,
        reference: &str,
        pull_policy: &str,
        credentials: Option<&crate::podspec::pull_secrets::Credentials>,
    ) -> Result<crate::podspec::ResolvedImage, String> {
        self.0.image(reference, pull_policy, credentials)
    }
    fn config_map(&self, namespace: &str, name: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        self.0.config_map(namespace, name)
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        self.0.secret(namespace, name)
    }
    fn claim(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        self.0.claim(namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_cgroup_sits_beneath_the_daemons_own() {
        let v1 = "12:cpu,cpuacct:/system.slice/x\n7:memory:/system.slice/driftless.service\n0::/system.slice/driftless.service\n";
        assert_eq!(own_cgroup(v1), "/system.slice/driftless.service");
        assert_eq!(own_cgroup("0::/user.slice/session-1.scope\n"), "/user.slice/session-1.scope");
        assert_eq!(own_cgroup(""), "/");
        assert!(default_cgroup_root().ends_with("/driftless"));
    }
}
