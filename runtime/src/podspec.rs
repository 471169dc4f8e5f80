//! Kubernetes' `Pod` to the runtime's [`PodRequest`]: what kubelet does
//! between the API object and the container runtime.
//!
//! It resolves what the pod refers to through [`Resolve`] (images,
//! ConfigMaps, Secrets, claims; the control plane implements it over its
//! store, tests with a fake), writes the pod's volume content and its
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` under the pod's
//! folder, and builds each container's command, environment, limits,
//! probes, mounts and security settings with Kubernetes' rules.

pub mod expand;
pub mod pull_secrets;
mod resource_field;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use driftless_model::Quantity;
use driftless_model::k8s_openapi::api::core::v1 as core;
use driftless_model::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::bundle::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES, MountSource, VolumeMount};
use crate::lifecycle::phase::RestartPolicy;
use crate::lifecycle::probe::ProbeSettings;
use crate::pod::{ContainerRequest, PodRequest, Probe, ProbeAction};
use crate::seccomp::Seccomp;
use crate::volumes::{File, write_atomically};

/// The PATH containerd and Docker give a container whose image sets none.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub use driftless_nodeapi::{Resolve, ResolvedImage};

/// Node settings the translation needs.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// The cluster DNS address pods get as their nameserver.
    pub cluster_dns: String,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// Whether `hostPath` volumes are allowed.
    pub allow_host_path: bool,
    /// Whether privileged containers are allowed.
    pub allow_privileged: bool,
    /// The node's name (`spec.nodeName`).
    pub node_name: String,
    /// The node's CPUs and memory (bytes): what `resourceFieldRef` reports
    /// for a limit a container does not set, as kubelet reports the node's
    /// allocatable.
    pub cpus: u64,
    /// See `cpus`.
    pub memory: u64,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            cluster_dns: "10.96.0.10".into(),
            cluster_domain: "cluster.local".into(),
            allow_host_path: false,
            allow_privileged: false,
            node_name: "localhost".into(),
            cpus: 1,
            memory: 1 << 30,
        }
    }
}

/// Why a pod cannot be run as it is, with the reason kubelet reports.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The image is not available.
    #[error("container {container}: {message}")]
    Image {
        /// The container.
        container: String,
        /// The image reference.
        image: String,
        /// What the image source said.
        message: String,
        /// `ErrImagePull` or `ErrImageNeverPull`.
        reason: &'static str,
    },
    /// A ConfigMap, Secret, key or claim the pod needs is missing.
    #[error("{0}")]
    Config(String),
    /// The node refuses something the pod asks for.
    #[error("{0}")]
    Refused(String),
    /// Volume content could not be written.
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// A file of the pod could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl TranslateError {
    /// The container the error is about, when it is about one.
    pub fn container(&self) -> Option<&str> {
        match self {
            TranslateError::Image { container, .. } => Some(container),
            _ => None,
        }
    }

    /// The waiting reason kubelet shows for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            TranslateError::Image { reason, .. } => reason,
            TranslateError::Config(_) => "CreateContainerConfigError",
            TranslateError::Refused(_) | TranslateError::Volume(_) | TranslateError::Io { .. } => "CreateContainerError",
        }
    }
}

/// The pod's identity where the translation needs it.
#[derive(Clone, Debug)]
pub struct PodIdentity {
    /// `metadata.uid` (or any unique id).
    pub uid: String,
    /// The pod's address, once known.
    pub ip: Option<String>,
}

/// Where one pod's files go.
#[derive(Clone, Debug)]
pub struct PodDirs {
    /// On disk: `volumes/<name>/` for each volume the pod has (an
    /// emptyDir may be large, as on kubelet's node).
    pub data: PathBuf,
    /// With the pod's other volatile state ([`crate::volatile`]): `etc/`
    /// for its `hosts`, `hostname` and `resolv.conf`.
    pub run: PathBuf,
}

impl PodDirs {
    /// Both under one folder.
    pub fn under(dir: impl Into<PathBuf>) -> PodDirs {
        let dir = dir.into();
        PodDirs { data: dir.clone(), run: dir }
    }
}

/// Translates `pod` into a request, writing its volumes and files under
/// `dirs`.
pub fn translate(pod: &core::Pod, identity: &PodIdentity, dirs: &PodDirs, node: &NodeSettings, resolve: &impl Resolve) -> Result<PodRequest, TranslateError> {
    let spec = pod.spec.as_ref().ok_or_else(|| TranslateError::Refused("pod has no spec".into()))?;
    let meta = &pod.metadata;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());

    let volumes = volumes(spec, &namespace, &dirs.data, node, resolve, meta)?;
    let files = pod_files(spec, &namespace, &hostname, identity, &dirs.run, node)?;
    let fields = FieldValues { namespace: &namespace, name: &name, identity, node, meta, spec };
    // As kubelet: a pull Secret that is missing is skipped (the pull may
    // still work anonymously), not an error.
    let pull_secrets: Vec<BTreeMap<String, Vec<u8>>> = spec.image_pull_secrets.iter().flatten().filter_map(|r| resolve.secret(&namespace, &r.name)).collect();
    let mut containers = Vec::new();
    for c in &spec.containers {
        containers.push(container(c, &fields, &volumes, &files, &pull_secrets, resolve)?);
    }
    Ok(PodRequest {
        uid: identity.uid.clone(),
        hostname,
        restart_policy: match spec.restart_policy.as_deref() {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        },
        containers,
        grace: Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64),
    })
}

struct FieldValues<'a> {
    namespace: &'a str,
    name: &'a str,
    identity: &'a PodIdentity,
    node: &'a NodeSettings,
    meta: &'a driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: &'a core::PodSpec,
}

impl FieldValues<'_> {
    /// A `fieldRef` path's value, as the downward API gives it.
    fn get(&self, path: &str) -> Option<String> {
        let map_key = |prefix: &str| path.strip_prefix(prefix).and_then(|k| k.strip_suffix("']"));
        if let Some(key) = map_key("metadata.labels['") {
            return self.meta.labels.as_ref().and_then(|l| l.get(key).cloned());
        }
        if let Some(key) = map_key("metadata.annotations['") {
            return self.meta.annotations.as_ref().and_then(|a| a.get(key).cloned());
        }
        match path {
            "metadata.name" => Some(self.name.to_owned()),
            "metadata.namespace" => Some(self.namespace.to_owned()),
            "metadata.uid" => Some(self.identity.uid.clone()),
            "status.podIP" => self.identity.ip.clone(),
            "spec.nodeName" => Some(self.node.node_name.clone()),
            "spec.serviceAccountName" => Some(self.spec.service_account_name.clone().unwrap_or_else(|| "default".into())),
            _ => None,
        }
    }
}

/// A volume as containers mount it.
#[derive(Clone, Debug)]
struct Volume {
    source: MountSource,
    read_only: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TranslateError + '_ {
    move |source| TranslateError::Io { path: path.to_path_buf(), source }
}

/// Writes the pod's ConfigMap, Secret and downward API volumes again from
/// what `resolve` says now, each swapped atomically if its content
/// changed, as kubelet's periodic volume sync does; a running container
/// sees the new files (but not through a `subPath`, as in Kubernetes).
pub fn refresh_volumes(pod: &core::Pod, pod_dir: &Path, node: &NodeSettings, resolve: &impl Resolve) -> Result<(), TranslateError> {
    let spec = pod.spec.as_ref().ok_or_else(|| TranslateError::Refused("pod has no spec".into()))?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    volumes(spec, &namespace, pod_dir, node, resolve, &pod.metadata).map(|_| ())
}

fn volumes(
    spec: &core::PodSpec,
    namespace: &str,
    pod_dir: &Path,
    node: &NodeSettings,
    resolve: &impl Resolve,
    meta: &driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<HashMap<String, Volume>, TranslateError> {
    let mut out = HashMap::new();
    for v in spec.volumes.iter().flatten() {
        let dir = pod_dir.join("volumes").join(&v.name);
        let volume = if let Some(empty) = &v.empty_dir {
            if empty.medium.as_deref() == Some("Memory") {
                let size = empty.size_limit.as_ref().and_then(|q| q.0.parse::<Quantity>().ok()).map(|q| q.value().max(0) as u64);
                Volume { source: MountSource::Tmpfs { size }, read_only: false }
            } else {
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                Volume { source: MountSource::Bind(dir), read_only: false }
            }
        } else if let Some(host) = &v.host_path {
            if !node.allow_host_path {
                return Err(TranslateError::Refused(format!("volume {}: hostPath volumes are not allowed on this node", v.name)));
            }
            Volume { source: MountSource::Bind(PathBuf::from(&host.path)), read_only: false }
        } else if let Some(cm) = &v.config_map {
            let files = object_files(resolve, Source::ConfigMap, namespace, &cm.name, cm.optional, cm.items.as_deref(), cm.default_mode.unwrap_or(0o644))?;
            write_atomically(&dir, &files)?;
            Volume { source: MountSource::Bind(dir), read_only: true }
        } else if let Some(secret) = &v.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let files =
                object_files(resolve, Source::Secret, namespace, &name, secret.optional, secret.items.as_deref(), secret.default_mode.unwrap_or(0o644))?;
            write_atomically(&dir, &files)?;
            Volume { source: MountSource::Bind(dir), read_only: true }
        } else if let Some(downward) = &v.downward_api {
            let files = downward_files(downward.items.as_deref(), downward.default_mode.unwrap_or(0o644), namespace, meta, spec, node)?;
            write_atomically(&dir, &files)?;
            Volume { source: MountSource::Bind(dir), read_only: true }
        } else if let Some(projected) = &v.projected {
            // Every source into one folder, written at once.
            let mode = projected.default_mode.unwrap_or(0o644);
            let mut files = Vec::new();
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    files.extend(object_files(resolve, Source::ConfigMap, namespace, &cm.name, cm.optional, cm.items.as_deref(), mode)?);
                } else if let Some(secret) = &source.secret {
                    files.extend(object_files(resolve, Source::Secret, namespace, &secret.name, secret.optional, secret.items.as_deref(), mode)?);
                } else if let Some(downward) = &source.downward_api {
                    files.extend(downward_files(downward.items.as_deref(), mode, namespace, meta, spec, node)?);
                } else {
                    return Err(TranslateError::Refused(format!(
                        "volume {}: projected sources other than configMap, secret and downwardAPI are not supported",
                        v.name
                    )));
                }
            }
            write_atomically(&dir, &files)?;
            Volume { source: MountSource::Bind(dir), read_only: true }
        } else if let Some(claim) = &v.persistent_volume_claim {
            let path = resolve
                .claim(namespace, &claim.claim_name)
                .ok_or_else(|| TranslateError::Config(format!("persistentvolumeclaim \"{}\" is not bound", claim.claim_name)))?;
            Volume { source: MountSource::Bind(path), read_only: claim.read_only == Some(true) }
        } else {
            return Err(TranslateError::Refused(format!("volume {}: unsupported volume type", v.name)));
        };
        out.insert(v.name.clone(), volume);
    }
    Ok(out)
}

/// Which object a volume's files come from.
#[derive(Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

/// The files of a configMap or secret volume or projection: the object's
/// keys (or the listed items), nothing for a missing optional one.
fn object_files(
    resolve: &impl Resolve,
    source: Source,
    namespace: &str,
    name: &str,
    optional: Option<bool>,
    items: Option<&[core::KeyToPath]>,
    default_mode: i32,
) -> Result<Vec<File>, TranslateError> {
    let (data, kind) = match source {
        Source::ConfigMap => (resolve.config_map(namespace, name), "configmap"),
        Source::Secret => (resolve.secret(namespace, name), "secret"),
    };
    let data = match data {
        Some(data) => data,
        None if optional == Some(true) => BTreeMap::new(),
        None => return Err(TranslateError::Config(format!("{kind} \"{name}\" not found"))),
    };
    project(&data, &key_paths(items), default_mode, name, kind)
}

fn key_paths(items: Option<&[core::KeyToPath]>) -> Vec<(String, String, Option<i32>)> {
    items.unwrap_or_default().iter().map(|i| (i.key.clone(), i.path.clone(), i.mode)).collect()
}

/// The files of a downwardAPI volume or projection.
fn downward_files(
    items: Option<&[core::DownwardAPIVolumeFile]>,
    default_mode: i32,
    namespace: &str,
    meta: &driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: &core::PodSpec,
    node: &NodeSettings,
) -> Result<Vec<File>, TranslateError> {
    let mut files = Vec::new();
    for item in items.unwrap_or_default() {
        let text = match (&item.field_ref, &item.resource_field_ref) {
            (Some(field), _) => match field.field_path.as_str() {
                "metadata.labels" => key_values(meta.labels.as_ref()),
                "metadata.annotations" => key_values(meta.annotations.as_ref()),
                "metadata.name" => meta.name.clone().unwrap_or_default(),
                "metadata.namespace" => namespace.to_owned(),
                other => return Err(TranslateError::Refused(format!("downwardAPI field {other:?} is not supported"))),
            },
            // A volume's selector names its container (validation requires it).
            (None, Some(selector)) => resource_field::value(spec, "", selector, node)?,
            (None, None) => continue,
        };
        let mode = item.mode.unwrap_or(default_mode) as u32;
        files.push(File { path: item.path.clone(), data: text.into_bytes(), mode });
    }
    Ok(files)
}

/// Files of a configMap or secret volume: every key, or the listed items.
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: &[(String, String, Option<i32>)],
    default_mode: i32,
    name: &str,
    kind: &str,
) -> Result<Vec<File>, TranslateError> {
    if items.is_empty() {
        return Ok(data.iter().map(|(k, v)| File { path: k.clone(), data: v.clone(), mode: default_mode as u32 }).collect());
    }
    items
        .iter()
        .map(|(key, path, mode)| match data.get(key) {
            Some(v) => Ok(File { path: path.clone(), data: v.clone(), mode: mode.unwrap_or(default_mode) as u32 }),
            None => Err(TranslateError::Config(format!("{kind} \"{name}\" has no key \"{key}\""))),
        })
        .collect()
}

/// Labels or annotations in the downward API's file format (kubelet's
/// `FormatMap`: sorted `key="value"` lines, no final newline).
fn key_values(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the pod.
fn pod_files(
    spec: &core::PodSpec,
    namespace: &str,
    hostname: &str,
    identity: &PodIdentity,
    pod_dir: &Path,
    node: &NodeSettings,
) -> Result<Vec<VolumeMount>, TranslateError> {
    let etc = pod_dir.join("etc");
    std::fs::create_dir_all(&etc).map_err(io(&etc))?;
    let domain = &node.cluster_domain;
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = &identity.ip {
        match &spec.subdomain {
            Some(sub) => hosts.push_str(&format!("{ip}\t{hostname}.{sub}.{namespace}.svc.{domain}\t{hostname}\n")),
            None => hosts.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    let resolv = match spec.dns_policy.as_deref() {
        Some("Default") => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        Some("None") => {
            let config = spec.dns_config.clone().unwrap_or_default();
            let mut text = String::new();
            for server in config.nameservers.iter().flatten() {
                text.push_str(&format!("nameserver {server}\n"));
            }
            let searches: Vec<String> = config.searches.unwrap_or_default();
            if !searches.is_empty() {
                text.push_str(&format!("search {}\n", searches.join(" ")));
            }
            let options: Vec<String> = config
                .options
                .iter()
                .flatten()
                .map(|o| match &o.value {
                    Some(v) => format!("{}:{v}", o.name.clone().unwrap_or_default()),
                    None => o.name.clone().unwrap_or_default(),
                })
                .collect();
            if !options.is_empty() {
                text.push_str(&format!("options {}\n", options.join(" ")));
            }
            text
        }
        // ClusterFirst (the default) and ClusterFirstWithHostNet.
        _ => format!("nameserver {}\nsearch {namespace}.svc.{domain} svc.{domain} {domain}\noptions ndots:5\n", node.cluster_dns),
    };
    let mut mounts = Vec::new();
    for (file, text) in [("hosts", hosts), ("hostname", format!("{hostname}\n")), ("resolv.conf", resolv)] {
        let path = etc.join(file);
        std::fs::write(&path, text).map_err(io(&path))?;
        mounts.push(VolumeMount { destination: format!("/etc/{file}"), source: MountSource::Bind(path), read_only: false });
    }
    Ok(mounts)
}

fn container(
    c: &core::Container,
    fields: &FieldValues<'_>,
    volumes: &HashMap<String, Volume>,
    pod_files: &[VolumeMount],
    pull_secrets: &[BTreeMap<String, Vec<u8>>],
    resolve: &impl Resolve,
) -> Result<ContainerRequest, TranslateError> {
    let reference = c.image.clone().unwrap_or_default();
    let policy = c.image_pull_policy.clone().unwrap_or_else(|| driftless_model::defaults::default_pull_policy(&reference).to_owned());
    let credentials = driftless_image::normalize_reference(&reference).ok().and_then(|image| pull_secrets::credentials_for(&image, pull_secrets));
    let image = resolve.image(&reference, &policy, credentials.as_ref()).map_err(|message| TranslateError::Image {
        container: c.name.clone(),
        image: reference.clone(),
        message,
        reason: if policy == "Never" { "ErrImageNeverPull" } else { "ErrImagePull" },
    })?;

    // The image's environment first, then envFrom, then env; later wins.
    let mut env: Vec<(String, String)> = image.env.iter().filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect();
    // An image that sets no PATH (umoci, buildah, `FROM scratch`) still runs
    // `command: [httpd]`: containerd and Docker start from this PATH too.
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    let mut defined: HashMap<String, String> = HashMap::new();
    fn set(env: &mut Vec<(String, String)>, defined: &mut HashMap<String, String>, k: String, v: String) {
        defined.insert(k.clone(), v.clone());
        match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, name, optional, kind) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), _) => (resolve.config_map(fields.namespace, &r.name), r.name.clone(), r.optional, "configmap"),
            (None, Some(r)) => (resolve.secret(fields.namespace, &r.name), r.name.clone(), r.optional, "secret"),
            (None, None) => continue,
        };
        let data = match data {
            Some(data) => data,
            None if optional == Some(true) => continue,
            None => return Err(TranslateError::Config(format!("{kind} \"{name}\" not found"))),
        };
        for (k, v) in data {
            set(&mut env, &mut defined, format!("{prefix}{k}"), String::from_utf8_lossy(&v).into_owned());
        }
    }
    for var in c.env.iter().flatten() {
        let value = match &var.value_from {
            None => expand::expand(var.value.as_deref().unwrap_or_default(), &defined),
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    fields.get(&field.field_path).unwrap_or_default()
                } else if let Some(r) = &from.config_map_key_ref {
                    match resolve.config_map(fields.namespace, &r.name).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if r.optional == Some(true) => continue,
                        None => return Err(TranslateError::Config(format!("couldn't find key {} in ConfigMap {}/{}", r.key, fields.namespace, r.name))),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match resolve.secret(fields.namespace, &r.name).and_then(|d| d.get(&r.key).cloned()) {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if r.optional == Some(true) => continue,
                        None => return Err(TranslateError::Config(format!("couldn't find key {} in Secret {}/{}", r.key, fields.namespace, r.name))),
                    }
                } else if let Some(selector) = &from.resource_field_ref {
                    resource_field::value(fields.spec, &c.name, selector, fields.node)?
                } else {
                    continue;
                }
            }
        };
        set(&mut env, &mut defined, var.name.clone(), value);
    }

    // Kubernetes' command rules, then $(VAR) with the container's variables.
    let command = c.command.clone().unwrap_or_default();
    let args_given = c.args.clone().unwrap_or_default();
    let args: Vec<String> = match (command.is_empty(), args_given.is_empty()) {
        (true, true) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
        (true, false) => image.entrypoint.iter().chain(&args_given).cloned().collect(),
        (false, _) => command.iter().chain(&args_given).cloned().collect(),
    };
    let args: Vec<String> = args.iter().map(|a| expand::expand(a, &defined)).collect();
    if args.is_empty() {
        return Err(TranslateError::Refused(format!("container {}: no command (the image has no entrypoint or cmd)", c.name)));
    }

    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    let limit = |name: &str| limits.and_then(|l| l.get(name)).and_then(|q| q.0.parse::<Quantity>().ok());
    let memory_limit = limit("memory").map(|q| q.value() as i64);
    // CFS: quota per 100 ms period, in microseconds (1 CPU = 100,000).
    let cpu_quota = limit("cpu").map(|q| ((q.millis() * 100).max(1000) as i64, 100_000u64));

    let security = c.security_context.as_ref();
    let pod_security = fields.spec.security_context.as_ref();
    if security.and_then(|s| s.privileged) == Some(true) && !fields.node.allow_privileged {
        return Err(TranslateError::Refused(format!("container {}: privileged containers are not allowed on this node", c.name)));
    }
    let uid = security.and_then(|s| s.run_as_user).or(pod_security.and_then(|s| s.run_as_user)).unwrap_or(0);
    let gid = security.and_then(|s| s.run_as_group).or(pod_security.and_then(|s| s.run_as_group)).unwrap_or(0);
    let privileged = security.and_then(|s| s.privileged) == Some(true);
    // Unset means RuntimeDefault here, as with kubelet's `--seccomp-default`
    // (docs/ARCHITECTURE.md, deliberate differences).
    let profile = security.and_then(|s| s.seccomp_profile.as_ref()).or(pod_security.and_then(|s| s.seccomp_profile.as_ref())).map(|p| p.type_.as_str());
    let seccomp = match (privileged, profile) {
        (true, _) | (false, Some("Unconfined")) => Seccomp::Unconfined,
        (false, None | Some("RuntimeDefault")) => Seccomp::RuntimeDefault,
        (false, Some(other)) => {
            return Err(TranslateError::Refused(format!(
                "container {}: seccompProfile type {other:?} is not supported on this node (RuntimeDefault or Unconfined)",
                c.name
            )));
        }
    };
    let capabilities = security.and_then(|s| s.capabilities.as_ref()).map(|caps| {
        let normal = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
        let drop: Vec<String> = caps.drop.iter().flatten().map(normal).collect();
        let mut set: Vec<String> = if drop.iter().any(|d| d == "ALL") {
            Vec::new()
        } else {
            DEFAULT_CAPABILITIES.iter().map(|c| c.trim_start_matches("CAP_").to_owned()).filter(|c| !drop.contains(c)).collect()
        };
        for add in caps.add.iter().flatten().map(normal) {
            if !set.contains(&add) {
                set.push(add);
            }
        }
        set
    });
    let capabilities = if privileged { Some(ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()) } else { capabilities };

    let mut mounts = pod_files.to_vec();
    for m in c.volume_mounts.iter().flatten() {
        let volume = volumes.get(&m.name).ok_or_else(|| TranslateError::Refused(format!("container {}: volume {:?} not found", c.name, m.name)))?;
        let source = match (&volume.source, m.sub_path.as_deref().filter(|s| !s.is_empty())) {
            (MountSource::Bind(path), Some(sub)) => {
                let target = path.join(sub);
                if !target.exists() {
                    std::fs::create_dir_all(&target).map_err(io(&target))?;
                }
                MountSource::Bind(target)
            }
            (source, _) => source.clone(),
        };
        mounts.push(VolumeMount { destination: m.mount_path.clone(), source, read_only: m.read_only == Some(true) || volume.read_only });
    }

    let ports: HashMap<String, u16> = c.ports.iter().flatten().filter_map(|p| p.name.clone().map(|n| (n, p.container_port as u16))).collect();
    let probe = |p: &Option<core::Probe>| -> Option<Probe> {
        let p = p.as_ref()?;
        let action = match probe_action(p, &ports) {
            Ok(Some(action)) => action,
            Ok(None) => return None,
            Err(error) => ProbeAction::Unresolvable(error),
        };
        let secs = |v: Option<i32>, default: u64| Duration::from_secs(v.filter(|v| *v > 0).map_or(default, |v| v as u64));
        Some(Probe {
            action,
            settings: ProbeSettings {
                initial_delay: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
                period: secs(p.period_seconds, 10),
                timeout: secs(p.timeout_seconds, 1),
                success_threshold: p.success_threshold.filter(|v| *v > 0).unwrap_or(1) as u32,
                failure_threshold: p.failure_threshold.filter(|v| *v > 0).unwrap_or(3) as u32,
            },
        })
    };

    Ok(ContainerRequest {
        name: c.name.clone(),
        layers: image.layers,
        image_id: image.id,
        args,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd: c.working_dir.clone().or(image.working_dir).unwrap_or_else(|| "/".into()),
        memory_limit,
        cpu_quota,
        uid: uid.max(0) as u32,
        gid: gid.max(0) as u32,
        read_only_root: security.and_then(|s| s.read_only_root_filesystem) == Some(true),
        capabilities,
        seccomp,
        // Kubernetes: `allowPrivilegeEscalation` sets `no_new_privs` when
        // false; unset (and always for privileged) leaves it off, so a
        // set-uid file in the image works as under containerd.
        no_new_privileges: !privileged && security.and_then(|s| s.allow_privilege_escalation) == Some(false),
        privileged,
        mounts,
        startup: probe(&c.startup_probe),
        liveness: probe(&c.liveness_probe),
        readiness: probe(&c.readiness_probe),
    })
}

/// What a probe does, with its port resolved as kubelet resolves it
/// (`ResolveContainerPort`: a container port of that name, else the name
/// read as a number); the error is kubelet's when neither works.
fn probe_action(p: &core::Probe, ports: &HashMap<String, u16>) -> Result<Option<ProbeAction>, String> {
    let port = |port: &IntOrString| -> Result<u16, String> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
            IntOrString::String(name) => match ports.get(name) {
                Some(port) => Ok(*port),
                None => name.parse::<u16>().map_err(|_| format!("strconv.Atoi: parsing {name:?}: invalid syntax")),
            },
        }
    };
    let host = |h: &Option<String>| h.clone().filter(|h| !h.is_empty());
    Ok(Some(if let Some(exec) = &p.exec {
        ProbeAction::Exec(exec.command.clone().unwrap_or_default())
    } else if let Some(http) = &p.http_get {
        ProbeAction::HttpGet {
            https: http.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")),
            host: host(&http.host),
            port: port(&http.port)?,
            path: http.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
            headers: http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
        }
    } else if let Some(tcp) = &p.tcp_socket {
        ProbeAction::TcpSocket { host: host(&tcp.host), port: port(&tcp.port)? }
    } else if let Some(grpc) = &p.grpc {
        ProbeAction::Grpc {
            port: u16::try_from(grpc.port).map_err(|_| format!("invalid port number: {}", grpc.port))?,
            service: grpc.service.clone().unwrap_or_default(),
        }
    } else {
        return Ok(None);
    }))
}

#[cfg(test)]
mod tests;
