//! The nftables rule set for a service table, as a pure function: no
//! kernel, no clock. [`ruleset`] says what the table must hold;
//! `transaction` turns the difference from what it holds into one atomic
//! `nft` batch.
//!
//! The shape follows kube-proxy's nftables mode:
//!
//! ```text
//! table ip driftless {
//!   chain ct-prerouting/ct-output     { UDP frontends: ct timeout set "udp-idle" }
//!   chain nat-prerouting/nat-output   { jump services }
//!   chain services { ip daddr . meta l4proto . th dport vmap { F . tcp . P : goto svc-… } }
//!   chain svc-…    { ip saddr != POD_CIDR jump mark-for-masquerade
//!                    ip saddr @aff-…(ep) goto ep-…      # sessionAffinity
//!                    numgen inc mod N 0 goto ep-…1
//!                    numgen inc mod N-1 0 goto ep-…2  …  goto ep-…N
//!                    (past 16 endpoints: numgen inc mod N vmap { 0 : goto ep-…, … }) }
//!   chain ep-…     { ip saddr EP_IP jump mark-for-masquerade   # hairpin
//!                    update @aff-… { ip saddr }
//!                    meta l4proto tcp dnat to EP_IP:PORT }
//!   chain nat-postrouting { marked: clear the mark, masquerade fully-random }
//!   chain filter-input   { loopback guard; no-endpoint frontends: reject }
//!   chain filter-forward { leak guard }   chain filter-output { leak guard }
//! }
//! ```

mod expr;
mod names;
mod text;
mod transaction;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use nftables::expr::MetaKey;
use nftables::types::{NfChainType, NfHook};

use crate::config::ProxyConfig;
use crate::table::{CheckedPort, Protocol};
use expr::*;

pub(crate) use transaction::{Batch, additions, apart, groups, shutdown, stage, start, transaction, udp_timeout};

/// The conntrack timeout policy UDP service flows get.
pub(crate) const UDP_TIMEOUT: &str = "udp-idle";
/// The chain that marks a packet for masquerading.
pub(crate) const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
/// The chain that dispatches frontends to services.
pub(crate) const SERVICES: &str = "services";
/// The base chain that refuses traffic for frontends without endpoints.
pub(crate) const FILTER_INPUT: &str = "filter-input";
/// The base chain holding the forward leak guard.
pub(crate) const FILTER_FORWARD: &str = "filter-forward";
/// Up to this many endpoints a service chain picks one with a rule each,
/// above it with a verdict map.
///
/// Why: every verdict map in a rule is an anonymous set, and the kernel
/// (6.18 here) finds a new anonymous set's transaction by walking the
/// batch and names it by scanning the table's sets, so a batch of n
/// services with a map each costs O(n²): 5000 services of 3 endpoints took
/// 3.6 s of which 3 s in the kernel (`perf`: `__nft_set_trans_bind`,
/// `nf_tables_newset`), with plain rules 0.9 s. A rule per endpoint costs
/// the first packet of a connection one comparison per endpoint passed
/// (later packets follow conntrack); past 16 a map's one lookup wins.
pub(crate) const CASCADE_MAX: usize = 16;

/// Where a base chain hooks into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hook {
    pub(crate) kind: NfChainType,
    pub(crate) hook: NfHook,
    pub(crate) priority: i32,
}

/// One rule: statements and an optional comment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    pub(crate) statements: Vec<Stmt>,
    pub(crate) comment: Option<String>,
}

impl Rule {
    fn new(statements: Vec<Stmt>) -> Rule {
        Rule { statements, comment: None }
    }

    fn commented(statements: Vec<Stmt>, comment: &str) -> Rule {
        Rule { statements, comment: Some(names::comment(comment)) }
    }
}

/// One chain: a base chain has a hook.
///
/// Its rules are shared: what the table holds after an apply is the
/// desired rule set itself, so recording a large first apply (20,000
/// chains for 5,000 ports) copies no rule, and the next apply's diff finds
/// an unchanged chain by pointer before it compares rules.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Chain {
    pub(crate) hook: Option<Hook>,
    pub(crate) rules: Arc<Vec<Rule>>,
}

impl Chain {
    /// Whether it holds the same rules as `other`.
    pub(crate) fn same_rules(&self, other: &Chain) -> bool {
        Arc::ptr_eq(&self.rules, &other.rules) || self.rules == other.rules
    }
}

/// What the proxy's table holds (besides the table itself and its
/// `ct timeout` object).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Ruleset {
    pub(crate) chains: BTreeMap<String, Chain>,
    /// Affinity sets and their timeouts in seconds.
    pub(crate) sets: BTreeMap<String, u32>,
}

fn hook(kind: NfChainType, hook: NfHook, priority: i32) -> Option<Hook> {
    Some(Hook { kind, hook, priority })
}

// The kernel's priorities, as `nft` names them.
const MANGLE: i32 = -150;
const DSTNAT: i32 = -100;
const FILTER: i32 = 0;
const SRCNAT: i32 = 100;

impl Ruleset {
    fn chain(&mut self, name: &str, hook: Option<Hook>, rules: Vec<Rule>) {
        self.chains.insert(name.to_owned(), Chain { hook, rules: Arc::new(rules) });
    }
}

/// The rule set for `ports` (checked) under `config`, with no peers.
pub(crate) fn ruleset(config: &ProxyConfig, ports: &[CheckedPort]) -> Ruleset {
    ruleset_for(config, ports, &[])
}

/// The rule set for `ports` (checked) under `config`, this node's pods
/// answering the `peers` (the other nodes' addresses, checked).
pub(crate) fn ruleset_for(config: &ProxyConfig, ports: &[CheckedPort], peers: &[Ipv4Addr]) -> Ruleset {
    let mut rs = Ruleset::default();

    // UDP frontends get the proxy's idle timeout. The kernel attaches it
    // to a flow conntrack has just created and not yet confirmed: after
    // conntrack (-200), before DNAT (-100).
    let mut udp: Vec<SocketAddrV4> = ports.iter().filter(|p| p.protocol == Protocol::Udp).flat_map(|p| p.frontends.iter().copied()).collect();
    udp.sort();
    let timeout_rules = || {
        if udp.is_empty() {
            return vec![];
        }
        vec![Rule::new(vec![l4proto("udp"), eq(frontend_key(), set(udp.iter().map(|&f| frontend_element(f)).collect())), ct_timeout(UDP_TIMEOUT)])]
    };
    rs.chain("ct-prerouting", hook(NfChainType::Filter, NfHook::Prerouting, MANGLE), timeout_rules());
    rs.chain("ct-output", hook(NfChainType::Filter, NfHook::Output, MANGLE), timeout_rules());

    // DNAT, for traffic from pods (prerouting) and from the host (output).
    rs.chain("nat-prerouting", hook(NfChainType::NAT, NfHook::Prerouting, DSTNAT), vec![Rule::new(vec![jump(SERVICES)])]);
    rs.chain("nat-output", hook(NfChainType::NAT, NfHook::Output, DSTNAT), vec![Rule::new(vec![jump(SERVICES)])]);

    let mark = config.masquerade_mark;
    rs.chain(MARK_FOR_MASQUERADE, None, vec![Rule::new(vec![set_mark_bit(mark)])]);
    rs.chain(
        "nat-postrouting",
        hook(NfChainType::NAT, NfHook::Postrouting, SRCNAT),
        vec![Rule::new(vec![mark_bit_clear(mark), ret()]), Rule::new(vec![flip_mark_bit(mark)]), Rule::new(vec![masquerade()])],
    );

    // One chain per port with endpoints, one per endpoint; the dispatch
    // map sends each frontend to its port's chain.
    let mut dispatch: Vec<(SocketAddrV4, Protocol, String)> = Vec::new();
    let mut refused: BTreeMap<Protocol, Vec<SocketAddrV4>> = BTreeMap::new();
    for port in ports {
        if port.backends.is_empty() {
            refused.entry(port.protocol).or_default().extend(&port.frontends);
        } else {
            let service = names::service_chain(port);
            dispatch.extend(port.frontends.iter().map(|&f| (f, port.protocol, service.clone())));
            add_service(&mut rs, config, port, &service);
        }
    }
    dispatch.sort();
    let services = if dispatch.is_empty() {
        vec![]
    } else {
        let key = concat(vec![payload("ip", "daddr"), meta(MetaKey::L4proto), payload("th", "dport")]);
        let entries = dispatch
            .iter()
            .map(|(f, protocol, chain)| {
                (concat(vec![ip(*f.ip()), string(protocol.as_str()), nftables::expr::Expression::Number(u32::from(f.port()))]), goto(chain))
            })
            .collect();
        vec![Rule::new(vec![vmap(key, vmap_data(entries))])]
    };
    rs.chain(SERVICES, None, services);

    // Filtering. Route_localnet is on for the bridge (loopback NodePorts
    // need it), which would let pods reach the host's loopback services:
    // new connections to 127/8 from anywhere but lo are dropped, as
    // kube-proxy does since CVE-2020-8558.
    let mut input = vec![Rule::commented(
        vec![
            ne(meta(MetaKey::Iifname), string("lo")),
            eq(payload("ip", "daddr"), prefix("127.0.0.0/8".parse().expect("a CIDR"))),
            ct_state("new"),
            counter(),
            drop(),
        ],
        "no new connections to loopback from outside lo",
    )];
    for (protocol, mut frontends) in refused {
        if frontends.is_empty() {
            continue;
        }
        frontends.sort();
        let reject = match protocol {
            Protocol::Tcp => reject_tcp_reset(),
            Protocol::Udp => reject_port_unreachable(),
        };
        input.push(Rule::commented(
            vec![
                ct_state("new"),
                l4proto(protocol.as_str()),
                eq(frontend_key(), set(frontends.iter().map(|&f| frontend_element(f)).collect())),
                counter(),
                reject,
            ],
            "service ports without endpoints refuse at once",
        ));
    }
    rs.chain(FILTER_INPUT, hook(NfChainType::Filter, NfHook::Input, FILTER), input);

    // The leak guard: nothing from or to the pod or service ranges leaves
    // by any interface but the bridge or lo (forwarding is on for the
    // bridge; a missing route would otherwise send it to the default one),
    // but this node's pods' traffic to other nodes' pods (the cluster
    // CIDR, routed only to nodes, the rest of it unreachable).
    let ranges = || set(vec![prefix(config.pod_cidr), prefix(config.service_cidr)]);
    let local_links = || set(vec![string(config.bridge.clone()), string("lo")]);
    let guard = |field: &'static str| {
        let mut matches = vec![eq(payload("ip", field), ranges())];
        if field == "saddr" {
            // What pods start; their answers go back to whoever connected
            // (a NodePort's client, when not masqueraded to a local pod).
            matches.push(eq(ct("direction"), string("original")));
        }
        if field == "saddr"
            && let Some(cluster) = config.cluster_cidr
        {
            let mut allowed = vec![prefix(cluster)];
            let mut peers = peers.to_vec();
            peers.sort();
            peers.dedup();
            allowed.extend(peers.iter().map(|p| ip(*p)));
            matches.push(ne(payload("ip", "daddr"), set(allowed)));
        }
        matches.extend([ne(meta(MetaKey::Oifname), local_links()), counter(), drop()]);
        Rule::commented(matches, "pod and service traffic stays on the node, or goes to the cluster's pods")
    };
    rs.chain(FILTER_FORWARD, hook(NfChainType::Filter, NfHook::Forward, FILTER), vec![guard("saddr"), guard("daddr")]);
    rs.chain("filter-output", hook(NfChainType::Filter, NfHook::Output, FILTER), vec![guard("daddr")]);
    rs
}

/// A port's service chain, its endpoint chains and affinity sets.
fn add_service(rs: &mut Ruleset, config: &ProxyConfig, port: &CheckedPort, service: &str) {
    let name = port.name.as_str();
    let endpoints: Vec<(SocketAddrV4, String)> = port.backends.iter().map(|&b| (b, names::endpoint_chain(port, b))).collect();
    // Clients from outside the pod network (the host, loopback) are
    // masqueraded, so replies come back through the node.
    let mut rules = vec![Rule::commented(vec![ne(payload("ip", "saddr"), prefix(config.pod_cidr)), jump(MARK_FOR_MASQUERADE)], name)];
    if let Some(secs) = port.affinity_secs {
        for (backend, chain) in &endpoints {
            let set = names::affinity_set(port, *backend, secs);
            rules.push(Rule::commented(vec![client_in(&set), goto_stmt(chain)], name));
            rs.sets.insert(set, secs);
        }
    }
    if endpoints.len() <= CASCADE_MAX {
        // Round robin without a set: rule k sees the connections rules
        // before it passed on and takes every (n-k)-th of them, so each of
        // n endpoints gets every n-th connection, in turn; the last rule
        // takes what is left (one endpoint: just that rule).
        let n = endpoints.len();
        for (k, (_, chain)) in endpoints.iter().enumerate() {
            let mut statements = Vec::with_capacity(2);
            if k + 1 < n {
                statements.push(eq(numgen_inc((n - k) as u32), nftables::expr::Expression::Number(0)));
            }
            statements.push(goto_stmt(chain));
            rules.push(Rule::commented(statements, name));
        }
    } else {
        let entries = endpoints.iter().enumerate().map(|(i, (_, chain))| (nftables::expr::Expression::Number(i as u32), goto(chain))).collect();
        rules.push(Rule::commented(vec![vmap(numgen_inc(endpoints.len() as u32), vmap_data(entries))], name));
    }
    rs.chain(service, None, rules);

    for (backend, chain) in &endpoints {
        // Hairpin: a pod that reaches itself through the service would see
        // a packet from its own address and drop it; masquerade it.
        let mut rules = vec![Rule::commented(vec![eq(payload("ip", "saddr"), ip(*backend.ip())), jump(MARK_FOR_MASQUERADE)], name)];
        if let Some(secs) = port.affinity_secs {
            rules.push(Rule::commented(vec![remember_client(&names::affinity_set(port, *backend, secs))], name));
        }
        rules.push(Rule::commented(vec![l4proto(port.protocol.as_str()), dnat(*backend)], name));
        rs.chain(chain, None, rules);
    }
}

#[cfg(test)]
mod tests;
