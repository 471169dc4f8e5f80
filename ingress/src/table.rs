//! The routing snapshot: which backend answers a host and path, and which
//! certificate answers an SNI name. Built once by a pure function of the
//! objects ([`IngressTable::build`], `table/build.rs`), never changed after,
//! and swapped whole by the server.
//!
//! Lookup (`route`) picks the most specific host group first (the exact
//! host, then the wildcard one label above it, then the rules without a
//! host) and, inside a group, the first path in precedence order (longest
//! first, `Exact` before `Prefix` at equal length, then the older Ingress).
//! A group with no matching path falls through to the next; after the last,
//! the default backend answers, if any Ingress has one.

mod build;
mod host;
mod path;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::sign::CertifiedKey;

pub(crate) use host::normalize_request_host;

/// The ingress class served when the daemon is not told otherwise.
pub const DEFAULT_CLASS: &str = "driftless";

/// An immutable routing snapshot built from Ingresses, Services, Endpoints
/// and Secrets. See [`IngressTable::build`] for how objects become routes
/// and [`IngressTable::route`] for how a request finds one.
#[derive(Debug, Default)]
pub struct IngressTable {
    class: String,
    /// Rules whose host is an exact name, keyed by the lowercased name.
    exact: HashMap<String, Routes>,
    /// Rules whose host is `*.suffix`, keyed by the lowercased suffix.
    wildcard: HashMap<String, Routes>,
    /// Rules without a host.
    any: Routes,
    default_backend: Option<DefaultBackend>,
    certificates: Certificates,
    backends: Vec<Arc<Backend>>,
}

/// The paths of one host group, in precedence order.
#[derive(Debug, Default)]
struct Routes {
    paths: Vec<PathRule>,
}

#[derive(Debug)]
struct PathRule {
    /// As written for `Exact`; without trailing slashes for `Prefix` (so `/`
    /// is the empty string).
    path: String,
    /// The path as the Ingress wrote it, for logs.
    written: String,
    kind: PathMatch,
    host: Option<String>,
    ingress: Arc<str>,
    backend: Arc<Backend>,
}

#[derive(Debug)]
struct DefaultBackend {
    ingress: Arc<str>,
    backend: Arc<Backend>,
}

/// How a rule's path is compared with the request's (Kubernetes'
/// `pathType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// The request path equals the rule's, case-sensitively, with no
    /// trailing-slash leniency.
    Exact,
    /// The rule's path is a prefix of the request path element by element
    /// (split on `/`, trailing slashes ignored). `ImplementationSpecific`
    /// is treated as `Prefix`.
    Prefix,
}

/// Which port of the Service an Ingress backend names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BackendPort {
    /// `service.port.number`: the Service port with this `port`.
    Number(i32),
    /// `service.port.name`: the Service port with this `name`.
    Name(String),
}

impl fmt::Display for BackendPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendPort::Number(number) => write!(f, "{number}"),
            BackendPort::Name(name) => f.write_str(name),
        }
    }
}

/// One Service port as an Ingress names it, resolved to the ready endpoint
/// addresses it forwards to (in the order the Endpoints list them).
#[derive(Debug)]
pub struct Backend {
    namespace: String,
    service: String,
    port: BackendPort,
    endpoints: Vec<SocketAddr>,
    /// Round-robin position, shared by every rule naming this backend.
    next: AtomicUsize,
}

impl Backend {
    /// The Service's namespace (the Ingress's).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The Service port, as the Ingress names it.
    pub fn port(&self) -> &BackendPort {
        &self.port
    }

    /// The ready endpoint addresses; empty when the Service, its port or
    /// its Endpoints are missing or nothing is ready (requests get a 503).
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The index to start the next request's attempts at (round robin).
    pub(crate) fn next_start(&self) -> usize {
        let len = self.endpoints.len().max(1);
        self.next.fetch_add(1, Ordering::Relaxed) % len
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// What [`IngressTable::route`] found for a request.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    /// The Ingress the rule (or default backend) comes from, as
    /// `namespace/name`.
    pub ingress: &'a str,
    /// The rule's host as written (lowercased), `None` for a rule without a
    /// host and for the default backend.
    pub host: Option<&'a str>,
    /// The rule's path as written and how it matched, `None` for the
    /// default backend.
    pub path: Option<(&'a str, PathMatch)>,
    /// Where the request goes.
    pub backend: &'a Backend,
}

/// The certificates by the names they serve.
#[derive(Debug, Default)]
struct Certificates {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Served when no name matches (or the client sends none): the first
    /// certificate of an Ingress `tls` entry without hosts, else the first
    /// certificate at all.
    default: Option<Arc<CertifiedKey>>,
}

impl IngressTable {
    /// A table with no rules: every request is a 404 and every TLS
    /// handshake fails.
    pub fn empty(class: &str) -> IngressTable {
        IngressTable { class: class.to_owned(), ..IngressTable::default() }
    }

    /// The ingress class this table was built for.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Finds the backend for a request to `host` (a Host header or
    /// `:authority`, with or without port, any case) and `path` (the
    /// request path, without the query).
    pub fn route(&self, host: &str, path: &str) -> Option<Route<'_>> {
        let host = normalize_request_host(host);
        let host = host.as_ref();
        let groups = [self.exact.get(host), host::wildcard_suffix(host).and_then(|suffix| self.wildcard.get(suffix)), Some(&self.any)];
        for routes in groups.into_iter().flatten() {
            if let Some(rule) = routes.paths.iter().find(|rule| path::matches(rule.kind, &rule.path, path)) {
                return Some(Route { ingress: &rule.ingress, host: rule.host.as_deref(), path: Some((&rule.written, rule.kind)), backend: &rule.backend });
            }
        }
        self.default_backend.as_ref().map(|default| Route { ingress: &default.ingress, host: None, path: None, backend: &default.backend })
    }

    /// The certificate for a TLS handshake naming `server_name` (SNI):
    /// the exact name's, then the wildcard one label above it, then the
    /// default certificate. `None` fails the handshake.
    pub(crate) fn certificate(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let certificates = &self.certificates;
        let found = server_name.map(normalize_request_host).and_then(|name| {
            certificates.exact.get(name.as_ref()).or_else(|| host::wildcard_suffix(&name).and_then(|suffix| certificates.wildcard.get(suffix))).cloned()
        });
        found.or_else(|| certificates.default.clone())
    }

    /// Every backend the table routes to, once each.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// How many path rules the table holds, over all hosts.
    pub fn rule_count(&self) -> usize {
        self.exact.values().chain(self.wildcard.values()).chain([&self.any]).map(|routes| routes.paths.len()).sum()
    }

    /// How many distinct TLS host names have a certificate.
    pub fn certificate_count(&self) -> usize {
        self.certificates.exact.len() + self.certificates.wildcard.len()
    }

    /// Whether a default certificate is served to unknown SNI names.
    pub fn has_default_certificate(&self) -> bool {
        self.certificates.default.is_some()
    }
}
