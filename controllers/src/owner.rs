//! Owner references: which controller owns an object, and building the
//! reference a controller puts on what it creates.

use driftless_model::Kind;
use driftless_model::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use driftless_store::{Key, WatchEvent};
use serde_json::Value;

/// The owner an object names as its controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRef {
    /// The owner's kind.
    pub kind: String,
    /// The owner's name (same namespace).
    pub name: String,
    /// The owner's uid.
    pub uid: String,
}

/// The controller reference in an object's JSON.
pub fn controller_of(value: &Value) -> Option<ControllerRef> {
    let owners = value.pointer("/metadata/ownerReferences")?.as_array()?;
    owners.iter().find(|o| o.get("controller").and_then(Value::as_bool) == Some(true)).and_then(|o| {
        Some(ControllerRef { kind: o.get("kind")?.as_str()?.to_owned(), name: o.get("name")?.as_str()?.to_owned(), uid: o.get("uid")?.as_str()?.to_owned() })
    })
}

/// The controller reference in typed metadata.
pub fn controller_of_meta(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|o| o.controller == Some(true))
}

/// A reference to `owner`, an object of `kind`, marking it as the
/// controller.
pub fn reference(kind: Kind, owner: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: kind.api_version().to_owned(),
        kind: kind.name().to_owned(),
        name: owner.name.clone().unwrap_or_default(),
        uid: owner.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// For a change to an object controlled by a `kind`, the key of its
/// controller (how a Pod's change wakes its ReplicaSet).
pub fn owner_trigger(event: &WatchEvent, kind: Kind) -> Option<Key> {
    let owner = controller_of(&event.object)?;
    (owner.kind == kind.name()).then(|| Key::new(kind, event.key.namespace.clone(), owner.name))
}
