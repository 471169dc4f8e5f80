//! Building a [`Zone`] from Services, Endpoints and Pods: the records of the
//! Kubernetes DNS specification, as a pure function (no I/O, no clock).
//!
//! Names are gathered first into sorted sets per owner name (so duplicates
//! from Endpoints and from Pods collapse and the output is deterministic),
//! then every ancestor inside the domain becomes an empty non-terminal, then
//! each set becomes ready records.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use driftless_model::DEFAULT_NAMESPACE;
use driftless_model::k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Pod, Service};
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use super::names::{absolute, dashed, in_addr_arpa, ip6_arpa, is_label, reverse, under};
use super::{DEFAULT_TTL, Node, Zone};
use crate::ZoneError;

impl Zone {
    /// Builds the zone for cluster domain `domain` (e.g. `cluster.local`)
    /// from the cluster's Services, Endpoints and Pods.
    ///
    /// Records (all with [`DEFAULT_TTL`] until the server stamps its own):
    /// - `<svc>.<ns>.svc.<domain>`: A/AAAA for each ClusterIP; for a
    ///   headless service (`clusterIP: None`) one per ready endpoint address
    ///   (not-ready ones too with `publishNotReadyAddresses`); a CNAME to
    ///   `spec.externalName` for an ExternalName service.
    /// - `<host>.<svc>.<ns>.svc.<domain>`: A/AAAA for each such headless
    ///   endpoint, `<host>` being its `hostname` or its dashed IP
    ///   (`10-244-0-5`); and for each pod with `spec.hostname` and
    ///   `spec.subdomain` naming a headless service of its namespace, when
    ///   the pod is Ready (or the service publishes not-ready addresses).
    /// - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV for each named
    ///   port: to the service name (ClusterIP) or to each endpoint's name
    ///   (headless), with the targets' addresses kept for the additional
    ///   section.
    /// - `<dashed-ip>.<ns>.pod.<domain>`: A/AAAA for every pod IP of a pod
    ///   that is not Succeeded or Failed (CoreDNS's `pods verified`).
    /// - PTR under `in-addr.arpa.`/`ip6.arpa.` for ClusterIPs (to the
    ///   service), headless endpoint addresses and hostname pods (to their
    ///   names).
    ///
    /// Objects that cannot be named (an unparsable IP, a hostname that is
    /// not a DNS label) are left out and listed in [`Zone::skipped`]. Only
    /// an invalid `domain` is an error.
    ///
    /// Pods are taken one at a time (a slice, or an iterator that makes
    /// each as it is asked for): a node's DNS answers for every pod of the
    /// cluster, and a rebuild need not hold them all at once.
    pub fn build(
        domain: &str,
        services: &[Service],
        endpoints: &[Endpoints],
        pods: impl IntoIterator<Item = impl std::borrow::Borrow<Pod>>,
    ) -> Result<Zone, ZoneError> {
        let domain = parse_domain(domain)?;
        let mut builder = Builder::new(domain);
        let endpoints: HashMap<(&str, &str), &Endpoints> =
            endpoints.iter().filter_map(|ep| Some(((namespace(&ep.metadata), ep.metadata.name.as_deref()?), ep))).collect();
        // Headless services by (namespace, name): whether they publish
        // not-ready addresses.
        let mut headless = HashMap::new();
        for service in services {
            builder.service(service, &endpoints, &mut headless);
        }
        for pod in pods {
            builder.pod(std::borrow::Borrow::borrow(&pod), &headless);
        }
        Ok(builder.finish())
    }
}

fn parse_domain(domain: &str) -> Result<Name, ZoneError> {
    let invalid = |reason: &str| ZoneError::InvalidDomain { domain: domain.to_owned(), reason: reason.to_owned() };
    let name = absolute(domain).ok_or_else(|| invalid("not a domain name"))?;
    if !name.iter().all(|label| std::str::from_utf8(label).is_ok_and(is_label)) {
        return Err(invalid("labels must be letters, digits and hyphens"));
    }
    // The zone's own names (its SOA's) must fit under it; objects' names
    // that do not fit are skipped, these cannot be.
    if under(&["hostmaster"], &name).is_none() || under(&["ns", "dns"], &name).is_none() {
        return Err(invalid("too long: hostmaster.<domain> must fit in a DNS name (255 bytes)"));
    }
    Ok(name)
}

fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().filter(|ns| !ns.is_empty()).unwrap_or(DEFAULT_NAMESPACE)
}

/// What one owner name will hold, gathered before records are made.
#[derive(Default)]
struct Names {
    ips: BTreeSet<IpAddr>,
    /// (port, target) of each SRV record.
    srv: BTreeSet<(u16, Name)>,
    ptr: BTreeSet<Name>,
    cname: Option<Name>,
}

struct Builder {
    domain: Name,
    names: BTreeMap<Name, Names>,
    skipped: Vec<String>,
}

impl Builder {
    fn new(domain: Name) -> Self {
        Builder { domain, names: BTreeMap::new(), skipped: Vec::new() }
    }

    fn at(&mut self, name: &Name) -> &mut Names {
        self.names.entry(name.clone()).or_default()
    }

    fn service<'a>(&mut self, service: &'a Service, endpoints: &HashMap<(&str, &str), &Endpoints>, headless: &mut HashMap<(&'a str, &'a str), bool>) {
        let Some(name) = service.metadata.name.as_deref() else { return };
        let ns = namespace(&service.metadata);
        let Some(fqdn) = under(&[name, ns, "svc"], &self.domain) else {
            self.skipped.push(format!("service {ns}/{name}: its name is not a DNS label"));
            return;
        };
        // The service's name exists whatever records it ends up with.
        self.at(&fqdn);
        let Some(spec) = service.spec.as_ref() else { return };

        if spec.type_.as_deref() == Some("ExternalName") {
            match spec.external_name.as_deref().and_then(absolute) {
                Some(target) => self.at(&fqdn).cname = Some(target),
                None => self.skipped.push(format!("service {ns}/{name}: externalName is not a domain name")),
            }
            return;
        }

        let cluster_ips: Vec<&str> = match spec.cluster_ips.as_deref() {
            Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            _ => spec.cluster_ip.as_deref().into_iter().collect(),
        };
        if cluster_ips.first() == Some(&"None") {
            let publish = spec.publish_not_ready_addresses.unwrap_or(false);
            headless.insert((ns, name), publish);
            if let Some(subsets) = endpoints.get(&(ns, name)).and_then(|ep| ep.subsets.as_deref()) {
                for subset in subsets {
                    self.headless_subset(&fqdn, name, ns, subset, publish);
                }
            }
            return;
        }

        for text in cluster_ips.into_iter().filter(|ip| !ip.is_empty()) {
            let Ok(ip) = text.parse::<IpAddr>() else {
                self.skipped.push(format!("service {ns}/{name}: clusterIP {text:?} is not an IP address"));
                continue;
            };
            self.at(&fqdn).ips.insert(ip);
            self.at(&reverse(ip)).ptr.insert(fqdn.clone());
        }
        for port in spec.ports.iter().flatten() {
            let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) else { continue };
            let Ok(number) = u16::try_from(port.port) else { continue };
            let proto = port.protocol.as_deref().unwrap_or("TCP");
            match self.srv_name(port_name, proto, name, ns) {
                Some(srv) => {
                    self.at(&srv).srv.insert((number, fqdn.clone()));
                }
                None => self.skipped.push(format!("service {ns}/{name}: port name {port_name:?} is not a DNS label")),
            }
        }
    }

    /// `_<port>._<proto>.<svc>.<ns>.svc.<domain>`.
    fn srv_name(&self, port: &str, proto: &str, service: &str, ns: &str) -> Option<Name> {
        let port = format!("_{port}");
        let proto = format!("_{}", proto.to_ascii_lowercase());
        under(&[&port, &proto, service, ns, "svc"], &self.domain)
    }

    /// The records of one subset of a headless service's Endpoints.
    fn headless_subset(&mut self, fqdn: &Name, service: &str, ns: &str, subset: &EndpointSubset, publish: bool) {
        let not_ready = subset.not_ready_addresses.iter().flatten().filter(|_| publish);
        for address in subset.addresses.iter().flatten().chain(not_ready) {
            let Ok(ip) = address.ip.parse::<IpAddr>() else {
                self.skipped.push(format!("endpoints {ns}/{service}: {:?} is not an IP address", address.ip));
                continue;
            };
            let host = match address.hostname.as_deref().filter(|h| !h.is_empty()) {
                Some(hostname) => hostname.to_owned(),
                None => dashed(ip),
            };
            let Some(target) = under(&[&host, service, ns, "svc"], &self.domain) else {
                self.skipped.push(format!("endpoints {ns}/{service}: hostname {host:?} is not a DNS label"));
                continue;
            };
            self.at(fqdn).ips.insert(ip);
            self.at(&target).ips.insert(ip);
            self.at(&reverse(ip)).ptr.insert(target.clone());
            for port in subset.ports.iter().flatten() {
                let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) else { continue };
                let Ok(number) = u16::try_from(port.port) else { continue };
                let proto = port.protocol.as_deref().unwrap_or("TCP");
                match self.srv_name(port_name, proto, service, ns) {
                    Some(srv) => {
                        self.at(&srv).srv.insert((number, target.clone()));
                    }
                    None => self.skipped.push(format!("endpoints {ns}/{service}: port name {port_name:?} is not a DNS label")),
                }
            }
        }
    }

    fn pod(&mut self, pod: &Pod, headless: &HashMap<(&str, &str), bool>) {
        let Some(name) = pod.metadata.name.as_deref() else { return };
        let ns = namespace(&pod.metadata);
        let status = pod.status.as_ref();
        if matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
            return;
        }
        let mut ips = Vec::new();
        let listed = status.and_then(|s| s.pod_ips.as_deref()).unwrap_or_default();
        let texts: Vec<&str> =
            if listed.is_empty() { status.and_then(|s| s.pod_ip.as_deref()).into_iter().collect() } else { listed.iter().map(|ip| ip.ip.as_str()).collect() };
        for text in texts.into_iter().filter(|ip| !ip.is_empty()) {
            match text.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => self.skipped.push(format!("pod {ns}/{name}: podIP {text:?} is not an IP address")),
            }
        }
        if ips.is_empty() {
            return;
        }
        for &ip in &ips {
            if let Some(fqdn) = under(&[&dashed(ip), ns, "pod"], &self.domain) {
                self.at(&fqdn).ips.insert(ip);
            }
        }

        let spec = pod.spec.as_ref();
        let hostname = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty());
        let subdomain = spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty());
        let (Some(hostname), Some(subdomain)) = (hostname, subdomain) else { return };
        let Some(&publish) = headless.get(&(ns, subdomain)) else { return };
        if !publish && !is_ready(pod) {
            return;
        }
        let Some(fqdn) = under(&[hostname, subdomain, ns, "svc"], &self.domain) else {
            self.skipped.push(format!("pod {ns}/{name}: hostname {hostname:?} is not a DNS label"));
            return;
        };
        for ip in ips {
            self.at(&fqdn).ips.insert(ip);
            self.at(&reverse(ip)).ptr.insert(fqdn.clone());
        }
    }

    fn finish(mut self) -> Zone {
        // Every name between an owned name and the apex exists (an empty
        // non-terminal: NODATA, not NXDOMAIN), and so does the apex.
        let owned: Vec<Name> = self.names.keys().filter(|name| self.domain.zone_of(name)).cloned().collect();
        for name in owned {
            let mut parent = name.base_name();
            while parent.num_labels() > self.domain.num_labels() {
                self.names.entry(parent.clone()).or_default();
                parent = parent.base_name();
            }
        }
        self.names.entry(self.domain.clone()).or_default();

        let ttl = DEFAULT_TTL;
        let mut nodes = HashMap::with_capacity(self.names.len());
        for (name, names) in &self.names {
            let mut node = Node::default();
            for &ip in &names.ips {
                match ip {
                    IpAddr::V4(v4) => node.a.push(Record::from_rdata(name.clone(), ttl, RData::A(A(v4)))),
                    IpAddr::V6(v6) => node.aaaa.push(Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6)))),
                }
            }
            // Equal weights summing to about 100, as CoreDNS gives them.
            let weight = u16::try_from(100 / names.srv.len().max(1)).unwrap_or(1).max(1);
            let mut targets = BTreeSet::new();
            for (port, target) in &names.srv {
                let srv = SRV::new(0, weight, *port, target.clone());
                node.srv.push(Record::from_rdata(name.clone(), ttl, RData::SRV(srv)));
                targets.insert(target);
            }
            for target in targets {
                for &ip in self.names.get(target).map(|t| &t.ips).into_iter().flatten() {
                    let rdata = match ip {
                        IpAddr::V4(v4) => RData::A(A(v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                    };
                    node.srv_additional.push(Record::from_rdata(target.clone(), ttl, rdata));
                }
            }
            for target in &names.ptr {
                node.ptr.push(Record::from_rdata(name.clone(), ttl, RData::PTR(PTR(target.clone()))));
            }
            if let Some(target) = &names.cname {
                node.cname = Some(Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target.clone()))));
            }
            nodes.insert(LowerName::new(name), node);
        }

        let soa = |owner: &Name| -> Record {
            let mname = under(&["ns", "dns"], &self.domain).expect("a valid name under the domain");
            let rname = under(&["hostmaster"], &self.domain).expect("a valid name under the domain");
            let soa = SOA::new(mname, rname, 1, 7200, 1800, 86400, ttl);
            Record::from_rdata(owner.clone(), ttl, RData::SOA(soa))
        };
        Zone {
            soa: soa(&self.domain),
            soa_v4: soa(&Name::from(in_addr_arpa())),
            soa_v6: soa(&Name::from(ip6_arpa())),
            domain: LowerName::new(&self.domain),
            nodes,
            ttl,
            skipped: self.skipped,
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
}
