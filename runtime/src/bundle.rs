//! OCI bundles: the `config.json` (and rootfs) `libcontainer` runs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceType, LinuxResourcesBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

/// What to run in one container, in the runtime's terms (the pod layer
/// translates Kubernetes' fields into these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The container's id, unique on the node.
    pub id: String,
    /// The root filesystem (an overlayfs mount or a plain folder).
    pub rootfs: PathBuf,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The working directory inside the container.
    pub cwd: String,
    /// The user and group to run as.
    pub uid: u32,
    /// The group to run as.
    pub gid: u32,
    /// The hostname, when the container has its own UTS namespace.
    pub hostname: Option<String>,
    /// The cgroup path, relative to each controller's root
    /// (`/driftless/pod-x/c`); set explicitly so that it can be removed.
    pub cgroups_path: PathBuf,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// CPU limit as a CFS quota per period, in microseconds.
    pub cpu_quota: Option<(i64, u64)>,
    /// The pod sandbox whose network, IPC and UTS namespaces the container
    /// joins; `None` gives it namespaces of its own.
    pub sandbox: Option<PathBuf>,
    /// Volumes mounted into the container, in order.
    pub mounts: Vec<VolumeMount>,
    /// Mount the root filesystem read-only (`readOnlyRootFilesystem`).
    pub read_only_root: bool,
    /// The capabilities to grant (`CAP_CHOWN`...); `None` grants
    /// [`DEFAULT_CAPABILITIES`]. Kubernetes' `securityContext.capabilities`
    /// add/drop are applied to the default by the pod layer.
    pub capabilities: Option<Vec<String>>,
    /// The seccomp profile.
    pub seccomp: crate::seccomp::Seccomp,
    /// Set `no_new_privs`, so set-uid files and file capabilities grant
    /// nothing (`allowPrivilegeEscalation: false`).
    pub no_new_privileges: bool,
    /// Give the container the host's devices and leave `/proc` and `/sys`
    /// unmasked, as containerd does for `privileged: true`; the pod layer
    /// grants every capability alongside.
    pub privileged: bool,
}

/// The paths a container sees masked (a file as `/dev/null`, a folder as
/// an empty read-only tmpfs): containerd's and Kubernetes'
/// `DefaultProcMount` list. They leak host details (`/proc/kcore`,
/// `/proc/keys`, timer and scheduler state) or allow power side channels
/// (`powercap`, CVE-2020-8694).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths a container sees read-only: containerd's list; `/proc/sys`
/// among them, so sysctls are set through the pod spec, not from inside.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Every capability, for privileged containers.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities containerd grants a container by default (the set
/// Kubernetes users expect: `CapEff` reads `00000000a80425fb`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// One volume mount of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    /// Where it appears in the container.
    pub destination: String,
    /// What is mounted there.
    pub source: MountSource,
    /// Mounted read-only.
    pub read_only: bool,
}

/// What a volume mount shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountSource {
    /// A folder or file of the node, bind-mounted (emptyDir, hostPath,
    /// configMap, secret, persistentVolumeClaim, a subPath of one).
    Bind(PathBuf),
    /// A fresh tmpfs (emptyDir with `medium: Memory`), with a size limit in
    /// bytes.
    Tmpfs {
        /// `sizeLimit`.
        size: Option<u64>,
    },
}

impl VolumeMount {
    fn to_oci(&self) -> Result<oci_spec::runtime::Mount, oci_spec::OciSpecError> {
        let mut options: Vec<String> = Vec::new();
        let builder = oci_spec::runtime::MountBuilder::default().destination(PathBuf::from(&self.destination));
        let builder = match &self.source {
            MountSource::Bind(path) => {
                options.extend(["rbind".into(), "rprivate".into()]);
                builder.typ("bind").source(path.clone())
            }
            MountSource::Tmpfs { size } => {
                options.extend(["nosuid".into(), "nodev".into(), "mode=1777".into()]);
                if let Some(size) = size {
                    options.push(format!("size={size}"));
                }
                builder.typ("tmpfs").source(PathBuf::from("tmpfs"))
            }
        };
        if self.read_only {
            options.push("ro".into());
        }
        builder.options(options).build()
    }
}

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The OCI spec builder refused a value.
    #[error("invalid container spec for {id}: {source}")]
    Spec {
        /// The container.
        id: String,
        /// Why.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The bundle folder could not be written.
    #[error("cannot write bundle {}: {source}", path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The runtime spec for `config`: the OCI defaults (mounts of /proc, /dev,
/// /sys, masked paths, a minimal capability set and fresh namespaces), with
/// the process, root, hostname, cgroup and limits filled in.
pub fn spec(config: &ContainerConfig) -> Result<Spec, BundleError> {
    let wrap = |source| BundleError::Spec { id: config.id.clone(), source };
    let defaults = Spec::default();
    let default_process = defaults.process().clone().unwrap_or_default();
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .args(config.args.clone())
        .env(config.env.clone())
        .cwd(if config.cwd.is_empty() { "/".to_owned() } else { config.cwd.clone() })
        .user(UserBuilder::default().uid(config.uid).gid(config.gid).build().map_err(wrap)?)
        .capabilities(capabilities(config).map_err(wrap)?)
        .rlimits(default_process.rlimits().clone().unwrap_or_default())
        .build()
        .map_err(wrap)?;
    // Absent unless asked for: the builder's default is `Some(true)`, and
    // libcontainer 0.7 decides when to load the seccomp filter by whether
    // the field is present, not by its value (with `Some(false)` it loads
    // the filter after dropping CAP_SYS_ADMIN, which the kernel refuses).
    process.set_no_new_privileges(config.no_new_privileges.then_some(true));
    let mut resources = LinuxResourcesBuilder::default();
    // Deny every device, then libcontainer allows the standard ones (null,
    // zero, full, tty, random, urandom, pts, console), as runc's and
    // containerd's default specs do: a root container can mknod (CAP_MKNOD
    // is a default capability) or find in a layer a node for the host's
    // disk, and must not be able to open it. oci-spec's builder default
    // holds the same rule; it is written here so that it cannot go away
    // unseen. Privileged containers may use every device, as there.
    let devices = LinuxDeviceCgroupBuilder::default().allow(config.privileged).access("rwm").build().map_err(wrap)?;
    resources = resources.devices(vec![devices]);
    if let Some(limit) = config.memory_limit {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build().map_err(wrap)?);
    }
    if let Some((quota, period)) = config.cpu_quota {
        resources = resources.cpu(LinuxCpuBuilder::default().quota(quota).period(period).build().map_err(wrap)?);
    }
    let default_linux = defaults.linux().clone().unwrap_or_default();
    let mut namespaces = default_linux.namespaces().clone().unwrap_or_default();
    if let Some(sandbox) = &config.sandbox {
        // Join the pod's shared namespaces; PID and mount stay per container,
        // as in Kubernetes without shareProcessNamespace.
        for ns in &mut namespaces {
            let file = match ns.typ() {
                LinuxNamespaceType::Network => "net",
                LinuxNamespaceType::Ipc => "ipc",
                LinuxNamespaceType::Uts => "uts",
                _ => continue,
            };
            ns.set_path(Some(sandbox.join(file)));
        }
    }
    let mut linux = LinuxBuilder::default();
    if let Some(seccomp) = crate::seccomp::linux_seccomp(config.seccomp, &capability_names(config)) {
        linux = linux.seccomp(seccomp);
    }
    // containerd's masked and read-only paths (oci/spec.go); a privileged
    // container gets none, as there.
    let (masked, readonly) = if config.privileged {
        (Vec::new(), Vec::new())
    } else {
        (MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect(), READONLY_PATHS.iter().map(|p| (*p).to_owned()).collect())
    };
    let linux = linux
        .namespaces(namespaces)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .cgroups_path(config.cgroups_path.clone())
        .resources(resources.build().map_err(wrap)?)
        .build()
        .map_err(wrap)?;
    let mut mounts = defaults.mounts().clone().unwrap_or_default();
    for mount in &config.mounts {
        mounts.push(mount.to_oci().map_err(wrap)?);
    }
    let mut spec = SpecBuilder::default()
        .version(defaults.version().clone())
        .root(RootBuilder::default().path(config.rootfs.clone()).readonly(config.read_only_root).build().map_err(wrap)?)
        .process(process)
        .mounts(mounts)
        .linux(linux);
    // In a sandbox the hostname belongs to the shared UTS namespace, set
    // when the sandbox was made.
    if let (Some(hostname), None) = (&config.hostname, &config.sandbox) {
        spec = spec.hostname(hostname.clone());
    }
    spec.build().map_err(wrap)
}

/// The capabilities `config` grants, as OCI names (`CAP_...`).
fn capability_names(config: &ContainerConfig) -> std::collections::HashSet<String> {
    match &config.capabilities {
        Some(names) => names
            .iter()
            .map(|n| {
                let n = n.to_ascii_uppercase();
                if n.starts_with("CAP_") { n } else { format!("CAP_{n}") }
            })
            .collect(),
        None => DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// The capability sets for `config`: bounding, effective and permitted all
/// hold the granted set; inheritable and ambient stay empty, as in
/// containerd.
fn capabilities(config: &ContainerConfig) -> Result<oci_spec::runtime::LinuxCapabilities, oci_spec::OciSpecError> {
    let names: Vec<String> = match &config.capabilities {
        Some(names) => names.clone(),
        None => DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
    };
    let mut set = std::collections::HashSet::new();
    for name in names {
        // Kubernetes writes `NET_ADMIN`, OCI `CAP_NET_ADMIN`; accept both.
        let capability = name
            .strip_prefix("CAP_")
            .unwrap_or(&name)
            .parse::<oci_spec::runtime::Capability>()
            .map_err(|_| oci_spec::OciSpecError::Other(format!("unknown capability {name:?}")))?;
        set.insert(capability);
    }
    oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()
}

/// Writes `config.json` for `config` into `dir` (created if needed).
pub fn write(dir: &Path, config: &ContainerConfig) -> Result<(), BundleError> {
    let io = |source| BundleError::Io { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let spec = spec(config)?;
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(dir.join("config.json"), json).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_carries_process_limits_and_cgroup() {
        let config = ContainerConfig {
            id: "c1".into(),
            rootfs: "/tmp/rootfs".into(),
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/bin".into()],
            cgroups_path: "/driftless/pod/c1".into(),
            memory_limit: Some(32 << 20),
            cpu_quota: Some((50_000, 100_000)),
            hostname: Some("web-0".into()),
            ..Default::default()
        };
        let value = serde_json::to_value(spec(&config).unwrap()).unwrap();
        assert_eq!(value["process"]["args"][2], "echo hi");
        assert!(value["process"].get("noNewPrivileges").is_none(), "Kubernetes' default, and absent (see spec)");
        assert_eq!(value["linux"]["resources"]["devices"], serde_json::json!([{"allow": false, "access": "rwm"}]));
        assert_eq!(value["linux"]["maskedPaths"].as_array().unwrap().len(), MASKED_PATHS.len());
        assert_eq!(value["linux"]["cgroupsPath"], "/driftless/pod/c1");
        assert_eq!(value["linux"]["resources"]["memory"]["limit"], 32 << 20);
        assert_eq!(value["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(value["hostname"], "web-0");
        assert_eq!(value["root"]["path"], "/tmp/rootfs");
        let namespaces: Vec<_> = value["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        for ns in ["pid", "network", "ipc", "uts", "mount"] {
            assert!(namespaces.contains(&ns), "{namespaces:?}");
        }
    }

    #[test]
    fn privileged_gets_the_host_devices_and_nothing_masked() {
        let config = ContainerConfig { id: "p".into(), args: vec!["sh".into()], privileged: true, no_new_privileges: false, ..Default::default() };
        let value = serde_json::to_value(spec(&config).unwrap()).unwrap();
        assert_eq!(value["linux"]["resources"]["devices"], serde_json::json!([{"allow": true, "access": "rwm"}]));
        assert!(value["linux"].get("maskedPaths").is_none_or(|m| m.as_array().is_some_and(Vec::is_empty)), "{value}");
        let nnp = ContainerConfig { no_new_privileges: true, ..config };
        assert_eq!(serde_json::to_value(spec(&nnp).unwrap()).unwrap()["process"]["noNewPrivileges"], true);
    }
}
