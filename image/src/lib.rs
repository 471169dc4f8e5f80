//! The node's image store: container images on disk, by content.
//!
//! Owns: everything under `<data_dir>/images/`. Blobs are kept by digest in
//! `blobs/sha256/<hex>` and verified on the way in; each layer is unpacked
//! once into `layers/sha256/<diff_id hex>/`, with OCI whiteouts turned into
//! overlayfs ones, so the folder can be an overlayfs lowerdir as it is;
//! `references.json` maps normalized references
//! (`docker.io/library/busybox:1.35`) to manifest digests. Images come in
//! from OCI image layouts (folders or tars) and `docker save` archives
//! ([`ImageStore::import`]); [`ImageStore::resolve`] gives a runtime what it
//! needs to start a container ([`Image`]), and [`ImageStore::remove`]
//! collects whatever no reference uses any more.
//!
//! Must not touch: mounts, namespaces or cgroups. The runtime crate mounts
//! overlayfs from the layer folders this crate hands it; this crate only
//! writes files below its own folder, and reaches the network only to pull
//! ([`ImageStore::pull`]: the registries the caller names, plain HTTP only
//! for those it says are insecure).
//!
//! **Guarantees:** a blob is stored under a name only if its content hashes
//! to that name; a layer folder exists under its final name only once it is
//! completely unpacked and its content matched the image config's diff_id;
//! `references.json` is replaced atomically, and is written only after
//! everything it points to is in place. A crash leaves at worst unreferenced
//! blobs and layers (collected by the next removal) and staging folders in
//! `tmp/` (cleared by the next [`ImageStore::open`]).
//!
//! **Caveat:** removing an image that a running container still uses deletes
//! its layer folders; the caller (the daemon) must not remove images in use.

mod blobs;
mod digest;
mod error;
mod fsutil;
mod gc;
mod image;
mod import;
mod layers;
mod pull;
mod reference;
mod references;
mod space;
mod store;
mod unpack;

#[cfg(test)]
mod testutil;

pub use blobs::BlobError;
pub use error::ImageError;
pub use image::{Image, ImageConfig, ImageSummary};
pub use import::ImportError;
pub use pull::{Progress, PullOptions};
pub use reference::{ReferenceError, normalize_reference};
pub use space::{FileSystem, SpaceError, Statvfs, Usage};
pub use store::ImageStore;
pub use unpack::UnpackError;
