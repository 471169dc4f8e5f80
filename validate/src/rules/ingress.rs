//! Ingresses.

use driftless_model::k8s_openapi::api::networking::v1 as networking;

use super::{one_of, port_number, required};
use crate::names;
use crate::{Issues, Ptr};

pub(crate) fn ingress(ingress: &networking::Ingress, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(ingress.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    let rules = spec.rules.as_deref().unwrap_or_default();
    if spec.default_backend.is_none() && rules.is_empty() {
        issues.error(&at, "either `defaultBackend` or `rules` must be specified");
    }
    if let Some(class) = &spec.ingress_class_name {
        issues.check(&at.key("ingressClassName"), names::dns1123_subdomain(class));
    }
    if let Some(backend) = &spec.default_backend {
        self::backend(backend, &at.key("defaultBackend"), issues);
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = at.key("rules").idx(i);
        if let Some(host) = &rule.host {
            host_name(host, &at.key("host"), issues);
        }
        let Some(http) = &rule.http else { continue };
        if http.paths.is_empty() {
            issues.error(&at.key("http").key("paths"), "must have at least one path");
        }
        for (j, path) in http.paths.iter().enumerate() {
            let at = at.key("http").key("paths").idx(j);
            one_of(issues, &at.key("pathType"), &path.path_type, &["Exact", "Prefix", "ImplementationSpecific"]);
            match path.path.as_deref() {
                Some(p) if !p.starts_with('/') => issues.error(&at.key("path"), format!("{p:?}: must be an absolute path")),
                None | Some("") if path.path_type != "ImplementationSpecific" => {
                    issues.error(&at, format!("missing required field \"path\" for pathType {}", path.path_type))
                }
                _ => {}
            }
            backend(&path.backend, &at.key("backend"), issues);
        }
    }
    for (i, tls) in spec.tls.iter().flatten().enumerate() {
        for (j, host) in tls.hosts.iter().flatten().enumerate() {
            host_name(host, &at.key("tls").idx(i).key("hosts").idx(j), issues);
        }
    }
}

fn host_name(host: &str, at: &Ptr, issues: &mut Issues) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        issues.error(at, format!("{host:?}: must be a DNS name, not an IP address"));
        return;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        issues.error(at, format!("{host:?}: a wildcard is only allowed as the whole first label (`*.example.com`)"));
    } else {
        issues.check(at, names::dns1123_subdomain(name));
    }
}

fn backend(backend: &networking::IngressBackend, at: &Ptr, issues: &mut Issues) {
    match (&backend.service, &backend.resource) {
        (Some(_), Some(_)) => issues.error(at, "cannot set both `service` and `resource` backends"),
        (None, None) => issues.error(at, "must specify a `service` or `resource` backend"),
        // Valid for the API server; the Ingress skips such a backend (and
        // says so in its log), so the object is accepted with a warning.
        (None, Some(_)) => issues.warn(
            &at.key("resource"),
            "resource backends are not served by Driftless: the Ingress skips this backend, and its requests go to the next matching rule, else 404",
        ),
        (Some(service), None) => {
            let at = at.key("service");
            issues.check(&at.key("name"), names::dns1035_label(&service.name));
            match &service.port {
                None => issues.error(&at, "missing required field \"port\""),
                // Zero and "" mean unset, as for the API server.
                Some(port) => match (port.number.filter(|n| *n != 0), port.name.as_deref().filter(|n| !n.is_empty())) {
                    (Some(_), Some(_)) => issues.error(&at.key("port"), "cannot set both port name & port number"),
                    (Some(n), None) => port_number(issues, &at.key("port").key("number"), n),
                    (None, Some(name)) => issues.check(&at.key("port").key("name"), names::iana_svc_name(name)),
                    (None, None) => issues.error(&at.key("port"), "port name or number is required"),
                },
            }
        }
    }
}
