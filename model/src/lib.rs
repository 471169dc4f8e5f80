//! The object model every other Driftless crate speaks.
//!
//! Owns: the list of supported kinds and what they are ([`Kind`]), object
//! identity ([`ObjectRef`]), label selectors ([`selector`]), typed objects built on `k8s-openapi` with the
//! Kubernetes 1.33 field set ([`Object`]), exact resource quantities
//! ([`Quantity`]) and the defaults the API server fills in ([`defaults`]).
//!
//! Must not touch: files, git, the network or the clock. Everything here is a
//! pure function of its input, so every other crate can rely on it in tests.

pub mod annotations;
pub mod convert;
pub mod cron;
mod field_path;
mod kind;
mod object;
pub use object::kind_of;
mod object_ref;

pub mod defaults;
pub mod node;
pub mod quantity;
pub mod requests;
pub mod selector;

pub use field_path::field_path;
pub use k8s_openapi;
pub use kind::{Kind, KindOf, Object, UnknownKind};
pub use object::ObjectError;
pub use object_ref::ObjectRef;
pub use quantity::{Quantity, QuantityError};

/// The Kubernetes minor version whose field set the model (and so the
/// schemas) follows.
pub const KUBERNETES_VERSION: &str = "1.33";

/// The fields of a PersistentVolume's spec that are settings or bindings;
/// every other field is a volume source (`hostPath`, `local`, `nfs`...).
pub const PERSISTENT_VOLUME_SETTINGS: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

/// The namespace a namespaced object lands in when its manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";
