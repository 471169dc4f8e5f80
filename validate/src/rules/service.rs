//! Services and Endpoints.

use std::collections::HashSet;

use driftless_model::k8s_openapi::api::core::v1 as core;

use super::{int_or_name_port, one_of, port_number, required};
use crate::names;
use crate::{Issues, Ptr};

/// The NodePort range Kubernetes allocates from by default.
pub(crate) const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;

pub(crate) fn service(service: &core::Service, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(service.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    one_of(issues, &at.key("type"), kind, &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]);
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let headless = cluster_ip == "None";
    let ports = spec.ports.as_deref().unwrap_or_default();

    if kind == "ExternalName" {
        match spec.external_name.as_deref() {
            None | Some("") => issues.error(&at, "missing required field \"externalName\" for type ExternalName"),
            Some(name) => issues.check(&at.key("externalName"), names::dns1123_subdomain(name.trim_end_matches('.'))),
        }
        if !cluster_ip.is_empty() {
            issues.error(&at.key("clusterIP"), "must be empty for type ExternalName");
        }
    } else if ports.is_empty() && !headless {
        issues.error(&at.key("ports"), "must have at least one port (only a headless service, clusterIP: None, may have none)");
    }
    if !cluster_ip.is_empty()
        && !headless
        && let Err(message) = names::ip(cluster_ip)
    {
        issues.error(&at.key("clusterIP"), format!("{message}, or \"None\""));
    }
    if headless && matches!(kind, "NodePort" | "LoadBalancer") {
        issues.error(&at.key("clusterIP"), format!("may not be \"None\" for type {kind}"));
    }
    if let Some(affinity) = &spec.session_affinity {
        one_of(issues, &at.key("sessionAffinity"), affinity, &["None", "ClientIP"]);
        let timeout = spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref()).and_then(|c| c.timeout_seconds);
        if let Some(t) = timeout.filter(|t| !(1..=86400).contains(t)) {
            issues.error(&at.key("sessionAffinityConfig").key("clientIP").key("timeoutSeconds"), format!("{t}: must be greater than 0 and less than 86400"));
        }
    }
    for (field, value) in [("externalTrafficPolicy", &spec.external_traffic_policy), ("internalTrafficPolicy", &spec.internal_traffic_policy)] {
        if let Some(v) = value {
            one_of(issues, &at.key(field), v, &["Cluster", "Local"]);
            let external_ips = spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty());
            if field == "externalTrafficPolicy" && !matches!(kind, "NodePort" | "LoadBalancer") && !external_ips {
                issues.error(&at.key(field), format!("may only be set when `type` is 'NodePort' or 'LoadBalancer', not '{kind}'"));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && kind != "LoadBalancer" {
        issues.error(&at.key("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'");
    }
    if let Some(selector) = &spec.selector {
        super::meta::labels(Some(selector), &at.key("selector"), issues);
    }

    let mut names_seen = HashSet::new();
    let mut port_protocols = HashSet::new();
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = at.key("ports").idx(i);
        port_number(issues, &at.key("port"), port.port);
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        one_of(issues, &at.key("protocol"), protocol, &["TCP", "UDP", "SCTP"]);
        match port.name.as_deref() {
            None | Some("") if ports.len() > 1 => issues.error(&at, "missing required field \"name\": a service with more than one port must name each"),
            None | Some("") => {}
            Some(name) => {
                issues.check(&at.key("name"), names::dns1123_label(name));
                if !names_seen.insert(name) {
                    issues.error(&at.key("name"), format!("duplicate port name {name:?}"));
                }
            }
        }
        if !port_protocols.insert((port.port, protocol)) {
            issues.error(&at, format!("duplicate port {}/{protocol}", port.port));
        }
        if let Some(target) = &port.target_port {
            int_or_name_port(issues, &at.key("targetPort"), target);
        }
        if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
            if !matches!(kind, "NodePort" | "LoadBalancer") {
                issues.error(&at.key("nodePort"), format!("may not be used when `type` is '{kind}'"));
            } else if !NODE_PORT_RANGE.contains(&node_port) {
                issues.error(
                    &at.key("nodePort"),
                    format!(
                        "{node_port}: provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end()
                    ),
                );
            } else if !node_ports.insert((node_port, protocol)) {
                issues.error(&at.key("nodePort"), format!("duplicate nodePort {node_port}/{protocol}"));
            }
        }
    }
}

pub(crate) fn endpoints(endpoints: &core::Endpoints, issues: &mut Issues) {
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let at = Ptr::root().key("subsets").idx(i);
        for (field, addresses) in [("addresses", &subset.addresses), ("notReadyAddresses", &subset.not_ready_addresses)] {
            for (j, address) in addresses.iter().flatten().enumerate() {
                if let Err(message) = names::ip(&address.ip) {
                    issues.error(&at.key(field).idx(j).key("ip"), message);
                }
            }
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            let at = at.key("ports").idx(j);
            port_number(issues, &at.key("port"), port.port);
            if let Some(protocol) = &port.protocol {
                one_of(issues, &at.key("protocol"), protocol, &["TCP", "UDP", "SCTP"]);
            }
            match port.name.as_deref() {
                None | Some("") if ports.len() > 1 => issues.error(&at, "missing required field \"name\": each port must be named when there is more than one"),
                Some(name) if !name.is_empty() => issues.check(&at.key("name"), names::dns1123_label(name)),
                _ => {}
            }
        }
    }
}
