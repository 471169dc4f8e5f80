//! Building a table from objects: a pure function of Ingresses, Services,
//! Endpoints and Secrets, with no I/O and no clock. Whatever cannot be
//! served (an unknown path type, a resource backend, a missing or malformed
//! Secret, a Service without the named port) is skipped with a warning,
//! never a panic and never a failed build.
//!
//! Ingresses are taken oldest first (`creationTimestamp`, an object without
//! one counting as oldest), then by namespace and name; that order decides
//! every conflict: the same host, path and path type in two Ingresses, two
//! default backends, two certificates for one TLS host. The first wins and
//! the others are reported.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use driftless_model::k8s_openapi::api::core::v1::{Endpoints, Secret, Service};
use driftless_model::k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::host::{HostPattern, parse_pattern};
use super::path::{normalize, parse_kind};
use super::{Backend, BackendPort, DefaultBackend, IngressTable, PathMatch, PathRule, Routes};

/// The annotation that chose an ingress class before `spec.ingressClassName`
/// existed; still honoured when the field is unset, as ingress-nginx does.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The Secret type a TLS certificate must have.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

impl IngressTable {
    /// Builds the routing table for the Ingresses of class `class`.
    ///
    /// An Ingress is served when its `spec.ingressClassName` is `class`,
    /// or when it names no class at all (neither the field nor the older
    /// `kubernetes.io/ingress.class` annotation). Kubernetes would need an
    /// IngressClass marked as the cluster's default for the latter; we
    /// treat ours as the default.
    ///
    /// Backends are `service.name` with `service.port.number` or
    /// `service.port.name`, resolved as kube-proxy does: the Service port
    /// with that number or name, then in the Service's Endpoints the subset
    /// port with the same name as the Service port (both unnamed counts),
    /// to each ready address of that subset (`addresses`, never
    /// `notReadyAddresses`). A backend whose Service, port or Endpoints are
    /// missing stays in the table with no endpoints: requests for it get a
    /// 503, as they would from ingress-nginx.
    ///
    /// TLS: each `spec.tls[]` entry's `hosts` get the certificate of the
    /// `kubernetes.io/tls` Secret `secretName` in the Ingress's namespace
    /// (`tls.crt`, PEM, leaf first; `tls.key`, a PEM PKCS#8, PKCS#1 or SEC1
    /// key matching the leaf).
    ///
    /// Returns the table and a warning for everything that was skipped or
    /// cannot work yet.
    pub fn build(class: &str, ingresses: &[Ingress], services: &[Service], endpoints: &[Endpoints], secrets: &[Secret]) -> (IngressTable, Vec<String>) {
        let mut builder = Builder {
            services: index(services, |s| (&s.metadata.namespace, &s.metadata.name)),
            endpoints: index(endpoints, |e| (&e.metadata.namespace, &e.metadata.name)),
            secrets: index(secrets, |s| (&s.metadata.namespace, &s.metadata.name)),
            provider: rustls::crypto::ring::default_provider(),
            table: IngressTable::empty(class),
            backends: HashMap::new(),
            keys: HashMap::new(),
            tls_owner: HashMap::new(),
            first_certificate: None,
            warnings: Vec::new(),
        };
        let mut served: Vec<&Ingress> = ingresses.iter().filter(|ingress| serves(class, ingress)).collect();
        served.sort_by(|a, b| {
            let key = |i: &&Ingress| (i.metadata.creation_timestamp.clone(), namespace_of(&i.metadata.namespace), i.metadata.name.clone());
            key(a).cmp(&key(b))
        });
        for ingress in served {
            builder.add(ingress);
        }
        builder.finish()
    }
}

/// Whether an Ingress is for `class`.
fn serves(class: &str, ingress: &Ingress) -> bool {
    let named = ingress
        .spec
        .as_ref()
        .and_then(|spec| spec.ingress_class_name.as_deref())
        .or_else(|| ingress.metadata.annotations.as_ref().and_then(|annotations| annotations.get(CLASS_ANNOTATION)).map(String::as_str));
    named.is_none_or(|named| named == class)
}

fn namespace_of(namespace: &Option<String>) -> String {
    namespace.clone().unwrap_or_else(|| driftless_model::DEFAULT_NAMESPACE.to_owned())
}

/// Objects by (namespace, name).
fn index<'a, T>(objects: &'a [T], key: impl Fn(&'a T) -> (&'a Option<String>, &'a Option<String>)) -> HashMap<(String, String), &'a T> {
    let mut map = HashMap::new();
    for object in objects {
        let (namespace, name) = key(object);
        if let Some(name) = name {
            map.insert((namespace_of(namespace), name.clone()), object);
        }
    }
    map
}

struct Builder<'a> {
    services: HashMap<(String, String), &'a Service>,
    endpoints: HashMap<(String, String), &'a Endpoints>,
    secrets: HashMap<(String, String), &'a Secret>,
    provider: CryptoProvider,
    table: IngressTable,
    /// One backend per (namespace, service, port), shared by every rule
    /// naming it, so round robin spans them all.
    backends: HashMap<(String, String, BackendPort), Arc<Backend>>,
    /// Parsed certificates by Secret, `None` for one that failed (already
    /// reported).
    keys: HashMap<(String, String), Option<Arc<CertifiedKey>>>,
    /// Which Ingress's Secret a TLS host got, to report conflicts.
    tls_owner: HashMap<HostPattern, (Arc<str>, String)>,
    first_certificate: Option<Arc<CertifiedKey>>,
    warnings: Vec<String>,
}

impl Builder<'_> {
    fn add(&mut self, ingress: &Ingress) {
        let namespace = namespace_of(&ingress.metadata.namespace);
        let id: Arc<str> = format!("{namespace}/{}", ingress.metadata.name.as_deref().unwrap_or("")).into();
        let Some(spec) = &ingress.spec else { return };

        if let Some(default) = &spec.default_backend {
            let what = format!("ingress {id}: defaultBackend");
            if let Some(existing) = &self.table.default_backend {
                let existing = existing.ingress.clone();
                self.warn(format!("{what}: ignored, the older ingress {existing} already has a default backend"));
            } else if let Some(backend) = self.backend(&namespace, default, &what) {
                self.table.default_backend = Some(DefaultBackend { ingress: id.clone(), backend });
            }
        }

        for (r, rule) in spec.rules.iter().flatten().enumerate() {
            let pattern = match parse_pattern(rule.host.as_deref()) {
                Ok(pattern) => pattern,
                Err(reason) => {
                    self.warn(format!("ingress {id}: rules[{r}]: skipped: {reason}"));
                    continue;
                }
            };
            for (p, http_path) in rule.http.iter().flat_map(|http| &http.paths).enumerate() {
                let what = format!("ingress {id}: rules[{r}].http.paths[{p}]");
                let Some(kind) = parse_kind(&http_path.path_type) else {
                    self.warn(format!("{what}: skipped: unknown pathType {:?}", http_path.path_type));
                    continue;
                };
                let written = http_path.path.clone().filter(|path| !path.is_empty()).unwrap_or_else(|| "/".to_owned());
                if !written.starts_with('/') {
                    self.warn(format!("{what}: skipped: path {written:?} does not start with /"));
                    continue;
                }
                let Some(backend) = self.backend(&namespace, &http_path.backend, &what) else { continue };
                let host = match &pattern {
                    HostPattern::Any => None,
                    HostPattern::Exact(name) => Some(name.clone()),
                    HostPattern::Wildcard(suffix) => Some(format!("*.{suffix}")),
                };
                let routes = match &pattern {
                    HostPattern::Any => &mut self.table.any,
                    HostPattern::Exact(name) => self.table.exact.entry(name.clone()).or_default(),
                    HostPattern::Wildcard(suffix) => self.table.wildcard.entry(suffix.clone()).or_default(),
                };
                let path = normalize(kind, &written);
                if let Some(existing) = routes.paths.iter().find(|rule| rule.kind == kind && rule.path == path) {
                    let warning = format!(
                        "{what}: ignored: {} {written:?} for host {} is already routed by ingress {}",
                        kind_name(kind),
                        host.as_deref().unwrap_or("*"),
                        existing.ingress
                    );
                    self.warn(warning);
                    continue;
                }
                routes.paths.push(PathRule { path, written, kind, host, ingress: id.clone(), backend });
            }
        }

        for (t, tls) in spec.tls.iter().flatten().enumerate() {
            let what = format!("ingress {id}: tls[{t}]");
            let Some(secret_name) = tls.secret_name.as_deref().filter(|name| !name.is_empty()) else {
                self.warn(format!("{what}: skipped: no secretName"));
                continue;
            };
            let Some(key) = self.certified_key(&namespace, secret_name, &what) else { continue };
            let hosts = tls.hosts.as_deref().unwrap_or_default();
            if hosts.is_empty() {
                // Kubernetes: hosts default to the controller's wildcard, so
                // this certificate is the one for names nobody else claims.
                if self.table.certificates.default.is_none() {
                    self.table.certificates.default = Some(key.clone());
                }
            }
            self.first_certificate.get_or_insert_with(|| key.clone());
            for host in hosts {
                let pattern = match parse_pattern(Some(host)) {
                    Ok(HostPattern::Any) => continue,
                    Ok(pattern) => pattern,
                    Err(reason) => {
                        self.warn(format!("{what}: host skipped: {reason}"));
                        continue;
                    }
                };
                match self.tls_owner.entry(pattern) {
                    Entry::Occupied(owner) => {
                        let (owner_id, owner_secret) = owner.get();
                        if owner_secret != secret_name || **owner_id != *id {
                            let warning =
                                format!("{what}: host {host:?} ignored: it already has the certificate of secret {owner_secret} from ingress {owner_id}");
                            self.warnings.push(warning);
                        }
                    }
                    Entry::Vacant(vacant) => {
                        let certificates = &mut self.table.certificates;
                        match vacant.key() {
                            HostPattern::Exact(name) => certificates.exact.insert(name.clone(), key.clone()),
                            HostPattern::Wildcard(suffix) => certificates.wildcard.insert(suffix.clone(), key.clone()),
                            HostPattern::Any => None,
                        };
                        vacant.insert((id.clone(), secret_name.to_owned()));
                    }
                }
            }
        }
    }

    /// The shared backend for an Ingress backend, or `None` (reported) when
    /// it cannot be a Service backend at all.
    fn backend(&mut self, namespace: &str, backend: &IngressBackend, what: &str) -> Option<Arc<Backend>> {
        let Some(service) = &backend.service else {
            self.warn(format!("{what}: skipped: only service backends are supported, not resource backends"));
            return None;
        };
        let port = match (&service.port.as_ref().and_then(|p| p.number), service.port.as_ref().and_then(|p| p.name.as_deref())) {
            (Some(number), _) => BackendPort::Number(*number),
            (None, Some(name)) if !name.is_empty() => BackendPort::Name(name.to_owned()),
            _ => {
                self.warn(format!("{what}: skipped: service {} names no port", service.name));
                return None;
            }
        };
        let key = (namespace.to_owned(), service.name.clone(), port.clone());
        if let Some(existing) = self.backends.get(&key) {
            return Some(existing.clone());
        }
        let endpoints = self.resolve(namespace, &service.name, &port, what);
        let shared = Arc::new(Backend { namespace: namespace.to_owned(), service: service.name.clone(), port, endpoints, next: AtomicUsize::new(0) });
        self.table.backends.push(shared.clone());
        self.backends.insert(key, shared.clone());
        Some(shared)
    }

    /// The ready endpoint addresses of a Service port, as kube-proxy finds
    /// them. Empty (with a warning when it is a configuration problem rather
    /// than nothing being ready) when any step is missing.
    fn resolve(&mut self, namespace: &str, name: &str, port: &BackendPort, what: &str) -> Vec<SocketAddr> {
        let key = (namespace.to_owned(), name.to_owned());
        let Some(service) = self.services.get(&key).copied() else {
            self.warn(format!("{what}: service {namespace}/{name} not found; requests will get 503"));
            return Vec::new();
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|spec| spec.type_.as_deref()) == Some("ExternalName") {
            self.warn(format!("{what}: service {namespace}/{name} is an ExternalName service, which is not supported; requests will get 503"));
            return Vec::new();
        }
        let is_tcp = |protocol: &Option<String>| protocol.as_deref().is_none_or(|protocol| protocol == "TCP");
        let service_port = spec.and_then(|spec| spec.ports.as_ref()).and_then(|ports| {
            ports.iter().find(|p| {
                is_tcp(&p.protocol)
                    && match port {
                        BackendPort::Number(number) => p.port == *number,
                        BackendPort::Name(port_name) => p.name.as_deref() == Some(port_name),
                    }
            })
        });
        let Some(service_port) = service_port else {
            self.warn(format!("{what}: service {namespace}/{name} has no TCP port {port}; requests will get 503"));
            return Vec::new();
        };
        let port_name = service_port.name.as_deref().unwrap_or("");
        let Some(endpoints) = self.endpoints.get(&key) else { return Vec::new() };
        let mut addresses = Vec::new();
        for subset in endpoints.subsets.iter().flatten() {
            let Some(target) = subset.ports.iter().flatten().find(|p| p.name.as_deref().unwrap_or("") == port_name && is_tcp(&p.protocol)) else {
                continue;
            };
            let Ok(target_port) = u16::try_from(target.port) else {
                self.warn(format!("{what}: endpoints {namespace}/{name}: port {} is out of range", target.port));
                continue;
            };
            for address in subset.addresses.iter().flatten() {
                match address.ip.parse::<IpAddr>() {
                    Ok(ip) => {
                        let addr = SocketAddr::new(ip, target_port);
                        if !addresses.contains(&addr) {
                            addresses.push(addr);
                        }
                    }
                    Err(_) => self.warn(format!("{what}: endpoints {namespace}/{name}: skipped address {:?}: not an IP address", address.ip)),
                }
            }
        }
        addresses
    }

    /// The certificate and key of a TLS Secret, parsed once per Secret.
    fn certified_key(&mut self, namespace: &str, name: &str, what: &str) -> Option<Arc<CertifiedKey>> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(parsed) = self.keys.get(&key) {
            return parsed.clone();
        }
        let parsed = match self.secrets.get(&key) {
            None => Err(format!("secret {namespace}/{name} not found")),
            Some(secret) => parse_tls_secret(secret, &self.provider).map_err(|reason| format!("secret {namespace}/{name}: {reason}")),
        };
        let parsed = match parsed {
            Ok(certified) => Some(Arc::new(certified)),
            Err(reason) => {
                self.warn(format!("{what}: skipped: {reason}"));
                None
            }
        };
        self.keys.insert(key, parsed.clone());
        parsed
    }

    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    fn finish(mut self) -> (IngressTable, Vec<String>) {
        let table = &mut self.table;
        for routes in table.exact.values_mut().chain(table.wildcard.values_mut()).chain([&mut table.any]) {
            sort(routes);
        }
        if table.certificates.default.is_none() {
            table.certificates.default = self.first_certificate;
        }
        (self.table, self.warnings)
    }
}

/// Precedence within a host group: the longest path first, `Exact` before
/// `Prefix` at equal length; the sort is stable, so the older Ingress stays
/// first otherwise.
fn sort(routes: &mut Routes) {
    routes.paths.sort_by_key(|rule| (std::cmp::Reverse(rule.path.len()), rule.kind == PathMatch::Prefix));
}

fn kind_name(kind: PathMatch) -> &'static str {
    match kind {
        PathMatch::Exact => "Exact",
        PathMatch::Prefix => "Prefix",
    }
}

/// A `kubernetes.io/tls` Secret's `tls.crt` chain and `tls.key`, checked
/// to belong together.
fn parse_tls_secret(secret: &Secret, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    if type_ != TLS_SECRET_TYPE {
        return Err(format!("has type {type_}, not {TLS_SECRET_TYPE}"));
    }
    let value = |key: &str| -> Result<Vec<u8>, String> {
        // The API server folds stringData into data; a Secret that did not
        // go through it may still carry it.
        let strings = secret.string_data.as_ref().and_then(|data| data.get(key)).map(|s| s.as_bytes().to_vec());
        let bytes = secret.data.as_ref().and_then(|data| data.get(key)).map(|b| b.0.clone());
        strings.or(bytes).filter(|bytes| !bytes.is_empty()).ok_or_else(|| format!("no {key}"))
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&value("tls.crt")?).collect::<Result<_, _>>().map_err(|error| format!("tls.crt is not PEM certificates: {error}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(&value("tls.key")?).map_err(|error| format!("tls.key is not a PEM private key: {error}"))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| format!("tls.crt and tls.key do not make a usable certificate: {error}"))
}
