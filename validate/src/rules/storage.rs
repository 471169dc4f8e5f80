//! PersistentVolumes, claims and StorageClasses.

use driftless_model::k8s_openapi::api::core::v1 as core;
use driftless_model::k8s_openapi::api::storage::v1 as storage;

use super::pod::quantity;
use super::{one_of, required};
use crate::names;
use crate::{Issues, Ptr};

const ACCESS_MODES: &[&str] = &["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];
/// The volume sources Driftless can back a PersistentVolume with: folders
/// on the node.
const SUPPORTED_SOURCES: &[&str] = &["hostPath", "local"];

fn access_modes(modes: Option<&Vec<String>>, at: &Ptr, issues: &mut Issues) {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    if modes.is_empty() {
        issues.error(at, "at least 1 access mode is required");
    }
    for (i, mode) in modes.iter().enumerate() {
        one_of(issues, &at.idx(i), mode, ACCESS_MODES);
    }
    if modes.iter().any(|m| m == "ReadWriteOncePod") && modes.len() > 1 {
        issues.error(at, "may not use ReadWriteOncePod with other access modes");
    }
}

pub(crate) fn claim_spec(spec: &core::PersistentVolumeClaimSpec, at: &Ptr, issues: &mut Issues) {
    access_modes(spec.access_modes.as_ref(), &at.key("accessModes"), issues);
    let requests = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    match requests.and_then(|r| r.get("storage")) {
        None => issues.error(&at.key("resources").key("requests"), "missing required field \"storage\""),
        Some(value) => {
            let at = at.key("resources").key("requests").key("storage");
            if let Some(q) = quantity(value, &at, issues)
                && q.nanos() == 0
            {
                issues.error(&at, "must be greater than zero");
            }
        }
    }
    if let Some(mode) = &spec.volume_mode {
        one_of(issues, &at.key("volumeMode"), mode, &["Filesystem", "Block"]);
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        issues.check(&at.key("storageClassName"), names::dns1123_subdomain(class));
    }
    if spec.data_source.is_some() || spec.data_source_ref.is_some() {
        issues.error(&at.key("dataSource"), "volume populators and snapshots are not supported by Driftless");
    }
}

pub(crate) fn persistent_volume(pv: &core::PersistentVolume, issues: &mut Issues) {
    let at = Ptr::root().key("spec");
    let Some(spec) = required(pv.spec.as_ref(), &Ptr::root(), "spec", issues) else { return };
    access_modes(spec.access_modes.as_ref(), &at.key("accessModes"), issues);
    match spec.capacity.as_ref().and_then(|c| c.get("storage")) {
        None => issues.error(&at.key("capacity"), "missing required field \"storage\""),
        Some(value) => {
            quantity(value, &at.key("capacity").key("storage"), issues);
        }
    }
    if let Some(policy) = &spec.persistent_volume_reclaim_policy {
        one_of(issues, &at.key("persistentVolumeReclaimPolicy"), policy, &["Retain", "Delete", "Recycle"]);
        if policy == "Recycle" {
            issues.warn(&at.key("persistentVolumeReclaimPolicy"), "Recycle is deprecated and treated as Retain by Driftless");
        }
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        issues.check(&at.key("storageClassName"), names::dns1123_subdomain(class));
    }
    // Every field that is not a binding or policy setting is a volume source.
    let value = serde_json::to_value(spec).unwrap_or_default();
    let sources: Vec<&String> =
        value.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| !driftless_model::PERSISTENT_VOLUME_SETTINGS.contains(&k.as_str())).collect();
    match sources.as_slice() {
        [] => issues.error(&at, "must specify a volume type"),
        [source] if !SUPPORTED_SOURCES.contains(&source.as_str()) => {
            issues.error(&at.key(source), format!("volume type {source:?} is not supported by Driftless (supported: {})", SUPPORTED_SOURCES.join(", ")))
        }
        [_] => {}
        [_, second, ..] => issues.error(&at.key(second), "may not specify more than 1 volume type"),
    }
    if let Some(host) = &spec.host_path {
        super::pod::host_path(&host.path, &at.key("hostPath").key("path"), issues);
    }
    if let Some(local) = &spec.local
        && !local.path.starts_with('/')
    {
        issues.error(&at.key("local").key("path"), format!("{:?}: must be an absolute path", local.path));
    }
}

pub(crate) fn storage_class(class: &storage::StorageClass, issues: &mut Issues) {
    let root = Ptr::root();
    if class.provisioner.is_empty() {
        issues.error(&root.key("provisioner"), "missing required field \"provisioner\"");
    } else {
        issues.check(&root.key("provisioner"), names::qualified_name(&class.provisioner.to_ascii_lowercase()));
    }
    if let Some(policy) = &class.reclaim_policy {
        one_of(issues, &root.key("reclaimPolicy"), policy, &["Retain", "Delete"]);
    }
    if let Some(mode) = &class.volume_binding_mode {
        one_of(issues, &root.key("volumeBindingMode"), mode, &["Immediate", "WaitForFirstConsumer"]);
    }
}
