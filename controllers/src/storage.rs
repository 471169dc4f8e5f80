//! Storage: binding PersistentVolumeClaims to PersistentVolumes (same
//! class, the access modes asked for, enough capacity; the smallest that
//! fits), provisioning a volume for a claim whose StorageClass names the
//! node's local-path provisioner (a directory under the data folder), and
//! reclaiming volumes whose claim is gone (`Retain` keeps them `Released`,
//! `Delete` removes the directory it made and the volume).

use driftless_model::Kind;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftless_model::Quantity;
use driftless_model::k8s_openapi::api::core::v1::{HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, Pod};
use driftless_model::k8s_openapi::api::storage::v1::StorageClass;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use driftless_store::{Batch, Key, Op, Store, StoreExt, WatchEvent, to_value};
use serde_json::{Value, json};

use crate::events::EventType;
use crate::runner::{Action, Reconciler, Watch};
use crate::{Context, ReconcileError};

/// The provisioner name of the node's local-path volumes.
pub const PROVISIONER: &str = "driftless.dev/local-path";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";

/// The claim binder and provisioner (keyed by claim).
pub struct ClaimBinder {
    ctx: Context,
    volumes_dir: PathBuf,
}

/// The volume reclaimer and phase keeper (keyed by volume).
pub struct VolumeReclaimer {
    ctx: Context,
    volumes_dir: PathBuf,
}

impl ClaimBinder {
    /// A binder provisioning under `volumes_dir`.
    pub fn new(ctx: Context, volumes_dir: PathBuf) -> Arc<ClaimBinder> {
        Arc::new(ClaimBinder { ctx, volumes_dir })
    }
}

impl VolumeReclaimer {
    /// A reclaimer that may remove what was provisioned under `volumes_dir`.
    pub fn new(ctx: Context, volumes_dir: PathBuf) -> Arc<VolumeReclaimer> {
        Arc::new(VolumeReclaimer { ctx, volumes_dir })
    }
}

/// A volume's reference to the claim it is bound to.
fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        name: claim.metadata.name.clone(),
        namespace: claim.metadata.namespace.clone(),
        uid: claim.metadata.uid.clone(),
        ..Default::default()
    }
}

fn quantity(q: Option<&driftless_model::k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i128 {
    q.and_then(|q| q.0.parse::<Quantity>().ok()).map_or(0, |q| q.value())
}

fn request(claim: &PersistentVolumeClaim) -> i128 {
    quantity(claim.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")))
}

fn capacity(volume: &PersistentVolume) -> i128 {
    quantity(volume.spec.as_ref().and_then(|s| s.capacity.as_ref()).and_then(|c| c.get("storage")))
}

/// The class a claim asks for: its own, or the default class when it names
/// none (an explicit `""` means no class).
fn wanted_class(claim: &PersistentVolumeClaim, classes: &[StorageClass]) -> String {
    match claim.spec.as_ref().and_then(|s| s.storage_class_name.clone()) {
        Some(class) => class,
        None => classes
            .iter()
            .find(|c| c.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS)).is_some_and(|v| v == "true"))
            .and_then(|c| c.metadata.name.clone())
            .unwrap_or_default(),
    }
}

/// Whether `volume` can serve `claim` (class, modes, size, selector,
/// pre-binding).
fn fits(volume: &PersistentVolume, claim: &PersistentVolumeClaim, class: &str) -> bool {
    let Some(spec) = &volume.spec else { return false };
    let claim_meta = &claim.metadata;
    if let Some(bound) = &spec.claim_ref {
        let same = bound.name == claim_meta.name && bound.namespace == claim_meta.namespace;
        if !same || bound.uid.as_ref().is_some_and(|u| Some(u) != claim_meta.uid.as_ref()) {
            return false;
        }
    } else if volume.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|p| p != "Available" && p != "Pending") {
        return false;
    }
    let claim_spec = claim.spec.clone().unwrap_or_default();
    if let Some(name) = claim_spec.volume_name.as_deref().filter(|n| !n.is_empty())
        && volume.metadata.name.as_deref() != Some(name)
    {
        return false;
    }
    if spec.storage_class_name.as_deref().unwrap_or("") != class {
        return false;
    }
    let modes = spec.access_modes.clone().unwrap_or_default();
    if !claim_spec.access_modes.iter().flatten().all(|m| modes.contains(m)) {
        return false;
    }
    if spec.volume_mode.as_deref().unwrap_or("Filesystem") != claim_spec.volume_mode.as_deref().unwrap_or("Filesystem") {
        return false;
    }
    if let Some(selector) = &claim_spec.selector
        && !driftless_model::selector::matches(selector, &volume.metadata.labels.clone().unwrap_or_default())
    {
        return false;
    }
    capacity(volume) >= request(claim)
}

impl Reconciler for ClaimBinder {
    fn name(&self) -> &'static str {
        "claim-binder"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::PersistentVolumeClaim)
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        // A new or freed volume, a class, or a consumer may let a pending
        // claim bind.
        if !matches!(event.key.kind, Kind::PersistentVolume | Kind::StorageClass | Kind::Pod) {
            return vec![];
        }
        store
            .api::<PersistentVolumeClaim>()
            .list(None)
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound"))
            .map(driftless_store::key_of)
            .collect()
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(claim) = store.api::<PersistentVolumeClaim>().get(&key.namespace, &key.name) else { return Ok(Action::AwaitChange) };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(Action::AwaitChange);
        }
        let value = store.get(key).unwrap_or_default();
        let classes = store.api::<StorageClass>().list(None);
        let class = wanted_class(&claim, &classes);
        let volumes = store.api::<PersistentVolume>().list(None);
        let bound_to = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).filter(|v| !v.is_empty());
        if let Some(volume) = bound_to.as_ref().and_then(|name| volumes.iter().find(|v| v.metadata.name.as_ref() == Some(name))) {
            let claimed = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some_and(|r| r.uid == claim.metadata.uid);
            if claimed {
                return self.report_bound(key, &claim, volume);
            }
        }
        let mut candidates: Vec<&PersistentVolume> = volumes.iter().filter(|v| fits(v, &claim, &class)).collect();
        // A volume pre-bound to this claim wins; then the smallest that fits.
        candidates.sort_by_key(|v| (v.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_none(), capacity(v), v.metadata.name.clone()));
        if let Some(volume) = candidates.first() {
            let volume_name = volume.metadata.name.clone().unwrap_or_default();
            let mut volume = (*volume).clone();
            volume.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_ref(&claim));
            let mut bound = claim.clone();
            bound.spec.get_or_insert_with(Default::default).volume_name = Some(volume_name.clone());
            let mut batch = Batch::new();
            batch.push(Op::Update(to_value(&volume)));
            batch.push(Op::Status { key: driftless_store::key_of(&volume), uid: volume.metadata.uid.clone(), status: json!({"phase": "Bound"}) });
            batch.push(Op::Update(to_value(&bound)));
            store.apply(batch)?;
            tracing::info!(claim = %key, volume = volume_name, "bound claim");
            return Ok(Action::AwaitChange);
        }
        // Nothing fits: provision, if the class is ours.
        let class_object = classes.iter().find(|c| c.metadata.name.as_deref() == Some(class.as_str()));
        if let Some(class_object) = class_object.filter(|c| c.provisioner == PROVISIONER) {
            let waits = class_object.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
            if waits && !self.has_consumer(&claim) {
                return self.report_pending(key, &claim, &value, "WaitForFirstConsumer", "waiting for first consumer to be created before binding");
            }
            return self.provision(&claim, class_object);
        }
        let message = if class.is_empty() {
            "no persistent volumes available for this claim and no storage class is set".to_owned()
        } else if class_object.is_none() {
            format!("storageclass.storage.k8s.io {class:?} not found")
        } else {
            format!(
                "waiting for a volume to be created by {:?}, which is not this node's provisioner ({PROVISIONER})",
                class_object.map(|c| c.provisioner.as_str()).unwrap_or("")
            )
        };
        self.report_pending(key, &claim, &value, "FailedBinding", &message)
    }
}

impl ClaimBinder {
    fn has_consumer(&self, claim: &PersistentVolumeClaim) -> bool {
        let namespace = claim.metadata.namespace.as_deref().unwrap_or("default");
        self.ctx.store.api::<Pod>().list(Some(namespace)).iter().any(|pod| {
            pod.spec
                .iter()
                .flat_map(|s| s.volumes.iter().flatten())
                .any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| Some(&c.claim_name) == claim.metadata.name.as_ref()))
        })
    }

    fn report_bound(&self, key: &Key, claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> Result<Action, ReconcileError> {
        let spec = volume.spec.clone().unwrap_or_default();
        let status = json!({"phase": "Bound", "accessModes": spec.access_modes, "capacity": spec.capacity});
        if self.ctx.store.get(key).and_then(|v| v.get("status").cloned()) != Some(status.clone()) {
            self.ctx.store.apply(Batch::one(Op::Status { key: key.clone(), uid: claim.metadata.uid.clone(), status }))?;
        }
        Ok(Action::AwaitChange)
    }

    fn report_pending(&self, key: &Key, claim: &PersistentVolumeClaim, value: &Value, reason: &str, message: &str) -> Result<Action, ReconcileError> {
        let status = json!({"phase": "Pending"});
        if value.get("status") != Some(&status) {
            let kind = if reason == "WaitForFirstConsumer" { EventType::Normal } else { EventType::Warning };
            self.ctx.events.record(value, kind, reason, message);
            self.ctx.store.apply(Batch::one(Op::Status { key: key.clone(), uid: claim.metadata.uid.clone(), status }))?;
        }
        Ok(Action::Requeue(Duration::from_secs(30)))
    }

    /// Makes a directory and a volume pre-bound to the claim.
    fn provision(&self, claim: &PersistentVolumeClaim, class: &StorageClass) -> Result<Action, ReconcileError> {
        let uid = claim.metadata.uid.clone().unwrap_or_default();
        let name = format!("pvc-{uid}");
        let path = self.volumes_dir.join(&name);
        std::fs::create_dir_all(&path).map_err(|e| ReconcileError::Malformed(format!("cannot create {}: {e}", path.display())))?;
        let claim_spec = claim.spec.clone().unwrap_or_default();
        let mut capacity = BTreeMap::new();
        if let Some(size) = claim_spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")) {
            capacity.insert("storage".to_owned(), size.clone());
        }
        let volume = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                annotations: Some(BTreeMap::from([(PROVISIONED_BY.to_owned(), PROVISIONER.to_owned())])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                access_modes: claim_spec.access_modes.clone(),
                capacity: Some(capacity),
                claim_ref: Some(claim_ref(claim)),
                host_path: Some(HostPathVolumeSource { path: path.display().to_string(), type_: Some("Directory".into()) }),
                persistent_volume_reclaim_policy: Some(class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into())),
                storage_class_name: class.metadata.name.clone(),
                volume_mode: claim_spec.volume_mode.clone(),
                ..Default::default()
            }),
            status: None,
        };
        match self.ctx.store.apply(Batch::one(Op::Create(to_value(&volume)))) {
            Ok(_) | Err(driftless_store::StoreError::AlreadyExists(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let value = self.ctx.store.get(&driftless_store::key_of(claim)).unwrap_or_default();
        let message = format!("Successfully provisioned volume {name} using {PROVISIONER}");
        self.ctx.events.record(&value, EventType::Normal, "ProvisioningSucceeded", &message);
        tracing::info!(claim = ?claim.metadata.name, volume = name, path = %path.display(), "provisioned volume");
        Ok(Action::AwaitChange)
    }
}

impl Reconciler for VolumeReclaimer {
    fn name(&self) -> &'static str {
        "volume-reclaimer"
    }

    fn watch(&self) -> Watch {
        Watch::of(Kind::PersistentVolume)
    }

    fn watches(&self, event: &WatchEvent, store: &dyn Store) -> Vec<Key> {
        if event.key.kind != Kind::PersistentVolumeClaim {
            return vec![];
        }
        let name = event.object.pointer("/spec/volumeName").and_then(Value::as_str);
        let mut keys: Vec<Key> = name.map(|n| Key::new(Kind::PersistentVolume, "", n)).into_iter().collect();
        if event.kind == driftless_store::EventType::Deleted {
            // Its volume may only name it in its claimRef.
            let claimed = |v: &&PersistentVolume| {
                v.spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_some_and(|c| c.name.as_deref() == Some(event.key.name.as_str()) && c.namespace.as_deref() == Some(event.key.namespace.as_str()))
            };
            keys.extend(store.api::<PersistentVolume>().list(None).iter().filter(claimed).map(driftless_store::key_of));
        }
        keys
    }

    async fn reconcile(&self, key: &Key) -> Result<Action, ReconcileError> {
        let store = &*self.ctx.store;
        let Some(volume) = store.api::<PersistentVolume>().get("", &key.name) else { return Ok(Action::AwaitChange) };
        let spec = volume.spec.clone().unwrap_or_default();
        let phase = volume.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let set_phase = |phase: &str| -> Result<Action, ReconcileError> {
            store.apply(Batch::one(Op::Status { key: key.clone(), uid: volume.metadata.uid.clone(), status: json!({"phase": phase}) }))?;
            Ok(Action::AwaitChange)
        };
        let Some(claim_ref) = &spec.claim_ref else {
            return if phase == "Available" { Ok(Action::AwaitChange) } else { set_phase("Available") };
        };
        let namespace = claim_ref.namespace.clone().unwrap_or_default();
        let claim = store.api::<PersistentVolumeClaim>().get(&namespace, claim_ref.name.as_deref().unwrap_or(""));
        let claim_alive = claim.as_ref().is_some_and(|c| claim_ref.uid.is_none() || c.metadata.uid == claim_ref.uid);
        if claim_alive {
            let bound = claim.as_ref().and_then(|c| c.spec.as_ref()).and_then(|s| s.volume_name.as_deref()) == volume.metadata.name.as_deref();
            return match (bound, phase.as_str()) {
                (true, "Bound") | (false, "Available" | "Pending") => Ok(Action::AwaitChange),
                (true, _) => set_phase("Bound"),
                // Pre-bound, waiting for the binder.
                (false, _) => Ok(Action::AwaitChange),
            };
        }
        // The claim is gone: reclaim.
        let policy = spec.persistent_volume_reclaim_policy.as_deref().unwrap_or("Retain");
        let ours = volume.metadata.annotations.as_ref().and_then(|a| a.get(PROVISIONED_BY)).is_some_and(|p| p == PROVISIONER);
        if policy == "Delete" && ours {
            if let Some(path) = spec.host_path.as_ref().map(|h| PathBuf::from(&h.path)) {
                // Only ever remove what this node provisioned, under its
                // own folder.
                if path.starts_with(&self.volumes_dir) && path.exists() {
                    std::fs::remove_dir_all(&path).map_err(|e| ReconcileError::Malformed(format!("cannot remove {}: {e}", path.display())))?;
                }
            }
            store.apply(Batch::one(Op::Delete { key: key.clone(), uid: volume.metadata.uid.clone() }))?;
            tracing::info!(volume = %key.name, "deleted released volume");
            return Ok(Action::AwaitChange);
        }
        if phase == "Released" { Ok(Action::AwaitChange) } else { set_phase("Released") }
    }
}
