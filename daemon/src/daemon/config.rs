//! The daemon's configuration: from `up`'s flags, kept in the data folder
//! (`config.json`) so that `reset` and a later `up` know the node's set-up,
//! and the lock that keeps two daemons off one data folder.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftless_runtime::node::{NodeConfig, PULL_BACKOFF, default_cgroup_root};
use driftless_runtime::podspec::NodeSettings;
use ipnet::Ipv4Net;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::CommandError;
use crate::cli::UpArgs;

/// Everything the daemon runs with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DaemonConfig {
    /// The repository (folder or URL).
    pub repo: String,
    /// The branch.
    pub branch: Option<String>,
    /// The path inside the repository.
    pub path: String,
    /// The data folder.
    pub data_dir: PathBuf,
    /// Where the node keeps its state, when not in the data folder.
    #[serde(default)]
    pub node_dir: Option<PathBuf>,
    /// etcd's URL when the store is there (`None`: SQLite in the data
    /// folder).
    #[serde(default)]
    pub store: Option<String>,
    /// Set the embedded store's files aside and start from an empty store
    /// (`--rebuild-store`): an action of this start, never saved.
    #[serde(skip)]
    pub rebuild_store: bool,
    /// etcd's CA, and this daemon's certificate and key, for `etcds://`.
    #[serde(default)]
    pub etcd_tls: Option<(PathBuf, PathBuf, PathBuf)>,
    /// How often to look at the branch.
    #[serde(with = "humantime_serde_opt")]
    pub interval: Option<Duration>,
    /// How often the node samples its pods' usage (10 s when absent).
    #[serde(default, with = "humantime_serde_opt")]
    pub metric_resolution: Option<Duration>,
    /// How often HPAs are evaluated (15 s when absent).
    #[serde(default, with = "humantime_serde_opt")]
    pub hpa_sync_period: Option<Duration>,
    /// How long a silent node stays Ready (40 s when absent).
    #[serde(default, with = "humantime_serde_opt")]
    pub node_monitor_grace_period: Option<Duration>,
    /// How long pods tolerate an unreachable or not-ready node by default
    /// (300 s when absent).
    #[serde(default, with = "humantime_serde_opt")]
    pub default_toleration: Option<Duration>,
    /// Whether an empty revision may delete everything.
    pub allow_empty: bool,
    /// Roll back every failed rollout, annotated or not.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// Commit automatic rollbacks on branches with this prefix.
    #[serde(default)]
    pub rollback_branch: Option<String>,
    /// The folder of allowed signers, when heads must be signed.
    #[serde(default)]
    pub verify_commits: Option<PathBuf>,
    /// Which commits are checked.
    #[serde(default = "head_mode")]
    pub verify_commits_mode: crate::cli::VerifyMode,
    /// Where webhooks are served.
    #[serde(default)]
    pub webhook_listen: Option<String>,
    /// The webhook secret's file.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// Where notifications go.
    #[serde(default)]
    pub notify: Vec<String>,
    /// The notifications' signing key's file.
    #[serde(default)]
    pub notify_secret_file: Option<PathBuf>,
    /// This node's name.
    pub node_name: String,
    /// The bridge.
    pub bridge: String,
    /// The pod CIDR.
    pub pod_cidr: String,
    /// The service CIDR.
    pub service_cidr: String,
    /// The cluster DNS address.
    pub cluster_dns: String,
    /// The cluster domain.
    pub cluster_domain: String,
    /// The cgroup pods go under.
    pub cgroup_root: String,
    /// The helper binary.
    pub shim: PathBuf,
    /// The TCP address of the API.
    pub listen: Option<String>,
    /// The tokens file for HTTPS.
    pub token_file: Option<PathBuf>,
    /// A certificate chain and key given instead of the made ones.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// More names for the made certificate.
    #[serde(default)]
    pub tls_sans: Vec<String>,
    /// hostPath volumes allowed.
    pub allow_host_path: bool,
    /// Privileged containers allowed.
    pub allow_privileged: bool,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Where the cluster DNS forwards other names.
    #[serde(default)]
    pub dns_upstreams: Vec<std::net::SocketAddr>,
    /// LoadBalancer addresses.
    #[serde(default)]
    pub lb_pool: Vec<std::net::Ipv4Addr>,
    /// The service proxy's nftables table.
    #[serde(default)]
    pub nft_table: String,
    /// Ingress HTTP listeners.
    #[serde(default)]
    pub ingress_http: Vec<std::net::SocketAddr>,
    /// Ingress HTTPS listeners.
    #[serde(default)]
    pub ingress_https: Vec<std::net::SocketAddr>,
    /// The IngressClass served.
    #[serde(default)]
    pub ingress_class: String,
    /// The address other nodes reach this one at (`--node-ip`); without
    /// it, the gateway of its pod CIDR.
    #[serde(default)]
    pub node_ip: Option<String>,
    /// The cluster CIDR (`--cluster-cidr`).
    #[serde(default)]
    pub cluster_cidr: Option<String>,
    /// No node of its own (`--no-local-node`).
    #[serde(default)]
    pub no_local_node: bool,
    /// The size of the pod CIDRs given to nodes from the cluster CIDR.
    #[serde(default)]
    pub node_cidr_mask_size: u8,
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

fn head_mode() -> crate::cli::VerifyMode {
    crate::cli::VerifyMode::Head
}

fn usage(message: String) -> CommandError {
    CommandError::Usage(message)
}

impl DaemonConfig {
    /// The configuration `up` was given.
    pub fn from_args(args: &UpArgs) -> Result<DaemonConfig, CommandError> {
        let shim = match &args.node.shim {
            Some(shim) => shim.clone(),
            None => find_shim()?,
        };
        let node_name = match &args.node.node_name {
            Some(name) => name.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into()),
        };
        // A relative repository path is made absolute, so the ledger and a
        // restarted daemon find the same folder.
        let repo = if args.repo.contains("://") || Path::new(&args.repo).is_absolute() {
            args.repo.clone()
        } else {
            std::path::absolute(&args.repo).map(|p| p.display().to_string()).unwrap_or_else(|_| args.repo.clone())
        };
        let config = DaemonConfig {
            repo,
            branch: args.branch.clone(),
            path: args.path.clone(),
            data_dir: std::path::absolute(&args.data_dir).unwrap_or_else(|_| args.data_dir.clone()),
            node_dir: args.node_dir.as_ref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
            store: args.store.clone(),
            rebuild_store: args.rebuild_store,
            etcd_tls: match (&args.etcd_cafile, &args.etcd_certfile, &args.etcd_keyfile) {
                (Some(ca), Some(cert), Some(key)) => Some((ca.clone(), cert.clone(), key.clone())),
                _ => None,
            },
            interval: args.interval,
            metric_resolution: Some(args.metric_resolution),
            hpa_sync_period: Some(args.horizontal_pod_autoscaler_sync_period),
            node_monitor_grace_period: Some(args.node_monitor_grace_period),
            default_toleration: Some(Duration::from_secs(args.default_unreachable_toleration_seconds)),
            allow_empty: args.allow_empty,
            rollback_on_failure: args.rollback_on_failure,
            rollback_branch: args.rollback_branch.clone(),
            verify_commits: args.verify_commits.as_ref().map(|keys| std::path::absolute(keys).unwrap_or_else(|_| keys.clone())),
            verify_commits_mode: args.verify_commits_mode,
            webhook_listen: args.webhook_listen.clone(),
            webhook_secret_file: args.webhook_secret_file.as_ref().map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone())),
            notify: args.notify.clone(),
            notify_secret_file: args.notify_secret_file.as_ref().map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone())),
            node_name,
            bridge: args.node.bridge.clone(),
            pod_cidr: args.node.pod_cidr.clone().unwrap_or_else(|| "10.244.0.0/24".into()),
            service_cidr: args.node.service_cidr.clone(),
            cluster_dns: args.node.cluster_dns.clone(),
            cluster_domain: args.node.cluster_domain.clone(),
            cgroup_root: args.node.cgroup_root.clone().unwrap_or_else(default_cgroup_root),
            shim,
            listen: args.listen.clone(),
            token_file: args.token_file.clone(),
            tls_cert: args.tls_cert.clone(),
            tls_key: args.tls_key.clone(),
            tls_sans: args.tls_sans.clone(),
            allow_host_path: args.node.allow_host_path,
            allow_privileged: args.node.allow_privileged,
            insecure_registries: args.node.insecure_registries.clone(),
            dns_upstreams: upstreams(&args.node.dns_upstreams)?,
            lb_pool: pool(&args.lb_pool)?,
            ingress_http: listeners("--ingress-http", &args.ingress_http)?,
            ingress_https: listeners("--ingress-https", &args.ingress_https)?,
            ingress_class: args.ingress_class.clone(),
            node_ip: args.node.node_ip.clone(),
            cluster_cidr: args.node.cluster_cidr.clone(),
            no_local_node: args.no_local_node,
            node_cidr_mask_size: args.node_cidr_mask_size,
            nft_table: args
                .node
                .nft_table
                .clone()
                .unwrap_or_else(|| if args.node.bridge == "driftless0" { "driftless".into() } else { format!("driftless_{}", args.node.bridge) }),
        };
        config.node_config()?;
        if let Some(keys) = &config.verify_commits {
            // A folder that cannot be read, or allows no one, would refuse
            // every commit: say so now rather than at the first sync.
            let signers = driftless_signatures::AllowedSigners::load(keys).map_err(|e| usage(format!("--verify-commits: {e}")))?;
            if signers.is_empty() {
                return Err(usage(format!("--verify-commits {}: no SSH or OpenPGP public key in it", keys.display())));
            }
        }
        Ok(config)
    }

    /// The configuration of `agent`: a node alone, without a repository
    /// or store of its own, serving no Ingress (the control plane's node
    /// does).
    pub fn for_agent(args: &crate::cli::AgentArgs) -> Result<DaemonConfig, CommandError> {
        let node = &args.node;
        let shim = match &node.shim {
            Some(shim) => shim.clone(),
            None => find_shim()?,
        };
        let node_ip = node.node_ip.clone().ok_or_else(|| usage("--node-ip: an agent must be given the address the control plane reaches it at".into()))?;
        let config = DaemonConfig {
            data_dir: std::path::absolute(&args.data_dir).unwrap_or_else(|_| args.data_dir.clone()),
            node_name: node.node_name.clone().ok_or_else(|| usage("--node-name: an agent must be given its node's name".into()))?,
            bridge: node.bridge.clone(),
            pod_cidr: node.pod_cidr.clone().unwrap_or_default(),
            service_cidr: node.service_cidr.clone(),
            cluster_dns: node.cluster_dns.clone(),
            cluster_domain: node.cluster_domain.clone(),
            cgroup_root: node.cgroup_root.clone().unwrap_or_else(default_cgroup_root),
            shim,
            allow_host_path: node.allow_host_path,
            allow_privileged: node.allow_privileged,
            insecure_registries: node.insecure_registries.clone(),
            dns_upstreams: upstreams(&node.dns_upstreams)?,
            nft_table: node
                .nft_table
                .clone()
                .unwrap_or_else(|| if node.bridge == "driftless0" { "driftless".into() } else { format!("driftless_{}", node.bridge) }),
            node_ip: Some(node_ip.clone()),
            cluster_cidr: node.cluster_cidr.clone(),
            listen: Some(args.listen.clone().unwrap_or_else(|| std::net::SocketAddr::new(node_ip.parse().unwrap_or([0, 0, 0, 0].into()), 10250).to_string())),
            ..DaemonConfig::default()
        };
        // Without a pod CIDR, the control plane gives one first.
        if !config.pod_cidr.is_empty() {
            config.node_config()?;
        }
        Ok(config)
    }

    /// The address this node is known by: its Node's InternalIP, its
    /// pods' hostIP.
    pub fn host_ip(&self) -> Result<String, CommandError> {
        match &self.node_ip {
            Some(ip) => Ok(ip.clone()),
            None => self.node_address(),
        }
    }

    fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("config.json")
    }

    /// Writes the configuration into its data folder.
    pub fn save(&self) -> Result<(), CommandError> {
        let path = DaemonConfig::path_in(&self.data_dir);
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&path, text).map_err(|source| CommandError::Io { path, source })
    }

    /// The configuration the last `up` on `data_dir` ran with.
    pub fn load(data_dir: &Path) -> Result<DaemonConfig, CommandError> {
        let path = DaemonConfig::path_in(data_dir);
        let text = std::fs::read_to_string(&path).map_err(|source| CommandError::Io { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| usage(format!("{}: {e}", path.display())))
    }

    fn pod_net(&self) -> Result<Ipv4Net, CommandError> {
        self.pod_cidr.parse().map_err(|e| usage(format!("--pod-cidr {}: {e}", self.pod_cidr)))
    }

    /// The cluster DNS address.
    pub fn dns_address(&self) -> Result<std::net::Ipv4Addr, CommandError> {
        self.cluster_dns.parse().map_err(|e| usage(format!("--cluster-dns {}: {e}", self.cluster_dns)))
    }

    /// The node's address: the gateway of its pod CIDR, on the bridge.
    pub fn node_address(&self) -> Result<String, CommandError> {
        let net = self.pod_net()?;
        Ok(net.hosts().next().map(|ip| ip.to_string()).unwrap_or_else(|| net.addr().to_string()))
    }

    /// The tokens file HTTPS clients are checked against.
    pub fn tokens_path(&self) -> PathBuf {
        self.token_file.clone().unwrap_or_else(|| super::pki::default_tokens(&self.data_dir))
    }

    /// The names and addresses the made serving certificate covers.
    pub fn tls_names(&self) -> Result<Vec<String>, CommandError> {
        let mut names = vec!["localhost".to_owned(), self.node_name.clone(), "127.0.0.1".to_owned(), "::1".to_owned(), self.node_address()?];
        if let Some(listen) = &self.listen
            && let Ok(address) = listen.parse::<std::net::SocketAddr>()
            && !address.ip().is_unspecified()
        {
            names.push(address.ip().to_string());
        }
        names.extend(self.tls_sans.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        Ok(names)
    }

    /// Where the node keeps its containers, volumes and images.
    pub fn node_dir(&self) -> PathBuf {
        self.node_dir.clone().unwrap_or_else(|| self.data_dir.clone())
    }

    /// The node runtime's configuration.
    pub fn node_config(&self) -> Result<NodeConfig, CommandError> {
        let service: Ipv4Net = self.service_cidr.parse().map_err(|e| usage(format!("--service-cidr {}: {e}", self.service_cidr)))?;
        Ok(NodeConfig {
            data_dir: self.node_dir(),
            run_dir: self.node_dir().join("run"),
            shim: self.shim.clone(),
            bridge: self.bridge.clone(),
            pod_cidr: self.pod_net()?,
            cgroup_root: self.cgroup_root.clone(),
            service_cidr: Some(service),
            cluster_cidr: match &self.cluster_cidr {
                Some(cidr) => Some(cidr.parse().map_err(|e| usage(format!("--cluster-cidr {cidr}: {e}")))?),
                None => None,
            },
            settings: NodeSettings {
                cluster_dns: self.cluster_dns.clone(),
                cluster_domain: self.cluster_domain.clone(),
                allow_host_path: self.allow_host_path,
                allow_privileged: self.allow_privileged,
                node_name: self.node_name.clone(),
                cpus: driftless_controllers::node::NodeInfo::cpus_of_this_machine(),
                memory: driftless_controllers::node::NodeInfo::memory_of_this_machine(),
            },
            pull_backoff: PULL_BACKOFF,
        })
    }
}

/// `--dns-upstream`s, or the host's nameservers.
fn upstreams(given: &[String]) -> Result<Vec<std::net::SocketAddr>, CommandError> {
    if given.iter().any(|g| g == "none") {
        return Ok(Vec::new());
    }
    let parse = |text: &str| -> Result<std::net::SocketAddr, CommandError> {
        text.parse::<std::net::SocketAddr>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
            .map_err(|_| usage(format!("--dns-upstream {text:?}: expected an address, with or without a port")))
    };
    if !given.is_empty() {
        return given.iter().map(|g| parse(g)).collect();
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    Ok(resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect())
}

/// Listen addresses, comma-separated; empty for none.
fn listeners(flag: &str, text: &str) -> Result<Vec<std::net::SocketAddr>, CommandError> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().map_err(|_| usage(format!("{flag} {t:?}: expected ADDRESS:PORT")))).collect()
}

/// `--lb-pool`: addresses and inclusive ranges, comma-separated.
fn pool(text: &str) -> Result<Vec<std::net::Ipv4Addr>, CommandError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || usage(format!("--lb-pool {part:?}: expected an address or a range like 127.0.0.100-127.0.0.120"));
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: std::net::Ipv4Addr = first.trim().parse().map_err(|_| bad())?;
        let last: std::net::Ipv4Addr = last.trim().parse().map_err(|_| bad())?;
        if u32::from(last) < u32::from(first) || u32::from(last) - u32::from(first) > 65_535 {
            return Err(bad());
        }
        out.extend((u32::from(first)..=u32::from(last)).map(std::net::Ipv4Addr::from));
    }
    Ok(out)
}

/// `driftless-shim` beside this binary, else on `PATH`.
fn find_shim() -> Result<PathBuf, CommandError> {
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join("driftless-shim")));
    if let Some(path) = beside.filter(|p| p.exists()) {
        return Ok(path);
    }
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).map(|d| d.join("driftless-shim")).find(|p| p.exists());
    on_path.ok_or_else(|| {
        usage("cannot find the helper driftless-shim beside this binary or on PATH: build it (cargo build -p driftless-runtime) or pass --shim".into())
    })
}

/// Holds the data folder's lock while alive.
pub(super) struct Lock(#[allow(dead_code)] Flock<File>);

/// How long taking the lock waits for a holder that is going away.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the data folder's lock, or says which daemon holds it.
///
/// It waits a little first: a daemon that was just killed may have been
/// starting a helper, and the child holds a copy of the lock until it
/// execs, so `reset` or a restart right after the kill found the folder
/// "in use" for a moment.
pub(super) fn lock(data_dir: &Path) -> Result<Lock, CommandError> {
    lock_file(data_dir, "daemon.lock")
}

/// The node's own lock, in its folder: one daemon runs a node at a time,
/// whichever data folder it has.
pub(super) fn lock_node(node_dir: &Path) -> Result<Lock, CommandError> {
    lock_file(node_dir, "node.lock")
}

fn lock_file(data_dir: &Path, name: &str) -> Result<Lock, CommandError> {
    let path = data_dir.join(name);
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(|source| CommandError::Io { path: path.clone(), source })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Lock(lock)),
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(_) => return Err(usage(format!("another driftless daemon is using {} (it holds {})", data_dir.display(), path.display()))),
        }
    }
}
