//! [`Proxy`]: the service proxy's life on a node: start (check routes,
//! install the table and its guards, then turn on forwarding), apply
//! tables, shut down (put settings back, remove the table).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::rules::{self, Ruleset};
use crate::table::{self, Bounds, ServiceTable};
use crate::{conntrack, nft, routes, sysctl};

/// From this many new chains on, an apply makes and fills them apart, side
/// by side (`Proxy::make_apart`); below it one `nft` run is quicker.
const MADE_APART: usize = 1000;

/// The service proxy on one node: one nftables table it owns wholly.
///
/// Calls block (they run `nft` and read netlink, a few milliseconds); from
/// async code call them on a blocking thread. One proxy per bridge.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    installed: Ruleset,
    changed: Vec<sysctl::Changed>,
    running: bool,
    /// The UDP ports' backends as last applied (see `conntrack.rs`).
    udp_backends: HashMap<String, Vec<SocketAddr>>,
}

impl Proxy {
    /// Starts the proxy with no services.
    ///
    /// What it changes besides its table (all put back on shutdown):
    /// `net.ipv4.conf.BRIDGE.forwarding=1` (pods reach services on other
    /// pods), `net.ipv4.conf.BRIDGE.route_localnet=1` (loopback NodePorts
    /// reach pods). Global settings (`net.ipv4.ip_forward`) are left alone;
    /// hairpin mode on the bridge's ports is the node runtime's, set as it
    /// attaches each pod.
    ///
    /// Refuses unless the pod CIDR is routed to the bridge and the service
    /// CIDR is routed `local` on `lo`, and unless bridged traffic passes
    /// through netfilter (`net.bridge.bridge-nf-call-iptables=1`; without
    /// it, replies between pods on the bridge bypass un-DNAT). Then it
    /// installs its table (replacing one a previous run left), with the
    /// leak guard, and only then turns on `forwarding` and
    /// `route_localnet` for the bridge alone.
    pub fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        config.check()?;
        routes::verify(&config)?;
        sysctl::require("net/bridge/bridge-nf-call-iptables", "1", "replies between pods on the bridge must be un-NATed")?;
        let installed = rules::ruleset(&config, &[]);
        nft::run(&config.nft, &rules::start(&config.table, &installed))?;
        let mut proxy = Proxy { config, installed, changed: Vec::new(), running: true, udp_backends: HashMap::new() };
        // Dropping `proxy` on an error below removes the table again.
        let udp_secs = proxy.config.udp_idle_timeout.as_secs() as u32;
        nft::run_text(&proxy.config.nft, &rules::udp_timeout(&proxy.config.table, udp_secs))?;
        let bridge = proxy.config.bridge.clone();
        for (setting, why) in [("forwarding", "pods reach services on other pods"), ("route_localnet", "loopback NodePorts reach pods")] {
            let changed = sysctl::set(&format!("net/ipv4/conf/{bridge}/{setting}"), "1")?;
            debug!(%bridge, setting, why, "enabled for the bridge");
            proxy.changed.extend(changed);
        }
        info!(table = %proxy.config.table, bridge = %proxy.config.bridge, service_cidr = %proxy.config.service_cidr, pod_cidr = %proxy.config.pod_cidr, "service proxy started");
        Ok(proxy)
    }

    /// Makes the node serve exactly `table`: level-triggered and
    /// idempotent. A refused table changes nothing. Only chains that
    /// changed are rewritten, in one atomic transaction; new chains and
    /// sets are made just before it (`rules::additions`, or for a thousand
    /// chains and more, made and filled side by side: `make_apart`), which
    /// changes no packet's fate while nothing refers to them. Open
    /// connections keep their backend (conntrack holds them), new ones see
    /// the table.
    pub fn apply(&mut self, table: &ServiceTable) -> Result<(), ProxyError> {
        let started = Instant::now();
        let result = self.program(table);
        let metrics = driftless_telemetry::metrics();
        metrics.proxy_apply_duration.observe(started.elapsed().as_secs_f64());
        let result_label = if result.is_ok() { "applied" } else { "failed" };
        metrics.proxy_applies.get_or_create(&driftless_telemetry::ResultLabel { result: result_label }).inc();
        result
    }

    fn program(&mut self, table: &ServiceTable) -> Result<(), ProxyError> {
        let bounds = Bounds { service_cidr: self.config.service_cidr, pod_cidr: self.config.pods(), node_addresses: &self.config.node_addresses };
        let ports = table::check(table, &bounds)?;
        routes::verify(&self.config)?;
        let desired = rules::ruleset_for(&self.config, &ports, &table::peers(table, &bounds));
        let started = Instant::now();
        // Many new chains (a first apply) are made and filled apart.
        let fresh: Vec<String> = desired.chains.keys().filter(|name| !self.installed.chains.contains_key(*name)).cloned().collect();
        let apart: &[String] = if fresh.len() >= MADE_APART { &fresh } else { &[] };
        if let Some(batch) = rules::additions(&self.config.table, &self.installed, &desired, apart) {
            nft::run(&self.config.nft, &batch)?;
            rules::stage(&mut self.installed, &desired, apart);
        }
        if !apart.is_empty() {
            self.make_apart(apart, &desired)?;
        }
        let Some(batch) = rules::transaction(&self.config.table, &self.installed, &desired) else {
            debug!(ports = ports.len(), "service table unchanged");
            return Ok(());
        };
        nft::run(&self.config.nft, &batch)?;
        let commands = batch.commands;
        self.installed = desired;
        // Only once the new rules are in: a flow deleted earlier could be
        // made again under the old ones.
        conntrack::forget(&conntrack::stale(&self.udp_backends, &table.ports));
        self.udp_backends = conntrack::udp_backends(&table.ports);
        info!(ports = ports.len(), commands, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "service table applied");
        Ok(())
    }

    /// Makes and fills `chains` (new, referred to by nothing yet) in one
    /// batch per core (at most four), run side by side: `nft` spends most
    /// of a large first apply parsing its input on one core (5000 ports as
    /// JSON: 0.86 s of 1.2 s; as text, less than half), while the kernel's
    /// part is short. What refers to
    /// these chains comes in the atomic transaction after.
    fn make_apart(&mut self, chains: &[String], desired: &Ruleset) -> Result<(), ProxyError> {
        let parts = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 4);
        let groups = rules::groups(chains, parts);
        let (table, program) = (self.config.table.as_str(), self.config.nft.as_path());
        let results: Vec<Result<(), nft::NftError>> = std::thread::scope(|scope| {
            let running: Vec<_> = groups.iter().map(|group| scope.spawn(move || nft::run(program, &rules::apart(table, group, desired)))).collect();
            running.into_iter().map(|thread| thread.join().expect("an nft batch thread does not panic")).collect()
        });
        // What landed is recorded (the kernel applies each batch whole or
        // not at all), so a failed part is made again by the next apply.
        let mut first = None;
        for (group, result) in groups.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    for name in group {
                        if let Some(chain) = desired.chains.get(&name) {
                            self.installed.chains.insert(name, chain.clone());
                        }
                    }
                }
                Err(error) => {
                    first.get_or_insert(error);
                }
            }
        }
        first.map_or(Ok(()), |error| Err(error.into()))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Removes everything it installed: settings back as they were, then
    /// the table. Dropping the proxy does the same, logging failures.
    pub fn shutdown(mut self) -> Result<(), ProxyError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), ProxyError> {
        if !std::mem::take(&mut self.running) {
            return Ok(());
        }
        // Forwarding off first: the guard is still there while it goes.
        let mut first: Option<ProxyError> = None;
        for changed in self.changed.drain(..).rev() {
            if let Err(error) = changed.restore() {
                first.get_or_insert(error.into());
            }
        }
        match nft::run(&self.config.nft, &rules::shutdown(&self.config.table)) {
            Err(error) if !error.is_missing() => {
                first.get_or_insert(error.into());
            }
            _ => {}
        }
        info!(table = %self.config.table, "service proxy stopped");
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            warn!(%error, table = %self.config.table, "service proxy cleanup failed");
        }
    }
}
